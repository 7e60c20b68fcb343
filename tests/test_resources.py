"""eucadb/resources.py: a file the installation lacks is refused by name, never silently skipped."""
from __future__ import annotations

import pytest

from eucadb.errors import InstallationError
from eucadb.resources import alembic_scripts, shipped


def test_a_script_directory_without_revisions_is_refused(tmp_path, monkeypatch):
    """What a wheel without migrations/versions/ looked like: Alembic would upgrade it to nothing."""
    package = tmp_path / "halfinstalled"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").touch()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InstallationError, match=r"no Alembic revision in .*halfinstalled/migrations/versions"):
        with alembic_scripts("halfinstalled", "migrations"):
            pass


def test_a_file_missing_from_the_installation_is_named():
    with pytest.raises(InstallationError, match="eucadb:boot/absent.py is missing from this eucadb installation"):
        with shipped("eucadb", "boot/absent.py"):
            pass

