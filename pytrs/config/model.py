"""The configuration model: one frozen dataclass per TOML section or ``[[array]]`` entry.

Place in the flow: ``load.py`` reads the TOML file, ``parse.py`` turns it into these classes, and
the daemon passes the resulting ``Config`` (or just the section a service needs) to each
service's constructor. Nothing here reads files or the environment, except
``MailAccountConfig.resolve_password`` which the fetcher calls when it connects.

Per-field rules (allowed values, lower bounds) sit next to the fields as metadata, so this file
is also the table of what is valid; ``parse.py`` applies them.
"""

import dataclasses
import os
import socket
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pytrs.config.checks import (
    MAX_COUNT,
    MAX_TIMEOUT_SECONDS,
    between,
    count,
    database_url,
    digits,
    email_address,
    field_name,
    identifier,
    ip_network,
    listen_spec,
    non_empty,
    one_of,
    optional_host_port,
    optional_listen_spec,
    positive,
    re2_regex,
    re2_with_group,
    rule,
    seconds,
    size,
)
from pytrs.vocabulary.parse_limits import DEFAULT_LIMITS, ParseLimits

# Queues every pytrs database is created with (Znuny's ids 1-4); config may refer to them
# without declaring them in [[queues]].
BUILTIN_QUEUES = ("Postmaster", "Raw", "Junk", "Misc")

FOLLOW_UP_OPTIONS = ("possible", "reject", "new_ticket")
MAIL_ACCOUNT_TYPES = ("imap", "imaps", "imap+starttls", "pop3", "pop3s", "pop3+starttls")
MAIL_ACCOUNT_MODES = ("keep", "move", "delete")
NUMBER_GENERATORS = ("DateChecksum", "Date", "AutoIncrement", "Random")
SUBJECT_FORMATS = ("Left", "Right", "None")
SAME_MAIL_OTHER_QUEUE = ("new_ticket", "same_ticket")
SENDER_TYPES = ("customer", "agent", "system")
AUTO_RESPONSE_TYPES = ("auto reply", "auto reply/new ticket", "auto follow up", "auto reject")
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")

# Ten years of minutes: a budget longer than that is a typing mistake.
MAX_ESCALATION_MINUTES = 10 * 366 * 24 * 60

DEFAULT_PORTS = {
    "imap": 143, "imaps": 993, "imap+starttls": 143,
    "pop3": 110, "pop3s": 995, "pop3+starttls": 110,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = field(default="sqlite+aiosqlite:///var/pytrs.db", metadata=rule(database_url))
    # PostgreSQL schema used as search_path ("" = the server default); ignored on SQLite.
    schema: str = field(default="", metadata=rule(identifier))
    pool_size: int = field(default=5, metadata=rule(count(1, 1000)))
    echo: bool = False
    # "pytrs": the database is pytrs's own (`pytrs db upgrade`). "znuny": it is an existing
    # Znuny's (>= 7.0); pytrs writes tickets and articles into Znuny's tables as Znuny does and
    # keeps its own tables apart, in `own_schema` (`pytrs db attach`; docs/znuny.md).
    mode: str = field(default="pytrs", metadata=rule(one_of("pytrs", "znuny")))
    # Where pytrs's own tables live beside Znuny's (mode = "znuny"): a PostgreSQL schema.
    own_schema: str = field(default="pytrs", metadata=rule(identifier))
    # The Znuny installation beside which pytrs runs (mode = "znuny"), e.g. "/opt/znuny": pytrs
    # then drops Znuny's file cache of every ticket it changed (tickets/znuny_cache.py).
    znuny_home: str = ""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    listen: tuple[str, ...] = field(
        default=("127.0.0.1:2525",), metadata=rule(listen_spec, each=True)
    )
    lmtp_listen: tuple[str, ...] = field(default=(), metadata=rule(listen_spec, each=True))
    max_message_size: int = field(default=26214400, metadata=rule(size(1)))
    hostname: str = ""
    max_recipients: int = field(default=100, metadata=rule(count(1, 100_000)))
    # Sessions whose DATA may grow past 1 MiB at once, across all SMTP/LMTP listeners; the
    # others stop reading until a slot frees (pytrs/big_messages.py).
    max_concurrent_big_messages: int = field(default=1, metadata=rule(count(1, 1000)))
    # Group commit of the inbox writer: at most this many messages per transaction, and how
    # long the writer waits for more before committing.
    commit_batch_max: int = field(default=256, metadata=rule(count(1, 100_000)))
    commit_delay_ms: float = field(default=2.0, metadata=rule(between(0, 10_000)))
    # STARTTLS on every SMTP/LMTP listener when both are set (PEM files; re-read on SIGHUP).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Refuse MAIL FROM before STARTTLS (530 5.7.0); needs tls_cert_file and tls_key_file.
    require_tls: bool = False
    # AUTH PLAIN/LOGIN, offered only after STARTTLS: lines of `name:argon2-hash` (see
    # `pytrs smtp hash-password`); an authenticated client counts as a trusted source.
    auth_users_file: str = ""

    def server_hostname(self) -> str:
        """The name announced in the banner: ``hostname``, or the machine's FQDN if unset."""
        return self.hostname or socket.getfqdn()


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The web view (SPEC S10); every key is explained in the example."""

    listen: str = field(default="127.0.0.1:8080", metadata=rule(optional_listen_spec))
    # Znuny's SessionMaxIdleTime and SessionMaxTime: a session ends after this long without a
    # request, and this long after its login whatever the activity.
    session_idle_minutes: float = field(default=120.0, metadata=rule(between(1, 7 * 24 * 60)))
    session_max_hours: float = field(default=16.0, metadata=rule(between(0.1, 24 * 366)))
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; from anyone else those headers are ignored.
    trusted_proxies: tuple[str, ...] = field(default=(), metadata=rule(ip_network, each=True))
    # A listener of its own for /healthz, /readyz and /metrics ("" = served on `listen`); when
    # set, the main listener does not serve them.
    metrics_listen: str = field(default="", metadata=rule(optional_listen_spec))
    # Who may read them, on whichever listener serves them; others get 404.
    metrics_allow: tuple[str, ...] = field(
        default=("127.0.0.0/8", "::1"), metadata=rule(ip_network, each=True)
    )


# How the outbox sender talks to the relay: plain SMTP, STARTTLS (required, not opportunistic)
# or implicit TLS from the first byte (usually port 465).
OUTBOUND_TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """The smarthost and the outbox sender (SPEC S8); every key is explained in the example."""

    relay: str = field(default="127.0.0.1:25", metadata=rule(listen_spec))
    tls: str = field(default="none", metadata=rule(one_of(*OUTBOUND_TLS_MODES)))
    verify_tls: bool = True
    ca_file: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    helo_name: str = ""
    timeout_seconds: float = field(default=30.0, metadata=rule(positive(MAX_TIMEOUT_SECONDS)))
    connections: int = field(default=1, metadata=rule(count(1, 1000)))
    batch_size: int = field(default=20, metadata=rule(count(1, 100_000)))
    retry_backoff_seconds: float = field(default=60.0, metadata=rule(seconds()))
    max_backoff_seconds: float = field(default=3600.0, metadata=rule(seconds()))
    max_retry_hours: float = field(default=48.0, metadata=rule(between(0, 24 * 365)))
    lease_seconds: float = field(default=600.0, metadata=rule(positive()))
    poll_interval_seconds: float = field(default=1.0, metadata=rule(positive(3600)))
    message_id_domain: str = ""
    loop_secret: str = field(default="", repr=False)
    loop_secret_file: str = ""
    suppression_days: float = field(default=30.0, metadata=rule(between(0, 3650)))
    # A complaint (an abuse feedback report) about our mail suppresses the complaining address
    # for suppression_days, as a hard bounce does: mailing someone who reports us as spam
    # costs the sending domain its reputation.
    suppress_on_complaint: bool = True

    def resolve_password(self) -> str:
        """``password``, else the stripped contents of ``password_file``, else "".

        Read at each connection, so that a rotated credential is picked up. Raises OSError
        when the file cannot be read.
        """
        if self.password or not self.password_file:
            return self.password
        return Path(self.password_file).read_text(encoding="utf-8").strip()

    def resolve_loop_secret(self) -> bytes:
        """The key of the X-PyTRS-Loop marker: ``loop_secret``, else ``loop_secret_file``'s
        stripped contents, else b"". Raises OSError when the file cannot be read."""
        if self.loop_secret or not self.loop_secret_file:
            return self.loop_secret.encode("utf-8")
        return Path(self.loop_secret_file).read_bytes().strip()


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str = field(metadata=rule(non_empty))
    follow_up: str = field(default="possible", metadata=rule(one_of(*FOLLOW_UP_OPTIONS)))
    follow_up_lock: bool = False
    comments: str = ""
    # Appended below an agent's answer from this queue ("-- " line first, as mail clients do).
    signature: str = ""
    # Escalation targets (Znuny's queue escalation fields), in working minutes of `calendar`
    # ("" = 24/7 in [scheduler] timezone); 0 = no such escalation. A ticket's SLA overrides them.
    calendar: str = ""
    first_response_minutes: int = field(default=0, metadata=rule(count(0, MAX_ESCALATION_MINUTES)))
    update_minutes: int = field(default=0, metadata=rule(count(0, MAX_ESCALATION_MINUTES)))
    solution_minutes: int = field(default=0, metadata=rule(count(0, MAX_ESCALATION_MINUTES)))
    # Agents are warned when this share of a budget has passed (0 = no warning).
    notify_before_percent: int = field(default=0, metadata=rule(count(0, 99)))


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """A service level (Znuny's `sla` table): the same targets as a queue's, for the tickets
    it is set on (by a filter's X-PyTRS-SLA, the ticket service, the web view or the API)."""

    name: str = field(metadata=rule(non_empty))
    calendar: str = ""
    first_response_minutes: int = field(default=0, metadata=rule(count(0, MAX_ESCALATION_MINUTES)))
    update_minutes: int = field(default=0, metadata=rule(count(0, MAX_ESCALATION_MINUTES)))
    solution_minutes: int = field(default=0, metadata=rule(count(0, MAX_ESCALATION_MINUTES)))
    notify_before_percent: int = field(default=0, metadata=rule(count(0, 99)))
    comments: str = ""


@dataclass(frozen=True, slots=True)
class WeekHours:
    """Working windows per weekday, each "HH:MM-HH:MM" (an end of "24:00" reaches midnight);
    a day with no windows is closed."""

    mon: tuple[str, ...] = ()
    tue: tuple[str, ...] = ()
    wed: tuple[str, ...] = ()
    thu: tuple[str, ...] = ()
    fri: tuple[str, ...] = ()
    sat: tuple[str, ...] = ()
    sun: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    """A business calendar that escalation budgets are counted in."""

    name: str = field(metadata=rule(non_empty))
    timezone: str = "UTC"  # IANA name
    hours: WeekHours = field(default_factory=WeekHours)
    # One-off "YYYY-MM-DD" and yearly "MM-DD" days off.
    holidays: tuple[str, ...] = ()
    # An iCalendar file whose (all-day) events are days off; relative to the config file.
    holidays_file: str = ""
    # Public holidays of a country (ISO 3166 code, e.g. "DE") and subdivision ("BY"), from
    # the `holidays` package.
    holidays_country: str = ""
    holidays_subdivision: str = ""


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """The scheduler role: escalation events, pending reminders and auto-close (SPEC S9)."""

    # How often the due scan runs.
    interval_seconds: float = field(default=60.0, metadata=rule(between(0.1, 3600)))
    # The time zone of tickets whose queue and SLA name no calendar (24/7 there), and of
    # the times people type (`tickets set --pending "2027-01-04 09:00"`).
    timezone: str = "UTC"
    # Notifications (Jinja2, in the auto-response sandbox; `ticket`, `queue`, `escalation`).
    notify_before_subject: str = field(
        default="Escalation warning ({{ escalation.name }}): {{ ticket.title }}",
        metadata=rule(non_empty),
    )
    notify_before_body: str = field(
        default=(
            "Ticket {{ ticket.hook }}{{ ticket.tn }} in queue {{ queue.name }} escalates at "
            "{{ escalation.deadline }} ({{ escalation.name }} time): {{ escalation.left }} of "
            "working time left.\n"
        ),
        metadata=rule(non_empty),
    )
    escalated_subject: str = field(
        default="Escalated ({{ escalation.name }}): {{ ticket.title }}", metadata=rule(non_empty)
    )
    escalated_body: str = field(
        default=(
            "Ticket {{ ticket.hook }}{{ ticket.tn }} in queue {{ queue.name }} escalated at "
            "{{ escalation.deadline }}: its {{ escalation.name }} time is over.\n"
        ),
        metadata=rule(non_empty),
    )
    pending_reminder_subject: str = field(
        default="Reminder: {{ ticket.title }}", metadata=rule(non_empty)
    )
    pending_reminder_body: str = field(
        default=(
            "The pending time of ticket {{ ticket.hook }}{{ ticket.tn }} in queue "
            "{{ queue.name }} was reached at {{ pending.time }}.\n"
        ),
        metadata=rule(non_empty),
    )


@dataclass(frozen=True, slots=True)
class SystemAddressConfig:
    address: str = field(metadata=rule(email_address))
    queue: str = field(metadata=rule(non_empty))
    name: str = ""

    def __post_init__(self) -> None:
        # Addresses are compared case-insensitively everywhere; storing them lower-cased once
        # spares every caller from remembering to.
        object.__setattr__(self, "address", self.address.lower())


@dataclass(frozen=True, slots=True)
class MailAccountConfig:
    type: str = field(metadata=rule(one_of(*MAIL_ACCOUNT_TYPES)))
    host: str = field(metadata=rule(non_empty))
    user: str = field(metadata=rule(non_empty))
    port: int = field(default=0, metadata=rule(between(0, 65535)))
    password: str = field(default="", repr=False)
    password_file: str = ""
    folder: str = field(default="INBOX", metadata=rule(non_empty))
    mode: str = field(default="move", metadata=rule(one_of(*MAIL_ACCOUNT_MODES)))
    move_to: str = ""
    trusted: bool = False
    queue: str = ""
    name: str = ""
    start_from_now: bool = False
    poll_interval_seconds: float = field(default=60.0, metadata=rule(positive()))
    timeout_seconds: float = field(default=60.0, metadata=rule(positive(MAX_TIMEOUT_SECONDS)))
    max_message_size: int = field(default=0, metadata=rule(size(0)))
    batch_size: int = field(default=50, metadata=rule(count(1, 100_000)))
    verify_tls: bool = True
    ca_file: str = ""
    lease_seconds: float = field(default=90.0, metadata=rule(positive()))
    auth: str = field(default="password", metadata=rule(one_of("password", "xoauth2")))
    oauth2_token_url: str = ""
    oauth2_client_id: str = ""
    oauth2_client_secret_file: str = ""
    oauth2_refresh_token_file: str = ""
    oauth2_scope: str = ""

    def __post_init__(self) -> None:
        # Fill in the documented defaults once, so fetchers, logs and cursors all see the same
        # port and account name.
        if self.port == 0:
            object.__setattr__(self, "port", DEFAULT_PORTS.get(self.type, 0))
        if not self.name:
            object.__setattr__(self, "name", f"{self.user}@{self.host}")

    def resolve_password(self) -> str:
        """Return ``password``, else the stripped contents of ``password_file``, else "".

        Read at use time so that a rotated credential file is picked up. Raises OSError when
        the file cannot be read.
        """
        if self.password or not self.password_file:
            return self.password
        return Path(self.password_file).read_text(encoding="utf-8").strip()


@dataclass(frozen=True, slots=True)
class TicketConfig:
    number_generator: str = field(default="DateChecksum", metadata=rule(one_of(*NUMBER_GENERATORS)))
    system_id: str = field(default="10", metadata=rule(digits))
    hook: str = field(default="Ticket#", metadata=rule(non_empty))
    subject_format: str = field(default="Left", metadata=rule(one_of(*SUBJECT_FORMATS)))
    check_system_id: bool = True
    min_counter_size: int = field(default=5, metadata=rule(between(1, 30)))
    subject_re: tuple[str, ...] = field(default=("Re",), metadata=rule(non_empty, each=True))
    subject_fwd: tuple[str, ...] = field(default=("Fwd",), metadata=rule(non_empty, each=True))
    # 0 means subjects are never cut (as in Znuny).
    subject_size: int = field(default=100, metadata=rule(between(0, 10_000)))


def default_processes() -> int:
    """`[postmaster] processes` when the file does not say: one child with two usable CPUs or
    more (the daemon's own process answers SMTP, the child routes), none on one CPU."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return 1 if cpus >= 2 else 0


@dataclass(frozen=True, slots=True)
class PostmasterConfig:
    # "pipe", "smtp", "lmtp" or mail account names; checked against the accounts in crosscheck.
    trusted_sources: tuple[str, ...] = ("pipe",)
    unknown_sender_followup: str = field(
        default="new_ticket", metadata=rule(one_of("new_ticket", "internal"))
    )
    default_queue: str = field(default="Raw", metadata=rule(non_empty))
    workers: int = field(default=1, metadata=rule(count(1, 1000)))
    # Worker child processes (0: the workers run in the daemon's own process). The default
    # uses a second core where there is one: SMTP then never waits for parsing and routing.
    processes: int = field(
        default_factory=lambda: default_processes(), metadata=rule(count(0, 1000))
    )
    batch_size: int = field(default=100, metadata=rule(count(1, 100_000)))
    batch_max_bytes: int = field(default=16 * 1024 * 1024, metadata=rule(size(1)))
    max_attempts: int = field(default=5, metadata=rule(count(1, 10_000)))
    retry_backoff_seconds: float = field(default=10.0, metadata=rule(seconds()))
    lease_seconds: float = field(default=300.0, metadata=rule(positive()))
    poll_interval_seconds: float = field(default=1.0, metadata=rule(positive(3600)))
    # Further follow-up checks after subject number and References (REFERENCE §4).
    followup_check_body: bool = False
    followup_check_attachments: bool = False
    # A bounce of our mail goes to the bounced article's ticket as a plain follow-up, whatever
    # the queue's follow-up option (Znuny's PostmasterBounceEmailAsFollowUp).
    bounce_as_followup: bool = True
    # State a follow-up sets (unless X-PyTRS-FollowUp-State or the keep-state header say
    # otherwise); `followup_state_closed` ("" = same) for follow-ups to closed tickets.
    followup_state: str = field(default="open", metadata=rule(non_empty))
    followup_state_closed: str = ""
    # One mail that reached two system addresses of different queues: a ticket in each queue
    # (new_ticket), or only the first copy's ticket (same_ticket). Same queue: always one.
    same_mail_other_queue: str = field(
        default="new_ticket", metadata=rule(one_of(*SAME_MAIL_OTHER_QUEUE))
    )


@dataclass(frozen=True, slots=True)
class ExternalTicketNumberConfig:
    """A rule recognising another ticket system's numbers (Znuny's ETNR, REFERENCE §3, §4)."""

    name: str = field(metadata=rule(non_empty))
    # RE2 pattern whose first group is the external number, e.g. "Incident-(\\d{6})".
    number_pattern: str = field(metadata=rule(re2_with_group))
    # Ticket dynamic field (created if missing) that stores the external number.
    dynamic_field: str = field(metadata=rule(field_name))
    # Only mail whose From address matches this RE2 pattern ("" = any sender).
    from_address_pattern: str = field(default="", metadata=rule(re2_regex))
    search_subject: bool = True
    search_body: bool = False
    # Only tickets in these state types count as found (empty = any).
    state_types: tuple[str, ...] = ()
    sender_type: str = field(default="customer", metadata=rule(one_of(*SENDER_TYPES)))
    visible_for_customer: bool = True


@dataclass(frozen=True, slots=True)
class ParserConfig:
    """Bounds on the work one mail may cost the parser (SPEC S6); see ``ParseLimits``."""

    max_message_bytes: int = field(default=DEFAULT_LIMITS.max_message_bytes, metadata=rule(size(1)))
    max_parts: int = field(default=DEFAULT_LIMITS.max_parts, metadata=rule(count(1)))
    max_depth: int = field(default=DEFAULT_LIMITS.max_depth, metadata=rule(count(1, 10_000)))
    max_header_bytes: int = field(default=DEFAULT_LIMITS.max_header_bytes, metadata=rule(size(1)))
    max_header_count: int = field(default=DEFAULT_LIMITS.max_header_count, metadata=rule(count(1)))
    max_header_block_bytes: int = field(
        default=DEFAULT_LIMITS.max_header_block_bytes, metadata=rule(size(1))
    )
    max_html_bytes: int = field(default=DEFAULT_LIMITS.max_html_bytes, metadata=rule(size(1)))
    max_html_links: int = field(default=DEFAULT_LIMITS.max_html_links, metadata=rule(count(1)))
    max_html_depth: int = field(default=DEFAULT_LIMITS.max_html_depth, metadata=rule(count(1)))

    def limits(self) -> ParseLimits:
        """The ``ParseLimits`` to hand to ``parse_mail``."""
        return ParseLimits(**dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class AgentConfig:
    login: str = field(metadata=rule(non_empty))
    email: str = field(metadata=rule(email_address))
    queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentMailConfig:
    """Agents answering by mail, and the notifications that invite them to (SPEC S8)."""

    # `local+<tag>@domain` of a system address takes an agent's internal note.
    comment_tag: str = field(default="comment", metadata=rule(field_name))
    # Relay an authenticated agent's answer to the ticket's customer.
    relay: bool = True
    # Drop the quoted history (everything from the first "On … wrote:" / "> " block) from
    # relayed answers; the ticket keeps the agent's mail whole.
    trim_quoted: bool = True
    # Tell the agents of a queue about new tickets and customer follow-ups by mail.
    notify_new_ticket: bool = True
    notify_follow_up: bool = True
    # Jinja2 templates of those notifications (the auto-response variables; a footer on how
    # to answer by mail is added by pytrs).
    new_ticket_subject: str = field(
        default="New ticket: {{ article.subject }}", metadata=rule(non_empty)
    )
    new_ticket_body: str = field(
        default=(
            "New ticket {{ ticket.hook }}{{ ticket.tn }} in queue {{ queue.name }}\n"
            "From: {{ article.from }}\nSubject: {{ article.subject }}\n\n"
            "{{ article.body | quote(30) }}\n"
        ),
        metadata=rule(non_empty),
    )
    follow_up_subject: str = field(
        default="Follow-up: {{ article.subject }}", metadata=rule(non_empty)
    )
    follow_up_body: str = field(
        default=(
            "Follow-up to {{ ticket.hook }}{{ ticket.tn }} ({{ ticket.state }}) in queue "
            "{{ queue.name }}\nFrom: {{ article.from }}\nSubject: {{ article.subject }}\n\n"
            "{{ article.body | quote(30) }}\n"
        ),
        metadata=rule(non_empty),
    )


@dataclass(frozen=True, slots=True)
class AuthenticationConfig:
    """Whether mail from an agent's address is the agent's (``authentication.authenticity``)."""

    trusted_authserv_ids: tuple[str, ...] = field(default=(), metadata=rule(non_empty, each=True))
    dns_resolver: str = field(default="", metadata=rule(optional_host_port))
    # The whole DKIM check of one mail (DNS lookups and verification) gives up after this.
    dkim_timeout_seconds: float = field(default=5.0, metadata=rule(positive(MAX_TIMEOUT_SECONDS)))
    # Key of the reply tokens in agent notifications; "" falls back to [outbound] loop_secret.
    reply_token_secret_file: str = ""
    reply_token_days: float = field(default=14.0, metadata=rule(between(0, 3650, low_open=True)))


@dataclass(frozen=True, slots=True)
class DkimKeyConfig:
    domain: str = field(metadata=rule(non_empty))
    selector: str = field(metadata=rule(non_empty))
    private_key_file: str = field(metadata=rule(non_empty))


def _address_limit(value: str) -> str | None:
    address, equals, limit = value.rpartition("=")
    limit = limit.strip()
    if equals and email_address(address.strip()) is None and limit.isascii() and limit.isdigit():
        return None if int(limit) <= MAX_COUNT else f"limit must be at most {MAX_COUNT}"
    return f'must be "address=limit" (e.g. "vip@example.com=100"), not {value!r}'


def _re2_pattern(value: str) -> str | None:
    # Compiled with RE2 at run time (linear time on untrusted addresses), so checked with it.
    problem = re2_regex(value)
    return None if problem is None else f"is not a valid regular expression (RE2 syntax): {value!r}"


def _optional_email_address(value: str) -> str | None:
    return None if value == "" else email_address(value)


@dataclass(frozen=True, slots=True)
class LoopProtectionConfig:
    """Which mail gets no auto-response, and how many one address gets per day (UTC)."""

    max_auto_responses_per_address_per_day: int = field(default=40, metadata=rule(count(0)))
    # RE2, matched case-insensitively anywhere in the recipient's address.
    no_auto_response_pattern: str = field(
        default="(MAILER-DAEMON|postmaster|no-?reply|do-?not-?reply)@", metadata=rule(_re2_pattern)
    )
    # "address=limit" entries overriding the daily limit for one address (Znuny's
    # PostmasterMaxEmailsPerAddress); a list of strings so PYTRS_LOOP_PROTECTION_… can set it.
    per_address_limits: tuple[str, ...] = field(
        default=(), metadata=rule(_address_limit, each=True)
    )
    # Most recipients one auto-response goes to (Reply-To can list any number): the first
    # ones get it, the rest nothing, so that pytrs never mails a list an attacker wrote.
    max_recipients_per_mail: int = field(default=5, metadata=rule(count(1, 10_000)))

    def limit_for(self, address: str) -> int:
        """The daily auto-response limit of `address` (compared case-insensitively)."""
        wanted = address.strip().lower()
        for entry in self.per_address_limits:
            listed, _, limit = entry.rpartition("=")
            if listed.strip().lower() == wanted:
                return int(limit)
        return self.max_auto_responses_per_address_per_day


AUTO_RESPONSE_CONTENT_TYPES = ("", "text/plain", "text/html")


@dataclass(frozen=True, slots=True)
class AutoResponseConfig:
    queue: str = field(metadata=rule(non_empty))
    type: str = field(metadata=rule(one_of(*AUTO_RESPONSE_TYPES)))
    subject: str = field(metadata=rule(non_empty))
    language: str = field(default="en", metadata=rule(non_empty))
    # The body template: a file (relative paths from the config file's directory), or inline.
    body_file: str = ""
    body: str = ""
    # "" = text/html for a body_file ending in .html.j2/.html/.htm, else text/plain.
    content_type: str = field(default="", metadata=rule(one_of(*AUTO_RESPONSE_CONTENT_TYPES)))
    # Name of the auto_response row; "" = "<queue>-<type>-<language>" in kebab case.
    name: str = ""
    # System address it is sent from; "" = the queue's first in [[system_addresses]].
    sender: str = field(default="", metadata=rule(_optional_email_address))


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    event_loop: str = field(default="auto", metadata=rule(one_of(*EVENT_LOOPS)))
    drain_seconds: float = field(default=30.0, metadata=rule(seconds(3600)))
    # Accepted in any case ("debug" is what people type in an environment variable).
    log_level: str = field(default="INFO", metadata=rule(one_of(*LOG_LEVELS, ignore_case=True)))
    # text: one human-readable line per event; json: one JSON object per line (journald, Loki).
    log_format: str = field(default="text", metadata=rule(one_of(*LOG_FORMATS)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "log_level", self.log_level.upper())


@dataclass(frozen=True, slots=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    web: WebConfig = field(default_factory=WebConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    ticket: TicketConfig = field(default_factory=TicketConfig)
    postmaster: PostmasterConfig = field(default_factory=PostmasterConfig)
    parser: ParserConfig = field(default_factory=ParserConfig)
    authentication: AuthenticationConfig = field(default_factory=AuthenticationConfig)
    agent_mail: AgentMailConfig = field(default_factory=AgentMailConfig)
    loop_protection: LoopProtectionConfig = field(default_factory=LoopProtectionConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    queues: tuple[QueueConfig, ...] = ()
    system_addresses: tuple[SystemAddressConfig, ...] = ()
    mail_accounts: tuple[MailAccountConfig, ...] = ()
    agents: tuple[AgentConfig, ...] = ()
    dkim_keys: tuple[DkimKeyConfig, ...] = ()
    auto_responses: tuple[AutoResponseConfig, ...] = ()
    external_ticket_numbers: tuple[ExternalTicketNumberConfig, ...] = ()
    calendars: tuple[CalendarConfig, ...] = ()
    slas: tuple[SlaConfig, ...] = ()
    # Path of the file this was loaded from; "" for the built-in defaults.
    source: str = ""

    def queue_names(self) -> tuple[str, ...]:
        """The built-in queues followed by the declared ones not already among them."""
        declared = tuple(q.name for q in self.queues if q.name not in BUILTIN_QUEUES)
        return BUILTIN_QUEUES + declared


def _sections() -> tuple[dict[str, type], dict[str, type]]:
    """Split Config's fields into ``[section]`` tables and ``[[array]]`` entry types."""
    tables: dict[str, type] = {}
    arrays: dict[str, type] = {}
    for name, hint in typing.get_type_hints(Config).items():
        if dataclasses.is_dataclass(hint):
            tables[name] = typing.cast(type, hint)
        elif typing.get_origin(hint) is tuple:
            arrays[name] = typing.get_args(hint)[0]
    return tables, arrays


# Derived from the class definitions, so a new section needs no second registration.
SECTIONS, ARRAYS = _sections()
