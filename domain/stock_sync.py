"""Channel stock sync: what each channel is told, in batches, and when a channel's count is a conflict.

Clerk pushes a SKU's available units (never below 0: a channel reads a negative count as
back orders, or refuses it) only when they differ from what it last pushed to that channel.
A channel lowers its own count as it sells, so it may show the last push less the units its
orders took since (those Clerk has read are in `sold_since`): that is no conflict. A channel
showing less than that sold more than Clerk has read yet: its count is left for a later run,
once intake has read those orders. One showing more, or anything else, was changed there by
someone: the count is left alone for a person to look at, and re-checked on every run until
the two sides agree again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.attention import MAX_LISTED, AlertText


class Verdict(StrEnum):
    """What to do with one SKU's count on a channel, once the channel's count is read."""

    WRITE = "write"
    ALREADY = "already"  # the channel shows the wanted count: nothing to write
    BEHIND = "behind"  # the channel sold units Clerk has not read yet: wait for intake
    CONFLICT = "conflict"  # changed on the channel since Clerk's last push: not overwritten


@dataclass(frozen=True, slots=True)
class Push:
    """Units a channel should show as available for one SKU, what Clerk last pushed there
    (None: never, so whatever the channel shows is taken over), and the units of that
    channel's orders placed since, as far as Clerk has read them."""

    sku: str
    available: int
    last_pushed: int | None = None
    sold_since: int = 0


@dataclass(frozen=True, slots=True)
class Pushed:
    """A channel's `channel_stock` row: Clerk's last push, and the count a conflict found there."""

    units: int
    conflict_seen: int | None = None


@dataclass(frozen=True, slots=True)
class PushPlan:
    """One channel's pushes in batches, and how many SKUs need none."""

    batches: list[list[Push]]
    unchanged: int


@dataclass(frozen=True, slots=True)
class Conflict:
    """A count changed on a channel, first seen at `since`; a SKU and numbers, never personal data."""

    channel: str
    sku: str
    seen: int
    since: datetime

    @property
    def key(self) -> str:
        """Names this conflict among every one ever told: a SKU's later conflict is another."""
        return f"{self.channel}:{self.sku}:{self.seen}:{self.since.isoformat()}"


def shown_units(available: int) -> int:
    """The count a channel is given for `available` units: an oversold SKU shows 0."""
    return max(available, 0)


def judge(push: Push, shown: int | None) -> Verdict:
    """What to do with `push` on a channel that shows `shown` units (None: it keeps no count).

    >>> judge(Push("A", 5, last_pushed=7), 7), judge(Push("A", 5, last_pushed=7), 5)
    (<Verdict.WRITE: 'write'>, <Verdict.ALREADY: 'already'>)
    >>> judge(Push("A", 5, last_pushed=7), 8), judge(Push("A", 5), 6)
    (<Verdict.CONFLICT: 'conflict'>, <Verdict.WRITE: 'write'>)
    >>> judge(Push("A", 5, last_pushed=7, sold_since=2), 5), judge(Push("A", 9, last_pushed=7, sold_since=2), 5)
    (<Verdict.ALREADY: 'already'>, <Verdict.WRITE: 'write'>)
    >>> judge(Push("A", 9, last_pushed=7, sold_since=2), 4), judge(Push("A", 9, last_pushed=7, sold_since=2), 6)
    (<Verdict.BEHIND: 'behind'>, <Verdict.CONFLICT: 'conflict'>)
    """
    if shown == push.available:
        return Verdict.ALREADY
    # Never pushed (Clerk takes the count over) or no count kept there: nothing to overwrite.
    if shown is None or push.last_pushed is None:
        return Verdict.WRITE
    # Untouched, or lowered only by the orders Clerk has read (some channels lower their count
    # when an order is placed, others only when it ships: both are the channel's own doing).
    if shown in (push.last_pushed, push.last_pushed - push.sold_since):
        return Verdict.WRITE
    if shown < push.last_pushed - push.sold_since:
        return Verdict.BEHIND
    return Verdict.CONFLICT


def plan_pushes(
    available: Mapping[str, int], pushed: Mapping[str, Pushed], batch_size: int, sold_since: Mapping[str, int] | None = None
) -> PushPlan:
    """The SKUs to push to one channel, by SKU, in batches of at most `batch_size`.

    A SKU goes when its count differs from the last push (or was never pushed), and while a
    conflict on it is open, so the run that finds the two sides agreeing again closes it.
    `sold_since` gives, per SKU, the units of the channel's orders placed since the last push.

    Raises:
        ValueError: for a batch size below 1.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pushes = []
    for sku in sorted(available):
        units = shown_units(available[sku])
        last = pushed.get(sku)
        if last is None or last.units != units or last.conflict_seen is not None:
            pushes.append(Push(sku, units, last.units if last else None, (sold_since or {}).get(sku, 0)))
    batches = [pushes[start:start + batch_size] for start in range(0, len(pushes), batch_size)]
    return PushPlan(batches, len(available) - len(pushes))


def summarise_conflicts(flow: str, conflicts: Sequence[Conflict]) -> AlertText | None:
    """One alert for conflicts not told before; None when there are none.

    The incident is a digest of the conflicts listed, so a rerun never tells them twice.
    """
    if not conflicts:
        return None
    ordered = sorted(conflicts, key=lambda c: (c.channel, c.sku))
    digest = hashlib.sha256("\n".join(c.key for c in ordered).encode()).hexdigest()[:24]
    counts: dict[str, int] = {}
    for conflict in ordered:
        counts[conflict.channel] = counts.get(conflict.channel, 0) + 1
    lines = [f"{c.sku} on {c.channel}: the channel shows {c.seen}, not what Clerk last pushed"
             for c in ordered[:MAX_LISTED]]
    if len(ordered) > MAX_LISTED:
        lines.append(f"… and {len(ordered) - MAX_LISTED} more")
    lines.append("Left as they are: correct the channel or Clerk's stock, and the next sync sees them agree.")
    title = f"{flow}: {len(ordered)} stock count{'s' if len(ordered) != 1 else ''} changed on a channel"
    return AlertText(f"{flow}:conflicts:{digest}", title, tuple(lines), counts)
