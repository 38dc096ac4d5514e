"""A throw-away Cyrus IMAP 3.6 for tests: the second real IMAP server pytrs fetches from.

Cyrus differs from Dovecot where it matters to a fetcher: personal folders live under `INBOX.`
with `.` as the hierarchy separator (NAMESPACE says so) and a top-level CREATE is refused.
`CyrusServer.start` writes a private `imapd.conf`/`cyrus.conf` and a sasldb, starts `cyrmaster`
in a process session of its own on a free port of 127.0.0.1, and `stop()` kills that session.
Helpers put messages in and look at mailboxes with the standard library's `imaplib`, so a test
never checks the fetcher with the fetcher.

Everything lives in a directory of its own under the system temporary directory (Cyrus runs as
the `cyrus` user, which cannot enter pytest's private tree); `stop()` removes it. The tests must
run as root. Debian's `cyrus-imapd` conflicts with `dovecot-imapd` (both provide imap-server), so
installing it would remove the Dovecot the other tests need: `.ci/run` installs `cyrus-common`
and `sasl2-bin` and unpacks `cyrus-imapd`'s imapd and idled under CYRUS_UNPACKED without
installing it. An installed `cyrus-imapd` is used as well.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .imap_reader import MailboxReader, quote_mailbox

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 60.0
CYRUS_USER = "cyrus"
ADMIN = "cyrusadmin"
SERVERNAME = "imap.test.local"


class CyrusError(RuntimeError):
    """Cyrus is missing, failed to start, or refused a helper's command."""


# Where `.ci/run` unpacks Debian's cyrus-imapd (`dpkg -x`) next to an installed dovecot-imapd.
CYRUS_UNPACKED = Path(os.environ.get("PYTRS_CYRUS_UNPACKED", "/opt/pytrs-cyrus"))
CYRUS_LIBEXEC = Path("/usr/lib/cyrus/bin")


@dataclass(frozen=True)
class CyrusBinaries:
    master: str
    saslpasswd: str
    ctl_cyrusdb: str
    imapd: str
    idled: str


def cyrus_binaries() -> CyrusBinaries | None:
    """The programs a private instance needs, or None when one of them is not there."""
    path = "/usr/sbin:/usr/local/sbin:/usr/bin"
    master, saslpasswd = (
        shutil.which("cyrmaster", path=path),
        shutil.which("saslpasswd2", path=path),
    )
    ctl = CYRUS_LIBEXEC / "ctl_cyrusdb"
    daemons = next(
        (
            (str(d / "imapd"), str(d / "idled"))
            for d in (CYRUS_LIBEXEC, CYRUS_UNPACKED / "usr/lib/cyrus/bin")
            if os.access(d / "imapd", os.X_OK) and os.access(d / "idled", os.X_OK)
        ),
        None,
    )
    if master is None or saslpasswd is None or daemons is None or not os.access(ctl, os.X_OK):
        return None
    return CyrusBinaries(master, saslpasswd, str(ctl), *daemons)


class CyrusServer(MailboxReader):
    """A running private Cyrus; create it with `CyrusServer.start()`."""

    host: str = HOST
    error = CyrusError

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.imap_port = port
        self.admin_password = "admin-" + os.urandom(6).hex()
        self._process: subprocess.Popen[bytes] | None = None
        self._pgids: list[int] = []
        self._finalizer = weakref.finalize(self, _cleanup, self._pgids, root)

    @classmethod
    def start(cls) -> CyrusServer:
        """Configure and start Cyrus; wait until its IMAP port greets (CyrusError otherwise)."""
        binaries = cyrus_binaries()
        if binaries is None:
            raise CyrusError(
                "Cyrus IMAP is not installed (cyrus-common, sasl2-bin and cyrus-imapd's imapd: "
                ".ci/run sets them up)"
            )
        if os.geteuid() != 0:
            raise CyrusError("the Cyrus test harness must run as root (Cyrus drops privileges)")
        for attempt in range(3):
            root = Path(tempfile.mkdtemp(prefix="pytrs-cyrus-"))
            server = cls(root, _free_port())
            try:
                server._prepare(binaries)
                server._launch(binaries.master)
                server._ensure_user(ADMIN, server.admin_password, mailbox=False)
                return server
            except BaseException as exc:
                server.stop()
                if attempt == 2 or "already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _prepare(self, binaries: CyrusBinaries) -> None:
        self.binaries = binaries
        cyrus = pwd.getpwnam(CYRUS_USER)
        self.root.chmod(0o755)
        for sub in ("conf", "spool", "run", "run/socket", "run/proc", "run/lock", "sieve"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        conf = self.root / "conf"
        (conf / "imapd.conf").write_text(self._imapd_conf())
        (conf / "cyrus.conf").write_text(self._cyrus_conf())
        self._set_password(ADMIN, self.admin_password)
        for path in (self.root, *self.root.rglob("*")):
            os.chown(path, cyrus.pw_uid, cyrus.pw_gid)

    def _imapd_conf(self) -> str:
        r = self.root
        return f"""\
configdirectory: {r / "conf"}
partition-default: {r / "spool"}
sievedir: {r / "sieve"}
proc_path: {r / "run/proc"}
mboxname_lockpath: {r / "run/lock"}
lmtpsocket: {r / "run/socket/lmtp"}
idlesocket: {r / "run/socket/idle"}
notifysocket: {r / "run/socket/notify"}
master_pid_file: {r / "run/master.pid"}
admins: {ADMIN}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {r / "sasldb2"}
sasl_mech_list: PLAIN LOGIN
servername: {SERVERNAME}
virtdomains: off
imapidlepoll: 1
unixhierarchysep: no
altnamespace: no
syslog_prefix: pytrs-cyrus
"""

    def _cyrus_conf(self) -> str:
        conf = self.root / "conf" / "imapd.conf"
        b = self.binaries
        return f"""\
START {{
  recover cmd="{b.ctl_cyrusdb} -C {conf} -r"
}}
SERVICES {{
  imap cmd="{b.imapd} -C {conf}" listen="{self.host}:{self.imap_port}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
  idled cmd="{b.idled} -C {conf}"
}}
"""

    def _set_password(self, user: str, password: str) -> None:
        done = subprocess.run(
            [self.binaries.saslpasswd, "-p", "-f", str(self.root / "sasldb2"), "-u", SERVERNAME,
             "-c", user],
            input=password.encode(), capture_output=True, timeout=IO_TIMEOUT, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise CyrusError(f"saslpasswd2 {user} failed: {done.stderr.decode(errors='replace')}")
        cyrus = pwd.getpwnam(CYRUS_USER)
        os.chown(self.root / "sasldb2", cyrus.pw_uid, cyrus.pw_gid)

    def _launch(self, binary: str) -> None:
        conf = self.root / "conf"
        with open(self.root / "cyrmaster.out", "wb") as output:
            self._process = subprocess.Popen(
                [binary, "-D", "-C", str(conf / "imapd.conf"), "-M", str(conf / "cyrus.conf"),
                 "-p", str(self.root / "run/master.pid")],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._pgids.append(self._process.pid)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._greets():
            if self._process.poll() is not None:
                raise CyrusError(f"cyrmaster exited with {self._process.returncode}{self._tail()}")
            if time.monotonic() > deadline:
                raise CyrusError(f"port {self.imap_port} did not greet in time{self._tail()}")
            time.sleep(0.1)

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.imap_port), timeout=1.0) as sock:
                if not sock.recv(256).startswith(b"* OK"):
                    return False
                sock.sendall(b"a LOGOUT\r\n")
                sock.recv(256)
                return True
        except OSError:
            return False

    def _tail(self) -> str:
        try:
            text = (self.root / "cyrmaster.out").read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        return "; output:\n" + "\n".join(text.splitlines()[-30:])

    def stop(self) -> None:
        """Kill the whole process session and remove the instance's directory (safe twice)."""
        process, self._process = self._process, None
        self._finalizer.detach()
        try:
            if process is not None:
                _kill_group(process)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- users and mailboxes -----------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """A user that can log in, with its INBOX (`user.NAME`, created by the admin)."""
        self._ensure_user(name, password, mailbox=True)

    def _ensure_user(self, name: str, password: str, *, mailbox: bool) -> None:
        self._set_password(name, password)
        if mailbox:
            with self.imap(ADMIN, self.admin_password) as conn:
                _check(*conn.create(f"user.{name}"), f"CREATE user.{name}")

    @contextlib.contextmanager
    def imap(self, user: str, password: str) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(self.host, self.imap_port, timeout=IO_TIMEOUT)
        try:
            conn.login(user, password)
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()

    def append(self, user: str, password: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.imap(user, password) as conn:
            _check(*conn.append(quote_mailbox(folder), None, None, raw), f"APPEND to {folder}")

    def folders(self, user: str, password: str) -> list[str]:
        with self.imap(user, password) as conn:
            typ, data = conn.list()
            _check(typ, data, "LIST")
        names = [line for line in data if isinstance(line, bytes)]
        return [line.decode().rsplit(" ", 1)[1].strip('"') for line in names]


def _check(typ: str, data: list, what: str) -> None:
    if typ != "OK":
        raise CyrusError(f"{what} failed: {typ} {data!r}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    pgid = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
            # Children of the session (imapd, idled) go with the group.
            deadline = time.monotonic() + STOP_TIMEOUT
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _group_alive(pgid):
                return
    raise CyrusError(f"processes of group {pgid} survived SIGKILL")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies still count for killpg; look at /proc for live members.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _cleanup(pgids: list[int], root: Path) -> None:
    """Last resort when a server is garbage-collected or the interpreter exits unstopped."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)
