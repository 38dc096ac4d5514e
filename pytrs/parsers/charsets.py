"""Bytes to text under a declared charset, with the repairs real mail needs.

Used by the header decoder (RFC 2047 words, 8-bit header bytes), by filename decoding and by the
body decoder of `parse_mail`. Never raises: every path ends in a decode that cannot fail, and the
caller is told when the declared charset was not the whole truth so it can record a warning.

The order of trust, cheapest first: ASCII data needs no charset at all; a label Python knows
(after alias and misspelling repair) is believed while the bytes agree with it; data that is
valid UTF-8 is UTF-8 whatever the label said; what is left is guessed by charset-normalizer,
and windows-1252 is the last word.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

# Labels mail software writes that Python does not know, or that are better read as the superset
# browsers use for them (WHATWG encoding standard): senders label cp949 text "euc-kr" and so on.
_ALIASES = {
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "x-sjis": "cp932",
    "sjis-open": "cp932",
    "sjis-win": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "x-euc": "euc_jp",
    "x-gbk": "gbk",
    "x-windows-949": "cp949",
    "x-mac-roman": "mac_roman",
    "mac": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ce": "mac_latin2",
    "unicode-1-1-utf-7": "utf-7",
    "unicode-1-1-utf-8": "utf-8",
    "unicode-2-0-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "x-utf8": "utf-8",
    "ansi": "cp1252",
    "ansi_x3.110-1983": "latin-1",
    "tis620": "cp874",
}
# Codecs that are decoded as their superset: the bytes a sender's software really writes under
# these names (Microsoft code pages) include characters the strict standard lacks.
_SUPERSETS = {
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
}
# Misspellings are repaired on the label with its punctuation removed ("cp-1252", "win-1252",
# "iso8859_15", "koi8r"); the rewrites name codecs Python knows.
_REWRITES = (
    (re.compile(r"(?:windows|win|cp|ms|ibm)(\d{3,5})"), r"cp\1"),
    (re.compile(r"(?:iso)?8859(\d{1,2})"), r"iso8859_\1"),
    (re.compile(r"koi8([rut])"), r"koi8_\1"),
    (re.compile(r"utf(7|8|16|32)((?:be|le)?)"), r"utf_\1_\2"),
)
# Microsoft's ISO-2022-JP (Outlook writes it under the plain name too): JIS X 0208 plus the NEC
# and IBM extensions, which Python's iso2022 codecs reject. Decoded by `_decode_jis_ms` below.
JIS_MS = "cp50220"
_JIS_MS_LABELS = frozenset(
    {"iso-2022-jp-ms", "cp50220", "cp50221", "cp50222", "x-cp50220", "x-cp50221", "x-cp50222"}
)
# Labels that say "I do not know" (RFC 1428 unknown-8bit and its cousins): no warning-free decode.
_UNKNOWN_LABELS = frozenset({"unknown-8bit", "x-unknown", "unknown", "x-user-defined", "8bit"})

# Python codecs that decode bytes to str but are no charset: a mail naming them gets the
# unknown-charset treatment instead of having backslash escapes or labels interpreted.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape"})
_MAX_LABEL = 64
_C1_CONTROLS = re.compile("[\x80-\x9f]")

# The charset-normalizer fallback reads at most this much, and only picks among the charsets mail
# is actually written in: an open choice finds exotic code pages that fit short text equally well.
GUESS_BYTES = 64 * 1024
_GUESS_CANDIDATES = [
    "cp1252", "cp1250", "iso8859_2", "cp1251", "koi8_r", "koi8_u", "iso8859_5", "cp1253",
    "iso8859_7", "cp1254", "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp1257", "iso8859_13",
    "cp874", "cp1258", "cp932", "euc_jp", "gb18030", "big5hkscs", "cp949",
]  # fmt: skip
# Two guesses whose "chaos" differ by less than this are a tie, and windows-1252 wins ties: it is
# what unlabelled Western mail is written in, and short text fits many code pages equally well.
_TIE = 0.01
# A valid multi-byte UTF-8 sequence; text with as many bytes in these as stray 8-bit bytes is
# UTF-8 with a few pasted-in windows-1252 bytes, not text in some other charset.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# Bytes up to the next such sequence: what the lenient decoder reads as windows-1252 in one go.
_NON_UTF8_RUN = re.compile(rb"(?:(?!" + _UTF8_SEQUENCE.pattern + rb")[\x00-\xff])+")
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _byte_table() -> tuple[str, ...]:
    # cp1252 leaves five bytes undefined; latin-1 gives them a character so the table is total.
    table = []
    for byte in range(256):
        try:
            table.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            table.append(chr(byte))
    return tuple(table)


# As a charmap, so that whole texts in windows-1252 decode at C speed.
_CP1252_CHARMAP = "".join(_byte_table())


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read the bytes utf-8 rejected as windows-1252.

    The whole stretch up to the next valid multi-byte sequence is taken at once (ASCII reads
    the same either way), so text that is mostly not utf-8 costs few calls.
    """
    if not isinstance(error, UnicodeDecodeError):
        raise error
    run = _NON_UTF8_RUN.match(error.object, error.start)
    end = max(run.end() if run else 0, error.end)
    return decode_cp1252(error.object[error.start : end]), end


# Registered once under a private name; decoding utf-8 with it keeps every valid utf-8 sequence
# and turns stray 8-bit bytes into cp1252 characters, which also repairs mixed-encoding text.
_FALLBACK = "pytrs-cp1252"
codecs.register_error(_FALLBACK, _cp1252_fallback)


@lru_cache(maxsize=512)
def resolve_charset(label: str) -> str | None:
    """Return the codec name for a MIME charset label, or None if it names no text codec.

    The name is one Python knows, or `JIS_MS` for Microsoft's ISO-2022-JP (decode it with
    `decode_bytes`, not `bytes.decode`).
    """
    name = label.strip().strip("\"'").strip().lower()
    if not name or len(name) > _MAX_LABEL or name in _UNKNOWN_LABELS:
        return None
    for candidate in _candidates(name):
        if candidate in _JIS_MS_LABELS:
            return JIS_MS
        codec = _text_codec(_ALIASES.get(candidate, candidate))
        if codec is not None:
            return _SUPERSETS.get(codec, codec)
    return None


def _candidates(name: str) -> list[str]:
    """The label as written, then repaired spellings of it, most literal first."""
    first = re.split(r"[\s;,]", name, maxsplit=1)[0]  # "utf-8 format=flowed", "utf-8;"
    bare = first.removeprefix("x-")
    compact = re.sub(r"[^a-z0-9]", "", bare)
    found = [candidate for candidate in (name, first, bare, compact) if candidate]
    for pattern, replacement in _REWRITES:
        if pattern.fullmatch(compact):
            found.append(pattern.sub(replacement, compact).rstrip("_"))
    return list(dict.fromkeys(found))


def _text_codec(name: str) -> str | None:
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None
    if codec in _NOT_CHARSETS:
        return None
    try:
        # Codecs such as "base64" exist but are not text encodings; only decoding reveals that
        # (and only for non-empty input).
        b"a".decode(codec)
    except UnicodeError:
        pass  # A text codec that merely rejects the probe byte, e.g. utf-16.
    except Exception:
        return None
    return codec


@lru_cache(maxsize=256)
def _ascii_transparent(codec: str) -> bool:
    """Whether ASCII bytes mean ASCII text in `codec` (not so for ISO-2022, UTF-7, HZ, UTF-16)."""
    probes = (bytes(range(0x20, 0x7F)), b'\x1b$B$"\x1b(B', b"+AOk-", b"~{<:~}")
    try:
        return all(probe.decode(codec) == probe.decode("ascii") for probe in probes)
    except Exception:
        return False


def decode_lenient(data: bytes) -> str:
    """Decode bytes of unknown charset: utf-8 where valid, windows-1252 for the rest."""
    return data.decode("utf-8", _FALLBACK)


def decode_cp1252(data: bytes) -> str:
    """Decode as windows-1252, its five undefined bytes read as latin-1; never fails."""
    return codecs.charmap_decode(data, "strict", _CP1252_CHARMAP)[0]


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str | None]:
    """Decode `data` declared as charset `label`; return the text and a warning or None.

    A missing label means us-ascii (RFC 2045). The warning is set when the text was not what
    the label claimed: unknown charset, 8-bit data under us-ascii, windows-1252 bytes under
    iso-8859-1, bytes invalid in the declared charset, or a charset that had to be guessed.
    """
    codec = resolve_charset(label) if label else "ascii"
    if data.isascii():
        # The common case costs one C-level scan. Only codecs that give ASCII bytes another
        # meaning go on (ISO-2022-JP above all), and so does JIS text nobody labelled as such.
        if codec in (None, "ascii", "utf-8"):
            if b"\x1b$" not in data:
                return data.decode("ascii"), None
            text, _ = _decode_jis(data, "iso2022_jp", label)
            return text, f"ISO-2022-JP text labelled {_shown(label or 'us-ascii')}"
        if _ascii_transparent(codec):
            return data.decode("ascii"), None
    if codec is None:
        return _fallback(data, f"unknown charset {_shown(label)}")
    if codec == "ascii":
        return _fallback(data, f"8-bit text labelled {_shown(label or 'us-ascii')}")
    if codec == "iso8859-1":
        text = data.decode("latin-1")
        if _C1_CONTROLS.search(text) is None:
            return text, None
        # C1 bytes never occur in real latin-1 text: they are windows-1252 punctuation or part
        # of utf-8 sequences pasted into the latin-1 text; the lenient decode reads both right.
        return decode_lenient(data), f"8-bit C1 bytes in text labelled {_shown(label)}"
    if codec == JIS_MS or codec.startswith("iso2022_jp"):
        return _decode_jis(data, codec, label)
    if codec.startswith(("utf-16", "utf-32")) and b"\x00" not in data[:GUESS_BYTES]:
        # Real UTF-16/32 text always has NUL bytes (ASCII characters); this is a mislabel.
        return _fallback(data, f"text labelled {_shown(label)} has no NUL bytes")
    try:
        return data.decode(codec), None
    except (UnicodeError, LookupError, ValueError):
        pass
    if codec == "utf-8":
        return decode_lenient(data), "invalid utf-8 bytes read as cp1252"
    return _invalid_in(data, codec, label)


def _shown(label: str | None) -> str:
    return repr(str(label)[:_MAX_LABEL])


def _invalid_in(data: bytes, codec: str, label: str | None) -> tuple[str, str]:
    """Bytes the declared charset rejects: UTF-8 sent under the wrong label, or damaged text."""
    why = f"text invalid in charset {_shown(label)}"
    try:
        return data.decode("utf-8"), f"{why}, read as utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # A few damaged bytes in otherwise good text: the label is still the best reading.
        return data.decode(codec, "replace"), f"{why}, undecodable bytes replaced"
    except Exception:  # A codec that fails even with "replace" (stateful encodings).
        return decode_lenient(data), f"{why}, read as cp1252"


def _fallback(data: bytes, why: str) -> tuple[str, str]:
    text, how = decode_unlabelled(data)
    return text, f"{why}, {how}"


def decode_unlabelled(data: bytes) -> tuple[str, str]:
    """Decode data whose label did not help; return the text and how it was read.

    In order: UTF-8; UTF-8 with stray windows-1252 bytes; a charset-normalizer guess; cp1252.
    The second value reads "read as utf-8", "guessed koi8-r" and so on, for warnings.
    """
    try:
        return data.decode("utf-8"), "read as utf-8"
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return decode_lenient(data), "read as utf-8/cp1252"
    guessed = guess_charset(data)
    if guessed is None or guessed == "cp1252":
        return decode_lenient(data), "read as cp1252"
    return data.decode(guessed, "replace"), f"guessed {guessed}"


def _mostly_utf8(data: bytes) -> bool:
    sample = data[:GUESS_BYTES]
    high = len(sample) - len(sample.translate(None, _HIGH_BYTES))
    in_sequences = sum(len(match) for match in _UTF8_SEQUENCE.findall(sample))
    return in_sequences > 0 and in_sequences >= high - in_sequences


def guess_charset(data: bytes) -> str | None:
    """Return the codec charset-normalizer finds most likely for 8-bit `data`, or None.

    Only the first 64 KiB are read (cut at a line end, so no character is split), and only the
    charsets of `_GUESS_CANDIDATES` are considered.
    """
    sample = data[:GUESS_BYTES]
    if len(data) > GUESS_BYTES:
        cut = sample.rfind(b"\n")
        sample = sample[:cut] if cut > GUESS_BYTES // 2 else sample
    if sample.isascii():
        return None
    # Imported on first use: it costs ~30 ms at start-up and most processes never guess.
    from charset_normalizer import from_bytes

    try:
        matches = list(from_bytes(sample, cp_isolation=_GUESS_CANDIDATES))
    except Exception:
        return None
    if not matches:
        return None
    best = min(match.chaos for match in matches)
    tied = [match for match in matches if match.chaos <= best + _TIE]
    # Matches that decode to the same text are merged; the others it stands for count too.
    if any("cp1252" in match.could_be_from_charset for match in tied):
        return "cp1252"
    return resolve_charset(tied[0].encoding)


# ISO-2022-JP as Microsoft writes it: escape sequences switch between ASCII, half-width katakana
# and JIS X 0208 (with the NEC/IBM rows). Double-byte runs are rewritten as Shift_JIS and read
# with cp932, which has all of those rows.
_JIS_SWITCH = re.compile(
    rb"\x1b(?:\([BJIH]|\$[@B]|\$\([@BDOPQ]|\$[AC]|\$\([AC]|[.N][A-F])|[\x0e\x0f]"
)
_JIS_MODES = {
    b"\x1b(B": "ascii", b"\x1b(J": "ascii", b"\x1b(H": "ascii", b"\x0f": "ascii",
    b"\x1b(I": "kana", b"\x0e": "kana",
    b"\x1b$@": "jis", b"\x1b$B": "jis", b"\x1b$(@": "jis", b"\x1b$(B": "jis",
    b"\x1b$(O": "jis", b"\x1b$(Q": "jis",
}  # fmt: skip
_JIS_PAIR = re.compile(rb"[\x21-\x7e]{2}")
# Half-width katakana are sent as 7-bit bytes; cp932 has them at the same place plus 0x80.
_KANA = bytes.maketrans(bytes(range(0x21, 0x60)), bytes(range(0xA1, 0xE0)))
# 8-bit bytes never belong in a 7-bit double-byte run; as SUB they pair with nothing and are
# shown as U+FFFD.
_HIGH_TO_SUB = bytes.maketrans(_HIGH_BYTES, b"\x1a" * 128)


def _decode_jis(data: bytes, codec: str, label: str | None) -> tuple[str, str | None]:
    """The ISO-2022-JP family: Python's codec for standard text, Microsoft's variant else."""
    if codec != JIS_MS:
        try:
            return data.decode(codec), None
        except (UnicodeError, LookupError):
            pass
    text = _decode_jis_ms(data)
    if codec != JIS_MS:
        return text, f"text invalid in charset {_shown(label)}, read as {JIS_MS}"
    return text, ("undecodable bytes replaced" if "\ufffd" in text else None)


def _decode_jis_ms(data: bytes) -> str:
    out: list[str] = []
    mode, position = "ascii", 0
    for switch in _JIS_SWITCH.finditer(data):
        out.append(_jis_run(data[position : switch.start()], mode))
        mode, position = _JIS_MODES.get(switch.group(), "other"), switch.end()
    out.append(_jis_run(data[position:], mode))
    return "".join(out)


def _jis_run(run: bytes, mode: str) -> str:
    if mode == "ascii":
        # cp932 rather than ASCII: Shift_JIS bytes pasted into JIS mail are read too.
        return run.decode("cp932", "replace")
    if mode == "kana":
        return run.translate(_KANA).decode("cp932", "replace")
    seven_bit = run.translate(_HIGH_TO_SUB)
    if mode == "jis":
        text = _JIS_PAIR.sub(_jis_to_sjis, seven_bit).decode("cp932", "replace")
    else:
        # JIS X 0212 and the other sets of ISO-2022-JP-2, which cp932 does not have.
        text = "\ufffd".join(piece.decode("ascii") for piece in _JIS_PAIR.split(seven_bit))
    return text.replace("\x1a", "\ufffd")


def _jis_to_sjis(pair: re.Match[bytes]) -> bytes:
    # JIS X 0208 row/cell to Shift_JIS: two rows share a lead byte, odd rows take the low half.
    first, second = pair[0]
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    odd_trail = second + (0x1F if second <= 0x5F else 0x20)
    return bytes((lead, odd_trail if first % 2 else second + 0x7E))
