"""Shopify over the GraphQL Admin API: the client, its pure mapping, and its documents."""

from integrations.shopify.client import ShopifyClient, read_bulk_export
from integrations.shopify.mapping import parse_order

__all__ = ["ShopifyClient", "parse_order", "read_bulk_export"]
