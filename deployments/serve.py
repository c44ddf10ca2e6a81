"""`clerk serve`: every deployment with its schedule, served from this process."""

from __future__ import annotations

from prefect import serve

from deployments.runs import install_redaction, load_flow

# name -> schedule (`interval` in seconds, or a `cron` line in UTC); mirrors prefect.yaml for workers.
SCHEDULES: dict[str, dict[str, int | str]] = {
    "order-intake": {"interval": 15 * 60},
    "restock-check": {"cron": "30 2 * * *"},  # nightly, after the day's last intake runs
    "ship-orders": {"interval": 60 * 60},
    "track-shipments": {"interval": 30 * 60},
    "sync-stock": {"interval": 15 * 60},
    "process-returns": {"interval": 60 * 60},
}
# Started by other runs, never on a schedule; many may wait at once, so no concurrency limit.
ON_DEMAND = ("await-approval",)


def deployments() -> list:  # type: ignore[type-arg]
    scheduled = [
        load_flow(name).to_deployment(name=name, concurrency_limit=1, **schedule)
        for name, schedule in SCHEDULES.items()
    ]
    return scheduled + [load_flow(name).to_deployment(name=name) for name in ON_DEMAND]


def serve_all() -> None:
    """Serves on Prefect's ephemeral server, or on `PREFECT_API_URL` when it is set."""
    from integrations.settings import cached_settings
    from models.db import upgrade

    upgrade(cached_settings().database_url)
    install_redaction()
    serve(*deployments())
