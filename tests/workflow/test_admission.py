"""Admission: the default allowed CIDR is the front end's own address towards the cloud; an image's
boot mode must be one the instance type supports."""
import boto3
import pytest

from eucadb.app import App
from eucadb.cloud.local import moto_fixes
from eucadb.config import load
from eucadb.errors import WorkflowError
from eucadb.workflow.steps.admission import check_boot_mode, front_end_address
from moto_server import MotoServer


def test_front_end_address_is_the_source_address_towards_the_endpoint():
    assert front_end_address("http://127.0.0.1:5000", "us-east-1") == "127.0.0.1"
    assert front_end_address("http://localhost:5000", "us-east-1").startswith("127.")


def test_a_uefi_image_on_a_bios_only_instance_type_is_refused_before_anything_is_built(home, monkeypatch):
    """BootMode as the cloud reports it: image/build.sh's disk is UEFI, m1.small boots BIOS only."""
    moto_fixes.apply()  # RegisterImage keeps BootMode (as the embedded cloud's moto does)
    with MotoServer() as moto:
        for k, v in moto.env().items():
            monkeypatch.setenv(k, v)
        app = App(load())
        ec2 = boto3.client("ec2", endpoint_url=moto.endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        images = {mode: ec2.register_image(Name=f"img-{mode}", BootMode=mode, Architecture="x86_64",
                                           RootDeviceName="/dev/xvda")["ImageId"]
                  for mode in ("uefi", "legacy-bios", "uefi-preferred")}
        try:
            with pytest.raises(WorkflowError) as refused:
                check_boot_mode(app.facts, images["uefi"], "m1.small")
            assert str(refused.value) == (
                f"services.database.worker.instance_type: m1.small boots legacy-bios only, but image "
                f"{images['uefi']} needs uefi; choose a type that supports uefi (e.g. t3, m5, m6i) or another image")
            check_boot_mode(app.facts, images["uefi"], "t3.small")
            check_boot_mode(app.facts, images["legacy-bios"], "m1.small")
            check_boot_mode(app.facts, images["uefi-preferred"], "m1.small")
        finally:
            app.close()
