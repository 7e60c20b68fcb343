"""PutMetricData's ingest path (validate → catalogue → streamed COPY): every kind of datum lands with the
columns it always had, a request larger than one COPY chunk lands whole, and a refused one lands nothing.

These guard the fast path of item 7 of issue 15: rendering moved from Row objects into the COPY stream."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from eucadb.services.cloudwatch import datapoints, shapes
from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.model import operation
from eucadb.services.cloudwatch.operations import OPERATIONS

put = OPERATIONS["PutMetricData"]


def _scoped(endpoint):
    """The service as the test key's account sees it (what every request runs on)."""
    return endpoint.service.for_account(endpoint.account)
COLUMNS = "sample_count, sum, minimum, maximum, storage_resolution, unit, samples, sample_counts"


def stored(endpoint, namespace: str) -> list[tuple]:
    """The rows of a namespace's series, in metric-name order (read back as the writer role)."""
    ids = {sid: key.metric_name for key, sid in _scoped(endpoint).catalogue._ids.items()
           if key.namespace == namespace}
    if not ids:
        return []
    with endpoint.service.pools.engine(datapoints.REMOTE).connect() as conn:
        rows = conn.execute(text(f"SELECT series_id, ts, {COLUMNS} FROM metric_datapoints "
                                 "WHERE series_id = ANY(:ids)"), {"ids": list(ids)}).all()
    return sorted((ids[r[0]], *r[1:]) for r in rows)


def test_each_datum_kind_lands_with_its_columns(endpoint):
    now = endpoint.service.clock().replace(microsecond=123456)
    data = [
        {"MetricName": "a-value", "Value": 0.1, "Timestamp": now, "Unit": "Seconds", "StorageResolution": 1},
        {"MetricName": "b-values", "Values": [1.5, 2.5, 4.0], "Timestamp": now},
        {"MetricName": "c-counts", "Values": [1.0, 3.0], "Counts": [2.0, 0.0], "Timestamp": now,
         "Unit": "Count/Second", "Dimensions": [{"Name": "z", "Value": "tab\there"}, {"Name": "a", "Value": "1"}]},
        {"MetricName": "d-stats", "StatisticValues": {"SampleCount": 4.0, "Sum": 10.0, "Minimum": 1.0,
                                                      "Maximum": 5.0}, "Timestamp": now},
        {"MetricName": "e-zero", "Value": 0.0, "Timestamp": now},
    ]
    put(_scoped(endpoint), {"Namespace": "Ingest/kinds", "MetricData": data})
    assert stored(endpoint, "Ingest/kinds") == [
        ("a-value", now, 1.0, 0.1, 0.1, 0.1, 1, "Seconds", [0.1], None),
        ("b-values", now, 3.0, 8.0, 1.5, 4.0, 60, "None", [1.5, 2.5, 4.0], None),
        ("c-counts", now, 2.0, 2.0, 1.0, 1.0, 60, "Count/Second", [1.0, 3.0], [2.0, 0.0]),
        ("d-stats", now, 4.0, 10.0, 1.0, 5.0, 60, "None", None, None),
        ("e-zero", now, 1.0, 0.0, 0.0, 0.0, 60, "None", [0.0], None),
    ]
    keys = [k for k in _scoped(endpoint).catalogue._ids if k.metric_name == "c-counts"]
    assert [k.dimensions for k in keys] == [(("a", "1"), ("z", "tab\there"))]


def test_a_request_of_many_chunks_lands_whole(endpoint):
    now = endpoint.service.clock()
    count = datapoints.CHUNK_LINES * 3 + 7
    data = [{"MetricName": "m", "Dimensions": [{"Name": "Host", "Value": f"h{i % 13}"}], "Value": float(i),
             "Timestamp": now - timedelta(milliseconds=i)} for i in range(count)]
    put(_scoped(endpoint), {"Namespace": "Ingest/many", "MetricData": data})
    rows = stored(endpoint, "Ingest/many")
    assert sorted(r[3] for r in rows) == [float(i) for i in range(count)]
    assert len({r[1] for r in rows}) == count


def test_known_and_new_series_in_one_request_keep_their_rows(endpoint):
    now = endpoint.service.clock()

    def datum(host: str, value: float) -> dict:
        return {"MetricName": "m", "Dimensions": [{"Name": "Host", "Value": host}], "Value": value, "Timestamp": now}
    put(_scoped(endpoint), {"Namespace": "Ingest/mixed", "MetricData": [datum("b", 1.0)]})
    put(_scoped(endpoint), {"Namespace": "Ingest/mixed", "MetricData": [datum("a", 2.0), datum("b", 3.0),
                                                                       datum("c", 4.0), datum("a", 5.0)]})
    hosts = {sid: key.dimensions[0][1] for key, sid in _scoped(endpoint).catalogue._ids.items()
             if key.namespace == "Ingest/mixed"}
    with endpoint.service.pools.engine(datapoints.REMOTE).connect() as conn:
        rows = conn.execute(text("SELECT series_id, sum FROM metric_datapoints WHERE series_id = ANY(:ids)"),
                            {"ids": list(hosts)}).all()
    assert sorted((hosts[sid], v) for sid, v in rows) == [("a", 2.0), ("a", 5.0), ("b", 1.0), ("b", 3.0),
                                                         ("c", 4.0)]


def test_a_refused_request_lands_nothing(endpoint):
    now = endpoint.service.clock()
    data = [{"MetricName": f"fresh{i}", "Value": 1.0, "Timestamp": now} for i in range(999)]
    data.append({"MetricName": "bad", "Value": 1.0, "Timestamp": now, "Unit": "Furlongs"})
    with pytest.raises(ApiError) as err:
        put(_scoped(endpoint), {"Namespace": "Ingest/refused", "MetricData": data})
    assert err.value.code == "InvalidParameterValue"
    assert err.value.message.startswith("The parameter Unit must be one of ")
    assert stored(endpoint, "Ingest/refused") == []   # no series created, no rows


@pytest.mark.parametrize("datum, message", [
    ({"Value": 1.0}, "The parameter MetricName is required."),
    ({"MetricName": "", "Value": 1.0}, "The parameter MetricName is required."),
    ({"MetricName": "x" * 256, "Value": 1.0},
     "The parameter MetricData.member.1.MetricName must be between 1 and 255 characters long."),
    ({"MetricName": "m", "Value": 2.0 ** 400},
     "The value 2.5822498780869086e+120 for parameter MetricData.member.1.Value is not supported (NaN, "
     "Infinity, or magnitude outside 2^-260..2^360)."),
    ({"MetricName": "m", "Value": 1.0, "Dimensions": [{"Name": "a", "Value": "1"}, {"Name": "a", "Value": "2"}]},
     "No metric may have duplicate dimension names (a)."),
    ({"MetricName": "m", "Value": 1.0, "Dimensions": [{"Name": "a"}]},
     "The parameter Value is required."),
    ({"MetricName": "m", "Value": 1.0, "Values": [1.0]},
     "The parameters MetricData.member.1.Value and MetricData.member.1.Values are mutually exclusive and you "
     "have specified both."),
    ({"MetricName": "m"},
     "MetricData.member.1 must have exactly one of Value, Values or StatisticValues."),
])
def test_refusals_keep_their_words(endpoint, datum, message):
    with pytest.raises(ApiError) as err:
        put(_scoped(endpoint), {"Namespace": "Ingest/words", "MetricData": [datum]})
    assert err.value.message == message


# ---- the compiled document decoder answers exactly what the path-building one answers ----------------

def _outcome(fn, shape, doc):
    try:
        return "ok", fn(shape, doc)
    except ApiError as err:
        return "refused", err.code, err.message


GOOD_DATUM = {"MetricName": "m", "Dimensions": [{"Name": "a", "Value": "1"}], "Value": 1.5, "Unit": "Seconds",
              "Timestamp": 1700000000.25, "StorageResolution": 1, "Values": [1.0, 2], "Counts": [1, 1.0],
              "StatisticValues": {"SampleCount": 1, "Sum": 2.0, "Minimum": 1, "Maximum": 1}}
BAD_VALUES = [None, "x", "", "é\u00e9", "\ud800", "a\x00b", 1, -1, 2 ** 31, 2 ** 63, True, 1.5, float("nan"),
              float("inf"), [], [1], {}, {"Name": "a"}, "2023-01-01T00:00:00Z", "nope"]


def _variants():
    yield {"Namespace": "N", "MetricData": [GOOD_DATUM]}
    yield {"Namespace": "N", "MetricData": [GOOD_DATUM] * 3, "StrictEntityValidation": False, "Unknown": 1}
    for member in GOOD_DATUM:
        for bad in BAD_VALUES:
            yield {"Namespace": "N", "MetricData": [GOOD_DATUM, {**GOOD_DATUM, member: bad}]}
    for bad in BAD_VALUES:
        yield {"Namespace": bad, "MetricData": [GOOD_DATUM]}
        yield {"Namespace": "N", "MetricData": bad}
        yield {"Namespace": "N", "MetricData": [{**GOOD_DATUM, "Dimensions": [{"Name": "a", "Value": bad}]}]}
    yield {"Namespace": "N", "MetricData": [GOOD_DATUM] * (shapes.MAX_LIST_MEMBERS + 1)}
    yield [GOOD_DATUM]


@pytest.mark.parametrize("operation_name", ["PutMetricData", "PutMetricAlarm", "GetMetricData"])
def test_compiled_decoder_matches_the_reference(operation_name):
    shape = operation(operation_name).input_shape
    for doc in _variants():
        assert _outcome(shapes.decode_document, shape, doc) == _outcome(shapes.from_document, shape, doc), doc
