"""How a `pytrs` command fails: one line on stderr saying what is wrong and what to do, and an
exit code from one table (documented in the README's Commands section).

Place in the flow: `pytrs.cli.main` catches whatever a command raises and asks `explain` for
the line and the code; a traceback is shown only with `--debug`. Commands raise the storage
and configuration errors of the lower floors as they are; only this module turns them into
words for an operator.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import NamedTuple

from pytrs.commands.args import UsageError
from pytrs.config import ConfigError
from pytrs.schema.database import DatabaseNotFound, DatabaseUnavailable

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and the answer is no: not at head, no such row, refused …
# (a ticket change the ticket refuses — merged, closed, no one to answer — is a no: 1)
EXIT_USAGE = 2  # a mistake in the arguments or the configuration
# (a ticket command naming a state, priority, queue or agent that does not exist: 2)
EXIT_DATABASE = 3  # the database cannot be used: not found, unreachable, not upgraded
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug; `--debug` shows the traceback
EXIT_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`… | head`)
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class CommandError(Exception):
    """A failure a command reports itself: its message is the line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StartupRefused(Exception):
    """A configuration that loads but cannot be started with (what `preflight.check_startup`
    found): `run` and `config check` report it alike, one `config:` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class Failure(NamedTuple):
    lines: list[str]
    exit_code: int


def explain(exc: BaseException) -> Failure:
    """The line(s) to print and the exit code for an exception that ended a command."""
    # Imported here: `run` pulls in the daemon only when it runs.
    from pytrs.daemon import StartupError
    from pytrs.schema.migrate import SchemaNotAtHead
    from pytrs.tickets.errors import TicketError, UnknownName

    match exc:
        case CommandError():
            return Failure([str(exc)], exc.exit_code)
        case UsageError():
            return Failure([str(exc)], EXIT_USAGE)
        case ConfigError():
            return Failure([f"config: {error}" for error in exc.errors], EXIT_USAGE)
        case StartupRefused():
            return Failure([f"config: {error}" for error in exc.errors], EXIT_FAILED)
        case DatabaseNotFound():
            return Failure(
                [f"{exc}: check [database] url, or create it with `pytrs db upgrade`"],
                EXIT_DATABASE,
            )
        case DatabaseUnavailable() | SchemaNotAtHead():
            return Failure([str(exc)], EXIT_DATABASE)
        case StartupError():
            return Failure([str(exc)], EXIT_FAILED)
        case UnknownName():
            # `tickets set --state opened`: a name no row has is a mistake on the command line.
            return Failure([str(exc)], EXIT_USAGE)
        case TicketError():
            # The ticket service's refusals (no such number, merged, cannot be answered …):
            # one line each, fit for a user as they are.
            return Failure([str(exc)], EXIT_FAILED)
        case OSError() if is_output_error(exc):
            # `pytrs inbox list > /dev/full`, a full disk under a redirect: where the output
            # goes was chosen on the command line, like an --output file.
            return Failure([f"cannot write the output: {exc.strerror or exc}"], EXIT_USAGE)
        case OSError(filename=str() as name) if name:
            # A file named on the command line (an .eml, an --output path) that will not do.
            return Failure([f"{name}: {exc.strerror or exc}"], EXIT_USAGE)
        case KeyboardInterrupt():
            return Failure([], EXIT_INTERRUPTED)
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Failure(
        [f"internal error: {reason} (run again with --debug for the traceback)"], EXIT_INTERNAL
    )


# Errors of writing only: storage and network errors reach commands wrapped by their drivers.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def is_output_error(exc: BaseException) -> bool:
    """An error of writing our output (no file named: stdout), not of a file we were given."""
    return isinstance(exc, OSError) and not exc.filename and exc.errno in _WRITE_ERRNOS


def silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's final flush
    does not print "Exception ignored … BrokenPipeError" on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file: nothing will flush to it
        pass
