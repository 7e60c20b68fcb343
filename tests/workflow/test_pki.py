"""The deployment PKI: CA, server certificate (SAN = the stable DNS name), renewal at 2/3 of lifetime."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from eucadb.workflow import pki

DNS = "db.d1.eucadb.internal"
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def material():
    ca_key, ca_cert = pki.create_ca("eucadb d1 CA", days=3650, now=T0)
    key, cert = pki.issue_server_certificate(ca_key, ca_cert, DNS, days=90, now=T0)
    return ca_key, ca_cert, key, cert


def test_server_certificate_is_signed_by_the_ca_for_the_dns_name(material):
    ca_key, ca_cert, key, cert = material
    ca, c = pki.load_certificate(ca_cert), pki.load_certificate(cert)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(c.public_key(), rsa.RSAPublicKey) and c.public_key().key_size == 3072
    c.verify_directly_issued_by(ca)
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DNS]
    assert san.get_values_for_type(x509.IPAddress) == []
    usages = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = c.not_valid_after_utc - c.not_valid_before_utc
    assert lifetime == dt.timedelta(days=90)
    assert pki.load_private_key(key).public_key().public_numbers() == c.public_key().public_numbers()


def test_renewal_at_two_thirds_of_lifetime(material):
    cert = material[3]
    start = pki.load_certificate(cert).not_valid_before_utc
    assert not pki.needs_renewal(cert, start + dt.timedelta(days=59))
    assert pki.needs_renewal(cert, start + dt.timedelta(days=60))
    assert pki.needs_renewal(cert, start + dt.timedelta(days=400))
    assert not pki.needs_renewal(material[1], T0 + dt.timedelta(days=365))


def test_encrypted_key_export_needs_the_passphrase(material):
    key = material[2]
    encrypted = pki.encrypt_private_key(key, "s3cret-passphrase")
    assert encrypted.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(pki.PkiError):
        pki.load_private_key(encrypted)
    with pytest.raises(pki.PkiError):
        pki.load_private_key(encrypted, "wrong")
    loaded = pki.load_private_key(encrypted, "s3cret-passphrase")
    sig = loaded.sign(b"x", padding.PKCS1v15(), pki.hashes.SHA256())
    pki.load_certificate(material[3]).public_key().verify(sig, b"x", padding.PKCS1v15(), pki.hashes.SHA256())
    with pytest.raises(pki.PkiError):
        pki.encrypt_private_key(key, "")


def test_bad_input_is_a_clear_error():
    with pytest.raises(pki.PkiError, match="not a PEM certificate"):
        pki.needs_renewal("garbage")
    with pytest.raises(pki.PkiError, match="at least 1 day"):
        pki.create_ca("x", days=0)
