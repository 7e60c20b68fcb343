"""`eucadb switchover [--to MEMBER]`: ask the leader for a planned change of primary.

Like `property set`, an admin's input to the leader (the running serve holds the lease for good):
the request is stored, and the leader's loop runs the switchover workflow — writers paused, the
target caught up, the old primary fenced through the cloud, the target promoted.
"""
from __future__ import annotations

import re

import click

from eucadb.errors import UserError
from eucadb.properties.registry import WORKER
from eucadb.store.replication import primary_record, request_switchover
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.members import replica_indexes

MEMBER = re.compile(r"m([0-5])")


@click.command("switchover")
@click.option("--to", "to", default=None, metavar="MEMBER", help="the replica to promote (m1…m5; default: "
              "the most advanced)")
@click.pass_obj
def switchover_cmd(app, to: str | None) -> None:
    """Switch the primary over to a replica, with no acknowledged write lost."""
    deployment = current_deployment(app.store, create=False)
    replicas = int(app.properties.value(WORKER + "replicas"))
    if deployment is None or replicas == 0:
        raise UserError(f"no replica to switch over to: set {WORKER}replicas (1..5) first")
    record = primary_record(app.store, deployment)
    index = None
    if to is not None:
        match = MEMBER.fullmatch(to.strip())
        wanted = replica_indexes(record.member, replicas)
        if match is None or int(match.group(1)) not in wanted:
            raise UserError(f"--to {to!r}: not a replica; the replicas are "
                            f"{', '.join(f'm{i}' for i in wanted)} (the primary is m{record.member})")
        index = int(match.group(1))
    request_switchover(app.store, deployment, index)
    click.echo(f"switchover requested: the leader moves the primary from m{record.member} to "
               f"{f'm{index}' if index is not None else 'the most advanced replica'}; "
               "`eucadb status` shows it")
