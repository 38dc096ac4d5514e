"""Whether a mail from an agent's address really comes from that agent (issue 6, item 5).

Place in the flow: the postmaster worker, before it turns a reply from a known agent address
into an agent article that pytrs relays to the customer, asks ``AgentAuthenticator.verify``.
Anyone can write any address into From, so a mail that does not authenticate is treated as an
ordinary customer mail and flagged (SPEC S8); the ``Verdict`` explains itself in one line for
the routing trace. Three ways pass, tried cheapest first:

1. **reply token** (``authentication.reply_token``): the mail answers a notification pytrs sent to
   this agent about this ticket, recently — its recipients or In-Reply-To/References carry
   the token pytrs put in that notification's Reply-To and Message-ID. No I/O.
2. **Authentication-Results** (RFC 8601; ``authentication.authres``): the MTA in front of pytrs
   checked the mail and says ``dkim=pass`` for a domain aligned with From (``header.d``, or
   the domain of ``header.i``, by the rule of ``dkim_verify.aligned``), or ``dmarc=pass``
   with ``header.from`` the From domain. Believed only from a configured authserv-id, on a
   source the caller trusts (``[postmaster] trusted_sources``), and only in the *topmost*
   Authentication-Results field: the receiving MTA adds its field on top, so everything
   below was written earlier on the way — or by the sender, forging. RFC 8601 §5 requires
   that MTA to remove fields claiming its authserv-id from incoming mail; reading only the
   topmost field also defeats a forged one when the MTA adds its own but forgot to strip.
   (A source whose MTA does neither must not be trusted: nothing in the mail can tell its
   fields from forged ones.) An MTA that writes its results in several fields should put
   them in one, else only the topmost counts, and pytrs's own DKIM check covers the rest.
3. **DKIM** (``authentication.dkim_verify``): a signature that verifies, with d= aligned with
   the From domain (equal to it or a parent domain), verified by pytrs with dkimpy; its key
   lookups go through ``[authentication] dns_resolver`` without blocking the event loop, and
   the check gives up after ``dkim_timeout_seconds``.

Before any of them, the mail must have exactly one From field holding exactly the agent's
address: a second From or a second address is how one signed mail is shown as another's.
``verify`` never raises (a missing key record, an unreachable resolver or a timeout is a failed
check with its reason) and keeps no state between calls, so a batch can be checked with
``asyncio.gather``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pytrs.authentication.authres import AuthResults, ResInfo, parse_authentication_results
from pytrs.authentication.dkim_verify import DkimVerifier, aligned, idna
from pytrs.authentication.reply_token import ReplyTokens, TokenCheck, find_reply_tokens
from pytrs.config import Config
from pytrs.parsers.model import ParsedMail

DKIM, AUTHRES, REPLY_TOKEN = "dkim", "authentication-results", "reply-token"
# The reason given for DKIM by an authenticator built without it (`dkim=False`).
DKIM_UNCHECKED = f"{DKIM}: not checked (needs DNS)"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the mail is the agent's, by which method, and one line saying why (not)."""

    authenticated: bool
    method: str  # DKIM | AUTHRES | REPLY_TOKEN when authenticated, else ""
    detail: str  # e.g. "dkim pass d=example.com s=s1", or every method's reason for failing


class AgentAuthenticator:
    """Decides whether agent mail authenticates; built once, shared by the postmaster workers."""

    def __init__(self, config: Config, *, dkim: bool = True) -> None:
        """Read the reply-token key and set up the DNS resolver.

        Raises ConfigError when the reply-token key or ``dns_resolver`` cannot be used. A
        missing system resolver (no ``/etc/resolv.conf``) is not fatal: DKIM checks then fail,
        saying why, and the other methods still work. Without `dkim` (a dry run) no resolver
        is set up and no DNS is ever asked: only the first two methods can pass.
        """
        auth = config.authentication
        self.trusted_authserv_ids = frozenset(i.lower() for i in auth.trusted_authserv_ids)
        self.tokens = ReplyTokens.from_config(config)
        self.dkim = DkimVerifier(auth.dns_resolver, auth.dkim_timeout_seconds) if dkim else None

    async def verify(
        self,
        raw: bytes,
        mail: ParsedMail,
        *,
        agent_address: str,
        agent_login: str,
        ticket_tn: str,
        trusted_source: bool,
        recipients: Sequence[str],
        now: datetime | None = None,
    ) -> Verdict:
        """Whether `mail` (whose bytes are `raw`) from `agent_address` is that agent's.

        `ticket_tn` is the ticket it answers; `trusted_source` whether it came in through a
        source whose Authentication-Results can be believed; `recipients` its envelope
        recipients. Raises nothing but cancellation.
        """
        address = agent_address.strip().lower()
        problem = _from_problem(mail, address)
        if problem:
            return Verdict(False, "", problem)
        domain = idna(address.rpartition("@")[2])
        token = self._check_token(mail, recipients, ticket_tn, agent_login, now)
        if token.authenticated:
            return token
        authres = self._check_authres(mail, domain, trusted_source)
        if authres.authenticated:
            return authres
        if self.dkim is None:
            return Verdict(False, "", "; ".join((token.detail, authres.detail, DKIM_UNCHECKED)))
        signature = await self.dkim.check(raw, domain)
        if signature.passed:
            return Verdict(True, DKIM, signature.detail)
        return Verdict(False, "", "; ".join((token.detail, authres.detail, signature.detail)))

    # --- 1. reply token -------------------------------------------------------------------

    def _check_token(
        self,
        mail: ParsedMail,
        recipients: Sequence[str],
        tn: str,
        login: str,
        now: datetime | None,
    ) -> Verdict:
        if not self.tokens.enabled:
            return Verdict(False, "", f"{REPLY_TOKEN}: disabled (no key configured)")
        found = find_reply_tokens(
            (*recipients, mail.to, mail.cc), (mail.in_reply_to, *mail.references)
        )
        if not found:
            return Verdict(False, "", f"{REPLY_TOKEN}: none in recipients or references")
        checks = [self.tokens.check(token, tn, login, now) for token in found]
        if TokenCheck.VALID in checks:
            return Verdict(True, REPLY_TOKEN, f"{REPLY_TOKEN} valid for {login} on {tn}")
        # An expired token of ours says more than a mismatching one.
        worst = TokenCheck.EXPIRED if TokenCheck.EXPIRED in checks else checks[0]
        return Verdict(False, "", f"{REPLY_TOKEN}: {worst.value}")

    # --- 2. Authentication-Results --------------------------------------------------------

    def _check_authres(self, mail: ParsedMail, domain: str, trusted_source: bool) -> Verdict:
        if not self.trusted_authserv_ids:
            return Verdict(False, "", f"{AUTHRES}: no trusted authserv-id configured")
        if not trusted_source:
            return Verdict(False, "", f"{AUTHRES}: not believed from an untrusted source")
        topmost = next(
            (value for name, value in mail.headers if name.lower() == "authentication-results"),
            None,
        )
        if topmost is None:
            return Verdict(False, "", f"{AUTHRES}: none")
        field = parse_authentication_results(topmost)
        if field is None:
            return Verdict(False, "", f"{AUTHRES}: topmost field unreadable")
        if field.authserv_id not in self.trusted_authserv_ids:
            untrusted = field.authserv_id
            return Verdict(False, "", f"{AUTHRES}: topmost field from untrusted {untrusted}")
        passed = next((r for r in field.results if _aligned_pass(r, domain)), None)
        if passed is not None:
            return Verdict(True, AUTHRES, f"{AUTHRES} {field.authserv_id}: {_describe(passed)}")
        return Verdict(False, "", f"{AUTHRES} {field.authserv_id}: {_no_pass(field)}")


def _aligned_pass(result: ResInfo, domain: str) -> bool:
    if result.result != "pass":
        return False
    if result.method == "dkim":
        signer = result.get("header.d") or result.get("header.i").rpartition("@")[2]
        return bool(signer) and aligned(idna(signer), domain)
    if result.method == "dmarc":
        return idna(result.get("header.from").rpartition("@")[2]).rstrip(".") == domain
    return False


def _describe(result: ResInfo) -> str:
    props = " ".join(
        f"{name}={value}"
        for name, value in result.properties
        if name in ("header.d", "header.i", "header.s", "header.from")
    )
    return f"{result.method}={result.result} {props}".strip()


def _no_pass(field: AuthResults) -> str:
    relevant = [_describe(r) for r in field.results if r.method in ("dkim", "dmarc")]
    return "no aligned dkim/dmarc pass" + (f" ({', '.join(relevant[:4])})" if relevant else "")


def _from_problem(mail: ParsedMail, address: str) -> str:
    """Why the mail's From is not plainly `address`, or ""."""
    froms = sum(1 for name, _value in mail.headers if name.lower() == "from")
    if froms != 1:
        # Which From would a mail client show? Two mean a trick, none an unroutable mail.
        return f"{froms} From fields"
    if mail.addresses("From") != (address,):
        return f"From is not only {address}"
    return ""
