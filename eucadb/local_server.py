"""How a client on this host reaches the local `eucadb serve`: its URL (scheme included) and how its
certificate is verified. Shared by the server (which writes the CA bundle it serves with) and the CLI
commands that call it (`eucadb report usage`, status), which must not import the server itself."""
from __future__ import annotations

import ssl
from pathlib import Path

from eucadb.config import Config
from eucadb.errors import EucadbError

WILDCARDS = {"", "0.0.0.0", "::"}
CA_BUNDLE = "serve-ca.pem"   # under $EUCADB_HOME: the CA that issued serve's auto certificate (public)


def server_name(host: str) -> str:
    """The name a client uses: a wildcard listen address is reached over loopback."""
    return "127.0.0.1" if host in WILDCARDS else host


def tls_enabled(config: Config) -> bool:
    return bool(config["serve.tls_cert"]) or config["serve.tls"] == "auto"


def ca_bundle(config: Config) -> Path:
    return config.home / CA_BUNDLE


def base_url(config: Config) -> str:
    """Where the local server answers, with the scheme it serves."""
    host = server_name(config["serve.host"])
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls_enabled(config) else 'http'}://{host}:{config['serve.port']}"


def client_context(config: Config) -> ssl.SSLContext | None:
    """How a local client verifies the server: the CA bundle serve wrote for `serve.tls=auto`; for an
    operator's pair, the system's trust store plus the configured chain (each certificate in it a
    trust anchor, so a self-signed one works too). None: plain HTTP."""
    if config["serve.tls_cert"]:
        context = ssl.create_default_context()
        context.load_verify_locations(config["serve.tls_cert"])
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context
    if config["serve.tls"] == "auto":
        bundle = ca_bundle(config)
        if not bundle.exists():
            raise EucadbError(f"serve.tls=auto but {bundle} does not exist yet: start `eucadb serve` first")
        return ssl.create_default_context(cafile=str(bundle))
    return None
