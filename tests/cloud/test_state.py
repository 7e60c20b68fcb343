"""The control plane's state file (state.py) and the hook that writes it (durable.py), against real
moto backends and a real HTTP server: ids and links survive a save and a restore, moto's stock images
are regenerated rather than saved, nothing is acknowledged before it is on disk, and a file that
cannot be trusted is refused and left as it is."""
from __future__ import annotations

import hashlib
import json
import threading

import boto3
import pytest
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from eucadb.cloud.local import durable, moto_fixes, state
from eucadb.cloud.local.state import StateError, Store
from eucadb.store.secretbox import SecretBox
from pg import free_port

REGION = "us-east-1"
POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}'


def clients() -> dict:
    return {s: boto3.client(s, region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
            for s in ("ec2", "autoscaling", "iam", "secretsmanager", "ebs")}


def make_everything(c: dict) -> dict[str, str]:
    """One of each thing eucadb makes, as eucadb makes it."""
    ec2 = c["ec2"]
    vpc = ec2.create_vpc(CidrBlock="127.90.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.90.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    image = ec2.register_image(Name="db-image", RootDeviceName="/dev/sda1")["ImageId"]
    ec2.create_tags(Resources=[image], Tags=[{"Key": "eucadb:image", "Value": "db"}])
    ec2.create_key_pair(KeyName="admin")
    ec2.create_launch_template(LaunchTemplateName="db-template", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro", "SecurityGroupIds": [group]})
    ec2.create_launch_template_version(LaunchTemplateName="db-template", SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t3.small"})
    volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    c["iam"].create_role(RoleName="db", AssumeRolePolicyDocument=POLICY)
    c["iam"].create_instance_profile(InstanceProfileName="db")
    c["iam"].add_role_to_instance_profile(InstanceProfileName="db", RoleName="db")
    c["iam"].create_user(UserName="admin")
    key = c["iam"].create_access_key(UserName="admin")["AccessKey"]["AccessKeyId"]
    secret = c["secretsmanager"].create_secret(Name="db/key", SecretString="sealed")["ARN"]
    c["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName="db", MinSize=1, MaxSize=1, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateName": "db-template", "Version": "$Latest"})
    instance = c["autoscaling"].describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    return {"vpc": vpc, "subnet": subnet, "group": group, "image": image, "volume": volume,
            "snapshot": snapshot, "key": key, "secret": secret, "instance": instance}


def describe_everything(c: dict) -> dict[str, str]:
    ec2 = c["ec2"]
    group = c["autoscaling"].describe_auto_scaling_groups()["AutoScalingGroups"][0]
    return {"vpc": ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["127.90.0.0/16"]}])["Vpcs"][0]["VpcId"],
            "subnet": ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["127.90.1.0/24"]}])["Subnets"][0]["SubnetId"],
            "group": ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["db"]}])["SecurityGroups"][0]["GroupId"],
            "image": ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"],
            "volume": ec2.describe_volumes(Filters=[{"Name": "size", "Values": ["1"]}])["Volumes"][0]["VolumeId"],
            "snapshot": ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-size", "Values": ["1"]}])["Snapshots"][0]["SnapshotId"],
            "key": c["iam"].list_access_keys(UserName="admin")["AccessKeyMetadata"][0]["AccessKeyId"],
            "secret": c["secretsmanager"].describe_secret(SecretId="db/key")["ARN"],
            "instance": group["Instances"][0]["InstanceId"]}


def test_ids_states_and_links_survive_a_restore():
    moto_fixes.apply()
    with mock_aws():
        made = make_everything(clients())
        payload = state.dump()
        stock = clients()["ec2"].describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    assert stock.encode() not in payload, "moto's stock images are regenerated, not saved"
    assert made["image"].encode() in payload
    with mock_aws():  # a new, empty moto, as in a restarted API process
        assert state.restore(payload) > 0
        c = clients()
        assert describe_everything(c) == made
        assert c["secretsmanager"].get_secret_value(SecretId="db/key")["SecretString"] == "sealed"
        assert [v["VersionNumber"] for v in c["ec2"].describe_launch_template_versions(
            LaunchTemplateName="db-template")["LaunchTemplateVersions"]] == [1, 2]
        assert c["iam"].get_instance_profile(InstanceProfileName="db")["InstanceProfile"]["Roles"][0]["RoleName"] == "db"
        assert c["ec2"].describe_images(ImageIds=[stock])["Images"], "stock images are back"
        # the group still owns its instance in the restored ec2 backend: terminating it replaces it
        c["ec2"].terminate_instances(InstanceIds=[made["instance"]])
        members = c["autoscaling"].describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]
        assert len(members) == 1 and members[0]["InstanceId"] != made["instance"]


def test_a_file_that_cannot_be_trusted_is_refused_and_kept(tmp_path):
    path = tmp_path / "state" / state.FILE_NAME
    with mock_aws():
        clients()["ec2"].create_vpc(CidrBlock="127.91.0.0/16")
        store = Store(path, SecretBox(tmp_path / "state.key"))
        assert store.save() and not store.save(), "an unchanged state is not written again"
    head, _, payload = path.read_bytes().partition(b"\n")
    header = json.loads(head[len(state.MAGIC):])
    assert header["sha256"] == hashlib.sha256(payload).hexdigest() and header["format"] == state.FORMAT
    for damaged, why in ((head + b"\n" + payload[:-1], "do not match their digest"),
                         (head.replace(header["moto"].encode(), b"0.0.1") + b"\n" + payload, "moto 0.0.1"),
                         (b"junk\n" + payload, "no control-plane state header")):
        path.write_bytes(damaged)
        with pytest.raises(StateError, match=why) as raised:
            Store(path, SecretBox(tmp_path / "state.key")).load()
        assert str(path) in str(raised.value) and "\n" not in str(raised.value)
        assert path.read_bytes() == damaged


@pytest.mark.parametrize("environ, mutating", [
    ({"HTTP_X_AMZ_TARGET": "secretsmanager.GetSecretValue"}, False),
    ({"HTTP_X_AMZ_TARGET": "secretsmanager.PutSecretValue"}, True),
    ({"QUERY_STRING": "Action=DescribeInstances"}, False),
    ({"QUERY_STRING": "Action=RunInstances"}, True),
])
def test_reads_and_changes_are_told_apart_by_action(environ, mutating):
    service = "secretsmanager" if "HTTP_X_AMZ_TARGET" in environ else "ec2"
    auth = {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=k/20260101/{REGION}/{service}/aws4_request"}
    assert durable.classify({**auth, **environ, "REQUEST_METHOD": "POST"}).mutating is mutating


def test_ebs_blocks_are_saved_with_the_next_change_and_s3_is_not_ours():
    auth = "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/{}/aws4_request"
    block = durable.classify({"HTTP_AUTHORIZATION": auth.format("ebs"), "REQUEST_METHOD": "PUT",
                              "PATH_INFO": "/snapshots/snap-1/blocks/7"})
    assert block.mutating and block.deferred
    assert not durable.classify({"HTTP_AUTHORIZATION": auth.format("ebs"), "REQUEST_METHOD": "POST",
                                 "PATH_INFO": "/snapshots/completion/snap-1"}).deferred
    assert durable.classify({"HTTP_AUTHORIZATION": auth.format("s3"), "REQUEST_METHOD": "PUT"}) is None


@pytest.fixture
def server(tmp_path):
    """moto's server app behind the durable hook, on a real port, with its state file."""
    moto_fixes.apply()
    with mock_aws():  # fresh backends, reset afterwards
        store = Store(tmp_path / "state" / state.FILE_NAME, SecretBox(tmp_path / "state.key"))
        port = free_port()
        httpd = make_server("127.0.0.1", port, durable.Durable(
            DomainDispatcherApplication(create_backend_app), store, "EUCADBGWTEST"), threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                               aws_access_key_id="k", aws_secret_access_key="s"), store
        finally:
            httpd.shutdown()


def test_a_change_is_on_disk_before_it_is_answered(server):
    ec2, store = server
    vpc = ec2.create_vpc(CidrBlock="127.92.0.0/16")["Vpc"]["VpcId"]
    assert vpc.encode() in store.payload()
    written = store.path.stat().st_mtime_ns
    ec2.describe_vpcs()
    assert store.path.stat().st_mtime_ns == written, "a read writes nothing"


def test_a_change_that_cannot_be_saved_is_not_acknowledged(server):
    from botocore.exceptions import ClientError
    ec2, store = server
    store.path.mkdir(parents=True)  # the rename onto it fails
    with pytest.raises(ClientError, match="could not be saved"):
        ec2.create_vpc(CidrBlock="127.93.0.0/16")


def test_the_state_file_holds_no_secret_in_plaintext_and_needs_its_key(tmp_path):
    """It holds every secret value and IAM secret key: encrypted with a key kept apart from it."""
    path, key = tmp_path / "data" / "state" / state.FILE_NAME, tmp_path / "home" / "state.key"
    moto_fixes.apply()
    with mock_aws():
        c = clients()
        c["secretsmanager"].create_secret(Name="db/key", SecretString="marker-secret-value-4711")
        c["iam"].create_user(UserName="u")
        secret_key = c["iam"].create_access_key(UserName="u")["AccessKey"]["SecretAccessKey"]
        store = Store(path, SecretBox(key))
        store.save()
        assert b"marker-secret-value-4711" in store.payload()
    on_disk = path.read_bytes()
    for plain in (b"marker-secret-value-4711", secret_key.encode(), b"db/key"):
        assert plain not in on_disk
    assert key.stat().st_mode & 0o077 == 0
    with mock_aws():
        assert Store(path, SecretBox(key)).load() > 0
        assert clients()["secretsmanager"].get_secret_value(SecretId="db/key")["SecretString"] == "marker-secret-value-4711"
    with pytest.raises(StateError, match="does not decrypt with"):
        Store(path, SecretBox(tmp_path / "another.key")).load()
    assert path.read_bytes() == on_disk, "a file it cannot decrypt is left as it is"


def test_a_plain_state_file_of_an_older_install_loads_and_is_written_encrypted(tmp_path):
    path = tmp_path / "state" / state.FILE_NAME
    moto_fixes.apply()
    with mock_aws():
        clients()["secretsmanager"].create_secret(Name="old/key", SecretString="plain-marker-0815")
        payload = state.dump()
    header = dict(json.loads(json.dumps(state.asdict(state.Header.current(payload)))), format=1)
    path.parent.mkdir(parents=True)
    path.write_bytes(state.MAGIC + json.dumps(header).encode() + b"\n" + payload)
    with mock_aws():
        store = Store(path, SecretBox(tmp_path / "state.key"))
        assert store.load() > 0
        assert clients()["secretsmanager"].get_secret_value(SecretId="old/key")["SecretString"] == "plain-marker-0815"
        clients()["ec2"].create_vpc(CidrBlock="127.94.0.0/16")
        assert store.save()
    assert b"plain-marker-0815" not in path.read_bytes()
    assert json.loads(path.read_bytes().partition(b"\n")[0][len(state.MAGIC):])["format"] == state.FORMAT
