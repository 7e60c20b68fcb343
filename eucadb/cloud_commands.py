"""`eucadb cloud …` (the embedded local cloud) and `eucadb image …` commands.

Outside `cloud/` on purpose: installing an image also sets `services.database.worker.image` and checks
it against the instance type, which is the properties' and the workflow's business, not the cloud layer's."""
from __future__ import annotations

from pathlib import Path

import click

from eucadb.app import App
from eucadb.output import OUTPUT_OPTION, emit, table
from eucadb.properties.registry import WORKER

WORKER_IMAGE = WORKER + "image"


@click.group("cloud")
def cloud_group() -> None:
    """The embedded local cloud (moto control plane + instance realizer + metadata service)."""


@cloud_group.command("up")
@OUTPUT_OPTION
@click.pass_obj
def cloud_up(app: App, output: str) -> None:
    """Start the embedded cloud (idempotent) and point eucadb's config at it."""
    from eucadb.cloud.local.control import up
    config, network = up(app.config)
    emit({"endpoint": config["cloud.endpoint_url"], "region": config["cloud.region"],
          "vpc": f"{network.vpc_id} ({network.cidr})",
          "zones": ", ".join(f"{z}={s}" for z, s in sorted(network.subnets.items()))}, output)


@cloud_group.command("down")
@click.pass_obj
def cloud_down(app: App) -> None:
    """Stop every process `cloud up` started and every realized instance; keep all data and state
    (the next `cloud up` resumes the same cloud; `eucadb destroy` removes it)."""
    from eucadb.cloud.local.control import down
    stopped = down(app.config)
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@cloud_group.command("rotate-root-key")
@click.pass_obj
def cloud_rotate_root_key(app: App) -> None:
    """Replace the embedded cloud's root access key (eucadb.yaml and the cloud's root-credentials.json,
    both 0600); the old key is deactivated and deleted."""
    from eucadb.cloud.local.rotation import rotate_root_key
    rotated = rotate_root_key(app.config)
    click.echo(f"root key {rotated.old} replaced by {rotated.new} (the old key is deleted)"
               + ("; the realizer was restarted on it" if rotated.realizer_restarted else ""))
    click.echo("a running `eucadb serve` switches to the new key on its next cloud call; other programs "
               "holding the old key must be restarted")


@cloud_group.command("status")
@OUTPUT_OPTION
@click.pass_obj
def cloud_status_cmd(app: App, output: str) -> None:
    """Endpoint, zones, instances (state, IP, realized pid), volumes and snapshots."""
    from eucadb.cloud.local.status import cloud_status
    status = cloud_status(app.config)
    if output == "json":
        emit(status, output)
        return
    click.echo(f"cloud:     {status['state']}  endpoint {status['endpoint'] or '-'}  region {status['region']}")
    click.echo(f"data dir:  {status['data_dir']}")
    saved = status["control_plane"]
    click.echo(f"state:     {saved['path']}" + (f"  {saved['size']} bytes, written {saved['written']}"
                                                 if saved["size"] is not None else "")
               + (f"  ({saved['problem']})" if saved["problem"] else ""))
    sections = [("daemons", ["name", "pid", "running", "log"]),
                ("zones", ["zone", "subnet", "cidr"]),
                ("instances", ["id", "state", "ip", "zone", "image", "group", "pid", "process"]),
                ("volumes", ["id", "state", "zone", "size", "instance", "device"]),
                ("snapshots", ["id", "volume", "state"])]
    for name, columns in sections:
        click.echo(f"\n{name}:\n" + table(status[name], columns))


@click.group("image")
def image_group() -> None:
    """Images eucadb's database instances boot from."""


@image_group.command("install")
@click.option("--local", "local", is_flag=True,
              help="the embedded cloud's image: setup_db.py and a Python runtime, run as the instance")
@click.option("--file", "disk", type=click.Path(path_type=Path), default=None, metavar="DISK",
              help="a raw disk built by image/build.sh (OUTDIR/eucadb-db.raw), uploaded to a snapshot "
                   "with the EBS direct APIs and registered as a UEFI image")
@click.option("--boot-program", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="with --local: boot program to install as setup_db.py (default: the "
                   "scripts/setup_db.py shipped with eucadb)")
@click.pass_obj
def image_install(app: App, local: bool, disk: Path | None, boot_program: Path | None) -> None:
    """Register the eucadb DB image, print its id and make it services.database.worker.image
    (a --file disk registered in the embedded cloud is not: its instances cannot boot disks).

    Idempotent: installing the same content again prints the same image id."""
    if local == (disk is not None):
        raise click.UsageError("give exactly one of --local (embedded cloud) and --file DISK")
    if boot_program is not None and not local:
        raise click.UsageError("--boot-program goes with --local")
    click.echo(_install_local(app, boot_program) if local else _install_disk(app, disk))


def _install_local(app: App, boot_program: Path | None) -> str:
    from eucadb.cloud.local.image import install_local_image
    image = install_local_image(app, boot_program)
    app.properties.set_many([f"{WORKER_IMAGE}={image}"])
    return image


def _install_disk(app: App, disk: Path) -> str:
    """Upload and register the disk; make it the worker image wherever it can boot, and say now if
    the configured instance type cannot boot it (the launch's admission would refuse it later)."""
    from eucadb.cloud.image_file import install_image_file
    from eucadb.cloud.local.control import is_embedded
    from eucadb.errors import WorkflowError
    from eucadb.workflow.steps.admission import check_boot_mode
    image = install_image_file(app, disk, on_progress=_progress())
    if is_embedded(app.config):  # its instances are processes, not VMs: a disk cannot boot there
        click.echo(f"registered {image} in the embedded cloud, which cannot boot disk images: "
                   f"{WORKER_IMAGE} is left as it is (use --local here)", err=True)
        return image
    app.properties.set_many([f"{WORKER_IMAGE}={image}"])
    try:
        check_boot_mode(app.facts, image, app.properties.value(WORKER + "instance_type"))
    except WorkflowError as exc:
        click.echo(f"warning: {exc}", err=True)
    return image


def _progress():
    """Upload progress on stderr, one line per 10% (stdout stays the image id alone)."""
    shown = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != shown[0]:
            shown[0] = tenth
            click.echo(f"uploading: {tenth * 10}% of {total} blocks", err=True)
    return report
