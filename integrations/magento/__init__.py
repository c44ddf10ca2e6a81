"""Magento 2 over its REST API: the client and its pure mapping."""

from integrations.magento.client import MagentoClient
from integrations.magento.mapping import Track, parse_order

__all__ = ["MagentoClient", "Track", "parse_order"]
