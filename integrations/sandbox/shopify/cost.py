"""Shopify's query cost and its leaky bucket.

Requested cost is computed before execution from `first` arguments: an object costs 1,
a scalar or enum 0, a connection 2 + first x (1 + its node's cost), nested connections
multiplying. Actual cost is the same walk over the returned data, counting the nodes
that came back; the difference goes back into the bucket. A mutation costs 10.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast,
)

MAX_QUERY_COST = 1000
MUTATION_COST = 10

_Composite = GraphQLObjectType | GraphQLInterfaceType


class CostModel:
    """Requested and actual costs of one operation against one schema."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any]):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def requested(self, operation: OperationDefinitionNode) -> int:
        if operation.operation is OperationType.MUTATION:
            return MUTATION_COST * len(operation.selection_set.selections)
        return self._cost(operation.selection_set, self.schema.query_type, None, static=True)

    def actual(self, operation: OperationDefinitionNode, data: dict[str, Any] | None) -> int:
        if operation.operation is OperationType.MUTATION:
            return self.requested(operation)
        return self._cost(operation.selection_set, self.schema.query_type, data, static=False)

    def _fields(self, selection_set: SelectionSetNode, parent: _Composite) -> Iterator[tuple[FieldNode, GraphQLField]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if not selection.name.value.startswith("__"):
                    yield selection, parent.fields[selection.name.value]
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                condition, selections = fragment.type_condition, fragment.selection_set
            elif isinstance(selection, InlineFragmentNode):
                condition, selections = selection.type_condition, selection.selection_set
            else:
                continue
            inner = self.schema.type_map[condition.name.value] if condition else parent
            yield from self._fields(selections, inner)

    def _limit(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                return value_from_ast(argument.value, GraphQLInt, self.variables) or 0
        return 0

    def _cost(self, selection_set: SelectionSetNode, parent: _Composite, data: Any, static: bool) -> int:
        total = 0
        for node, field in self._fields(selection_set, parent):
            named = get_named_type(field.type)
            if is_leaf_type(named) or node.selection_set is None:
                continue
            value = None if static or not isinstance(data, dict) else data.get((node.alias or node.name).value)
            if named.name.endswith("Connection"):
                total += self._connection(node, named, value, static)
            elif static:
                total += 1 + self._cost(node.selection_set, named, None, True)
            else:
                # Lists of plain objects (risk assessments) count once, as in the requested cost.
                sample = value[0] if isinstance(value, list) and value else value
                total += 1 + (self._cost(node.selection_set, named, sample, False) if isinstance(sample, dict) else 0)
        return total

    def _connection(self, node: FieldNode, connection: GraphQLObjectType, value: Any, static: bool) -> int:
        node_type = get_named_type(connection.fields["nodes"].type)
        best = 0
        for selection_set, pick in self._node_selections(node.selection_set, connection):
            if static:
                each = 1 + self._cost(selection_set, node_type, None, True)
                best = max(best, self._limit(node) * each)
            elif isinstance(value, dict):
                best = max(best, sum(1 + self._cost(selection_set, node_type, n, False) for n in pick(value)))
        return 2 + best

    def _node_selections(self, selection_set: SelectionSetNode, connection: GraphQLObjectType
                         ) -> Iterator[tuple[SelectionSetNode, Callable[[dict[str, Any]], list[Any]]]]:
        """Each `nodes { … }` and `edges { node { … } }` under a connection, with how to read its nodes."""
        for node, _ in self._fields(selection_set, connection):
            key = (node.alias or node.name).value
            if node.name.value == "nodes" and node.selection_set:
                yield node.selection_set, lambda v, k=key: v.get(k) or []
            elif node.name.value == "edges" and node.selection_set:
                edge_type = get_named_type(connection.fields["edges"].type)
                for inner, _ in self._fields(node.selection_set, edge_type):
                    if inner.name.value == "node" and inner.selection_set:
                        inner_key = (inner.alias or inner.name).value
                        yield inner.selection_set, lambda v, k=key, n=inner_key: [
                            e[n] for e in v.get(k) or [] if isinstance(e, dict)]


class LeakyBucket:
    """Shopify's per-app query budget: `maximum` points, refilled at `restore_rate` a second."""

    def __init__(self, maximum: float, restore_rate: float, clock: Callable[[], float] = time.monotonic):
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._clock = clock
        self._level = self.maximum
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.maximum, self._level + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost: int) -> bool:
        """Spends `cost` points if the bucket holds them; False (and nothing spent) if not."""
        with self._lock:
            self._refill()
            if cost > self._level:
                return False
            self._level -= cost
            return True

    def give_back(self, points: int) -> None:
        with self._lock:
            self._refill()
            self._level = min(self.maximum, self._level + points)

    def status(self) -> dict[str, float | int]:
        with self._lock:
            self._refill()
            return {"maximumAvailable": self.maximum, "currentlyAvailable": math.floor(self._level),
                    "restoreRate": self.restore_rate}
