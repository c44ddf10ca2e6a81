"""track-shipments: trackers polled in batches, statuses kept, late and stuck parcels told once,
carrier performance published.

poll (carrier) → store → judge late (domain) → alert → performance table (domain).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from domain.tracking import Watched, is_late, performance, recommend, summarise_tracking
from flows.alerting import run_link, trouble_reported
from integrations.protocols import Alert, TrackerStatus
from tasks.alerts import incident_already_sent, mark_told, send_alert
from tasks.tracking import (
    load_parcels_to_track,
    load_shipping_history,
    load_watched_parcels,
    poll_trackers,
    store_tracking,
)

FLOW = "track-shipments"
BATCH_SIZE = 100


@flow(name=FLOW)
def track_shipments(batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Reads every parcel on its way from its carrier, a batch at a time, and tells the clerks
    about parcels in exception or late, once.

    Returns:
        The run's summary (the contract's `--json` object, without `state`).
    """
    logger = get_run_logger()
    polled = updated = delivered = 0
    with trouble_reported(FLOW):
        after = 0
        while parcels := load_parcels_to_track(after, batch_size):
            after = parcels[-1].shipment_id
            events = poll_trackers([p.tracking_number for p in parcels])
            polled += len(parcels)
            changes = []
            for parcel, event in zip(parcels, events, strict=True):
                if event.status.value == parcel.status:
                    continue
                arrived = (event.occurred_at or datetime.now(UTC)) if event.status is TrackerStatus.DELIVERED else None
                changes.append((parcel.shipment_id, event.status.value, event.carrier_status, arrived))
                delivered += event.status is TrackerStatus.DELIVERED
            if changes:
                store_tracking(quote(changes))
                updated += len(changes)
        today = datetime.now(UTC).date()
        watched = [Watched(p.shipment_id, p.order_number, p.carrier, p.status,
                           is_late(p.status, p.promised_by, today, p.delivered_at.date() if p.delivered_at else None))
                   for p in load_watched_parcels()]
        # Only what still needs a person: a parcel delivered late is history, not news.
        open_ = [w for w in watched if w.status != "delivered"]
        alerts_sent = _tell_clerks(open_)
        figures = performance(load_shipping_history())
    summary = {"flow": FLOW, "trackers_polled": polled, "updated": updated, "delivered": delivered,
               "exceptions": sum(1 for w in open_ if w.status == "exception"),
               "late": sum(1 for w in open_ if w.late), "alerts_sent": alerts_sent}
    if figures:
        create_table_artifact([f.as_record() for f in figures], key="carrier-performance",
                              description="On-time rate, transit days, exceptions and cost by carrier, service and lane")
        advice = recommend(figures)
        if advice:
            create_table_artifact([{"zone": a.zone, "instead_of": a.instead_of, "use": a.use,
                                    "saving_per_parcel": str(a.saving_per_parcel)} for a in advice],
                                  key="carrier-recommendations", description="Cheaper services as punctual, by lane")
    logger.info("track-shipments: %s", summary)
    return summary


def _tell_clerks(watched: list[Watched]) -> int:
    text = summarise_tracking(FLOW, watched)
    if text is None or incident_already_sent(text.incident):
        return 0
    reference = send_alert(Alert(text.incident, text.title, text.lines, text.counts, run_link()))
    mark_told([], text.incident, FLOW, flow_run.get_id(), reference, {"counts": text.counts})
    return 1
