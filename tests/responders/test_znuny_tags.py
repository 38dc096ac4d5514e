"""Znuny's ``<OTRS_*>`` tags translated into pytrs templates render as Znuny renders them (Znuny
7.0 ``Kernel/System/TemplateGenerator.pm``, auto responses), and Znuny text can never become
template code. Stored responses beside Znuny are translated when they are loaded."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import text, update

from pytrs.provisioning import provision
from pytrs.responders.stored_responses import find_response
from pytrs.responders.templates import (
    ArticleVars,
    SystemVars,
    TicketVars,
    compile_response,
    compile_template,
    sample_variables,
    template_variables,
)
from pytrs.responders.znuny_tags import translate, znuny_wrap
from pytrs.schema.database import Database
from pytrs.schema.tables import auto_response

from ..conftest import make_config

pytestmark = pytest.mark.znuny

BODY_QUOTED = "> Hello,\n> \n> the printer is on fire.\n> \n> Alice"

# tag → rendering with sample_variables() (ticket 2026010110000017 "Printer on fire" in
# Support, customer user Alice Doe, her mail from "Alice Doe <alice@customer.example>" to
# support@example.com, Cc bob@customer.example).
PLAIN = [
    ("<OTRS_CUSTOMER_SUBJECT>", "Printer on fire"),
    ("<OTRS_CUSTOMER_SUBJECT[7]>", "Printer [...]"),
    ("<OTRS_CUSTOMER_SUBJECT[15]>", "Printer on fire [...]"),  # Znuny marks an exact fit too
    ("<OTRS_CUSTOMER_SUBJECT[24]>", "Printer on fire"),
    ("<OTRS_CUSTOMER_EMAIL[2]>", "> Hello,\n> "),
    ("<OTRS_CUSTOMER_EMAIL[6]>", BODY_QUOTED),
    ("<OTRS_CUSTOMER_EMAIL[0]>", BODY_QUOTED),  # 0 = 2500 lines
    ("<OTRS_CUSTOMER_BODY[1]>", "> Hello,"),
    ("<OTRS_CUSTOMER_NOTE[1]>", "> Hello,"),
    ("<OTRS_COMMENT>", BODY_QUOTED),
    ("<OTRS_COMMENT[3]>", "> Hello,\n> \n> the printer is on fire."),
    ("<OTRS_CUSTOMER_EMAIL>", "Hello,\n\nthe printer is on fire.\n\nAlice"),
    ("<OTRS_CUSTOMER_BODY>", "Hello,\n\nthe printer is on fire.\n\nAlice"),
    ("<OTRS_CUSTOMER_EMAIL[abc]>", ""),  # no number: Znuny quotes nothing
    # Znuny answers with From and To swapped.
    ("<OTRS_CUSTOMER_From>", "support@example.com"),
    ("<OTRS_CUSTOMER_To>", "Alice Doe <alice@customer.example>"),
    ("<OTRS_CUSTOMER_Cc>", "bob@customer.example"),
    ("<OTRS_CUSTOMER_Message-ID>", "<1@customer.example>"),
    ("<OTRS_CUSTOMER_REALNAME>", "Alice Doe"),
    ("<OTRS_CUSTOMER_DATA_UserFirstname>", "Alice"),
    ("<OTRS_CUSTOMER_UserLastname>", "Doe"),
    ("<OTRS_CUSTOMER_DATA_UserEmail>", "alice@customer.example"),
    ("<OTRS_CUSTOMER_DATA_UserLogin>", "alice"),
    ("<OTRS_CUSTOMER_DATA_UserCustomerID>", "ACME"),
    ("<OTRS_CUSTOMER_DATA_UserFullname>", "Alice Doe"),
    ("<OTRS_TICKET_TicketNumber>", "2026010110000017"),
    ("<OTRS_TICKET_NUMBER>", "2026010110000017"),
    ("<OTRS_TICKET_Title>", "Printer on fire"),
    ("<OTRS_TICKET_State>", "new"),
    ("<OTRS_TICKET_Queue>", "Support"),
    ("<OTRS_QUEUE>", "Support"),
    ("<OTRS_TICKET_Priority>", "3 normal"),
    ("<OTRS_TICKET_CustomerID>", "ACME"),
    ("<OTRS_TICKET_CustomerUserID>", "alice"),
    ("<OTRS_CONFIG_Ticket::Hook>", "Ticket#"),
    ("<otrs_ticket_title>", "Printer on fire"),  # names are case-insensitive
    ("<OTRS_TICKET_TITLE>", "Printer on fire"),
]
# Families Znuny replaces, without a value in pytrs: Znuny's "-" (and reported).
DASH = [
    "<OTRS_OWNER_UserFirstname>", "<OTRS_TICKET_OWNER_UserLogin>",
    "<OTRS_RESPONSIBLE_UserEmail>", "<OTRS_TICKET_RESPONSIBLE_UserFirstname>",
    "<OTRS_CURRENT_UserFirstname>", "<OTRS_AGENT_SUBJECT[10]>", "<OTRS_AGENT_BODY>",
    "<OTRS_NOTIFICATION_RECIPIENT_UserFirstname>", "<OTRS_CONFIG_FQDN>",
    "<OTRS_TICKET_DynamicField_Market>", "<OTRS_TICKET_DynamicField_Market_Value>",
    "<OTRS_TICKET_TicketID>", "<OTRS_FIRST_NAME>", "<OTRS_EMAIL_DATE[Europe/Berlin]>",
    "<OTRS_CUSTOMER_DATA_UserPhone>", "<OTRS_CUSTOMER_X-Mailer>",
]  # fmt: skip


def render(source: str, content_type: str = "text/plain", variables: Any = None) -> str:
    translated = translate(source, content_type)
    template = compile_template("t", translated.template, html=content_type == "text/html")
    return template.render(variables or sample_variables())


@pytest.mark.parametrize(("tag", "expected"), PLAIN)
def test_each_tag_renders_as_znuny_does(tag: str, expected: str) -> None:
    assert render(f"[{tag}]") == f"[{expected}]"
    assert translate(tag).unknown == ()


@pytest.mark.parametrize("tag", DASH)
def test_tags_without_a_value_here_are_znunys_dash(tag: str) -> None:
    assert render(f"a {tag} b") == "a - b"
    assert translate(f"{tag}{tag}").unknown == (tag,)


def test_tags_outside_every_family_stay_as_written() -> None:
    assert render("x <OTRS_FOO> y") == "x <OTRS_FOO> y"
    assert translate("<OTRS_FOO>").unknown == ("<OTRS_FOO>",)


def test_a_sender_who_is_no_customer_user() -> None:
    stranger = template_variables(
        TicketVars("2026010110000017", customer_user="bob@elsewhere.example"),
        ArticleVars(subject="Hi", from_="Bob Stranger <bob@elsewhere.example>"),
        SystemVars("support@example.com"),
    )
    assert render("<OTRS_CUSTOMER_REALNAME>", variables=stranger) == "Bob Stranger"
    assert render("<OTRS_CUSTOMER_DATA_UserFirstname>", variables=stranger) == "-"
    assert render("<OTRS_CUSTOMER_UserCustomerID>", variables=stranger) == "-"


def test_empty_subject_and_body_read_as_in_znuny() -> None:
    empty = template_variables(
        TicketVars("2026010110000017"), ArticleVars(), SystemVars("support@example.com")
    )
    assert render("<OTRS_CUSTOMER_SUBJECT[24]>|<OTRS_CUSTOMER_EMAIL[6]>", variables=empty) == (
        "No Subject|> No Body"
    )


def test_subject_is_cleaned_of_the_ticket_number_and_re() -> None:
    variables = sample_variables()
    variables["article"]["subject"] = "Re: [Ticket#2026010110000017] Printer on fire in the hall"
    assert render("RE: <OTRS_CUSTOMER_SUBJECT[24]>", variables=variables) == (
        "RE: Printer on fire in the h [...]"
    )


def test_long_bodies_are_rewrapped_at_86_as_znuny_does() -> None:
    line = " ".join(["word"] * 20)  # 99 characters
    assert znuny_wrap(line) == " ".join(["word"] * 17) + "\n" + "word word word\n"
    quoted = "> " + "x" * 100
    assert znuny_wrap(quoted) == quoted + "\n"  # quoted lines stay whole
    variables = sample_variables()
    variables["article"]["body"] = line
    assert render("<OTRS_CUSTOMER_EMAIL[1]>", variables=variables) == "> " + " ".join(["word"] * 17)


def test_znunys_default_auto_reply_renders_as_znuny_renders_it() -> None:
    """The shape of Znuny's shipped "default reply (after new ticket has been created)": a
    subject with the customer's subject cut at 24, the first 6 lines of the mail quoted."""
    subject = translate("RE: <OTRS_CUSTOMER_SUBJECT[24]>").template
    body = translate(
        "Thanks for your email. A new ticket has been created.\n\nYou wrote:\n"
        "<OTRS_CUSTOMER_EMAIL[6]>\n\nYour email will be answered by a human ASAP.\n"
    ).template
    rendered = compile_response("default reply", subject, body).render(sample_variables())
    assert rendered.subject == "RE: Printer on fire"
    assert rendered.text == (
        "Thanks for your email. A new ticket has been created.\n\nYou wrote:\n"
        f"{BODY_QUOTED}\n\nYour email will be answered by a human ASAP.\n"
    )


# --- HTML ----------------------------------------------------------------------------------


def test_html_tags_are_read_escaped_and_values_are_escaped() -> None:
    variables = sample_variables()
    variables["ticket"]["title"] = "<script>x</script>"
    variables["article"]["body"] = "a < b\nsecond"
    source = (
        "<p>Dear &lt;OTRS_CUSTOMER_REALNAME&gt;,</p>&lt;OTRS_CUSTOMER_EMAIL[2]&gt;"
        "<b>&lt;OTRS_TICKET_Title&gt;</b><i><OTRS_TICKET_State></i>"
    )
    assert render(source, "text/html", variables) == (
        '<p>Dear Alice Doe,</p><blockquote type="cite">a &lt; b<br/>\nsecond</blockquote>'
        "<b>&lt;script&gt;x&lt;/script&gt;</b><i>new</i>"
    )


def test_an_html_response_sends_html_and_its_text() -> None:
    body = translate("<p>Your ticket &lt;OTRS_TICKET_TicketNumber&gt;</p>", "text/html").template
    subject = translate("RE: <OTRS_CUSTOMER_SUBJECT[24]>").template
    rendered = compile_response("r", subject, body, "text/html").render(sample_variables())
    assert rendered.html == "<p>Your ticket 2026010110000017</p>"
    assert "2026010110000017" in rendered.text and "<p>" not in rendered.text


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 7*7 }} {% for x in range(9) %}x{% endfor %} {# c #}",
         "{{ 7*7 }} {% for x in range(9) %}x{% endfor %} {# c #}"),
        ("{{ ''.__class__.__mro__ }}", "{{ ''.__class__.__mro__ }}"),
        ("{% raw %}{{ x }}{% endraw %}", "{% raw %}{{ x }}{% endraw %}"),
        ("<OTRS_", "<OTRS_"),
        ("<OTRS_CUSTOMER_SUBJECT[24]", "<OTRS_CUSTOMER_SUBJECT[24]"),
        ("<OTRS_CUSTOMER_EMAIL[[[[6]]]]>", "<OTRS_CUSTOMER_EMAIL[[[[6]]]]>"),
        ("<OTRS_CUSTOMER_EMAIL[{{ 7*7 }}]>", ""),
        ("<OTRS_FOO[{{ 7*7 }}]>", "<OTRS_FOO[{{ 7*7 }}]>"),
        ("<OTRS_X}}{{ 7*7 }}>", "<OTRS_X}}{{ 7*7 }}>"),
        ("<OTRS_CUSTOMER_EMAIL[99999999999999999999999999999]>", BODY_QUOTED),
        ("<OTRS_CUSTOMER_SUBJECT[99999999999999999999999999999]>", "Printer on fire"),
        ("<OTRS_CUSTOMER_SUBJECT[-3]>", "Printer on fire"),
        ("{<OTRS_TICKET_State>}", "{new}"),
        ("{{<OTRS_TICKET_State>}}", "{{new}}"),
    ],
)  # fmt: skip
def test_hostile_text_stays_text(source: str, expected: str) -> None:
    assert render(source) == expected


def test_mail_content_is_data_never_template() -> None:
    variables = sample_variables()
    variables["article"]["subject"] = "{{ 7*7 }}"
    variables["article"]["body"] = "{% for x in range(99) %}x{% endfor %}"
    assert render("<OTRS_CUSTOMER_SUBJECT[24]> <OTRS_CUSTOMER_EMAIL[1]>", variables=variables) == (
        "{{ 7*7 }} > {% for x in range(99) %}x{% endfor %}"
    )


def test_random_mixtures_always_compile_and_render() -> None:
    rng = random.Random(18)
    pieces = [
        "{", "}", "{{", "%}", "{%", "#}", "<", ">", "&lt;", "&gt;", "[", "]", "\n", "x", " ",
        "<OTRS_", "OTRS_", "CUSTOMER_", "EMAIL", "SUBJECT", "[6]", "[", "TICKET_Title", "'",
        '"', "\\", "raw", "endraw", *(tag for tag, _ in PLAIN), *DASH,
    ]  # fmt: skip
    for _ in range(400):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        for content_type in ("text/plain", "text/html"):
            render(source, content_type)  # raises if it does not compile or render


# --- stored responses beside Znuny -------------------------------------------------------------


async def test_stored_znuny_responses_are_translated_when_loaded(db: Database, config: Any) -> None:
    settings = {"url": config.database.url, "schema": config.database.schema}
    responses = [
        {"queue": "Support", "type": "auto reply", "subject": "x", "body": "x\n"},
    ]
    await provision(db, make_config(settings, auto_responses=responses))
    async with db.transaction() as conn:
        await conn.execute(
            update(auto_response).values(
                text1="RE: <OTRS_CUSTOMER_SUBJECT[24]>",
                text0="Dear <OTRS_CUSTOMER_REALNAME>,\n<OTRS_CUSTOMER_EMAIL[1]>\n"
                "<OTRS_OWNER_UserFirstname> {{ 7*7 }}\n",
            )
        )
    async with db.connect() as conn:
        queue_id = await conn.scalar(text("SELECT id FROM queue WHERE name = 'Support'"))
        as_pytrs = await find_response(conn, queue_id, "auto reply", ["en"])
        beside = await find_response(conn, queue_id, "auto reply", ["en"], znuny=True)
    assert as_pytrs is not None and beside is not None
    # Read as pytrs templates the tags would go out unreplaced; beside Znuny they are Znuny's.
    assert as_pytrs.render(sample_variables()).subject == "RE: <OTRS_CUSTOMER_SUBJECT[24]>"
    rendered = beside.render(sample_variables())
    assert rendered.subject == "RE: Printer on fire"
    assert rendered.text == "Dear Alice Doe,\n> Hello,\n- {{ 7*7 }}\n"
