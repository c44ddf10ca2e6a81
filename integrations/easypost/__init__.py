"""EasyPost over its REST API v2: the client and its pure mapping."""

from integrations.easypost.client import EasyPostClient
from integrations.easypost.mapping import STATUS_TO_CLERK, verify_webhook

__all__ = ["STATUS_TO_CLERK", "EasyPostClient", "verify_webhook"]
