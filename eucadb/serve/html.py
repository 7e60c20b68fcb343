"""The HTML face of /status: every value a table cell, escaped; nested structures become tables."""
from __future__ import annotations

import html
from typing import Any, Iterable

STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
         "td,th{padding:2px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}")


def cell(value: Any) -> str:
    """A value as HTML: a dict is a key/value table, a list of dicts a table, scalars escaped text."""
    if isinstance(value, dict):
        return kv_table(value)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            return table(value)
        return ", ".join(cell(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(value))


def kv_table(doc: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{cell(v)}</td></tr>" for k, v in doc.items())
    return f"<table>{rows}</table>"


def table(rows: Iterable[dict], columns: list[str] | None = None) -> str:
    rows = list(rows)
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(doc: dict) -> str:
    server = doc.get("server") or {}
    if server.get("running"):
        title = "ready" if doc["ready"] else "not ready"
        banner = cell((doc.get("loop") or {}).get("sentence"))
    else:
        title = "server not running"
        banner = (f"No server answers at {cell(server.get('url'))}; the states below are the last recorded, "
                  f"as of {cell(server.get('states_as_of'))} ({cell(server.get('as_of_source'))}).")
    run = doc.get("workflow") or {}
    sections = [
        ("Services", table(doc["services"].values(), ["name", "state", "reason", "since", "admin_disabled_by"])),
        ("Endpoints", table([{"service": n, "url": u} for n, u in doc.get("endpoints", {}).items()])),
        ("Unmet preconditions", cell(doc.get("unmet_preconditions") or [])),
        ("Database", cell(doc.get("database"))),
        ("Instance", cell(doc.get("instance"))),
        ("Pools", table([{"context": n, **s} for n, s in (doc.get("pools") or {}).items()])),
        (f"Workflow {cell(run.get('kind'))} {cell(run.get('state'))}",
         table(run.get("steps") or [], ["step", "state", "seconds", "error"])),
    ]
    body = "".join(f"<h2>{name}</h2>{content}" for name, content in sections if content)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>eucadb status</title>'
            f"<style>{STYLE}</style></head><body>"
            f"<h1>eucadb {cell(doc['deployment'])} — {title}</h1><p>{banner}</p>{body}</body></html>")
