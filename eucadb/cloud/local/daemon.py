"""Entry point of the embedded cloud's background processes: `python -m eucadb.cloud.local.daemon
--config FILE {api --host H --port P | realizer}`.

Deliberately not the `eucadb` CLI: a daemon should import only what it runs, so it starts fast and
does not depend on unrelated commands. Each daemon's log (`<cloud dir>/logs/<name>.log`, its
stdout and stderr too) rotates at `log.max_bytes`, keeping `log.backups` files.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from eucadb.config import Config, load
from eucadb.logs import configure_logging


STATE_EXIT = 3  # the API's exit status when its state file cannot be loaded


def log_to_own_file(config: Config, name: str) -> None:
    """Log, print and trace to the file `cloud up` appends our output to, rotated like serve.log."""
    from eucadb.cloud.local.layout import Layout
    from eucadb.files import modes
    configure_logging(config["log.level"], f"%(asctime)s %(levelname)s {name}[%(process)d] %(name)s: %(message)s",
                      Layout.from_config(config).log(name), config["log.max_bytes"], config["log.backups"],
                      std_mode=modes(config).file)


def run_realizer(config) -> None:
    from eucadb.cloud.client import CloudClients
    from eucadb.cloud.local.realizer import Realizer
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Realizer(config, CloudClients(config)).run(stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="eucadb-cloud-daemon")
    parser.add_argument("--config", required=True)
    sub = parser.add_subparsers(dest="name", required=True)
    api = sub.add_parser("api")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, required=True)
    sub.add_parser("realizer")
    args = parser.parse_args(argv)
    config = load(args.config)
    log_to_own_file(config, args.name)
    if args.name == "api":
        from eucadb.cloud.local.api import serve
        from eucadb.cloud.local.state import StateError
        try:
            serve(config, args.host, args.port)
        except StateError as exc:  # `cloud up` shows this line (see control.STATE_EXIT)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(STATE_EXIT)
    else:
        run_realizer(config)


if __name__ == "__main__":
    main()
