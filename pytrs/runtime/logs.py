"""Where the log goes and how its lines look: `[daemon] log_level` and `log_format`.

Place in the flow: the command line calls `configure_logging` once before any command runs,
and the daemon calls it again on SIGHUP, so a changed level or format takes effect without a
restart. Everything logs to stderr, which systemd hands to journald.

`log_format = "json"` writes one JSON object per line: `ts` (RFC 3339, UTC), `level`,
`logger`, `message`, `exception` when there is a traceback, and the fields a line about one
message carries (`extra=`: `inbox_id`, `message_id`, `ticket`, `decision`, `queue`, `via`,
`outbox_id` …), so a log pipeline can select one mail's lines without parsing the text.

A worker child process writes to its parent's stderr: `label_process` makes its lines say so
(`… INFO [worker 4711] pytrs.postmaster.worker: …`, or `"process": "worker 4711"` in JSON).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Protocol

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Which process of the daemon writes, when it is not the daemon's own (see label_process).
_label = ""
# The handler this module installed, so that a second call replaces it instead of adding one.
_HANDLER_NAME = "pytrs-stderr"
# What every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName",
}  # fmt: skip
_OWN_KEYS = ("ts", "level", "logger", "message", "exception", "stack")


class LogSettings(Protocol):
    """What this module reads of the configuration (`[daemon]`, `config.DaemonConfig`)."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "ts": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if _label:
            entry["process"] = _label
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _OWN_KEYS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a field of an odd type (a datetime, an enum) still makes a line.
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(daemon: LogSettings) -> None:
    """Install (or replace) the stderr handler with the configured level and format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    json_lines = daemon.log_format == "json"
    text = TEXT_FORMAT.replace("%(name)s", f"[{_label}] %(name)s") if _label else TEXT_FORMAT
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(text))
    root.addHandler(handler)
    root.setLevel(daemon.log_level)
    # aiosmtpd logs every connection at INFO; pytrs logs what matters about each message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # aiosqlite logs two DEBUG lines per call into SQLite: at DEBUG they drowned pytrs's own.
    # (pytrs's own SQLite connections no longer use it; other code of the process may.)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


def label_process(label: str) -> None:
    """Name this process in every line from now on (call before `configure_logging`)."""
    global _label
    _label = label
