"""One GetMetricData request (or one metric-math alarm) evaluated: check every expression before
fetching anything (syntax, unknown Ids, cycles, unknown functions), then compute each query once,
on demand, sharing results between the expressions that name them.

Data comes in through `Sources` (callables), so this module does no I/O of its own: the catalogue
query in particular is passed in, to be scoped to the caller's account by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.math import insights
from eucadb.services.cloudwatch.math.errors import ExpressionError, validation
from eucadb.services.cloudwatch.math.functions import FUNCTIONS, NOT_SERVED
from eucadb.services.cloudwatch.math.labels import label_for
from eucadb.services.cloudwatch.math.nodes import Array, Binary, Call, Node, Number, Ref, Text, Unary, Word, calls, references
from eucadb.services.cloudwatch.math.ops import UNARY, Dropped, binary, elementwise
from eucadb.services.cloudwatch.math.parser import parse
from eucadb.services.cloudwatch.math.search import find, parse_search
from eucadb.services.cloudwatch.math.series import Series, Value, Window, kind

ARITHMETIC_ERROR = {"Code": "ArithmeticError",
                    "Value": "One or more data-points have been dropped due to non-numeric values (NaN, -Infinite, +Infinite)"}
MAX_SEARCH_SERIES = 500   # "A graph can display as many as 500 time series" / Insights' 500 limit
BAND = "ANOMALY_DETECTION_BAND"
DEFAULT_BAND_WIDTH = 2.0
MAX_METRICS_EXCEEDED = {"Code": "MaxMetricsExceeded", "Value": "Maximum allowed metrics exceeded"}


@dataclass(frozen=True)
class Metric:
    """A validated MetricStat: what to fetch."""
    key: SeriesKey
    stat: str
    period: int
    unit: str | None = None


@dataclass(frozen=True)
class Query:
    id: str
    metric: Metric | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool = True
    period: int | None = None


@dataclass(frozen=True)
class Sources:
    """Where data comes from. `series(metric)` is one MetricStat's datapoints; `catalogue(namespace)`
    lists the caller's series (for SEARCH and Metrics Insights); `buckets(key, period)` gives
    per-period (start, count, sum, min, max) for Metrics Insights aggregation."""
    series: Callable[[Metric], dict[int, float]]
    catalogue: Callable[[str | None], Iterable[SeriesKey]]
    buckets: Callable[[SeriesKey, int], list[tuple[int, float, float, float, float]]]
    # (upper, lower) of the metric's anomaly detector at the given times, k standard deviations wide
    band: Callable[[Metric, list[int], float], tuple[dict[int, float], dict[int, float]]] = (
        lambda m, grid, k: ({}, {}))


@dataclass
class Result:
    id: str
    label: str
    points: list[tuple[int, float]]
    messages: list[dict] = field(default_factory=list)


def metric_props(m: Metric) -> dict[str, str]:
    props = {"MetricName": m.key.metric_name, "Namespace": m.key.namespace, "Stat": m.stat, "Period": str(m.period)}
    props.update({f"Dim.{n}": v for n, v in m.key.dimensions})
    return props


class Engine:
    def __init__(self, queries: list[Query], window: Window, sources: Sources):
        self.queries = {q.id: q for q in queries}
        self.order = [q.id for q in queries]
        self.window, self.sources = window, sources
        self.trees: dict[str, Node | insights.Insights] = {}
        self.cache: dict[str, Value] = {}
        self.dropped: dict[str, Dropped] = {}
        self.messages: list[dict] = []
        periods = [q.metric.period for q in queries if q.metric]
        self.default_period = min(periods) if periods else 60
        self._check()

    # --- static checks ------------------------------------------------------------------------

    def _check(self) -> None:
        for q in self.queries.values():
            if q.expression is None:
                continue
            try:
                if insights.is_query(q.expression):
                    self.trees[q.id] = insights.parse(q.expression)
                    continue
                tree = parse(q.expression)
                for ref in references(tree):
                    if ref.id not in self.queries:
                        raise ExpressionError(f"Unknown metric or expression Id {ref.id}", ref.position)
                for call in calls(tree):
                    if call.name == BAND:
                        self._check_band(call)
                        continue
                    spec = FUNCTIONS.get(call.name)
                    if call.name in NOT_SERVED:
                        raise ExpressionError(f"{call.name} is not available: {NOT_SERVED[call.name]}",
                                              call.position)
                    if spec is None:
                        raise ExpressionError(f"Unrecognized function {call.name}", call.position)
                    if not spec.min_args <= len(call.args) <= spec.max_args:
                        wanted = (str(spec.min_args) if spec.min_args == spec.max_args
                                  else f"{spec.min_args} to {spec.max_args}")
                        raise ExpressionError(f"{call.name} expects {wanted} argument(s), got {len(call.args)}",
                                              call.position)
                    if call.name == "SEARCH" and call.args and isinstance(call.args[0], Text):
                        parse_search(call.args[0].value)
            except ExpressionError as exc:
                raise exc.in_query(q.id) from None
            self.trees[q.id] = tree
        if sum(isinstance(t, insights.Insights) for t in self.trees.values()) > 1:
            # "If you include a Metrics Insights query, each GetMetricData operation can include only
            # one query." (GetMetricData API reference)
            raise validation("A GetMetricData request can include only one Metrics Insights query.")
        self._check_cycles()

    def _check_band(self, call: Call) -> None:
        """ANOMALY_DETECTION_BAND(m [, k]): m the Id of a MetricStat query (single-metric detectors
        only), k a positive number of standard deviations (default 2, as the console's)."""
        if not 1 <= len(call.args) <= 2:
            raise ExpressionError(f"{BAND} expects 1 to 2 argument(s), got {len(call.args)}", call.position)
        first = call.args[0]
        if not isinstance(first, Ref) or self.queries[first.id].metric is None:
            raise ExpressionError(f"{BAND} needs the Id of a MetricStat query (anomaly detectors of metric "
                                  "math expressions are not served)", call.position)
        if len(call.args) == 2 and not (isinstance(call.args[1], Number) and call.args[1].value > 0):
            raise ExpressionError(f"The second argument of {BAND} must be a positive number of standard "
                                  "deviations", call.position)

    def _refs(self, qid: str) -> list[str]:
        tree = self.trees.get(qid)
        if tree is None or isinstance(tree, insights.Insights):
            return []
        return list(dict.fromkeys(r.id for r in references(tree)))

    def _check_cycles(self) -> None:
        """Depth-first over the Id graph without recursion (500 queries may chain), keeping the
        post-order: every query after the ones it names, the order evaluation follows."""
        state: dict[str, int] = {}   # 1 = on the current path, 2 = done
        self.topo: list[str] = []
        for root in self.order:
            if root in state:
                continue
            path, stack = [root], [iter(self._refs(root))]
            state[root] = 1
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    done = path.pop()
                    state[done] = 2
                    self.topo.append(done)
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    raise validation(f"Error in expression {cycle[0]}: Circular dependency between queries: "
                                     f"{' -> '.join(cycle)}")
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(self._refs(nxt)))

    # --- evaluation ---------------------------------------------------------------------------

    def value(self, qid: str) -> Value:
        if qid not in self.cache:
            self.cache[qid] = self._compute(self.queries[qid])
        return self.cache[qid]

    def _compute(self, q: Query) -> Value:
        if q.metric is not None:
            return Series(self.sources.series(q.metric), q.label or q.metric.key.metric_name, q.metric.period,
                          metric_props(q.metric))
        tree = self.trees[q.id]
        ctx = _Context(self, q)
        self.dropped[q.id] = ctx.dropped
        try:
            if isinstance(tree, insights.Insights):
                if q.period is None:
                    raise ExpressionError("A Metrics Insights query needs the Period of its MetricDataQuery")
                found = insights.run(tree, q.period, self.sources)
                return self._limit(found) if isinstance(found, list) else found
            return ctx.eval(tree)
        except ExpressionError as exc:
            raise exc.in_query(q.id) from None
        except RecursionError:
            raise ExpressionError("The expression is too complex to evaluate").in_query(q.id) from None

    def _limit(self, array: list[Series]) -> list[Series]:
        if len(array) > MAX_SEARCH_SERIES:
            if MAX_METRICS_EXCEEDED not in self.messages:
                self.messages.append(MAX_METRICS_EXCEEDED)
            return array[:MAX_SEARCH_SERIES]
        return array

    def result(self, qid: str) -> list[Result]:
        """The MetricDataResults of one query: one per series (several for an array)."""
        q = self.queries[qid]
        value = self.value(qid)
        if isinstance(value, Series):
            members, in_array = [value], False
        elif isinstance(value, list):
            members, in_array = value, True
        else:
            raise validation(f"Error in expression {qid}: The expression must return a time series or an "
                             f"array of time series, not a {kind(value)}")
        dropped = self.dropped.get(qid) or Dropped()
        # A non-finite value can still come from scalars (TIME_SERIES(1e308 * 10), FILL(m1, SUM(empty))):
        # it is dropped here, so no result carries NaN or Infinity to a strict JSON parser.
        members = [s.with_points(dropped.keep(s.points)) for s in members]
        messages = [ARITHMETIC_ERROR] if dropped.count else []
        fallback = q.label or (q.metric.key.metric_name if q.metric else q.id)
        return [Result(qid, label_for(q.label if q.expression else None, fallback, s, in_array)
                       if q.expression else fallback, s.sorted(), list(messages)) for s in members]

    def results(self) -> list[Result]:
        """Every ReturnData query's results, in request order. What they need is computed first, in
        dependency order, so evaluating a long chain of Ids never nests one call per link."""
        needed, todo = set(), [qid for qid in self.order if self.queries[qid].return_data]
        while todo:
            qid = todo.pop()
            if qid not in needed:
                needed.add(qid)
                todo.extend(self._refs(qid))
        for qid in self.topo:
            if qid in needed:
                self.value(qid)
        return [r for qid in self.order if self.queries[qid].return_data for r in self.result(qid)]


class _Context:
    """What functions see while one expression is evaluated."""

    def __init__(self, engine: Engine, query: Query):
        self.engine, self.query = engine, query
        self.window = engine.window
        self.period = query.period or engine.default_period
        self.dropped = Dropped()

    def metrics(self, contains: str) -> list[Series]:
        """"returns all the metrics in the request. Math expressions aren't included." — with a
        string, only those whose Id contains it."""
        return [self.engine.value(qid) for qid in self.engine.order   # type: ignore[misc]
                if self.engine.queries[qid].metric is not None and contains in qid]

    def search(self, query: str, stat: str, period: int) -> list[Series]:
        keys = find(parse_search(query), self.engine.sources.catalogue)
        keys = keys[:MAX_SEARCH_SERIES + 1]
        out = []
        for key in keys:
            m = Metric(key, stat, period)
            label = " ".join([v for _, v in key.dimensions] + [key.metric_name])
            out.append(Series(self.engine.sources.series(m), label, period, metric_props(m)))
        return self.engine._limit(out)

    def eval(self, node: Node) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Text):
            return node.value
        if isinstance(node, Word):
            return node
        if isinstance(node, Ref):
            return self.engine.value(node.id)
        if isinstance(node, Array):
            out: list[Series] = []
            for item in node.items:
                v = self.eval(item)
                if isinstance(v, Series):
                    out.append(v)
                elif isinstance(v, list):
                    out.extend(v)
                else:
                    raise ExpressionError(f"An array holds time series only, not a {kind(v)}")
            return out
        if isinstance(node, Unary):
            return elementwise(self.eval(node.operand), UNARY[node.op], node.op, self.dropped)
        if isinstance(node, Binary):
            # Down the left spine without recursion (the parser builds a + b + c + … left-deep).
            spine: list[Binary] = []
            while isinstance(node, Binary):
                spine.append(node)
                node = node.left
            value = self.eval(node)
            for b in reversed(spine):
                value = binary(b.op, value, self.eval(b.right), self.dropped)
            return value
        assert isinstance(node, Call)
        if node.name == BAND:
            return self.band(node)
        return FUNCTIONS[node.name].run(self, [self.eval(a) for a in node.args])

    def band(self, node: Call) -> list[Series]:
        """The band of the detector of a MetricStat query: [upper, lower] (what band alarms read,
        alarm_math.py), one point per period of the query's window (sources.band)."""
        ref = node.args[0]
        assert isinstance(ref, Ref)
        metric = self.engine.queries[ref.id].metric
        assert metric is not None
        k = node.args[1].value if len(node.args) == 2 and isinstance(node.args[1], Number) else DEFAULT_BAND_WIDTH
        found = self.engine.sources.band(metric, list(self.window.grid(metric.period)), k)
        base = metric_props(metric)
        name = self.engine.queries[ref.id].label or metric.key.metric_name
        return [Series(points, f"{name} {side}", metric.period, base)
                for side, points in zip(("Upper", "Lower"), found)]
