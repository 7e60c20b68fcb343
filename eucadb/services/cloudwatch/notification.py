"""The SNS message an alarm publishes on a state change, in AWS's alarm-notification JSON.

Members and spelling as AWS sends them (CloudWatch User Guide, "Alarm events and Amazon SNS" /
the notification example): AlarmName, AlarmDescription, AWSAccountId, AlarmConfigurationUpdatedTimestamp,
NewStateValue, NewStateReason, StateChangeTime, Region (the long name, "US East (N. Virginia)"),
AlarmArn, OldStateValue, OKActions, AlarmActions, InsufficientDataActions and Trigger; timestamps as
"2026-12-02T04:00:00.000+0000". The subject is `ALARM: "name" in US East (N. Virginia)` (SNS allows
100 characters; longer ones are cut).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import botocore.session

SUBJECT_MAX = 100


@lru_cache(maxsize=None)
def region_name(region: str) -> str:
    """botocore's description of the region ("US East (N. Virginia)"), else the code itself."""
    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        found = partition.get("regions", {}).get(region)
        if found and found.get("description"):
            return found["description"]
    return region


def aws_time(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def _statistic_name(stat: str) -> str:
    """AWS writes the Trigger's Statistic in capitals with underscores: SampleCount → SAMPLE_COUNT."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stat).upper()


def trigger(d: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"MetricName": d.get("MetricName"), "Namespace": d.get("Namespace")}
    if "ExtendedStatistic" in d:
        out.update(StatisticType="ExtendedStatistic", ExtendedStatistic=d["ExtendedStatistic"])
    else:
        out.update(StatisticType="Statistic", Statistic=_statistic_name(d.get("Statistic", "")))
    out.update(Unit=d.get("Unit"), Dimensions=[{"value": x["Value"], "name": x["Name"]} for x in d.get("Dimensions", [])],
               Period=d.get("Period"), EvaluationPeriods=d.get("EvaluationPeriods"),
               DatapointsToAlarm=d.get("DatapointsToAlarm", d.get("EvaluationPeriods")),
               ComparisonOperator=d.get("ComparisonOperator"), Threshold=d.get("Threshold"),
               TreatMissingData=d.get("TreatMissingData", "missing"),
               EvaluateLowSampleCountPercentile=d.get("EvaluateLowSampleCountPercentile", ""))
    return out


def message(d: dict, *, account: str, region: str, alarm_arn: str, old: str, new: str, reason: str,
            changed_at: datetime, configured_at: datetime) -> str:
    return json.dumps({
        "AlarmName": d["AlarmName"], "AlarmDescription": d.get("AlarmDescription"), "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": aws_time(configured_at), "NewStateValue": new,
        "NewStateReason": reason, "StateChangeTime": aws_time(changed_at), "Region": region_name(region),
        "AlarmArn": alarm_arn, "OldStateValue": old, "OKActions": d.get("OKActions", []),
        "AlarmActions": d.get("AlarmActions", []), "InsufficientDataActions": d.get("InsufficientDataActions", []),
        # a composite alarm has no metric: its notification carries the rule instead of a Trigger
        **({"AlarmRule": d["AlarmRule"]} if "AlarmRule" in d else {"Trigger": trigger(d)})})


def subject(name: str, new: str, region: str) -> str:
    text = f'{new}: "{name}" in {region_name(region)}'
    return text if len(text) <= SUBJECT_MAX else text[:SUBJECT_MAX - 3] + "..."
