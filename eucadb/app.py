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
from eucadb.files import private_file
from eucadb.properties.service import PropertyService
from eucadb.store import Fence, Store, open_store, unfenced
from eucadb.store.secretbox import SecretBox

if TYPE_CHECKING:
    from eucadb.workflow.vault import DeploymentVault


class App:
    def __init__(self, config: Config):
        self.config = config

    @cached_property
    def store(self) -> Store:
        self.config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.config["store.url"]:   # the default SQLite file: private before SQLite makes it
            private_file(self.config.home / "store.db", self.config)
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

    def vault(self, deployment: str, fence: Fence = unfenced) -> "DeploymentVault":
        """A deployment's vault. Workflow steps use `StepContext.vault`, fenced by their runner's
        lease; unfenced vaults are for reads and for admin actions (see `workflow rotate-passwords`)."""
        from eucadb.workflow.vault import DeploymentVault
        return DeploymentVault(self.store, self.secrets, deployment, self.config.home, fence)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
