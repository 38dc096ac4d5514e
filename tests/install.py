"""What the install tests read and emulate: the README's install section and the systemd unit.

The README section "Installing as a service" is the source of the commands, the configuration
and the Postfix lines; `systemd/pytrs.service` is the source of what systemd does. Both are
read here, never copied into the tests, so the documentation and the tests cannot drift apart.
`Emulation` does for the unit, as root and without systemd as PID 1, what systemd would: the
user, the state directory, the credentials, the umask, the working directory, the environment
and the notify socket, then `ExecStartPre=` and `ExecStart=` as the unit's user.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
UNIT = ROOT / "systemd" / "pytrs.service"
SECTION = "## Installing as a service"
# The paths the README installs to, each replaced by a folder of the test's.
INSTALL_PATHS = (
    "/run/credentials/pytrs.service",
    "/etc/systemd/system",
    "/etc/pytrs",
    "/opt/pytrs",
    "/var/lib/pytrs",
)
# The word `pytrs` alone (a user, group, role or database name), not inside a path or file name.
_NAME = re.compile(r"(?<![\w./-])pytrs(?![\w./-])")


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end >= 0 else len(text)]


def code_blocks(section: str, language: str) -> list[str]:
    """The fenced blocks of `language` ("" for unmarked ones), in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def shell_commands(block: str) -> list[str]:
    """The commands of a shell block: continued lines joined, a here-document kept whole."""
    commands: list[str] = []
    lines = iter(block.splitlines())
    for line in lines:
        command = line
        while command.endswith("\\"):
            command = command[:-1] + next(lines)
        heredoc = re.search(r"<<'(\w+)'", command)
        if heredoc:
            body = []
            for inner in lines:
                body.append(inner)
                if inner == heredoc[1]:
                    break
            command += "\n" + "\n".join(body)
        if command.strip():
            commands.append(command)
    return commands


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, by key, in order (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@dataclass
class Install:
    """Where one test's install lives, and how README text is rewritten to point there."""

    root: Path
    user: str
    ports: dict[str, int] = field(default_factory=dict)

    def path(self, installed: str) -> Path:
        return self.root / installed.lstrip("/")

    def rewrite(self, text: str) -> str:
        """Shell or configuration text: paths, ports and the user's name."""
        return _NAME.sub(self.user, self.rewrite_paths(text))

    def rewrite_paths(self, text: str) -> str:
        for installed in INSTALL_PATHS:
            text = text.replace(installed, str(self.path(installed)))
        for address, port in self.ports.items():
            text = text.replace(address, f"127.0.0.1:{port}")
        return text


def write_launcher(install: Install, python: str, pythonpath: str) -> None:
    """`/opt/pytrs/.venv/bin/pytrs` of the install: this checkout, run by `python`."""
    launcher = install.path("/opt/pytrs/.venv/bin/pytrs")
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(
        f'#!/bin/sh\nexec /usr/bin/env PYTHONPATH={pythonpath} {python} -m pytrs "$@"\n'
    )
    launcher.chmod(0o755)


class NotifySocket:
    """The socket systemd gives a Type=notify service: collects the states it is sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        path.chmod(0o777)  # the service's user sends to it, as to systemd's
        self.states: list[str] = []

    def wait_for(self, state: str, within: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + within
        self.sock.settimeout(0.2)
        while state not in self.states:
            if time.monotonic() > deadline or not alive():
                raise AssertionError(f"no {state} within {within} s (got {self.states})")
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.states.extend(message.splitlines())

    def close(self) -> None:
        self.sock.close()


class Emulation:
    """What systemd does to start the unit, done by hand (systemd is not PID 1 here)."""

    def __init__(self, install: Install, unit_text: str) -> None:
        self.install = install
        # Only the paths: StateDirectory=pytrs names a folder, User=pytrs the test's user.
        self.settings = unit_settings(install.rewrite_paths(unit_text))
        assert self.settings["User"] == self.settings["Group"] == ["pytrs"]
        self.user = pwd.getpwnam(install.user)
        self.process: subprocess.Popen[bytes] | None = None
        self.notify = NotifySocket(install.root / "notify")
        self.journal_path = install.root / "journal"
        self.journal = self.journal_path.open("ab")

    def one(self, key: str) -> str:
        [value] = self.settings[key]
        return value

    @property
    def state_directory(self) -> Path:
        return self.install.path("/var/lib") / self.one("StateDirectory")

    @property
    def credentials(self) -> Path:
        return self.install.path("/run/credentials/pytrs.service")

    def prepare(self) -> None:
        """StateDirectory=, RuntimeDirectory= and LoadCredential=, as systemd sets them up."""
        state = self.state_directory
        state.mkdir(parents=True, exist_ok=True)
        os.chown(state, self.user.pw_uid, self.user.pw_gid)
        state.chmod(int(self.settings.get("StateDirectoryMode", ["0755"])[0], 8))
        runtime = self.install.path("/run") / self.one("RuntimeDirectory")
        runtime.mkdir(parents=True, exist_ok=True)
        os.chown(runtime, self.user.pw_uid, self.user.pw_gid)
        runtime.chmod(int(self.settings.get("RuntimeDirectoryMode", ["0755"])[0], 8))
        self.credentials.mkdir(parents=True, exist_ok=True)
        for entry in self.settings.get("LoadCredential", []):
            name, source = entry.split(":", 1)
            self._load_credential(name, Path(source))
        os.chown(self.credentials, self.user.pw_uid, self.user.pw_gid)
        self.credentials.chmod(0o500)

    def _load_credential(self, name: str, source: Path) -> None:
        # systemd(252): a directory gives each file as "<name>_<file>"; a missing source fails
        # the start.
        if not source.exists():
            raise AssertionError(f"LoadCredential={name}:{source}: no such file or folder")
        files = sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink())
        pairs = [(f"{name}_{p.name}", p) for p in files] if source.is_dir() else [(name, source)]
        for target_name, path in pairs:
            target = self.credentials / target_name
            shutil.copyfile(path, target)
            os.chown(target, self.user.pw_uid, self.user.pw_gid)
            target.chmod(0o400)

    def environment(self) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "USER": self.user.pw_name,
            "LOGNAME": self.user.pw_name,
            "HOME": self.user.pw_dir,
            "CREDENTIALS_DIRECTORY": str(self.credentials),
            "STATE_DIRECTORY": str(self.state_directory),
            "NOTIFY_SOCKET": str(self.notify.path),
        }
        for assignment in self.settings.get("Environment", []):
            for word in shlex.split(assignment):
                key, value = word.split("=", 1)
                env[key] = value
        return env

    def _spawn(self, command: str, *, main: bool = False) -> subprocess.Popen[bytes]:
        name, words = self.user.pw_name, shlex.split(command)
        env = self.environment()
        if main and "WatchdogSec" in self.settings:
            # systemd tells the main process (only) how often to ping.
            env["WATCHDOG_USEC"] = str(int(float(self.one("WatchdogSec")) * 1_000_000))
        return subprocess.Popen(
            ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--", *words],
            cwd=self.one("WorkingDirectory"),
            env=env,
            umask=int(self.one("UMask"), 8),
            # The journal: a file, so that a talkative daemon never blocks on a full pipe.
            stdout=self.journal,
            stderr=subprocess.STDOUT,
        )

    def start(self, within: float = 90.0) -> None:
        """`systemctl start`: ExecStartPre= each to success, then ExecStart= until READY=1."""
        self.prepare()
        for command in self.settings.get("ExecStartPre", []):
            pre = self._spawn(command)
            pre.wait(timeout=within)
            assert pre.returncode == 0, f"ExecStartPre={command}: {self.read_journal()}"
        self.process = self._spawn(self.one("ExecStart"), main=True)
        try:
            self.notify.wait_for("READY=1", within, self.process_alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.read_journal()}") from None

    def process_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> tuple[int, str]:
        """`systemctl stop`: KillSignal=, then wait TimeoutStopSec=; (exit code, output)."""
        assert self.process is not None
        self.process.send_signal(signal.Signals[self.one("KillSignal")])
        self.process.wait(timeout=float(self.one("TimeoutStopSec")))
        return self.process.returncode, self.read_journal()

    def read_journal(self) -> str:
        return self.journal_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process_alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=30)
        self.notify.close()
        self.journal.close()
