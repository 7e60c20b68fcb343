"""`eucadb up` / `eucadb down`: the whole system on the embedded default, in one command each.

`up` starts the embedded cloud, installs the local image, sets the properties, starts `eucadb serve`
in the background and follows its progress until the services are ENABLED. `down` stops exactly what
`up` started: the server (by its pid record) and the embedded cloud — and deletes nothing, so the
next `up` resumes the same deployment (same instance, volume, data). `destroy` is the one that
deletes: the deployment's cloud resources, then the embedded cloud and its data directory.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from eucadb.app import App
from eucadb.cloud.local import control
from eucadb.cloud.local.image import install_local_image
from eucadb.cloud.local.procs import PidRecord, spawn, stop
from eucadb.config import load
from eucadb.errors import EucadbError
from eucadb.files import private_file
from eucadb.properties.registry import WORKER
from eucadb.serve.status import fetch_live

READY_DEADLINE = 600.0


def serve_record_path(app: App) -> Path:
    return app.config.home / "serve.pid"


def serve_logs(app: App) -> tuple[Path, Path]:
    """serve.log (its logging, rotated by size) and serve.out (what it prints before logging is set
    up or outside it: a start-up error, a crash's traceback; small, so a plain redirect)."""
    return app.config.home / "serve.log", app.config.home / "serve.out"


def start_server(app: App) -> PidRecord:
    """`eucadb serve` as a background process (reused if one of ours already runs)."""
    path = serve_record_path(app)
    record = PidRecord.load(path)
    if record and record.alive():
        return record
    env = dict(os.environ, EUCADB_HOME=str(app.config.home))
    log_file, out_file = serve_logs(app)
    _, record = spawn([sys.executable, "-m", "eucadb.cli", "serve", "--log-file", str(log_file)],
                      log_path=private_file(out_file, app.config), env=env, cwd=app.config.home)
    record.save(path)
    private_file(path, app.config)   # exists: only its mode is set
    return record


def _last_lines(app: App, count: int = 15) -> list[str]:
    lines: list[str] = []
    for path in serve_logs(app):
        if path.exists():
            lines += path.read_text(errors="replace").splitlines()[-count:]
    return lines


def follow(app: App, record: PidRecord, say: Callable[[str], None], deadline: float) -> dict:
    """Print each new loop sentence until every service is ENABLED (or the server dies)."""
    last = None
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not record.alive():
            raise EucadbError("eucadb serve exited; last lines of its log:\n  " + "\n  ".join(_last_lines(app)))
        doc = fetch_live(app.config)
        if doc:
            sentence = (doc.get("loop") or {}).get("sentence")
            if sentence and sentence != last:
                say(sentence)
                last = sentence
            # the states come from the store: after a crash they still say ENABLED until the new
            # server's loop has looked, so ready means "and its pools point at a database"
            if doc["ready"] and (doc.get("database") or {}).get("endpoint"):
                return doc
        time.sleep(0.5)
    raise EucadbError(f"services not ENABLED after {deadline:.0f}s; see `eucadb status` and "
                      f"{app.config.home / 'serve.log'}")


def up(app: App, say: Callable[[str], None], deadline: float = READY_DEADLINE) -> dict:
    say("starting the embedded cloud")
    control.up(app.config)
    app = App(load(app.config.path if app.config.path.exists() else None))
    say("installing the local database image")
    image = install_local_image(app)
    app.properties.set_many([f"{WORKER}image={image}", f"{WORKER}configured=true"])
    say(f"image {image}; {WORKER}configured=true; starting eucadb serve")
    record = start_server(app)
    return follow(app, record, say, deadline)


def stop_server(app: App) -> list[str]:
    stopped = []
    path = serve_record_path(app)
    record = PidRecord.load(path)
    if record and record.alive():
        stop(record, timeout=30)
        stopped.append(f"serve (pid {record.pid})")
    path.unlink(missing_ok=True)
    return stopped


def down(app: App) -> list[str]:
    return stop_server(app) + control.down(app.config)


def destroy(app: App, say: Callable[[str], None]) -> list[str]:
    """Stop serve; tear the deployment down (its volume too) if its cloud answers; stop the
    embedded cloud and remove it with its data directory. Returns what was removed or stopped."""
    from eucadb.cloud.local.layout import Layout
    from eucadb.workflow.commands import run_by_hand
    from eucadb.workflow.launch import TEARDOWN
    done = stop_server(app)
    embedded = control.is_embedded(app.config)
    if embedded or (app.config["cloud.endpoint_url"] and not control.is_local_endpoint(app.config)):
        say("tearing the deployment down (instance, group, template, volume, role, secret, certificate)")
        run_by_hand(app, TEARDOWN, {"delete_volume": True})
        done.append("the deployment's cloud resources and data volume")
    else:
        say("the embedded cloud is not running: its resources go with its data directory")
    done += control.down(app.config)
    done += [str(path) for path in Layout.from_config(app.config).remove_all()]
    return done
