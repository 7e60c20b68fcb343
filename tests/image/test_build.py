"""The real worker image: image/build.sh makes it with debootstrap, and it boots.

The disk is booted under QEMU (OVMF firmware, software emulation, no network card): through the
standalone GRUB, the cloud kernel and systemd, up to eucadb-setup-db.service running setup_db.py
with the image's own Python and Debian's boto3/cryptography/psycopg2 — it then waits for instance
metadata that this VM has no network to reach, which is as far as a VM without a cloud can go.

Needs debootstrap, dosfstools, mtools, fdisk, qemu-system-x86 and ovmf, and the Debian mirror.
`.ci/run` installs them and sets EUCADB_REQUIRE_IMAGE_TOOLS=1, so in CI these tests run, never skip.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("debootstrap", "mkfs.vfat", "mcopy", "sfdisk", "mkfs.ext4", "qemu-system-x86_64")
OVMF = Path("/usr/share/OVMF")
BOOT_DEADLINE = 420  # seconds of emulated boot before we give up (it takes ~40 here)

pytestmark = pytest.mark.slow


def _missing() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not (OVMF / "OVMF_CODE_4M.fd").exists():
        missing.append("ovmf")
    if os.geteuid() != 0:
        missing.append("root")
    return missing


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    missing = _missing()
    if missing:
        if os.environ.get("EUCADB_REQUIRE_IMAGE_TOOLS") == "1":
            pytest.fail(f"image tests required but missing: {', '.join(missing)}")
        pytest.skip(f"building the image needs {', '.join(missing)} (CI installs them)")
    out = tmp_path_factory.mktemp("image")
    done = subprocess.run(["bash", str(REPO / "image" / "build.sh"), str(out), "--raw", "2"],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"build.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return out


def _members(tarball: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tarball) as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


def _read(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        handle = tar.extractfile("./" + name)
        assert handle is not None, f"{name} is not a regular file in the image"
        return handle.read()


def test_root_filesystem_holds_the_boot_program_and_no_per_instance_secrets(image):
    rootfs = image / "eucadb-db-rootfs.tar.gz"
    members = _members(rootfs)
    assert _read(rootfs, "usr/lib/eucadb/setup_db.py") == (REPO / "scripts" / "setup_db.py").read_bytes()
    assert _read(rootfs, "etc/systemd/system/eucadb-setup-db.service") == \
        (REPO / "image" / "eucadb-setup-db.service").read_bytes()
    wants = "etc/systemd/system/multi-user.target.wants/"
    assert members[wants + "eucadb-setup-db.service"].issym()
    assert wants + "postgresql.service" not in members, "Debian's own PostgreSQL unit must stay off"
    assert "usr/lib/postgresql/15/bin/postgres" in members
    assert not [n for n in members if n.startswith("var/lib/postgresql/15/main")], \
        "the packaging must not create a cluster: ours lives on the data volume"
    for module in ("boto3/__init__.py", "cryptography/__init__.py", "psycopg2/__init__.py"):
        assert "usr/lib/python3/dist-packages/" + module in members
    assert _read(rootfs, "etc/machine-id") == b"", "each instance must get its own machine id"
    keys = [n for n, m in members.items() if m.isfile() and n.startswith(("etc/", "root/", "var/lib/"))
            and n.endswith((".key", ".pem")) and b"PRIVATE KEY" in _read(rootfs, n)]
    assert keys == [], f"private keys baked into the image: {keys}"


def test_disk_is_a_uefi_gpt_disk_with_grub_and_a_labelled_root(image):
    disk = image / "eucadb-db.raw"
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    esp, root = table["partitions"]
    assert esp["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    listing = subprocess.run(["mdir", "-i", f"{disk}@@{esp['start'] * 512}", "::/EFI/BOOT"],
                             capture_output=True, text=True)
    assert "BOOTX64" in listing.stdout, listing.stdout + listing.stderr
    with disk.open("rb") as f:
        f.seek(root["start"] * 512 + 1024)
        superblock = f.read(1024)
    assert superblock[56:58] == b"\x53\xef", "root partition is not ext4"
    assert superblock[120:136].rstrip(b"\0") == b"eucadb-root", "GRUB and fstab find the root by this label"


def test_disk_boots_to_setup_db(image, tmp_path):
    vars_file = tmp_path / "OVMF_VARS.fd"
    shutil.copy(OVMF / "OVMF_VARS_4M.fd", vars_file)
    console = tmp_path / "console.log"
    qemu = subprocess.Popen(
        # software emulation always: where /dev/kvm exists here it may hang (nested), and TCG is
        # the same on every machine
        ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "1024", "-smp", "2",
         "-nographic", "-nic", "none", "-monitor", "none", "-serial", f"file:{console}",
         "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF / 'OVMF_CODE_4M.fd'}",
         "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
         # snapshot=on: writes go to a temporary overlay, the built disk stays pristine
         "-drive", f"file={image / 'eucadb-db.raw'},format=raw,if=virtio,snapshot=on"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    setup_db = re.compile(r"setup_db\[\d+\] INFO metadata latest/user-data: still waiting")
    text = ""
    try:
        deadline = time.monotonic() + BOOT_DEADLINE
        while time.monotonic() < deadline and qemu.poll() is None:
            text = console.read_text(errors="replace") if console.exists() else ""
            if setup_db.search(text):
                break
            time.sleep(2)
    finally:
        qemu.kill()
        qemu.wait()
    tail = text[-4000:]
    assert "root=LABEL=eucadb-root" in text, f"GRUB did not start the kernel:\n{tail}"
    assert re.search(r"Started .*eucadb-setup-db", text), f"systemd did not start our unit:\n{tail}"
    assert setup_db.search(text), f"setup_db.py did not run to its metadata wait:\n{tail}"
    assert "Traceback" not in text, tail
