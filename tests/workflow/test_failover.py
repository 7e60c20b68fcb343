"""Automatic failover end to end: replicas=2, synchronous=on, a steady PutMetricData load, and the
primary's postmaster killed with -9. The leader fences the old primary through the cloud (its group
held at zero, its instance terminated, confirmed) before it promotes the most advanced replica,
re-points the other, swaps the pools and enables the services again; the members workflow then
rebuilds the lost member as a fresh replica on a new volume. Every acknowledged datapoint is
counted and must be found afterwards."""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone

import psycopg2
import pytest

from e2e import module_cloud, sibling
from pg import free_port
from replication import primary_of, streaming
from serving import W, MetricWriter, Server, count_rows, enabled, insert_rows, postmaster_pid

pytestmark = pytest.mark.slow

cloud = module_cloud("failover")


def test_kill_9_of_the_primary_fails_over_with_no_acknowledged_write_lost(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}replicas": "2",
                                      f"{W}synchronous": "on", f"{W}configured": "true"})
    server = Server(env, free_port())
    try:
        doc = server.wait(lambda d: streaming(d, 2) and d["workflow"]["kind"] == "members"
                          and d["workflow"]["state"] == "succeeded", 900)
        old = primary_of(doc)
        assert old["name"] == "m0"
        since = datetime.now(timezone.utc)
        with MetricWriter(env, server.port, namespace="Failover") as writer:
            while writer.acked < 30:
                time.sleep(0.1)
            os.kill(postmaster_pid(cloud, old["instance_id"]), signal.SIGKILL)
            lost_at = time.monotonic()
            doc = server.wait(lambda d: enabled(d) and d["instance"]["instance_id"] != old["instance_id"]
                              and (primary_of(d) or {}).get("name") not in (None, "m0"), 300)
            to_enabled = time.monotonic() - lost_at
            new = primary_of(doc)
            acked_at_failover = writer.acked
            while writer.acked < acked_at_failover + 30:     # writes flow again on the new primary
                time.sleep(0.1)
            # the lost member is rebuilt as a replica: the replica count is back to 2
            doc = server.wait(lambda d: streaming(d, 2) and d["workflow"]["kind"] == "members"
                              and d["workflow"]["state"] == "succeeded", 600)
            rebuilt = time.monotonic() - lost_at
        stored = writer.stored(since)
        print(f"failover: kill -9 of the primary's postmaster -> ENABLED on {new['name']} in {to_enabled:.1f}s, "
              f"replicas back to 2 in {rebuilt:.1f}s; writes acknowledged {writer.acked}, refused "
              f"{writer.refused}, found {stored}")
        assert writer.acked <= stored <= writer.attempted, "an acknowledged datapoint was lost"
        log = server.log_text()
        assert "failing over: primary m0 lost" in log
        # fenced: the old primary's instance is terminated, and its address takes no write
        described = env.client("ec2").describe_instances(InstanceIds=[old["instance_id"]])
        assert described["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
        with pytest.raises(psycopg2.OperationalError):
            insert_rows(env, old["ip"], 1, 1)
        # exactly one primary; m0 is a replica now, on a new volume (the old one kept, tagged)
        roles = sorted((m["name"], m["role"]) for m in doc["members"])
        assert [r for _, r in roles].count("primary") == 1 and ("m0", "replica") in roles
        volumes = env.client("ec2").describe_volumes(Filters=[
            {"Name": "tag:eucadb:deployment", "Values": [doc["deployment"]]}])["Volumes"]
        kept = [v for v in volumes if any(t["Key"] == "eucadb:retired" for t in v.get("Tags", []))]
        assert len(kept) == 1 and kept[0]["State"] == "available"
        # roles are not tied to names: a launch now (inputs unchanged) builds on the recorded
        # primary's volume, template and group, and replaces no instance
        running = {m["name"]: m["instance_id"] for m in doc["members"]}
        assert server.stop() == 0
        env.run("workflow", "launch")
        groups = env.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        now = {i["InstanceId"] for g in groups if g["AutoScalingGroupName"].startswith(f"eucadb-{doc['deployment']}-")
               for i in g["Instances"] if i["LifecycleState"] == "InService"}
        assert now == set(running.values()), "a launch after the failover replaced an instance"
        server = Server(env, free_port())
        server.wait(lambda d: streaming(d, 2), 300)
    except BaseException:
        print(server.log_text()[-30000:])
        raise
    finally:
        env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"] and d["workflow"]["kind"] == "teardown"
                    and d["workflow"]["state"] == "succeeded", 300)
        assert server.stop() == 0


def test_switchover_under_load_loses_no_acknowledged_write(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}replicas": "2",
                                      f"{W}synchronous": "on", f"{W}configured": "true"})
    server = Server(env, free_port())
    try:
        server.wait(lambda d: streaming(d, 2) and d["workflow"]["kind"] == "members"
                    and d["workflow"]["state"] == "succeeded", 900)
        refused = env.run("switchover", "--to", "m0", check=False)
        assert refused.returncode == 1 and "not a replica" in refused.stderr and "m1, m2" in refused.stderr
        since = datetime.now(timezone.utc)
        with MetricWriter(env, server.port, namespace="Switchover") as writer:
            while writer.acked < 30:
                time.sleep(0.1)
            env.run("switchover", "--to", "m2", EUCADB_SERVE_PORT=str(server.port))
            asked = time.monotonic()
            doc = server.wait(lambda d: enabled(d) and (primary_of(d) or {}).get("name") == "m2"
                              and d["database"]["endpoint"].startswith((primary_of(d) or {}).get("ip", "-") + ":"),
                              300)
            switched = time.monotonic() - asked
            acked_at_switch = writer.acked
            while writer.acked < acked_at_switch + 30:
                time.sleep(0.1)
            doc = server.wait(lambda d: streaming(d, 2) and d["workflow"]["kind"] == "members"
                              and d["workflow"]["state"] == "succeeded", 600)
        stored = writer.stored(since)
        print(f"switchover: m0 -> m2 ENABLED {switched:.1f}s after the request; writes acknowledged "
              f"{writer.acked}, refused {writer.refused}, found {stored}")
        assert writer.acked <= stored <= writer.attempted, "an acknowledged datapoint was lost"
        roles = dict((m["name"], m["role"]) for m in doc["members"])
        assert roles == {"m0": "replica", "m1": "replica", "m2": "primary"}
    except BaseException:
        print(server.log_text()[-30000:])
        raise
    finally:
        env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"] and d["workflow"]["kind"] == "teardown"
                    and d["workflow"]["state"] == "succeeded", 300)
        assert server.stop() == 0


def test_a_terminated_primary_fails_over_even_when_the_leader_dies_mid_failover(cloud, tmp_path):
    """The primary's instance is terminated through the cloud API; the leader fails over at once
    (no health window for an instance that is gone) and is killed -9 just before it promotes; the
    next leader resumes the run from its record: one promotion, one primary, nothing lost."""
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}replicas": "2",
                                      f"{W}synchronous": "on", f"{W}configured": "true"})
    first = Server(env, free_port(), EUCADB_FAULT="kill:promote:before")
    server = first
    try:
        doc = server.wait(lambda d: streaming(d, 2) and d["workflow"]["kind"] == "members"
                          and d["workflow"]["state"] == "succeeded", 900)
        old = primary_of(doc)
        insert_rows(env, old["ip"], 1, 40)            # 40 commits, each acknowledged by a replica too
        env.client("ec2").terminate_instances(InstanceIds=[old["instance_id"]])
        lost_at = time.monotonic()
        assert first.proc.wait(timeout=180) == -signal.SIGKILL   # died at the promote step
        assert "failing over: primary m0 lost (instance" in first.log_text()
        server = Server(env, free_port())
        doc = server.wait(lambda d: enabled(d) and (primary_of(d) or {}).get("name") not in (None, "m0"), 300)
        to_enabled = time.monotonic() - lost_at
        assert "resuming failover at step 3/6 promote" in server.log_text()
        new = primary_of(doc)
        found = count_rows(env, new["ip"])
        print(f"failover: TerminateInstances of the primary, leader killed before promoting -> ENABLED on "
              f"{new['name']} {to_enabled:.1f}s after the loss; rows committed 40, found {found}")
        assert found == 40
        assert [m["role"] for m in doc["members"]].count("primary") == 1
        doc = server.wait(lambda d: streaming(d, 2) and d["workflow"]["kind"] == "members"
                          and d["workflow"]["state"] == "succeeded", 600)
        assert sorted(m["name"] for m in doc["members"]) == ["m0", "m1", "m2"]
    except BaseException:
        print(server.log_text()[-30000:])
        raise
    finally:
        if server.proc.poll() is None:
            env.run("property", "set", f"{W}configured=false")
            server.wait(lambda d: d["workflow"] and d["workflow"]["kind"] == "teardown"
                        and d["workflow"]["state"] == "succeeded", 300)
            assert server.stop() == 0
