"""Shopify's search syntax and cursor paging over the store's sorted indexes.

A page is found by bisecting the index of its sort key (`updated_at`, `created_at` or
`id`), so paging through 100k orders never scans them all. A cursor holds the sort
key's value and the id, so an order edited between pages moves to a later page, as on
Shopify.
"""

from __future__ import annotations

import operator
import re
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import GraphQLError

from integrations.sandbox.shopify.render import (
    decode_cursor,
    encode_cursor,
    parse_gid,
    timestamp,
)
from integrations.sandbox.store import Order, Store, Variant

_TERM = re.compile(r"""(?P<field>[A-Za-z_]+):(?P<op><=|>=|<|>|=)?(?P<value>'[^']*'|"[^"]*"|\S+)|(?P<word>\S+)""")
_LOW, _HIGH = -1, sys.maxsize

ORDER_SORTS = {"UPDATED_AT": "updated_at", "CREATED_AT": "created_at", "ID": "id"}
_ORDER_TIMES = ("updated_at", "created_at", "processed_at")
_STATUS: dict[str, Callable[[Order], bool]] = {
    "open": lambda o: o.closed_at is None and o.cancelled_at is None,
    "closed": lambda o: o.closed_at is not None,
    "cancelled": lambda o: o.cancelled_at is not None,
    "any": lambda o: True,
}


@dataclass(frozen=True, slots=True)
class Term:
    """One `field:op value` of a search."""

    field: str
    op: str  # one of < <= > >= =
    value: str


@dataclass(slots=True)
class Search:
    """A parsed `query:` argument, and the warnings Shopify would send back for it.

    `terms` must all match; of each group in `any_of` (terms joined by OR), one must.
    """

    terms: list[Term] = field(default_factory=list)
    any_of: list[list[Term]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


def parse_search(text: str | None) -> Search:
    """Reads `field:op value` terms joined by spaces, AND or OR (OR binding the terms beside it).

    Raises:
        GraphQLError: for syntax the sandbox does not implement (negation, free text, an
            OR without a term on each side), rather than silently matching everything.
    """
    groups: list[list[Term]] = []
    joining = False
    for match in _TERM.finditer(text or ""):
        word = match["word"]
        if word is not None:
            if word == "AND":
                continue
            if word == "OR" and groups and not joining:
                joining = True
                continue
            raise GraphQLError(f"The Shopify sandbox's search does not support {word!r} here.")
        value = match["value"]
        if value[:1] in "'\"":
            value = value[1:-1]
        term = Term(match["field"].lower(), match["op"] or "=", value)
        if joining:
            groups[-1].append(term)
            joining = False
        else:
            groups.append([term])
    if joining:
        raise GraphQLError("The Shopify sandbox's search does not support a trailing 'OR'.")
    return Search([g[0] for g in groups if len(g) == 1], [g for g in groups if len(g) > 1])


def _moment(value: str) -> tuple[datetime, bool] | None:
    """The instant a search value names, and whether it named a whole day."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    whole_day = len(value) == 10
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), whole_day


def _order_id(value: str) -> int | None:
    if value.isdigit():
        return int(value)
    try:
        return parse_gid(value, "Order")
    except GraphQLError:
        return None


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq,
}


@dataclass(slots=True)
class _Plan:
    """Bounds on the sort index, and the checks left for each order in them."""

    low: int
    high: int
    checks: list[Callable[[Order], bool]]


def _bounds(keys: list[tuple[Any, int]], op: str, value: Any, low: int, high: int) -> tuple[int, int]:
    """Narrows `[low, high)` on the index to the keys whose value satisfies `op value`."""
    if op in (">", ">=", "="):
        start = bisect_right(keys, (value, _HIGH)) if op == ">" else bisect_left(keys, (value, _LOW))
        low = max(low, start)
    if op in ("<", "<=", "="):
        end = bisect_left(keys, (value, _LOW)) if op == "<" else bisect_right(keys, (value, _HIGH))
        high = min(high, end)
    return low, high


FieldCheck = Callable[[str], Callable[[Order], bool]]  # a search field's value -> the check of an order


def _plan(keys: list[tuple[Any, int]], sort_field: str, search: Search,
          fields: dict[str, FieldCheck] | None = None) -> _Plan:
    plan = _Plan(0, len(keys), [])
    for term in search.terms:
        if term.field in _ORDER_TIMES:
            parsed = _moment(term.value)
            if parsed is None:
                search.warnings.append({"field": term.field, "message": "Invalid date value."})
                continue
            moment, whole_day = parsed
            ranges = [(">=", moment), ("<", moment + timedelta(days=1))] if whole_day and term.op == "=" \
                else [(term.op, moment)]
            for op, value in ranges:
                if term.field == sort_field:
                    plan.low, plan.high = _bounds(keys, op, value, plan.low, plan.high)
                else:
                    plan.checks.append(lambda o, f=term.field, op=op, v=value: _OPS[op](getattr(o, f), v))
        elif term.field == "id":
            number = _order_id(term.value)
            if number is None:
                search.warnings.append({"field": "id", "message": "Invalid id value."})
            elif sort_field == "id":
                plan.low, plan.high = _bounds(keys, term.op, number, plan.low, plan.high)
            else:
                plan.checks.append(lambda o, op=term.op, v=number: _OPS[op](o.id, v))
        elif term.field == "status" and term.value.lower() in _STATUS:
            plan.checks.append(_STATUS[term.value.lower()])
        elif fields and term.field in fields and term.op == "=":
            plan.checks.append(fields[term.field](term.value))
        else:
            search.warnings.append({"field": term.field, "message": "Invalid search field for this query."})
    return plan


def _sort_value(order: Order, sort_field: str) -> Any:
    """The value a cursor holds for `order` under the sort."""
    value = getattr(order, sort_field)
    return timestamp(value) if isinstance(value, datetime) else value


def _cursor_key(cursor: str, sort_field: str) -> tuple[Any, int]:
    """The index key a cursor points at, read in the sort's own type."""
    value, last_id = decode_cursor(cursor)
    if sort_field == "id" and isinstance(value, int):
        return value, last_id
    parsed = _moment(value) if sort_field != "id" and isinstance(value, str) else None
    if parsed is None:
        raise GraphQLError("Invalid cursor for current pagination.")
    return parsed[0], last_id


def find_orders(store: Store, search: Search, sort_key: str, reverse: bool, after: str | None,
                limit: int | None, fields: dict[str, FieldCheck] | None = None
                ) -> tuple[list[Order], list[str], bool]:
    """The orders matching `search` after the cursor, in sort order, their cursors, and whether more follow.

    Cursors are taken under the store's lock with the orders, so an edit cannot slip
    between finding an order and marking where the page ended.

    Args:
        limit: page size; None for every match (a bulk export, which needs no cursors).
        fields: search fields answered beyond the built-in ones (`return_status`).
    """
    if search.any_of:
        raise GraphQLError("The Shopify sandbox's order search does not support 'OR'.")
    sort_field = ORDER_SORTS[sort_key]
    found: list[Order] = []
    with store.lock:
        keys = store.sorted_keys(sort_field)
        plan = _plan(keys, sort_field, search, fields)
        if after is not None:
            key = _cursor_key(after, sort_field)
            if reverse:
                plan.high = min(plan.high, bisect_left(keys, key))
            else:
                plan.low = max(plan.low, bisect_right(keys, key))
        positions = range(plan.high - 1, plan.low - 1, -1) if reverse else range(plan.low, plan.high)
        wanted = sys.maxsize if limit is None else limit + 1
        for position in positions:
            order = store.order(keys[position][1])
            if all(check(order) for check in plan.checks):
                found.append(order)
                if len(found) >= wanted:
                    break
        if limit is None:
            return found, [], False
        page = found[:limit]
        cursors = [encode_cursor(_sort_value(o, sort_field), o.id) for o in page]
    return page, cursors, len(found) > limit


VARIANT_SORTS: dict[str, Callable[[Variant], Any]] = {"ID": lambda v: (v.id, v.id), "SKU": lambda v: (v.sku, v.id)}


def _variant_check(term: Term, search: Search) -> Callable[[Variant], bool] | None:
    """The check of one term on a variant; None (with Shopify's warning) for a field it cannot search."""
    if term.field == "sku" and term.value.endswith("*"):
        return lambda v, prefix=term.value[:-1]: v.sku.startswith(prefix)
    if term.field == "sku":
        return lambda v, sku=term.value: v.sku == sku
    if term.field == "product_id" and term.value.isdigit():
        return lambda v, pid=int(term.value): v.product_id == pid
    if term.field == "updated_at" and (parsed := _moment(term.value)):
        return lambda v, op=term.op, at=parsed[0]: _OPS[op](v.updated_at, at)
    search.warnings.append({"field": term.field, "message": "Invalid search field for this query."})
    return None


def find_variants(variants: list[Variant], search: Search, sort_key: str, reverse: bool,
                  after: str | None, limit: int | None) -> tuple[list[Variant], bool]:
    """Variants matching `search` (`sku`, with a trailing `*` for a prefix; `product_id`; `updated_at`;
    terms joined by OR)."""
    checks = [check for term in search.terms if (check := _variant_check(term, search))]
    for group in search.any_of:
        either = [check for term in group if (check := _variant_check(term, search))]
        checks.append(lambda v, either=either: any(check(v) for check in either))
    key = VARIANT_SORTS[sort_key]
    ordered = sorted((v for v in variants if all(c(v) for c in checks)), key=key, reverse=reverse)
    if after is not None:
        value, last_id = decode_cursor(after)
        if not isinstance(value, int if sort_key == "ID" else str):
            raise GraphQLError("Invalid cursor for current pagination.")
        mark = (value, last_id)
        ordered = [v for v in ordered if (key(v) < mark if reverse else key(v) > mark)]
    if limit is None:
        return ordered, False
    return ordered[:limit], len(ordered) > limit
