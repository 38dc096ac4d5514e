"""The parse stage alone: `parse_mail` versus a bare `email.message_from_bytes`, on one core.

SPEC S12 and the parsing issue ask for the cost of `ParsedMail` relative to the stdlib parse
of the same bytes (target: at most 3x). Both run on the bench corpus in this process, pinned
to one CPU, interleaved (bare, pytrs, bare, pytrs, …) so that drift hits both alike; the best
of three rounds of each counts. Rates are per second of this process's CPU time, not of the
wall clock, so that other processes on a shared machine do not count against either:

    python bench/parse.py [--n 5000] [--seed 1] [--crlf] [--json OUT]

Exits 1 when parse_mail misses the target.

A speed-up must not change what is parsed. `--fingerprints OUT` times nothing: it writes a
digest of `repr(parse_mail(raw))` for every mail of the corpus, of the Znuny samples and of the
test fixtures, with the default limits and with tight ones (the degraded paths), so that two
checkouts can be compared (run it with PYTHONPATH set to each, then diff the files).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

from pytrs.parsers import DEFAULT_LIMITS, ParseLimits, boundary, parse_mail

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT.parent / "shared" / "bench" / "gen_corpus.py"
ROUNDS = 3
# Mails fingerprinted besides the corpus: the Znuny samples and the test fixtures.
SAMPLES = (
    ROOT.parent / "shared" / "corpus" / "znuny",
    ROOT / "tests" / "data",
    ROOT / "tests" / "web",
)
TIGHT = ParseLimits(
    max_parts=4, max_header_count=20, max_html_bytes=4000, max_html_links=5, max_html_depth=8
)


def corpus(n: int, seed: int, crlf: bool) -> list[bytes]:
    with tempfile.TemporaryDirectory(prefix="pytrs-parse-bench-") as out:
        subprocess.run(
            [sys.executable, str(GEN), "--out", out, "--n", str(n), "--seed", str(seed)],
            check=True, capture_output=True,
        )  # fmt: skip
        raws = [path.read_bytes() for path in sorted(Path(out).glob("*.eml"))]
    # The generator writes LF files (a maildir); SMTP hands the daemon CRLF.
    return [raw.replace(b"\n", b"\r\n") for raw in raws] if crlf else raws


def bare(raw: bytes) -> object:
    return message_from_bytes(raw, policy=compat32)


def rate(parse: Callable[[bytes], object], raws: list[bytes]) -> float:
    """Messages per CPU second of one pass over `raws`."""
    gc.collect()
    started = time.process_time()
    for raw in raws:
        parse(raw)
    return len(raws) / (time.process_time() - started)


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to CPU {core}"


def fingerprints(raws: list[bytes], out: str) -> int:
    """Write a digest of each mail's ParsedMail (default and tight limits) to `out`."""
    mails = {f"corpus/{number:05d}": raw for number, raw in enumerate(raws)}
    for folder in SAMPLES:
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".eml", ".box"):
                mails[str(path.relative_to(folder.parent))] = path.read_bytes()
    digests = {}
    for name, raw in mails.items():
        for limits, suffix in ((DEFAULT_LIMITS, ""), (TIGHT, " (tight limits)")):
            parsed = repr(parse_mail(raw, limits)).encode("utf-8", "surrogatepass")
            digests[name + suffix] = hashlib.sha256(parsed).hexdigest()
    Path(out).write_text(json.dumps(digests, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(digests)} fingerprints of {len(mails)} mails written to {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="messages in the corpus")
    parser.add_argument("--seed", type=int, default=1, help="corpus generator seed")
    parser.add_argument("--crlf", action="store_true", help="CRLF line ends, as SMTP delivers")
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this file")
    parser.add_argument("--fingerprints", metavar="OUT", help="write ParsedMail digests, no timing")
    args = parser.parse_args()

    raws = corpus(args.n, args.seed, args.crlf)
    if args.fingerprints:
        return fingerprints(raws, args.fingerprints)
    pinned = pin_to_one_core()
    # One warm-up pass each: imports, regex compilation and codec caches are not the subject.
    boundary.uninstall()
    rate(bare, raws[:200])
    boundary.install()
    rate(parse_mail, raws[:200])
    bare_rates, parse_rates = [], []
    for _ in range(ROUNDS):
        # The baseline is the standard library as shipped; pytrs speeds up feedparser's
        # boundary matching process-wide (pytrs.parsers.boundary), which must not flatter it.
        boundary.uninstall()
        bare_rates.append(rate(bare, raws))
        boundary.install()
        parse_rates.append(rate(parse_mail, raws))
    best_bare, best_parse = max(bare_rates), max(parse_rates)
    ratio = best_bare / best_parse
    size = sum(map(len, raws)) / len(raws)

    print(f"corpus: {len(raws)} messages, {size / 1024:.1f} KiB average; {pinned}")
    print(f"email.message_from_bytes (compat32): {best_bare:10,.0f} msg/CPU s")
    print(f"pytrs parse_mail:                    {best_parse:10,.0f} msg/CPU s")
    print(f"parse_mail costs {ratio:.2f}x the bare parse (target <= 3x)")
    if args.json:
        figures = {
            "messages": len(raws),
            "average_bytes": round(size),
            "crlf": args.crlf,
            "seed": args.seed,
            "rounds": ROUNDS,
            "timer": "process_time",
            "bare_msgs_per_s": round(best_bare, 1),
            "parse_mail_msgs_per_s": round(best_parse, 1),
            "cost_ratio": round(ratio, 3),
            "bare_rounds": [round(r, 1) for r in bare_rates],
            "parse_mail_rounds": [round(r, 1) for r in parse_rates],
            "python": platform.python_version(),
            "cpu": pinned,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if ratio <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
