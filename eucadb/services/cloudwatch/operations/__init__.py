"""The operation table: wire name → handler(service, params) → result dict (model member names)."""
from __future__ import annotations

from typing import Any, Callable

from eucadb.services.cloudwatch.operations import alarms, metrics
from eucadb.services.cloudwatch.service import CloudWatch

Handler = Callable[[CloudWatch, dict], dict[str, Any]]

OPERATIONS: dict[str, Handler] = {
    "PutMetricData": metrics.put_metric_data,
    "GetMetricStatistics": metrics.get_metric_statistics,
    "GetMetricData": metrics.get_metric_data,
    "ListMetrics": metrics.list_metrics,
    "PutMetricAlarm": alarms.put_metric_alarm,
    "DescribeAlarms": alarms.describe_alarms,
    "DeleteAlarms": alarms.delete_alarms,
    "SetAlarmState": alarms.set_alarm_state,
    "DescribeAlarmHistory": alarms.describe_alarm_history,
}
