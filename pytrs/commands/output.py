"""Printing for the listing commands: JSON the same way everywhere, and columns that stay put.

`--json` is one JSON document (a list, `[]` when there is nothing to show) so that `jq` and
scripts can always parse it; `--jsonl` is one object per line, for streams and `grep`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any


def add_json_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="a JSON list ([] when empty)")
    group.add_argument("--jsonl", action="store_true", help="one JSON object per line")


def print_json(rows: Iterable[Mapping[str, Any]], args: argparse.Namespace) -> bool:
    """Print `rows` as `--json`/`--jsonl` asked; False when neither was given."""
    if args.jsonl:
        for row in rows:
            print(json.dumps(row, default=str, ensure_ascii=False))
        return True
    if args.json:
        print(json.dumps(list(rows), default=str, ensure_ascii=False, indent=2))
        return True
    return False


def fit(value: object, width: int) -> str:
    """`value` on one line in exactly `width` characters: padded, or cut with "…"."""
    text = " ".join(str(value if value is not None else "-").split()) or "-"
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width)
