"""A realistic Znuny installation for importer and beside-Znuny tests, written as Znuny writes it.

`populate` adds, on top of the seeded database of `tests/znuny/seed.py`: queues with their own
salutation, signature and system address; agents with `UserEmail` preferences, group rights and
a role; customer companies and users; dynamic fields (text, dropdown, date) with values; multi-row
postmaster filters; auto responses with ``<OTRS_*>`` tags assigned to queues; and tickets with
DateChecksum numbers, each with 1–6 articles (customer mail, agent reply, internal note, phone
note): ``article_data_mime`` (incl. ``a_message_id_md5`` and ``content_path``), the raw mail of
e-mail articles in ``article_data_mime_plain``, attachments (some binary), history rows, flags,
links in ``link_relation`` and the ``ticket_number_counter`` rows Znuny's generator leaves.

Binary columns follow the engine as Znuny does: base64 text on PostgreSQL, raw bytes on
MariaDB. Everything is derived from ``seed`` (no clock, no global randomness), so two runs with
the same arguments write the same rows. The ids are taken after the highest ones present (the
seeded rows) and PostgreSQL's sequences are moved past them at the end.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import schema as z
from .seed import HISTORY_TYPE_IDS, sync_sequences

SYSTEM_ID = "10"  # Znuny's default SystemID, part of every DateChecksum number
START = datetime(2025, 3, 3, 8, 0, 0)  # the first generated ticket's creation
AGENT_PW = "{SHA256}0f5e2b7a"  # a placeholder hash: nobody logs in to this installation

# Ticket states a generated ticket may end in, with how often (Znuny state ids).
STATE_WEIGHTS = {1: 3, 4: 4, 2: 5, 3: 1, 6: 1}  # new, open, closed ok/not ok, pending reminder
STATE_NAMES = {1: "new", 2: "closed successful", 3: "closed unsuccessful", 4: "open",
               6: "pending reminder"}  # fmt: skip
PRIORITY_NAMES = {1: "1 very low", 2: "2 low", 3: "3 normal", 4: "4 high", 5: "5 very high"}

SUBJECTS = [
    "Printer on floor 3 jams", "Invoice {n} has the wrong address", "VPN drops every hour",
    "Cannot log in to the portal", "Order {n}: delivery date?", "Refund for order {n}",
    "Über die Rechnung {n}", "Café menu display broken", "Password reset link expired",
    "Question about contract {n}",
]  # fmt: skip
FIRST_NAMES = ["Anna", "Bruno", "Chiara", "Dmitri", "Eva", "Farid", "Grete", "Hiro", "Inés", "Jon"]
LAST_NAMES = ["Adler", "Brun", "Costa", "Dahl", "Eder", "Fuchs", "García", "Huber", "Ito", "Jung"]


@dataclass
class Population:
    """What `populate` wrote, for tests to check the database against."""

    ticket_ids: list[int] = field(default_factory=list)
    article_ids: list[int] = field(default_factory=list)
    raw_mails: dict[int, bytes] = field(default_factory=dict)  # article id → raw mail
    attachments: dict[int, bytes] = field(default_factory=dict)  # attachment id → content
    ticket_numbers: dict[int, str] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)  # login → users.id
    agent_emails: dict[int, str] = field(default_factory=dict)
    customers: list[str] = field(default_factory=list)  # customer_user logins
    dynamic_fields: dict[str, int] = field(default_factory=dict)
    link_object_ticket: int = 0


def date_checksum_number(day: datetime, counter: int, system_id: str = SYSTEM_ID) -> str:
    """Znuny's DateChecksum ticket number: yyyymmdd + SystemID + counter (at least five
    digits) + a check digit (digits weighted 1, 2, 1, 2 … from the left; 10 - sum mod 10,
    where 10 becomes 1)."""
    digits = f"{day:%Y%m%d}{system_id}{counter:05d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 2) for i, d in enumerate(digits))
    check = 10 - total % 10
    return digits + str(1 if check == 10 else check)


class _Rows:
    """Rows per table with ids handed out after the highest id already present."""

    def __init__(self, next_ids: dict[str, int]) -> None:
        self.next_ids = next_ids
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def add(self, table: Table, **values: Any) -> int:
        self.rows.setdefault(table.name, [])
        new_id = 0
        if "id" in table.c and "id" not in values:
            new_id = self.next_ids[table.name]
            self.next_ids[table.name] = new_id + 1
            values = {"id": new_id, **values}
        self.rows[table.name].append(values)
        return new_id or values.get("id", 0)

    async def write(self, conn: AsyncConnection) -> None:
        # In the schema's table order, which puts every referenced table first; rows with the
        # same columns together (an executemany needs one shape).
        for table in z.metadata.tables.values():
            shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self.rows.get(table.name, []):
                shapes.setdefault(tuple(row), []).append(row)
            for rows in shapes.values():
                for start in range(0, len(rows), 500):
                    await conn.execute(insert(table), rows[start : start + 500])


async def _next_ids(conn: AsyncConnection) -> dict[str, int]:
    ids = {}
    for table in z.metadata.tables.values():
        if "id" in table.c:
            top = (await conn.execute(select(func.max(table.c.id)))).scalar()
            ids[table.name] = (top or 0) + 1
    return ids


async def populate(engine: AsyncEngine, tickets: int = 300, seed: int = 18) -> Population:
    """Write a Znuny installation with `tickets` tickets into a seeded Znuny database."""
    async with engine.begin() as conn:
        generator = _Generator(conn.dialect.name, random.Random(seed), await _next_ids(conn))
        population = generator.run(tickets)
        await generator.rows.write(conn)
        await sync_sequences(conn)
    return population


class _Generator:
    def __init__(self, dialect: str, rng: random.Random, next_ids: dict[str, int]) -> None:
        self.dialect = dialect
        self.rng = rng
        self.rows = _Rows(next_ids)
        self.out = Population()
        self.msgid_counter = 0

    # --- helpers ---------------------------------------------------------------------------

    def blob(self, data: bytes) -> Any:
        """Binary content as Znuny stores it on this engine."""
        return base64.b64encode(data).decode("ascii") if self.dialect == "postgresql" else data

    @staticmethod
    def audit(when: datetime, by: int = 1) -> dict[str, Any]:
        return {"create_time": when, "create_by": by, "change_time": when, "change_by": by}

    def message_id(self, domain: str) -> str:
        self.msgid_counter += 1
        return f"<{START:%Y%m%d}.{self.msgid_counter}.{self.rng.getrandbits(32):08x}@{domain}>"

    # --- the installation around the tickets ------------------------------------------------

    def run(self, tickets: int) -> Population:
        self.setup(START - timedelta(days=30))
        counters: list[dict[str, Any]] = []
        when = START
        for n in range(tickets):
            when += timedelta(minutes=self.rng.randint(20, 600))
            self.ticket(n, when, counters)
        self.counters(counters)
        self.links(when)
        return self.out

    def setup(self, when: datetime) -> None:
        r, a = self.rows, self.audit(when)
        groups = {name: r.add(z.permission_groups, name=name, comments=f"Agents of {name}",
                              valid_id=1, **a)
                  for name in ("support", "sales")}  # fmt: skip
        salutation = r.add(z.salutation, name="Support salutation (de)",
                           text="Hallo <OTRS_CUSTOMER_REALNAME>,\n\n",
                           content_type="text/plain; charset=utf-8", valid_id=1, **a)  # fmt: skip
        signature = r.add(z.signature, name="Support signature",
                          text="\n-- \n<OTRS_Agent_UserFirstname> <OTRS_Agent_UserLastname>\n"
                          "<OTRS_CONFIG_Ticket::Hook><OTRS_TICKET_TicketNumber>\n",
                          content_type="text/plain; charset=utf-8", valid_id=1, **a)  # fmt: skip
        # Queues first (system addresses name their queue, queues their address): ids known.
        plan = [
            ("Support", "support", 1),
            ("Sales", "sales", 3),
            ("Support::Billing", "support", 2),
        ]
        address_ids = {}
        for name, _group, _follow_up in plan:
            queue_id = self.rows.next_ids["queue"] + len(self.out.queues)
            address = f"{name.split('::')[-1].lower()}@example.com"
            address_ids[name] = r.add(z.system_address, value0=address,
                                      value1=f"Example {name.split('::')[-1]}", queue_id=queue_id,
                                      valid_id=1, **a)  # fmt: skip
            self.out.queues[name] = queue_id
        for name, group, follow_up in plan:
            r.add(z.queue, id=self.out.queues[name], name=name, group_id=groups[group],
                  unlock_timeout=0, first_response_time=120 if name == "Support" else None,
                  first_response_notify=80 if name == "Support" else None,
                  system_address_id=address_ids[name], calendar_name=None,
                  salutation_id=salutation, signature_id=signature, follow_up_id=follow_up,
                  follow_up_lock=1 if follow_up == 1 else 0, comments=f"{name} queue",
                  valid_id=1, **a)  # fmt: skip
            self.rows.next_ids["queue"] = max(
                self.rows.next_ids["queue"], self.out.queues[name] + 1
            )
            r.add(
                z.queue_preferences,
                queue_id=self.out.queues[name],
                preferences_key="Comment",
                preferences_value=f"{name} (generated)",
            )
            r.add(z.queue_standard_template, queue_id=self.out.queues[name],
                  standard_template_id=1, **a)  # fmt: skip
        self.out.queues["Raw"] = 2
        self.out.queues["Junk"] = 3

        role = r.add(z.roles, name="Support staff", valid_id=1, **a)
        r.add(z.group_role, role_id=role, group_id=groups["support"], permission_key="rw",
              permission_value=1, **a)  # fmt: skip
        for i in range(6):
            login = f"agent{i + 1}"
            user_id = r.add(z.users, login=login, pw=AGENT_PW, title=None,
                            first_name=FIRST_NAMES[i], last_name=LAST_NAMES[i],
                            valid_id=1 if i < 5 else 2, **a)  # fmt: skip
            email = f"{FIRST_NAMES[i].lower()}.{LAST_NAMES[i].lower()}@example.com"
            for key, value in (("UserEmail", email), ("UserLanguage", "de" if i % 2 else "en")):
                r.add(z.user_preferences, user_id=user_id, preferences_key=key,
                      preferences_value=value)  # fmt: skip
            rights = ["rw"] if i < 3 else ["ro", "move_into", "note"]
            for group in ("users", "support", "sales") if i < 3 else ("users", "support"):
                group_id = 1 if group == "users" else groups[group]
                for key in rights:
                    r.add(z.group_user, user_id=user_id, group_id=group_id, permission_key=key,
                          **a)  # fmt: skip
            if i >= 3:
                r.add(z.role_user, user_id=user_id, role_id=role, **a)
            self.out.agents[login] = user_id
            self.out.agent_emails[user_id] = email

        for c in range(4):
            r.add(z.customer_company, customer_id=f"company{c + 1}",
                  name=f"Company {c + 1} GmbH", city="Berlin", valid_id=1, **a)  # fmt: skip
        for c in range(24):
            first, last = FIRST_NAMES[c % 10], LAST_NAMES[(c * 3) % 10]
            login = f"{first.lower()}{c}"
            r.add(z.customer_user, login=login, email=f"{login}@customer{c % 4 + 1}.example",
                  customer_id=f"company{c % 4 + 1}", first_name=first, last_name=last,
                  valid_id=1, **a)  # fmt: skip
            if c % 3 == 0:
                r.add(z.customer_preferences, user_id=login, preferences_key="UserLanguage",
                      preferences_value="de")  # fmt: skip
            self.out.customers.append(login)

        self.dynamic_fields(a)
        self.filters()
        self.auto_responses(a)
        services = [r.add(z.service, name=n, valid_id=1, **a) for n in ("Email", "Email::Spam")]
        self.services = services
        self.sla = r.add(z.sla, name="Gold", first_response_time=60, first_response_notify=80,
                         update_time=240, solution_time=1440, valid_id=1, **a)  # fmt: skip
        r.add(z.mail_account, login="support", pw="secret", host="imap.example.com",
              account_type="IMAPS", queue_id=self.out.queues["Support"], trusted=0,
              imap_folder="INBOX", authentication_type="password", comments="generated",
              valid_id=1, **a)  # fmt: skip

    def dynamic_fields(self, a: dict[str, Any]) -> None:
        specs = [
            ("ExternalTicketNumber", "External ticket number", "Text", "---\nDefaultValue: ''\n"),
            ("Product", "Product", "Dropdown",
             "---\nPossibleValues:\n  printer: Printer\n  vpn: VPN\n  portal: Portal\n"
             "TranslatableValues: '0'\n"),
            ("DueDate", "Due date", "Date", "---\nYearsInFuture: '5'\nYearsInPast: '5'\n"),
        ]  # fmt: skip
        for order, (name, label, field_type, config) in enumerate(specs, start=2):
            self.out.dynamic_fields[name] = self.rows.add(
                z.dynamic_field, internal_field=0, name=name, label=label, field_order=order,
                field_type=field_type, object_type="Ticket", config=config, valid_id=1, **a,
            )  # fmt: skip

    def filters(self) -> None:
        # One row per match/set line; f_name and f_stop repeated on each line.
        filters = [
            ("Spam to Junk", 1, [("Match", "X-Spam-Flag", "YES", 0),
                                 ("Set", "X-OTRS-Queue", "Junk", 0)]),
            ("Vendor case numbers", 0, [("Match", "From", r"@vendor\.example$", 0),
                                        ("Match", "Subject", r"Case (\d+)", 0),
                                        ("Set", "X-OTRS-DynamicField-ExternalTicketNumber",
                                         "[***]", 0),
                                        ("Set", "X-OTRS-Priority", "4 high", 0)]),
            ("Outsiders low", 0, [("Match", "From", r"\.example$", 1),
                                  ("Set", "X-OTRS-Priority", "2 low", 0)]),
        ]  # fmt: skip
        for name, stop, lines in filters:
            for f_type, key, value, negate in lines:
                self.rows.add(z.postmaster_filter, f_name=name, f_stop=stop, f_type=f_type,
                              f_key=key, f_value=value, f_not=negate)  # fmt: skip

    def auto_responses(self, a: dict[str, Any]) -> None:
        support, sales = self.out.queues["Support"], self.out.queues["Sales"]
        responses = [
            (1, "Support reply (de)", "[<OTRS_CONFIG_Ticket::Hook><OTRS_TICKET_TicketNumber>] "
             "Eingang: <OTRS_CUSTOMER_SUBJECT[24]>",
             "Hallo <OTRS_CUSTOMER_REALNAME>,\n\nIhre Nachricht ist eingegangen:\n"
             "<OTRS_CUSTOMER_EMAIL[6]>\n\n<OTRS_TICKET_Queue>\n"),
            (3, "Support follow-up (de)", "RE: <OTRS_CUSTOMER_SUBJECT[24]>",
             "Ihre Antwort zu <OTRS_TICKET_TicketNumber> wurde hinzugefügt.\n"),
        ]  # fmt: skip
        for type_id, name, subject, body in responses:
            response = self.rows.add(z.auto_response, name=name, text0=body, text1=subject,
                                     type_id=type_id, system_address_id=1,
                                     content_type="text/plain", valid_id=1, **a)  # fmt: skip
            self.rows.add(z.queue_auto_response, queue_id=support, auto_response_id=response, **a)
        for response in (1, 2, 4):  # Znuny's own defaults on Sales
            self.rows.add(z.queue_auto_response, queue_id=sales, auto_response_id=response, **a)

    # --- tickets -----------------------------------------------------------------------------

    def ticket(self, n: int, created: datetime, counters: list[dict[str, Any]]) -> None:
        rng, r = self.rng, self.rows
        day_counter = 1 + sum(1 for c in counters if c["create_time"].date() == created.date())
        counters.append({"counter": day_counter, "counter_uid": f"{rng.getrandbits(128):032x}",
                         "create_time": created})  # fmt: skip
        tn = date_checksum_number(created, day_counter)
        queue_name = rng.choice(["Support", "Support", "Sales", "Support::Billing", "Raw"])
        queue_id = self.out.queues[queue_name]
        customer = rng.choice(self.out.customers)
        customer_company = f"company{self.out.customers.index(customer) % 4 + 1}"
        customer_address = f"{customer}@customer{customer_company[-1]}.example"
        owner = rng.choice(list(self.out.agents.values())[:5])
        final_state = rng.choices(list(STATE_WEIGHTS), weights=list(STATE_WEIGHTS.values()))[0]
        priority = rng.choice([2, 3, 3, 3, 4, 5])
        subject = rng.choice(SUBJECTS).format(n=1000 + n)
        ticket_id = r.next_ids["ticket"]
        articles = rng.randint(1, 6) if final_state != 1 else 1
        system_address = f"{queue_name.split('::')[-1].lower()}@example.com"
        if queue_name == "Raw":
            system_address = "znuny@localhost"

        when = created
        state = 1
        locked = final_state == 4 and rng.random() < 0.5
        history: list[tuple[str, str, int | None, datetime]] = []
        thread: list[str] = []
        for k in range(articles):
            kind = "customer" if k == 0 else rng.choice(["customer", "agent", "note", "phone"])
            if k > 0:
                when += timedelta(minutes=rng.randint(5, 900))
            article_id = self.article(ticket_id, tn, kind, when, subject, customer,
                                      customer_address, system_address, owner, thread,
                                      indexed=n % 3 == 0)  # fmt: skip
            if k == 0:
                history.append(("NewTicket", f"%%{tn}%%{queue_name}%%{PRIORITY_NAMES[priority]}"
                                f"%%new%%{ticket_id}", article_id, when))  # fmt: skip
                history.append(("EmailCustomer", f"%%{customer_address}", article_id, when))
                if queue_name == "Support":
                    history.append(("SendAutoReply", f"%%{customer_address}", None, when))
                    r.add(z.ticket_loop_protection, sent_to=customer_address,
                          sent_date=f"{when:%Y-%m-%d}")  # fmt: skip
            else:
                kind_history = {"customer": "FollowUp", "agent": "SendAnswer", "note": "AddNote",
                                "phone": "PhoneCallCustomer"}[kind]  # fmt: skip
                history.append((kind_history, "%%", article_id, when))
                if kind == "agent" and state == 1:
                    history.append(("StateUpdate", "%%new%%open%%", None, when))
                    state = 4
        if final_state != state:
            when += timedelta(minutes=rng.randint(1, 300))
            history.append(("StateUpdate", f"%%{STATE_NAMES[state]}%%{STATE_NAMES[final_state]}%%",
                            None, when))  # fmt: skip
        if locked:
            history.append(("Lock", "%%lock", None, when))

        until = 0
        if final_state == 6:
            until = int((when + timedelta(days=3)).timestamp())
            history.append(("SetPendingTime", f"%%{until}", None, when))
        sla_id = self.sla if queue_name == "Support" and n % 4 == 0 else None
        r.add(z.ticket, tn=tn, title=subject, queue_id=queue_id, ticket_lock_id=2 if locked else 1,
              type_id=1, service_id=self.services[0] if sla_id else None, sla_id=sla_id,
              user_id=owner, responsible_user_id=1, ticket_priority_id=priority,
              ticket_state_id=final_state, customer_id=customer_company,
              customer_user_id=customer, timeout=0, until_time=until,
              escalation_time=0, escalation_update_time=0, escalation_response_time=0,
              escalation_solution_time=0, archive_flag=0,
              create_time=created, create_by=1, change_time=when, change_by=owner)  # fmt: skip

        self.ticket_dynamic_fields(n, ticket_id, when, history)
        for name, text, article_id, at in history:
            r.add(z.ticket_history, name=text[:200], history_type_id=HISTORY_TYPE_IDS[name],
                  ticket_id=ticket_id, article_id=article_id, type_id=1, queue_id=queue_id,
                  owner_id=owner, priority_id=priority,
                  state_id=final_state if at == when else state,
                  **self.audit(at, owner))  # fmt: skip
        if rng.random() < 0.5:
            r.add(z.ticket_flag, ticket_id=ticket_id, ticket_key="Seen", ticket_value="1",
                  create_time=when, create_by=owner)  # fmt: skip
        self.out.ticket_ids.append(ticket_id)
        self.out.ticket_numbers[ticket_id] = tn

    def ticket_dynamic_fields(
        self, n: int, ticket_id: int, when: datetime, history: list[Any]
    ) -> None:
        fields = self.out.dynamic_fields
        values: list[tuple[str, dict[str, Any]]] = []
        if n % 3 == 0:
            values.append(("ExternalTicketNumber", {"value_text": f"CASE-{70000 + n}"}))
        if n % 2 == 0:
            values.append(("Product", {"value_text": ["printer", "vpn", "portal"][n % 3]}))
        if n % 5 == 0:
            due = (when + timedelta(days=14)).replace(hour=0, minute=0, second=0)
            values.append(("DueDate", {"value_date": due}))
        for name, value in values:
            self.rows.add(z.dynamic_field_value, field_id=fields[name], object_id=ticket_id,
                          **value)  # fmt: skip
            history.append(("TicketDynamicFieldUpdate",
                            f"%%FieldName%%{name}%%Value%%{next(iter(value.values()))}", None,
                            when))  # fmt: skip

    def article(
        self,
        ticket_id: int,
        tn: str,
        kind: str,
        when: datetime,
        subject: str,
        customer: str,
        customer_address: str,
        system_address: str,
        owner: int,
        thread: list[str],
        indexed: bool,
    ) -> int:
        rng, r = self.rng, self.rows
        sender = {"customer": 3, "agent": 1, "note": 1, "phone": 1}[kind]
        channel = {"customer": 1, "agent": 1, "note": 3, "phone": 2}[kind]
        by = 1 if kind == "customer" else owner
        article_id = r.add(z.article, ticket_id=ticket_id, article_sender_type_id=sender,
                           communication_channel_id=channel,
                           is_visible_for_customer=0 if kind == "note" else 1,
                           search_index_needs_rebuild=0 if indexed else 1,
                           insert_fingerprint=None,
                           **self.audit(when, by))  # fmt: skip
        agent_address = self.out.agent_emails[owner]
        if kind == "customer":
            sender_address, to = f"{customer.title()} <{customer_address}>", system_address
        elif kind == "agent":
            sender_address, to = f"Example Support <{system_address}>", customer_address
        else:
            sender_address, to = f"Agent <{agent_address}>", system_address
        domain = customer_address.split("@")[1] if kind == "customer" else "example.com"
        message_id = self.message_id(domain)
        full_subject = subject if not thread else f"RE: [Ticket#{tn}] {subject}"
        body = self.body(kind, subject, rng)

        mail = EmailMessage()
        mail["From"] = sender_address
        mail["To"] = to
        mail["Subject"] = full_subject
        mail["Date"] = format_datetime(when)
        mail["Message-ID"] = message_id
        if thread:
            mail["In-Reply-To"] = thread[-1]
            mail["References"] = " ".join(thread[-5:])
        mail.set_content(body)
        html: str | None = None
        if kind == "customer" and rng.random() < 0.25:
            html = "<html><body><p>" + body.replace("\n", "<br>\n") + "</p></body></html>\n"
            mail.add_alternative(html, subtype="html")
        attachment: tuple[str, str, bytes] | None = None
        if kind in ("customer", "agent") and rng.random() < 0.3:
            if rng.random() < 0.5:
                attachment = (
                    "scan.pdf",
                    "application/pdf",
                    b"%PDF-1.4\n" + rng.randbytes(rng.randint(200, 2000)) + b"\n%%EOF\n",
                )
            else:
                attachment = ("notes.txt", "text/plain", "Grüße, Zeile 1\nZeile 2\n".encode())
            maintype, subtype = attachment[1].split("/")
            mail.add_attachment(attachment[2], maintype=maintype, subtype=subtype,
                                filename=attachment[0])  # fmt: skip
        # The library would draw boundaries from the clock: derive them from the seed.
        for part in mail.walk():
            if part.is_multipart():
                part.set_boundary(f"=_{rng.getrandbits(64):016x}")
        raw = mail.as_bytes()
        thread.append(message_id)

        r.add(z.article_data_mime, article_id=article_id, a_from=sender_address, a_reply_to=None,
              a_to=to, a_cc=None, a_bcc=None, a_subject=full_subject, a_message_id=message_id,
              a_message_id_md5=hashlib.md5(message_id.encode()).hexdigest(),
              a_in_reply_to=mail["In-Reply-To"], a_references=mail["References"],
              a_content_type="text/plain; charset=utf-8", a_body=body,
              incoming_time=int(when.timestamp()), content_path=f"{when:%Y/%m/%d}",
              **self.audit(when, by))  # fmt: skip
        # Znuny keeps the raw mail of articles that travelled as mail (Email channel).
        if channel == 1:
            r.add(z.article_data_mime_plain, article_id=article_id, body=self.blob(raw),
                  **self.audit(when, by))  # fmt: skip
            self.out.raw_mails[article_id] = raw
        if html is not None:
            # Znuny keeps an HTML body as an inline attachment named file-2.
            content = html.encode()
            html_id = r.add(z.article_data_mime_attachment, article_id=article_id,
                            filename="file-2", content_size=str(len(content)),
                            content_type='text/html; charset="utf-8"', content_id="",
                            content_alternative="", disposition="inline",
                            content=self.blob(content), **self.audit(when, by))  # fmt: skip
            self.out.attachments[html_id] = content
        if kind == "agent" and rng.random() < 0.08:
            r.add(z.article_data_mime_send_error, article_id=article_id, message_id=message_id,
                  log_message=f"550 5.1.1 <{to}>: Recipient address rejected",
                  create_time=when)  # fmt: skip
        if indexed:
            # What Znuny's search index (StaticDB) holds once its daemon has indexed the article.
            for key, value in (("From", sender_address), ("To", to), ("Subject", full_subject),
                               ("Body", body)):  # fmt: skip
                r.add(z.article_search_index, ticket_id=ticket_id, article_id=article_id,
                      article_key=f"MIMEBase_{key}", article_value=value.lower())  # fmt: skip
        if attachment is not None:
            name, content_type, content = attachment
            attachment_id = r.add(z.article_data_mime_attachment, article_id=article_id,
                                  filename=name, content_size=str(len(content)),
                                  content_type=f'{content_type}; name="{name}"', content_id="",
                                  content_alternative="", disposition="attachment",
                                  content=self.blob(content), **self.audit(when, by))  # fmt: skip
            self.out.attachments[attachment_id] = content
        if kind != "customer" and rng.random() < 0.5:
            r.add(z.article_flag, article_id=article_id, article_key="Seen", article_value="1",
                  create_time=when, create_by=owner)  # fmt: skip
        self.out.article_ids.append(article_id)
        return article_id

    @staticmethod
    def body(kind: str, subject: str, rng: random.Random) -> str:
        lines = {
            "customer": ["Hello,", f"about: {subject}.", "It started this morning.", "Regards"],
            "agent": ["Hello,", "thank you, we are looking into it.", "Best regards"],
            "note": ["Internal: checked the logs, nothing unusual."],
            "phone": ["Customer called, wants an update by Friday."],
        }[kind]
        return "\n".join(lines) + f"\n\n(ref {rng.getrandbits(24):06x})\n"

    # --- after the tickets --------------------------------------------------------------------

    def counters(self, counters: list[dict[str, Any]]) -> None:
        """The counter rows Znuny's generator leaves after its periodic clean-up: the ten
        newest (every ticket added one row; the clean-up deletes all older ones)."""
        first_id = self.rows.next_ids["ticket_number_counter"] + max(len(counters) - 10, 0)
        for offset, row in enumerate(counters[-10:]):
            self.rows.add(z.ticket_number_counter, id=first_id + offset, **row)
        self.rows.next_ids["ticket_number_counter"] += len(counters)

    def links(self, when: datetime) -> None:
        """Links between tickets, with the `Ticket` link object created on first use."""
        ids = self.out.ticket_ids
        if len(ids) < 4:
            return
        ticket_object = self.rows.add(z.link_object, name="Ticket")
        self.out.link_object_ticket = ticket_object
        pairs = [(ids[i], ids[i + 1], 1) for i in range(0, len(ids) - 1, 7)]
        pairs += [(ids[i + 2], ids[i], 2) for i in range(0, len(ids) - 2, 11)]  # ParentChild
        seen = set()
        for source, target, link_type in pairs:
            if (source, target, link_type) in seen or source == target:
                continue
            seen.add((source, target, link_type))
            self.rows.add(z.link_relation, source_object_id=ticket_object, source_key=str(source),
                          target_object_id=ticket_object, target_key=str(target),
                          type_id=link_type, state_id=1, create_time=when, create_by=1)  # fmt: skip
