"""What may appear in a page that shows hostile mail: a checker over the parsed markup.

Used by the ASGI tests of the corpus (`test_xss_zoom.py`, and the queue view's and search's
tests): it parses a page and each sandboxed frame's `srcdoc` document as a browser would
tokenise them and lists every element or attribute that could run code, load something, or
leave the page. An empty list is a pass.
"""

from __future__ import annotations

from html.parser import HTMLParser

_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")
_URL_ATTRIBUTES = ("href", "src", "action", "formaction", "xlink:href", "poster", "background",
                   "srcset", "data", "code", "codebase", "ping", "lowsrc", "dynsrc")  # fmt: skip
_NEVER_IN_FRAME = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form",
                   "input", "button", "meta", "base", "link", "style", "svg", "math", "portal",
                   "template", "noscript", "video", "audio", "source", "picture"}  # fmt: skip
_IMAGE_DATA = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str]]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, [(k, v or "") for k, v in attrs]))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def _parse(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    return collector


def page_problems(markup: str) -> list[str]:
    """Problems of a page of the web view (the frames' documents checked too)."""
    found = []
    parsed = _parse(markup)
    found += [f"inline script {text[:60]!r}" for text in parsed.script_text]
    for tag, attrs in parsed.tags:
        values = dict(attrs)
        if tag == "script" and not values.get("src", "").startswith("/static/"):
            found.append(f"script tag {attrs!r}")
        if tag in ("base", "object", "embed", "applet", "style", "frame", "portal"):
            found.append(f"<{tag}> in the page")
        if tag == "meta" and "http-equiv" in values:
            found.append(f"<meta http-equiv={values['http-equiv']!r}>")
        found += _attribute_problems(tag, attrs, frame=False)
        if tag == "iframe":
            if values.get("sandbox") != "" or "src" in values:
                found.append(f"iframe without an empty sandbox or with a src: {attrs!r}")
            found += [f"frame: {p}" for p in frame_problems(values.get("srcdoc", ""))]
    return found


def frame_problems(document: str) -> list[str]:
    """Problems of a sandboxed frame's document (the sanitised HTML of an article)."""
    found = []
    parsed = _parse(document)
    found += [f"inline script {text[:60]!r}" for text in parsed.script_text]
    for tag, attrs in parsed.tags:
        if tag in _NEVER_IN_FRAME and not (tag == "meta" and _harmless_meta(dict(attrs))):
            found.append(f"<{tag}> {attrs!r}")
        found += _attribute_problems(tag, attrs, frame=True)
    return found


def _harmless_meta(values: dict[str, str]) -> bool:
    return "http-equiv" not in values and ("charset" in values or values.get("name") == "referrer")


def _attribute_problems(tag: str, attrs: list[tuple[str, str]], *, frame: bool) -> list[str]:
    found = []
    for name, value in attrs:
        lowered = "".join(value.split()).lower()
        if name.startswith("on"):
            found.append(f"<{tag} {name}=…> event handler")
        elif name == "style" and not frame:
            found.append(f"<{tag} style=…> in the page")
        elif name in _URL_ATTRIBUTES and lowered.startswith(_SCHEMES):
            if not (frame and tag == "img" and name == "src" and lowered.startswith(_IMAGE_DATA)):
                found.append(f"<{tag} {name}={value[:40]!r}>")
        elif frame and name in _URL_ATTRIBUTES and tag != "a" and "://" in lowered:
            found.append(f"<{tag} {name}={value[:40]!r}> loads a remote address")
        elif name == "style" and (
            "url(" in lowered or "expression(" in lowered or "@import" in lowered
        ):
            found.append(f"<{tag} style={value[:40]!r}>")
    return found
