"""Rendering command results as an aligned table or as JSON (`--output table|json`)."""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import click

OUTPUT_OPTION = click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="output format")


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def emit(data: Any, output: str, columns: Sequence[str] | None = None) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif isinstance(data, Mapping):
        width = max((len(k) for k in data), default=0)
        click.echo("\n".join(f"{k.ljust(width)}  {v}" for k, v in data.items()))
    else:
        click.echo(table(data, columns or list(data[0].keys()) if data else []))
