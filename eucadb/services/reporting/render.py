"""The usage report as a document (what the HTTP API returns) and as CSV, JSON or HTML.

The document is the one exchange format: the server builds it, `eucadb report usage` renders it, so the
three formats always show the same numbers. Each format is written as a stream of text pieces from an
iterable of rows, so the server can send a report over all time without holding it (`STREAMS`); the
whole-string renderers (`FORMATS`) join the same pieces.
"""
from __future__ import annotations

import csv
import html
import io
import json
import textwrap
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping

from eucadb.services.reporting.usage import COLUMNS, UsageRow

ROWS = "\x00rows\x00"   # stands for the rows in the JSON head; ids are printable, so never collide


def report_head(start: datetime, end: datetime, account: str | None) -> dict[str, Any]:
    """Everything of the document but its rows."""
    return {"start": start.isoformat(), "end": end.isoformat(), "account": account, "columns": list(COLUMNS)}


def report_doc(rows: Iterable[UsageRow], start: datetime, end: datetime, account: str | None) -> dict[str, Any]:
    return {**report_head(start, end, account), "rows": [r.as_dict() for r in rows]}


def json_pieces(head: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Exactly `json.dumps(doc, indent=2, sort_keys=True)`, written row by row."""
    before, after = json.dumps({**head, "rows": ROWS}, indent=2, sort_keys=True).split(json.dumps(ROWS))
    yield before + "["
    separator = "\n"
    for row in rows:
        yield separator + textwrap.indent(json.dumps(row, indent=2, sort_keys=True), "    ")
        separator = ",\n"
    yield ("]" if separator == "\n" else "\n  ]") + after


def csv_pieces(head: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def html_pieces(head: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    esc = lambda v: html.escape("" if v is None else str(v))  # noqa: E731
    columns = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    scope = f" for account {esc(head['account'])}" if head.get("account") else ""
    yield f"""<!doctype html><html><head><meta charset="utf-8"><title>eucadb usage report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head><body>
<h1>Usage {esc(head['start'])} — {esc(head['end'])}{scope}</h1>
<table><tr>{columns}</tr>
"""
    for r in rows:
        yield "<tr>" + "".join(f"<td>{esc(r.get(c))}</td>" for c in COLUMNS) + "</tr>\n"
    yield "</table></body></html>\n"


Pieces = Callable[[Mapping[str, Any], Iterable[Mapping[str, Any]]], Iterator[str]]
STREAMS: Mapping[str, Pieces] = {"csv": csv_pieces, "json": json_pieces, "html": html_pieces}


def _whole(pieces: Pieces) -> Callable[[Mapping[str, Any]], str]:
    return lambda doc: "".join(pieces(doc, doc["rows"]))


FORMATS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {name: _whole(p) for name, p in STREAMS.items()}
