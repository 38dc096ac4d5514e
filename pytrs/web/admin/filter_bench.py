"""The postmaster filters' test bench: what the rules and routing would do with one mail.

Place in the flow: an administrator pastes or uploads a raw mail; the bench runs the same dry
run as `pytrs filters test` (`postmaster.dryrun`: the worker's own parse, control headers,
rules and routing, reading the database and writing nothing) and shows each rule's verdict
and why, the control headers after the filters, and the routing decision. The rule form of
`filters` runs it too, with the rule being edited in place of the stored one. Like the CLI,
the bench refuses to run rules that would not work as stored (`check_rules`), saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.config import Config
from pytrs.postmaster.dryrun import DryRun, describe_routing, dry_run
from pytrs.postmaster.filter_rules import check_rules
from pytrs.postmaster.filters import Rule
from pytrs.schema.database import Database
from pytrs.schema.filter_repo import load_rules
from pytrs.web.access import WebUser, admin_page
from pytrs.web.pages import render

BENCH_URL = "/admin/filters/test"


@dataclass(frozen=True, slots=True)
class BenchInput:
    """A mail to test and how it arrived, as the bench form holds it."""

    raw: bytes = b""
    pasted: str = ""  # shown again in the form (an upload is not)
    recipient: str = ""
    trusted: bool = False

    # The largest mail the bench takes, pasted or uploaded.
    MAX_BYTES: ClassVar[int] = 10 * 1024 * 1024

    @classmethod
    async def read(cls, form: FormData) -> BenchInput:
        """The mail from the form: the uploaded file when one was chosen, else the text."""
        pasted = form.get("mail", "")
        pasted = pasted if isinstance(pasted, str) else ""
        raw = pasted.encode("utf-8", "surrogateescape")
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(cls.MAX_BYTES + 1)
        recipient = form.get("recipient", "")
        return cls(
            raw=raw,
            pasted=pasted,
            recipient=recipient.strip() if isinstance(recipient, str) else "",
            trusted=form.get("trusted") == "on",
        )


@dataclass(frozen=True, slots=True)
class BenchResult:
    """The dry run, or the one-line reasons it could not run."""

    run: DryRun | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    routing: tuple[str, ...] = field(default=())  # `describe_routing`'s lines, as the CLI's


async def run_bench(
    config: Config, db: Database, bench: BenchInput, *, rules: Sequence[Rule] | None = None
) -> BenchResult:
    """The dry run of `bench`'s mail with the stored rules, or with `rules` when given (a
    set being edited); changes nothing."""
    if not bench.raw.strip():
        return BenchResult(problems=("Paste a mail or choose a file to test.",))
    if len(bench.raw) > BenchInput.MAX_BYTES:
        limit = BenchInput.MAX_BYTES // (1024 * 1024)
        return BenchResult(problems=(f"The mail is larger than {limit} MiB.",))
    checked = list(rules) if rules is not None else await load_rules(db)
    problems, warnings = await check_rules(db, checked)
    if problems:
        return BenchResult(problems=tuple(str(p) for p in problems))
    run = await dry_run(
        config, db, bench.raw, trusted=bench.trusted, recipient=bench.recipient, rules=checked
    )
    return BenchResult(run, (), tuple(str(w) for w in warnings), tuple(describe_routing(run)))


@admin_page
async def filter_bench(request: Request, user: WebUser) -> Response:
    if request.method == "GET":
        return render(request, "admin/filter_bench.html", {"bench": BenchInput()})
    # Leaving the block closes an uploaded file's spool.
    async with request.form(max_files=1, max_part_size=BenchInput.MAX_BYTES) as form:
        bench = await BenchInput.read(form)
    result = await run_bench(request.app.state.config, request.app.state.db, bench)
    status = 400 if result.problems else 200
    context = {"bench": bench, "result": result}
    return render(request, "admin/filter_bench.html", context, status_code=status)


routes: list[BaseRoute] = [
    Route(BENCH_URL, filter_bench, methods=["GET", "POST"], name="admin_filter_bench"),
]
