"""pytrs's parser beside mail-parser (the design card's library), on the same mail, side by side.

For each corpus (Znuny's samples, pytrs's quirk files, the benchmark corpus) every mail is
parsed by both, and the fields both produce are compared after the same normalisation:
subject, sender address, recipient addresses, Message-ID, the plain-text body, attachment
names. Where they differ, the mail is listed with both values, so a person can say which is
right (the figures of docs/architecture.md's "mail-parser" section come from here). It also
times both (CPU per mail, best of 3) and counts what mail-parser alone offers: parsed Received
hops and defect categories.

    python bench/mailparser_compare.py [--bench-n 2000] [--show 5]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import mailparser

from pytrs.parsers import parse_mail

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIELDS = ("subject", "from", "to", "message_id", "body", "attachments")


def corpora(bench_n: int) -> dict[str, list[Path]]:
    found = {
        "znuny": sorted((SHARED / "corpus" / "znuny").rglob("*.box")),
        "quirks": sorted((ROOT / "tests" / "data" / "parsers").glob("*.eml")),
    }
    if bench_n:
        out = Path(tempfile.mkdtemp(prefix="pytrs-mpcompare-"))
        subprocess.run(
            [sys.executable, str(SHARED / "bench" / "gen_corpus.py"), "--out", str(out),
             "--n", str(bench_n), "--seed", "1"],
            check=True, capture_output=True,
        )  # fmt: skip
        found["bench"] = sorted(out.glob("*.eml"))
    return {name: files for name, files in found.items() if files}


def _text(value: str) -> str:
    return " ".join(value.split())


def _addresses(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):  # mail-parser: [(name, address), …]
        return tuple(sorted(a.lower() for _, a in value if a))
    return tuple(sorted(a.lower() for _, a in getaddresses([value]) if a))


def ours(raw: bytes) -> dict[str, Any]:
    mail = parse_mail(raw)
    return {
        "subject": _text(mail.subject),
        "from": mail.from_address.lower(),
        "to": tuple(sorted(mail.addresses("To"))),
        "message_id": mail.message_id.strip(),
        "body": _text(mail.body),
        "attachments": tuple(sorted(a.filename for a in mail.attachments if a.filename)),
    }


def theirs(raw: bytes) -> dict[str, Any]:
    mail = mailparser.parse_from_bytes(raw)
    sender = mail.from_[0][1].lower() if mail.from_ else ""
    return {
        "subject": _text(mail.subject or ""),
        "from": sender,
        "to": _addresses(mail.to),
        "message_id": (mail.message_id or "").strip(),
        "body": _text("\n".join(mail.text_plain)),
        "attachments": tuple(sorted(a["filename"] for a in mail.attachments if a["filename"])),
        "received": len(mail.received),
        "defects": sorted(mail.defects_categories),
    }


def safely(parse: Callable[[bytes], dict[str, Any]], raw: bytes) -> dict[str, Any] | str:
    try:
        return parse(raw)
    except Exception as exc:  # a crash is a result here
        return f"{type(exc).__name__}: {exc}"[:200]


def cpu_per_mail(parse: Callable[[bytes], Any], raws: list[bytes]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for raw in raws:
            with contextlib.suppress(Exception):
                parse(raw)
        best = min(best, time.process_time() - started)
    return best / len(raws) * 1000


def compare(name: str, files: list[Path], show: int) -> None:
    raws = [f.read_bytes() for f in files]
    differ: Counter[str] = Counter()
    crashes = {"pytrs": 0, "mail-parser": 0}
    examples: dict[str, list[str]] = {}
    received = defects = 0
    for path, raw in zip(files, raws, strict=True):
        a, b = safely(ours, raw), safely(theirs, raw)
        if isinstance(a, str) or isinstance(b, str):
            crashes["pytrs"] += isinstance(a, str)
            crashes["mail-parser"] += isinstance(b, str)
            said = [f"{who}={r if isinstance(r, str) else 'ok'}"
                    for who, r in (("pytrs", a), ("mail-parser", b))]  # fmt: skip
            examples.setdefault("crash", []).append(f"{path.name}: {' '.join(said)}")
            continue
        received += b["received"] > 0
        defects += bool(b["defects"])
        for field in FIELDS:
            if a[field] != b[field]:
                differ[field] += 1
                mine, other = str(a[field]), str(b[field])
                at = next((i for i, (x, y) in enumerate(zip(mine, other, strict=False)) if x != y),
                          min(len(mine), len(other)))  # fmt: skip
                start = max(0, at - 30)
                examples.setdefault(field, []).append(
                    f"{path.name} (from char {start}): pytrs={mine[start : start + 90]!r} "
                    f"mail-parser={other[start : start + 90]!r}"
                )
    ours_ms = cpu_per_mail(parse_mail, raws)
    theirs_ms = cpu_per_mail(mailparser.parse_from_bytes, raws)
    print(f"\n== {name}: {len(raws)} mails")
    print(f"CPU ms per mail: pytrs {ours_ms:.3f}, mail-parser {theirs_ms:.3f} "
          f"(mail-parser / pytrs = {theirs_ms / ours_ms:.2f})")  # fmt: skip
    print(f"crashes: pytrs {crashes['pytrs']}, mail-parser {crashes['mail-parser']}")
    print(f"mails with parsed Received hops (mail-parser): {received}; with defects: {defects}")
    for field in FIELDS:
        print(f"  {field:12} differ in {differ[field]}")
    for kind, lines in examples.items():
        for line in lines[:show]:
            print(f"    [{kind}] {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-n", type=int, default=2000, help="benchmark corpus size (0: none)")
    parser.add_argument("--show", type=int, default=5, help="differences shown per field")
    args = parser.parse_args()
    # mail-parser logs a warning for every multipart it does not flatten.
    logging.disable(logging.WARNING)
    print(f"mail-parser {mailparser.__version__ if hasattr(mailparser, '__version__') else ''}")
    for name, files in corpora(args.bench_n).items():
        compare(name, files, args.show)


if __name__ == "__main__":
    main()
