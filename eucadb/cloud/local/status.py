"""What `eucadb cloud status` shows: daemons, endpoint, where the control-plane state lives (size,
last written), zones, instances (with realized pids), volumes and snapshots. Read-only; works
(showing "down") when the cloud is not running."""
from __future__ import annotations

from typing import Any

from eucadb.cloud.client import CloudClients
from eucadb.cloud.local import state
from eucadb.cloud.local.control import daemons
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.network import VPC_TAG
from eucadb.cloud.local.procs import PidRecord
from eucadb.config import Config


def _tag(item: dict, key: str) -> str | None:
    return next((t["Value"] for t in item.get("Tags", []) if t["Key"] == key), None)


def _process(layout: Layout, instance_id: str) -> tuple[int | None, str]:
    record = PidRecord.load(layout.instance_pidfile(instance_id))
    if record is None:
        return None, ""
    return record.pid, "running" if record.members() else "exited"


def cloud_status(config: Config) -> dict[str, Any]:
    layout = Layout.from_config(config)
    procs = daemons(layout)
    result: dict[str, Any] = {"endpoint": config["cloud.endpoint_url"], "region": config["cloud.region"],
                              "data_dir": str(layout.data_dir), "daemons": procs, "state": "down",
                              "control_plane": state.describe(state.state_path(layout.data_dir)),
                              "zones": [], "instances": [], "volumes": [], "snapshots": []}
    if not all(d["running"] for d in procs) or not config["cloud.endpoint_url"]:
        return result
    clients = CloudClients(config, connect_timeout=2, read_timeout=10)
    ec2 = lambda op, **kw: clients.call("ec2", op, **kw)  # noqa: E731 - local shorthand
    result["state"] = "up"
    vpcs = ec2("describe_vpcs", Filters=[{"Name": f"tag:{VPC_TAG}", "Values": ["local"]}])["Vpcs"]
    if vpcs:
        subnets = ec2("describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])
        result["vpc"] = {"id": vpcs[0]["VpcId"], "cidr": vpcs[0]["CidrBlock"]}
        result["zones"] = sorted(({"zone": s["AvailabilityZone"], "subnet": s["SubnetId"],
                                   "cidr": s["CidrBlock"]} for s in subnets["Subnets"]),
                                 key=lambda z: z["zone"])
    for reservation in ec2("describe_instances")["Reservations"]:
        for inst in reservation["Instances"]:
            pid, process = _process(layout, inst["InstanceId"])
            result["instances"].append({
                "id": inst["InstanceId"], "state": inst["State"]["Name"], "ip": inst.get("PrivateIpAddress"),
                "zone": inst["Placement"]["AvailabilityZone"], "image": inst["ImageId"],
                "group": _tag(inst, "aws:autoscaling:groupName"), "pid": pid, "process": process})
    for vol in ec2("describe_volumes")["Volumes"]:
        att = (vol.get("Attachments") or [{}])[0]
        result["volumes"].append({"id": vol["VolumeId"], "state": vol["State"], "zone": vol["AvailabilityZone"],
                                  "size": vol["Size"], "instance": att.get("InstanceId"),
                                  "device": att.get("Device"), "data": layout.volume_dir(vol["VolumeId"]).is_dir()})
    # moto's stock AMIs come with ~1000 backing snapshots: ask only for the user's (those of known
    # volumes, and those whose data we hold)
    volumes = [v["id"] for v in result["volumes"]]
    snapshots = ec2("describe_snapshots", Filters=[{"Name": "volume-id", "Values": volumes}])["Snapshots"] \
        if volumes else []
    held = {p.name for p in (layout.data_dir / "snapshots").glob("snap-*")} - {s["SnapshotId"] for s in snapshots}
    if held:
        snapshots += ec2("describe_snapshots", SnapshotIds=sorted(held))["Snapshots"]
    for snap in snapshots:
        result["snapshots"].append({"id": snap["SnapshotId"], "volume": snap.get("VolumeId"),
                                    "state": snap["State"],
                                    "data": layout.snapshot_dir(snap["SnapshotId"]).is_dir()})
    return result
