"""The instance role's policy: only its own key, its own deployment's volumes and its own backup prefix,
in its partition."""
from __future__ import annotations

import pytest

from eucadb.workflow.deployment import TAG
from eucadb.workflow.steps.instance_role import instance_policy


@pytest.mark.parametrize("identity, partition", [
    ("arn:aws:iam::123456789012:user/admin", "aws"),
    ("arn:aws-cn:sts::210987654321:assumed-role/ops/session", "aws-cn"),
    ("arn:aws-us-gov:iam::111122223333:root", "aws-us-gov"),
])
def test_policy_is_scoped_to_the_deployment_in_the_callers_partition(identity, partition):
    account = identity.split(":")[4]
    policy = instance_policy("dep1", "r-1", identity, "eucadb/dep1/server-key",
                             "eucadb-dep1-backups", "eucadb/dep1")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"ReadOwnKey", "AttachOwnVolume", "DescribeVolumes", "OwnBackupObjects",
                           "ListOwnBackupPrefix"}
    assert by_sid["ReadOwnKey"]["Action"] == "secretsmanager:GetSecretValue"
    assert by_sid["ReadOwnKey"]["Resource"] == \
        f"arn:{partition}:secretsmanager:r-1:{account}:secret:eucadb/dep1/server-key-*"
    attach = by_sid["AttachOwnVolume"]
    assert attach["Action"] == ["ec2:AttachVolume"]
    assert attach["Resource"] == [f"arn:{partition}:ec2:r-1:{account}:volume/*",
                                  f"arn:{partition}:ec2:r-1:{account}:instance/*"]
    assert attach["Condition"] == {"StringEquals": {f"aws:ResourceTag/{TAG}": "dep1"}}
    # nothing but reads and the one attach: no wildcards on actions
    actions = [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert all("*" not in a for a in actions)


def test_backup_access_is_the_deployments_own_prefix_only():
    """Barman Cloud writes, reads and deletes (retention) objects under the prefix and lists it; no
    other key of the bucket (or any other bucket) is reachable, and listing needs the prefix."""
    policy = instance_policy("dep1", "r-1", "arn:aws:iam::123456789012:user/admin",
                             "eucadb/dep1/server-key", "eucadb-dep1-backups", "eucadb/dep1")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    objects = by_sid["OwnBackupObjects"]
    assert sorted(objects["Action"]) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject",
                                         "s3:PutObject"]
    assert objects["Resource"] == "arn:aws:s3:::eucadb-dep1-backups/eucadb/dep1/*"
    listing = by_sid["ListOwnBackupPrefix"]
    assert (listing["Action"], listing["Resource"]) == ("s3:ListBucket", "arn:aws:s3:::eucadb-dep1-backups")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "eucadb/dep1/*"}}
    s3 = [s for s in policy["Statement"] if any(str(a).startswith("s3:") for a in
                                                 ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
    assert {s["Sid"] for s in s3} == {"OwnBackupObjects", "ListOwnBackupPrefix"}
