"""Alarm actions that act, against the embedded cloud (real boto3, SigV4 with the cloud's root key):
a state change executes the Auto Scaling policy, publishes to the SNS topic (its SQS subscriber gets
the AWS alarm notification) and stops an instance, once per transition; every attempt is in the
alarm history. PutMetricAlarm's checks of action ARNs need no cloud.

Expectations: PutMetricAlarm API reference (AlarmActions: the ARN forms; "Valid Values" of the EC2
actions), the CloudWatch User Guide's alarm notification example for the message members, and the
AWS answers quoted in action_arns.py for the refusals."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cloud"))
from action_targets import Targets, make_targets  # noqa: E402
from localcloud import LocalCloud  # noqa: E402

from eucadb.cloud.client import CloudClients  # noqa: E402
from eucadb.config import load  # noqa: E402
from eucadb.retry import Retry  # noqa: E402
from eucadb.services.cloudwatch import actions  # noqa: E402
from eucadb.services.cloudwatch.catalogue import LOCAL  # noqa: E402
from eucadb.services.cloudwatch.evaluation import evaluate_all  # noqa: E402
from eucadb.services.cloudwatch.tables import ActionOutbox  # noqa: E402

ALARM = {"Namespace": "Act", "MetricName": "load", "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1,
         "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold"}


def _refused(cw, **params) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        cw.put_metric_alarm(**{**ALARM, **params})
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.mark.parametrize("params,code,message", [
    ({"AlarmActions": ["not-an-arn"]}, "ValidationError", "Invalid arn syntax: not-an-arn"),
    ({"OKActions": ["arn:aws:sns:us-east-1:123456789012"]}, "ValidationError",
     "Invalid arn syntax: arn:aws:sns:us-east-1:123456789012"),
    ({"AlarmActions": ["arn:aws:automate:eu-west-1:ec2:stop"], "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}]},
     "ValidationError", "Invalid region eu-west-1 specified. Only us-east-1 is supported."),
    ({"AlarmActions": ["arn:aws:automate:us-east-1:ec2:stop"]}, "ValidationError",
     "Action arn:aws:automate:us-east-1:ec2:stop: EC2 actions need an alarm on a metric with an InstanceId dimension."),
    ({"AlarmActions": ["arn:aws:lambda:us-east-1:123456789012:function:f"]}, "ValidationError",
     "Action arn:aws:lambda:us-east-1:123456789012:function:f: lambda actions are not supported by this endpoint "
     "(allowed: SNS topics, Auto Scaling policies, arn:aws:automate:REGION:ec2:stop|terminate|reboot)."),
    ({"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}, "ValidationError",
     "ComparisonOperators for ranges require ThresholdMetricId to be set"),   # AWS's answer (terraform-aws-cloudwatch#13)
    ({"ExtendedStatistic": "p99", "Statistic": None, "EvaluateLowSampleCountPercentile": "sometimes"},
     "InvalidParameterValue", "EvaluateLowSampleCountPercentile must be one of evaluate, ignore."),
])
def test_put_metric_alarm_refuses_actions_it_cannot_run_and_changes_nothing(endpoint, params, code, message):
    cw = endpoint.client()
    params = {k: v for k, v in {**ALARM, **params, "AlarmName": "refused"}.items() if v is not None}
    with pytest.raises(ClientError) as err:
        cw.put_metric_alarm(**params)
    assert (err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]) == (code, message)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert cw.describe_alarms(AlarmNames=["refused"])["MetricAlarms"] == []


# --- against the embedded cloud ----------------------------------------------------------------
@pytest.fixture(scope="module")
def cloud():
    cloud = LocalCloud()
    try:
        cloud.up()
        yield cloud
    finally:
        cloud.down()
        cloud.close()


@pytest.fixture(scope="module")
def targets(cloud) -> Targets:
    subnets = cloud.client("ec2").describe_subnets()["Subnets"]
    subnet = next(s["SubnetId"] for s in subnets if s["CidrBlock"].startswith(cloud.prefix))
    return make_targets(cloud.client, subnet)


@pytest.fixture
def acting(endpoint, cloud, monkeypatch):
    """The endpoint's service with the embedded cloud as its cloud, short retries and a fixed clock."""
    service = endpoint.service
    monkeypatch.setattr(service, "cloud", CloudClients(load(env=cloud.env)))
    monkeypatch.setattr(service, "action_retry", Retry(deadline=3, max_delay=0.5, retry_on=actions.ACTION_RETRY.retry_on,
                                                       is_transient=actions.ACTION_RETRY.is_transient))
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    monkeypatch.setattr(service, "clock", lambda: clock)
    return service, clock


def _breach(cw, clock: datetime, dims: list[dict], value: float = 95.0) -> None:
    cw.put_metric_data(Namespace="Act", MetricData=[{"MetricName": "load", "Dimensions": dims, "Value": value,
                                                      "Timestamp": clock.replace(second=0) - timedelta(seconds=30)}])


def _action_history(cw, name: str) -> list[dict]:
    return cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]


@pytest.mark.slow
def test_crossing_the_threshold_scales_the_group_and_notifies_once(endpoint, acting, targets):
    service, clock = acting
    cw = endpoint.client()
    dims = [{"Name": "Host", "Value": "scale"}]
    cw.put_metric_alarm(AlarmName="scale-out", Dimensions=dims, AlarmActions=[targets.policy_arn, targets.topic_arn],
                        AlarmDescription="too busy", **ALARM)
    _breach(cw, clock, dims)
    before = targets.desired()
    evaluate_all(service)
    assert cw.describe_alarms(AlarmNames=["scale-out"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    assert len(actions.pending(service.pools)) == 2, "staged with the transition, not yet carried out"
    assert actions.drain(service) == {"Succeeded": 2}
    assert targets.desired() == before + 1
    [note] = targets.notifications()
    assert note["Subject"] == 'ALARM: "scale-out" in US East (N. Virginia)'
    assert (note["AlarmName"], note["NewStateValue"], note["OldStateValue"]) == ("scale-out", "ALARM", "INSUFFICIENT_DATA")
    assert note["AlarmDescription"] == "too busy" and note["Region"] == "US East (N. Virginia)"
    assert note["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:{endpoint.account}:alarm:scale-out"
    assert note["Trigger"]["StatisticType"] == "Statistic" and note["Trigger"]["Statistic"] == "MAXIMUM"
    assert note["Trigger"]["Dimensions"] == [{"value": "scale", "name": "Host"}]
    history = _action_history(cw, "scale-out")
    assert sorted(h["HistorySummary"] for h in history) == sorted(
        f"Successfully executed action {arn}" for arn in (targets.policy_arn, targets.topic_arn))
    assert all(json.loads(h["HistoryData"])["actionState"] == "Succeeded" for h in history)
    # the alarm stays in ALARM: no new transition, so nothing more happens
    evaluate_all(service)
    assert actions.drain(service) == {}
    assert targets.desired() == before + 1 and targets.notifications(wait=0) == []


@pytest.mark.slow
def test_staged_actions_survive_a_restart_and_run_once(endpoint, acting, targets):
    """A server that dies after the transition: the next one (a new service on the same store) drains."""
    service, clock = acting
    cw = endpoint.client()
    dims = [{"Name": "Host", "Value": "restart"}]
    cw.put_metric_alarm(AlarmName="restart", Dimensions=dims, AlarmActions=[targets.topic_arn], **ALARM)
    _breach(cw, clock, dims)
    evaluate_all(service)
    [row_id] = actions.pending(service.pools)
    with service.pools.session(LOCAL) as s:   # an attempt was begun when the server died
        s.get(ActionOutbox, row_id).attempts = 1
    assert actions.drain(service) == {"Succeeded": 1}
    assert actions.drain(service) == {}
    assert [n["AlarmName"] for n in targets.notifications()] == ["restart"]
    [item] = _action_history(cw, "restart")
    assert json.loads(item["HistoryData"])["repeatedAfterInterruptedAttempt"] is True


@pytest.mark.slow
def test_ec2_stop_acts_on_the_alarms_instance(endpoint, acting, targets):
    service, clock = acting
    cw = endpoint.client()
    instance = targets.lone_instance()
    dims = [{"Name": "InstanceId", "Value": instance}]
    cw.put_metric_alarm(AlarmName="stop-it", Dimensions=dims, AlarmActions=["arn:aws:automate:us-east-1:ec2:stop"],
                        **ALARM)
    _breach(cw, clock, dims)
    evaluate_all(service)
    assert actions.drain(service) == {"Succeeded": 1}
    assert targets.instance_state(instance) in ("stopping", "stopped")


@pytest.mark.slow
def test_a_failing_action_is_recorded_with_the_clouds_error_and_not_repeated(endpoint, acting, targets):
    service, clock = acting
    cw = endpoint.client()
    dims = [{"Name": "Host", "Value": "fail"}]
    missing = targets.topic_arn.rsplit(":", 1)[0] + ":no-such-topic"
    cw.put_metric_alarm(AlarmName="fails", Dimensions=dims, AlarmActions=[missing, targets.topic_arn], **ALARM)
    _breach(cw, clock, dims)
    evaluate_all(service)
    assert actions.drain(service) == {"Failed": 1, "Succeeded": 1}, "one bad action does not stop the other"
    assert actions.drain(service) == {}
    failed = [h for h in _action_history(cw, "fails") if h["HistorySummary"] == f"Failed to execute action {missing}"]
    assert failed and "NotFound" in json.loads(failed[-1]["HistoryData"])["error"]
    assert [n["AlarmName"] for n in targets.notifications()] == ["fails"]


@pytest.mark.slow
def test_disabled_actions_and_states_without_actions_do_nothing(endpoint, acting, targets):
    service, clock = acting
    cw = endpoint.client()
    dims = [{"Name": "Host", "Value": "off"}]
    cw.put_metric_alarm(AlarmName="off", Dimensions=dims, AlarmActions=[targets.topic_arn],
                        ActionsEnabled=False, **ALARM)
    cw.put_metric_alarm(AlarmName="ok-only", Dimensions=dims, OKActions=[targets.topic_arn], **ALARM)
    _breach(cw, clock, dims)
    evaluate_all(service)
    assert {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNames=["off", "ok-only"])["MetricAlarms"]} \
        == {"off": "ALARM", "ok-only": "ALARM"}
    assert actions.drain(service) == {}
    # SetAlarmState is a transition too (API reference: "the action configured for the appropriate
    # state is invoked"): ok-only goes to OK and notifies once
    cw.set_alarm_state(AlarmName="ok-only", StateValue="OK", StateReason="testing")
    assert actions.drain(service) == {"Succeeded": 1}
    assert [(n["AlarmName"], n["NewStateValue"]) for n in targets.notifications()] == [("ok-only", "OK")]
    with service.pools.session(LOCAL) as s:
        assert not s.scalars(select(ActionOutbox).where(ActionOutbox.alarm_name == "off")).all()


def test_an_unreachable_cloud_is_retried_every_attempt_recorded_then_failed_once(endpoint, monkeypatch, tmp_path):
    """Nothing listens on the cloud's port: each attempt is an Action history item (retrying), the
    last says it failed, and the action is done with (not retried by every later drain)."""
    service = endpoint.service
    config = load(env={"EUCADB_HOME": str(tmp_path), "EUCADB_CLOUD_ENDPOINT_URL": "http://127.0.0.1:9",
                       "EUCADB_CLOUD_ACCESS_KEY_ID": "AKIDEXAMPLE", "EUCADB_CLOUD_SECRET_ACCESS_KEY": "x"})
    # botocore's own retries off: its backoff (up to seconds per call) would let one attempt outlast
    # the deadline, and the test is about eucadb's retries being recorded
    monkeypatch.setattr(service, "cloud", CloudClients(config, connect_timeout=1, read_timeout=1, max_attempts=1))
    monkeypatch.setattr(service, "action_retry", Retry(deadline=2, initial_delay=0.2, max_delay=0.5,
                                                       retry_on=actions.ACTION_RETRY.retry_on,
                                                       is_transient=actions.ACTION_RETRY.is_transient))
    cw = endpoint.client()
    topic = "arn:aws:sns:us-east-1:123456789012:nobody-listens"
    cw.put_metric_alarm(AlarmName="unreachable", AlarmActions=[topic], **ALARM)
    cw.set_alarm_state(AlarmName="unreachable", StateValue="ALARM", StateReason="testing")
    assert actions.drain(service) == {"Failed": 1}
    assert actions.drain(service) == {}
    items = [json.loads(h["HistoryData"]) for h in _action_history(cw, "unreachable")]
    assert all(i["actionState"] == "Failed" and i["notificationResource"] == topic for i in items)
    retried = [i for i in items if i.get("retrying")]
    assert len(retried) >= 2 and len(items) == len(retried) + 1
    assert all("unreachable" in i["error"] for i in items)


def test_action_arns_and_the_notification_as_aws_writes_them():
    from eucadb.services.cloudwatch import action_arns, notification
    policy = ("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:c322761b-3172-4d56-9a21-0ed9d6161d67:"
              "autoScalingGroupName/web:policyName/scale-out")
    target = action_arns.parse(policy)
    assert (target.kind, target.group, target.policy) == ("autoscaling", "web", "scale-out")
    assert action_arns.parse("arn:aws:automate:us-east-1:ec2:terminate").operation == "terminate_instances"
    assert action_arns.parse("arn:aws-cn:sns:cn-north-1:123456789012:t").kind == "sns"
    assert notification.trigger({"Statistic": "SampleCount"})["Statistic"] == "SAMPLE_COUNT"
    assert notification.trigger({"ExtendedStatistic": "p99"})["StatisticType"] == "ExtendedStatistic"
    assert notification.region_name("eu-west-1") == "Europe (Ireland)"
    assert len(notification.subject("x" * 300, "ALARM", "us-east-1")) == 100
    assert notification.aws_time(datetime(2026, 12, 2, 4, 0, 1, 234567, tzinfo=timezone.utc)) == \
        "2026-12-02T04:00:01.234+0000"
