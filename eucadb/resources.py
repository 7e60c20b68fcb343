"""Files eucadb ships beside its modules: the Alembic scripts and the local image's boot program.

Found through importlib.resources, never by walking up from `__file__`: the same lookup works in a
checkout, an editable install and an installed wheel, and a file setup.py failed to ship is refused
here, by name, instead of resolving to a path outside the package that only a checkout has.
"""
from __future__ import annotations

import contextlib
from importlib.resources import as_file, files
from pathlib import Path
from typing import Iterator

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from eucadb.errors import InstallationError


@contextlib.contextmanager
def shipped(package: str, name: str = "") -> Iterator[Path]:
    """A filesystem path to `name` ("" = the package's own directory) inside `package`, valid for
    the `with` block (alembic and shutil need paths, not Traversables)."""
    resource = files(package)
    for part in filter(None, name.split("/")):
        resource = resource / part
    if not (resource.is_file() or resource.is_dir()):
        raise InstallationError(f"{package}:{name} is missing from this eucadb installation "
                                f"(a broken install: reinstall eucadb)")
    with as_file(resource) as path:
        yield path


@contextlib.contextmanager
def alembic_scripts(package: str, name: str = "") -> Iterator[AlembicConfig]:
    """An Alembic config running the scripts shipped in `package`/`name`. A script directory with
    no revision is refused: upgrading it to "head" would succeed, do nothing and leave the schema
    empty, which is how a wheel without `versions/` used to fail, silently."""
    with shipped(package, name) as where:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(where))
        if not ScriptDirectory.from_config(cfg).get_heads():
            raise InstallationError(f"no Alembic revision in {where / 'versions'} "
                                    f"(a broken install: reinstall eucadb)")
        yield cfg
