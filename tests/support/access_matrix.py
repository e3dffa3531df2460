"""The access matrix of issue 10: every operation of the four OpenAPI documents, called by
every identity (no token, bad tokens, each role in and out of scope), and what each call
must answer. The test lives in `tests/integration/test_access_matrix.py`; this module holds
the identities, the world the calls are made in (the ids the path parameters resolve to),
and the call plan of each operation: its kind, a minimal valid body, and where an admin
reads back what an out-of-scope write must leave unchanged.

A new operation without a plan here makes the test fail: it must join the matrix."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from shared.auth import AuthConfig, mint_token

#: the only operations without roles: probes and the event catalogue, open to anyone
EXEMPT = {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}
ROLES = ("crisis_cell", "consultant", "funder", "admin")

IN_TERRITORY = "ti-3205"
OUT_TERRITORY = "ti-3209"
OUT_COMMUNE = "62427"  # a commune of ti-3209, Hauts-de-France like Béthune
IN_REGION = "32"
OUT_REGION = "84"
FUNDER_ORG = "ADEME"  # a funder of the seeded ADEME schemes
OTHER_ORG = "Région Auvergne-Rhône-Alpes"


class Kind(StrEnum):
    #: reference data every allowed role reads whatever its scope (territories, schemes)
    PUBLIC = "public"
    #: a list or an export: every item returned must be in the caller's scope
    LIST = "list"
    #: a read of one resource: out of scope, 403 or 404
    READ = "read"
    #: a change: out of scope, 403 or 404 and the resource read back unchanged
    WRITE = "write"
    #: a resource of the caller's own making (a webhook subscription, of its own scope):
    #: every allowed identity may make one, none is out of scope
    OWN = "own"


@dataclass(frozen=True)
class Identity:
    """Who calls: `role` None for the tokens that must be refused (401)."""

    name: str
    headers: dict[str, str]
    role: str | None = None
    in_scope: bool = True
    territories: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()


def _signed(config: AuthConfig, *, secret: str | None = None, **overrides: Any) -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    claims: dict[str, Any] = {
        "sub": "intruder",
        "roles": ["admin"],
        "territories": [],
        "regions": [],
        "aud": config.audience,
        "iss": config.issuer,
        "iat": now,
        "exp": now + timedelta(hours=1),
        **overrides,
    }
    return jwt.encode(claims, secret or config.secret, algorithm=config.algorithm)


def refused_identities(config: AuthConfig) -> list[Identity]:
    """Five ways to be nobody; each token would be an admin's if it were accepted."""
    long_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

    def bearer(jwt_: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {jwt_}"}

    return [
        Identity("no token", {}),
        Identity("malformed", bearer("not.a-jwt")),
        Identity(
            "expired",
            bearer(_signed(config, iat=long_ago, exp=long_ago + timedelta(hours=1))),
        ),
        Identity("wrong audience", bearer(_signed(config, aud="another-api"))),
        Identity("wrong secret", bearer(_signed(config, secret="x" * 40 + "-not-the-secret"))),
    ]


def role_identities(config: AuthConfig) -> dict[tuple[str, bool], Identity]:
    """(role, in scope) → identity; admin has no out-of-scope twin (it sees everything)."""

    def make(role: str, in_scope: bool, sub: str, **scope: Any) -> Identity:
        jwt_ = mint_token(config, subject=sub, roles=[role], **scope)
        return Identity(
            f"{role} {'in' if in_scope else 'out of'} scope",
            {"Authorization": f"Bearer {jwt_}"},
            role,
            in_scope,
            frozenset(scope.get("territories", ())),
            frozenset(scope.get("regions", ())),
        )

    out = {
        ("crisis_cell", True): make("crisis_cell", True, "cell", territories=[IN_TERRITORY]),
        ("crisis_cell", False): make(
            "crisis_cell", False, "cell-3209", territories=[OUT_TERRITORY]
        ),
        # the out-of-scope consultant is the namesake of the in-scope one
        ("consultant", True): make("consultant", True, "consultant-1", territories=[IN_TERRITORY]),
        ("consultant", False): make(
            "consultant", False, "consultant-1", territories=[OUT_TERRITORY]
        ),
        ("funder", True): make("funder", True, "ademe-hdf", regions=[IN_REGION], org=FUNDER_ORG),
        ("funder", False): make("funder", False, "aura", regions=[OUT_REGION], org=OTHER_ORG),
        ("admin", True): make("admin", True, "ops"),
    }
    return out


@dataclass
class World:
    """The ids the path parameters resolve to (all of ti-3205 / region 32), and what a
    list's items are checked against."""

    site_id: str
    site_commune: str
    site_naf: str
    closing_siret: str  # a site of the territory the matrix closes (not the shock's site)
    campaign_id: str
    visit_id: str
    other_visit_id: str
    shock_id: str
    project_id: str  # consented, matched in funding
    unconsented_project_id: str
    application_id: str
    webhook_id: str  # the in-scope funder's webhook subscription
    scheme_id: str
    scheme_body: dict[str, Any]
    call_id: str
    call_body: dict[str, Any]
    round_name: str
    territory_id: str = IN_TERRITORY
    #: ids of campaigns, shocks, projects, visits → their territory
    territory_of: dict[str, str] = field(default_factory=dict)
    consented: set[str] = field(default_factory=set)

    def param(self, name: str) -> str:
        resolver: Mapping[str, Callable[[World], str]] = PARAMS
        return resolver[name](self)


PARAMS: dict[str, Callable[[World], str]] = {
    "site_id": lambda w: w.site_id,
    "siret": lambda w: w.closing_siret,
    "campaign_id": lambda w: w.campaign_id,
    "visit_id": lambda w: w.visit_id,
    "shock_id": lambda w: w.shock_id,
    "project_id": lambda w: w.project_id,
    "application_id": lambda w: w.application_id,
    "webhook_id": lambda w: w.webhook_id,
    "scheme_id": lambda w: w.scheme_id,
    "call_id": lambda w: w.call_id,
    "territory_id": lambda w: w.territory_id,
}

Body = Callable[[World], dict[str, Any] | None]


def _none(_: World) -> None:
    return None


@dataclass(frozen=True)
class Plan:
    """How an operation is called: `client` names the service's client on the stack (r, c,
    d, f); `readback`, the admin GETs whose answers an out-of-scope write leaves as they were."""

    client: str
    kind: Kind
    body: Body = _none
    readback: Callable[[World], list[str]] = lambda _: []
    #: an answer of 200 whose items carry each their own status (offline sync)
    itemwise: bool = False
    #: query parameters of every call (a stream's bounded mode)
    query: Mapping[str, str] = field(default_factory=dict)


def _survey(_: World) -> dict[str, Any]:
    return {"questionnaire_version": "2026-1", "headcount": 12, "projects": []}


def _scheme(w: World) -> dict[str, Any]:
    return dict(w.scheme_body)


def _call(w: World) -> dict[str, Any]:
    return dict(w.call_body)


def _project_reads(w: World) -> list[str]:
    return [f"/projects/{w.project_id}", f"/projects/{w.project_id}/timeline"]


def _campaign_reads(w: World) -> list[str]:
    return [f"/campaigns/{w.campaign_id}", f"/campaigns/{w.campaign_id}/plan"]


def _visit_reads(w: World) -> list[str]:
    return [f"/campaigns/{w.campaign_id}/progress"]


def _funding_reads(w: World) -> list[str]:
    return [
        f"/projects/{w.project_id}/plan",
        f"/projects/{w.project_id}/matches",
        f"/projects/{w.project_id}/applications",  # an out-of-scope decision changes none
    ]


_TODAY = "2023-06-15"  # funding's clock (FUNDING_TODAY)
_SERVICE_DAY = "2026-11-23"  # the other services' clock (TODAY)

#: (method, path) → its plan, for every operation with roles
PLANS: dict[tuple[str, str], Plan] = {
    # --- site registry
    ("GET", "/territories"): Plan("r", Kind.PUBLIC),
    ("GET", "/territories/{territory_id}"): Plan("r", Kind.PUBLIC),
    # public geography (commune outlines), a map layer for every role whatever its scope
    ("GET", "/territories/{territory_id}/communes.geojson"): Plan("r", Kind.PUBLIC),
    ("GET", "/sites"): Plan("r", Kind.LIST),
    ("POST", "/sites"): Plan(
        "r",
        Kind.WRITE,
        lambda w: {"siret": w.site_id, "naf_code": w.site_naf, "commune_insee": w.site_commune},
        lambda w: [f"/sites/{w.site_id}"],
    ),
    ("GET", "/sites/{siret}"): Plan("r", Kind.READ),
    ("POST", "/sites/{siret}/closure"): Plan(
        "r",
        Kind.WRITE,
        lambda _: {"closed_on": "2026-11-20"},
        lambda w: [f"/sites/{w.closing_siret}"],
    ),
    ("POST", "/closure-shocks"): Plan(
        "r",
        Kind.WRITE,
        lambda w: {"site_id": w.site_id, "announced_on": "2026-11-02", "jobs_lost": 20},
        lambda _: ["/closure-shocks"],
    ),
    ("GET", "/closure-shocks"): Plan("r", Kind.LIST),
    ("GET", "/closure-shocks/{shock_id}"): Plan("r", Kind.READ),
    # --- campaigns
    ("GET", "/campaigns"): Plan("c", Kind.LIST),
    ("GET", "/campaigns/{campaign_id}"): Plan("c", Kind.READ),
    ("GET", "/campaigns/{campaign_id}/plan"): Plan("c", Kind.READ),
    ("POST", "/campaigns/{campaign_id}/replan"): Plan("c", Kind.WRITE, readback=_campaign_reads),
    ("POST", "/campaigns/{campaign_id}/targets"): Plan(
        "c", Kind.WRITE, lambda w: {"site_ids": [w.site_id]}, _campaign_reads
    ),
    ("DELETE", "/campaigns/{campaign_id}/targets/{site_id}"): Plan(
        "c", Kind.WRITE, readback=_campaign_reads
    ),
    ("POST", "/campaigns/{campaign_id}/consultants"): Plan(
        "c", Kind.WRITE, lambda _: {"add": ["consultant-9"]}, _campaign_reads
    ),
    ("PATCH", "/campaigns/{campaign_id}/terms"): Plan(
        "c", Kind.WRITE, lambda _: {"daily_cap": 3}, _campaign_reads
    ),
    ("POST", "/campaigns/{campaign_id}/close"): Plan("c", Kind.WRITE, readback=_campaign_reads),
    ("GET", "/campaigns/{campaign_id}/progress"): Plan("c", Kind.READ),
    ("GET", "/campaigns/{campaign_id}/progress.csv"): Plan("c", Kind.READ),
    ("GET", "/campaigns/{campaign_id}/red-flags"): Plan("c", Kind.READ),
    ("GET", "/me/visits"): Plan("c", Kind.LIST),
    ("POST", "/visits/{visit_id}/outcome"): Plan(
        "c", Kind.WRITE, lambda _: {"outcome": "unreachable", "reason": "closed door"}, _visit_reads
    ),
    ("POST", "/visits/{visit_id}/survey"): Plan("c", Kind.WRITE, _survey, _visit_reads),
    ("POST", "/sync"): Plan(
        "c",
        Kind.WRITE,
        lambda w: {
            "items": [
                {
                    "client_id": str(uuid.uuid4()),
                    "type": "outcome",
                    "visit_id": w.other_visit_id,
                    "recorded_at": f"{_SERVICE_DAY}T09:00:00Z",
                    "outcome": {"outcome": "declined", "reason": "not now"},
                }
            ]
        },
        _visit_reads,
        itemwise=True,
    ),
    ("GET", "/questionnaire"): Plan("c", Kind.PUBLIC),
    # --- detection
    ("GET", "/projects"): Plan("d", Kind.LIST),
    ("GET", "/projects/stats"): Plan("d", Kind.LIST),
    ("GET", "/projects/{project_id}"): Plan("d", Kind.READ),
    ("GET", "/projects/{project_id}/timeline"): Plan("d", Kind.READ),
    ("POST", "/projects/exogenous"): Plan(
        "d",
        Kind.WRITE,
        lambda w: {
            "territory_id": w.territory_id,
            "firm_name": "Blackstar",
            "description": "A plant taking over the site",
            "jobs_planned": 30,
        },
        lambda w: [f"/projects?territory={w.territory_id}&limit=500"],
    ),
    ("POST", "/projects/{project_id}/qualify"): Plan(
        "d", Kind.WRITE, lambda _: {"jobs_planned": 9}, _project_reads
    ),
    ("POST", "/projects/{project_id}/stage"): Plan(
        "d", Kind.WRITE, lambda _: {"stage": "in_funding"}, _project_reads
    ),
    ("POST", "/projects/{project_id}/jobs"): Plan(
        "d",
        Kind.WRITE,
        lambda _: {"jobs_created_total": 2, "created_on": _SERVICE_DAY},
        _project_reads,
    ),
    ("POST", "/projects/{project_id}/abandon"): Plan(
        "d", Kind.WRITE, lambda _: {"reason": "the firm moved away"}, _project_reads
    ),
    ("POST", "/projects/{project_id}/merge"): Plan(
        "d", Kind.WRITE, lambda w: {"into": w.unconsented_project_id}, _project_reads
    ),
    ("POST", "/projects/{project_id}/not-a-duplicate"): Plan(
        "d", Kind.WRITE, lambda _: {"note": "two lines"}, _project_reads
    ),
    ("GET", "/shocks"): Plan("d", Kind.LIST),
    ("GET", "/shocks/{shock_id}/ledger"): Plan("d", Kind.READ),
    ("GET", "/shocks/{shock_id}/ledger.csv"): Plan("d", Kind.READ),
    # --- funding
    ("GET", "/schemes"): Plan("f", Kind.PUBLIC),
    ("GET", "/schemes/{scheme_id}"): Plan("f", Kind.PUBLIC),
    ("PUT", "/schemes/{scheme_id}"): Plan(
        "f", Kind.WRITE, _scheme, lambda w: [f"/schemes/{w.scheme_id}"]
    ),
    # admin only: no out-of-scope identity calls it; the document is an empty import
    ("POST", "/schemes/import/aides-territoires"): Plan("f", Kind.WRITE, lambda _: {"results": []}),
    ("PUT", "/calls/{call_id}"): Plan("f", Kind.WRITE, _call, lambda _: ["/calls"]),
    ("GET", "/calls"): Plan("f", Kind.PUBLIC),
    ("POST", "/calls/{call_id}/results"): Plan(
        "f",
        Kind.WRITE,
        lambda w: {
            "round": w.round_name,
            "decided_on": _TODAY,
            "applications": 10,
            "selected": 3,
            "per_territory": {w.territory_id: 1},
        },
        lambda _: ["/calls"],
    ),
    ("GET", "/projects/{project_id}/matches"): Plan("f", Kind.READ),
    ("GET", "/projects/{project_id}/plan"): Plan("f", Kind.READ),
    ("GET", "/projects/{project_id}/applications"): Plan("f", Kind.READ),
    ("GET", "/funder/projects"): Plan("f", Kind.LIST),
    # the funder topic's events: a stream (bounded: the backlog, then the end) and pages
    ("GET", "/funder/feed"): Plan("f", Kind.LIST, query={"follow": "false"}),
    ("GET", "/funder/feed/events"): Plan("f", Kind.LIST),
    # a loopback URL (allowed in test): deliveries to it fail and are retried, harmlessly
    ("POST", "/funder/webhooks"): Plan("f", Kind.OWN, lambda _: {"url": "http://127.0.0.1:9/m"}),
    ("GET", "/funder/webhooks"): Plan("f", Kind.LIST),
    # no readback: the subscriptions' delivery state moves on its own (retries)
    ("DELETE", "/funder/webhooks/{webhook_id}"): Plan("f", Kind.WRITE),
    ("POST", "/applications"): Plan(
        "f",
        Kind.WRITE,
        lambda w: {
            "project_id": w.project_id,
            "scheme_id": w.scheme_id,
            "amount_requested_eur": 50_000,
        },
        _funding_reads,
    ),
    ("POST", "/applications/{application_id}/award"): Plan(
        "f", Kind.WRITE, lambda _: {"amount_eur": 40_000, "decided_on": _TODAY}, _funding_reads
    ),
    ("POST", "/applications/{application_id}/refusal"): Plan(
        "f",
        Kind.WRITE,
        lambda _: {"reason": "out of the envelope", "decided_on": _TODAY},
        _funding_reads,
    ),
    ("POST", "/applications/{application_id}/payments"): Plan(
        "f", Kind.WRITE, lambda _: {"amount_eur": 10_000, "paid_on": _TODAY}, _funding_reads
    ),
}


def luhn_completed(prefix: str) -> str:
    """`prefix` and the check digit that makes its Luhn checksum hold."""
    for last in "0123456789":
        total = 0
        for i, c in enumerate(reversed(prefix + last)):
            d = int(c) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return prefix + last
    raise AssertionError("unreachable: one of ten check digits fits")


def random_siret() -> str:
    """A SIRET whose SIREN and whole number both pass the Luhn check."""
    n = uuid.uuid4().int
    siren = luhn_completed(f"{n % 10**8:08d}")
    return luhn_completed(f"{siren}{(n // 10**8) % 10**4:04d}")


def items_of(content_type: str, text: str, body: Any) -> list[Mapping[str, Any]] | None:
    """The items of a list or an export answer (JSON `items`, a JSON list, CSV rows,
    server-sent events); None for an answer that is not a list (an aggregate). A
    CloudEvent's item is its `data` (the event is about the project named there)."""
    if content_type.startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(text)))
    if content_type.startswith("text/event-stream"):
        lines = [line.removeprefix("data:") for line in text.splitlines()]
        events = [json.loads(line) for line in lines if line.startswith(" {")]
        return [e["data"] for e in events if isinstance(e, Mapping)]
    if isinstance(body, list):
        return [i["data"] if "specversion" in i else i for i in body if isinstance(i, Mapping)]
    if isinstance(body, Mapping) and isinstance(body.get("items"), list):
        return [i for i in body["items"] if isinstance(i, Mapping)]
    return None


def out_of_scope_items(
    who: Identity, items: list[Mapping[str, Any]], world: World
) -> list[Mapping[str, Any]]:
    """The items `who` should not have been given (admins see everything)."""
    if who.role == "admin":
        return []
    wrong = []
    for item in items:
        if who.role == "funder" and "regions" in item and "project_id" not in item:
            # a funder's own resource of its regions (a webhook subscription)
            regions = item["regions"]
            if not isinstance(regions, list) or not set(map(str, regions)) <= who.regions:
                wrong.append(item)
            continue
        territories = _territories_of(item, world)
        if who.role == "funder":
            pid = str(item.get("project_id", item.get("id", "")))
            seen = pid in world.consented and IN_REGION in who.regions
            if not seen or not territories:
                wrong.append(item)
        elif not territories or not (territories & who.territories):
            wrong.append(item)
    return wrong


def _territories_of(item: Mapping[str, Any], world: World) -> set[str]:
    """The territories an item belongs to, from its own fields or the world's ids (a visit
    names its campaign only). An item the matrix cannot place counts as out of scope."""
    if isinstance(item.get("territory_ids"), list):
        return set(map(str, item["territory_ids"]))
    if item.get("territory_id"):
        return {str(item["territory_id"])}
    if isinstance(item.get("site"), Mapping):
        return _territories_of(item["site"], world)
    for key in ("campaign_id", "shock_id", "project_id", "id"):
        known = world.territory_of.get(str(item.get(key, "")))
        if known:
            return {known}
    return set()
