"""The small exception hierarchy every layer raises from (docs/architecture.md §11).

`UserError` is bad input: the CLI prints its message as one line and exits 1, with no traceback.
The others are failures of something outside eucadb, reported after the retry helper gives up.
"""


class EucadbError(Exception):
    """Base of everything eucadb raises on purpose."""


class UserError(EucadbError):
    """Bad input from an operator: one clear line naming what was wrong and what is allowed."""


class ConfigError(UserError):
    """A configuration key has a value that is not allowed."""


class CloudError(EucadbError):
    """The cloud API failed or could not be reached."""


class CloudUnreachable(CloudError):
    """No answer from the cloud endpoint at all (validators must say so rather than guess)."""


class CloudNotConfigured(UserError, CloudError):
    """No cloud endpoint is set: an operator's omission, not an outage, so it is never retried."""


class InstallationError(EucadbError):
    """A file eucadb ships with itself (Alembic scripts, the boot program) is missing: a broken
    install, which no retry and no operator input can mend."""


class DatabaseError(EucadbError):
    """A database (local store or remote append-only DB) failed."""


class WorkflowError(EucadbError):
    """A workflow step failed for good."""


class FencingError(EucadbError):
    """This process no longer holds the leader lease; it must not mutate anything."""


class ServiceUnavailable(EucadbError):
    """A dependent service was asked for work while it is not ENABLED."""
