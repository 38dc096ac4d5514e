"""The DATA phase of an SMTP/LMTP session, read into one buffer.

aiosmtpd keeps every line of a message as a bytearray of its own in a list and joins them at
the end: about 90 bytes of overhead per line, so a 25 MB mail of a million short header lines
cost over 100 MB before it was even stored. `BufferedData.smtp_DATA` follows the same rules
(CRLF lines, dot-unstuffing, the size and line-length limits, an error answered only once the
whole message was read, RFC 5321 4.2.5) and appends the lines to a single growing buffer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiosmtpd.smtp import MISSING, SMTP, syntax

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


async def read_data(reader: asyncio.StreamReader, size_limit: int, line_limit: int) -> _Data:
    """Read lines up to the lone ".", unstuffed; past a limit, read on and return the error."""
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
        elif line.startswith(b".") and not in_long_line:
            buffer += memoryview(line)[1:]
        else:
            buffer += line
        in_long_line = not line.endswith(b"\r\n")
    return _Data(bytes(buffer), error) if not error else _Data(error=error)


class BufferedData(SMTP):
    """An aiosmtpd session whose DATA command reads into one buffer (see the module text)."""

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
        try:
            data = await read_data(self._reader, self.data_size_limit or 0, self.line_length_limit)
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
