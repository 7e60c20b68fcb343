"""Every server can serve: a follower builds its pools from the endpoint the leader published and
answers the APIs, while only the leader mutates the cloud — and a follower creates nothing."""
from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from e2e import module_cloud, sibling
from pg import free_port
from serving import W, Server, enabled, reporting_post
from eucadb.app import App
from eucadb.bootstrap.lease import LeaderLease
from eucadb.bootstrap.loop import Bootstrapper
from eucadb.config import load
from eucadb.store.models import Deployment, DeploymentSecret, PublishedEndpoint, WorkflowRun


def test_a_follower_creates_nothing(home):
    app = App(load())
    LeaderLease(app.store, ttl=600, holder="elsewhere:1:abc").acquire()
    loop = Bootstrapper(app)
    sentence = loop.cycle()
    assert sentence == "standing by: elsewhere:1:abc holds the leader lease; no database published yet"
    with app.store.session() as s:
        for table in (Deployment, DeploymentSecret, WorkflowRun, PublishedEndpoint):
            assert s.query(table).count() == 0, f"a follower wrote {table.__tablename__}"


@pytest.mark.slow
def test_a_follower_serves_the_apis_from_the_published_endpoint(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}configured": "true"})
    leader = Server(env, free_port())
    follower = None
    try:
        doc = leader.wait(enabled, 180)
        endpoint = doc["database"]["endpoint"]
        follower = Server(env, free_port())
        steady = f"serving the APIs from the database at {endpoint.split(':')[0]}"
        fdoc = follower.wait(lambda d: d.get("loop") and d["loop"]["sentence"].endswith(steady), 60)
        assert not fdoc["loop"]["leader"] and fdoc["database"]["endpoint"] == endpoint
        assert follower.get("/readyz")[0] == 200
        # CloudWatch through the follower, read back through the leader
        key = json.loads(env.run("credentials", "create", "-o", "json").stdout)

        def cw(port):
            return boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}/services/CloudWatch",
                                region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                                aws_secret_access_key=key["secret_access_key"])
        now = datetime.now(timezone.utc).replace(microsecond=0)
        cw(follower.port).put_metric_data(Namespace="Follow", MetricData=[
            {"MetricName": "M", "Value": v, "Timestamp": now} for v in (1.0, 2.0, 3.0)])
        stats = cw(leader.port).get_metric_statistics(
            Namespace="Follow", MetricName="M", StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5), Period=600, Statistics=["Sum", "SampleCount"])
        assert [(p["Sum"], p["SampleCount"]) for p in stats["Datapoints"]] == [(6.0, 3.0)]
        # Reporting through the follower too
        event = [{"ts": now.isoformat(), "account": "acct9", "resource_type": "volume", "resource_id": "vol-9",
                  "event": "create", "attributes": {"size_gib": 5}}]
        admin = json.loads(env.run("credentials", "create", "--admin", "-o", "json").stdout)
        request = reporting_post(f"http://127.0.0.1:{follower.port}/services/Reporting/events", event, admin)
        assert json.loads(urllib.request.urlopen(request, timeout=10).read()) == {"recorded": 1}
        # only the leader touched the cloud: the follower's log has no workflow and no cloud call
        assert "launch:" not in follower.log_text()
    finally:
        if follower:
            assert follower.stop() == 0
        env.run("property", "set", f"{W}configured=false")
        leader.wait(lambda d: d["workflow"]["kind"] == "teardown" and d["workflow"]["state"] == "succeeded", 180)
        assert leader.stop() == 0


cloud = module_cloud("follow")
