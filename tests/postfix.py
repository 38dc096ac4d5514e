"""A throw-away Postfix in front of pytrs: the MTA whose pipe and LMTP transports deliver to it.

Debian's `postfix` package (installed by `.ci/run`), run with a configuration directory, queue
and log of its own under a temporary folder, listening on a free loopback port; nothing of the
system-wide instance is touched. Tests hand it mail over SMTP and read the outcome (`sent`,
`deferred`, `bounced`) from its `maillog`, as an admin would. The pipe transport runs its command
as an unprivileged user (Postfix refuses root there), so the interpreter and the checkout must be
readable by that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIPE_USER = "nobody"
# Postfix's own services, chroot off (a temporary instance lacks the chroot's files).
_SERVICES = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(Exception):
    """The test Postfix could not be started or did not do what was asked in time."""


@dataclass
class Outcome:
    """One delivery attempt as the maillog reports it."""

    status: str  # sent | deferred | bounced
    dsn: str
    reason: str


class PostfixServer:
    """A private Postfix relaying `domain` to `transport` (a master.cf service or `lmtp:…`)."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.etc = root / "etc"
        self.maillog = root / "maillog"

    @classmethod
    def start(cls, *, domain: str, transport: str, services: str = "") -> PostfixServer:
        """Start an instance in a folder of its own (removed by `stop`)."""
        binary = postfix_binary()
        # Not under pytest's tmp_path: Postfix's daemons run as user postfix and must reach
        # their queue, and pytest's folders are private to root.
        root = Path(tempfile.mkdtemp(prefix="pytrs-postfix-mta-"))
        root.chmod(0o755)
        server = cls(root, _free_port())
        server._write_config(domain, transport, services)
        done = subprocess.run(
            [binary, "-c", str(server.etc), "start"], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise PostfixError(f"postfix start failed: {done.stdout}{done.stderr}")
        server._wait_for_smtp()
        return server

    def stop(self) -> None:
        binary = postfix_binary()
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(
                [binary, "-c", str(self.etc), "stop"], capture_output=True, timeout=60, check=False
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def send(self, raw: bytes, sender: str, recipients: list[str]) -> None:
        """Hand `raw` to Postfix over SMTP (it queues it; delivery follows)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.sendmail(sender, recipients, raw)

    def outcome(self, recipient: str, within: float = 30.0) -> Outcome:
        """The first delivery outcome the maillog reports for `recipient`."""
        pattern = _outcome_pattern(recipient)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.maillog.read_text(errors="replace") if self.maillog.exists() else ""
            found = pattern.search(text)
            if found:
                return Outcome(status=found[2], dsn=found[1], reason=found[3])
            time.sleep(0.2)
        raise PostfixError(f"no delivery outcome for {recipient} within {within} s:\n{text}")

    def outcomes(self, recipient: str) -> list[Outcome]:
        """Every delivery outcome the maillog reports for `recipient` so far, in order."""
        text = self.maillog.read_text(errors="replace") if self.maillog.exists() else ""
        return [
            Outcome(status=found[2], dsn=found[1], reason=found[3])
            for found in _outcome_pattern(recipient).finditer(text)
        ]

    def wait_for(self, recipient: str, status: str, within: float = 60.0) -> Outcome:
        """The first outcome with `status` (`sent`, `deferred` …) for `recipient`."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = [o for o in self.outcomes(recipient) if o.status == status]
            if found:
                return found[0]
            time.sleep(0.2)
        raise PostfixError(
            f"no status={status} for {recipient} within {within} s: {self.outcomes(recipient)}"
        )

    def flush(self) -> None:
        """`postqueue -f`: try every deferred mail again now, as an admin does once the
        destination is back."""
        postqueue = shutil.which("postqueue", path="/usr/sbin:/usr/bin:/usr/local/sbin")
        if postqueue is None:
            raise PostfixError("postqueue is not installed (it comes with postfix)")
        done = subprocess.run(
            [postqueue, "-c", str(self.etc), "-f"], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise PostfixError(f"postqueue -f failed: {done.stdout}{done.stderr}")

    def _write_config(self, domain: str, transport: str, services: str) -> None:
        for folder in (self.etc, self.root / "queue", self.root / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        owner = pwd.getpwnam("postfix")
        os.chown(self.root / "data", owner.pw_uid, owner.pw_gid)
        self.maillog.touch()
        os.chown(self.maillog, owner.pw_uid, owner.pw_gid)
        settings = {
            "compatibility_level": "3.6",
            "config_directory": self.etc,
            "queue_directory": self.root / "queue",
            "data_directory": self.root / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.test.example",
            "mydestination": "",
            "relay_domains": domain,
            "relay_transport": transport,
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "default_transport": "error:no outbound mail in tests",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.root,
            "queue_run_delay": "30s",
            "minimal_backoff_time": "30s",
            "maximal_backoff_time": "60s",
            "recipient_delimiter": "+",
            "smtputf8_enable": "yes",
            "biff": "no",
        }
        main = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.etc / "main.cf").write_text(main)
        smtp = f"127.0.0.1:{self.port} inet  n       -       n       -       -       smtpd\n"
        master = _SERVICES.replace(_SERVICES.splitlines()[0] + "\n", smtp) + services
        (self.etc / "master.cf").write_text(master)
        for name in ("dynamicmaps.cf", "postfix-files"):
            source = Path("/etc/postfix") / name
            if source.exists():
                shutil.copy(source, self.etc / name)

    def _wait_for_smtp(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.1)
        raise PostfixError(f"postfix did not listen on 127.0.0.1:{self.port}")


def _outcome_pattern(recipient: str) -> re.Pattern[str]:
    return re.compile(
        rf"to=<{re.escape(recipient)}>.*?dsn=([\d.]+), status=(\w+) \((.*)\)$", re.MULTILINE
    )


def postfix_binary() -> str:
    if os.geteuid() != 0:
        raise PostfixError("the Postfix test harness must run as root (Postfix drops privileges)")
    binary = shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        raise PostfixError("postfix is not installed: apt-get install postfix (.ci/run does)")
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unprivileged_python(user: str) -> tuple[str, str]:
    """An interpreter and PYTHONPATH with which `user` can run this checkout's pytrs.

    The test interpreter may live where only root can read it (pyenv under /root); Debian's
    /usr/bin/python3 of the same minor version then runs the same packages. Skips the test
    when neither works: the machine, not pytrs, is what is missing.
    """
    paths = sysconfig.get_paths()
    pythonpath = os.pathsep.join(dict.fromkeys([str(ROOT), paths["purelib"], paths["platlib"]]))
    for candidate in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                user,
                "--",
                "/usr/bin/env",
                f"PYTHONPATH={pythonpath}",
                candidate,
                "-c",
                "import pytrs.cli",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0:
            return candidate, pythonpath
    pytest.skip(f"user {user} cannot read this checkout or its interpreter ({ROOT})")
