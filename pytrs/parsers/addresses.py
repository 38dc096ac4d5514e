"""Addresses of a mail: the addr-specs of From, To, Cc, Reply-To, Delivered-To, ….

`parse_mail` reads every address field here, from its *raw* text: RFC 2047 encoded words may
stand in a display name or a comment but never in an addr-spec (RFC 2047 section 5), so an
address is only what the raw field says it is. Decoded first, a display name like
`=?utf-8?q?victim=40external.example=2C_x?=` would read as one more address, and pytrs would
answer it. Display names are decoded afterwards, one mailbox at a time, for showing only.

Header fields in the wild are often not RFC 5322, so this keeps whatever looks like an
addr-spec and drops the rest instead of failing; the decoded header text itself keeps everything.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from pytrs.parsers.headers import decode_encoded_words
from pytrs.parsers.model import Mailbox

# What `addresses()` accepts: a local part without specials or spaces, or a quoted one (fax
# gateways write "#fax#*49…#"@host), and a host name or an address literal.
_LOCAL = re.compile(r'"(?:[^"\\\r\n]|\\.)*"|[^\s<>()\[\]\\,;:"@]+')
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?|\[[^\[\]\s\\]+\]")
# A loose addr-spec for the fallback scan: no spaces, brackets, quotes or list separators.
_ADDR_SPEC = re.compile(r"[^\s<>()\[\],;:\"@]+@[^\s<>()\[\],;:\"@]+")
# The two shapes nearly every sender uses, "Name <addr>" and a bare addr, recognised without the
# full RFC 5322 parser (which dominates the cost of reading From otherwise).
_SIMPLE = re.compile(
    r"\s*(\"[^\"\\]*\"|[^<>\",;:()@\\\[\]]*?)\s*<([^<>\s@\",]+@[^<>\s@\",]+)>\s*"
    r"|\s*([^<>\s@\",;:()\\]+@[^<>\s@\",;:()\\]+)\s*"
)


def _is_addr_spec(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return (
        bool(at) and _LOCAL.fullmatch(local) is not None and _DOMAIN.fullmatch(domain) is not None
    )


def base_address(address: str) -> str:
    """`Support+Tag@Example.COM` → `support@example.com` (the `+tag` and case removed)."""
    address = address.strip().strip("<>").lower()
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local.split('+', 1)[0]}@{domain}"


def extract_addresses(value: str) -> list[str]:
    """Return the lower-cased addr-specs found in one header value, in order."""
    return [mailbox.address for mailbox in parse_mailboxes(value)]


def single_address(value: str) -> str:
    """The lower-cased addr-spec of a value that is one mailbox, else "" (none, or several:
    free text such as a customer login may hold a whole list)."""
    found = parse_mailboxes(value)
    return found[0].address if len(found) == 1 else ""


def parse_mailboxes(value: str) -> list[Mailbox]:
    """Return the mailboxes of one *raw* header value (encoded words not decoded), in order.

    `getaddresses` understands display names, comments and groups; when it recognises nothing
    although the text contains an "@", a plain pattern scan recovers what it can. Every address
    returned is a plausible addr-spec, lower-cased: malformed entries stay in the header text
    only. Display names are decoded here, after the addresses were found.
    """
    if "@" not in value:
        return []
    simple = _SIMPLE.fullmatch(value)
    if simple:
        address = simple.group(2) or simple.group(3)
        if _is_addr_spec(address):
            name = (simple.group(1) or "").strip()
            if name.startswith('"') and name.endswith('"') and len(name) > 1:
                name = name[1:-1]
            return [Mailbox(_display_name(name), address.lower())]
    try:
        pairs = getaddresses([value])
    except Exception:  # Defensive: older patch releases raise on some malformed input.
        pairs = []
    found = [
        Mailbox(_display_name(name), addr.strip().lower())
        for name, addr in pairs
        if _is_addr_spec(addr.strip())
    ]
    if not found:
        # A sentence's full stop is no part of the address before it.
        scanned = (match.rstrip(".").lower() for match in _ADDR_SPEC.findall(value))
        found = [Mailbox("", address) for address in scanned if _is_addr_spec(address)]
    return found


def _display_name(raw: str) -> str:
    if "=?" not in raw:
        return raw
    # One line: a decoded word may carry its own line breaks (=0A).
    return " ".join(decode_encoded_words(raw, []).split())
