"""A Znuny-7.0-shaped database for tests: the tables pytrs touches or the importer reads.

This is our own SQLAlchemy Core description of Znuny's tables, written from the facts of Znuny
7.0's ``scripts/database/schema.xml`` (library copy at commit 039ca396): table and column names,
types, lengths, nullability, defaults, primary/unique keys, indexes and the foreign keys that
Znuny's ``schema-post`` step adds once the initial rows are in. The engine-specific types follow
Znuny's own database drivers (``Kernel/System/DB/postgresql.pm`` and ``mysql.pm``):

- ``DATE`` is ``timestamp(0)`` on PostgreSQL and ``DATETIME`` on MySQL/MariaDB;
- ``LONGBLOB`` is ``TEXT`` on PostgreSQL (Znuny runs it with DirectBlob off, so binary content —
  ``article_data_mime_plain.body``, attachment ``content`` — is stored there as base64) and a real
  ``LONGBLOB`` holding raw bytes on MySQL/MariaDB;
- ``VARCHAR(n)`` stays ``VARCHAR(n)`` on PostgreSQL up to 9999 and becomes an unbounded
  ``VARCHAR`` from 10000; on MySQL/MariaDB it becomes ``TEXT`` above 255 and ``MEDIUMTEXT``
  above 65535;
- an auto-increment id is ``serial``/``bigserial`` on PostgreSQL (so a SMALLINT id is an integer
  there) and ``AUTO_INCREMENT`` on MySQL/MariaDB.

Foreign keys are declared on the tables but created only by ``add_foreign_keys`` (see
``create_tables``), after the seed rows, as Znuny does: its seed rows reference each other in
cycles (``valid.create_by`` → ``users``, ``users.valid_id`` → ``valid``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable
from sqlalchemy.types import TypeDecorator, TypeEngine

ZNUNY_VERSION = "7.0"
SCHEMA_SOURCE = "znuny/Znuny scripts/database/schema.xml @ 039ca396ea828c1c74014675fc76d358eb5e7ced"

_MYSQL = ("mysql", "mariadb")

metadata = MetaData()


# --- Znuny's column types, per engine --------------------------------------------------------


def date() -> TypeEngine[Any]:
    """Znuny's DATE: a timestamp to the second."""
    return DateTime().with_variant(postgresql.TIMESTAMP(precision=0), "postgresql")


def varchar(size: int) -> TypeEngine[Any]:
    """Znuny's VARCHAR(size), mapped as its drivers map it."""
    if size <= 255:
        return String(size)
    if size > 16777215:
        on_mysql: TypeEngine[Any] = mysql.LONGTEXT()
    elif size > 65535:
        on_mysql = mysql.MEDIUMTEXT()
    else:
        on_mysql = mysql.TEXT()
    on_postgresql = String() if size >= 10000 else String(size)
    return String(size).with_variant(on_postgresql, "postgresql").with_variant(on_mysql, *_MYSQL)


class _LongBlob(TypeDecorator[Any]):
    """Znuny's LONGBLOB: TEXT on PostgreSQL (binary content goes in as base64, which the
    writer does), LONGBLOB on MySQL/MariaDB (text values are written as UTF-8 bytes, as
    Znuny's driver does; reads return bytes there, as they would for pytrs)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return mysql.LONGBLOB()
        return postgresql.TEXT() if dialect.name == "postgresql" else Text()

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name in _MYSQL and isinstance(value, str):
            return value.encode()
        if dialect.name not in _MYSQL and isinstance(value, bytes):
            raise TypeError("a LONGBLOB is TEXT on PostgreSQL: write base64 text, not bytes")
        return value


def longblob() -> TypeEngine[Any]:
    return _LongBlob()


def small_id() -> TypeEngine[Any]:
    """A SMALLINT auto-increment id: Znuny's ``serial`` makes it an integer on PostgreSQL."""
    return SmallInteger().with_variant(Integer(), "postgresql")


def _id(type_: TypeEngine[Any]) -> Column[int]:
    return Column("id", type_, primary_key=True, autoincrement=True, nullable=False)


def _req(name: str, type_: TypeEngine[Any], **kw: object) -> Column[Any]:
    return Column(name, type_, nullable=False, **kw)


def _opt(name: str, type_: TypeEngine[Any], **kw: object) -> Column[Any]:
    return Column(name, type_, nullable=True, **kw)


def _audit(change: bool = True) -> list[Column[Any]]:
    cols = [_req("create_time", date()), _req("create_by", Integer())]
    if change:
        cols += [_req("change_time", date()), _req("change_by", Integer())]
    return cols


def _fk(table: str, local: str, foreign_table: str, foreign: str = "id") -> ForeignKeyConstraint:
    # Znuny's schema-post names a key FK_<table>_<local>_<foreign>; PostgreSQL keeps 63 chars.
    return ForeignKeyConstraint(
        [local], [f"{foreign_table}.{foreign}"], name=f"FK_{table}_{local}_{foreign}"[:63]
    )


def _by_users(table: str, change: bool = True) -> list[ForeignKeyConstraint]:
    keys = [_fk(table, "create_by", "users")]
    if change:
        keys.append(_fk(table, "change_by", "users"))
    return keys


def _lookup(
    name: str,
    *,
    id_type: TypeEngine[Any] | None = None,
    comments: bool = True,
    valid: bool = True,
    valid_fk: bool = True,
    name_size: int = 200,
) -> Table:
    """The shape shared by Znuny's small lookup tables (id, name, [comments], [valid_id], audit)."""
    cols: list[Column[Any]] = [_id(id_type or small_id()), _req("name", varchar(name_size))]
    if comments:
        cols.append(_opt("comments", varchar(250)))
    keys: list[object] = []
    if valid:
        cols.append(_req("valid_id", SmallInteger()))
        if valid_fk:
            keys.append(_fk(name, "valid_id", "valid"))
    return Table(
        name,
        metadata,
        *cols,
        *_audit(),
        UniqueConstraint("name", name=f"{name}_name"),
        *keys,
        *_by_users(name),
    )


# --- framework --------------------------------------------------------------------------------

valid = _lookup("valid", comments=False, valid=False)

users = Table(
    "users",
    metadata,
    _id(Integer()),
    _req("login", varchar(200)),
    _req("pw", varchar(128)),
    _opt("title", varchar(50)),
    _req("first_name", varchar(100)),
    _req("last_name", varchar(100)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("login", name="users_login"),
    _fk("users", "valid_id", "valid"),
    *_by_users("users"),
)

# An agent's e-mail address lives here (preferences_key 'UserEmail'), not in `users`.
user_preferences = Table(
    "user_preferences",
    metadata,
    _req("user_id", Integer()),
    _req("preferences_key", varchar(150)),
    _opt("preferences_value", longblob()),
    Index("user_preferences_user_id", "user_id"),
    _fk("user_preferences", "user_id", "users"),
)

# Znuny 7.0 calls its groups table permission_groups (the unique keeps the old name).
permission_groups = Table(
    "permission_groups",
    metadata,
    _id(Integer()),
    _req("name", varchar(200)),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="groups_name"),
    _fk("permission_groups", "valid_id", "valid"),
    *_by_users("permission_groups"),
)

# No primary or unique key in Znuny: the same right may be stored twice.
group_user = Table(
    "group_user",
    metadata,
    _req("user_id", Integer()),
    _req("group_id", Integer()),
    _req("permission_key", varchar(20)),
    *_audit(),
    Index("group_user_user_id", "user_id"),
    Index("group_user_group_id", "group_id"),
    *_by_users("group_user"),
    _fk("group_user", "user_id", "users"),
    _fk("group_user", "group_id", "permission_groups"),
)

roles = _lookup("roles", id_type=Integer())

role_user = Table(
    "role_user",
    metadata,
    _req("user_id", Integer()),
    _req("role_id", Integer()),
    *_audit(),
    Index("role_user_user_id", "user_id"),
    Index("role_user_role_id", "role_id"),
    *_by_users("role_user"),
    _fk("role_user", "user_id", "users"),
)

group_role = Table(
    "group_role",
    metadata,
    _req("role_id", Integer()),
    _req("group_id", Integer()),
    _req("permission_key", varchar(20)),
    # Always 1 since OTRS 5; older rows may hold 0.
    _req("permission_value", SmallInteger()),
    *_audit(),
    Index("group_role_role_id", "role_id"),
    Index("group_role_group_id", "group_id"),
    *_by_users("group_role"),
    _fk("group_role", "group_id", "permission_groups"),
    _fk("group_role", "role_id", "roles"),
)


def _text_block(name: str) -> Table:
    """salutation and signature: a named text of up to 3000 characters."""
    return Table(
        name,
        metadata,
        _id(small_id()),
        _req("name", varchar(200)),
        _req("text", varchar(3000)),
        _opt("content_type", varchar(250)),
        _opt("comments", varchar(250)),
        _req("valid_id", SmallInteger()),
        *_audit(),
        UniqueConstraint("name", name=f"{name}_name"),
        _fk(name, "valid_id", "valid"),
        *_by_users(name),
    )


salutation = _text_block("salutation")
signature = _text_block("signature")

# No unique key on the address itself.
system_address = Table(
    "system_address",
    metadata,
    _id(small_id()),
    _req("value0", varchar(200)),
    _req("value1", varchar(200)),
    _opt("value2", varchar(200)),
    _opt("value3", varchar(200)),
    _req("queue_id", Integer()),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    _fk("system_address", "valid_id", "valid"),
    *_by_users("system_address"),
)

follow_up_possible = _lookup("follow_up_possible")

queue = Table(
    "queue",
    metadata,
    _id(Integer()),
    _req("name", varchar(200)),
    _req("group_id", Integer()),
    _opt("unlock_timeout", Integer()),
    _opt("first_response_time", Integer()),
    _opt("first_response_notify", SmallInteger()),
    _opt("update_time", Integer()),
    _opt("update_notify", SmallInteger()),
    _opt("solution_time", Integer()),
    _opt("solution_notify", SmallInteger()),
    _req("system_address_id", SmallInteger()),
    _opt("calendar_name", varchar(100)),
    _opt("default_sign_key", varchar(100)),
    _req("salutation_id", SmallInteger()),
    _req("signature_id", SmallInteger()),
    _req("follow_up_id", SmallInteger()),
    _req("follow_up_lock", SmallInteger()),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="queue_name"),
    Index("queue_group_id", "group_id"),
    _fk("queue", "valid_id", "valid"),
    _fk("queue", "system_address_id", "system_address"),
    _fk("queue", "salutation_id", "salutation"),
    _fk("queue", "signature_id", "signature"),
    _fk("queue", "group_id", "permission_groups"),
    _fk("queue", "follow_up_id", "follow_up_possible"),
    *_by_users("queue"),
)

queue_preferences = Table(
    "queue_preferences",
    metadata,
    _req("queue_id", Integer()),
    _req("preferences_key", varchar(150)),
    _opt("preferences_value", varchar(250)),
    Index("queue_preferences_queue_id", "queue_id"),
    _fk("queue_preferences", "queue_id", "queue"),
)

# --- ticket lookups -----------------------------------------------------------------------------

# ticket_priority has a valid_id but no foreign key on it; ticket_state_type has no valid_id.
ticket_priority = _lookup("ticket_priority", comments=False, valid_fk=False)
ticket_type = _lookup("ticket_type", comments=False)
ticket_lock_type = _lookup("ticket_lock_type", comments=False)
ticket_state_type = _lookup("ticket_state_type", valid=False)

ticket_state = Table(
    "ticket_state",
    metadata,
    _id(small_id()),
    _req("name", varchar(200)),
    _opt("comments", varchar(250)),
    _req("type_id", SmallInteger()),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="ticket_state_name"),
    _fk("ticket_state", "valid_id", "valid"),
    _fk("ticket_state", "type_id", "ticket_state_type"),
    *_by_users("ticket_state"),
)

ticket_history_type = _lookup("ticket_history_type")
article_sender_type = _lookup("article_sender_type")

# id is BIGINT here (bigserial), unlike the other lookups; channel_data is YAML, required.
communication_channel = Table(
    "communication_channel",
    metadata,
    _id(BigInteger()),
    _req("name", varchar(200)),
    _req("module", varchar(200)),
    _req("package_name", varchar(200)),
    _req("channel_data", longblob()),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="communication_channel_name"),
    *_by_users("communication_channel"),
    _fk("communication_channel", "valid_id", "valid"),
)

# --- services and SLAs --------------------------------------------------------------------------

service = Table(
    "service",
    metadata,
    _id(Integer()),
    _req("name", varchar(200)),
    _req("valid_id", SmallInteger()),
    _opt("comments", varchar(250)),
    *_audit(),
    UniqueConstraint("name", name="service_name"),
    *_by_users("service"),
)

sla = Table(
    "sla",
    metadata,
    _id(Integer()),
    _req("name", varchar(200)),
    _opt("calendar_name", varchar(100)),
    _req("first_response_time", Integer()),
    _opt("first_response_notify", SmallInteger()),
    _req("update_time", Integer()),
    _opt("update_notify", SmallInteger()),
    _req("solution_time", Integer()),
    _opt("solution_notify", SmallInteger()),
    _req("valid_id", SmallInteger()),
    _opt("comments", varchar(250)),
    *_audit(),
    UniqueConstraint("name", name="sla_name"),
    *_by_users("sla"),
)

# --- customers ----------------------------------------------------------------------------------

customer_user = Table(
    "customer_user",
    metadata,
    _id(Integer()),
    _req("login", varchar(200)),
    _req("email", varchar(150)),
    _req("customer_id", varchar(150)),
    _opt("pw", varchar(128)),
    _opt("title", varchar(50)),
    _req("first_name", varchar(100)),
    _req("last_name", varchar(100)),
    _opt("phone", varchar(150)),
    _opt("fax", varchar(150)),
    _opt("mobile", varchar(150)),
    _opt("street", varchar(150)),
    _opt("zip", varchar(200)),
    _opt("city", varchar(200)),
    _opt("country", varchar(200)),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("login", name="customer_user_login"),
    _fk("customer_user", "valid_id", "valid"),
    *_by_users("customer_user"),
)

# Keyed by the customer user's login; no id.
customer_preferences = Table(
    "customer_preferences",
    metadata,
    _req("user_id", varchar(250)),
    _req("preferences_key", varchar(150)),
    _opt("preferences_value", varchar(250)),
    Index("customer_preferences_user_id", "user_id"),
)

# No foreign keys at all in Znuny.
customer_company = Table(
    "customer_company",
    metadata,
    Column("customer_id", varchar(150), primary_key=True, nullable=False),
    _req("name", varchar(200)),
    _opt("street", varchar(200)),
    _opt("zip", varchar(200)),
    _opt("city", varchar(200)),
    _opt("country", varchar(200)),
    _opt("url", varchar(200)),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="customer_company_name"),
)

# --- tickets and articles -----------------------------------------------------------------------

ticket = Table(
    "ticket",
    metadata,
    _id(BigInteger()),
    _req("tn", varchar(50)),
    _opt("title", varchar(255)),
    _req("queue_id", Integer()),
    _req("ticket_lock_id", SmallInteger()),
    _opt("type_id", SmallInteger()),
    _opt("service_id", Integer()),
    _opt("sla_id", Integer()),
    _req("user_id", Integer()),
    _req("responsible_user_id", Integer()),
    _req("ticket_priority_id", SmallInteger()),
    _req("ticket_state_id", SmallInteger()),
    _opt("customer_id", varchar(150)),
    _opt("customer_user_id", varchar(250)),
    _req("timeout", Integer()),
    # Epoch seconds in a 32-bit INTEGER, as in Znuny.
    _req("until_time", Integer()),
    _req("escalation_time", Integer()),
    _req("escalation_update_time", Integer()),
    _req("escalation_response_time", Integer()),
    _req("escalation_solution_time", Integer()),
    _req("archive_flag", SmallInteger(), server_default="0"),
    *_audit(),
    UniqueConstraint("tn", name="ticket_tn"),
    Index("ticket_title", "title"),
    Index("ticket_customer_user_id", "customer_user_id"),
    Index("ticket_customer_id", "customer_id"),
    Index("ticket_queue_id", "queue_id"),
    Index("ticket_ticket_lock_id", "ticket_lock_id"),
    Index("ticket_queue_view", "ticket_state_id", "ticket_lock_id"),
    Index("ticket_type_id", "type_id"),
    Index("ticket_user_id", "user_id"),
    Index("ticket_responsible_user_id", "responsible_user_id"),
    Index("ticket_ticket_state_id", "ticket_state_id"),
    Index("ticket_ticket_priority_id", "ticket_priority_id"),
    Index("ticket_escalation_time", "escalation_time"),
    Index("ticket_escalation_update_time", "escalation_update_time"),
    Index("ticket_escalation_response_time", "escalation_response_time"),
    Index("ticket_escalation_solution_time", "escalation_solution_time"),
    Index("ticket_create_time", "create_time"),
    Index("ticket_until_time", "until_time"),
    Index("ticket_timeout", "timeout"),
    Index("ticket_archive_flag", "archive_flag"),
    _fk("ticket", "queue_id", "queue"),
    _fk("ticket", "type_id", "ticket_type"),
    _fk("ticket", "service_id", "service"),
    _fk("ticket", "sla_id", "sla"),
    _fk("ticket", "ticket_priority_id", "ticket_priority"),
    _fk("ticket", "ticket_state_id", "ticket_state"),
    _fk("ticket", "ticket_lock_id", "ticket_lock_type"),
    *_by_users("ticket"),
    _fk("ticket", "user_id", "users"),
    _fk("ticket", "responsible_user_id", "users"),
)

ticket_flag = Table(
    "ticket_flag",
    metadata,
    _req("ticket_id", BigInteger()),
    _req("ticket_key", varchar(50)),
    _opt("ticket_value", varchar(50)),
    *_audit(change=False),
    Index("ticket_flag_ticket_id_create_by", "ticket_id", "create_by"),
    Index("ticket_flag_ticket_id_ticket_key", "ticket_id", "ticket_key"),
    Index("ticket_flag_ticket_id", "ticket_id"),
    UniqueConstraint("ticket_id", "ticket_key", "create_by", name="ticket_flag_per_user"),
    _fk("ticket_flag", "ticket_id", "ticket"),
    *_by_users("ticket_flag", change=False),
)

article = Table(
    "article",
    metadata,
    _id(BigInteger()),
    _req("ticket_id", BigInteger()),
    _req("article_sender_type_id", SmallInteger()),
    _req("communication_channel_id", BigInteger()),
    _req("is_visible_for_customer", SmallInteger()),
    _req("search_index_needs_rebuild", SmallInteger(), server_default="1"),
    _opt("insert_fingerprint", varchar(64)),
    *_audit(),
    Index("article_ticket_id", "ticket_id"),
    Index("article_article_sender_type_id", "article_sender_type_id"),
    Index("article_communication_channel_id", "communication_channel_id"),
    Index("article_search_index_needs_rebuild", "search_index_needs_rebuild"),
    _fk("article", "ticket_id", "ticket"),
    _fk("article", "communication_channel_id", "communication_channel"),
    _fk("article", "article_sender_type_id", "article_sender_type"),
    *_by_users("article"),
)

article_flag = Table(
    "article_flag",
    metadata,
    _req("article_id", BigInteger()),
    _req("article_key", varchar(50)),
    _opt("article_value", varchar(50)),
    *_audit(change=False),
    Index("article_flag_article_id_create_by", "article_id", "create_by"),
    Index("article_flag_article_id", "article_id"),
    _fk("article_flag", "article_id", "article"),
    *_by_users("article_flag", change=False),
)

article_data_mime = Table(
    "article_data_mime",
    metadata,
    _id(BigInteger()),
    _req("article_id", BigInteger()),
    _opt("a_from", varchar(1800000)),
    _opt("a_reply_to", varchar(1800000)),
    _opt("a_to", varchar(1800000)),
    _opt("a_cc", varchar(1800000)),
    _opt("a_bcc", varchar(1800000)),
    _opt("a_subject", varchar(3800)),
    _opt("a_message_id", varchar(3800)),
    _opt("a_message_id_md5", varchar(32)),
    _opt("a_in_reply_to", varchar(1800000)),
    _opt("a_references", varchar(1800000)),
    _opt("a_content_type", varchar(250)),
    _opt("a_body", varchar(1800000)),
    _req("incoming_time", Integer()),
    _opt("content_path", varchar(250)),
    *_audit(),
    # Not unique: Znuny indexes article_id without a unique key.
    Index("article_data_mime_message_id_md5", "a_message_id_md5"),
    Index("article_data_mime_article_id", "article_id"),
    _fk("article_data_mime", "article_id", "article"),
    *_by_users("article_data_mime"),
)

article_search_index = Table(
    "article_search_index",
    metadata,
    _id(BigInteger()),
    _req("ticket_id", BigInteger()),
    _req("article_id", BigInteger()),
    _req("article_key", varchar(200)),
    _opt("article_value", varchar(1800000)),
    Index("article_search_index_ticket_id", "ticket_id", "article_key"),
    Index("article_search_index_article_id", "article_id", "article_key"),
    _fk("article_search_index", "ticket_id", "ticket"),
    _fk("article_search_index", "article_id", "article"),
)

# The raw mail: base64 text on PostgreSQL, raw bytes on MySQL/MariaDB.
article_data_mime_plain = Table(
    "article_data_mime_plain",
    metadata,
    _id(BigInteger()),
    _req("article_id", BigInteger()),
    _req("body", longblob()),
    *_audit(),
    Index("article_data_mime_plain_article_id", "article_id"),
    _fk("article_data_mime_plain", "article_id", "article"),
    *_by_users("article_data_mime_plain"),
)

article_data_mime_attachment = Table(
    "article_data_mime_attachment",
    metadata,
    _id(BigInteger()),
    _req("article_id", BigInteger()),
    _opt("filename", varchar(250)),
    _opt("content_size", varchar(30)),
    _opt("content_type", varchar(450)),
    _opt("content_id", varchar(250)),
    _opt("content_alternative", varchar(50)),
    _opt("disposition", varchar(15)),
    _opt("content", longblob()),
    *_audit(),
    Index("article_data_mime_attachment_article_id", "article_id"),
    _fk("article_data_mime_attachment", "article_id", "article"),
    *_by_users("article_data_mime_attachment"),
)

article_data_mime_send_error = Table(
    "article_data_mime_send_error",
    metadata,
    _id(BigInteger()),
    _req("article_id", BigInteger()),
    _opt("message_id", varchar(200)),
    _opt("log_message", varchar(1800000)),
    _req("create_time", date()),
    Index("article_data_mime_transmission_message_id", "message_id"),
    Index("article_data_mime_transmission_article_id", "article_id"),
    _fk("article_data_mime_send_error", "article_id", "article"),
)

ticket_history = Table(
    "ticket_history",
    metadata,
    _id(BigInteger()),
    _req("name", varchar(200)),
    _req("history_type_id", SmallInteger()),
    _req("ticket_id", BigInteger()),
    _opt("article_id", BigInteger()),
    _req("type_id", SmallInteger()),
    _req("queue_id", Integer()),
    _req("owner_id", Integer()),
    _req("priority_id", SmallInteger()),
    _req("state_id", SmallInteger()),
    *_audit(),
    Index("ticket_history_ticket_id", "ticket_id"),
    Index("ticket_history_article_id", "article_id"),
    Index("ticket_history_history_type_id", "history_type_id"),
    Index("ticket_history_queue_id", "queue_id"),
    Index("ticket_history_type_id", "type_id"),
    Index("ticket_history_owner_id", "owner_id"),
    Index("ticket_history_priority_id", "priority_id"),
    Index("ticket_history_state_id", "state_id"),
    Index("ticket_history_create_time", "create_time"),
    _fk("ticket_history", "ticket_id", "ticket"),
    _fk("ticket_history", "type_id", "ticket_type"),
    _fk("ticket_history", "article_id", "article"),
    _fk("ticket_history", "queue_id", "queue"),
    _fk("ticket_history", "priority_id", "ticket_priority"),
    _fk("ticket_history", "state_id", "ticket_state"),
    _fk("ticket_history", "history_type_id", "ticket_history_type"),
    _fk("ticket_history", "owner_id", "users"),
    *_by_users("ticket_history"),
)

# Znuny's generator inserts one row per allocation (counter = last + 1, random counter_uid).
ticket_number_counter = Table(
    "ticket_number_counter",
    metadata,
    _id(BigInteger()),
    _req("counter", BigInteger()),
    _req("counter_uid", varchar(32)),
    _opt("create_time", date()),
    UniqueConstraint("counter_uid", name="ticket_number_counter_uid"),
    Index("ticket_number_counter_create_time", "create_time"),
)

# No id in 7.0 (7.1 adds one).
ticket_loop_protection = Table(
    "ticket_loop_protection",
    metadata,
    _req("sent_to", varchar(250)),
    _req("sent_date", varchar(150)),
    Index("ticket_loop_protection_sent_to", "sent_to"),
    Index("ticket_loop_protection_sent_date", "sent_date"),
)

time_accounting = Table(
    "time_accounting",
    metadata,
    _id(BigInteger()),
    _req("ticket_id", BigInteger()),
    _opt("article_id", BigInteger()),
    _req("time_unit", Numeric(10, 2)),
    *_audit(),
    Index("time_accounting_ticket_id", "ticket_id"),
    Index("time_accounting_article_id", "article_id"),
    _fk("time_accounting", "ticket_id", "ticket"),
    _fk("time_accounting", "article_id", "article"),
    *_by_users("time_accounting"),
)

# --- templates and auto responses ---------------------------------------------------------------

standard_template = Table(
    "standard_template",
    metadata,
    _id(Integer()),
    _req("name", varchar(200)),
    _opt("text", varchar(10000)),
    _opt("content_type", varchar(250)),
    _req("template_type", varchar(100), server_default="Answer"),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="standard_template_name"),
    _fk("standard_template", "valid_id", "valid"),
    *_by_users("standard_template"),
)

# No id and no unique key.
queue_standard_template = Table(
    "queue_standard_template",
    metadata,
    _req("queue_id", Integer()),
    _req("standard_template_id", Integer()),
    *_audit(),
    _fk("queue_standard_template", "standard_template_id", "standard_template"),
    _fk("queue_standard_template", "queue_id", "queue"),
    *_by_users("queue_standard_template"),
)

auto_response_type = _lookup("auto_response_type")

auto_response = Table(
    "auto_response",
    metadata,
    _id(Integer()),
    _req("name", varchar(200)),
    _opt("text0", varchar(6000)),
    _opt("text1", varchar(6000)),
    _req("type_id", SmallInteger()),
    _req("system_address_id", SmallInteger()),
    _opt("content_type", varchar(250)),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="auto_response_name"),
    _fk("auto_response", "valid_id", "valid"),
    _fk("auto_response", "type_id", "auto_response_type"),
    _fk("auto_response", "system_address_id", "system_address"),
    *_by_users("auto_response"),
)

# An id, but no unique key on (queue_id, auto_response_id).
queue_auto_response = Table(
    "queue_auto_response",
    metadata,
    _id(Integer()),
    _req("queue_id", Integer()),
    _req("auto_response_id", Integer()),
    *_audit(),
    _fk("queue_auto_response", "queue_id", "queue"),
    _fk("queue_auto_response", "auto_response_id", "auto_response"),
    *_by_users("queue_auto_response"),
)

# --- mail in and out ----------------------------------------------------------------------------

oauth2_token_config = Table(
    "oauth2_token_config",
    metadata,
    _id(Integer()),
    _req("name", varchar(250)),
    _req("config", varchar(100000)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="oauth2_token_config_name"),
    _fk("oauth2_token_config", "valid_id", "valid"),
    *_by_users("oauth2_token_config"),
)

mail_account = Table(
    "mail_account",
    metadata,
    _id(Integer()),
    _req("login", varchar(200)),
    _req("pw", varchar(200)),
    _req("host", varchar(200)),
    _req("account_type", varchar(20)),
    _req("queue_id", Integer()),
    _req("trusted", SmallInteger()),
    _opt("imap_folder", varchar(250)),
    _req("authentication_type", varchar(100), server_default="password"),
    _opt("oauth2_token_config_id", Integer()),
    _opt("comments", varchar(250)),
    _req("valid_id", SmallInteger()),
    *_audit(),
    _fk("mail_account", "valid_id", "valid"),
    *_by_users("mail_account"),
    _fk("mail_account", "oauth2_token_config_id", "oauth2_token_config"),
)

# One row per match/set line of a filter, f_name and f_stop repeated; no id in 7.0.
postmaster_filter = Table(
    "postmaster_filter",
    metadata,
    _req("f_name", varchar(200)),
    _opt("f_stop", SmallInteger()),
    _req("f_type", varchar(20)),
    _req("f_key", varchar(200)),
    _req("f_value", varchar(200)),
    _opt("f_not", SmallInteger()),
    Index("postmaster_filter_f_name", "f_name"),
)

mail_queue = Table(
    "mail_queue",
    metadata,
    _id(BigInteger()),
    _opt("insert_fingerprint", varchar(64)),
    _opt("article_id", BigInteger()),
    _req("attempts", Integer()),
    _opt("sender", varchar(200)),
    _req("recipient", varchar(1800000)),
    _req("raw_message", longblob()),
    _opt("due_time", date()),
    _opt("last_smtp_code", Integer()),
    _opt("last_smtp_message", varchar(1800000)),
    _req("create_time", date()),
    _fk("mail_queue", "article_id", "article"),
    Index("mail_queue_attempts", "attempts"),
    UniqueConstraint("article_id", name="mail_queue_article_id"),
    UniqueConstraint("insert_fingerprint", name="mail_queue_insert_fingerprint"),
)

# --- dynamic fields, links, system data -----------------------------------------------------

dynamic_field = Table(
    "dynamic_field",
    metadata,
    _id(Integer()),
    _req("internal_field", SmallInteger(), server_default="0"),
    _req("name", varchar(200)),
    _req("label", varchar(200)),
    _req("field_order", Integer()),
    _req("field_type", varchar(200)),
    _req("object_type", varchar(100)),
    _opt("config", longblob()),
    _req("valid_id", SmallInteger()),
    *_audit(),
    UniqueConstraint("name", name="dynamic_field_name"),
    _fk("dynamic_field", "valid_id", "valid"),
    *_by_users("dynamic_field"),
)

dynamic_field_value = Table(
    "dynamic_field_value",
    metadata,
    _id(Integer()),
    _req("field_id", Integer()),
    _req("object_id", BigInteger()),
    _opt("value_text", varchar(3800)),
    _opt("value_date", date()),
    _opt("value_int", BigInteger()),
    # Znuny indexes the first 150 characters of value_text (a TEXT column on MySQL).
    Index(
        "dynamic_field_value_search_text",
        "field_id",
        "value_text",
        mysql_length={"value_text": 150},
    ),
    Index("dynamic_field_value_search_date", "field_id", "value_date"),
    Index("dynamic_field_value_search_int", "field_id", "value_int"),
    Index("dynamic_field_value_field_values", "object_id", "field_id"),
    _fk("dynamic_field_value", "field_id", "dynamic_field"),
)

link_type = _lookup("link_type", comments=False, name_size=50)
link_state = _lookup("link_state", comments=False, name_size=50)

# No audit columns; Znuny creates its rows on first use (the 'Ticket' id is looked up by name).
link_object = Table(
    "link_object",
    metadata,
    _id(small_id()),
    _req("name", varchar(100)),
    UniqueConstraint("name", name="link_object_name"),
)

# No id; the unique key leaves state_id out.
link_relation = Table(
    "link_relation",
    metadata,
    _req("source_object_id", SmallInteger()),
    _req("source_key", varchar(50)),
    _req("target_object_id", SmallInteger()),
    _req("target_key", varchar(50)),
    _req("type_id", SmallInteger()),
    _req("state_id", SmallInteger()),
    *_audit(change=False),
    UniqueConstraint(
        "source_object_id",
        "source_key",
        "target_object_id",
        "target_key",
        "type_id",
        name="link_relation_view",
    ),
    Index("link_relation_list_source", "source_object_id", "source_key", "state_id"),
    Index("link_relation_list_target", "target_object_id", "target_key", "state_id"),
    _fk("link_relation", "source_object_id", "link_object"),
    _fk("link_relation", "target_object_id", "link_object"),
    _fk("link_relation", "type_id", "link_type"),
    _fk("link_relation", "state_id", "link_state"),
    *_by_users("link_relation", change=False),
)

system_data = Table(
    "system_data",
    metadata,
    Column("data_key", varchar(160), primary_key=True, nullable=False),
    _opt("data_value", longblob()),
    *_audit(),
    *_by_users("system_data"),
)


# --- building it ------------------------------------------------------------------------------


async def create_tables(conn: AsyncConnection) -> None:
    """Znuny's `schema` step: every table with its keys and indexes, no foreign keys yet."""
    # In the order written here: without foreign keys there is nothing to sort (and Znuny's
    # keys form cycles, which SQLAlchemy's sort would warn about).
    for table in metadata.tables.values():
        await conn.execute(CreateTable(table, include_foreign_key_constraints=[]))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            await conn.execute(CreateIndex(index))


async def add_foreign_keys(conn: AsyncConnection) -> None:
    """Znuny's `schema-post` step: the foreign keys, once the initial rows are in."""
    for table in metadata.tables.values():
        for key in sorted(table.foreign_key_constraints, key=lambda k: str(k.name)):
            await conn.execute(AddConstraint(key))
