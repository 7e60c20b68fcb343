"""PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState, DescribeAlarmHistory.

Definitions and state live in the local store (updatable); every change is appended to the remote
alarm history. Alarms on metric math and alarm actions (SNS, Auto Scaling) are not supported yet.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from eucadb.services import bounds
from eucadb.services.cloudwatch import history, limits, tokens
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import ApiError, invalid, limit, not_found, validation
from eucadb.services.cloudwatch.evaluation import COMPARE, STATES, change_state
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.services.cloudwatch.stats import BASIC, percentile_of
from eucadb.services.cloudwatch.tables import Alarm

MAX_ALARMS = 5000
DEFINITION_FIELDS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
                     "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
                     "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                     "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile")
TREAT_MISSING = ("missing", "ignore", "breaching", "notBreaching")


def _validate_alarm(p: dict) -> dict:
    limits.require(p, "AlarmName", "EvaluationPeriods", "ComparisonOperator")
    limits.check_length("AlarmName", p["AlarmName"], 1, 255)
    if "Metrics" in p or "ThresholdMetricId" in p:
        raise invalid("Alarms on metric math (Metrics, ThresholdMetricId) are not supported by this endpoint.")
    limits.require(p, "MetricName", "Namespace", "Period", "Threshold")
    if ("Statistic" in p) == ("ExtendedStatistic" in p):
        raise ApiError("InvalidParameterCombination", "Exactly one of Statistic or ExtendedStatistic is required.")
    if "Statistic" in p and p["Statistic"] not in BASIC:
        raise invalid(f"Statistic must be one of {', '.join(BASIC)}.")
    if "ExtendedStatistic" in p and percentile_of(p["ExtendedStatistic"]) is None:
        raise invalid("ExtendedStatistic must be a percentile pNN.NN.")
    if p["ComparisonOperator"] not in COMPARE:
        raise invalid(f"ComparisonOperator must be one of {', '.join(COMPARE)}.")
    limits.check_period(p["Period"])
    limits.check_dimensions(p.get("Dimensions", []), "request")
    limits.check_unit(p.get("Unit"))
    periods = p["EvaluationPeriods"]
    to_alarm = p.get("DatapointsToAlarm", periods)
    if not 1 <= to_alarm <= periods or periods * p["Period"] > 7 * 86400:
        raise invalid("Need 1 <= DatapointsToAlarm <= EvaluationPeriods and EvaluationPeriods x Period <= 7 days.")
    if p.get("TreatMissingData", "missing") not in TREAT_MISSING:
        raise invalid(f"TreatMissingData must be one of {', '.join(TREAT_MISSING)}.")
    return {k: p[k] for k in DEFINITION_FIELDS if k in p}


def put_metric_alarm(cw: CloudWatch, p: dict) -> dict:
    definition = _validate_alarm(p)
    now = cw.clock()
    name = definition["AlarmName"]
    with cw.pools.session(LOCAL) as s:
        row = s.get(Alarm, name)
        if row is None:
            if s.scalar(select(func.count()).select_from(Alarm)) >= MAX_ALARMS:
                raise limit(f"The maximum of {MAX_ALARMS} alarms has been reached.")
            row = Alarm(name=name, state="INSUFFICIENT_DATA", state_reason="Unchecked: Initial alarm creation",
                        state_updated_at=now)
            s.add(row)
            verb = "created"
        else:
            verb = "updated"
        row.definition = json.dumps(definition)
        row.updated_at = now
    history.record(cw.pools, name, now, "ConfigurationUpdate", f'Alarm "{name}" {verb}',
                   {"version": "1.0", "type": verb.capitalize(), verb + "Alarm": definition})
    return {}


def alarm_document(cw: CloudWatch, row: Alarm) -> dict[str, Any]:
    d = json.loads(row.definition)
    return {**d, "AlarmArn": f"arn:aws:cloudwatch:{cw.region}:{cw.account}:alarm:{row.name}",
            "ActionsEnabled": d.get("ActionsEnabled", True), "OKActions": d.get("OKActions", []),
            "AlarmActions": d.get("AlarmActions", []), "InsufficientDataActions": d.get("InsufficientDataActions", []),
            "Dimensions": d.get("Dimensions", []), "AlarmConfigurationUpdatedTimestamp": row.updated_at,
            "StateValue": row.state, "StateReason": row.state_reason, "StateReasonData": row.state_reason_data,
            "StateUpdatedTimestamp": row.state_updated_at, "StateTransitionedTimestamp": row.state_updated_at}


def describe_alarms(cw: CloudWatch, p: dict) -> dict:
    size = p.get("MaxRecords", 50)
    if not 1 <= size <= 100:
        raise invalid("MaxRecords must be between 1 and 100.")
    if p.get("StateValue") is not None and p["StateValue"] not in STATES:
        raise invalid(f"StateValue must be one of {', '.join(STATES)}.")
    if p.get("AlarmNames") and p.get("AlarmNamePrefix"):
        raise ApiError("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be used together.")
    stmt = select(Alarm).order_by(Alarm.name).limit(size + 1)
    after = tokens.decode("alarm", p.get("NextToken"))
    if after is not None:
        stmt = stmt.where(Alarm.name > after)
    if p.get("AlarmNames"):
        stmt = stmt.where(Alarm.name.in_(p["AlarmNames"][:100]))
    if p.get("AlarmNamePrefix"):
        stmt = stmt.where(Alarm.name.startswith(p["AlarmNamePrefix"], autoescape=True))
    if p.get("StateValue"):
        stmt = stmt.where(Alarm.state == p["StateValue"])
    with cw.pools.session(LOCAL) as s:
        docs = [alarm_document(cw, r) for r in s.scalars(stmt)]
    out: dict[str, Any] = {"MetricAlarms": docs[:size], "CompositeAlarms": []}
    if len(docs) > size:
        out["NextToken"] = tokens.encode("alarm", docs[size - 1]["AlarmName"])
    return out


def delete_alarms(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "AlarmNames")
    names = list(dict.fromkeys(p["AlarmNames"]))
    if len(names) > 100:
        raise invalid("The collection AlarmNames must not have a size greater than 100.")
    with cw.pools.session(LOCAL) as s:
        rows = s.scalars(select(Alarm).where(Alarm.name.in_(names))).all()
        absent = set(names) - {r.name for r in rows}
        if absent:
            raise not_found(f"The following alarms were not found: {', '.join(sorted(absent))}")
        for r in rows:
            s.delete(r)
    now = cw.clock()
    for name in names:
        history.record(cw.pools, name, now, "ConfigurationUpdate", f'Alarm "{name}" deleted',
                       {"version": "1.0", "type": "Delete"})
    return {}


def set_alarm_state(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "AlarmName", "StateValue", "StateReason")
    if p["StateValue"] not in STATES:
        raise invalid(f"StateValue must be one of {', '.join(STATES)}.")
    data = p.get("StateReasonData")
    if data is not None:
        if len(data) > limits.MAX_STATE_REASON_DATA:
            raise validation("stateReasonData", "Member must have length less than or equal to "
                                                f"{limits.MAX_STATE_REASON_DATA}")
        try:
            bounds.load_json(data, limits.MAX_DOCUMENT_DEPTH)
        except bounds.Malformed as exc:
            raise ApiError("InvalidFormat", f"StateReasonData is not valid JSON: {exc}.") from None
    if not change_state(cw, p["AlarmName"], p["StateValue"], p["StateReason"], data, force=True):
        raise not_found(f"Alarm {p['AlarmName']} does not exist.")
    return {}


def describe_alarm_history(cw: CloudWatch, p: dict) -> dict:
    size = p.get("MaxRecords", 100)
    if not 1 <= size <= 100:
        raise invalid("MaxRecords must be between 1 and 100.")
    kind = p.get("HistoryItemType")
    if kind is not None and kind not in ("ConfigurationUpdate", "StateUpdate", "Action"):
        raise invalid("HistoryItemType must be ConfigurationUpdate, StateUpdate or Action.")
    offset = tokens.decode_int("history", p.get("NextToken"))
    items = history.query(cw.pools, p.get("AlarmName"), kind, p.get("StartDate"), p.get("EndDate"),
                          p.get("ScanBy", "TimestampDescending") == "TimestampDescending", offset, size + 1)
    out: dict[str, Any] = {"AlarmHistoryItems": items[:size]}
    if len(items) > size:
        out["NextToken"] = tokens.encode("history", offset + size)
    return out
