"""A real DNS server for a test zone, in the test's own loop: UDP and TCP on 127.0.0.1, port 0.

The DKIM key lookups of ``authentication.authenticity`` go to it through ``[authentication]
dns_resolver``, so the tests exercise the same resolver code as production. It answers TXT
queries from ``records`` (name → texts; each text is one record, split into 255-byte strings),
NXDOMAIN for unknown names, NOERROR without answer for other types of a known name. Faults per
test: ``truncate_udp`` (every UDP answer comes truncated, so the client must retry over TCP)
and ``silent`` (queries are received and never answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import typing

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT


class DnsZone:
    def __init__(
        self,
        records: dict[str, list[str]] | None = None,
        *,
        truncate_udp: bool = False,
        silent: bool = False,
    ) -> None:
        self.records = {name.lower().rstrip("."): texts for name, texts in (records or {}).items()}
        self.truncate_udp = truncate_udp
        self.silent = silent
        self.queries: list[tuple[str, str]] = []  # (transport, name) in the order received
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> typing.Self:
        loop = asyncio.get_running_loop()
        # UDP on port 0, then TCP on the same number; another process may hold that TCP
        # port, so try again with a new one.
        for _attempt in range(20):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=("127.0.0.1", 0)
            )
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError:
                transport.close()
                continue
            self._udp, self.port = transport, port
            return self
        raise OSError("no port free for both UDP and TCP")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """The response to the query `wire`, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append((transport, name))
        if self.silent:
            return None
        response = dns.message.make_response(query)
        texts = self.records.get(name)
        if texts is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            rdatas = [TXT(dns.rdataclass.IN, dns.rdatatype.TXT, _strings(t)) for t in texts]
            response.answer.append(dns.rrset.from_rdata_list(question.name, 60, rdatas))
        if transport == "tcp":
            return response.to_wire()
        limit = query.payload if query.edns >= 0 else 512
        if not self.truncate_udp:
            with contextlib.suppress(dns.exception.TooBig):
                return response.to_wire(max_size=limit)
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                reply = self.answer(await reader.readexactly(length), "tcp")
                if reply is None:
                    continue
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: DnsZone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.zone.answer(data, "udp")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def _strings(text: str) -> tuple[bytes, ...]:
    data = text.encode("ascii")
    return tuple(data[i : i + 255] for i in range(0, len(data), 255)) or (b"",)


def closed_port() -> str:
    """ "127.0.0.1:port" where nothing listens (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"
