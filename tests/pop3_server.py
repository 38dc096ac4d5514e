"""A small real POP3 server on port 0 serving fixed messages under UIDLs the test chooses.

Dovecot makes well-formed UIDLs; this one exists to serve what a broken or hostile server
sends (a NUL, an over-long UIDL), over a real socket, to the real `Pop3Fetcher`.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")

    def handle(self) -> None:
        mails = self.server.mails
        self._send(b"+OK test POP3 ready")
        for line in self.rfile:
            command, _, argument = line.strip().partition(b" ")
            verb = command.upper()
            if verb in (b"USER", b"PASS", b"NOOP", b"RSET"):
                self._send(b"+OK")
            elif verb == b"STAT":
                total = sum(len(raw) for _, raw in mails)
                self._send(b"+OK %d %d" % (len(mails), total))
            elif verb in (b"LIST", b"UIDL"):
                self._send(b"+OK")
                for number, (uidl, raw) in enumerate(mails, 1):
                    value = uidl if verb == b"UIDL" else b"%d" % len(raw)
                    self._send(b"%d %s" % (number, value))
                self._send(b".")
            elif verb == b"RETR":
                _, raw = mails[int(argument) - 1]
                self._send(b"+OK")
                for body_line in raw.split(b"\r\n"):
                    self._send(b"." + body_line if body_line.startswith(b".") else body_line)
                self._send(b".")
            elif verb == b"DELE":
                self._send(b"+OK")
            elif verb == b"QUIT":
                self._send(b"+OK bye")
                return
            else:
                self._send(b"-ERR unknown command")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mails: list[tuple[bytes, bytes]]


@contextmanager
def pop3_server(mails: list[tuple[bytes, bytes]]) -> Iterator[int]:
    """Serve `mails` ((uidl, raw) pairs, raw with CRLF line ends) on a free port; yields it."""
    server = _Server(("127.0.0.1", 0), _Session)
    server.mails = mails
    thread = threading.Thread(target=server.serve_forever, name="test-pop3", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
