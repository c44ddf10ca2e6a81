"""Karrio, the self-hosted multi-carrier gateway, over its REST API: the client and its pure mapping."""

from integrations.karrio.client import KarrioClient

__all__ = ["KarrioClient"]
