"""The user-data document eucadb hands the database instance: the eucadb side of the contract.

`scripts/setup_db.py` owns the other side (`parse_user_data`, documented in its docstring); the tests
feed this builder's output to that parser. Everything here is non-secret except `credentials`, which is
an envelope sealed to the server certificate (credentials.seal).
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterable, Mapping

from eucadb.errors import UserError
from eucadb.pool.contexts import REMOTE
from eucadb.workflow.credentials import ROLES, RoleNames

USER_DATA_VERSION = 1
DEFAULT_PORT = 5432
DEFAULT_DEVICE = "/dev/sdf"
MAX_USER_DATA = 16 * 1024        # EC2's limit on raw user-data
DATABASES: dict[str, str] = {c.service: c.database for c in REMOTE}


def build_user_data(*, deployment: str, endpoint_url: str | None, region: str, secret_id: str,
                    volume_id: str, dns_name: str, server_cert: str, ca_cert: str,
                    allowed_cidrs: Iterable[str], instance_type: str,
                    sealed_credentials: Mapping[str, Any], init_script: str | None = "",
                    ntp_server: str | None = "", port: int = DEFAULT_PORT,
                    device: str = DEFAULT_DEVICE, databases: Mapping[str, str] | None = None,
                    roles: RoleNames = ROLES, backup: Mapping[str, Any] | None = None,
                    restore: Mapping[str, Any] | None = None,
                    replication: Mapping[str, Any] | None = None) -> str:
    """The user-data JSON text (compact, keys sorted so equal inputs give equal text).

    `backup` ({"bucket", "prefix", "archive_timeout"}) turns on WAL archiving to that bucket; the
    instance reaches it with its role's credentials, so no secret travels for it. `restore`
    ({"token", "backup_id", "target_time"}) makes an empty data volume's cluster from that backup
    plus WAL replay to the time (None: the backup's end) instead of initdb.

    `replication` ({"role": "replica", "member", "primary_address", "slot"}) makes the instance a
    streaming replica seeded from that primary (absent: a primary, as before replicas existed)."""
    cidrs = []
    for cidr in allowed_cidrs:
        try:
            cidrs.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            raise UserError(f"allowed_cidrs: {cidr!r} is not a CIDR block") from None
    if not cidrs:
        raise UserError("allowed_cidrs is empty: the database would accept no client")
    if not 1 <= int(port) <= 65535:
        raise UserError(f"port {port} is outside 1..65535")
    document = {
        "eucadb": USER_DATA_VERSION, "deployment": deployment,
        "cloud": {"endpoint_url": endpoint_url or None, "region": region},
        "secret_id": secret_id, "volume_id": volume_id, "device": device, "port": int(port),
        "dns_name": dns_name, "server_cert": server_cert, "ca_cert": ca_cert,
        "allowed_cidrs": cidrs, "instance_type": instance_type,
        "databases": dict(databases or DATABASES), "roles": roles.as_dict(),
        "init_script": init_script or "", "ntp_server": ntp_server or "",
        "credentials": dict(sealed_credentials),
    }
    if backup:
        document["backup"] = {"bucket": str(backup["bucket"]), "prefix": str(backup["prefix"]),
                              "archive_timeout": int(backup["archive_timeout"])}
    if restore:
        document["restore"] = {"token": str(restore["token"]), "backup_id": str(restore["backup_id"]),
                               "target_time": restore.get("target_time") or None}
    if replication:
        document["replication"] = {"role": str(replication["role"]), "member": int(replication["member"]),
                                   "primary_address": str(replication["primary_address"]),
                                   "slot": str(replication["slot"])}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > MAX_USER_DATA:
        raise UserError(f"user-data is {len(text.encode())} bytes, over the cloud's {MAX_USER_DATA}; "
                        "shorten services.database.worker.init_script")
    return text
