"""`eucadb report usage` and `eucadb report accounts …`.

`report usage` asks the running `eucadb serve` (GET /services/Reporting/usage) rather than connecting to
the remote database itself: the server already holds the verified TLS pool, the writer credentials and
the service state, so the CLI needs no database credentials, never builds a second pool, and answers
exactly what the HTTP API answers (503 while reporting is not ENABLED). It signs (SigV4) with an admin
access key eucadb keeps for itself in the store (sealed like every key, never printed), so it reads
every account; `--account` narrows the report. The server renders the report in the format
asked for and streams it; the CLI copies that stream to stdout, so neither side holds a report over all
time in memory. Accounts are local and edited in the store.
"""
from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlencode

import click
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eucadb.errors import ServiceUnavailable, UserError
from eucadb.local_server import base_url, client_context
from eucadb.output import OUTPUT_OPTION, emit
from eucadb.services.reporting.accounts import add_account, add_user, list_accounts
from eucadb.services.keys import REPORT_KEY, AccessKeys
from eucadb.services.reporting.api import CHUNK, PREFIX, SERVICE
from eucadb.services.reporting.events import parse_time
from eucadb.services.reporting.render import FORMATS


@dataclass(frozen=True)
class Signer:
    """Signs requests to the Reporting API as one access key, for the server's region."""

    access_key_id: str
    secret_access_key: str
    region: str

    def headers(self, method: str, url: str) -> dict[str, str]:
        request = AWSRequest(method=method, url=url)
        SigV4Auth(Credentials(self.access_key_id, self.secret_access_key), SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())


def cli_signer(app) -> Signer:
    """The admin key `eucadb report usage` signs with (made on first use)."""
    key = AccessKeys(app.store, app.secrets).own_admin_key(REPORT_KEY, "used by `eucadb report usage`")
    return Signer(key.access_key_id, key.secret_access_key, app.config.serve_region)


def copy_usage(base: str, start: str, end: str, account: str | None, fmt: str, out: BinaryIO,
               signer: Signer, timeout: float = 60, context: ssl.SSLContext | None = None) -> None:
    """The server's report, rendered there as `fmt`, copied to `out` as it arrives; errors become
    one-line eucadb errors (a report cut short after its first bytes too)."""
    params = {"start": start, "end": end, **({"account": account} if account else {}), "format": fmt}
    url = f"{base}{PREFIX}/usage?{urlencode(params)}"
    request = urllib.request.Request(url, headers=signer.headers("GET", url))
    try:
        resp = urllib.request.urlopen(request, timeout=timeout, context=context)
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {err.code} from {base}"
        raise (UserError if 400 <= err.code < 500 else ServiceUnavailable)(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceUnavailable(f"no eucadb server answers at {base} ({getattr(exc, 'reason', exc)}); "
                                 "reports are computed by `eucadb serve`") from None
    with resp:
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (http.client.HTTPException, OSError) as exc:   # IncompleteRead: the stream broke off
                raise ServiceUnavailable(f"the report from {base} was cut short ({type(exc).__name__}); "
                                         "run it again") from None
            if not chunk:
                return
            out.write(chunk)


@click.group("report")
def report_group() -> None:
    """Usage reports and the accounts they are reported for."""


@report_group.command("usage")
@click.option("--start", required=True, help="range start, ISO 8601 with offset (e.g. 2026-01-01T00:00:00Z)")
@click.option("--end", required=True, help="range end (exclusive), ISO 8601 with offset")
@click.option("--account", default=None, help="only this account id")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="csv", show_default=True)
@click.pass_obj
def report_usage(app, start: str, end: str, account: str | None, fmt: str) -> None:
    """Instance-hours by type and GiB-hours by volume/snapshot (and more), per account."""
    begin, finish = parse_time(start, "--start"), parse_time(end, "--end")
    if finish <= begin:
        raise UserError(f"--end {end} must be after --start {start}")
    copy_usage(base_url(app.config), begin.isoformat(), finish.isoformat(), account, fmt,
               click.get_binary_stream("stdout"), cli_signer(app), context=client_context(app.config))


@report_group.group("accounts")
def accounts_group() -> None:
    """Reporting accounts (local): ids that events carry, with names for reports."""


@accounts_group.command("add")
@click.argument("account_id")
@click.argument("name")
@click.pass_obj
def accounts_add(app, account_id: str, name: str) -> None:
    """Register ACCOUNT_ID under NAME."""
    with app.store.session() as session:
        add_account(session, account_id, name)
    click.echo(f"account {account_id} added ({name})")


@accounts_group.command("list")
@OUTPUT_OPTION
@click.pass_obj
def accounts_list(app, output: str) -> None:
    """Every account with its users."""
    with app.store.session() as session:
        rows = list_accounts(session)
    emit(rows, output, ["id", "name", "users", "created_at"])


@accounts_group.command("add-user")
@click.argument("account_id")
@click.argument("user")
@click.pass_obj
def accounts_add_user(app, account_id: str, user: str) -> None:
    """Add USER to ACCOUNT_ID."""
    with app.store.session() as session:
        add_user(session, account_id, user)
    click.echo(f"user {user} added to account {account_id}")
