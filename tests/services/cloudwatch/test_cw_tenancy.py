"""Tenancy: two accounts on one endpoint, real boto3 clients in all three wire protocols.

Neither account can read, list, change or learn of the other's metrics, alarms, alarm history,
dashboards or tags; the same name in both is two resources; an alarm of one account is evaluated on
that account's metrics only. Where the expectation comes from: AWS resources are per account, and a
resource of another account answers exactly as one that does not exist (the IAM User Guide,
"cross-account access" needs a resource policy or a role, neither of which CloudWatch's alarm,
dashboard or metric APIs have: https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies-cross-account-resource-access.html).
ARNs carry the owner's account (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
"""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from eucadb.resources import alembic_scripts
from eucadb.services.cloudwatch import catalogue
from eucadb.services.cloudwatch.catalogue import Catalogue, SeriesKey
from eucadb.services.cloudwatch.datapoints import REMOTE
from eucadb.services.cloudwatch.evaluation import evaluate_all

from cwharness import PROTOCOLS

A, B = "111111111111", "222222222222"
REGION = "us-east-1"
BODY_A = json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 3,
                                  "properties": {"markdown": "A"}}]})
BODY_B = BODY_A.replace('"A"', '"B"')


@pytest.fixture(scope="module")
def tenants(endpoint):
    return endpoint.as_account(A), endpoint.as_account(B)


def minute_ago(minutes: int) -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)


def outcome(call) -> tuple:
    """What a client learns from a call: its result (less the request metadata) or the error's code,
    message and HTTP status."""
    try:
        result = call()
    except ClientError as err:
        r = err.response
        return "error", r["Error"]["Code"], r["Error"].get("Message"), r["ResponseMetadata"]["HTTPStatusCode"]
    return "ok", {k: v for k, v in result.items() if k != "ResponseMetadata"}


def alarm_args(name: str, namespace: str, threshold: float = 50.0, **kw) -> dict:
    return dict(AlarmName=name, Namespace=namespace, MetricName="load", Dimensions=[{"Name": "Host", "Value": "h1"}],
                Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=threshold,
                ComparisonOperator="GreaterThanThreshold", **kw)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metrics_of_the_same_name_stay_apart_and_unseen(tenants, protocol):
    a, b = (t.client(protocol) for t in tenants)
    ns, t0 = f"Tenancy/{protocol}", minute_ago(10)
    dims = [{"Name": "Host", "Value": "h1"}]
    a.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "cpu", "Dimensions": dims, "Value": 10.0,
                                                 "Timestamp": t0 + timedelta(seconds=5)}])
    b.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "cpu", "Dimensions": dims, "Value": 99.0, "Timestamp": t0 + timedelta(seconds=6)},
        {"MetricName": "only-b", "Value": 1.0, "Timestamp": t0 + timedelta(seconds=7)}])
    window = dict(Namespace=ns, MetricName="cpu", Dimensions=dims, StartTime=t0, EndTime=t0 + timedelta(minutes=1),
                  Period=60)
    for client, value in ((a, 10.0), (b, 99.0)):
        points = client.get_metric_statistics(**window, Statistics=["Maximum", "SampleCount"])["Datapoints"]
        assert [(p["Maximum"], p["SampleCount"]) for p in points] == [(value, 1.0)]
        data = client.get_metric_data(StartTime=t0, EndTime=t0 + timedelta(minutes=1), MetricDataQueries=[
            {"Id": "m", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "cpu", "Dimensions": dims},
                                       "Period": 60, "Stat": "Maximum"}}])["MetricDataResults"]
        assert data[0]["Values"] == [value]
    only_b = dict(Namespace=ns, MetricName="only-b", StartTime=t0, EndTime=t0 + timedelta(minutes=1), Period=60,
                  Statistics=["Sum"])
    assert a.get_metric_statistics(**only_b)["Datapoints"] == []
    assert [p["Sum"] for p in b.get_metric_statistics(**only_b)["Datapoints"]] == [1.0]
    listed = {c: sorted(m["MetricName"] for m in c.list_metrics(Namespace=ns)["Metrics"]) for c in (a, b)}
    assert listed == {a: ["cpu"], b: ["cpu", "only-b"]}
    assert not [m for m in a.list_metrics()["Metrics"] if m["MetricName"] == "only-b"]
    assert a.list_metrics(MetricName="only-b")["Metrics"] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_list_metrics_token_is_the_accounts_own(tenants, protocol, monkeypatch):
    """ListMetrics pages by series id, counted across accounts: the token must not carry it readably
    (it would tell A how many series B makes) nor work for another account (InvalidNextToken, as for
    any token this endpoint did not give the caller)."""
    a, b = (t.client(protocol, retries={"total_max_attempts": 1}) for t in tenants)
    ns = f"TenancyPages/{protocol}"
    for client in (a, b):
        client.put_metric_data(Namespace=ns, MetricData=[{"MetricName": f"m{i}", "Value": 1.0} for i in range(3)])
    monkeypatch.setattr(catalogue, "PAGE", 1)
    first = a.list_metrics(Namespace=ns)
    token = first["NextToken"]
    sid = tenants[0].service.for_account(A).catalogue.find(SeriesKey.of(ns, first["Metrics"][0]["MetricName"], []))
    assert f"series:{sid}" not in base64.urlsafe_b64decode(token).decode()
    [second] = a.list_metrics(Namespace=ns, NextToken=token)["Metrics"]
    assert second["MetricName"] in {"m0", "m1", "m2"} - {first["Metrics"][0]["MetricName"]}
    with pytest.raises(ClientError) as err:
        b.list_metrics(Namespace=ns, NextToken=token)
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_alarms_of_the_same_name_are_two_alarms(tenants, protocol):
    a, b = (t.client(protocol) for t in tenants)
    name, ns = f"shared-{protocol}", f"TenancyAlarms/{protocol}"
    a.put_metric_alarm(**alarm_args(name, ns, 10.0))
    b.put_metric_alarm(**alarm_args(name, ns, 20.0))
    b.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="b only")
    for client, account, threshold, state in ((a, A, 10.0, "INSUFFICIENT_DATA"), (b, B, 20.0, "ALARM")):
        [found] = client.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        assert (found["Threshold"], found["StateValue"]) == (threshold, state)
        assert found["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}"
        [for_metric] = client.describe_alarms_for_metric(Namespace=ns, MetricName="load",
                                                         Dimensions=[{"Name": "Host", "Value": "h1"}])["MetricAlarms"]
        assert for_metric["Threshold"] == threshold
    a.delete_alarms(AlarmNames=[name])
    assert a.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
    assert [x["Threshold"] for x in b.describe_alarms(AlarmNames=[name])["MetricAlarms"]] == [20.0]
    history_a = [i["HistorySummary"] for i in a.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]]
    history_b = [i["HistorySummary"] for i in b.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]]
    assert history_a == [f'Alarm "{name}" deleted', f'Alarm "{name}" created']
    assert history_b == ["Alarm updated from INSUFFICIENT_DATA to ALARM", f'Alarm "{name}" created']
    b.delete_alarms(AlarmNames=[name])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_another_accounts_alarm_answers_as_a_missing_one(tenants, protocol):
    """Every alarm operation of A on B's alarm answers what it answers once that alarm no longer
    exists anywhere, and changes nothing of B's."""
    a, b = (t.client(protocol, retries={"total_max_attempts": 1}) for t in tenants)
    name, ns = f"secret-b-{protocol}", f"TenancySecret/{protocol}"
    b.put_metric_alarm(**alarm_args(name, ns, Tags=[{"Key": "owner", "Value": "b"}]))
    arn = b.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    calls = {
        "describe": lambda: a.describe_alarms(AlarmNames=[name]),
        "describe-prefix": lambda: a.describe_alarms(AlarmNamePrefix="secret-b-"),
        "describe-all": lambda: {"names": [x["AlarmName"] for x in a.describe_alarms(MaxRecords=100)["MetricAlarms"]
                                           if x["AlarmName"] == name]},
        "for-metric": lambda: a.describe_alarms_for_metric(Namespace=ns, MetricName="load",
                                                           Dimensions=[{"Name": "Host", "Value": "h1"}]),
        "history": lambda: a.describe_alarm_history(AlarmName=name),
        "history-all": lambda: {"names": [i["AlarmName"] for i in a.describe_alarm_history(MaxRecords=100)[
            "AlarmHistoryItems"] if i["AlarmName"] == name]},
        "set-state": lambda: a.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="from a"),
        "disable": lambda: a.disable_alarm_actions(AlarmNames=[name]),
        "delete": lambda: a.delete_alarms(AlarmNames=[name]),
        "list-tags": lambda: a.list_tags_for_resource(ResourceARN=arn),
        "tag": lambda: a.tag_resource(ResourceARN=arn, Tags=[{"Key": "owner", "Value": "a"}]),
        "untag": lambda: a.untag_resource(ResourceARN=arn, TagKeys=["owner"]),
    }
    while_b_has_it = {op: outcome(call) for op, call in calls.items()}
    [kept] = b.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert (kept["StateValue"], kept["ActionsEnabled"]) == ("INSUFFICIENT_DATA", True), "A changed nothing of B's"
    assert b.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "owner", "Value": "b"}]
    assert [i["HistorySummary"] for i in b.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]] == [
        f'Alarm "{name}" created']
    b.delete_alarms(AlarmNames=[name])
    b.put_metric_alarm(**alarm_args(f"other-{name}", f"{ns}/other"))   # B still has alarms: they are not A's
    once_gone = {op: outcome(call) for op, call in calls.items()}
    assert while_b_has_it == once_gone
    assert while_b_has_it["delete"][:3] == ("error", "ResourceNotFound", f"The following alarms were not found: {name}")
    b.delete_alarms(AlarmNames=[f"other-{name}"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dashboards_and_their_tags_are_the_accounts_own(tenants, protocol):
    a, b = (t.client(protocol, retries={"total_max_attempts": 1}) for t in tenants)
    name, secret = f"board-{protocol}", f"board-b-only-{protocol}"
    a.put_dashboard(DashboardName=name, DashboardBody=BODY_A, Tags=[{"Key": "owner", "Value": "a"}])
    b.put_dashboard(DashboardName=name, DashboardBody=BODY_B, Tags=[{"Key": "owner", "Value": "b"}])
    for client, account, body, owner in ((a, A, BODY_A, "a"), (b, B, BODY_B, "b")):
        got = client.get_dashboard(DashboardName=name)
        assert (got["DashboardBody"], got["DashboardArn"]) == (body, f"arn:aws:cloudwatch::{account}:dashboard/{name}")
        assert client.list_tags_for_resource(ResourceARN=got["DashboardArn"])["Tags"] == [{"Key": "owner",
                                                                                           "Value": owner}]
    b.put_dashboard(DashboardName=secret, DashboardBody=BODY_B)
    arn = f"arn:aws:cloudwatch::{B}:dashboard/{secret}"
    calls = {
        "get": lambda: a.get_dashboard(DashboardName=secret),
        "list": lambda: a.list_dashboards(DashboardNamePrefix="board-"),
        "delete": lambda: a.delete_dashboards(DashboardNames=[secret]),
        "list-tags": lambda: a.list_tags_for_resource(ResourceARN=arn),
        "tag": lambda: a.tag_resource(ResourceARN=arn, Tags=[{"Key": "k", "Value": "v"}]),
    }
    while_b_has_it = {op: outcome(call) for op, call in calls.items()}
    assert b.get_dashboard(DashboardName=secret)["DashboardBody"] == BODY_B, "A deleted nothing of B's"
    assert b.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    assert [e["DashboardName"] for e in while_b_has_it["list"][1]["DashboardEntries"]] == [name]
    b.delete_dashboards(DashboardNames=[secret])
    assert {op: outcome(call) for op, call in calls.items()} == while_b_has_it
    for client in (a, b):
        client.delete_dashboards(DashboardNames=[name])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_alarm_is_evaluated_on_its_own_accounts_metrics(endpoint, tenants, monkeypatch, protocol):
    a, b = (t.client(protocol) for t in tenants)
    clock = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    ns, name = f"TenancyEval/{protocol}", f"eval-{protocol}"
    dims = [{"Name": "Host", "Value": "h1"}]
    at = clock.replace(second=0) - timedelta(seconds=30)
    a.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "load", "Dimensions": dims, "Value": 10.0,
                                                 "Timestamp": at}])
    b.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "load", "Dimensions": dims, "Value": 100.0,
                                                 "Timestamp": at}])
    for client in (a, b):
        client.put_metric_alarm(**alarm_args(name, ns, 50.0))
    a.put_metric_alarm(**alarm_args(f"{name}-nodata", f"{ns}/a-has-none", 50.0))
    b.put_metric_data(Namespace=f"{ns}/a-has-none", MetricData=[{"MetricName": "load", "Dimensions": dims,
                                                                 "Value": 100.0, "Timestamp": at}])
    monkeypatch.setattr(endpoint.service, "clock", lambda: clock)
    evaluate_all(endpoint.service)
    states = {c: {x["AlarmName"]: x["StateValue"] for x in c.describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]}
              for c in (a, b)}
    assert states == {a: {name: "OK", f"{name}-nodata": "INSUFFICIENT_DATA"}, b: {name: "ALARM"}}
    for client in (a, b):
        client.delete_alarms(AlarmNames=[name, f"{name}-nodata"] if client is a else [name])


def test_an_admin_key_is_its_own_account_in_cloudwatch(endpoint, tenants):
    """Admin keys (eucadb credentials create --admin) act for every account in Reporting; CloudWatch's
    APIs have no cross-account reads on AWS, so here an admin key sees its own account only."""
    a = tenants[0].client("json")
    admin = endpoint.as_account("333333333333", admin=True).client("json")
    ns = f"TenancyAdmin/{uuid.uuid4().hex[:8]}"
    a.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "m", "Value": 1.0}])
    a.put_metric_alarm(**alarm_args(f"admin-{ns}", ns))
    assert admin.list_metrics(Namespace=ns)["Metrics"] == []
    assert admin.describe_alarms(AlarmNames=[f"admin-{ns}"])["MetricAlarms"] == []
    a.delete_alarms(AlarmNames=[f"admin-{ns}"])


def test_history_from_before_tenancy_is_the_default_accounts(endpoint, tenants):
    """Remote migration cw0004 leaves history rows written before tenancy without an account; they
    were the one tenant's, the installation's default account (the account of the first key)."""
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    with endpoint.service.pools.session(REMOTE) as s:
        s.execute(text("INSERT INTO alarm_history (alarm_name, ts, item_type, summary, data) VALUES "
                       "(:n, now(), 'ConfigurationUpdate', :summary, '{}')"), {"n": name, "summary": f"old {name}"})
    assert endpoint.account == endpoint.service.keys.default_account()
    seen = {t.account: [i["HistorySummary"] for i in t.client("query").describe_alarm_history(AlarmName=name)[
        "AlarmHistoryItems"]] for t in (endpoint, *tenants)}
    assert seen == {endpoint.account: [f"old {name}"], A: [], B: []}


def test_the_store_migration_gives_existing_cloudwatch_rows_the_default_account(tmp_path):
    """Store migration 0010: series, alarms, dashboards, tags and staged history written before
    tenancy (dashboards, tags and the outbox under the placeholder 000000000000) belong to the
    installation's default account; a series keeps its id (the remote datapoints refer to it)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with alembic_scripts("eucadb.store", "migrations") as cfg:
        cfg.attributes["connection_engine"] = engine
        command.upgrade(cfg, "0008")
        now = "2026-01-01 00:00:00"
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO cw_series (id, namespace, metric_name, dimensions, created_at) "
                              "VALUES (7, 'Old', 'cpu', '[]', :t)"), {"t": now})
            conn.execute(text("INSERT INTO cw_alarms (name, definition, state, state_reason, state_updated_at, "
                              "updated_at) VALUES ('old-alarm', '{}', 'OK', 'r', :t, :t)"), {"t": now})
            conn.execute(text("INSERT INTO cw_dashboards (account, name, body, size, updated_at) "
                              "VALUES ('000000000000', 'old-board', '{}', 2, :t)"), {"t": now})
            conn.execute(text("INSERT INTO cw_tags (account, resource_type, resource_name, key, value) "
                              "VALUES ('000000000000', 'alarm', 'old-alarm', 'k', 'v')"))
            conn.execute(text("INSERT INTO cw_history_outbox (account, event_id, alarm_name, ts, item_type, summary, "
                              "data) VALUES ('000000000000', 'e1', 'old-alarm', :t, 'StateUpdate', 's', '{}')"),
                         {"t": now})
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        default = conn.execute(text("SELECT value FROM installation_settings WHERE name = 'default_account'")).scalar()
        owners = {table: conn.execute(text(f"SELECT account FROM {table}")).scalars().all()
                  for table in ("cw_series", "cw_alarms", "cw_dashboards", "cw_tags", "cw_history_outbox")}
    assert owners == {table: [default] for table in owners}

    class Pools:   # the catalogue reads the migrated local store
        def session(self, context):
            return Session(engine)
    migrated = Catalogue(Pools())
    assert migrated.scoped(default).find(SeriesKey.of("Old", "cpu", [])) == 7
    assert migrated.scoped(A).find(SeriesKey.of("Old", "cpu", [])) is None
    engine.dispose()
