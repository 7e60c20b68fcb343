"""Test knob: the embedded cloud answers what AWS answers while it is eventually consistent.

Moto is consistent the instant it answers, so the code paths that ride out AWS's propagation delays
(an instance profile a new launch template names, a secret name a force delete has not freed yet)
would never run here. `EUCADB_EMBEDDED_FAULTS` — read once by the API process — lists errors to
answer before letting requests through:

    EUCADB_EMBEDDED_FAULTS='[{"action": "CreateAutoScalingGroup", "code": "ValidationError",
                              "message": "You must use a valid fully-formed launch template.", "times": 2}]'

Each rule answers its error to the first `times` requests of that action, then steps aside.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import parse_qs

from eucadb.errors import ConfigError

ENV = "EUCADB_EMBEDDED_FAULTS"
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error",
           503: "Service Unavailable"}


@dataclass
class Fault:
    action: str
    code: str
    message: str
    times: int = 1
    status: int = 400


class Faults:
    def __init__(self, rules: list[Fault]):
        self.rules = rules
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "Faults":
        raw = os.environ.get(ENV, "")
        try:
            return cls([Fault(**rule) for rule in json.loads(raw)] if raw else [])
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{ENV}: expected a JSON list of {{action, code, message, times}}: {exc}") from None

    def __bool__(self) -> bool:
        return bool(self.rules)

    def take(self, action: str) -> Fault | None:
        """The fault to answer to this request, if one is still armed for its action."""
        with self._lock:
            for rule in self.rules:
                if rule.action == action and rule.times > 0:
                    rule.times -= 1
                    return rule
        return None


def request_action(environ: dict, body: bytes) -> tuple[str, str]:
    """(protocol, action) of an AWS request: JSON protocols name it in X-Amz-Target, Query in the body."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return "json", target.rsplit(".", 1)[-1]
    action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return "query", action


def error_response(protocol: str, service: str, code: str, message: str,
                   status: int = 400) -> tuple[str, str, bytes]:
    """(status line, content type, body) of an AWS error in the service's own wire format."""
    line = f"{status} {REASONS.get(status, 'Error')}"
    if protocol == "json":
        return line, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()
    if service == "ec2":  # EC2's Query errors have their own shape
        root = ET.Element("Response")
        error = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
        ET.SubElement(root, "RequestID").text = str(uuid.uuid4())
    else:
        root = ET.Element("ErrorResponse")
        error = ET.SubElement(root, "Error")
        ET.SubElement(error, "Type").text = "Sender" if status < 500 else "Receiver"
        ET.SubElement(root, "RequestId").text = str(uuid.uuid4())
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    return line, "text/xml", ET.tostring(root, xml_declaration=True, encoding="UTF-8")
