"""Stripe over its REST API: the payment gateway client and its pure mapping."""

from integrations.stripe.client import StripeClient
from integrations.stripe.mapping import STATUS_TO_CLERK, verify_webhook

__all__ = ["STATUS_TO_CLERK", "StripeClient", "verify_webhook"]
