"""Datapoints on the remote append-only database (context `cloudwatch_backend`).

Ingestion is one COPY per PutMetricData request through the pool's raw psycopg2 connection: the writer
role may INSERT but not UPDATE, and COPY is the cheapest way to append many rows. Reads aggregate per
period in SQL on the (series_id, ts) index; only percentiles fetch the samples themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterable, Iterator, Sequence

from sqlalchemy import text

from eucadb.services.cloudwatch.limits import UNITS

REMOTE = "cloudwatch_backend"
COLUMNS = ("series_id", "ts", "sample_count", "sum", "minimum", "maximum", "storage_resolution", "unit",
           "samples", "sample_counts")
COPY_SQL = f"COPY metric_datapoints ({', '.join(COLUMNS)}) FROM STDIN"


@dataclass(frozen=True)
class Row:
    series_id: int
    ts: datetime
    sample_count: float
    sum: float
    minimum: float
    maximum: float
    storage_resolution: int
    unit: str
    samples: Sequence[float] | None = None
    sample_counts: Sequence[float] | None = None


@dataclass(frozen=True)
class Bucket:
    start: float            # epoch seconds of the period start
    sample_count: float
    sum: float
    minimum: float
    maximum: float
    unit: str


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_UNIT_TEXT = {u: _escape(u) for u in UNITS}   # the standard units, escaped once


def _array(values: Sequence[float] | None) -> str:
    return "\\N" if values is None else "{" + ",".join([repr(float(v)) for v in values]) + "}"


def row_tail(ts: datetime, storage_resolution: int, unit: str, sample_count: float, sum: float, minimum: float,
             maximum: float, samples: Sequence[float] | None = None,
             sample_counts: Sequence[float] | None = None) -> str:
    """One COPY text line without its leading series id (floats by repr: exact round trip)."""
    return (f"{ts.isoformat()}\t{sample_count!r}\t{sum!r}\t{minimum!r}\t{maximum!r}\t{storage_resolution}\t"
            f"{_UNIT_TEXT.get(unit) or _escape(unit)}\t{_array(samples)}\t{_array(sample_counts)}\n")


def value_tail(ts: datetime, storage_resolution: int, unit: str, value: float) -> str:
    """`row_tail` of a single-Value datum (the common case): one repr for its four columns."""
    r = repr(value)
    sample = r if type(value) is float else repr(float(value))
    return (f"{ts.isoformat()}\t1.0\t{r}\t{r}\t{r}\t{storage_resolution}\t"
            f"{_UNIT_TEXT.get(unit) or _escape(unit)}\t{{{sample}}}\t\\N\n")


def _lines(rows: Iterable[Row]) -> Iterator[str]:
    for r in rows:
        yield f"{r.series_id}\t" + row_tail(r.ts, r.storage_resolution, r.unit, r.sample_count, r.sum, r.minimum,
                                            r.maximum, r.samples, r.sample_counts)


def copy_text(rows: Iterable[Row]) -> str:
    """Rows in COPY text format."""
    return "".join(_lines(rows))


def copy_rows(pools, rows: Sequence[Row]) -> None:
    if rows:
        copy_lines(pools, _lines(rows))


CHUNK_LINES = 250   # ~25 KB of COPY text per read: the server parses one chunk while the next is rendered


class LineStream:
    """A file for psycopg2's copy_expert that renders COPY lines as it is read, so rendering overlaps
    the server's work on the chunks already sent instead of preceding all of it."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)

    def read(self, size: int = -1) -> str:
        return "".join(islice(self._lines, CHUNK_LINES))


def copy_lines(pools, lines: Iterable[str]) -> None:
    """Append COPY lines, rendered while they stream, in one transaction (nothing lands on error)."""
    conn = pools.engine(REMOTE).raw_connection()
    try:
        with conn.cursor() as cur:
            cur.copy_expert(COPY_SQL, LineStream(lines))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


_WHERE = "series_id = :sid AND ts >= :start AND ts < :end AND (CAST(:unit AS text) IS NULL OR unit = :unit)"
_BUCKET = "floor(extract(epoch FROM ts) / :period)::bigint"

# Per period and unit: GetMetricStatistics without Unit answers one datapoint per unit stored.
AGGREGATE_SQL = text(f"""
    SELECT {_BUCKET} AS b, unit, sum(sample_count), sum(sum), min(minimum), max(maximum)
    FROM metric_datapoints WHERE {_WHERE} GROUP BY b, unit ORDER BY b, unit""")

SAMPLES_SQL = text(f"""
    SELECT {_BUCKET} AS b, unit, samples, sample_counts
    FROM metric_datapoints WHERE {_WHERE} AND samples IS NOT NULL""")


def aggregate(pools, series_id: int, start: datetime, end: datetime, period: int,
              unit: str | None) -> list[Bucket]:
    args = {"sid": series_id, "start": start, "end": end, "period": period, "unit": unit}
    with pools.session(REMOTE) as s:
        rows = s.execute(AGGREGATE_SQL, args).all()
    return [Bucket(b * period, c, sm, lo, hi, u) for b, u, c, sm, lo, hi in rows]


def merge_units(buckets: list[Bucket]) -> list[Bucket]:
    """One bucket per period over all units (GetMetricData and alarms read a metric as one series)."""
    out: dict[float, Bucket] = {}
    for b in buckets:
        had = out.get(b.start)
        out[b.start] = b if had is None else Bucket(
            b.start, had.sample_count + b.sample_count, had.sum + b.sum, min(had.minimum, b.minimum),
            max(had.maximum, b.maximum), min(had.unit, b.unit))
    return list(out.values())


def samples(pools, series_id: int, start: datetime, end: datetime, period: int,
            unit: str | None) -> dict[tuple[float, str], list[tuple[float, float]]]:
    """Per (period start, unit): the (value, count) pairs stored for it."""
    args = {"sid": series_id, "start": start, "end": end, "period": period, "unit": unit}
    out: dict[tuple[float, str], list[tuple[float, float]]] = {}
    with pools.session(REMOTE) as s:
        for b, u, values, counts in s.execute(SAMPLES_SQL, args):
            out.setdefault((b * period, u), []).extend(zip(values, counts or [1.0] * len(values)))
    return out
