"""The operation table: wire name → handler(service, params) → result dict (model member names)."""
from __future__ import annotations

from typing import Any, Callable

from eucadb.services.cloudwatch.operations import alarms, anomaly, composite, dashboards, metrics, tagging
from eucadb.services.cloudwatch.service import CloudWatch

Handler = Callable[[CloudWatch, dict], dict[str, Any]]

OPERATIONS: dict[str, Handler] = {
    "PutMetricData": metrics.put_metric_data,
    "GetMetricStatistics": metrics.get_metric_statistics,
    "GetMetricData": metrics.get_metric_data,
    "ListMetrics": metrics.list_metrics,
    "PutMetricAlarm": alarms.put_metric_alarm,
    "PutCompositeAlarm": composite.put_composite_alarm,
    "DescribeAlarms": alarms.describe_alarms,
    "DeleteAlarms": alarms.delete_alarms,
    "SetAlarmState": alarms.set_alarm_state,
    "DescribeAlarmHistory": alarms.describe_alarm_history,
    "DescribeAlarmsForMetric": alarms.describe_alarms_for_metric,
    "EnableAlarmActions": alarms.enable_alarm_actions,
    "DisableAlarmActions": alarms.disable_alarm_actions,
    "PutDashboard": dashboards.put_dashboard,
    "GetDashboard": dashboards.get_dashboard,
    "ListDashboards": dashboards.list_dashboards,
    "DeleteDashboards": dashboards.delete_dashboards,
    "TagResource": tagging.tag_resource,
    "UntagResource": tagging.untag_resource,
    "ListTagsForResource": tagging.list_tags_for_resource,
    "PutAnomalyDetector": anomaly.put_anomaly_detector,
    "DescribeAnomalyDetectors": anomaly.describe_anomaly_detectors,
    "DeleteAnomalyDetector": anomaly.delete_anomaly_detector,
}
