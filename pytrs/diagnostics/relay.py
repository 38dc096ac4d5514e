"""Diagnostic: the outbound relay takes a session: connect, EHLO, STARTTLS, AUTH, then QUIT.

Place in the flow: one of the concurrent checks of `pytrs doctor`. It opens the connection the
outbox sender would (`gateway.smarthost.Smarthost`, aiosmtplib: `[outbound] tls`, `verify_tls`,
`ca_file`, `username` and the password) and QUITs without sending anything, so that a relay
that is down, refuses the certificate or the login shows up before mail waits in the outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPException,
    SMTPResponseException,
    SMTPTimeoutError,
)

from pytrs.config import Config
from pytrs.diagnostics.findings import Finding, describe, fail, ok
from pytrs.gateway.smarthost import Smarthost

CHECK = "relay"


async def check_relay(config: Config, seconds: float) -> list[Finding]:
    out = config.outbound
    # The doctor's deadline, not the sender's (up to an hour per command).
    host = Smarthost(dataclasses.replace(out, timeout_seconds=min(out.timeout_seconds, seconds)))
    try:
        async with asyncio.timeout(seconds):
            smtp = await host.open()
    except (SMTPException, OSError, TimeoutError) as exc:
        host.abort()
        return [fail(CHECK, f"{out.relay}: {_failure(exc, seconds)}", _advice(exc, config))]
    try:
        steps = await _steps(smtp, config)
    except (SMTPException, OSError, TimeoutError) as exc:
        return [fail(CHECK, f"{out.relay}: {_failure(exc, seconds)}", _advice(exc, config))]
    finally:
        await host.close()
    return [ok(CHECK, f"{out.relay}: {steps}; nothing sent")]


async def _steps(smtp: SMTP, config: Config) -> str:
    """What the session went through, for the OK line."""
    out = config.outbound
    if smtp.last_ehlo_response is None:
        # aiosmtplib greets again after STARTTLS only before the next command: do it now.
        async with asyncio.timeout(out.timeout_seconds):
            await smtp.ehlo()
    name = smtp.last_ehlo_response.message.split() if smtp.last_ehlo_response else []
    steps = [f"EHLO answered by {name[0]}" if name else "EHLO"]
    if out.tls != "none":
        verified = "certificate verified" if out.verify_tls else "certificate NOT verified"
        steps.append(f"{'STARTTLS' if out.tls == 'starttls' else 'TLS'} ({verified})")
    if out.username:
        steps.append(f"AUTH as {out.username}")
    elif smtp.supports_extension("auth"):
        steps.append("no AUTH (the relay offers it; [outbound] username is not set)")
    return ", ".join(steps)


def _failure(exc: BaseException, seconds: float) -> str:
    if isinstance(exc, TimeoutError | SMTPTimeoutError):
        return f"no answer within {seconds:g} s"
    if isinstance(exc, SMTPAuthenticationError):
        return f"AUTH refused: {exc.code} {exc.message}"
    if isinstance(exc, SMTPResponseException):
        return f"refused: {exc.code} {exc.message}"
    return f"cannot connect: {describe(_cause(exc))}"


def _advice(exc: BaseException, config: Config) -> str:
    out = config.outbound
    cause = _cause(exc)
    if isinstance(exc, SMTPAuthenticationError):
        return "check [outbound] username and password_file (or password)"
    if isinstance(exc, TimeoutError | SMTPTimeoutError):
        return (
            "check [outbound] relay, the firewall, and tls (a relay on port 465 says nothing "
            'until TLS: tls = "tls")'
        )
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            "set [outbound] ca_file to the CA of the relay's certificate (or verify_tls = false "
            "for a relay on this machine)"
        )
    if isinstance(cause, ssl.SSLError):
        return 'check [outbound] tls: "tls" is implicit TLS (port 465), "starttls" port 587 or 25'
    text = str(exc).lower()
    if "starttls" in text:
        return "the relay offers no STARTTLS on this port: check [outbound] relay and tls"
    if "auth" in text:
        return "the relay offers no AUTH here (some only after STARTTLS): check [outbound] tls"
    if isinstance(exc, SMTPResponseException):
        return "the relay refuses this host: check its access rules (mynetworks …)"
    return (
        "check [outbound] relay and that the relay runs; meanwhile mail waits in the outbox "
        f"(retried for {out.max_retry_hours:g} h)"
    )


def _cause(exc: BaseException) -> BaseException:
    """aiosmtplib wraps OSError and TLS errors of connecting in SMTPConnectError."""
    if isinstance(exc, SMTPConnectError | SMTPException) and exc.__cause__ is not None:
        return exc.__cause__
    return exc
