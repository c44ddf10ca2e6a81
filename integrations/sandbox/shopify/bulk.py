"""Bulk operations: a query over every order, run in the background, written as JSONL.

The bulk query is validated against the sandbox schema and compiled into a projection,
so each line carries exactly the fields the query selects. Nested connection nodes (an
order's line items) go on lines of their own with `__parentId`; with `groupObjects`
false they are held back and flushed after a few later orders: since API 2026-01
Shopify no longer promises that children follow their parent. Orders are streamed one
at a time, so memory stays flat however many there are.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
    value_from_ast,
)

from integrations.sandbox.shopify.render import Renderer, View, gid, timestamp
from integrations.sandbox.shopify.search import find_orders, find_variants, parse_search
from integrations.sandbox.store import Store

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 5
MAX_DEPTH = 2
ROOTS = ("orders", "productVariants")
RUNNING = ("CREATED", "RUNNING")


class BulkQueryError(ValueError):
    """A bulk query Shopify would refuse; the message is Shopify's user error."""


@dataclass(frozen=True, slots=True)
class _Selection:
    """One selected field: its output key (alias), name, and what lies beneath it."""

    key: str
    name: str
    kind: str  # leaf | object | connection
    plan: _Plan | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a bulk query selects on one type."""

    type_name: str
    selections: tuple[_Selection, ...]
    whole: bool = False  # every field of the type, by its own name, nested plans whole too


@dataclass(frozen=True, slots=True)
class BulkQuery:
    """A validated bulk query: its root connection, that field's arguments, and the node projection."""

    root: str
    arguments: dict[str, Any]
    plan: _Plan


class _Compiler:
    """Turns a bulk query's selections into plans, enforcing Shopify's bulk limits."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments
        self.connections = 0

    def fields(self, selection_set: SelectionSetNode) -> list[FieldNode]:
        found: list[FieldNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, FragmentSpreadNode):
                found += self.fields(self.fragments[selection.name.value].selection_set)
            elif isinstance(selection, InlineFragmentNode):
                found += self.fields(selection.selection_set)
        return found

    def plan(self, selection_set: SelectionSetNode, parent: GraphQLObjectType, depth: int) -> _Plan:
        selections = []
        for node in self.fields(selection_set):
            key, name = (node.alias or node.name).value, node.name.value
            if name == "__typename":
                selections.append(_Selection(key, name, "leaf"))
                continue
            named = get_named_type(parent.fields[name].type)
            if is_leaf_type(named):
                selections.append(_Selection(key, name, "leaf"))
            elif named.name.endswith("Connection"):
                if "id" not in {f.name.value for f in self.fields(selection_set)}:
                    raise BulkQueryError(f"The parent 'node' field for a nested connection must select the 'id' "
                                         f"field. Connection fields without 'id': {name}.")
                selections.append(_Selection(key, name, "connection", self.connection(node, named, depth + 1)))
            else:
                selections.append(_Selection(key, name, "object", self.plan(node.selection_set, named, depth)))
        whole = {s.name for s in selections} == set(parent.fields) and all(
            s.key == s.name and s.kind != "connection" and (s.plan is None or s.plan.whole) for s in selections)
        return _Plan(parent.name, tuple(selections), whole)

    def connection(self, node: FieldNode, connection: GraphQLObjectType, depth: int) -> _Plan:
        self.connections += 1
        if self.connections > MAX_CONNECTIONS:
            raise BulkQueryError(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.")
        if depth > MAX_DEPTH:
            raise BulkQueryError(f"Bulk queries cannot contain connections with a nesting depth greater than "
                                 f"{MAX_DEPTH}.")
        node_type = get_named_type(connection.fields["nodes"].type)
        merged: list[_Selection] = []
        for inner in self.fields(node.selection_set):
            if inner.name.value == "nodes":
                merged += self.plan(inner.selection_set, node_type, depth).selections
            elif inner.name.value == "edges":
                for edge_field in self.fields(inner.selection_set):
                    if edge_field.name.value == "node":
                        merged += self.plan(edge_field.selection_set, node_type, depth).selections
        return _Plan(node_type.name, tuple(merged))


def compile_bulk_query(schema: GraphQLSchema, text: str) -> BulkQuery:
    """Checks a bulk query as Shopify does and compiles its projection.

    Raises:
        BulkQueryError: with the message Shopify would put in `userErrors`.
    """
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise BulkQueryError(f"Invalid bulk query: {exc.message}") from exc
    errors = validate(schema, document)
    if errors:
        raise BulkQueryError(f"Invalid bulk query: {errors[0].message}")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        raise BulkQueryError("Bulk queries must contain exactly one query operation.")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    compiler = _Compiler(schema, fragments)
    roots = compiler.fields(operations[0].selection_set)
    if len(roots) != 1 or roots[0].name.value not in ROOTS:
        raise BulkQueryError(f"Bulk queries must select exactly one top-level connection: one of {ROOTS}.")
    root = roots[0]
    field = schema.query_type.fields[root.name.value]
    arguments = {a.name.value: value_from_ast(a.value, field.args[a.name.value].type, {})
                 for a in root.arguments or ()}
    plan = compiler.connection(root, get_named_type(field.type), 1)
    return BulkQuery(root.name.value, arguments, plan)


Projector = Callable[[Any, list[dict[str, Any]]], dict[str, Any]]


def _projector(plan: _Plan) -> Projector:
    """A function giving the selected fields of one object; nested connection nodes go to `children`."""
    steps = [(s.key, s.name, s.kind, _projector(s.plan) if s.plan else None) for s in plan.selections]
    names = tuple(dict.fromkeys([s.name for s in plan.selections if s.name != "__typename"]
                                + ["id" for s in plan.selections if s.kind == "connection"]))
    leaves = None
    if all(kind == "leaf" and name != "__typename" for _, name, kind, _ in steps):
        leaves = tuple((key, name) for key, name, _, _ in steps)
    type_name, whole = plan.type_name, plan.whole
    inner_whole = {s.key: s.plan is not None and s.plan.whole for s in plan.selections}

    def project(view: Any, children: list[dict[str, Any]]) -> dict[str, Any]:
        if type(view) is View:
            fields, source = view.fields, view.source
            view = {name: fields[name](source) for name in names}
        elif whole:
            return view  # the renderer's dicts carry exactly their type's fields
        if leaves is not None:
            return {key: view[name] for key, name in leaves}
        out: dict[str, Any] = {}
        for key, name, kind, inner in steps:
            if kind == "leaf":
                out[key] = type_name if name == "__typename" else view[name]
            elif kind == "object":
                value = view[name]
                if callable(value) and not isinstance(value, dict | View):
                    value = value(None)  # a plain list with arguments (`transactions`): all of it
                if type(value) is dict and inner_whole[key]:
                    out[key] = value  # skips a call per money amount, address and customer
                elif isinstance(value, list):
                    out[key] = [inner(item, children) for item in value]
                else:
                    out[key] = None if value is None else inner(value, children)
            else:
                parent = view["id"]
                for node in view[name].all():
                    grandchildren: list[dict[str, Any]] = []
                    child = inner(node, grandchildren)
                    child["__parentId"] = parent
                    children.append(child)
                    children += grandchildren
        return out

    return project


@dataclass(slots=True)
class BulkOperation:
    """One bulk run and its file; `status` moves CREATED -> RUNNING -> COMPLETED or FAILED."""

    number: int
    query: str
    group_objects: bool
    created_at: datetime
    path: Path
    status: str = "CREATED"
    completed_at: datetime | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int = 0
    error_code: str | None = None

    @property
    def gid(self) -> str:
        return gid("BulkOperation", self.number)

    def view(self, base_url: str) -> dict[str, Any]:
        """The operation's fields as of now; the file URL is absolute, like Shopify's signed URLs."""
        url = f"{base_url}/sandbox-files/bulk/{self.number}.jsonl"
        done = self.status == "COMPLETED"
        return {
            "id": self.gid, "type": "QUERY", "status": self.status, "query": self.query,
            "errorCode": self.error_code, "createdAt": timestamp(self.created_at),
            "completedAt": timestamp(self.completed_at), "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_object_count),
            "fileSize": str(self.file_size) if done and self.object_count else None,
            "url": url if done and self.object_count else None,
            "partialDataUrl": url if self.status == "FAILED" and self.file_size else None,
        }


class BulkRunner:
    """Runs one bulk query at a time in a background thread, writing into `directory`."""

    def __init__(self, schema: GraphQLSchema, store: Store, renderer: Renderer, directory: Path):
        self.schema = schema
        self.store = store
        self.renderer = renderer
        self.directory = directory
        self.operations: dict[int, BulkOperation] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def current(self) -> BulkOperation | None:
        return self.operations[max(self.operations)] if self.operations else None

    def start(self, query: str, group_objects: bool, base_url: str) -> tuple[dict[str, Any] | None, list[dict]]:
        """Starts a bulk query; returns the operation as created, or Shopify's user errors."""
        with self._lock:
            current = self.current()
            if current is not None and current.status in RUNNING:
                return None, [{"field": None, "code": "OPERATION_IN_PROGRESS",
                               "message": f"A bulk query operation for this app and shop is already in "
                                          f"progress: {current.gid}."}]
            try:
                compiled = compile_bulk_query(self.schema, query)
            except BulkQueryError as exc:
                return None, [{"field": ["query"], "code": "INVALID", "message": str(exc)}]
            number = len(self.operations) + 1
            operation = BulkOperation(number, query, group_objects, datetime.now(UTC).replace(microsecond=0),
                                      self.directory / f"{number}.jsonl")
            self.operations[number] = operation
            created = operation.view(base_url)
            thread = threading.Thread(target=self._run, args=(operation, compiled), daemon=True,
                                      name=f"shopify-bulk-{number}")
            self._threads.append(thread)
            thread.start()
        return created, []

    def wait(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _roots(self, compiled: BulkQuery) -> tuple[list[Any], Any]:
        args = compiled.arguments
        search = parse_search(args.get("query"))
        reverse = bool(args.get("reverse"))
        if compiled.root == "orders":
            orders, _, _ = find_orders(self.store, search, args.get("sortKey") or "ID", reverse, None, None)
            return orders, self.renderer.order
        variants, _ = find_variants(self.store.variants, search, args.get("sortKey") or "ID", reverse, None, None)
        return variants, self.renderer.variant

    def _run(self, operation: BulkOperation, compiled: BulkQuery) -> None:
        operation.status = "RUNNING"
        status = "COMPLETED"
        try:
            roots, render = self._roots(compiled)
            with operation.path.open("w", encoding="utf-8", newline="\n") as out:
                self._write(operation, compiled, roots, render, out)
        except Exception:  # the thread's edge: Shopify reports a failed run, it does not crash
            log.exception("bulk operation %s failed", operation.gid)
            operation.error_code = "INTERNAL_SERVER_ERROR"
            status = "FAILED"
        operation.file_size = operation.path.stat().st_size if operation.path.exists() else 0
        operation.completed_at = datetime.now(UTC).replace(microsecond=0)
        operation.status = status  # last, so a poller seeing it done sees every count too

    def _write(self, operation: BulkOperation, compiled: BulkQuery, roots: list[Any], render: Any,
               out: TextIO) -> None:
        rng = random.Random(operation.number)  # the held-back pattern replays for a given operation
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        held: list[str] = []
        parents_held, flush_after = 0, rng.randint(2, 5)
        project = _projector(compiled.plan)
        for item in roots:
            children: list[dict[str, Any]] = []
            with self.store.lock:  # an edit between runs must not land halfway through a line
                line = dumps(project(render(item), children))
            out.write(line + "\n")
            operation.root_object_count += 1
            operation.object_count += 1 + len(children)
            child_lines = [dumps(child) + "\n" for child in children]
            if operation.group_objects:
                out.writelines(child_lines)
                continue
            held += child_lines
            parents_held += 1
            if parents_held >= flush_after:
                out.writelines(held)
                held, parents_held, flush_after = [], 0, rng.randint(2, 5)
        out.writelines(held)
