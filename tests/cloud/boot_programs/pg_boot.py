"""A test boot program running real PostgreSQL on the instance's data disk (stands in for setup_db.py).

Waits for <root>/dev/sdf (the volume attached after boot, as eucadb's workflow does), initialises a
cluster there only if none exists (never formats existing data), and execs postgres listening on the
instance's private IP, port 5432. SIGTERM to the process group shuts it down.
"""
import argparse
import os
import subprocess
import time
from pathlib import Path

import botocore.session
from botocore.utils import IMDSFetcher

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def private_ip() -> str:
    settings = botocore.session.get_session()
    fetcher = IMDSFetcher(timeout=2, num_attempts=3, config={
        "ec2_metadata_service_endpoint": settings.get_config_variable("ec2_metadata_service_endpoint")})
    token = fetcher._fetch_metadata_token()
    return fetcher._get_request("latest/meta-data/local-ipv4", None, token).text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    root = Path(parser.parse_args().root)
    ip = private_ip()
    disk = root / "dev" / "sdf"
    while not disk.is_dir():
        time.sleep(0.1)
    pgdata = disk / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run([PG_BIN / "initdb", "-D", pgdata, "-U", "postgres", "-A", "trust",
                        "--data-checksums", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
        with open(pgdata / "pg_hba.conf", "a") as hba:
            hba.write("host all all 127.0.0.0/8 trust\n")
    run = root / "run"
    run.mkdir(exist_ok=True)
    os.execv(PG_BIN / "postgres", ["postgres", "-D", str(pgdata), "-c", f"listen_addresses={ip}",
                                   "-p", "5432", "-c", f"unix_socket_directories={run}",
                                   "-c", "fsync=off"])


if __name__ == "__main__":
    main()
