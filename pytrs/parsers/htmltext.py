"""A readable plain-text rendering of an HTML body, for HTML-only mail.

The parsing stage uses it when a mail has no text/plain part, so filters, follow-up detection
and the article body still see words; `render_html` (in `html`) returns the same rendering next
to the sanitised HTML, within the HTML bounds. Scripts and styles are
dropped, links keep their target as "text [url]", list items become "- item" / "1. item", table
cells are joined with " | ", block elements start new lines and entities are unescaped.
Sanitising the HTML itself is a separate step (`html`).

The tokenizer is one compiled regular expression applied from left to right, and every
alternative in it either matches or fails after a bounded look, so the whole rendering is linear
in the input: no backtracking blow-up, no recursion, no quadratic rescans (the stdlib
`HTMLParser` has had several). An optional budget stops it early for inputs the caller already
knows to be too big.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape

# One token per match, tried in order: text (a "<" that starts no markup is text, "a < b"), a
# comment, a start or end tag (groups: "/", name, attribute text, ">"), other markup (doctype,
# processing instruction, bogus comment). Unterminated comments, tags and quoted values run to
# the end of the input, as browsers read them, so that no alternative can scan far and then fail;
# the possessive quantifiers keep the engine from backtracking into what it has consumed.
_TOKEN = re.compile(
    r"""
      ((?:[^<]++|<(?![a-zA-Z!?/]))++)
    | <!--.*?(?:-->|\Z)
    | <(/?)([a-zA-Z][^\s/>\x00]*+)((?:[^>"'=]++|=\s*+(?:"[^"]*+"?|'[^']*+'?)?|["'])*+)(>?)
    | <[!?/][^>]*+>?
    """,
    re.DOTALL | re.VERBOSE,
)
_ATTRIBUTE = re.compile(
    r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]*)))?""", re.DOTALL
)
_SPACES = re.compile(r"[ \t\n\r\f]+")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")
_SHOWN_SCHEMES = re.compile(r"(?i)(?:https?|ftp|mailto|tel):")
_URL_PREFIX = re.compile(r"(?i)^(?:mailto:|https?://)")

# Elements whose content is not markup: hidden ones are skipped, shown ones are plain text.
_RAW_HIDDEN = frozenset({"script", "style", "title", "iframe", "noembed", "noframes", "noscript"})
_RAW_SHOWN = frozenset({"textarea", "xmp"})
RAW_TEXT_ELEMENTS = _RAW_HIDDEN | _RAW_SHOWN
_RAW_END = {
    name: re.compile(rf"</{name}(?=[\s/>]|\Z)[^>]*+>?", re.IGNORECASE) for name in RAW_TEXT_ELEMENTS
}
_HIDDEN = frozenset({"template"})  # parsed as markup, never displayed
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"}
)
_LINES = frozenset(
    {
        "div", "tr", "li", "dt", "dd", "hr", "section", "article", "header", "footer",
        "address", "center", "form", "fieldset", "figure", "figcaption", "main", "nav", "aside",
        "caption", "body", "details", "summary", "legend", "option",
    }
)  # fmt: skip
_MAX_INDENT = 8  # list nesting shown; deeper items are not indented further
_MAX_QUOTE = 20  # ">" levels shown for nested blockquotes


@dataclass(slots=True)
class _Table:
    row_has_text: bool = False
    separator_due: bool = False  # a new cell began after text in this row


@dataclass(slots=True)
class _Renderer:
    """Collects text chunks as the tokens arrive; `result` tidies the newlines up at the end."""

    max_chars: int | None
    chunks: list[str] = field(default_factory=list)
    size: int = 0
    cut: bool = False
    fresh: bool = True  # at the start of a line (or right after a list marker)
    after_marker: bool = False  # a list marker was written and no text yet
    hidden_depth: int = 0
    pre_depth: int = 0
    quote_depth: int = 0
    lists: list[list[int]] = field(default_factory=list)  # [ordered (0/1), last number]
    tables: list[_Table] = field(default_factory=list)
    link: tuple[str, int] | None = None  # (href, index of the first chunk of its label)

    def start_tag(self, name: str, attrs: str) -> None:
        if name in _HIDDEN:
            self.hidden_depth += 1
        elif name == "body":
            self.hidden_depth = 0  # An unclosed <template> must not hide the body's words.
        if name == "pre":
            self.pre_depth += 1
        self.block(name)
        if name == "br":
            self.append("\n")
            self.fresh = True
        elif name == "a":
            self.close_link()  # <a> cannot nest; browsers close the open one.
            href = _attribute(attrs, "href") if attrs else ""
            self.link = (unescape(href).strip(), len(self.chunks))
        elif name in ("ul", "ol"):
            start = _attribute(attrs, "start") if name == "ol" and attrs else ""
            first = int(start) if start.isdigit() and len(start) < 10 else 1
            self.lists.append([int(name == "ol"), first - 1])
        elif name == "li":
            self.list_marker()
        elif name == "blockquote":
            self.quote_depth += 1
        elif name == "table":
            self.tables.append(_Table())
        elif name == "tr" and self.tables:
            self.tables[-1].row_has_text = self.tables[-1].separator_due = False
        elif name in ("td", "th") and self.tables:
            self.tables[-1].separator_due = self.tables[-1].row_has_text
        elif name == "img" and self.link and attrs:
            # An image that is a link's only content still names it for a reader.
            self.text(_attribute(attrs, "alt"))

    def end_tag(self, name: str) -> None:
        self.after_marker = False
        if name in _HIDDEN and self.hidden_depth:
            self.hidden_depth -= 1
        elif name == "pre" and self.pre_depth:
            self.pre_depth -= 1
        elif name == "a":
            self.close_link()
        elif name in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.block(name)
            return
        elif name == "blockquote" and self.quote_depth:
            self.quote_depth -= 1
        elif name == "table" and self.tables:
            self.tables.pop()
        if name == "br":
            self.append("\n")  # Browsers read </br> as <br>.
            self.fresh = True
        else:
            self.block(name)

    def text(self, data: str) -> None:
        if self.hidden_depth or not data:
            return
        if self.max_chars is not None and len(data) > self.max_chars - self.size:
            # Entities and spaces only shrink text, so the raw text past the budget is unused.
            data = data[: max(self.max_chars - self.size, 0) + 1]
            self.cut = True
        if "&" in data:
            data = unescape(data)
        if self.pre_depth:
            self.begin_text()
            self.append(data.replace("\r\n", "\n"))
            self.fresh = data.endswith("\n")
            return
        data = _SPACES.sub(" ", data)
        if data != " ":
            self.begin_text()
            self.after_marker = False
        if self.fresh or self.chunks[-1].endswith(" "):
            # Source indentation after a block boundary is layout, not text.
            data = data.lstrip(" ")
        if data:
            self.append(data)
            self.fresh = False

    def begin_text(self) -> None:
        """Write what must precede text on this line: the quote prefix, a cell separator."""
        if self.fresh and self.quote_depth:
            self.append("> " * min(self.quote_depth, _MAX_QUOTE))
        if self.tables:
            table = self.tables[-1]
            if table.separator_due and not self.fresh:
                # A cell that starts a new line needs no separator; the line break is one.
                if self.chunks and self.chunks[-1].endswith(" "):
                    self.chunks[-1] = self.chunks[-1].rstrip(" ")
                self.append(" | ")
                table.separator_due = False
            table.row_has_text = True

    def list_marker(self) -> None:
        self.after_marker = False
        self.breaks(1)
        if not self.lists:
            marker = "- "
        else:
            current = self.lists[-1]
            current[1] += 1
            marker = f"{current[1]}. " if current[0] else "- "
        self.begin_text()
        self.append("  " * min(len(self.lists) - 1, _MAX_INDENT) + marker)
        self.fresh = self.after_marker = True

    def close_link(self) -> None:
        if self.link is None:
            return
        href, start = self.link
        self.link = None
        label = "".join(self.chunks[start:]).strip()
        # Anchors, scripts and links whose text already shows the target add nothing.
        if not _SHOWN_SCHEMES.match(href) or _same_target(label, href):
            return
        if label:
            self.append(f" [{href}]")
        else:
            self.begin_text()
            self.append(f"[{href}]")
        self.fresh = self.after_marker = False

    def block(self, name: str) -> None:
        if name in ("ul", "ol") and self.lists:
            self.breaks(1)  # A nested list continues its item without a blank line.
        elif name in _PARAGRAPHS:
            self.breaks(1 if self.lists else 2)  # Paragraphs inside a list stay compact.
        elif name in _LINES:
            self.breaks(1)

    def breaks(self, count: int) -> None:
        # Adjacent block boundaries (</li><li>, </p><p>) share their newlines, and a block that
        # opens a list item (<li><p>) stays on the marker's line.
        if not self.chunks or self.after_marker:
            return
        last = self.chunks[-1]
        have = len(last) - len(last.rstrip("\n"))
        if have < count:
            self.append("\n" * (count - have))
        self.fresh = True

    def append(self, chunk: str) -> None:
        if self.max_chars is not None and self.size + len(chunk) > self.max_chars:
            chunk = chunk[: max(self.max_chars - self.size, 0)]
            self.cut = True
        self.chunks.append(chunk)
        self.size += len(chunk)

    def result(self) -> str:
        self.close_link()
        text = "".join(self.chunks).replace("\xa0", " ")
        return _BLANKS.sub("\n\n", _TRAILING.sub("\n", text)).strip()


def html_to_text(html: str) -> str:
    """Return a plain-text rendering of `html`; linear in its size, never raises for a str."""
    return render_text(html)[0]


def render_text(
    html: str, max_tokens: int | None = None, max_chars: int | None = None
) -> tuple[str, bool]:
    """Render `html` as text, stopping after `max_tokens` tokens or `max_chars` characters.

    Returns the text and whether the whole input was rendered.
    """
    renderer = _Renderer(max_chars)
    position, end, tokens = 0, len(html), 0
    while position < end and not renderer.cut:
        if max_tokens is not None and tokens >= max_tokens:
            renderer.cut = True
            break
        tokens += 1
        match = _TOKEN.match(html, position)
        if match is None:  # Unreachable: the alternatives cover every position.
            break
        position = match.end()
        text, close, name, attrs, finished = match.group(1, 2, 3, 4, 5)
        if text is not None:
            renderer.text(text)
            continue
        if name is None or not finished:
            continue  # a comment, declaration, processing instruction or a tag cut off by EOF
        name = name.lower()
        if close:
            renderer.end_tag(name)
            continue
        renderer.start_tag(name, attrs)
        if name in _RAW_END:
            position = _skip_raw(html, position, name, renderer)
    return renderer.result(), not renderer.cut


def raw_text_end(html: str, name: str, position: int) -> tuple[int, int]:
    """Where the content of raw-text element `name` opened at `position` ends.

    Returns (end of the content, position after the end tag); an element left open runs to the
    end of the input, as in browsers. One search per element keeps every caller linear.
    """
    closing = _RAW_END[name].search(html, position)
    return (closing.start(), closing.end()) if closing else (len(html), len(html))


def _skip_raw(html: str, position: int, name: str, renderer: _Renderer) -> int:
    """Consume the content of a raw-text element; return the position after its end tag."""
    stop, after = raw_text_end(html, name, position)
    if name in _RAW_SHOWN:
        renderer.text(html[position:stop])
    return after


def _attribute(attrs: str, wanted: str) -> str:
    """Return the value of attribute `wanted` from a tag's attribute text ("" if absent)."""
    for match in _ATTRIBUTE.finditer(attrs):
        if match.group(1).lower() == wanted:
            value = match.group(2) or match.group(3) or match.group(4) or ""
            return value
    return ""


def _same_target(label: str, href: str) -> bool:
    """Whether a link's text already says where it goes (so "[url]" would only repeat it)."""
    if not label:
        return False
    shown = label.strip("<> ").lower().rstrip("/")
    target = href.lower().rstrip("/")
    return shown in (target, _URL_PREFIX.sub("", target))
