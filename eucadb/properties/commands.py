"""`eucadb property …`: list, get, set, reset, history."""
from __future__ import annotations

import click

from eucadb.output import OUTPUT_OPTION, emit


@click.group("property")
def property_group() -> None:
    """Read and change the properties a cloud admin tunes (services.database.*)."""


@property_group.command("list")
@click.argument("prefix", required=False, default="")
@OUTPUT_OPTION
@click.pass_obj
def list_cmd(app, prefix: str, output: str) -> None:
    """List properties, optionally only those whose name starts with PREFIX."""
    rows = [v.as_dict() for v in app.properties.list(prefix)]
    emit(rows, output, ["name", "value", "default", "description"])


@property_group.command("get")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_obj
def get_cmd(app, name: str, output: str) -> None:
    """Show one property: value, default, type and what a change triggers."""
    view = app.properties.get(name)
    emit(view.as_dict(), output)


@property_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.pass_obj
def set_cmd(app, assignments: tuple[str, ...]) -> None:
    """Set one or more properties. All-or-nothing: one bad value and nothing changes."""
    changes = app.properties.set_many(assignments)
    if not changes:
        click.echo("no change: every value was already set")
    for c in changes:
        click.echo(f"{c.name}: {c.old!r} -> {c.new!r} (on change: {c.on_change.value})")


@property_group.command("reset")
@click.argument("name")
@click.pass_obj
def reset_cmd(app, name: str) -> None:
    """Return a property to its default value."""
    changes = app.properties.reset(name)
    for c in changes:
        click.echo(f"{c.name}: {c.old!r} -> {c.new!r} (default)")
    if not changes:
        click.echo(f"{name} already has its default value")


@property_group.command("history")
@click.argument("name", required=False)
@OUTPUT_OPTION
@click.pass_obj
def history_cmd(app, name: str | None, output: str) -> None:
    """Every recorded change (when, who, old -> new), optionally for one property."""
    rows = [h.as_dict() for h in app.properties.history(name)]
    emit(rows, output, ["changed_at", "changed_by", "name", "old", "new"])
