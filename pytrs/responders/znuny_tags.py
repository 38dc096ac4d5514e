"""Znuny's ``<OTRS_*>`` template tags turned into pytrs's own template vocabulary.

Place in the flow: Znuny's auto responses (``auto_response.text0``/``text1``) and templates are
written with Znuny's tags (``<OTRS_CUSTOMER_SUBJECT[24]>``, ``<OTRS_TICKET_TicketNumber>`` …).
When pytrs runs beside Znuny (``[database] mode = "znuny"``) ``responders.stored_responses``
translates the stored texts here before compiling them; the Znuny importer
(``pytrs.importers``) translates them here before storing them as pytrs templates. This module
is pure: text in, template source out.

Everything outside a tag is escaped so that ``{{``, ``{%`` or ``{#`` in Znuny's text stay
literal. A tag pytrs has no value for becomes Znuny's own placeholder for an unknown tag, "-",
and is named in ``Translated.unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytrs.vocabulary.auto_responses import TEXT_PLAIN


@dataclass(frozen=True, slots=True)
class Translated:
    """A template in pytrs's vocabulary (``responders.templates``) and the tags it could not
    translate (each rendered as "-", as Znuny renders a tag it does not know), in order of first
    appearance, without repeats."""

    template: str
    unknown: tuple[str, ...] = ()


def translate(text: str, content_type: str = TEXT_PLAIN) -> Translated:
    """`text`, a Znuny template (subject or body), as pytrs template source.

    `content_type` is the Znuny response's (``text/plain`` or ``text/html``); in HTML the tags
    may also be written HTML-escaped (``&lt;OTRS_…&gt;``), as Znuny's rich-text editor stores
    them. Compile the result with ``templates.compile_response`` (``html=`` for HTML bodies).
    """
    raise NotImplementedError
