"""The contract's CLERK_* settings and `clerk.toml`, read here and nowhere else."""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ShipFrom(BaseModel):
    name: str = "Warehouse"
    street: str = "1 Dock Rd"
    city: str = "Portland"
    state: str = "OR"
    postal_code: str = "97201"
    country: str = "US"
    phone: str = "+15035550100"


class Approvals(BaseModel):
    refund_above: Decimal = Decimal("100.00")
    purchase_order_above: Decimal = Decimal("5000.00")


class Restock(BaseModel):
    service_level: float = 0.95
    review_days: int = 7


class Supplier(BaseModel):
    email: str | None = None
    lead_time_days: int = 7
    currency: str = "USD"


class Returns(BaseModel):
    window_days: int = 30
    restocking_fee_percent: Decimal = Decimal("0")
    non_returnable_categories: list[str] = Field(default_factory=list)
    review_reasons: list[str] = Field(default_factory=lambda: ["other"])  # reasons a person decides


class Shipping(BaseModel):
    """ship-orders tuning (not in the contract)."""

    promise_days: int = 5  # delivery promised this many days after the order was placed
    # One task run a batch (~10 ms here, plus the server's work): 100 makes ~100 at 10,000 orders,
    # a few % of the run. Larger batches save little more, and the gate stops a whole batch on one
    # bad order (held; the rest wait for the next run), so 100 is kept.
    batch_size: int = 100
    labels_dir: Path = Path("labels")  # bought label files
    documents_dir: Path = Path("shipping")  # pick lists and packing slips, a folder per run
    label_format: Literal["PNG", "PDF", "ZPL"] = "PNG"  # the label file bought (EasyPost `options.label_format`)

    @field_validator("label_format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class Intake(BaseModel):
    """Order-intake tuning (not in the contract; defaults suit a store of any size)."""

    batch_size: int = 1000
    backfill_batch_size: int = 10000
    price_tolerance_absolute: Decimal = Decimal("0.01")
    price_tolerance_relative: Decimal = Decimal("0.01")
    watermark_overlap_seconds: int = 60


class ClerkToml(BaseModel):
    ship_from: ShipFrom = Field(default_factory=ShipFrom)
    approvals: Approvals = Field(default_factory=Approvals)
    restock: Restock = Field(default_factory=Restock)
    suppliers: dict[str, Supplier] = Field(default_factory=dict)
    returns: Returns = Field(default_factory=Returns)
    intake: Intake = Field(default_factory=Intake)
    shipping: Shipping = Field(default_factory=Shipping)


class Settings(BaseSettings):
    """Environment (and `.env`) settings; the environment wins over Prefect Secret blocks."""

    model_config = SettingsConfigDict(env_prefix="CLERK_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./clerk.db"
    shopify_shop_url: str | None = None
    shopify_access_token: str | None = None
    shopify_api_version: str = "2026-10"
    woocommerce_url: str | None = None
    woocommerce_key: str | None = None
    woocommerce_secret: str | None = None
    magento_url: str | None = None
    magento_store: str = "default"
    magento_token: str | None = None
    stripe_api_url: str = "https://api.stripe.com"
    stripe_api_key: str | None = None
    carrier: str | None = None
    easypost_api_url: str = "https://api.easypost.com"
    easypost_api_key: str | None = None
    karrio_url: str | None = None
    karrio_api_key: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_bot_token: str | None = None
    slack_channel: str | None = None
    smtp_url: str | None = None
    smtp_from: str | None = None
    shopify_webhook_secret: str | None = None
    woocommerce_webhook_secret: str | None = None
    easypost_webhook_secret: str | None = None
    webhook_max_age_seconds: int = 300
    config: Path | None = None
    # Not in the contract: transport tuning, so tests can shorten waits.
    http_timeout_seconds: float = 30.0
    http_max_attempts: int = 6

    # A blank webhook secret would let anyone sign: it counts as unset.
    @field_validator(
        "shopify_shop_url", "woocommerce_url", "magento_url", "karrio_url",
        "shopify_webhook_secret", "woocommerce_webhook_secret", "easypost_webhook_secret", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def toml(self) -> ClerkToml:
        return load_toml(self.config)


def load_toml(path: Path | None) -> ClerkToml:
    """Reads `clerk.toml` (or `CLERK_CONFIG`); every key optional."""
    candidate = path or Path("clerk.toml")
    if not candidate.exists():
        if path is not None:
            raise FileNotFoundError(f"CLERK_CONFIG points at a missing file: {path}")
        return ClerkToml()
    with candidate.open("rb") as handle:
        return ClerkToml.model_validate(tomllib.load(handle))


SECRET_BLOCKS = {
    "shopify_access_token": "clerk-shopify-access-token",
    "slack_bot_token": "clerk-slack-bot-token",
    "woocommerce_secret": "clerk-woocommerce-secret",
    "magento_token": "clerk-magento-token",
    "stripe_api_key": "clerk-stripe-api-key",
}


def _secret_from_block(block_name: str) -> str | None:
    # Only consulted when a Prefect API is configured: the ephemeral server has no blocks.
    if not os.environ.get("PREFECT_API_URL"):
        return None
    try:
        from prefect.blocks.system import Secret

        return Secret.load(block_name).get()
    except Exception:  # a missing block just means "not set"
        return None


def load_settings() -> Settings:
    """Settings from the environment, with missing secrets filled from Prefect Secret blocks."""
    settings = Settings()
    filled = {
        field: _secret_from_block(block)
        for field, block in SECRET_BLOCKS.items()
        if getattr(settings, field) is None
    }
    filled = {field: value for field, value in filled.items() if value}
    return settings.model_copy(update=filled) if filled else settings


@cache
def cached_settings() -> Settings:
    """One settings object per process, for tasks that receive only ids."""
    return load_settings()
