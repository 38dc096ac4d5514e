"""The DATA phase of an SMTP/LMTP session, read into one buffer.

aiosmtpd keeps every line of a message as a bytearray of its own in a list and joins them at
the end: about 90 bytes of overhead per line, so a 25 MB mail of a million short header lines
cost over 100 MB before it was even stored. `BufferedData.smtp_DATA` follows the same rules
(CRLF lines, dot-unstuffing, the size and line-length limits, an error answered only once the
whole message was read, RFC 5321 4.2.5) and appends the lines to a single growing buffer. A
buffer growing past `BIG_MESSAGE_BYTES` waits for a gateway-wide slot (`big_messages`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiosmtpd.smtp import MISSING, SMTP, syntax

from pytrs.runtime.big_messages import BIG_MESSAGE_BYTES, BigMessageSlot, BigMessageSlots

log = logging.getLogger(__name__)

START_DATA = "354 End data with <CR><LF>.<CR><LF>"
NEED_RCPT = "503 Error: need RCPT command"
DATA_SYNTAX = "501 Syntax: DATA"
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH_DATA = "552 Error: Too much mail data"
DEFAULT_OK = "250 OK"


@dataclass(slots=True)
class _Data:
    """What the client sent: the unstuffed message, or the error to answer instead."""

    content: bytes = b""
    error: str = ""


async def read_data(
    reader: asyncio.StreamReader, size_limit: int, line_limit: int, slot: BigMessageSlot | None
) -> _Data:
    """Read lines up to the lone ".", unstuffed; past a limit, read on and return the error.

    Once the buffer is big, reading stops until `slot` is taken (see `big_messages`).
    """
    buffer = bytearray()
    size = 0
    error = ""
    in_long_line = False  # the rest of a line longer than the reader's buffer limit
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            error = error or LINE_TOO_LONG
            line = await reader.read(exc.consumed)
        if not in_long_line and line == b".\r\n":
            break
        size += len(line)
        if not error and size_limit and size > size_limit:
            error = TOO_MUCH_DATA
        if not error and len(line) > line_limit:
            error = LINE_TOO_LONG
        if error:
            buffer.clear()  # nothing of it will be stored; let the memory go at once
            if slot is not None:
                slot.release()  # what is left is read and dropped: no memory to bound
        elif line.startswith(b".") and not in_long_line:
            buffer += memoryview(line)[1:]
        else:
            buffer += line
        in_long_line = not line.endswith(b"\r\n")
        if slot is not None and not slot.held and not error and len(buffer) > BIG_MESSAGE_BYTES:
            await slot.take()
    return _Data(bytes(buffer), error) if not error else _Data(error=error)


class BufferedData(SMTP):
    """An aiosmtpd session whose DATA command reads into one buffer (see the module text)."""

    # Set by the server factory; None (tests, a lone session) leaves big messages unbounded.
    big_messages: BigMessageSlots | None = None

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None and self._reader is not None
        if not self.envelope.rcpt_tos:
            await self.push(NEED_RCPT)
            return
        if arg:
            await self.push(DATA_SYNTAX)
            return
        await self.push(START_DATA)
        slot = self.big_messages.slot() if self.big_messages is not None else None
        try:
            await self._read_and_store(slot)
        finally:
            # Stored or refused: the buffer and the driver's copies are gone.
            if slot is not None:
                slot.release()

    async def _read_and_store(self, slot: BigMessageSlot | None) -> None:
        assert self.envelope is not None and self._reader is not None
        size_limit = self.data_size_limit or 0
        try:
            data = await read_data(self._reader, size_limit, self.line_length_limit, slot)
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        if data.error:
            await self.push(data.error)
            self._set_post_data_state()
            return
        # The servers run with decode_data=False: the handler reads the bytes as they came.
        self.envelope.content = self.envelope.original_content = data.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(DEFAULT_OK if status is MISSING else status)
