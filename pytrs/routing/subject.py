"""Subjects: clean an incoming subject, build the subject of a mail we send, title a ticket.

Place in the flow: when the postmaster worker creates a ticket it takes the title from
``ticket_title()``; the responders build the subject of every mail they send for a ticket with
``build_subject()``, so that the customer's reply carries the ticket number back in for
follow-up detection (``routing.ticket_number``). Pure string work, no I/O.

Semantics follow Znuny's ``TicketSubjectClean`` and ``TicketSubjectBuild`` (REFERENCE.md §6).
Deliberate differences, each explained where it is made:

* the hook, divider and prefixes are matched as literal text (Znuny inserts the prefixes into
  its regular expression unescaped); the hook is matched case-insensitively, like detection;
* a tag is removed only where the number ends (``Ticket#123`` is not removed from
  ``Ticket#1234``), and ``:`` may be followed by up to two spaces, as detection allows;
* reply and forward prefixes are stripped as one mixed run, so ``Fwd: Re: x`` becomes ``x``,
  and a prefix at the very end needs no space after its colon (``Re:`` alone becomes empty);
* whitespace runs collapse to one space and a cut subject loses its trailing space, which makes
  cleaning idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TypedDict, Unpack

# Ticket::SubjectSize: characters kept of a cleaned subject.
DEFAULT_SIZE = 100
# Appended where a subject was cut to the configured size (Znuny's marker).
CUT_MARKER = " [...]"
# The title of a ticket whose mail had no usable subject. Znuny stores the subject as it is,
# even empty; an empty title is unclickable in ticket lists, so we name the gap instead.
NO_SUBJECT = "(no subject)"

SUBJECT_FORMATS = ("Left", "Right", "None")
KINDS = ("new", "reply", "forward")

_WHITESPACE = re.compile(r"\s+")
# C0 controls and DEL: PostgreSQL rejects NUL in text, and a newline in a title breaks lists.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CleanOptions(TypedDict, total=False):
    """The keyword arguments ``build_subject()`` passes through to ``clean_subject()``."""

    re_prefixes: Sequence[str]
    fwd_prefixes: Sequence[str]
    size: int
    clean_all_numbers: bool


def clean_subject(
    subject: str,
    tn: str | None,
    hook: str = "Ticket#",
    divider: str = "",
    re_prefixes: Sequence[str] = ("Re",),
    fwd_prefixes: Sequence[str] = ("Fwd",),
    size: int = DEFAULT_SIZE,
    clean_all_numbers: bool = False,
) -> str:
    """``subject`` without ticket tags and leading reply/forward prefixes, cut to ``size``.

    Tags of ticket ``tn`` are removed with or without brackets; with ``clean_all_numbers``
    every bracketed tag of any number goes too. ``size`` 0 means no cut. Raises ValueError
    for a negative size.
    """
    if size < 0:
        raise ValueError(f"subject size must not be negative, not {size}")
    text = _squeeze(subject)
    text = _remove_tags(text, hook, divider, tn or None, clean_all_numbers)
    # Tag removal can leave a double or leading space behind; prefixes are anchored at the
    # start, so normalise before stripping them.
    text = _squeeze(text)
    prefixes = _prefix_regex((*re_prefixes, *fwd_prefixes))
    if prefixes is not None:
        text = prefixes.sub("", text, count=1)
    return _cut(text.strip(), size)


def build_subject(
    subject: str,
    tn: str,
    hook: str = "Ticket#",
    divider: str = "",
    subject_format: str = "Left",
    kind: str = "new",
    re_prefix: str = "Re",
    fwd_prefix: str = "Fwd",
    **clean_kwargs: Unpack[CleanOptions],
) -> str:
    """The subject of a mail about ticket ``tn``: cleaned, tagged per format, prefixed per kind.

    ``subject_format`` is Left, Right or None (case-insensitive, as in Znuny); ``kind`` is new,
    reply or forward. Raises ValueError for anything else.
    """
    fmt = _format_name(subject_format)
    if kind not in KINDS:
        raise ValueError(f"unknown subject kind {kind!r}; expected one of {', '.join(KINDS)}")
    # Typed callers are checked by mypy; this keeps a misspelt option from being ignored.
    unknown = set(clean_kwargs) - CleanOptions.__optional_keys__
    if unknown:
        raise TypeError(f"build_subject() got unexpected options: {', '.join(sorted(unknown))}")
    # The prefix we add must be one we strip again, or every round trip of a conversation
    # would stack another "Re: " in front.
    text = clean_subject(
        subject,
        tn,
        hook,
        divider,
        re_prefixes=_with(clean_kwargs.get("re_prefixes", ()), re_prefix),
        fwd_prefixes=_with(clean_kwargs.get("fwd_prefixes", ()), fwd_prefix),
        size=clean_kwargs.get("size", DEFAULT_SIZE),
        clean_all_numbers=clean_kwargs.get("clean_all_numbers", False),
    )
    tag = f"[{hook}{divider}{tn}]"
    # No dangling space next to the tag when nothing is left of the subject.
    if fmt == "Left":
        text = f"{tag} {text}" if text else tag
    elif fmt == "Right":
        text = f"{text} {tag}" if text else tag
    prefix = {"new": "", "reply": re_prefix, "forward": fwd_prefix}[kind]
    if not prefix:
        return text
    return f"{prefix}: {text}" if text else f"{prefix}:"


def ticket_title(subject: str, limit: int = 255) -> str:
    """The title of a new ticket: one line, trimmed, at most ``limit`` characters.

    Returns ``NO_SUBJECT`` for a subject with nothing printable. Raises ValueError for a limit
    below 1.
    """
    if limit < 1:
        raise ValueError(f"title limit must be at least 1, not {limit}")
    title = _squeeze(_CONTROL.sub(" ", subject))[:limit].rstrip()
    return title or NO_SUBJECT


def _squeeze(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _cut(text: str, size: int) -> str:
    if not size or len(text) <= size:
        return text
    # rstrip: a cut right after a word would otherwise give "word  [...]", which a second
    # cleaning would change by collapsing the double space.
    return text[:size].rstrip() + CUT_MARKER


def _with(prefixes: Sequence[str], prefix: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*prefixes, prefix]))


def _format_name(subject_format: str) -> str:
    for name in SUBJECT_FORMATS:
        if subject_format.lower() == name.lower():
            return name
    raise ValueError(
        f"unknown subject format {subject_format!r}; expected one of {', '.join(SUBJECT_FORMATS)}"
    )


def _remove_tags(text: str, hook: str, divider: str, tn: str | None, clean_all: bool) -> str:
    """``text`` without the ticket tags ``clean_subject`` removes, bracketed ones first so their
    brackets go with them."""
    if tn is None and not clean_all:
        return text
    if tn is not None and not (tn.isascii() and tn.isdigit()):
        for pattern in _tag_patterns(hook, divider, tn, clean_all):
            text = pattern.sub("", text)
        return text
    # Ticket numbers are digits: patterns for any number, compiled once per hook, and the
    # number compared in Python; compiling a pattern per ticket was most of an auto reply's cost.
    bracketed, bare = _numbered_tag_patterns(hook, divider)

    def bracketed_tag(match: re.Match[str]) -> str:
        return "" if clean_all or match[1] == tn else match[0]

    def bare_tag(match: re.Match[str]) -> str:
        return "" if match[1] == tn else match[0]

    text = bracketed.sub(bracketed_tag, text)
    # Without brackets only this ticket's number is removed, also under clean_all_numbers:
    # a bare "Ticket#…" of another ticket is more likely the customer's own words.
    return bare.sub(bare_tag, text) if tn is not None else text


@lru_cache(maxsize=32)
def _numbered_tag_patterns(hook: str, divider: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Bracketed and bare tags of any number, the number in group 1."""
    tag = f"{re.escape(hook)}(?:{re.escape(divider)}|:\\s{{0,2}})([0-9]+)"
    return (
        re.compile(f"\\[\\s*{tag}\\s*\\]\\s*", re.IGNORECASE),
        re.compile(f"{tag}\\s*", re.IGNORECASE),
    )


def _tag_patterns(
    hook: str, divider: str, tn: str | None, clean_all_numbers: bool
) -> list[re.Pattern[str]]:
    """Patterns for the tags of a ticket number that is not all digits (compiled per call)."""
    numbers = []
    if tn is not None:
        # (?![0-9]): the tag of ticket 123 is not the start of the tag of ticket 1234.
        numbers.append(re.escape(tn) + "(?![0-9])")
    if clean_all_numbers:
        numbers.append("[0-9]+")
    if not numbers:
        return []
    number = "(?:" + "|".join(numbers) + ")"
    # Forms: <hook><divider><number>, and <hook>: with up to two spaces, which is what
    # detection accepts too. Znuny allows exactly "<hook>: " and "<hook>:".
    tag = f"{re.escape(hook)}(?:{re.escape(divider)}|:\\s{{0,2}}){number}"
    # The hook is matched case-insensitively: detection finds "ticket#…", so cleaning must
    # remove it too, or the built subject would carry the number twice.
    bracketed = re.compile(f"\\[\\s*{tag}\\s*\\]\\s*", re.IGNORECASE)
    if tn is None:
        return [bracketed]
    # Without brackets only this ticket's number is removed, also under clean_all_numbers:
    # a bare "Ticket#…" of another ticket is more likely the customer's own words.
    bare = re.compile(
        f"{re.escape(hook)}(?:{re.escape(divider)}|:\\s{{0,2}}){numbers[0]}\\s*", re.IGNORECASE
    )
    return [bracketed, bare]


@lru_cache(maxsize=32)
def _prefix_regex(prefixes: tuple[str, ...]) -> re.Pattern[str] | None:
    """A leading run of "<prefix>: " or "<prefix>[n]: ", any configured prefix in any order."""
    words = [re.escape(p) for p in prefixes if p]
    if not words:
        return None
    # Znuny inserts the configured prefixes unescaped, so a prefix such as "R.E" or "Re|AW"
    # acts as a regular expression there; here a prefix is always the literal word. Znuny also
    # strips all Re prefixes and then all Fwd prefixes; one mixed run also strips
    # "Fwd: Re: x" completely, which a second cleaning would otherwise still change.
    # A prefix needs a space after its colon ("Re:x" stays), except at the very end: a
    # subject that is nothing but "Re:" is what building a reply to an empty subject gives.
    alternatives = "|".join(words)
    return re.compile(f"^(?:(?:{alternatives})(?:\\[[0-9]+\\])?:(?:\\s|$))+", re.IGNORECASE)
