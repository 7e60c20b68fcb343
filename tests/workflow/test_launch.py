"""The launch workflow end to end: embedded cloud, real instances, real PostgreSQL, real TLS.

Slow by nature (instances boot and run initdb); every wait is bounded.
"""
from __future__ import annotations

import json
import socket
import ssl
import struct
import subprocess
import time

import psycopg2
import pytest
from botocore.exceptions import ClientError

from e2e import deployment_resources, module_cloud, sibling
from eucadb.pool.contexts import REMOTE
from eucadb.pool.endpoint import Endpoint
from eucadb.pool.migrate import migrate_remote
from eucadb.workflow.credentials import ADMIN
from eucadb.workflow.deployment import Names, current_deployment
from eucadb.workflow.launch import LAUNCH_STEPS

pytestmark = pytest.mark.slow
W = "services.database.worker."


cloud = module_cloud("launch")


def startup_from(source: str, endpoint: Endpoint, user: str, db: str) -> str:
    """Speak the PostgreSQL protocol from `source` (libpq cannot bind a source address) and return
    the server's answer to the startup: 'auth' if it asks for a password, else its error message."""
    raw = socket.create_connection((endpoint.address, endpoint.port), timeout=5, source_address=(source, 0))
    raw.sendall(struct.pack("!ii", 8, 80877103))            # SSLRequest
    assert raw.recv(1) == b"S"
    tls = ssl.create_default_context(cafile=str(endpoint.ca_file))
    conn = tls.wrap_socket(raw, server_hostname=endpoint.dns_name)
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{db}\0\0".encode()
    conn.sendall(struct.pack("!i", len(body) + 4) + body)
    kind = conn.recv(1)
    length = struct.unpack("!i", conn.recv(4))[0]
    payload = conn.recv(length - 4)
    conn.close()
    if kind == b"R":
        return "auth"
    fields = dict((f[:1], f[1:]) for f in payload.split(b"\0") if f)
    return fields.get(b"M", b"").decode()


def test_launch_serves_tls_only_least_privilege_database(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    launched = env.run("workflow", "launch", EUCADB_LOG_LEVEL="DEBUG")  # the most a log ever says
    app = env.app()
    deployment = current_deployment(app.store)
    # the instance read its server key (the database is up); eucadb's own root key may not
    with pytest.raises(ClientError) as refused:
        env.client("secretsmanager").get_secret_value(SecretId=Names(deployment).secret)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    vault = app.vault(deployment)
    creds = vault.db_logins()
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    assert shown["state"] == "succeeded" and [s["state"] for s in shown["steps"]] == ["done"] * len(LAUNCH_STEPS)
    endpoint = vault.db_endpoint(shown["steps"][-1]["resources"]["db_address"])
    admin = creds[ADMIN]
    for ctx in REMOTE:
        migrate_remote(ctx, endpoint, admin["user"], admin["password"])
    ctx = REMOTE[0]
    writer = creds[ctx.writer]
    with psycopg2.connect(**endpoint.connect_args(writer["user"], writer["password"], ctx.database)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone()[0] is True
        cur.execute("INSERT INTO metric_datapoints (series_id, ts, sample_count, sum, minimum, maximum) "
                    "VALUES (1, now(), 1, 2, 2, 2)")
        cur.execute("SELECT count(*) FROM metric_datapoints")
        assert cur.fetchone()[0] == 1
    for statement in ("UPDATE metric_datapoints SET sum = 0", "DELETE FROM metric_datapoints",
                      "TRUNCATE metric_datapoints"):
        with psycopg2.connect(**endpoint.connect_args(writer["user"], writer["password"], ctx.database)) as conn:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute(statement)
    plain = dict(endpoint.connect_args(writer["user"], writer["password"], ctx.database), sslmode="disable")
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(**plain)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**endpoint.connect_args(writer["user"], "wrong-password", ctx.database))
    assert startup_from("127.0.0.1", endpoint, writer["user"], ctx.database) == "auth"
    refused = startup_from("127.0.0.7", endpoint, writer["user"], ctx.database)
    assert "no pg_hba.conf entry" in refused and "127.0.0.7" in refused

    # secrets probe: no password or private key in plaintext anywhere it could leak
    secrets = [c["password"] for c in creds.values()]
    key_body = vault.server_pair().key.splitlines()[1]
    lt = env.client("ec2").describe_launch_template_versions(
        LaunchTemplateName=Names(deployment).db, Versions=["$Latest"])["LaunchTemplateVersions"][0]
    assert lt["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"   # IMDSv2 only
    haystacks = {"user-data": lt["LaunchTemplateData"]["UserData"],
                 "ps": subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout,
                 "store": (env.home / "store.db").read_bytes().decode("latin-1"),
                 "launch log": launched.stderr}
    for log in [*env.home.rglob("*.log"), *cloud.home.rglob("*.log")]:  # serve, embedded cloud daemons
        haystacks[str(log)] = log.read_text(errors="replace")
    instance_id = shown["steps"][-2]["resources"]["instance_id"]
    for path in (cloud.data_dir).rglob("*"):
        if path.is_file() and instance_id in str(path) or (path.is_file() and "volumes" in str(path)
                                                          and path.stat().st_size < 5_000_000):
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    assert " DEBUG " in launched.stderr  # the level took effect: the probe reads a verbose log
    for where, text in haystacks.items():
        for secret in [*secrets, key_body]:
            assert secret not in text, f"plaintext secret found in {where}"
    env.run("workflow", "teardown", "--delete-volume")
    assert not any(deployment_resources(env, deployment).values())


def test_kill_at_every_step_boundary_resumes_without_duplicates(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    for step in LAUNCH_STEPS:
        for point in ("before", "inside", "after"):
            killed = env.run("workflow", "launch", check=False, EUCADB_FAULT=f"kill:{step.name}:{point}")
            assert killed.returncode == -9, (step.name, point, killed.stderr)
    env.run("workflow", "launch")
    deployment = current_deployment(env.app().store)
    found = deployment_resources(env, deployment)
    assert {k: len(v) for k, v in found.items()} == {k: 1 for k in found}
    for step in reversed(LAUNCH_STEPS):
        killed = env.run("workflow", "teardown", check=False, EUCADB_FAULT=f"kill:{step.name}:inside")
        assert killed.returncode == -9, (step.name, killed.stderr)
    env.run("workflow", "teardown")
    left = deployment_resources(env, deployment)
    assert left.pop("volumes") and not any(left.values())   # the data volume is kept unless asked
    env.run("workflow", "teardown", "--delete-volume")
    assert not any(deployment_resources(env, deployment).values())


def test_injected_failure_rolls_back_and_is_shown(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    failed = env.run("workflow", "launch", check=False, EUCADB_FAULT="fail:launch_template:before")
    assert failed.returncode == 1 and "injected failure" in failed.stderr
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    assert shown["state"] == "rolled_back" and "launch_template" in shown["error"]
    states = [s["state"] for s in shown["steps"]]
    assert states[:7] == ["rolled_back"] * 7 and states[7] == "failed" and states[8:] == ["pending"] * 4
    table = env.run("workflow", "show").stdout
    assert "injected failure" in table
    deployment = current_deployment(env.app().store)
    assert not any(deployment_resources(env, deployment).values())
    # the backup bucket this first launch created went with it
    buckets = [b["Name"] for b in env.client("s3").list_buckets()["Buckets"]]
    assert Names(deployment).backup_bucket not in buckets


def test_replacement_instance_keeps_the_data(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    env.run("workflow", "launch")
    app = env.app()
    deployment = current_deployment(app.store)
    admin = app.vault(deployment).db_logins()[ADMIN]
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    first = shown["steps"][-2]["resources"]
    endpoint = app.vault(deployment).db_endpoint(first["private_ip"])
    with psycopg2.connect(**endpoint.connect_args(admin["user"], admin["password"], "postgres")) as conn:
        conn.cursor().execute("CREATE TABLE kept AS SELECT 42 AS answer")
    env.client("ec2").terminate_instances(InstanceIds=[first["instance_id"]])
    asg = env.client("autoscaling")
    deadline = time.monotonic() + 240
    new = None
    while time.monotonic() < deadline and new is None:
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[Names(deployment).db])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in group["Instances"] if i["InstanceId"] != first["instance_id"]]
        if ids:
            inst = env.client("ec2").describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"][0]
            if inst["State"]["Name"] == "running":
                new = inst
        time.sleep(1)
    assert new is not None and new["PrivateIpAddress"] != first["private_ip"]
    moved = Endpoint(new["PrivateIpAddress"], 5432, endpoint.dns_name, endpoint.ca_file)
    answer = None
    while time.monotonic() < deadline and answer is None:
        try:
            with psycopg2.connect(**moved.connect_args(admin["user"], admin["password"], "postgres")) as conn:
                cur = conn.cursor()
                cur.execute("SELECT answer FROM kept")
                answer = cur.fetchone()[0]
        except psycopg2.OperationalError:
            time.sleep(1)
    assert answer == 42
    env.run("workflow", "teardown", "--delete-volume")


def test_relaunch_adopts_everything_and_never_reads_the_key_back(cloud, tmp_path):
    """A launch of an unchanged deployment writes nothing: every step adopts what is there. And the
    secret's resource policy denies GetSecretValue to all but the instance role — eucadb's own
    principal too (a real cloud enforces that; moto does not) — so adoption must not read it."""
    from eucadb.workflow.launch import LAUNCH
    from eucadb.workflow.service import run_workflow

    env = sibling(cloud, tmp_path)
    env.run("workflow", "launch")
    app = env.app()
    deployment = current_deployment(app.store)
    sm = env.client("secretsmanager")
    def versions() -> list[str]:
        return [v["VersionId"] for v in sm.list_secret_version_ids(SecretId=Names(deployment).secret)["Versions"]]

    before = versions()
    calls = []
    for service in ("ec2", "iam", "sts", "autoscaling", "secretsmanager", "s3"):
        app.clients.client(service).meta.events.register(
            "before-call", lambda model, **kw: calls.append(model.name))
    result = run_workflow(app, LAUNCH)
    assert result.state.value == "succeeded"
    assert "GetSecretValue" not in calls
    writes = [c for c in calls if not c.startswith(("Describe", "Get", "List", "Head"))]
    assert writes == [], f"a relaunch of an unchanged deployment wrote: {writes}"
    assert versions() == before                 # adopted, not written again
    policy = json.loads(sm.get_resource_policy(SecretId=Names(deployment).secret)["ResourcePolicy"])
    role_arn = env.client("iam").get_role(RoleName=Names(deployment).db)["Role"]["Arn"]
    assert policy["Statement"] == [{
        "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:PrincipalArn": role_arn}}}]
    env.run("workflow", "teardown", "--delete-volume")


def test_a_foreign_security_group_with_our_name_is_refused_not_taken_over(cloud, tmp_path):
    env = sibling(cloud, tmp_path)
    deployment = current_deployment(env.app().store)
    ec2 = env.client("ec2")
    [vpc] = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]  # the embedded cloud's one VPC
    foreign = ec2.create_security_group(GroupName=Names(deployment).db, Description="someone else's",
                                        VpcId=vpc)["GroupId"]
    failed = env.run("workflow", "launch", check=False)
    assert failed.returncode == 1
    assert f"a security group named {Names(deployment).db} ({foreign}) already exists" in failed.stderr
    shown = json.loads(env.run("workflow", "show", "-o", "json").stdout)[0]
    assert shown["state"] == "rolled_back" and shown["steps"][1]["state"] == "failed"
    kept = ec2.describe_security_groups(GroupIds=[foreign])["SecurityGroups"][0]
    assert kept["IpPermissions"] == [] and not kept.get("Tags")   # not touched, not deleted
    ec2.delete_security_group(GroupId=foreign)
    assert not any(deployment_resources(env, deployment).values())


def test_a_kept_volume_carries_its_data_into_a_new_deployment_but_is_never_shared(cloud, tmp_path):
    """Teardown keeps the volume; a new deployment given it by `volume=` takes it over (its tag
    too, or its instance role could not attach it) with the data; a third one that names it while
    the second's instance holds it is refused."""
    first = sibling(cloud, tmp_path / "first")
    first.run("workflow", "launch")
    app = first.app()
    deployment = current_deployment(app.store)
    volume = next(s["resources"]["volume_id"] for s in json.loads(first.run("workflow", "show", "-o", "json").stdout)[0]
                  ["steps"] if s["name"] == "volume")
    address = json.loads(first.run("workflow", "show", "-o", "json").stdout)[0]["steps"][-1]["resources"]["db_address"]
    admin = app.vault(deployment).db_logins()[ADMIN]
    endpoint = app.vault(deployment).db_endpoint(address)
    with psycopg2.connect(**endpoint.connect_args(admin["user"], admin["password"], "postgres")) as conn:
        conn.cursor().execute("CREATE TABLE carried AS SELECT 'from the first deployment' AS what")
    first.run("workflow", "teardown")                      # keeps the volume

    second = sibling(cloud, tmp_path / "second", **{W + "volume": volume})
    second.run("workflow", "launch")
    app2 = second.app()
    deployment2 = current_deployment(app2.store)
    tags = env_tags(second, volume)
    assert tags["eucadb:deployment"] == deployment2 != deployment
    address2 = json.loads(second.run("workflow", "show", "-o", "json").stdout)[0]["steps"][-1]["resources"]["db_address"]
    admin2 = app2.vault(deployment2).db_logins()[ADMIN]
    endpoint2 = app2.vault(deployment2).db_endpoint(address2)
    with psycopg2.connect(**endpoint2.connect_args(admin2["user"], admin2["password"], "postgres")) as conn:
        cur = conn.cursor()
        cur.execute("SELECT what FROM carried")
        assert cur.fetchone()[0] == "from the first deployment"

    third = sibling(cloud, tmp_path / "third", **{W + "volume": volume})
    refused = third.run("workflow", "launch", check=False)
    assert refused.returncode == 1
    assert f"volume {volume} is in-use and belongs to deployment {deployment2}" in refused.stderr
    assert env_tags(second, volume)["eucadb:deployment"] == deployment2     # not taken over
    second.run("workflow", "teardown", "--delete-volume")


def env_tags(env, volume_id: str) -> dict[str, str]:
    vol = env.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    return {t["Key"]: t["Value"] for t in vol.get("Tags", [])}


def test_teardown_keeps_the_backup_bucket_unless_asked_and_a_foreign_one_is_refused(cloud, tmp_path):
    """The backups are the way back after a mistaken teardown: kept like the volume, adopted by the
    next launch, deleted with --delete-volume. A bucket of our name that holds someone else's keys
    (no marker of ours) is neither used nor touched."""
    env = sibling(cloud, tmp_path / "ours")
    deployment = current_deployment(env.app().store)
    names, s3 = Names(deployment), env.client("s3")
    env.run("workflow", "launch")
    marker = f"{names.backup_prefix}/eucadb-deployment"
    s3.put_object(Bucket=names.backup_bucket, Key=f"{names.backup_prefix}/db/wals/kept", Body=b"x")
    env.run("workflow", "teardown")
    assert s3.get_object(Bucket=names.backup_bucket, Key=marker)["Body"].read() == deployment.encode()
    env.run("workflow", "launch")                                 # adopted, the backups still there
    s3.head_object(Bucket=names.backup_bucket, Key=f"{names.backup_prefix}/db/wals/kept")
    env.run("workflow", "teardown", "--delete-volume")
    assert names.backup_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    other = sibling(cloud, tmp_path / "other")
    taken = Names(current_deployment(other.app().store)).backup_bucket
    s3.create_bucket(Bucket=taken)
    s3.put_object(Bucket=taken, Key="someone/else", Body=b"theirs")
    failed = other.run("workflow", "launch", check=False)
    assert failed.returncode == 1 and f"a bucket named {taken} already exists" in failed.stderr
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=taken)["Contents"]] == ["someone/else"]
    s3.delete_object(Bucket=taken, Key="someone/else")
    s3.delete_bucket(Bucket=taken)
