"""Diagnostic: every address pytrs listens on can be bound now, or pytrs already holds it.

Place in the flow: one of the concurrent checks of `pytrs doctor`, one line per address of
`[smtp] listen`, `lmtp_listen`, `[web] listen` and `metrics_listen`. Each is bound (and let go)
as the daemon would bind it. An address in use is asked who holds it: an SMTP/LMTP banner
naming pytrs, or the web view's `/healthz` (or sign-in page), means a pytrs is running there,
which is fine; anything else is another program the daemon would collide with. Ports below
1024 need `CAP_NET_BIND_SERVICE`, which a unit must grant.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterator

from pytrs.config import Config, listen_address
from pytrs.diagnostics.findings import Finding, describe, fail, ok

CHECK = "listener"
_PRIVILEGED_BELOW = 1024
_MOST_READ = 256 * 1024  # of an HTTP answer: the sign-in page fits
_UNIX_PATH_MAX = 108  # sun_path on Linux, with its terminating NUL
_CAPABILITY = (
    "ports below 1024 need CAP_NET_BIND_SERVICE: give the unit "
    "AmbientCapabilities=CAP_NET_BIND_SERVICE and CapabilityBoundingSet=CAP_NET_BIND_SERVICE, "
    "or listen on a port from 1024 up"
)


async def check_listeners(config: Config, seconds: float) -> list[Finding]:
    addresses = list(_addresses(config))
    first: dict[tuple[str, int] | str, str] = {}
    checks = []
    for key, spec in addresses:
        address = listen_address(spec)  # the configuration check parsed it already
        any_port = isinstance(address, tuple) and address[1] == 0
        if address in first and not any_port:
            # Each would bind alone; the daemon binds them all and fails on the second.
            checks.append(_twice(key, spec, first[address]))
        else:
            first.setdefault(address, key)
            checks.append(_one(key, spec, seconds))
    return list(await asyncio.gather(*checks))


async def _twice(key: str, spec: str, first: str) -> Finding:
    return fail(CHECK, f"{key} {spec}: also given as {first}", f"give {key} another address")


def _addresses(config: Config) -> Iterator[tuple[str, str]]:
    for index, spec in enumerate(config.smtp.listen):
        yield f"smtp.listen[{index}]", spec
    for index, spec in enumerate(config.smtp.lmtp_listen):
        yield f"smtp.lmtp_listen[{index}]", spec
    if config.web.listen:
        yield "web.listen", config.web.listen
    if config.web.metrics_listen:
        yield "web.metrics_listen", config.web.metrics_listen


async def _one(key: str, spec: str, seconds: float) -> Finding:
    address = listen_address(spec)  # the configuration check parsed it already
    web = key.startswith("web.")
    where = f"{key} {spec}"
    if isinstance(address, tuple) and address[1] == 0:
        return ok(CHECK, f"{where}: port 0, a free port is picked at each start")
    problem = await asyncio.to_thread(_bind, address)
    if problem is None:
        return ok(CHECK, f"{where}: bindable{_as_root(address)}")
    if problem.errno in (errno.EADDRINUSE, errno.EEXIST):
        answer = await _who_answers(address, web=web, seconds=seconds)
        if answer is None:
            return ok(CHECK, f"{where}: pytrs is running there")
        return fail(
            CHECK,
            f"{where}: in use by another program ({answer})",
            f"stop that program, or give {key} another address",
        )
    if _privileged(address) and problem.errno == errno.EACCES:
        return fail(CHECK, f"{where}: permission denied", _CAPABILITY)
    if isinstance(problem, socket.gaierror):
        return fail(
            CHECK,
            f"{where}: cannot resolve the host ({describe(problem)})",
            f"give {key} an IP address, or a name this machine resolves",
        )
    if problem.errno == errno.EADDRNOTAVAIL:
        return fail(
            CHECK,
            f"{where}: no such address on this machine",
            f"give {key} an address of this machine (or 0.0.0.0 for all)",
        )
    return fail(CHECK, f"{where}: cannot listen: {describe(problem)}", f"check {key}")


def _bind(address: tuple[str, int] | str) -> OSError | None:
    """(Thread) Bind and listen as the daemon does, then let go; the error, if any."""
    try:
        if isinstance(address, str):
            _bind_unix(address)
        else:
            host, port = address
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            socket.create_server((host, port), family=family).close()
    except OSError as exc:
        return exc
    return None


def _bind_unix(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode
        if not stat.S_ISSOCK(mode):
            raise OSError(errno.ENOTSOCK, "a file that is not a socket is in the way")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                return  # left by a daemon that died: the daemon replaces it
        raise OSError(errno.EADDRINUSE, "in use")
    if len(os.fsencode(path)) >= _UNIX_PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, f"longer than {_UNIX_PATH_MAX - 1} bytes")
    # A socket of our own beside it: the daemon could start meanwhile and take the path.
    directory, name = os.path.split(os.path.abspath(path))
    trial = os.path.join(directory, f".{name}.doctor-{os.getpid()}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(trial)
    os.unlink(trial)


def _privileged(address: tuple[str, int] | str) -> bool:
    return isinstance(address, tuple) and 0 < address[1] < _PRIVILEGED_BELOW


def _as_root(address: tuple[str, int] | str) -> str:
    if _privileged(address) and os.geteuid() == 0:
        return " (by root; the service's user needs CAP_NET_BIND_SERVICE for it)"
    return ""


async def _who_answers(address: tuple[str, int] | str, *, web: bool, seconds: float) -> str | None:
    """None when pytrs answers at `address`, else what answered, in a few words."""
    try:
        async with asyncio.timeout(min(seconds, 5.0)):
            if web:
                return await _web_answer(address)
            return await _banner_answer(address)
    except TimeoutError:
        return "it accepts connections but says nothing"
    except OSError as exc:
        return f"connecting to it fails: {describe(exc)}"


async def _banner_answer(address: tuple[str, int] | str) -> str | None:
    reader, writer = await _open(address)
    try:
        banner = (await reader.readline()).decode("utf-8", "replace").strip()
    finally:
        writer.close()
    if banner.startswith("220") and " pytrs " in f" {banner} ":
        return None
    return f"it answers: {banner[:80]}" if banner else "it closes the connection at once"


async def _web_answer(address: tuple[str, int] | str) -> str | None:
    status, body = await _get(address, "/healthz")
    if status == 200 and b'"status":"ok"' in body.replace(b" ", b""):
        return None
    # With [web] metrics_listen set, the main listener answers 404 for /healthz.
    status, body = await _get(address, "/login")
    if status == 200 and b"pytrs" in body:
        return None
    return f"it answers HTTP {status}" if status else "it does not speak HTTP"


async def _get(address: tuple[str, int] | str, path: str) -> tuple[int, bytes]:
    reader, writer = await _open(address)
    try:
        host = "localhost" if isinstance(address, str) else address[0]
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii"))
        await writer.drain()
        response = b""
        while len(response) < _MOST_READ:
            chunk = await reader.read(_MOST_READ - len(response))
            if not chunk:
                break
            response += chunk
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    words = head.split(b" ", 2)
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        return 0, b""
    return int(words[1]), body


async def _open(
    address: tuple[str, int] | str,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if isinstance(address, str):
        return await asyncio.open_unix_connection(address)
    host, port = address
    # A wildcard address is reached on this machine's own loopback.
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return await asyncio.open_connection(target, port)
