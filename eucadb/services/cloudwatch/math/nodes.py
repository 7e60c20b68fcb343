"""The expression AST: what the parser builds and the evaluator walks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Ref:
    """The Id of another query of the request."""
    id: str
    position: int


@dataclass(frozen=True)
class Word:
    """A bare upper-case keyword argument: REPEAT, LINEAR, ASC, DESC, AVG (as SORT's function) ..."""
    name: str
    position: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple["Node", ...]
    position: int


@dataclass(frozen=True)
class Unary:
    op: str
    operand: "Node"


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Node"
    right: "Node"
    position: int


@dataclass(frozen=True)
class Array:
    items: tuple["Node", ...]


Node = Union[Number, Text, Ref, Word, Call, Unary, Binary, Array]


def references(node: Node) -> list[Ref]:
    """Every Id the expression names (for unknown-Id and cycle checks before anything is fetched)."""
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, Call):
        return [r for a in node.args for r in references(a)]
    if isinstance(node, Array):
        return [r for a in node.items for r in references(a)]
    if isinstance(node, Unary):
        return references(node.operand)
    if isinstance(node, Binary):
        return references(node.left) + references(node.right)
    return []


def calls(node: Node) -> list[Call]:
    """Every function call in the expression (alarms refuse SEARCH, METRICS() needs the request)."""
    if isinstance(node, Call):
        return [node] + [c for a in node.args for c in calls(a)]
    if isinstance(node, Array):
        return [c for a in node.items for c in calls(a)]
    if isinstance(node, Unary):
        return calls(node.operand)
    if isinstance(node, Binary):
        return calls(node.left) + calls(node.right)
    return []
