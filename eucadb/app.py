"""The objects one eucadb process works with, built lazily from the loaded config.

Commands and the server receive an `App` and take what they need; nothing else constructs stores or
cloud clients, so tests can point a whole process at a temporary home with one environment variable.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from eucadb.cloud.client import CloudClients
from eucadb.cloud.facts import CloudFacts
from eucadb.config import Config
from eucadb.properties.service import PropertyService
from eucadb.store import Store, open_store
from eucadb.store.secretbox import SecretBox

if TYPE_CHECKING:
    from eucadb.workflow.deployment import Vault


class App:
    def __init__(self, config: Config):
        self.config = config

    @cached_property
    def store(self) -> Store:
        self.config.home.mkdir(parents=True, exist_ok=True)
        return open_store(self.config.store_url)

    @cached_property
    def secrets(self) -> SecretBox:
        return SecretBox(self.config.home / "secret.key")

    @cached_property
    def clients(self) -> CloudClients:
        return CloudClients(self.config)

    @cached_property
    def facts(self) -> CloudFacts | None:
        return CloudFacts(self.clients) if self.clients.configured else None

    @cached_property
    def properties(self) -> PropertyService:
        return PropertyService(self.store, self.facts, self.secrets)

    def vault(self, deployment: str) -> "Vault":
        from eucadb.workflow.deployment import Vault
        return Vault(self.store, self.secrets, deployment)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
