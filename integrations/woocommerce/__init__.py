"""WooCommerce over its REST API v3: the client and its pure mapping."""

from integrations.woocommerce.client import WooCommerceClient
from integrations.woocommerce.mapping import STATUS_TO_LIFECYCLE, parse_order

__all__ = ["STATUS_TO_LIFECYCLE", "WooCommerceClient", "parse_order"]
