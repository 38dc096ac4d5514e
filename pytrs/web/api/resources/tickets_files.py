"""The files a client sends with a new ticket or an article: base64 in JSON, or file parts of a
multipart request (`ctx.files`), made into the ticket service's `ArticleAttachment`s.

Place in the flow: called by `tickets_write.py` (create) and `articles.py` (reply, note)
before the ticket service stores the article; names and types are cleaned exactly as the web
view's reply form cleans uploads (`web/agents/attachments.py`), so a stored name never
carries a path or a control character and a stored type is a plain MIME type.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Sequence

from pytrs.tickets import ArticleAttachment
from pytrs.web.agents.attachments import MIME_TYPE, OCTET_STREAM, safe_filename
from pytrs.web.api.bodies import invalid
from pytrs.web.api.operations import Context
from pytrs.web.api.problems import Problem
from pytrs.web.api.resources.ticket_models import AttachmentIn

FILES_MAX = 20
FILES_MAX_BYTES = 20 * 1024 * 1024  # all files of one article together, as the web view
# A JSON body with that much base64 (4/3 of it) and the text.
BODY_MAX = 32 * 1024 * 1024


def attachments(ctx: Context, sent: Sequence[AttachmentIn]) -> list[ArticleAttachment]:
    """The JSON files and the multipart file parts of the request, cleaned. Raises Problem
    422 for content that is not base64, too many files or too many bytes."""
    found = []
    for number, item in enumerate(sent):
        try:
            content = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            message = "is not base64: encode the file's bytes as RFC 4648 base64"
            raise invalid(
                "body", [{"field": f"attachments.{number}.content", "message": message}]
            ) from None
        found.append(_cleaned(item.filename, item.content_type, content))
    found += [_cleaned(f.filename, f.content_type, f.content) for f in ctx.files]
    if len(found) > FILES_MAX:
        raise Problem(
            422, "invalid-change", f"An article takes at most {FILES_MAX} files; send fewer."
        )
    if sum(len(f.content) for f in found) > FILES_MAX_BYTES:
        raise Problem(
            422,
            "invalid-change",
            f"The attachments exceed {FILES_MAX_BYTES >> 20} MiB together; send smaller files.",
        )
    return found


def _cleaned(filename: str, content_type: str | None, content: bytes) -> ArticleAttachment:
    name = safe_filename(filename or "attachment")
    kind = (content_type or "").split(";")[0].strip().lower()
    if not MIME_TYPE.fullmatch(kind) or kind == OCTET_STREAM:
        kind = mimetypes.guess_type(name)[0] or OCTET_STREAM
    return ArticleAttachment(name, kind, content)
