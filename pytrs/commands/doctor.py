"""`pytrs doctor`: is this installation ready to work? One line per finding, exit 1 on a FAIL.

Place in the flow: a command, run by an admin after an install or when something is wrong.
The checks live in `pytrs.diagnostics` (configuration, database, permissions, DKIM DNS, relay,
mailboxes, listeners); this module parses the options, prints each finding as it comes
(`OK`/`WARN`/`FAIL`/`SKIP`, the check, what was found, what to do) or as JSON, and sets the exit
code. Unlike the other commands it loads the configuration itself: one that does not load is
a finding, not the end of the command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from pytrs.commands.failures import EXIT_FAILED, EXIT_OK
from pytrs.commands.output import add_json_options
from pytrs.config import DaemonConfig
from pytrs.diagnostics.findings import FAIL, Finding
from pytrs.runtime.logs import configure_logging

DEFAULT_TIMEOUT_SECONDS = 10.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor", help="check the configuration, database, files, DNS, relay, mailboxes, ports"
    )
    doctor.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"deadline of each network check (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    add_json_options(doctor)


def run(args: argparse.Namespace) -> int:
    # Only warnings of the parts the checks use reach stderr; the findings go to stdout.
    configure_logging(DaemonConfig(log_level="WARNING"))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    findings = asyncio.run(_collect(args))
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2))
    return EXIT_FAILED if any(f.status == FAIL for f in findings) else EXIT_OK


async def _collect(args: argparse.Namespace) -> list[Finding]:
    # Imported here: the checks pull in the IMAP, SMTP and DNS clients, which the other
    # commands (`deliver` above all) should not pay for at start.
    from pytrs.diagnostics.runner import run_checks

    findings = []
    checks = run_checks(args.config, defaults=args.defaults, seconds=args.timeout, debug=args.debug)
    async for finding in checks:
        findings.append(finding)
        if args.jsonl:
            print(json.dumps(finding.as_dict(), ensure_ascii=False), flush=True)
        elif not args.json:
            print(finding.line(), flush=True)
    return findings


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be seconds, more than 0 and at most 3600: {text!r}")
    return value
