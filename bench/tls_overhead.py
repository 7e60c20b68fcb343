#!/usr/bin/env python3
"""What TLS termination in `eucadb serve` costs on the boto3 path, side by side on one machine:

  waitress http    the plain-HTTP server `eucadb serve` runs by default
  cheroot http     the server it runs when terminating TLS, without TLS (the server's own share)
  cheroot https    with TLS (a 2048-bit RSA certificate from a test CA; boto3 verify=CA)

Two loads each: PutMetricData batches of 1000 datapoints (ingestion rate) and single-datapoint
PutMetricData calls (request rate, where per-request overhead shows). boto3 keeps its connection
alive, so a handshake is paid once per client, as for a real long-lived client.

    .venv/bin/python bench/tls_overhead.py [--datapoints N] [--calls N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "services" / "cloudwatch"))
sys.path.insert(0, str(ROOT / "bench"))
from cloudwatch_ingest import make_batches  # noqa: E402
from cwharness import start_endpoint  # noqa: E402
from pg import start_pg  # noqa: E402

from cheroot.ssl.builtin import BuiltinSSLAdapter  # noqa: E402

from eucadb.workflow import pki  # noqa: E402


def tls_adapter(home: Path) -> tuple[BuiltinSSLAdapter, Path]:
    ca_key, ca_cert = pki.create_ca("bench CA")
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, "127.0.0.1", days=1)
    (home / "s.crt").write_text(cert)
    (home / "s.key").write_text(key)
    (home / "ca.pem").write_text(ca_cert)
    return BuiltinSSLAdapter(str(home / "s.crt"), str(home / "s.key")), home / "ca.pem"


def measure(endpoint, ca: Path | None, datapoints: int, calls: int) -> tuple[float, float]:
    cw = boto3.client("cloudwatch", endpoint_url=endpoint.url, region_name="us-east-1",
                      verify=str(ca) if ca else None, aws_access_key_id=endpoint.key_id,
                      aws_secret_access_key=endpoint.secret)
    batches = make_batches(datapoints, 100, "Bench/tls")
    cw.put_metric_data(Namespace="Bench/tls", MetricData=batches[0][:1])   # warm up (and handshake)
    started = time.perf_counter()
    for batch in batches:
        cw.put_metric_data(Namespace="Bench/tls", MetricData=batch)
    ingest = datapoints / (time.perf_counter() - started)
    one = [{"MetricName": "Small", "Value": 1.0, "Timestamp": datetime.now(timezone.utc)}]
    started = time.perf_counter()
    for _ in range(calls):
        cw.put_metric_data(Namespace="Bench/tls-small", MetricData=one)
    return ingest, calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datapoints", type=int, default=30_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is shown "
                        "(the machine is shared: the best is the least disturbed)")
    args = parser.parse_args()
    pg = start_pg()
    results: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.rounds):
            for label, kind, tls in (("waitress http", "waitress", False), ("cheroot http", "cheroot", False),
                                     ("cheroot https", "cheroot", True)):
                with tempfile.TemporaryDirectory() as home:
                    adapter, ca = tls_adapter(Path(home)) if tls else (None, None)
                    endpoint, stop = start_endpoint(pg, Path(home), kind, adapter)
                    try:
                        got = measure(endpoint, ca, args.datapoints, args.calls)
                    finally:
                        stop()
                best = results.get(label, (0.0, 0.0))
                results[label] = (max(best[0], got[0]), max(best[1], got[1]))
    finally:
        pg.stop()
    base = results["waitress http"]
    print(f"{args.datapoints} datapoints in batches of 1000; {args.calls} single-datapoint calls; boto3 keep-alive; "
          f"best of {args.rounds} interleaved rounds")
    print(f"{'server':<16}{'datapoints/s':>14}{'vs waitress':>13}{'calls/s':>10}{'vs waitress':>13}")
    for label, (ingest, small) in results.items():
        print(f"{label:<16}{ingest:>14,.0f}{ingest / base[0]:>12.2f}x{small:>10,.0f}{small / base[1]:>12.2f}x")
    plain, tls = results["cheroot http"], results["cheroot https"]
    print(f"TLS on vs off, same server: ingestion {tls[0] / plain[0]:.2f}x, calls {tls[1] / plain[1]:.2f}x")


if __name__ == "__main__":
    main()
