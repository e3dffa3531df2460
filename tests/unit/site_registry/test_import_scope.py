"""What `import-sirene` covers: territories, a region's, or all 183, in one pass; the
region an ANCT identifier carries, checked against the COG for every territory."""

from __future__ import annotations

import csv
import gzip
from collections import Counter

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.domain.territories import region_of
from services.site_registry.service_layer import commands
from tests.unit.site_registry.fakes import FakeSiteRegistryUnitOfWork

pytestmark = pytest.mark.unit


def cog_regions() -> dict[str, str]:
    with gzip.open(reference_data.data_file("communes_france_cog.csv.gz"), "rt") as fh:
        return {r["code_insee"]: r["region"] for r in csv.DictReader(fh)}


def test_every_territory_id_carries_the_region_most_of_its_communes_are_in() -> None:
    """A few territories reach across a regional border (ti-2809 has nearly half its
    communes in the Somme): `--region` follows ANCT's attribution, the identifier."""
    regions = cog_regions()
    by_territory = reference_data.load_territory_communes()
    assert len(by_territory) == 183
    across = []
    for tid, communes in by_territory.items():
        found = Counter(regions[c] for c in communes)
        assert found.most_common(1)[0][0] == region_of(tid), (tid, found)
        if len(found) > 1:
            across.append(tid)
    assert "ti-2809" in across and len(across) < 183 // 10


def test_an_identifier_of_another_shape_has_no_region() -> None:
    assert [region_of(t) for t in ("ti-3205", "ti-0101", "ti-32", "x-ab12", "")] == [
        "32",
        "01",
        None,
        None,
        None,
    ]


async def test_territories_regions_and_everything(uow: FakeSiteRegistryUnitOfWork) -> None:
    by_territory = reference_data.load_territory_communes()

    ids, scope = await commands.import_scope(uow, territory_ids=["ti-3205", "ti-3201"])
    assert ids == ["ti-3201", "ti-3205"]
    assert scope.communes == set(by_territory["ti-3201"]) | set(by_territory["ti-3205"])

    ids, scope = await commands.import_scope(uow, regions=["44"], territory_ids=["ti-0101"])
    grand_est = sorted(t for t in by_territory if t.startswith("ti-44"))
    assert ids == sorted([*grand_est, "ti-0101"]) and len(grand_est) == 21
    assert scope.communes == {c for t in ids for c in by_territory[t]}

    ids, scope = await commands.import_scope(uow, every_territory=True)
    assert len(ids) == 183
    assert scope.communes == {c for cs in by_territory.values() for c in cs}


async def test_an_unknown_territory_or_region_is_refused_by_name(
    uow: FakeSiteRegistryUnitOfWork,
) -> None:
    with pytest.raises(commands.UnknownTerritories, match="ti-9999"):
        await commands.import_scope(uow, territory_ids=["ti-3205", "ti-9999"])
    with pytest.raises(commands.UnknownTerritories, match=r"region 99 .*44"):
        await commands.import_scope(uow, regions=["99"])
