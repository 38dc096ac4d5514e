"""`classify`: what kind of mail a `ParsedMail` is — bounce, complaint, auto-reply, out-of-office,
list post.

The last step of the parsing stage, after `parse_mail`: it reads only the finished record, so
it can run again on a stored article. Routing reads `bounce` (to attach a failure report to the
ticket whose mail failed) and `loop`; responders refuse to answer anything flagged here (SPEC
S8). The work is split by question: `bounces` (with `bouncetext` for prose reports),
`feedback` (complaints), `autoreply`, and here the list and loop rules, which are plain
header checks.

Nothing here raises. Each question is answered on its own, so a failure in one (a bug met by
hostile input) leaves the others standing; should even that fail, every flag is False.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pytrs.parsers.autoreply import auto_reply
from pytrs.parsers.bounces import detect_bounce
from pytrs.parsers.feedback import detect_feedback
from pytrs.parsers.model import Bounce, FeedbackReport, ParsedMail
from pytrs.parsers.textscan import Fields, fields_of, first


@dataclass(frozen=True, slots=True)
class Classification:
    """What kind of mail it is; `loop` is Znuny's X-OTRS-Loop rule (REFERENCE §1.3)."""

    bounce: Bounce | None  # set when the mail is a delivery-failure report
    is_auto_reply: bool  # written by a program in answer to a mail (never True for a bounce)
    is_out_of_office: bool  # an auto-reply saying its sender is away
    is_list: bool  # sent through a mailing list
    loop: bool  # never send an auto-response to it
    feedback: FeedbackReport | None = None  # set when the mail is a complaint about a mail


_T = TypeVar("_T")

NOTHING = Classification(
    None, is_auto_reply=False, is_out_of_office=False, is_list=False, loop=False
)

# Any non-empty value of these forces the loop flag (REFERENCE §1.3), X-OTRS-Loop even when it
# says "no"; X-PyTRS-Loop is our own name for the same header.
_LOOP_HEADERS = ("mailing-list", "precedence", "x-loop", "x-no-loop", "x-otrs-loop", "x-pytrs-loop")
# RFC 2369 and RFC 2919 list headers, and the older ones of ezmlm and SmartList.
_LIST_HEADERS = (
    "list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe", "list-owner",
    "list-archive", "mailing-list", "x-mailing-list",
)  # fmt: skip


def classify(mail: ParsedMail) -> Classification:
    """Return the classification of `mail`; never raises (all flags False on internal error)."""
    try:
        return _classify(mail)
    except Exception:
        return NOTHING


def _classify(mail: ParsedMail) -> Classification:
    fields = fields_of(mail)
    feedback = _guarded(lambda: detect_feedback(mail, fields), None)
    # A complaint quotes the mail complained about, which a bounce check could take for a
    # returned mail: it is one or the other, and a complaint says so in its own structure.
    bounce = None if feedback is not None else _guarded(lambda: detect_bounce(mail, fields), None)
    is_list = _guarded(lambda: _is_list(fields), False)
    if bounce is not None:
        # A failure report is not an auto-reply, though Gmail and Exim mark theirs
        # "Auto-Submitted: auto-replied": the two flags lead to different handling.
        auto, away = False, False
    else:
        auto, away = _guarded(lambda: auto_reply(mail, fields, is_list=is_list), (False, False))
        # A report that is not a failure (a delivery or read receipt) is still machine-written.
        auto = auto or _guarded(lambda: _is_report(fields), False)
    loop = bounce is not None or feedback is not None or _guarded(lambda: is_loop(fields), False)
    return Classification(
        bounce=bounce, is_auto_reply=auto, is_out_of_office=away, is_list=is_list, loop=loop,
        feedback=feedback,
    )  # fmt: skip


def is_loop(fields: Fields) -> bool:
    """Return Znuny's loop flag (REFERENCE §1.3) for these header fields.

    Two deliberate widenings, both towards "do not answer": every occurrence of a header counts
    (Znuny reads one), and `Auto-Submitted` is compared case-insensitively (RFC 3834 keywords
    are); Perl would also take a value of "0" as absent, which is not copied.
    """
    for name in _LOOP_HEADERS:
        if any(value.strip() for value in fields.get(name, ())):
            return True
    return any(
        value.strip().lower().startswith("auto-") for value in fields.get("auto-submitted", ())
    )


def _is_list(fields: Fields) -> bool:
    if any(any(value.strip() for value in fields.get(name, ())) for name in _LIST_HEADERS):
        return True
    return any(value.strip().lower().startswith("list") for value in fields.get("precedence", ()))


def _is_report(fields: Fields) -> bool:
    return first(fields, "content-type")[:200].lower().startswith("multipart/report")


def _guarded(answer: Callable[[], _T], fallback: _T) -> _T:
    try:
        return answer()
    except Exception:
        return fallback
