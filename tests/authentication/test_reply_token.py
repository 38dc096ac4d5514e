"""Reply tokens: the codec, what they bind, where they travel, and reading them back from mail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrs.authentication.reply_token import (
    MAX_LOCAL_PART,
    MAX_TOKENS,
    TOKEN_LENGTH,
    ReplyTokens,
    TokenCheck,
    check_reply_token,
    find_reply_tokens,
    make_reply_token,
    notification_message_id,
    reply_address,
    token_expiry,
)

SECRET = b"0123456789abcdef-reply-secret"
OTHER_SECRET = b"fedcba9876543210-other-secret"
TN = "2026060110000017"
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=14)


def token(tn: str = TN, login: str = "jdoe", secret: bytes = SECRET) -> str:
    return make_reply_token(secret, tn, login, EXPIRES)


def test_round_trip() -> None:
    value = token()
    assert re.fullmatch(f"[a-z2-7]{{{TOKEN_LENGTH}}}", value)
    assert check_reply_token(SECRET, value, TN, "jdoe", NOW) is TokenCheck.VALID
    # Upper case, as some MTAs and clients write addresses, is the same token.
    assert check_reply_token(SECRET, value.upper(), TN, "jdoe", NOW) is TokenCheck.VALID


def test_expiry_is_rounded_up_to_the_hour_and_enforced() -> None:
    value = token()
    expiry = token_expiry(value)
    assert expiry is not None and EXPIRES <= expiry < EXPIRES + timedelta(hours=1)
    just_before = expiry - timedelta(seconds=1)
    assert check_reply_token(SECRET, value, TN, "jdoe", just_before) is TokenCheck.VALID
    assert check_reply_token(SECRET, value, TN, "jdoe", expiry) is TokenCheck.EXPIRED


@pytest.mark.parametrize(
    ("tn", "login", "secrets"),
    [
        ("2026060110000025", "jdoe", SECRET),  # another ticket
        (TN, "jdoe2", SECRET),  # another agent
        (TN, "JDoe", SECRET),  # logins are compared exactly
        (TN + "0", "jdoe", SECRET),
        (TN, "jdoe", OTHER_SECRET),  # another installation's key
        (TN, "jdoe", b"short"),  # a key too short to count
    ],
)
def test_binds_ticket_agent_and_key(tn: str, login: str, secrets: bytes) -> None:
    assert check_reply_token(secrets, token(), tn, login, NOW) is TokenCheck.MISMATCH


def test_no_two_pairs_share_a_mac() -> None:
    # The ticket number and login are length-prefixed, so shifting characters across the
    # boundary gives another MAC.
    shifted = token("12", "3jdoe")
    assert check_reply_token(SECRET, shifted, "123", "jdoe", NOW) is TokenCheck.MISMATCH


def test_key_rotation_accepts_old_and_new() -> None:
    value = token(secret=OTHER_SECRET)
    assert check_reply_token([SECRET, OTHER_SECRET], value, TN, "jdoe", NOW) is TokenCheck.VALID


def test_every_changed_character_is_refused() -> None:
    value = token()
    for i in range(TOKEN_LENGTH):
        for replacement in "a7":
            if value[i] == replacement:
                continue
            changed = value[:i] + replacement + value[i + 1 :]
            assert check_reply_token(SECRET, changed, TN, "jdoe", NOW) is not TokenCheck.VALID


@pytest.mark.parametrize("value", ["", "abc", "a" * 25, "a" * 27, "1" * 26, "é" * 26, "+" * 26])
def test_malformed(value: str) -> None:
    assert check_reply_token(SECRET, value, TN, "jdoe", NOW) is TokenCheck.MALFORMED
    assert token_expiry(value) is None


def test_non_canonical_spelling_is_malformed() -> None:
    # 26 characters carry 130 bits for 128: the last one's two low bits must be zero, else
    # one token would have four spellings.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    value = token()
    last = alphabet.index(value[-1])
    assert last & 3 == 0
    changed = value[:-1] + alphabet[last | 1]
    assert check_reply_token(SECRET, changed, TN, "jdoe", NOW) is TokenCheck.MALFORMED


def test_make_refuses_a_short_key_and_an_absurd_expiry() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        make_reply_token(b"short", TN, "jdoe", EXPIRES)
    with pytest.raises(ValueError, match="expiry out of range"):
        make_reply_token(SECRET, TN, "jdoe", datetime(1960, 1, 1, tzinfo=UTC))


def test_reply_address_fits_in_a_local_part() -> None:
    value = token()
    address = reply_address("support@example.com", value)
    assert address == f"support+r{value}@example.com"
    local = address.rpartition("@")[0]
    assert len(local) <= MAX_LOCAL_PART
    longest = "s" * (MAX_LOCAL_PART - TOKEN_LENGTH - 2)
    assert reply_address(f"{longest}@example.com", value).startswith(longest + "+r")
    with pytest.raises(ValueError, match="more than 64"):
        reply_address(f"{longest}x@example.com", value)
    with pytest.raises(ValueError, match="not an address"):
        reply_address("support", value)
    with pytest.raises(ValueError, match="not a reply token"):
        reply_address("support@example.com", "nope")


def test_notification_message_id() -> None:
    value = token()
    first = notification_message_id(value, "Example.COM")
    assert re.fullmatch(rf"<pytrs\.{value}\.[0-9a-f]{{16}}@example\.com>", first)
    assert notification_message_id(value, "example.com") != first
    with pytest.raises(ValueError, match="not a domain"):
        notification_message_id(value, "")


def test_tokens_are_found_in_recipients_and_references() -> None:
    one, two, three = token(), token(login="ann"), token(tn="1")
    addresses = [
        f"support+r{one}@example.com",
        f'"Support" <SUPPORT+R{one.upper()}@example.com>, ann@example.org',
        "support+comment@example.com",
    ]
    ids = [f"<pytrs.{two}.0123456789abcdef@example.com>", f"<a@b> <pytrs.{three}.ff@x.org>"]
    assert find_reply_tokens(addresses, ids) == (one, two, three)
    assert find_reply_tokens([f"support+r{one}x@example.com", f"r{one}@example.com"], []) == ()
    assert find_reply_tokens([], [f"<pytrs.{one}@example.com>"]) == ()


def test_reading_tokens_is_bounded() -> None:
    many = [f"s+r{token(tn=str(i))}@example.com" for i in range(MAX_TOKENS + 5)]
    assert len(find_reply_tokens(many, [])) == MAX_TOKENS


def test_reply_tokens_object_makes_tokens_for_its_lifetime() -> None:
    tokens = ReplyTokens(SECRET, timedelta(days=2), "test")
    value = tokens.make(TN, "jdoe", now=NOW)
    assert tokens.check(value, TN, "jdoe", NOW + timedelta(days=1)) is TokenCheck.VALID
    assert tokens.check(value, TN, "jdoe", NOW + timedelta(days=3)) is TokenCheck.EXPIRED
    disabled = ReplyTokens()
    assert not disabled.enabled
    assert disabled.check(value, TN, "jdoe", NOW) is TokenCheck.MISMATCH
    with pytest.raises(ValueError, match="reply tokens are disabled"):
        disabled.make(TN, "jdoe")


# --- properties ----------------------------------------------------------------------------

logins = st.text(min_size=1, max_size=40)
tns = st.text(alphabet="0123456789", min_size=1, max_size=20)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(3800, 1, 1), timezones=st.just(UTC)
)


@given(tn=tns, login=logins, expires=instants)
def test_codec_round_trips(tn: str, login: str, expires: datetime) -> None:
    value = make_reply_token(SECRET, tn, login, expires)
    assert len(value) == TOKEN_LENGTH
    before = expires - timedelta(seconds=1)
    assert check_reply_token(SECRET, value, tn, login, before) is TokenCheck.VALID
    assert check_reply_token(SECRET, value, tn, login + "x", before) is TokenCheck.MISMATCH
    assert find_reply_tokens([reply_address("support@example.com", value)], []) == (value,)
    assert find_reply_tokens([], [notification_message_id(value, "example.com")]) == (value,)


@given(value=st.text(max_size=60), tn=st.text(max_size=20), login=st.text(max_size=20))
def test_checking_arbitrary_text_never_raises(value: str, tn: str, login: str) -> None:
    assert check_reply_token(SECRET, value, tn, login, NOW) in TokenCheck
    token_expiry(value)


@given(addresses=st.lists(st.text(max_size=80), max_size=5), ids=st.lists(st.text(max_size=80)))
def test_finding_tokens_in_arbitrary_text_never_raises(
    addresses: list[str], ids: list[str]
) -> None:
    found = find_reply_tokens(addresses, ids)
    assert len(found) <= MAX_TOKENS
    assert all(len(t) == TOKEN_LENGTH for t in found)
