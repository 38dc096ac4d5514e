"""A readable plain-text rendering of an HTML body, for HTML-only mail.

`parse_mail` uses it when a mail has no text/plain part, so filters, follow-up detection and the
article body still see words. Scripts and styles are dropped, links keep their target as
"text [url]", block elements start new lines and entities are unescaped. Sanitising the HTML
itself is a separate step.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_SKIPPED = frozenset({"script", "style", "title", "head", "template", "noscript"})
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"}
)
_LINES = frozenset(
    {
        "div", "br", "tr", "li", "dt", "dd", "hr", "section", "article", "header", "footer",
        "address", "center", "form", "fieldset", "figure", "figcaption", "main", "nav", "aside",
        "caption", "body",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\f\v\r\n]+")
_TAG = re.compile(r"<[^>]*>")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")


class _TextRenderer(HTMLParser):
    """Collects text chunks; newlines are markers that `render` tidies up at the end."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.links: list[tuple[str, int]] = []  # (href, index of the first chunk of the text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip_depth += 1
        elif tag == "body":
            self.skip_depth = 0  # A missing </head> must not swallow the whole body.
        if tag == "pre":
            self.pre_depth += 1
        self._block(tag)
        if tag == "li":
            self.chunks.append("- ")
        elif tag == "a":
            href = next((value for key, value in attrs if key == "href" and value), "")
            self.links.append((href.strip(), len(self.chunks)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED and self.skip_depth:
            self.skip_depth -= 1
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag == "a" and self.links:
            self._close_link(*self.links.pop())
        self._block(tag)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.chunks.append(data)
            return
        data = _SPACES.sub(" ", data)
        if not self.chunks or self.chunks[-1].endswith(("\n", "- ")):
            # Source indentation after a block boundary is layout, not text.
            data = data.lstrip(" ")
        if data:
            self.chunks.append(data)

    def _block(self, tag: str) -> None:
        if tag in _PARAGRAPHS:
            self._break(2)
        elif tag in _LINES:
            self._break(1)
        elif tag in _CELLS and self.chunks and not self.chunks[-1].endswith(("\n", " ")):
            self.chunks.append(" ")

    def _break(self, count: int) -> None:
        # Adjacent block boundaries (</li><li>, </p><p>) share their newlines.
        if not self.chunks:
            return
        last = self.chunks[-1]
        have = len(last) - len(last.rstrip("\n"))
        if have < count:
            self.chunks.append("\n" * (count - have))

    def _close_link(self, href: str, start: int) -> None:
        text = "".join(self.chunks[start:]).strip()
        target = href.removeprefix("mailto:")
        # Anchors and links whose text already shows the target add nothing for a reader.
        if not href or href.startswith(("#", "javascript:")) or target in (text, f"<{text}>"):
            return
        self.chunks.append(f" [{href}]" if text else f"[{href}]")


def html_to_text(html: str) -> str:
    """Return a plain-text rendering of `html`; falls back to tag stripping if parsing fails."""
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
        text = "".join(renderer.chunks)
    except Exception:  # The stdlib parser still raises on a few malformed declarations.
        text = _SPACES.sub(" ", unescape(_TAG.sub(" ", html)))
    text = _TRAILING.sub("\n", text.replace("\xa0", " "))
    return _BLANKS.sub("\n\n", text).strip()
