"""The metric math engine without a database: each function against values computed by hand.

Expectations come from "Metric math syntax and functions" (CloudWatch User Guide, page
using-metric-math.html, quoted as [doc]) — its worked examples are used verbatim where it has them —
and from search-expression-syntax.html and cloudwatch-metrics-insights-querylanguage.html for
SEARCH and Metrics Insights. Choices the docs leave open are marked "(choice)".
"""
from __future__ import annotations

import math

import pytest

from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.math.evaluate import Engine, Metric, Query, Sources
from eucadb.services.cloudwatch.math.lexer import Kind, tokenize
from eucadb.services.cloudwatch.math.nodes import Binary, Number, Ref, Unary
from eucadb.services.cloudwatch.math.parser import parse
from eucadb.services.cloudwatch.math.search import parse_search, subtokens
from eucadb.services.cloudwatch.math.series import Window

P = 60
WINDOW = Window(0, 5 * P)   # periods at 0, 60, 120, 180, 240
KEYS = {name: SeriesKey.of("App", name, [{"Name": "Host", "Value": host}])
        for name, host in (("a", "h1"), ("b", "h2"), ("c", "h3"))}


def series(*values):
    """[30, None, 20] → {0: 30, 120: 20}: None is a period with no datapoint ("-" in [doc])."""
    return {i * P: float(v) for i, v in enumerate(values) if v is not None}


def run(expression: str, period: int | None = None, **data):
    """Evaluate `expression` as query e1 over MetricStat queries named after `data` (m-prefixed Ids:
    a → ma); returns the result as {label: [values in time order with None for gaps]}."""
    data = {k: v if isinstance(v, dict) else series(*v) for k, v in data.items()}
    catalogue = [SeriesKey.of("App", name, [{"Name": "Host", "Value": f"h{i}"}]) for i, name in enumerate(data, 1)]
    by_name = dict(zip(data, catalogue))
    queries = [Query("m" + name, Metric(by_name[name], "Sum", P), return_data=False) for name in data]
    queries.append(Query("e1", expression=expression, period=period))
    points = {by_name[n]: pts for n, pts in data.items()}
    sources = Sources(series=lambda m: dict(points.get(m.key, {})), catalogue=lambda ns: list(catalogue),
                      buckets=lambda k, p: [(t, 2.0, 2 * v, v - 1, v + 1) for t, v in points.get(k, {}).items()])
    results = Engine(queries, WINDOW, sources).results()
    grid = range(0, WINDOW.end, P)
    return {r.label: [dict(r.points).get(t) for t in grid] for r in results}


def one(expression: str, **data):
    (values,) = run(expression, **data).values()
    return values


# --- lexer and parser ---------------------------------------------------------------------------

def test_tokens_of_ids_names_numbers_strings_operators():
    toks = tokenize("FILL(m1, 1.5e2) >= 'x y' AND !e_2")
    assert [(t.kind, t.text) for t in toks] == [
        (Kind.NAME, "FILL"), (Kind.OP, "("), (Kind.ID, "m1"), (Kind.OP, ","), (Kind.NUMBER, "1.5e2"),
        (Kind.OP, ")"), (Kind.OP, ">="), (Kind.STRING, "x y"), (Kind.OP, "&&"), (Kind.OP, "!"), (Kind.ID, "e_2"),
        (Kind.END, "")]


def test_precedence_power_over_unary_minus_over_product_over_sum_over_comparison():
    assert parse("-2^2") == Unary("-", Binary("^", Number(2.0), Number(2.0), 2))
    tree = parse("m1 + m2 * 3 > 4 || m1")
    assert tree.op == "||" and tree.left.op == ">" and tree.left.left.op == "+"
    assert tree.left.left.right == Binary("*", Ref("m2", 5), Number(3.0), 8)
    assert parse("2^3^2") == Binary("^", Number(2.0), Binary("^", Number(3.0), Number(2.0), 3), 1)


@pytest.mark.parametrize("text,detail", [
    ("m1 +", "Syntax error: unexpected end of expression"),
    ("(m1", "expected ')'"),
    ("m1 m2", "expected an operator or the end of the expression"),
    ("SUM(m1,)", "Syntax error: unexpected ')'"),
    ("m1 # 2", "Unexpected character '#'"),
    ("'open", "Unterminated string"),
    ("", "The expression is empty"),
    ("-" * 70 + "m1", "nests deeper than 64"),
])
def test_syntax_errors_name_the_problem(text, detail):
    with pytest.raises(ApiError) as err:
        run(text or " ", a=[1])
    assert err.value.code == "ValidationError"
    assert err.value.message.startswith("Error in expression e1: ") and detail in err.value.message


@pytest.mark.parametrize("text,detail", [
    ("mz * 2", "Unknown metric or expression Id mz"),
    ("FOO(ma)", "Unrecognized function FOO"),
    ("sum(ma)", "Unrecognized function sum (function names are upper case)"),
    ("SUM(ma, ma)", "SUM expects 1 argument(s), got 2"),
    ("AVG(ma)", "must return a time series or an array of time series, not a scalar"),
    ("[ma] + [ma]", "cannot combine two arrays"),
    ("'x' * 2", "cannot be applied to a string"),
    ("FILL(ma, SIDEWAYS)", "FILL expects one of REPEAT, LINEAR"),
    ("SORT(METRICS(), MEDIAN, ASC)", "SORT expects one of AVG, MIN, MAX, SUM, STDDEV"),
    ("SEARCH('{App', 'Sum', 60)", "Invalid search expression"),
    ("SEARCH('{App}', 'Median', 60)", "The statistic 'Median' of SEARCH is not valid"),
    ("SEARCH('{App}', 'p99', 61)", "The period of SEARCH must be 1, 5, 10, 30 or a multiple of 60"),
    ("SEARCH('{App}', 'Sum')", "SEARCH expects 3 argument(s), got 2"),
])
def test_semantic_errors_are_validation_errors(text, detail):
    with pytest.raises(ApiError) as err:
        run(text, a=[1, 2])
    assert err.value.code == "ValidationError" and detail in err.value.message, err.value.message


def test_a_cycle_is_refused_before_anything_is_fetched():
    fetched = []
    sources = Sources(series=lambda m: fetched.append(m) or {}, catalogue=lambda ns: [], buckets=lambda k, p: [])
    with pytest.raises(ApiError) as err:
        Engine([Query("m1", Metric(KEYS["a"], "Sum", P)), Query("e1", expression="e2 + m1"),
                Query("e2", expression="e3 * 2"), Query("e3", expression="e1")], WINDOW, sources)
    assert err.value.code == "ValidationError"
    assert "Circular dependency between queries: e1 -> e2 -> e3 -> e1" in err.value.message
    assert fetched == []
    with pytest.raises(ApiError, match="e1 -> e1"):
        Engine([Query("e1", expression="e1 + 1")], WINDOW, sources)


# --- arithmetic ---------------------------------------------------------------------------------

def test_arithmetic_missing_counts_as_zero_and_division_by_zero_drops_the_point():
    # [doc] "Missing values in a time series are treated as 0. If the value of a data point causes a
    # function to attempt to divide by zero, the data point is dropped."
    assert one("ma + mb", a=[1, 2, None, 4], b=[10, None, 30, 40]) == [11, 2, 30, 44, None]
    assert one("ma - 2 * mb", a=[1, 2, None, 4], b=[10, None, 30, 40]) == [-19, 2, -60, -76, None]
    assert one("ma / mb", a=[6, 2, None, 4], b=[3, None, 30, 0]) == [2, None, 0, None, None]
    assert one("ma ^ 2 - -ma", a=[3, -2]) == [12, 2, None, None, None]
    assert one("PERIOD(ma) / 60 * ma", a=[5]) == [5, None, None, None, None]


def test_dropped_points_are_reported_as_arithmetic_error_message():
    sources = Sources(series=lambda m: series(1, 2), catalogue=lambda ns: [], buckets=lambda k, p: [])
    (r,) = Engine([Query("m1", Metric(KEYS["a"], "Sum", P), return_data=False),
                   Query("e1", expression="m1 / (m1 - 1)")], WINDOW, sources).results()
    assert r.points == [(60, 2.0)]
    assert r.messages == [{"Code": "ArithmeticError", "Value": "One or more data-points have been dropped due "
                                                               "to non-numeric values (NaN, -Infinite, +Infinite)"}]


def test_arrays_broadcast_against_scalars_and_series():
    # [doc] examples SUM(100/[m1, m2]), AVG([m1,m2]/m3), METRICS()*100, SUM(-[m1, m2])
    assert one("SUM(100 / [ma, mb])", a=[10, 50], b=[20, 100]) == [15, 3, None, None, None]
    assert one("AVG([ma, mb] / mc)", a=[10, 20], b=[30, 40], c=[2, 4]) == [10, 7.5, None, None, None]
    assert run("METRICS() * 100", a=[1], b=[2]) == {"a": [100, None, None, None, None], "b": [200, None, None, None, None]}
    assert one("SUM(-[ma, mb])", a=[1], b=[2]) == [-3, None, None, None, None]


def test_comparison_and_logical_operators_doc_example():
    # [doc] metric1 = [30, 20, 0, 0], metric2 = [20, -, 20, -]:
    # (metric1 < metric2) → 0, 0, 1, 0; (metric1 >= 30) → 1, 0, 0, 0;
    # (metric1 > 15 AND metric2 > 15) → 1, 0, 0, 0
    data = dict(a=[30, 20, 0, 0], b=[20, None, 20, None])
    assert one("ma < mb", **data)[:4] == [0, 0, 1, 0]
    assert one("ma >= 30", **data)[:4] == [1, 0, 0, 0]
    assert one("ma > 15 AND mb > 15", **data)[:4] == [1, 0, 0, 0]
    assert one("ma > 15 && mb > 15 || ma == 0", **data)[:4] == [1, 0, 1, 1]
    assert one("NOT ma", a=[0, 3]) == [1, 0, None, None, None]


# --- reductions ---------------------------------------------------------------------------------

def test_reductions_of_one_series_are_scalars():
    data = dict(a=[2, 4, None, 6])
    assert one("ma - AVG(ma)", **data) == [-2, 0, None, 2, None]
    assert one("ma * 0 + SUM(ma)", **data) == [12, 12, None, 12, None]
    assert one("ma * 0 + MIN(ma) + MAX(ma)", **data) == [8, 8, None, 8, None]
    # STDDEV (choice: population): values 2, 4, 6 → sqrt(((−2)² + 0 + 2²)/3) = sqrt(8/3)
    assert one("ma * 0 + STDDEV(ma)", **data)[0] == pytest.approx(math.sqrt(8 / 3))
    assert one("ma * 0 + DATAPOINT_COUNT(ma)", **data) == [3, 3, None, 3, None]


def test_reductions_of_arrays_are_series():
    data = dict(a=[1, 5, None], b=[3, None, 7])
    # [doc] AVG of an array: "Missing values are treated as 0."
    assert one("AVG([ma, mb])", **data) == [2, 2.5, 3.5, None, None]
    assert one("SUM(METRICS())", **data) == [4, 5, 7, None, None]
    # (choice) MIN, MAX and STDDEV of an array use the values present at each timestamp
    assert one("MIN([ma, mb])", **data) == [1, 5, 7, None, None]
    assert one("MAX([ma, mb])", **data) == [3, 5, 7, None, None]
    assert one("STDDEV([ma, mb])", **data) == [1, 0, 0, None, None]
    assert one("DATAPOINT_COUNT([ma, mb])", **data) == [2, 1, 1, None, None]
    assert one("ma * 0 + METRIC_COUNT(METRICS())", **data) == [2, 2, None, None, None]


def test_metrics_filters_by_id_substring():
    # [doc] "SUM(METRICS("errors")) returns ... the graphed metrics that have 'errors' in their Id"
    assert run("METRICS('b')", a=[1], b=[2], c=[3]) == {"b": [2, None, None, None, None]}
    assert one("SUM([METRICS('a'), METRICS('c')])", a=[1], b=[2], c=[3]) == [4, None, None, None, None]


# --- per datapoint ------------------------------------------------------------------------------

def test_abs_ceil_floor_log():
    data = dict(a=[-1.5, 2.25, None, 0.5])
    assert one("ABS(ma)", **data) == [1.5, 2.25, None, 0.5, None]
    assert one("CEIL(ma)", **data) == [-1, 3, None, 1, None]
    assert one("FLOOR(ma)", **data) == [-2, 2, None, 0, None]
    assert one("LOG10(ABS(ma) * 4)", **data)[:2] == [pytest.approx(math.log10(6)), pytest.approx(math.log10(9))]


def test_rate_diff_diff_time_against_the_preceding_datapoint():
    # [doc] RATE: "the difference between the latest data point value and the previous data point
    # value, divided by the time difference in seconds between the two values"
    data = dict(a=[10, 40, None, 100])
    assert one("RATE(ma)", **data) == [None, 0.5, None, 0.5, None]   # 30/60, then 60/120
    assert one("DIFF(ma)", **data) == [None, 30, None, 60, None]
    assert one("DIFF_TIME(ma)", **data) == [None, 60, None, 120, None]
    assert one("RUNNING_SUM(ma)", **data) == [10, 50, None, 150, None]
    assert run("RATE(METRICS())", a=[0, 6], b=[6, 0]) == {"a": [None, 0.1, None, None, None],
                                                         "b": [None, -0.1, None, None, None]}


def test_fill_with_a_value_a_series_repeat_and_linear():
    data = dict(a=[None, 10, None, None, 40], b=[1, 2, 3, 4, 5])
    assert one("FILL(ma, 0)", **data) == [0, 10, 0, 0, 40]
    assert one("FILL(ma, mb)", **data) == [1, 10, 3, 4, 40]
    assert one("FILL(ma, MIN(ma))", **data) == [10, 10, 10, 10, 40]
    # REPEAT: the most recent actual value before the gap; (choice) nothing before → stays missing
    assert one("FILL(ma, REPEAT)", **data) == [None, 10, 10, 10, 40]
    # LINEAR: interpolated between the values at both ends of the gap; (choice) open ends stay missing
    assert one("FILL(ma, LINEAR)", **data) == [None, 10, 20, 30, 40]
    assert one("FILL(ma, LINEAR)", a=[None, 10, None, 40, None]) == [None, 10, 25, 40, None]
    assert run("FILL(METRICS(), 7)", a=[None, 1], b=[2]) == {"a": [7, 1, 7, 7, 7], "b": [2, 7, 7, 7, 7]}


def test_if_follows_the_doc_tables():
    # [doc] metric1 [1, 1, 0, 0, -], metric2 [30, -, 0, 0, 30], metric3 [0, 0, 20, -, 20]
    data = dict(a=[1, 1, 0, 0, None], b=[30, None, 0, 0, 30], c=[0, 0, 20, None, 20])
    assert one("IF(ma, mb, mc)", **data) == [30, 0, 20, None, None]
    assert one("IF(ma, 5, mc)", **data) == [5, 5, 20, None, None]
    assert one("IF(ma, mb, 5)", **data) == [30, 0, 5, 5, None]
    assert one("IF(ma, mb)", **data) == [30, 0, None, None, None]
    assert one("IF(1, mb, mc)", **data) == [30, None, 0, 0, 30]
    assert one("IF(0, mb)", **data) == [None] * 5
    # [doc] "IF(metric1<400, metric1)" and "IF(metric1<400, 10, 2)"
    assert one("IF(ma < 400, ma)", a=[100, 500, 300]) == [100, None, 300, None, None]
    assert one("IF(ma < 400, 10, 2)", a=[100, 500, 300]) == [10, 2, 10, None, None]


# --- arrays -------------------------------------------------------------------------------------

def test_sort_first_last_slice_remove_empty():
    data = dict(a=[1, 1], b=[5, 5], c=[3, None])
    assert list(run("SORT(METRICS(), SUM, DESC)", **data)) == ["b", "c", "a"]     # sums 10, 3, 2
    assert list(run("SORT(METRICS(), MAX, ASC, 2)", **data)) == ["a", "c"]      # maxima 1, 3 (limit 2)
    assert one("FIRST(SORT(METRICS(), AVG, DESC))", **data) == [5, 5, None, None, None]
    assert one("LAST(SORT(METRICS(), AVG, DESC))", **data) == [1, 1, None, None, None]
    assert list(run("SLICE(SORT(METRICS(), SUM, DESC), 1)", **data)) == ["c", "a"]
    assert list(run("SLICE(METRICS(), 0, 1)", **data)) == ["a"]
    assert list(run("REMOVE_EMPTY(METRICS())", a=[1], b=[None], c=[2])) == ["a", "c"]
    # [doc] "IF(FIRST(SORT(METRICS(), AVG, DESC))>100, 1, 0)"
    assert one("IF(FIRST(SORT(METRICS(), AVG, DESC)) > 100, 1, 0)", a=[50, 150], b=[200, 90]) == [1, 0, None, None, None]


def test_time_series_period_and_calendar_functions():
    assert one("TIME_SERIES(5 * AVG(ma))", a=[1, 3]) == [10] * 5
    assert one("ma + TIME_SERIES(0)", a=[None, 4]) == [0, 4, 0, 0, 0]
    assert one("TIME_SERIES(PERIOD(ma))", a=[1]) == [60] * 5
    assert one("MINUTE(ma)", a=[1]) == [0, 1, 2, 3, 4]
    assert one("DAY(ma)", a=[1]) == [4] * 5      # 1970-01-01 was a Thursday (1 = Monday)


# --- labels -------------------------------------------------------------------------------------

def test_labels_expression_id_label_array_prefix_and_dynamic_values():
    sources = Sources(series=lambda m: series(1, 3) if m.key == KEYS["a"] else series(2),
                      catalogue=lambda ns: [], buckets=lambda k, p: [])
    queries = [Query("m1", Metric(KEYS["a"], "Sum", P), label="Errors", return_data=False),
               Query("m2", Metric(KEYS["b"], "Sum", P), return_data=False),
               Query("e1", expression="m1 * 2"),
               Query("e2", expression="FILL(METRICS(), 0)", label="Filled With 0:"),
               Query("e3", expression="m1", label="max ${MAX} of ${PROP('MetricName')} on ${PROP('Dim.Host')}"),
               Query("e4", expression="METRICS()", label="[${LABEL}] avg ${AVG}")]
    labels = [(r.id, r.label) for r in Engine(queries, WINDOW, sources).results()]
    assert labels == [("e1", "e1"), ("e2", "Filled With 0: Errors"), ("e2", "Filled With 0: b"),
                      ("e3", "max 3 of a on h1"), ("e4", "[Errors] avg 2"), ("e4", "[b] avg 2")]


# --- SEARCH -------------------------------------------------------------------------------------

def test_search_tokens_follow_the_doc_examples():
    # search-expression-syntax.html: CustomCount1 → custom, count, 1; SDBFailure → sdb, failure;
    # Project2-trial333 → project, 2, trial, 333
    assert subtokens("CustomCount1") == ["custom", "count", "1"]
    assert subtokens("SDBFailure") == ["sdb", "failure"]
    assert subtokens("Project2-trial333") == ["project", "2", "trial", "333"]


def _search(expression: str, keys: list[SeriesKey]) -> list[str]:
    catalogue = lambda ns: [k for k in keys if ns is None or k.namespace == ns]   # noqa: E731
    sources = Sources(series=lambda m: series(1), catalogue=catalogue, buckets=lambda k, p: [])
    return [r.label for r in Engine([Query("e1", expression=expression)], WINDOW, sources).results()]


CATALOGUE = [SeriesKey.of("AWS/EC2", "CPUUtilization", [{"Name": "InstanceId", "Value": "i-1"}]),
             SeriesKey.of("AWS/EC2", "CPUUtilization", [{"Name": "InstanceId", "Value": "i-2"}]),
             SeriesKey.of("AWS/EC2", "NetworkPacketsIn", [{"Name": "InstanceId", "Value": "i-1"}]),
             SeriesKey.of("AWS/EC2", "CPUUtilization", [{"Name": "InstanceType", "Value": "t2.micro"}]),
             SeriesKey.of("My App", "Network-Errors-2", [])]


@pytest.mark.parametrize("expression,labels", [
    ("""SEARCH(' {AWS/EC2,InstanceId} MetricName="CPUUtilization" ', 'Average', 300)""",
     ["i-1 CPUUtilization", "i-2 CPUUtilization"]),
    ("""SEARCH(' {AWS/EC2,InstanceId} MetricName="CPUUtilization" NOT i-2 ', 'Average', 300)""", ["i-1 CPUUtilization"]),
    ("SEARCH('{AWS/EC2,InstanceId} network AND packets', 'Average', 300)", ["i-1 NetworkPacketsIn"]),
    ("SEARCH(' InstanceType=micro ', 'Average', 300)", ["t2.micro CPUUtilization"]),
    ("""SEARCH(' InstanceType="t2.micro" Namespace="AWS/EC2" ', 'Average', 300)""", ["t2.micro CPUUtilization"]),
    ("SEARCH(' network/errors ', 'Sum', 60)", ["Network-Errors-2"]),
    ("""SEARCH(' "Network_Errors_2" ', 'Sum', 60)""", []),
    ("""SEARCH(' {"My App"} ', 'Sum', 60)""", ["Network-Errors-2"]),
    ("SEARCH(' (Packets OR Errors) ', 'Sum', 60)", ["i-1 NetworkPacketsIn", "Network-Errors-2"]),
])
def test_search_matches_as_the_search_syntax_page_describes(expression, labels):
    assert _search(expression, CATALOGUE) == labels


def test_search_expression_errors():
    for bad in ("{AWS/EC2", "MetricName=", "( cpu", '"open'):
        with pytest.raises(Exception):
            parse_search(bad)


# --- Metrics Insights ---------------------------------------------------------------------------

def _insights(expression: str) -> dict[str, list]:
    keys = [SeriesKey.of("ALB", "RequestCount", [{"Name": "LoadBalancer", "Value": lb}, {"Name": "AZ", "Value": az}])
            for lb, az in (("lb1", "a"), ("lb1", "b"), ("lb2", "a"))]
    keys.append(SeriesKey.of("ALB", "RequestCount", [{"Name": "LoadBalancer", "Value": "lb1"}]))
    values = {keys[0]: [1, 2], keys[1]: [10, 20], keys[2]: [100, 200], keys[3]: [1000, 2000]}
    # buckets: (start, SampleCount, Sum, Minimum, Maximum) — one datum per period per series
    sources = Sources(series=lambda m: {}, catalogue=lambda ns: keys,
                      buckets=lambda k, p: [(i * P, 1.0, float(v), float(v), float(v)) for i, v in enumerate(values[k])])
    results = Engine([Query("q1", expression=expression, period=P)], WINDOW, sources).results()
    return {r.label: [v for _, v in r.points] for r in results}


def test_insights_is_recognised_by_its_leading_select_in_any_case():
    from eucadb.services.cloudwatch.math.insights import is_query
    assert is_query("  select AVG(x) FROM ns") and is_query("SELECT\nSUM(x) FROM ns")
    assert not is_query("SELECTED(m1)") and not is_query("m1 + 1")


def test_insights_select_from_schema_where_group_order_limit():
    assert _insights("SELECT SUM(RequestCount) FROM ALB") == {"q1": [1111, 2222]}
    assert _insights('SELECT AVG(RequestCount) FROM "ALB"') == {"q1": [1111 / 4, 2222 / 4]}
    assert _insights("SELECT MAX(RequestCount) FROM SCHEMA(ALB, AZ, LoadBalancer)") == {"q1": [100, 200]}
    assert _insights("SELECT COUNT(RequestCount) FROM SCHEMA(ALB, LoadBalancer)") == {"q1": [1, 1]}
    # (choice) != also matches a series without that dimension (lb1 with no AZ: 1000, 2000)
    assert _insights("select sum(RequestCount) from ALB where LoadBalancer = 'lb1' and AZ != 'b'") == {"q1": [1001, 2002]}
    assert _insights("SELECT SUM(RequestCount) FROM ALB GROUP BY AZ") == {"Other": [1000, 2000], "a": [101, 202],
                                                                           "b": [10, 20]}
    ordered = _insights("SELECT SUM(RequestCount) FROM SCHEMA(ALB, LoadBalancer, AZ) GROUP BY LoadBalancer, AZ "
                        "ORDER BY MAX() DESC LIMIT 2")
    assert list(ordered) == ["lb2 a", "lb1 b"]


@pytest.mark.parametrize("query,detail", [
    ("SELECT MEDIAN(x) FROM ns", "expected AVG or COUNT or MAX or MIN or SUM"),
    ("SELECT SUM(x)", "expected FROM"),
    ("SELECT SUM(x) FROM ns WHERE a = b", "single-quoted"),
    ("SELECT SUM(x) FROM ns LIMIT 501", "LIMIT must be between 1 and 500"),
    ("SELECT SUM(x) FROM ns ORDER BY SUM() SIDEWAYS", "expected the end of the query"),
])
def test_insights_errors(query, detail):
    with pytest.raises(ApiError) as err:
        _insights(query)
    assert err.value.code == "ValidationError" and detail in err.value.message, err.value.message


def test_only_one_insights_query_per_request():
    sources = Sources(series=lambda m: {}, catalogue=lambda ns: [], buckets=lambda k, p: [])
    with pytest.raises(ApiError, match="only one Metrics Insights query"):
        Engine([Query("q1", expression="SELECT SUM(x) FROM ns", period=P),
                Query("q2", expression="SELECT AVG(x) FROM ns", period=P)], WINDOW, sources)


def test_a_chain_of_500_queries_evaluates_without_nesting_a_call_per_link():
    # 500 is GetMetricData's query limit; each expression names the next (e0 = e1 + 1, …, e499 = m1)
    sources = Sources(series=lambda m: series(1), catalogue=lambda ns: [], buckets=lambda k, p: [])
    queries = [Query("m1", Metric(KEYS["a"], "Sum", P), return_data=False)]
    queries += [Query(f"e{i}", expression=f"e{i + 1} + 1", return_data=i == 0) for i in range(498)]
    queries.append(Query("e498", expression="m1", return_data=False))
    (r,) = Engine(queries, WINDOW, sources).results()
    assert r.id == "e0" and r.points == [(0, 499.0)]


def test_search_beyond_500_series_is_cut_with_max_metrics_exceeded():
    keys = [SeriesKey.of("Big", "m", [{"Name": "i", "Value": f"{n:04}"}]) for n in range(501)]
    sources = Sources(series=lambda m: series(1), catalogue=lambda ns: keys, buckets=lambda k, p: [])
    engine = Engine([Query("e1", expression="SEARCH('{Big,i}', 'Sum', 60)")], WINDOW, sources)
    assert len(engine.results()) == 500
    assert engine.messages == [{"Code": "MaxMetricsExceeded", "Value": "Maximum allowed metrics exceeded"}]


def test_the_longest_flat_expressions_evaluate_and_deep_nesting_is_refused():
    # Expression may be 2048 characters (model): a 1022-term sum is 1022 levels deep on the left
    assert one("ma * " + "+".join(["1"] * 1022), a=[1]) == [1 + 1021, None, None, None, None]
    with pytest.raises(ApiError, match="nests deeper than 64"):
        run("2" + "^2" * 100, a=[1])
    with pytest.raises(ApiError, match="nests deeper than 64"):
        run("(" * 100 + "ma" + ")" * 100, a=[1])


def test_non_finite_values_from_scalars_never_reach_a_result():
    # 1e308 * 10 overflows to Infinity; the AVG of a series with no datapoints has no value (NaN)
    sources = Sources(series=lambda m: {}, catalogue=lambda ns: [], buckets=lambda k, p: [])
    for expression in ("TIME_SERIES(1e308 * 10)", "FILL(TIME_SERIES(1), AVG(m1)) * TIME_SERIES(AVG(m1))"):
        (r,) = Engine([Query("m1", Metric(KEYS["a"], "Sum", P), return_data=False),
                       Query("e1", expression=expression)], WINDOW, sources).results()
        assert r.points == [] and r.messages[0]["Code"] == "ArithmeticError", expression
