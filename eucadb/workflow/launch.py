"""The launch and teardown workflows (docs/architecture.md §5), declared as tables of steps."""
from __future__ import annotations

from eucadb.workflow.engine import Workflow
from eucadb.workflow.steps.admission import AdmissionStep
from eucadb.workflow.steps.autoscaling import AutoScalingGroupStep
from eucadb.workflow.steps.backup_bucket import BackupBucketStep
from eucadb.workflow.steps.certificate import ServerCertificateStep
from eucadb.workflow.steps.instance_role import InstanceRoleStep
from eucadb.workflow.steps.key_delivery import KeyDeliveryStep
from eucadb.workflow.steps.launch_template import LaunchTemplateStep
from eucadb.workflow.steps.replace import ReplaceOutdatedStep
from eucadb.workflow.steps.restore import Kept, RestoreVolumeStep, WaitRestoredStep
from eucadb.workflow.steps.security_group import SecurityGroupStep
from eucadb.workflow.steps.volume import VolumeStep
from eucadb.workflow.steps.wait import WaitDatabaseStep, WaitInstanceStep

LAUNCH_STEPS = (
    AdmissionStep(),
    SecurityGroupStep(),
    ServerCertificateStep(),
    BackupBucketStep(),
    InstanceRoleStep(),
    KeyDeliveryStep(),
    VolumeStep(),
    LaunchTemplateStep(),
    AutoScalingGroupStep(),
    ReplaceOutdatedStep(),
    WaitInstanceStep(),
    WaitDatabaseStep(),
)

LAUNCH = Workflow("launch", LAUNCH_STEPS)
# Teardown undoes the launch steps, last first; each rollback finds its resources by name and tag.
TEARDOWN = Workflow("teardown", tuple(reversed(LAUNCH_STEPS)), reverse=True)

# A restore (`eucadb backup restore`) is a launch onto a new volume that the instance restores at
# boot, then a wait for the restored database. Only the volume step rolls back when it fails.
RESTORE = Workflow("restore", (
    *(RestoreVolumeStep() if isinstance(step, VolumeStep) else Kept(step) for step in LAUNCH_STEPS),
    WaitRestoredStep(),
), always_roll_back=True)
LAUNCHES = (LAUNCH.kind, RESTORE.kind)   # the kinds of run after which a deployment runs
