"""`eucadb credentials create|list|delete`: API access keys (SigV4) for the CloudWatch and Reporting
endpoints, each owned by an account (eucadb/services/keys.py)."""
from __future__ import annotations

import click

from eucadb.output import OUTPUT_OPTION, emit
from eucadb.services.keys import AccessKeys


@click.group("credentials")
def credentials_group() -> None:
    """Access keys that sign (SigV4) requests to the CloudWatch and Reporting APIs."""


@credentials_group.command("create")
@click.option("--description", default="", help="what the key is for")
@click.option("--account", default=None, metavar="ID",
              help="12-digit account the key acts for (default: this installation's default account)")
@click.option("--admin", is_flag=True, help="an admin key: reads and reports usage for every account in Reporting "
                   "(in CloudWatch it is its own account, like any key)")
@OUTPUT_OPTION
@click.pass_obj
def credentials_create(app, description: str, account: str | None, admin: bool, output: str) -> None:
    """Issue a key; the secret is shown this once and stored only sealed."""
    issued = AccessKeys(app.store, app.secrets).create(description, account=account, admin=admin)
    emit({"access_key_id": issued.access_key_id, "secret_access_key": issued.secret_access_key,
          "account": issued.account, "admin": issued.admin}, output)


@credentials_group.command("list")
@OUTPUT_OPTION
@click.pass_obj
def credentials_list(app, output: str) -> None:
    """Issued keys with their account and rank (never their secrets)."""
    emit(AccessKeys(app.store, app.secrets).list(), output,
         ["access_key_id", "account", "admin", "description", "created_at"])


@credentials_group.command("delete")
@click.argument("access_key_id")
@click.pass_obj
def credentials_delete(app, access_key_id: str) -> None:
    """Revoke a key (requests signed with it fail within seconds)."""
    AccessKeys(app.store, app.secrets).delete(access_key_id)
    click.echo(f"deleted {access_key_id}")
