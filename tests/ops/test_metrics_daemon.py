"""`/metrics` of a real daemon: mail over real SMTP, tickets, auto-responses through a recording
relay, and every counter checked to have moved by exactly what was sent.

The daemon runs in the test's loop (`start_daemon`), so its counters share this process with
other tests: every check compares two scrapes (`after - before`), never absolute values.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text, update

from pytrs.config import load_config
from pytrs.schema import inbox_repo
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox
from pytrs.vocabulary.inbox import InboxItem

from ..conftest import make_config, wait_until
from ..helpers import all_processed, make_mail, send, tickets
from ..servers.relay import RecordingRelay
from ..test_cli import write_config
from .conftest import Scrape, fetch_metrics, get

LISTENER = "127.0.0.1:0"  # the SMTP listener as configured: its name in the labels


def _config(database: dict[str, Any], relay: RecordingRelay, **more: Any) -> Any:
    settings: dict[str, Any] = {
        "web": {"listen": "127.0.0.1:0"},
        "outbound": {
            "relay": relay.address, "poll_interval_seconds": 0.05, "timeout_seconds": 5.0,
            "retry_backoff_seconds": 0.05, "lease_seconds": 20.0,
        },
        "auto_responses": [
            {"queue": "Support", "type": "auto reply", "subject": "Re: {{ article.subject }}",
             "body": "We opened ticket {{ ticket.tn }}.\n"},
        ],
    }  # fmt: skip
    for key, value in more.items():
        merge = isinstance(value, dict) and key in settings
        settings[key] = {**settings[key], **value} if merge else value
    return make_config(database, **settings)


async def _sent_rows(db: Database) -> int:
    async with db.connect() as conn:
        query = text("SELECT count(*) FROM outbox_message WHERE state = 'sent'")
        return int((await conn.execute(query)).scalar_one())


async def test_counters_move_by_exactly_what_was_sent(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay
) -> None:
    running = await start_daemon(_config(database_settings, relay))
    web, smtp = running.port("web"), running.port("smtp")
    before = await fetch_metrics(web)
    customers = [f"customer{i} <c{i}@customer.example>" for i in range(3)]
    for who in customers:
        await send(smtp, make_mail(sender=who, subject=f"Help {who[:9]}"))
    # An automatic reply gets a ticket but no auto-response; a second recipient outside
    # pytrs is refused at RCPT while the mail itself is accepted.
    robot = make_mail(subject="Away", extra={"Auto-Submitted": "auto-replied"})
    refused = await send(smtp, robot, ["support@example.com", "nobody@elsewhere.example"])
    assert list(refused) == ["nobody@elsewhere.example"]
    await wait_until(lambda: _count_tickets(db, 4))
    first = (await tickets(db))[0]
    await send(smtp, make_mail(sender=customers[0], subject=f"Re: [Ticket#{first['tn']}] more"))
    await wait_until(lambda: all_processed(db))
    await relay.wait_for(3)
    await wait_until(lambda: _sent_rows_are(db, 3))
    assert (await get(web, "/login")).status_code == 200
    assert (await get(web, f"/tickets/{first['tn']}")).status_code == 303  # signed out
    assert (await get(web, "/no/such/page")).status_code == 404
    after = await _settled_scrape(web, before)
    moved = after - before

    assert moved("pytrs_mail_accepted_total", source="smtp", listener=LISTENER) == 5
    assert moved.total("pytrs_mail_accepted_total") == 5
    reason = {"source": "smtp", "listener": LISTENER, "reason": "unknown-recipient"}
    assert moved("pytrs_mail_refused_total", **reason) == 1
    assert moved("pytrs_tickets_created_total") == 4
    assert moved("pytrs_ticket_follow_ups_total") == 1
    assert moved("pytrs_mail_processed_total", outcome="new_ticket") == 4
    assert moved("pytrs_mail_processed_total", outcome="follow_up") == 1
    assert moved("pytrs_processing_latency_seconds_count") == 5
    assert moved("pytrs_processing_latency_seconds_bucket", le="+Inf") == 5
    assert 0 < moved("pytrs_processing_latency_seconds_sum") < 5 * 30
    assert moved("pytrs_auto_responses_sent_total", type="auto reply") == 3
    assert moved("pytrs_auto_responses_suppressed_total", reason="auto-reply") == 1
    assert moved.total("pytrs_auto_responses_suppressed_total") == 1
    assert moved("pytrs_outbox_deliveries_total", result="sent") == 3
    assert moved.total("pytrs_outbox_deliveries_total") == 3
    assert moved.total("pytrs_mail_failures_total") == 0
    # The requests by route template (never the raw path) and status.
    http = "pytrs_http_requests_total"
    assert moved(http, route="/login", method="GET", status="200") == 1
    assert moved(http, route="/tickets/{tn}", method="GET", status="303") == 1
    assert moved(http, route="unmatched", method="GET", status="404") == 1
    assert not any(first["tn"] in str(labels) for _, labels in after.samples)
    assert moved("pytrs_http_request_duration_seconds_count", route="/login", method="GET") == 1
    # The depths, read from the database at the scrape.
    assert after.value("pytrs_inbox_messages", state="pending") == 0
    assert after.value("pytrs_inbox_messages", state="quarantined") == 0
    assert after.value("pytrs_quarantine_messages") == 0
    assert after.value("pytrs_outbox_messages", state="pending") == 0
    assert after.value("pytrs_database_up") == 1
    assert after.value("pytrs_service_up", service="outbox-sender") == 1
    assert await running.stop() == 0


async def _count_tickets(db: Database, wanted: int) -> bool:
    return len(await tickets(db)) >= wanted


async def _sent_rows_are(db: Database, wanted: int) -> bool:
    return await _sent_rows(db) == wanted


async def _settled_scrape(port: int, before: Scrape) -> Scrape:
    """A scrape once the last outcome is counted (the sender counts right after its commit,
    which the test may see a moment earlier)."""

    async def ready() -> Scrape | None:
        after = await fetch_metrics(port)
        moved = after - before
        return after if moved("pytrs_outbox_deliveries_total", result="sent") >= 3 else None

    found: Scrape = await wait_until(ready, within=5)
    return found


async def test_depths_come_from_the_database(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay
) -> None:
    """Rows another daemon (here: the test) left in the inbox and outbox show in the gauges."""
    running = await start_daemon(_config(database_settings, relay, smtp={"listen": []}))
    async with db.transaction() as conn:
        [row] = await inbox_repo.store(conn, [InboxItem(source="smtp", raw=make_mail())])
        await conn.execute(
            update(inbox)
            .where(inbox.c.id == row)
            .values(state=inbox_repo.QUARANTINED, received_at=datetime(2020, 1, 1))
        )
    scrape = await fetch_metrics(running.port("web"))
    assert scrape.value("pytrs_inbox_messages", state="quarantined") == 1
    assert scrape.value("pytrs_quarantine_messages") == 1
    assert scrape.value("pytrs_inbox_oldest_age_seconds", state="quarantined") > 86400 * 365
    assert scrape.value("pytrs_inbox_messages", state="pending") == 0
    assert scrape.value("pytrs_inbox_oldest_age_seconds", state="pending") == 0
    assert await running.stop() == 0


async def test_worker_children_are_counted_by_their_parent(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, tmp_path: Path
) -> None:
    """`[postmaster] processes = 2`: the tickets are made in the children, their counters
    show in the parent's `/metrics`, and a child killed mid-way takes none of them along."""
    # The children read the configuration file (`pytrs run --role worker`).
    extra = "[postmaster]\nprocesses = 2\npoll_interval_seconds = 0.2\n"
    config = load_config(write_config(tmp_path / "pytrs.toml", database_settings, extra), {})
    config = replace(config, web=replace(config.web, listen="127.0.0.1:0"))
    running = await start_daemon(config)
    web, smtp = running.port("web"), running.port("smtp")
    assert running.daemon.metrics_dir and running.daemon.workers == []
    before = await fetch_metrics(web)
    for i in range(4):
        await send(smtp, make_mail(subject=f"Child mail {i}"))
    await wait_until(lambda: _count_tickets(db, 4), within=30)
    moved = await _moved_until(web, before, "pytrs_tickets_created_total", 4)
    assert moved("pytrs_processing_latency_seconds_count") == 4
    assert moved("pytrs_mail_processed_total", outcome="new_ticket") == 4
    assert moved("pytrs_mail_accepted_total", source="smtp", listener=LISTENER) == 4
    # A child dies: not ready while it is restarted, its counts stay in the parent's sum.
    children = running.daemon.children
    assert children is not None
    os.kill(children.children[0].pid, signal.SIGKILL)
    problem = await wait_until(lambda: _not_ready(web), within=10, interval=0.02)
    assert "worker-processes restarting" in problem
    await wait_until(lambda: _ready(web), within=30)
    await send(smtp, make_mail(subject="After the crash"))
    await wait_until(lambda: _count_tickets(db, 5), within=30)
    moved = await _moved_until(web, before, "pytrs_tickets_created_total", 5)
    assert moved("pytrs_processing_latency_seconds_count") == 5
    assert await running.stop() == 0


async def _moved_until(port: int, before: Scrape, name: str, wanted: float) -> Any:
    async def check() -> Any:
        moved = await fetch_metrics(port) - before
        return moved if moved(name) == wanted else None

    return await wait_until(check, within=10)


async def _not_ready(port: int) -> str:
    answer = await get(port, "/readyz")
    if answer.status_code != 503:
        return ""
    [services] = [c for c in answer.json()["checks"] if c["name"] == "services"]
    return str(services["reason"])


async def _ready(port: int) -> bool:
    return (await get(port, "/readyz")).status_code == 200


async def test_scrapes_do_not_block_the_loop_meanwhile(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay
) -> None:
    """Concurrent scrapes while mail arrives: each answers, none fails."""
    running = await start_daemon(_config(database_settings, relay, auto_responses=[]))
    web, smtp = running.port("web"), running.port("smtp")
    scrapes = [fetch_metrics(web) for _ in range(5)]
    mails = [send(smtp, make_mail(subject=f"Busy {i}")) for i in range(5)]
    results = await asyncio.gather(*scrapes, *mails)
    assert all(isinstance(r, Scrape) for r in results[:5])
    await wait_until(lambda: _count_tickets(db, 5))
    assert await running.stop() == 0


async def test_metrics_listen_is_a_listener_of_its_own(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay
) -> None:
    """`[web] metrics_listen`: the ops endpoints there and only there; the services of the
    daemon all running."""
    config = _config(database_settings, relay, web={"metrics_listen": "127.0.0.1:0"})
    running = await start_daemon(config)
    web, ops = running.port("web"), running.port("metrics")
    assert "metrics" in [kind for kind, _ in running.daemon.bound]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await get(web, path)).status_code == 404, path
        assert (await get(ops, path)).status_code == 200, path
    assert (await get(ops, "/login")).status_code == 404
    assert (await get(web, "/login")).status_code == 200
    ready = (await get(ops, "/readyz")).json()
    assert ready["status"] == "ready"
    services = running.daemon.services.running()
    assert {"inbox-writer", "worker-1", "outbox-sender", "address-book"} <= set(services)
    assert all(services.values())
    scrape = await fetch_metrics(ops)
    assert scrape.value("pytrs_service_up", service="inbox-writer") == 1
    assert await running.stop() == 0
    assert running.daemon.services.problems()["inbox-writer"].startswith("stopped")


async def test_metrics_listen_on_a_unix_socket(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, tmp_path: Path
) -> None:
    """A unix socket's peers are local processes the socket file's permissions let in: they
    may read the endpoints there; a forwarded address (a local proxy) is checked as usual."""
    path = str(tmp_path / "metrics.sock")
    config = make_config(database_settings, web={"listen": "", "metrics_listen": path})
    running = await start_daemon(config)
    transport = httpx.AsyncHTTPTransport(uds=path)
    async with httpx.AsyncClient(transport=transport, base_url="http://pytrs") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).text.count("pytrs_mail_accepted_total") >= 1
        forwarded = await client.get("/metrics", headers={"x-forwarded-for": "203.0.113.5"})
        assert forwarded.status_code == 404
    assert await running.stop() == 0
