"""The usage report as a document (what the HTTP API returns) and as CSV, JSON or HTML.

The document is the one exchange format: the server builds it, `eucadb report usage` renders it, so the
three formats always show the same numbers.
"""
from __future__ import annotations

import csv
import html
import io
import json
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from eucadb.services.reporting.usage import COLUMNS, UsageRow


def report_doc(rows: Sequence[UsageRow], start: datetime, end: datetime, account: str | None) -> dict[str, Any]:
    return {"start": start.isoformat(), "end": end.isoformat(), "account": account,
            "columns": list(COLUMNS), "rows": [r.as_dict() for r in rows]}


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)


def to_csv(doc: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(doc["rows"])
    return out.getvalue()


def to_html(doc: Mapping[str, Any]) -> str:
    esc = lambda v: html.escape("" if v is None else str(v))  # noqa: E731
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(r.get(c))}</td>" for c in COLUMNS) + "</tr>\n"
                   for r in doc["rows"])
    scope = f" for account {esc(doc['account'])}" if doc.get("account") else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>eucadb usage report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head><body>
<h1>Usage {esc(doc['start'])} — {esc(doc['end'])}{scope}</h1>
<table><tr>{head}</tr>
{body}</table></body></html>
"""


FORMATS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {"csv": to_csv, "json": to_json, "html": to_html}
