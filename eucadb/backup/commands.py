"""`eucadb backup create | list` — base backups of the remote database in its backup bucket."""
from __future__ import annotations

import click

from eucadb.backup import service
from eucadb.output import OUTPUT_OPTION, emit

COLUMNS = ["backup_id", "backup_name", "kind", "status", "begin_time", "end_time", "begin_wal", "end_wal"]


@click.group("backup")
def backup_group() -> None:
    """Base backups of the append-only database (WAL is archived continuously)."""


@backup_group.command("create")
@click.option("--name", default=None, help="the backup's name (default: eucadb-<UTC time>)")
@click.option("--kind", type=click.Choice(service.KINDS), default="object", show_default=True,
              help="object: barman-cloud-backup by the instance to the bucket; snapshot: a volume "
                   "snapshot between pg_backup_start and pg_backup_stop")
@OUTPUT_OPTION
@click.pass_obj
def create_cmd(app, name: str | None, kind: str, output: str) -> None:
    """Take a base backup now; with the archived WAL it restores to any later time."""
    emit(service.create_backup(app, name, kind), output)


@backup_group.command("list")
@OUTPUT_OPTION
@click.pass_obj
def list_cmd(app, output: str) -> None:
    """The base backups in the bucket, oldest first, with their time and WAL ranges."""
    emit(service.list_backups(app), output, COLUMNS)
