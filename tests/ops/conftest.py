"""Helpers of the ops tests: read `/metrics` the way Prometheus does, and compare scrapes.

- `Scrape`: the samples of one `/metrics` document, parsed with prometheus-client's own
  parser; `scrape.value(name, **labels)` is a sample's value (0 when the series is absent, as
  a counter not yet incremented is), and `after - before` gives what moved between two.
- `fetch_metrics(port)` / `get(port, path)`: requests to a running daemon's listener.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]

# The auto reply the daemon-process tests configure, so that each new ticket queues outbox mail.
AUTO_REPLY = """[[auto_responses]]
queue = "Support"
type = "auto reply"
subject = "Re: {{ article.subject }}"
body = "We opened ticket {{ ticket.tn }}.\\n"
"""


class Scrape:
    """The samples of one exposition."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                assert key not in self.samples, f"series exported twice: {key}"
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def __sub__(self, before: Scrape) -> Moved:
        keys = set(self.samples) | set(before.samples)
        return Moved({k: self.samples.get(k, 0.0) - before.samples.get(k, 0.0) for k in keys})


class Moved:
    """What moved between two scrapes."""

    def __init__(self, deltas: Mapping[Key, float]) -> None:
        self.deltas = dict(deltas)

    def __call__(self, name: str, **labels: str) -> float:
        return self.deltas.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str) -> float:
        """Summed over every label set."""
        return sum(v for (n, _), v in self.deltas.items() if n == name)


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await client.get(path)


async def fetch_metrics(port: int) -> Scrape:
    answer = await get(port, "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return Scrape(answer.text)
