"""setup_db.py's cloud half against a moto server and a minimal IMDSv2: metadata, role credentials
found by boto3 through IMDS, the key secret, the passphrase sub-command, and attaching the volume.

The full boot in the embedded cloud (realizer, its metadata service) is covered by the launch tests.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto.server import ThreadedMotoServer

from eucadb.workflow import credentials, pki, userdata
from setup_db_script import load_setup_db

DEPLOYMENT = "dc10ud00"


setup_db = load_setup_db("setup_db_cloud_test")


class FakeImds:
    """IMDSv2 on loopback: a token is required for every GET."""

    def __init__(self, values: dict[str, str]):
        self.values, self.token = values, "tok-123"
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: str = "") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_PUT(self):
                ok = (self.path == "/latest/api/token"
                      and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"))
                self._send(200, imds.token) if ok else self._send(400)

            def do_GET(self):
                if self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                    return self._send(401)
                value = imds.values.get(self.path.rstrip("/"))
                self._send(200, value) if value is not None else self._send(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


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
    ec2, sm = boto3.client("ec2", **admin), boto3.client("secretsmanager", **admin)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t2.micro",
                             Placement={"AvailabilityZone": "us-east-1a"})["Instances"]
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    ca_key, ca = pki.create_ca("CA")
    key, cert = pki.issue_server_certificate(ca_key, ca, f"db.{DEPLOYMENT}.eucadb.internal", 30)
    passphrase = credentials.new_password()
    secret_id = f"eucadb/{DEPLOYMENT}/server-key"
    sm.create_secret(Name=secret_id,
                     SecretString=json.dumps({"private_key": key, "key_passphrase": passphrase}))
    creds = credentials.generate()
    text = userdata.build_user_data(
        deployment=DEPLOYMENT, endpoint_url=moto, region="us-east-1", secret_id=secret_id, volume_id=volume,
        dns_name=f"db.{DEPLOYMENT}.eucadb.internal", server_cert=cert, ca_cert=ca,
        allowed_cidrs=["127.0.0.1/32"], instance_type="t2.micro",
        sealed_credentials=credentials.seal(json.dumps(creds).encode(), cert, DEPLOYMENT))
    return {"ec2": ec2, "sm": sm, "instance": made[0], "other": made[1]["InstanceId"], "volume": volume,
            "key": key, "passphrase": passphrase, "creds": creds, "secret_id": secret_id, "user_data": text}


@pytest.fixture
def world(cloud, monkeypatch, tmp_path):
    """IMDS answering as our instance, with role credentials; no other AWS credentials around."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    instance = cloud["instance"]
    values = {
        "/latest/meta-data/instance-id": instance["InstanceId"],
        "/latest/meta-data/placement/availability-zone": "us-east-1a",
        "/latest/meta-data/local-ipv4": instance["PrivateIpAddress"],
        "/latest/user-data": cloud["user_data"],
        "/latest/meta-data/iam/security-credentials": "eucadb-db",
        "/latest/meta-data/iam/security-credentials/eucadb-db": json.dumps({
            "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "AKIDFROMIMDS",
            "SecretAccessKey": "fromimds", "Token": "tok", "Expiration": expires}),
    }
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
