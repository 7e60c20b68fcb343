"""Cloud-backed validators against a real AWS-compatible endpoint (a moto server on loopback)."""
import boto3
import pytest

from eucadb.app import App
from eucadb.config import load
from eucadb.errors import UserError
from eucadb.properties.registry import WORKER
from moto_server import MotoServer
from pg import free_port


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


@pytest.fixture
def app(home, moto, monkeypatch):
    for k, v in moto.env().items():
        monkeypatch.setenv(k, v)
    app = App(load())
    yield app
    app.close()


def test_values_the_cloud_confirms_are_accepted(app, moto):
    ec2 = boto3.client("ec2", endpoint_url=moto.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_key_pair(KeyName="admin-key")
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    app.properties.set_many([f"{WORKER}image={image}",
                             WORKER + "instance_type=t2.micro", WORKER + "keyname=admin-key",
                             WORKER + "availability_zones=us-east-1a,us-east-1b", f"{WORKER}volume={vol}"])
    assert app.properties.value(WORKER + "keyname") == "admin-key"


@pytest.mark.parametrize("assignment, fragment", [
    (WORKER + "image=ami-deadbeef", "does not exist in the cloud"),
    (WORKER + "instance_type=zz9.huge", "offers no instance type zz9.huge"),
    (WORKER + "keyname=nobody", "key pair nobody does not exist"),
    (WORKER + "availability_zones=us-east-1a,mars-1a", "no such zone mars-1a"),
    (WORKER + "volume=vol-0123abcd", "does not exist in the cloud"),
])
def test_values_the_cloud_denies_are_refused(app, assignment, fragment):
    with pytest.raises(UserError, match=fragment):
        app.properties.set_many([assignment])
    assert app.properties.history() == []


def test_unreachable_cloud_is_reported_as_such(home, monkeypatch):
    monkeypatch.setenv("EUCADB_CLOUD_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("EUCADB_CLOUD_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("EUCADB_CLOUD_SECRET_ACCESS_KEY", "y")
    app = App(load())
    with pytest.raises(UserError, match="unreachable"):
        app.properties.set_many([WORKER + "keyname=k"])
    app.close()
