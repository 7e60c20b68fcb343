"""PutAnomalyDetector, DescribeAnomalyDetectors and DeleteAnomalyDetector (single-metric detectors of
the caller's account; anomaly.py holds the detectors and the model).

Expectations and their sources: botocore's model (PutAnomalyDetectorInput, DescribeAnomalyDetectorsInput,
DeleteAnomalyDetectorInput, AnomalyDetector). Metric math detectors are refused by name (not served).
"""
from __future__ import annotations

from datetime import datetime

from eucadb.services.cloudwatch import anomaly, tokens
from eucadb.services.cloudwatch.errors import invalid, resource_not_found
from eucadb.services.cloudwatch.service import CloudWatch

TYPES = ("SINGLE_METRIC", "METRIC_MATH")   # AnomalyDetectorType (model)
MAX_RESULTS = 100                          # "The maximum value that you can specify is 100" (model)


def put_anomaly_detector(cw: CloudWatch, p: dict) -> dict:
    """Creates or replaces the detector of one metric and statistic (a second Put of the same metric
    and statistic updates its configuration)."""
    anomaly.record(cw, anomaly.from_request(cw, p), "put")
    return {}


def delete_anomaly_detector(cw: CloudWatch, p: dict) -> dict:
    key, stat = anomaly.identity(cw, p)
    found = anomaly.find(cw, key, stat)
    if found is None:   # ResourceNotFoundException is among DeleteAnomalyDetector's errors (model)
        raise resource_not_found("AnomalyDetector", f"{key.namespace}/{key.metric_name}/{stat}",
                                 "No anomaly detection model found for the given metric and statistic.")
    anomaly.record(cw, found, "delete")
    return {}


def _state(cw: CloudWatch, d: anomaly.Detector, now: datetime) -> str:
    from eucadb.services.cloudwatch.operations.metrics import series_statistics
    points = series_statistics(cw, d.key, now - anomaly.TRAINING, now, 3600, None, ["SampleCount"], [])
    return anomaly.state(len(points))


def _matches(d: anomaly.Detector, p: dict) -> bool:
    if p.get("Namespace") and d.key.namespace != p["Namespace"]:
        return False
    if p.get("MetricName") and d.key.metric_name != p["MetricName"]:
        return False
    wanted = {(x["Name"], x["Value"]) for x in p.get("Dimensions") or []}
    return wanted <= set(d.key.dimensions)


def describe_anomaly_detectors(cw: CloudWatch, p: dict) -> dict:
    """"If empty, [AnomalyDetectorTypes] defaults to SINGLE_METRIC" (model); no metric math
    detector exists here, so METRIC_MATH alone lists nothing."""
    size = p.get("MaxResults", MAX_RESULTS)
    if not 1 <= size <= MAX_RESULTS:
        raise invalid(f"MaxResults must be between 1 and {MAX_RESULTS}.")
    types = p.get("AnomalyDetectorTypes") or ["SINGLE_METRIC"]
    if any(t not in TYPES for t in types):
        raise invalid(f"AnomalyDetectorTypes must hold only {', '.join(TYPES)}.")
    start = tokens.decode_int("anomaly", p.get("NextToken"))
    found = [d for d in anomaly.current(cw) if _matches(d, p)] if "SINGLE_METRIC" in types else []
    page = found[start:start + size]
    now = cw.clock()
    out: dict = {"AnomalyDetectors": [d.document(cw.account, _state(cw, d, now)) for d in page]}
    if start + size < len(found):
        out["NextToken"] = tokens.encode("anomaly", start + size)
    return out
