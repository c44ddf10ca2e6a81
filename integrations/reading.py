"""Reading one channel order's JSON strictly: pure functions and a typed reader, no I/O.

Every channel's mapping subclasses `Reader` with how its API spells a time (and, where
it is not a plain decimal, an amount). Any surprise becomes `Unreadable("malformed")`
naming the field: by `where`, the path of the object it is in (`""` at the top,
`"lineItems[0]."` below), and its key, joined only when something is wrong, since
building every path up front costs a tenth of a parse. Details name the field only,
never its value: values may be personal data.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

from domain.money import MoneyError, to_money
from integrations.protocols import Payload, Unreadable

_log = logging.getLogger(__name__)

KIND_NAMES: dict[Any, str] = {str: "a string", dict: "an object", list: "a list", bool: "a boolean",
                              int: "an integer", (str, int): "a string"}


def read_amount(value: Any) -> Decimal | None:
    """A decimal string, or a JSON number some APIs send instead, as an exact Decimal; else None.

    A float is read by its shortest repr, which is the number as the JSON text wrote it:
    `12.5` reads as exactly 12.5.
    """
    if isinstance(value, float):
        value = repr(value)
    try:
        return to_money(value)
    except MoneyError:
        return None


def read_quantity(value: Any) -> Decimal | None:
    """A line's quantity as read: a Decimal for any finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    amount = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    return amount if amount.is_finite() else None


class Reader(ABC):
    """Typed access to one order's fields; any surprise becomes `Unreadable("malformed")`."""

    time_form = "a timestamp"  # what a readable time is, for the detail naming one that is not

    def __init__(self, external_id: str | None):
        self.external_id = external_id

    def fail(self, detail: str) -> NoReturn:
        raise Unreadable("malformed", detail, self.external_id)

    @staticmethod
    @abstractmethod
    def parse_time(value: str) -> datetime | None:
        """A time as the channel spells it, as an aware UTC datetime; None when it is not one."""

    def get(self, node: Payload, key: str, kind: type | tuple[type, ...], where: str = "",
            required: bool = False) -> Any:
        """`node[key]` when it is a `kind` (a boolean is no integer); None when absent or null."""
        value = node.get(key)
        if type(value) is kind:  # the usual case, decided at once
            return value
        if value is None:
            if required:
                self.fail(f"{where}{key} is missing")
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(f"{where}{key} is not {KIND_NAMES.get(kind, 'of the expected type')}")
        return value

    def text(self, node: Payload, key: str, where: str = "", required: bool = False) -> str | None:
        value = self.get(node, key, str, where, required)
        if required and not value.strip():
            self.fail(f"{where}{key} is empty")
        return value

    def timestamp(self, node: Payload, key: str, where: str = "", required: bool = False) -> datetime | None:
        value = self.get(node, key, str, where, required)
        if value is None:
            return None
        moment = self.parse_time(value)
        if moment is None:
            self.fail(f"{where}{key} is not {self.time_form}")
        return moment

    def money(self, node: Payload, key: str, where: str = "", required: bool = False) -> Decimal:
        """An amount (see `read_amount`); 0 when absent."""
        value = node.get(key)
        if value is None:
            if required:
                self.fail(f"{where}{key} is missing")
            return Decimal(0)
        amount = read_amount(value)
        if amount is None:
            self.fail(f"{where}{key} is not an amount")
        return amount

    def flag(self, node: Payload, key: str, default: bool, where: str = "") -> bool:
        value = self.get(node, key, bool, where)
        return default if value is None else value


# Words in a refund's or credit memo's free-text reason that name one of Clerk's return
# reasons (`protocols.RETURN_REASONS`), tried in this order; anything else is "other".
_REASON_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wrong_item", ("wrong item", "wrong_item", "wrong size", "wrong colour", "wrong color", "wrong product",
                    "sent the wrong", "received the wrong")),
    ("not_as_described", ("not as described", "not_as_described", "not as pictured", "not as advertised")),
    ("late_delivery", ("late delivery", "late_delivery", "arrived late", "delivered late", "too late")),
    ("defective", ("defective", "faulty", "does not work", "doesn't work", "broken on arrival", "stopped working")),
    ("damaged", ("damaged", "broken", "cracked", "smashed", "torn")),
    ("changed_mind", ("changed mind", "changed my mind", "changed their mind", "change of mind", "changed_mind", "no longer needed", "not needed",
                      "unwanted", "don't want", "do not want")),
)


def return_reason(text: str | None) -> str:
    """Clerk's return reason code for a free-text reason: the code itself, else a word that names one,
    else "other". Pure; the text is read, never kept or logged."""
    folded = " ".join((text or "").lower().replace("-", " ").split())
    if not folded:
        return "other"
    for code, words in _REASON_WORDS:
        if folded == code or any(word in folded for word in words):
            return code
    return "other"


def report_unreadable(problems: list[Unreadable], unreadable: list[Unreadable] | None, channel: str) -> None:
    """Hands records that could not be read to the caller's list, or logs them when it passed none.

    The log line names the channel, the record's id and what is wrong: never its content.
    """
    if unreadable is not None:
        unreadable.extend(problems)
        return
    for problem in problems:
        _log.warning("%s: return record %s left out: %s", channel, problem.external_id or "?", problem)


class UnexpectedAnswer(ValueError):
    """A vendor's 2xx answer without what it should carry; names the field, never a value."""


def answer_object(value: Any, field: str) -> dict[str, Any]:
    """`value` as a JSON object, or `UnexpectedAnswer` naming `field`."""
    if not isinstance(value, dict):
        raise UnexpectedAnswer(f"{field} is not an object")
    return value


def answer_text(payload: Payload, field: str) -> str:
    """`payload[field]` as a non-empty string, or `UnexpectedAnswer` naming `field`."""
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise UnexpectedAnswer(f"{field} is missing")
    return value
