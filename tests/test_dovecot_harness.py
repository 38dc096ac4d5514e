"""The throw-away Dovecot of tests/dovecot.py: what the mailbox-fetcher tests rely on, proved.

One server serves the module (each test uses accounts of its own); the XOAUTH2 and lifecycle
tests start servers of their own. Every check goes through the standard library's clients.
"""

from __future__ import annotations

import imaplib
import json
import os
import poplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import psutil
import pytest

from . import dovecot
from .dovecot import DovecotError, DovecotServer, dovecot_server, quote_mailbox


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    yield from dovecot_server(tmp_path_factory)


def message(subject: str, body: str = "Hello.\n") -> bytes:
    return f"From: a@example.org\nTo: b@example.org\nSubject: {subject}\n\n{body}".encode()


def test_users_append_count_uids_and_flags(server: DovecotServer) -> None:
    server.add_user("alice", "alice-pw")
    server.add_user("bob@example.org", "bob pw")
    assert server.append("alice", "alice-pw", message("one")) == 1
    assert server.append("alice", "alice-pw", message("two"), flags="\\Seen \\Flagged") == 2
    assert server.append("alice", "alice-pw", message("three"), flags="\\Deleted") == 3
    assert server.append("bob@example.org", "bob pw", message("for bob")) == 1

    # \Deleted but not expunged still counts in STATUS, but not among uids().
    assert server.count("alice", "alice-pw") == 3
    assert server.uids("alice", "alice-pw") == [1, 2]
    assert server.flags("alice", "alice-pw") == {
        1: set(),
        2: {"\\Seen", "\\Flagged"},
        3: {"\\Deleted"},
    }
    assert server.count("bob@example.org", "bob pw") == 1
    assert b"Subject: two" in server.fetch("alice", "alice-pw", 2)
    # fetch() peeks: reading a message does not mark it \Seen.
    assert server.flags("alice", "alice-pw")[1] == set()


def test_folders(server: DovecotServer) -> None:
    server.add_user("carol", "pw")
    server.create_folder("carol", "pw", "Archive/2024")
    server.create_folder("carol", "pw", "Archive/2024")  # Existing: no error.
    server.create_folder("carol", "pw", "Done Items")
    assert server.append("carol", "pw", message("old"), folder="Archive/2024") == 1
    assert server.append("carol", "pw", message("done"), folder="Done Items") == 1
    assert server.count("carol", "pw", "Archive/2024") == 1
    assert server.count("carol", "pw", "INBOX") == 0
    assert server.uids("carol", "pw", "Done Items") == [1]
    assert server.flags("carol", "pw", "INBOX") == {}
    with pytest.raises(DovecotError, match="STATUS"):
        server.count("carol", "pw", "Missing")


@pytest.mark.parametrize("folder", ["INBOX", "Lists/pytrs"])
def test_reset_uidvalidity_keeps_messages(server: DovecotServer, folder: str) -> None:
    user = f"dave-{folder.replace('/', '-').lower()}"
    server.add_user(user, "pw")
    server.create_folder(user, "pw", folder)
    for n in range(5):
        server.append(user, "pw", message(f"m{n}"), folder=folder, flags="\\Seen" if n else "")
    with server.imap(user, "pw") as conn:  # Leave a hole in the UIDs, as fetchers do.
        conn.select(quote_mailbox(folder))
        conn.uid("STORE", "2", "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
    before = server.uidvalidity(user, "pw", folder)
    bodies = {server.fetch(user, "pw", uid, folder) for uid in server.uids(user, "pw", folder)}
    assert server.uids(user, "pw", folder) == [1, 3, 4, 5]

    with server.imap(user, "pw") as open_session:
        open_session.select(quote_mailbox(folder))
        server.reset_uidvalidity(user, folder)
        # A session that had the folder selected is disconnected, as after a real change.
        with pytest.raises(imaplib.IMAP4.abort, match="inconsistent"):
            open_session.noop()

    assert server.uidvalidity(user, "pw", folder) != before
    assert server.uids(user, "pw", folder) == [1, 2, 3, 4]
    assert server.flags(user, "pw", folder) == {
        1: set(),
        2: {"\\Seen"},
        3: {"\\Seen"},
        4: {"\\Seen"},
    }
    assert {server.fetch(user, "pw", uid, folder) for uid in [1, 2, 3, 4]} == bodies
    assert server.append(user, "pw", message("after"), folder=folder) == 5

    server.reset_uidvalidity(user, folder, renumber=False)
    assert server.uids(user, "pw", folder) == [1, 2, 3, 4, 5]


def test_starttls_and_implicit_tls(server: DovecotServer) -> None:
    server.add_user("erin", "pw")
    server.append("erin", "pw", message("secret"))
    context = server.ssl_context()

    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    imap.starttls(context)
    imap.login("erin", "pw")
    assert imap.select("INBOX") == ("OK", [b"1"])
    imap.logout()
    with imaplib.IMAP4_SSL(server.host, server.imaps_port, ssl_context=context, timeout=10) as imap:
        imap.login("erin", "pw")
        assert imap.select("INBOX") == ("OK", [b"1"])

    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    pop.stls(context)
    pop.user("erin")
    pop.pass_("pw")
    assert pop.stat()[0] == 1
    pop.quit()
    pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=context, timeout=10)
    pop.user("erin")
    pop.pass_("pw")
    assert pop.stat()[0] == 1
    pop.quit()

    # The certificate is really checked: a client that does not trust it refuses the server.
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(
            server.host, server.imaps_port, ssl_context=ssl.create_default_context(), timeout=10
        )


def test_pop3_login_stat_and_uidl(server: DovecotServer) -> None:
    server.add_user("frank", "pw")
    raw = [message("p1"), message("p2", "x" * 1000 + "\n")]
    for item in raw:
        server.append("frank", "pw", item)
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    try:
        pop.user("frank")
        pop.pass_("pw")
        count, size = pop.stat()
        assert count == 2
        assert size == sum(len(item.replace(b"\n", b"\r\n")) for item in raw)
        assert len(pop.uidl()[1]) == 2
    finally:
        pop.quit()


def test_wrong_password_is_refused_and_logged(server: DovecotServer) -> None:
    server.add_user("grace", "right")
    with (
        pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
        server.imap("grace", "wrong"),
    ):
        pass
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    pop.user("grace")
    with pytest.raises(poplib.error_proto, match="Authentication failed"):
        pop.pass_("also wrong")
    pop.quit()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        failures = [
            line
            for line in server.log_text().splitlines()
            if "user=<grace>" in line and "auth failed" in line
        ]
        if len(failures) == 2:
            break
        time.sleep(0.05)
    assert {line.split(": ")[0].split()[-1] for line in failures} == {"imap-login", "pop3-login"}
    assert "passwd-file(grace,127.0.0.1" in server.log_text()


def test_idle_reports_new_mail_within_a_second_or_two(server: DovecotServer) -> None:
    server.add_user("heidi", "pw")
    with server.imap("heidi", "pw") as conn:
        conn.select("INBOX")
        conn.send(b"I1 IDLE\r\n")
        assert conn.readline().startswith(b"+")
        started = time.monotonic()
        server.append("heidi", "pw", message("pushed"))
        conn.sock.settimeout(3)
        while b"EXISTS" not in (line := conn.readline()):
            assert line, "connection closed during IDLE"
        assert line.strip() == b"* 1 EXISTS"
        assert time.monotonic() - started < 2
        conn.send(b"DONE\r\n")
        while not conn.readline().startswith(b"I1 OK"):
            pass


def test_large_message(server: DovecotServer) -> None:
    server.add_user("ivan", "pw")
    line = b"0123456789" * 7 + b"\r\n"
    raw = message("big").replace(b"\n", b"\r\n") + line * (30 * 1024 * 1024 // len(line))
    uid = server.append("ivan", "pw", raw)
    assert server.fetch("ivan", "pw", uid) == raw


class Introspection(BaseHTTPRequestHandler):
    """An OAuth2 token introspection endpoint (RFC 7662) that knows one token."""

    tokens: ClassVar[dict[str, str]] = {"good-token": "judy"}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        user = self.tokens.get(parse_qs(body).get("token", [""])[0])
        answer = json.dumps({"active": True, "username": user} if user else {"active": False})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def xoauth2(user: str, token: str) -> Callable[[bytes], bytes]:
    """AUTHENTICATE XOAUTH2; on failure Dovecot sends a JSON challenge, answered empty."""
    return lambda challenge: b"" if challenge else f"user={user}\1auth=Bearer {token}\1\1".encode()


def test_xoauth2_against_a_local_introspection_endpoint(tmp_path: Path) -> None:
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), Introspection)
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/introspect"
    try:
        with DovecotServer.start(tmp_path, oauth2_introspection_url=url) as server:
            server.add_user("judy", "pw")
            server.append("judy", "pw", message("oauth"))
            conn = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
            assert "AUTH=XOAUTH2" in conn.capabilities
            assert conn.authenticate("XOAUTH2", xoauth2("judy", "good-token"))[0] == "OK"
            assert conn.select("INBOX") == ("OK", [b"1"])
            conn.logout()
            for user, token in [("judy", "bad-token"), ("mallory", "good-token")]:
                conn = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
                with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                    conn.authenticate("XOAUTH2", xoauth2(user, token))
                conn.logout()
    finally:
        endpoint.shutdown()
        endpoint.server_close()
        thread.join()


def test_stop_leaves_no_process_and_no_files(tmp_path: Path) -> None:
    with DovecotServer.start(tmp_path) as server:
        members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == server.pgid]
        assert len(members) >= 4  # master, log, config, anvil, logins, ...
        runtime_dir, imap_port = server.runtime_dir, server.imap_port
    assert not [p.pid for p in psutil.process_iter() if _alive_in_group(p, server.pgid)]
    assert not runtime_dir.exists()
    assert server.log_path.exists()  # Kept under tmp_path for post-mortems.
    with pytest.raises(ConnectionRefusedError):
        imaplib.IMAP4(server.host, imap_port, timeout=2)
    server.stop()  # A second stop is harmless.


def test_missing_dovecot_is_an_error_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dovecot.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(DovecotError, match="dovecot is not installed"):
        DovecotServer.start(tmp_path)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def _alive_in_group(process: psutil.Process, pgid: int) -> bool:
    try:
        return _pgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_port_taken_after_it_was_picked_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server((DovecotServer.host, 0)) as squatter:
        picks: list[dict[str, int]] = []

        def free_ports() -> dict[str, int]:
            ports = real_free_ports()
            if not picks:
                ports["pop3"] = squatter.getsockname()[1]
            picks.append(ports)
            return ports

        real_free_ports = dovecot._free_ports
        monkeypatch.setattr(dovecot, "_free_ports", free_ports)
        with DovecotServer.start(tmp_path) as server:
            assert server.pop3_port == picks[1]["pop3"]
        assert "Address already in use" in (tmp_path / "dovecot-0" / "dovecot.log").read_text()
