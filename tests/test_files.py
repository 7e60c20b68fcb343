"""`files.group`: the store, logs and pid files readable by that group (0640, directories 2750 so new
files inherit it); secret.key stays 0600. An unknown group is a one-line config error."""
from __future__ import annotations

import grp
import os
import stat

import pytest

from eucadb.config import load
from eucadb.errors import ConfigError
from eucadb.files import private_file, secure_home

GROUP = "nogroup"   # Debian's; any existing group works


def test_files_group_opens_reading_to_that_group_but_not_the_key(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for name in ("store.db", "serve.log", "serve.pid", "secret.key"):
        (home / name).write_text("x")
        os.chmod(home / name, 0o644)
    config = load(env={"EUCADB_HOME": str(home), "EUCADB_FILES_GROUP": GROUP})
    secure_home(config)
    gid = grp.getgrnam(GROUP).gr_gid
    assert stat.S_IMODE(home.stat().st_mode) == 0o2750 and home.stat().st_gid == gid
    for name in ("store.db", "serve.log", "serve.pid"):
        st = (home / name).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, gid), name
    assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600
    made = private_file(home / "serve.out", config)
    assert (stat.S_IMODE(made.stat().st_mode), made.stat().st_gid) == (0o640, gid)


def test_without_a_group_everything_is_owner_only(tmp_path):
    home = tmp_path / "home"
    config = load(env={"EUCADB_HOME": str(home)})
    secure_home(config)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(private_file(home / "serve.out", config).stat().st_mode) == 0o600


def test_an_unknown_group_is_refused():
    with pytest.raises(ConfigError, match="files.group='no-such-group-4711' is not allowed; expected the name "
                                          "of an existing group"):
        load(env={"EUCADB_HOME": "/nonexistent", "EUCADB_FILES_GROUP": "no-such-group-4711"})
