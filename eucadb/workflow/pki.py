"""The deployment's small PKI: one CA, one server certificate for the database instance (docs/architecture.md §5 step 3).

Key choices:
- The CA key is EC P-256: 128-bit security, fast to sign, small to ship in user-data, and every libpq /
  OpenSSL in use verifies ECDSA. It only ever signs certificates.
- The server key is RSA 3072: it must be RSA because the DB credentials are sealed to it with
  RSA-OAEP (credentials.py), and 3072 bits is the RSA size that matches 128-bit security.
- The server certificate names only the stable DNS name `db.<deployment>.eucadb.internal`: clients dial
  the instance's IP with libpq `hostaddr` and verify that name (verify-full), so no IP SAN is needed and
  a replaced instance keeps a valid certificate.
- Certificates are renewed at 2/3 of their lifetime (`needs_renewal`), never left to expire (EUCA-8651).

Everything goes in and out as PEM text (str), which is what the vault, IAM and user-data carry.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eucadb.errors import EucadbError

SERVER_KEY_BITS = 3072
RENEW_AT = 2 / 3                      # fraction of the lifetime after which a certificate is renewed
BACKDATE = dt.timedelta(minutes=5)    # tolerate small clock skew between eucadb and the instance

CertLike = Union[str, bytes, x509.Certificate]


class PkiError(EucadbError):
    """Key or certificate material that cannot be used (bad PEM, wrong key type, wrong passphrase)."""


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)


def _pem(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def load_certificate(cert: CertLike) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    try:
        return x509.load_pem_x509_certificate(_pem(cert))
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from None


def load_private_key(key_pem: str | bytes, passphrase: str | None = None):
    try:
        return serialization.load_pem_private_key(_pem(key_pem),
                                                  passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"cannot load private key: {exc}") from None


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eucadb"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(common_name: str, days: int = 3650, now: dt.datetime | None = None) -> tuple[str, str]:
    """A new self-signed CA: (key PEM, certificate PEM). Made once per deployment."""
    if days < 1:
        raise PkiError(f"CA lifetime must be at least 1 day, got {days}")
    start = _now(now) - BACKDATE
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM).decode()


def _alt_name(name: str) -> x509.GeneralName:
    """An IP address SAN for an address (`eucadb serve` on 127.0.0.1), a DNS name SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_server_certificate(ca_key_pem: str | bytes, ca_cert_pem: CertLike, dns_name: str, days: int,
                             now: dt.datetime | None = None) -> tuple[str, str]:
    """A new RSA server key and its certificate for `dns_name`, signed by the CA: (key PEM, cert PEM)."""
    if days < 1:
        raise PkiError(f"certificate lifetime must be at least 1 day, got {days}")
    ca_key = load_private_key(ca_key_pem)
    ca_cert = load_certificate(ca_cert_pem)
    start = _now(now) - BACKDATE
    end = min(start + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=SERVER_KEY_BITS)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(dns_name)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=True, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([_alt_name(dns_name)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM).decode()


def needs_renewal(cert: CertLike, now: dt.datetime | None = None) -> bool:
    """True once 2/3 of the certificate's lifetime has passed (or it is already expired)."""
    c = load_certificate(cert)
    start, end = c.not_valid_before_utc, c.not_valid_after_utc
    return _now(now) >= start + (end - start) * RENEW_AT


def encrypt_private_key(key_pem: str | bytes, passphrase: str) -> str:
    """The key as PKCS#8 PEM encrypted with `passphrase` (what PostgreSQL keeps on disk as server.key)."""
    if not passphrase:
        raise PkiError("an encrypted key needs a non-empty passphrase")
    key = load_private_key(key_pem)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(passphrase.encode())).decode()
