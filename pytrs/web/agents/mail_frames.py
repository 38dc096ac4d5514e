"""An article's sanitised HTML made into the document of its sandboxed frame (pure).

Place in the flow: the ticket zoom shows an HTML body only as `<iframe sandbox srcdoc>`, with
the parser's sanitised HTML (`parsers.html`) as the document; autoescaping writes it into the
attribute. The sanitiser left inline images as `cid:` references to the mail's own parts and
remote images as `data-remote-src` (no `src`), so nothing is fetched. Here inline images
become `data:` URLs (a frame without same-origin sends no session cookie, so an attachment
URL would not load), and remote images get their `src` back only when the agent asked to load
them for this article; the page's Content-Security-Policy (`img-src`) is relaxed then too.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from urllib.parse import unquote

# nh3 escapes "<" and ">" inside attribute values and text, so a "<img" is always a real tag
# and its first ">" ends it.
_IMG_TAG = re.compile(r"<img\s[^>]*>")
_CID_SRC = re.compile(r'\ssrc="cid:([^"]*)"', re.IGNORECASE)
_REMOTE_SRC = re.compile(r'\sdata-remote-src="')
_HEAD = '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'

ZOOM_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:{remote}; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def zoom_csp(remote_images: bool) -> str:
    """The zoom's policy: the site's, plus the style attributes the sanitiser kept (plain
    values only, no url()), plus remote images when an article's are shown."""
    return ZOOM_CSP.format(remote=" https: http:" if remote_images else "")


def frame_document(
    safe_html: str, images: Mapping[str, tuple[str, bytes]], *, remote_images: bool
) -> str:
    """The frame's document for `safe_html`; `images` maps Content-IDs (lower-cased, no <>)
    to (type, bytes) of the article's inline images."""

    def image_tag(tag: re.Match[str]) -> str:
        text = _CID_SRC.sub(lambda m: _inline(m.group(1), images), tag.group(0))
        if remote_images:
            text = _REMOTE_SRC.sub(' src="', text)
        return text

    return _HEAD + _IMG_TAG.sub(image_tag, safe_html)


def has_remote_images(safe_html: str) -> bool:
    return any(_REMOTE_SRC.search(tag.group(0)) for tag in _IMG_TAG.finditer(safe_html))


def _inline(reference: str, images: Mapping[str, tuple[str, bytes]]) -> str:
    """A data: source for a cid: reference, or no source at all (nothing to fetch)."""
    key = unquote(html.unescape(reference)).strip().strip("<>").strip().lower()
    found = images.get(key)
    if found is None:
        return ""
    kind, content = found
    return f' src="data:{kind};base64,{base64.b64encode(content).decode("ascii")}"'
