"""setup_db's side of the replication contract: the `replication` block eucadb's builder writes is
parsed and validated, and what the replica's server is told of its primary carries no password."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from eucadb.workflow import credentials, pki, userdata
from setup_db_script import load_setup_db

setup_db = load_setup_db("setup_db_replica_under_test")
DEPLOYMENT = "d5e7db01"


@pytest.fixture(scope="module")
def certs():
    ca_key, ca = pki.create_ca("test CA")
    _, cert = pki.issue_server_certificate(ca_key, ca, f"db.{DEPLOYMENT}.eucadb.internal", days=30)
    return ca, cert


def document(certs, replication):
    ca, cert = certs
    return userdata.build_user_data(
        deployment=DEPLOYMENT, endpoint_url=None, region="r", secret_id="s", volume_id="vol-2",
        dns_name=f"db.{DEPLOYMENT}.eucadb.internal", server_cert=cert, ca_cert=ca, allowed_cidrs=["127.0.0.1/32"],
        instance_type="t2.micro", sealed_credentials=credentials.seal(b"{}", cert, DEPLOYMENT),
        replication=replication)


def test_a_replica_document_round_trips_and_its_conninfo_has_no_password(certs):
    ud = setup_db.parse_user_data(document(certs, {"role": "replica", "member": 2, "slot": "eucadb_member_2",
                                                   "primary_address": "127.80.1.4"}))
    assert ud.replication == setup_db.Replication(2, "127.80.1.4", "eucadb_member_2")
    settings = setup_db.replica_settings(ud, Path("/data/pgdata"))
    conninfo = settings["primary_conninfo"]
    assert "hostaddr=127.80.1.4" in conninfo and "sslmode=verify-full" in conninfo
    assert f"host=db.{DEPLOYMENT}.eucadb.internal" in conninfo and "application_name=m2" in conninfo
    assert "password" not in conninfo
    assert settings["primary_slot_name"] == "eucadb_member_2" and settings["hot_standby"] is True
    assert settings["default_transaction_read_only"] is True
    assert settings["recovery_target_timeline"] == "latest"
    # a primary's document has no replication block and no standby settings, as before replicas
    primary = setup_db.parse_user_data(document(certs, None))
    assert primary.replication is None and setup_db.replica_settings(primary, Path("/x")) == {}
    assert "replication" not in json.loads(document(certs, None))


@pytest.mark.parametrize("block, fragment", [
    ({"role": "leader"}, "'replication' must be"),
    ({"role": "replica", "member": 1, "slot": "x; DROP", "primary_address": "127.0.0.1"}, "plain identifier"),
    ({"role": "replica", "member": 1, "slot": "s1", "primary_address": "db.example"}, "not an IP address"),
])
def test_a_bad_replication_block_is_refused_with_what_is_wrong(certs, block, fragment):
    text = json.loads(document(certs, None))
    text["replication"] = block
    with pytest.raises(setup_db.SetupError, match=fragment):
        setup_db.parse_user_data(json.dumps(text))
