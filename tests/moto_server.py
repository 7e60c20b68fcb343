"""A bare moto server on a free loopback port, for tests that need a real AWS-compatible endpoint
but not the whole embedded cloud (validators, client factory)."""
from __future__ import annotations

from moto.server import ThreadedMotoServer

from pg import free_port


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"EUCADB_CLOUD_ENDPOINT_URL": self.endpoint, "EUCADB_CLOUD_REGION": "us-east-1",
                "EUCADB_CLOUD_ACCESS_KEY_ID": "testing", "EUCADB_CLOUD_SECRET_ACCESS_KEY": "testing"}

    def __enter__(self) -> "MotoServer":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
