"""`pytrs parse FILE…`: what the parser makes of mail files, for admins and tests (`--summary`:
counts over all of them, `commands/parse_summary.py`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytrs.commands.parse_summary import summarise
from pytrs.commands.stdin import read_stdin
from pytrs.config import Config
from pytrs.parsers import ParsedMail, parse_mail


def run(config: Config, args: argparse.Namespace) -> int:
    """Print each file's parsed record, streaming; exit 1 if any file could not be read."""
    failed = False
    records = _parse_files(args.files, config)
    if args.summary:
        summary = summarise(records)
        if args.json or args.jsonl:
            figures = summary.as_dict()
            print(json.dumps(figures, indent=None if args.jsonl else 2, ensure_ascii=False))
        else:
            print("\n".join(summary.lines()))
        return 1 if summary.unreadable else 0
    if args.json and len(args.files) > 1:
        # A JSON list written element by element, so a thousand files start printing at once.
        print("[")
        for index, record in enumerate(records):
            failed = failed or "error" in record
            text = json.dumps(record, indent=2, ensure_ascii=False)
            print(("" if index == 0 else ",\n") + _indented(text), end="", flush=True)
        print("\n]")
        return 1 if failed else 0
    for index, record in enumerate(records):
        failed = failed or "error" in record
        if args.json:
            print(json.dumps(record, indent=2, ensure_ascii=False))
        elif args.jsonl:
            print(json.dumps(record, ensure_ascii=False, separators=(",", ":")), flush=True)
        else:
            print(("\n" if index else "") + _human(record), flush=True)
    return 1 if failed else 0


def _parse_files(files: Sequence[str], config: Config) -> Iterator[dict[str, Any]]:
    limits = config.parser.limits()
    for name in files:
        try:
            raw = read_stdin() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            yield {"file": name, "error": exc.strerror or str(exc)}
            continue
        try:
            yield {"file": name, **_parsed_record(parse_mail(raw, limits))}
        except Exception as exc:  # parse_mail never raises; a bug must not stop the others.
            yield {"file": name, "error": f"{type(exc).__name__}: {exc}"}


def _parsed_record(mail: ParsedMail) -> dict[str, Any]:
    return {
        "subject": mail.subject,
        "from": mail.from_,
        "to": mail.to,
        "cc": mail.cc,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": list(mail.references),
        "date": mail.date.isoformat() if mail.date else None,
        "body_text": mail.body,
        "has_html": mail.html is not None,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.content),
                "inline": a.disposition == "inline",
                "content_id": a.content_id,
                **({"text": a.text} if a.text else {}),
            }
            for a in mail.attachments
        ],
        "is_bounce": mail.is_bounce,
        "bounce": asdict(mail.bounce) if mail.bounce else None,
        "is_feedback_report": mail.is_feedback_report,
        "feedback": asdict(mail.feedback) if mail.feedback else None,
        "is_auto_reply": mail.is_auto_reply,
        "is_out_of_office": mail.is_out_of_office,
        "is_list": mail.is_list,
        "loop": mail.loop,
        "warnings": list(mail.warnings),
    }


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _human(record: dict[str, Any]) -> str:
    lines = [f"== {record['file']}"]
    if "error" in record:
        return "\n".join([*lines, f"error: {record['error']}"])
    for key in ("subject", "from", "to", "cc", "message_id", "in_reply_to", "date"):
        lines.append(f"{key}: {record[key] or '-'}")
    lines.append(f"references: {' '.join(record['references']) or '-'}")
    flags = (
        "has_html", "is_bounce", "is_feedback_report", "is_auto_reply", "is_out_of_office",
        "is_list", "loop",
    )  # fmt: skip
    lines.append("flags: " + (", ".join(flag for flag in flags if record[flag]) or "-"))
    bounce = record["bounce"]
    if bounce:
        kind = "permanent" if bounce["permanent"] else "temporary"
        lines.append(
            f"bounce: {bounce['status'] or '?'} {kind} {bounce['recipient'] or '?'} "
            f"(original {bounce['original_message_id'] or '?'}, {bounce['format']})"
        )
    feedback = record["feedback"]
    if feedback:
        lines.append(
            f"complaint: {feedback['feedback_type']} by {feedback['recipient'] or '?'} "
            f"(original {feedback['original_message_id'] or '?'}, {feedback['format']}, "
            f"reported by {feedback['reporter'] or '?'})"
        )
    for number, a in enumerate(record["attachments"], start=1):
        details = [a["content_type"], f"{a['size']} bytes", "inline" if a["inline"] else ""]
        details.append(a["content_id"])
        lines.append(f"attachment {number}: {a['filename']} ({', '.join(filter(None, details))})")
    lines.extend(f"warning: {warning}" for warning in record["warnings"])
    lines.extend(["", record["body_text"].rstrip("\n")])
    return "\n".join(lines)
