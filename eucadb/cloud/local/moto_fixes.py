"""Gaps in moto that the embedded cloud fills, so eucadb's product path stays plain AWS.

Each fix names the moto behaviour it corrects; remove it when moto does the right thing.
"""
from __future__ import annotations

from moto.ec2.models import launch_templates
from moto.ec2.utils import parse_user_data


def _user_data_as_base64() -> None:
    """CreateLaunchTemplateVersion keeps UserData as a plain str, while moto's autoscaling code
    asserts a Base64EncodedString when it replaces an instance from that version (moto 5.2:
    AssertionError → HTTP 500 on TerminateInstances of a group member)."""
    original = launch_templates.LaunchTemplateVersion.__init__
    if getattr(original, "_eucadb_fixed", False):
        return

    def init(self, template, number, data, description):  # type: ignore[no-untyped-def]
        if isinstance(data.get("UserData"), str):
            data = {**data, "UserData": parse_user_data(data["UserData"])}
        original(self, template, number, data, description)

    init._eucadb_fixed = True  # type: ignore[attr-defined]
    launch_templates.LaunchTemplateVersion.__init__ = init


def apply() -> None:
    _user_data_as_base64()
