"""Who is asking, and over what: the client address and https-ness of a request.

Place in the flow: read by the session middleware (Secure cookies) and by the login throttle
(per client address). `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the
direct peer is one of `[web] trusted_proxies`, or when the web view listens on a unix socket
(only a local reverse proxy can reach one, and without its headers every client would share
one address in the throttle); from anyone else they are ignored, or a client could pick the
address the throttle counts against, or claim https. uvicorn's own proxy
header handling is off (see `service.py`), so this is the only place that reads them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Proxies:
    """The trusted reverse proxies of `[web] trusted_proxies`."""

    def __init__(self, networks: Iterable[str], *, unix_socket: bool = False) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in networks)
        self.unix_socket = unix_socket  # served on a unix socket: its peer is a local proxy

    def trusts(self, address: str) -> bool:
        if not address:  # a unix socket's peer has no address
            return self.unix_socket
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client_address(self, scope: Scope) -> str:
        """The client's address: the peer, or, behind trusted proxies, the nearest address in
        X-Forwarded-For that is not itself a trusted proxy."""
        peer = _peer(scope)
        if not self.trusts(peer):
            return peer
        chain = [a.strip() for a in _header(scope, b"x-forwarded-for").split(",") if a.strip()]
        for address in reversed(chain):
            if not self.trusts(address):
                return address
        return chain[0] if chain else peer

    def is_https(self, scope: Scope) -> bool:
        """Whether the client's connection is TLS: ours, or a trusted proxy's that says so."""
        if scope.get("scheme") == "https":
            return True
        if not self.trusts(_peer(scope)):
            return False
        # The proxy nearest us appended its value last.
        forwarded = _header(scope, b"x-forwarded-proto").split(",")[-1]
        return forwarded.strip().lower() == "https"


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _header(scope: Scope, name: bytes) -> str:
    values = [v for k, v in scope.get("headers", ()) if k == name]
    return b",".join(values).decode("latin-1")
