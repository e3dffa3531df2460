"""Personal data never reaches Kafka; the owning service keeps it.

Sirene publishes the name of a sole trader (an *entrepreneur individuel*) whose record is
public: the registry keeps it, shows it, and sends no name for that site in any event.

A consultant types the firm's contact (a name, a phone, an e-mail) into a lead's
description and the survey's comments; the crisis cell puts a phone and an e-mail in its
closure shock's note, an exogenous project's description and the reason it abandons that
project. Every topic (and its dead-letter topic) is then read to the end, keys, values
and headers: none of what was typed is there — the free text that does travel went
through `shared.scrub` — while each service that owns a text still answers it verbatim.
"""

from __future__ import annotations

import csv
import io
import uuid

from services.site_registry.adapters.reference_data import data_file
from services.site_registry.service_layer import batch_jobs, commands
from shared.events.catalogue import ALL_TOPICS, PROJECTS, SITES, SURVEYS
from shared.scrub import EMAIL, NAME, PHONE
from tests.support.dsl import BRIDGESTONE, SME_BANDS, FundingStack
from tests.support.kafka import Message, read_all
from tests.support.waiting import eventually

CONTACT_NAME = "Gwendoline Kerhervé"
CONTACT_PHONE = "06 71 82 93 04"
LEAD_PHONE = "06.12.34.56.78"
LEAD_EMAIL = "gwendoline.kerherve@fonderie-exemple.fr"
FLAG_PHONE = "+33 7 98 76 54 32"
COMMENT_EMAIL = "g.kerherve@gmail.com"
NOTE_EMAIL = "delegue.syndical@exemple.org"
NOTE_PHONE = "0320123456"
EXO_PHONE = "0033 6 55 44 33 22"
EXO_EMAIL = "dirigeant@blackstar-exemple.com"
ABANDON_PHONE = "07 11 22 33 44"
CONSULTANT = "consultant-1"

LEAD_DESCRIPTION = (
    f"Nouvelle ligne de fonderie, 2 500 000 € de capex, 12 emplois d'ici 06/2027."
    f" Rappeler {CONTACT_NAME} au {LEAD_PHONE} ou {LEAD_EMAIL}."
)


def _forms(phone: str) -> set[str]:
    """A phone as typed and as its digits alone (a payload may drop the separators)."""
    return {phone, "".join(c for c in phone if c.isdigit())}


PERSONAL = {
    CONTACT_NAME,
    "Kerhervé",
    LEAD_EMAIL,
    COMMENT_EMAIL,
    NOTE_EMAIL,
    EXO_EMAIL,
    CONSULTANT,
    *_forms(CONTACT_PHONE),
    *_forms(LEAD_PHONE),
    *_forms(FLAG_PHONE),
    *_forms(NOTE_PHONE),
    *_forms(EXO_PHONE),
    *_forms(ABANDON_PHONE),
}


async def _read_everything(st: FundingStack) -> dict[str, list[Message]]:
    """Every topic and dead-letter topic, read to the end."""
    prefix = st.registry.settings.kafka_topic_prefix
    bootstrap = st.registry.settings.kafka_bootstrap_servers
    read: dict[str, list[Message]] = {}
    for topic in ALL_TOPICS:
        read[topic.name] = await read_all(bootstrap, topic.physical(prefix))
        try:
            read[topic.dlq] = await read_all(bootstrap, topic.physical_dlq(prefix))
        except AssertionError:
            read[topic.dlq] = []  # a dead-letter topic nobody created: empty
    return read


def _hits(messages: list[Message]) -> list[tuple[str, int, str, str]]:
    found = []
    for m in messages:
        texts = {
            "key": (m.key or b"").decode(errors="replace"),
            "value": (m.value or b"").decode(errors="replace"),
            **{f"header {k}": v for k, v in m.headers.items()},
        }
        for where, text in texts.items():
            found += [(m.topic, m.offset, where, s) for s in PERSONAL if s in text]
    return found


async def test_personal_data_typed_in_free_text_never_reaches_a_topic(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    note = f"Délégué syndical joignable au {NOTE_PHONE}, {NOTE_EMAIL}."
    body = {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900, "note": note}
    resp = await st.r.post("/closure-shocks", json=body, headers=st.cell)
    assert resp.status_code == 201, resp.text
    shock_id = resp.json()["id"]
    await st.registry.relay.publish_pending()

    # A consultant surveys an SME: contacts in their fields and in the free text.
    visits = await st.visits(CONSULTANT, at_least=6)
    sme = next(v for v in visits if v.get("band") in SME_BANDS)
    lead_id = uuid.uuid4()
    survey = {
        "questionnaire_version": "2026-1",
        "headcount": 40,
        "projects": [
            {
                "lead_id": str(lead_id),
                "kind": "new_line",
                "description": LEAD_DESCRIPTION,
                "capex_eur": 2_500_000,
                "jobs_to_create": 12,
                "maturity": "ready",
                "known_to_public_actors": False,
                "obstacles": ["financing"],
                "funding_need_eur": 800_000,
                "consent_to_share": True,
            }
        ],
        "red_flags": [{"kind": "layoffs", "horizon_months": 6, "jobs_at_risk": 15}],
        "contact_name": CONTACT_NAME,
        "contact_phone": CONTACT_PHONE,
        "comments": f"Relancer par mail ({COMMENT_EMAIL}) ou au {FLAG_PHONE} si licenciements.",
    }
    resp = await st.c.post(
        f"/visits/{sme['id']}/survey", json=survey, headers=st.consultant(CONSULTANT)
    )
    assert resp.status_code == 201, resp.text

    # The crisis cell brings in an exogenous project, then abandons it.
    exo_description = f"Implantation d'un entrepôt, 40 postes ; contact {EXO_PHONE}, {EXO_EMAIL}"
    exo = await st.post(
        "/projects/exogenous",
        {
            "territory_id": st.territory,
            "shock_id": shock_id,
            "firm_name": "Blackstar",
            "description": exo_description,
            "jobs_planned": 40,
        },
    )
    reason = f"Le dirigeant a renoncé (appel au {ABANDON_PHONE} le 12/01/2027)"
    await st.post(f"/projects/{exo['id']}/abandon", {"reason": reason})
    await eventually(st.projects, lambda p: len(p) == 2, what="both projects in detection")
    await st.drained()

    # Every topic and dead-letter topic, read to the end: zero hits.
    read = await _read_everything(st)
    everything = [m for messages in read.values() for m in messages]
    assert _hits(everything) == []

    # The free text that travels was scrubbed, not dropped: the figures are still there.
    def values(topic: str, event: str) -> list[str]:
        return [
            (m.value or b"").decode()
            for m in read[topic]
            if m.headers.get("ce_type", "").endswith(f".{event}.v1")
        ]

    [submitted] = values(SURVEYS.name, "survey_submitted")
    assert "2 500 000 € de capex, 12 emplois d'ici 06/2027" in submitted
    assert PHONE in submitted and EMAIL in submitted
    assert values(SURVEYS.name, "red_flag_raised")
    [abandoned] = values(PROJECTS.name, "project_abandoned")
    assert f"appel au {PHONE} le 12/01/2027" in abandoned

    # The owners keep the originals: campaigns its survey, detection its exogenous project,
    # the registry its shock's note.
    async with st.campaigns.uow() as uow:
        campaign_id = await uow.campaigns.campaign_of_visit(uuid.UUID(sme["id"]))
        assert campaign_id is not None
        campaign = await uow.campaigns.get(campaign_id, for_update=False)
        assert campaign is not None
        kept = campaign.surveys[sme["site_id"]].answers
    assert [p.description for p in kept.projects] == [LEAD_DESCRIPTION]
    assert (kept.contact_name, kept.contact_phone) == (CONTACT_NAME, CONTACT_PHONE)
    # Detection knows the lead from the event only: the scrubbed text is what it has.
    [from_survey] = [p for p in await st.projects() if p["origin"] == "endogenous"]
    assert from_survey["description"] == (
        "Nouvelle ligne de fonderie, 2 500 000 € de capex, 12 emplois d'ici 06/2027."
        f" Rappeler {NAME} au {PHONE} ou {EMAIL}."
    )
    resp = await st.d.get(f"/projects/{exo['id']}", headers=st.cell)
    assert resp.status_code == 200, resp.text
    assert resp.json()["description"] == exo_description
    assert resp.json()["abandoned_reason"] == reason
    resp = await st.r.get(f"/closure-shocks/{shock_id}", headers=st.cell)
    assert resp.status_code == 200, resp.text
    assert resp.json()["note"] == note


ESTABLISHMENTS = "sirene_stock_etablissement_sample_299.csv"
LEGAL_UNITS = "sirene_stock_unite_legale_sample_for_etab_sample.csv"
#: a real sole trader of the Sirene sample, public record (statutDiffusion O), no sign
JANOYER_SITE = "00032517500065"
#: a made-up sole trader, given to the surveyed demo site's SIREN
TRADER_FIRST, TRADER_LAST = "ARMELLE", "QUÉMÉNEUR"
TRADER_FORMS = ("janoyer", "armelle", "quéméneur", "quemeneur")


def _legal_units_with(siret: str) -> str:
    """The real legal-unit sample, plus a made-up sole trader (a copy of the sample's
    JANOYER record with another person's name) for the SIREN of `siret`."""
    rows = list(csv.reader(io.StringIO(data_file(LEGAL_UNITS).read_text(encoding="utf-8"))))
    header = rows[0]
    trader = list(next(r for r in rows if r[0] == JANOYER_SITE[:9]))
    for column, value in {
        "siren": siret[:9],
        "nicSiegeUniteLegale": siret[9:],
        "prenom1UniteLegale": TRADER_FIRST,
        "prenomUsuelUniteLegale": TRADER_FIRST,
        "nomUniteLegale": TRADER_LAST,
    }.items():
        trader[header.index(column)] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([*rows, trader])
    return out.getvalue()


async def test_a_sole_traders_public_name_never_reaches_a_topic(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    await st.shock()
    visits = await st.visits(CONSULTANT, at_least=6)
    sme = next(v for v in visits if v.get("band") in SME_BANDS)

    # The real establishment sample (its sole trader JANOYER among the sites), then the
    # legal units: the real ones and a made-up sole trader behind the surveyed demo site.
    sample = data_file(ESTABLISHMENTS).read_text(encoding="utf-8")
    communes = {r["codeCommuneEtablissement"] for r in csv.DictReader(io.StringIO(sample))}
    await batch_jobs.import_sirene(
        st.registry.uow,
        io.StringIO(sample, newline=""),
        commands.ImportScope(communes=frozenset(communes - {""})),
        st.registry.refs,
    )
    report = await batch_jobs.import_legal_units(
        st.registry.uow, io.StringIO(_legal_units_with(sme["site_id"]), newline="")
    )
    assert report.error_count == 0 and report.matched == 7
    await st.registry.relay.publish_pending()

    # The registry keeps and shows both names.
    resp = await st.r.get(f"/sites/{sme['site_id']}", headers=st.cell)
    assert resp.status_code == 200, resp.text
    surveyed = resp.json()["site"]
    assert surveyed["firm_name"] == f"{TRADER_FIRST} {TRADER_LAST}"
    assert surveyed["legal_category"] == "1000"
    async with st.registry.uow() as uow:
        janoyer = await uow.sites.get(JANOYER_SITE)
    assert janoyer is not None
    assert (janoyer.name, janoyer.name_is_person) == ("THIERRY JANOYER", True)

    # The surveyed sole trader's project travels on: detected, qualified, matched.
    lead = {
        "kind": "decarbonation_energy",
        "description": "Four électrique à récupération de chaleur",
        "capex_eur": 1_200_000,
        "jobs_to_create": 4,
        "maturity": "ready",
        "known_to_public_actors": False,
        "obstacles": ["financing"],
        "funding_need_eur": 500_000,
        "consent_to_share": True,
    }
    await st.survey(sme["id"], CONSULTANT, [lead], headcount=30)
    [project] = await eventually(st.projects, lambda p: len(p) == 1, what="the project")
    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200, resp.text

    async def matches() -> dict[str, object]:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    await eventually(matches, lambda m: bool(m.get("eligible")), what="the project matched")
    await st.drained()

    read = await _read_everything(st)
    found = [
        (m.topic, m.offset, form)
        for messages in read.values()
        for m in messages
        for text in (
            (m.key or b"").decode(errors="replace"),
            (m.value or b"").decode(errors="replace"),
            *m.headers.values(),
        )
        for form in TRADER_FORMS
        if form in text.lower()
    ]
    assert found == []
    # The events did go out: the sites' updates, and the surveyed site's legal category.
    updated = [
        m
        for m in read[SITES.name]
        if m.headers.get("ce_type", "").endswith(".site_updated.v1")
        and (m.key or b"").decode() in (JANOYER_SITE, sme["site_id"])
    ]
    assert len(updated) == 2 and all(
        b'"legal_category":"1000"' in (m.value or b"") for m in updated
    )
