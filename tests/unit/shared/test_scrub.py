"""The scrubber of free text: what it masks, and what it must leave alone."""

from __future__ import annotations

import time
from typing import get_args

import pytest
from pydantic import BaseModel

from shared.events.catalogue import event_registry
from shared.scrub import EMAIL, IBAN, NAME, NIR, PHONE, scrub


@pytest.mark.parametrize(
    "phone",
    [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "0612345678",
        "01 45 67 89 01",
        "09 70 12 34 56",
        "+33 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "+33612345678",
        "+33 612345678",
        "0033 6 12 34 56 78",
        "0033612345678",
        "+44 20 7946 0958",
        "+49 30 12345678",
        "+32 2 123 45 67",
    ],
)
def test_phone_numbers_are_masked(phone: str) -> None:
    assert scrub(f"Rappeler le dirigeant au {phone} demain.") == (
        f"Rappeler le dirigeant au {PHONE} demain."
    )


@pytest.mark.parametrize(
    "text",
    ["tel:0612345678.", "(06 12 34 56 78)", "tél.06.12.34.56.78,", "n°0612345678"],
)
def test_phones_glued_to_punctuation_or_letters_are_masked(text: str) -> None:
    assert "12" not in scrub(text) and PHONE in scrub(text)


@pytest.mark.parametrize(
    "email",
    [
        "jean.dupont@acme.fr",
        "J.Dupont+rebond@sous-domaine.acme-industrie.co.uk",
        "contact@acme.fr",
        "jean.dupont(at)acme.fr",
        "jean.dupont [at] acme [dot] fr",
        "jean.dupont [arobase] acme [point] fr",
    ],
)
def test_email_addresses_are_masked(email: str) -> None:
    assert scrub(f"écrire à {email} pour le dossier") == f"écrire à {EMAIL} pour le dossier"


@pytest.mark.parametrize(
    "iban",
    [
        "FR76 3000 6000 0112 3456 7890 189",
        "FR7630006000011234567890189",
        "FR76 3000 6000 0112 3456 7890 180",  # a typo in the key: still an account
        "GB82 WEST 1234 5698 7654 32",
        "DE89 3704 0044 0532 0130 00",
    ],
)
def test_ibans_are_masked(iban: str) -> None:
    assert scrub(f"RIB : {iban} (banque)") == f"RIB : {IBAN} (banque)"


@pytest.mark.parametrize(
    "nir",
    [
        "1 85 07 75 123 456 08",
        "1 85 07 75 123 456 99",  # written as a NIR is: masked even with a wrong key
        "185077512345608",
        "1850775123456",
        "2 91 03 2A 004 123 68",
    ],
)
def test_social_security_numbers_are_masked(nir: str) -> None:
    assert scrub(f"NIR {nir}.") == f"NIR {NIR}."


@pytest.mark.parametrize(
    "text",
    [
        # Firms are not persons: SIRET and SIREN stay, spaced or not.
        "SIRET 12345678900012",
        "SIRET 362 521 879 00034",
        "SIRET 36252187900034, SIREN 362521879",
        "SIREN 552 100 554",
        # Amounts, counts, dates, percentages, references.
        "1 500 000 € pour 120 emplois en 2027",
        "capex 12000000 eur, besoin 3 500 000 euros",
        "100 000 000 000",
        "+1 200 000 € de chiffre d'affaires",
        "+1 200 000 000 €",
        "+12 emplois, +15 %",
        "le 12/03/2026, livraison 2027-06-30, à 10:30",
        "2026-03-12T10:00:00+01:00",
        "ISO 9001 2015 et 14001",
        "ligne 3 : 45 postes, 2 x 8 h, 06/2027",
        "surface 12 000 m2, 3,5 ha, 1 200 kW",
        "code NAF 25.62B, commune 69123, territoire ti-3205",
        "185077512345678",  # 15 digits whose key does not check: a reference
        "lot 123456789012",
        "version 1.2.3, prix 12.50",
        "",
        "Extension de la ligne de pressage, 40 emplois.",
    ],
)
def test_what_is_not_a_person_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_none_stays_none() -> None:
    assert scrub(None) is None


def test_a_whole_note_keeps_its_figures_and_loses_its_identifiers() -> None:
    note = (
        "Projet de nouvelle ligne (SIRET 36252187900034) : 2 500 000 € de capex, 35 emplois"
        " d'ici 06/2027. Contact : Mme Martin, 06 12 34 56 78 / +33 7 98 76 54 32,"
        " claire.martin@acme-industrie.fr. RIB FR76 3000 6000 0112 3456 7890 189."
    )
    assert scrub(note) == (
        "Projet de nouvelle ligne (SIRET 36252187900034) : 2 500 000 € de capex, 35 emplois"
        f" d'ici 06/2027. Contact : Mme Martin, {PHONE} / {PHONE},"
        f" {EMAIL}. RIB {IBAN}."
    )


def test_scrubbing_is_idempotent() -> None:
    once = scrub("06 12 34 56 78, a@b.fr, FR7630006000011234567890189, 1850775123456")
    assert once == f"{PHONE}, {EMAIL}, {IBAN}, {NIR}"
    assert scrub(once) == once


def test_it_is_fast_on_the_longest_description() -> None:
    text = ("Ligne 3 : 45 postes, 1 200 000 €, tel 06 12 34 56 78, a.b@c.fr. " * 40)[:2000]
    started = time.perf_counter()
    for _ in range(200):
        scrub(text)
    assert (time.perf_counter() - started) / 200 < 0.005


def test_the_names_the_caller_knows_are_masked_whole_or_by_their_words() -> None:
    text = "Vu Claire Martin-Dubois (Mme MARTIN-DUBOIS) ; Claire rappellera. Martinique non."
    assert scrub(text, names=["Claire Martin-Dubois", None, " "]) == (
        f"Vu {NAME} (Mme {NAME}) ; {NAME} rappellera. Martinique non."
    )
    assert scrub("Le Lu de Nantes", names=["Lu"]) == "Le [nom] de Nantes"  # whole, even short
    assert scrub("Ligne 3", names=[]) == "Ligne 3"


# Every text of every event that no pattern or closed list constrains, and why it may
# travel. A new one fails the test below until it is listed here: free text typed by a
# person is built through `shared.scrub` where the event is built (and tested on the
# events, tests/integration/test_personal_data.py); the others are codes or names of
# firms, places and schemes.
TEXT_FIELDS = {
    "territory_id": "a code from the territories reference",
    "territory_ids": "codes from the territories reference",
    "commune_insee": "an INSEE code, checked by the service",
    "questionnaire_version": "a version the API accepts from a closed list",
    "CampaignReplanned.reason": "a fixed phrase of the campaigns domain",
    "SurveySubmitted.projects.description": "typed by a consultant: scrubbed, contact names too",
    "site_id": "a SIRET, checked by the service",
    "firm_name": "a company's name; typed by a cell for an exogenous project: scrubbed",
    "maturity": "a value of the questionnaire's closed list",
    "changed_fields": "names of fields",
    "ProjectAbandoned.reason": "typed by a crisis cell: scrubbed",
    "scheme_id": "a catalogue id",
    "scheme_name": "a public scheme's name, from the catalogue",
    "funder": "a funding body's name, from the catalogue",
    "funders": "funding bodies' names, from the catalogue",
    "AwardRefused.reason": "typed by a funder: scrubbed",
    "criteria.criterion": "a criterion's name",
    "criteria.reason": "generated by the matching rules",
    "site_name": "an establishment's public name; withheld (None) for a natural person",
    "name": "an establishment's public name; withheld (None) for a natural person",
    "headcount_band": "an INSEE code",
}


def _free_texts(model: type[BaseModel], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, info in model.model_fields.items():
        pending: list[object] = [info.annotation]
        while pending:
            kind = pending.pop()
            if kind is str and not any(getattr(m, "pattern", None) for m in info.metadata):
                found.add(f"{prefix}{name}")
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= _free_texts(kind, f"{prefix}{name}.")
            else:
                pending += get_args(kind)
    return found


def test_every_free_text_of_every_event_is_accounted_for() -> None:
    unlisted, listed = set(), set()
    for model in event_registry().values():
        for path in _free_texts(model):
            key = f"{model.__name__}.{path}"
            if key in TEXT_FIELDS:
                listed.add(key)
            elif path in TEXT_FIELDS:
                listed.add(path)
            else:
                unlisted.add(key)
    assert unlisted == set(), "free text in an event: scrub it where it is built, list it here"
    assert listed == set(TEXT_FIELDS), f"no longer in any event: {set(TEXT_FIELDS) - listed}"
