"""Read replicas end to end: `replicas=2` on the embedded cloud, real PostgreSQL streaming over TLS.

The leader launches the primary, then the members workflow gives each replica a slot on the
primary, its own volume, launch template and autoscaling group in another zone; each replica seeds
itself with pg_basebackup and streams. Rows written on the primary are read on both replicas; a
write on a replica is refused; status and /metrics show every member.
"""
from __future__ import annotations

import json
import time

import psycopg2
import pytest

from e2e import module_cloud, sibling
from pg import free_port
from replication import streaming, wait_count
from serving import W, Server, insert_rows

pytestmark = pytest.mark.slow

cloud = module_cloud("replicas")


def test_two_replicas_in_other_zones_stream_serve_reads_and_refuse_writes(cloud, tmp_path):
    env = sibling(cloud, tmp_path, **{f"{W}health_interval": "1", f"{W}replicas": "2", f"{W}configured": "true"})
    server, started = Server(env, free_port()), time.monotonic()
    try:
        doc = server.wait(lambda d: streaming(d, 2), 900)
        members = {m["name"]: m for m in doc["members"]}
        primary = members.pop("m0")
        assert primary["role"] == "primary" and primary["ip"] == doc["instance"]["private_ip"]
        assert sorted(members) == ["m1", "m2"]
        assert all(m["zone"] != primary["zone"] for m in members.values())          # multi-zone DR
        assert len({m["zone"] for m in members.values()}) == 2
        assert all(m["slot_state"].startswith("active") and m["timeline"] == primary["timeline"]
                   for m in members.values())
        insert_rows(env, primary["ip"], 1, 50)
        for m in members.values():
            assert wait_count(env, m["ip"], 50) == 50, f"{m['name']} did not receive the rows"
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                insert_rows(env, m["ip"], 100, 1)
        status, metrics = server.get("/metrics")
        assert status == 200 and 'eucadb_member_lag_bytes{member="m1"}' in metrics
        assert 'eucadb_member_primary{member="m0"} 1.0' in metrics
        port = {"EUCADB_SERVE_PORT": str(server.port)}
        text = env.run("status", **port).stdout
        assert "members:   member" in text and "streaming" in text
        print(text)
        shown = json.loads(env.run("status", "-o", "json", **port).stdout)
        assert {m["name"] for m in shown["members"]} == {"m0", "m1", "m2"}
        # the pool guard: the services' pools point at the primary only
        assert doc["database"]["endpoint"].startswith(primary["ip"] + ":")
    except BaseException:
        print(server.log_text()[-20000:])
        raise
    else:
        print(f"replicas: primary + 2 streaming {time.monotonic() - started:.1f}s after the server started; "
              "50 rows written on the primary, 50 read on each replica")
    finally:
        env.run("property", "set", f"{W}configured=false")
        server.wait(lambda d: d["workflow"] and d["workflow"]["kind"] == "teardown"
                    and d["workflow"]["state"] == "succeeded", 300)
        assert server.stop() == 0
    groups = env.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert not [g for g in groups if g["AutoScalingGroupName"].startswith(f"eucadb-{doc['deployment']}-")]
