"""The routing trace of a mail (pure): what routing decided and why, what the parser
recognised, which filter rules fired and which control headers were in force.

Stored as JSON on the inbox row by `apply`; `responders.answers` adds what was sent.
"""

from __future__ import annotations

from typing import Any

from pytrs.parsers import ParsedMail
from pytrs.postmaster.batch import Planned
from pytrs.routing.decision import Action


def trace(plan: Planned, notes: list[str]) -> dict[str, Any]:
    d = plan.decision
    trace: dict[str, Any] = {
        "action": d.action.value,
        "queue": d.queue,
        "ticket": plan.tn or (d.ticket.tn if d.ticket else ""),
        "followup_via": d.followup_via,
        "reopen": d.reopen,
        "reasons": [*d.reasons, *notes],
        "warnings": list(plan.mail.warnings),
        "classification": classification(plan.mail),
        "rules": [
            {"rule": hit.rule, "matched": [list(m) for m in hit.matched]} for hit in plan.rule_hits
        ],
        "control": plan.control,
    }
    if d.action is Action.NEW_TICKET and d.ticket is not None:
        trace["linked_ticket"] = d.ticket.tn
    if d.internal:
        trace["review"] = True
    if d.own_address:
        trace["own_address"] = d.own_address  # claimed by mail from outside
    if d.new_state:
        trace["new_state"] = d.new_state
    if d.external is not None:
        trace["external_number"] = {"rule": d.external.rule, "value": d.external.value}
    return trace


def classification(mail: ParsedMail) -> dict[str, Any]:
    """What the parser recognised, for the trace (responders act on the same flags)."""
    found: dict[str, Any] = {
        name: True
        for name in ("is_auto_reply", "is_out_of_office", "is_list", "loop")
        if getattr(mail, name)
    }
    if mail.bounce is not None:
        b = mail.bounce
        found["bounce"] = {
            "recipient": b.recipient, "status": b.status, "permanent": b.permanent,
            "original_message_id": b.original_message_id, "format": b.format,
        }  # fmt: skip
    return found
