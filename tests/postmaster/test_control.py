"""Control header names: canonical spelling, X-OTRS aliases, stripping for untrusted sources."""

from __future__ import annotations

import pytest

from pytrs.postmaster.control import (
    CONTROL_HEADERS,
    FIXED_VALUES,
    KEEP_STATE,
    VALUE_KINDS,
    canonical,
    strip_untrusted,
)
from pytrs.schema.names_repo import KINDS

REQUIRED = [
    "Ignore",
    "Queue",
    "Priority",
    "State",
    "Title",
    "CustomerUser",
    "CustomerNo",
    "Owner",
    "SenderType",
    "IsVisibleForCustomer",
    "Loop",
    "FollowUp-State",
    "FollowUp-Priority",
    "FollowUp-Queue",
    "FollowUp-Owner",
    "FollowUp-Title",
    "FollowUp-SenderType",
    "FollowUp-IsVisibleForCustomer",
    "FollowUp-State-Keep",
]


@pytest.mark.parametrize("suffix", REQUIRED)
def test_required_headers_are_canonical_under_both_prefixes(suffix: str) -> None:
    name = "X-PyTRS-" + suffix
    assert name in CONTROL_HEADERS
    assert canonical(name) == name
    assert canonical("X-OTRS-" + suffix) == name
    assert canonical(("x-otrs-" + suffix).lower()) == name
    assert canonical(("X-PYTRS-" + suffix).upper()) == name


def test_keep_state_header() -> None:
    assert KEEP_STATE == "X-PyTRS-FollowUp-State-Keep"
    assert canonical("X-OTRS-FollowUp-State-Keep") == KEEP_STATE


def test_dynamic_fields_keep_the_field_name() -> None:
    assert canonical("x-otrs-dynamicfield-Contract") == "X-PyTRS-DynamicField-Contract"
    assert canonical("X-OTRS-FOLLOWUP-DYNAMICFIELD-Ref1") == "X-PyTRS-FollowUp-DynamicField-Ref1"
    assert canonical("X-OTRS-DynamicField-") is None
    assert canonical("X-OTRS-DynamicField-a b") is None


@pytest.mark.parametrize(
    "name", ["Subject", "X-PyTRS-Nonsense", "X-OTRS-", "X-Priority", "X-OTRSQueue", ""]
)
def test_not_control_headers(name: str) -> None:
    assert canonical(name) is None


def test_strip_untrusted_removes_both_prefixes_and_keeps_order() -> None:
    headers = (
        ("From", "a@example.org"),
        ("x-otrs-queue", "Raw"),
        ("Subject", "hello"),
        ("X-PYTRS-Ignore", "yes"),
        ("X-OTRS-Whatever", "unknown but prefixed"),
        ("X-Other", "kept"),
        ("Received", "one"),
        ("Received", "two"),
    )
    kept, removed = strip_untrusted(headers)
    assert kept == (
        ("From", "a@example.org"),
        ("Subject", "hello"),
        ("X-Other", "kept"),
        ("Received", "one"),
        ("Received", "two"),
    )
    assert removed == ("x-otrs-queue", "X-PYTRS-Ignore", "X-OTRS-Whatever")


def test_strip_untrusted_without_control_headers_is_identity() -> None:
    headers = [("From", "a@example.org"), ("Subject", "X-OTRS-Queue: in a value")]
    assert strip_untrusted(headers) == (tuple(headers), ())


def test_every_kind_of_value_has_its_names() -> None:
    """Each kind a control header takes is either fixed here or read from the database."""
    for kind in VALUE_KINDS.values():
        assert kind in FIXED_VALUES or kind in KINDS, kind
