"""The boto3 client factory: one place that knows the endpoint, region, credentials and retry policy.

Works unchanged against AWS (`cloud.endpoint_url: default`), Eucalyptus and the embedded moto cloud.
botocore's "standard" retry mode covers throttling and transient 5xx inside each call.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any, Callable, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.parsers import ResponseParserError
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                 EndpointConnectionError, NoCredentialsError, ReadTimeoutError)

from eucadb.config import Config, load
from eucadb.errors import CloudError, CloudNotConfigured, CloudUnreachable, ConfigError
from eucadb.retry import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")
# how each service says "this access key does not exist" (EC2, Query, JSON, S3): after a root-key
# rotation, the key a long-running process was built with
UNKNOWN_KEY_CODES = frozenset({"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException",
                               "InvalidAccessKeyId"})
KEY_NAMES = ("cloud.access_key_id", "cloud.secret_access_key")
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)

# AWS error codes that mean "try again shortly": throttling, eventual consistency right after a
# create, and deletes blocked by something that is itself going away.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable", "InternalError",
    "InternalFailure", "DependencyViolation", "IncorrectState", "ResourceInUse", "ScalingActivityInProgress",
    "InvalidGroup.NotFound", "InvalidInstanceID.NotFound",
    "VolumeInUse", "DeleteConflict", "ConcurrentModification", "ResourceContention",
})
# (code, words all found in the message) that AWS answers while something created moments ago is
# not yet visible everywhere; the code alone also means real input errors, so the message decides.
# AutoScaling starts every launch-template refusal with "You must use a valid fully-formed launch
# template", permanent ones too (an unsupported instance type): only these are propagation.
TRANSIENT_MESSAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ValidationError", ("invalid iam instance profile",)),          # AutoScaling: a new profile
    ("ValidationError", ("fully-formed launch template", "does not exist")),  # a new template
    ("InvalidParameterValue", ("invalid iam instance profile",)),    # EC2: a new profile
    ("InvalidRequestException", ("scheduled for deletion",)),        # Secrets Manager: name still deleting
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the cloud briefly unreachable, throttling, or eventual consistency."""
    if isinstance(exc, CloudUnreachable):
        return True
    code = error_code(exc)
    if code in TRANSIENT_CODES:
        return True
    message = error_message(exc).lower()
    return any(code == c and all(w in message for w in words) for c, words in TRANSIENT_MESSAGES)


# For calls that name something another service created moments ago (an instance profile in a
# launch template, a secret name just freed): IAM propagation alone is seen to take ~30 s on AWS.
PROPAGATION = Retry(deadline=90, max_delay=5, retry_on=(ClientError, CloudUnreachable), is_transient=is_transient)


class CloudClients:
    """Creates (and caches, thread-safely) boto3 clients for the configured cloud."""

    def __init__(self, config: Config, connect_timeout: float = 5, read_timeout: float = 30,
                 max_attempts: int = 4):
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._boto_config = BotoConfig(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout, read_timeout=read_timeout)

    @property
    def endpoint(self) -> str | None:
        return self.config["cloud.endpoint_url"]

    @property
    def configured(self) -> bool:
        return bool(self.endpoint)

    def require(self) -> None:
        """Refuse at once, before anything is recorded or retried, when no cloud is configured."""
        if not self.configured:
            raise CloudNotConfigured(
                "no cloud is configured: run `eucadb cloud up` for the embedded cloud, or set "
                "cloud.endpoint_url (an URL, or 'default' for AWS)")

    def client(self, service: str) -> Any:
        self.require()
        with self._lock:
            if service not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id=self.config["cloud.access_key_id"],
                    aws_secret_access_key=self.config["cloud.secret_access_key"],
                    region_name=self.config["cloud.region"])
                endpoint = None if self.endpoint == "default" else self.endpoint
                self._clients[service] = session.client(service, endpoint_url=endpoint,
                                                        config=self._boto_config)
            return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict:
        """Call one API operation, turning transport failures into eucadb's cloud errors."""
        return self.guard(lambda: getattr(self.client(service), operation)(**params),
                          f"{service}.{operation}")

    def guard(self, fn: Callable[[], T], what: str) -> T:
        """`fn`'s answer; once, if the cloud refuses our key as unknown and the config file now names
        another key (`eucadb cloud rotate-root-key` ran while we were up), again with clients rebuilt
        on that key. `fn` must get its client from `self.client` to see the rebuilt one."""
        try:
            return self._guarded(fn, what)
        except ClientError as exc:
            if error_code(exc) not in UNKNOWN_KEY_CODES or not self._reload_key():
                raise
        log.info("%s: the cloud refused the old access key; retrying with the config's new one", what)
        return self._guarded(fn, what)

    def _reload_key(self) -> bool:
        """Take the config file's key if it is not the one we use; True if it changed."""
        if not self.config.path.exists():
            return False
        try:
            fresh = load(self.config.path)
        except ConfigError as exc:  # being edited by hand: keep the key we have
            log.warning("could not re-read %s for a new cloud key: %s", self.config.path, exc)
            return False
        if not fresh["cloud.access_key_id"] or fresh["cloud.access_key_id"] == self.config["cloud.access_key_id"]:
            return False
        with self._lock:
            self.config = replace(self.config, values={**self.config.values,
                                                       **{k: fresh[k] for k in KEY_NAMES}})
            self._clients.clear()
        return True

    def _guarded(self, fn: Callable[[], T], what: str) -> T:
        try:
            return fn()
        except UNREACHABLE as exc:
            raise CloudUnreachable(f"cloud at {self.endpoint} is unreachable ({what}: {exc})") from None
        except NoCredentialsError:
            raise CloudError(f"no cloud credentials found for {what}: set cloud.access_key_id "
                             "and cloud.secret_access_key, or boto3's usual environment") from None
        except ClientError:
            raise
        except (BotoCoreError, ResponseParserError) as exc:
            raise CloudError(f"{what}: {exc}") from None
