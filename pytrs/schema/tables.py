"""The database schema: Znuny's core tables under their Znuny names, plus pytrs's own.

Everything that touches the database goes through these models (SQLAlchemy 2 declarative,
used mostly as Core tables through ``Model.__table__`` on the hot paths). The Znuny tables keep
their column names and meanings (REFERENCE §12–§13) so an OTRS admin can read the database;
tables for what OTRS lacks (the durable inbox, counters of our own) have names of their own.

Timestamps are stored as naive UTC ``DateTime`` values, as Znuny does in its own columns, so that
both engines compare them the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pytrs.schema.database import BigId, SmallId

# Stable constraint names make Alembic migrations reproducible on both engines.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _valid_fk() -> Mapped[int]:
    return mapped_column(SmallInteger, ForeignKey("valid.id"), default=1)


class AuditMixin:
    """Znuny's create/change audit columns; `*_by` is a users.id (1 = the system user)."""

    create_time: Mapped[datetime] = mapped_column(DateTime)
    create_by: Mapped[int] = mapped_column(Integer, default=1)
    change_time: Mapped[datetime] = mapped_column(DateTime)
    change_by: Mapped[int] = mapped_column(Integer, default=1)


class Valid(Base):
    __tablename__ = "valid"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class TicketStateType(Base):
    __tablename__ = "ticket_state_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))


class TicketState(Base):
    __tablename__ = "ticket_state"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))
    type_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("ticket_state_type.id"))
    valid_id: Mapped[int] = _valid_fk()


class TicketPriority(Base):
    __tablename__ = "ticket_priority"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    valid_id: Mapped[int] = _valid_fk()


class TicketLockType(Base):
    __tablename__ = "ticket_lock_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    valid_id: Mapped[int] = _valid_fk()


class TicketType(Base):
    __tablename__ = "ticket_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    valid_id: Mapped[int] = _valid_fk()


class FollowUpPossible(Base):
    __tablename__ = "follow_up_possible"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class ArticleSenderType(Base):
    __tablename__ = "article_sender_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class CommunicationChannel(Base):
    __tablename__ = "communication_channel"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    module: Mapped[str] = mapped_column(String(200))
    package_name: Mapped[str] = mapped_column(String(200))
    channel_data: Mapped[str | None] = mapped_column(Text)
    displayable: Mapped[int] = mapped_column(SmallInteger, default=1)
    valid_id: Mapped[int] = _valid_fk()


class TicketHistoryType(Base):
    __tablename__ = "ticket_history_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class PermissionGroup(Base):
    __tablename__ = "permission_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class User(AuditMixin, Base):
    """Agents. Znuny keeps the e-mail address in user_preferences; pytrs keeps it here."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(200), unique=True)
    pw: Mapped[str] = mapped_column(String(128), default="")
    title: Mapped[str | None] = mapped_column(String(50))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(150), index=True)
    valid_id: Mapped[int] = _valid_fk()


class GroupUser(AuditMixin, Base):
    """Znuny's group membership: a user's permission (`ro`, `rw`, `move_into`, `create`, `note`,
    `owner`, `priority`) on a group. Queue access is the permission on the queue's group; `rw`
    on group `admin` makes an administrator."""

    __tablename__ = "group_user"
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), primary_key=True)
    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("permission_groups.id"), primary_key=True, index=True
    )
    permission_key: Mapped[str] = mapped_column(String(20), primary_key=True)


class Queue(AuditMixin, Base):
    __tablename__ = "queue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    group_id: Mapped[int] = mapped_column(Integer, ForeignKey("permission_groups.id"))
    unlock_timeout: Mapped[int | None] = mapped_column(Integer)
    first_response_time: Mapped[int | None] = mapped_column(Integer)
    first_response_notify: Mapped[int | None] = mapped_column(SmallInteger)
    update_time: Mapped[int | None] = mapped_column(Integer)
    update_notify: Mapped[int | None] = mapped_column(SmallInteger)
    solution_time: Mapped[int | None] = mapped_column(Integer)
    solution_notify: Mapped[int | None] = mapped_column(SmallInteger)
    system_address_id: Mapped[int | None] = mapped_column(SmallInteger)
    calendar_name: Mapped[str | None] = mapped_column(String(100))
    default_sign_key: Mapped[str | None] = mapped_column(String(100))
    salutation_id: Mapped[int | None] = mapped_column(SmallInteger)
    signature_id: Mapped[int | None] = mapped_column(SmallInteger)
    follow_up_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("follow_up_possible.id"))
    follow_up_lock: Mapped[int] = mapped_column(SmallInteger, default=0)
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class SystemAddress(AuditMixin, Base):
    __tablename__ = "system_address"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    value0: Mapped[str] = mapped_column(String(200), unique=True)
    value1: Mapped[str] = mapped_column(String(200), default="")
    value2: Mapped[str | None] = mapped_column(String(200))
    value3: Mapped[str | None] = mapped_column(String(200))
    queue_id: Mapped[int] = mapped_column(Integer, ForeignKey("queue.id"))
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class CustomerUser(AuditMixin, Base):
    __tablename__ = "customer_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str] = mapped_column(String(150), index=True)
    customer_id: Mapped[str] = mapped_column(String(150))
    pw: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(50))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(150))
    fax: Mapped[str | None] = mapped_column(String(150))
    mobile: Mapped[str | None] = mapped_column(String(150))
    street: Mapped[str | None] = mapped_column(String(150))
    zip: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(200))
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class Ticket(AuditMixin, Base):
    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_queue_state", "queue_id", "ticket_state_id"),
        Index("ix_ticket_customer_user_id", "customer_user_id"),
        # The web queue view's sort keys, each ending in the id for keyset paging (0012).
        Index("ix_ticket_create_time_id", "create_time", "id"),
        Index("ix_ticket_change_time_id", "change_time", "id"),
        Index("ix_ticket_priority_id", "ticket_priority_id", "id"),
        Index("ix_ticket_title_id", "title", "id"),
        Index("ix_ticket_user_id", "user_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tn: Mapped[str] = mapped_column(String(50), unique=True)
    title: Mapped[str | None] = mapped_column(String(255))
    queue_id: Mapped[int] = mapped_column(Integer, ForeignKey("queue.id"))
    ticket_lock_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("ticket_lock_type.id"))
    type_id: Mapped[int | None] = mapped_column(SmallInteger, ForeignKey("ticket_type.id"))
    service_id: Mapped[int | None] = mapped_column(Integer)
    sla_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    responsible_user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    ticket_priority_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("ticket_priority.id"))
    ticket_state_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("ticket_state.id"))
    customer_id: Mapped[str | None] = mapped_column(String(150))
    customer_user_id: Mapped[str | None] = mapped_column(String(250))
    timeout: Mapped[int] = mapped_column(Integer, default=0)
    # Epoch seconds (0 = none), as in Znuny; 64-bit so that a deadline can lie past 2038.
    until_time: Mapped[int] = mapped_column(BigId, default=0)
    escalation_time: Mapped[int] = mapped_column(BigId, default=0, index=True)
    escalation_update_time: Mapped[int] = mapped_column(BigId, default=0)
    escalation_response_time: Mapped[int] = mapped_column(BigId, default=0)
    escalation_solution_time: Mapped[int] = mapped_column(BigId, default=0)
    archive_flag: Mapped[int] = mapped_column(SmallInteger, default=0)


class Article(AuditMixin, Base):
    __tablename__ = "article"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("ticket.id"), index=True)
    article_sender_type_id: Mapped[int] = mapped_column(
        SmallInteger, ForeignKey("article_sender_type.id")
    )
    communication_channel_id: Mapped[int] = mapped_column(
        SmallInteger, ForeignKey("communication_channel.id")
    )
    is_visible_for_customer: Mapped[int] = mapped_column(SmallInteger, default=1)
    search_index_needs_rebuild: Mapped[int] = mapped_column(SmallInteger, default=1)
    insert_fingerprint: Mapped[str | None] = mapped_column(String(64))


class ArticleDataMime(AuditMixin, Base):
    __tablename__ = "article_data_mime"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(BigId, ForeignKey("article.id"), unique=True)
    a_from: Mapped[str | None] = mapped_column(Text)
    a_reply_to: Mapped[str | None] = mapped_column(Text)
    a_to: Mapped[str | None] = mapped_column(Text)
    a_cc: Mapped[str | None] = mapped_column(Text)
    a_bcc: Mapped[str | None] = mapped_column(Text)
    a_subject: Mapped[str | None] = mapped_column(Text)
    a_message_id: Mapped[str | None] = mapped_column(Text)
    a_message_id_md5: Mapped[str | None] = mapped_column(String(32), index=True)
    a_in_reply_to: Mapped[str | None] = mapped_column(Text)
    a_references: Mapped[str | None] = mapped_column(Text)
    a_content_type: Mapped[str | None] = mapped_column(String(250))
    a_body: Mapped[str | None] = mapped_column(Text)
    incoming_time: Mapped[int] = mapped_column(Integer)
    content_path: Mapped[str | None] = mapped_column(String(250))


class ArticleDataMimePlain(AuditMixin, Base):
    """The raw message, byte for byte."""

    __tablename__ = "article_data_mime_plain"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(BigId, ForeignKey("article.id"), unique=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ArticleDataMimeAttachment(AuditMixin, Base):
    __tablename__ = "article_data_mime_attachment"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(BigId, ForeignKey("article.id"), index=True)
    filename: Mapped[str | None] = mapped_column(String(250))
    content_size: Mapped[str | None] = mapped_column(String(30))
    content_type: Mapped[str | None] = mapped_column(String(450))
    content_id: Mapped[str | None] = mapped_column(String(250))
    content_alternative: Mapped[str | None] = mapped_column(String(50))
    disposition: Mapped[str | None] = mapped_column(String(15))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class TicketHistory(AuditMixin, Base):
    __tablename__ = "ticket_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    history_type_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("ticket_history_type.id"))
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("ticket.id"), index=True)
    article_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("article.id"))
    type_id: Mapped[int | None] = mapped_column(SmallInteger)
    queue_id: Mapped[int] = mapped_column(Integer, ForeignKey("queue.id"))
    owner_id: Mapped[int] = mapped_column(Integer)
    priority_id: Mapped[int] = mapped_column(SmallInteger)
    state_id: Mapped[int] = mapped_column(SmallInteger)


class TicketNumberCounter(Base):
    """Ticket-number counters. Znuny keeps one row per allocation; pytrs keeps one row per
    counter scope (e.g. ``DateChecksum:20261125``) and increments it, which is race-free under
    a row lock and needs no clean-up job."""

    __tablename__ = "ticket_number_counter"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)
    counter_uid: Mapped[str] = mapped_column(String(32), unique=True)
    create_time: Mapped[datetime] = mapped_column(DateTime)


class InboxMessage(Base):
    """The durable inbound queue: one row per accepted (message, recipient).

    A row is written before the sender is told "250"/exit 0, and it is the only hand-over between
    the gateway and the postmaster worker. ``state`` moves pending → done | ignored | quarantined,
    and an operator may set a quarantined row aside (discarded: who, when and why are kept in
    the ``discard*`` columns, the raw copy stays) or queue a corrected copy of its mail again
    (the mail as received kept in ``original_raw``). ``dedup_key`` (Message-ID +
    body hash) makes an identical re-delivery to the same recipient a no-op. Processed rows drop
    their raw copy (the article keeps it) but stay for deduplication.
    """

    __tablename__ = "inbox_message"
    __table_args__ = (
        # Deduplication is per channel and recipient: one mail in two mailboxes, or sent to
        # two addresses, is legitimately two copies (REFERENCE Part B #2).
        UniqueConstraint("source", "recipient", "dedup_key"),
        Index("ix_inbox_message_claim", "state", "next_attempt_at"),
        # Copies of one mail sent to several system addresses find each other (routing).
        Index("ix_inbox_message_dedup_key", "dedup_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(250), default="")
    envelope_from: Mapped[str] = mapped_column(String(250), default="")
    peer: Mapped[str] = mapped_column(String(100), default="")
    trusted: Mapped[int] = mapped_column(SmallInteger, default=0)
    queue_name: Mapped[str] = mapped_column(String(200), default="")
    message_id: Mapped[str] = mapped_column(String(250), default="", index=True)
    dedup_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    ticket_id: Mapped[int | None] = mapped_column(BigId)
    article_id: Mapped[int | None] = mapped_column(BigId)
    trace: Mapped[str | None] = mapped_column(Text)
    discard_reason: Mapped[str | None] = mapped_column(Text)
    discarded_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    discarded_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A quarantined mail an operator replaced by a corrected copy (`pytrs inbox replace`):
    # the bytes as received, kept once, and who replaced it last, when.
    original_raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    replaced_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    replaced_at: Mapped[datetime | None] = mapped_column(DateTime)


class MailAccount(AuditMixin, Base):
    """Znuny's mail account table, provisioned from `[[mail_accounts]]` (never the password:
    secrets stay in the configuration or its password files). `comments` holds the account's
    name, the key of pytrs's own per-account tables."""

    __tablename__ = "mail_account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(200))
    pw: Mapped[str] = mapped_column(String(200), default="")
    host: Mapped[str] = mapped_column(String(200))
    account_type: Mapped[str] = mapped_column(String(20))
    queue_id: Mapped[int] = mapped_column(Integer, default=0)
    trusted: Mapped[int] = mapped_column(SmallInteger, default=0)
    imap_folder: Mapped[str | None] = mapped_column(String(250))
    authentication_type: Mapped[str] = mapped_column(String(20), default="password")
    comments: Mapped[str | None] = mapped_column(String(250), unique=True)
    valid_id: Mapped[int] = _valid_fk()


class MailboxCursor(Base):
    """How far a mailbox folder has been committed to the inbox: UIDVALIDITY + highest UID."""

    __tablename__ = "mailbox_cursor"
    account: Mapped[str] = mapped_column(String(250), primary_key=True)
    folder: Mapped[str] = mapped_column(String(250), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MailboxState(Base):
    """Health and ownership of one mail account: shown by `pytrs accounts`, and the lease that
    lets exactly one daemon fetch it at a time."""

    __tablename__ = "mailbox_state"
    account: Mapped[str] = mapped_column(String(250), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime)
    messages_fetched: Mapped[int] = mapped_column(BigInteger, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    skipped: Mapped[str | None] = mapped_column(Text)  # JSON list of oversized messages left


class Pop3Seen(Base):
    """UIDLs of POP3 messages already committed to the inbox (POP3 has no UID cursor)."""

    __tablename__ = "pop3_seen"
    account: Mapped[str] = mapped_column(String(250), primary_key=True)
    uidl: Mapped[str] = mapped_column(String(250), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime)


class MailboxOAuth2Token(Base):
    """The current OAuth2 tokens of an XOAUTH2 account. A rotated refresh token is written here
    before its access token is used, so a crash cannot leave pytrs holding only a revoked one."""

    __tablename__ = "mailbox_oauth2_token"
    account: Mapped[str] = mapped_column(String(250), primary_key=True)
    refresh_token: Mapped[str] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class PostmasterFilter(Base):
    """Znuny's postmaster filter rows: one per match or set row, the rule's name and stop flag
    repeated on each (REFERENCE §3.1). pytrs adds an id (Znuny's table has no key) and lets
    values be longer than Znuny's 200 characters."""

    __tablename__ = "postmaster_filter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    f_name: Mapped[str] = mapped_column(String(200), index=True)
    f_stop: Mapped[int] = mapped_column(SmallInteger, default=0)
    f_type: Mapped[str] = mapped_column(String(20))
    f_key: Mapped[str] = mapped_column(String(200))
    f_value: Mapped[str] = mapped_column(Text)
    f_not: Mapped[int] = mapped_column(SmallInteger, default=0)


class DynamicField(AuditMixin, Base):
    """Znuny's dynamic field definitions; pytrs writes Ticket text fields (e.g. the external
    ticket number an ETNR rule recognised, REFERENCE §3)."""

    __tablename__ = "dynamic_field"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    internal_field: Mapped[int] = mapped_column(SmallInteger, default=0)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    field_order: Mapped[int] = mapped_column(Integer, default=1)
    field_type: Mapped[str] = mapped_column(String(200), default="Text")
    object_type: Mapped[str] = mapped_column(String(100), default="Ticket")
    config: Mapped[str | None] = mapped_column(Text)
    valid_id: Mapped[int] = _valid_fk()


class DynamicFieldValue(Base):
    __tablename__ = "dynamic_field_value"
    __table_args__ = (Index("ix_dynamic_field_value_field_object", "field_id", "object_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    field_id: Mapped[int] = mapped_column(Integer, ForeignKey("dynamic_field.id"))
    object_id: Mapped[int] = mapped_column(BigInteger)
    value_text: Mapped[str | None] = mapped_column(Text)
    value_date: Mapped[datetime | None] = mapped_column(DateTime)
    value_int: Mapped[int | None] = mapped_column(BigInteger)


class ArticleDataMimeSendError(Base):
    """Transmission errors of an article (Znuny's send-error): a bounce naming one of our
    Message-IDs, or a permanent refusal by the relay."""

    __tablename__ = "article_data_mime_send_error"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(BigId, ForeignKey("article.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(Text)
    log_message: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(DateTime)


class SystemData(AuditMixin, Base):
    """Znuny's key/value store for facts about the installation; pytrs keeps the generated
    key of its X-PyTRS-Loop marker here when the configuration names none."""

    __tablename__ = "system_data"
    data_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    data_value: Mapped[str | None] = mapped_column(Text)


class CustomerPreferences(Base):
    """Znuny's per-customer-user settings (key/value by login); pytrs reads `UserLanguage` to
    pick an auto-response's language."""

    __tablename__ = "customer_preferences"
    __table_args__ = (Index("ix_customer_preferences_user_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(250))
    preferences_key: Mapped[str] = mapped_column(String(150))
    preferences_value: Mapped[str | None] = mapped_column(String(250))


inbox = cast(Table, InboxMessage.__table__)
mail_account = cast(Table, MailAccount.__table__)
mailbox_cursor = cast(Table, MailboxCursor.__table__)
mailbox_state = cast(Table, MailboxState.__table__)
pop3_seen = cast(Table, Pop3Seen.__table__)
mailbox_oauth2_token = cast(Table, MailboxOAuth2Token.__table__)
postmaster_filter = cast(Table, PostmasterFilter.__table__)
ticket = cast(Table, Ticket.__table__)
article = cast(Table, Article.__table__)
article_data_mime = cast(Table, ArticleDataMime.__table__)
article_data_mime_plain = cast(Table, ArticleDataMimePlain.__table__)
article_data_mime_attachment = cast(Table, ArticleDataMimeAttachment.__table__)
ticket_history = cast(Table, TicketHistory.__table__)
ticket_number_counter = cast(Table, TicketNumberCounter.__table__)
queue = cast(Table, Queue.__table__)
system_address = cast(Table, SystemAddress.__table__)
customer_user = cast(Table, CustomerUser.__table__)
users = cast(Table, User.__table__)
group_user = cast(Table, GroupUser.__table__)
permission_groups = cast(Table, PermissionGroup.__table__)
dynamic_field = cast(Table, DynamicField.__table__)
dynamic_field_value = cast(Table, DynamicFieldValue.__table__)
article_data_mime_send_error = cast(Table, ArticleDataMimeSendError.__table__)


# --- Responders (issue 6): the outbox, auto-responses, loop protection, suppressed addresses ---


class OutboxMessage(Base):
    """The durable outbound queue: one row per mail pytrs sends (SPEC S8).

    A row is written in the same transaction as the ticket change that caused it and holds the
    final message bytes, unsigned (DKIM signs at send time, so a key rotation applies to the
    queue). ``state`` moves pending → sending → sent | failed, or back to pending for a retry;
    while ``sending``, the row is leased to ``claimed_by`` until ``lease_until``. ``results``
    keeps each recipient's last relay reply (JSON), so a retry goes only to the recipients that
    have not been answered for good. ``raw`` is dropped once sent (the article keeps its copy);
    the row stays for threading and for matching bounces by ``message_id``.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ticket.id"), index=True)
    article_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("article.id"))
    # What the mail is ("auto-reply", "agent-relay" …), for logs and operators.
    kind: Mapped[str] = mapped_column(String(50), default="mail")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    envelope_from: Mapped[str] = mapped_column(String(250), default="")
    recipients: Mapped[str] = mapped_column(Text)
    results: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(250), index=True)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class TicketLoopProtection(Base):
    """Znuny's per-address auto-response counter: one row per auto-response sent (REFERENCE §7).
    pytrs adds an id (Znuny's table has no key)."""

    __tablename__ = "ticket_loop_protection"
    __table_args__ = (Index("ix_ticket_loop_protection_sent_to_date", "sent_to", "sent_date"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sent_to: Mapped[str] = mapped_column(String(250))
    sent_date: Mapped[str] = mapped_column(String(150))  # 'YYYY-MM-DD', as in Znuny


class AutoResponseType(AuditMixin, Base):
    __tablename__ = "auto_response_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class AutoResponse(AuditMixin, Base):
    """Znuny's auto-response templates: ``text0`` is the body, ``text1`` the subject
    (REFERENCE §8). ``language`` is pytrs's: one template per queue, type and language."""

    __tablename__ = "auto_response"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    text0: Mapped[str | None] = mapped_column(Text)
    text1: Mapped[str | None] = mapped_column(Text)
    type_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("auto_response_type.id"))
    system_address_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("system_address.id"))
    content_type: Mapped[str | None] = mapped_column(String(250))
    comments: Mapped[str | None] = mapped_column(String(250))
    language: Mapped[str] = mapped_column(String(20), default="en")
    valid_id: Mapped[int] = _valid_fk()


class QueueAutoResponse(AuditMixin, Base):
    __tablename__ = "queue_auto_response"
    __table_args__ = (UniqueConstraint("queue_id", "auto_response_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, ForeignKey("queue.id"))
    auto_response_id: Mapped[int] = mapped_column(Integer, ForeignKey("auto_response.id"))


class AddressSuppression(Base):
    """Addresses pytrs does not send to until ``suppressed_until``: hard bounces (a 5.1.x
    refusal by the relay, or a DSN saying so). ``reason`` is what the ticket shows."""

    __tablename__ = "address_suppression"
    address: Mapped[str] = mapped_column(String(250), primary_key=True)  # lower-cased
    reason: Mapped[str] = mapped_column(Text)
    suppressed_until: Mapped[datetime] = mapped_column(DateTime)
    ticket_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime)


outbox = cast(Table, OutboxMessage.__table__)
ticket_loop_protection = cast(Table, TicketLoopProtection.__table__)
auto_response_type = cast(Table, AutoResponseType.__table__)
auto_response = cast(Table, AutoResponse.__table__)
queue_auto_response = cast(Table, QueueAutoResponse.__table__)
address_suppression = cast(Table, AddressSuppression.__table__)
system_data = cast(Table, SystemData.__table__)
customer_preferences = cast(Table, CustomerPreferences.__table__)


class ProvisionedRow(Base):
    """The rows the configuration file owns (issue: provisioning must leave alone what it did
    not make): one per row that provisioning created or took over by name, under the table's
    name as `kind` and with the row's key (queue name, address, login, account name, response
    name, "queue id/response id" of a link). A later start retires only these; the key must
    still match, so a row made by hand under a reused id is never mistaken for ours."""

    __tablename__ = "provisioned_row"
    kind: Mapped[str] = mapped_column(String(50), primary_key=True)
    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    row_key: Mapped[str] = mapped_column(String(250))


class ChangeGeneration(Base):
    """A counter per kind of cached data (filters, auto-responses, the address book), raised in
    the same transaction as every change pytrs makes to it, so that a running daemon sees a
    change even when row counts and ids come out the same (SQLite reuses ids)."""

    __tablename__ = "change_generation"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


provisioned_row = cast(Table, ProvisionedRow.__table__)
change_generation = cast(Table, ChangeGeneration.__table__)


# --- Ticket links (issue 11): Znuny's link_object / link_type / link_state / link_relation ---


class LinkObject(Base):
    """Kinds of linkable objects; pytrs links tickets only (`Ticket`, id 1)."""

    __tablename__ = "link_object"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class LinkType(AuditMixin, Base):
    """`Normal` (no direction) and `ParentChild` (a merge target is the parent)."""

    __tablename__ = "link_type"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    valid_id: Mapped[int] = _valid_fk()


class LinkState(AuditMixin, Base):
    __tablename__ = "link_state"
    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    valid_id: Mapped[int] = _valid_fk()


# Znuny's link_relation has no key column, only the uniqueness of a link; keys are the linked
# objects' ids as text.
link_relation = Table(
    "link_relation",
    Base.metadata,
    Column("source_object_id", SmallInteger, ForeignKey("link_object.id"), nullable=False),
    Column("source_key", String(50), nullable=False),
    Column("target_object_id", SmallInteger, ForeignKey("link_object.id"), nullable=False),
    Column("target_key", String(50), nullable=False),
    Column("type_id", SmallInteger, ForeignKey("link_type.id"), nullable=False),
    Column("state_id", SmallInteger, ForeignKey("link_state.id"), nullable=False),
    Column("create_time", DateTime, nullable=False),
    Column("create_by", Integer, nullable=False),
    UniqueConstraint(
        "source_object_id",
        "source_key",
        "target_object_id",
        "target_key",
        "type_id",
        "state_id",
        name="uq_link_relation_link",
    ),
    Index("ix_link_relation_source", "source_object_id", "source_key"),
    Index("ix_link_relation_target", "target_object_id", "target_key"),
)
link_object = cast(Table, LinkObject.__table__)
link_type = cast(Table, LinkType.__table__)
link_state = cast(Table, LinkState.__table__)


# --- Answer templates (issue 12): Znuny's standard_template / queue_standard_template ---


class StandardTemplate(AuditMixin, Base):
    """Znuny's standard templates; the web view's reply starts from one of type `Answer`
    assigned to the ticket's queue, rendered in the auto-response sandbox."""

    __tablename__ = "standard_template"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    text: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(250))
    template_type: Mapped[str] = mapped_column(String(100), default="Answer")
    comments: Mapped[str | None] = mapped_column(String(250))
    valid_id: Mapped[int] = _valid_fk()


class QueueStandardTemplate(AuditMixin, Base):
    """Which templates a queue offers (Znuny's assignment table, one row per pair)."""

    __tablename__ = "queue_standard_template"
    __table_args__ = (
        UniqueConstraint("queue_id", "standard_template_id", name="uq_queue_standard_template"),
        Index("ix_queue_standard_template_template", "standard_template_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer, ForeignKey("queue.id"))
    standard_template_id: Mapped[int] = mapped_column(Integer, ForeignKey("standard_template.id"))


standard_template = cast(Table, StandardTemplate.__table__)
queue_standard_template = cast(Table, QueueStandardTemplate.__table__)


# --- Web sessions (issue 12): the sessions signed out before their time ---


class WebSessionEnd(Base):
    """A web session ended by logout before its absolute expiry (sessions live in signed
    cookies: a copy of the cookie would otherwise stay valid until it times out). The session
    middleware refuses a session whose random id is here; a row past `expires_at` can no
    longer matter (the cookie is refused by its age) and is deleted at a later logout."""

    __tablename__ = "web_session_end"
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    ended_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


web_session_end = cast(Table, WebSessionEnd.__table__)


# --- JSON API (issue 13): bearer tokens and remembered creates ---


class ApiToken(Base):
    """A bearer token of the JSON API: it acts as its agent (`user_id`), narrowed to `scope`
    (read < write < admin). Only the SHA-256 of the token is kept (`token_hash`); the token is
    shown once, when created. `hint` is the token's first characters, so that an admin can tell
    tokens apart in `pytrs tokens list`. A revoked or expired token authenticates nothing."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(10))
    create_time: Mapped[datetime] = mapped_column(DateTime)
    expires_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ApiIdempotency(Base):
    """The answer to a create made with an `Idempotency-Key`: a retry with the same key (same
    agent) gets this answer again instead of a second ticket. Written in the create's own
    transaction, so a key is remembered exactly when its create committed. `request_hash`
    tells a retry from a different request reusing the key; rows older than a day are
    deleted."""

    __tablename__ = "api_idempotency"
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    # The answer's `Location` (the path of what the create made), replayed with the body.
    location: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    create_time: Mapped[datetime] = mapped_column(DateTime, index=True)


api_token = cast(Table, ApiToken.__table__)
api_idempotency = cast(Table, ApiIdempotency.__table__)


# --- SLAs, business calendars and escalation clocks (issue 14, SPEC S9) ---


class Sla(AuditMixin, Base):
    """Znuny's `sla`: escalation targets in working minutes of `calendar_name` (0 = none) and
    the share of each (percent) after which agents are warned. A ticket's `sla_id` overrides
    its queue's targets. Provisioned from `[[slas]]`."""

    __tablename__ = "sla"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    calendar_name: Mapped[str | None] = mapped_column(String(100))
    first_response_time: Mapped[int] = mapped_column(Integer, default=0)
    first_response_notify: Mapped[int | None] = mapped_column(SmallInteger)
    update_time: Mapped[int] = mapped_column(Integer, default=0)
    update_notify: Mapped[int | None] = mapped_column(SmallInteger)
    solution_time: Mapped[int] = mapped_column(Integer, default=0)
    solution_notify: Mapped[int | None] = mapped_column(SmallInteger)
    valid_id: Mapped[int] = _valid_fk()
    comments: Mapped[str | None] = mapped_column(String(250))


class BusinessCalendar(Base):
    """A business calendar as `[[calendars]]` declared it, holidays expanded (JSON, see
    `pytrs.calendars`), so that every process on the database counts working time alike.
    Znuny keeps calendars in SysConfig; its `calendar` table is the appointment calendar."""

    __tablename__ = "business_calendar"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    change_time: Mapped[datetime] = mapped_column(DateTime)


class TicketEscalation(Base):
    """The scheduler's clock of one ticket: each deadline of `ticket` (epoch seconds, 0 =
    none) with the moment its notify-before warning is due and how far its events went (0 =
    nothing fired, 1 = warned, 2 = escalated), and the pending time with its reminder or
    auto-close (0 = not yet, 2 = done). `next_due` is the earliest event not yet fired (NULL
    when none): the due scan reads `next_due <= now` through its index, so it costs what is
    due, not what is open. Written only by the escalation index (`tickets.escalation_index`)
    and the scheduler, always while holding the ticket's row lock."""

    __tablename__ = "ticket_escalation"
    ticket_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True
    )
    next_due: Mapped[int | None] = mapped_column(BigId, index=True)
    response_time: Mapped[int] = mapped_column(BigId, default=0)
    response_notify: Mapped[int] = mapped_column(BigId, default=0)
    response_stage: Mapped[int] = mapped_column(SmallInteger, default=0)
    update_time: Mapped[int] = mapped_column(BigId, default=0)
    update_notify: Mapped[int] = mapped_column(BigId, default=0)
    update_stage: Mapped[int] = mapped_column(SmallInteger, default=0)
    solution_time: Mapped[int] = mapped_column(BigId, default=0)
    solution_notify: Mapped[int] = mapped_column(BigId, default=0)
    solution_stage: Mapped[int] = mapped_column(SmallInteger, default=0)
    pending_time: Mapped[int] = mapped_column(BigId, default=0)
    pending_stage: Mapped[int] = mapped_column(SmallInteger, default=0)


sla = cast(Table, Sla.__table__)
business_calendar = cast(Table, BusinessCalendar.__table__)
ticket_escalation = cast(Table, TicketEscalation.__table__)
