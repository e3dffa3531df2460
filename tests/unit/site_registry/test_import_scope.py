"""What `import-sirene` covers: territories, a region's, or all 183, in one pass; the
region an ANCT identifier carries, checked against the COG for every territory."""

from __future__ import annotations

import argparse
import csv
import gzip
from collections import Counter
from typing import Any

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.domain.territories import region_of
from services.site_registry.entrypoints import cli
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


@pytest.fixture
def main_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def service_main(argv: object, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(cli, "service_main", service_main)
    assert cli.main([]) == 0
    return seen


def parse(main_kwargs: dict[str, Any], *args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main_kwargs["arguments"]["import-sirene"](parser)
    return parser.parse_args(args)


async def test_the_command_line_takes_regions_and_everything(
    main_kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    requests: list[cli.ImportRequest] = []

    async def fake_import(_registry: object, request: cli.ImportRequest) -> int:
        requests.append(request)
        return 0

    monkeypatch.setattr(cli, "_import", fake_import)
    run = main_kwargs["jobs"]["import-sirene"][1]
    assert await run(None, parse(main_kwargs, "f.zip", "--region", "44", "--region", "01")) == 0
    assert await run(None, parse(main_kwargs, "f.zip", "--all-territories")) == 0
    assert [(r.regions, r.every_territory, r.territories) for r in requests] == [
        (("44", "01"), False, ()),
        ((), True, ()),
    ]
    assert await run(None, parse(main_kwargs, "f.zip")) == 2  # no scope: nothing imported
    assert "give --territory, --region or --all-territories" in capsys.readouterr().err
    assert len(requests) == 2
