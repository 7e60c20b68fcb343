"""PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
DescribeAlarmHistory, EnableAlarmActions and DisableAlarmActions.

Definitions and state live in the local store (updatable); every change stages its history event in
the same local transaction, and the event is delivered to the remote alarm history afterwards
(history.py). A state change stages the new state's actions with it (actions.py), which the leader
carries out. Alarms on metric math (`Metrics`, `ThresholdMetricId`) are checked by alarm_math.py.

Every statement is the caller's account's (cw.account, the signing key's): another account's alarm
of the same name is another alarm, and one that exists only in another account is answered exactly
as a name of no alarm.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eucadb.services import bounds
from eucadb.services.cloudwatch import action_arns, alarm_math, arns, composite, history, limits, tags, tokens
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import ApiError, invalid, limit, not_found, validation
from eucadb.services.cloudwatch.evaluation import change_state
from eucadb.services.cloudwatch.math.errors import validation as validation_error
from eucadb.services.cloudwatch.operations import composite as composite_ops
from eucadb.services.cloudwatch.rules import (BAND_NEEDS_METRIC, BAND_OPERATORS, COMPARE, LOW_SAMPLE, STATES,
                                              TREAT_MISSING)
from eucadb.services.cloudwatch.service import CloudWatch
from eucadb.services.cloudwatch.stats import BASIC, percentile_of
from eucadb.services.cloudwatch.tables import Alarm

DEFINITION_FIELDS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
                     "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
                     "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                     "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
                     "ThresholdMetricId")


def _validate_alarm(p: dict, region: str) -> dict:
    limits.require(p, "AlarmName", "EvaluationPeriods", "ComparisonOperator")
    limits.check_length("AlarmName", p["AlarmName"], 1, 255)
    if p["ComparisonOperator"] in BAND_OPERATORS and "ThresholdMetricId" not in p:
        raise ApiError("ValidationError", BAND_NEEDS_METRIC)
    if "Metrics" in p:
        alarm_math.validate(p, tuple(COMPARE))
        return _common_checks(p, region)
    if "ThresholdMetricId" in p:
        raise validation_error("ThresholdMetricId needs a Metrics list holding that Id.")
    limits.require(p, "MetricName", "Namespace", "Period", "Threshold")
    if ("Statistic" in p) == ("ExtendedStatistic" in p):
        raise ApiError("InvalidParameterCombination", "Exactly one of Statistic or ExtendedStatistic is required.")
    if "Statistic" in p and p["Statistic"] not in BASIC:
        raise invalid(f"Statistic must be one of {', '.join(BASIC)}.")
    if "ExtendedStatistic" in p and percentile_of(p["ExtendedStatistic"]) is None:
        raise invalid("ExtendedStatistic must be a percentile pNN.NN.")
    if p["ComparisonOperator"] not in COMPARE:
        raise invalid(f"ComparisonOperator must be one of {', '.join((*COMPARE, *BAND_OPERATORS))}.")
    limits.check_period(p["Period"])
    limits.check_dimensions(p.get("Dimensions", []), "request")
    limits.check_unit(p.get("Unit"))
    if p["EvaluationPeriods"] * p["Period"] > 7 * 86400:
        raise invalid("Need 1 <= DatapointsToAlarm <= EvaluationPeriods and EvaluationPeriods x Period <= 7 days.")
    return _common_checks(p, region)


def _common_checks(p: dict, region: str) -> dict:
    """What single-metric and metric-math alarms share: M out of N and TreatMissingData."""
    periods = p["EvaluationPeriods"]
    to_alarm = p.get("DatapointsToAlarm", periods)
    if not 1 <= to_alarm <= periods:
        raise invalid("Need 1 <= DatapointsToAlarm <= EvaluationPeriods and EvaluationPeriods x Period <= 7 days.")
    if p.get("TreatMissingData", "missing") not in TREAT_MISSING:
        raise invalid(f"TreatMissingData must be one of {', '.join(TREAT_MISSING)}.")
    if p.get("EvaluateLowSampleCountPercentile", "evaluate") not in LOW_SAMPLE:
        raise invalid(f"EvaluateLowSampleCountPercentile must be one of {', '.join(LOW_SAMPLE)}.")
    action_arns.check(p, region)
    return {k: p[k] for k in DEFINITION_FIELDS if k in p}


def put_metric_alarm(cw: CloudWatch, p: dict) -> dict:
    definition = _validate_alarm(p, cw.region)
    new_tags = tags.check(p.get("Tags", []))
    now = cw.clock()
    name = definition["AlarmName"]
    with cw.pools.session(LOCAL) as s:
        row = s.get(Alarm, (cw.account, name))
        if row is not None and composite.is_composite(row.definition):
            raise ApiError("ValidationError", f"The alarm {name} is a composite alarm; a metric alarm cannot "
                                              "replace it (delete it first).")
        if row is None:
            if s.scalar(select(func.count()).select_from(Alarm).where(Alarm.account == cw.account)) >= limits.MAX_ALARMS:
                raise limit(f"The maximum of {limits.MAX_ALARMS} alarms has been reached.")
            row = Alarm(account=cw.account, name=name, state="INSUFFICIENT_DATA",
                        state_reason="Unchecked: Initial alarm creation",
                        state_updated_at=now)
            s.add(row)
            verb = "created"
        else:
            verb = "updated"
        row.definition = json.dumps(definition)
        row.updated_at = now
        if verb == "created":
            # "If you are using this operation to update an existing alarm, any tags you specify in
            # this parameter are ignored" (model, PutMetricAlarmInput.Tags)
            tags.put(s, cw.account, "alarm", name, new_tags)
        history.stage(s, cw.account, name, now, "ConfigurationUpdate", f'Alarm "{name}" {verb}',
                      {"version": "1.0", "type": history.CONFIGURATION_TYPES[verb], verb + "Alarm": definition})
    history.deliver_soon(cw.pools)
    return {}


def alarm_document(cw: CloudWatch, row: Alarm) -> dict[str, Any]:
    d = json.loads(row.definition)
    return {**d, "AlarmArn": arns.alarm_arn(cw.region, cw.account, row.name),
            "ActionsEnabled": d.get("ActionsEnabled", True), "OKActions": d.get("OKActions", []),
            "AlarmActions": d.get("AlarmActions", []), "InsufficientDataActions": d.get("InsufficientDataActions", []),
            "Dimensions": d.get("Dimensions", []), "AlarmConfigurationUpdatedTimestamp": row.updated_at,
            "StateValue": row.state, "StateReason": row.state_reason, "StateReasonData": row.state_reason_data,
            "StateUpdatedTimestamp": row.state_updated_at, "StateTransitionedTimestamp": row.state_updated_at}


ALARM_TYPES = ("CompositeAlarm", "MetricAlarm", "LogAlarm")   # the model's AlarmType enum


def _types(p: dict) -> set[str]:
    """AlarmTypes: "If you omit this parameter, only metric alarms are returned" (model). Log
    alarms are not served, so asking for them alone returns nothing."""
    wanted = p.get("AlarmTypes") or ["MetricAlarm"]
    for t in wanted:
        if t not in ALARM_TYPES:
            raise invalid(f"AlarmTypes must hold only {', '.join(ALARM_TYPES)}.")
    return set(wanted)


def _document(cw: CloudWatch, s: Session, row: Alarm) -> tuple[str, dict[str, Any]]:
    if composite.is_composite(row.definition):
        return "CompositeAlarms", composite_ops.document(cw, s, row)
    return "MetricAlarms", alarm_document(cw, row)


def describe_alarms(cw: CloudWatch, p: dict) -> dict:
    size = p.get("MaxRecords", 50)
    if not 1 <= size <= 100:
        raise invalid("MaxRecords must be between 1 and 100.")
    if p.get("StateValue") is not None and p["StateValue"] not in STATES:
        raise invalid(f"StateValue must be one of {', '.join(STATES)}.")
    if p.get("AlarmNames") and p.get("AlarmNamePrefix"):
        raise ApiError("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be used together.")
    after = tokens.decode("alarm", p.get("NextToken"))
    out: dict[str, Any] = {"MetricAlarms": [], "CompositeAlarms": []}
    with cw.pools.session(LOCAL) as s:
        family = composite_ops.family(cw, s, p)
        if family is not None:   # Children/ParentsOfAlarmName: both kinds, a few members each
            rows = [r for r in family if after is None or r.name > after][:size + 1]
            members = composite_ops.family_members(p)
        else:
            types = _types(p)
            stmt = select(Alarm).where(Alarm.account == cw.account).order_by(Alarm.name).limit(size + 1)
            if after is not None:
                stmt = stmt.where(Alarm.name > after)
            if p.get("AlarmNames"):
                stmt = stmt.where(Alarm.name.in_(p["AlarmNames"][:100]))
            if p.get("AlarmNamePrefix"):
                stmt = stmt.where(Alarm.name.startswith(p["AlarmNamePrefix"], autoescape=True))
            if p.get("StateValue"):
                stmt = stmt.where(Alarm.state == p["StateValue"])
            if "CompositeAlarm" not in types:
                stmt = stmt.where(~composite.composite_sql())
            if "MetricAlarm" not in types:
                stmt = stmt.where(composite.composite_sql())
            rows = list(s.scalars(stmt))
            members = None
        for row in rows[:size]:
            kind, doc = _document(cw, s, row)
            out[kind].append(doc if members is None else {k: doc[k] for k in members})
        last = rows[size - 1].name if len(rows) > size else None
    if last is not None:
        out["NextToken"] = tokens.encode("alarm", last)
    return out


def delete_alarms(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "AlarmNames")
    names = list(dict.fromkeys(p["AlarmNames"]))
    if len(names) > 100:
        raise invalid("The collection AlarmNames must not have a size greater than 100.")
    with cw.pools.session(LOCAL) as s:
        rows = s.scalars(select(Alarm).where(Alarm.account == cw.account, Alarm.name.in_(names))).all()
        absent = set(names) - {r.name for r in rows}
        if absent:
            raise not_found(f"The following alarms were not found: {', '.join(sorted(absent))}")
        composite_ops.check_deletable(cw, s, names)
        now = cw.clock()
        for r in rows:
            s.delete(r)
            history.stage(s, cw.account, r.name, now, "ConfigurationUpdate", f'Alarm "{r.name}" deleted',
                          {"version": "1.0", "type": "Delete"})
        tags.remove(s, cw.account, "alarm", names)
    history.deliver_soon(cw.pools)
    return {}


def set_alarm_state(cw: CloudWatch, p: dict) -> dict:
    limits.require(p, "AlarmName", "StateValue", "StateReason")
    if p["StateValue"] not in STATES:
        # AWS's answer, recorded in localstack's test_cloudwatch.snapshot.json (test_set_alarm_invalid_input)
        raise ApiError("ValidationError", f"1 validation error detected: Value '{p['StateValue']}' at 'stateValue' "
                                          "failed to satisfy constraint: Member must satisfy enum value set: "
                                          "[INSUFFICIENT_DATA, ALARM, OK]")
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
    types = _types(p)   # "If you omit this parameter, only metric alarms are returned" (model)
    offset = tokens.decode_int("history", p.get("NextToken"))
    if not types & {"MetricAlarm", "CompositeAlarm"}:
        return {"AlarmHistoryItems": []}   # log alarms are not served
    history.deliver_soon(cw.pools)   # read your own writes when the remote is back
    with cw.pools.session(LOCAL) as s:   # the remote history does not keep the type: the alarm does
        composites = set(s.scalars(select(Alarm.name).where(Alarm.account == cw.account,
                                                            composite.composite_sql())))
    only = None if {"MetricAlarm", "CompositeAlarm"} <= types else ("CompositeAlarm" in types, sorted(composites))
    items = history.query(cw.pools, cw.account, cw.legacy_account(), p.get("AlarmName"), kind,
                          p.get("StartDate"), p.get("EndDate"),
                          p.get("ScanBy", "TimestampDescending") == "TimestampDescending", offset, size + 1, only)
    for item in items:
        if item["AlarmName"] in composites or composite.is_composite(item["HistoryData"]):
            item["AlarmType"] = "CompositeAlarm"
    out: dict[str, Any] = {"AlarmHistoryItems": items[:size]}
    if len(items) > size:
        out["NextToken"] = tokens.encode("history", offset + size)
    return out


def _alarm_names(p: dict) -> list[str]:
    limits.require(p, "AlarmNames")
    names = list(dict.fromkeys(p["AlarmNames"]))
    if len(names) > 100:
        raise invalid("The collection AlarmNames must not have a size greater than 100.")
    for i, name in enumerate(names, 1):
        limits.check_length(f"AlarmNames.member.{i}", name, 1, 255)
    return names


def _set_actions_enabled(cw: CloudWatch, p: dict, enabled: bool) -> dict:
    """ActionsEnabled of the named alarms; names of no alarm are skipped, as AWS does (the model
    lists no error for these operations)."""
    names = _alarm_names(p)
    with cw.pools.session(LOCAL) as s:
        for row in s.scalars(select(Alarm).where(Alarm.account == cw.account, Alarm.name.in_(names))):
            definition = json.loads(row.definition)
            definition["ActionsEnabled"] = enabled
            row.definition = json.dumps(definition)
    return {}


def enable_alarm_actions(cw: CloudWatch, p: dict) -> dict:
    return _set_actions_enabled(cw, p, True)


def disable_alarm_actions(cw: CloudWatch, p: dict) -> dict:
    return _set_actions_enabled(cw, p, False)


def _dimension_set(dims: list[dict] | None) -> frozenset[tuple[str, str]]:
    return frozenset((d["Name"], d["Value"]) for d in dims or ())


# DescribeAlarmsForMetric filters: the alarm must match each one given (model documentation:
# "To filter the results, specify a statistic, period, or unit").
FOR_METRIC_FILTERS = ("Statistic", "ExtendedStatistic", "Period", "Unit")


def describe_alarms_for_metric(cw: CloudWatch, p: dict) -> dict:
    """Metric alarms on exactly this metric (namespace, name and the full set of dimensions: "If the
    metric has any associated dimensions, you must specify them", model documentation)."""
    limits.require(p, "MetricName", "Namespace")
    limits.check_length("MetricName", p["MetricName"], 1, 255)
    limits.check_length("Namespace", p["Namespace"], 1, 255)
    if p.get("Statistic") is not None and p["Statistic"] not in BASIC:
        raise invalid(f"Statistic must be one of {', '.join(BASIC)}.")
    if p.get("ExtendedStatistic") is not None and percentile_of(p["ExtendedStatistic"]) is None:
        raise invalid("ExtendedStatistic must be a percentile pNN.NN.")
    if p.get("Period") is not None:
        limits.check_period(p["Period"])
    limits.check_dimensions(p.get("Dimensions", []), "request")
    limits.check_unit(p.get("Unit"))
    dims = _dimension_set(p.get("Dimensions"))
    wanted = {k: p[k] for k in FOR_METRIC_FILTERS if p.get(k) is not None}
    with cw.pools.session(LOCAL) as s:
        found = []
        for row in s.scalars(select(Alarm).where(Alarm.account == cw.account).order_by(Alarm.name)):
            try:
                d = json.loads(row.definition)
            except ValueError:
                continue   # an unusable stored definition matches no metric (the evaluator logs it)
            if (d.get("Namespace"), d.get("MetricName")) != (p["Namespace"], p["MetricName"]):
                continue
            if _dimension_set(d.get("Dimensions")) != dims or any(d.get(k) != v for k, v in wanted.items()):
                continue
            found.append(alarm_document(cw, row))
    return {"MetricAlarms": found}
