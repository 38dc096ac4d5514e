"""DKIM verification of incoming mail (RFC 6376; ed25519 per RFC 8463), with dkimpy.

Place in the flow: ``authentication.authenticity`` asks ``DkimVerifier.check`` whether a mail
from an agent's address carries a signature of that address's domain; the other
authentication methods and the decision live there. A signature counts when it verifies, its
d= is aligned with the From domain, it signs From, and it covers the whole body (one with
``l=`` would let anyone append text to a signed mail, so it does not count).

Alignment (``aligned``): d= must equal the From address's domain or be a parent domain of it
with at least two labels — ``example.com`` vouches for ``agent@mail.example.com``, never the
reverse, and never a bare top-level domain. This is DMARC's relaxed alignment without the
public suffix list: a signer can only sign with a key it published under d=, so a parent
domain vouches only for names its owner controls (a registry does not publish keys at
``co.uk``); relaxed alignment's other half, a d= *below* the From domain, is not accepted.

Never blocking the event loop: dkimpy parses the message in a worker thread; the key records
(``<s>._domainkey.<d>``) of the aligned signatures are fetched concurrently with dnspython's
asyncio resolver (``[authentication] dns_resolver``, or the system's); then the verification,
CPU work (RSA), runs in a thread again with a ``dnsfunc`` that hands dkimpy the prefetched
record. Bounded: at most MAX_SIGNATURES signatures per mail, and the whole check gives up
after ``dkim_timeout_seconds``. A missing record, an unreachable resolver, a timeout or a
message dkimpy cannot read is a failed check with its reason, never an exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass

import dkim
import dkim.util
import dns.asyncresolver
import dns.exception
import dns.resolver

from pytrs.config import ConfigError, listen_address
from pytrs.metrics.registry import DKIM_VERIFICATIONS

logger = logging.getLogger(__name__)
# dkimpy's own debug lines, apart so that they can be silenced or turned up on their own.
_dkimpy_logger = logging.getLogger(__name__ + ".dkimpy")

# Bounded work per mail whatever it carries: signatures checked and key records fetched.
MAX_SIGNATURES = 4
MIN_RSA_BITS = 1024  # RFC 8301
LOOKUP_SHARE = 0.8  # of dkim_timeout_seconds left for the key lookups, the rest to verify
_DNS_CACHE_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class DkimResult:
    """Whether an aligned signature verified, and one line saying which, or why none did."""

    passed: bool
    detail: str  # "dkim pass d=example.com s=s1" | "dkim fail d=… s=…: why" | "dkim: why"

    @property
    def outcome(self) -> str:
        """pass | fail (a signature did not verify) | none (no usable signature) | error."""
        if self.passed:
            return "pass"
        if self.detail.startswith("dkim fail"):
            return "fail"
        if self.detail.startswith(("dkim: no DKIM-Signature", "dkim: no usable signature")):
            return "none"
        return "error"


@dataclass(frozen=True, slots=True)
class _Signature:
    """A DKIM-Signature worth checking: its position among them and its tags."""

    index: int
    domain: str
    selector: str
    tags: dict[bytes, bytes]

    @property
    def key_name(self) -> bytes:
        return self.tags[b"s"] + b"._domainkey." + self.tags[b"d"] + b"."

    def __str__(self) -> str:
        return f"d={self.domain} s={self.selector}"


class DkimVerifier:
    """Checks DKIM signatures; one per process, safe to use from concurrent tasks."""

    def __init__(self, dns_resolver: str = "", timeout: float = 5.0) -> None:
        """Set up the resolver: `dns_resolver` ("host:port") or the system's ("").

        Raises ConfigError when the host of `dns_resolver` cannot be resolved. A missing
        system resolver (no ``/etc/resolv.conf``) is not fatal: every check then fails,
        saying why.
        """
        self.timeout = timeout
        self.resolver: dns.asyncresolver.Resolver | None = None
        self.resolver_problem = ""
        try:
            self.resolver = _resolver(dns_resolver)
        except dns.exception.DNSException as exc:
            self.resolver_problem = f"no DNS resolver ({_one_line(exc)})"
            logger.warning("DKIM checks of agent mail will fail: %s", self.resolver_problem)

    async def check(self, raw: bytes, from_domain: str) -> DkimResult:
        """Whether `raw` carries a valid signature aligned with `from_domain` (A-labels).

        Raises nothing but cancellation.
        """
        result = await self._checked(raw, from_domain)
        DKIM_VERIFICATIONS.labels(result.outcome).inc()
        return result

    async def _checked(self, raw: bytes, from_domain: str) -> DkimResult:
        if self.resolver is None:
            return DkimResult(False, f"dkim: {self.resolver_problem}")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._check(raw, from_domain)
        except TimeoutError:
            # A verification still running in its thread finishes there, unheeded.
            return DkimResult(False, f"dkim: gave up after {self.timeout:g} s")

    async def _check(self, raw: bytes, domain: str) -> DkimResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        # dkimpy parses the whole message; a large one is CPU work for a thread too.
        message, signatures, problem = await asyncio.to_thread(_signatures, raw, domain)
        if message is None or not signatures:
            return DkimResult(False, f"dkim: {problem}")
        names = list(dict.fromkeys(s.key_name for s in signatures))
        # The lookups end a little before the whole check must, so that a silent DNS server
        # is reported as such rather than as a timeout of the check.
        lifetime = max(0.05, (deadline - loop.time()) * LOOKUP_SHARE)
        records = await asyncio.gather(*(self.key_record(name, lifetime) for name in names))
        keys = dict(zip(names, records, strict=True))
        return await asyncio.to_thread(_verify, message, signatures, keys)

    async def key_record(self, name: bytes, lifetime: float) -> tuple[bytes | None, str]:
        """The DKIM key record at `name`, or None and why there is none. Never raises."""
        assert self.resolver is not None
        text = name.decode("ascii", "replace")
        try:
            # dnspython may overrun its lifetime by a retry's back-off; this bound is exact.
            async with asyncio.timeout(lifetime):
                answer = await self.resolver.resolve(text, "TXT", search=False, lifetime=lifetime)
        except dns.resolver.NXDOMAIN:
            return None, f"no key record {text} (NXDOMAIN)"
        except dns.resolver.NoAnswer:
            return None, f"no TXT record at {text}"
        except (dns.exception.Timeout, TimeoutError):
            return None, f"key lookup of {text} timed out"
        except dns.resolver.NoNameservers:
            return None, f"key lookup of {text} failed: no DNS server answered"
        except (dns.exception.DNSException, OSError) as exc:
            return None, f"key lookup of {text} failed: {_one_line(exc)}"
        texts = [b"".join(rdata.strings) for rdata in answer]
        keys = [t for t in texts if t.lstrip().startswith(b"v=DKIM1")] or texts
        if len(keys) != 1:
            # RFC 6376 §3.6.2.2: several key records leave the result undefined.
            return None, f"{len(keys)} key records at {text}"
        return keys[0], ""


def _resolver(spec: str) -> dns.asyncresolver.Resolver:
    """The resolver for key lookups: `spec` ("host:port") or the system's ("")."""
    if not spec:
        resolver = dns.asyncresolver.Resolver()
    else:
        parsed = listen_address(spec)  # the configuration check saw host:port
        assert not isinstance(parsed, str)
        host, port = parsed
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [_ip_address(host, port)]
        resolver.port = port
    # EDNS with a 1232-byte buffer (the DNS flag day 2020 size): an RSA-4096 key record fits
    # in UDP; bigger answers still come truncated and are fetched again over TCP.
    resolver.use_edns(0, 0, 1232)
    resolver.cache = dns.resolver.LRUCache(_DNS_CACHE_ENTRIES)
    return resolver


def _ip_address(host: str, port: int) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    # A host name: resolved once, at start, by the system.
    try:
        return str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
    except OSError as exc:
        raise ConfigError(f"authentication.dns_resolver: cannot resolve {host}: {exc}") from exc


def _signatures(raw: bytes, domain: str) -> tuple[dkim.DKIM | None, list[_Signature], str]:
    """(Thread) The parsed message and its signatures worth a key lookup, or why none is.

    Only signatures aligned with `domain`, signing From, without ``l=``; at most
    MAX_SIGNATURES. Never raises.
    """
    try:
        message = dkim.DKIM(raw, logger=_dkimpy_logger, minkey=MIN_RSA_BITS)
    except Exception as exc:  # dkimpy's parser raises more than DKIMException on bad input
        return None, [], f"message unreadable ({_one_line(exc)})"
    found: list[_Signature] = []
    skipped: list[str] = []
    values = [v for n, v in message.headers if n.lower() == b"dkim-signature"]
    for index, value in enumerate(values):
        try:
            tags = dkim.util.parse_tag_value(value)
            sig = _Signature(index, _tag(tags, b"d").lower(), _tag(tags, b"s"), tags)
        except (dkim.util.InvalidTagValueList, KeyError, UnicodeDecodeError):
            skipped.append("unreadable signature")
            continue
        problem = _unusable(sig, domain)
        if problem:
            skipped.append(f"{sig}: {problem}")
        elif len(found) < MAX_SIGNATURES:
            found.append(sig)
    if not values:
        return message, [], "no DKIM-Signature"
    return message, found, "no usable signature (" + "; ".join(skipped[:MAX_SIGNATURES]) + ")"


def _tag(tags: dict[bytes, bytes], name: bytes) -> str:
    return tags[name].decode("ascii").strip()


def _unusable(sig: _Signature, domain: str) -> str:
    if not aligned(sig.domain, domain):
        return f"not aligned with {domain}"
    signed = {h.strip().lower() for h in sig.tags.get(b"h", b"").split(b":")}
    if b"from" not in signed:
        return "does not sign From"
    if b"l" in sig.tags:
        return "l= leaves part of the body unsigned"
    return ""


def _verify(
    message: dkim.DKIM, signatures: list[_Signature], keys: dict[bytes, tuple[bytes | None, str]]
) -> DkimResult:
    """(Thread) The first of `signatures` that verifies with its prefetched key, else why not."""
    failures = []
    for sig in signatures:
        record, problem = keys[sig.key_name]
        if record is None:
            failures.append(f"{sig}: {problem}")
            continue
        try:
            # Checked here for its reason: dkimpy only logs why a key is unusable.
            dkim.evaluate_pk(sig.key_name, record)
            ok = message.verify(idx=sig.index, dnsfunc=lambda _name, timeout=0, r=record: r)
        except (dkim.DKIMException, ValueError) as exc:  # ValueError: a key not in base64
            failures.append(f"{sig}: {_one_line(exc)}")
            continue
        except Exception as exc:  # a dkimpy bug on odd input must not end the mail's check
            logger.warning("dkimpy failed on %s: %r", sig, exc)
            failures.append(f"{sig}: verifier error ({type(exc).__name__})")
            continue
        if ok:
            return DkimResult(True, f"dkim pass {sig}")
        failures.append(f"{sig}: signature does not verify")
    return DkimResult(False, "dkim fail " + "; ".join(failures))


def aligned(signer: str, from_domain: str) -> bool:
    """Whether `signer` (a d= domain) vouches for `from_domain`: equal, or a parent of it
    with at least two labels. Both in A-labels (IDNA), any case."""
    signer, from_domain = signer.lower().rstrip("."), from_domain.lower().rstrip(".")
    if "." not in signer or not signer.replace(".", ""):
        return False
    return from_domain == signer or from_domain.endswith("." + signer)


def idna(domain: str) -> str:
    """`domain` in A-labels (what d= holds), or as it is when it has none."""
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
