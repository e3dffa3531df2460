"""`make demo`: the Béthune reference case replayed through the running system's APIs.

What it sends is `scenario.py` (published figures, and GENERATED ones where the source
gives none); this module only drives the public HTTP APIs, as the crisis cell, the
consultants and the France Relance funder would, with development tokens per role:

 1. the Bridgestone closure shock (registry), which starts the campaign by itself;
 2. the campaign's terms checked against the 150 consultant-days (campaigns);
 3. a visit and a survey at each of the 164 other sites, by the consultant the plan
    names (the earlier survey's 55 firms and their 26 projects among them);
 4. the projects qualified, some abandoned; the exogenous projects declared (detection);
 5. France Relance's Hauts-de-France call and its three regional reviews: applications
    filed then, awards, and each round's result (funding);
 6. the jobs created, then the ledger read until it shows 900 compensated, 450
    endogenous and 450 exogenous.

Where the system is: the `make run` of `--data-dir` (default `.run/`) when one runs
(found through its `local-run.json`, which names its ports), else one started here
(`run.py`, the same embedded defaults or external broker and databases); that one
keeps running after the replay — to look at the dashboard — until Ctrl-C, or stops at
once with `--exit`.

Every write carries an Idempotency-Key derived from the seed and the step, so a rerun on
the same data dir replays the stored answers and creates nothing twice (it says so);
asynchronous effects are waited for by polling their condition, with a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:  # run as a script, or imported by the tests: its sibling
    sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenario as sc  # noqa: E402  (the sibling module, once the path is set)

T = TypeVar("T")
SEED = 2020
RETRIES = 3  # attempts of a request whose answer was lost
PARALLEL = 6  # concurrent requests: enough to overlap the services' work on 2 cores
FUNDER_ORG = "État (France Relance)"
REGION = "32"  # Hauts-de-France
SEED_FILE = ROOT / "services/funding/data/schemes_seed.json"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class DemoFailed(Exception):
    """The replay cannot go on; the message says why, in one line."""


# ------------------------------------------------------------------------ the HTTP side


@dataclass
class Api:
    """The five base URLs, the tokens, and the counts of what was written."""

    urls: dict[str, str]
    client: httpx.AsyncClient
    seed: int
    tokens: dict[str, str] = field(default_factory=dict)
    writes: int = 0
    replayed: int = 0
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PARALLEL))

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    def token(self, subject: str, *, role: str) -> str:
        if subject not in self.tokens:
            self.tokens[subject] = mint(subject, role)
        return self.tokens[subject]

    async def get(self, service: str, path: str, who: str, *, role: str = "crisis_cell") -> Any:
        status, body = await self._call("GET", service, path, who, role=role)
        if status != 200:
            raise DemoFailed(f"GET {self.url(service, path)} answered {status}: {body}")
        return body

    async def try_get(
        self, service: str, path: str, who: str, *, role: str = "crisis_cell"
    ) -> tuple[int, Any]:
        return await self._call("GET", service, path, who, role=role)

    async def write(
        self,
        method: str,
        service: str,
        path: str,
        who: str,
        body: object,
        *,
        key: str,
        role: str = "crisis_cell",
        accept: Iterable[int] = (),
    ) -> tuple[int, Any]:
        """A state change, under a stable Idempotency-Key (seed + step + item)."""
        status, answer = await self._call(
            method, service, path, who, role=role, body=body, key=f"demo-{self.seed}:{key}"
        )
        if status >= 400 and status not in accept:
            raise DemoFailed(
                f"{method} {self.url(service, path)} answered {status}: {str(answer)[:400]}"
            )
        return status, answer

    async def _call(
        self,
        method: str,
        service: str,
        path: str,
        who: str,
        *,
        role: str,
        body: object = None,
        key: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token(who, role=role)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.gate:
                    response = await self.client.request(
                        method, self.url(service, path), headers=headers, json=body
                    )
                break
            except httpx.TransportError:
                # A busy service (2 cores, consumers catching up) may miss the timeout:
                # the same request again, under the same key, cannot apply twice.
                if attempt == RETRIES:
                    raise
        if key is not None and response.status_code < 400:
            self.writes += 1
            if response.headers.get("Idempotent-Replayed") == "true":
                self.replayed += 1
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text


def mint(subject: str, role: str) -> str:
    """A development token (the development secret: refused outside development)."""
    from shared.auth import AuthConfig, mint_token
    from shared.settings import ServiceSettings

    class TokenSettings(ServiceSettings):
        needs_database = False

    scope: dict[str, list[str]] = (
        {"regions": [REGION]} if role == "funder" else {"territories": [sc.PUBLISHED.territory]}
    )
    return mint_token(
        AuthConfig.from_settings(TokenSettings()),
        subject=subject,
        roles=[role],
        org=FUNDER_ORG if role == "funder" else None,
        ttl=timedelta(hours=2),
        **scope,
    )


async def until(
    fetch: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    what: str,
    within: float = 120.0,
) -> T:
    """Poll `fetch` until `ok`, or fail saying what was awaited and what was last seen."""
    deadline = time.monotonic() + within
    delay = 0.1
    while True:
        last = await fetch()
        if ok(last):
            return last
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: not reached in {within:.0f} s (last: {str(last)[:300]})")
        await asyncio.sleep(delay)  # between two looks at a condition, never instead of one
        delay = min(1.0, delay * 1.5)


async def each(items: Iterable[T], action: Callable[[T], Awaitable[object]]) -> None:
    await asyncio.gather(*(action(item) for item in items))


# ------------------------------------------------------------------------ the replay

CELL = "demo-cell"  # the crisis cell's subject (the idempotency keys' namespace)
FUNDER = "demo-funder-france-relance"
FUNDED = ("funded", "launched", "jobs_created")  # an award seen (later stages on a rerun)


@dataclass(frozen=True)
class Outcome:
    shock_id: str
    ledger: dict[str, Any]
    rounds: list[dict[str, Any]]


async def replay(urls: dict[str, str], seed: int = SEED) -> Outcome:
    p = sc.PUBLISHED
    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(urls, client, seed)
        # 1. The shock.
        status, shock = await api.write(
            "POST",
            "site_registry",
            "/closure-shocks",
            CELL,
            {
                "site_id": p.closing_site,
                "announced_on": p.announced_on.isoformat(),
                "jobs_lost": p.jobs_lost,
                "note": "make demo: the Béthune reference case",
            },
            key="shock",
            accept=(409,),
        )
        if status == 409:
            raise DemoFailed(
                f"this data dir already has an open closure shock on {p.closing_site} that this"
                f" replay (seed {seed}) did not create: {shock.get('detail', shock)}."
                " Replay on a fresh data dir (`--data-dir /tmp/somewhere`, or `make clean`)"
            )
        shock_id = shock["id"]
        say(
            f"1. closure shock {shock_id}: Bridgestone, SIRET {p.closing_site},"
            f" {p.jobs_lost} jobs lost, announced on {p.announced_on:%d %B %Y}"
        )

        # 2. The campaign the shock launched, and its terms.
        campaign = await until(
            lambda: api.get("campaigns", "/campaigns", CELL),
            lambda cs: any(c["shock_id"] == shock_id and c["targets"] >= p.sites - 1 for c in cs),
            "the campaign launched by the shock",
        )
        campaign = next(c for c in campaign if c["shock_id"] == shock_id)
        cid = campaign["id"]
        if campaign["budget_days"] != p.consultant_days:
            await api.write(
                "PATCH",
                "campaigns",
                f"/campaigns/{cid}/terms",
                CELL,
                {"budget_days": p.consultant_days},
                key="terms",
            )
        plan = await until(
            lambda: api.get("campaigns", f"/campaigns/{cid}/plan", CELL),
            lambda pl: all(t.get("visit_id") for t in pl["targets"]),
            "every target with a planned visit",
        )
        campaign = await api.get("campaigns", f"/campaigns/{cid}", CELL)
        targets = [
            sc.Target(t["site_id"], t["naf_code"], t["visit_id"], t["consultant_id"])
            for t in plan["targets"]
        ]
        scenario = sc.build(targets, seed)
        say(
            f"2. campaign {cid}: {campaign['targets']} sites besides the closing one,"
            f" {campaign['planned']} visits planned, {campaign['completed']} done, for"
            f" {campaign['days_planned']:g} of"
            f" {campaign['budget_days']:g} consultant-days ({len(campaign['roster'])}"
            f" consultants: {', '.join(campaign['roster'])})"
        )

        # 3. The visits: a survey by the planned consultant, or a refusal.
        async def visit(v: sc.Visit) -> None:
            who, path = v.target.consultant_id, f"/visits/{v.target.visit_id}"
            if v.declined:
                body = {"outcome": "declined", "reason": "GENERATED: no time for a visit"}
                await api.write(
                    "POST", "campaigns", f"{path}/outcome", who, body, key=f"outcome:{path}",
                    role="consultant",
                )  # fmt: skip
                return
            await api.write(
                "POST", "campaigns", f"{path}/survey", who, v.survey(), key=f"survey:{path}",
                role="consultant",
            )  # fmt: skip

        await each(scenario.visits, visit)
        leads = scenario.leads
        earlier = [v for v in scenario.visits if v.source == "earlier_survey"]
        told_earlier = sum(len(v.leads) for v in earlier)
        say(
            f"3. {sum(not v.declined for v in scenario.visits)} surveys through the"
            f" consultants' API, {sum(v.declined for v in scenario.visits)} visits declined"
            f" (GENERATED); the earlier survey's {len(earlier)} firms told"
            f" {told_earlier} projects (published figures, GENERATED contents), the"
            f" campaign's other visits {len(leads) - told_earlier} (GENERATED)"
        )

        # 4. Detection: the projects, qualified; some abandoned; the exogenous ones.
        async def projects() -> list[dict[str, Any]]:
            page = await api.get("detection", f"/projects?shock={shock_id}&limit=500", CELL)
            return list(page["items"])

        found = await until(
            projects,
            lambda items: sum(1 for i in items if i["origin"] == "endogenous") >= len(leads),
            f"the {len(leads)} projects of the surveys in detection",
        )
        by_lead = {(i["site_id"], i["kind"]): i["id"] for i in found if i["site_id"]}
        missing = [lead for lead in leads if (lead.site_id, lead.kind) not in by_lead]
        if missing:
            raise DemoFailed(f"{len(missing)} surveyed projects not found in detection")
        project_of = {id(lead): by_lead[lead.site_id, lead.kind] for lead in leads}

        async def qualify(lead: sc.Lead) -> None:
            pid = project_of[id(lead)]
            if lead.fate == "abandoned":
                body = {"reason": "GENERATED: the firm gave the project up"}
                await api.write(
                    "POST", "detection", f"/projects/{pid}/abandon", CELL, body,
                    key=f"abandon:{pid}",
                )  # fmt: skip
                return
            await api.write(
                "POST", "detection", f"/projects/{pid}/qualify", CELL, {}, key=f"qualify:{pid}"
            )

        await each(leads, qualify)
        exogenous_ids: list[str] = []
        for n, x in enumerate(scenario.exogenous):
            _, project = await api.write(
                "POST",
                "detection",
                "/projects/exogenous",
                CELL,
                x.body(shock_id),
                key=f"exogenous:{n}",
            )
            exogenous_ids.append(project["id"])
            await api.write(
                "POST",
                "detection",
                f"/projects/{project['id']}/qualify",
                CELL,
                {},
                key=f"qualify:{project['id']}",
            )
        say(
            f"4. {len(leads)} endogenous projects detected:"
            f" {sum(lead.fate != 'abandoned' for lead in leads)} qualified,"
            f" {sum(lead.fate == 'abandoned' for lead in leads)} abandoned (GENERATED);"
            f" {len(exogenous_ids)} exogenous projects declared by the crisis cell:"
            f" {', '.join(f'{x.firm_name} ({x.jobs} jobs)' for x in scenario.exogenous)}"
        )

        # 5. Funding: France Relance's Hauts-de-France reviews, their awards and results.
        await api.write(
            "PUT",
            "funding",
            f"/calls/{p.call_id}",
            FUNDER,
            seed_call(p.call_id),
            key="call",
            role="funder",
        )
        selected = [lead for lead in leads if lead.fate == "selected"]

        async def award(lead: sc.Lead) -> None:
            pid = project_of[id(lead)]
            await until(
                lambda: api.try_get("funding", f"/projects/{pid}/matches", FUNDER, role="funder"),
                # qualified, or later on a rerun (whose writes replay their answers)
                lambda answer: (
                    answer[0] == 200 and answer[1].get("stage") not in (None, "detected")
                ),
                f"project {pid} qualified in funding",
            )
            assert lead.round is not None and lead.filed_on and lead.award_eur
            _, application = await api.write(
                "POST",
                "funding",
                "/applications",
                FUNDER,
                {
                    "project_id": pid,
                    "scheme_id": p.scheme_id,
                    "amount_requested_eur": lead.funding_need_eur,
                    "filed_on": lead.filed_on.isoformat(),
                },
                key=f"application:{pid}",
                role="funder",
            )
            decided_on = scenario.rounds[lead.round].decided_on
            await api.write(
                "POST",
                "funding",
                f"/applications/{application['id']}/award",
                FUNDER,
                {"amount_eur": lead.award_eur, "decided_on": decided_on.isoformat()},
                key=f"award:{application['id']}",
                role="funder",
            )

        await each(selected, award)
        for n, r in enumerate(scenario.rounds):
            awarded = len(scenario.selected(n))  # the awards just recorded for this round
            await api.write(
                "POST",
                "funding",
                f"/calls/{p.call_id}/results",
                FUNDER,
                {
                    "round": r.name,
                    "decided_on": r.decided_on.isoformat(),
                    # The source counts the selected only: applications = selected is
                    # the lower bound it allows.
                    "applications": r.selected,
                    "selected": r.selected,
                    "per_territory": {p.territory: awarded},
                },
                key=f"round:{n}",
                role="funder",
            )
            say(
                f"5.{n + 1} France Relance, {r.name} (decided {r.decided_on}, GENERATED"
                f" date): {awarded} Béthune project(s) of {r.selected} selected —"
                f" applications filed and awards recorded by the funder"
            )

        # 6. Jobs: once detection has every award, the hires (by June 2025).
        await until(
            projects,
            lambda items: sum(1 for i in items if i["stage"] in FUNDED) >= len(selected),
            f"the {len(selected)} awards in detection (projects funded)",
        )

        async def hires(lead: sc.Lead) -> None:
            pid = project_of[id(lead)]
            assert lead.created_on is not None
            body = {
                "jobs_created_total": lead.jobs,
                "created_on": lead.created_on.isoformat(),
                "complete": True,
            }
            await api.write(
                "POST", "detection", f"/projects/{pid}/jobs", CELL, body, key=f"jobs:{pid}"
            )

        await each(selected, hires)
        for pid, x in zip(exogenous_ids, scenario.exogenous, strict=True):
            # Self-financed, or financed outside this replay: launched, then the hires.
            await api.write(
                "POST",
                "detection",
                f"/projects/{pid}/stage",
                CELL,
                {"stage": "launched", "reason": "GENERATED: investment started"},
                key=f"launch:{pid}",
            )
            body = {
                "jobs_created_total": x.jobs,
                "created_on": x.created_on.isoformat(),
                "complete": True,
            }
            await api.write(
                "POST", "detection", f"/projects/{pid}/jobs", CELL, body, key=f"jobs:{pid}"
            )
        endogenous, exogenous = scenario.jobs_created()
        say(
            f"6. jobs created recorded: {endogenous} by {len(selected)} endogenous projects,"
            f" {exogenous} by {len(exogenous_ids)} exogenous ones (dates GENERATED, up to"
            f" {p.compensated_by})"
        )

        ledger = await until(
            lambda: api.get("detection", f"/shocks/{shock_id}/ledger", CELL),
            lambda led: (
                led["total"]["created"] == endogenous + exogenous
                and led["endogenous"]["created"] == endogenous
                and led["exogenous"]["created"] == exogenous
            ),
            f"the ledger at {endogenous + exogenous} jobs created",
        )
        calls = await api.get("funding", "/calls", CELL)
        rounds = next(c for c in calls if c["id"] == p.call_id)["results"]
        if api.replayed:
            say(
                f"rerun: {api.replayed} of {api.writes} writes were already done on this data"
                " dir (answered from the idempotency store): nothing was created twice"
            )
        return Outcome(shock_id, ledger, rounds)


def seed_call(call_id: str) -> dict[str, Any]:
    """The call as the funding catalogue's curated seed describes it (the service loads
    the seed's schemes, not its calls: the funder enters the call through the API)."""
    import json

    entry = next(c for c in json.loads(SEED_FILE.read_text())["calls"] if c["id"] == call_id)
    return {k: entry[k] for k in ("id", "scheme_id", "name", "rounds", "source_url", "source")}


def report(outcome: Outcome, urls: dict[str, str]) -> None:
    ledger = outcome.ledger
    total, endo, exo = ledger["total"], ledger["endogenous"], ledger["exogenous"]
    say(
        f"ledger: {ledger['jobs_lost']} jobs lost; {total['created']} created ="
        f" {endo['created']} endogenous + {exo['created']} exogenous (compensation rate"
        f" {ledger['compensation_rate']:.0%}); {total['detected']} jobs planned by"
        f" {total['projects']} projects, {total['funded']} funded,"
        f" {total['abandoned']} projects abandoned"
    )
    for r in outcome.rounds:
        say(
            f"round {r['round']!r}: {r['per_territory'].get(sc.PUBLISHED.territory, 0)}"
            f" from Béthune of {r['selected']} selected"
        )
    say(f"dashboard: {urls['web']}/cellule/?choc={outcome.shock_id}")
    say(f"ledger:    {urls['detection']}/shocks/{outcome.shock_id}/ledger")
    say(
        "(the APIs want a token: REBOND_ENVIRONMENT=development python -m shared.auth mint"
        " --role crisis_cell --territory ti-3205)"
    )


# ------------------------------------------------------------------------ the system


def running_urls(data_dir: Path) -> dict[str, str] | None:
    """The base URLs of the `make run` of `data_dir`, if one runs."""
    from shared import localrun

    found = localrun.read(data_dir)
    if found is None:
        return None
    if not found.http_ports:
        raise DemoFailed(
            f"the `make run` of {data_dir} (pid {found.pid}) does not say where its APIs"
            " listen (an older version): restart it"
        )
    return {name: f"http://127.0.0.1:{port}" for name, port in found.http_ports.items()}


def start_system(data_dir: Path, port_offset: int) -> subprocess.Popen[bytes]:
    """`run.py` in the background (its output in <data dir>/demo-run.log)."""
    log = (data_dir / "demo-run.log").open("ab")
    # This checkout's code first: a script's own directory heads sys.path, so without it
    # an installed copy of the project (an editable install elsewhere) would answer.
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "run.py"),
            "--data-dir",
            str(data_dir),
            "--port-offset",
            str(port_offset),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_started(proc: subprocess.Popen[bytes], data_dir: Path, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = (data_dir / "demo-run.log").read_text(errors="replace").splitlines()[-3:]
            raise DemoFailed(f"make run stopped ({proc.returncode}): {' / '.join(tail)}")
        urls = running_urls(data_dir)
        if urls is not None:
            return urls
        if time.monotonic() > deadline:
            raise DemoFailed(f"make run did not start in {timeout:.0f} s; see demo-run.log")
        time.sleep(0.3)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # run.py stops its services and broker in order
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    from shared.localrun import DATA_DIR_VAR, default_data_dir

    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help=f"the make run to use or start (default: ${DATA_DIR_VAR}, else .run/)",
    )
    parser.add_argument("--port-offset", type=int, default=0, help="when starting one")
    parser.add_argument("--seed", type=int, default=SEED, help="of the GENERATED figures")
    parser.add_argument(
        "--exit", action="store_true", help="stop the system started here after the replay"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("REBOND_ENVIRONMENT", "development")  # as make run: dev tokens
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        urls = running_urls(data_dir)
        if urls is not None:
            say(f"using the make run of {data_dir} ({urls['web']})")
        else:
            say(f"starting the system (make run, data dir {data_dir}; log demo-run.log)…")
            proc = start_system(data_dir, args.port_offset)
            urls = wait_started(proc, data_dir, timeout=240)
            say(f"system up: web pages at {urls['web']}/")
        started = time.monotonic()
        outcome = asyncio.run(replay(urls, args.seed))
        say(f"replay done in {time.monotonic() - started:.0f} s")
        report(outcome, urls)
        if proc is not None and not args.exit:
            say("the system keeps running for you to look: Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                proc.wait()
        return 0
    except (DemoFailed, sc.ScenarioError) as failed:
        say(f"error: {failed}")
        return 1
    except httpx.HTTPError as failed:  # a service that stopped answering, a timeout
        say(f"error: {type(failed).__name__} on {failed.request.url}: {failed}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if proc is not None:
            stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
