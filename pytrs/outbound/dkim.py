"""DKIM signing of outbound mail, at send time (RFC 6376; ed25519 per RFC 8463).

Place in the flow: the outbox sender (``outbound.sender``) signs each claimed mail just before
delivering it, in a worker thread so the event loop never waits on it; the outbox keeps the
unsigned bytes, so a rotated key applies to mail already queued. A mail is signed when a key is
configured (``[[dkim_keys]]``) for the domain of its From address — the alignment DMARC checks —
or a parent domain of it, else for its envelope sender's domain; otherwise it goes unsigned.

The signature is dkimpy's: its message parser, canonicalisation, header selection, tag layout
and folding (its module-level ``fold``, ``RE_BTAG`` and ``hash_headers``), so the header is byte
for byte what ``dkim.sign`` writes; ``tests/responders/test_dkim.py`` checks exactly that, so a
dkimpy release that changes those helpers is caught there. Only
the private-key operation is done by OpenSSL through ``cryptography``, because dkimpy's pure
Python RSA costs ≈6 ms per RSA-2048 signature — alone more than the 300 messages/s on two cores
the sender must reach — against ≈0.3 ms.

Keys are read once at start (``DkimSigner.from_config``), as PEM (PKCS#1 or PKCS#8, RSA or
ed25519; the algorithm follows from the key) or, for ed25519, the base64 seed that dkimpy's
``dknewkey`` writes. A key that cannot be used is a ConfigError naming its entry.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from pytrs.config import ConfigError, DkimKeyConfig
from pytrs.metrics.registry import DKIM_SIGNATURES

RSA_SHA256 = b"rsa-sha256"
ED25519_SHA256 = b"ed25519-sha256"
# RFC 8301: verifiers must reject RSA keys under 1024 bits; 2048 is what to publish.
MIN_RSA_BITS = 1024
# relaxed/relaxed survives the whitespace changes relays make (line re-folding, trailing blanks).
CANONICALIZATION = b"relaxed/relaxed"
# RFC 6376 §5.4.1's list of fields worth signing, in the order they are listed in h=; only those
# present are signed, and From once more so that a From added later breaks the signature.
SIGNED_FIELDS = (
    b"from", b"sender", b"reply-to", b"subject", b"date", b"message-id", b"to", b"cc",
    b"in-reply-to", b"references", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"content-language", b"auto-submitted", b"x-pytrs-loop",
)  # fmt: skip
_HEADER_NAME = b"DKIM-Signature"
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FROM = re.compile(rb"^from:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One signing key: d= domain, s= selector, the algorithm that follows from the key."""

    domain: str
    selector: str
    algorithm: bytes
    private_key: PrivateKey = field(repr=False)

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 `digest` of the signed header data."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(
                digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
            )
        # RFC 8463: ed25519-sha256 signs the SHA-256 hash, not the data itself.
        return self.private_key.sign(digest)

    def dns_record(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


class DkimSigner:
    """The configured keys, by domain; ``sign`` is CPU work for a worker thread."""

    def __init__(self, keys: Sequence[DkimKey] = ()) -> None:
        # With two selectors for one domain (a rotation), the first listed signs.
        self.keys: dict[str, DkimKey] = {}
        for key in keys:
            self.keys.setdefault(key.domain.lower(), key)

    @classmethod
    def from_config(cls, entries: Sequence[DkimKeyConfig]) -> DkimSigner:
        """Load every ``[[dkim_keys]]`` entry; raises ConfigError listing each unusable one."""
        keys, errors = [], []
        for index, entry in enumerate(entries):
            try:
                keys.append(load_key(entry))
            except ValueError as exc:
                errors.append(f"dkim_keys[{index}].private_key_file: {exc}")
        if errors:
            raise ConfigError(errors)
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def key_for(self, *domains: str) -> DkimKey | None:
        """The key for the first of `domains` that has one, itself or a parent domain."""
        for domain in domains:
            labels = domain.lower().rstrip(".").split(".")
            # Parents down to two labels: a key for "example.com" signs "mail.example.com".
            for start in range(max(len(labels) - 1, 1)):
                key = self.keys.get(".".join(labels[start:]))
                if key is not None:
                    return key
        return None

    def sign(self, raw: bytes, envelope_from: str = "", now: float | None = None) -> bytes:
        """`raw` with a DKIM-Signature header on top, or unchanged when no key applies.

        Raises dkim.DKIMException for a message dkimpy cannot parse (a broken header).
        """
        domains = [d for d in (_from_domain(raw), _domain(envelope_from)) if d]
        key = self.key_for(*domains)
        if key is None:
            DKIM_SIGNATURES.labels("no-key").inc()
            return raw
        signed = signature_header(raw, key, now) + raw
        DKIM_SIGNATURES.labels("signed").inc()
        return signed


def signature_header(raw: bytes, key: DkimKey, now: float | None = None) -> bytes:
    """The DKIM-Signature header line(s) for `raw`, as dkimpy's ``DKIM.sign`` writes them."""
    message = dkim.DKIM(raw, linesep=b"\r\n")
    canon = dkim.CanonicalizationPolicy.from_c_value(CANONICALIZATION)
    present = {name.lower() for name, _value in message.headers}
    include = (*(name for name in SIGNED_FIELDS if name in present), b"from")
    domain = key.domain.encode("ascii")
    body_hash = hashlib.sha256(canon.canonicalize_body(message.body)).digest()
    fields = [
        (b"v", b"1"), (b"a", key.algorithm), (b"c", CANONICALIZATION), (b"d", domain),
        (b"i", b"@" + domain), (b"q", b"dns/txt"), (b"s", key.selector.encode("ascii")),
        (b"t", str(int(time.time() if now is None else now)).encode("ascii")),
        (b"h", b" : ".join(include)), (b"bh", base64.b64encode(body_hash)),
        # A placeholder so that b= folds onto a line of its own, as in dkimpy.
        (b"b", b"0" * 60),
    ]  # fmt: skip
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(_HEADER_NAME))
    value = dkim.RE_BTAG.sub(b"\\1", value)
    hasher = hashlib.sha256()
    dkim.hash_headers(
        hasher, canon, canon.canonicalize_headers(message.headers), include,
        (_HEADER_NAME, b" " + value), dict(fields),
    )  # fmt: skip
    fields[-1] = (b"b", base64.b64encode(key.sign_digest(hasher.digest())))
    value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
    return _HEADER_NAME + b": " + dkim.fold(value, namelen=len(_HEADER_NAME))


def load_key(entry: DkimKeyConfig) -> DkimKey:
    """Read and check the key of one ``[[dkim_keys]]`` entry; raises ValueError saying why."""
    try:
        data = Path(entry.private_key_file).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {entry.private_key_file}: {exc.strerror or exc}") from exc
    key = _parse_key(data)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits; DKIM needs at least 1024 (use 2048)")
        algorithm = RSA_SHA256
    else:
        algorithm = ED25519_SHA256
    try:
        domain = entry.domain.lower().rstrip(".").encode("idna").decode("ascii")
        entry.selector.encode("ascii")
    except (UnicodeError, ValueError) as exc:
        raise ValueError(f"domain and selector must be host names: {exc}") from exc
    return DkimKey(domain, entry.selector, algorithm, key)


def _parse_key(data: bytes) -> PrivateKey:
    if b"-----BEGIN" not in data:
        # dknewkey's ed25519 format: the 32-byte seed in base64 on one line.
        try:
            seed = base64.b64decode(data.strip(), validate=True)
            return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        except ValueError:
            raise ValueError("neither a PEM private key nor a base64 ed25519 seed") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError("the key is encrypted; DKIM keys must be stored unencrypted") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a usable PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"a {type(key).__name__}; DKIM signs with RSA or ed25519 keys only")
    return key


def _from_domain(raw: bytes) -> str:
    end = _HEADER_END.search(raw)
    found = _FROM.search(raw[: end.start()] if end else raw)
    if found is None:
        return ""
    addresses = getaddresses([found.group(1).decode("utf-8", "replace")])
    return _domain(addresses[0][1]) if addresses else ""


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()
