"""Every metric pytrs exports, in one place: names, units, help text and label sets.

Place in the flow: stages import the metric they count and call `.labels(...).inc()` (or
`.observe()`) after the work is committed, so a counter never counts what a rollback undid.
Names follow Prometheus practice: `pytrs_` prefix, the unit in the name (`_seconds`, `_bytes`,
`_total` for counters). Label values come from bounded sets only — the configured listeners
and mail accounts, fixed outcome and reason names, route templates — never from message data,
raw URL paths or addresses, so the number of series stays small.

The counters and histograms count what this process did. The gauges marked "(database)" are
set by `exposition.refresh` at each scrape from the database, so every daemon sharing a
database reports the same depths.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds from the gateway's commit to the commit of the ticket change: a healthy daemon is
# in the first buckets; a backlog or retries push mail into the last ones.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# --- ingress: SMTP/LMTP listeners, the pipe, mailbox fetching -----------------------------------
# source: smtp | lmtp | pipe | imap | pop3; listener: the configured listen address, "pipe",
# or the mail account's name.
MAIL_ACCEPTED = Counter(
    "pytrs_mail_accepted_total",
    "Mail stored in the inbox, one per inbox row (a message to two system addresses is two).",
    ["source", "listener"],
)
# reason: unknown-recipient | unstorable-recipient | too-many-recipients | empty-message |
# storage-error (SMTP/LMTP); not-mail | unstorable-recipient | storage-error (pipe);
# too-large (IMAP fetch: left on the server; POP3 sees such mail again at every pass, so
# it is not counted there).
MAIL_REFUSED = Counter(
    "pytrs_mail_refused_total",
    "Mail or recipients refused at the door, by reason.",
    ["source", "listener", "reason"],
)
FETCH_ERRORS = Counter(
    "pytrs_fetch_errors_total",
    "Failed fetch sessions of a mail account (each retried with backoff).",
    ["account"],
)
FETCH_LAST_SUCCESS_AGE = Gauge(
    "pytrs_fetch_last_success_age_seconds",
    "(database) Seconds since the account's last successful fetch pass; -1 = never.",
    ["account"],
)

# --- the inbox and the postmaster ---------------------------------------------------------------
INBOX_MESSAGES = Gauge(
    "pytrs_inbox_messages",
    "(database) Inbox rows waiting to be processed (pending) or set aside (quarantined).",
    ["state"],
)
INBOX_OLDEST_AGE = Gauge(
    "pytrs_inbox_oldest_age_seconds",
    "(database) Age of the oldest inbox row in this state; 0 when there is none.",
    ["state"],
)
QUARANTINE_MESSAGES = Gauge(
    "pytrs_quarantine_messages",
    "(database) Mail in the quarantine, waiting for an administrator.",
)
PROCESSING_LATENCY = Histogram(
    "pytrs_processing_latency_seconds",
    "Seconds from the mail's acceptance (inbox commit) to the commit of its ticket change.",
    buckets=LATENCY_BUCKETS,
)
# outcome: new_ticket | follow_up | reject | duplicate | ignored
MAIL_PROCESSED = Counter(
    "pytrs_mail_processed_total",
    "Inbox rows the postmaster committed, by what became of them.",
    ["outcome"],
)
TICKETS_CREATED = Counter(
    "pytrs_tickets_created_total", "Tickets the postmaster created from mail."
)
TICKET_FOLLOW_UPS = Counter(
    "pytrs_ticket_follow_ups_total", "Mail the postmaster added to an existing ticket."
)
# outcome: retry (backs off and is tried again) | quarantined (max_attempts reached)
MAIL_FAILURES = Counter(
    "pytrs_mail_failures_total",
    "Inbox rows whose parse, routing or commit failed.",
    ["outcome"],
)

# --- responders ---------------------------------------------------------------------------------
# type: auto reply | auto reply/new ticket | auto follow up | auto reject
AUTO_RESPONSES_SENT = Counter(
    "pytrs_auto_responses_sent_total", "Auto-responses queued in the outbox.", ["type"]
)
# reason: the loop protection's refusal (auto-submitted, bulk, mailer-daemon, daily-limit,
# suppressed …), template-failed or compose-failed.
AUTO_RESPONSES_SUPPRESSED = Counter(
    "pytrs_auto_responses_suppressed_total",
    "Auto-responses a mail would have had but did not get, by reason.",
    ["reason"],
)

# --- outbound -----------------------------------------------------------------------------------
OUTBOX_MESSAGES = Gauge(
    "pytrs_outbox_messages",
    "(database) Outbox rows waiting (pending), being sent (sending) or given up (failed).",
    ["state"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "pytrs_outbox_oldest_age_seconds",
    "(database) Age of the oldest pending outbox row; 0 when there is none.",
)
# result: sent | deferred (retried later) | failed (refused for good or given up)
OUTBOX_DELIVERIES = Counter(
    "pytrs_outbox_deliveries_total",
    "Delivery attempts of outbox rows to the relay, by the row's outcome.",
    ["result"],
)
# result: signed | no-key (no key for the domain) | error (dkimpy could not sign it)
DKIM_SIGNATURES = Counter(
    "pytrs_dkim_signatures_total", "Outgoing mail DKIM signing, by result.", ["result"]
)
# result: pass | fail | none (no usable signature) | error (DNS, timeout, unreadable)
DKIM_VERIFICATIONS = Counter(
    "pytrs_dkim_verifications_total",
    "DKIM checks of mail claiming to come from an agent, by result.",
    ["result"],
)

# --- the scheduler -------------------------------------------------------------------------------
# kind: response | update | solution | pending; event: notify_before | escalated | pending
ESCALATION_EVENTS = Counter(
    "pytrs_escalation_events_total",
    "Escalation and pending events the due scan fired (each once across daemons).",
    ["kind", "event"],
)
SCHEDULER_SCAN_DURATION = Histogram(
    "pytrs_scheduler_scan_duration_seconds",
    "Seconds one due scan took, from the first claim to the last commit.",
    buckets=HTTP_BUCKETS,
)
# job: due-scan | escalation-rebuild
SCHEDULER_JOB_ERRORS = Counter(
    "pytrs_scheduler_job_errors_total",
    "Scheduler job runs that failed (retried at the next interval).",
    ["job"],
)

# --- web and API --------------------------------------------------------------------------------
# route: the route's template ("/tickets/{tn}"), "unmatched" for a path no route has.
HTTP_REQUESTS = Counter(
    "pytrs_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "pytrs_http_request_duration_seconds",
    "Seconds from a request's arrival to the end of its response.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)

# --- this process -------------------------------------------------------------------------------
DATABASE_UP = Gauge(
    "pytrs_database_up",
    "1 when the last scrape could read the database figures above, else 0 (they are stale).",
)
SERVICE_UP = Gauge(
    "pytrs_service_up",
    "1 when the service of this process runs, 0 while it restarts after a crash or is stopped.",
    ["service"],
)

# --- configuration reloads (SIGHUP) ---------------------------------------------------------------
# result: ok | refused (the file failed its checks; the running configuration was kept).
CONFIG_RELOADS = Counter(
    "pytrs_config_reloads_total",
    "Configuration reloads (SIGHUP) by result; a refused one left the running configuration.",
    ["result"],
)
CONFIG_LAST_RELOAD = Gauge(
    "pytrs_config_last_reload_success_timestamp_seconds",
    "Unix time the running configuration was applied (the start, or the last good reload).",
)
