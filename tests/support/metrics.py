"""Scraping `/metrics` of running services, as Prometheus would: in the background while
a flow runs (the highest value each series reached), and once at the end."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: (sample name, sorted label pairs) → value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def names(samples: Samples) -> set[str]:
    return {n for n, _ in samples}


@dataclass
class Scraper:
    """Scrapes every service every `interval_s` until stopped; keeps the first scrape and
    the highest total each watched series reached."""

    urls: Mapping[str, str]
    watched: tuple[str, ...]
    interval_s: float = 1.0
    first: dict[str, Samples] = field(default_factory=dict)
    peaks: dict[tuple[str, str], float] = field(default_factory=dict)
    scrapes: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Scraper:
        for service, url in self.urls.items():
            self.first[service] = scrape(url)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for service, url in self.urls.items():
                try:
                    samples = scrape(url)
                except httpx.HTTPError as exc:
                    self.errors.append(f"{service}: {exc!r}")
                    continue
                self.scrapes += 1
                for name in self.watched:
                    key = (service, name)
                    self.peaks[key] = max(self.peaks.get(key, 0.0), total(samples, name))
