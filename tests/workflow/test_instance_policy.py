"""The instance role's policy: only its own key and its own deployment's volumes, in its partition."""
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
    policy = instance_policy("dep1", "r-1", identity, "eucadb/dep1/server-key")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"ReadOwnKey", "AttachOwnVolume", "DescribeVolumes"}
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
