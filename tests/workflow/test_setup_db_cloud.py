"""setup_db.py's cloud half against a moto server and a minimal IMDSv2: metadata, role credentials
found by boto3 through IMDS, the key secret, the passphrase sub-command, and attaching the volume.

The full boot in the embedded cloud (realizer, its metadata service) is covered by the launch tests.
"""
from __future__ import annotations

import json

import pytest
from moto.server import ThreadedMotoServer

from eucadb.workflow import pki
from imds import FakeImds, instance_metadata, launched_instance
from setup_db_script import load_setup_db

DEPLOYMENT = "dc10ud00"


setup_db = load_setup_db("setup_db_cloud_test")


@pytest.fixture(scope="module")
def moto():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def cloud(moto):
    """A cloud with a volume, our instance and another, the key secret, and our user-data."""
    admin = dict(endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing")
    made = launched_instance(admin, DEPLOYMENT, endpoint_url=moto, allowed_cidrs=["127.0.0.1/32"], count=2)
    return {**made, "instance": made["instances"][0], "other": made["instances"][1]["InstanceId"]}


@pytest.fixture
def world(cloud, monkeypatch, tmp_path):
    """IMDS answering as our instance, with role credentials; no other AWS credentials around."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    instance = cloud["instance"]
    values = instance_metadata(instance["InstanceId"], "us-east-1a", instance["PrivateIpAddress"],
                               cloud["user_data"])
    with FakeImds(values) as imds:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint)
        yield dict(cloud, root=tmp_path / "root")


def test_metadata_key_and_credentials(world):
    facts = setup_db.instance_facts(setup_db.Imds())
    assert facts.instance_id == world["instance"]["InstanceId"]
    assert facts.private_ip == world["instance"]["PrivateIpAddress"]
    assert facts.availability_zone == "us-east-1a"
    ud = setup_db.parse_user_data(facts.user_data)
    secret = setup_db.fetch_key_secret(ud, deadline=10)
    assert secret.passphrase == world["passphrase"]
    passwords = setup_db.parse_credentials(setup_db.unseal(ud.credentials, secret.private_key_pem,
                                                           ud.deployment), ud)
    assert passwords == {k: v["password"] for k, v in world["creds"].items()}


def test_key_may_be_stored_encrypted_with_its_passphrase(world):
    encrypted = pki.encrypt_private_key(world["key"], world["passphrase"])
    world["sm"].put_secret_value(SecretId=world["secret_id"], SecretString=json.dumps(
        {"private_key": encrypted, "key_passphrase": world["passphrase"]}))
    ud = setup_db.parse_user_data(setup_db.instance_facts(setup_db.Imds()).user_data)
    assert b"ENCRYPTED" not in setup_db.fetch_key_secret(ud, deadline=10).private_key_pem


def test_passphrase_subcommand_prints_only_the_passphrase(world, capsys):
    assert setup_db.main(["--root", str(world["root"]), "passphrase"]) == 0
    assert capsys.readouterr().out == world["passphrase"] + "\n"


def test_attach_waits_for_a_predecessor_then_attaches(world):
    ec2, volume = world["ec2"], world["volume"]
    ec2.attach_volume(VolumeId=volume, InstanceId=world["other"], Device="/dev/sdf")
    ud = setup_db.parse_user_data(setup_db.instance_facts(setup_db.Imds()).user_data)
    with pytest.raises(setup_db.SetupError, match="in-use"):
        setup_db.attach_volume(ud, world["instance"]["InstanceId"], deadline=1)
    ec2.detach_volume(VolumeId=volume, InstanceId=world["other"])
    setup_db.attach_volume(ud, world["instance"]["InstanceId"], deadline=20)
    attachments = ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"]
    assert [(a["InstanceId"], a["Device"], a["State"]) for a in attachments] == [
        (world["instance"]["InstanceId"], "/dev/sdf", "attached")]
    setup_db.attach_volume(ud, world["instance"]["InstanceId"], deadline=5)   # idempotent


def test_data_disk_directory_is_used_as_mounted(world, tmp_path):
    ud = setup_db.parse_user_data(setup_db.instance_facts(setup_db.Imds()).user_data)
    volume_dir = tmp_path / "vol"
    volume_dir.mkdir()
    (world["root"] / "dev").mkdir(parents=True)
    (world["root"] / "dev" / "sdf").symlink_to(volume_dir)
    assert setup_db.data_mount(world["root"], ud) == volume_dir.resolve()


def test_boot_fails_cleanly_without_user_data(world, monkeypatch, caplog):
    with FakeImds({"/latest/meta-data/instance-id": "i-1"}) as bare:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", bare.endpoint)
        assert setup_db.main(["--root", str(world["root"])]) == 2
    assert "no user-data" in caplog.text
