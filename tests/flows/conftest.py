"""Flows end to end: one Prefect test server per session, sandboxes on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.flows.state import seed_catalog_and_stock


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
    """A seeded store behind a Shopify sandbox, a Slack sandbox, and Clerk's settings pointing at them."""

    shop: Any
    slack: Any
    env: dict[str, str]
    database_url: str


def start_world(stack: ExitStack, database_url: str, orders: int = 400, seed: int = 11, faults: Any = None) -> World:
    from integrations.sandbox.server import serve_in_thread
    from integrations.sandbox.shopify import create_shopify_app
    from integrations.sandbox.slack import create_slack_app
    from integrations.sandbox.store import StoreSpec, generate_store

    store = generate_store(StoreSpec(seed=seed, orders=orders, tricky_share=0.2))
    shop = create_shopify_app(store, faults=faults, restore_rate=5000.0, max_available=20000.0)
    slack = create_slack_app(token="xoxb-test")
    shop_server = stack.enter_context(serve_in_thread(shop))
    slack_server = stack.enter_context(serve_in_thread(slack))
    env = {
        "CLERK_DATABASE_URL": database_url,
        "CLERK_SHOPIFY_SHOP_URL": shop_server.url,
        "CLERK_SHOPIFY_ACCESS_TOKEN": shop.token,
        "CLERK_SLACK_API_URL": f"{slack_server.url}/api/",
        "CLERK_SLACK_BOT_TOKEN": "xoxb-test",
        "CLERK_SLACK_CHANNEL": "#clerk-alerts",
        "CLERK_HTTP_TIMEOUT_SECONDS": "1.0",
    }
    seed_catalog_and_stock(database_url, store)
    return World(shop, slack, env, database_url)


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/flows" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.slow)
