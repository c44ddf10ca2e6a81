"""Deciding a batch of readable orders: what is new, what changed, who is held, who gets stock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from domain.orders import (
    CatalogPrice,
    ChannelOrder,
    Lifecycle,
    PriceTolerance,
    Status,
    hold_reasons,
    is_history,
)
from domain.reasons import Hold
from domain.stock import Claim, allocate


class Outcome(StrEnum):
    """What a run did with one external order (the summary's counters)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    QUARANTINED = "quarantined"


# When an order shows up more than once in one run, it is counted once, by its weightiest outcome.
_WEIGHT = {Outcome.UNCHANGED: 0, Outcome.QUARANTINED: 1, Outcome.UPDATED: 2, Outcome.CREATED: 3}


def fold_outcome(first: Outcome | None, later: Outcome) -> Outcome:
    """The outcome to count for an order seen again in the same run."""
    if first is None:
        return later
    return first if _WEIGHT[first] >= _WEIGHT[later] else later


@dataclass(frozen=True, slots=True)
class Known:
    """What Clerk already stored of an order."""

    fingerprint: str
    status: Status
    reserved: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to store for one order, and the reservation it should hold afterwards."""

    order: ChannelOrder
    outcome: Outcome
    status: Status
    reasons: tuple[str, ...] = ()
    reservation: Mapping[str, int] = field(default_factory=dict)

    @property
    def newly_held(self) -> bool:
        return self.status == Status.HELD and self.outcome != Outcome.UNCHANGED


def latest_per_order(orders: Iterable[ChannelOrder]) -> list[ChannelOrder]:
    """One version per external id: the most recently updated (pages can repeat an order)."""
    newest: dict[str, ChannelOrder] = {}
    for order in orders:
        seen = newest.get(order.external_id)
        if seen is None or order.updated_at >= seen.updated_at:
            newest[order.external_id] = order
    return list(newest.values())


def decide_batch(
    orders: Iterable[ChannelOrder],
    known: Mapping[str, Known],
    catalog: Mapping[str, CatalogPrice],
    available: Mapping[str, int],
    tolerance: PriceTolerance = PriceTolerance(),
) -> list[Decision]:
    """Decides every order of a batch.

    Unchanged orders keep their status and reservation. Cancelled orders release
    stock; fulfilled or closed ones are history (never held, never reserving). Open
    orders with no other hold compete for stock oldest first, all lines or none.
    """
    decisions: dict[str, Decision] = {}
    claims: list[Claim] = []
    pending: dict[str, ChannelOrder] = {}
    for order in latest_per_order(orders):
        before = known.get(order.external_id)
        if before is not None and before.fingerprint == order.fingerprint():
            decisions[order.external_id] = Decision(
                order, Outcome.UNCHANGED, before.status, reservation=before.reserved
            )
            continue
        outcome = Outcome.UPDATED if before else Outcome.CREATED
        if order.lifecycle == Lifecycle.CANCELLED:
            decisions[order.external_id] = Decision(order, outcome, Status.CANCELLED)
        elif is_history(order):
            decisions[order.external_id] = Decision(order, outcome, Status.FULFILLED)
        elif reasons := hold_reasons(order, catalog, tolerance):
            decisions[order.external_id] = Decision(order, outcome, Status.HELD, tuple(r.value for r in reasons))
        else:
            pending[order.external_id] = order
            claims.append(Claim(order.external_id, order.demand(), before.reserved if before else {}))

    claims.sort(key=lambda claim: (pending[claim.key].placed_at, claim.key))
    granted = allocate(claims, available)
    for claim in claims:
        order = pending[claim.key]
        outcome = Outcome.UPDATED if claim.key in known else Outcome.CREATED
        if claim.key in granted:
            decisions[claim.key] = Decision(order, outcome, Status.ACCEPTED, reservation=claim.wanted)
        else:
            reasons = (Hold.INSUFFICIENT_STOCK.value,)
            decisions[claim.key] = Decision(order, outcome, Status.HELD, reasons)
    return list(decisions.values())


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload that cannot become an order: kept raw, with its reason code."""

    channel: str
    external_id: str | None
    reason: str
    detail: str
    payload: Mapping[str, object]


@dataclass
class Tally:
    """A run's counters; an order seen several times in one run counts once."""

    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    reasons: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    held: set[tuple[str, str]] = field(default_factory=set)
    _anonymous: int = 0

    def record(self, channel: str, decisions: Iterable[Decision], rejections: Iterable[Rejection]) -> None:
        for decision in decisions:
            key = (channel, decision.order.external_id)
            self.outcomes[key] = fold_outcome(self.outcomes.get(key), decision.outcome)
            if decision.newly_held:
                self.held.add(key)
                self.reasons[key] = decision.reasons
            elif decision.outcome != Outcome.UNCHANGED:
                self.held.discard(key)
                self.reasons.pop(key, None)
        for rejection in rejections:
            if rejection.external_id is None:  # unreadable id: every such payload is its own order
                self._anonymous += 1
                key = (channel, f"?{self._anonymous}")
            else:
                key = (channel, rejection.external_id)
            previous = self.outcomes.get(key)
            self.outcomes[key] = fold_outcome(previous, Outcome.QUARANTINED)
            if self.outcomes[key] == Outcome.QUARANTINED:
                self.reasons[key] = (rejection.reason,)

    def release(self, keys: Iterable[tuple[str, str]]) -> None:
        """Orders accepted after all, once stock arrived: no longer held by this run."""
        for key in keys:
            self.held.discard(key)
            self.reasons.pop(key, None)

    def counts(self, channel: str | None = None) -> dict[str, int]:
        """fetched, created, updated, unchanged, quarantined and held, for one channel or all."""
        keys = [k for k in self.outcomes if channel is None or k[0] == channel]
        counts = {"fetched": len(keys)} | {o.value: 0 for o in Outcome}
        for key in keys:
            counts[self.outcomes[key].value] += 1
        counts["held"] = sum(1 for k in self.held if channel is None or k[0] == channel)
        return counts

    def reason_counts(self, all_codes: Iterable[str]) -> dict[str, int]:
        counts = dict.fromkeys(all_codes, 0)
        for key, reasons in self.reasons.items():
            if key in self.held or self.outcomes.get(key) == Outcome.QUARANTINED:
                for reason in reasons:
                    counts[reason] = counts.get(reason, 0) + 1
        return counts
