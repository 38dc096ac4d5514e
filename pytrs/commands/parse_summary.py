"""`pytrs parse --summary FILE…`: what a mailbox export holds, counted, before going live.

An admin points it at a few thousand mails exported from the support mailbox and learns how
many are bounces (of which formats, permanent or not), complaints, auto-replies, list mail
and loops, and which parser warnings come up how often. It reads the records that
`commands/parse.py` makes one at a time, so an export of any size is counted in constant
memory.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Parts of a warning that name this mail's values, not the kind of problem: quoted text,
# numbers, and the charset or encoding after "as" / "labelled".
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![\w-])\d+(?![\w-])")  # "100 parts", not "8-bit" or "C1"
_NAMED = re.compile(r"\b(read as|labelled|decoded as) [^\s,;()]+")


_ERRORS_SHOWN = 20


def warning_kind(warning: str) -> str:
    """`warning` with this mail's particulars replaced by "…", so that like ones count together."""
    kind = _QUOTED.sub("…", warning)
    kind = _NAMED.sub(lambda m: f"{m[1]} …", kind)
    return _NUMBER.sub("N", kind)


@dataclass
class Summary:
    """Counts over parsed mail records (the dicts of `pytrs parse --json`)."""

    files: int = 0
    unreadable: int = 0
    errors: list[str] = field(default_factory=list)  # the first few unreadable files, why
    bounces: int = 0
    permanent_bounces: int = 0
    bounce_formats: Counter[str] = field(default_factory=Counter)
    bounces_without_recipient: int = 0
    complaints: int = 0
    complaint_formats: Counter[str] = field(default_factory=Counter)
    auto_replies: int = 0
    out_of_office: int = 0
    lists: int = 0
    loops: int = 0
    with_html: int = 0
    with_attachments: int = 0
    with_warnings: int = 0
    warnings: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        if "error" in record:
            self.unreadable += 1
            if len(self.errors) < _ERRORS_SHOWN:
                self.errors.append(f"{record['file']}: {record['error']}")
            return
        bounce = record.get("bounce")
        if record["is_bounce"]:
            self.bounces += 1
            if bounce:
                self.permanent_bounces += bool(bounce["permanent"])
                self.bounce_formats[bounce["format"] or "unknown"] += 1
                self.bounces_without_recipient += not bounce["recipient"]
        feedback = record.get("feedback")
        if feedback:
            self.complaints += 1
            self.complaint_formats[feedback["format"]] += 1
        self.auto_replies += bool(record["is_auto_reply"])
        self.out_of_office += bool(record["is_out_of_office"])
        self.lists += bool(record["is_list"])
        self.loops += bool(record["loop"])
        self.with_html += bool(record["has_html"])
        self.with_attachments += bool(record["attachments"])
        self.with_warnings += bool(record["warnings"])
        self.warnings.update(warning_kind(w) for w in record["warnings"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "unreadable": self.unreadable,
            "errors": self.errors,
            "bounces": {
                "total": self.bounces,
                "permanent": self.permanent_bounces,
                "temporary": self.bounces - self.permanent_bounces,
                "without_recipient": self.bounces_without_recipient,
                "by_format": dict(self.bounce_formats.most_common()),
            },
            "complaints": {
                "total": self.complaints,
                "by_format": dict(self.complaint_formats.most_common()),
            },
            "auto_replies": self.auto_replies,
            "out_of_office": self.out_of_office,
            "lists": self.lists,
            "loops": self.loops,
            "with_html": self.with_html,
            "with_attachments": self.with_attachments,
            "with_warnings": self.with_warnings,
            "warnings_by_kind": dict(self.warnings.most_common()),
        }

    def lines(self) -> list[str]:
        """The summary for a terminal: a count per line, bounce formats and warning kinds."""
        out = [
            f"files              {self.files}",
            f"unreadable         {self.unreadable}",
            *(f"  {error}" for error in self.errors),
            f"bounces            {self.bounces} (permanent {self.permanent_bounces}, "
            f"temporary {self.bounces - self.permanent_bounces}, "
            f"no recipient found {self.bounces_without_recipient})",
        ]
        out += [f"  {count:6}  {name}" for name, count in self.bounce_formats.most_common()]
        out.append(f"complaints         {self.complaints}")
        out += [f"  {count:6}  {name}" for name, count in self.complaint_formats.most_common()]
        out += [
            f"auto-replies       {self.auto_replies} (out of office {self.out_of_office})",
            f"mailing lists      {self.lists}",
            f"loops              {self.loops}",
            f"with HTML          {self.with_html}",
            f"with attachments   {self.with_attachments}",
            f"with warnings      {self.with_warnings}",
        ]
        if self.warnings:
            out.append("warnings by kind:")
            out += [f"  {count:6}  {kind}" for kind, count in self.warnings.most_common()]
        return out


def summarise(records: Iterable[dict[str, Any]]) -> Summary:
    summary = Summary()
    for record in records:
        summary.add(record)
    return summary
