"""Orders from a marketplace's export file (Amazon, Etsy, eBay, a wholesale portal...), read by a column mapping."""

from integrations.marketplace_csv.mapping import MappingError, OrderMapping, parse_order
from integrations.marketplace_csv.source import OrderFile, OrderFileError, bundled_mappings, load_mapping

__all__ = ["MappingError", "OrderFile", "OrderFileError", "OrderMapping", "bundled_mappings", "load_mapping",
           "parse_order"]
