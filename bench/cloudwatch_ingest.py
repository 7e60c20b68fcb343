#!/usr/bin/env python3
"""PutMetricData ingestion rate, side by side on the same machine and the same table:

  boto3      unmodified boto3 over HTTP (default protocol, JSON 1.0 in boto3 1.44; then RPC v2 CBOR)
  service    the PutMetricData handler called in-process (validation + catalogue + COPY)
  raw COPY   psycopg2 copy_expert of the same rows, pre-rendered, as the writer role

    .venv/bin/python bench/cloudwatch_ingest.py [--datapoints N] [--series S]
"""
from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "services" / "cloudwatch"))
from cwharness import start_endpoint  # noqa: E402
from pg import start_pg  # noqa: E402

from eucadb.services.cloudwatch import datapoints  # noqa: E402
from eucadb.services.cloudwatch.operations import OPERATIONS  # noqa: E402

BATCH = 1000


def make_batches(total: int, series: int, namespace: str) -> list[list[dict]]:
    rnd = random.Random(1)
    now = datetime.now(timezone.utc) - timedelta(hours=1)
    datums = [{"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": f"h{i % series}"}],
               "Value": rnd.random() * 100, "Timestamp": now + timedelta(milliseconds=i)} for i in range(total)]
    return [datums[i:i + BATCH] for i in range(0, total, BATCH)]


def rate(total: int, fn) -> float:
    started = time.perf_counter()
    fn()
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datapoints", type=int, default=100_000)
    parser.add_argument("--series", type=int, default=100)
    args = parser.parse_args()
    pg = start_pg()
    try:
        with tempfile.TemporaryDirectory() as home:
            endpoint, stop = start_endpoint(pg, Path(home))
            try:
                run(endpoint, args.datapoints, args.series)
            finally:
                stop()
    finally:
        pg.stop()


def run(endpoint, total: int, series: int) -> None:
    results: dict[str, float] = {}
    for label, protocol in (("boto3 (default protocol)", None), ("boto3 (rpc-v2-cbor)", "smithy-rpc-v2-cbor")):
        client = endpoint.client(protocol)
        batches = make_batches(total, series, f"Bench/{protocol}")
        client.put_metric_data(Namespace=f"Bench/{protocol}", MetricData=batches[0][:1])   # warm up
        results[label] = rate(total, lambda: [client.put_metric_data(Namespace=f"Bench/{protocol}", MetricData=b)
                                              for b in batches])
    batches = make_batches(total, series, "Bench/service")
    put = OPERATIONS["PutMetricData"]
    account = endpoint.account   # each call as the API makes it: on the view of the signing key's account
    put(endpoint.service.for_account(account), {"Namespace": "Bench/service", "MetricData": batches[0][:1]})
    results["service layer"] = rate(total, lambda: [put(endpoint.service.for_account(account), {
        "Namespace": "Bench/service", "MetricData": b}) for b in batches])
    rows = [[datapoints.Row(series_id=1, ts=d["Timestamp"], sample_count=1.0, sum=d["Value"], minimum=d["Value"],
                            maximum=d["Value"], storage_resolution=60, unit="None", samples=[d["Value"]])
             for d in b] for b in batches]
    rendered = [datapoints.copy_text(r) for r in rows]
    engine = endpoint.service.pools.engine(datapoints.REMOTE)

    def raw_copy() -> None:
        conn = engine.raw_connection()
        try:
            for text in rendered:
                with conn.cursor() as cur:
                    cur.copy_expert(datapoints.COPY_SQL, io.StringIO(text))
                conn.commit()
        finally:
            conn.close()
    results["raw psycopg2 COPY"] = rate(total, raw_copy)
    raw = results["raw psycopg2 COPY"]
    print(f"{total} datapoints, {series} series, batches of {BATCH} (one COPY per batch)")
    print(f"{'path':<28}{'datapoints/s':>14}{'vs raw COPY':>13}")
    for label, value in results.items():
        print(f"{label:<28}{value:>14,.0f}{value / raw:>12.2f}x")


if __name__ == "__main__":
    main()
