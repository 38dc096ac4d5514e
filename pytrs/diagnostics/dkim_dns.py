"""Diagnostic: each DKIM key's DNS record publishes the public half of its private key.

Place in the flow: one of the concurrent checks of `pytrs doctor`. For every `[[dkim_keys]]`
entry it looks up the TXT record `<selector>._domainkey.<domain>` through the resolver the
verifier of agent mail uses (`[authentication] dns_resolver`, else the system's) and compares
its `p=` with the public key of the private key file (RSA or ed25519). A missing record, a
revoked one (empty `p=`) or another key is a FAIL that quotes the record to publish: receivers
would otherwise reject or distrust every mail pytrs signs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

import dkim.util
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pytrs.authentication.dkim_verify import DkimVerifier
from pytrs.config import Config, ConfigError, DkimKeyConfig
from pytrs.diagnostics.findings import Finding, fail, ok
from pytrs.outbound.dkim import DkimKey, load_key

CHECK = "dkim"


async def check_dkim_dns(config: Config, seconds: float) -> list[Finding]:
    if not config.dkim_keys:
        return [ok(CHECK, "no [[dkim_keys]]: mail goes out unsigned")]
    auth = config.authentication
    try:
        verifier = DkimVerifier(auth.dns_resolver, seconds)
    except ConfigError as exc:
        return [fail(CHECK, "; ".join(exc.errors), "fix [authentication] dns_resolver")]
    if verifier.resolver is None:
        return [fail(CHECK, verifier.resolver_problem, "set [authentication] dns_resolver")]
    checks = (_one(verifier, index, entry, seconds) for index, entry in enumerate(config.dkim_keys))
    return list(await asyncio.gather(*checks))


async def _one(verifier: DkimVerifier, index: int, entry: DkimKeyConfig, seconds: float) -> Finding:
    name = f"{entry.selector}._domainkey.{entry.domain.rstrip('.')}"
    try:
        key = await asyncio.to_thread(load_key, entry)
    except ValueError as exc:
        return fail(
            CHECK,
            f"{name}: dkim_keys[{index}].private_key_file: {exc}",
            "fix the key file (`pytrs config check` says the same)",
        )
    expected = key.dns_record()
    publish = f'publish: {name}. TXT "{expected}"'
    record, problem = await verifier.key_record(f"{name}.".encode("ascii"), seconds)
    if record is None:
        if problem.startswith("no "):  # NXDOMAIN, or the name has no TXT record
            return fail(CHECK, f"{name}: {problem}", publish)
        # The lookup itself failed: the record may well be there.
        return fail(CHECK, f"{name}: {problem}", _resolver_advice(verifier))
    mismatch = _mismatch(record, key)
    if mismatch:
        return fail(CHECK, f"{name}: {mismatch}", publish)
    return ok(CHECK, f"{name} publishes the key of {entry.private_key_file} ({_kind(key)})")


def _mismatch(record: bytes, key: DkimKey) -> str:
    """Why `record` does not publish `key`'s public half; "" when it does."""
    try:
        tags = dkim.util.parse_tag_value(record)
    except dkim.util.InvalidTagValueList:
        return f"the record is not a DKIM key record: {record[:80]!r}"
    published = b"".join(tags.get(b"p", b"").split())
    if not published:
        return "the record revokes the key (empty p=)"
    kind = tags.get(b"k", b"rsa").strip().decode("ascii", "replace").lower()
    wanted = "ed25519" if isinstance(key.private_key, ed25519.Ed25519PrivateKey) else "rsa"
    if kind != wanted:
        return f"the record holds a {kind} key, the key file an {wanted} key"
    try:
        data = base64.b64decode(published, validate=True)
    except binascii.Error:
        return "p= of the record is not base64"
    return "" if _same_key(data, key) else "the record publishes another key than the key file's"


def _same_key(data: bytes, key: DkimKey) -> bool:
    public = key.private_key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return data == raw
    try:
        # SubjectPublicKeyInfo (RFC 6376) or a bare PKCS#1 key, which some tools publish.
        other = serialization.load_der_public_key(data)
    except ValueError:
        return False
    return isinstance(other, rsa.RSAPublicKey) and other.public_numbers() == public.public_numbers()


def _kind(key: DkimKey) -> str:
    if isinstance(key.private_key, rsa.RSAPrivateKey):
        return f"rsa {key.private_key.key_size} bits"
    return "ed25519"


def _resolver_advice(verifier: DkimVerifier) -> str:
    assert verifier.resolver is not None
    resolver = verifier.resolver
    servers = ", ".join(f"{s}:{resolver.port}" for s in resolver.nameservers)
    return f"check that the DNS server ({servers}) answers ([authentication] dns_resolver)"
