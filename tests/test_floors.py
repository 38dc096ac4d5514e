"""The floors of pytrs hold: no package imports one above it (docs/architecture.md, "Floors").

An AST scan of every module under pytrs/: module-level, function-level and TYPE_CHECKING
imports all count. Each failure names the module, the line and the import. Beside the table:
`parsers/` and `routing/` import nothing that does I/O (an allow-list of pure modules),
`schema/` imports no stage, and only `schema/database.py` knows which engine it talks to.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pytrs"

# Which units of pytrs each unit may import, bottom to top. A unit is a package or a top-level
# module of pytrs; "gateway.smarthost" allows that one module of a package. A unit always
# imports itself. The top floor (TOP) may import every other unit and is imported by none.
FLOORS: dict[str, frozenset[str]] = {
    # 0. ground floor: pure data and pure functions
    "vocabulary": frozenset(),
    # Working-time arithmetic: pure, and the configuration check asks it about [[calendars]].
    "calendars": frozenset(),
    # 1. the configuration
    "config": frozenset({"vocabulary", "calendars"}),
    # 2. pure stages and process-level helpers
    "parsers": frozenset({"vocabulary"}),
    "routing": frozenset({"vocabulary", "parsers"}),
    "runtime": frozenset({"vocabulary"}),
    "users": frozenset({"vocabulary"}),
    # 3. storage
    "schema": frozenset({"vocabulary", "config"}),
    # 3½. metrics: `metrics.registry` (the metric objects, no pytrs import) is what stages count
    # with; the rest reads the database for the `/metrics` document.
    "metrics": frozenset({"vocabulary", "config", "runtime", "schema"}),
    # 4. stages
    "authentication": frozenset({"vocabulary", "config", "parsers", "metrics.registry"}),
    "responders": frozenset(
        {"vocabulary", "config", "parsers", "routing", "schema", "authentication"}
    ),
    "tickets": frozenset(
        {"vocabulary", "config", "calendars", "parsers", "routing", "schema", "responders"}
    ),
    "gateway": frozenset(
        {"vocabulary", "config", "parsers", "runtime", "schema", "metrics.registry"}
    ),
    "outbound": frozenset(
        {"vocabulary", "config", "runtime", "schema", "gateway.smarthost", "metrics.registry"}
    ),
    "postmaster": frozenset(
        {"vocabulary", "config", "parsers", "routing", "runtime", "schema", "metrics.registry"}
        | {"authentication", "responders", "tickets", "gateway.addresses"}
    ),
    "scheduler": frozenset(
        {"vocabulary", "config", "runtime", "schema", "metrics.registry"}
        | {"authentication", "responders", "tickets", "calendars"}
    ),
    # 5. importers: copying another system's database (`pytrs import znuny`). Above the stages
    # whose rules they reuse: tickets are written by the ticket service's bulk writer, filters
    # checked by the postmaster's compiler, response texts translated by the responders.
    "importers": frozenset(
        {"vocabulary", "config", "routing", "schema", "responders", "postmaster", "tickets"}
    ),
}
TOP = frozenset(
    {"__main__", "cli", "commands", "daemon", "preflight", "provisioning", "web"}
    | {"worker_processes", "reload", "diagnostics"}
)
STAGES = frozenset(
    {"authentication", "responders", "tickets", "gateway", "outbound", "postmaster", "scheduler"}
    | {"importers"}
    | TOP
)

# What `parsers/` and `routing/` may import beside pytrs: the standard library's pure modules
# they use and the pure libraries they are built on. Decided from what they imported when the
# floors were drawn (all of it pure); anything else needs a reason to be added here.
PURE_STDLIB = frozenset(
    {"__future__", "binascii", "codecs", "collections", "dataclasses", "datetime", "email"}
    | {"enum", "functools", "hashlib", "heapq", "html", "re", "typing", "unicodedata"}
    | {"contextvars"}  # in-memory per-call state (parsers/html: the reused nh3 sanitiser)
    | {"json"}  # reading JSON text (parsers/feedback: Amazon SES notices)
)
# mailparser: only `mailparser.utils.receiveds_parsing`, which reads strings (parsers/received).
PURE_LIBRARIES = frozenset({"charset_normalizer", "nh3", "re2", "mailparser"})
# Modules of which only some names are pure: in-memory buffers, URL quoting.
PURE_NAMES = {"io": frozenset({"BytesIO", "StringIO"}), "urllib.parse": None}
# Builtins that read or write outside the process.
IO_BUILTINS = frozenset({"open", "print", "input"})

# Names of the engines; only schema/database.py, schema/fulltext.py (each engine's full-text
# index) and the Alembic migrations (which are history) may branch on them.
ENGINE_NAMES = frozenset({"postgresql", "sqlite", "mysql"})
ENGINE_ATTRIBUTES = frozenset({"dialect", "is_postgresql", "is_sqlite", "is_mysql"})
ENGINE_SQL = (
    "pg_",
    "PRAGMA",
    "SKIP LOCKED",
    "BEGIN IMMEDIATE",
    "sqlite_",
    "GET_LOCK",
    "ON DUPLICATE KEY",
)
DIALECT_MODULES = {"schema/database.py", "schema/fulltext.py"}
HISTORY = "schema/migrations/"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. pytrs.schema.filter_repo
    path: str  # relative to pytrs/, e.g. schema/filter_repo.py
    line: int
    target: str  # the imported module, e.g. pytrs.postmaster.filters

    def __str__(self) -> str:
        return f"pytrs/{self.path}:{self.line}: {self.module} imports {self.target}"


def modules() -> Iterator[tuple[str, str, ast.Module]]:
    """(dotted name, path relative to pytrs/, tree) of every module under pytrs/."""
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        parts = ("pytrs", *relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), relative.as_posix(), ast.parse(path.read_text(), str(path))


KNOWN = {name for name, _, _ in modules()}


def imports(module: str, path: str, tree: ast.Module) -> Iterator[Import]:
    """Every import anywhere in `tree`, relative ones resolved; `from package import module`
    names the module."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(module, path, node.lineno, sub if sub in KNOWN else base)


def unit(name: str) -> str:
    """The floor unit of a dotted pytrs name: pytrs.schema.seed → schema."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def allowed(importer: str, target: str) -> bool:
    own, other = unit(importer), unit(target)
    if own == other or own in TOP:
        return True
    if other in TOP:
        return False
    rules = FLOORS[own]
    return other in rules or any(
        target == f"pytrs.{rule}" or target.startswith(f"pytrs.{rule}.")
        for rule in rules
        if "." in rule
    )


def pytrs_imports() -> list[Import]:
    """Each import of pytrs once (several names from one module are one import)."""
    found = {
        one: None
        for module, path, tree in modules()
        for one in imports(module, path, tree)
        if one.target == "pytrs" or one.target.startswith("pytrs.")
    }
    return list(found)


def test_every_unit_is_on_a_floor() -> None:
    units = {unit(name) for name in KNOWN} - {""}
    placed = set(FLOORS) | TOP
    assert units <= placed, f"put these on a floor in FLOORS or TOP: {sorted(units - placed)}"


def test_no_upward_import() -> None:
    wrong = [found for found in pytrs_imports() if not allowed(found.module, found.target)]
    rules = "\n".join(
        f"  {name} may import {', '.join(sorted(may)) or 'nothing of pytrs'}"
        for name, may in FLOORS.items()
    )
    assert not wrong, (
        "imports against the floors:\n"
        + "\n".join(f"  {found}" for found in wrong)
        + f"\nthe table (tests/test_floors.py FLOORS):\n{rules}"
    )


def test_schema_imports_no_stage() -> None:
    wrong = [
        found
        for found in pytrs_imports()
        if unit(found.module) == "schema" and unit(found.target) in STAGES
    ]
    assert not wrong, "schema/ stores and loads; it imports no stage:\n" + "\n".join(
        f"  {found}" for found in wrong
    )


def _pure_import(target: str, names: list[str]) -> bool:
    top = target.partition(".")[0]
    if top == "pytrs" or top in PURE_STDLIB or top in PURE_LIBRARIES:
        return True
    if target in PURE_NAMES:
        only = PURE_NAMES[target]
        return only is None or (bool(names) and set(names) <= only)
    return False


@pytest.mark.parametrize("package", ["parsers", "routing"])
def test_pure_packages_do_no_io(package: str) -> None:
    wrong: list[str] = []
    for module, path, tree in modules():
        if unit(module) != package:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [(node.module or "", [alias.name for alias in node.names])]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in IO_BUILTINS
            ):
                wrong.append(f"pytrs/{path}:{node.lineno}: {module} calls {node.func.id}()")
                continue
            else:
                continue
            for target, names in targets:
                if not _pure_import(target, names):
                    shown = f"{target} ({', '.join(names)})" if names else target
                    wrong.append(f"pytrs/{path}:{node.lineno}: {module} imports {shown}")
    assert not wrong, (
        f"{package}/ is pure (no I/O, no asyncio, no database, no network); not on its "
        "allow-list (tests/test_floors.py PURE_*):\n" + "\n".join(f"  {w}" for w in wrong)
    )


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of `tree` (module, classes, functions)."""
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and ast.get_docstring(node, clean=False) is not None
        ):
            found.add(id(node.body[0].value))
    return found


def test_only_the_database_module_knows_the_engine() -> None:
    wrong: list[str] = []
    for module, path, tree in modules():
        if path in DIALECT_MODULES or path.startswith(HISTORY):
            continue
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            where = f"pytrs/{path}:{getattr(node, 'lineno', 0)}: {module}"
            if isinstance(node, ast.Attribute) and node.attr in ENGINE_ATTRIBUTES:
                wrong.append(f"{where} reads .{node.attr}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docstrings:
                    continue
                if node.value in ENGINE_NAMES or any(sql in node.value for sql in ENGINE_SQL):
                    wrong.append(f"{where} names the engine: {node.value[:60]!r}")
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                wrong += [f"{where} imports {n}" for n in names if n.startswith("sqlalchemy.dial")]
    assert not wrong, (
        "engine specifics (SQLite vs PostgreSQL) belong in schema/database.py, behind a "
        "function named for what it does:\n" + "\n".join(f"  {w}" for w in wrong)
    )


# The scan itself: a test that cannot fail proves nothing, so each check must catch a
# planted offence.


def _scan(source: str, module: str, path: str) -> list[Import]:
    tree = ast.parse(source)
    return [f for f in imports(module, path, tree) if f.target.startswith("pytrs.")]


def test_the_scan_sees_every_kind_of_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import filters\n"
        "from ..postmaster.control import canonical\n"
        "if TYPE_CHECKING:\n"
        "    from pytrs.responders.responses import ResponseTable\n"
        "def late():\n"
        "    import pytrs.gateway.smtp\n"
    )
    found = _scan(source, "pytrs.schema.filter_repo", "schema/filter_repo.py")
    assert [(f.line, f.target) for f in found] == [
        (2, "pytrs.schema"),
        (3, "pytrs.postmaster.control"),
        (5, "pytrs.responders.responses"),
        (7, "pytrs.gateway.smtp"),
    ]
    wrong = [str(f) for f in found if not allowed(f.module, f.target)]
    assert wrong == [
        "pytrs/schema/filter_repo.py:3: pytrs.schema.filter_repo imports pytrs.postmaster.control",
        "pytrs/schema/filter_repo.py:5: pytrs.schema.filter_repo imports "
        "pytrs.responders.responses",
        "pytrs/schema/filter_repo.py:7: pytrs.schema.filter_repo imports pytrs.gateway.smtp",
    ]


def test_the_table_reads_as_drawn() -> None:
    assert allowed("pytrs.outbound.sender", "pytrs.gateway.smarthost")
    assert not allowed("pytrs.outbound.sender", "pytrs.gateway.smtp")
    assert allowed("pytrs.postmaster.worker", "pytrs.gateway.addresses")
    assert not allowed("pytrs.gateway.smarthost", "pytrs.outbound.delivery")
    assert not allowed("pytrs.config.crosscheck", "pytrs.schema.seed")
    assert allowed("pytrs.daemon", "pytrs.postmaster.worker")
    assert not allowed("pytrs.postmaster.worker", "pytrs.daemon")
    assert not allowed("pytrs.vocabulary.znuny", "pytrs.config")
    assert not _pure_import("asyncio", [])
    assert not _pure_import("io", ["open"])
    assert not _pure_import("pathlib", ["Path"])
    assert _pure_import("io", ["BytesIO"]) and _pure_import("email.utils", ["getaddresses"])
