#!/usr/bin/env bash
# Builds the eucadb database worker image for a real cloud: a Debian 12 root filesystem with
# PostgreSQL 15, the Python modules setup_db.py needs (from Debian), setup_db.py itself and the
# systemd unit that runs it at boot. Output: a root filesystem tarball, and with --raw a raw disk
# image (ext4, one partition-less filesystem, the form Eucalyptus' EMI bundling and AWS ImportImage
# accept after conversion).
#
#   sudo image/build.sh OUTDIR [--raw SIZE_GB]      (needs debootstrap; e2fsprogs for --raw)
#
# Then register it: `eucadb image install --file OUTDIR/eucadb-db.raw` on the target cloud.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR [--raw SIZE_GB]}
raw_gb=""
if [ "${2:-}" = "--raw" ]; then raw_gb=${3:?--raw needs a size in GB}; fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'umount -R "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT

debootstrap --variant=minbase \
  --include=systemd-sysv,udev,e2fsprogs,util-linux,ca-certificates,chrony,cloud-guest-utils,postgresql-15,python3,python3-boto3,python3-cryptography,python3-psycopg2 \
  bookworm "$root" http://deb.debian.org/debian

install -D -m 0755 "$here/../scripts/setup_db.py" "$root/usr/lib/eucadb/setup_db.py"
install -D -m 0644 "$here/eucadb-setup-db.service" "$root/etc/systemd/system/eucadb-setup-db.service"
# The Debian package's own cluster and unit would compete with ours for port 5432 and the data.
chroot "$root" systemctl disable postgresql.service
chroot "$root" pg_dropcluster --stop 15 main || true
chroot "$root" systemctl enable eucadb-setup-db.service chrony.service
mkdir -p "$root/var/lib/eucadb/data"
echo "eucadb-db" > "$root/etc/hostname"

mkdir -p "$out"
tar --numeric-owner -C "$root" -czf "$out/eucadb-db-rootfs.tar.gz" .
echo "root filesystem: $out/eucadb-db-rootfs.tar.gz"
if [ -n "$raw_gb" ]; then
  truncate -s "${raw_gb}G" "$out/eucadb-db.raw"
  mkfs.ext4 -q -L eucadb-root -d "$root" "$out/eucadb-db.raw"
  echo "raw disk: $out/eucadb-db.raw"
fi
