"""`eucadb serve` end to end: from nothing to ENABLED, instance loss and replacement, a property
change that rolls the instance, two servers and one leader, unconfigure. Real cloud, real PostgreSQL.
A stopped or crashed database instance is healed by its group: tests/bootstrap/test_healing.py."""
from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import ssl
import struct
import time
import urllib.error
import urllib.request

import psycopg2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from cryptography.hazmat.primitives import serialization

from e2e import module_cloud, sibling
from serving import W, Server, count_rows, enabled, insert_rows, reporting_post, wait_for_partitions
from eucadb.workflow.credentials import CLOUDWATCH
from eucadb.workflow import pki
from eucadb.workflow.deployment import Names, current_deployment
from eucadb.workflow.launch import LAUNCH_STEPS
from eucadb.workflow.vault import Pair
from pg import free_port

pytestmark = pytest.mark.slow


cloud = module_cloud("serve", **{f"{W}health_interval": "1"})


def test_serve_lifecycle(cloud):
    server = Server(cloud, free_port())
    try:
        seen: list = []
        code, _ = (0, "")
        while code == 0:
            code, body = server.get("/readyz")
            time.sleep(0.1)
        assert code == 503 and ("DISABLED" in body or "NOTREADY" in body), (code, body)
        cloud.run("property", "set", f"{W}configured=true")
        doc = server.wait(enabled, 180, seen)
        sentences = [s for s, _ in seen]
        assert any(s and s.startswith("launching: step") for s in sentences)
        assert server.get("/readyz")[0] == 200 and server.get("/healthz") == (200, "ok\n")
        code, metrics = server.get("/metrics")
        assert code == 200
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(metrics) for s in family.samples}
        assert samples[("eucadb_service_state", (("service", "cloudwatch"),))] == 3
        assert samples[("eucadb_leader", ())] == 1
        html = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{server.port}/status", headers={"Accept": "text/html"})).read().decode()
        assert "<table>" in html and "ENABLED" in html
        cli = json.loads(cloud.run("status", "-o", "json", EUCADB_SERVE_PORT=str(server.port)).stdout)
        assert cli["ready"] and cli["loop"]["leader"]
        use_the_services(cloud, server.port)
        first_ip = doc["database"]["endpoint"].split(":")[0]
        assert wait_for_partitions(cloud, first_ip), "the loop never created the daily partitions"

        # the instance dies: services leave ENABLED, the replacement comes up on the same volume,
        # pools are swapped without restarting the server, and no committed row is lost
        insert_rows(cloud, first_ip, 0, 200)
        cloud.client("ec2").terminate_instances(InstanceIds=[doc["instance"]["instance_id"]])
        seen.clear()
        doc = server.wait(lambda d: enabled(d) and not d["database"]["endpoint"].startswith(first_ip + ":"),
                          240, seen)
        assert any(set(states) & {"DEGRADED", "ENABLING", "DISABLED", "NOTREADY"} for _, states in seen)
        second_ip = doc["database"]["endpoint"].split(":")[0]
        assert count_rows(cloud, second_ip) == 200
        assert server.proc.poll() is None

        # a property that needs a new instance rolls it and keeps the data
        cloud.run("property", "set", f"{W}instance_type=m1.medium")
        doc = server.wait(lambda d: enabled(d) and not d["database"]["endpoint"].startswith(second_ip + ":")
                          and d["workflow"]["state"] == "succeeded", 240)
        third_ip = doc["database"]["endpoint"].split(":")[0]
        ec2 = cloud.client("ec2")
        running = ec2.describe_instances(InstanceIds=[doc["instance"]["instance_id"]])["Reservations"][0]
        assert running["Instances"][0]["InstanceType"] == "m1.medium"
        assert count_rows(cloud, third_ip) == 200

        # a second server stands by; after kill -9 of the leader it takes over with a new token
        standby = Server(cloud, free_port())
        try:
            doc2 = standby.wait(lambda d: "loop" in d and d["loop"]["cycles"] > 2, 60)
            assert not doc2["loop"]["leader"]
            before = _lease(cloud)
            assert before.holder == doc2["loop"]["leader_holder"] and f":{server.proc.pid}:" in before.holder
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=30)
            standby.wait(lambda d: d.get("loop", {}).get("leader"), 60)
            after = _lease(cloud)
            assert (after.token, f":{standby.proc.pid}:" in after.holder) == (before.token + 1, True)
            standby.wait(enabled, 120)

            # unconfigure: services disabled, pools drained, teardown keeps the volume
            cloud.run("property", "set", f"{W}configured=false")
            doc = standby.wait(lambda d: not d["ready"] and d["workflow"]["kind"] == "teardown"
                               and d["workflow"]["state"] == "succeeded", 180)
            assert all(s["state"] == "DISABLED" for s in doc["services"].values())
            volumes = ec2.describe_volumes(Filters=[{"Name": "tag:eucadb:deployment",
                                                     "Values": [doc["deployment"]]}])["Volumes"]
            assert len(volumes) == 1
            assert standby.get("/readyz")[0] == 503
        finally:
            assert standby.stop() == 0
        stopped = json.loads(cloud.run("status", "-o", "json", EUCADB_SERVE_PORT=str(standby.port)).stdout)
        assert not stopped["ready"] and "loop" not in stopped
    finally:
        if server.proc.poll() is None:
            server.stop()


def use_the_services(env, port: int) -> None:
    """The dependent services through the running server, against the remote database: boto3's
    CloudWatch client (as installed) with an eucadb key, and usage events + report."""
    import boto3
    from datetime import datetime, timedelta, timezone
    key = json.loads(env.run("credentials", "create", "-o", "json").stdout)
    cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}/services/CloudWatch",
                      region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                      aws_secret_access_key=key["secret_access_key"])
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    cw.put_metric_data(Namespace="E2E", MetricData=[
        {"MetricName": "Load", "Dimensions": [{"Name": "Host", "Value": "a"}], "Value": v,
         "Timestamp": now - timedelta(seconds=30)} for v in (1.0, 2.0, 6.0)])
    stats = cw.get_metric_statistics(Namespace="E2E", MetricName="Load", Dimensions=[{"Name": "Host", "Value": "a"}],
                                     StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
                                     Period=600, Statistics=["Sum", "Average", "Maximum", "SampleCount"])
    point = stats["Datapoints"][0]
    assert (point["Sum"], point["Average"], point["Maximum"], point["SampleCount"]) == (9.0, 3.0, 6.0, 3.0)
    start = (now - timedelta(hours=3)).isoformat()
    events = [{"ts": start, "account": "acct1", "resource_type": "instance", "resource_id": "i-1",
               "event": "create", "attributes": {"instance_type": "m1.small"}},
              {"ts": (now - timedelta(hours=1)).isoformat(), "account": "acct1", "resource_type": "instance",
               "resource_id": "i-1", "event": "delete", "attributes": {}}]
    admin = json.loads(env.run("credentials", "create", "--admin", "-o", "json").stdout)
    request = reporting_post(f"http://127.0.0.1:{port}/services/Reporting/events", events, admin)
    assert json.loads(urllib.request.urlopen(request, timeout=10).read())["recorded"] == 2
    report = env.run("report", "usage", "--start", start, "--end", now.isoformat(), "--format", "json",
                     EUCADB_SERVE_PORT=str(port)).stdout
    rows = json.loads(report)["rows"]
    assert [(r["account"], r["resource_type"], r["item"], r["unit"], r["quantity"]) for r in rows] == \
        [("acct1", "instance", "m1.small", "instance-hours", 2.0)], rows


def _lease(env):
    from eucadb.bootstrap.lease import LeaderLease
    return LeaderLease(env.app().store, ttl=1).current()


def served_certificate(endpoint: str) -> bytes:
    """The certificate PostgreSQL presents at `endpoint` (ip:port), DER: SSLRequest, then a handshake."""
    host, port = endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877103))
        assert sock.recv(1) == b"S", "the server refused TLS"
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # we compare, not verify
        with context.wrap_socket(sock) as tls:
            return tls.getpeercert(binary_form=True)


def der(pem: str) -> bytes:
    return pki.load_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_certificate_past_two_thirds_of_its_lifetime_is_renewed_on_a_new_instance(cloud, tmp_path):
    """Nobody asks for it: the leader sees the server certificate is due, launches again (new
    certificate, new instance, same volume), and clients verify the new certificate; rows survive."""
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}configured": "true"})
    server = Server(env, free_port())
    try:
        doc = server.wait(enabled, 180)
        first = doc["instance"]["instance_id"]
        insert_rows(env, doc["database"]["endpoint"].split(":")[0], 0, 20)
        app = env.app()
        deployment = current_deployment(app.store)
        vault = app.vault(deployment)
        assert served_certificate(doc["database"]["endpoint"]) == der(vault.server_cert())
        # the same CA's pair, issued as if 250 of its 365 days had passed
        issued = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=250)
        ca = vault.ca()
        key, aged = pki.issue_server_certificate(ca.key, ca.cert, Names(deployment).dns_name, 365, now=issued)
        vault.put_key_material(Pair(key, aged))
        doc = server.wait(lambda d: enabled(d) and d["instance"]["instance_id"] != first
                          and d["database"]["endpoint"].split(":")[0] == d["instance"]["private_ip"]
                          and d["workflow"]["state"] == "succeeded", 240)
        renewed = vault.server_cert()
        assert renewed != aged and not pki.needs_renewal(renewed)
        assert served_certificate(doc["database"]["endpoint"]) == der(renewed)
        assert count_rows(env, doc["database"]["endpoint"].split(":")[0]) == 20
        log = (env.home / f"serve-{server.port}.log").read_text()
        assert "renewing: the server certificate expires" in log
        assert log.count("renewing: ") == 1, "one renewal, not a launch per cycle"
        env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"]["kind"] == "teardown" and d["workflow"]["state"] == "succeeded", 180)
    finally:
        assert server.stop() == 0


def test_rotated_passwords_roll_the_instance_and_the_old_ones_stop_working(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}configured": "true"})
    server = Server(env, free_port())
    try:
        bad = env.run("workflow", "rotate-passwords", "--role", "nobody", check=False)
        assert bad.returncode == 1 and "unknown role nobody; roles are: admin, cloudwatch" in bad.stderr
        doc = server.wait(enabled, 180)
        first = doc["instance"]["instance_id"]
        insert_rows(env, doc["database"]["endpoint"].split(":")[0], 0, 30)
        before = env.app().vault(current_deployment(env.app().store)).db_logins()
        done = env.run("workflow", "rotate-passwords", "--role", "cloudwatch")
        assert "cloudwatch_writer" in done.stdout and before[CLOUDWATCH]["password"] not in done.stdout
        doc = server.wait(lambda d: enabled(d) and d["instance"]["instance_id"] != first
                          and d["database"]["endpoint"].split(":")[0] == d["instance"]["private_ip"]
                          and d["workflow"]["state"] == "succeeded", 240)
        address = doc["database"]["endpoint"].split(":")[0]
        after = env.app().vault(current_deployment(env.app().store)).db_logins()
        assert after[CLOUDWATCH]["password"] != before[CLOUDWATCH]["password"]
        assert after["reporting"] == before["reporting"], "only the role asked for"
        assert count_rows(env, address) == 30  # as the writer, with the new password
        app = env.app()
        endpoint = app.vault(current_deployment(app.store)).db_endpoint(address)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(**endpoint.connect_args(before[CLOUDWATCH]["user"], before[CLOUDWATCH]["password"],
                                                     "eucalyptus_cloudwatch_backend"))
        log = (env.home / f"serve-{server.port}.log").read_text()
        assert log.count("rotating: the database passwords changed") == 1
        assert before[CLOUDWATCH]["password"] not in log and after[CLOUDWATCH]["password"] not in log
        env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"]["kind"] == "teardown" and d["workflow"]["state"] == "succeeded", 180)
    finally:
        assert server.stop() == 0


def test_sigterm_while_waiting_for_a_database_that_never_answers(cloud, tmp_path):
    """Graceful shutdown must not hang on a DB that is gone: the launch is persisted step by step,
    so the server exits at once and the next start resumes the run."""
    from pathlib import Path
    probe = Path(__file__).parents[1] / "cloud" / "boot_programs" / "probe.py"
    env = sibling(cloud, tmp_path)
    mute = env.run("image", "install", "--local", "--boot-program", str(probe)).stdout.strip().split()[-1]
    env.run("property", "set", f"{W}configured=true", f"{W}image={mute}")
    server = Server(env, free_port())
    try:
        last = f"launching: step {len(LAUNCH_STEPS)}/{len(LAUNCH_STEPS)}"   # waiting for the database
        server.wait(lambda d: (d.get("loop") or {}).get("sentence", "").startswith(last), 120)
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 30
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    assert shown["state"] == "running" and shown["steps"][-1]["state"] == "running"
    env.run("workflow", "teardown", "--delete-volume")
