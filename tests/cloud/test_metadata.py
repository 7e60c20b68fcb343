"""The per-instance metadata service: IMDSv2 rules, and botocore inside an instance getting its
user-data and role credentials with no special code; another IP is another identity. Token expiry
is tested on a service of this process whose clock the test advances."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest
from helpers import as_user, inside, make_group
from localcloud import wait_for
from pg import free_port

from eucadb.cloud.local.identity import Identities, InstanceView
from eucadb.cloud.local.metadata import MetadataServer
from eucadb.cloud.local.peers import Owner

def _http(method: str, url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.fixture(scope="module")
def pair(cloud, network):
    """Two probe instances of one group, in two zones."""
    group = make_group(cloud, cloud.images["probe"], [network["us-east-1a"], network["us-east-1b"]], size=2)
    instances = wait_for(lambda: len(group.instances()) == 2 and group.instances(), 10, "two instances")
    reports = [wait_for(lambda i=i: cloud.report(i["InstanceId"]), 15, "probe report") for i in instances]
    yield group, instances, reports
    group.delete()


@pytest.mark.slow
def test_botocore_in_instance_reads_user_data_and_role_credentials(pair):
    group, instances, reports = pair
    for instance, report in zip(instances, reports):
        assert report["instance_id"] == instance["InstanceId"]
        assert report["ip"] == instance["PrivateIpAddress"]
        assert report["user_data"] == group.user_data
        assert report["credential_method"] == "iam-role"
        # the credentials work against the cloud: STS says who the instance is
        assert report["caller_arn"].endswith(f":assumed-role/{group.role}/{instance['InstanceId']}")
        assert report["unauthenticated_status"] == 401


@pytest.mark.slow
def test_another_ip_is_another_identity(pair):
    _, instances, reports = pair
    assert len({r["instance_id"] for r in reports}) == 2
    assert len({r["access_key"] for r in reports}) == 2
    assert len({r["ip"] for r in reports}) == 2
    assert {r["ip"] for r in reports} == {i["PrivateIpAddress"] for i in instances}


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs processes as other users in an instance's cgroup")


@pytest.mark.slow
@needs_root
def test_only_the_instance_itself_is_answered(pair, cloud):
    _, instances, _ = pair
    mine, theirs = instances
    url = f"http://{mine['PrivateIpAddress']}:8775/latest/api/token"
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    assert inside(cloud, mine)("PUT", url, ttl)[0] == 200
    assert _http("PUT", url, ttl)[0] == 403, "eucadb's own user, not in the instance"
    assert as_user(cloud, None, "nobody")("PUT", url, ttl)[0] == 403, "another local user"
    assert as_user(cloud, None, cloud.instance_user)("PUT", url, ttl)[0] == 403, "the instance user, elsewhere"
    assert inside(cloud, theirs)("PUT", url, ttl)[0] == 403, "another instance (same uid)"
    status, token = inside(cloud, mine)("PUT", url, ttl)
    assert _http("GET", url.replace("api/token", "meta-data/iam/security-credentials/"),
                 {"X-aws-ec2-metadata-token": token})[0] == 403, "a token is no pass for a stranger"


@pytest.mark.slow
@needs_root
def test_imdsv2_token_rules(pair, cloud):
    _, instances, _ = pair
    _http = inside(cloud, instances[0])
    base = f"http://{instances[0]['PrivateIpAddress']}:8775/latest"
    assert _http("PUT", base + "/api/token")[0] == 400, "TTL header is required"
    assert _http("PUT", base + "/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21601"})[0] == 400
    status, token = _http("PUT", base + "/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and token
    assert _http("GET", base + "/meta-data/instance-id")[0] == 401
    assert _http("GET", base + "/meta-data/instance-id", {"X-aws-ec2-metadata-token": "forged"})[0] == 401
    assert _http("GET", base + "/meta-data/instance-id", {"X-aws-ec2-metadata-token": token}) == (
        200, instances[0]["InstanceId"])
    other = f"http://{instances[1]['PrivateIpAddress']}:8775/latest"
    assert inside(cloud, instances[1])("GET", other + "/meta-data/instance-id", {"X-aws-ec2-metadata-token": token})[0] == 401, \
        "a token is only good at the service that issued it"
    assert _http("PUT", base + "/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "5",
                                              "X-Forwarded-For": "10.0.0.1"})[0] == 400


class SteppedClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def local_imds():
    """A metadata service on 127.0.0.1 for an instance with no role (so it never calls the cloud)."""
    clock = SteppedClock()
    view = InstanceView(instance_id="i-0123456789abcdef0", image_id="ami-00000000", instance_type="t2.micro",
                        private_ip="127.0.0.1", zone="us-east-1a", region="us-east-1",
                        account_id="123456789012", root_device="/dev/sda1")
    port = free_port()
    owner = Owner(os.geteuid(), lambda: [os.getpid()])  # this test process is the instance
    server = MetadataServer(view, Identities(clients=None, region="us-east-1"), port, owner, clock=clock)
    yield f"http://127.0.0.1:{port}/latest", clock
    server.close()


def test_a_token_is_refused_once_its_ttl_has_passed(local_imds):
    base, clock = local_imds
    status, token = _http("PUT", base + "/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "5"})
    assert status == 200
    instance_id = lambda: _http("GET", base + "/meta-data/instance-id", {"X-aws-ec2-metadata-token": token})  # noqa: E731
    assert instance_id() == (200, "i-0123456789abcdef0")
    clock.now += 4
    assert instance_id() == (200, "i-0123456789abcdef0"), "still within its 5 s"
    clock.now += 2
    assert instance_id()[0] == 401, "6 s after issue a 5 s token is refused"
    status, fresh = _http("PUT", base + "/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "5"})
    assert status == 200 and fresh != token
    assert _http("GET", base + "/meta-data/instance-id", {"X-aws-ec2-metadata-token": fresh})[0] == 200


@pytest.mark.slow
@needs_root
def test_metadata_tree(pair, cloud):
    group, instances, _ = pair
    instance = instances[0]
    _http = inside(cloud, instance)
    base = f"http://{instance['PrivateIpAddress']}:8775/latest"
    _, token = _http("PUT", base + "/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    get = lambda path: _http("GET", base + path, {"X-aws-ec2-metadata-token": token})  # noqa: E731
    listing = get("/meta-data/")[1].split("\n")
    assert {"instance-id", "local-ipv4", "placement/", "iam/", "block-device-mapping/"} <= set(listing)
    assert get("/meta-data/placement/region") == (200, "us-east-1")
    assert get("/meta-data/placement/availability-zone")[1] == instance["Placement"]["AvailabilityZone"]
    assert get("/meta-data/block-device-mapping/root") == (200, "/dev/sda1")
    assert get("/meta-data/iam/security-credentials/") == (200, group.role)
    info = json.loads(get("/meta-data/iam/info")[1])
    assert info["Code"] == "Success" and info["InstanceProfileArn"].endswith(f"/{group.name}-profile")
    creds = json.loads(get(f"/meta-data/iam/security-credentials/{group.role}")[1])
    assert creds["Type"] == "AWS-HMAC" and creds["Expiration"].endswith("Z") and creds["Token"]
    document = json.loads(get("/dynamic/instance-identity/document")[1])
    assert document["instanceId"] == instance["InstanceId"] and document["region"] == "us-east-1"
    assert json.loads(get("/user-data")[1]) == group.user_data
    assert get("/meta-data/no-such-thing")[0] == 404
