"""A throw-away Dovecot (IMAP, POP3 and their implicit-TLS variants) for integration tests.

The mailbox fetchers in `pytrs.gateway` are tested against a real server: `DovecotServer.start`
writes a private configuration, starts `dovecot -F` in a process session of its own on free ports
of 127.0.0.1, and `stop()` kills that whole session. Helpers put messages in and look at mailboxes
with the standard library's `imaplib`, so a test never checks the fetcher with the fetcher.

The configuration, the self-signed certificate and the log live under the test's `tmp_path`; they
are only read or written by Dovecot's root processes. Everything that Dovecot's unprivileged
processes touch (base_dir, state_dir, the passwd files, mail homes) lives in a directory of its own
under the system temporary directory, because pytest keeps its temporary tree private (mode 700)
and resets `/tmp/pytest-of-<user>` to 700 whenever any pytest session starts. That directory is
removed by `stop()`.

Dovecot must be installed (`.ci/run` installs `dovecot-imapd` and `dovecot-pop3d`) and the tests
must run as root, as Dovecot needs root to switch to its login, auth and mail users.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TextIO

import pytest

from .imap_reader import MailboxReader, quote_mailbox

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# Generous, so that helpers can append a 30 MB message on a slow CI machine.
IO_TIMEOUT = 60.0
MAIL_USER = "mail"
# The group of default_internal_user, which the auth process runs as (Debian's package).
AUTH_GROUP = "dovecot"
LISTENERS = ("imap", "imaps", "pop3", "pop3s")


class DovecotError(RuntimeError):
    """Dovecot is missing, failed to start or stop, or refused a helper's command."""


class DovecotServer(MailboxReader):
    """A running private Dovecot; create it with `DovecotServer.start(tmp_path)`."""

    host: str = HOST
    error = DovecotError

    def __init__(self, config_dir: Path, runtime_dir: Path, ports: dict[str, int]) -> None:
        self.config_dir = config_dir
        self.runtime_dir = runtime_dir
        self.imap_port = ports["imap"]
        self.imaps_port = ports["imaps"]
        self.pop3_port = ports["pop3"]
        self.pop3s_port = ports["pop3s"]
        self.ca_file = config_dir / "cert.pem"
        self.log_path = config_dir / "dovecot.log"
        self.passwd_dir = runtime_dir / "passwd.d"
        self.home_dir = runtime_dir / "home"
        self.pgid = 0
        self._process: subprocess.Popen[bytes] | None = None
        # If a test forgets stop(), the group is killed when the server is collected or at exit.
        self._pgids: list[int] = []
        self._finalizer = weakref.finalize(self, _cleanup, self._pgids, runtime_dir)

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def start(cls, tmp_path: Path, *, oauth2_introspection_url: str | None = None) -> DovecotServer:
        """Configure and start a Dovecot under `tmp_path`; wait until every port greets.

        With `oauth2_introspection_url`, AUTHENTICATE XOAUTH2 and OAUTHBEARER are offered and
        checked by Dovecot's `oauth2` passdb, which POSTs `token=<token>` to that URL and expects
        JSON `{"active": true, "username": "<user>"}`.
        Raises DovecotError when Dovecot is missing or does not come up within 20 s.
        """
        binary = _dovecot_binary()
        # A free port can be taken by someone else between picking and binding; try again then.
        for attempt in range(3):
            runtime_dir = Path(tempfile.mkdtemp(prefix="pytrs-dovecot-"))
            server = cls(tmp_path / f"dovecot-{attempt}", runtime_dir, _free_ports())
            try:
                server._prepare(oauth2_introspection_url)
                server._launch(binary)
                return server
            except BaseException as exc:
                server.stop()
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _prepare(self, oauth2_url: str | None) -> None:
        self.config_dir.mkdir(parents=True)
        self.runtime_dir.chmod(0o755)
        mail = pwd.getpwnam(MAIL_USER)
        self.home_dir.mkdir()
        os.chown(self.home_dir, mail.pw_uid, mail.pw_gid)
        self.passwd_dir.mkdir(mode=0o750)
        os.chown(self.passwd_dir, 0, _auth_gid())
        _make_certificate(self.ca_file, self.config_dir / "key.pem")
        if oauth2_url:
            (self.runtime_dir / "oauth2.conf.ext").write_text(_oauth2_config(oauth2_url))
        (self.config_dir / "dovecot.conf").write_text(self._config(mail, oauth2_url is not None))

    def _launch(self, binary: str) -> None:
        with open(self.config_dir / "dovecot.stdout", "wb") as output:
            self._process = subprocess.Popen(
                [binary, "-F", "-c", str(self.config_dir / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self._process.pid
        self._pgids.append(self.pgid)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        waiting = {
            self.imap_port: (False, b"* OK"),
            self.imaps_port: (True, b"* OK"),
            self.pop3_port: (False, b"+OK"),
            self.pop3s_port: (True, b"+OK"),
        }
        while waiting:
            if self._process.poll() is not None:
                raise DovecotError(f"dovecot exited with {self._process.returncode}{self._tail()}")
            # After a fatal error the master lingers for about 2 s before it exits.
            if "Fatal: " in self._output():
                raise DovecotError(f"dovecot failed to start{self._tail()}")
            if time.monotonic() > deadline:
                raise DovecotError(f"ports {sorted(waiting)} did not greet in time{self._tail()}")
            for port, (tls, greeting) in list(waiting.items()):
                if self._greets(port, tls, greeting):
                    del waiting[port]
            if waiting:
                time.sleep(0.05)

    def _greets(self, port: int, tls: bool, greeting: bytes) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=0.5) as raw:
                if not tls:
                    return _greeted_and_left(raw, greeting)
                with self.ssl_context().wrap_socket(raw, server_hostname=self.host) as sock:
                    return _greeted_and_left(sock, greeting)
        except OSError:
            return False

    def stop(self) -> None:
        """Kill Dovecot's whole process group, wait for it, and remove the runtime directory.

        Safe to call twice. Raises DovecotError if a process of the group survives SIGKILL.
        """
        process, self._process = self._process, None
        self._finalizer.detach()
        try:
            if process is not None:
                _kill_group(process)
        finally:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- users and mailboxes -----------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create a mail account, usable at once.

        Each user has a passwd file of its own: Dovecot stats a passwd file at most once a
        second, so a user appended to a shared file right after a login could stay unknown for
        up to a second. (Changing an existing user's password has that delay.)
        """
        if not name or name.startswith(".") or any(c in name for c in ":/\n"):
            raise ValueError(f"user name not allowed in a passwd file: {name!r}")
        if any(c in password for c in ":\n"):
            raise ValueError(f"password of {name!r} not allowed in a passwd file")
        mail = pwd.getpwnam(MAIL_USER)
        home = self.home_dir / name
        home.mkdir(mode=0o700, exist_ok=True)
        os.chown(home, mail.pw_uid, mail.pw_gid)
        entry = self.passwd_dir / name
        partial = entry.with_name(f".{name}.tmp")
        partial.write_text(f"{name}:{{PLAIN}}{password}::::::\n")
        os.chown(partial, 0, _auth_gid())
        partial.chmod(0o640)
        partial.replace(entry)

    def append(
        self, user: str, password: str, raw: bytes, folder: str = "INBOX", flags: str = ""
    ) -> int:
        """APPEND `raw` to `folder` with `flags` (e.g. "\\Seen \\Flagged"); return its UID."""
        with self.imap(user, password) as conn:
            typ, data = conn.append(quote_mailbox(folder), flags or None, None, raw)
            _check(typ, data, f"APPEND to {folder}")
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            if found:
                return int(found.group(1))
            # Without UIDPLUS the newest message is the one just appended (helpers only).
            _check(*conn.select(quote_mailbox(folder), readonly=True), f"SELECT {folder}")
            typ, data = conn.uid("SEARCH", "ALL")
            _check(typ, data, "UID SEARCH")
            return max(int(uid) for uid in data[0].split())

    def create_folder(self, user: str, password: str, folder: str) -> None:
        """CREATE and SUBSCRIBE `folder` (hierarchy separator "/"); no error if it exists."""
        with self.imap(user, password) as conn:
            typ, data = conn.create(quote_mailbox(folder))
            if typ != "OK" and b"ALREADYEXISTS" not in (data[0] or b""):
                _check(typ, data, f"CREATE {folder}")
            _check(*conn.subscribe(quote_mailbox(folder)), f"SUBSCRIBE {folder}")

    def count(self, user: str, password: str, folder: str = "INBOX") -> int:
        """STATUS (MESSAGES): \\Deleted messages not yet expunged still count."""
        return self._status(user, password, folder, "MESSAGES")

    def uidvalidity(self, user: str, password: str, folder: str = "INBOX") -> int:
        """STATUS (UIDVALIDITY) of `folder`."""
        return self._status(user, password, folder, "UIDVALIDITY")

    def fetch(self, user: str, password: str, uid: int, folder: str = "INBOX") -> bytes:
        """The raw message `uid` of `folder` (BODY.PEEK[], so \\Seen is not set)."""
        with self.imap(user, password) as conn:
            _check(*conn.select(quote_mailbox(folder), readonly=True), f"EXAMINE {folder}")
            typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            _check(typ, data, f"UID FETCH {uid}")
        for item in data:
            if isinstance(item, tuple):
                return item[1]
        raise DovecotError(f"no message with UID {uid} in {folder}")

    def reset_uidvalidity(self, user: str, folder: str = "INBOX", *, renumber: bool = True) -> None:
        """Make Dovecot give `folder` a new UIDVALIDITY, keeping its messages and their flags.

        A maildir's UIDVALIDITY and UIDs come from the header and lines of its `dovecot-uidlist`
        (the index only caches them). This rewrites that file under Dovecot's own dotlock with
        UIDVALIDITY + 1 and, with `renumber`, the messages renumbered 1..n and the next UID n+1
        (as if the folder had been recreated), then runs `doveadm force-resync`, so that Dovecot
        resets the index at once instead of on the folder's next full sync (STATUS alone would
        keep answering the cached value). A session that has the folder selected is told
        `* BYE IMAP session state is inconsistent, please relogin.` on its next command.
        Raises DovecotError if the folder has no uidlist yet (it has never been opened).
        """
        uidlist = self.maildir(user, folder) / "dovecot-uidlist"
        if not uidlist.is_file():
            raise DovecotError(f"no {uidlist}: has {user}'s {folder} ever been opened?")
        with _dotlock(uidlist) as lock:
            header, *lines = uidlist.read_text().splitlines()
            validity = re.search(r" V(\d+)", header)
            if validity is None:
                raise DovecotError(f"no UIDVALIDITY in the header of {uidlist}: {header!r}")
            header = header.replace(validity.group(0), f" V{int(validity.group(1)) + 1}", 1)
            if renumber:
                lines = _renumbered(lines, uidlist.parent)
                header = re.sub(r" N\d+", f" N{len(lines) + 1}", header, count=1)
            lock.write("\n".join([header, *lines, ""]))
        self.doveadm("force-resync", "-u", user, folder)

    def doveadm(self, *args: str) -> str:
        """Run `doveadm` against this instance's configuration; return its output."""
        doveadm = shutil.which("doveadm") or shutil.which("doveadm", path="/usr/bin:/usr/sbin")
        if doveadm is None:
            raise DovecotError("doveadm is not installed (it comes with dovecot-core)")
        command = [doveadm, "-c", str(self.config_dir / "dovecot.conf"), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=IO_TIMEOUT)
        if done.returncode != 0:
            raise DovecotError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """The directory of `folder` (Maildir++ layout: "A/B" is stored as `.A.B`)."""
        root = self.home_dir / user / "Maildir"
        if folder.upper() == "INBOX":
            return root
        return root / ("." + folder.replace("/", "."))

    # -- clients -----------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextlib.contextmanager
    def imap(self, user: str, password: str) -> Iterator[imaplib.IMAP4]:
        """An `imaplib` connection on the plain port, logged in as `user`."""
        conn = imaplib.IMAP4(self.host, self.imap_port, timeout=IO_TIMEOUT)
        try:
            conn.login(user, password)
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()

    def log_text(self) -> str:
        """Everything Dovecot has logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- internals ---------------------------------------------------------------------------

    def _status(self, user: str, password: str, folder: str, item: str) -> int:
        with self.imap(user, password) as conn:
            typ, data = conn.status(quote_mailbox(folder), f"({item})")
            _check(typ, data, f"STATUS {folder}")
        found = re.search(rb"%s (\d+)" % item.encode(), data[0] or b"")
        if not found:
            raise DovecotError(f"no {item} in STATUS answer {data!r}")
        return int(found.group(1))

    def _output(self) -> str:
        """What the master wrote to stdout/stderr (errors before the log process is up)."""
        try:
            return (self.config_dir / "dovecot.stdout").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _tail(self, lines: int = 30) -> str:
        tail = "\n".join((self.log_text() + self._output()).splitlines()[-lines:])
        return f"; config {self.config_dir / 'dovecot.conf'}; log tail:\n{tail}"

    def _config(self, mail: pwd.struct_passwd, oauth2: bool) -> str:
        mechanisms = "plain login xoauth2 oauthbearer" if oauth2 else "plain login"
        oauth2_passdb = (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {self.runtime_dir / 'oauth2.conf.ext'}\n}}\n"
            if oauth2
            else ""
        )
        return f"""\
# Written by tests/dovecot.py for one test run; nothing here is read from /etc/dovecot.
instance_name = pytrs-test-{secrets.token_hex(6)}
base_dir = {self.runtime_dir / "run"}
state_dir = {self.runtime_dir / "state"}
log_path = {self.log_path}
protocols = imap pop3
listen = {self.host}
ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{self.config_dir / "key.pem"}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_verbose = yes
# A failed login answers within a second and does not slow down the logins that follow: Dovecot
# otherwise delays every authentication from an IP that recently failed (2, 4, 8 … 15 s), and
# all our clients are 127.0.0.1, so one wrong-password test would stall the accounts that work.
# Without the anvil-auth-penalty socket the auth process turns that penalty off.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
first_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
mail_location = maildir:~/Maildir
mail_fsync = never
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 100
imap_max_line_length = 10M
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={self.home_dir}/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
"""


def dovecot_server(
    tmp_path_factory: pytest.TempPathFactory, *, oauth2_introspection_url: str | None = None
) -> Iterator[DovecotServer]:
    """Body of a pytest fixture of any scope: `yield from dovecot_server(tmp_path_factory)`."""
    server = DovecotServer.start(
        tmp_path_factory.mktemp("dovecot"), oauth2_introspection_url=oauth2_introspection_url
    )
    try:
        yield server
    finally:
        server.stop()


def _dovecot_binary() -> str:
    if os.geteuid() != 0:
        raise DovecotError("the Dovecot test harness must run as root (Dovecot drops privileges)")
    binary = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        raise DovecotError(
            "dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d (.ci/run does)"
        )
    return binary


def _auth_gid() -> int:
    """The group of Dovecot's auth process, which reads the passwd files."""
    try:
        return grp.getgrnam(AUTH_GROUP).gr_gid
    except KeyError:
        raise DovecotError(f"no group {AUTH_GROUP!r}: is dovecot-core installed?") from None


def _free_ports() -> dict[str, int]:
    """A distinct port per listener, each free a moment ago (held open together while picked)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in LISTENERS]
        for sock in sockets:
            sock.bind((HOST, 0))
        return {name: sock.getsockname()[1] for name, sock in zip(LISTENERS, sockets, strict=True)}


def _make_certificate(cert: Path, key: Path) -> None:
    """A self-signed CA certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise DovecotError("the openssl command is needed for the test certificate")
    done = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "7", "-subj", "/CN=pytrs-test-dovecot",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise DovecotError(f"openssl could not make the test certificate: {done.stderr}")


def _oauth2_config(url: str) -> str:
    return f"""\
introspection_url = {url}
introspection_mode = post
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


def _greeted_and_left(sock: socket.socket, greeting: bytes) -> bool:
    """Whether the server greets; then log out, so the probe leaves no error in the log."""
    if not sock.recv(256).startswith(greeting):
        return False
    sock.sendall(b"a LOGOUT\r\n" if greeting.startswith(b"*") else b"QUIT\r\n")
    sock.recv(256)
    return True


def _renumbered(lines: list[str], maildir: Path) -> list[str]:
    """Uidlist lines `<uid> [<fields>] :<file>` of messages still present, numbered from 1.

    Dovecot leaves the lines of expunged messages in the uidlist until it rewrites the file.
    """
    present = {
        name.split(":", 1)[0] for sub in ("cur", "new") for name in os.listdir(maildir / sub)
    }
    kept = [line for line in lines if line.partition(":")[2] in present]
    return [str(uid) + " " + line.partition(" ")[2] for uid, line in enumerate(kept, 1)]


@contextlib.contextmanager
def _dotlock(path: Path, timeout: float = 10.0) -> Iterator[TextIO]:
    """Dovecot's dotlock protocol: write `<path>.lock` exclusively, then rename it over `path`.

    The lock file gets the owner and mode of `path`; it is removed if the body raises.
    """
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise DovecotError(f"{lock} stayed locked for {timeout} s") from None
            time.sleep(0.02)
    try:
        stat = path.stat()
        os.fchown(fd, stat.st_uid, stat.st_gid)
        os.fchmod(fd, stat.st_mode & 0o7777)
        with os.fdopen(fd, "w") as file:
            yield file
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    os.replace(lock, path)


def _check(typ: str, data: list, what: str) -> None:
    if typ != "OK":
        raise DovecotError(f"{what} failed: {typ} {data!r}")


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    pgid = process.pid
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.returncode is not None and not _group_members(pgid):
            return
    raise DovecotError(f"processes of group {pgid} survived SIGKILL: {_group_members(pgid)}")


def _cleanup(pgids: list[int], runtime_dir: Path) -> None:
    """Last resort when a server is garbage-collected or the interpreter exits unstopped."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    shutil.rmtree(runtime_dir, ignore_errors=True)
