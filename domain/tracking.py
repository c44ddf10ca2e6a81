"""Tracking rules: late parcels, what to tell the clerks, and how each carrier service performs."""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from domain.attention import MAX_LISTED, AlertText
from domain.money import cents

DONE = frozenset({"delivered", "returned_to_sender"})


def is_late(status: str, promised_by: date | None, today: date, delivered_on: date | None) -> bool:
    """Delivered after the promised day, or not delivered and the day has passed."""
    if promised_by is None or status == "returned_to_sender":
        return False
    return (delivered_on or today) > promised_by


@dataclass(frozen=True, slots=True)
class Watched:
    """A parcel worth a clerk's look: its order number and carrier only, never the buyer."""

    shipment_id: int
    order_number: str
    carrier: str
    status: str
    late: bool


def summarise_tracking(flow: str, watched: Sequence[Watched]) -> AlertText | None:
    """One alert for parcels in exception and parcels late; None when there are none.

    The incident is a digest of each parcel and what is said of it (in exception, late), so a
    rerun that finds the same picture sends nothing, a late parcel moving on from one scan to the
    next is not news, and a parcel that goes from late to exception is told again.
    """
    exceptions = sorted((w for w in watched if w.status == "exception"), key=lambda w: w.order_number)
    late = sorted((w for w in watched if w.late and w.status != "exception"), key=lambda w: w.order_number)
    if not exceptions and not late:
        return None
    said = sorted(f"{w.shipment_id}:{w.status == 'exception'}:{w.late}" for w in (*exceptions, *late))
    incident = f"{flow}:" + hashlib.sha256("\n".join(said).encode()).hexdigest()[:24]
    lines = [f"exception: {w.order_number} ({w.carrier})" for w in exceptions[:MAX_LISTED]]
    lines += [f"late: {w.order_number} ({w.carrier}, {w.status.replace('_', ' ')})" for w in late[:MAX_LISTED]]
    hidden = max(len(exceptions) - MAX_LISTED, 0) + max(len(late) - MAX_LISTED, 0)
    if hidden:
        lines.append(f"… and {hidden} more (clerk export shipments)")
    title = f"{flow}: " + ", ".join(part for part in (
        f"{len(exceptions)} in exception" if exceptions else "", f"{len(late)} late" if late else "") if part)
    return AlertText(incident, title, tuple(lines), {"exception": len(exceptions), "late": len(late)})


@dataclass(frozen=True, slots=True)
class Shipped:
    """One parcel's history, for performance figures."""

    carrier: str
    service: str
    zone: str
    cost: Decimal
    shipped_at: datetime
    delivered_at: datetime | None
    promised_by: date | None
    status: str


@dataclass(frozen=True, slots=True)
class Performance:
    """A carrier service on a lane (zone): how often on time, how long, how costly."""

    carrier: str
    service: str
    zone: str
    parcels: int
    delivered: int
    on_time_rate: float | None  # of the delivered parcels with a promise; None when none
    mean_transit_days: float | None
    p90_transit_days: float | None
    exception_rate: float
    cost_per_parcel: Decimal

    def as_record(self) -> dict[str, object]:
        return {"carrier": self.carrier, "service": self.service, "zone": self.zone, "parcels": self.parcels,
                "delivered": self.delivered, "on_time_rate": self.on_time_rate, "mean_transit_days": self.mean_transit_days,
                "p90_transit_days": self.p90_transit_days, "exception_rate": self.exception_rate,
                "cost_per_parcel": str(self.cost_per_parcel)}


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]  # nearest rank


def performance(parcels: Iterable[Shipped]) -> list[Performance]:
    """Figures per (carrier, service, zone), by carrier then service then zone."""
    groups: dict[tuple[str, str, str], list[Shipped]] = defaultdict(list)
    for parcel in parcels:
        groups[(parcel.carrier, parcel.service, parcel.zone)].append(parcel)
    found = []
    for (carrier, service, zone), group in sorted(groups.items()):
        delivered = [p for p in group if p.delivered_at is not None]
        transit = [(p.delivered_at - p.shipped_at).total_seconds() / 86400 for p in delivered]  # type: ignore[operator]
        promised = [p for p in delivered if p.promised_by is not None]
        on_time = sum(1 for p in promised if p.delivered_at.date() <= p.promised_by)  # type: ignore[union-attr, operator]
        found.append(Performance(
            carrier, service, zone, len(group), len(delivered),
            round(on_time / len(promised), 4) if promised else None,
            round(statistics.fmean(transit), 2) if transit else None,
            round(_p90(transit), 2) if transit else None,
            round(sum(1 for p in group if p.status == "exception") / len(group), 4),
            cents(sum((p.cost for p in group), Decimal(0)) / len(group)),
        ))
    return found


@dataclass(frozen=True, slots=True)
class Recommendation:
    zone: str
    instead_of: str  # "carrier service"
    use: str
    saving_per_parcel: Decimal


MIN_PARCELS = 5  # fewer than this on a service and lane says little


def recommend(figures: Sequence[Performance]) -> list[Recommendation]:
    """Per lane, a cheaper service whose on-time rate is equal or better, where both have
    enough delivered parcels to judge."""
    by_zone: dict[str, list[Performance]] = defaultdict(list)
    for figure in figures:
        if figure.delivered >= MIN_PARCELS and figure.on_time_rate is not None:
            by_zone[figure.zone].append(figure)
    advice = []
    for zone, options in sorted(by_zone.items()):
        for current in sorted(options, key=lambda f: (f.carrier, f.service)):
            better = [o for o in options if o.cost_per_parcel < current.cost_per_parcel
                      and o.on_time_rate >= current.on_time_rate]  # type: ignore[operator]
            if better:
                best = min(better, key=lambda o: (o.cost_per_parcel, -(o.on_time_rate or 0)))
                advice.append(Recommendation(zone, f"{current.carrier} {current.service}", f"{best.carrier} {best.service}",
                                             current.cost_per_parcel - best.cost_per_parcel))
    return advice
