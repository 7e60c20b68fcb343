"""`eucadb serve`, `eucadb status` and `eucadb service list|enable|disable`."""
from __future__ import annotations

import json
import logging
import signal
import time

import click

from eucadb.bootstrap.services import ServiceRegistry
from eucadb.output import OUTPUT_OPTION, emit
from eucadb.serve import status as status_doc

log = logging.getLogger("eucadb.serve")
THREADS = 8
PROBE_THREADS = 2   # never taken by the service APIs: /healthz /readyz /status /metrics always answer


@click.command("serve")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="log here, rotated at log.max_bytes keeping log.backups files (default: stderr)")
@click.pass_obj
def serve_cmd(app, log_file: str | None) -> None:
    """Run the reconcile loop and the HTTP endpoints until SIGTERM/SIGINT."""
    from pathlib import Path

    from eucadb.bootstrap.loop import Bootstrapper
    from eucadb.files import private_file, set_umask
    from eucadb.logs import REFUSALS, configure_logging
    from eucadb.pool.migrate import check_remote_scripts
    from eucadb.serve import server as http_server
    from eucadb.serve.http import ServeApp
    from eucadb.serve.tls import tls_setup
    from eucadb.services.cloudwatch import serving as cloudwatch
    from eucadb.services.reporting import api as reporting_api

    set_umask(app.config)
    if log_file:
        configure_logging(app.config["log.level"], log_file=private_file(Path(log_file), app.config),
                          max_bytes=app.config["log.max_bytes"], backups=app.config["log.backups"])
    check_remote_scripts()
    loop = Bootstrapper(app)
    cw_service, cw_routes = cloudwatch.build(app, loop)
    extra = {reporting_api.PREFIX: reporting_api.for_loop(app, loop, app.config.serve_region), **cw_routes}
    serve_app = ServeApp(app, loop, extra=extra, api_slots=THREADS - PROBE_THREADS)
    tls = tls_setup(app)
    server = http_server.create(serve_app, app.config["serve.host"], app.config["serve.port"], THREADS,
                                tls.adapter if tls else None)

    def stop(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.start()
    evaluator = cloudwatch.start_evaluator(cw_service, app.config["cloudwatch.evaluation_interval"],
                                           app.config["cloudwatch.action_interval"])
    renewal = tls.auto.start() if tls and tls.auto else None
    log.info("serving on %s://%s:%s (status, readyz, healthz, metrics, /services/CloudWatch, "
             "/services/Reporting; SigV4 region %s)%s", "https" if tls else "http", app.config["serve.host"],
             server.effective_port, app.config.serve_region,
             f"; TLS: {tls.source}" + (f", CA bundle {tls.ca_file}" if tls.ca_file else "") if tls else "")
    try:
        server.run()
    finally:
        server.close()
        evaluator.shutdown(wait=False)
        if renewal:
            renewal.shutdown(wait=False)
        loop.stop()
        REFUSALS.flush()
        log.info("stopped")


def print_status(doc: dict) -> None:
    server = doc.get("server") or {}
    running = server.get("running", "loop" in doc)
    ready = "READY" if doc["ready"] else "NOT READY" if running else "server not running"
    click.echo(f"eucadb deployment {doc['deployment'] or '(none yet)'}: {ready}")
    if running:
        click.echo(f"loop:      {doc['loop']['sentence']}")
    else:
        as_of = server.get("states_as_of")
        click.echo(f"server:    not running (nothing answers at {server.get('url')})")
        click.echo("stale:     the states below are the last recorded, " +
                   (f"as of {as_of} ({server['as_of_source']})" if as_of else "never renewed"))
    for item in doc.get("unmet_preconditions") or []:
        click.echo(f"unmet:     {item}")
    for name, svc in doc["services"].items():
        extra = f" (admin-disabled by {svc['admin_disabled_by']} at {svc['admin_disabled_at']})" \
            if svc["admin_disabled_by"] else ""
        shown = svc["state"] if running else f"{svc['state']} (last recorded)"
        click.echo(f"service:   {name:<11} {shown:<9} {svc['reason']}{extra}")
    for name, url in (doc.get("endpoints") or {}).items():
        click.echo(f"endpoint:  {name:<11} {url}")
    db = doc.get("database") or {}
    if db.get("endpoint"):
        health = "healthy" if db["healthy"] else f"unhealthy ({db['failed_checks']} checks): {db['error']}"
        click.echo(f"database:  {db['endpoint']} ({db['dns_name']}) {health}")
        cluster = db.get("cluster")
        if cluster:
            how = "resumed from its kept volume" if cluster["resumed_from_kept_volume"] else "a new cluster"
            click.echo(f"cluster:   initialised {cluster['initialised_at'][:19]}Z, server up since "
                       f"{cluster['started_at'][:19]}Z: {how}")
    if db.get("archiver"):
        click.echo(f"archiving: {archiving_line(db['archiver'])}")
    backups = doc.get("backups")
    if backups:
        click.echo(f"restorable: {backups['earliest_restorable_time'] or '-'} -> "
                   f"{backups['latest_restorable_time'] or '-'} ({backups['base_backups'] if backups['base_backups'] is not None else '?'} base backups)")
        sched = backups.get("scheduled")
        if sched:
            click.echo(f"schedule:  {sched['schedule']!r} next {sched['next_fire_at']}, last "
                       f"{sched['last_backup_id'] or '-'}" + (f" FAILED: {sched['last_error']}" if sched["last_error"] else ""))
    for line in members_table(doc.get("members") or []):
        click.echo(line)
    for ctx, stats in (doc.get("pools") or {}).items():
        click.echo(f"pool:      {ctx:<19} {stats['checked_out']} in use / {stats['size']} size")
    run = doc.get("workflow")
    if run:
        done = sum(1 for s in run["steps"] if s["state"] == "done")
        click.echo(f"workflow:  run {run['run']} {run['kind']} {run['state']} ({done}/{len(run['steps'])} steps)"
                   + (f": {run['error']}" if run["error"] else ""))


MEMBER_COLUMNS = (("member", "name"), ("role", "role"), ("state", "state"), ("zone", "zone"), ("ip", "ip"),
                  ("tl", "timeline"), ("received", "received_lsn"), ("replayed", "replayed_lsn"),
                  ("lag", "lag_bytes"), ("lag s", "lag_seconds"), ("slot", "slot_state"))


def members_table(members: list[dict]) -> list[str]:
    """The replication members as a table, like `patronictl list` (nothing without replicas)."""
    if not members:
        return []

    def cell(m: dict, key: str) -> str:
        value = m.get(key)
        if key == "lag_seconds" and value is not None:
            return f"{value:.1f}"
        return "-" if value in (None, "") else str(value)
    rows = [[title for title, _ in MEMBER_COLUMNS]] + [[cell(m, key) for _, key in MEMBER_COLUMNS] for m in members]
    widths = [max(len(r[i]) for r in rows) for i in range(len(MEMBER_COLUMNS))]
    lines = ["members:   " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines += [f"members:   {m['name']}: {m['error']}" for m in members if m.get("error")]
    return lines


def archiving_line(a: dict) -> str:
    """WAL archiving in one line: when it last worked, and the last failure if there is one."""
    if a["error"]:
        return f"unknown ({a['error']})"
    if a["archive_mode"] != "on":
        return "off"
    line = f"{a['archived_count']} segments, last {a['last_archived_wal'] or '-'} at {a['last_archived_time'] or '-'}"
    if a["failed_count"]:
        line += f"; {a['failed_count']} FAILED, last {a['last_failed_wal']} at {a['last_failed_time']}"
    return line


@click.command("status")
@OUTPUT_OPTION
@click.option("--watch", is_flag=True, help="refresh every 2 seconds until interrupted")
@click.pass_obj
def status_cmd(app, output: str, watch: bool) -> None:
    """One screen: services, unmet preconditions, workflow, database endpoint and pools."""
    while True:
        doc = status_doc.fetch_live(app.config) or status_doc.build(app)
        if output == "json":
            click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        else:
            if watch:
                click.clear()
            print_status(doc)
        if not watch:
            return
        time.sleep(2)


@click.group("service")
def service_group() -> None:
    """List the dependent services or move them by hand."""


@service_group.command("list")
@OUTPUT_OPTION
@click.pass_obj
def service_list(app, output: str) -> None:
    """Each service's state, reason and since when."""
    rows = [s.as_dict() for s in ServiceRegistry(app.store).all().values()]
    emit(rows, output, ["name", "state", "reason", "since", "admin_disabled_by"])


@service_group.command("enable")
@click.argument("name")
@click.pass_obj
def service_enable(app, name: str) -> None:
    """Let the loop enable NAME again (undoes an admin disable)."""
    s = ServiceRegistry(app.store).admin(name, enable=True)
    click.echo(f"{name}: {s.state.value} ({s.reason})")


@service_group.command("disable")
@click.argument("name")
@click.pass_obj
def service_disable(app, name: str) -> None:
    """Disable NAME until an admin enables it; the loop never overrides this."""
    s = ServiceRegistry(app.store).admin(name, enable=False)
    click.echo(f"{name}: {s.state.value} ({s.reason})")
