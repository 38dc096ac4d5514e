"""The rows a fresh Znuny 7.0 installation starts with, written into `tests/znuny/schema.py`.

Ids, names and references are the facts of Znuny's ``scripts/database/initial_insert.xml``
(library copy at commit 09cba8b4; that copy already adds 7.1's ``color`` to states and
priorities, which 7.0's schema lacks and which is left out here). Texts (salutation, signature,
auto-response bodies, the welcome article) are our own words around Znuny's ``<OTRS_*>`` tags.

Differences from Znuny's file, on purpose:
- ``user_preferences`` gets a ``UserEmail`` for root@localhost: Znuny seeds none, but pytrs needs
  an agent address and every real installation has one (set in the installer or the admin UI).
- ``link_object`` stays empty, as in Znuny: it creates the row for ``Ticket`` on first use, so
  its id is whatever comes next (`generate.populate` creates it the same way).

Left out: the notification_event* rows (16 agent notifications with their texts), whose tables
pytrs neither reads nor writes.

Znuny's PostgreSQL driver leaves explicit ids out of these inserts and lets the sequences count;
here the ids are written and the sequences moved past them (`sync_sequences`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from . import schema as z

# History types with Znuny's ids; 51 and 52 are in the library's initial_insert.
HISTORY_TYPES = [
    "NewTicket", "FollowUp", "SendAutoReject", "SendAutoReply", "SendAutoFollowUp", "Forward",
    "Bounce", "SendAnswer", "SendAgentNotification", "SendCustomerNotification", "EmailAgent",
    "EmailCustomer", "PhoneCallAgent", "PhoneCallCustomer", "AddNote", "Move", "Lock", "Unlock",
    "Remove", "TimeAccounting", "CustomerUpdate", "PriorityUpdate", "OwnerUpdate",
    "LoopProtection", "Misc", "SetPendingTime", "StateUpdate", "TicketDynamicFieldUpdate",
    "WebRequestCustomer", "TicketLinkAdd", "TicketLinkDelete", "SystemRequest", "Merged",
    "ResponsibleUpdate", "Subscribe", "Unsubscribe", "TypeUpdate", "ServiceUpdate", "SLAUpdate",
    "ArchiveFlagUpdate", "EscalationSolutionTimeStop", "EscalationResponseTimeStart",
    "EscalationUpdateTimeStart", "EscalationSolutionTimeStart",
    "EscalationResponseTimeNotifyBefore", "EscalationUpdateTimeNotifyBefore",
    "EscalationSolutionTimeNotifyBefore", "EscalationResponseTimeStop",
    "EscalationUpdateTimeStop", "TitleUpdate", "EmailResend", "Bulk",
]  # fmt: skip
HISTORY_TYPE_IDS = {name: i for i, name in enumerate(HISTORY_TYPES, start=1)}

STATE_TYPES = ["new", "open", "closed", "pending reminder", "pending auto", "removed", "merged"]
# (id, name, type_id)
STATES = [
    (1, "new", 1),
    (2, "closed successful", 3),
    (3, "closed unsuccessful", 3),
    (4, "open", 2),
    (5, "removed", 6),
    (6, "pending reminder", 4),
    (7, "pending auto close+", 5),
    (8, "pending auto close-", 5),
    (9, "merged", 7),
]
PRIORITIES = ["1 very low", "2 low", "3 normal", "4 high", "5 very high"]
LOCK_TYPES = ["unlock", "lock", "tmp_lock"]
FOLLOW_UP_POSSIBLE = ["possible", "reject", "new ticket"]
SENDER_TYPES = ["agent", "system", "customer"]
CHANNELS = ["Email", "Phone", "Internal", "Chat"]
# timeaccounting_webservice (4) is in the library's initial_insert.
GROUPS = ["users", "admin", "stats", "timeaccounting_webservice"]
QUEUES = ["Postmaster", "Raw", "Junk", "Misc"]
AUTO_RESPONSE_TYPES = [
    "auto reply",
    "auto reject",
    "auto follow up",
    "auto reply/new ticket",
    "auto remove",
]
LINK_TYPES = ["Normal", "ParentChild"]
LINK_STATES = ["Valid", "Temporary"]

ROOT_EMAIL = "root@localhost"
SYSTEM_ADDRESS = "znuny@localhost"
WELCOME_TN = "2021012710123456"

# The data tables each MIME channel keeps its articles in (Znuny's channel_data, YAML).
_MIME_CHANNEL_DATA = (
    "---\nArticleDataArticleIDField: article_id\nArticleDataTables:\n- article_data_mime\n"
    "- article_data_mime_plain\n- article_data_mime_attachment\n- article_data_mime_send_error\n"
)
_CHAT_CHANNEL_DATA = (
    "---\nArticleDataArticleIDField: article_id\nArticleDataTables:\n- article_data_otrs_chat\n"
)

# (id, type_id, name, subject, body): Znuny's default responses, our words, Znuny's tags.
AUTO_RESPONSES = [
    (
        1,
        1,
        "default reply (after new ticket has been created)",
        "RE: <OTRS_CUSTOMER_SUBJECT[24]>",
        "We received your mail and opened a ticket for it.\n\n"
        "Your mail:\n<OTRS_CUSTOMER_EMAIL[6]>\n\nSomeone will answer soon.\n",
    ),
    (
        2,
        2,
        "default reject (after follow-up and rejected of a closed ticket)",
        "Your email has been rejected! (RE: <OTRS_CUSTOMER_SUBJECT[24]>)",
        "The ticket you wrote to is closed and takes no more replies.\n"
        "Please write a new mail instead.\n",
    ),
    (
        3,
        3,
        "default follow-up (after a ticket follow-up has been added)",
        "RE: <OTRS_CUSTOMER_SUBJECT[24]>",
        "Your reply was added to your ticket.\n\nYour mail:\n<OTRS_CUSTOMER_EMAIL[6]>\n",
    ),
    (
        4,
        4,
        "default reject/new ticket created (after closed follow-up with new ticket creation)",
        "New ticket has been created! (RE: <OTRS_CUSTOMER_SUBJECT[24]>)",
        "The ticket you wrote to is closed, so a new one was opened.\n\n"
        "Your mail:\n<OTRS_CUSTOMER_EMAIL[6]>\n",
    ),
]

# (id, internal, name, label, field_type)
DYNAMIC_FIELDS = [
    (1, 1, "ProcessManagementProcessID", "Process", "ProcessID"),
    (2, 1, "ProcessManagementActivityID", "Activity", "ActivityID"),
    (3, 1, "ProcessManagementAttachment", "Attachment", "TextArea"),
    (4, 0, "TicketCalendarStartTime", "Ticket Calendar StartTime", "DateTime"),
    (5, 0, "TicketCalendarEndTime", "Ticket Calendar EndTime", "DateTime"),
]

WELCOME_MAIL = (
    "From: Znuny <hello@znuny.org>\n"
    "To: Your Znuny service desk <znuny@localhost>\n"
    "Subject: Znuny says hi!\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "A first ticket, so that the queue view is not empty.\n"
)


def seed_rows(now: datetime) -> list[tuple[Table, list[dict[str, Any]]]]:
    """Znuny's initial rows, table by table, in an order that satisfies its foreign keys."""
    audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}

    def named(names: list[str], **extra: Any) -> list[dict[str, Any]]:
        return [{"id": i, "name": n, **extra, **audit} for i, n in enumerate(names, start=1)]

    return [
        (z.valid, named(["valid", "invalid", "invalid-temporarily"])),
        (
            z.users,
            [
                {
                    "id": 1,
                    "login": "root@localhost",
                    "pw": "roK20XGbWEsSM",
                    "first_name": "Admin",
                    "last_name": "OTRS",
                    "valid_id": 1,
                    **audit,
                }
            ],
        ),
        (
            z.user_preferences,
            [{"user_id": 1, "preferences_key": "UserEmail", "preferences_value": ROOT_EMAIL}],
        ),
        (z.permission_groups, named(GROUPS, valid_id=1)),
        (
            z.group_user,
            [{"user_id": 1, "group_id": g, "permission_key": "rw", **audit} for g in (1, 2, 3)],
        ),
        (z.link_type, named(LINK_TYPES, valid_id=1)),
        (z.link_state, named(LINK_STATES, valid_id=1)),
        (z.ticket_state_type, named(STATE_TYPES)),
        (
            z.ticket_state,
            [{"id": i, "name": n, "type_id": t, "valid_id": 1, **audit} for i, n, t in STATES],
        ),
        (
            z.salutation,
            [
                {
                    "id": 1,
                    "name": "system standard salutation (en)",
                    "text": "Dear <OTRS_CUSTOMER_REALNAME>,\n\nthank you for writing.\n\n",
                    "content_type": "text/plain; charset=utf-8",
                    "comments": "Standard Salutation.",
                    "valid_id": 1,
                    **audit,
                }
            ],
        ),
        (
            z.signature,
            [
                {
                    "id": 1,
                    "name": "system standard signature (en)",
                    "text": "\nYour support team\n\n"
                    " <OTRS_Agent_UserFirstname> <OTRS_Agent_UserLastname>\n",
                    "content_type": "text/plain; charset=utf-8",
                    "comments": "Standard Signature.",
                    "valid_id": 1,
                    **audit,
                }
            ],
        ),
        (
            z.system_address,
            [
                {
                    "id": 1,
                    "value0": SYSTEM_ADDRESS,
                    "value1": "Znuny System",
                    "comments": "Standard Address.",
                    "valid_id": 1,
                    "queue_id": 1,
                    **audit,
                }
            ],
        ),
        (z.follow_up_possible, named(FOLLOW_UP_POSSIBLE, valid_id=1)),
        (
            z.queue,
            named(
                QUEUES,
                group_id=1,
                system_address_id=1,
                salutation_id=1,
                signature_id=1,
                follow_up_id=1,
                follow_up_lock=0,
                unlock_timeout=0,
                valid_id=1,
            ),
        ),
        (
            z.standard_template,
            [
                {
                    "id": 1,
                    "name": "empty answer",
                    "text": "",
                    "content_type": "text/plain; charset=utf-8",
                    "template_type": "Answer",
                    "valid_id": 1,
                    **audit,
                },
                {
                    "id": 2,
                    "name": "test answer",
                    "text": "An example of an answer template.",
                    "content_type": "text/plain; charset=utf-8",
                    "template_type": "Answer",
                    "valid_id": 1,
                    **audit,
                },
            ],
        ),
        (
            z.queue_standard_template,
            [{"queue_id": q, "standard_template_id": 1, **audit} for q in (1, 2, 3, 4)],
        ),
        (z.auto_response_type, named(AUTO_RESPONSE_TYPES, valid_id=1)),
        (
            z.auto_response,
            [
                {
                    "id": i,
                    "type_id": t,
                    "system_address_id": 1,
                    "name": name,
                    "text0": body,
                    "text1": subject,
                    "content_type": "text/plain",
                    "comments": "",
                    "valid_id": 1,
                    **audit,
                }
                for i, t, name, subject, body in AUTO_RESPONSES
            ],
        ),
        (z.ticket_type, named(["Unclassified"], valid_id=1)),
        (z.ticket_priority, named(PRIORITIES, valid_id=1)),
        (z.ticket_lock_type, named(LOCK_TYPES, valid_id=1)),
        (z.ticket_history_type, named(HISTORY_TYPES, valid_id=1)),
        (z.article_sender_type, named(SENDER_TYPES, valid_id=1)),
        (
            z.communication_channel,
            [
                {
                    "id": i,
                    "name": n,
                    "package_name": "Framework",
                    "valid_id": 1,
                    "module": f"Kernel::System::CommunicationChannel::{n}",
                    "channel_data": _CHAT_CHANNEL_DATA if n == "Chat" else _MIME_CHANNEL_DATA,
                    **audit,
                }
                for i, n in enumerate(CHANNELS, start=1)
            ],
        ),
        (
            z.dynamic_field,
            [
                {
                    "id": i,
                    "internal_field": internal,
                    "name": name,
                    "label": label,
                    "field_order": 1,
                    "field_type": field_type,
                    "object_type": "Ticket",
                    "config": "---\nDefaultValue: ''\n",
                    "valid_id": 1,
                    **audit,
                }
                for i, internal, name, label, field_type in DYNAMIC_FIELDS
            ],
        ),
    ]


def welcome_ticket_rows(now: datetime, dialect: str) -> list[tuple[Table, list[dict[str, Any]]]]:
    """Znuny's first ticket (id 1, queue Raw) with its article, as initial_insert writes it.

    Znuny inserts this article's raw mail as plain text even on PostgreSQL (not base64, unlike
    everything Znuny itself stores later): an importer has to cope with both."""
    audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
    body: Any = WELCOME_MAIL.encode() if dialect != "postgresql" else WELCOME_MAIL
    return [
        (
            z.ticket,
            [
                {
                    "id": 1,
                    "tn": WELCOME_TN,
                    "queue_id": 2,
                    "ticket_lock_id": 1,
                    "user_id": 1,
                    "responsible_user_id": 1,
                    "ticket_priority_id": 3,
                    "ticket_state_id": 1,
                    "title": "Znuny says hi!",
                    "timeout": 0,
                    "until_time": 0,
                    "escalation_time": 0,
                    "escalation_response_time": 0,
                    "escalation_update_time": 0,
                    "escalation_solution_time": 0,
                    **audit,
                }
            ],
        ),
        (
            z.article,
            [
                {
                    "id": 1,
                    "ticket_id": 1,
                    "communication_channel_id": 1,
                    "article_sender_type_id": 3,
                    "is_visible_for_customer": 1,
                    **audit,
                }
            ],
        ),
        (
            z.article_data_mime,
            [
                {
                    "id": 1,
                    "article_id": 1,
                    "a_from": "Znuny <hello@znuny.org>",
                    "a_to": "Your Znuny service desk <znuny@localhost>",
                    "a_subject": "Znuny says hi!",
                    "a_body": WELCOME_MAIL.split("\n\n", 1)[1],
                    "a_message_id": "<007@localhost>",
                    "incoming_time": 1611745200,
                    "content_path": "2021/01/27",
                    **audit,
                }
            ],
        ),
        (z.article_data_mime_plain, [{"id": 1, "article_id": 1, "body": body, **audit}]),
        (
            z.ticket_history,
            [
                {
                    "id": 1,
                    "name": f"New Ticket [{WELCOME_TN}] created.",
                    "history_type_id": 1,
                    "ticket_id": 1,
                    "type_id": 1,
                    "article_id": 1,
                    "priority_id": 3,
                    "owner_id": 1,
                    "state_id": 1,
                    "queue_id": 2,
                    **audit,
                }
            ],
        ),
    ]


async def insert_seed(conn: AsyncConnection, now: datetime) -> None:
    """Write Znuny's initial rows (before its foreign keys exist, as Znuny's installer does)."""
    dialect = conn.dialect.name
    for table, rows in seed_rows(now) + welcome_ticket_rows(now, dialect):
        await conn.execute(insert(table), rows)
    await sync_sequences(conn)


async def sync_sequences(conn: AsyncConnection) -> None:
    """Move PostgreSQL's id sequences past ids written explicitly (MySQL's AUTO_INCREMENT
    follows by itself), so the next row Znuny or pytrs inserts gets a fresh id."""
    if conn.dialect.name != "postgresql":
        return
    for table in z.metadata.tables.values():
        if "id" not in table.c or not table.c.id.autoincrement:
            continue
        top = (await conn.execute(select(func.max(table.c.id)))).scalar() or 0
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :next, false)"),
            {"table": table.name, "next": top + 1},
        )
