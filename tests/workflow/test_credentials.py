"""Credential generation and the sealed envelope; compatibility with setup_db.py's own copy."""
from __future__ import annotations

import base64
import copy
import importlib.util
import json
import string
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from eucadb.errors import UserError
from eucadb.workflow import credentials, pki, userdata
from eucadb.workflow.credentials import EnvelopeError, seal, unseal

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "setup_db.py"
DEPLOYMENT = "d0c0ffee"


def load_setup_db():
    spec = importlib.util.spec_from_file_location("setup_db_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup_db():
    return load_setup_db()


@pytest.fixture(scope="module")
def keys():
    ca_key, ca_cert = pki.create_ca("test CA")
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, f"db.{DEPLOYMENT}.eucadb.internal", 30)
    other_key, other_cert = pki.issue_server_certificate(ca_key, ca_cert, "db.other.eucadb.internal", 30)
    return {"ca": ca_cert, "key": key, "cert": cert, "other_key": other_key, "other_cert": other_cert,
            "loaded": pki.load_private_key(key)}   # loading validates the key (~0.1 s): do it once


def test_generate_gives_every_role_a_long_urlsafe_password():
    creds = credentials.generate()
    assert {k: v["user"] for k, v in creds.items()} == {
        "admin": "eucadb_admin", "cloudwatch": "cloudwatch_writer",
        "reporting": "reporting_writer", "replication": "eucadb_replication"}
    allowed = set(string.ascii_letters + string.digits + "-_")
    for entry in creds.values():
        assert len(entry["password"]) >= 32 and set(entry["password"]) <= allowed
    assert len({e["password"] for e in creds.values()}) == 4
    assert credentials.generate() != creds
    rotated = credentials.rotate(creds, ("cloudwatch",))
    assert rotated["cloudwatch"]["password"] != creds["cloudwatch"]["password"]
    assert rotated["admin"] == creds["admin"]


def test_envelope_shape_is_json_with_base64_fields(keys):
    env = seal(b'{"a": 1}', keys["cert"], DEPLOYMENT)
    assert set(env) == {"v", "alg", "kid", "ek", "iv", "ct"}
    assert env["v"] == 1 and env["alg"] == "RSA-OAEP-SHA256+A256GCM"
    assert len(base64.b64decode(env["ek"])) == 384 and len(base64.b64decode(env["iv"])) == 12
    assert json.loads(json.dumps(env)) == env
    assert seal(b"x", keys["cert"], DEPLOYMENT) != seal(b"x", keys["cert"], DEPLOYMENT)


@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(max_size=4096), deployment=st.text(min_size=1, max_size=40))
def test_round_trip_both_implementations(keys, setup_db, plaintext, deployment):
    env = seal(plaintext, keys["cert"], deployment)
    assert unseal(env, keys["loaded"], deployment) == plaintext
    assert setup_db.unseal(env, keys["loaded"], deployment) == plaintext


@settings(max_examples=25, deadline=None)
@given(deployment=st.text(min_size=1, max_size=20), other=st.text(min_size=1, max_size=20))
def test_wrong_deployment_fails(keys, setup_db, deployment, other):
    env = seal(b"secret", keys["cert"], deployment)
    if other == deployment:
        return
    with pytest.raises(EnvelopeError, match="wrong deployment id or tampered"):
        unseal(env, keys["loaded"], other)
    with pytest.raises(setup_db.SetupError, match="wrong deployment or tampered"):
        setup_db.unseal(env, keys["loaded"], other)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["ek", "iv", "ct"]), position=st.integers(min_value=0),
       bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_fails(keys, field, position, bit):
    env = seal(b"the credentials", keys["cert"], DEPLOYMENT)
    raw = bytearray(base64.b64decode(env[field]))
    raw[position % len(raw)] ^= 1 << bit
    tampered = dict(env, **{field: base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(EnvelopeError):
        unseal(tampered, keys["loaded"], DEPLOYMENT)


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(v=2), "unsupported envelope"),
    (lambda e: e.update(alg="RSA1_5"), "unsupported envelope"),
    (lambda e: e.pop("ct"), "field 'ct' missing"),
    (lambda e: e.update(iv="***"), "not base64"),
    (lambda e: e.update(kid="0" * 64), "different key"),
    (lambda e: e.update(extra="x"), "unexpected fields"),
])
def test_malformed_envelopes_say_what_is_wrong(keys, change, message):
    env = seal(b"x", keys["cert"], DEPLOYMENT)
    change(env)
    with pytest.raises(EnvelopeError, match=message):
        unseal(env, keys["key"], DEPLOYMENT)


def test_wrong_private_key_is_refused(keys, setup_db):
    env = seal(b"x", keys["cert"], DEPLOYMENT)
    with pytest.raises(EnvelopeError, match="different key"):
        unseal(env, keys["other_key"], DEPLOYMENT)
    with pytest.raises(setup_db.SetupError, match="different key"):
        setup_db.unseal(env, keys["other_key"].encode(), DEPLOYMENT)
    forged = dict(env, kid=credentials.key_id(pki.load_private_key(keys["other_key"]).public_key()))
    with pytest.raises(EnvelopeError, match="cannot unwrap"):
        unseal(forged, keys["other_key"], DEPLOYMENT)


def test_sealing_to_an_ec_certificate_is_refused(keys):
    with pytest.raises(EnvelopeError, match="not RSA"):
        seal(b"x", keys["ca"], DEPLOYMENT)


def test_aad_is_identical_in_both_implementations(setup_db):
    assert setup_db.ENVELOPE_VERSION == credentials.ENVELOPE_VERSION
    assert setup_db.ENVELOPE_ALG == credentials.ENVELOPE_ALG
    args = (1, credentials.ENVELOPE_ALG, "ab" * 32, "dép-1")
    assert setup_db.envelope_aad(*args) == credentials.envelope_aad(*args)


def build(keys, creds=None, **overrides) -> str:
    kwargs = dict(
        deployment=DEPLOYMENT, endpoint_url="http://127.80.0.1:5000", region="eucalyptus",
        secret_id=f"eucadb/{DEPLOYMENT}/server-key", volume_id="vol-0123",
        dns_name=f"db.{DEPLOYMENT}.eucadb.internal",
        server_cert=keys["cert"], ca_cert=keys["ca"], allowed_cidrs=["10.1.2.3", "192.168.0.0/16"],
        instance_type="t2.micro", init_script="echo hi", ntp_server="ntp.example.org",
        sealed_credentials=seal(json.dumps(creds or credentials.generate()).encode(), keys["cert"],
                                DEPLOYMENT))
    kwargs.update(overrides)
    return userdata.build_user_data(**kwargs)


def test_setup_db_parses_what_eucadb_builds(keys, setup_db):
    creds = credentials.generate()
    text = build(keys, creds)
    ud = setup_db.parse_user_data(text.encode())
    assert ud.deployment == DEPLOYMENT and ud.region == "eucalyptus" and ud.port == 5432
    assert ud.allowed_cidrs == ("10.1.2.3/32", "192.168.0.0/16") and ud.device == "/dev/sdf"
    assert ud.databases == {"cloudwatch": "eucalyptus_cloudwatch_backend",
                            "reporting": "eucalyptus_reporting_backend"}
    assert ud.roles["replication"] == "eucadb_replication"
    plaintext = setup_db.unseal(ud.credentials, keys["key"].encode(), ud.deployment)
    passwords = setup_db.parse_credentials(plaintext, ud)
    assert passwords == {k: v["password"] for k, v in creds.items()}
    for entry in creds.values():
        assert entry["password"] not in text
    default = setup_db.parse_user_data(build(keys, endpoint_url=None, init_script=None, ntp_server=None))
    assert default.endpoint_url is None and default.init_script == "" and default.ntp_server == ""


def test_builder_and_parser_reject_bad_values(keys, setup_db):
    with pytest.raises(UserError, match="not a CIDR"):
        build(keys, allowed_cidrs=["10.0.0.0/33"])
    with pytest.raises(UserError, match="empty"):
        build(keys, allowed_cidrs=[])
    with pytest.raises(UserError, match="over the cloud's"):
        build(keys, init_script="x" * 20000)
    doc = json.loads(build(keys))
    for key, value, message in [("roles", dict(doc["roles"], admin="x; DROP"), "identifier"),
                                ("eucadb", 2, "v1"), ("ntp_server", "a\nb", "ntp_server"),
                                ("allowed_cidrs", ["nope"], "CIDR"), ("secret_id", "", "secret_id")]:
        bad = copy.deepcopy(doc)
        bad[key] = value
        with pytest.raises(setup_db.SetupError, match=message):
            setup_db.parse_user_data(json.dumps(bad))
