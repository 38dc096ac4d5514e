"""Bounds on the work one mail may cost the parser (SPEC S6).

Shared by the configuration (`[parser]`, which fills them) and the parser (which obeys them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds on the work one mail may cost; going past one yields warnings, never an error."""

    max_message_bytes: int = 64 * 1024 * 1024  # beyond: headers only, body/attachments skipped
    max_parts: int = 1000  # MIME parts walked
    max_depth: int = 50  # MIME nesting walked
    max_header_bytes: int = 256 * 1024  # one header field's raw size
    max_header_count: int = 1000  # header fields parsed; the rest of the block is skipped
    max_header_block_bytes: int = 1024 * 1024  # the header block's raw size; beyond: skipped
    max_html_bytes: int = 10 * 1024 * 1024  # HTML rendered/sanitised; beyond: a placeholder
    max_html_links: int = 20_000  # <a>/<img>/… elements before HTML degrades to a placeholder
    max_html_depth: int = 1000  # element nesting before HTML degrades to a placeholder


DEFAULT_LIMITS = ParseLimits()
