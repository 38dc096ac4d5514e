"""`pytrs.parsers` is pure (SPEC S1): importing it pulls in no asyncio, database or server code."""

from __future__ import annotations

import json
import subprocess
import sys

# Top-level modules (or pytrs subpackages) that would mean I/O or a server inside the parser.
FORBIDDEN = (
    "asyncio", "sqlalchemy", "aiosmtpd", "aiosmtplib", "aioimaplib", "aiosqlite", "asyncpg",
    "starlette", "uvicorn", "pytrs.schema", "pytrs.gateway", "pytrs.postmaster", "pytrs.web",
)  # fmt: skip


def test_parsers_import_no_io_libraries() -> None:
    code = (
        "import json, sys; import pytrs.parsers; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
