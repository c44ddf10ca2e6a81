"""track-shipments tasks: a batch of trackers read from the carrier, or one unit of work, each."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.tracking import Shipped
from integrations.protocols import TrackingEvent
from integrations.settings import cached_settings
from integrations.wiring import carrier
from models import tracking_store as store
from models.db import unit_of_work
from models.tracking_store import OnItsWay

track_task = task(cache_policy=NO_CACHE)


def _db() -> str:
    return cached_settings().database_url


@track_task(name="load-parcels-to-track")
def load_parcels_to_track(after_id: int, limit: int) -> list[OnItsWay]:
    with unit_of_work(_db()) as session:
        return store.to_track(session, after_id, limit)


@track_task(name="poll-trackers", retries=2, retry_delay_seconds=10)
def poll_trackers(numbers: list[str]) -> list[TrackingEvent]:
    """The carrier's latest on each tracking number (the client retries transient failures)."""
    return carrier().track(numbers)


@track_task(name="store-tracking")
def store_tracking(updates: list[tuple[int, str, str, object]]) -> None:
    with unit_of_work(_db()) as session:
        store.apply_updates(session, updates)  # type: ignore[arg-type]


@track_task(name="load-watched-parcels")
def load_watched_parcels() -> list[OnItsWay]:
    with unit_of_work(_db()) as session:
        return store.watched(session)


@track_task(name="load-shipping-history")
def load_shipping_history() -> list[Shipped]:
    with unit_of_work(_db()) as session:
        return store.history(session)
