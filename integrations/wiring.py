"""The one place that chooses implementations: ports built from settings."""

from __future__ import annotations

from functools import cache

from integrations.protocols import Notifier, OrderSource
from integrations.settings import Settings, cached_settings


def enabled_channels(settings: Settings) -> list[str]:
    """Channels whose settings are present (a channel with its URL unset is off)."""
    return [name for name, url in (("shopify", settings.shopify_shop_url),) if url]


def build_order_source(channel: str, settings: Settings) -> OrderSource:
    """A client for one channel, from settings."""
    if channel == "shopify":
        from integrations.shopify.client import ShopifyClient

        return ShopifyClient.from_settings(settings)
    raise ValueError(f"unknown channel {channel!r}")


@cache
def order_source(channel: str) -> OrderSource:
    """The process-wide client of one channel (tasks receive channel names, not clients)."""
    return build_order_source(channel, cached_settings())


@cache
def notifier() -> Notifier:
    """Slack when configured, else the log."""
    from integrations.slack import build_notifier

    return build_notifier(cached_settings())


def reset() -> None:
    """Forgets cached settings and clients (after the environment changed, e.g. in tests)."""
    cached_settings.cache_clear()
    order_source.cache_clear()
    notifier.cache_clear()
