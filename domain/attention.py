"""What needs a person after a run, summed up as one alert without personal data."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeedsAttention:
    """A held order or a quarantined payload not yet told to the clerks."""

    kind: str  # "hold" | "quarantine"
    row_id: int
    channel: str
    reference: str  # order number or external id: never personal data
    reason: str


@dataclass(frozen=True, slots=True)
class AlertText:
    incident: str
    title: str
    lines: tuple[str, ...]
    counts: dict[str, int]


MAX_LISTED = 10


def summarise(flow: str, items: Sequence[NeedsAttention]) -> AlertText | None:
    """One alert for everything new that needs a person; None when nothing does.

    The incident key is a digest of exactly what is reported, so the same items are
    never announced twice.
    """
    if not items:
        return None
    keys = sorted(f"{i.kind}:{i.row_id}" for i in items)
    incident = f"{flow}:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    counts = dict(sorted(Counter(i.reason for i in items).items()))
    held = {(i.channel, i.reference) for i in items if i.kind == "hold"}
    quarantined = sum(1 for i in items if i.kind == "quarantine")
    parts = []
    if held:
        parts.append(f"{len(held)} order{'s' if len(held) != 1 else ''} held")
    if quarantined:
        parts.append(f"{quarantined} payload{'s' if quarantined != 1 else ''} quarantined")
    reasons_by_ref: dict[tuple[str, str, str], list[str]] = {}
    for item in items:
        reasons_by_ref.setdefault((item.kind, item.channel, item.reference), []).append(item.reason)
    listed = [
        f"{'held' if kind == 'hold' else 'quarantined'} {reference} ({channel}): {', '.join(sorted(reasons))}"
        for (kind, channel, reference), reasons in sorted(reasons_by_ref.items())[:MAX_LISTED]
    ]
    if len(reasons_by_ref) > MAX_LISTED:
        listed.append(f"… and {len(reasons_by_ref) - MAX_LISTED} more (clerk export orders / quarantine)")
    return AlertText(incident, f"{flow}: " + ", ".join(parts), tuple(listed), counts)


def summarise_restock(
    at_risk: Sequence[str], stockouts: Sequence[str], no_supplier: Sequence[str], awaiting: Sequence[str]
) -> AlertText | None:
    """One alert for the SKUs running short and the purchase orders waiting for a person."""
    return summarise_groups("restock-check", {
        "stockout": (stockouts, "out of stock"),
        "at_risk": (at_risk, "at risk (cover shorter than lead time)"),
        "no_supplier": (no_supplier, "below reorder point with no supplier in the catalog"),
        "awaiting_approval": (awaiting, "purchase orders waiting for approval"),
    })


def summarise_groups(flow: str, groups: Mapping[str, tuple[Sequence[str], str]]) -> AlertText | None:
    """One alert listing named groups of items (group -> (items, words for them)), or None
    when every group is empty.

    The incident is a digest of exactly what is listed, not of the day: a later run finding
    the same items sends nothing new.
    """
    listed = {group: sorted(items) for group, (items, _) in groups.items() if items}
    if not listed:
        return None
    digest = hashlib.sha256(repr(sorted(listed.items())).encode()).hexdigest()[:24]
    lines = []
    for group, items in listed.items():
        shown = ", ".join(items[:MAX_LISTED]) + (f" … and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
        lines.append(f"{len(items)} {groups[group][1]}: {shown}")
    title = f"{flow}: " + ", ".join(f"{len(items)} {group.replace('_', ' ')}" for group, items in listed.items())
    return AlertText(f"{flow}:{digest}", title, tuple(lines), {group: len(items) for group, items in listed.items()})
