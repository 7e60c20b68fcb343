"""The embedded cloud's API server process: moto (all services) behind the data-plane gateway.

Started in the background by `eucadb cloud up`. The control plane is moto's memory, saved after
every change to `<cloud.data_dir>/state/` and loaded here before the first request is served
(state.py, durable.py; encrypted with `<cloud dir>/state.key`): stopping or killing this process loses nothing. Every request is
authenticated and authorized first (auth.py): only keys this cloud issued (principals.py) get
through, and only for what the IAM policies that apply allow (authorize.py).
"""
from __future__ import annotations

import logging

from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                           create_backend_app)
from werkzeug.serving import make_server

from eucadb.cloud.local import moto_fixes, principals
from eucadb.cloud.local.auth import Authenticator
from eucadb.cloud.local.durable import Durable
from eucadb.cloud.local.gateway import Gateway
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.state import Store, state_path
from eucadb.config import Config
from eucadb.store.secretbox import SecretBox

log = logging.getLogger(__name__)


def serve(config: Config, host: str, port: int) -> None:
    """Serve until killed (SIGTERM's default action is fine: every change is on disk once answered).
    A state file that cannot be loaded raises StateError before anything listens."""
    moto_fixes.apply()
    layout = Layout.from_config(config)
    layout.ensure()
    store = Store(state_path(layout.data_dir), SecretBox(layout.state_key_file))
    restored = store.load()
    log.info("control-plane state %s: %s", store.path,
             f"{restored} backends restored" if restored else "none yet, starting empty")
    principals.ensure_root(layout, config["cloud.region"])
    store.save()  # the root key is part of the cloud: on disk before anyone is told it
    endpoint = f"http://{host}:{port}"
    gateway_key, gateway = principals.gateway_principal()
    service_key, service = principals.ensure_service_key(layout)
    front = Gateway(DomainDispatcherApplication(create_backend_app), layout, endpoint, config["cloud.region"],
                    config["cloud.stop_timeout"], (gateway_key, gateway.secret))
    app = Authenticator(Durable(front, store, gateway_key), {gateway_key: gateway, service_key: service},
                        front.s3.bucket_policy)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    log.info("embedded cloud API listening on %s", endpoint)
    server.serve_forever()
