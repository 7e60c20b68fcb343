"""10k datapoints over 100 series through boto3; every statistic checked against an independent
computation per period (issue 6, "judged by")."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from eucadb.services.cloudwatch import catalogue

NS = "Test/Stats"
PERIOD = 300
SERIES = 100


def dims(s: int) -> list[dict]:
    return [{"Name": "Disk", "Value": f"d{s // 10}"}, {"Name": "Host", "Value": f"h{s % 10}"}]


def nearest_rank(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@pytest.fixture(scope="module")
def dataset(endpoint):
    """Series 0..89: 100 single values a minute apart; 90..99: 20 datums of 5 Values with Counts
    (10,000 samples in all). Quarter-integer values: sums are exact in any order."""
    rnd = random.Random(6)
    now = datetime.now(timezone.utc)
    base = datetime.fromtimestamp(int(now.timestamp()) // 3600 * 3600, timezone.utc) - timedelta(hours=2)
    datums, expected = [], defaultdict(list)   # (series, bucket start) → expanded samples
    for s in range(SERIES):
        if s < 90:
            for i in range(100):
                ts, v = base + timedelta(seconds=60 * i), rnd.randint(0, 4000) / 4
                datums.append({"MetricName": "Latency", "Dimensions": dims(s), "Value": v, "Timestamp": ts})
                expected[s, int(ts.timestamp()) // PERIOD * PERIOD].append(v)
        else:
            for i in range(20):
                ts = base + timedelta(seconds=300 * i + 17)
                values = [rnd.randint(-400, 400) / 4 for _ in range(5)]
                counts = [rnd.randint(1, 3) for _ in range(5)]
                datums.append({"MetricName": "Latency", "Dimensions": dims(s), "Values": values,
                               "Counts": counts, "Timestamp": ts})
                for v, c in zip(values, counts):
                    expected[s, int(ts.timestamp()) // PERIOD * PERIOD].extend([v] * c)
    assert sum(len(d.get("Values", [0])) for d in datums) == 10_000
    cw = endpoint.client()
    for i in range(0, len(datums), 1000):
        cw.put_metric_data(Namespace=NS, MetricData=datums[i:i + 1000])
    return base, expected


def test_ten_thousand_datapoints_statistics(endpoint, dataset):
    base, expected = dataset
    cw = endpoint.client()
    start, end = base, base + timedelta(hours=2)
    for s in range(SERIES):
        basic = cw.get_metric_statistics(Namespace=NS, MetricName="Latency", Dimensions=dims(s), StartTime=start,
                                         EndTime=end, Period=PERIOD,
                                         Statistics=["Sum", "Average", "Minimum", "Maximum", "SampleCount"])
        ext = cw.get_metric_statistics(Namespace=NS, MetricName="Latency", Dimensions=dims(s), StartTime=start,
                                       EndTime=end, Period=PERIOD, ExtendedStatistics=["p50", "p99"])
        got = {int(p["Timestamp"].timestamp()): p for p in basic["Datapoints"]}
        got_ext = {int(p["Timestamp"].timestamp()): p["ExtendedStatistics"] for p in ext["Datapoints"]}
        want = {b: v for (series, b), v in expected.items() if series == s}
        assert set(got) == set(want) == set(got_ext)
        for b, samples in want.items():
            total = sum(samples)
            assert got[b]["Sum"] == total
            assert got[b]["SampleCount"] == len(samples)
            assert got[b]["Average"] == total / len(samples)
            assert got[b]["Minimum"] == min(samples) and got[b]["Maximum"] == max(samples)
            assert got_ext[b] == {"p50": nearest_rank(samples, 50), "p99": nearest_rank(samples, 99)}


def test_get_metric_data_matches(endpoint, dataset):
    base, expected = dataset
    queries = []
    for s in range(SERIES):
        metric = {"Namespace": NS, "MetricName": "Latency", "Dimensions": dims(s)}
        queries.append({"Id": f"avg{s}", "MetricStat": {"Metric": metric, "Period": PERIOD, "Stat": "Average"}})
        queries.append({"Id": f"p99_{s}", "MetricStat": {"Metric": metric, "Period": PERIOD, "Stat": "p99"}})
    out = endpoint.client().get_metric_data(MetricDataQueries=queries, StartTime=base,
                                            EndTime=base + timedelta(hours=2), ScanBy="TimestampAscending")
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert len(results) == 2 * SERIES
    for s in range(SERIES):
        want = sorted((b, v) for (series, b), v in expected.items() if series == s)
        avg, p99 = results[f"avg{s}"], results[f"p99_{s}"]
        assert [int(t.timestamp()) for t in avg["Timestamps"]] == [b for b, _ in want]
        assert avg["Values"] == [sum(v) / len(v) for _, v in want]
        assert p99["Values"] == [nearest_rank(v, 99) for _, v in want]


def test_list_metrics_filters_and_pages(endpoint, dataset, monkeypatch):
    cw = endpoint.client()
    everything = cw.list_metrics(Namespace=NS)["Metrics"]
    assert len(everything) == SERIES
    assert {tuple((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in everything} == \
        {tuple((d["Name"], d["Value"]) for d in dims(s)) for s in range(SERIES)}
    host3 = cw.list_metrics(Namespace=NS, Dimensions=[{"Name": "Host", "Value": "h3"}])["Metrics"]
    assert sorted(m["Dimensions"][0]["Value"] for m in host3) == [f"d{i}" for i in range(10)]
    assert len(cw.list_metrics(Namespace=NS, MetricName="Latency", Dimensions=[{"Name": "Disk"}])["Metrics"]) == 100
    assert cw.list_metrics(Namespace=NS, MetricName="Nope")["Metrics"] == []
    monkeypatch.setattr(catalogue, "PAGE", 30)
    pages, token = [], None
    while True:
        out = cw.list_metrics(Namespace=NS, **({"NextToken": token} if token else {}))
        pages.append(out["Metrics"])
        token = out.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    with pytest.raises(cw.exceptions.ClientError) as err:
        cw.list_metrics(NextToken="not-a-token!")
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"


def test_get_metric_data_pages_with_next_token(endpoint, dataset):
    """MaxDatapoints caps each call; PartialData + NextToken continue exactly where it stopped."""
    base, expected = dataset
    cw = endpoint.client()
    queries = [{"Id": f"sum{s}", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Latency",
                                                           "Dimensions": dims(s)},
                                                "Period": PERIOD, "Stat": "Sum"}} for s in range(3)]
    kwargs = dict(MetricDataQueries=queries, StartTime=base, EndTime=base + timedelta(hours=2),
                  ScanBy="TimestampAscending", MaxDatapoints=7)
    whole = cw.get_metric_data(**{**kwargs, "MaxDatapoints": 100_000})
    assert "NextToken" not in whole
    collected: dict[str, list] = {}
    token, calls = None, 0
    while True:
        out = cw.get_metric_data(**kwargs, **({"NextToken": token} if token else {}))
        calls += 1
        assert sum(len(r["Values"]) for r in out["MetricDataResults"]) <= 7
        for r in out["MetricDataResults"]:
            collected.setdefault(r["Id"], []).extend(zip(r["Timestamps"], r["Values"]))
        token = out.get("NextToken")
        if not token:
            break
    assert calls > 1
    assert collected == {r["Id"]: list(zip(r["Timestamps"], r["Values"])) for r in whole["MetricDataResults"]}
