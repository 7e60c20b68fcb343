"""Boot-program details that differ on a real VM: the init script on a noexec /run, a disk blkid
cannot judge, and a cluster that went missing from its volume. scripts/setup_db.py is loaded as
the instance runs it (no eucadb import)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from eucadb.workflow.userdata import build_user_data
from setup_db_script import load_setup_db

setup_db = load_setup_db("setup_db_disk_under_test")


@pytest.fixture
def noexec_run(tmp_path):
    """ROOT/run as a real VM has it: a tmpfs mounted noexec (initramfs-tools does so)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a noexec tmpfs needs root (CI runs as root)")
    run = tmp_path / "run"
    run.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,nosuid,nodev", "tmpfs", str(run)], check=True)
    try:
        yield tmp_path
    finally:
        subprocess.run(["umount", str(run)], check=True)


def test_a_shebang_init_script_runs_on_a_noexec_run(noexec_run, caplog):
    caplog.set_level(logging.INFO)
    setup_db.run_init_script(noexec_run, "#!/bin/sh -e\necho ran > \"$PWD/init-ran\"\n")
    assert (noexec_run / "init-ran").read_text().strip() == "ran"
    assert "init_script finished with exit code 0" in caplog.text
    assert not list((noexec_run / "run").glob("eucadb-init-*"))


def test_an_init_script_that_cannot_start_is_logged_not_fatal(tmp_path, caplog):
    (tmp_path / "run").mkdir()
    setup_db.run_init_script(tmp_path, "#!/nonexistent/interpreter\nexit 0\n")
    assert "init_script could not be run" in caplog.text
    assert not list((tmp_path / "run").glob("eucadb-init-*"))


def fake_tools(bin_dir: Path, blkid_exit: int) -> Path:
    """blkid answering `blkid_exit`, and an mkfs.ext4 that records being called."""
    bin_dir.mkdir()
    (bin_dir / "blkid").write_text(f"#!/bin/sh\necho 'probe trouble' >&2\nexit {blkid_exit}\n")
    (bin_dir / "mkfs.ext4").write_text(f"#!/bin/sh\ntouch {bin_dir}/mkfs-ran\n")
    for tool in ("blkid", "mkfs.ext4"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("blkid_exit", [4, 8])
def test_a_disk_blkid_cannot_judge_is_neither_formatted_nor_mounted(tmp_path, monkeypatch, blkid_exit):
    tools = fake_tools(tmp_path / "bin", blkid_exit)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(2 << 20))   # all zeros: formatted if the probe failure read as "empty"
    with pytest.raises(setup_db.SetupError, match=f"blkid .* exit {blkid_exit}"):
        setup_db.mount_data_disk(disk, tmp_path / "mnt")
    assert not (tools / "mkfs-ran").exists()


def test_a_volume_whose_cluster_went_missing_is_refused(tmp_path):
    owner = setup_db.RunAs(os.geteuid(), os.getegid(), False)
    data = tmp_path / "data"
    data.mkdir()
    pgdata = setup_db.check_data_dir(data, "dep1", "15", owner)       # claims the empty disk
    assert not pgdata.exists()
    assert setup_db.check_data_dir(data, "dep1", "15", owner) == pgdata  # no cluster yet: fine
    setup_db.mark_initialised(data, owner)
    with pytest.raises(setup_db.ForeignVolume, match="had a cluster .* is gone; refusing"):
        setup_db.check_data_dir(data, "dep1", "15", owner)
    assert sorted(os.listdir(data)) == [setup_db.MARKER]                # nothing was touched


def user_data(**changes) -> str:
    """Valid user-data as the launch template carries it, with `changes` applied."""
    doc = json.loads(build_user_data(
        deployment="d1", endpoint_url=None, region="us-east-1", secret_id="eucadb/d1/server-key",
        volume_id="vol-1", dns_name="db.d1.eucadb.internal", server_cert="CERT", ca_cert="CA",
        allowed_cidrs=["10.0.0.0/8"], instance_type="t2.micro", sealed_credentials={"v": 1}))
    return json.dumps({**doc, **changes})


def test_user_data_with_a_newline_in_a_name_is_refused():
    """A newline would add a line to pg_hba.conf or to chrony's sources."""
    assert setup_db.parse_user_data(user_data()).deployment == "d1"
    roles = {**json.loads(user_data())["roles"], "admin": "eucadb_admin\n"}
    with pytest.raises(setup_db.SetupError, match="not a plain lower-case identifier"):
        setup_db.parse_user_data(user_data(roles=roles))
    with pytest.raises(setup_db.SetupError, match="is not a host name"):
        setup_db.parse_user_data(user_data(ntp_server="ntp.example\n"))


def test_the_clusters_own_postgresql_is_preferred(tmp_path, monkeypatch):
    """An image with 15 and 16 keeps running a 15 cluster with 15; a new disk gets the newest."""
    for major in ("15", "16"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").touch()
    monkeypatch.setattr(setup_db, "PG_LIB", tmp_path)
    assert setup_db.pg_bindir("15") == tmp_path / "15" / "bin"
    assert setup_db.pg_bindir(None) == tmp_path / "16" / "bin"
    assert setup_db.pg_bindir("14") == tmp_path / "16" / "bin"         # not installed: the newest
    assert setup_db.pg_bindir("../../etc") == tmp_path / "16" / "bin"  # not a version: ignored
