"""`eucadb cloud up | down | status`: start, stop and describe the embedded cloud's processes.

Two daemons, each with a pid record under $EUCADB_HOME/cloud/: the API server (moto + gateway) on
127.0.0.1 (the port it had before, when that is free), and the realizer. `up` reuses whichever is
already running and ours, and resumes the saved control plane (state.py); `down` stops only the
processes recorded there (daemons, then every realized instance) and keeps everything else —
state, volumes, snapshots, images, instance roots — so the next `up` resumes the same cloud.
Only `destroy` removes the cloud and its data.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from eucadb.cloud.client import CloudClients
from eucadb.cloud.local import instances, state
from eucadb.cloud.local.daemon import STATE_EXIT
from eucadb.cloud.local.gateway import HEALTH_PATH
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.network import Network, ensure_network
from eucadb.cloud.local.procs import PidRecord, spawn, stop
from eucadb.cloud.local.realizer import realized_pids
from eucadb.config import Config, load, update_file
from eucadb.errors import CloudError, UserError
from eucadb.retry import Retry, RetryTimeout

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
DAEMON_STOP_TIMEOUT = 10.0


def _free_port(preferred: int | None = None) -> int:
    """`preferred` if it can be bound now, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise CloudError(f"no free port on {HOST}")


def _last_port(layout: Layout) -> int | None:
    try:
        return int(layout.api_portfile.read_text())
    except (OSError, ValueError):
        return None


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1].removeprefix("error: ") if lines else ""


def _healthy(endpoint: str, layout: Layout) -> bool:
    """The endpoint answers and is *our* cloud (same control-plane directory)."""
    try:
        with urllib.request.urlopen(endpoint + HEALTH_PATH, timeout=2) as reply:
            return json.load(reply).get("cloud_dir") == str(layout.cloud_dir)
    except (OSError, ValueError):
        return False


def _daemon(config: Config, layout: Layout, name: str, *args: str) -> tuple[subprocess.Popen, PidRecord]:
    argv = [sys.executable, "-m", "eucadb.cloud.local.daemon", "--config", str(config.path), name, *args]
    return spawn(argv, log_path=layout.log(name), env=dict(os.environ), cwd=layout.cloud_dir,
                 info={"argv": argv[3:]})


def _running(pidfile: Path) -> PidRecord | None:
    record = PidRecord.load(pidfile)
    return record if record is not None and record.alive() else None


def _start_api(config: Config, layout: Layout) -> str:
    """Start the API server, on its previous port when free (a serve started before a crash of the
    API keeps working); on a lost port race, try another one."""
    preferred = _last_port(layout)
    for _ in range(3):
        port = _free_port(preferred)
        preferred = None
        endpoint = f"http://{HOST}:{port}"
        update_file(config, {"cloud.endpoint_url": endpoint})
        proc, record = _daemon(load(config.path), layout, "api", "--host", HOST, "--port", str(port))
        record = PidRecord(record.pid, record.start_time, info={"endpoint": endpoint})
        record.save(layout.api_pidfile)
        layout.api_portfile.write_text(f"{port}\n")

        def ready() -> None:
            if proc.poll() == STATE_EXIT:  # its state file is unusable: another port will not help
                raise state.StateError(_last_line(layout.log("api")))
            if not record.alive():
                raise CloudError(f"the API server exited; see {layout.log('api')}")
            if not _healthy(endpoint, layout):
                raise TimeoutError("not answering yet")

        try:
            Retry(deadline=30, initial_delay=0.05, max_delay=0.5, retry_on=(TimeoutError,)).call(
                ready, "embedded cloud API start")
            return endpoint
        except state.StateError:
            raise
        except CloudError:
            continue
        except RetryTimeout:
            stop(record, DAEMON_STOP_TIMEOUT)
            break
    raise CloudError(f"the embedded cloud API did not start; see {layout.log('api')}")


def up(config: Config) -> tuple[Config, Network]:
    """Idempotent: reuse running daemons, create what is missing. Returns the updated config."""
    layout = Layout.from_config(config)
    layout.ensure()
    layout.check_traversable()
    path = state.state_path(layout.data_dir)
    if path.exists():  # said here, in one line, before anything starts (the API checks it again)
        state.verify(path)
    api = _running(layout.api_pidfile)
    endpoint = (api.info or {}).get("endpoint", "") if api else ""
    realizer = _running(layout.realizer_pidfile)
    if api is None or not _healthy(endpoint, layout):
        if api is not None:
            stop(api, DAEMON_STOP_TIMEOUT)
        if realizer is not None:  # it polls the old endpoint: restart it with the new one
            stop(realizer, DAEMON_STOP_TIMEOUT)
            realizer = None
        endpoint = _start_api(config, layout)
    credentials = layout.root_credentials()
    if credentials is None:
        raise CloudError(f"the embedded cloud API at {endpoint} issued no root credentials "
                         f"({layout.credentials_file} is missing): restart it with `eucadb cloud down` "
                         f"and `eucadb cloud up`; see {layout.log('api')}")
    # the root key, 0600 (update_file), where eucadb and the cloud's own daemons read it
    update_file(config, {"cloud.endpoint_url": endpoint, "cloud.region": config["cloud.region"], **credentials})
    config = load(config.path)
    if config["cloud.endpoint_url"] != endpoint:
        raise UserError(f"the environment overrides cloud.endpoint_url ({config['cloud.endpoint_url']}); "
                        f"unset EUCADB_CLOUD_ENDPOINT_URL to use the embedded cloud at {endpoint}")
    network = ensure_network(CloudClients(config), config["cloud.vpc_cidr"], config["cloud.zones"])
    if realizer is None:
        _daemon(config, layout, "realizer")[1].save(layout.realizer_pidfile)
    return config, network


def is_embedded(config: Config) -> bool:
    """Is the configured cloud endpoint the embedded cloud running on this machine?"""
    api = _running(Layout.from_config(config).api_pidfile)
    return api is not None and (api.info or {}).get("endpoint") == config["cloud.endpoint_url"]


def is_local_endpoint(config: Config) -> bool:
    """Does the configured endpoint look like an embedded cloud (running or not)?"""
    return bool(config["cloud.endpoint_url"]) and config["cloud.endpoint_url"].startswith(f"http://{HOST}:")


def down(config: Config) -> list[str]:
    """Stop what `up` started (by pid record only), then every realized instance's processes — like a
    host shutting down: the cloud still says `running`, and the next `up` boots them again. Deletes
    nothing. Returns what stopped."""
    layout = Layout.from_config(config)
    stopped = []
    for name, pidfile in (("realizer", layout.realizer_pidfile), ("api", layout.api_pidfile)):
        record = _running(pidfile)
        if record is not None:
            stop(record, DAEMON_STOP_TIMEOUT)
            stopped.append(f"{name} (pid {record.pid})")
        pidfile.unlink(missing_ok=True)
        if name == "realizer":  # instances next, while nothing can realize them again
            for instance_id, record in list(realized_pids(layout)):
                if record.members():
                    stopped.append(f"{instance_id} (pid {record.pid})")
                instances.halt(layout, instance_id, config["cloud.stop_timeout"])
    for lock in (layout.cloud_dir / "instances").glob("*.lock"):  # nothing can hold them any more
        lock.unlink()
    if is_local_endpoint(config):
        update_file(config, {"cloud.endpoint_url": None, "cloud.access_key_id": None,
                             "cloud.secret_access_key": None})
    return stopped


def daemons(layout: Layout) -> list[dict]:
    rows = []
    for name, pidfile in (("api", layout.api_pidfile), ("realizer", layout.realizer_pidfile)):
        record = PidRecord.load(pidfile)
        rows.append({"name": name, "pid": record.pid if record else None,
                     "running": bool(record and record.alive()),
                     "log": str(layout.log(name))})
    return rows
