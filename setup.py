"""eucadb: control plane for a cloud's own append-only databases on instances it launches."""
import re
from pathlib import Path

from setuptools import find_packages, setup


def version() -> str:
    """eucadb/__init__.py's __version__, the one place the version is written (read, not imported:
    the build environment need not have eucadb's dependencies)."""
    text = (Path(__file__).parent / "eucadb" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE).group(1)


# Files the code opens (through eucadb/resources.py) that are not modules of a package: the
# Alembic scripts of the local store and of each service's remote schema, and the boot program of
# the local image. boot/setup_db.py is a symlink to scripts/setup_db.py; build_py and sdist copy
# its content, so wheels and sdists hold a regular file. tests/test_packaging.py checks each.
PACKAGE_DATA = [
    "store/migrations/*.py", "store/migrations/*.mako", "store/migrations/versions/*.py",
    "services/*/migrations/*.mako", "services/*/migrations/versions/*.py",
    "boot/setup_db.py",
]

setup(
    name="eucadb",
    version=version(),
    description="Runs a cloud's bulky append-only databases on instances the cloud launches itself",
    packages=find_packages(include=["eucadb", "eucadb.*"]),
    package_data={"eucadb": PACKAGE_DATA},
    python_requires=">=3.10",
    install_requires=[
        "boto3>=1.34",
        "psycopg2-binary>=2.9",
        "SQLAlchemy>=2.0",
        "alembic>=1.12",
        "cryptography>=41",
        "APScheduler>=3.10,<4",
        "click>=8.1",
        "PyYAML>=6",
        "moto[server]>=5.1",
        "waitress>=3",
        "cheroot>=10",   # TLS termination in `eucadb serve` (waitress does no TLS)
        "cbor2>=5.6",
        "packaging>=21",
        "prometheus_client>=0.17",
        # Barman Cloud: WAL archiving and base backups on the instance (the embedded cloud's
        # instance runtime copies it from here), `eucadb backup list` on the control plane
        "barman[cloud]>=3.10",
    ],
    extras_require={
        # build and wheel: tests/test_packaging.py builds the sdist and wheels without network
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3", "build>=1", "wheel>=0.40"],
    },
    entry_points={"console_scripts": ["eucadb=eucadb.cli:main"]},
)
