"""Who may use the Reporting API (the attacker test of the issue: any local user could POST usage for
any account and read every account's usage). Through a real waitress server and a real database:
unsigned → 403; a key writes and reads only its own account, all-or-nothing per batch; an admin key
reads all and writes any; a signature for another region is refused; curl's --aws-sigv4 works as the
README shows it."""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from eucadb.services.reporting.api import PREFIX
from reporting_scenario import END, START, ev
from signing import signed_headers

A, B = "111111111111", "222222222222"


def call(base: str, method: str, path: str, key, body: bytes | None = None, region: str = "us-east-1"):
    url = base + PREFIX + path
    req = urllib.request.Request(url, data=body, method=method, headers=signed_headers(
        key, method, url, body, region=region, headers={"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], json.loads(err.read())


def volume(account: str, rid: str, size: int = 10) -> dict:
    return ev("2026-01-01T00:00:00Z", account, "volume", rid, "create", size_gib=size)


def usage(account: str | None = None) -> str:
    return "/usage?" + urlencode({"start": START, "end": END, **({"account": account} if account else {})})


def accounts_in(doc: dict) -> set[str]:
    return {r["account"] for r in doc["rows"]}


@pytest.fixture
def base(service, serve_thread, make_api) -> str:
    return serve_thread(make_api(service))


@pytest.fixture
def key_a(keys):
    return keys.create("a", account=A)


@pytest.fixture
def key_b(keys):
    return keys.create("b", account=B)


@pytest.mark.parametrize("method, path", [("POST", "/events"), ("GET", usage()), ("GET", "/nothing")])
def test_unsigned_requests_are_403_with_the_json_error(base, clean_remote, method, path):
    body = json.dumps([volume(A, "vol-1")]).encode() if method == "POST" else None
    code, ctype, doc = call(base, method, path, None, body)
    assert (code, ctype, doc["error"]["code"]) == (403, "application/json", "MissingAuthenticationToken")


def test_a_key_writes_and_reads_only_its_own_account(base, key_a, key_b, admin_key):
    assert call(base, "POST", "/events", key_a, json.dumps([volume(A, "vol-a")]).encode())[0] == 200
    assert call(base, "POST", "/events", key_b, json.dumps([volume(B, "vol-b")]).encode())[0] == 200
    # forging B's usage with A's key: refused whole, even the event of A's own in the same batch
    forged = json.dumps([volume(A, "vol-a2"), volume(B, "vol-forged", 743_999_256)]).encode()
    code, _, doc = call(base, "POST", "/events", key_a, forged)
    assert (code, doc["error"]["code"]) == (403, "AccessDenied")
    assert "event 1: account '222222222222'" in doc["error"]["message"]
    # reading: A's own (by default and by name); B's is refused
    for path in (usage(), usage(A)):
        code, _, doc = call(base, "GET", path, key_a)
        assert code == 200 and accounts_in(doc) == {A} and [r["item"] for r in doc["rows"]] == ["vol-a"]
    code, _, doc = call(base, "GET", usage(B), key_a)
    assert (code, doc["error"]["code"]) == (403, "AccessDenied")
    # the admin key reads all: nothing of the refused batch was written
    code, _, doc = call(base, "GET", usage(), admin_key)
    assert code == 200 and sorted(r["item"] for r in doc["rows"]) == ["vol-a", "vol-b"]


def test_an_admin_key_writes_for_any_account(base, admin_key):
    body = json.dumps([volume(A, "vol-a"), volume(B, "vol-b")]).encode()
    assert call(base, "POST", "/events", admin_key, body)[:1] == (200,)
    code, _, doc = call(base, "GET", usage(B), admin_key)
    assert code == 200 and accounts_in(doc) == {B}


def test_bad_signatures_and_other_regions_are_refused(base, key_a, keys):
    # AWS's answer to a credential scoped to another region (Query-protocol services such as STS/IAM:
    # SignatureDoesNotMatch, "Credential should be scoped to a valid region, not 'ap-southeast-2'." —
    # cognitect-labs/aws-api#27, JuliaCloud/AWS.jl#565)
    code, _, doc = call(base, "GET", usage(), key_a, region="eu-west-1")
    assert (code, doc["error"]["code"]) == (403, "SignatureDoesNotMatch")
    assert doc["error"]["message"] == "Credential should be scoped to a valid region, not 'eu-west-1'."
    wrong = type(key_a)(key_a.access_key_id, "not-the-secret", A)
    assert call(base, "GET", usage(), wrong)[2]["error"]["code"] == "SignatureDoesNotMatch"
    keys.delete(key_a.access_key_id)
    assert call(base, "GET", usage(), key_a)[2]["error"]["code"] == "InvalidClientTokenId"


def test_curl_aws_sigv4_as_the_readme_shows(base, key_a):
    user = f"{key_a.access_key_id}:{key_a.secret_access_key}"
    sign = ["--aws-sigv4", "aws:amz:us-east-1:reporting", "--user", user]
    body = json.dumps([volume(A, "vol-curl")])
    posted = subprocess.run(["curl", "-s", *sign, "-H", "Content-Type: application/json",
                             f"{base}{PREFIX}/events", "-d", body], capture_output=True, text=True, timeout=30)
    assert json.loads(posted.stdout) == {"recorded": 1}
    # curl 7.x signs the query as written: write it canonical (sorted, percent-encoded)
    query = urlencode(sorted({"start": START, "end": END}.items()))
    got = subprocess.run(["curl", "-s", *sign, f"{base}{PREFIX}/usage?{query}"], capture_output=True, text=True,
                         timeout=30)
    assert [r["item"] for r in json.loads(got.stdout)["rows"]] == ["vol-curl"]
