"""`eucadb credentials create|list|delete`: API access keys for the CloudWatch endpoint."""
from __future__ import annotations

import click

from eucadb.output import OUTPUT_OPTION, emit
from eucadb.services.cloudwatch.keys import AccessKeys


@click.group("credentials")
def credentials_group() -> None:
    """Access keys that sign (SigV4) requests to the CloudWatch API."""


@credentials_group.command("create")
@click.option("--description", default="", help="what the key is for")
@OUTPUT_OPTION
@click.pass_obj
def credentials_create(app, description: str, output: str) -> None:
    """Issue a key; the secret is shown this once and stored only sealed."""
    issued = AccessKeys(app.store, app.secrets).create(description)
    emit({"access_key_id": issued.access_key_id, "secret_access_key": issued.secret_access_key}, output)


@credentials_group.command("list")
@OUTPUT_OPTION
@click.pass_obj
def credentials_list(app, output: str) -> None:
    """Issued keys (never their secrets)."""
    emit(AccessKeys(app.store, app.secrets).list(), output, ["access_key_id", "description", "created_at"])


@credentials_group.command("delete")
@click.argument("access_key_id")
@click.pass_obj
def credentials_delete(app, access_key_id: str) -> None:
    """Revoke a key (requests signed with it fail within seconds)."""
    AccessKeys(app.store, app.secrets).delete(access_key_id)
    click.echo(f"deleted {access_key_id}")
