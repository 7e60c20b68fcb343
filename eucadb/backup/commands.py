"""`eucadb backup create | list` — base backups of the remote database in its backup bucket."""
from __future__ import annotations

import click

from eucadb.backup import manage, restore, service
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
    """Take a base backup now (with the archived WAL it restores to any later time); then the
    retention policy (backup.retention_count / retention_days) deletes what it lets go."""
    made = service.create_backup(app, name, kind)
    made["retention_deleted"] = manage.apply_retention(app, service._deployment(app))
    emit(made, output)


@backup_group.command("list")
@OUTPUT_OPTION
@click.pass_obj
def list_cmd(app, output: str) -> None:
    """The base backups in the bucket, oldest first, with their time and WAL ranges."""
    emit(service.list_backups(app), output, COLUMNS)


@backup_group.command("restore")
@click.argument("backup_id", required=False)
@click.option("--time", "when", default=None, metavar="ISO8601",
              help="restore to this time (UTC unless it names a zone): the latest base backup before it "
                   "plus WAL replay")
@click.option("--wait/--no-wait", default=True, help="follow the restore until the services are ENABLED")
@OUTPUT_OPTION
@click.pass_obj
def restore_cmd(app, backup_id: str | None, when: str | None, wait: bool, output: str) -> None:
    """Restore onto a NEW data volume (the old one is kept, tagged eucadb:retired): the instance is
    replaced and restores itself at boot; the services come back on the restored database."""
    started = restore.start_restore(app, backup_id, when)
    click.echo(f"restore {started['token']}: backup {started['backup_id']}"
               + (f" to {started['target_time']}" if started["target_time"] else " (its end)")
               + f", run {started['run']}", err=True)
    if wait:
        started.update(restore.follow(app, started["run"], lambda line: click.echo(line, err=True)))
    emit(started, output)


@backup_group.command("volumes")
@OUTPUT_OPTION
@click.pass_obj
def volumes_cmd(app, output: str) -> None:
    """The deployment's data volumes: the current one and those restores retired (kept to go back to)."""
    emit(restore.volumes(app), output, restore.VOLUME_COLUMNS)


@backup_group.command("show")
@click.argument("backup_id")
@OUTPUT_OPTION
@click.pass_obj
def show_cmd(app, backup_id: str, output: str) -> None:
    """One backup (by id or name): times, WAL range, size, retention and restore use."""
    emit(manage.show(app, backup_id), output)


@backup_group.command("delete")
@click.argument("backup_id")
@click.option("--force", is_flag=True, help="delete even below the retention minimum (says what it breaks)")
@OUTPUT_OPTION
@click.pass_obj
def delete_cmd(app, backup_id: str, force: bool, output: str) -> None:
    """Delete a base backup and the WAL only it needed (never one a restore in progress uses)."""
    emit(manage.delete(app, backup_id, force), output)
