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


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Array):
        return node.items
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    return ()


def walk(node: Node) -> list[Node]:
    """Every node, parents before children, left to right — with a stack, not recursion: a flat
    sum of a thousand terms is a thousand levels deep on its left side."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(children(n)))
    return out


def references(node: Node) -> list[Ref]:
    """Every Id the expression names (for unknown-Id and cycle checks before anything is fetched)."""
    return [n for n in walk(node) if isinstance(n, Ref)]


def calls(node: Node) -> list[Call]:
    """Every function call in the expression (alarms refuse SEARCH, METRICS() needs the request)."""
    return [n for n in walk(node) if isinstance(n, Call)]
