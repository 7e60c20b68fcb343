"""eucadb: control plane for a cloud's own append-only databases on instances it launches."""
from setuptools import find_packages, setup

setup(
    name="eucadb",
    version="0.1.0",
    description="Runs a cloud's bulky append-only databases on instances the cloud launches itself",
    packages=find_packages(include=["eucadb", "eucadb.*"]),
    package_data={"eucadb": ["store/migrations/*.py", "store/migrations/*.mako",
                             "store/migrations/versions/*.py",
                             "services/*/migrations/*.mako"]},
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
        "cbor2>=5.6",
        "packaging>=21",
        "prometheus_client>=0.17",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3"],
    },
    entry_points={"console_scripts": ["eucadb=eucadb.cli:main"]},
)
