"""`pip install .` and a built wheel or sdist must hold every file eucadb opens at run time.

An editable install reads the checkout, so the suite's other tests cannot see a file setup.py fails
to ship: a wheel without the services' `migrations/versions/` once "upgraded" the remote schemas to
nothing, and one without the boot program could not install the local image. These tests build the
real artifacts (with this venv's setuptools, no network) from a copy of the checkout and look inside.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import eucadb
from eucadb.pool.contexts import REMOTE

REPO = Path(__file__).resolve().parents[1]
BOOT_PROGRAM = REPO / "scripts" / "setup_db.py"
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".hypothesis", "out")


def package_files() -> dict[str, bytes]:
    """Every file of the package in the checkout, modules and data alike, by its path in a wheel
    (eucadb/boot/setup_db.py is a symlink: its content is scripts/setup_db.py's)."""
    return {p.relative_to(REPO).as_posix(): p.read_bytes() for p in sorted((REPO / "eucadb").rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def remote_versions() -> dict[str, list[str]]:
    """The Alembic revision files of each service's remote schema, as wheel paths."""
    found = {}
    for ctx in REMOTE:
        versions = REPO.joinpath(*ctx.migrations.split(".")) / "versions"
        found[ctx.name] = sorted(p.relative_to(REPO).as_posix() for p in versions.glob("*.py"))
    return found


@dataclass
class Artifacts:
    wheel_from_tree: Path
    sdist: Path
    wheel_from_sdist: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*argv: str, cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Artifacts:
    """A wheel built from the tree (what `pip install .` does) and an sdist plus the wheel built from
    it (what `python -m build` does), from a copy of the checkout that keeps its symlinks."""
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=NOT_SOURCE)
    assert (src / "eucadb" / "boot" / "setup_db.py").is_symlink()  # the layout these tests are about
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(base / "tree"), str(src), cwd=base)
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(base / "sdist"), str(src),
         cwd=base)  # neither --sdist nor --wheel: the sdist, then a wheel built from the sdist
    return Artifacts(wheel_from_tree=next((base / "tree").glob("eucadb-*.whl")),
                     sdist=next((base / "sdist").glob("eucadb-*.tar.gz")),
                     wheel_from_sdist=next((base / "sdist").glob("eucadb-*.whl")))


def wheel_contents(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name.startswith("eucadb/")}


def sdist_contents(sdist: Path) -> dict[str, bytes]:
    """The package's regular files in the sdist, by wheel path; links are reported as such, since a
    symlink to ../../scripts would dangle in an sdist that does not ship scripts/."""
    found = {}
    with tarfile.open(sdist) as tf:
        for member in tf.getmembers():
            root, _, rel = member.name.partition("/")
            if rel.startswith("eucadb/") and not member.isdir():
                found[rel] = tf.extractfile(member).read() if member.isfile() else b"<link>"
    return found


WHEELS = ["wheel_from_tree", "wheel_from_sdist"]


@pytest.mark.parametrize("which", WHEELS)
def test_each_wheel_holds_every_file_of_the_package_with_its_content(artifacts, which):
    shipped = wheel_contents(getattr(artifacts, which))
    expected = package_files()
    assert sorted(set(expected) - set(shipped)) == []
    assert [name for name, content in expected.items() if shipped[name] != content] == []


@pytest.mark.parametrize("which", WHEELS)
def test_each_wheel_holds_every_migration_version_of_every_service(artifacts, which):
    shipped = wheel_contents(getattr(artifacts, which))
    for service, versions in remote_versions().items():
        assert versions, f"{service} has no migration versions in the checkout"
        assert [v for v in versions if v not in shipped] == [], service


@pytest.mark.parametrize("which", WHEELS)
def test_each_wheel_ships_the_boot_program_as_scripts_setup_db(artifacts, which):
    assert wheel_contents(getattr(artifacts, which))["eucadb/boot/setup_db.py"] == BOOT_PROGRAM.read_bytes()


def test_the_sdist_holds_every_file_of_the_package_and_the_boot_program_as_a_regular_file(artifacts):
    shipped = sdist_contents(artifacts.sdist)
    expected = package_files()
    assert sorted(set(expected) - set(shipped)) == []
    assert [name for name, content in expected.items() if shipped[name] != content] == []
    assert shipped["eucadb/boot/setup_db.py"] == BOOT_PROGRAM.read_bytes()


def test_the_version_is_written_once_and_the_wheel_carries_it(artifacts):
    with zipfile.ZipFile(artifacts.wheel_from_tree) as zf:
        metadata = zf.read(f"eucadb-{eucadb.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {eucadb.__version__}\n" in metadata
    assert eucadb.__version__ not in (REPO / "setup.py").read_text()


PROBE = """
import json, sys
from pathlib import Path
import eucadb
from alembic.script import ScriptDirectory
from eucadb.pool.contexts import REMOTE
from eucadb.resources import alembic_scripts, shipped
from eucadb.store.database import Store
store = Store("sqlite:///" + sys.argv[1])
store.migrate()
heads = {}
for ctx in REMOTE:
    with alembic_scripts(ctx.migrations) as cfg:
        heads[ctx.name] = sorted(ScriptDirectory.from_config(cfg).get_heads())
with shipped("eucadb", "boot/setup_db.py") as program:
    boot = program.read_text()
tables = sorted(r[0] for r in store.engine.connect().exec_driver_sql(
    "SELECT name FROM sqlite_master WHERE type='table'"))
print(json.dumps({"file": eucadb.__file__, "heads": heads, "boot": boot, "tables": tables}))
"""


def test_the_installed_wheel_migrates_from_its_own_files(artifacts, tmp_path):
    """Unpacked as pip installs it and imported ahead of the checkout's editable install: the store
    migrates and each remote schema has its head, all from files inside the wheel."""
    site = tmp_path / "site"
    with zipfile.ZipFile(artifacts.wheel_from_tree) as zf:
        zf.extractall(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
    env.update(PYTHONPATH=str(site), EUCADB_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "store.db")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert Path(probe["file"]).is_relative_to(site)
    assert probe["boot"] == BOOT_PROGRAM.read_text()
    assert {"alembic_version", "properties"} <= set(probe["tables"])
    with_revisions = {name: heads for name, heads in probe["heads"].items() if heads}
    assert sorted(with_revisions) == sorted(ctx.name for ctx in REMOTE)


def test_an_installation_without_a_services_revisions_refuses_to_serve(artifacts, tmp_path):
    """The failure the old wheels had, made loud: `eucadb serve` exits at once, naming what is missing,
    instead of enabling services on a schema that was "upgraded" to nothing."""
    site = tmp_path / "site"
    missing = "eucadb/services/cloudwatch/migrations/versions/"
    with zipfile.ZipFile(artifacts.wheel_from_tree) as zf:
        zf.extractall(site, members=[n for n in zf.namelist() if not n.startswith(missing)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUCADB_")}
    env.update(PYTHONPATH=str(site), EUCADB_HOME=str(tmp_path / "home"), EUCADB_SERVE_PORT=str(free_port()))
    try:
        done = subprocess.run([sys.executable, "-m", "eucadb.cli", "serve"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("eucadb serve kept running on an installation without the cloudwatch revisions")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "no Alembic revision in" in done.stderr
    assert str(site / missing.rstrip("/")) in done.stderr
