"""The JSON shapes of a ticket's articles: as a list shows them, one alone (with its sanitised
HTML body), and what a client sends to answer the customer or add a note.

Place in the flow: pure pydantic models for `articles.py`; their JSON Schema, with every
field's description, is the OpenAPI document's. The HTML body shown is only ever the parser's
sanitised HTML (`tickets.article_reads.html_bodies`), never a mail's raw HTML.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from pytrs.web.api.resources.ticket_models import NAME, AttachmentIn, Strict

Sender = Literal["agent", "system", "customer", ""]


class AttachmentInfo(BaseModel):
    """An attachment as listed (download it by its number)."""

    number: int = Field(
        description="Its number within the article, from 1: the path's `{number}` of the download."
    )
    filename: str = Field(description="The file's name, as stored.")
    content_type: str = Field(description="Its MIME type, as stored.")
    size: int = Field(description="Its size in bytes.")
    content_id: str = Field(description="Its Content-ID (inline images), or empty.")


class ArticleRow(BaseModel):
    """An article with its text and the list of its attachments."""

    id: int = Field(description="The article's id, its key under the ticket.")
    sender: Sender = Field(description="Who wrote it: agent, system or customer.")
    channel: str = Field(description="How it came or went: email, phone or internal.")
    visible: bool = Field(description="Whether the customer may see it.")
    from_: str = Field(serialization_alias="from", description="The From header (decoded).")
    to: str = Field(description="The To header (decoded).")
    cc: str = Field(description="The Cc header (decoded).")
    subject: str = Field(description="The subject.")
    created: datetime = Field(description="When it was stored (UTC).")
    body: str = Field(description="The text body (for a mail with only HTML, its text).")
    attachments: list[AttachmentInfo] = Field(description="Its attachments, without content.")
    has_raw: bool = Field(description="Whether the raw mail is kept (download it at `…/raw`).")
    has_html: bool = Field(
        description="Whether it has a (sanitised) HTML body; read the article alone to get it."
    )


class ArticleOut(ArticleRow):
    """One article, with its message ids and its sanitised HTML body."""

    message_id: str = Field(description="Its Message-ID.")
    in_reply_to: str = Field(description="Its In-Reply-To.")
    content_type: str = Field(description="The text body's type, as stored.")
    trace: dict[str, Any] | None = Field(
        description="How the postmaster routed the mail this article came from (filters, "
        "rules, decisions, as the ticket zoom shows them), or null for other articles."
    )
    html: str | None = Field(
        description="The sanitised HTML body (scripts, handlers and "
        "remote loads removed; inline images as `cid:`, remote images "
        "as `data-remote-src`), or null when it has none."
    )


class ArticleCreate(Strict):
    """An answer to the customer (`reply`) or an internal note (`note`)."""

    kind: Literal["reply", "note"] = Field(
        ..., description="reply: a mail to the ticket's customer; note: internal, never sent."
    )
    body: str = Field(
        "",
        max_length=2_000_000,
        description="The text. A reply may leave it empty when `template` gives the text.",
    )
    subject: str | None = Field(
        None,
        max_length=998,
        description="The subject (reply: "
        "default the customer's last, tagged with the ticket "
        "number; note: default `Note`).",
    )
    cc: list[str] = Field(
        [], max_length=20, description="Reply only: Cc addresses (`Name <addr>` or `addr`)."
    )
    state: str | None = Field(
        None,
        max_length=NAME,
        description="Reply only: the ticket's state after the answer (by name).",
    )
    template: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Reply only: the id of "
        "an answer template of the ticket's queue; its text, "
        "rendered for the ticket, comes before `body`.",
    )
    quote: bool = Field(
        True,
        description="Reply only: quote the customer's last mail below "
        "the text (and the queue's signature).",
    )
    attachments: list[AttachmentIn] = Field(
        [],
        max_length=20,
        description="Files in JSON (a multipart request sends file parts instead).",
    )


class ArticleCreated(BaseModel):
    """The article made (its path is the `Location` header)."""

    article_id: int = Field(description="The new article's id.")
    message_id: str | None = Field(description="Reply: the mail's Message-ID; null for a note.")
    recipients: list[str] = Field(description="Reply: the addresses the mail is queued to.")
