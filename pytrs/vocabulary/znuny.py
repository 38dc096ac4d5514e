"""Znuny's fixed ids and names, and its lookup rows as shipped (written by the first migration).

Ids are fixed because Znuny admins and scripts know them (state 1 is `new`, priority 3 is
`3 normal`, sender type 3 is `customer` …) and because pytrs refers to them by constant.
"""

from __future__ import annotations

from typing import Any

VALID = [(1, "valid"), (2, "invalid"), (3, "invalid-temporarily")]

STATE_TYPES = [
    (1, "new"),
    (2, "open"),
    (3, "closed"),
    (4, "pending reminder"),
    (5, "pending auto"),
    (6, "removed"),
    (7, "merged"),
]

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

PRIORITIES = [(1, "1 very low"), (2, "2 low"), (3, "3 normal"), (4, "4 high"), (5, "5 very high")]
LOCK_TYPES = [(1, "unlock"), (2, "lock"), (3, "tmp_lock")]
TICKET_TYPES = [(1, "Unclassified")]
FOLLOW_UP_POSSIBLE = [(1, "possible"), (2, "reject"), (3, "new ticket")]
SENDER_TYPES = [(1, "agent"), (2, "system"), (3, "customer")]

# (id, name, module, package)
CHANNELS = [
    (1, "Email", "Kernel::System::CommunicationChannel::Email", "Framework"),
    (2, "Phone", "Kernel::System::CommunicationChannel::Phone", "Framework"),
    (3, "Internal", "Kernel::System::CommunicationChannel::Internal", "Framework"),
    (4, "Chat", "Kernel::System::CommunicationChannel::Chat", "Framework"),
]

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
    "EscalationUpdateTimeStop", "TitleUpdate",
]  # fmt: skip

GROUPS = [(1, "users"), (2, "admin"), (3, "stats")]

# The default queues Znuny ships; follow-up option 1 (possible), group `users`.
QUEUES = [(1, "Postmaster"), (2, "Raw"), (3, "Junk"), (4, "Misc")]

PRIORITY_IDS = {name: i for i, name in PRIORITIES}
STATE_IDS = {name: i for i, name, _type in STATES}

# Ids pytrs code refers to.
STATE_NEW, STATE_OPEN = 1, 4
STATE_TYPE_NEW, STATE_TYPE_CLOSED, STATE_TYPE_REMOVED, STATE_TYPE_MERGED = 1, 3, 6, 7
PRIORITY_NORMAL = 3
LOCK_UNLOCK = 1
SENDER_AGENT, SENDER_SYSTEM, SENDER_CUSTOMER = 1, 2, 3
CHANNEL_EMAIL = 1
USER_ROOT = 1
GROUP_USERS = 1
FOLLOW_UP_IDS = {"possible": 1, "reject": 2, "new_ticket": 3}


def history_type_id(name: str) -> int:
    """Fixed id of a seeded history type; raises ValueError for an unknown name."""
    return HISTORY_TYPES.index(name) + 1


def seed_rows(now: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows per table, in insertion order, for a fresh database."""
    audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
    return {
        "valid": [{"id": i, "name": n} for i, n in VALID],
        "ticket_state_type": [{"id": i, "name": n} for i, n in STATE_TYPES],
        "ticket_state": [{"id": i, "name": n, "type_id": t, "valid_id": 1} for i, n, t in STATES],
        "ticket_priority": [{"id": i, "name": n, "valid_id": 1} for i, n in PRIORITIES],
        "ticket_lock_type": [{"id": i, "name": n, "valid_id": 1} for i, n in LOCK_TYPES],
        "ticket_type": [{"id": i, "name": n, "valid_id": 1} for i, n in TICKET_TYPES],
        "follow_up_possible": [
            {"id": i, "name": n, "valid_id": 1} for i, n in FOLLOW_UP_POSSIBLE
        ],
        "article_sender_type": [{"id": i, "name": n, "valid_id": 1} for i, n in SENDER_TYPES],
        "communication_channel": [
            {"id": i, "name": n, "module": m, "package_name": p, "displayable": 1, "valid_id": 1}
            for i, n, m, p in CHANNELS
        ],
        "ticket_history_type": [
            {"id": i, "name": n, "valid_id": 1} for i, n in enumerate(HISTORY_TYPES, start=1)
        ],
        "permission_groups": [{"id": i, "name": n, "valid_id": 1} for i, n in GROUPS],
        "users": [
            {
                "id": USER_ROOT, "login": "root@localhost", "pw": "", "first_name": "Admin",
                "last_name": "pytrs", "valid_id": 1, **audit,
            }
        ],
        "queue": [
            {
                "id": i, "name": n, "group_id": GROUP_USERS, "follow_up_id": 1,
                "follow_up_lock": 0, "valid_id": 1, **audit,
            }
            for i, n in QUEUES
        ],
    }  # fmt: skip


# Written by migration 0005 (issue 6): Znuny's auto-response types under their fixed ids.
# "auto remove" is shipped but unused (REFERENCE §8).
AUTO_RESPONSE_TYPES = [
    (1, "auto reply", "Sent when a mail opens a new ticket."),
    (2, "auto reject", "Sent when a follow-up is rejected (queue follow-up option: reject)."),
    (3, "auto follow up", "Sent when a follow-up was added to a ticket."),
    (4, "auto reply/new ticket", "Sent when a follow-up to a closed ticket opened a new one."),
    (5, "auto remove", "Unused, kept for Znuny compatibility."),
]
AUTO_RESPONSE_TYPE_IDS = {name: i for i, name, _comment in AUTO_RESPONSE_TYPES}


def auto_response_type_rows(now: Any) -> list[dict[str, Any]]:
    """Rows of ``auto_response_type`` for migration 0005."""
    audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
    return [
        {"id": i, "name": n, "comments": c, "valid_id": 1, **audit}
        for i, n, c in AUTO_RESPONSE_TYPES
    ]
