"""`eucadb image install --local`: register the local DB image in the embedded cloud.

An image here is an AMI record (RegisterImage, tagged `eucadb:image=db`) plus a directory keyed by
its id holding what the instance runs: `setup_db.py` (copied, so the image does not change under a
running instance) and `runtime/` (the Python it runs with). Installing the same content twice answers
the same image id (tag `eucadb:image-digest`).
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from eucadb.cloud.images import ensure_image, image_name
from eucadb.cloud.local.layout import Layout
from eucadb.cloud.local.runtime import build_runtime
from eucadb.errors import UserError
from eucadb.resources import shipped

# scripts/setup_db.py, shipped in the package (eucadb/boot/setup_db.py is a symlink to it in a
# checkout, a copy of its content in a wheel)
BOOT_PROGRAM = ("eucadb", "boot/setup_db.py")


def install_local_image(app, boot_program: Path | None = None) -> str:
    """Register (or find) the local DB image and return its id. `boot_program` defaults to the
    shipped scripts/setup_db.py; tests pass their own program honouring the same contract."""
    if boot_program is not None:
        return _install(app, Path(boot_program))
    with shipped(*BOOT_PROGRAM) as source:
        return _install(app, source)


def _install(app, source: Path) -> str:
    if not source.is_file():
        raise UserError(f"boot program {source} not found")
    layout = Layout.from_config(app.config)
    layout.ensure()
    runtime = build_runtime(layout, app.config["cloud.instance_python"])
    register = {"Architecture": "x86_64", "RootDeviceName": "/dev/sda1", "VirtualizationType": "hvm",
                "BootMode": "uefi-preferred",  # a process, not a VM: any instance type runs it
                "Description": "eucadb database image (embedded cloud)"}
    # what RegisterImage says is part of the content: an image registered with other attributes
    # (an older eucadb's) is not reused
    digest = hashlib.sha256(source.read_bytes() + str(runtime).encode() +
                            repr(sorted(register.items())).encode()).hexdigest()[:16]
    image_id = ensure_image(app.clients, image_name("local", digest), digest, register)
    _populate(layout.image_dir(image_id), source, runtime)
    return image_id


def _populate(image_dir: Path, source: Path, runtime: Path) -> None:
    image_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(image_dir, 0o755)
    program = image_dir / "setup_db.py"
    tmp = program.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, program)
    link = image_dir / "runtime"
    if not (link.is_symlink() and Path(os.readlink(link)) == runtime):
        tmp_link = image_dir / "runtime.tmp"
        tmp_link.unlink(missing_ok=True)
        os.symlink(runtime, tmp_link)
        os.replace(tmp_link, link)
