"""Address extraction from decoded header text (From, To, Cc, Delivered-To, …).

Used by `parse_mail` for the sender address and by `ParsedMail.addresses()` for recipient
matching. Header fields in the wild are often not RFC 5322, so this keeps whatever looks like an
addr-spec and drops the rest instead of failing; the header text itself keeps everything.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

# What `addresses()` accepts: a local part without specials or spaces, or a quoted one (fax
# gateways write "#fax#*49…#"@host), and a host name or an address literal.
_LOCAL = re.compile(r'"(?:[^"\\\r\n]|\\.)*"|[^\s<>()\[\]\\,;:"@]+')
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?|\[[^\[\]\s\\]+\]")
# A loose addr-spec for the fallback scan: no spaces, brackets, quotes or list separators.
_ADDR_SPEC = re.compile(r"[^\s<>()\[\],;:\"@]+@[^\s<>()\[\],;:\"@]+")
# The two shapes nearly every sender uses, "Name <addr>" and a bare addr, recognised without the
# full RFC 5322 parser (which dominates the cost of reading From otherwise).
_SIMPLE = re.compile(
    r"\s*(?:\"[^\"\\]*\"|[^<>\",;:()@\\\[\]]*?)\s*<([^<>\s@\",]+@[^<>\s@\",]+)>\s*"
    r"|\s*([^<>\s@\",;:()\\]+@[^<>\s@\",;:()\\]+)\s*"
)


def _is_addr_spec(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return (
        bool(at) and _LOCAL.fullmatch(local) is not None and _DOMAIN.fullmatch(domain) is not None
    )


def extract_addresses(value: str) -> list[str]:
    """Return the lower-cased addr-specs found in one header value, in order.

    `getaddresses` understands display names, comments and groups; when it recognises nothing
    although the text contains an "@", a plain pattern scan recovers what it can. Whatever is
    returned is a plausible addr-spec: malformed entries stay in the header text only.
    """
    if "@" not in value:
        return []
    simple = _SIMPLE.fullmatch(value)
    if simple:
        address = simple.group(1) or simple.group(2)
        if _is_addr_spec(address):
            return [address.lower()]
    try:
        pairs = getaddresses([value])
    except Exception:  # Defensive: older patch releases raise on some malformed input.
        pairs = []
    found = [addr.strip().lower() for _name, addr in pairs if _is_addr_spec(addr.strip())]
    if not found:
        # A sentence's full stop is no part of the address before it.
        scanned = (match.rstrip(".").lower() for match in _ADDR_SPEC.findall(value))
        found = [address for address in scanned if _is_addr_spec(address)]
    return found
