"""DKIM signing: verified independently by dkimpy, byte for byte dkimpy's header, key loading."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from unittest import mock

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pytrs.config import ConfigError, DkimKeyConfig, TicketConfig
from pytrs.outbound.dkim import DkimSigner, load_key, signature_header
from pytrs.responders.message import Composer

from ..servers.relay import write_rsa_key
from .conftest import LOOP_SECRET, draft

COMPOSER = Composer(TicketConfig(), LOOP_SECRET.encode())
MAIL = COMPOSER.compose(draft(text="Grüße\n" + "A line of text.  \n" * 40))


def _signed_fields(header: bytes) -> list[bytes]:
    value = dkim.util.parse_tag_value(header[len(b"DKIM-Signature:") :])[b"h"]
    return re.split(rb"\s*:\s*", value.strip())


def signer(path: Path, domain: str = "example.com", selector: str = "s1") -> DkimSigner:
    return DkimSigner.from_config([DkimKeyConfig(domain, selector, str(path))])


def dns_for(signer: DkimSigner) -> object:
    records = {
        f"{key.selector}._domainkey.{key.domain}.".encode(): key.dns_record().encode()
        for key in signer.keys.values()
    }
    return lambda name, timeout=5: records.get(name)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_signatures_verify_with_dkimpy(kind: str, dkim_keys: dict[str, Path]) -> None:
    s = signer(dkim_keys[kind])
    signed = s.sign(MAIL.raw, MAIL.envelope_from)
    assert signed.endswith(MAIL.raw) and signed.startswith(b"DKIM-Signature: ")
    assert dkim.verify(signed, dnsfunc=dns_for(s))
    header = signed[: -len(MAIL.raw)]
    fields = dkim.util.parse_tag_value(header[len(b"DKIM-Signature:") :])
    assert fields[b"a"] == (b"rsa-sha256" if kind == "rsa" else b"ed25519-sha256")
    assert fields[b"d"] == b"example.com" and fields[b"s"] == b"s1"
    signed_fields = _signed_fields(header)
    assert {b"from", b"subject", b"message-id", b"x-pytrs-loop", b"auto-submitted"} <= set(
        signed_fields
    )
    assert signed_fields.count(b"from") == 2  # over-signed: a second From breaks it
    # Any change to the body or a signed header breaks the signature.
    assert not dkim.verify(
        signed.replace(b"A line of text.", b"A line of test."), dnsfunc=dns_for(s)
    )
    assert not dkim.verify(
        signed.replace(b"Printer on fire", b"Printer is fine"), dnsfunc=dns_for(s)
    )


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_the_header_is_byte_for_byte_what_dkimpy_writes(
    kind: str, dkim_keys: dict[str, Path]
) -> None:
    key = next(iter(signer(dkim_keys[kind]).keys.values()))
    ours = signature_header(MAIL.raw, key, now=1795000000)
    include = _signed_fields(ours)
    private = key.private_key
    if kind == "rsa":
        secret = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    else:
        secret = base64.b64encode(
            private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )
    with mock.patch("dkim.time.time", return_value=1795000000):
        theirs = dkim.sign(
            MAIL.raw, b"s1", b"example.com", secret, signature_algorithm=key.algorithm,
            canonicalize=(b"relaxed", b"relaxed"), include_headers=include,
        )  # fmt: skip
    assert ours == theirs


def test_the_key_follows_the_from_domain_then_parents_then_the_envelope(
    dkim_keys: dict[str, Path],
) -> None:
    s = DkimSigner.from_config(
        [
            DkimKeyConfig("example.com", "s1", str(dkim_keys["rsa"])),
            DkimKeyConfig("bounces.example.org", "s2", str(dkim_keys["ed25519"])),
        ]
    )
    assert s.key_for("mail.example.com").domain == "example.com"
    assert s.key_for("example.net", "bounces.example.org").domain == "bounces.example.org"
    assert s.key_for("com") is None and s.key_for("example.net") is None
    other = draft(sender="Desk <desk@example.net>")
    mail = COMPOSER.compose(other)
    assert s.sign(mail.raw, "bounce@example.net") == mail.raw  # no key: sent unsigned
    signed = s.sign(mail.raw, "x@bounces.example.org")
    assert b"d=bounces.example.org" in signed and dkim.verify(signed, dnsfunc=dns_for(s))


def test_key_formats(tmp_path: Path) -> None:
    pkcs8 = write_rsa_key(tmp_path / "rsa8.pem", bits=1024, pkcs8=True)
    assert load_key(DkimKeyConfig("example.com", "a", str(pkcs8))).algorithm == b"rsa-sha256"
    seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    dknewkey = tmp_path / "ed.key"  # dkimpy's dknewkey writes the base64 seed
    dknewkey.write_bytes(base64.b64encode(seed) + b"\n")
    key = load_key(DkimKeyConfig("Example.COM.", "b", str(dknewkey)))
    assert (key.algorithm, key.domain) == (b"ed25519-sha256", "example.com")


def test_unusable_keys_are_configuration_errors_naming_the_entry(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    ecdsa = tmp_path / "ec.pem"
    ecdsa.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    text = tmp_path / "text.key"
    text.write_text("hello world")
    entries = [
        DkimKeyConfig("example.com", "s", str(path))
        for path in (tmp_path / "missing.pem", garbage, encrypted, ecdsa, text)
    ]
    with pytest.raises(ConfigError) as info:
        DkimSigner.from_config(entries)
    errors = info.value.errors
    assert [e.split(":")[0] for e in errors] == [
        f"dkim_keys[{i}].private_key_file" for i in range(5)
    ]
    assert "cannot read" in errors[0] and "not a usable PEM" in errors[1]
    assert "encrypted" in errors[2] and "RSA or ed25519" in errors[3]
    assert "neither a PEM" in errors[4]
