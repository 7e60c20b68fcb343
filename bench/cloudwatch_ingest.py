#!/usr/bin/env python3
"""PutMetricData ingestion rate, side by side on the same machine and the same table:

  boto3      unmodified boto3 over HTTP (default protocol, JSON 1.0 in boto3 1.44; then RPC v2 CBOR)
  service    the PutMetricData handler called in-process (validation + catalogue + COPY)
  raw COPY   psycopg2 copy_expert of the same rows, pre-rendered, as the writer role
  HTTP       requests/s of PutMetricData over HTTP from 1 and from 16 concurrent boto3 clients (threads in
             a separate process, so the clients do not share the server's interpreter), fixed total count

The service layer and raw COPY run back to back in each round (the machine is shared and noisy);
the figures are the medians over the rounds.

    .venv/bin/python bench/cloudwatch_ingest.py [--datapoints N] [--series S] [--rounds R]
                                                [--requests N] [--request-datums D] [--skip-boto3]
"""
from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import random
import statistics
import sys
import threading
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=480, help="HTTP requests per client count")
    parser.add_argument("--request-datums", type=int, default=20, help="datums per HTTP request")
    parser.add_argument("--skip-boto3", action="store_true", help="only service layer vs raw COPY")
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)   # "Task queue depth" is the point at 16 clients
    pg = start_pg()
    try:
        with tempfile.TemporaryDirectory() as home:
            endpoint, stop = start_endpoint(pg, Path(home))
            try:
                run(endpoint, args)
            finally:
                stop()
    finally:
        pg.stop()


def run(endpoint, args) -> None:
    total, series = args.datapoints, args.series
    rounds: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for label, value in one_round(endpoint, total, series, not args.skip_boto3).items():
            rounds.setdefault(label, []).append(value)
    results = {label: statistics.median(values) for label, values in rounds.items()}
    ratios = [s / r for s, r in zip(rounds["service layer"], rounds["raw psycopg2 COPY"])]
    raw = results["raw psycopg2 COPY"]
    print(f"{total} datapoints, {series} series, batches of {BATCH} (one COPY per batch), "
          f"medians of {args.rounds} rounds")
    print(f"{'path':<28}{'datapoints/s':>14}{'vs raw COPY':>13}")
    for label, value in results.items():
        print(f"{label:<28}{value:>14,.0f}{value / raw:>12.2f}x")
    print(f"service/raw per round: {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")
    if args.requests:
        print(f"HTTP PutMetricData, {args.requests} requests of {args.request_datums} datums per client count, "
              f"waitress with 8 threads, medians of {args.rounds} rounds")
        for protocol in (None, "smithy-rpc-v2-cbor"):
            for clients in (1, 16):
                values = [http_rate(endpoint, protocol, clients, args.requests, args.request_datums)
                          for _ in range(args.rounds)]
                print(f"  {protocol or 'default protocol':<20}{clients:>3} clients  "
                      f"{statistics.median(values):>8,.0f} requests/s   (rounds: "
                      f"{', '.join(f'{v:,.0f}' for v in values)})")


def one_round(endpoint, total: int, series: int, boto: bool) -> dict[str, float]:
    results: dict[str, float] = {}
    if boto:
        for label, protocol in (("boto3 (default protocol)", None), ("boto3 (rpc-v2-cbor)", "smithy-rpc-v2-cbor")):
            client = endpoint.client(protocol)
            batches = make_batches(total, series, f"Bench/{protocol}")
            client.put_metric_data(Namespace=f"Bench/{protocol}", MetricData=batches[0][:1])   # warm up
            results[label] = rate(total, lambda: [client.put_metric_data(Namespace=f"Bench/{protocol}",
                                                                         MetricData=b) for b in batches])
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
    return results


def http_rate(endpoint, protocol: str | None, clients: int, requests: int, datums: int) -> float:
    """PutMetricData requests/s from `clients` boto3 clients (one per thread) in a child process."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_http_clients, args=(endpoint.url, endpoint.key_id, endpoint.secret, protocol,
                                                    clients, requests, datums, out))
    child.start()
    value = out.get(timeout=600)
    child.join()
    if isinstance(value, str):
        raise RuntimeError(f"HTTP clients failed: {value}")
    return value


def _http_clients(url: str, key_id: str, secret: str, protocol: str | None, clients: int, requests: int,
                  datums: int, out) -> None:
    """Child process: build the clients, warm each up, then time `requests` calls shared among them."""
    from cwharness import Endpoint
    endpoint = Endpoint(url, key_id, secret, None, None)
    namespace = f"Bench/http/{protocol}"
    try:
        pool = [endpoint.client(protocol) for _ in range(clients)]
        batch = make_batches(datums, datums, namespace)[0]
        for client in pool:
            client.put_metric_data(Namespace=namespace, MetricData=batch)
        share = [requests // clients + (i < requests % clients) for i in range(clients)]
        errors: list[BaseException] = []

        def work(client, count: int) -> None:
            try:
                for _ in range(count):
                    client.put_metric_data(Namespace=namespace, MetricData=batch)
            except BaseException as exc:  # noqa: BLE001 — reported to the parent, which fails the bench
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(c, n)) for c, n in zip(pool, share)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        out.put(repr(errors[0]) if errors else requests / elapsed)
    except BaseException as exc:  # noqa: BLE001 — reported to the parent
        out.put(repr(exc))


if __name__ == "__main__":
    main()
