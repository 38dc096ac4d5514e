"""External ticket numbers: other ticket systems' numbers found in their mail (pure).

Znuny's ExternalTicketNumberRecognition, as data: each configured rule names an RE2 pattern
whose first group is the other system's number, where to look (subject, body), and the ticket
dynamic field that stores it. The planner runs `recognise` on every mail; the worker looks the
found numbers up (`Known.by_external`) and routing makes the mail a follow-up of the ticket that
stores the number, or stores the number on the new ticket (REFERENCE §3, §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

# Patterns see at most this much of a body (numbers are quoted near the top).
_MAX_TEXT = 256 * 1024


@dataclass(frozen=True, slots=True)
class ExternalNumber:
    """A number one rule recognised: the rule's name, its dynamic field and the value."""

    rule: str
    field: str
    value: str
    sender_type: str
    visible_for_customer: bool
    state_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExternalRule:
    name: str
    number: Any  # compiled RE2 pattern; group 1 is the number
    field: str
    from_address: Any | None
    search_subject: bool
    search_body: bool
    state_types: tuple[str, ...]
    sender_type: str
    visible_for_customer: bool

    @classmethod
    def compile(cls, config: Any) -> ExternalRule:
        """From an `ExternalTicketNumberConfig`; its patterns were validated when loaded."""
        options = re2.Options()
        options.case_sensitive = False
        return cls(
            config.name, re2.compile(config.number_pattern, options), config.dynamic_field,
            re2.compile(config.from_address_pattern, options)
            if config.from_address_pattern else None,
            config.search_subject, config.search_body, tuple(config.state_types),
            config.sender_type, config.visible_for_customer,
        )  # fmt: skip

    def find(self, sender: str, subject: str, body: str) -> ExternalNumber | None:
        """The first number this rule sees in the subject, then the body (Znuny's order)."""
        if self.from_address is not None and not self.from_address.search(sender):
            return None
        texts = (subject if self.search_subject else "", body if self.search_body else "")
        for text in texts:
            found = self.number.search(text[:_MAX_TEXT]) if text else None
            if found is not None and found.group(1):
                return ExternalNumber(
                    self.name, self.field, found.group(1), self.sender_type,
                    self.visible_for_customer, self.state_types,
                )  # fmt: skip
        return None


def recognise(
    rules: Sequence[ExternalRule], sender: str, subject: str, body: str
) -> tuple[ExternalNumber, ...]:
    """Every rule's find, in configuration order (the first known one wins in routing)."""
    found = (rule.find(sender, subject, body) for rule in rules)
    return tuple(number for number in found if number is not None)
