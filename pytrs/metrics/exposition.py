"""`/metrics` as Prometheus reads it: this process's counters, its worker children's, and the
depths the database holds at the moment of the scrape.

Place in the flow: the ops endpoint (`web.ops`) awaits `Exposition.refresh` (one short read of
the database through `schema.ops_repo`, setting the "(database)" gauges of `registry`) and
then returns `render()`.

Worker child processes (`[postmaster] processes = N`) count in prometheus-client's
multiprocess mode: the parent starts them with `PROMETHEUS_MULTIPROC_DIR` set to a directory of
its own (`children_dir`), where each child keeps its counters in memory-mapped files that
outlive it (a child restarted after a crash does not take its counts with it). `render` adds
their counters and histograms to the parent's own, sample by sample, so the scrape shows one
figure per series for the whole daemon. Gauges are the parent's alone: the children set none.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from pytrs.metrics import registry as m
from pytrs.runtime.services import ServiceStates
from pytrs.schema import ops_repo
from pytrs.schema.database import Database, reason, utcnow

log = logging.getLogger(__name__)

# The variable prometheus-client reads at import: set only in the children's environment.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A scrape must not hang on a database that does not answer; its gauges are then stale.
REFRESH_TIMEOUT_SECONDS = 3.0
_SUMMED = ("counter", "histogram")


def count_in_directory() -> None:
    """In a worker child forked after `registry` was imported, with MULTIPROC_ENV now set:
    count in that directory from here on, as a child started with the variable would.

    prometheus-client picks its value storage once, at import, and every metric made its
    values then; so the storage is picked again and every value made again (the child has
    counted nothing yet). The labelled children are made again at their first `labels()`.
    """
    values.ValueClass = values.get_value_class()
    for metric in vars(m).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        if metric._is_parent():
            with metric._lock:
                metric._metrics.clear()
        else:
            metric._metric_init()


class Exposition:
    """The `/metrics` document of one daemon."""

    def __init__(
        self, db: Database, accounts: Sequence[str] = (), children_dir: str = "",
        services: ServiceStates | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.accounts = tuple(accounts)
        self.services = services
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Merged(REGISTRY, children_dir))

    async def refresh(self) -> None:
        """Set the database gauges from one read; on failure they keep their last values and
        `pytrs_database_up` says they are stale."""
        for name, up in (self.services.running() if self.services else {}).items():
            m.SERVICE_UP.labels(name).set(1 if up else 0)
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS), self.db.connect() as conn:
                found = await ops_repo.depths(conn)
        except Exception as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else reason(exc)
            log.warning("metrics: cannot read the queue depths: %s", why)
            m.DATABASE_UP.set(0)
            return
        m.DATABASE_UP.set(1)
        now = utcnow()
        for state, count in found.inbox.items():
            m.INBOX_MESSAGES.labels(state).set(count)
            m.INBOX_OLDEST_AGE.labels(state).set(_age(now, found.inbox_oldest[state]))
        m.QUARANTINE_MESSAGES.set(found.inbox.get(ops_repo.inbox_repo.QUARANTINED, 0))
        for state, count in found.outbox.items():
            m.OUTBOX_MESSAGES.labels(state).set(count)
        m.OUTBOX_OLDEST_AGE.set(_age(now, found.outbox_oldest))
        for account in self.accounts:
            at = found.fetched_at.get(account)
            m.FETCH_LAST_SUCCESS_AGE.labels(account).set(-1 if at is None else _age(now, at))

    def render(self) -> bytes:
        """The text exposition format (prometheus_client.CONTENT_TYPE_LATEST)."""
        return generate_latest(self.registry)


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


class _Merged(Collector):
    """The process's registry plus the children's counters and histograms, summed."""

    def __init__(self, own: CollectorRegistry, children_dir: str) -> None:
        self.own = own
        self.children_dir = children_dir

    def collect(self) -> Iterator[Metric]:
        families = {f.name: f for f in self.own.collect()}
        for child in self._children():
            if child.type not in _SUMMED:
                continue
            mine = families.get(child.name)
            if mine is None:
                families[child.name] = child
            else:
                mine.samples = _sum_samples(mine.samples, child.samples)
        yield from families.values()

    def _children(self) -> Iterable[Metric]:
        if not self.children_dir or not os.path.isdir(self.children_dir):
            return ()
        return MultiProcessCollector(None, self.children_dir).collect()


def _sum_samples(mine: Sequence[Sample], theirs: Sequence[Sample]) -> list[Sample]:
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
    for sample in [*mine, *theirs]:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        found = totals.get(key)
        totals[key] = sample if found is None else found._replace(value=found.value + sample.value)
    return list(totals.values())
