"""Alarm actions that act: Auto Scaling policies, SNS topics and EC2 stop/terminate/reboot.

Why an outbox: the state change is a local transaction, the action a cloud call. `stage` adds one
row per action of the new state in the transaction that changes the state, so the two are one
outcome; the leader's `drain` carries the rows out through eucadb/cloud (the one client, with the
one retry helper), records every attempt in the alarm history (HistoryItemType Action) and marks
the row done in the same local transaction as the history of its last attempt.

Guarantees: a transition's actions are never lost (the row exists before any call) and never
staged twice (one row per transition and action, unique). A leader killed after the cloud accepted
a call and before the row was marked done does the call again when the next leader drains: at
least once, as no API here has an idempotency token (ExecutePolicy, Publish to a standard topic,
Stop/Terminate/RebootInstances). The window is the time from the cloud's answer to one local
commit (milliseconds); the row's `attempts` says an earlier attempt may have gone through, and the
history item of the repeat says so.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from botocore.exceptions import ClientError
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from eucadb.cloud.client import error_code, error_message, is_transient
from eucadb.errors import CloudError, CloudUnreachable
from eucadb.retry import Retry, RetryTimeout
from eucadb.services.cloudwatch import history, notification
from eucadb.services.cloudwatch.action_arns import Target, parse
from eucadb.services.cloudwatch.catalogue import LOCAL
from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.tables import ActionOutbox

log = logging.getLogger(__name__)
MEMBER_OF_STATE = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}
KEEP_DONE = timedelta(days=1)   # done rows kept this long (for inspection), then purged
HELD = "Held"   # outcome of a suppressed composite's row until released (suppression.py)
ACTION_RETRY = Retry(deadline=60, max_delay=10, retry_on=(ClientError, CloudUnreachable), is_transient=is_transient)


@dataclass(frozen=True)
class Context:
    """What the actions of one transition need, frozen at the transition (the alarm may change or
    be deleted before the leader drains; AWS acts on the transition as it happened)."""

    definition: dict
    alarm_arn: str
    region: str
    old: str
    new: str
    reason: str
    changed_at: str          # ISO 8601
    configured_at: str
    metric_value: float | None = None   # the newest evaluated datapoint (step scaling policies)


def stage(s: Session, account: str, name: str, definition: dict, context: Context, held: bool = False) -> int:
    """Add the new state's actions to the outbox in the caller's transaction; how many were added.
    Nothing when ActionsEnabled is false (AWS: "Indicates whether actions should be executed").
    `held`: a suppressed composite's actions, which `pending` leaves out until released."""
    if not definition.get("ActionsEnabled", True):
        return 0
    arns = list(dict.fromkeys(definition.get(MEMBER_OF_STATE[context.new]) or ()))
    transition = str(uuid.uuid4())
    body = json.dumps(asdict(context), default=str)
    s.add_all(ActionOutbox(account=account, alarm_name=name, transition_id=transition, action=arn,
                           context=body, created_at=datetime.fromisoformat(context.changed_at),
                           outcome=HELD if held else None)
              for arn in arns)
    return len(arns)


def pending(pools) -> list[int]:
    with pools.session(LOCAL) as s:
        return list(s.scalars(select(ActionOutbox.id).where(
            ActionOutbox.done_at.is_(None), or_(ActionOutbox.outcome.is_(None), ActionOutbox.outcome != HELD))
            .order_by(ActionOutbox.id)))


# --- carrying an action out -------------------------------------------------------------------
def _instance(ctx: Context) -> str:
    for d in ctx.definition.get("Dimensions", []):
        if d.get("Name") == "InstanceId":
            return d["Value"]
    raise CloudError("the alarm's metric has no InstanceId dimension")


def _publish(cloud, target: Target, ctx: Context) -> dict[str, Any]:
    d = ctx.definition
    text = notification.message(d, account=_account_of(ctx), region=ctx.region,
                                alarm_arn=ctx.alarm_arn, old=ctx.old, new=ctx.new, reason=ctx.reason,
                                changed_at=datetime.fromisoformat(ctx.changed_at),
                                configured_at=datetime.fromisoformat(ctx.configured_at))
    cloud.call("sns", "publish", TopicArn=target.arn, Message=text,
               Subject=notification.subject(d["AlarmName"], ctx.new, ctx.region))
    return {"notificationResource": target.arn, "publishedMessage": text}


def _account_of(ctx: Context) -> str:
    return ctx.alarm_arn.split(":")[4]


def _execute_policy(cloud, target: Target, ctx: Context) -> dict[str, Any]:
    found = cloud.call("autoscaling", "describe_policies", AutoScalingGroupName=target.group,
                       PolicyNames=[target.policy])["ScalingPolicies"]
    params: dict[str, Any] = {"AutoScalingGroupName": target.group, "PolicyName": target.policy,
                              "HonorCooldown": True}
    if found and found[0].get("PolicyType") == "StepScaling" and ctx.metric_value is not None:
        # "MetricValue: Required if the policy type is StepScaling and not supported otherwise"
        params.update(MetricValue=ctx.metric_value, BreachThreshold=ctx.definition["Threshold"])
    cloud.call("autoscaling", "execute_policy", **params)
    return {"notificationResource": target.arn}


def _ec2(cloud, target: Target, ctx: Context) -> dict[str, Any]:
    instance = _instance(ctx)
    cloud.call("ec2", target.operation, InstanceIds=[instance])
    return {"notificationResource": target.arn, "instanceId": instance}


EXECUTORS: dict[str, Callable[[Any, Target, Context], dict[str, Any]]] = {
    "sns": _publish, "autoscaling": _execute_policy, "ec2": _ec2}


def describe(exc: BaseException) -> str:
    """The error as the cloud worded it ("ValidationError: No scaling policy found ...")."""
    if isinstance(exc, RetryTimeout) and exc.last is not None:
        return describe(exc.last)
    if isinstance(exc, ClientError):
        return f"{error_code(exc)}: {error_message(exc)}"
    return str(exc)


def _record(cw, row_id: int, account: str, name: str, arn: str, state: str, data: dict[str, Any],
            final: bool) -> None:
    """One attempt in the history; the last one also marks the row done, in the same transaction."""
    now = cw.clock()
    summary = (f"Successfully executed action {arn}" if state == "Succeeded"
               else f"Failed to execute action {arn}")
    with cw.pools.session(LOCAL) as s:
        history.stage(s, account, name, now, "Action", summary,
                      {"actionState": state, "stateUpdateTimestamp": int(now.timestamp() * 1000), **data})
        if final:
            row = s.get(ActionOutbox, row_id)
            row.done_at, row.outcome = now, state


def _begin_attempt(cw, row_id: int) -> int:
    with cw.pools.session(LOCAL) as s:
        row = s.get(ActionOutbox, row_id)
        row.attempts += 1
        return row.attempts


def carry_out(cw, row_id: int) -> str:
    """Carry out one outbox row (with retries); its outcome, Succeeded or Failed."""
    with cw.pools.session(LOCAL) as s:
        row = s.get(ActionOutbox, row_id)
        if row is None or row.done_at is not None:
            return row.outcome if row else "Succeeded"
        account, name, arn = row.account, row.alarm_name, row.action
        ctx, earlier = Context(**json.loads(row.context)), row.attempts
    note = {"repeatedAfterInterruptedAttempt": True} if earlier else {}
    try:
        target = parse(arn)
    except ApiError as exc:   # an ARN stored by an older version: this action fails, the others run
        _record(cw, row_id, account, name, arn, "Failed", {"error": str(exc)}, final=True)
        return "Failed"
    executor = EXECUTORS[target.kind]

    def attempt() -> dict[str, Any]:
        n = _begin_attempt(cw, row_id)
        try:
            return executor(cw.cloud, target, ctx)
        except (ClientError, CloudError) as exc:
            if is_transient(exc):
                _record(cw, row_id, account, name, arn, "Failed",
                        {"notificationResource": arn, "error": describe(exc), "attempt": n, "retrying": True, **note},
                        final=False)
            raise
    try:
        if cw.cloud is None or not cw.cloud.configured:
            raise CloudError("no cloud is configured (cloud.endpoint_url)")
        data = (cw.action_retry or ACTION_RETRY).call(attempt, f"alarm {name} action {arn}")
    except (ClientError, CloudError, RetryTimeout) as exc:
        _record(cw, row_id, account, name, arn, "Failed", {"notificationResource": arn, "error": describe(exc), **note},
                final=True)
        log.warning("alarm %r: action %s failed: %s", name, arn, describe(exc))
        return "Failed"
    _record(cw, row_id, account, name, arn, "Succeeded", {**data, **note}, final=True)
    return "Succeeded"


def drain(cw, limit: int = 200) -> dict[str, int]:
    """Carry out pending actions, oldest first, while this server leads; outcomes counted."""
    counts: dict[str, int] = {}
    for row_id in pending(cw.pools)[:limit]:
        if not cw.is_leader():
            break
        outcome = carry_out(cw, row_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    with cw.pools.session(LOCAL) as s:
        s.execute(delete(ActionOutbox).where(ActionOutbox.done_at < cw.clock() - KEEP_DONE))
    if counts:
        history.deliver_soon(cw.pools)
    return counts
