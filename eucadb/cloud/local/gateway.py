"""The embedded cloud's API: moto's WSGI app wrapped by a gateway that fills moto's data-plane gaps.

Why a WSGI middleware in the moto process rather than a reverse proxy: one process and one port, no
extra hop, and the endpoint stays plain AWS-compatible HTTP. The gateway sees each EC2 Query request,
and for the few actions that touch data it acts synchronously, at API time, as a real cloud would:

- AttachVolume: enforce AWS semantics moto 5.2 lacks (volume `available`, same zone, device free,
  instance not terminated), then plug the volume in as the instance's device;
- CreateVolume(SnapshotId) copies the snapshot's data before answering; CreateSnapshot freezes the
  attached instance and copies before answering (so "completed" is true);
- DeleteVolume/DeleteSnapshot free the directory; DetachVolume unplugs;
- StopInstances/TerminateInstances stop the instance's processes before answering; a concurrent
  AttachVolume of a freed volume waits for that, so no volume is ever used by two instances.
- Auto Scaling's SetInstanceHealth(Unhealthy), which moto only records, terminates the instance
  through our own TerminateInstances (so the path above runs) and moto launches the replacement.
Everything else goes straight to moto.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlencode

import boto3
from botocore.exceptions import ClientError

from eucadb import sigv4
from eucadb.cloud.local import asg_health, disks, faults, instances
from eucadb.cloud.local.s3 import S3App
from eucadb.cloud.local.layout import Layout
from eucadb.errors import CloudError

log = logging.getLogger(__name__)
HEALTH_PATH = "/_eucadb/health"
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")

Params = Mapping[str, str]


class ApiError(Exception):
    """An AWS error answered to the caller instead of forwarding the request."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.status = code, status


def _listed(params: Params, prefix: str) -> list[str]:
    """Values of a Query-protocol list parameter: InstanceId.1, InstanceId.2, …"""
    keys = sorted((k for k in params if k.startswith(prefix + ".")), key=lambda k: int(k.rsplit(".", 1)[1]))
    return [params[k] for k in keys]


def _xml_field(body: bytes, name: str) -> str | None:
    """First element named `name` (any namespace) in a response body."""
    for element in ET.fromstring(body).iter():
        if element.tag.rsplit("}", 1)[-1] == name:
            return element.text
    return None


@dataclass(frozen=True)
class Action:
    """What the gateway does around one action: `before` may refuse (ApiError) or return
    parameters to add to the request, `after` acts on the data once moto has answered 200; `undo`
    compensates moto's record if `after` failed. A `serialised` action holds the gateway's lock
    throughout; one whose `after` calls a serialised action of ours must not (it would wait on itself)."""
    before: Callable[["Gateway", Params], dict[str, str] | None] | None = None
    after: Callable[["Gateway", Params, bytes], None] | None = None
    undo: Callable[["Gateway", Params, bytes], None] | None = None
    serialised: bool = True


def read_body(environ: dict) -> bytes:
    """The request body, left readable again for the next layer."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    return body


class Gateway:
    """`self_key` (access key id, secret) signs the gateway's requests to itself: a key the
    authenticating layer in front knows (principals.gateway_principal)."""

    def __init__(self, app: Callable, layout: Layout, endpoint: str, region: str, stop_timeout: float,
                 self_key: tuple[str, str]):
        self.app = app
        self.self_key = self_key
        self.layout = layout
        self.endpoint = endpoint
        self.region = region
        self.stop_timeout = stop_timeout
        self._lock = threading.Lock()  # serialises data actions: check-then-act must be atomic
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.faults = faults.Faults.from_env()  # test knob: AWS's eventual-consistency answers
        self.s3 = S3App(layout.s3_dir, region)  # durable, streaming S3 instead of moto's in-memory one

    def client(self, service: str) -> Any:
        """A client to ourselves, for the state checks moto does not do (public API only)."""
        with self._clients_lock:  # boto3 sessions are not safe to build clients from concurrently
            if service not in self._clients:
                self._clients[service] = boto3.session.Session().client(
                    service, endpoint_url=self.endpoint, region_name=self.region,
                    aws_access_key_id=self.self_key[0], aws_secret_access_key=self.self_key[1])
            return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    # WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return self._respond(start_response, "200 OK", "application/json", json.dumps(
                {"cloud_dir": str(self.layout.cloud_dir), "pid": os.getpid()}).encode())
        match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match and match.group(1) == "s3" or not match and sigv4.is_presigned(environ.get("QUERY_STRING", "")):
            return self.s3(environ, start_response)
        if self.faults and match and environ.get("REQUEST_METHOD") == "POST":
            body = read_body(environ)
            protocol, name = faults.request_action(environ, body)
            fault = self.faults.take(name)
            if fault:
                log.info("injected fault: %s answers %s", name, fault.code)
                return self._respond(start_response, *faults.error_response(
                    protocol, match.group(1), fault.code, fault.message, fault.status))
        service = match.group(1) if match else ""
        if service not in ACTIONS or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        body = read_body(environ)
        params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        action = ACTIONS[service].get(params.get("Action", ""))
        if action is None:
            return self.app(environ, start_response)
        if not action.serialised:
            response, undo = self._handle(service, action, params, environ, start_response)
        else:
            with self._lock:
                response, undo = self._handle(service, action, params, environ, start_response)
        if undo:
            undo()   # after the lock: an undo calls our own API (DeleteVolume), which takes the lock too
        return response

    def _handle(self, service: str, action: Action, params: Params, environ: dict,
                start_response: Callable) -> tuple[list[bytes], Callable[[], None] | None]:
        """The response, and what must be undone once the lock is released (a failed data action)."""
        try:
            extra = action.before(self, params) if action.before else None
        except ApiError as exc:
            return self._error(start_response, service, exc), None
        if extra:
            params = {**params, **extra}
            body = urlencode(params).encode()
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        status, headers, body = self._forward(environ)
        if status.startswith("200") and action.after:
            try:
                action.after(self, params, body)
            except (CloudError, OSError) as exc:
                log.exception("%s: data action failed", params.get("Action"))
                undo = action.undo
                return (self._error(start_response, service, ApiError("InternalError", str(exc), 500)),
                        (lambda: undo(self, params, body)) if undo else None)
        start_response(status, headers)
        return [body], None

    def _forward(self, environ: dict) -> tuple[str, list, bytes]:
        return buffered(self.app, environ)

    @staticmethod
    def _respond(start_response: Callable, status: str, ctype: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def _error(self, start_response: Callable, service: str, exc: ApiError) -> list[bytes]:
        return self._respond(start_response, *faults.error_response("query", service, exc.code, str(exc), exc.status))

    # state lookups ---------------------------------------------------------------------------
    def describe(self, kind: str, ident: str) -> dict:
        """One volume or instance as moto knows it; a missing one is the caller's error."""
        try:
            if kind == "volume":
                return self.ec2.describe_volumes(VolumeIds=[ident])["Volumes"][0]
            reservations = self.ec2.describe_instances(InstanceIds=[ident])["Reservations"]
            return reservations[0]["Instances"][0]
        except ClientError as exc:
            error = exc.response["Error"]
            raise ApiError(error.get("Code", "InvalidParameterValue"), error.get("Message", "")) from None


def buffered(app: Callable, environ: dict) -> tuple[str, list, bytes]:
    """Run a WSGI app to completion: (status, headers, body), so the caller can act before answering."""
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured.update(status=status, headers=headers)
        return lambda data: None

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return captured["status"], captured["headers"], body


# the actions -------------------------------------------------------------------------------------
def _check_attach(gw: Gateway, p: Params) -> None:
    volume = gw.describe("volume", p.get("VolumeId", ""))
    instance = gw.describe("instance", p.get("InstanceId", ""))
    device = p.get("Device", "")
    if volume["State"] != "available":
        raise ApiError("VolumeInUse", f"{volume['VolumeId']} is already attached to an instance"
                       if volume.get("Attachments") else f"{volume['VolumeId']} is {volume['State']}")
    if instance["State"]["Name"] not in ("running", "stopped"):
        raise ApiError("IncorrectState", f"Instance '{instance['InstanceId']}' is not 'running'.")
    zone = instance["Placement"]["AvailabilityZone"]
    if volume["AvailabilityZone"] != zone:
        raise ApiError("InvalidVolume.ZoneMismatch", f"The volume '{volume['VolumeId']}' is not in the "
                       f"same availability zone as instance '{instance['InstanceId']}'")
    if device in {m["DeviceName"] for m in instance.get("BlockDeviceMappings", [])}:
        raise ApiError("InvalidParameterValue", f"Attachment point {device} is already in use")
    try:
        disks.device_name(device)
    except CloudError as exc:
        raise ApiError("InvalidParameterValue", str(exc)) from None
    # a terminated previous owner may still be shutting down (ASG-initiated terminations do not
    # pass through here): make sure nothing of it runs before the volume is plugged in elsewhere
    previous = disks.attached_instance(gw.layout, volume["VolumeId"])
    if previous and previous != instance["InstanceId"]:
        with instances.locked(gw.layout, previous):
            if not _running(gw, previous):
                instances.halt(gw.layout, previous, gw.stop_timeout)
            disks.unlink_volume(gw.layout, volume["VolumeId"])


def _running(gw: Gateway, instance_id: str) -> bool:
    try:
        return gw.describe("instance", instance_id)["State"]["Name"] in ("pending", "running")
    except ApiError:
        return False


def _complete_detach(gw: Gateway, p: Params) -> dict[str, str] | None:
    """AWS accepts DetachVolume with only VolumeId; moto 5.2 crashes without InstanceId."""
    if p.get("InstanceId"):
        return None
    attachments = gw.describe("volume", p.get("VolumeId", "")).get("Attachments") or []
    if not attachments:
        raise ApiError("IncorrectState", f"Volume '{p.get('VolumeId')}' is in the 'available' state.")
    return {"InstanceId": attachments[0]["InstanceId"]}


def _halt_stopped(gw: Gateway, p: Params, body: bytes) -> None:
    """Moto already says "stopped": the caller gets its answer once the processes are down."""
    for instance_id in _listed(p, "InstanceId"):
        with instances.locked(gw.layout, instance_id):
            instances.halt(gw.layout, instance_id, gw.stop_timeout)


def _halt_terminated(gw: Gateway, p: Params, body: bytes) -> None:
    """Moto already freed the volumes; attaching them elsewhere waits for this (same lock), so no
    volume is used by two instances at once."""
    for instance_id in _listed(p, "InstanceId"):
        with instances.locked(gw.layout, instance_id):
            instances.halt(gw.layout, instance_id, gw.stop_timeout)
            disks.sync_devices(gw.layout, instance_id, {})


def _new_volume(gw: Gateway, p: Params, body: bytes) -> None:
    disks.create_volume(gw.layout, _xml_field(body, "volumeId") or "", p.get("SnapshotId"))


def _new_snapshot(gw: Gateway, p: Params, body: bytes) -> None:
    disks.create_snapshot(gw.layout, p["VolumeId"], _xml_field(body, "snapshotId") or "")


def _undo(kind: str) -> Callable[[Gateway, Params, bytes], None]:
    def undo(gw: Gateway, p: Params, body: bytes) -> None:
        ident = _xml_field(body, f"{kind}Id") or ""
        try:
            getattr(gw.ec2, f"delete_{kind}")(**{f"{kind.capitalize()}Id": ident})
        except ClientError as exc:
            log.warning("could not delete %s after its data action failed: %s", ident, exc)
    return undo


def _check_health(gw: Gateway, p: Params) -> dict[str, str] | None:
    """AWS's refusals moto lacks (it answers 500 for both), and the grace period moto ignores: a call
    that respects it leaves an instance still in its grace period as healthy as it was."""
    instance_id, status = p.get("InstanceId", ""), p.get("HealthStatus", "")
    if status not in asg_health.HEALTH_STATUSES:
        raise ApiError("ValidationError", f"HealthStatus {status!r} is not valid; "
                       f"valid instance health states are: [{', '.join(asg_health.HEALTH_STATUSES)}]")
    autoscaling = gw.client("autoscaling")
    members = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    if not members:
        raise ApiError("ValidationError", f"Instance Id not found - No managed instance found for "
                       f"instance ID: {instance_id}")
    member = members[0]
    if status == "Unhealthy" and p.get("ShouldRespectGracePeriod", "true").lower() == "true":
        group = autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[member["AutoScalingGroupName"]])["AutoScalingGroups"][0]
        launched = gw.describe("instance", instance_id)["LaunchTime"]
        if asg_health.in_grace(launched, group.get("HealthCheckGracePeriod"),
                               datetime.now(timezone.utc)):
            return {"HealthStatus": member["HealthStatus"]}
    return None


def _replace_unhealthy(gw: Gateway, p: Params, body: bytes) -> None:
    """Moto only recorded the status: terminate through our own TerminateInstances, whose path halts
    the processes and frees the volumes, and moto's group launches the replacement."""
    if p.get("HealthStatus") != "Unhealthy":
        return
    try:
        gw.ec2.terminate_instances(InstanceIds=[p["InstanceId"]])
    except ClientError as exc:
        raise CloudError(f"terminating unhealthy {p['InstanceId']}: {exc}") from None
    log.info("%s: unhealthy, terminated for its group to replace", p["InstanceId"])


EC2_ACTIONS: dict[str, Action] = {
    "AttachVolume": Action(before=_check_attach, after=lambda gw, p, b: disks.link_device(
        gw.layout, p["InstanceId"], p["Device"], p["VolumeId"])),
    "DetachVolume": Action(before=_complete_detach, after=lambda gw, p, b: disks.unlink_volume(gw.layout, p["VolumeId"])),
    "CreateVolume": Action(after=_new_volume, undo=_undo("volume")),
    "DeleteVolume": Action(after=lambda gw, p, b: disks.delete_dir(gw.layout.volume_dir(p["VolumeId"]))),
    "CreateSnapshot": Action(after=_new_snapshot, undo=_undo("snapshot")),
    "DeleteSnapshot": Action(after=lambda gw, p, b: disks.delete_dir(gw.layout.snapshot_dir(p["SnapshotId"]))),
    "StopInstances": Action(after=_halt_stopped),
    "TerminateInstances": Action(after=_halt_terminated),
}

AUTOSCALING_ACTIONS: dict[str, Action] = {
    # not serialised: its `after` calls TerminateInstances, which takes the lock
    "SetInstanceHealth": Action(before=_check_health, after=_replace_unhealthy, serialised=False),
}
ACTIONS: dict[str, dict[str, Action]] = {"ec2": EC2_ACTIONS, "autoscaling": AUTOSCALING_ACTIONS}
