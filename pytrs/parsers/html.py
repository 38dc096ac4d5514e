"""`render_html`: an HTML body in, a sanitised HTML and a text rendering out, within bounds.

Part of the parsing stage (SPEC S6): after the MIME walk found a text/html part, the postmaster
stores `safe_html` for the web view and, for HTML-only mail, `text` as the article body. Three
steps, cheapest first:

1. Guards (REFERENCE Part B #11–13): the size, a count of link-ish elements and an estimate of
   the element nesting are measured by linear scans before anything parses the HTML. html5ever
   (inside nh3) costs time quadratic in the nesting depth, so a mail over a bound degrades to a
   placeholder and a budgeted text rendering, with a warning; it never hangs a worker.
2. Sanitising with nh3: an allow-list of tags and attributes for reading mail; links only to
   http, https and mailto; a filtered subset of inline CSS; and nothing that fetches remote
   content: remote images keep their address in `data-remote-src` (no `src`), so the web view
   loads nothing until an agent asks, and `cid:` images point at the mail's own attachments.
3. The text rendering of `htmltext`, the same one `html_to_text` gives.

Everything is recomputable from the raw mail, so a later, better sanitiser can rebuild it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote

import nh3

from pytrs.parsers.htmltext import RAW_TEXT_ELEMENTS, raw_text_end, render_text
from pytrs.vocabulary.parse_limits import DEFAULT_LIMITS, ParseLimits


@dataclass(frozen=True, slots=True)
class HtmlResult:
    """The displayable and the readable form of one HTML part."""

    safe_html: str  # sanitised HTML for display, or a short placeholder HTML when degraded
    text: str  # plain-text rendering: "label [url]", "- item", "1. item", "a | b" table rows
    warnings: tuple[str, ...]  # one per degradation or repair


# What degraded text may cost: tokens rendered, characters kept, characters of input read.
DEGRADED_TOKENS = 100_000
DEGRADED_CHARS = 1_000_000
DEGRADED_INPUT = 16 * 1024 * 1024


def render_html(
    html: str,
    cid_map: Mapping[str, str] | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
    *,
    text: bool = True,
) -> HtmlResult:
    """Sanitise and render `html`; `cid_map` maps Content-IDs (without <>) to served URLs.

    `text=False` is for callers that have the mail's text already: the text rendering, as
    costly as the sanitising, is then skipped and `HtmlResult.text` is "" (except in a
    placeholder result, whose warnings tell how its text rendering went).
    Never raises: anything the guards refuse, or any failure, yields a placeholder and a warning.
    """
    try:
        reason = _over_limit(html, limits)
        if reason is not None:
            return _degraded(html, reason)
        warnings: list[str] = []
        safe_html = _sanitise(html, cid_map or {}, warnings)
        rendered = render_text(html)[0] if text else ""
        return HtmlResult(safe_html, rendered, tuple(warnings))
    except Exception as exc:  # A bug must cost the display, never the mail.
        return _degraded(
            html if isinstance(html, str) else "", f"HTML failed ({type(exc).__name__})"
        )


def _degraded(html: str, reason: str) -> HtmlResult:
    placeholder = f"<p>[HTML part not shown: {escape(reason)}]</p>"
    warnings = [f"{reason}: shown as placeholder"]
    try:
        text, complete = render_text(html[:DEGRADED_INPUT], DEGRADED_TOKENS, DEGRADED_CHARS)
    except Exception as exc:
        text, complete = "", True
        warnings.append(f"HTML text rendering failed ({type(exc).__name__})")
    if not complete or len(html) > DEGRADED_INPUT:
        warnings.append("HTML text rendering cut short: only the beginning is in the body")
    return HtmlResult(placeholder, text, tuple(warnings))


# --- 1. Guards -----------------------------------------------------------------------------------


def _over_limit(html: str, limits: ParseLimits) -> str | None:
    """Return why `html` must not be parsed, or None; every check is one linear scan."""
    # A character takes at most 4 bytes in utf-8: only a part that may be over is measured.
    if len(html) * 4 > limits.max_html_bytes:
        size = len(html) if html.isascii() else len(html.encode("utf-8", "surrogatepass"))
        if size > limits.max_html_bytes:
            return f"HTML part of {_megabytes(size)} exceeds {_megabytes(limits.max_html_bytes)}"
    # Every link-ish tag and every nesting level needs a "<": with few of them, neither the link
    # count nor the depth scan can find more than their bounds allow.
    opens = html.count("<")
    if opens > limits.max_html_links:
        links = count_links(html)
        if links > limits.max_html_links:
            return f"HTML has {links} links (limit {limits.max_html_links})"
    if opens - html.count("</") > limits.max_html_depth:
        depth = nesting_depth(html)
        if depth > limits.max_html_depth:
            return f"HTML nested {depth} deep (limit {limits.max_html_depth})"
    return None


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{megabytes:.0f} MB" if megabytes >= 10 else f"{megabytes:.1f} MB"


# Start tags that carry a URL; str.count on a lowered copy needs no regex and no match objects.
_LINK_TAGS = (
    *(f"<a{end}" for end in (" ", "\t", "\n", "\r", "\f", ">", "/")),
    "<img", "<image", "<area", "<iframe", "<frame", "<embed", "<object", "<link", "<form", "<input",
    "<video", "<audio", "<source", "<base", "<script",
)  # fmt: skip


def count_links(html: str) -> int:
    """Count the link-ish start tags (<a>, <img>, <iframe>, …) of `html`."""
    lowered = html.lower()
    return sum(lowered.count(tag) for tag in _LINK_TAGS)


_SCAN = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([a-zA-Z][^\s/>\x00]*+)", re.DOTALL)
_IGNORED = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img",
        "image", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",  # void
        "html", "head", "body",  # one each, whatever the markup says
    }
)  # fmt: skip
# Element kinds of the HTML tree-building rules the estimate follows (WHATWG "special", "has an
# element in scope", "close a p element").
_SCOPE = frozenset(
    {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "button",
     "ol", "ul", "svg", "math"}
)  # fmt: skip
_SPECIAL = _SCOPE | frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog", "dir",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "frameset",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "iframe", "li", "listing",
        "main", "menu", "nav", "noembed", "noframes", "noscript", "p", "plaintext", "pre",
        "script", "search", "section", "select", "style", "summary", "tbody", "textarea",
        "tfoot", "th", "thead", "title", "tr", "xmp",
    }
)  # fmt: skip
_BLOCKING = _SPECIAL - {"address", "div", "p"}  # what stops a new <li>/<dd> closing the open one
_CLOSES_P = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
        "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hgroup", "listing", "main", "menu", "nav", "ol", "p", "pre", "search",
        "section", "summary", "ul", "xmp", "li", "dd", "dt",
    }
)  # fmt: skip
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TABLE_CONTEXT = frozenset({"table", "tbody", "thead", "tfoot", "tr"})
_TABLE_PARTS = frozenset({"caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th"})


def nesting_depth(html: str) -> int:
    """Estimate the deepest element nesting the HTML tree builder would reach for `html`.

    One pass over the tags with an approximate stack of open elements: end tags close what the
    tree builder would close, and the implied closings that keep real mail flat (<p>, <li>,
    <td>, <tr>, …) are applied. Where the rules are too intricate to follow (misnested
    formatting), the estimate keeps the element open, so it errs on the deep side.
    """
    stack = _OpenElements()
    position = 0
    while match := _SCAN.search(html, position):
        position = match.end()
        close, name = match.group(1, 2)
        if name is None:
            continue  # a comment
        name = name.lower()
        if name in _IGNORED:
            continue
        if close:
            stack.close(name)
            continue
        stack.open(name)
        if name in RAW_TEXT_ELEMENTS:
            # Script, style, textarea, … hold text, not tags, until their own end tag.
            stack.close(name)
            position = raw_text_end(html, name, position)[1]
    return stack.deepest


class _OpenElements:
    """Open element names, with each name's and each kind's positions for O(1) scope checks."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.where: dict[str, list[int]] = {}
        self.scopes: list[int] = []  # positions of _SCOPE elements
        self.specials: list[int] = []  # positions of _SPECIAL elements
        self.blocking: list[int] = []  # positions of _BLOCKING elements
        self.deepest = 0

    def open(self, name: str) -> None:
        if name in _TABLE_PARTS and not self.where.get("table"):
            return  # Outside a table the tree builder drops these tags.
        if name in _CLOSES_P:
            self._close_at(self._nearest("p"), self._last(self.scopes))
        if name == "li":
            self._close_at(self._nearest("li"), self._last(self.blocking) - 1)
        elif name in ("dd", "dt"):
            found = max(self._nearest("dd"), self._nearest("dt"))
            self._close_at(found, self._last(self.blocking) - 1)
        elif name in ("td", "th", "tr"):
            # A new cell closes the open cell, a new row the open row (with its cells).
            table = max(self._nearest("table"), self._nearest("template"))
            row = self._nearest("tr")
            if name != "tr" or row < table:
                row = max(self._nearest("td"), self._nearest("th"))
            self._close_at(row, table)
        elif name == "a":
            self._close_at(self._nearest("a"), self._last(self.specials))
        elif name == "table" and self.names and self.names[-1] in _TABLE_CONTEXT:
            self._truncate(self._nearest("table"))  # A table directly in a table ends it.
        elif self.names and (
            (name in _HEADINGS and self.names[-1] in _HEADINGS)
            or (name == "option" and self.names[-1] == "option")
        ):
            self._truncate(len(self.names) - 1)
        self._push(name)

    def close(self, name: str) -> None:
        # A special element closes when in scope; any other only when no special is above it.
        barrier = self._last(self.scopes) - 1 if name in _SPECIAL else self._last(self.specials)
        self._close_at(self._nearest(name), barrier)

    def _close_at(self, found: int, barrier: int) -> None:
        """Close the element at position `found` (and all above it) if it lies above `barrier`."""
        if found > barrier and found >= 0:
            self._truncate(found)

    def _nearest(self, name: str) -> int:
        positions = self.where.get(name)
        return positions[-1] if positions else -1

    @staticmethod
    def _last(positions: list[int]) -> int:
        return positions[-1] if positions else -1

    def _push(self, name: str) -> None:
        position = len(self.names)
        self.names.append(name)
        self.where.setdefault(name, []).append(position)
        for kind, positions in (
            (_SCOPE, self.scopes), (_SPECIAL, self.specials), (_BLOCKING, self.blocking)
        ):  # fmt: skip
            if name in kind:
                positions.append(position)
        self.deepest = max(self.deepest, position + 1)

    def _truncate(self, size: int) -> None:
        while len(self.names) > size:
            name = self.names.pop()
            position = len(self.names)
            self.where[name].pop()
            for positions in (self.scopes, self.specials, self.blocking):
                if positions and positions[-1] == position:
                    positions.pop()


# --- 2. Sanitising -------------------------------------------------------------------------------

_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big",
        "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
        "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li",
        "main", "mark", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strike",
        "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
        "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# Removed with their content (everything else not allowed loses the tag and keeps its text).
_DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "title", "iframe", "noembed", "noframes", "noscript", "template"}
)
_ROW = frozenset({"valign", "bgcolor", "height"})
_CELL = _ROW | {"width", "colspan", "rowspan", "nowrap", "scope"}
_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"title", "lang", "dir", "align", "style"}),
    "a": frozenset({"href"}),
    "img": frozenset(
        {"src", "data-remote-src", "alt", "width", "height", "border", "hspace", "vspace"}
    ),
    "table": frozenset({"width", "height", "border", "cellpadding", "cellspacing", "bgcolor"}),
    "tr": _ROW, "thead": _ROW, "tbody": _ROW, "tfoot": _ROW, "td": _CELL, "th": _CELL,
    "col": frozenset({"span", "width", "valign"}), "colgroup": frozenset({"span", "width"}),
    "font": frozenset({"color", "face", "size"}),
    "ol": frozenset({"start", "type", "reversed"}), "ul": frozenset({"type"}),
    "li": frozenset({"value", "type"}), "hr": frozenset({"width", "size", "noshade", "color"}),
}  # fmt: skip
# Inline CSS kept for reading: colours, fonts, spacing, borders, alignment. Nothing that places
# content over the page (position, z-index) and, through _STYLE_VALUE, nothing that can load or
# run anything: no url(), no expression(), no escapes, no comments.
_STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "background", "font", "font-family", "font-size",
        "font-style", "font-weight", "font-variant", "text-align", "text-decoration",
        "text-indent", "text-transform", "letter-spacing", "word-spacing", "line-height",
        "white-space", "vertical-align", "direction", "display", "float", "clear", "width",
        "height", "max-width", "min-width", "margin", "margin-top", "margin-right",
        "margin-bottom", "margin-left", "padding", "padding-top", "padding-right",
        "padding-bottom", "padding-left", "border", "border-top", "border-right",
        "border-bottom", "border-left", "border-color", "border-style", "border-width",
        "border-collapse", "border-spacing", "border-radius", "list-style-type", "table-layout",
    }
)  # fmt: skip
_COLOR_FUNCTION = re.compile(r"(?i)\b(?:rgba?|hsla?)\([\d\s.,%/+-]*\)")
_STYLE_VALUE = re.compile(r"[\w\s#.,%+'\"!/-]*")  # "/" (font: 12px/1.5) but no "*": no comments
_MAX_DECLARATIONS = 50

_LINK = re.compile(r"(?i)(?:https?://|mailto:)")
_REMOTE = re.compile(r"(?i)(?:https?:)?//")
_DATA_IMAGE = re.compile(r"(?i)data:image/(?:png|gif|jpe?g|webp);base64,[a-z0-9+/=\s]*")
_SCRIPT_SCHEME = re.compile(r"(?i)(?:java|vb|live)script:|file:|data:")
_CONTROLS = re.compile(r"[\x00-\x20]+")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_MARKER = "pytrs-img-"
_IMG_TAG = re.compile(r"<img\s[^>]*>")  # nh3 escapes "<" and ">" inside attribute values
_MARKED_SRC = re.compile(rf' src="{_MARKER}(\d+)"')
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# nh3 checks URLs before and after the filter, so what the filter must see (cid:, and the
# served URLs of an earlier pass) has to pass that check too.
_URL_SCHEMES = frozenset({"http", "https", "mailto", "data", "cid"})


def _sanitise(html: str, cid_map: Mapping[str, str], warnings: list[str]) -> str:
    images = _ImageSources(cid_map)
    try:
        cleaned = _clean(html, images)
    except UnicodeEncodeError:  # Lone surrogates (from surrogateescape) cannot reach Rust.
        warnings.append("HTML had unpaired surrogate characters, replaced")
        cleaned = _clean(_SURROGATES.sub("\ufffd", html), images)
    if images.missing:
        warnings.append(f"HTML refers to {images.missing} inline image(s) not in the mail: removed")
    if images.sources:
        cleaned = _IMG_TAG.sub(images.restore, cleaned)
    return cleaned.strip()  # The whitespace around a removed <head> is noise.


def _clean(html: str, images: _ImageSources) -> str:
    token = _IMAGES.set(images)
    try:
        return _cleaner(frozenset(images.schemes - _URL_SCHEMES)).clean(html)
    finally:
        _IMAGES.reset(token)


# Building nh3's sanitiser from the allow-lists costs about three times the sanitising of a
# typical mail's HTML, so a built one is kept and reused. nh3 fixes the callbacks when it is
# built; the per-call policy (this mail's images, and what was decided for them) reaches them
# through this variable, which `_clean` sets for the duration of one call. A context variable
# rather than a global, so that threads sanitising at the same time never see each other's.
_IMAGES: ContextVar[_ImageSources] = ContextVar("pytrs_html_images")


@functools.lru_cache(maxsize=16)
def _cleaner(extra_schemes: frozenset[str]) -> nh3.Cleaner:
    """The sanitiser for one set of served-URL schemes (in practice one or two sets)."""
    return nh3.Cleaner(
        **sanitiser_options(extra_schemes),
        attribute_filter=_filter_attribute,
        url_relative=_relative_url,
    )


def sanitiser_options(extra_schemes: frozenset[str] = frozenset()) -> dict[str, Any]:
    """nh3's options for the allow-lists above, without the callbacks (tests compare a
    one-off `nh3.clean` with the reused sanitiser)."""
    return {
        "tags": set(_TAGS),
        "clean_content_tags": set(_DROPPED_WITH_CONTENT),
        "attributes": {tag: set(names) for tag, names in _ATTRIBUTES.items()},
        "strip_comments": True,
        "link_rel": "noopener noreferrer nofollow",
        "url_schemes": {*_URL_SCHEMES, *extra_schemes},
        "filter_style_properties": set(_STYLE_PROPERTIES),
    }


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    return _IMAGES.get().filter(tag, attribute, value)


def _relative_url(url: str) -> str | None:
    return _IMAGES.get().relative(url)


class _ImageSources:
    """The attribute policy, plus what it decided for each <img src> of one call.

    nh3 cannot rename attributes, so an image source that must change (a remote address moved
    to `data-remote-src`, a `cid:` replaced by its served URL) becomes a marker that passes
    nh3's URL check, and `restore` writes the real attribute into the sanitised output.
    """

    def __init__(self, cid_map: Mapping[str, str]) -> None:
        self.targets = {_cid_key(key): value for key, value in cid_map.items() if _safe(value)}
        self.served = frozenset(self.targets.values())
        self.schemes = {
            found.group(1).lower() for found in map(_SCHEME.match, self.served) if found
        }
        self.sources: list[str] = []  # attribute text per marker number
        self.missing = 0

    def filter(self, tag: str, attribute: str, value: str) -> str | None:
        """nh3's attribute_filter: the value to keep (maybe rewritten), or None to drop it."""
        try:
            return self._decide(tag, attribute, value.strip())
        except Exception:  # nh3 would only report it as unraisable; dropping is the safe side.
            return None

    def _decide(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return _filter_style(value)
        if attribute == "href":
            return value if _LINK.match(value) else None
        if tag != "img" or attribute not in ("src", "data-remote-src"):
            return value
        if attribute == "data-remote-src":  # already moved by an earlier pass
            return value if _REMOTE.match(value) and value[:2] != "//" else None
        if _DATA_IMAGE.fullmatch(value):
            return value
        if _REMOTE.match(value):
            address = f"https:{value}" if value.startswith("//") else value
            return self._mark("data-remote-src", address)
        if value[:4].lower() == "cid:":
            target = self.targets.get(_cid_key(value[4:]))
            if target is None:
                self.missing += 1
                return None
            return self._mark("src", target)
        return self._mark("src", value) if value in self.served else None

    def relative(self, url: str) -> str | None:
        """nh3's url_relative: only the markers and served URLs; relative links go nowhere."""
        return url if url.startswith(_MARKER) or url in self.served else None

    def _mark(self, attribute: str, value: str) -> str:
        self.sources.append(f'{attribute}="{_attribute_escape(value)}"')
        return f"{_MARKER}{len(self.sources) - 1}"

    def restore(self, tag: re.Match[str]) -> str:
        def source(marked: re.Match[str]) -> str:
            number = int(marked.group(1))
            return f" {self.sources[number]}" if number < len(self.sources) else ""

        return _MARKED_SRC.sub(source, tag.group(0))


def _cid_key(content_id: str) -> str:
    return unquote(content_id).strip().strip("<>").strip().lower()


def _safe(url: str) -> bool:
    """Whether a served URL from the caller's cid_map may become an image source."""
    plain = _CONTROLS.sub("", url)  # Browsers ignore these inside a scheme ("java\tscript:").
    return not _SCRIPT_SCHEME.match(plain) or bool(_DATA_IMAGE.fullmatch(url.strip()))


def _filter_style(value: str) -> str | None:
    kept = []
    for declaration in value.split(";")[:_MAX_DECLARATIONS]:
        name, colon, setting = declaration.partition(":")
        name, setting = name.strip().lower(), setting.strip()
        if colon and name in _STYLE_PROPERTIES and _plain_css(setting):
            kept.append(f"{name}:{setting}")
    return ";".join(kept) or None


def _plain_css(setting: str) -> bool:
    """Whether a CSS value is words, numbers, colours and quotes only (no functions but colours)."""
    rest = _COLOR_FUNCTION.sub("0", setting)
    return (
        _STYLE_VALUE.fullmatch(rest) is not None
        and rest.count('"') % 2 == 0
        and rest.count("'") % 2 == 0
    )


def _attribute_escape(value: str) -> str:
    # As html5ever serialises attribute values, so that sanitising twice changes nothing.
    return (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\xa0", "&nbsp;")
    )
