"""Self-healing on a live instance: PostgreSQL killed (-9) on a running instance, and the instance
stopped, each under a steady PutMetricData load. Nobody touches the cloud: after the health window
the leader marks the instance unhealthy (SetInstanceHealth), the autoscaling group replaces it on
the same volume, the pools follow and the services are ENABLED again — with every acknowledged
datapoint still there. Real cloud API, real PostgreSQL, real `eucadb serve`."""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone

import pytest

from e2e import module_cloud, sibling
from pg import free_port
from serving import W, MetricWriter, Server, enabled, postmaster_pid

pytestmark = pytest.mark.slow


cloud = module_cloud("heal")


def replaced(server: Server, old: str, timeout: float) -> tuple[dict, float]:
    started = time.monotonic()
    doc = server.wait(lambda d: enabled(d) and d["instance"]["instance_id"] != old, timeout)
    return doc, time.monotonic() - started


def test_a_killed_postmaster_and_a_stopped_instance_heal_by_themselves(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}configured": "true"})
    server = Server(env, free_port())
    try:
        doc = server.wait(enabled, 180)
        since = datetime.now(timezone.utc)
        with MetricWriter(env, server.port) as writer:
            while writer.acked < 20:
                time.sleep(0.1)
            first = doc["instance"]["instance_id"]
            os.kill(postmaster_pid(cloud, first), signal.SIGKILL)   # the cloud's home holds the pid records
            doc, after_kill = replaced(server, first, 240)
            assert "marked instance" in server.log_text() and first in server.log_text()
            acked_before_stop = writer.acked
            while writer.acked < acked_before_stop + 20:   # writes flow again on the replacement
                time.sleep(0.1)
            second = doc["instance"]["instance_id"]
            env.client("ec2").stop_instances(InstanceIds=[second])
            doc, after_stop = replaced(server, second, 240)
            third = doc["instance"]["instance_id"]
            acked_before_end = writer.acked
            while writer.acked < acked_before_end + 20:
                time.sleep(0.1)
        stored = writer.stored(since)
        print(f"healing: kill -9 of the postmaster -> ENABLED in {after_kill:.1f}s, StopInstances -> "
              f"ENABLED in {after_stop:.1f}s; writes acked {writer.acked}, refused {writer.refused}, "
              f"stored {stored}")
        assert writer.acked <= stored <= writer.attempted, "an acknowledged datapoint was lost"
        groups = env.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        mine = [g for g in groups if any(i["InstanceId"] == third for i in g["Instances"])]
        assert len(mine) == 1 and [i["InstanceId"] for i in mine[0]["Instances"]] == [third]
        volumes = env.client("ec2").describe_volumes(
            Filters=[{"Name": "tag:eucadb:deployment", "Values": [doc["deployment"]]}])["Volumes"]
        assert len(volumes) == 1 and volumes[0]["Attachments"][0]["InstanceId"] == third
    finally:
        env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"]["kind"] == "teardown" and d["workflow"]["state"] == "succeeded", 180)
        assert server.stop() == 0
