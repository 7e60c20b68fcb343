"""`eucadb serve` end to end: an alarm crossing its threshold scales a small group of its own (not the
database's) and notifies an SNS topic whose SQS queue gets the message exactly once per transition,
also when the leader is killed (SIGKILL) between the transition and the actions, and again after
they ran. Real embedded cloud, real PostgreSQL instance, real `eucadb serve` processes."""
from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from action_targets import make_targets  # noqa: E402
from e2e import module_cloud  # noqa: E402
from pg import free_port  # noqa: E402
from serving import W, Server, enabled  # noqa: E402

from eucadb.services.cloudwatch.tables import ActionOutbox  # noqa: E402

pytestmark = pytest.mark.slow
cloud = module_cloud("cwactions")
NEVER = "3600"   # an action interval no test outlives: the server stages actions and never drains them


def _outbox(env) -> list[ActionOutbox]:
    store = env.app().store
    try:
        with store.session() as s:
            rows = s.scalars(select(ActionOutbox)).all()
            s.expunge_all()
            return rows
    finally:
        store.dispose()


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_actions_run_once_per_transition_across_a_leader_kill(cloud):
    subnets = cloud.client("ec2").describe_subnets()["Subnets"]
    subnet = next(s["SubnetId"] for s in subnets if s["CidrBlock"].startswith(cloud.vpc.rsplit(".", 2)[0]))
    targets = make_targets(cloud.client, subnet)
    fast_eval = {"EUCADB_CLOUDWATCH_EVALUATION_INTERVAL": "2"}
    first = Server(cloud, free_port(), EUCADB_CLOUDWATCH_ACTION_INTERVAL=NEVER, **fast_eval)
    servers = [first]
    try:
        cloud.run("property", "set", f"{W}configured=true")
        first.wait(enabled, 240)
        key = json.loads(cloud.run("credentials", "create", "-o", "json").stdout)
        cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{first.port}/services/CloudWatch",
                          region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                          aws_secret_access_key=key["secret_access_key"])
        dims = [{"Name": "Host", "Value": "e2e"}]
        cw.put_metric_alarm(AlarmName="busy", Namespace="E2E", MetricName="load", Dimensions=dims,
                            Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=80.0,
                            ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore",
                            AlarmActions=[targets.policy_arn, targets.topic_arn])
        # a complete minute's datapoint (the evaluation looks at whole periods before now)
        cw.put_metric_data(Namespace="E2E", MetricData=[{"MetricName": "load", "Dimensions": dims, "Value": 95.0,
                                                         "Timestamp": datetime.now(timezone.utc) - timedelta(seconds=60)}])
        _wait(lambda: cw.describe_alarms(AlarmNames=["busy"])["MetricAlarms"][0]["StateValue"] == "ALARM", 60,
              "the alarm to go to ALARM")
        staged = _outbox(cloud)
        assert sorted(r.action for r in staged) == sorted([targets.policy_arn, targets.topic_arn])
        assert all(r.done_at is None for r in staged) and len({r.transition_id for r in staged}) == 1
        assert targets.desired() == 0 and targets.notifications(wait=0) == []

        first.stop(signal.SIGKILL)   # between the transition (committed) and its actions
        second = Server(cloud, free_port(), EUCADB_CLOUDWATCH_ACTION_INTERVAL="1", **fast_eval)
        servers.append(second)
        _wait(lambda: all(r.done_at is not None for r in _outbox(cloud)), 120, "the new leader to carry them out")
        assert targets.desired() == 1
        notes = targets.notifications()
        assert [(n["AlarmName"], n["NewStateValue"]) for n in notes] == [("busy", "ALARM")]
        assert {r.outcome for r in _outbox(cloud)} == {"Succeeded"}

        second.stop(signal.SIGKILL)  # after the actions: the next leader must not repeat them
        third = Server(cloud, free_port(), EUCADB_CLOUDWATCH_ACTION_INTERVAL="1", **fast_eval)
        servers.append(third)
        third.wait(enabled, 120)
        time.sleep(5)                # several evaluation and action passes of the new leader
        assert targets.desired() == 1 and targets.notifications(wait=1) == []
        cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{third.port}/services/CloudWatch",
                          region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                          aws_secret_access_key=key["secret_access_key"])
        history = _wait(lambda: cw.describe_alarm_history(AlarmName="busy", HistoryItemType="Action")
                        ["AlarmHistoryItems"], 30, "the action history")
        assert sorted(h["HistorySummary"] for h in history) == sorted(
            f"Successfully executed action {arn}" for arn in (targets.policy_arn, targets.topic_arn))
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.stop()
