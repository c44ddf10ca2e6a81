"""Alert tasks: read what needs a person, post one message, mark it told."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.attention import NeedsAttention
from integrations.protocols import Alert
from integrations.settings import cached_settings
from integrations.wiring import notifier
from models import attention
from models.db import unit_of_work


@task(name="find-untold", cache_policy=NO_CACHE)
def find_untold() -> list[NeedsAttention]:
    with unit_of_work(cached_settings().database_url) as session:
        return attention.untold(session)


@task(name="incident-already-sent", cache_policy=NO_CACHE)
def incident_already_sent(incident: str) -> bool:
    with unit_of_work(cached_settings().database_url) as session:
        return attention.already_sent(session, incident)


# Slack's own client retries 429s and 5xx; one more task retry covers a longer outage.
@task(name="send-alert", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def send_alert(alert: Alert) -> str | None:
    return notifier().send(alert)


@task(name="mark-told", cache_policy=NO_CACHE)
def mark_told(
    items: list[NeedsAttention], incident: str, flow: str, flow_run_id: str | None, message_ref: str | None, summary: dict[str, Any]
) -> None:
    with unit_of_work(cached_settings().database_url) as session:
        attention.mark_told(session, items, incident, flow, flow_run_id, message_ref, summary)
