"""The browser tests' tools: Debian's Chromium driven by Playwright (no browser download,
ever), a running Rebond (`deploy/local/run.py`, as `make run` starts it) on the session's
real broker and PostgreSQL, a login per role, axe-core, screenshots and page figures.

Screenshots go to `docs/screenshots/` (the README shows two of them); the pages' figures
(first useful paint, bytes transferred) to the test output and `bench-results/web-pages.md`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.infra._process import APT_LOCK, file_lock
from tests.support import summary

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("REBOND_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "services/web/node_modules/axe-core/axe.min.js"
SCREENSHOTS = ROOT / "docs/screenshots"
FIGURES = ROOT / "bench-results/web-pages.md"
#: what the closed network of these machines needs (the probe's flags, see the README)
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
BASE_PORT = 8001  # make run's first port (site_registry); web is the fifth


def ensure_chromium() -> Path:
    """Debian's Chromium, installed from its package when missing and allowed (CI, as
    for PostgreSQL); without it a local run skips, a CI run fails."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("REBOND_ALLOW_APT_INSTALL") == "1" and os.geteuid() == 0:
        with file_lock(APT_LOCK):
            if not CHROMIUM.exists():
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
                subprocess.run(
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                    check=True,
                    env=env,
                )
        if CHROMIUM.exists():
            return CHROMIUM
    reason = f"Debian's Chromium is not installed ({CHROMIUM}): apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class RunningRebond:
    """One `make run` (its script) for the browser tests, on the test broker and PostgreSQL."""

    proc: subprocess.Popen[bytes]
    offset: int
    env: dict[str, str]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{BASE_PORT + 4 + self.offset}"

    def api(self, name: str) -> str:
        index = {"registry": 0, "campaigns": 1, "detection": 2, "funding": 3}[name]
        return f"http://127.0.0.1:{BASE_PORT + index + self.offset}"

    def token(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "shared.auth", "mint", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def call(self, method: str, url: str, token: str, body: object = None) -> tuple[int, Any]:
        import httpx

        response = httpx.request(
            method,
            url,
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            timeout=30,
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text


def start_rebond(
    bootstrap_servers: str, database_urls: dict[str, str], data_dir: Path
) -> RunningRebond:
    from tests.e2e.test_make_run import free_offset

    offset = free_offset()
    # A service given no database URL gets `make run`'s default, SQLite in the data dir,
    # whatever this process's environment says.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env = {
        **env,
        "REBOND_ENVIRONMENT": "development",  # the development login, as `make run`
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": f"b{uuid.uuid4().hex[:10]}.",
        "PYTHONUNBUFFERED": "1",
        **{f"{name.upper()}_DATABASE_URL": url for name, url in database_urls.items()},
    }
    log = data_dir / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "deploy/local/run.py",
                "--data-dir",
                str(data_dir),
                "--port-offset",
                str(offset),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = RunningRebond(proc, offset, env, log)
    deadline = time.monotonic() + 180
    while "Running. Ctrl-C stops everything." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_rebond(running)
            raise AssertionError(f"make run did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    return running


def stop_rebond(running: RunningRebond) -> None:
    if running.proc.poll() is None:
        running.proc.terminate()
        try:
            running.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            running.proc.kill()


@dataclass
class PageFigures:
    """Per page and viewport: first useful paint (ms) and bytes transferred."""

    def add(self, page: str, viewport: str, paint_ms: float, bytes_: int, requests: int) -> None:
        row = {
            "page": page,
            "viewport": viewport,
            "first_useful_paint_ms": round(paint_ms, 1),
            "transferred_kib": round(bytes_ / 1024, 1),
            "requests": requests,
        }
        summary.add("web pages", row)  # the end-of-run summary (conftest)
        print(f"[web page] {json.dumps(row, ensure_ascii=False)}")


def write_figures(rows: list[dict[str, Any]]) -> None:
    """`bench-results/web-pages.md`, from every row of the run."""
    FIGURES.parent.mkdir(exist_ok=True)
    lines = [
        "# Web pages: first useful paint and payload (browser tests, this machine)",
        "",
        "| page | viewport | first useful paint (ms) | transferred (KiB) | requests |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['page']} | {r['viewport']} | {r['first_useful_paint_ms']} |"
        f" {r['transferred_kib']} | {r['requests']} |"
        for r in rows
    ]
    FIGURES.write_text("\n".join(lines) + "\n", encoding="utf-8")


def report(terminalreporter: pytest.TerminalReporter) -> None:
    """The pages' figures in the test output (also in bench-results/web-pages.md), from
    whichever worker ran the browser tests; called by the root conftest."""
    rows = summary.records("web pages")
    if not rows:
        return
    write_figures(rows)
    terminalreporter.section("web pages: first useful paint and payload")
    for row in rows:
        terminalreporter.write_line(
            f"{row['page']:<22} {row['viewport']:<8} {row['first_useful_paint_ms']:>8.1f} ms"
            f" {row['transferred_kib']:>8.1f} KiB {row['requests']:>4} requests"
        )


class Browser:
    """Chromium, and what the tests do with it."""

    def __init__(self, playwright: Any, rebond: RunningRebond, figures: PageFigures) -> None:
        self.rebond = rebond
        self.figures = figures
        self.chromium = playwright.chromium.launch(
            executable_path=str(ensure_chromium()), args=list(CHROMIUM_ARGS)
        )
        self._contexts: list[Any] = []

    def close(self) -> None:
        for context in self._contexts:
            with contextlib.suppress(Exception):
                context.close()
        self.chromium.close()

    def context(self, viewport: dict[str, int] = DESKTOP, **options: Any) -> Any:
        # axe-core is injected as a script: the pages' CSP would (rightly) refuse it.
        context = self.chromium.new_context(
            viewport=viewport,
            base_url=self.rebond.base_url,
            locale="fr-FR",
            bypass_csp=True,
            **options,
        )
        context.set_default_timeout(15_000)
        self._contexts.append(context)
        return context

    def login(
        self,
        role: str,
        *,
        viewport: dict[str, int] = DESKTOP,
        territory: str = "ti-3205",
        region: str = "32",
        subject: str | None = None,
        org: str | None = None,
        via_form: bool = False,
        timezone: str | None = None,
    ) -> Any:
        """A page signed in as `role` (development login), on its role's home page; the
        browser's clock in `timezone` when given (the machine's otherwise)."""
        options = {"timezone_id": timezone} if timezone else {}
        context = self.context(viewport, **options)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        if via_form:
            page.goto("/connexion/")
            page.select_option("#role", role)
            if role in ("crisis_cell", "consultant"):
                page.fill("#territory", territory)
            if role == "funder":
                page.fill("#region", region)
                if org:
                    page.fill("#org", org)
            if subject:
                page.fill("#subject", subject)
            page.click("#connexion-dev button[type=submit]")
        else:
            answer = context.request.post(
                "/auth/dev-login",
                data={
                    "role": role,
                    "territory": territory,
                    "region": region,
                    "subject": subject,
                    "org": org,
                },
                headers={"Origin": self.rebond.base_url},
            )
            assert answer.ok, answer.text()
            page.goto(answer.json()["home"])
        return page

    def open(self, page: Any, path: str, *, name: str, viewport: str = "desktop") -> float:
        """Go to `path` and wait for its first useful paint (the page's <main> no longer
        aria-busy); record the time and bytes; return the time in ms."""
        page.goto(path)
        page.wait_for_selector("main[aria-busy=false]", timeout=30_000)
        timing = page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const res = performance.getEntriesByType('resource');
              const bytes = [nav, ...res].reduce((s, e) => s + (e.transferSize || 0), 0);
              const mark = performance.getEntriesByName('rebond:useful')[0];
              const path = [nav, ...res].map((e) => ({
                name: e.name.replace(location.origin, ''), start: Math.round(e.startTime),
                end: Math.round(e.responseEnd), bytes: e.transferSize || 0}));
              return {useful: mark ? mark.startTime : performance.now(),
                      bytes, requests: res.length + 1, path};
            }"""
        )
        self.figures.add(name, viewport, timing["useful"], timing["bytes"], timing["requests"])
        # What the paint waited on: the requests that ended last before it.
        before = [e for e in timing["path"] if e["end"] <= timing["useful"]]
        shown = -6 if not os.environ.get("REBOND_PAINT_TRACE") else 0
        for entry in sorted(before, key=lambda e: e["end"])[shown:]:
            print(f"[web page]   {entry['start']:>6}–{entry['end']:<6} ms {entry['name']}")
        return float(timing["useful"])


def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.x A/AA rules on the page as it is: the serious and critical ones."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {v['nodes']}"
        for v in result
        if v["impact"] in impacts
    ]


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def eventually_in_page(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.1)


@contextlib.contextmanager
def playwright_session() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # The Python package's driver never downloads a browser by itself; make sure no
    # environment asks it to.
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        yield playwright


__all__ = [
    "DESKTOP",
    "PHONE",
    "Browser",
    "PageFigures",
    "RunningRebond",
    "axe_violations",
    "ensure_chromium",
    "eventually_in_page",
    "playwright_session",
    "screenshot",
    "start_rebond",
    "stop_rebond",
]
