"""A Metrics Insights subset: SELECT FUNC(metric) FROM namespace | SCHEMA(namespace, dim, ...)
[WHERE dim = 'v' | dim != 'v' [AND ...]] [GROUP BY dim, ...] [ORDER BY FUNC() [ASC|DESC]] [LIMIT n].

As "Metrics Insights query components and syntax" (cloudwatch-metrics-insights-querylanguage.html)
describes it: keywords are case-insensitive, identifiers case-sensitive ("double quotes" for names
with other characters, 'single quotes' for label values); FUNC is AVG, COUNT, MAX, MIN or SUM over
all observations in each period; SCHEMA matches the exact dimension set; GROUP BY gives one series
per value combination (a missing key groups as `Other`), ordered alphabetically unless ORDER BY;
at most 500 series. Not served: the 3-hour limit AWS applies to Insights data, OR, and the
`LIKE`-style operators of later versions.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.math.errors import ExpressionError
from eucadb.services.cloudwatch.math.series import Series

if TYPE_CHECKING:
    from eucadb.services.cloudwatch.math.evaluate import Sources

FUNCTIONS = ("AVG", "COUNT", "MAX", "MIN", "SUM")
MAX_LIMIT = 500
_TOKEN = re.compile(r"""\s+|(?P<p>!=|[(),=*])|"(?P<d>(?:[^"\\]|\\.)*)"|'(?P<s>(?:[^'\\]|\\.)*)'|(?P<w>[A-Za-z0-9_.\-/:]+)""")


_SELECT = re.compile(r"\s*SELECT\b", re.IGNORECASE)


def is_query(expression: str) -> bool:
    """A Metrics Insights query rather than a math expression: it starts with SELECT (any case)."""
    return _SELECT.match(expression) is not None


@dataclass(frozen=True)
class Insights:
    function: str
    metric: str
    namespace: str
    schema: frozenset[str] | None          # None: FROM namespace (any dimensions)
    where: tuple[tuple[str, str, str], ...]  # (key, '=' | '!=', value)
    group_by: tuple[str, ...]
    order_by: tuple[str, bool] | None      # (function, descending)
    limit: int


class _Parser:
    def __init__(self, text: str):
        self.items: list[tuple[str, str]] = []
        i = 0
        while i < len(text):
            m = _TOKEN.match(text, i)
            if m is None:
                raise ExpressionError(f"Invalid Metrics Insights query: unexpected character {text[i]!r}", i)
            for kind in ("p", "d", "s", "w"):
                if m.group(kind) is not None:
                    value = m.group(kind)
                    self.items.append((kind, re.sub(r"\\(.)", r"\1", value) if kind in "ds" else value))
                    break
            i = m.end()
        self.i = 0

    def _peek_word(self, *words: str) -> bool:
        return self.i < len(self.items) and self.items[self.i][0] == "w" and self.items[self.i][1].upper() in words

    def _peek(self, punct: str) -> bool:
        return self.i < len(self.items) and self.items[self.i] == ("p", punct)

    def fail(self, wanted: str) -> ExpressionError:
        got = repr(self.items[self.i][1]) if self.i < len(self.items) else "the end of the query"
        return ExpressionError(f"Invalid Metrics Insights query: expected {wanted}, found {got}")

    def keyword(self, *words: str) -> str:
        if not self._peek_word(*words):
            raise self.fail(" or ".join(words))
        self.i += 1
        return self.items[self.i - 1][1].upper()

    def punct(self, p: str) -> None:
        if not self._peek(p):
            raise self.fail(f"'{p}'")
        self.i += 1

    def name(self) -> str:
        if self.i < len(self.items) and self.items[self.i][0] in ("w", "d"):
            self.i += 1
            return self.items[self.i - 1][1]
        raise self.fail("a name")

    def value(self) -> str:
        if self.i < len(self.items) and self.items[self.i][0] == "s":
            self.i += 1
            return self.items[self.i - 1][1]
        raise self.fail("a 'single-quoted' label value")

    def parse(self) -> Insights:
        self.keyword("SELECT")
        function = self.keyword(*FUNCTIONS)
        self.punct("(")
        metric = self.name()
        self.punct(")")
        self.keyword("FROM")
        schema = None
        if self._peek_word("SCHEMA"):
            self.i += 1
            self.punct("(")
            namespace = self.name()
            dims = []
            while self._peek(","):
                self.i += 1
                dims.append(self.name())
            self.punct(")")
            schema = frozenset(dims)
        else:
            namespace = self.name()
        where: list[tuple[str, str, str]] = []
        if self._peek_word("WHERE"):
            self.i += 1
            where.append(self.condition())
            while self._peek_word("AND"):
                self.i += 1
                where.append(self.condition())
        group: list[str] = []
        if self._peek_word("GROUP"):
            self.i += 1
            self.keyword("BY")
            group.append(self.name())
            while self._peek(","):
                self.i += 1
                group.append(self.name())
        order = None
        if self._peek_word("ORDER"):
            self.i += 1
            self.keyword("BY")
            f = self.keyword(*FUNCTIONS)
            self.punct("(")
            self.punct(")")
            descending = self._peek_word("ASC", "DESC") and self.keyword("ASC", "DESC") == "DESC"
            order = (f, bool(descending))
        limit = MAX_LIMIT
        if self._peek_word("LIMIT"):
            self.i += 1
            if self.i >= len(self.items) or not self.items[self.i][1].isdigit():
                raise self.fail("a whole number after LIMIT")
            limit = int(self.items[self.i][1])
            self.i += 1
            if not 1 <= limit <= MAX_LIMIT:
                raise ExpressionError(f"Invalid Metrics Insights query: LIMIT must be between 1 and {MAX_LIMIT}")
        if self.i < len(self.items):
            raise self.fail("the end of the query")
        return Insights(function, metric, namespace, schema, tuple(where), tuple(group), order, limit)

    def condition(self) -> tuple[str, str, str]:
        key = self.name()
        if self._peek("="):
            op = "="
        elif self._peek("!="):
            op = "!="
        else:
            raise self.fail("= or !=")
        self.i += 1
        return key, op, self.value()


def parse(text: str) -> Insights:
    return _Parser(text).parse()


def _matches(q: Insights, key: SeriesKey) -> bool:
    if key.namespace != q.namespace or key.metric_name != q.metric:
        return False
    dims = dict(key.dimensions)
    if q.schema is not None and frozenset(dims) != q.schema:
        return False
    return all((dims.get(k) == v) == (op == "=") for k, op, v in q.where)


def _aggregate(function: str, count: float, total: float, low: float, high: float) -> float:
    return {"AVG": total / count if count else math.nan, "COUNT": count, "SUM": total, "MIN": low, "MAX": high}[function]


ORDER = {"AVG": lambda v: math.fsum(v) / len(v), "COUNT": lambda v: float(len(v)), "SUM": math.fsum,
         "MIN": min, "MAX": max}


def run(q: Insights, period: int, sources: "Sources") -> Series | list[Series]:
    """The query's series: one (no GROUP BY) or one per group."""
    groups: dict[tuple[str, ...], dict[int, list[float]]] = {}
    for key in sources.catalogue(q.namespace):
        if not _matches(q, key):
            continue
        dims = dict(key.dimensions)
        acc = groups.setdefault(tuple(dims.get(g, "Other") for g in q.group_by), {})
        for start, count, total, low, high in sources.buckets(key, period):
            c = acc.setdefault(start, [0.0, 0.0, math.inf, -math.inf])
            c[0] += count
            c[1] += total
            c[2], c[3] = min(c[2], low), max(c[3], high)
    series = [Series({t: _aggregate(q.function, *c) for t, c in acc.items()}, " ".join(g), period,
                     {"MetricName": q.metric, "Namespace": q.namespace, "Stat": q.function})
              for g, acc in sorted(groups.items())]
    if not q.group_by:
        return series[0] if series else Series({}, "", period)
    if q.order_by is not None:
        f, descending = q.order_by
        ranked = [(ORDER[f](s.values()) if s.points else math.nan, i, s) for i, s in enumerate(series)]
        present = sorted((r for r in ranked if not math.isnan(r[0])), key=lambda r: (-r[0] if descending else r[0], r[1]))
        series = [s for _, _, s in present] + [s for v, _, s in ranked if math.isnan(v)]
    return series[:q.limit]
