"""`pytrs run`: every service of one process as named tasks, and an orderly shutdown.

Start-up: check the schema is at head, provision queues/addresses/agents from the
configuration, then start the inbox writer, the postmaster workers, the outbox sender, the
scheduler (escalations, pending reminders: `pytrs.scheduler`) and the SMTP/LMTP listeners,
and tell systemd we are ready. On SIGTERM/SIGINT: stop accepting connections and starting
scheduler jobs, let sessions in DATA finish for a moment, commit what the writer holds, let the
workers drain the inbox until the deadline, let the scheduler's running job end, let the
sender finish the mail in hand, and exit 0.
A second signal exits at once. Whatever was acknowledged is in the inbox table, and whatever is
to be sent in the outbox, so even `kill -9` loses nothing: the next start finishes the work.

SIGHUP reloads the configuration file (`_reload_once`): read and checked as `pytrs run` does,
every piece built and the file provisioned before anything is swapped, then each service takes
the new settings at its next step; a refused file changes nothing. Keys that need a restart are
named in a warning (`pytrs.reload`).

Every supervised service reports its state to `services` (running, restarting after a crash,
stopped), which `/readyz` reads; `[web] metrics_listen` gets a listener of its own serving the
ops endpoints, in any role but a worker child's (its parent exports the child's counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from pytrs.config import Config, ConfigError, listen_address
from pytrs.gateway.addresses import AddressBook
from pytrs.gateway.fetchers import MailboxFetchers
from pytrs.gateway.inbox_writer import InboxWriter
from pytrs.gateway.smtp import IngressHandler, SessionBook, start_server
from pytrs.gateway.tls import ListenerSecurity, ListenerTls
from pytrs.metrics.status import StatusReader
from pytrs.outbound.dkim import DkimSigner
from pytrs.outbound.sender import OutboxSender
from pytrs.postmaster.worker import PostmasterWorker, WorkerSettings
from pytrs.preflight import check_startup
from pytrs.provisioning import provision
from pytrs.reload import Reloads, count_reload, mark_applied, restart_changes
from pytrs.runtime.big_messages import BigMessageSlots
from pytrs.runtime.logs import configure_logging
from pytrs.runtime.services import ServiceStates, supervise
from pytrs.runtime.systemd import sd_notify  # also imported from here by older code
from pytrs.runtime.watchdog import Watchdog
from pytrs.scheduler.clock import Scheduler
from pytrs.scheduler.due_scan import DueScanner
from pytrs.schema import inbox_repo, migrate
from pytrs.schema.database import (
    Database,
    create_database,
    probe,
    refresh_planner_statistics,
)
from pytrs.schema.system_data import with_runtime_secrets
from pytrs.tickets.service import TicketService
from pytrs.web.ops import OpsContext, create_ops_app
from pytrs.web.service import WebService, WebStartError, bind
from pytrs.worker_processes import Preforked, WorkerProcesses, follow_parent, prefork

log = logging.getLogger(__name__)

ROLES = ("gateway", "worker", "sender", "scheduler", "web")
SESSION_GRACE_SECONDS = 3.0
# uvicorn lets requests in flight finish for GRACEFUL_SECONDS; a little more before cancelling.
WEB_STOP_SECONDS = 10.0
# How soon the SMTP/LMTP listeners accept an address another daemon's start provisioned (or
# stop accepting one it retired); the workers check before every batch anyway.
ADDRESS_BOOK_REFRESH_SECONDS = 2.0
# How long the shutdown waits for a reload under way (it provisions in one transaction).
RELOAD_STOP_SECONDS = 10.0
# At exit, how long tasks a library left running get to end once cancelled.
LEFTOVER_SECONDS = 5.0
# How long a reload waits for the worker children to say they applied it too.
CHILD_RELOAD_SECONDS = 30.0


class StartupError(Exception):
    """The daemon cannot start (schema not at head, port in use …); exit non-zero."""


@dataclass(frozen=True)
class ReloadPlan:
    """Everything a reload swaps in, built (and provisioned) before any of it is used."""

    config: Config
    signer: DkimSigner | None
    workers: list[WorkerSettings]
    due_scan: DueScanner | None
    tickets: TicketService | None
    listener_security: ListenerSecurity | None


class Daemon:
    """The services of one pytrs process."""

    def __init__(
        self, config: Config, roles: tuple[str, ...] = ROLES, *, notify_stdin: bool = False,
        loader: Callable[[], Config] | None = None, preforked: Sequence[Preforked] = (),
        metrics_dir: str = "",
    ) -> None:  # fmt: skip
        """`loader` reads the configuration again as `pytrs run` read it (same file, same
        environment overrides): SIGHUP and `reload()` use it; without it they are refused.
        `preforked`: worker children `run_daemon` forked for this daemon, counting in
        `metrics_dir`."""
        self.config = config
        self.preforked = preforked
        self.loader = loader
        self._reloads = Reloads(self._reload_once)
        self._handlers: list[tuple[str, IngressHandler]] = []
        self.roles = roles
        # Set in a worker child: notifications arrive on stdin, and its end means stop.
        self.notify_stdin = notify_stdin
        self.children: WorkerProcesses | None = None
        self.fetchers: MailboxFetchers | None = None
        self.db: Database | None = None
        self.addresses = AddressBook()
        self.workers: list[PostmasterWorker] = []
        self.writer: InboxWriter | None = None
        self.sender: OutboxSender | None = None
        # One set of slots for the listeners and the workers: the bound is on this process.
        self.big_messages = BigMessageSlots(config.smtp.max_concurrent_big_messages)
        self._sender_task: asyncio.Task[None] | None = None
        self.scheduler: Scheduler | None = None
        self._scheduler_task: asyncio.Task[None] | None = None
        self.web: WebService | None = None
        self._web_task: asyncio.Task[None] | None = None
        self.services = ServiceStates()
        # Where worker child processes keep their counters (multiprocess mode), "" if none.
        self.metrics_dir = metrics_dir
        self.ops_web: WebService | None = None
        self._ops_task: asyncio.Task[None] | None = None
        self.servers: list[asyncio.Server] = []
        self.bound: list[tuple[str, Any]] = []  # (kind, sockname) of each listener
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self._sessions = SessionBook()
        # The listeners' TLS context and AUTH users, read per session (reload: SIGHUP).
        self.listener_tls: ListenerTls | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Run until a stop is requested; returns the process exit code."""
        # Never create the database here: a daemon pointed at a mistyped path says so and stops.
        self.db = create_database(self.config.database, create_missing=False)
        loop = asyncio.get_running_loop()
        # From the first moment: SIGHUP's default action would end a daemon still starting. A
        # reload asked for then runs once the daemon has started.
        hup = False
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._on_hup)
            hup = True
        try:
            await self._start()
            return await self._serve()
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
                # Not back to the default action, which ends the process: a late SIGHUP
                # (`systemctl reload` during the last moments of a stop) must not turn a clean
                # exit into a kill.
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
            await self.db.close()
            if self.metrics_dir:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)

    async def _start(self) -> None:
        assert self.db is not None
        # Unreachable server, unreadable file, wrong credentials, schema of another version:
        # each raises its own StorageError, which `pytrs run` reports in one line.
        await probe(self.db)
        await migrate.require_head(self.db)
        await refresh_planner_statistics(self.db)
        sd_notify("STATUS=starting: provisioning")
        try:
            await provision(self.db, self.config)
        except ConfigError as exc:  # e.g. an auto-response template that does not compile
            raise StartupError(str(exc)) from exc
        # Before any service is built: they all sign or check loop markers with this key.
        self.config = await with_runtime_secrets(self.db, self.config)
        released = await inbox_repo.release_dead_claims(self.db)
        if released:
            log.info("released %d inbox claim(s) of a daemon that died", released)
        await self.addresses.reload(self.db)
        processes = self.config.postmaster.processes
        if "worker" in self.roles and processes and not self.notify_stdin:
            self.metrics_dir = self.metrics_dir or tempfile.mkdtemp(prefix="pytrs-metrics-")
            self.children = WorkerProcesses(
                self.config,
                processes,
                metrics_dir=self.metrics_dir,
                states=self.services,
                preforked=self.preforked,
            )
        elif "worker" in self.roles:
            try:
                self.workers = [
                    PostmasterWorker(
                        self.config, self.db, self.addresses, name=f"worker-{i + 1}",
                        on_outbox=self.wake_sender, big_messages=self.big_messages,
                    )
                    for i in range(max(1, self.config.postmaster.workers))
                ]  # fmt: skip
            except ConfigError as exc:  # e.g. an unresolvable [authentication] dns_resolver
                raise StartupError(str(exc)) from exc
        if "sender" in self.roles:
            self.sender = self._make_sender()
        if "scheduler" in self.roles and not self.notify_stdin:
            try:
                self.scheduler = Scheduler(self.config, self.db, on_outbox=self.wake_sender)
            except ConfigError as exc:  # a [scheduler] template that does not compile
                raise StartupError(str(exc)) from exc
        smtp = self.config.smtp
        self.writer = InboxWriter(
            self.db,
            batch_max=smtp.commit_batch_max,
            delay_ms=smtp.commit_delay_ms,
            on_commit=self._wake_workers,
        )

    def _make_sender(self) -> OutboxSender:
        assert self.db is not None
        try:
            # DKIM keys are read once, here: an unreadable key stops the start, naming it.
            signer = DkimSigner.from_config(self.config.dkim_keys)
        except ConfigError as exc:
            raise StartupError(str(exc)) from exc
        return OutboxSender(self.config, self.db, signer)

    def wake_sender(self, count: int = 1) -> None:
        """Rows were committed to the outbox in this process: send them now, not at the next
        poll. Hand this to whatever enqueues mail."""
        if self.sender is not None:
            self.sender.notify(count)

    def _wake_workers(self, count: int) -> None:
        for worker in self.workers:
            worker.notify(count)
        if self.children is not None:
            self.children.notify(count)

    async def _start_listeners(self) -> None:
        assert self.writer is not None
        smtp = self.config.smtp
        trusted = self.config.postmaster.trusted_sources
        try:
            self.listener_tls = ListenerTls(self.config)
        except ConfigError as exc:  # a certificate or users file changed since the check
            raise StartupError(str(exc)) from exc
        for kind, specs in (("smtp", smtp.listen), ("lmtp", smtp.lmtp_listen)):
            for spec in specs:
                handler = IngressHandler(
                    self.addresses, self.writer, source=kind, trusted=kind in trusted,
                    max_recipients=smtp.max_recipients, per_recipient_status=kind == "lmtp",
                    listener=spec,
                )  # fmt: skip
                try:
                    server = await start_server(
                        handler, listen_address(spec), lmtp=kind == "lmtp",
                        hostname=smtp.hostname, max_message_size=smtp.max_message_size,
                        sessions=self._sessions, big_messages=self.big_messages,
                        security=self.listener_tls,
                    )  # fmt: skip
                except OSError as exc:  # address in use, not ours, permission denied …
                    key = "smtp.listen" if kind == "smtp" else "smtp.lmtp_listen"
                    # asyncio's strerror repeats the address; the errno's own text does not.
                    why = os.strerror(exc.errno) if exc.errno else str(exc)
                    raise StartupError(
                        f"cannot listen for {kind.upper()} on {spec}: {why.lower()} (see {key})"
                    ) from exc
                self.servers.append(server)
                self._handlers.append((kind, handler))  # a reload changes their settings
                for sock in server.sockets:
                    self.bound.append((kind, sock.getsockname()))
                    log.info("%s listening on %s", kind.upper(), sock.getsockname())

    async def _serve(self) -> int:
        assert self.writer is not None
        loop = asyncio.get_running_loop()
        installed = []
        signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
        if self.notify_stdin:
            # A worker child ignores SIGINT from its start (see cli): Ctrl-C reaches the whole
            # process group, and the parent's own stop request follows.
            signals = (signal.SIGTERM,)
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal)
                installed.append(signum)
        try:
            await self._run_services()
        except ExceptionGroup as group:
            # A listener that cannot bind fails inside the task group; report it alone, not
            # wrapped in an ExceptionGroup, so that `pytrs run` can say it in one line.
            startup = group.subgroup(StartupError)
            if startup is None:
                raise
            for server in self.servers:  # the listeners bound before the one that failed
                server.close()
            raise startup.exceptions[0] from None
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
        log.info("pytrs stopped")
        return 0

    async def _follow_address_book(self) -> None:
        """Keep the listeners' address book current. There is no event to wait for: the change
        may come from another process or daemon, so the database is asked now and then."""
        assert self.db is not None
        while True:
            await asyncio.sleep(ADDRESS_BOOK_REFRESH_SECONDS)
            try:
                changed = await self.addresses.refresh(self.db)
            except Exception as exc:  # a database outage: keep the book we have, ask again later
                log.warning("could not check the system addresses: %s", str(exc).partition("\n")[0])
                continue
            if changed:
                log.info(
                    "system addresses changed: %d accepted", len(self.addresses.queues_by_address)
                )

    async def _run_services(self) -> None:
        assert self.writer is not None
        async with asyncio.TaskGroup() as tasks:
            writer_task = tasks.create_task(
                self._supervise("inbox-writer", self.writer.run), name="inbox-writer"
            )
            worker_tasks = [
                tasks.create_task(self._supervise(w.name, w.run), name=w.name) for w in self.workers
            ]
            children_task = (
                tasks.create_task(self.children.run(), name="worker-processes")
                if self.children is not None
                else None
            )
            parent_task = (
                tasks.create_task(
                    follow_parent(self._wake_workers, self.request_stop, self._reloads.request),
                    name="parent",
                )
                if self.notify_stdin
                else None
            )
            if self.sender is not None:
                self._sender_task = tasks.create_task(
                    self._supervise("outbox-sender", self.sender.run), name="outbox-sender"
                )
            if self.scheduler is not None:
                self._scheduler_task = tasks.create_task(
                    self._supervise("scheduler", self.scheduler.run), name="scheduler"
                )
            fetchers_task = addresses_task = None
            if "gateway" in self.roles:
                addresses_task = tasks.create_task(
                    self._supervise("address-book", self._follow_address_book), name="address-book"
                )
                await self._start_listeners()
                assert self.db is not None
                self.fetchers = MailboxFetchers(self.config, self.db, self._wake_workers)
                fetching = (  # no accounts: nothing runs, so nothing to report
                    self._supervise("fetchers", self.fetchers.run, max_restarts=0)
                    if self.fetchers.tasks
                    else self.fetchers.run()
                )
                fetchers_task = tasks.create_task(fetching, name="fetchers")
            if "web" in self.roles and self.config.web.listen:
                self._start_web()
                self._web_task = tasks.create_task(self._serve_web(), name="web")
            if self.config.web.metrics_listen and not self.notify_stdin:
                self._ops_task = tasks.create_task(self._serve_ops(), name="ops")
            assert self.db is not None
            status = StatusReader(self.config, self.db, fetching="gateway" in self.roles)
            watchdog = (  # a worker child is not the process systemd watches
                None if self.notify_stdin else tasks.create_task(
                    Watchdog(self.services, status.read, stopping=self._stop).run(),
                    name="watchdog",
                )
            )  # fmt: skip
            sd_notify("READY=1")
            self.started.set()
            if not self.notify_stdin:
                mark_applied()
            log.info("pytrs started: %s", self._describe_services())
            await self._stop.wait()
            sd_notify("STOPPING=1")
            await self._finish_reload()
            self.services.stop_all("the daemon is shutting down")
            await self._shutdown(writer_task, worker_tasks, fetchers_task)
            for task in (children_task, parent_task, addresses_task, watchdog):
                if task is not None:
                    task.cancel()

    def _supervise(
        self, name: str, run: Callable[[], Awaitable[None]], **options: Any
    ) -> Coroutine[Any, Any, None]:
        return supervise(name, run, states=self.services, **options)

    def _start_web(self) -> None:
        """Bind `[web] listen` now (a port in use stops the start in one line); uvicorn
        accepts on it once the app's start-up is done."""
        assert self.db is not None
        spec = self.config.web.listen
        try:
            sock = bind(listen_address(spec))
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(
                f"cannot listen for the web view on {spec}: {why.lower()} (see web.listen)"
            ) from exc
        wake = self.wake_sender if self.sender is not None else None
        ops = OpsContext(self.services, self.metrics_dir)
        self.web = WebService(self.config, self.db, sock, wake_sender=wake, ops_context=ops)
        self.bound.append(("web", self.web.sockname))
        log.info("web view listening on %s", self.web.sockname)

    async def _serve_web(self) -> None:
        assert self.web is not None
        try:
            await self.web.serve()
        except WebStartError as exc:
            raise StartupError(str(exc)) from exc

    async def _serve_ops(self) -> None:
        """`[web] metrics_listen`: the ops endpoints alone (bound before READY=1 is sent)."""
        assert self.db is not None
        spec = self.config.web.metrics_listen
        try:
            sock = bind(listen_address(spec))
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(
                f"cannot listen for the ops endpoints on {spec}: {why.lower()} "
                "(see web.metrics_listen)"
            ) from exc
        app = create_ops_app(self.config, self.db, OpsContext(self.services, self.metrics_dir))
        self.ops_web = WebService(self.config, self.db, sock, app=app)
        self.bound.append(("metrics", self.ops_web.sockname))
        log.info("ops endpoints listening on %s", self.ops_web.sockname)
        await self.ops_web.serve()

    async def _stop_web(self) -> None:
        for service, task in ((self.web, self._web_task), (self.ops_web, self._ops_task)):
            if service is None or task is None:
                continue
            service.request_stop()
            _done, pending = await asyncio.wait({task}, timeout=WEB_STOP_SECONDS)
            if pending:
                log.warning("%s did not stop in time; cancelling", task.get_name())
                task.cancel()

    def _describe_services(self) -> str:
        """What this process actually runs (roles of later issues are not listed until built)."""
        parts = [f"{kind} on {address}" for kind, address in self.bound]
        if self.fetchers is not None and self.fetchers.tasks:
            parts.append(f"{len(self.fetchers.tasks)} mail account(s)")
        if self.workers:
            parts.append(f"{len(self.workers)} postmaster worker(s)")
        if self.children is not None:
            parts.append(f"{self.children.count} worker process(es)")
        if self.sender is not None:
            parts.append(f"outbox sender to {self.config.outbound.relay}")
        if self.scheduler is not None:
            parts.append(f"scheduler every {self.scheduler.interval:g} s")
        return ", ".join(parts) or "nothing"

    def _on_signal(self) -> None:
        if self._stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("stop requested: no longer accepting mail, draining")
        self._stop.set()

    def _on_hup(self) -> None:
        if self._stop.is_set():
            log.info("SIGHUP during shutdown: ignored")
            return
        self._reloads.request()

    async def reload(self) -> bool:
        """Read the configuration again and apply it, as SIGHUP does; True if it was applied,
        False if it was refused (the running configuration stays, every error is logged)."""
        return await self._reloads.reload()

    async def _reload_once(self) -> bool:
        await self.started.wait()
        if self._stop.is_set():
            log.info("reload skipped: the daemon is shutting down")
            return False
        # systemd's Type=notify-reload wants the monotonic time of the request with RELOADING.
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            ok = await self._reload_checked()
        except Exception as exc:  # the database went away while provisioning …
            log.debug("reload failed", exc_info=True)
            ok = _refuse([f"{type(exc).__name__}: {str(exc).partition(chr(10))[0]}"], "")
        if not self.notify_stdin:  # a child's counts would be added to its parent's
            count_reload(ok)
        status = "configuration reloaded" if ok else "reload refused; previous configuration kept"
        sd_notify(f"READY=1\nSTATUS={status}")
        return ok

    async def _reload_checked(self) -> bool:
        if self.loader is None:
            log.error(
                "reload refused: this daemon was not started from a configuration file, so "
                "there is none to read again; restart it to change its settings"
            )
            return False
        log.info("reload: reading %s", self.config.source)
        loader = self.loader

        def read() -> Config:
            new = loader()
            check_startup(new)  # what `pytrs run` and `pytrs config check` check
            return new

        try:
            # In a thread: the checks load keys, compile templates and may resolve a host.
            new = await asyncio.to_thread(read)
            plan = await self._prepare_reload(new)
        except ConfigError as exc:
            return _refuse(exc.errors, exc.source or self.config.source)
        await self._apply_reload(plan)
        return True

    async def _prepare_reload(self, new: Config) -> ReloadPlan:
        """Build every piece the new configuration needs, then provision it (one transaction):
        raises ConfigError, and then nothing has changed."""
        assert self.db is not None
        new = await with_runtime_secrets(self.db, new)
        scheduler = self.scheduler

        def build() -> ReloadPlan:
            return ReloadPlan(
                new,
                DkimSigner.from_config(new.dkim_keys) if self.sender is not None else None,
                [WorkerSettings.build(new, worker.name) for worker in self.workers],
                scheduler.build_scan(new) if scheduler is not None else None,
                TicketService.from_config(new) if self.web is not None else None,
                # Certificates and AUTH users read anew: a renewed certificate needs no restart.
                self.listener_tls.prepare(new) if self.listener_tls is not None else None,
            )

        # Keys are read and templates compiled off the loop: SMTP sessions keep being answered.
        plan = await asyncio.to_thread(build)
        if not self.notify_stdin:  # a worker child's parent has provisioned already
            await provision(self.db, new)
        return plan

    async def _apply_reload(self, plan: ReloadPlan) -> None:
        """Swap the pieces in; nothing here can refuse. Each service takes them at its next
        step (a batch, a connection, a session), so nothing in hand is dropped."""
        assert self.db is not None
        old, new = self.config, plan.config
        self.config = new
        configure_logging(new.daemon)
        try:  # now, not at the next refresh: the listeners answer for the new addresses
            await self.addresses.reload(self.db)
        except Exception as exc:
            log.warning("could not reload the system addresses: %s", str(exc).partition("\n")[0])
        for worker, settings in zip(self.workers, plan.workers, strict=True):
            worker.reconfigure(settings)
        if self.sender is not None and plan.signer is not None:
            self.sender.reconfigure(new, plan.signer)
        if self.scheduler is not None and plan.due_scan is not None:
            self.scheduler.reconfigure(new, plan.due_scan)
        if self.fetchers is not None:
            self.fetchers.reconfigure(new)
        self._reload_listeners(new, plan.listener_security)
        if self.web is not None and plan.tickets is not None:
            # Requests read both from the app's state as they start: new ones see the reload.
            self.web.app.state.config = new
            self.web.app.state.tickets = plan.tickets
        if self.children is not None:
            answers = await self.children.reload(new, CHILD_RELOAD_SECONDS)
            for pid, answer in answers.items():
                if answer != "ok":
                    log.warning("worker process %d did not apply the reload: %s", pid, answer)
        for key in restart_changes(old, new):
            log.warning("%s changed: takes effect at the next restart", key)
        log.info("configuration reloaded from %s", new.source)

    def _reload_listeners(self, config: Config, security: ListenerSecurity | None) -> None:
        """The listeners' settings for what comes next: the size limit, TLS certificate and
        AUTH users for sessions opened from now on, the recipient limit and trust for the next
        transaction. Open sessions are left alone (a TLS session keeps the certificate it was
        opened with). The listen addresses themselves need a restart."""
        smtp = config.smtp
        trusted = config.postmaster.trusted_sources
        for kind, handler in self._handlers:
            handler.max_recipients = smtp.max_recipients
            handler.trusted = kind in trusted
            handler.max_message_size = smtp.max_message_size
        if self.listener_tls is not None and security is not None:
            self.listener_tls.apply(security)

    async def _finish_reload(self) -> None:
        """At shutdown: let a reload under way end (it may be provisioning) before the services
        stop, so that it never reconfigures a service being stopped."""
        task = self._reloads.running
        if task is None:
            return
        _done, pending = await asyncio.wait({task}, timeout=RELOAD_STOP_SECONDS)
        if pending:
            log.warning("the reload under way did not finish in time; cancelling it")
            task.cancel()

    async def _shutdown(
        self,
        writer_task: asyncio.Task[None],
        worker_tasks: list[asyncio.Task[None]],
        fetchers_task: asyncio.Task[None] | None,
    ) -> None:
        assert self.writer is not None
        deadline = asyncio.get_running_loop().time() + self.config.daemon.drain_seconds
        if self.fetchers is not None:
            self.fetchers.request_stop()  # they finish the batch they are committing
        if self.scheduler is not None:
            self.scheduler.stop()  # no new job starts; the running one ends below
        # The listeners stay open until the end of the drain, answering 421 (a client told
        # so retries later; a refused TCP connection looks like an outage), and so does every
        # session: its next command gets 421.
        self._sessions.begin_drain()
        web_stopped = asyncio.create_task(self._stop_web())
        # Sessions already in DATA get a moment to be stored and answered; those still in it
        # then are cut (an unanswered client retries later, so cutting them loses nothing).
        await _wait_until(lambda: not self._sessions.in_data(), SESSION_GRACE_SECONDS)
        self._sessions.cut_data()
        if fetchers_task is not None:
            remaining = max(0.1, deadline - asyncio.get_running_loop().time())
            await asyncio.wait({fetchers_task}, timeout=remaining)
            fetchers_task.cancel()
        await self.writer.close()
        writer_task.cancel()
        for worker in self.workers:
            worker.stop()
        if self.children is not None:
            await self.children.stop(deadline)
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        _done, pending = (
            await asyncio.wait(worker_tasks, timeout=remaining) if worker_tasks else (set(), set())
        )
        for task in pending:
            log.warning("%s did not finish before the drain deadline; cancelling", task.get_name())
            task.cancel()
        await self._stop_scheduler()
        await self._stop_sender(deadline)
        await web_stopped
        for server in self.servers:
            server.close()
        self._sessions.close()

    async def _stop_scheduler(self) -> None:
        """Before the sender (a due scan queues mail): the running job commits or, after a
        moment, is cancelled and rolls back; the next start fires what it had claimed."""
        if self._scheduler_task is not None:
            await asyncio.wait({self._scheduler_task})

    async def _stop_sender(self, deadline: float) -> None:
        """After the workers (which may still enqueue mail): finish the mail in hand and record
        every outcome. A cancelled sender loses nothing: unsent rows go back to the queue."""
        task = self._sender_task
        if self.sender is None or task is None:
            return
        self.sender.stop()
        # At least a moment, so that a transaction already under way can end with its reply.
        remaining = max(2.0, deadline - asyncio.get_running_loop().time())
        _done, pending = await asyncio.wait({task}, timeout=remaining)
        if pending:
            log.warning("outbox-sender did not finish before the drain deadline; cancelling")
            task.cancel()


def _refuse(errors: list[str], source: str) -> bool:
    """Log why a reload was refused, one line per error naming its key; returns False."""
    for error in errors:
        log.error("reload refused: %s", error)
    where = f" in {source}" if source else ""
    log.error(
        "reload refused: %d error(s)%s; still running on the configuration loaded before",
        len(errors), where,
    )  # fmt: skip
    return False


async def _wait_until(condition: Callable[[], bool], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    # aiosmtpd's sessions offer no event to await; this runs once, at shutdown.
    while not condition() and loop.time() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def run_daemon(
    config: Config, roles: tuple[str, ...] = ROLES, *, notify_stdin: bool = False,
    loader: Callable[[], Config] | None = None,
) -> int:  # fmt: skip
    """Entry point of `pytrs run`: check the configuration as `pytrs config check` does,
    choose the event loop and run the daemon (`loader` reads the file again on SIGHUP).

    Raises ConfigError (before anything starts) and StartupError.
    """
    check_startup(config)
    new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if config.daemon.event_loop in ("auto", "uvloop"):
        try:
            import uvloop

            new_loop = uvloop.new_event_loop
        except ImportError:
            pass  # "auto"; an explicit "uvloop" without uvloop was refused by check_startup
    preforked: list[Preforked] = []
    metrics_dir = ""
    processes = config.postmaster.processes
    if "worker" in roles and processes and not notify_stdin:
        # Before the loop and any thread exist, so that the children share what is imported.
        metrics_dir = tempfile.mkdtemp(prefix="pytrs-metrics-")
        preforked = prefork(config, processes, metrics_dir)
    daemon = Daemon(
        config, roles, notify_stdin=notify_stdin, loader=loader, preforked=preforked,
        metrics_dir=metrics_dir,
    )  # fmt: skip
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        code = loop.run_until_complete(daemon.run())
        loop.run_until_complete(_end_leftovers(LEFTOVER_SECONDS))
        loop.run_until_complete(loop.shutdown_asyncgens())
        return int(code)
    finally:
        for child in preforked:  # a daemon that did not start never took them over
            child.abandon()
        asyncio.set_event_loop(None)
        loop.close()


async def _end_leftovers(seconds: float) -> None:
    """After the daemon stopped: cancel the tasks libraries left running and give them a
    moment, but never wait for one forever. (`asyncio.run` does: a connection close that
    aiosqlite could not finish once kept the process from exiting. pytrs's SQLite connections
    no longer go through aiosqlite, whose close cannot hang that way; this stays as the net for
    any other library's task.) Everything durable was committed and the database closed before
    this runs."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    if not leftovers:
        return
    _done, stuck = await asyncio.wait(leftovers, timeout=seconds)
    if stuck:
        names = ", ".join(sorted(task.get_name() for task in stuck))
        log.warning("%d task(s) did not end at exit, left behind: %s", len(stuck), names)
        for task in stuck:
            # Said above, once: asyncio would add "Task was destroyed but it is pending!" at
            # ERROR when the closed loop lets go of it.
            task._log_destroy_pending = False  # type: ignore[attr-defined]
