"""`eucadb cloud rotate-root-key`: replace the embedded cloud's root access key, as an operator
rotates an IAM user's key on AWS: create the second key, switch everything to it, then deactivate
and delete the old one.

Order matters for a crash at any point: the new key is written (0600, durably) to
`<cloud dir>/root-credentials.json` — which the API keeps at its next start while IAM knows the key —
and to eucadb.yaml before the old key is touched, so the key on disk always works. A run interrupted
after that finds two root keys and deletes the one the config no longer names. The realizer holds
the key in memory: it is restarted on the new one. A running `eucadb serve` rebuilds its clients once
from the re-read config when the cloud refuses its old key (CloudClients.guard).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from eucadb.cloud.client import CloudClients
from eucadb.cloud.local.control import DAEMON_STOP_TIMEOUT, _daemon, _running, is_embedded
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.procs import stop
from eucadb.cloud.local.state import write_durably
from eucadb.config import Config, load, update_file
from eucadb.errors import UserError

log = logging.getLogger(__name__)
ROOT_USER = "eucadb-root"  # principals.ROOT_USER (not imported: that module loads moto's backends)


@dataclass(frozen=True)
class Rotated:
    old: str
    new: str
    realizer_restarted: bool


def rotate_root_key(config: Config) -> Rotated:
    """Rotate the root key of the running embedded cloud; the config is rewritten with the new key."""
    if not is_embedded(config):
        raise UserError("no embedded cloud is running for this config: `eucadb cloud up` first "
                        "(rotate-root-key rotates the embedded cloud's own root key)")
    layout = Layout.from_config(config)
    old = config["cloud.access_key_id"]
    iam = CloudClients(config)
    for stale in iam.call("iam", "list_access_keys", UserName=ROOT_USER)["AccessKeyMetadata"]:
        if stale["AccessKeyId"] != old:  # left by an interrupted rotation: the config no longer names it
            iam.call("iam", "delete_access_key", UserName=ROOT_USER, AccessKeyId=stale["AccessKeyId"])
    key = iam.call("iam", "create_access_key", UserName=ROOT_USER)["AccessKey"]
    new = {"cloud.access_key_id": key["AccessKeyId"], "cloud.secret_access_key": key["SecretAccessKey"]}
    write_durably(layout.credentials_file, json.dumps(
        {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}).encode())
    update_file(config, new)  # eucadb.yaml, 0600
    config = load(config.path)
    restarted = _restart_realizer(config, layout)
    rotated = CloudClients(config)  # the old key is retired with the new one, as an operator would
    rotated.call("iam", "update_access_key", UserName=ROOT_USER, AccessKeyId=old, Status="Inactive")
    rotated.call("iam", "delete_access_key", UserName=ROOT_USER, AccessKeyId=old)
    log.info("root key %s replaced by %s", old, key["AccessKeyId"])
    return Rotated(old, key["AccessKeyId"], restarted)


def _restart_realizer(config: Config, layout: Layout) -> bool:
    """The realizer reads the key once, at its start: start it again on the new one."""
    record = _running(layout.realizer_pidfile)
    if record is None:
        return False
    stop(record, DAEMON_STOP_TIMEOUT)
    _daemon(config, layout, "realizer")[1].save(layout.realizer_pidfile)
    return True
