"""Who may read what eucadb keeps under $EUCADB_HOME: its owner only, unless `files.group` is set.

The store (with SQLite's -wal/-shm, which SQLite creates with the database file's mode), the logs, pid
files and secret.key hold account usage and sealed secrets; another local user must not read them.
Every eucadb command tightens what an older install left at start, and $EUCADB_HOME itself is 0700, so
nothing under it is reachable by another user whatever a file's own mode. `eucadb serve`, the
long-running writer of the store and logs, also sets a umask (0o077) so each file it creates is private
however it is created (SQLite, logging). The CLI does not: the embedded cloud's daemons it starts
inherit its umask, and must keep making instance files the instance user (`postgres`) can read.
The store file is created 0600 before SQLite opens it; SQLite gives -wal/-shm the database file's mode.

With `files.group`, directories are 2750 (setgid: files created inside inherit the group) and files
0640, so that group (e.g. a log shipper's) can read them. secret.key stays 0600 whatever the group:
SecretBox refuses a key that anyone else can read.
"""
from __future__ import annotations

import grp
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from eucadb.config import Config

log = logging.getLogger(__name__)
SECRET_KEY = "secret.key"
# what is tightened at start: in $EUCADB_HOME and the embedded cloud's control-plane directories (their
# top level only: instance roots and volumes have their own owners and modes)
DIRS = ("", "cloud", "cloud/logs", "cloud/instances")
PATTERNS = ("store.db", "store.db-wal", "store.db-shm", "*.log", "*.log.*", "*.out", "*.pid", "*.json",
            "*.yaml", SECRET_KEY)


@dataclass(frozen=True)
class Modes:
    umask: int
    file: int
    dir: int
    gid: int = -1   # -1: leave the group as it is


def modes(config: Config) -> Modes:
    group = config["files.group"]
    if not group:
        return Modes(umask=0o077, file=0o600, dir=0o700)
    return Modes(umask=0o027, file=0o640, dir=0o2750, gid=grp.getgrnam(group).gr_gid)


def _apply(path: Path, mode: int, gid: int) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
        return   # not ours to change (a symlink, or a file another user made)
    if gid != -1 and st.st_gid != gid:
        os.chown(path, -1, gid)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def private_file(path: Path, config: Config) -> Path:
    """Create `path` (if missing) with the configured file mode, before a library opens it.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX lock
    this process holds on it, so an open-and-close of store.db while another connection of the same
    process reads it lets `eucadb serve` write under that reader (SQLite's documented way to see
    "database disk image is malformed")."""
    chosen = modes(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, chosen.file))
    _apply(path, chosen.file, chosen.gid)
    return path


def set_umask(config: Config) -> None:
    """This process's files private from now on (`eucadb serve`)."""
    os.umask(modes(config).umask)


def secure_home(config: Config) -> Modes:
    """Bring $EUCADB_HOME and what is in it to the configured modes (creating it if needed)."""
    chosen = modes(config)
    home = config.home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for directory in (home / sub for sub in DIRS):
        if not directory.is_dir():
            continue
        _apply(directory, chosen.dir, chosen.gid)
        for pattern in PATTERNS:
            for path in directory.glob(pattern):
                if path.is_file():
                    private = path.name == SECRET_KEY
                    _apply(path, 0o600 if private else chosen.file, -1 if private else chosen.gid)
    return chosen
