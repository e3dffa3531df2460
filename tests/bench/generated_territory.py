"""A GENERATED territory of N industrial sites for the shock-to-visits benchmark, loaded
into a running site registry's database (its relay publishes the sites' events).

Every site is SYNTHETIC and marked so: source `generated`, a name starting with
"GENERATED", SIRENs from 970000000 up with valid check digits (the demo's generated sites
use 98xxxxxxx, `generate_sirene.py` 90xxxxxxx and up), SIRETs with valid check digits.
Only the communes (ti-3205's, with their centroids) and the NAF section C codes are real.
The first site is the closing one: band 41 (500-999 employees), like Bridgestone.

    SITE_REGISTRY_DATABASE_URL=... KAFKA_BOOTSTRAP_SERVERS=... KAFKA_TOPIC_PREFIX=... \\
        python -m tests.bench.generated_territory --sites 5000

Prints the closing site's SIRET on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from services.site_registry.adapters.reference_data import (
    load_communes,
    load_naf,
    load_territory_communes,
)
from services.site_registry.domain.model import SiteSource
from services.site_registry.domain.siret import complete_luhn, make_siren
from services.site_registry.service_layer.commands import SiteInput

TERRITORY = "ti-3205"
SIREN_BASE = 97_000_000  # 8-digit prefix; the 9th digit is the Luhn key
BANDS = ("01", "02", "03", "11", "11", "12", "12", "12", "21", "21", "22", "31", "32")
CLOSING_BAND = "41"
CHUNK = 1000  # sites per transaction


def generated_sites(n: int, *, seed: int = 3205, territory: str = TERRITORY) -> list[SiteInput]:
    """`n` GENERATED active sites in the territory's communes, section C, deterministic."""
    rng = random.Random(seed)
    section_c = [c.code for c in load_naf().codes_in_section("C")]
    members = set(load_territory_communes()[territory])
    communes = sorted(
        (c for c in load_communes() if c.insee_code in members and c.lon is not None),
        key=lambda c: c.insee_code,
    )
    sites = []
    siren8 = SIREN_BASE
    for index in range(n):
        if index == 0 or rng.random() < 0.7:  # most firms have one site here
            siren8 += 1
            siren, nic = make_siren(str(siren8)), 0
        nic += 1
        commune = rng.choice(communes)
        assert commune.lon is not None and commune.lat is not None
        sites.append(
            SiteInput(
                siret=complete_luhn(f"{siren}{nic:04d}"),
                naf_code=rng.choice(section_c),
                commune_insee=commune.insee_code,
                source=SiteSource.GENERATED,
                name=f"GENERATED site {index + 1}",
                headcount_band=CLOSING_BAND if index == 0 else rng.choice(BANDS),
                # within ~1.5 km of the commune's centroid
                lon=round(commune.lon + rng.uniform(-0.02, 0.02), 6),
                lat=round(commune.lat + rng.uniform(-0.013, 0.013), 6),
            )
        )
    return sites


async def load(n: int, seed: int) -> str:
    from services.site_registry.bootstrap import bootstrap
    from services.site_registry.service_layer import batch_jobs

    registry = bootstrap()
    try:
        sites = generated_sites(n, seed=seed)
        for start in range(0, len(sites), CHUNK):
            await batch_jobs.load_sites(registry.uow, sites[start : start + CHUNK], registry.refs)
    finally:
        await registry.aclose()
    return sites[0].siret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.generated_territory")
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3205)
    args = parser.parse_args(argv)
    closing = asyncio.run(load(args.sites, args.seed))
    sys.stdout.write(closing + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
