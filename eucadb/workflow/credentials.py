"""The database credentials and the envelope that carries them to the instance (docs/architecture.md §6).

Credentials are generated here (passwords from `secrets`), kept in the local vault (sealed at rest by
the store's SecretBox), and sent to the instance in user-data *sealed to the server certificate*:

    envelope = {"v": 1, "alg": "RSA-OAEP-SHA256+A256GCM", "kid": <hex sha256 of the cert's SPKI>,
                "ek": b64(RSA-OAEP-SHA256(aes_key)), "iv": b64(12 bytes), "ct": b64(AES-GCM ct + tag)}

The AES-GCM additional data binds the envelope version, algorithm, key id and the deployment id, so an
envelope replayed into another deployment, or with any field changed, fails to open. Only the holder of
the server private key (the instance, through its role) can unseal.

`scripts/setup_db.py` carries a byte-compatible copy of `unseal` (it cannot import eucadb); the tests
check that what `seal` produces is opened by that copy.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eucadb.errors import EucadbError
from eucadb.workflow.pki import PkiError, load_certificate, load_private_key

# Keys of the credentials dict (also the keys of user-data's "roles"; pool/contexts.py uses the writers').
ADMIN, CLOUDWATCH, REPORTING, REPLICATION = "admin", "cloudwatch", "reporting", "replication"
WRITERS = (CLOUDWATCH, REPORTING)


@dataclass(frozen=True)
class RoleNames:
    """PostgreSQL role names on the instance."""
    admin: str = "eucadb_admin"
    cloudwatch: str = "cloudwatch_writer"
    reporting: str = "reporting_writer"
    replication: str = "eucadb_replication"

    def as_dict(self) -> dict[str, str]:
        return {ADMIN: self.admin, CLOUDWATCH: self.cloudwatch, REPORTING: self.reporting,
                REPLICATION: self.replication}


ROLES = RoleNames()
PASSWORD_BYTES = 32          # token_urlsafe(32) -> 43 characters from [A-Za-z0-9_-]

ENVELOPE_VERSION = 1
ENVELOPE_ALG = "RSA-OAEP-SHA256+A256GCM"
_FIELDS = ("v", "alg", "kid", "ek", "iv", "ct")


class EnvelopeError(EucadbError):
    """A sealed envelope cannot be opened: malformed, wrong key, wrong deployment or tampered."""


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def generate(roles: RoleNames = ROLES) -> dict[str, dict[str, str]]:
    """Fresh credentials for every role: {"admin": {"user": ..., "password": ...}, ...}."""
    return {key: {"user": name, "password": new_password()} for key, name in roles.as_dict().items()}


def rotate(creds: Mapping[str, Mapping[str, str]], keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """A copy of `creds` with new passwords for `keys` (the rest unchanged)."""
    out = {k: dict(v) for k, v in creds.items()}
    for key in keys:
        out[key]["password"] = new_password()
    return out


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def key_id(public_key) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: names the key an envelope is sealed to."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def envelope_aad(version: int, alg: str, kid: str, deployment_id: str) -> bytes:
    """The bytes AES-GCM authenticates besides the ciphertext (must match setup_db.py exactly)."""
    return json.dumps({"v": version, "alg": alg, "kid": kid, "deployment": deployment_id},
                      sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal(plaintext: bytes, certificate_pem: str | bytes, deployment_id: str) -> dict[str, Any]:
    """Encrypt `plaintext` to the RSA key of `certificate_pem`, bound to `deployment_id`."""
    if not deployment_id:
        raise EnvelopeError("a deployment id is required to seal")
    try:
        public_key = load_certificate(certificate_pem).public_key()
    except PkiError as exc:
        raise EnvelopeError(f"cannot seal: {exc}") from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise EnvelopeError("cannot seal: the certificate's key is not RSA")
    kid = key_id(public_key)
    data_key = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    ct = AESGCM(data_key).encrypt(iv, bytes(plaintext),
                                  envelope_aad(ENVELOPE_VERSION, ENVELOPE_ALG, kid, deployment_id))
    return {"v": ENVELOPE_VERSION, "alg": ENVELOPE_ALG, "kid": kid,
            "ek": _b64(public_key.encrypt(data_key, _oaep())), "iv": _b64(iv), "ct": _b64(ct)}


def _field(envelope: Mapping[str, Any], name: str) -> bytes:
    value = envelope.get(name)
    if not isinstance(value, str):
        raise EnvelopeError(f"malformed envelope: field {name!r} missing or not a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise EnvelopeError(f"malformed envelope: field {name!r} is not base64") from None


def unseal(envelope: Mapping[str, Any], private_key_pem: str | bytes | rsa.RSAPrivateKey,
           deployment_id: str) -> bytes:
    """Open an envelope made by `seal`; raises EnvelopeError saying what is wrong.

    The key may be given loaded: loading an RSA PEM validates the key, which costs ~0.1 s."""
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("malformed envelope: not an object")
    if envelope.get("v") != ENVELOPE_VERSION or envelope.get("alg") != ENVELOPE_ALG:
        raise EnvelopeError(f"unsupported envelope v={envelope.get('v')!r} alg={envelope.get('alg')!r}")
    extra = set(envelope) - set(_FIELDS)
    if extra:
        raise EnvelopeError(f"malformed envelope: unexpected fields {sorted(extra)}")
    ek, iv, ct = _field(envelope, "ek"), _field(envelope, "iv"), _field(envelope, "ct")
    if len(iv) != 12:
        raise EnvelopeError("malformed envelope: iv must be 12 bytes")
    try:
        key = (private_key_pem if isinstance(private_key_pem, rsa.RSAPrivateKey)
               else load_private_key(private_key_pem))
    except PkiError as exc:
        raise EnvelopeError(f"cannot unseal: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EnvelopeError("cannot unseal: the private key is not RSA")
    kid = key_id(key.public_key())
    if envelope.get("kid") != kid:
        raise EnvelopeError("envelope was sealed to a different key (kid mismatch)")
    try:
        data_key = key.decrypt(ek, _oaep())
    except ValueError:
        raise EnvelopeError("cannot unwrap the data key: wrong private key or tampered 'ek'") from None
    if len(data_key) != 32:
        raise EnvelopeError("cannot unwrap the data key: wrong length")
    try:
        return AESGCM(data_key).decrypt(iv, ct, envelope_aad(ENVELOPE_VERSION, ENVELOPE_ALG, kid,
                                                             deployment_id))
    except InvalidTag:
        raise EnvelopeError("envelope authentication failed: wrong deployment id or tampered "
                            "envelope") from None
