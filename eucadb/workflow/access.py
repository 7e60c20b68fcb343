"""How eucadb itself reaches a deployment's database: endpoint (IP + certificate name + CA) and the
credentials from the vault. One place for the loop, the readiness step, reports and tests."""
from __future__ import annotations

from eucadb.pool.endpoint import Endpoint, write_ca_file
from eucadb.workflow.deployment import Names
from eucadb.workflow.steps.certificate import CA_CERT
from eucadb.workflow.steps.launch_template import db_credentials

DB_PORT = 5432


def db_endpoint(app, deployment: str, address: str, port: int = DB_PORT) -> Endpoint:
    vault = app.vault(deployment)
    return Endpoint(address, port, Names(deployment).dns_name,
                    write_ca_file(app.config.home, deployment, vault.get(CA_CERT)))


def db_logins(app, deployment: str) -> dict[str, dict[str, str]]:
    """{"admin"|"cloudwatch"|"reporting"|"replication": {"user", "password"}}."""
    return db_credentials(app.vault(deployment))
