#!/usr/bin/env python3
"""`eucadb image install --file` against the floor any uploader must pay, side by side:

    baseline  read the disk once, SHA-256 it, and copy its non-zero blocks to a local file
    install   the same disk through `image install --file` into the embedded cloud (inspect + digest,
              StartSnapshot, PutSnapshotBlock per non-zero 512 KiB block, CompleteSnapshot,
              RegisterImage) — a fresh cloud per round, so nothing is reused

    .venv/bin/python bench/image_upload.py [--disk OUTDIR/eucadb-db.raw] [--size-mb 256] [--rounds 3]

Without --disk it makes a synthetic disk: an MBR, then `--size-mb` of which every other MiB is
random (so half the blocks are zeros and skipped, as in a real, half-full root filesystem).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from e2e import make_env  # noqa: E402

MIB = 1 << 20
BLOCK = 512 * 1024


def synthetic_disk(path: Path, size_mb: int) -> None:
    mbr = bytearray(512)
    mbr[510:512] = b"\x55\xaa"
    with path.open("wb") as f:
        f.write(bytes(mbr).ljust(MIB, b"\0"))
        for i in range(1, size_mb):
            f.write(os.urandom(MIB) if i % 2 else bytes(MIB))


def baseline(disk: Path, scratch: Path) -> float:
    start = time.perf_counter()
    digest, zero = hashlib.sha256(), bytes(BLOCK)
    with disk.open("rb") as src, scratch.open("wb") as dst:
        for block in iter(lambda: src.read(BLOCK), b""):
            digest.update(block)
            if block != zero[:len(block)]:
                dst.seek(src.tell() - len(block))
                dst.write(block)
    digest.hexdigest()
    return time.perf_counter() - start


def install(disk: Path, tmp: Path) -> float:
    env = make_env(tmp)
    env.run("cloud", "up")
    try:
        start = time.perf_counter()
        env.run("image", "install", "--file", str(disk))
        return time.perf_counter() - start
    finally:
        env.run("cloud", "down", check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk", type=Path)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eucadb-bench-") as work:
        tmp = Path(work)
        disk = args.disk
        if disk is None:
            disk = tmp / "disk.raw"
            synthetic_disk(disk, args.size_mb)
        size = disk.stat().st_size
        with disk.open("rb") as f:
            nonzero = sum(1 for b in iter(lambda: f.read(BLOCK), b"") if b.strip(b"\0"))
        base, inst = [], []
        for n in range(args.rounds):
            base.append(baseline(disk, tmp / "copy.raw"))
            inst.append(install(disk, tmp / f"round{n}"))
        b, i = statistics.median(base), statistics.median(inst)
        print(f"disk: {disk.name}, {size / MIB:.0f} MiB, {nonzero} non-zero blocks of 512 KiB "
              f"({nonzero * BLOCK / MIB:.0f} MiB sent)")
        print(f"baseline (read + sha256 + sparse copy): median {b:.2f}s  ({size / MIB / b:.0f} MiB/s)")
        print(f"image install --file:                   median {i:.2f}s  ({nonzero * BLOCK / MIB / i:.0f} MiB/s sent)")
        print(f"ratio install/baseline: {i / b:.1f}")


if __name__ == "__main__":
    main()
