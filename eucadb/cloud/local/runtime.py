"""The local image's runtime: a Python the instance user can run, with boto3, cryptography, psycopg2
and Barman Cloud.

eucadb's own interpreter may live where the instance user cannot read (root's pyenv under /root,
mode 700), so the runtime is a venv made from `cloud.instance_python` (default /usr/bin/python3).
When that interpreter has the same major.minor (hence the same ABI) as ours, the needed
distributions are copied from our site-packages, file by file from their RECORD: no network, about a
second. Otherwise pip installs them from the index (`pip --python`). Built once, cached by content.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from eucadb.cloud.local.layout import Layout
from eucadb.errors import CloudError

log = logging.getLogger(__name__)
# barman: the Barman Cloud clients PostgreSQL runs for WAL archiving and base backups (barman[cloud]'s
# one extra is boto3, already here)
RUNTIME_DISTS = ("boto3", "cryptography", "psycopg2-binary", "barman")
CHECK_IMPORTS = ("import boto3, botocore, cryptography.hazmat.primitives.ciphers.aead, psycopg2, "
                 "barman.clients.cloud_walarchive, barman.clients.cloud_backup")


def _closure(names: tuple[str, ...]) -> list[md.Distribution]:
    """The distributions `names` need at run time (markers evaluated for this interpreter, no extras)."""
    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = md.distribution(name)
        seen[key] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def _python_version(python: str) -> str:
    done = subprocess.run([python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise CloudError(f"cloud.instance_python={python} does not run: {done.stderr.strip()}")
    return ".".join(done.stdout.split())


def _copy_dists(dists: list[md.Distribution], site: Path) -> None:
    for dist in dists:
        base = Path(dist.locate_file(""))
        for rel in dist.files or []:
            if str(rel).startswith("..") or rel.suffix == ".pyc":
                continue  # console scripts outside site-packages; bytecode is rebuilt
            src = base / rel
            if src.is_file():
                dst = site / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def build_runtime(layout: Layout, python: str) -> Path:
    """The cached runtime venv for `python`; built (atomically) when absent."""
    version = _python_version(python)
    same_abi = version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    dists = _closure(RUNTIME_DISTS) if same_abi else []
    pins = sorted(f"{d.metadata['Name']}=={d.version}" for d in dists) or list(RUNTIME_DISTS)
    key = hashlib.sha256(f"{python}|{version}|{pins}".encode()).hexdigest()[:12]
    target = layout.runtimes_dir / f"py{version}-{key}"
    if (target / ".complete").exists():
        return target
    layout.ensure()
    tmp = target.with_name(target.name + f".partial{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([python, "-m", "venv", "--without-pip", str(tmp)], check=True, capture_output=True)
    if same_abi:
        _copy_dists(dists, _site_packages(tmp))
    else:
        log.info("instance python %s differs from ours: installing %s from the package index", version, pins)
        done = subprocess.run([sys.executable, "-m", "pip", "--python", str(tmp / "bin" / "python"),
                               "install", "--quiet", *RUNTIME_DISTS], capture_output=True, text=True)
        if done.returncode != 0:
            raise CloudError(f"installing the image runtime failed: {done.stderr.strip()[-500:]}")
    # bytecode compiled now, by us: the instance user cannot write __pycache__ and would recompile
    # botocore on every boot
    subprocess.run([str(tmp / "bin" / "python"), "-m", "compileall", "-q", "-j0", str(_site_packages(tmp))],
                   capture_output=True)
    _make_readable(tmp)
    check = subprocess.run([str(tmp / "bin" / "python"), "-c", CHECK_IMPORTS], capture_output=True,
                           text=True, **layout.user.popen_kwargs())
    if check.returncode != 0:
        raise CloudError(f"the image runtime cannot import its modules: {check.stderr.strip()[-500:]}")
    (tmp / ".complete").write_text(" ".join(pins) + "\n")
    try:
        os.rename(tmp, target)
    except OSError:  # another process finished the same build first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _make_readable(root: Path) -> None:
    """World-readable (not writable): the instance user runs it, only root may change it."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.chmod(path, (path.stat().st_mode & 0o111) | 0o644)
