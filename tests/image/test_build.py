"""The real worker image: image/build.sh makes it with debootstrap, and it boots and serves.

The disk is booted as a VM under QEMU (OVMF firmware, software emulation): through the standalone
GRUB, the cloud kernel and systemd to eucadb-setup-db.service, which runs setup_db.py with the
image's own Python and Debian's boto3/cryptography/psycopg2 against a metadata service and a cloud
API (moto) of this test — reached only through QEMU's forwarding rules, the VM has no other network.

Needs debootstrap, dosfstools, mtools, fdisk, qemu-system-x86 and ovmf, root, and the Debian mirror.
`.ci/run` installs them and sets EUCADB_REQUIRE_IMAGE_TOOLS=1, so in CI these tests run, never skip.
EUCADB_TEST_IMAGE_DIR=OUTDIR reuses a disk build.sh made (for iterating on the tests only).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psycopg2
import pytest
from moto.server import ThreadedMotoServer

from imds import FakeImds, instance_metadata, launched_instance
from pg import free_port

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("debootstrap", "mkfs.vfat", "mcopy", "sfdisk", "mkfs.ext4", "qemu-system-x86_64")
OVMF = Path("/usr/share/OVMF")
BUILD_DEADLINE = 1800  # seconds for debootstrap + apt (about 120 here)
BOOT_DEADLINE = 600  # seconds of emulated boot + first setup before we give up
NET = "169.254.169"        # the VM's user-mode network: the metadata address is inside it
GUEST_IP = f"{NET}.15"     # what slirp's DHCP hands the VM first
CLOUD_IP = f"{NET}.253"    # where the VM finds the cloud's API (forwarded to the moto server);
CLOUD_PORT = 8080          # not 80: QEMU 7.2 cannot have two guestfwd rules on one guest port
DEPLOYMENT = "dvm0test"
RELAY = f"{sys.executable} {Path(__file__).parent / 'relay.py'}"

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
    prebuilt = os.environ.get("EUCADB_TEST_IMAGE_DIR")  # a developer's build.sh OUTDIR, to iterate
    if prebuilt:
        return Path(prebuilt)
    out = tmp_path_factory.mktemp("image")
    # its own process group: on a timeout the whole build (apt, dpkg in the chroot) gets SIGTERM,
    # and build.sh's trap unmounts the chroot's proc, sys and /dev before anything is deleted
    build = subprocess.Popen(["bash", str(REPO / "image" / "build.sh"), str(out), "--raw", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        output, _ = build.communicate(timeout=BUILD_DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(build.pid, signal.SIGTERM)
        output, _ = build.communicate(timeout=120)
        pytest.fail(f"build.sh took over {BUILD_DEADLINE}s:\n{output[-3000:]}")
    assert build.returncode == 0, f"build.sh failed:\n{output[-5000:]}"
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


class Qemu:
    """The image as a VM: OVMF, software emulation, the disk behind a throw-away overlay, a data
    disk, and a user-mode network that reaches nothing but `guestfwd` (restrict=on): the metadata
    service at 169.254.169.254:80 and the cloud at CLOUD_IP:CLOUD_PORT, both loopback servers of this test."""

    def __init__(self, image: Path, work: Path, data_disk: Path, imds_port: int, cloud_port: int,
                 pg_port: int):
        work.mkdir(parents=True, exist_ok=True)
        shutil.copy(OVMF / "OVMF_VARS_4M.fd", work / "OVMF_VARS.fd")
        self.console = work / "console.log"
        net = ",".join([
            "user,id=n0,restrict=on", f"net={NET}.0/24", f"host={NET}.2", f"dhcpstart={GUEST_IP}",
            f"guestfwd=tcp:{NET}.254:80-cmd:{RELAY} {imds_port}",
            f"guestfwd=tcp:{CLOUD_IP}:{CLOUD_PORT}-cmd:{RELAY} {cloud_port}",
            f"hostfwd=tcp:127.0.0.1:{pg_port}-:5432"])
        # software emulation always: where /dev/kvm exists here it may hang (nested), and TCG is
        # the same on every machine
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "1024", "-smp", "2",
             "-nographic", "-monitor", "none", "-serial", f"file:{self.console}",
             "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF / 'OVMF_CODE_4M.fd'}",
             "-drive", f"if=pflash,format=raw,unit=1,file={work / 'OVMF_VARS.fd'}",
             # snapshot=on: writes go to a temporary overlay, the built disk stays pristine
             "-drive", f"file={image / 'eucadb-db.raw'},format=raw,if=virtio,snapshot=on",
             "-drive", f"file={data_disk},format=raw,if=virtio",
             "-netdev", net, "-device", "virtio-net-pci,netdev=n0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def wait_for(self, pattern: str, deadline: float) -> str:
        """The console once `pattern` shows up; fails with the console's tail otherwise."""
        found = re.compile(pattern)
        while time.monotonic() < deadline and self.proc.poll() is None:
            text = self.text()
            if found.search(text):
                return text
            time.sleep(2)
        out = self.proc.stdout.read().decode(errors="replace") if self.proc.poll() is not None else ""
        raise AssertionError(f"no {pattern!r} on the console:\n{self.text()[-5000:]}\n{out}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def cloud():
    """A moto server holding what a launch would have made for the VM: its instance record, the
    data volume, the key secret; and the matching user-data (endpoint as the VM reaches it)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    admin = dict(endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing")
    made = launched_instance(admin, DEPLOYMENT, endpoint_url=f"http://{CLOUD_IP}:{CLOUD_PORT}",
                             allowed_cidrs=[f"{NET}.0/24"], instance_type="t3.small", device="/dev/vdb")
    instance = made["instances"][0]["InstanceId"]
    metadata = instance_metadata(instance, "us-east-1a", GUEST_IP, made["user_data"])
    try:
        yield {**made, "port": port, "metadata": metadata, "instance": instance}
    finally:
        server.stop()


def test_a_vm_from_the_image_serves_tls_only_postgres_and_keeps_its_data(image, cloud, tmp_path):
    """The image as a real VM: GRUB, kernel, systemd, then setup_db.py with Debian's Python modules
    fetches metadata, the key and the sealed credentials, attaches, formats and mounts its data
    disk, and runs PostgreSQL 15 that a client reaches with verify-full — and nothing else. Powered
    off without warning and booted again, it finds its cluster on the data disk and keeps the rows."""
    data_disk = tmp_path / "data.raw"
    with data_disk.open("wb") as f:
        f.truncate(512 << 20)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(cloud["ca"])
    pg_port = free_port()
    tls = dict(host=cloud["dns_name"], hostaddr="127.0.0.1", port=pg_port, sslmode="verify-full",
               sslrootcert=str(ca_file), connect_timeout=10)
    writer, admin = cloud["creds"]["cloudwatch"], cloud["creds"]["admin"]
    consoles = []
    with FakeImds(cloud["metadata"]) as imds:
        for boot in ("first", "second"):
            vm = Qemu(image, tmp_path / boot, data_disk, imds.server.server_address[1], cloud["port"], pg_port)
            try:
                deadline = time.monotonic() + BOOT_DEADLINE
                vm.wait_for(r"Started .*eucadb-setup-db", deadline)
                consoles.append(vm.wait_for(r"setup_db\[\d+\] INFO setup done; exec", deadline))
                conn = _wait_connect(deadline, dbname="eucalyptus_cloudwatch_backend", user=admin["user"],
                                     password=admin["password"], **tls)
                with conn, conn.cursor() as cur:
                    if boot == "first":
                        cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                        assert cur.fetchone()[0] is True
                        cur.execute("SHOW server_version")
                        assert cur.fetchone()[0].startswith("15.")
                        cur.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the power cut')")
                    else:
                        cur.execute("SELECT v FROM kept")
                        assert cur.fetchall() == [("before the power cut",)]
                conn.close()
                _wait_connect(deadline, dbname="eucalyptus_cloudwatch_backend", user=writer["user"],
                              password=writer["password"], **tls).close()
                with pytest.raises(psycopg2.OperationalError):
                    psycopg2.connect(**{**tls, "sslmode": "disable"}, dbname="eucalyptus_cloudwatch_backend",
                                     user=writer["user"], password=writer["password"])
                with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
                    psycopg2.connect(**tls, dbname="eucalyptus_cloudwatch_backend", user=writer["user"],
                                     password="wrong")
            finally:
                vm.stop()  # a power cut, not a shutdown: the second boot must recover from it
    first, second = consoles
    assert "formatting the new, empty data disk /dev/vdb" in first
    assert "formatting" not in second and "reusing the existing cluster" in second
    attachment = cloud["ec2"].describe_volumes(VolumeIds=[cloud["volume"]])["Volumes"][0]["Attachments"]
    assert [(a["InstanceId"], a["Device"]) for a in attachment] == [(cloud["instance"], "/dev/vdb")]
    on_disk = data_disk.read_bytes()
    for text in consoles:
        assert "Traceback" not in text
    for secret in [c["password"] for c in cloud["creds"].values()] + [cloud["key"].splitlines()[1]]:
        assert not any(secret in text for text in consoles), "a secret reached the console"
        assert secret.encode() not in on_disk, "a secret is in plaintext on the data disk"


def _wait_connect(deadline: float, **params):
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return psycopg2.connect(**params)
        except psycopg2.OperationalError as exc:
            last = exc
            time.sleep(2)
    raise AssertionError(f"could not connect: {last}")
