"""Logging set-up shared by every eucadb process (the CLI, `serve`, the embedded cloud's daemons).

`log.level=DEBUG` is for eucadb's own loggers. Some libraries print request parameters at DEBUG
(botocore: every API call's arguments, so the server key sent to Secrets Manager; SQLAlchemy:
statements with their bound values; urllib3/werkzeug: request lines), which would put secrets in
logs. They get a floor instead, whatever the configured level.

A long-running process (`eucadb serve`) logs to a file through a size-rotating handler rather than
through a redirect of its stdout, which could never rotate. Refused requests (a disabled service, a
failing database) are counted per cause by one `RateLimitedLog` and written once a minute, so a
flood of clients cannot fill the disk with one WARNING per request.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

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
HANDLER_NAME = "eucadb"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StdRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotating log that also holds the process's stdout and stderr (file descriptors 1 and 2):
    whatever is printed, tracebacks included, goes to the current file and rotates with it.

    Why: the embedded cloud's daemons are started with their output appended to their log file
    (procs.spawn); rotating only the logging stream would leave prints writing to the renamed file,
    unbounded. Each new file is created with `file_mode` before it is opened (0600, or 0640 with
    `files.group`), whatever the process's umask."""

    def __init__(self, filename: Path, file_mode: int, **kwargs: object):
        self.file_mode = file_mode
        super().__init__(filename, **kwargs)  # type: ignore[arg-type]

    def _open(self):  # type: ignore[no-untyped-def]
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode))
        stream = super()._open()
        for std in (sys.stdout, sys.stderr):
            std.flush()
        for fd in (1, 2):
            os.dup2(stream.fileno(), fd)
        return stream


def configure_logging(level: str, fmt: str = FORMAT, log_file: Path | None = None,
                      max_bytes: int = 10 * 1024 * 1024, backups: int = 5,
                      std_mode: int | None = None) -> None:
    """Log at `level` (a name config.py validated: DEBUG … ERROR) to stderr, or to `log_file` rotated
    at `max_bytes` keeping `backups` old files; the libraries above held at their floors. With
    `std_mode` (a file mode), stdout and stderr follow the log file (StdRotatingFileHandler)."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    elif std_mode is not None:
        handler = StdRotatingFileHandler(log_file, std_mode, maxBytes=max_bytes, backupCount=backups,
                                         encoding="utf-8")
    else:
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups,
                                                       encoding="utf-8")
    handler.setFormatter(logging.Formatter(fmt))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:   # `serve --log-file` moves it
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name, (floor, _why) in LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, getattr(logging, level)))


class RateLimitedLog:
    """Counts refusals per cause; the first of a cause in a window is logged at once, the rest as one
    line with their count when the window is over ("refused 10,959 requests in the last 60 s: …").

    A window's count is written by the first refusal after it ends (of any cause) or by `flush()`
    (at shutdown). Causes are bounded: past `max_causes` distinct ones they share one line."""

    OTHER = "other causes"

    def __init__(self, logger: logging.Logger, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_causes: int = 100):
        self.logger, self.window, self.clock, self.max_causes = logger, window, clock, max_causes
        self._open: dict[str, tuple[float, int]] = {}   # cause -> (window start, refusals in it)
        self._lock = threading.Lock()

    def refused(self, cause: str) -> None:
        now = self.clock()
        with self._lock:
            due = self._close_windows(now)
            if cause not in self._open and len(self._open) >= self.max_causes:
                cause = self.OTHER
            first = cause not in self._open
            start, count = self._open.get(cause, (now, 0))
            self._open[cause] = (start, count + 1)
        for line in due:
            self.logger.warning(line)
        if first:
            self.logger.warning("refused a request: %s", cause)

    def flush(self) -> None:
        """Write every open window's count now (shutdown)."""
        with self._lock:
            due = self._close_windows(float("inf"))
        for line in due:
            self.logger.warning(line)

    def _close_windows(self, now: float) -> list[str]:
        due = []
        for cause, (start, count) in list(self._open.items()):
            if now - start >= self.window:
                del self._open[cause]
                if count > 1:   # a lone refusal was already written when it came
                    due.append(f"refused {count:,} requests in the last {self.window:.0f} s: {cause}")
        return due


REFUSALS = RateLimitedLog(logging.getLogger("eucadb.refusals"))
