"""DATA read a run of lines at a time (`smtp_data.read_data`) gives what reading it a line at a
time gave: the same message, the same error, and the reader left at the same byte."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.gateway.smtp_data import LINE_TOO_LONG, TOO_MUCH_DATA, _Data, read_data


async def _line_by_line(reader: asyncio.StreamReader, size_limit: int, line_limit: int) -> _Data:
    """The reference: RFC 5321's reading, one line at a time, as pytrs did before."""
    buffer = bytearray()
    size = 0
    error = ""
    in_long_line = False
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
            buffer.clear()
        elif line.startswith(b".") and not in_long_line:
            buffer += line[1:]
        else:
            buffer += line
        in_long_line = not line.endswith(b"\r\n")
    return _Data(bytes(buffer), error) if not error else _Data(error=error)


async def _read(
    reading: object, stream: bytes, pieces: list[int], reader_limit: int, size_limit: int,
    line_limit: int,
) -> tuple[_Data | str, bytes]:  # fmt: skip
    """Feed `stream` in pieces (as TCP may deliver it) and read the DATA; then what is left."""
    reader = asyncio.StreamReader(limit=reader_limit)

    async def feed() -> None:
        start = 0
        for size in pieces:
            reader.feed_data(stream[start : start + size])
            start += size
            await asyncio.sleep(0)
        reader.feed_data(stream[start:])
        reader.feed_eof()

    feeding = asyncio.create_task(feed())
    try:
        if reading is read_data:
            result: _Data | str = await read_data(reader, size_limit, line_limit, None)
        else:
            result = await _line_by_line(reader, size_limit, line_limit)
    except asyncio.IncompleteReadError:
        result = "incomplete"
    await feeding
    return result, await reader.read()


# Lines near the edges: dots where they matter, bare CR and LF, lines over the limits.
_ODD_LINES = [b".", b"..", b"...", b". ", b"a.", b"a..", b"", b"x" * 40, b".x" * 20, b"end.",
              b"\r", b"\n.", b"a\n", b".\r", b"\r\n."]  # fmt: skip
_LINES = st.lists(st.one_of(st.sampled_from(_ODD_LINES), st.binary(max_size=12)), max_size=25)


@settings(max_examples=600, deadline=None)
@given(
    lines=_LINES,
    terminated=st.booleans(),
    after=st.sampled_from([b"", b"QUIT\r\n", b"MAIL FROM:<a@b>\r\n.\r\n"]),
    pieces=st.lists(st.integers(1, 40), max_size=8),
    reader_limit=st.sampled_from([8, 16, 64, 2**16]),
    size_limit=st.sampled_from([0, 40, 200]),
    line_limit=st.sampled_from([10, 30, 2**16]),
)
def test_runs_of_lines_read_as_single_lines_did(
    lines: list[bytes], terminated: bool, after: bytes, pieces: list[int], reader_limit: int,
    size_limit: int, line_limit: int,
) -> None:  # fmt: skip
    stream = b"".join(line + b"\r\n" for line in lines)
    stream += (b".\r\n" if terminated else b"") + after
    args = (stream, pieces, reader_limit, size_limit, line_limit)
    runs = asyncio.run(_read(read_data, *args))
    single = asyncio.run(_read(_line_by_line, *args))
    assert runs == single


@pytest.mark.parametrize(
    ("stream", "content"),
    [
        (b".\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"a.\r\n..\r\n...\r\n.\r\n", b"a.\r\n.\r\n..\r\n"),
        (b"Thanks.\r\n.b\r\n\r\n.\r\n", b"Thanks.\r\nb\r\n\r\n"),
        (b"a\r\n.\r\nQUIT\r\n", b"a\r\n"),
    ],
)
async def test_dot_stuffing_and_the_end_of_data(stream: bytes, content: bytes) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(stream)
    assert await read_data(reader, 0, 1000, None) == _Data(content)
