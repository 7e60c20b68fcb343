"""Anomaly detection: single-metric detectors (one account's), stored as an append-only event log on
the remote database (remote migration cw0007), and the band their model gives.

The model is eucadb's, not AWS's. AWS trains a machine-learning model on up to two weeks of the
metric with trend and hourly/daily/weekly seasonality ("CloudWatch anomaly detection", User Guide).
eucadb's is small and documented instead (docs/cloudwatch-metric-math.md): the metric's values at the
query's period and statistic over the 14 days before the query's StartTime, outside the detector's
ExcludedTimeRanges, are grouped by hour of day (in MetricTimezone, UTC by default); for each hour
the band is mean ± k · population standard deviation, and an hour with fewer than MIN_SAMPLES
training values has no band. So the band is deterministic and testable, and a daily cycle is
followed; weekly cycles and trends are not.

A band asked for a metric and statistic without a detector (GetMetricData, a band alarm) makes the
detector first, with no configuration: AWS "will call PutAnomalyDetector with the minimal
information" when an anomaly detection alarm is evaluated without one (observed and described in
aws/aws-cdk pull request 19956; the User Guide says CloudWatch creates the model for such alarms).
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text

from eucadb.services.cloudwatch import limits
from eucadb.services.cloudwatch.catalogue import SeriesKey
from eucadb.services.cloudwatch.datapoints import REMOTE
from eucadb.services.cloudwatch.errors import combination, invalid
from eucadb.services.cloudwatch.shapes import as_utc
from eucadb.services.cloudwatch.stats import BASIC, percentile_of

TRAINING = timedelta(days=14)   # "trains on up to two weeks of the metric's data" (User Guide)
MIN_SAMPLES = 3                 # training values an hour needs before it has a band
MAX_EXCLUDED = 10               # "You can specify as many as 10 time ranges" (model, Configuration)
LEGACY = ("Namespace", "MetricName", "Dimensions", "Stat")   # deprecated top-level members (model)
PUT_SQL = text("INSERT INTO anomaly_detector_events (event_id, account, detector, ts, op, body) VALUES "
               "(CAST(:id AS uuid), :account, :detector, clock_timestamp(), :op, CAST(:body AS jsonb))")
LATEST_SQL = text("SELECT DISTINCT ON (detector) detector, op, body::text FROM anomaly_detector_events "
                  "WHERE account = :account ORDER BY detector, ts DESC")


@dataclass(frozen=True)
class Detector:
    """One single-metric detector: the metric, the statistic, and how the model is trained."""

    key: SeriesKey
    stat: str
    excluded: tuple[tuple[datetime, datetime], ...] = ()
    timezone: str | None = None
    characteristics: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return json.dumps([self.key.namespace, self.key.metric_name, list(self.key.dimensions), self.stat])

    def body(self) -> str:
        return json.dumps({"Namespace": self.key.namespace, "MetricName": self.key.metric_name,
                           "Dimensions": [list(d) for d in self.key.dimensions], "Stat": self.stat,
                           "Excluded": [[a.isoformat(), b.isoformat()] for a, b in self.excluded],
                           "Timezone": self.timezone, "Characteristics": self.characteristics})

    @classmethod
    def load(cls, body: str) -> "Detector":
        d = json.loads(body)
        key = SeriesKey.of(d["Namespace"], d["MetricName"], [{"Name": n, "Value": v} for n, v in d["Dimensions"]])
        excluded = tuple((datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in d["Excluded"])
        return cls(key, d["Stat"], excluded, d["Timezone"], d["Characteristics"])

    def document(self, account: str, state: str) -> dict[str, Any]:
        """As DescribeAnomalyDetectors returns it (the model's AnomalyDetector members; the
        deprecated top-level members too, which older clients read)."""
        dims = [{"Name": n, "Value": v} for n, v in self.key.dimensions]
        single = {"AccountId": account, "Namespace": self.key.namespace, "MetricName": self.key.metric_name,
                  "Dimensions": dims, "Stat": self.stat}
        config: dict[str, Any] = {"ExcludedTimeRanges": [{"StartTime": a, "EndTime": b} for a, b in self.excluded]}
        if self.timezone:
            config["MetricTimezone"] = self.timezone
        out = {"Namespace": self.key.namespace, "MetricName": self.key.metric_name, "Dimensions": dims,
               "Stat": self.stat, "Configuration": config, "StateValue": state, "SingleMetricAnomalyDetector": single}
        if self.characteristics:
            out["MetricCharacteristics"] = self.characteristics
        return out


# --- the request ---------------------------------------------------------------------------------
def identity(cw, p: dict) -> tuple[SeriesKey, str]:
    """The metric and statistic a Put/DeleteAnomalyDetector request names, checked as the model
    documents: SingleMetricAnomalyDetector, or the deprecated top-level members, not both; metric
    math detectors are not served."""
    if p.get("MetricMathAnomalyDetector") is not None:
        raise invalid("MetricMathAnomalyDetector is not served by this endpoint; only single-metric anomaly "
                      "detectors (SingleMetricAnomalyDetector) are.")
    single = p.get("SingleMetricAnomalyDetector")
    legacy = [m for m in LEGACY if p.get(m) not in (None, [])]
    if single is not None and legacy:
        raise combination(f"SingleMetricAnomalyDetector cannot be used together with {', '.join(legacy)}.")
    d = single if single is not None else p
    if d.get("AccountId") not in (None, cw.account):
        raise invalid("AccountId must be the caller's account: cross-account anomaly detectors are not served.")
    limits.require(d, "Namespace", "MetricName", "Stat")
    limits.check_length("Namespace", d["Namespace"], 1, 255)
    limits.check_length("MetricName", d["MetricName"], 1, 255)
    limits.check_dimensions(d.get("Dimensions", []), "SingleMetricAnomalyDetector" if single is not None else "")
    stat = d["Stat"]
    if stat not in BASIC and percentile_of(stat) is None:
        raise invalid(f"The value {stat} for parameter Stat is not a valid statistic "
                      "(SampleCount, Average, Sum, Minimum, Maximum or pNN.NN).")
    return SeriesKey.of(d["Namespace"], d["MetricName"], d.get("Dimensions")), stat


def from_request(cw, p: dict) -> Detector:
    key, stat = identity(cw, p)
    config = p.get("Configuration") or {}
    ranges = config.get("ExcludedTimeRanges") or []
    if len(ranges) > MAX_EXCLUDED:
        raise invalid(f"Configuration.ExcludedTimeRanges can hold at most {MAX_EXCLUDED} time ranges.")
    excluded = []
    for i, r in enumerate(ranges, 1):
        limits.require(r, "StartTime", "EndTime")
        start, end = as_utc(r["StartTime"]), as_utc(r["EndTime"])
        if start >= end:
            raise invalid(f"Configuration.ExcludedTimeRanges.member.{i}: StartTime must be before EndTime.")
        excluded.append((start, end))
    tz = config.get("MetricTimezone") or None
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid(f"The MetricTimezone {tz[:64]} is not a time zone of the tz database.") from None
    return Detector(key, stat, tuple(excluded), tz, dict(p.get("MetricCharacteristics") or {}))


# --- the event log -------------------------------------------------------------------------------
def record(cw, detector: Detector, op: str) -> None:
    with cw.pools.session(REMOTE) as s:
        s.execute(PUT_SQL, {"id": str(uuid.uuid4()), "account": cw.account, "detector": detector.ident,
                            "op": op, "body": detector.body()})


def current(cw) -> list[Detector]:
    """The account's detectors: those whose newest event is a put, in a stable order."""
    with cw.pools.session(REMOTE) as s:
        rows = s.execute(LATEST_SQL, {"account": cw.account}).all()
    return [Detector.load(body) for _, op, body in rows if op == "put"]


def find(cw, key: SeriesKey, stat: str) -> Detector | None:
    return next((d for d in current(cw) if d.key == key and d.stat == stat), None)


# --- the model ------------------------------------------------------------------------------------
def training_range(start: int) -> tuple[datetime, datetime]:
    """What a band starting at `start` (epoch seconds) is trained on."""
    end = datetime.fromtimestamp(start, timezone.utc)
    return end - TRAINING, end


def _hour(t: int, zone: ZoneInfo | None) -> int:
    moment = datetime.fromtimestamp(t, timezone.utc)
    return (moment.astimezone(zone) if zone else moment).hour


def band(detector: Detector, training: dict[int, float], grid: Iterable[int],
         k: float) -> tuple[dict[int, float], dict[int, float]]:
    """(upper, lower) at each grid time whose hour of day has enough training values."""
    zone = ZoneInfo(detector.timezone) if detector.timezone else None
    cut = [(int(a.timestamp()), int(b.timestamp())) for a, b in detector.excluded]
    by_hour: dict[int, list[float]] = {}
    for t, v in training.items():
        if math.isfinite(v) and not any(a <= t < b for a, b in cut):
            by_hour.setdefault(_hour(t, zone), []).append(v)
    model = {}
    for h, values in by_hour.items():
        if len(values) >= MIN_SAMPLES:
            mean = math.fsum(values) / len(values)
            model[h] = (mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)))
    upper, lower = {}, {}
    for t in grid:
        fit = model.get(_hour(t, zone))
        if fit is not None:
            upper[t], lower[t] = fit[0] + k * fit[1], fit[0] - k * fit[1]
    return upper, lower


def state(hourly_points: int) -> str:
    """The model's AnomalyDetectorStateValue from how many hourly datapoints the last 14 days hold:
    none → PENDING_TRAINING, under a day's worth → TRAINED_INSUFFICIENT_DATA, else TRAINED."""
    if hourly_points == 0:
        return "PENDING_TRAINING"
    return "TRAINED_INSUFFICIENT_DATA" if hourly_points < 24 else "TRAINED"
