"""`clerk serve`: every deployment with its schedule, served from this process."""

from __future__ import annotations

from prefect import serve

from deployments.runs import install_redaction, load_flow

# name -> (flow, schedule in seconds); mirrors prefect.yaml for workers.
SCHEDULES = {"order-intake": 15 * 60}


def deployments() -> list:  # type: ignore[type-arg]
    return [
        load_flow(name).to_deployment(name=name, interval=seconds, concurrency_limit=1)
        for name, seconds in SCHEDULES.items()
    ]


def serve_all() -> None:
    """Serves on Prefect's ephemeral server, or on `PREFECT_API_URL` when it is set."""
    from integrations.settings import cached_settings
    from models.db import upgrade

    upgrade(cached_settings().database_url)
    install_redaction()
    serve(*deployments())
