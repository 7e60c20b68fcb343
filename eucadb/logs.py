"""Logging set-up shared by every eucadb process (the CLI, `serve`, the embedded cloud's daemons).

`log.level=DEBUG` is for eucadb's own loggers. Some libraries print request parameters at DEBUG
(botocore: every API call's arguments, so the server key sent to Secrets Manager; SQLAlchemy:
statements with their bound values; urllib3/werkzeug: request lines), which would put secrets in
logs. They get a floor instead, whatever the configured level.
"""
from __future__ import annotations

import logging
import sys

# logger -> the lowest level it may log at, and why
LIBRARY_FLOORS: dict[str, tuple[int, str]] = {
    "botocore": (logging.INFO, "DEBUG prints each API call's parameters (secret values included)"),
    "boto3": (logging.INFO, "DEBUG prints resource and call parameters"),
    "s3transfer": (logging.INFO, "DEBUG prints transfer arguments"),
    "urllib3": (logging.INFO, "DEBUG prints request lines (signed URLs)"),
    "sqlalchemy": (logging.WARNING, "INFO prints statements with their bound parameters"),
    "alembic": (logging.WARNING, "INFO prints every migration step of every start"),
    "werkzeug": (logging.WARNING, "INFO prints a line per request of the embedded cloud"),
}


def configure_logging(level: str, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    """Log to stderr at `level` (a name config.py validated: DEBUG … ERROR), with the libraries
    above held at their floors."""
    logging.basicConfig(level=level, stream=sys.stderr, format=fmt)
    for name, (floor, _why) in LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, getattr(logging, level)))
