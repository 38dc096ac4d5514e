"""`pytrs smtp hash-password [--user NAME]`: a line for `[smtp] auth_users_file`.

Place in the flow: nothing is stored; the admin appends the printed `name:hash` line to the
users file, which the SMTP/LMTP listeners read at start and on reload (`gateway/tls.py`). The
hash is argon2id, as for agents' passwords (`users/passwords.py`). The password is the first
line of standard input; on a terminal it is asked twice, without echo.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from pytrs.commands.failures import EXIT_OK, EXIT_USAGE, CommandError
from pytrs.config import Config
from pytrs.gateway.smtp_auth import NAME_RE
from pytrs.users import passwords


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("smtp", help="SMTP AUTH users: hash a password for the users file")
    actions = parser.add_subparsers(dest="action", required=True)
    hashing = actions.add_parser(
        "hash-password", help="read a password on stdin, print `name:hash` for auth_users_file"
    )
    hashing.add_argument(
        "--user", metavar="NAME", default="", help="the name to print before the hash"
    )


def run(config: Config, args: argparse.Namespace) -> int:
    if args.user and not NAME_RE.fullmatch(args.user):
        raise CommandError(
            "smtp hash-password: --user: a name is 1 to 48 letters, digits or . _ @ + -",
            EXIT_USAGE,
        )
    try:
        hashed = passwords.hash_password(_read_password())
    except passwords.WeakPassword as exc:
        raise CommandError(f"smtp hash-password: {exc}", EXIT_USAGE) from exc
    print(f"{args.user}:{hashed}" if args.user else hashed)
    return EXIT_OK


def _read_password() -> str:
    if sys.stdin is None:
        raise CommandError(
            "smtp hash-password: standard input is closed: the password is read from it",
            EXIT_USAGE,
        )
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise CommandError("smtp hash-password: the passwords differ", EXIT_USAGE)
    return first
