"""The launch and teardown workflows (docs/architecture.md §5), declared as tables of steps."""
from __future__ import annotations

from eucadb.workflow.engine import Workflow
from eucadb.workflow.steps.admission import AdmissionStep
from eucadb.workflow.steps.autoscaling import AutoScalingGroupStep
from eucadb.workflow.steps.backup_bucket import BackupBucketStep
from eucadb.workflow.steps.certificate import ServerCertificateStep
from eucadb.workflow.steps.instance_role import InstanceRoleStep
from eucadb.workflow.steps.key_delivery import KeyDeliveryStep
from eucadb.workflow.steps.failover import (ChooseCandidateStep, FencePrimaryStep, PrimaryTemplateStep,
                                            PromoteStep, QuiesceStep, RecordPrimaryStep, RepointReplicasStep)
from eucadb.workflow.steps.launch_template import LaunchTemplateStep
from eucadb.workflow.steps.members import (MemberGroupsStep, MemberPlanStep, MemberTemplatesStep,
                                           MemberVolumesStep, ReplicationSlotsStep, RetireMembersStep,
                                           WaitMembersStep)
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

# The replicas around the primary (docs/architecture.md §13): run after a launch succeeded, whenever
# the wanted members differ from the last members run.
MEMBER_STEPS = (
    MemberPlanStep(),
    ReplicationSlotsStep(),
    MemberVolumesStep(),
    MemberTemplatesStep(),
    MemberGroupsStep(),
    RetireMembersStep(),
    WaitMembersStep(),
)

LAUNCH = Workflow("launch", LAUNCH_STEPS)
# A restore (`eucadb backup restore`) is a launch onto a new volume that the instance restores at
# boot, then a wait for the restored database. Only the volume step rolls back when it fails.
RESTORE = Workflow("restore", (
    *(RestoreVolumeStep() if isinstance(step, VolumeStep) else Kept(step) for step in LAUNCH_STEPS),
    WaitRestoredStep(),
), always_roll_back=True)
LAUNCHES = (LAUNCH.kind, RESTORE.kind)   # the kinds of run after which a deployment runs
MEMBERS = Workflow("members", MEMBER_STEPS)
# The primary is lost: fence it through the cloud first, then promote (docs/architecture.md §13).
PROMOTION_STEPS = (FencePrimaryStep(), ChooseCandidateStep(), PromoteStep(), RecordPrimaryStep(),
                   PrimaryTemplateStep(), RepointReplicasStep())
FAILOVER = Workflow("failover", PROMOTION_STEPS)
# Planned: the writers paused and the target caught up first, then the same fenced promotion.
SWITCHOVER = Workflow("switchover", (QuiesceStep(), *PROMOTION_STEPS))
# Teardown undoes the launch steps and the replicas' (their groups first), last first; each rollback
# finds its resources by name and tag.
TEARDOWN = Workflow("teardown", tuple(reversed(
    LAUNCH_STEPS + (MemberVolumesStep(), MemberTemplatesStep(), MemberGroupsStep()))), reverse=True)
