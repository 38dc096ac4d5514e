"""The DATA phase of an SMTP/LMTP session, read into one buffer.

aiosmtpd keeps every line of a message as a bytearray of its own in a list and joins them at
the end: about 90 bytes of overhead per line, so a 25 MB mail of a million short header lines
cost over 100 MB before it was even stored. `BufferedData.smtp_DATA` follows the same rules
(CRLF lines, dot-unstuffing, the size and line-length limits, an error answered only once the
whole message was read, RFC 5321 4.2.5) and appends the lines to a single growing buffer. A
buffer growing past `BIG_MESSAGE_BYTES` waits for a gateway-wide slot (`big_messages`). The
lines are taken from the stream a run at a time (everything up to the next line ending in
"."), not one by one: that is a few calls per mail instead of one per line.
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


class _Reading:
    """The message read so far, a line (`line`) or a run of whole lines (`run`) at a time."""

    __slots__ = ("buffer", "error", "in_long_line", "line_limit", "size", "size_limit", "slot")

    def __init__(self, size_limit: int, line_limit: int, slot: BigMessageSlot | None) -> None:
        self.buffer = bytearray()
        self.size = 0
        self.error = ""
        self.in_long_line = False  # the rest of a line longer than the reader's buffer limit
        self.size_limit = size_limit
        self.line_limit = line_limit
        self.slot = slot

    def line(self, line: bytes) -> bool:
        """Take one line as read (or a piece of an over-long one); True at the lone "."."""
        if not self.in_long_line and line == b".\r\n":
            return True
        self.size += len(line)
        if not self.error and self.size_limit and self.size > self.size_limit:
            self.error = TOO_MUCH_DATA
        if not self.error and len(line) > self.line_limit:
            self.error = LINE_TOO_LONG
        if self.error:
            self.buffer.clear()  # nothing of it will be stored; let the memory go at once
            if self.slot is not None:
                self.slot.release()  # what is left is read and dropped: no memory to bound
        elif line.startswith(b".") and not self.in_long_line:
            self.buffer += memoryview(line)[1:]
        else:
            self.buffer += line
        self.in_long_line = not line.endswith(b"\r\n")
        return False

    def run(self, run: bytes) -> bool:
        """Take whole lines read at once, the last one ending in "."; True if it is the lone ".".

        Run after run, this is `line` for each of them, in bulk while no limit is near.
        """
        end = run == b".\r\n" or run.endswith(b"\r\n.\r\n")
        lines = run[:-3] if end else run
        near = self.size_limit and self.size + len(lines) > self.size_limit
        if self.error or near or len(lines) > self.line_limit:
            for line in _split(lines):
                self.line(line)
            return end
        self.size += len(lines)
        if b"\r\n." in lines:  # dot-stuffed lines (RFC 5321 4.5.2)
            lines = lines.replace(b"\r\n.", b"\r\n")
        self.buffer += memoryview(lines)[1:] if lines.startswith(b".") else lines
        return end

    async def bound(self) -> None:
        """Once the buffer is big, wait for the slot (see `big_messages`)."""
        slot, big = self.slot, len(self.buffer) > BIG_MESSAGE_BYTES
        if slot is not None and big and not slot.held and not self.error:
            await slot.take()


def _split(lines: bytes) -> list[bytes]:
    """`lines` (CRLF-ended) as a list of lines, each with its CRLF."""
    found = lines.split(b"\r\n")
    return [line + b"\r\n" for line in found[:-1]]


async def read_data(
    reader: asyncio.StreamReader, size_limit: int, line_limit: int, slot: BigMessageSlot | None
) -> _Data:
    """Read lines up to the lone ".", unstuffed; past a limit, read on and return the error.

    Once the buffer is big, reading stops until `slot` is taken (see `big_messages`).
    """
    data = _Reading(size_limit, line_limit, slot)
    # Reading a line at a time costs a millisecond per thousand lines. Only a line "." can end
    # the message, so the reader is asked for everything up to the next line ending in "."
    # (a run of whole lines), until a run would not fit its buffer: then line by line.
    done = False
    while not done:
        try:
            run = await reader.readuntil(b".\r\n")
        except asyncio.LimitOverrunError:
            break  # nothing was taken from the reader: the lines below start where this did
        done = data.run(run)
        await data.bound()
    while not done:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            data.error = data.error or LINE_TOO_LONG
            line = await reader.read(exc.consumed)
        done = data.line(line)
        await data.bound()
    return _Data(bytes(data.buffer)) if not data.error else _Data(error=data.error)


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
