"""Parsing stage (SPEC S6): raw mail bytes in, a `ParsedMail` record out.

Pure by design: no I/O, no asyncio, no database, so the postmaster can run it in a worker pool
and tests can call it directly. Modules, in the order a mail meets them: `mail` (entry point,
`ParseLimits` applied), `repair` (broken header blocks), `headers` and `charsets` (text decoding:
labels, mislabels, guesses), `fields` (ids, dates), `addresses`, `bodies` (the MIME walk) with
`parts` (reading one part: payloads, filenames) and `nested` (message/* parts), `htmltext`
(HTML-only bodies), `model` (the records and limits).
"""

from pytrs.parsers.mail import parse_mail
from pytrs.parsers.model import Attachment, ParsedMail
from pytrs.vocabulary.message_ids import message_id_md5
from pytrs.vocabulary.parse_limits import DEFAULT_LIMITS, ParseLimits

__all__ = [
    "DEFAULT_LIMITS",
    "Attachment",
    "ParseLimits",
    "ParsedMail",
    "message_id_md5",
    "parse_mail",
]
