"""`eucadb workflow show | launch | teardown | rotate-passwords` — the launch workflow by hand.

`eucadb serve` drives these automatically; by hand they take the same leader lease, so a manual run
never races a running server.
"""
from __future__ import annotations

import logging

import click

from eucadb.bootstrap.lease import LeaderLease
from eucadb.errors import UserError
from eucadb.output import OUTPUT_OPTION, emit
from eucadb.workflow.engine import RunState, history
from eucadb.workflow.credentials import ROLES
from eucadb.workflow.deployment import current_deployment
from eucadb.workflow.launch import LAUNCH, TEARDOWN
from eucadb.workflow.service import run_workflow
from eucadb.workflow.steps.wait import DB_DEADLINE

log = logging.getLogger(__name__)


@click.group("workflow")
def workflow_group() -> None:
    """Show, run or undo the launch workflow of the append-only database."""


@workflow_group.command("show")
@click.option("--run", "run_id", type=int, default=None, help="a run id (default: the latest run)")
@OUTPUT_OPTION
@click.pass_obj
def show_cmd(app, run_id: int | None, output: str) -> None:
    """Steps, states, resource ids, errors and timings of a workflow run."""
    runs = history(app.store, run_id=run_id)
    if run_id is not None and not runs:
        raise UserError(f"no workflow run {run_id}; `eucadb workflow show` lists the latest")
    if output == "json":
        emit(runs if run_id is None else runs[0], output)
        return
    if not runs:
        click.echo("no workflow has run yet")
        return
    run = runs[0]
    click.echo(f"run {run['run']} ({run['kind']}, deployment {run['deployment']}): {run['state']}"
               f"  started {run['started_at']}" + (f"  finished {run['finished_at']}" if run['finished_at'] else ""))
    if run["error"]:
        click.echo(f"error: {run['error']}")
    rows = [{**s, "resources": " ".join(f"{k}={v}" for k, v in s["resources"].items()
                                        if k not in ("subnets", "zones"))} for s in run["steps"]]
    emit(rows, "table", ["step", "state", "attempts", "seconds", "resources", "error"])


def run_by_hand(app, workflow, options) -> None:
    """Run a workflow under the leader lease (a running serve holds it: then refuse); progress on
    stderr. UserError unless it succeeded."""
    app.clients.require()
    # no loop renews this lease: it is renewed as each step starts, and outlasts the longest step
    lease = LeaderLease(app.store, ttl=max(app.config["lease.ttl"] * 20, DB_DEADLINE + 120))
    if not lease.acquire():
        holder = lease.current()
        raise UserError(f"another eucadb process ({holder.holder}) holds the leader lease; "
                        "stop it or wait for it to finish")

    def progress(message: str) -> None:
        lease.acquire()  # a lost lease shows at the next fenced write
        click.echo(message, err=True)

    try:
        result = run_workflow(app, workflow, options, fence=lease.check, on_progress=progress)
    finally:
        lease.release()
    if result.state != RunState.SUCCEEDED:
        raise UserError(f"{workflow.kind} {result.state.value}: {result.error} "
                        f"(see `eucadb workflow show --run {result.run_id}`)")
    click.echo(f"{workflow.kind} succeeded (run {result.run_id})")


@workflow_group.command("launch")
@click.pass_obj
def launch_cmd(app) -> None:
    """Run (or resume) the launch workflow until the database accepts TLS connections."""
    run_by_hand(app, LAUNCH, {})


@workflow_group.command("teardown")
@click.option("--delete-volume", is_flag=True, help="also delete the data volume (its data is lost)")
@click.pass_obj
def teardown_cmd(app, delete_volume: bool) -> None:
    """Remove every cloud resource of the deployment; the data volume is kept unless asked."""
    run_by_hand(app, TEARDOWN, {"delete_volume": delete_volume})


@workflow_group.command("rotate-passwords")
@click.option("--role", "roles", multiple=True, metavar="ROLE",
              help=f"only this role (repeatable): {', '.join(ROLES.as_dict())}; default: all of them")
@click.pass_obj
def rotate_passwords_cmd(app, roles: tuple[str, ...]) -> None:
    """New database passwords, applied by rolling the instance (same data volume).

    The vault gets the new passwords at once; the running `eucadb serve` sees that the launch
    template carries others, launches (new template version, replacement instance, which sets
    them at boot) and then swaps its pools to the new logins. Without a running serve, run
    `eucadb workflow launch`. Sessions are interrupted for the replacement, as for any roll.

    Not fenced by the leader lease, like `property set`: it is an admin's input to the leader, not
    a leader's action — the running serve holds the lease for good, and it is what reacts to the
    change. The rotation is one read-modify-write transaction, so the leader (which only ever
    creates missing logins) and a concurrent rotation never lose it."""
    known = ROLES.as_dict()
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise UserError(f"unknown role {', '.join(unknown)}; roles are: {', '.join(known)}")
    deployment = current_deployment(app.store, create=False)
    chosen = tuple(roles) or tuple(known)
    if deployment is None or not app.vault(deployment).rotate_passwords(chosen):
        raise UserError("no database passwords exist yet: the first launch makes them")
    log.info("database passwords rotated for %s", ", ".join(chosen))
    click.echo(f"new passwords for {', '.join(known[k] for k in chosen)} are in the vault; the running "
               "`eucadb serve` rolls the database instance to apply them (or run `eucadb workflow launch`)")
