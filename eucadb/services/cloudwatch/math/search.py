"""SEARCH('{Namespace, Dim, ...} terms', 'Stat', period) over the metric catalogue.

Follows "CloudWatch search expression syntax" (search-expression-syntax.html): an optional metric
schema in braces (the namespace and the exact set of dimension names), then search terms —
partial (token) matches, "exact" matches, Property=value designators (MetricName, Namespace or a
dimension name), AND (also implicit), OR, NOT and parentheses. Tokens are made as AWS describes:
camel-case humps, a run of digits and every non-alphanumeric delimiter start a new token; partial
matches compare consecutive tokens case-insensitively (AWS is case-sensitive for composite tokens;
that subtlety is not reproduced).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Union

from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.math.errors import ExpressionError

MAX_QUERY = 1024   # "The maximum search expression query size is 1024 characters"
_HUMPS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def subtokens(text: str) -> list[str]:
    """`Project2-trial333` → project, 2, trial, 333 (lower case)."""
    return [m.group().lower() for piece in re.split(r"[^A-Za-z0-9]+", text) for m in _HUMPS.finditer(piece)]


def _runs(text: str) -> set[str]:
    parts = subtokens(text)
    return {"".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}


@dataclass(frozen=True)
class Term:
    value: str
    exact: bool
    prop: str | None = None   # MetricName, Namespace or a dimension name


@dataclass(frozen=True)
class Not:
    inner: "Expr"


@dataclass(frozen=True)
class Both:
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Either:
    left: "Expr"
    right: "Expr"


Expr = Union[Term, Not, Both, Either]


@dataclass(frozen=True)
class Search:
    namespace: str | None
    dimensions: frozenset[str] | None
    terms: Expr | None

    def matches(self, key: SeriesKey) -> bool:
        if self.namespace is not None and key.namespace != self.namespace:
            return False
        if self.dimensions is not None and frozenset(n for n, _ in key.dimensions) != self.dimensions:
            return False
        return self.terms is None or _eval(self.terms, key)


def _fields(key: SeriesKey, prop: str | None) -> list[str]:
    if prop is None:
        return [key.namespace, key.metric_name, *(n for n, _ in key.dimensions), *(v for _, v in key.dimensions)]
    if prop == "MetricName":
        return [key.metric_name]
    if prop == "Namespace":
        return [key.namespace]
    return [v for n, v in key.dimensions if n == prop]


def _term_matches(term: Term, key: SeriesKey) -> bool:
    fields = _fields(key, term.prop)
    if term.exact:
        return term.value in fields
    wanted = "".join(subtokens(term.value))
    return bool(wanted) and any(wanted in _runs(f) for f in fields)


def _eval(e: Expr, key: SeriesKey) -> bool:
    if isinstance(e, Term):
        return _term_matches(e, key)
    if isinstance(e, Not):
        return not _eval(e.inner, key)
    if isinstance(e, Both):
        return _eval(e.left, key) and _eval(e.right, key)
    return _eval(e.left, key) or _eval(e.right, key)


_TOKEN = re.compile(r'\s+|(?P<p>[(){},=])|"(?P<q>(?:[^"\\]|\\.)*)"|(?P<w>[^\s(){},="]+)')


class _Parser:
    def __init__(self, text: str):
        self.items: list[tuple[str, str]] = []   # (kind: punct|quoted|word, text)
        i = 0
        while i < len(text):
            m = _TOKEN.match(text, i)
            if m is None:
                raise ExpressionError(f"Invalid search expression: unterminated quote at character {i + 1}")
            if m.group("p"):
                self.items.append(("punct", m.group("p")))
            elif m.group("q") is not None:
                self.items.append(("quoted", re.sub(r"\\(.)", r"\1", m.group("q"))))
            elif m.group("w"):
                self.items.append(("word", m.group("w")))
            i = m.end()
        self.i = 0

    def peek(self, kind: str | None = None, text: str | None = None) -> bool:
        if self.i >= len(self.items):
            return False
        k, t = self.items[self.i]
        return (kind is None or k == kind) and (text is None or t == text)

    def take(self) -> tuple[str, str]:
        item = self.items[self.i]
        self.i += 1
        return item

    def fail(self, wanted: str) -> ExpressionError:
        got = repr(self.items[self.i][1]) if self.i < len(self.items) else "the end"
        return ExpressionError(f"Invalid search expression: {wanted}, found {got}")

    def parse(self) -> Search:
        namespace, dims = None, None
        if self.peek("punct", "{"):
            self.take()
            names = [self.name()]
            while self.peek("punct", ","):
                self.take()
                names.append(self.name())
            if not self.peek("punct", "}"):
                raise self.fail("expected '}' closing the metric schema")
            self.take()
            namespace, dims = names[0], frozenset(names[1:])
            if self.peek("punct", ","):
                self.take()
        terms = self.either() if self.i < len(self.items) else None
        if self.i < len(self.items):
            raise self.fail("expected a search term")
        if namespace is None and terms is None:
            raise ExpressionError("Invalid search expression: give a metric schema, a search term or both")
        return Search(namespace, dims, terms)

    def name(self) -> str:
        if self.peek("quoted") or self.peek("word"):
            return self.take()[1]
        raise self.fail("expected a namespace or dimension name")

    def either(self) -> Expr:
        left = self.both()
        while self.peek("word", "OR"):
            self.take()
            left = Either(left, self.both())
        return left

    def both(self) -> Expr:
        left = self.negation()
        while self.i < len(self.items) and not self.peek("word", "OR") and not self.peek("punct", ")"):
            if self.peek("word", "AND"):
                self.take()
            left = Both(left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.peek("word", "NOT"):
            self.take()
            return Not(self.negation())
        return self.atom()

    def atom(self) -> Expr:
        if self.peek("punct", "("):
            self.take()
            inner = self.either()
            if not self.peek("punct", ")"):
                raise self.fail("expected ')'")
            self.take()
            return inner
        if self.peek("quoted"):
            return Term(self.take()[1], exact=True)
        if self.peek("word"):
            word = self.take()[1]
            if self.peek("punct", "="):
                self.take()
                if self.peek("quoted"):
                    return Term(self.take()[1], exact=True, prop=word)
                if self.peek("word"):
                    return Term(self.take()[1], exact=False, prop=word)
                raise self.fail(f"expected a value after {word}=")
            return Term(word, exact=False)
        raise self.fail("expected a search term")


def parse_search(text: str) -> Search:
    if len(text) > MAX_QUERY:
        raise ExpressionError(f"The search expression is longer than {MAX_QUERY} characters")
    return _Parser(text).parse()


def find(search: Search, catalogue: Callable[[str | None], Iterable[SeriesKey]]) -> list[SeriesKey]:
    """Matching series, ordered by namespace, metric name and dimensions (AWS names no order; this
    one does not depend on when series were created); `catalogue(namespace)` lists the caller's
    series (the account's, once the catalogue is per account), narrowed to the schema's namespace."""
    return sorted(k for k in catalogue(search.namespace) if search.matches(k))
