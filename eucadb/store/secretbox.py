"""Secrets at rest in the local store: AES-256-GCM with a key file (0600) under $EUCADB_HOME.

The store may be a shared PostgreSQL that others can read; a dump of it must not reveal a password.
The key never leaves the key file; the ciphertext is bound to its purpose (AAD) so a value copied from
one row to another does not decrypt.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eucadb.errors import EucadbError

PREFIX = "aesgcm1:"


class SecretBox:
    def __init__(self, key_file: Path):
        self.key_file = key_file
        self._key: bytes | None = None

    def _load_key(self) -> bytes:
        if self._key is None:
            if not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(AESGCM.generate_key(bit_length=256))
            mode = self.key_file.stat().st_mode & 0o777
            if mode & 0o077:
                raise EucadbError(f"{self.key_file} is mode {mode:o}; it must be 0600 (chmod 600 it)")
            self._key = self.key_file.read_bytes()
        return self._key

    def encrypt(self, data: bytes, purpose: str) -> bytes:
        """nonce (12 bytes) + AES-256-GCM ciphertext and tag, bound to `purpose`."""
        nonce = os.urandom(12)
        return nonce + AESGCM(self._load_key()).encrypt(nonce, data, purpose.encode())

    def decrypt(self, blob: bytes, purpose: str, what: str = "") -> bytes:
        """The data `encrypt` was given; EucadbError naming `what` (default: the purpose) if the
        blob was not sealed with this key for this purpose."""
        try:
            return AESGCM(self._load_key()).decrypt(blob[:12], blob[12:], purpose.encode())
        except InvalidTag:
            raise EucadbError(f"{what or purpose} does not decrypt with {self.key_file}") from None

    def seal(self, plaintext: str, purpose: str) -> str:
        return PREFIX + base64.b64encode(self.encrypt(plaintext.encode(), purpose)).decode()

    def open(self, token: str, purpose: str) -> str:
        if not token.startswith(PREFIX):
            raise EucadbError(f"secret for {purpose} is not in {PREFIX} format")
        return self.decrypt(base64.b64decode(token[len(PREFIX):]), purpose, f"secret for {purpose}").decode()
