"""Flows end to end: one Prefect test server per session, sandboxes on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.flows.state import seed_catalog_and_stock

CHANNELS = ("shopify", "woocommerce", "magento")
# Each channel's settings; a channel a world does not run is set blank, which Clerk reads as off
# (so neither the developer's shell nor a `.env` file can switch it on behind a test's back).
_CHANNEL_URL = {"shopify": "CLERK_SHOPIFY_SHOP_URL", "woocommerce": "CLERK_WOOCOMMERCE_URL",
                "magento": "CLERK_MAGENTO_URL"}


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60), temporary_settings(
        updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield


@dataclass
class World:
    """A seeded store behind channel sandboxes and a Slack sandbox, and Clerk's settings pointing at them.

    `shop` is the Shopify sandbox (None when the world runs without Shopify); `apps` has every
    channel's sandbox by name, and `store` is the one store they all sell from.
    """

    shop: Any
    slack: Any
    env: dict[str, str]
    database_url: str
    store: Any = None
    apps: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.apps)

    def view(self, channel: str) -> Any:
        """The storefront `channel` as its sandbox serves it (its orders; the shared catalog and stock)."""
        return self.apps[channel].store


def _channel_app(channel: str, view: Any, faults: Any) -> tuple[Any, dict[str, str]]:
    """A sandbox over one storefront's view, and the settings naming it (URL filled in later)."""
    if channel == "shopify":
        from integrations.sandbox.shopify import create_shopify_app

        app = create_shopify_app(view, faults=faults, restore_rate=5000.0, max_available=20000.0)
        return app, {"CLERK_SHOPIFY_ACCESS_TOKEN": app.token}
    if channel == "woocommerce":
        from integrations.sandbox.woocommerce import create_woocommerce_app

        app = create_woocommerce_app(view, faults=faults)
        return app, {"CLERK_WOOCOMMERCE_KEY": app.key, "CLERK_WOOCOMMERCE_SECRET": app.secret}
    if channel == "magento":
        from integrations.sandbox.magento import create_magento_app

        app = create_magento_app(view, faults=faults)
        return app, {"CLERK_MAGENTO_TOKEN": app.token, "CLERK_MAGENTO_STORE": "default"}
    raise ValueError(f"unknown channel {channel!r}")


def start_world(
    stack: ExitStack,
    database_url: str,
    orders: int = 400,
    seed: int = 11,
    faults: Any = None,
    channels: tuple[str, ...] = ("shopify",),
) -> World:
    """Serves one seeded store through the sandboxes of `channels` and Slack; seeds Clerk's catalog and stock.

    Args:
        orders: orders per channel (the store deals `orders * len(channels)` among them).
        faults: a `Faults` for every channel's sandbox, or a mapping channel -> `Faults`.
        channels: storefronts to run, any subset of shopify, woocommerce, magento. The
            default keeps the Shopify-only world earlier tests were written against.
    """
    from integrations.sandbox.server import serve_in_thread
    from integrations.sandbox.slack import create_slack_app
    from integrations.sandbox.store import StoreSpec, generate_store

    unknown = set(channels) - set(CHANNELS)
    if unknown or not channels:
        raise ValueError(f"channels must be a non-empty subset of {CHANNELS}, not {channels!r}")
    store = generate_store(StoreSpec(seed=seed, orders=orders * len(channels), tricky_share=0.2,
                                     channels=tuple(channels)))
    env = {url: "" for url in _CHANNEL_URL.values()}
    apps: dict[str, Any] = {}
    for channel in channels:
        chosen = faults.get(channel) if isinstance(faults, Mapping) else faults
        app, settings = _channel_app(channel, store.channel(channel), chosen)
        server = stack.enter_context(serve_in_thread(app))
        apps[channel] = app
        env |= settings | {_CHANNEL_URL[channel]: server.url}
    slack = create_slack_app(token="xoxb-test")
    slack_server = stack.enter_context(serve_in_thread(slack))
    env |= {
        "CLERK_DATABASE_URL": database_url,
        "CLERK_SLACK_API_URL": f"{slack_server.url}/api/",
        "CLERK_SLACK_BOT_TOKEN": "xoxb-test",
        "CLERK_SLACK_CHANNEL": "#clerk-alerts",
        "CLERK_HTTP_TIMEOUT_SECONDS": "1.0",
    }
    seed_catalog_and_stock(database_url, store)
    return World(apps.get("shopify"), slack, env, database_url, store, apps)


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Applies a world's settings to this process and forgets cached clients."""
    from integrations import wiring

    def apply(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        wiring.reset()

    yield apply
    wiring.reset()


@pytest.fixture
def world(database_url: str, use_env) -> Iterator[World]:  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        built = start_world(stack, database_url)
        use_env(built.env)
        yield built


@pytest.fixture
def all_channels_world(database_url: str, use_env) -> Iterator[World]:  # type: ignore[no-untyped-def]
    """Shopify, WooCommerce and Magento selling from one store (250 orders each), all three on."""
    with ExitStack() as stack:
        built = start_world(stack, database_url, orders=250, channels=CHANNELS)
        use_env(built.env)
        yield built


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/flows" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.slow)
