"""`pytrs tickets list|show|reply|note|set|merge`: the ticket desk on the command line.

Place in the flow: this module only declares the arguments and hands each action to the
module that does it — `tickets_read` (list, show: queries, nothing written) or
`tickets_write` (reply, note, set, merge: through the ticket service, one transaction each).
"""

from __future__ import annotations

import argparse

from pytrs.commands import args as arg_types
from pytrs.commands import tickets_read
from pytrs.config import Config


def text(value: str) -> str:
    """An argument compared with stored text: it must be UTF-8 (bytes that are not reach
    Python as surrogates, which neither database driver can send)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"not UTF-8 text: {value!r}") from None
    return value


_SEARCH_HELP = (
    "case-insensitive text in the title, the customer, or an article's Subject or From "
    "(bodies are not searched; on SQLite only ASCII letters fold case)"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    desk = sub.add_parser("tickets", help="tickets: list, show, reply, note, set, merge")
    actions = desk.add_subparsers(dest="action", required=True)
    _add_list(actions)
    _add_show(actions)
    _add_reply(actions)
    _add_note(actions)
    _add_set(actions)
    _add_merge(actions)


def _add_list(actions: argparse._SubParsersAction) -> None:
    listing = actions.add_parser("list", help="tickets, newest first (exit 1 when none match)")
    listing.add_argument("--queue", metavar="Q", type=text, help="only tickets in this queue")
    states = listing.add_mutually_exclusive_group()
    states.add_argument(
        "--state", metavar="S", type=text, help='only tickets in this state ("open", …)'
    )
    states.add_argument(
        "--open", action="store_true", help="only tickets still to work on: new, open, pending"
    )
    states.add_argument(
        "--closed", action="store_true", help="only tickets no longer open: closed, merged …"
    )
    listing.add_argument(
        "--customer",
        metavar="ADDR",
        type=text,
        help="only this customer's tickets (address or login)",
    )
    listing.add_argument("--search", metavar="TEXT", type=text, help=_SEARCH_HELP)
    listing.add_argument(
        "--escalating",
        action="store_true",
        help="only tickets escalated or escalating within the hour, soonest first, with the "
        "working time left",
    )
    listing.add_argument(
        "--limit", type=arg_types.limit, default=50, metavar="N", help="at most N (default 50)"
    )
    listing.add_argument(
        "--before",
        metavar="TN",
        type=text,
        help="the next page: tickets older than this ticket number (with --escalating: "
        "escalating after it)",
    )
    output = listing.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        action="store_true",
        help='one JSON object: {"tickets": [...], "next_before": TN or null}',
    )
    output.add_argument("--jsonl", action="store_true", help="one JSON object per ticket")


def _add_show(actions: argparse._SubParsersAction) -> None:
    show = actions.add_parser(
        "show",
        help="one ticket with its escalation clocks, SLA, pending time and every article",
    )
    show.add_argument("tn", metavar="TN", type=text, help="the ticket number")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.add_argument("--history", action="store_true", help="add the audit trail")
    show.add_argument(
        "--raw", type=arg_types.row_id, metavar="ARTICLE", help="print this article's mail only"
    )


def _add_author(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--as",
        dest="login",
        metavar="LOGIN",
        type=text,
        required=required,
        help="the agent acting (a login in [[agents]])"
        + ("" if required else "; default: the system user root@localhost"),
    )


def _add_body(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--file", metavar="F", help=f"read the {what} from this file (default: standard input)"
    )


def _add_reply(actions: argparse._SubParsersAction) -> None:
    reply = actions.add_parser("reply", help="answer the customer (sent through the outbox)")
    reply.add_argument("tn", metavar="TN", type=text, help="the ticket number")
    _add_author(reply, required=True)
    _add_body(reply, "answer")
    reply.add_argument(
        "--cc", metavar="ADDR", type=text, action="append", default=[], help="copy to (repeatable)"
    )
    reply.add_argument(
        "--state", metavar="S", type=text, help='then set this state (e.g. "closed successful")'
    )
    reply.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_note(actions: argparse._SubParsersAction) -> None:
    note = actions.add_parser("note", help="add an internal note (never sent)")
    note.add_argument("tn", metavar="TN", type=text, help="the ticket number")
    _add_author(note, required=True)
    _add_body(note, "note")
    note.add_argument(
        "--subject", metavar="S", type=text, help="the note's subject (default: Note)"
    )
    note.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_set(actions: argparse._SubParsersAction) -> None:
    change = actions.add_parser(
        "set",
        help="change state, pending time, SLA, priority, queue, owner, responsible, lock, "
        "title, type or customer",
    )
    change.add_argument("tn", metavar="TN", type=text, help="the ticket number")
    change.add_argument("--state", metavar="S", type=text, help='e.g. "open", "closed successful"')
    change.add_argument(
        "--pending",
        metavar="WHEN",
        type=text,
        help='the pending time of a pending state: "+30m", "+2h", "+3d" or "YYYY-MM-DD HH:MM" '
        "(local time in [scheduler] timezone)",
    )
    change.add_argument(
        "--sla", metavar="NAME", type=text, help='the SLA (one of [[slas]]); "" removes it'
    )
    change.add_argument("--priority", metavar="P", type=text, help='e.g. "4 high"')
    change.add_argument("--queue", metavar="Q", type=text, help="move to this queue")
    change.add_argument("--owner", metavar="LOGIN", type=text, help="give to this agent")
    change.add_argument(
        "--responsible", metavar="LOGIN", type=text, help="make this agent responsible"
    )
    change.add_argument("--lock", choices=("lock", "unlock"), help="lock or unlock the ticket")
    change.add_argument("--title", metavar="T", type=text, help="the new title")
    change.add_argument(
        "--type", metavar="T", type=text, help='the ticket type, e.g. "Unclassified"'
    )
    change.add_argument(
        "--customer-user", metavar="LOGIN", type=text, help="the customer user (login or address)"
    )
    change.add_argument("--customer-id", metavar="ID", type=text, help="the customer number")
    _add_author(change, required=False)
    change.add_argument("--json", action="store_true", help="print what changed as JSON")


def _add_merge(actions: argparse._SubParsersAction) -> None:
    merge = actions.add_parser("merge", help="merge a ticket into another (Znuny semantics)")
    merge.add_argument("tn", metavar="TN", type=text, help="the ticket merged away")
    merge.add_argument(
        "--into", metavar="TN2", type=text, required=True, help="the ticket that remains"
    )
    _add_author(merge, required=False)
    merge.add_argument("--json", action="store_true", help="print the result as JSON")


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action in ("list", "show"):
        reading = {"list": tickets_read.list_tickets, "show": tickets_read.show_ticket}
        return reading[args.action](config, args)
    # Imported only to write: the service brings the mail composer with it.
    from pytrs.commands import tickets_write

    handlers = {
        "reply": tickets_write.reply,
        "note": tickets_write.note,
        "set": tickets_write.change,
        "merge": tickets_write.merge,
    }
    return handlers[args.action](config, args)
