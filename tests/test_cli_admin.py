"""A first-time admin's mistakes, answered by the real `pytrs` command: one line saying what
is wrong, the documented exit code, no traceback (README, Commands)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_cli_errors import cli, one_line


def unused_config(tmp_path: Path) -> Path:
    """A configuration whose database is never reached: the command fails before it."""
    path = tmp_path / "pytrs.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/never.db"\n')
    return path


@pytest.mark.parametrize("command", ["filters", "responses"])
def test_import_files_that_will_not_do(tmp_path: Path, command: str) -> None:
    config = str(unused_config(tmp_path))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xf0\x28\x8c\x28 = 1\n")
    one_line(cli(command, "import", str(binary), "--config", config), 1, "not UTF-8 text")
    broken = tmp_path / "broken.toml"
    broken.write_text("not toml [[[\n")
    one_line(cli(command, "import", str(broken), "--config", config), 1, "TOML syntax error")
    missing = str(tmp_path / "missing.toml")
    err = one_line(cli(command, "import", missing, "--config", config), 2, "cannot read")
    assert err.strip().endswith("No such file or directory"), err
    one_line(cli(command, "import", str(tmp_path), "--config", config), 2, "Is a directory")
    assert not (tmp_path / "never.db").exists()
