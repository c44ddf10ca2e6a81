"""The stock ledger's invariants over random days of orders, deliveries, counts and cancellations.

The model below books what Clerk books, with the domain's rules: an order reserves all its
lines or waits held; stock that arrives goes to waiting orders oldest first; a count that
leaves fewer units than were promised puts the newest promises back on hold.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.stock import Claim, allocate, oversold, reservation_changes

SKUS = ("MUG-1", "TEE-1", "CAP-1")


class Ledger:
    """Movements as Clerk writes them, and the orders' states as intake and imports leave them."""

    def __init__(self) -> None:
        self.movements: list[tuple[str, int, int]] = []  # (sku, on hand delta, reserved delta)
        self.orders: dict[str, dict[str, int]] = {}  # key -> wanted, in arrival order
        self.reserved: dict[str, dict[str, int]] = defaultdict(dict)
        self.held: set[str] = set()

    def level(self, sku: str) -> tuple[int, int]:
        return (sum(d for s, d, _ in self.movements if s == sku), sum(r for s, _, r in self.movements if s == sku))

    def available(self) -> dict[str, int]:
        return {sku: on_hand - reserved for sku in SKUS for on_hand, reserved in [self.level(sku)]}

    def _reserve(self, key: str, wanted: dict[str, int]) -> None:
        for sku, delta in reservation_changes(self.reserved[key], wanted).items():
            self.movements.append((sku, 0, delta))
        self.reserved[key] = dict(wanted)

    def _release_waiting(self) -> None:
        waiting = [Claim(key, self.orders[key], {}) for key in self.orders if key in self.held]
        for key in [c.key for c in waiting if c.key in allocate(waiting, self.available())]:
            self.held.discard(key)
            self._reserve(key, self.orders[key])

    def order(self, key: str, wanted: dict[str, int]) -> None:
        self.orders[key] = wanted
        if key in allocate([Claim(key, wanted, {})], self.available()):
            self._reserve(key, wanted)
        else:
            self.held.add(key)

    def receive(self, sku: str, units: int) -> None:
        self.movements.append((sku, units, 0))
        self._release_waiting()

    def count(self, sku: str, counted: int) -> None:
        self.movements.append((sku, counted - self.level(sku)[0], 0))
        reserving = [(key, self.reserved[key]) for key in self.orders if self.reserved[key]]
        for key in oversold(self.available(), reserving):
            self._reserve(key, {})
            self.held.add(key)
        self._release_waiting()

    def cancel(self, key: str) -> None:
        if key in self.orders:
            self._reserve(key, {})
            self.held.discard(key)
            del self.orders[key]
            self._release_waiting()


units = st.integers(min_value=1, max_value=6)
events = st.lists(st.one_of(
    st.tuples(st.just("order"), st.dictionaries(st.sampled_from(SKUS), units, min_size=1)),
    st.tuples(st.just("receive"), st.sampled_from(SKUS), units),
    st.tuples(st.just("count"), st.sampled_from(SKUS), st.integers(min_value=0, max_value=10)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=30)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_available_never_goes_below_zero_and_every_order_is_reserved_in_full_or_held(sequence: list[tuple]) -> None:
    ledger = Ledger()
    on_hand = defaultdict(int)
    for number, (kind, *args) in enumerate(sequence):
        if kind == "order":
            ledger.order(f"#{number}", args[0])
        elif kind == "receive":
            ledger.receive(*args)
            on_hand[args[0]] += args[1]
        elif kind == "count":
            ledger.count(*args)
            on_hand[args[0]] = args[1]
        else:
            ledger.cancel(f"#{args[0]}")
        for sku in SKUS:
            assert ledger.level(sku)[0] == on_hand[sku]  # on hand is the sum of its movements
            assert ledger.available()[sku] >= 0, (sku, ledger.available())
        for key, wanted in ledger.orders.items():
            assert (ledger.reserved[key] == wanted) != (key in ledger.held), key


@pytest.mark.parametrize(("available", "reserving", "held"), [
    ({"MUG-1": 5}, [("#1", {"MUG-1": 2})], []),  # nothing short
    ({"MUG-1": -1}, [("#1", {"MUG-1": 2}), ("#2", {"MUG-1": 1})], ["#2"]),  # the newest gives back
    ({"MUG-1": -2}, [("#1", {"MUG-1": 2}), ("#2", {"MUG-1": 1}), ("#3", {"TEE-1": 4})], ["#2", "#1"]),
    ({"MUG-1": -1, "TEE-1": -1}, [("#1", {"MUG-1": 1, "TEE-1": 1}), ("#2", {"MUG-1": 3})], ["#2", "#1"]),
])
def test_oversold_puts_the_newest_promises_back_on_hold(available, reserving, held) -> None:  # type: ignore[no-untyped-def]
    assert oversold(available, reserving) == held
