"""Composite alarms: the AlarmRule parser, PutCompositeAlarm, DescribeAlarms (AlarmTypes, children,
parents), DeleteAlarms of a referenced alarm and the evaluation in dependency order, through real
boto3 clients in all three wire protocols.

Where each expectation comes from is noted beside it: "model" is botocore's CloudWatch service model
(botocore/data/cloudwatch/2010-08-01/service-2.json, PutCompositeAlarm / DescribeAlarms /
DeleteAlarms documentation); AWS's own answers are quoted from the public issues named."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from eucadb.services.cloudwatch import alarm_rule
from eucadb.services.cloudwatch.alarm_rule import Const, Not, Op, Ref
from eucadb.services.cloudwatch.errors import ApiError
from eucadb.services.cloudwatch.evaluation import evaluate_all
from eucadb.services.cloudwatch.tables import ActionOutbox
from eucadb.services.cloudwatch.catalogue import LOCAL

from cwharness import PROTOCOLS

ARN = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:"


# --- the rule language (pure) -------------------------------------------------------------------
@pytest.mark.parametrize("rule, tree", [
    # the model's three examples
    ("ALARM(CPUUtilizationTooHigh) AND ALARM(DiskReadOpsTooHigh)",
     Op("AND", (Ref("ALARM", "CPUUtilizationTooHigh"), Ref("ALARM", "DiskReadOpsTooHigh")))),
    ("ALARM(CPUUtilizationTooHigh) AND NOT ALARM(DeploymentInProgress)",
     Op("AND", (Ref("ALARM", "CPUUtilizationTooHigh"), Not(Ref("ALARM", "DeploymentInProgress"))))),
    ("(ALARM(CPUUtilizationTooHigh) OR ALARM(DiskReadOpsTooHigh)) AND OK(NetworkOutTooHigh)",
     Op("AND", (Op("OR", (Ref("ALARM", "CPUUtilizationTooHigh"), Ref("ALARM", "DiskReadOpsTooHigh"))),
                Ref("OK", "NetworkOutTooHigh")))),
    # names may be in double quotes (model), and then hold spaces and parentheses
    ('INSUFFICIENT_DATA("my alarm (eu)")', Ref("INSUFFICIENT_DATA", "my alarm (eu)")),
    ("TRUE", Const(True)), ("false", Const(False)),   # DeleteAlarms doc: change the rule "to false"
    (f"ALARM({ARN}a) OR NOT NOT OK(b) AND FALSE",      # AND binds tighter than OR
     Op("OR", (Ref("ALARM", f"{ARN}a"), Op("AND", (Not(Not(Ref("OK", "b"))), Const(False)))))),
])
def test_rule_parses_to_its_tree(rule, tree):
    assert alarm_rule.parse(rule) == tree


@pytest.mark.parametrize("rule, message", [
    # AWS's answers: "Error in AlarmRule [Unsupported token ')' at char 1]" for "()" (aws/aws-cdk
    # issue 34662) and "... [Unsupported token 'Oldest' at char 67, must be: ')']" for an unquoted
    # name with spaces (aws/aws-cdk issue 13953)
    ("()", "Error in AlarmRule [Unsupported token ')' at char 1]"),
    ("ALARM(SampleQueue Oldest Age Alarm)", "Error in AlarmRule [Unsupported token 'Oldest' at char 18, must be: ')']"),
    ("ALARM(a) AND", "Error in AlarmRule [Unexpected end of rule at char 12]"),
    ("ALARM(a) OK(b)", "Error in AlarmRule [Unsupported token 'OK' at char 9]"),
    ("MAYBE(a)", "Error in AlarmRule [Unsupported token 'MAYBE' at char 0]"),
    ('ALARM("a)', "Error in AlarmRule [Unterminated quoted alarm name at char 6]"),
    # "AlarmRule must not contain leading or trailing whitespace or be null" (AWS's answer quoted in
    # hashicorp/terraform-provider-aws issue 19575)
    (" TRUE", "AlarmRule must not contain leading or trailing whitespace or be null"),
    ("T" * 10241, "1 validation error detected: Value at 'alarmRule' failed to satisfy constraint: "
                  "Member must have length less than or equal to 10240"),   # model: AlarmRule max 10240
])
def test_bad_rules_are_refused_with_aws_wording(rule, message):
    with pytest.raises(ApiError) as e:
        alarm_rule.parse(rule)
    assert (e.value.code, e.value.message) == ("ValidationError", message)


def test_rule_limits_children_and_elements():
    # "The AlarmRule can specify as many as 100 "children" alarms. The AlarmRule expression can have
    # as many as 500 elements." (model)
    alarm_rule.parse(" OR ".join(f"ALARM(a{i})" for i in range(100)))
    with pytest.raises(ApiError, match="at most 100 alarms"):
        alarm_rule.parse(" OR ".join(f"ALARM(a{i})" for i in range(101)))
    with pytest.raises(ApiError, match="at most 500 elements"):
        alarm_rule.parse(" OR ".join(["TRUE"] * 501))


def test_rule_evaluates_with_and_or_not():
    states = {"a": "ALARM", "b": "OK", "c": "INSUFFICIENT_DATA"}
    truth = lambda rule: alarm_rule.evaluate(alarm_rule.parse(rule), states.get)  # noqa: E731
    assert truth("ALARM(a) AND OK(b) AND INSUFFICIENT_DATA(c)")
    assert not truth("ALARM(a) AND NOT OK(b)")
    assert truth("(ALARM(b) OR ALARM(a)) AND NOT (OK(a) OR FALSE)")
    assert not truth("ALARM(missing)")


# --- the API -----------------------------------------------------------------------------------
def metric_alarm(cw, name: str, metric: str = "m") -> None:
    cw.put_metric_alarm(AlarmName=name, Namespace="Composite", MetricName=metric, Statistic="Maximum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")


def arn_prefix(endpoint) -> str:
    """This key's account's alarm ARNs (the harness's default account)."""
    return f"arn:aws:cloudwatch:us-east-1:{endpoint.account}:alarm:"


def error(excinfo) -> tuple[str, int, str]:
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_put_and_describe_composite_alarms(endpoint, protocol):
    cw = endpoint.client(protocol)
    ARN = arn_prefix(endpoint)
    p = f"{protocol}-put"
    metric_alarm(cw, f"{p}-cpu")
    metric_alarm(cw, f"{p}-disk")
    rule = f'ALARM({p}-cpu) AND NOT ALARM("{ARN}{p}-disk")'   # by name or by ARN (model)
    cw.put_composite_alarm(AlarmName=f"{p}-both", AlarmRule=rule, AlarmDescription="d",
                           ActionsSuppressor=f"{p}-disk", ActionsSuppressorWaitPeriod=60,
                           ActionsSuppressorExtensionPeriod=120, Tags=[{"Key": "team", "Value": "db"}])
    cw.put_composite_alarm(AlarmName=f"{p}-top", AlarmRule=f"ALARM({p}-both) OR FALSE")
    # "If you omit this parameter, only metric alarms are returned, even if composite alarms ...
    # exist" (model, AlarmTypes)
    default = cw.describe_alarms(AlarmNamePrefix=p)
    assert sorted(a["AlarmName"] for a in default["MetricAlarms"]) == [f"{p}-cpu", f"{p}-disk"]
    assert default["CompositeAlarms"] == []
    only = cw.describe_alarms(AlarmNamePrefix=p, AlarmTypes=["CompositeAlarm"])
    assert only["MetricAlarms"] == [] and [a["AlarmName"] for a in only["CompositeAlarms"]] == [f"{p}-both", f"{p}-top"]
    both = only["CompositeAlarms"][0]
    # members of the model's CompositeAlarm; a new alarm starts in INSUFFICIENT_DATA (model)
    assert both["AlarmRule"] == rule and both["AlarmArn"] == f"{ARN}{p}-both"
    assert both["StateValue"] == "INSUFFICIENT_DATA" and both["ActionsEnabled"] is True
    assert both["AlarmDescription"] == "d" and both["ActionsSuppressor"] == f"{p}-disk"
    assert (both["ActionsSuppressorWaitPeriod"], both["ActionsSuppressorExtensionPeriod"]) == (60, 120)
    assert both["AlarmActions"] == [] and "AlarmConfigurationUpdatedTimestamp" in both
    mixed = cw.describe_alarms(AlarmNamePrefix=p, AlarmTypes=["CompositeAlarm", "MetricAlarm"], MaxRecords=3)
    assert len(mixed["MetricAlarms"]) + len(mixed["CompositeAlarms"]) == 3 and "NextToken" in mixed
    rest = cw.describe_alarms(AlarmNamePrefix=p, AlarmTypes=["CompositeAlarm", "MetricAlarm"], NextToken=mixed["NextToken"])
    assert [a["AlarmName"] for a in rest["CompositeAlarms"] + rest["MetricAlarms"]] == [f"{p}-top"]
    tags = cw.list_tags_for_resource(ResourceARN=f"{ARN}{p}-both")["Tags"]
    assert tags == [{"Key": "team", "Value": "db"}]

    # children: "Only the Alarm Name, ARN, StateValue ... and StateUpdatedTimestamp" (model)
    kids = cw.describe_alarms(ChildrenOfAlarmName=f"{p}-both")
    assert sorted(a["AlarmName"] for a in kids["MetricAlarms"]) == [f"{p}-cpu", f"{p}-disk"]
    assert set(kids["MetricAlarms"][0]) == {"AlarmName", "AlarmArn", "StateValue", "StateUpdatedTimestamp"}
    assert [a["AlarmName"] for a in cw.describe_alarms(ChildrenOfAlarmName=f"{p}-top")["CompositeAlarms"]] == [f"{p}-both"]
    # parents: "Only the Alarm Name and ARN are returned" (model)
    parents = cw.describe_alarms(ParentsOfAlarmName=f"{p}-cpu")
    assert parents["CompositeAlarms"] == [{"AlarmName": f"{p}-both", "AlarmArn": f"{ARN}{p}-both"}]
    # "you cannot specify any other parameters ... except for MaxRecords and NextToken. If you do
    # so, you receive a validation error" (model)
    with pytest.raises(ClientError) as e:
        cw.describe_alarms(ChildrenOfAlarmName=f"{p}-both", AlarmNamePrefix=p)
    assert error(e)[:2] == ("ValidationError", 400)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_put_composite_refusals(endpoint, protocol):
    cw = endpoint.client(protocol)
    p = f"{protocol}-refuse"
    metric_alarm(cw, f"{p}-m")
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=f"{p}-c", AlarmRule=f"ALARM({p}-m) AND ALARM({p}-gone)")
    # AWS's answer quoted in awsdocs/aws-cloudformation-user-guide issue 911
    assert error(e) == ("ValidationError", 400,
                        f"Could not save the composite alarm as alarms [{p}-gone] in the alarm rule do not exist")
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=f"{p}-c", AlarmRule="()")
    assert error(e) == ("ValidationError", 400, "Error in AlarmRule [Unsupported token ')' at char 1]")
    # an ARN of another account names no alarm here
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=f"{p}-c", AlarmRule=f"ALARM(arn:aws:cloudwatch:us-east-1:111111111111:alarm:{p}-m)")
    assert error(e)[:2] == ("ValidationError", 400)
    # cycles: a rule that names itself, or closes a loop through another composite
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=f"{p}-self", AlarmRule=f"ALARM({p}-self)")
    assert error(e)[0] == "ValidationError"
    cw.put_composite_alarm(AlarmName=f"{p}-a", AlarmRule=f"ALARM({p}-m)")
    cw.put_composite_alarm(AlarmName=f"{p}-b", AlarmRule=f"ALARM({p}-a)")
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=f"{p}-a", AlarmRule=f"OK({p}-b)")
    assert error(e)[:2] == ("ValidationError", 400) and f"{p}-a -> {p}-b -> {p}-a" in error(e)[2]
    stored = cw.describe_alarms(AlarmNames=[f"{p}-a"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert stored[0]["AlarmRule"] == f"ALARM({p}-m)"   # the refused update changed nothing
    # a metric alarm and a composite share one name space
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=f"{p}-m", AlarmRule="TRUE")
    assert error(e)[:2] == ("ValidationError", 400)
    with pytest.raises(ClientError) as e:
        metric_alarm(cw, f"{p}-a")
    assert error(e)[:2] == ("ValidationError", 400)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_delete_of_a_referenced_alarm_is_refused(endpoint, protocol):
    cw = endpoint.client(protocol)
    p = f"{protocol}-del"
    metric_alarm(cw, f"{p}-x")
    metric_alarm(cw, f"{p}-y")
    cw.put_composite_alarm(AlarmName=f"{p}-c", AlarmRule=f"ALARM({p}-x) OR ALARM({p}-y)")
    # AWS: "ValidationError: Cannot delete abc,xyz as there are composite alarm(s) depending on
    # them." (cloud-custodian/cloud-custodian issue 7763), "... depending on it." for one
    # (ekristen/aws-nuke issue 462), status 400
    with pytest.raises(ClientError) as e:
        cw.delete_alarms(AlarmNames=[f"{p}-x", f"{p}-y"])
    assert error(e) == ("ValidationError", 400,
                        f"Cannot delete {p}-x,{p}-y as there are composite alarm(s) depending on them.")
    with pytest.raises(ClientError) as e:
        cw.delete_alarms(AlarmNames=[f"{p}-x"])
    assert error(e)[2] == f"Cannot delete {p}-x as there are composite alarm(s) depending on it."
    assert len(cw.describe_alarms(AlarmNamePrefix=p)["MetricAlarms"]) == 2   # nothing was deleted
    cw.delete_alarms(AlarmNames=[f"{p}-c"])
    cw.delete_alarms(AlarmNames=[f"{p}-x", f"{p}-y"])
    left = cw.describe_alarms(AlarmNamePrefix=p, AlarmTypes=["CompositeAlarm", "MetricAlarm"])
    assert (left["MetricAlarms"], left["CompositeAlarms"]) == ([], [])


def test_composites_evaluate_in_dependency_order_with_history_and_actions(endpoint, monkeypatch):
    cw = endpoint.client()
    ARN = arn_prefix(endpoint)
    p = "eval"
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    at = clock.replace(second=0) - timedelta(seconds=30)
    # cpu breaches its threshold (1.0), net does not: the metric alarms go to ALARM and OK first
    cw.put_metric_data(Namespace="Composite", MetricData=[{"MetricName": "eval-cpu", "Value": 5.0, "Timestamp": at},
                                                           {"MetricName": "eval-net", "Value": 0.0, "Timestamp": at}])
    metric_alarm(cw, f"{p}-cpu", "eval-cpu")
    metric_alarm(cw, f"{p}-net", "eval-net")
    topic = "arn:aws:sns:us-east-1:000000000000:composite-topic"
    # names sort so that the outer composite comes first: evaluation must still go children first
    cw.put_composite_alarm(AlarmName=f"{p}-z-inner", AlarmRule=f"ALARM({p}-cpu)")
    cw.put_composite_alarm(AlarmName=f"{p}-a-outer", AlarmRule=f"ALARM({p}-z-inner) AND OK({p}-net)",
                           AlarmActions=[topic])
    monkeypatch.setattr(endpoint.service, "clock", lambda: clock)
    evaluate_all(endpoint.service)

    def composites():
        out = cw.describe_alarms(AlarmNamePrefix=p, AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
        return {a["AlarmName"]: a for a in out}
    found = composites()
    # one pass: the inner one went to ALARM first, and the outer one saw it
    assert (found[f"{p}-z-inner"]["StateValue"], found[f"{p}-a-outer"]["StateValue"]) == ("ALARM", "ALARM")
    data = json.loads(found[f"{p}-a-outer"]["StateReasonData"])
    assert data["triggeringAlarms"][0]["arn"].startswith(ARN)
    # DescribeAlarmHistory AlarmTypes: "If you omit this parameter, only metric alarms are returned" (model)
    assert cw.describe_alarm_history(AlarmName=f"{p}-a-outer")["AlarmHistoryItems"] == []
    hist = cw.describe_alarm_history(AlarmName=f"{p}-a-outer", HistoryItemType="StateUpdate",
                                     AlarmTypes=["CompositeAlarm"])["AlarmHistoryItems"]
    assert hist[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert hist[0]["AlarmType"] == "CompositeAlarm"
    both = cw.describe_alarm_history(AlarmTypes=["CompositeAlarm", "MetricAlarm"], MaxRecords=100)["AlarmHistoryItems"]
    assert {f"{p}-a-outer", f"{p}-cpu"} <= {h["AlarmName"] for h in both}
    metric_only = cw.describe_alarm_history(MaxRecords=100)["AlarmHistoryItems"]
    assert f"{p}-cpu" in {h["AlarmName"] for h in metric_only}
    assert not {f"{p}-a-outer", f"{p}-z-inner"} & {h["AlarmName"] for h in metric_only}
    with endpoint.service.pools.session(LOCAL) as s:
        staged = [r.action for r in s.query(ActionOutbox).filter_by(alarm_name=f"{p}-a-outer")]
    assert staged == [topic]   # the composite's ALARM actions, staged with the transition
    # a composite is only ALARM or OK after creation (model): with cpu's data gone (a later
    # minute), cpu is INSUFFICIENT_DATA and the inner composite OK, not INSUFFICIENT_DATA
    monkeypatch.setattr(endpoint.service, "clock", lambda: clock + timedelta(minutes=10))
    evaluate_all(endpoint.service)
    found = composites()
    assert (found[f"{p}-z-inner"]["StateValue"], found[f"{p}-a-outer"]["StateValue"]) == ("OK", "OK")


def test_actions_suppressor_in_alarm_holds_the_actions(endpoint, monkeypatch):
    cw = endpoint.client()
    p = "suppress"
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    at = clock.replace(second=0) - timedelta(seconds=30)
    cw.put_metric_data(Namespace="Composite", MetricData=[{"MetricName": f"{p}-{m}", "Value": 5.0, "Timestamp": at}
                                                           for m in ("cpu", "deploy")])
    metric_alarm(cw, f"{p}-cpu", f"{p}-cpu")
    metric_alarm(cw, f"{p}-deploy", f"{p}-deploy")
    topic = "arn:aws:sns:us-east-1:000000000000:composite-topic"
    # "Actions will be suppressed if the suppressor alarm is in the ALARM state" (model)
    cw.put_composite_alarm(AlarmName=f"{p}-c", AlarmRule=f"ALARM({p}-cpu)", AlarmActions=[topic],
                           ActionsSuppressor=f"{p}-deploy", ActionsSuppressorWaitPeriod=60,
                           ActionsSuppressorExtensionPeriod=60)
    monkeypatch.setattr(endpoint.service, "clock", lambda: clock)
    evaluate_all(endpoint.service)
    found = cw.describe_alarms(AlarmNames=[f"{p}-c"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0]
    assert found["StateValue"] == "ALARM"
    assert found["ActionsSuppressedBy"] == "Alarm"   # the model's ActionsSuppressedBy enum
    # held with the transition, not carried out (test_cw_suppression.py follows it to the end)
    from eucadb.services.cloudwatch.actions import pending
    with endpoint.service.pools.session(LOCAL) as s:
        rows = [(r.id, r.outcome) for r in s.query(ActionOutbox).filter_by(alarm_name=f"{p}-c")]
    assert [o for _, o in rows] == ["Held"] and not {i for i, _ in rows} & set(pending(endpoint.service.pools))


def test_a_composite_notification_carries_its_rule_not_a_metric_trigger():
    from eucadb.services.cloudwatch import notification
    now = datetime.now(timezone.utc)
    text = notification.message({"AlarmName": "c", "AlarmRule": "ALARM(a)"}, account="000000000000",
                                region="us-east-1", alarm_arn=ARN + "c", old="OK", new="ALARM", reason="r",
                                changed_at=now, configured_at=now)
    body = json.loads(text)
    assert body["AlarmRule"] == "ALARM(a)" and "Trigger" not in body


def test_composites_are_scoped_to_the_account(endpoint):
    """A rule names only its own account's alarms; another account neither sees the composite nor
    can name the first account's alarms (issue 15, item 1)."""
    cw = endpoint.client()
    metric_alarm(cw, "tenant-m")
    cw.put_composite_alarm(AlarmName="tenant-c", AlarmRule="ALARM(tenant-m)")
    other = endpoint.as_account("222222222222").client()
    assert other.describe_alarms(AlarmTypes=["CompositeAlarm"], AlarmNamePrefix="tenant")["CompositeAlarms"] == []
    assert other.describe_alarms(ParentsOfAlarmName="tenant-m")["CompositeAlarms"] == []
    with pytest.raises(ClientError) as e:
        other.put_composite_alarm(AlarmName="tenant-c", AlarmRule="ALARM(tenant-m)")
    assert error(e)[2] == "Could not save the composite alarm as alarms [tenant-m] in the alarm rule do not exist"
    with pytest.raises(ClientError) as e:   # by the first account's ARN: still not this account's alarm
        other.put_composite_alarm(AlarmName="tenant-c", AlarmRule=f"ALARM({arn_prefix(endpoint)}tenant-m)")
    assert error(e)[0] == "ValidationError"
    other.put_composite_alarm(AlarmName="tenant-c", AlarmRule="TRUE")   # same name, its own alarm
    mine = cw.describe_alarms(AlarmNames=["tenant-c"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert mine[0]["AlarmRule"] == "ALARM(tenant-m)"
