#!/usr/bin/env bash
# Builds the eucadb database worker image for a real cloud: Debian 12 with PostgreSQL 15, the Python
# modules setup_db.py needs (from Debian), setup_db.py itself and the systemd unit that runs it at
# boot. Outputs, in OUTDIR:
#   eucadb-db-rootfs.tar.gz   the root filesystem (for container-style or custom bundling)
#   eucadb-db.raw             with --raw SIZE_GB: a UEFI-bootable disk (GPT: EFI system partition
#                             with a standalone GRUB, ext4 root labelled eucadb-root), the form
#                             `eucadb image install --file` uploads (RegisterImage BootMode=uefi)
#
#   sudo image/build.sh OUTDIR [--raw SIZE_GB]
#
# Needs root with the right to mount (proc, sys and /dev bind mounts for the chroot: a privileged
# container works) and debootstrap; --raw also needs e2fsprogs, dosfstools, mtools and fdisk
# (sfdisk). The disk itself is never loop-mounted: it is assembled from files.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR [--raw SIZE_GB]}
raw_gb=""
if [ "${2:-}" = "--raw" ]; then raw_gb=${3:?--raw needs a size in GB}; fi
if [ -n "$raw_gb" ] && ! [[ "$raw_gb" =~ ^[0-9]+$ && "$raw_gb" -ge 2 ]]; then
  echo "build.sh: --raw SIZE_GB must be a whole number of at least 2 (got '$raw_gb')" >&2; exit 2
fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
root=$work/root
# Never delete through a mount: /dev is the host's own. Whatever cannot be unmounted stays, named.
cleanup() {
  for m in dev/pts dev sys proc; do
    mountpoint -q "$root/$m" 2>/dev/null && { umount "$root/$m" || umount -l "$root/$m" || true; }
  done
  if grep -q " $work/" /proc/mounts; then
    echo "build.sh: mounts under $work remain; not deleting it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

# debootstrap cannot resolve virtual packages (python3-cryptography needs one), so it lays down
# the base system only and apt installs the rest inside it.
debootstrap --variant=minbase bookworm "$root" "$mirror"
mount -t proc proc "$root/proc"; mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"; mount --bind /dev/pts "$root/dev/pts"
# no daemon may start inside the build, and PostgreSQL's packaging must not create its own cluster:
# ours lives on the data volume and is made by setup_db.py at first boot.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/etc/postgresql-common/createcluster.d"
echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.d/eucadb.conf"
in_root apt-get update -q
in_root apt-get install -y -q --no-install-recommends \
  systemd-sysv udev dbus e2fsprogs util-linux ca-certificates chrony ifupdown isc-dhcp-client \
  linux-image-cloud-amd64 initramfs-tools grub-efi-amd64-bin \
  postgresql-15 python3 python3-boto3 python3-cryptography python3-psycopg2 python3-dateutil python3-pip
# Barman Cloud (WAL archiving, base backups) from PyPI, not bookworm's older barman-cli-cloud: the
# version the embedded cloud's tests run, with the clients' --addressing-style (path-style S3 on
# Eucalyptus). Its dependencies are the Debian packages above (--no-deps): apt owns boto3, psycopg2.
# The wheel is fetched by the build host's pip (its index, proxy and CA settings), then installed
# from the file: the fresh root has none of those, so a pip download from inside it can fail.
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$root/tmp/wheels" 'barman==3.19.1'
in_root sh -c 'pip install --no-deps --break-system-packages --no-cache-dir --no-index /tmp/wheels/barman-*.whl'
rm -rf "$root/tmp/wheels"
rm -f "$root/usr/sbin/policy-rc.d"

install -D -m 0755 "$here/../scripts/setup_db.py" "$root/usr/lib/eucadb/setup_db.py"
install -D -m 0644 "$here/eucadb-setup-db.service" "$root/etc/systemd/system/eucadb-setup-db.service"
in_root systemctl disable postgresql.service
in_root systemctl enable eucadb-setup-db.service chrony.service
mkdir -p "$root/var/lib/eucadb/data"
echo "eucadb-db" > "$root/etc/hostname"
echo "LABEL=eucadb-root / ext4 defaults,noatime 0 1" > "$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n' > "$root/etc/network/interfaces"
# what must differ per instance is made at first boot, not baked into every copy of the image:
# systemd generates the machine id, make-ssl-cert a snakeoil pair if anything asks for it
: > "$root/etc/machine-id"; rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root/etc/ssl/private/ssl-cert-snakeoil.key" "$root/etc/ssl/certs/ssl-cert-snakeoil.pem"
in_root apt-get clean
rm -rf "$root/var/lib/apt/lists/"*
for m in dev/pts dev sys proc; do umount "$root/$m"; done

mkdir -p "$out"
tar --numeric-owner -C "$root" -czf "$out/eucadb-db-rootfs.tar.gz" .
echo "root filesystem: $out/eucadb-db-rootfs.tar.gz"
[ -n "$raw_gb" ] || exit 0

# A standalone GRUB (its modules and config inside the EFI binary) finds the root by label, so the
# ESP needs nothing but BOOTX64.EFI and no grub-install against a block device is needed.
cat > "$work/grub.cfg" <<'EOF'
search --no-floppy --label eucadb-root --set root
linux /vmlinuz root=LABEL=eucadb-root ro console=tty0 console=ttyS0,115200n8 net.ifnames=0
initrd /initrd.img
boot
EOF
cp "$work/grub.cfg" "$root/tmp/grub.cfg"
in_root grub-mkstandalone -O x86_64-efi -o /tmp/BOOTX64.EFI \
  --modules="part_gpt ext2 search_label linux normal" "boot/grub/grub.cfg=/tmp/grub.cfg"
mv "$root/tmp/BOOTX64.EFI" "$work/BOOTX64.EFI"; rm -f "$root/tmp/grub.cfg"

esp_mb=64; disk_mb=$((raw_gb * 1024)); root_mb=$((disk_mb - esp_mb - 2))
mkfs.vfat -C -F 32 -n EFI "$work/esp.img" $((esp_mb * 1024)) >/dev/null
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
truncate -s "${root_mb}M" "$work/root.img"
# the image's own mke2fs defaults: a newer host could enable ext4 features bookworm's GRUB cannot read
MKE2FS_CONFIG="$root/etc/mke2fs.conf" mkfs.ext4 -q -L eucadb-root -d "$root" "$work/root.img"

disk=$out/eucadb-db.raw
rm -f "$disk"; truncate -s "${disk_mb}M" "$disk"
sfdisk -q "$disk" <<EOF
label: gpt
start=1MiB, size=${esp_mb}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=EFI
start=$((esp_mb + 1))MiB, size=${root_mb}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
EOF
dd if="$work/esp.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$disk" bs=1M seek=$((esp_mb + 1)) conv=notrunc,sparse status=none
echo "raw disk: $disk"
