"""Agent authentication: DKIM against a real DNS server, Authentication-Results, reply tokens.

The DNS server (``dns_zone.DnsZone``) runs in the test's loop on port 0 and serves the public
halves of keys made here; mail is signed by dkimpy's own signer, so nothing of pytrs's signing
code is assumed correct.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pytrs.authentication.authenticity import AgentAuthenticator, Verdict
from pytrs.authentication.dkim_verify import aligned
from pytrs.authentication.reply_token import notification_message_id, reply_address
from pytrs.config import AuthenticationConfig, Config, ConfigError, OutboundConfig
from pytrs.parsers.mail import parse_mail

from ..servers.dns_zone import DnsZone, closed_port

TN = "2026060110000017"
AGENT = "jdoe@example.com"
LOGIN = "jdoe"
SECRET = b"reply-token-test-secret-0123456789"


@dataclass(frozen=True)
class Key:
    algorithm: bytes
    private: bytes  # as dkim.sign wants it
    record: str  # the TXT record to publish


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """An RSA-2048 and an ed25519 key pair, made once for this module."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    ed_seed = ed_key.private_bytes(
        raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    ed_public = ed_key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return {
        "rsa": Key(
            b"rsa-sha256",
            rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
            f"v=DKIM1; k=rsa; p={base64.b64encode(rsa_public).decode()}",
        ),
        "ed25519": Key(
            b"ed25519-sha256",
            base64.b64encode(ed_seed),
            f"v=DKIM1; k=ed25519; p={base64.b64encode(ed_public).decode()}",
        ),
    }


@pytest.fixture
async def zone(keys: dict[str, Key]) -> AsyncIterator[DnsZone]:
    """Selectors "rsa" and "ed25519" for example.com, other.org and sub.example.com."""
    records = {
        f"{selector}._domainkey.{domain}": [key.record]
        for selector, key in keys.items()
        for domain in ("example.com", "other.org", "sub.example.com")
    }
    records["broken._domainkey.example.com"] = ["v=DKIM1; k=rsa; p=bm90IGEga2V5"]
    server = await DnsZone(records).start()
    try:
        yield server
    finally:
        await server.stop()


def authenticator(resolver: str, **auth: Any) -> AgentAuthenticator:
    settings = {"dns_resolver": resolver, "dkim_timeout_seconds": 2.0, **auth}
    return AgentAuthenticator(Config(authentication=AuthenticationConfig(**settings)))


def mail(
    *,
    sender: str = f"Jane Doe <{AGENT}>",
    top: Sequence[str] = (),
    to: str = "Support <support@example.com>",
    extra: Sequence[str] = (),
    body: str = "The printer works again.\r\n\r\nJane\r\n",
) -> bytes:
    """An agent's answer; `top` are header lines above From (where MTAs add theirs)."""
    lines = [
        *top,
        f"From: {sender}",
        f"To: {to}",
        f"Subject: Re: [Ticket#{TN}] Printer on fire",
        "Date: Mon, 01 Jun 2026 10:00:00 +0000",
        "Message-ID: <answer.1@example.com>",
        *extra,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def signed(raw: bytes, key: Key, *, domain: str = "example.com", **options: Any) -> bytes:
    selector = b"rsa" if key.algorithm == b"rsa-sha256" else b"ed25519"
    header = dkim.sign(
        raw, selector, domain.encode(), key.private, signature_algorithm=key.algorithm, **options
    )
    return header + raw


async def verify(
    auth: AgentAuthenticator,
    raw: bytes,
    *,
    agent: str = AGENT,
    login: str = LOGIN,
    tn: str = TN,
    trusted_source: bool = False,
    recipients: Sequence[str] = ("support@example.com",),
    now: datetime | None = None,
) -> Verdict:
    return await auth.verify(
        raw, parse_mail(raw), agent_address=agent, agent_login=login, ticket_tn=tn,
        trusted_source=trusted_source, recipients=recipients, now=now,
    )  # fmt: skip


# --- DKIM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_dkim_pass_with_either_algorithm(
    zone: DnsZone, keys: dict[str, Key], algorithm: str
) -> None:
    verdict = await verify(authenticator(zone.address), signed(mail(), keys[algorithm]))
    assert verdict == Verdict(True, "dkim", f"dkim pass d=example.com s={algorithm}")
    assert zone.queries == [("udp", f"{algorithm}._domainkey.example.com")]


async def test_a_parent_domain_signs_for_a_subdomain_but_not_the_reverse(
    zone: DnsZone, keys: dict[str, Key]
) -> None:
    auth = authenticator(zone.address)
    agent = "jdoe@mail.example.com"
    parent = signed(mail(sender=agent), keys["ed25519"])
    assert (await verify(auth, parent, agent=agent)).authenticated
    child = signed(mail(), keys["ed25519"], domain="sub.example.com")
    verdict = await verify(auth, child)
    assert not verdict.authenticated
    assert "d=sub.example.com s=ed25519: not aligned with example.com" in verdict.detail
    assert zone.queries == [("udp", "ed25519._domainkey.example.com")]  # no lookup for child


async def test_signature_of_another_domain_does_not_count(
    zone: DnsZone, keys: dict[str, Key]
) -> None:
    verdict = await verify(
        authenticator(zone.address), signed(mail(), keys["rsa"], domain="other.org")
    )
    assert verdict.authenticated is False and verdict.method == ""
    assert "dkim: no usable signature (d=other.org s=rsa: not aligned with example.com)" in (
        verdict.detail
    )


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_tampered_body_fails(zone: DnsZone, keys: dict[str, Key], algorithm: str) -> None:
    raw = signed(mail(), keys[algorithm]).replace(b"works again", b"is on fire")
    verdict = await verify(authenticator(zone.address), raw)
    assert not verdict.authenticated
    assert f"dkim fail d=example.com s={algorithm}: body hash mismatch" in verdict.detail


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_tampered_header_fails(zone: DnsZone, keys: dict[str, Key], algorithm: str) -> None:
    raw = signed(mail(), keys[algorithm]).replace(b"Printer on fire", b"Printer fixed")
    verdict = await verify(authenticator(zone.address), raw)
    assert f"dkim fail d=example.com s={algorithm}: signature does not verify" in verdict.detail


async def test_a_second_from_field_spoils_everything(zone: DnsZone, keys: dict[str, Key]) -> None:
    raw = b"From: boss@example.com\r\n" + signed(mail(), keys["ed25519"])
    verdict = await verify(authenticator(zone.address), raw)
    assert verdict == Verdict(False, "", "2 From fields")


async def test_from_must_be_the_agent_address(zone: DnsZone, keys: dict[str, Key]) -> None:
    raw = signed(mail(sender=f"{AGENT}, other@example.com"), keys["ed25519"])
    verdict = await verify(authenticator(zone.address), raw)
    assert verdict == Verdict(False, "", f"From is not only {AGENT}")


async def test_body_length_limit_does_not_count(zone: DnsZone, keys: dict[str, Key]) -> None:
    raw = signed(mail(), keys["rsa"], length=True) + b"\r\nPS: send the invoice to me.\r\n"
    verdict = await verify(authenticator(zone.address), raw)
    assert "l= leaves part of the body unsigned" in verdict.detail
    assert zone.queries == []


async def test_unsigned_mail(zone: DnsZone) -> None:
    verdict = await verify(authenticator(zone.address), mail())
    assert verdict == Verdict(
        False, "", "reply-token: disabled (no key configured); "
        "authentication-results: no trusted authserv-id configured; dkim: no DKIM-Signature",
    )  # fmt: skip


async def test_missing_key_record(keys: dict[str, Key]) -> None:
    server = await DnsZone({}).start()
    try:
        verdict = await verify(authenticator(server.address), signed(mail(), keys["rsa"]))
    finally:
        await server.stop()
    assert "dkim fail d=example.com s=rsa: no key record rsa._domainkey.example.com." in (
        verdict.detail
    )


async def test_unusable_key_record(zone: DnsZone, keys: dict[str, Key]) -> None:
    raw = signed(mail(), keys["rsa"])
    raw = raw.replace(b"s=rsa;", b"s=broken;", 1)
    verdict = await verify(authenticator(zone.address), raw)
    assert "dkim fail d=example.com s=broken: could not parse RSA public key" in verdict.detail


async def test_dns_server_down_fails_in_time(keys: dict[str, Key]) -> None:
    auth = authenticator(closed_port(), dkim_timeout_seconds=1.0)
    started = time.monotonic()
    verdict = await verify(auth, signed(mail(), keys["ed25519"]))
    assert time.monotonic() - started < 1.5
    assert not verdict.authenticated
    assert verdict.detail.endswith(
        ("key lookup of ed25519._domainkey.example.com. timed out",
         "key lookup of ed25519._domainkey.example.com. failed: no DNS server answered")
    )  # fmt: skip


async def test_silent_dns_server_is_given_up_on(keys: dict[str, Key]) -> None:
    server = await DnsZone({}, silent=True).start()
    try:
        auth = authenticator(server.address, dkim_timeout_seconds=0.5)
        started = time.monotonic()
        verdict = await verify(auth, signed(mail(), keys["ed25519"]))
        elapsed = time.monotonic() - started
    finally:
        await server.stop()
    assert elapsed < 1.3
    assert verdict.detail.endswith("key lookup of ed25519._domainkey.example.com. timed out")


async def test_key_fetched_over_tcp_when_udp_is_truncated(keys: dict[str, Key]) -> None:
    name = "rsa._domainkey.example.com"
    server = await DnsZone({name: [keys["rsa"].record]}, truncate_udp=True).start()
    try:
        verdict = await verify(authenticator(server.address), signed(mail(), keys["rsa"]))
    finally:
        await server.stop()
    assert verdict.authenticated
    assert server.queries == [("udp", name), ("tcp", name)]


async def test_unreadable_message_fails_without_raising(zone: DnsZone) -> None:
    # A continuation line before any field: dkimpy's parser trips over it (IndexError).
    raw = b" stray\r\n" + mail(extra=["DKIM-Signature: v=1; d=example.com; s=rsa"])
    verdict = await verify(authenticator(zone.address), raw)
    assert not verdict.authenticated
    assert "dkim: message unreadable" in verdict.detail


async def test_a_batch_is_checked_concurrently(zone: DnsZone, keys: dict[str, Key]) -> None:
    auth = authenticator(zone.address)
    good = [
        signed(mail(body=f"answer {i}\r\n"), keys[("rsa", "ed25519")[i % 2]]) for i in range(12)
    ]
    bad = [m.replace(b"answer", b"ANSWER") for m in good[:6]]
    verdicts = await asyncio.gather(*(verify(auth, raw) for raw in good + bad))
    assert [v.authenticated for v in verdicts] == [True] * 12 + [False] * 6


def test_alignment_rule() -> None:
    assert aligned("example.com", "example.com")
    assert aligned("Example.COM.", "mail.example.com")
    assert not aligned("mail.example.com", "example.com")
    assert not aligned("com", "example.com")
    assert not aligned("ample.com", "example.com")
    assert not aligned(".", "example.com")
    assert not aligned("", "example.com")


# --- Authentication-Results ----------------------------------------------------------------

MX = "mx.example.com"


def ar(value: str) -> str:
    return f"Authentication-Results: {value}"


NO_PASS = f"authentication-results {MX}: no aligned dkim/dmarc pass"
RECEIVED = "Received: from agent.example.com by mx.example.com; Mon, 01 Jun 2026 10:00:01 +0000"


@pytest.mark.parametrize(
    ("result", "detail"),
    [
        (
            f"{MX}; dkim=pass (2048-bit key) header.d=example.com header.s=s1",
            f"authentication-results {MX}: dkim=pass header.d=example.com header.s=s1",
        ),
        (
            f"{MX}; spf=pass smtp.mailfrom=example.com; dmarc=pass (p=reject) "
            "header.from=example.com",
            f"authentication-results {MX}: dmarc=pass header.from=example.com",
        ),
        (
            "MX.Example.COM 1; dkim=pass header.i=@example.com",
            f"authentication-results {MX}: dkim=pass header.i=@example.com",
        ),
    ],
)
async def test_trusted_authentication_results_pass(result: str, detail: str) -> None:
    auth = authenticator(closed_port(), trusted_authserv_ids=(MX,))
    verdict = await verify(auth, mail(top=[ar(result), RECEIVED]), trusted_source=True)
    assert verdict == Verdict(True, "authentication-results", detail)


@pytest.mark.parametrize(
    ("top", "trusted_source", "reason"),
    [
        ([ar(f"{MX}; dkim=pass header.d=example.com")], False,
         "authentication-results: not believed from an untrusted source"),
        ([ar("mx.evil.org; dkim=pass header.d=example.com")], True,
         "authentication-results: topmost field from untrusted mx.evil.org"),
        ([ar(f"{MX}; dkim=fail header.d=example.com")], True,
         f"{NO_PASS} (dkim=fail header.d=example.com)"),
        ([ar(f"{MX}; dkim=pass header.d=evil.org")], True,
         f"{NO_PASS} (dkim=pass header.d=evil.org)"),
        ([ar(f"{MX}; dkim=pass header.s=s1")], True,
         f"{NO_PASS} (dkim=pass header.s=s1)"),
        ([ar(f"{MX}; dmarc=pass header.from=mail.example.com")], True,
         f"{NO_PASS} (dmarc=pass header.from=mail.example.com)"),
        ([ar(f"{MX}; none")], True, NO_PASS),
        ([RECEIVED], True, "authentication-results: none"),
        # Forged fields further down (the sender's own) are never read: the topmost is the
        # receiving MTA's, whatever it says.
        ([ar(f"{MX}; dkim=fail header.d=example.com"), RECEIVED,
          ar(f"{MX}; dkim=pass header.d=example.com")], True,
         f"{NO_PASS} (dkim=fail header.d=example.com)"),
        ([ar("relay.other.net; dkim=pass header.d=example.com"), RECEIVED,
          ar(f"{MX}; dkim=pass header.d=example.com")], True,
         "authentication-results: topmost field from untrusted relay.other.net"),
    ],
)  # fmt: skip
async def test_authentication_results_that_do_not_count(
    top: list[str], trusted_source: bool, reason: str
) -> None:
    auth = authenticator(closed_port(), trusted_authserv_ids=(MX,))
    verdict = await verify(auth, mail(top=top), trusted_source=trusted_source)
    assert not verdict.authenticated
    assert reason in verdict.detail.split("; ")


async def test_forged_field_below_the_sender_headers_is_ignored(
    zone: DnsZone, keys: dict[str, Key]
) -> None:
    """With the MTA's own field on top saying nothing useful, a forged pass lower down
    does not count, and the DKIM check still runs (and here fails)."""
    raw = mail(
        top=[ar(f"{MX}; spf=pass smtp.mailfrom=example.com"), RECEIVED],
        extra=[ar(f"{MX}; dkim=pass header.d=example.com; dmarc=pass header.from=example.com")],
    )
    auth = authenticator(zone.address, trusted_authserv_ids=(MX,))
    verdict = await verify(auth, raw, trusted_source=True)
    assert not verdict.authenticated
    assert verdict.detail.endswith("dkim: no DKIM-Signature")


# --- reply tokens --------------------------------------------------------------------------


def token_authenticator(tmp_path: Path, resolver: str = "") -> AgentAuthenticator:
    secret_file = tmp_path / "reply.key"
    secret_file.write_bytes(SECRET + b"\n")
    auth = AuthenticationConfig(
        dns_resolver=resolver or closed_port(), reply_token_secret_file=str(secret_file)
    )
    return AgentAuthenticator(Config(authentication=auth))


async def test_token_in_the_reply_to_address_authenticates(tmp_path: Path) -> None:
    auth = token_authenticator(tmp_path)
    token = auth.tokens.make(TN, LOGIN)
    address = reply_address("support@example.com", token)
    verdict = await verify(auth, mail(to=address), recipients=[address])
    assert verdict == Verdict(True, "reply-token", f"reply-token valid for {LOGIN} on {TN}")


async def test_token_in_the_references_authenticates(tmp_path: Path) -> None:
    auth = token_authenticator(tmp_path)
    msgid = notification_message_id(auth.tokens.make(TN, LOGIN), "example.com")
    raw = mail(extra=[f"In-Reply-To: {msgid}", f"References: <root@example.com> {msgid}"])
    assert (await verify(auth, raw)).method == "reply-token"


async def test_token_is_read_whatever_the_case_of_the_address(tmp_path: Path) -> None:
    auth = token_authenticator(tmp_path)
    address = reply_address("support@example.com", auth.tokens.make(TN, LOGIN)).upper()
    assert (await verify(auth, mail(), recipients=[address])).authenticated


@pytest.mark.parametrize(
    ("tn", "login", "agent", "reason"),
    [
        ("2026060110000025", LOGIN, AGENT, "reply-token: not for this ticket and agent"),
        (TN, "mallory", AGENT, "reply-token: not for this ticket and agent"),
    ],
)
async def test_token_for_another_ticket_or_agent_fails(
    tmp_path: Path, tn: str, login: str, agent: str, reason: str
) -> None:
    auth = token_authenticator(tmp_path)
    address = reply_address("support@example.com", auth.tokens.make(TN, LOGIN))
    verdict = await verify(auth, mail(), tn=tn, login=login, agent=agent, recipients=[address])
    assert not verdict.authenticated
    assert verdict.detail.startswith(reason + ";")


async def test_token_does_not_make_another_sender_the_agent(tmp_path: Path) -> None:
    auth = token_authenticator(tmp_path)
    address = reply_address("support@example.com", auth.tokens.make(TN, LOGIN))
    raw = mail(sender="customer@example.org")
    verdict = await verify(auth, raw, recipients=[address])
    assert verdict == Verdict(False, "", f"From is not only {AGENT}")


async def test_expired_and_tampered_tokens_fail(tmp_path: Path) -> None:
    auth = token_authenticator(tmp_path)
    token = auth.tokens.make(TN, LOGIN)
    later = datetime.now(UTC) + timedelta(days=15)
    expired = await verify(auth, mail(), recipients=[f"support+r{token}@example.com"], now=later)
    assert expired.detail.startswith("reply-token: expired;")
    flipped = token[:5] + ("a" if token[5] != "a" else "b") + token[6:]
    tampered = await verify(auth, mail(), recipients=[f"support+r{flipped}@example.com"])
    assert tampered.detail.startswith("reply-token: not for this ticket and agent;")


async def test_token_comes_first_and_needs_no_dns(
    tmp_path: Path, zone: DnsZone, keys: dict[str, Key]
) -> None:
    auth = token_authenticator(tmp_path, zone.address)
    address = reply_address("support@example.com", auth.tokens.make(TN, LOGIN))
    verdict = await verify(auth, signed(mail(), keys["rsa"]), recipients=[address])
    assert verdict.method == "reply-token"
    assert zone.queries == []


async def test_tokens_fall_back_to_the_loop_secret() -> None:
    config = Config(
        authentication=AuthenticationConfig(dns_resolver=closed_port()),
        outbound=OutboundConfig(loop_secret="loop-secret-of-the-outbox-0123"),
    )
    auth = AgentAuthenticator(config)
    assert auth.tokens.source == "outbound.loop_secret"
    address = reply_address("support@example.com", auth.tokens.make(TN, LOGIN))
    assert (await verify(auth, mail(), recipients=[address])).authenticated


def test_an_unusable_token_key_is_a_configuration_error(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"too short\n")
    for path, message in ((short, "at least 16 bytes"), (tmp_path / "none", "cannot read")):
        auth = AuthenticationConfig(reply_token_secret_file=str(path))
        with pytest.raises(ConfigError, match=f"reply_token_secret_file: .*{message}"):
            AgentAuthenticator(Config(authentication=auth))


def test_a_missing_system_resolver_is_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.asyncresolver
    import dns.resolver

    def no_configuration(*_args: object, **_kwargs: object) -> None:
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dns.asyncresolver.Resolver, "__init__", no_configuration)
    auth = AgentAuthenticator(Config())
    assert auth.dkim.resolver is None
    assert auth.dkim.resolver_problem == "no DNS resolver (no nameservers)"


def test_a_resolver_given_by_host_name_is_looked_up_once() -> None:
    resolver = authenticator("localhost:5353").dkim.resolver
    assert resolver is not None
    assert resolver.nameservers[0] in ("127.0.0.1", "::1")
    assert resolver.port == 5353
