"""Magento's `searchCriteria` query parameters: parsing, filtering, sorting and paging.

Both spellings Magento accepts are read: the schema's camelCase
(`searchCriteria[filterGroups][0][filters][0][conditionType]`) and the snake_case of
its prose docs (`searchCriteria[filter_groups][0][filters][0][condition_type]`).
Filters within a group are OR-ed, groups AND-ed, as in Magento's SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class Refusal(ValueError):
    """A request Magento would refuse, with its message template and parameters."""

    def __init__(self, message: str, parameters: Mapping[str, str] | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.parameters = dict(parameters or {})
        self.status = status


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    value: str
    kind: str  # Magento's condition type: eq, neq, gt, gteq, lt, lteq, in, nin, like, null, notnull


@dataclass(frozen=True, slots=True)
class Criteria:
    groups: tuple[tuple[Condition, ...], ...]
    sort: tuple[tuple[str, str], ...]
    page_size: int | None
    current_page: int

    def echo(self) -> dict[str, Any]:
        """`search_criteria` as Magento answers it: what was asked, in snake_case."""
        echoed: dict[str, Any] = {"filter_groups": [
            {"filters": [{"field": c.field, "value": c.value, "condition_type": c.kind} for c in group]}
            for group in self.groups]}
        if self.sort:
            echoed["sort_orders"] = [{"field": f, "direction": d} for f, d in self.sort]
        if self.page_size is not None:
            echoed["page_size"] = self.page_size
        echoed["current_page"] = self.current_page
        return echoed


_FILTER = re.compile(
    r"searchCriteria\[(?:filterGroups|filter_groups)\]\[(\d+)\]\[filters\]\[(\d+)\]"
    r"\[(field|value|conditionType|condition_type)\]")
_SORT = re.compile(r"searchCriteria\[(?:sortOrders|sort_orders)\]\[(\d+)\]\[(field|direction)\]")
_PAGE = re.compile(r"searchCriteria\[(pageSize|page_size|currentPage|current_page)\]")
_CONDITIONS = frozenset({"eq", "neq", "gt", "gteq", "lt", "lteq", "in", "nin", "like", "null", "notnull"})
REQUIRED = '"%fieldName" is required. Enter and try again.'


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Refusal('The "%value" value\'s type is invalid. The "%type" type was expected. '
                          'Verify and try again.', {"value": text, "type": "int"}) from None


def parse_criteria(params: Iterable[tuple[str, str]], required: bool = True) -> Criteria:
    """Reads the query's `searchCriteria`.

    Raises:
        Refusal: when it is missing (and `required`) or cannot be read.
    """
    filters: dict[tuple[int, int], dict[str, str]] = {}
    sorts: dict[int, dict[str, str]] = {}
    paging: dict[str, str] = {}
    seen = False
    for key, value in params:
        if not key.startswith("searchCriteria"):
            continue
        seen = True
        if match := _FILTER.fullmatch(key):
            part = "condition_type" if match[3] == "conditionType" else match[3]
            filters.setdefault((int(match[1]), int(match[2])), {})[part] = value
        elif match := _SORT.fullmatch(key):
            sorts.setdefault(int(match[1]), {})[match[2]] = value
        elif match := _PAGE.fullmatch(key):
            paging["page_size" if match[1] in ("pageSize", "page_size") else "current_page"] = value
        elif key != "searchCriteria":
            raise Refusal('"%fieldName" is not a search criteria property.', {"fieldName": key})
    if required and not seen:
        raise Refusal(REQUIRED, {"fieldName": "searchCriteria"})
    groups: dict[int, list[Condition]] = {}
    for (group, _), parts in sorted(filters.items()):
        for needed in ("field", "value"):
            if needed not in parts and parts.get("condition_type") not in ("null", "notnull"):
                raise Refusal(REQUIRED, {"fieldName": needed})
        kind = parts.get("condition_type") or "eq"
        if kind not in _CONDITIONS:
            raise Refusal('Invalid condition type "%conditionType".', {"conditionType": kind})
        groups.setdefault(group, []).append(Condition(parts["field"], parts.get("value", ""), kind))
    sort = []
    for _, parts in sorted(sorts.items()):
        if "field" not in parts:
            raise Refusal(REQUIRED, {"fieldName": "field"})
        sort.append((parts["field"], (parts.get("direction") or "ASC").upper()))
    size = _whole(paging["page_size"]) if "page_size" in paging else None
    page = _whole(paging["current_page"]) if "current_page" in paging else 1
    return Criteria(tuple(tuple(g) for _, g in sorted(groups.items())), tuple(sort),
                    size if size and size > 0 else None, max(page, 1))


# -- columns ----------------------------------------------------------------------------------

Column = Callable[[Any], Any]  # reads a row's value of one field, typed for comparison


def _typed(sample: Any, text: str) -> Any:
    """A filter's text as the column's type, so numbers and times compare as such."""
    if isinstance(sample, datetime):
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return None
    if isinstance(sample, bool | int | float):
        try:
            return float(text)
        except ValueError:
            return None
    return text


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern),
                      re.IGNORECASE | re.DOTALL)


def _holds(value: Any, condition: Condition) -> bool:
    kind = condition.kind
    if kind == "null":
        return value is None
    if kind == "notnull":
        return value is not None
    if value is None:
        return False
    if kind in ("in", "nin"):
        found = any(_typed(value, part.strip()) == value for part in condition.value.split(","))
        return found if kind == "in" else not found
    if kind == "like":
        return _like(condition.value).fullmatch(str(value)) is not None
    wanted = _typed(value, condition.value)
    if wanted is None:
        return kind == "neq"
    return {"eq": value == wanted, "neq": value != wanted, "gt": value > wanted, "gteq": value >= wanted,
            "lt": value < wanted, "lteq": value <= wanted}[kind]


def check_fields(criteria: Criteria, columns: Mapping[str, Column]) -> None:
    """Refuses a filter or sort on a field the collection does not have (Magento: a SQL error)."""
    for field in [c.field for group in criteria.groups for c in group] + [f for f, _ in criteria.sort]:
        if field not in columns:
            raise Refusal('Column "%column" does not exist.', {"column": field})


def matches(row: Any, groups: Sequence[Sequence[Condition]], columns: Mapping[str, Column]) -> bool:
    return all(any(_holds(columns[c.field](row), c) for c in group) for group in groups)


def sort_rows(rows: list[Any], sort: Sequence[tuple[str, str]], columns: Mapping[str, Column]) -> list[Any]:
    """Rows in the asked order; unset values first, as MySQL sorts NULL."""
    for field, direction in reversed(sort):
        read = columns[field]
        rows.sort(key=lambda row: (read(row) is not None, read(row)), reverse=direction == "DESC")
    return rows


def page_bounds(total: int, criteria: Criteria) -> tuple[int, int]:
    """`[start, end)` of the page asked for.

    Magento clamps a page past the end to the last page, so asking for page 9 of 3
    answers page 3 again: clients must stop by `total_count`, not by an empty page.
    """
    if criteria.page_size is None:
        return 0, total
    pages = max(1, -(-total // criteria.page_size))
    page = min(criteria.current_page, pages)
    start = (page - 1) * criteria.page_size
    return start, min(total, start + criteria.page_size)


def search(rows: list[Any], criteria: Criteria, columns: Mapping[str, Column]) -> tuple[list[Any], int]:
    """Filters, sorts and pages `rows`; returns the page and `total_count`."""
    check_fields(criteria, columns)
    found = sort_rows([row for row in rows if matches(row, criteria.groups, columns)], criteria.sort, columns)
    start, end = page_bounds(len(found), criteria)
    return found[start:end], len(found)


def dict_columns(names: Iterable[str], times: Iterable[str] = ()) -> dict[str, Column]:
    """Columns of plain rows by key, the `times` among them read as times."""
    columns: dict[str, Column] = {name: (lambda row, name=name: row.get(name)) for name in names}
    for name in times:
        columns[name] = lambda row, name=name: _time(row.get(name))
    return columns


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
