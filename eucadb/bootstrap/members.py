"""What the leader sees of each replication member: cloud facts plus each server's own view.

Read with the health check (leader only): one DescribeAutoScalingGroups + DescribeInstances for all
members, then each running member is asked, as the admin over TLS verify-full, for its role,
timeline and WAL positions; the primary also reports its slots. A member that does not answer is
shown with its error, never hidden.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from botocore.exceptions import ClientError

from eucadb.errors import CloudError, DatabaseError
from eucadb.workflow import replication_sql as rsql
from eucadb.workflow.members import MAX_MEMBERS, Member

PRIMARY_SQL = ("SELECT pg_is_in_recovery(), pg_current_wal_lsn()::text, "
               "(SELECT timeline_id FROM pg_control_checkpoint())")
REPLICA_SQL = ("SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
               "(SELECT received_tli FROM pg_stat_wal_receiver), "
               "(SELECT status FROM pg_stat_wal_receiver), "
               "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())")
SLOTS_SQL = ("SELECT slot_name, active, wal_status, restart_lsn::text FROM pg_replication_slots "
             "WHERE slot_type = 'physical'")


@dataclass(frozen=True)
class MemberView:
    name: str
    index: int
    role: str                    # primary | replica (what the server says; "unknown" if unreachable)
    state: str                   # streaming, running, <EC2 state>, unreachable …
    zone: str = ""
    ip: str | None = None
    instance_id: str | None = None
    timeline: int | None = None
    received_lsn: str | None = None
    replayed_lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    slot: str | None = None
    slot_state: str | None = None   # the slot on the primary: active/inactive + wal_status
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lsn(text: str | None) -> int | None:
    """'16/B374D848' → bytes."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def member_instances(clients, deployment: str) -> dict[int, dict]:
    """Member index → its group's running (else newest) instance, from two cloud calls."""
    names = {Member(deployment, i).group: i for i in range(MAX_MEMBERS)}
    try:
        groups = clients.call("autoscaling", "describe_auto_scaling_groups",
                              AutoScalingGroupNames=list(names))["AutoScalingGroups"]
        ids = {i["InstanceId"]: names[g["AutoScalingGroupName"]] for g in groups
               for i in g.get("Instances", []) if g["AutoScalingGroupName"] in names}
        found = clients.call("ec2", "describe_instances", InstanceIds=list(ids))["Reservations"] if ids else []
    except ClientError as exc:
        raise CloudError(str(exc)) from None
    out: dict[int, dict] = {}
    for inst in (i for r in found for i in r["Instances"]):
        index = ids[inst["InstanceId"]]
        if index not in out or inst["State"]["Name"] == "running":
            out[index] = inst
    for index in {names[g["AutoScalingGroupName"]] for g in groups} - set(out):
        out[index] = {}
    return out


def observe_members(instances: Mapping[int, dict], primary: int, endpoint_of, admin: dict) -> tuple[MemberView, ...]:
    """Each member's view; `endpoint_of(ip)` builds the TLS endpoint (the vault's)."""
    head, slots = None, {}
    views = []
    order = sorted(instances, key=lambda i: (i != primary, i))
    for index in order:
        inst, member = instances[index], Member("", index)
        ip, zone = inst.get("PrivateIpAddress"), (inst.get("Placement") or {}).get("AvailabilityZone", "")
        base = dict(name=member.name, index=index, zone=zone, ip=ip, instance_id=inst.get("InstanceId"),
                    slot=None if index == primary else member.slot)
        state = (inst.get("State") or {}).get("Name", "no instance")
        if state != "running" or not ip:
            views.append(MemberView(role="primary" if index == primary else "replica", state=state, **base))
            continue
        try:
            with rsql.admin_session(endpoint_of(ip), admin) as cur:
                if index == primary:
                    cur.execute(PRIMARY_SQL)
                    recovery, current, tli = cur.fetchone()
                    cur.execute(SLOTS_SQL)
                    slots = {name: (active, wal, restart) for name, active, wal, restart in cur.fetchall()}
                    head = lsn(current)
                    views.append(MemberView(role="replica" if recovery else "primary", state="running",
                                            timeline=tli, received_lsn=current, replayed_lsn=current,
                                            lag_bytes=0, lag_seconds=0.0, **base))
                    continue
                cur.execute(REPLICA_SQL)
                recovery, received, replayed, tli, receiver, seconds = cur.fetchone()
        except DatabaseError as exc:
            views.append(MemberView(role="unknown", state="unreachable", error=str(exc), **base))
            continue
        lag = None if head is None or lsn(received) is None else max(0, head - lsn(received))
        # the replay timestamp is that of the last transaction: with nothing left to replay the
        # replica is current, however long ago that transaction was
        caught_up = received is not None and received == replayed
        views.append(MemberView(role="replica" if recovery else "primary", state=receiver or "not streaming",
                                timeline=tli, received_lsn=received, replayed_lsn=replayed, lag_bytes=lag,
                                lag_seconds=0.0 if caught_up else None if seconds is None else
                                max(0.0, float(seconds)), **base))
    return tuple(_with_slot(v, slots) for v in views)


def _with_slot(view: MemberView, slots: Mapping[str, tuple]) -> MemberView:
    if view.slot is None:
        return view
    found = slots.get(view.slot)
    state = "missing" if found is None else f"{'active' if found[0] else 'inactive'}, wal {found[1]}"
    return MemberView(**{**asdict(view), "slot_state": state})
