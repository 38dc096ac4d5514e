"""`routing.decide` as a pure function: Znuny's follow-up checks and options (REFERENCE §4, §5),
the follow-up state rules (keep-state, explicit state, new stays new), bounces, external numbers,
sender-bound follow-ups and copies of one mail."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrs.routing.decision import Action, Policy, RoutingInput, decide
from pytrs.routing.external import ExternalNumber
from pytrs.routing.ticket_number import make_generator
from pytrs.vocabulary.known import Known, SameMail, TicketRef, fingerprint
from pytrs.vocabulary.znuny import STATE_IDS

NUMBERS = make_generator("DateChecksum", "10", "Ticket#", True, 5)
TN = "2002062310100011"
OPEN = TicketRef(7, TN, "Support", "open", "open", "possible")
POLICY = Policy({"support@example.com": "Support", "sales@example.com": "Sales"}, "Raw",
                frozenset(STATE_IDS))  # fmt: skip


def _item(**kw: Any) -> RoutingInput:
    defaults: dict[str, Any] = {
        "subject": f"Re: [Ticket#{TN}] printer", "message_id": "<m@x>", "references": (),
        "recipients": ("support@example.com",), "sender": "alice@customer.example",
    }  # fmt: skip
    return RoutingInput(**{**defaults, **kw})


def _known(ticket: TicketRef = OPEN, participants: frozenset[str] | None = None) -> Known:
    known = Known(by_tn={TN: ticket})
    known.participants[ticket.id] = (
        frozenset({"alice@customer.example"}) if participants is None else participants
    )
    return known


@pytest.mark.parametrize(
    ("state", "state_type", "option", "action", "new_state"),
    [
        ("new", "new", "reject", Action.FOLLOW_UP, ""),  # new stays new
        ("open", "open", "reject", Action.FOLLOW_UP, ""),
        ("pending reminder", "pending reminder", "reject", Action.FOLLOW_UP, "open"),
        ("closed successful", "closed", "possible", Action.FOLLOW_UP, "open"),
        ("closed successful", "closed", "reject", Action.REJECT, ""),
        ("removed", "removed", "reject", Action.REJECT, ""),
        ("closed successful", "closed", "new_ticket", Action.NEW_TICKET, ""),
    ],
)
def test_follow_up_options(
    state: str, state_type: str, option: str, action: Action, new_state: str
) -> None:
    ticket = replace(OPEN, state=state, state_type=state_type, follow_up=option)
    decision = decide(_item(), NUMBERS, _known(ticket), POLICY)
    assert (decision.action, decision.new_state) == (action, new_state)
    assert decision.followup_via == "subject"
    if action is Action.NEW_TICKET:
        assert decision.ticket == ticket and decision.queue == "Support"
        assert not decision.stranger  # opened because the ticket is closed


def test_keep_state_and_explicit_state() -> None:
    pending = replace(OPEN, state="pending reminder", state_type="pending reminder")
    keep = _item(control={"X-PyTRS-FollowUp-State-Keep": "yes"})
    assert decide(keep, NUMBERS, _known(pending), POLICY).new_state == ""
    # An explicit state applies even to a new ticket; an unknown one is ignored.
    new = replace(OPEN, state="new", state_type="new")
    explicit = _item(control={"X-PyTRS-FollowUp-State": "closed successful"})
    assert decide(explicit, NUMBERS, _known(new), POLICY).new_state == "closed successful"
    bogus = _item(control={"X-PyTRS-FollowUp-State": "on fire"})
    decision = decide(bogus, NUMBERS, _known(pending), POLICY)
    assert decision.new_state == "open"
    assert any("no known state" in r for r in decision.reasons)


def test_followup_state_for_closed_tickets_is_configurable() -> None:
    closed = replace(OPEN, state="closed successful", state_type="closed")
    policy = replace(POLICY, followup_state_closed="pending reminder")
    assert decide(_item(), NUMBERS, _known(closed), policy).new_state == "pending reminder"


def test_follow_up_lock_needs_lock_option_closed_ticket_and_an_owner() -> None:
    closed = replace(
        OPEN, state="closed successful", state_type="closed", follow_up_lock=True, owner_id=5
    )
    assert decide(_item(), NUMBERS, _known(closed), POLICY).lock
    assert not decide(_item(), NUMBERS, _known(replace(closed, owner_id=1)), POLICY).lock
    assert not decide(_item(), NUMBERS, _known(replace(closed, follow_up_lock=False)), POLICY).lock
    assert not decide(_item(), NUMBERS, _known(replace(OPEN, follow_up_lock=True, owner_id=5)),
                      POLICY).lock  # fmt: skip


def test_check_order_subject_then_references_then_bounce_then_body() -> None:
    other = replace(OPEN, id=8, tn="2002062310100022")
    known = _known()
    known.by_message_id["<ref@x>"] = other
    known.by_message_id["<sent@us>"] = other
    by_ref = _item(subject="Re: printer", references=("<ref@x>",))
    assert decide(by_ref, NUMBERS, known, POLICY).followup_via == "references"
    both = _item(references=("<ref@x>",))
    assert decide(both, NUMBERS, known, POLICY).ticket == OPEN  # the subject wins
    bounce = _item(subject="Undelivered", bounced_message_id="<sent@us>", body_number=TN)
    assert decide(bounce, NUMBERS, known, POLICY).followup_via == "bounce"
    body = _item(subject="question", body_number=TN)
    assert decide(body, NUMBERS, known, POLICY).followup_via == "body"
    attachment = _item(subject="question", attachment_number=TN)
    assert decide(attachment, NUMBERS, known, POLICY).followup_via == "attachment"


def test_bounce_to_a_closed_rejecting_ticket_is_still_a_follow_up() -> None:
    closed = replace(OPEN, state="closed successful", state_type="closed", follow_up="reject")
    known = Known(by_message_id={"<sent@us>": closed})
    bounce = _item(subject="Undelivered", bounced_message_id="<sent@us>")
    assert decide(bounce, NUMBERS, known, POLICY).action is Action.FOLLOW_UP
    strict = replace(POLICY, bounce_as_followup=False)
    assert decide(bounce, NUMBERS, known, strict).action is Action.REJECT


def test_external_numbers_respect_state_types() -> None:
    number = ExternalNumber("vendor", "Vendor", "123456", "system", False, ("open",))
    known = Known(by_external={("Vendor", "123456"): OPEN})
    item = _item(subject="Incident 123456", external=(number,))
    found = decide(item, NUMBERS, known, POLICY)
    assert (found.action, found.followup_via, found.external) == (
        Action.FOLLOW_UP, "external", number,
    )  # fmt: skip
    known.by_external[("Vendor", "123456")] = replace(OPEN, state="closed successful",
                                                      state_type="closed")  # fmt: skip
    fresh = decide(item, NUMBERS, known, POLICY)
    assert fresh.action is Action.NEW_TICKET and fresh.external == number  # stored on it


def test_sender_bound_follow_ups() -> None:
    stranger = _item(sender="mallory@evil.example")
    decision = decide(stranger, NUMBERS, _known(), POLICY)
    assert decision.action is Action.NEW_TICKET and decision.ticket == OPEN and decision.stranger
    internal = decide(
        stranger, NUMBERS, _known(), replace(POLICY, unknown_sender_followup="internal")
    )
    assert (internal.action, internal.internal, internal.new_state) == (Action.FOLLOW_UP, True, "")
    # References to one of the ticket's messages make the stranger a correspondent.
    known = _known()
    known.by_message_id["<first@x>"] = OPEN
    quoting = replace(stranger, references=("<first@x>",))
    assert decide(quoting, NUMBERS, known, POLICY).action is Action.FOLLOW_UP


@pytest.mark.parametrize("own", ["support@example.com", "support+x@example.com"])
def test_our_own_addresses_are_never_participants(own: str) -> None:
    # Our address is on the To of every customer article, so it is among the correspondents.
    known = _known(participants=frozenset({"alice@customer.example", "support@example.com"}))
    decision = decide(_item(sender=own), NUMBERS, known, POLICY)
    assert decision.action is Action.NEW_TICKET and decision.stranger
    assert decision.own_address == own
    assert "one of our own addresses" in decision.reasons[0]
    # Also on mail that is no follow-up at all.
    fresh = decide(_item(sender=own, subject="hello"), NUMBERS, known, POLICY)
    assert fresh.own_address == own


def test_every_from_address_must_be_a_participant() -> None:
    both = _item(senders=("mallory@evil.example", "alice@customer.example"))
    decision = decide(both, NUMBERS, _known(), POLICY)
    assert decision.action is Action.NEW_TICKET and decision.stranger
    assert any(r.startswith("mallory@evil.example is neither") for r in decision.reasons)
    known = _known(participants=frozenset({"alice@customer.example", "bob@customer.example"}))
    pair = replace(both, senders=("bob@customer.example", "alice@customer.example"))
    assert decide(pair, NUMBERS, known, POLICY).action is Action.FOLLOW_UP


def test_same_mail_same_queue_is_a_duplicate_other_queue_per_policy() -> None:
    item = _item(subject="new question", dedup_key="k", fingerprint="f")
    known = Known()
    known.same_mail[("k", "f")] = SameMail(replace(OPEN, id=-3, tn=""), 3)
    assert decide(item, NUMBERS, known, POLICY).action is Action.DUPLICATE
    sales = replace(item, recipients=("sales@example.com",))
    assert decide(sales, NUMBERS, known, POLICY).action is Action.NEW_TICKET
    once = replace(POLICY, same_mail_other_queue="same_ticket")
    assert decide(sales, NUMBERS, known, once).action is Action.DUPLICATE
    other_content = replace(item, fingerprint="g")
    assert decide(other_content, NUMBERS, known, POLICY).action is Action.NEW_TICKET


def test_queue_choice_order() -> None:
    item = _item(subject="hi", recipients=("nobody@x", "sales@example.com", "support@example.com"))
    assert decide(item, NUMBERS, Known(), POLICY).queue == "Sales"
    assert decide(replace(item, queue_override="Junk"), NUMBERS, Known(), POLICY).queue == "Junk"
    assert decide(replace(item, recipients=()), NUMBERS, Known(), POLICY).queue == "Raw"


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(_TEXT, _TEXT, _TEXT, _TEXT, st.sampled_from([" ", "  ", "\t", "\r\n "]))
def test_fingerprint_ignores_folding_whitespace(
    from_: str, to: str, cc: str, subject: str, gap: str
) -> None:
    folded = [value.replace(" ", gap) for value in (from_, to, cc, subject)]
    assert fingerprint(from_, to, cc, subject) == fingerprint(*folded)


@given(_TEXT.filter(lambda s: s.strip() != ""), _TEXT)
def test_fingerprint_tells_subjects_apart(subject: str, other: str) -> None:
    if " ".join(subject.split()) != " ".join(other.split()):
        assert fingerprint("a", "b", "", subject) != fingerprint("a", "b", "", other)
