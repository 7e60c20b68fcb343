"""The embedded cloud evaluates IAM policies as AWS does: the instance role's least-privilege policy
(the one eucadb writes) is enforced with the role's own assumed-role credentials, a user with no
policy can do nothing, explicit Deny beats Allow, and a bucket policy counts as AWS counts it."""
from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from eucadb.workflow.deployment import TAG
from eucadb.workflow.steps.instance_role import TRUST, instance_policy
from eucadb.workflow.steps.key_delivery import resource_policy

pytestmark = pytest.mark.slow
REGION = "us-east-1"


def _refusal(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error, meta = caught.value.response["Error"], caught.value.response["ResponseMetadata"]
    return error["Code"], meta["HTTPStatusCode"], error.get("Message", "")


class Deployment:
    """What eucadb's launch makes that the instance role's policy names: role, secret, bucket, tags."""

    def __init__(self, cloud, name: str | None = None):
        self.cloud = cloud
        self.name = name or uuid.uuid4().hex[:8]
        self.secret = f"eucadb/{self.name}/server-key"
        self.bucket, self.prefix = f"eucadb-{self.name}-backups", f"eucadb/{self.name}"
        iam = cloud.client("iam")
        self.role_arn = iam.create_role(RoleName=f"eucadb-{self.name}-db", Path=f"/eucadb/{self.name}/",
                                        AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        identity = cloud.client("sts").get_caller_identity()["Arn"]
        iam.put_role_policy(RoleName=f"eucadb-{self.name}-db", PolicyName="eucadb-db-instance",
                            PolicyDocument=json.dumps(instance_policy(
                                self.name, REGION, identity, self.secret, self.bucket, self.prefix)))
        secrets = cloud.client("secretsmanager")
        self.secret_arn = secrets.create_secret(Name=self.secret, SecretString=f"key of {self.name}")["ARN"]
        secrets.put_resource_policy(SecretId=self.secret_arn, ResourcePolicy=json.dumps(resource_policy(self.role_arn)))
        cloud.client("s3").create_bucket(Bucket=self.bucket)

    def session(self) -> dict[str, str]:
        return self.cloud.role_session(self.role_arn, "i-0123")

    def tags(self) -> list[dict[str, str]]:
        return [{"Key": TAG, "Value": self.name}]


@pytest.fixture(scope="module")
def pair(cloud):
    return Deployment(cloud), Deployment(cloud)


def test_the_instance_role_reads_only_its_own_secret(cloud, pair):
    mine, theirs = pair
    role = cloud.client("secretsmanager", **mine.session())
    assert role.get_secret_value(SecretId=mine.secret)["SecretString"] == f"key of {mine.name}"
    code, status, message = _refusal(lambda: role.get_secret_value(SecretId=theirs.secret))
    assert (code, status) == ("AccessDeniedException", 400)
    assert f"assumed-role/eucadb-{mine.name}-db/i-0123 is not authorized to perform: " \
           f"secretsmanager:GetSecretValue on resource: {theirs.secret_arn}" in message
    # a secret with no resource policy: only the identity policy decides, and it names one secret
    bare = cloud.client("secretsmanager").create_secret(Name=f"eucadb/{mine.name}x/other", SecretString="x")
    assert _refusal(lambda: role.get_secret_value(SecretId=bare["ARN"]))[:2] == ("AccessDeniedException", 400)
    assert _refusal(lambda: role.list_secrets())[:2] == ("AccessDeniedException", 400)


def _volume(cloud, zone: str, tags: list[dict[str, str]] | None) -> str:
    spec = {"TagSpecifications": [{"ResourceType": "volume", "Tags": tags}]} if tags else {}
    return cloud.client("ec2").create_volume(AvailabilityZone=zone, Size=1, **spec)["VolumeId"]


def test_the_instance_role_attaches_only_its_own_volume(cloud, pair, network):
    mine, theirs = pair
    ec2 = cloud.client("ec2")
    zone, subnet = sorted(network.items())[0]
    instance = ec2.run_instances(ImageId=cloud.images["probe"], InstanceType="t2.micro", MinCount=1, MaxCount=1,
                                 SubnetId=subnet, TagSpecifications=[{"ResourceType": "instance",
                                                                      "Tags": mine.tags()}])["Instances"][0]
    own, other, untagged = _volume(cloud, zone, mine.tags()), _volume(cloud, zone, theirs.tags()), _volume(cloud, zone, None)
    role = cloud.client("ec2", **mine.session())
    try:
        for volume in (other, untagged):
            code, status, message = _refusal(lambda: role.attach_volume(
                VolumeId=volume, InstanceId=instance["InstanceId"], Device="/dev/sdf"))
            assert (code, status) == ("UnauthorizedOperation", 403)
            assert message.startswith("You are not authorized to perform this operation.")
            assert f"on resource: arn:aws:ec2:{REGION}:" in message and f":volume/{volume}" in message
        assert ec2.describe_volumes(VolumeIds=[other])["Volumes"][0]["State"] == "available", "nothing changed"
        assert role.describe_volumes(VolumeIds=[own])["Volumes"][0]["VolumeId"] == own
        role.attach_volume(VolumeId=own, InstanceId=instance["InstanceId"], Device="/dev/sdf")
        assert ec2.describe_volumes(VolumeIds=[own])["Volumes"][0]["Attachments"][0]["InstanceId"] == instance["InstanceId"]
        # its own volume, but not an action the policy grants
        assert _refusal(lambda: role.detach_volume(VolumeId=own))[:2] == ("UnauthorizedOperation", 403)
        assert _refusal(lambda: role.describe_instances())[:2] == ("UnauthorizedOperation", 403)
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        for volume in (own, other, untagged):
            _delete_when_free(ec2, volume)


def _delete_when_free(ec2, volume: str) -> None:
    from localcloud import wait_for
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available", 30,
             f"{volume} detached")
    ec2.delete_volume(VolumeId=volume)


def test_the_instance_role_touches_only_its_own_backup_prefix(cloud, pair):
    mine, theirs = pair
    s3 = cloud.client("s3", **mine.session())
    key = f"{mine.prefix}/db/wals/000000010000000000000001.gz"
    s3.put_object(Bucket=mine.bucket, Key=key, Body=b"wal")
    assert s3.get_object(Bucket=mine.bucket, Key=key)["Body"].read() == b"wal"
    listed = s3.list_objects_v2(Bucket=mine.bucket, Prefix=f"{mine.prefix}/db/")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    upload = s3.create_multipart_upload(Bucket=mine.bucket, Key=f"{mine.prefix}/db/base/data.tar")
    s3.abort_multipart_upload(Bucket=mine.bucket, Key=f"{mine.prefix}/db/base/data.tar", UploadId=upload["UploadId"])
    root = cloud.client("s3")
    root.put_object(Bucket=mine.bucket, Key="elsewhere/x", Body=b"not yours")
    refused = {
        "another prefix": lambda: s3.put_object(Bucket=mine.bucket, Key=f"eucadb/{theirs.name}/db/x", Body=b"x"),
        "read outside": lambda: s3.get_object(Bucket=mine.bucket, Key="elsewhere/x"),
        "another bucket": lambda: s3.put_object(Bucket=theirs.bucket, Key=f"{mine.prefix}/db/x", Body=b"x"),
        "list without prefix": lambda: s3.list_objects_v2(Bucket=mine.bucket),
        "list another prefix": lambda: s3.list_objects_v2(Bucket=mine.bucket, Prefix="elsewhere/"),
        "delete outside (batch)": lambda: s3.delete_objects(Bucket=mine.bucket, Delete={"Objects": [
            {"Key": key}, {"Key": "elsewhere/x"}]}),
        "list buckets": lambda: s3.list_buckets(),
        "copy from outside": lambda: s3.copy_object(Bucket=mine.bucket, Key=f"{mine.prefix}/db/copy",
                                                    CopySource={"Bucket": mine.bucket, "Key": "elsewhere/x"}),
    }
    for what, call in refused.items():
        assert _refusal(call)[:2] == ("AccessDenied", 403), what
    assert root.get_object(Bucket=mine.bucket, Key="elsewhere/x")["Body"].read() == b"not yours"
    assert root.get_object(Bucket=mine.bucket, Key=key)["Body"].read() == b"wal", "the refused batch deleted nothing"
    s3.copy_object(Bucket=mine.bucket, Key=f"{mine.prefix}/db/copy", CopySource={"Bucket": mine.bucket, "Key": key})
    s3.delete_object(Bucket=mine.bucket, Key=key)


def _user(cloud, name: str) -> tuple[dict[str, str], str]:
    iam = cloud.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}, arn


NOTHING_ALLOWED = {  # service -> a call, and how that service refuses it
    "ec2": (lambda c: c.describe_instances(), ("UnauthorizedOperation", 403)),
    "secretsmanager": (lambda c: c.list_secrets(), ("AccessDeniedException", 400)),
    "iam": (lambda c: c.list_users(), ("AccessDenied", 403)),
    "autoscaling": (lambda c: c.describe_auto_scaling_groups(), ("AccessDenied", 403)),
    "sts": (lambda c: c.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="session"),
            ("AccessDenied", 403)),
    "s3": (lambda c: c.list_buckets(), ("AccessDenied", 403)),
}


def test_a_user_without_a_policy_can_do_nothing(cloud):
    keys, arn = _user(cloud, f"nobody-{uuid.uuid4().hex[:6]}")
    for service, (call, refusal) in NOTHING_ALLOWED.items():
        code, status, message = _refusal(lambda: call(cloud.client(service, **keys)))
        assert (code, status) == refusal, service
        assert f"User: {arn} is not authorized to perform: " in message, service
    assert cloud.client("sts", **keys).get_caller_identity()["Arn"] == arn  # needs no permission, as on AWS


def test_explicit_deny_beats_allow_across_managed_group_and_inline_policies(cloud):
    name = f"u-{uuid.uuid4().hex[:6]}"
    keys, arn = _user(cloud, name)
    iam = cloud.client("iam")
    describe = iam.create_policy(PolicyName=f"{name}-describe", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))
    iam.attach_user_policy(UserName=name, PolicyArn=describe["Policy"]["Arn"])
    ec2 = cloud.client("ec2", **keys)
    ec2.describe_instances()
    ec2.describe_volumes()
    iam.create_group(GroupName=f"{name}-g")
    iam.add_user_to_group(GroupName=f"{name}-g", UserName=name)
    iam.put_group_policy(GroupName=f"{name}-g", PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": ["iam:Delete*", "secretsmanager:*"],
                                                "Resource": "*"}]}))
    cloud.client("iam", **keys).list_users()
    code, _, message = _refusal(lambda: cloud.client("iam", **keys).delete_user(UserName="someone"))
    assert code == "AccessDenied" and message.endswith(
        "on resource: arn:aws:iam::123456789012:user/someone because no identity-based policy allows "
        "the iam:DeleteUser action")
    iam.put_user_policy(UserName=name, PolicyName="no-volumes", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:DescribeVolumes",
                                                "NotResource": "arn:aws:ec2:*:*:instance/*"}]}))
    code, status, message = _refusal(lambda: ec2.describe_volumes())
    assert (code, status) == ("UnauthorizedOperation", 403)
    assert "with an explicit deny in an identity-based policy" in message
    ec2.describe_instances()
    # an operator this evaluator does not know: its Allow does not apply (fail closed)
    iam.put_user_policy(UserName=name, PolicyName="odd", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets",
                                                "Resource": "*", "Condition": {
                                                    "NumericLessThan": {"s3:max-keys": "10"}}}]}))
    assert _refusal(lambda: cloud.client("secretsmanager", **keys).list_secrets())[0] == "AccessDeniedException"


def test_a_bucket_policy_allows_and_denies_as_on_aws(cloud):
    keys, arn = _user(cloud, f"b-{uuid.uuid4().hex[:6]}")
    bucket = f"policy-{uuid.uuid4().hex[:8]}"
    root = cloud.client("s3")
    root.create_bucket(Bucket=bucket)
    root.put_object(Bucket=bucket, Key="shared/a", Body=b"a")
    root.put_object(Bucket=bucket, Key="locked/b", Body=b"b")
    user = cloud.client("s3", **keys)
    assert _refusal(lambda: user.get_object(Bucket=bucket, Key="shared/a"))[:2] == ("AccessDenied", 403)
    root.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/shared/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/locked/*"}]}))
    # same account: the bucket policy's Allow is enough without any identity policy
    assert user.get_object(Bucket=bucket, Key="shared/a")["Body"].read() == b"a"
    assert _refusal(lambda: user.get_object(Bucket=bucket, Key="locked/b"))[:2] == ("AccessDenied", 403)
    # and its explicit Deny refuses even eucadb's admin root
    code, _, message = _refusal(lambda: root.get_object(Bucket=bucket, Key="locked/b"))
    assert code == "AccessDenied" and "explicit deny in a resource-based policy" in message
    root.delete_bucket_policy(Bucket=bucket)
    assert root.get_object(Bucket=bucket, Key="locked/b")["Body"].read() == b"b"


def test_iam_actions_are_authorized_on_the_entity_they_name(cloud):
    name = f"r-{uuid.uuid4().hex[:6]}"
    keys, _ = _user(cloud, name)
    cloud.client("iam").put_user_policy(UserName=name, PolicyName="roles", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:CreateRole", "iam:GetRole"],
                                                "Resource": f"arn:aws:iam::*:role/eucadb/{name}/*"}]}))
    iam = cloud.client("iam", **keys)
    iam.create_role(RoleName=f"{name}-ok", Path=f"/eucadb/{name}/", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert iam.get_role(RoleName=f"{name}-ok")["Role"]["Path"] == f"/eucadb/{name}/"
    code, _, message = _refusal(lambda: iam.create_role(RoleName=f"{name}-no", AssumeRolePolicyDocument=json.dumps(TRUST)))
    assert code == "AccessDenied" and f"on resource: arn:aws:iam::123456789012:role/{name}-no " in message


def _trusting(cloud, name: str, principal: dict, effect: str = "Allow") -> str:
    return cloud.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": effect, "Principal": principal,
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]


def test_assume_role_needs_the_roles_trust(cloud):
    tag = uuid.uuid4().hex[:6]
    instance_role = cloud.client("iam").create_role(RoleName=f"inst-{tag}", AssumeRolePolicyDocument=json.dumps(
        TRUST))["Role"]["Arn"]  # eucadb's instance role: trusts ec2.amazonaws.com only
    keys, arn = _user(cloud, f"assumer-{tag}")
    cloud.client("iam").put_user_policy(UserName=f"assumer-{tag}", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    root_arn = cloud.client("sts").get_caller_identity()["Arn"]
    for who, sts in ((arn, cloud.client("sts", **keys)), (root_arn, cloud.client("sts"))):  # identity allows, trust does not
        assert _refusal(lambda: sts.assume_role(RoleArn=instance_role, RoleSessionName="sess")) == (
            "AccessDenied", 403, f"User: {who} is not authorized to perform: sts:AssumeRole on resource: {instance_role}")
    session = cloud.role_session(instance_role)  # the EC2 service, which the trust names, gets it
    assert ":assumed-role/inst-" in cloud.client("sts", **session).get_caller_identity()["Arn"]

    account = _trusting(cloud, f"acct-{tag}", {"AWS": "arn:aws:iam::123456789012:root"})
    cloud.client("sts", **keys).assume_role(RoleArn=account, RoleSessionName="sess")  # trust + identity
    others, other_arn = _user(cloud, f"nopolicy-{tag}")  # trusted through the account, no identity Allow
    code, status, message = _refusal(lambda: cloud.client("sts", **others).assume_role(RoleArn=account,
                                                                                         RoleSessionName="sess"))
    assert (code, status) == ("AccessDenied", 403) and "because no identity-based policy allows" in message
    assert _refusal(lambda: cloud.client("sts", **cloud.ec2_service).assume_role(
        RoleArn=account, RoleSessionName="sess"))[:2] == ("AccessDenied", 403)  # EC2 is not the account

    direct = _trusting(cloud, f"direct-{tag}", {"AWS": other_arn})  # names the user itself: enough, as on AWS
    cloud.client("sts", **others).assume_role(RoleArn=direct, RoleSessionName="sess")
    denied = _trusting(cloud, f"denied-{tag}", {"AWS": arn}, effect="Deny")
    code, _, message = _refusal(lambda: cloud.client("sts", **keys).assume_role(RoleArn=denied, RoleSessionName="sess"))
    assert code == "AccessDenied" and "explicit deny in a resource-based policy" in message


def test_the_ec2_service_can_do_nothing_but_assume_roles_that_trust_it(cloud):
    assert _refusal(lambda: cloud.client("ec2", **cloud.ec2_service).describe_instances())[:2] == \
        ("UnauthorizedOperation", 403)
    assert _refusal(lambda: cloud.client("secretsmanager", **cloud.ec2_service).list_secrets())[:2] == \
        ("AccessDeniedException", 400)
