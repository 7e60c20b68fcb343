"""The `eucadb` command. Sub-commands live next to the concept they drive (properties/commands.py, …).

Exit codes: 0 success, 1 an error with a one-line reason (bad input, cloud or DB failure), 2 usage.
"""
from __future__ import annotations

import sys

import click

from eucadb import __version__
from eucadb.app import App
from eucadb.backup.commands import backup_group
from eucadb.cloud_commands import cloud_group, image_group
from eucadb.config import load
from eucadb.errors import EucadbError
from eucadb.files import secure_home
from eucadb.logs import configure_logging
from eucadb.properties.commands import property_group
from eucadb.serve.commands import serve_cmd, service_group, status_cmd
from eucadb.services.cloudwatch.commands import credentials_group
from eucadb.services.reporting.commands import report_group
from eucadb.workflow.commands import workflow_group
from eucadb.workflow.switchover_command import switchover_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eucadb")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML config file (default $EUCADB_HOME/eucadb.yaml)")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """eucadb: runs the cloud's append-only databases on an instance the cloud launches itself."""
    config = load(config_path)
    secure_home(config)
    configure_logging(config["log.level"])
    app = App(config)
    ctx.obj = app
    ctx.call_on_close(app.close)


cli.add_command(property_group)
cli.add_command(cloud_group)
cli.add_command(image_group)
cli.add_command(workflow_group)
cli.add_command(switchover_cmd)
cli.add_command(serve_cmd)
cli.add_command(status_cmd)
cli.add_command(service_group)
cli.add_command(credentials_group)
cli.add_command(report_group)
cli.add_command(backup_group)


@cli.command("up")
@click.pass_obj
def up_cmd(app: App) -> None:
    """Run everything on the embedded default: cloud, image, properties, serve — until ENABLED."""
    from eucadb.serve.lifecycle import up
    doc = up(app, say=lambda m: click.echo(f"up: {m}", err=True))
    db = doc.get("database") or {}
    click.echo(f"""eucadb is up: cloudwatch and reporting ENABLED; database {db.get('endpoint')} \
({db.get('dns_name')}), TLS verify-full.
  eucadb status                  one screen of state (add --watch)
  curl {_serve_url(app)}/status  the same as JSON; /readyz /metrics /healthz
  eucadb property list           what an admin can change
  eucadb down                    stop the server and the embedded cloud (keeps everything)""")


@cli.command("down")
@click.pass_obj
def down_cmd(app: App) -> None:
    """Stop what `eucadb up` started: the server and the embedded cloud. Deletes nothing: the next
    `eucadb up` resumes the same deployment (use `eucadb destroy` to remove it)."""
    from eucadb.serve.lifecycle import down
    stopped = down(app)
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@cli.command("destroy")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def destroy_cmd(app: App, yes: bool) -> None:
    """Remove the deployment and the embedded cloud: the database instance, its data volume (the
    data is lost), every cloud resource, and the embedded cloud's data directory."""
    from eucadb.cloud.local.layout import Layout
    from eucadb.serve.lifecycle import destroy
    if not yes:
        click.confirm(f"destroy the deployment, its data volume and the embedded cloud in "
                      f"{Layout.from_config(app.config).data_dir}? The data is lost", abort=True)
    removed = destroy(app, say=lambda m: click.echo(f"destroy: {m}", err=True))
    click.echo("removed: " + (", ".join(removed) if removed else "nothing was there"))


def _serve_url(app: App) -> str:
    from eucadb.local_server import base_url
    return base_url(app.config)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="eucadb", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EucadbError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
