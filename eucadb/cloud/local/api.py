"""The embedded cloud's API server process: moto (all services) behind the data-plane gateway.

Run in the foreground by the hidden `eucadb cloud api` command, which `eucadb cloud up` starts in
the background. State is in memory: it lives as long as this process (see `eucadb cloud down`).
"""
from __future__ import annotations

import logging

from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                           create_backend_app)
from werkzeug.serving import make_server

from eucadb.cloud.local import moto_fixes
from eucadb.cloud.local.gateway import Gateway
from eucadb.cloud.local.layout import Layout
from eucadb.config import Config

log = logging.getLogger(__name__)


def serve(config: Config, host: str, port: int) -> None:
    """Serve until killed (SIGTERM's default action is fine: there is nothing to flush)."""
    moto_fixes.apply()
    layout = Layout.from_config(config)
    layout.ensure()
    endpoint = f"http://{host}:{port}"
    app = Gateway(DomainDispatcherApplication(create_backend_app), layout, endpoint,
                  config["cloud.region"], config["cloud.stop_timeout"])
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    log.info("embedded cloud API listening on %s", endpoint)
    server.serve_forever()
