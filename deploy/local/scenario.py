"""The Béthune reference case as data: what `make demo` sends, and nothing else.

Pure: no I/O, no clock. `build(targets, seed)` turns the campaign's targets (read from
the running system's plan) and a seed into every request body of the replay, so that
the same system and the same seed always give the same replay — and so the same
Idempotency-Keys answer a rerun.

Two kinds of figures, kept apart on purpose:

* **Published** (`PUBLISHED`, each with the sentence of the source it comes from:
  `/work/shared/seeds/000_e81acbc18ab231f6.txt`, the policy note's Béthune case, and its
  press summary `001_36bab20f28f96191.txt`): 900 jobs lost, 150 consultant-days, 165
  sites, 55 firms surveyed surfacing 26 projects, the France Relance regional reviews
  (1 Béthune project of 25 selected, then 18 of 50, then 65 of 200), 900 jobs created by
  June 2025, half endogenous, half exogenous, Blackstar's tyre-retreading plant.
* **GENERATED** (drawn by `random.Random(seed)`): which firms were surveyed and which
  projects they told, each project's kind, capex, jobs and funding need, the split of
  the 450 + 450 jobs over the projects, every date the source does not give (filing,
  decisions, hires), the three other exogenous firms. Every generated text sent to the
  system starts with "GENERATED", and so do the generated firms' names.

The final ledger is 900 / 450 / 450 by construction: the jobs each project creates are a
partition of the published 450 (endogenous) and 450 (exogenous) — `partition` returns
parts that add up to the total exactly — and every project that creates jobs is one the
ledger counts (detected after the announcement, in the territory, never abandoned,
never a look-alike of another: no two projects of one firm share a kind).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from shared.events.campaigns import ProjectKind

__all__ = [
    "PUBLISHED",
    "Exogenous",
    "Lead",
    "Round",
    "Scenario",
    "ScenarioError",
    "Target",
    "Visit",
    "build",
    "partition",
]


@dataclass(frozen=True)
class Published:
    """The reference case's figures, as the sources state them."""

    #: "SIRET 36120038900019": the registry's demo file (real IREP site, BRIDGESTONE)
    closing_site: str = "36120038900019"
    territory: str = "ti-3205"
    #: the public announcement date; the seeds say only "fermeture … à Béthune en 2020"
    announced_on: date = date(2020, 9, 16)
    #: "L'annonce de Bridgestone impliquait la disparition de 900 emplois industriels"
    jobs_lost: int = 900
    #: "met à disposition du territoire 150 jours de consultance"
    consultant_days: float = 150.0
    #: "prendre contact avec les 165 sites industriels" (the closing one among them)
    sites: int = 165
    #: "un sondage auprès de 55 industriels … fait remonter déjà 26 projets"
    earlier_survey_firms: int = 55
    earlier_survey_projects: int = 26
    #: "à la première relevée régionale de France Relance seul un projet sur 25 provenait
    #: de Béthune, ce sont bientôt 18 dossiers béthunois sur 50 qui sont sélectionnés,
    #: puis ensuite 65 sur 200" — (selected in the round, of which from Béthune)
    rounds: tuple[tuple[int, int], ...] = ((25, 1), (50, 18), (200, 65))
    #: "en juin 2025, cette perte est compensée par autant de créations d'emplois : pour
    #: une moitié via des projets endogènes …, pour l'autre moitié via des projets exogènes"
    compensated_by: date = date(2025, 6, 30)
    jobs_created_endogenous: int = 450
    jobs_created_exogenous: int = 450
    #: "comme la localisation de Blackstar, un des premiers projets de rechapage
    #: industriel de pneus" (no figure given: its jobs are GENERATED)
    blackstar: str = "Blackstar"
    #: "entre 50 % et 65 % de ces projets n'étaient pas connus des acteurs publics"
    #: (across the Rebond missions, not Béthune's own figure)
    hidden_share: tuple[float, float] = (0.50, 0.65)
    #: the France Relance acceleration fund and its Hauts-de-France reviews, as the
    #: funding catalogue's curated seed names them
    scheme_id: str = "fr-relance-aiit"
    call_id: str = "fr-relance-aiit-hdf-reviews"


PUBLISHED: Final = Published()

#: GENERATED parameters of the replay (the source gives none of these)
CAMPAIGN_PROJECTS: Final = 70  # told by the 109 firms visited besides the earlier 55
CAMPAIGN_DECLINED: Final = 9  # firms of those 109 that declined the visit
ABANDONED: Final = 6  # projects given up (counted apart by the ledger)
#: round decision days (the source dates none of them; France Relance opened on
#: 4 September 2020, its regional reviews ran from late 2020 to 2022)
ROUND_DECIDED_ON: Final = (date(2020, 12, 17), date(2021, 4, 15), date(2021, 11, 18))
EXOGENOUS_FIRMS: Final = 4  # Blackstar and three GENERATED firms

Kind = ProjectKind  # the survey's project kinds, as the events define them
#: kinds France Relance's acceleration fund takes (its themes: industrial development,
#: modernisation, skills — see services/funding/domain/matching.py KIND_THEMES)
RELANCE_KINDS: Final[tuple[Kind, ...]] = (
    "capacity_extension",
    "new_line",
    "modernisation_automation",
    "site_takeover",
    "skills_training",
)
#: kinds the fund does not take: the projects still waiting for another scheme
OTHER_KINDS: Final[tuple[Kind, ...]] = ("decarbonation_energy", "rnd_innovation")
KIND_WORDS: Final[dict[str, str]] = {
    "capacity_extension": "capacity extension",
    "new_line": "new production line",
    "modernisation_automation": "modernisation and automation",
    "decarbonation_energy": "decarbonation of the process heat",
    "rnd_innovation": "R&D on a new product",
    "site_takeover": "takeover of a vacant building",
    "new_site": "new plant",
    "skills_training": "training centre for new hires",
}

Fate = Literal["selected", "waiting", "abandoned"]
Source = Literal["earlier_survey", "campaign"]


class ScenarioError(ValueError):
    """The running system's campaign does not fit the reference case."""


@dataclass(frozen=True)
class Target:
    """A target of the campaign's plan: the site and its planned visit."""

    site_id: str
    naf_code: str
    visit_id: str
    consultant_id: str

    @property
    def siren(self) -> str:
        return self.site_id[:9]


@dataclass(frozen=True)
class Lead:
    """A project told at a visit, and what becomes of it."""

    site_id: str
    source: Source
    kind: Kind
    capex_eur: int
    funding_need_eur: int
    jobs: int  # planned; for a selected project, also the jobs it creates
    known_to_public_actors: bool
    fate: Fate
    round: int | None = None  # index into Scenario.rounds, when selected
    filed_on: date | None = None
    award_eur: int | None = None
    created_on: date | None = None

    @property
    def description(self) -> str:
        where = (
            "told at the earlier survey of 55 firms"
            if self.source == "earlier_survey"
            else "told at the rebond campaign's visit"
        )
        return f"GENERATED: {KIND_WORDS[self.kind]} ({where})"

    def survey_item(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "description": self.description,
            "capex_eur": self.capex_eur,
            "jobs_to_create": self.jobs,
            "maturity": "ready" if self.fate == "selected" else "study",
            "known_to_public_actors": self.known_to_public_actors,
            "funding_need_eur": self.funding_need_eur,
            # Only consented projects reach funders; every lead here may be funded.
            "consent_to_share": True,
        }


@dataclass(frozen=True)
class Visit:
    target: Target
    source: Source
    declined: bool
    leads: tuple[Lead, ...]

    def survey(self) -> dict[str, object]:
        return {
            "questionnaire_version": "2026-1",
            "projects": [lead.survey_item() for lead in self.leads],
            "comments": "GENERATED answers of the Béthune replay (make demo)",
        }


@dataclass(frozen=True)
class Exogenous:
    """A project from outside the territory, declared by the crisis cell."""

    firm_name: str
    naf_code: str
    kind: Kind
    jobs: int  # planned, and created
    capex_eur: int
    land_needs_ha: float
    description: str
    created_on: date

    def body(self, shock_id: str) -> dict[str, object]:
        return {
            "territory_id": PUBLISHED.territory,
            "shock_id": shock_id,
            "firm_name": self.firm_name,
            "naf_code": self.naf_code,
            "kind": self.kind,
            "description": self.description,
            "jobs_planned": self.jobs,
            "capex_eur": self.capex_eur,
            "land_needs_ha": self.land_needs_ha,
            "maturity": "ready",
            "known_to_public_actors": True,
            "consent_to_share": True,
        }


@dataclass(frozen=True)
class Round:
    name: str  # the call's round, as the catalogue names it
    decided_on: date  # GENERATED
    selected: int  # published
    bethune: int  # published; equal, by construction, to the awards this replay records


@dataclass(frozen=True)
class Scenario:
    seed: int
    visits: tuple[Visit, ...]
    exogenous: tuple[Exogenous, ...]
    rounds: tuple[Round, ...]

    @property
    def leads(self) -> tuple[Lead, ...]:
        return tuple(lead for v in self.visits for lead in v.leads)

    def selected(self, round_index: int) -> tuple[Lead, ...]:
        return tuple(lead for lead in self.leads if lead.round == round_index)

    def jobs_created(self) -> tuple[int, int]:
        """(endogenous, exogenous) jobs the replay records as created."""
        endogenous = sum(lead.jobs for lead in self.leads if lead.fate == "selected")
        return endogenous, sum(x.jobs for x in self.exogenous)


def partition(total: int, parts: int, rng: random.Random, *, minimum: int = 1) -> list[int]:
    """`parts` GENERATED integers, each at least `minimum`, adding up to `total` exactly
    (largest remainders): how the published totals are shared out."""
    if parts <= 0 or minimum * parts > total:
        raise ScenarioError(f"cannot share {total} into {parts} parts of at least {minimum}")
    weights = [rng.uniform(0.4, 2.5) for _ in range(parts)]
    spare = total - minimum * parts
    shares = [spare * w / sum(weights) for w in weights]
    out = [minimum + int(s) for s in shares]
    by_remainder = sorted(range(parts), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def _day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _capex(rng: random.Random) -> int:
    # PMI of about 30 employees (the source): investments of a few hundred k€ to a few M€
    return int(round(rng.lognormvariate(13.8, 0.7), -4))


def build(targets: Sequence[Target], seed: int) -> Scenario:
    """The whole replay for the campaign's `targets` (every site but the closing one)."""
    p = PUBLISHED
    if len(targets) != p.sites - 1:
        raise ScenarioError(
            f"the campaign has {len(targets)} targets; the reference case visits the"
            f" {p.sites - 1} sites besides the closing one"
        )
    rng = random.Random(seed)
    ordered = sorted(targets, key=lambda t: t.site_id)
    earlier = set(t.site_id for t in rng.sample(ordered, p.earlier_survey_firms))
    others = [t for t in ordered if t.site_id not in earlier]
    declined = set(t.site_id for t in rng.sample(others, CAMPAIGN_DECLINED))
    reached = [t for t in others if t.site_id not in declined]

    # Who told a project: 26 of the 55 (one each), and 70 among the firms reached later
    # (some telling two).
    told: dict[str, int] = {}
    for site_id in rng.sample(sorted(earlier), p.earlier_survey_projects):
        told[site_id] = 1
    campaign_sites = rng.sample([t.site_id for t in reached], CAMPAIGN_PROJECTS * 6 // 7)
    for site_id in campaign_sites:
        told[site_id] = 1
    for site_id in rng.sample(campaign_sites, CAMPAIGN_PROJECTS - len(campaign_sites)):
        told[site_id] = 2
    slots = [(site_id, n) for site_id in sorted(told) for n in range(told[site_id])]

    # Fates: the Béthune selections of the three rounds (1 + 18 + 65), the abandoned, and
    # the rest still waiting for a scheme. The earlier survey's projects were ready
    # first, so they fill the first rounds.
    wanted = sum(bethune for _, bethune in p.rounds)
    if wanted + ABANDONED > len(slots):
        raise ScenarioError(f"{len(slots)} projects cannot give {wanted} selections")
    rng.shuffle(slots)
    slots.sort(key=lambda s: s[0] not in earlier)  # stable: earlier survey first
    rounds = tuple(
        Round(name, decided_on, selected, bethune)
        for (selected, bethune), name, decided_on in zip(
            p.rounds,
            ("first regional review", "second regional review", "later reviews"),
            ROUND_DECIDED_ON,
            strict=True,
        )
    )
    round_of = [i for i, r in enumerate(rounds) for _ in range(r.bethune)]
    rest = slots[wanted:]
    abandoned = set(rng.sample(range(len(rest)), ABANDONED))
    jobs_of = partition(p.jobs_created_endogenous, wanted, rng, minimum=2)

    kinds_of_firm: dict[str, set[str]] = {}
    leads: dict[str, list[Lead]] = {}
    for index, (site_id, _) in enumerate(slots):
        selected = index < wanted
        fate: Fate = (
            "selected" if selected else "abandoned" if index - wanted in abandoned else "waiting"
        )
        # A firm's projects never share a kind: two would be look-alikes under review.
        used = kinds_of_firm.setdefault(site_id[:9], set())
        pool = RELANCE_KINDS if fate != "waiting" else OTHER_KINDS + RELANCE_KINDS
        kind = rng.choice([k for k in pool if k not in used])
        used.add(kind)
        capex = max(150_000, _capex(rng))
        need = int(round(capex * rng.uniform(0.25, 0.4), -3))
        hidden = rng.random() < sum(p.hidden_share) / 2
        if selected:
            decided_on = rounds[round_of[index]].decided_on
            filed_on = max(
                p.announced_on + timedelta(days=1), decided_on - timedelta(rng.randint(40, 90))
            )
            lead = Lead(
                site_id=site_id,
                source="earlier_survey" if site_id in earlier else "campaign",
                kind=kind,
                capex_eur=capex,
                funding_need_eur=need,
                jobs=jobs_of[index],
                known_to_public_actors=not hidden,
                fate=fate,
                round=round_of[index],
                filed_on=filed_on,
                award_eur=int(round(need * rng.uniform(0.6, 1.0), -3)),
                created_on=_day_between(rng, decided_on + timedelta(days=120), p.compensated_by),
            )
        else:
            lead = Lead(
                site_id=site_id,
                source="earlier_survey" if site_id in earlier else "campaign",
                kind=kind,
                capex_eur=capex,
                funding_need_eur=need,
                jobs=rng.randint(2, 12),
                known_to_public_actors=not hidden,
                fate=fate,
            )
        leads.setdefault(site_id, []).append(lead)

    visits = tuple(
        Visit(
            target=t,
            source="earlier_survey" if t.site_id in earlier else "campaign",
            declined=t.site_id in declined,
            leads=tuple(leads.get(t.site_id, ())),
        )
        for t in ordered
    )
    return Scenario(seed=seed, visits=visits, exogenous=_exogenous(rng), rounds=rounds)


def _exogenous(rng: random.Random) -> tuple[Exogenous, ...]:
    p = PUBLISHED
    jobs = partition(p.jobs_created_exogenous, EXOGENOUS_FIRMS, rng, minimum=40)
    others: tuple[tuple[str, Kind, str], ...] = (
        ("25.62B", "new_site", "machining plant"),
        ("20.16Z", "site_takeover", "plastics compounding in a vacant building"),
        ("29.32Z", "new_site", "automotive parts plant"),
    )
    out = [
        Exogenous(
            firm_name=p.blackstar,
            naf_code="22.11Z",  # manufacture and retreading of tyres
            kind="new_site",
            jobs=jobs[0],
            capex_eur=int(round(rng.uniform(15e6, 40e6), -5)),
            land_needs_ha=round(rng.uniform(3, 10), 1),
            description=(
                "Blackstar: one of the first industrial tyre-retreading plants, which chose"
                " to locate in the territory (named by the source); jobs, capex, land and"
                " dates GENERATED"
            ),
            created_on=_day_between(rng, date(2022, 6, 1), p.compensated_by),
        )
    ]
    for n, ((naf, kind, what), count) in enumerate(zip(others, jobs[1:], strict=True), 2):
        out.append(
            Exogenous(
                firm_name=f"GENERATED exogenous firm {n}",
                naf_code=naf,
                kind=kind,
                jobs=count,
                capex_eur=int(round(rng.uniform(3e6, 20e6), -5)),
                land_needs_ha=round(rng.uniform(1, 8), 1),
                description=f"GENERATED: a {what} from outside looking for a location",
                created_on=_day_between(rng, date(2021, 9, 1), p.compensated_by),
            )
        )
    return tuple(out)
