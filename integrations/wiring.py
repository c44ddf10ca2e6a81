"""The one place that chooses implementations: ports built from settings."""

from __future__ import annotations

from functools import cache

from integrations.protocols import Carrier, Mailer, Notifier, OrderSource, PaymentGateway, UpstreamError
from integrations.settings import Settings, cached_settings

# A one-off source for this process (a file being imported), found before any built from settings.
_registered: dict[str, OrderSource] = {}


def enabled_channels(settings: Settings) -> list[str]:
    """Channels whose settings are present (a channel with its URL unset is off)."""
    urls = (("shopify", settings.shopify_shop_url), ("woocommerce", settings.woocommerce_url),
            ("magento", settings.magento_url))
    return [name for name, url in urls if url]


def build_order_source(channel: str, settings: Settings) -> OrderSource:
    """A client for one channel, from settings."""
    if channel == "shopify":
        from integrations.shopify.client import ShopifyClient

        return ShopifyClient.from_settings(settings)
    if channel == "woocommerce":
        from integrations.woocommerce.client import WooCommerceClient

        return WooCommerceClient.from_settings(settings)
    if channel == "magento":
        from integrations.magento.client import MagentoClient

        return MagentoClient.from_settings(settings)
    raise ValueError(f"unknown channel {channel!r}")


def register_order_source(source: OrderSource) -> None:
    """Makes `source` this process's source for its channel (e.g. an orders file being imported)."""
    _registered[source.channel] = source


def forget_order_source(channel: str) -> None:
    """Undoes `register_order_source`: the channel is served from settings again."""
    _registered.pop(channel, None)


@cache
def _built_order_source(channel: str) -> OrderSource:
    return build_order_source(channel, cached_settings())


def order_source(channel: str) -> OrderSource:
    """The process-wide source of one channel (tasks receive channel names, not clients)."""
    return _registered.get(channel) or _built_order_source(channel)


@cache
def notifier() -> Notifier:
    """Slack when configured, else the log."""
    from integrations.slack import build_notifier

    return build_notifier(cached_settings())


def build_carrier(settings: Settings) -> Carrier:
    """The carrier CLERK_CARRIER names, from settings.

    Raises:
        UpstreamError: naming CLERK_CARRIER when it is unset or names no carrier Clerk has.
    """
    name = (settings.carrier or "").strip().lower()
    if name == "easypost":
        from integrations.easypost.client import EasyPostClient

        return EasyPostClient.from_settings(settings)
    if name == "karrio":
        from integrations.karrio.client import KarrioClient

        return KarrioClient.from_settings(settings)
    if not name:
        raise UpstreamError("CLERK_CARRIER is not set (easypost or karrio)", setting="CLERK_CARRIER")
    raise UpstreamError(f"CLERK_CARRIER names no carrier Clerk knows: {settings.carrier!r} (easypost or karrio)",
                        setting="CLERK_CARRIER")


@cache
def carrier() -> Carrier:
    """The process-wide carrier labels are bought from."""
    return build_carrier(cached_settings())


def build_payment_gateway(settings: Settings) -> PaymentGateway:
    """The payment gateway refunds go through (Stripe), from settings.

    Raises:
        UpstreamError: naming CLERK_STRIPE_API_KEY when it is unset.
    """
    from integrations.stripe.client import StripeClient

    return StripeClient.from_settings(settings)


@cache
def payment_gateway() -> PaymentGateway:
    """The process-wide payment gateway."""
    return build_payment_gateway(cached_settings())


@cache
def mailer() -> Mailer:
    """SMTP when configured, else the log."""
    from integrations.mail import build_mailer

    return build_mailer(cached_settings())


def reset() -> None:
    """Forgets cached settings and clients (after the environment changed, e.g. in tests)."""
    cached_settings.cache_clear()
    _built_order_source.cache_clear()
    _registered.clear()
    notifier.cache_clear()
    carrier.cache_clear()
    payment_gateway.cache_clear()
    mailer.cache_clear()
