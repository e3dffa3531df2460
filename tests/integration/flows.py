"""Flows shared by the funding tests: the four services wired together in-process, and
a surveyed, qualified-ready project of an SME of the Béthune demo."""

from __future__ import annotations

from shared.auth import mint_token
from tests.support.waiting import eventually

BRIDGESTONE = "36120038900019"
ADEME_ECODESIGN = "ademe-1ed7d411"  # Investissements d'écoconception (ADEME, 2023): 15–55 %
OTHER_REGION = "aura-pack-relocalisation"  # Auvergne-Rhône-Alpes only


def token(auth, role: str, sub: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(auth, subject=sub, roles=[role], **claims)}"}


class Stack:
    def __init__(self, **parts) -> None:
        self.__dict__.update(parts)


async def surveyed_projects(st: Stack, *, consent: bool) -> tuple[str, list[dict]]:
    """Shock, campaign, a survey of an SME with a decarbonation project; the projects."""
    shock = await st.r.post(
        "/closure-shocks",
        json={"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900},
        headers=st.cell,
    )
    assert shock.status_code == 201, shock.text
    await st.registry.relay.publish_pending()
    consultant = token(st.campaigns.auth, "consultant", "consultant-1", territories=["ti-3205"])

    async def visits() -> list[dict]:
        resp = await st.c.get(
            "/me/visits",
            params={"from": "2026-11-23", "days": 31, "limit": 200},
            headers=consultant,
        )
        return list(resp.json()["items"])

    mine = await eventually(visits, lambda v: len(v) > 5, what="consultant's visits")
    sme = next(v for v in mine if v.get("band") in ("11", "12", "21", "22", "31"))
    survey = {
        "questionnaire_version": "2026-1",
        "headcount": 40,
        "projects": [
            {
                "kind": "decarbonation_energy",
                "description": "Eco-designed product line with heat recovery",
                "capex_eur": 1_200_000,
                "jobs_to_create": 8,
                "maturity": "ready",
                "known_to_public_actors": False,
                "obstacles": ["financing"],
                "funding_need_eur": 600_000,
                "consent_to_share": consent,
            }
        ],
    }
    resp = await st.c.post(f"/visits/{sme['id']}/survey", json=survey, headers=consultant)
    assert resp.status_code == 201, resp.text

    async def projects() -> list[dict]:
        return list((await st.d.get("/projects", headers=st.cell)).json()["items"])

    found = await eventually(projects, lambda p: len(p) == 1, what="the project in detection")
    return str(shock.json()["id"]), found
