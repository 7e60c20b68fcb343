"""The `eucadb` command as an operator runs it: exit codes, one-line errors, nothing changed on error."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EUCADB = str(Path(sys.executable).parent / "eucadb")
W = "services.database.worker."


def run(*args, env_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
    env["EUCADB_HOME"] = str(env_home)
    return subprocess.run([EUCADB, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("assignment", [W + "instance_type=", W + "volume_size=-3",
                                        W + "allowed_cidrs=10.0.0.0/33", W + "nosuchname=1"])
def test_bad_sets_fail_with_one_line_and_change_nothing(tmp_path, assignment):
    assert run("property", "set", W + "pool_size=4", env_home=tmp_path).returncode == 0
    before = run("property", "history", "--output", "json", env_home=tmp_path).stdout
    result = run("property", "set", W + "pool_size=9", assignment, env_home=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert run("property", "history", "--output", "json", env_home=tmp_path).stdout == before
    assert json.loads(before)[-1]["new"] == "4"


def test_read_commands_and_json_output(tmp_path):
    listed = json.loads(run("property", "list", W, "-o", "json", env_home=tmp_path).stdout)
    assert {p["name"] for p in listed} >= {W + "image", W + "instance_type", W + "availability_zones"}
    got = json.loads(run("property", "get", W + "volume_size", "-o", "json", env_home=tmp_path).stdout)
    assert got["value"] == "10" and got["is_default"] is True
    table = run("property", "list", W + "pool", env_home=tmp_path).stdout
    assert table.splitlines()[0].split()[:2] == ["NAME", "VALUE"] and W + "pool_timeout" in table


def test_usage_errors_exit_2_and_version(tmp_path):
    assert run("property", "set", env_home=tmp_path).returncode == 2
    assert run("property", "frobnicate", env_home=tmp_path).returncode == 2
    version = run("--version", env_home=tmp_path)
    assert version.returncode == 0 and "eucadb" in version.stdout
    assert run("property", "set", "--help", env_home=tmp_path).returncode == 0


def test_reset_and_secret_never_printed(tmp_path):
    run("property", "set", W + "volume_size=30", env_home=tmp_path)
    assert run("property", "reset", W + "volume_size", env_home=tmp_path).returncode == 0
    got = json.loads(run("property", "get", W + "volume_size", "-o", "json", env_home=tmp_path).stdout)
    assert got["is_default"] is True
    gone = run("property", "set", "services.database.appendonly.password=abc", env_home=tmp_path)
    assert gone.returncode == 1 and "unknown property" in gone.stderr   # status shows the live endpoint


def test_bad_config_is_a_one_line_error(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "eucadb.yaml").write_text("serve:\n  port: -1\n")
    result = run("property", "list", env_home=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "serve.port" in result.stderr


def test_rotating_passwords_before_any_launch_is_a_clear_error(tmp_path):
    done = run("workflow", "rotate-passwords", env_home=tmp_path)
    assert done.returncode == 1 and done.stderr == (
        "error: no database passwords exist yet: the first launch makes them\n")
    unknown = run("workflow", "rotate-passwords", "--role", "root", env_home=tmp_path)
    assert unknown.returncode == 1
    assert "unknown role root; roles are: admin, cloudwatch, reporting, replication" in unknown.stderr


@pytest.mark.parametrize("command", [("workflow", "launch"), ("workflow", "teardown")])
def test_workflow_without_a_cloud_is_refused_at_once_and_records_nothing(tmp_path, command):
    """Not an outage to retry for a minute: one line, exit 1, no workflow run recorded."""
    result = run(*command, env_home=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: no cloud is configured: run `eucadb cloud up` for the embedded cloud, or set "
        "cloud.endpoint_url (an URL, or 'default' for AWS)"]
    assert run("workflow", "show", "-o", "json", env_home=tmp_path).stdout.strip() == "[]"
