"""Where the log goes and how its lines look: `[daemon] log_level` and `log_format`.

Place in the flow: the command line calls `configure_logging` once before any command runs,
and the daemon calls it again on SIGHUP, so a changed level or format takes effect without a
restart. Everything logs to stderr, which systemd hands to journald.
"""

from __future__ import annotations

import logging
import sys

from pytrs.config import DaemonConfig

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The handler this module installed, so that a second call replaces it instead of adding one.
_HANDLER_NAME = "pytrs-stderr"


def configure_logging(daemon: DaemonConfig) -> None:
    """Install (or replace) the stderr handler with the configured level and format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(daemon.log_level)
    # aiosmtpd logs every connection at INFO; pytrs logs what matters about each message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
