"""`pytrs responses export|import`: auto-responses (Znuny's auto_response rows) as TOML.

`import` validates the whole file first (every template compiled, queues, types and senders
looked up; every problem reported with the response's name and field) and changes nothing
unless all of it is valid. It creates or updates the responses it names and leaves the others
alone; `valid = false` retires one. Responses provisioned from `[[auto_responses]]` in
pytrs.toml are exported too (marked by a comment) but can only be changed there.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pytrs.commands.database import opened
from pytrs.commands.tomlfile import read_toml
from pytrs.config import Config
from pytrs.responders.response_toml import parse_toml, specs_to_toml
from pytrs.responders.responses import Problem, ResponseError, ResponseSpec
from pytrs.responders.stored_responses import import_responses
from pytrs.schema.response_repo import ImportReport, export_responses


def add_parser(sub: argparse._SubParsersAction) -> None:
    responses = sub.add_parser("responses", help="auto-response templates")
    actions = responses.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="print the stored auto-responses as TOML")
    export.add_argument("--output", help="write to this file instead of stdout")
    load = actions.add_parser("import", help="create or update auto-responses from a TOML file")
    load.add_argument("file")


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action == "import":
        return _import(config, args.file)
    text = specs_to_toml(asyncio.run(_export(config)))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _import(config: Config, file: str) -> int:
    specs, problems = parse_toml(read_toml(file, "responses"), relative_to=file)
    try:
        report = asyncio.run(_store(config, specs, problems))
    except ResponseError as exc:
        print(f"responses: {file} not imported, nothing changed:", file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 1
    print(
        f"{len(specs)} response(s) imported: {len(report.created)} created, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )
    return 0


async def _store(
    config: Config, specs: list[ResponseSpec], problems: list[Problem]
) -> ImportReport:
    # A ResponseError raised inside rolls the transaction back: all or nothing.
    async with opened(config) as db, db.transaction() as conn:
        return await import_responses(conn, specs, problems)


async def _export(config: Config) -> list[ResponseSpec]:
    async with opened(config) as db, db.connect() as conn:
        return await export_responses(conn)
