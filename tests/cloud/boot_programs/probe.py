"""A test boot program proving the realizer's contract (stands in for scripts/setup_db.py).

Runs as the instance: `<runtime python> probe.py --root <instance root>`, environment holding only
AWS_EC2_METADATA_SERVICE_ENDPOINT (+ PATH/LANG). It
- reads its identity and user-data from the metadata service (IMDSv2, via botocore's own fetcher),
- gets role credentials through botocore's default chain (no special code) and calls STS with them,
- listens on <private ip>:5432 and answers each connection with its instance id,
- attaches the volume user-data names ("volume") to itself as /dev/sdf, as setup_db.py does, waiting
  while a previous owner still holds it,
- writes to its data disk (<root>/dev/sdf) when one is plugged in, and lists what it finds there,
- reports all of it in <root>/var/lib/probe/report.json, refreshed continuously.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import boto3
import botocore.session
from botocore.exceptions import ClientError
from botocore.utils import IMDSFetcher


class Metadata(IMDSFetcher):
    """botocore's IMDS client (token + retries + endpoint from the environment), for plain paths."""

    def get(self, path: str) -> str | None:
        token = self._fetch_metadata_token()
        response = self._get_request(path, None, token)
        return response.text if response.status_code == 200 else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    root = Path(parser.parse_args().root)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # botocore's config chain reads AWS_EC2_METADATA_SERVICE_ENDPOINT; its fetcher takes it as config
    settings = botocore.session.get_session()
    imds = Metadata(timeout=2, num_attempts=3, config={
        "ec2_metadata_service_endpoint": settings.get_config_variable("ec2_metadata_service_endpoint")})
    instance_id = imds.get("latest/meta-data/instance-id")
    ip = imds.get("latest/meta-data/local-ipv4")
    user_data = json.loads(imds.get("latest/user-data") or "{}")
    session = boto3.Session(region_name=imds.get("latest/meta-data/placement/region"))
    creds = session.get_credentials()
    caller = {"Arn": None}
    if creds is not None and user_data.get("endpoint"):
        caller = session.client("sts", endpoint_url=user_data["endpoint"]).get_caller_identity()
    if user_data.get("volume"):
        _attach(session.client("ec2", endpoint_url=user_data["endpoint"]), user_data["volume"], instance_id)
    report = {
        "instance_id": instance_id, "ip": ip, "uid": os.getuid(), "user_data": user_data,
        "pid": os.getpid(), "visible_processes": sum(1 for p in os.listdir("/proc") if p.isdigit()),
        "zone": imds.get("latest/meta-data/placement/availability-zone"),
        "credential_method": creds and creds.method,
        "access_key": creds and creds.get_frozen_credentials().access_key,
        "caller_arn": caller["Arn"], "env": sorted(os.environ),
        "unauthenticated_status": _status_without_token(os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]),
    }
    server = socket.create_server((ip, 5432))
    threading.Thread(target=_serve, args=(server, instance_id), daemon=True).start()
    out = root / "var" / "lib" / "probe"
    out.mkdir(parents=True, exist_ok=True)
    disk = root / "dev" / "sdf"
    while True:
        if disk.is_dir():
            with open(disk / f"written-by-{instance_id}", "a") as f:
                f.write(f"{time.time()}\n")
            report["disk"] = sorted(p.name for p in disk.iterdir())
        else:
            report["disk"] = None
        tmp = out / "report.tmp"
        tmp.write_text(json.dumps(report))
        os.replace(tmp, out / "report.json")
        time.sleep(0.1)


def _attach(ec2, volume_id: str, instance_id: str) -> None:
    while True:
        try:
            ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("VolumeInUse", "IncorrectState"):
                raise
        time.sleep(0.2)


def _status_without_token(endpoint: str) -> int:
    import urllib.error
    import urllib.request
    try:
        urllib.request.urlopen(endpoint.rstrip("/") + "/latest/meta-data/instance-id", timeout=2)
        return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def _serve(server: socket.socket, instance_id: str) -> None:
    while True:
        conn, _ = server.accept()
        with conn:
            conn.sendall(instance_id.encode() + b"\n")


if __name__ == "__main__":
    sys.exit(main())
