"""Parsing of listen and relay addresses (``host:port``, ``[v6]:port`` or a unix socket).

Used twice: by the config checks, so that a bad address is reported with its key at start-up,
and by the gateway and web services, which turn the configured string into what
``loop.create_server`` or ``loop.create_unix_server`` needs.
"""

import ipaddress

_UNIX_PREFIX = "unix:"


def listen_address(spec: str) -> tuple[str, int] | str:
    """Return ``(host, port)`` for ``host:port`` / ``[v6]:port``, or a unix socket path.

    A value starting with ``/`` or ``unix:`` is a unix socket path (``unix:`` is stripped, which
    also allows relative paths). Port 0 is accepted because tests bind to a free port.
    Raises ValueError, with a message suitable for a configuration error, for anything else.
    """
    if spec.startswith(_UNIX_PREFIX):
        path = spec[len(_UNIX_PREFIX) :]
        if not path:
            raise ValueError("'unix:' needs a socket path after it")
        return path
    if spec.startswith("/"):
        return spec
    host, sep, port_text = spec.rpartition(":")
    if not sep:
        raise ValueError(f"{spec!r} is not host:port, [ipv6]:port or a unix socket path")
    return _host(host, spec), _port(port_text, spec)


def _host(host: str, spec: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{spec!r}: {host!r} in brackets is not an IPv6 address") from None
        return host
    if ":" in host:
        # Without brackets "::1:25" is ambiguous, so we insist on the RFC 3986 form.
        raise ValueError(f"{spec!r}: write an IPv6 address in brackets, e.g. [::1]:25")
    if not host or any(ch.isspace() or ch in "[]/" for ch in host):
        raise ValueError(f"{spec!r}: {host!r} is not a host name or IP address")
    return host


def _port(text: str, spec: str) -> int:
    # str.isdigit() alone would accept non-ASCII digits such as "²", which int() rejects.
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise ValueError(f"{spec!r}: port {text!r} is not a number from 0 to 65535")
    return int(text)
