"""The backup part of the user-data contract: eucadb's builder and the instance's parser agree, the
parser refuses names that would reach the archive_command's shell, and the settings it derives."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from setup_db_script import load_setup_db
from eucadb.backup import barman
from eucadb.workflow.deployment import Names
from eucadb.workflow.userdata import build_user_data

setup_db = load_setup_db()
BACKUP = {"bucket": "eucadb-dep1-backups", "prefix": "eucadb/dep1", "archive_timeout": 30}


def user_data(**more) -> str:
    return build_user_data(deployment="dep1", endpoint_url="http://127.0.0.1:5000", region="eucalyptus",
                           secret_id="s", volume_id="vol-1", dns_name="db.dep1.eucadb.internal",
                           server_cert="C", ca_cert="A", allowed_cidrs=["10.0.0.0/8"],
                           instance_type="m1.small", sealed_credentials={"v": 1}, **more)


def test_builder_and_parser_agree_and_archiving_is_configured():
    ud = setup_db.parse_user_data(user_data(backup=BACKUP))
    assert ud.backup == setup_db.Backup("eucadb-dep1-backups", "eucadb/dep1", 30)
    settings = setup_db.backup_settings(ud, Path("/"))
    assert settings["archive_mode"] is True and settings["archive_timeout"] == 30
    argv = shlex.split(settings["archive_command"])
    assert argv[-3:] == ["s3://eucadb-dep1-backups/eucadb/dep1", "db", "%p"]
    assert argv[1:3] == ["-m", "barman.clients.cloud_walarchive"] and "--gzip" in argv
    assert argv[argv.index("--endpoint-url") + 1] == "http://127.0.0.1:5000"
    assert shlex.split(settings["eucadb.backup_command"])[-1] == "backup"
    # the control plane addresses the same place as the instance
    names = Names("dep1")
    assert barman.argv("cloud_backup_list", names, "http://127.0.0.1:5000")[-2:] == argv[-3:-1]


def test_without_backup_there_is_no_archiving():
    ud = setup_db.parse_user_data(user_data())
    assert ud.backup is None and setup_db.backup_settings(ud, Path("/")) == {"archive_mode": False}


@pytest.mark.parametrize("backup, fragment", [
    ({**BACKUP, "bucket": "Bad_Bucket"}, "not an S3 bucket name"),
    ({**BACKUP, "bucket": "b;rm -rf /"}, "not an S3 bucket name"),
    ({**BACKUP, "prefix": "a/b c"}, "not a plain key prefix"),
    ({**BACKUP, "prefix": "x'$(id)"}, "not a plain key prefix"),
    ({**BACKUP, "archive_timeout": 1}, "not 10..3600"),
    ({**BACKUP, "archive_timeout": True}, "not 10..3600"),
    ("s3://x", "not an object"),
])
def test_parser_refuses_what_could_reach_a_shell(backup, fragment):
    doc = json.loads(user_data())
    doc["backup"] = backup
    with pytest.raises(setup_db.SetupError, match=fragment):
        setup_db.parse_user_data(json.dumps(doc))


RESTORE = {"token": "restore-20261202T040000Z", "backup_id": "20261202T035900",
           "target_time": "2026-12-02T04:00:00.123456Z"}


def test_a_restore_block_reaches_the_instance_and_arms_recovery(tmp_path):
    ud = setup_db.parse_user_data(user_data(backup=BACKUP, restore=RESTORE))
    assert ud.restore == setup_db.Restore(**RESTORE)
    assert setup_db.recovery_settings(ud, tmp_path) == {}          # no recovery.signal: none
    (tmp_path / "recovery.signal").touch()
    settings = setup_db.recovery_settings(ud, tmp_path)
    assert settings["recovery_target_time"] == "2026-12-02T04:00:00.123456+00:00"   # no "Z" for PostgreSQL
    assert settings["recovery_target_action"] == "promote"
    fetch = shlex.split(settings["restore_command"])
    assert fetch[1:3] == ["-m", "barman.clients.cloud_walrestore"] and fetch[-4:] == [
        "s3://eucadb-dep1-backups/eucadb/dep1", "db", "%f", "%p"]
    # a backup id alone: recover to the end of the backup
    to_backup = setup_db.parse_user_data(user_data(backup=BACKUP, restore={**RESTORE, "target_time": None}))
    assert setup_db.recovery_settings(to_backup, tmp_path)["recovery_target"] == "immediate"
    assert "restore" not in json.loads(user_data(backup=BACKUP))


@pytest.mark.parametrize("restore, fragment", [
    ({**RESTORE, "backup_id": "x; rm -rf /"}, "not a Barman backup id"),
    ({**RESTORE, "target_time": "now'; DROP"}, "not an ISO 8601 time"),
    ({**RESTORE, "token": "a b"}, "not a plain name"),
])
def test_restore_blocks_that_could_reach_a_shell_or_the_config_are_refused(restore, fragment):
    with pytest.raises(setup_db.SetupError, match=fragment):
        setup_db.parse_user_data(user_data(backup=BACKUP, restore=restore))
