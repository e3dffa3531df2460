"""The batch jobs on the fake unit of work: the Sirene import (one unit of work per
batch, its report), the demo load, the reference load."""

from __future__ import annotations

import csv
import io
import math

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.domain.model import SiteStatus
from services.site_registry.entrypoints.cli import demo_sites
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.commands import (
    ImportReport,
    ImportScope,
    Nomenclatures,
    Outcome,
)
from shared.events.site_registry import SiteClosed, SiteRegistered, SiteUpdated
from tests.unit.site_registry.fakes import FakeSiteRegistryUnitOfWork, FakeUowFactory, RegistryDb

pytestmark = pytest.mark.unit

SAMPLE = "sirene_stock_etablissement_sample_299.csv"
IN_SCOPE_ACTIVE = 7  # the sample's active manufacturing establishments
CHANGED, CLOSED = "00552017600016", "00552007700016"  # two of them


@pytest.fixture(scope="module")
def sample() -> str:
    return reference_data.data_file(SAMPLE).read_text(encoding="utf-8")


def every_commune(text: str) -> ImportScope:
    communes = {r["codeCommuneEtablissement"] for r in csv.DictReader(io.StringIO(text))}
    return ImportScope(communes=frozenset(communes - {""}))


def edited(text: str, siret: str, column: str, value: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    i_siret, i_column = rows[0].index("siret"), rows[0].index(column)
    for row in rows[1:]:
        if row[i_siret] == siret:
            row[i_column] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


async def run_import(
    factory: FakeUowFactory, text: str, refs: Nomenclatures, *, batch_size: int = 3
) -> ImportReport:
    return await batch_jobs.import_sirene(
        factory, io.StringIO(text, newline=""), every_commune(text), refs, batch_size=batch_size
    )


async def test_the_import_commits_each_batch_and_a_repeat_records_nothing(
    db: RegistryDb, refs: Nomenclatures, sample: str
) -> None:
    factory = FakeUowFactory(db)
    progress: list[int] = []
    report = await batch_jobs.import_sirene(
        factory,
        io.StringIO(sample, newline=""),
        every_commune(sample),
        refs,
        batch_size=3,
        on_rows=progress.append,
    )

    assert (report.rows_read, report.error_count, report.created) == (299, 0, IN_SCOPE_ACTIVE)
    assert report.skipped == report.in_scope - IN_SCOPE_ACTIVE  # closed ones we never knew
    assert factory.commits == math.ceil(report.in_scope / 3)
    assert progress[-1] == 299  # the rows read so far, at the end of the file
    assert len(db.sites) == IN_SCOPE_ACTIVE
    assert [type(e) for e in factory.published] == [SiteRegistered] * IN_SCOPE_ACTIVE

    again = FakeUowFactory(db)
    repeat = await run_import(again, sample, refs)
    assert (repeat.created, repeat.updated, repeat.closed) == (0, 0, 0)
    assert repeat.unchanged == IN_SCOPE_ACTIVE and again.published == []


async def test_a_changed_row_updates_and_a_closed_row_closes(
    db: RegistryDb, refs: Nomenclatures, sample: str
) -> None:
    await run_import(FakeUowFactory(db), sample, refs)
    changed = edited(sample, CHANGED, "trancheEffectifsEtablissement", "21")
    changed = edited(changed, CLOSED, "etatAdministratifEtablissement", "F")

    factory = FakeUowFactory(db)
    report = await run_import(factory, changed, refs)

    assert (report.updated, report.closed, report.created) == (1, 1, 0)
    assert db.sites[CHANGED].facts.headcount_band == "21"
    assert db.sites[CLOSED].status is SiteStatus.CLOSED
    events = {type(e): e for e in factory.published}
    assert len(events) == len(factory.published) == 2
    update, closed = events[SiteUpdated], events[SiteClosed]
    assert isinstance(update, SiteUpdated) and update.changed_fields == ["headcount_band"]
    assert isinstance(closed, SiteClosed) and closed.site_id == CLOSED


async def test_refused_rows_are_reported_with_their_line_and_the_import_goes_on(
    db: RegistryDb, refs: Nomenclatures, sample: str
) -> None:
    lines = sample.splitlines(keepends=True)
    lines[8] = ",".join(lines[8].split(",")[:10]) + "\n"  # line 9 loses columns
    broken = edited("".join(lines), CHANGED, "trancheEffectifsEtablissement", "77")

    report = await run_import(FakeUowFactory(db), broken, refs)

    by_line = {e.line: e for e in report.errors}
    assert len(by_line) == report.error_count == 2 and 9 in by_line
    (refused,) = [e for e in report.errors if e.siret == CHANGED]
    assert "'77' is not an INSEE code" in refused.reason
    assert report.created == IN_SCOPE_ACTIVE - 1 and CHANGED not in db.sites


async def test_a_failed_batch_keeps_the_batches_committed_before_it(
    db: RegistryDb, refs: Nomenclatures, sample: str
) -> None:
    class Down(Exception):
        pass

    class FailsOnThirdBatch(FakeUowFactory):
        def __call__(self) -> FakeSiteRegistryUnitOfWork:
            uow = super().__call__()
            if len(self.opened) == 3:

                async def commit() -> None:
                    raise Down

                uow.commit = commit  # type: ignore[method-assign]
            return uow

    factory = FailsOnThirdBatch(db)
    with pytest.raises(Down):
        await run_import(factory, sample, refs, batch_size=1)

    assert factory.commits == 2
    assert len(db.sites) == len([e for e in factory.published if isinstance(e, SiteRegistered)])
    assert len(factory.opened) == 3  # nothing read nor opened after the failure


async def test_the_demo_loads_in_one_unit_of_work_and_again_changes_nothing(
    db: RegistryDb, refs: Nomenclatures
) -> None:
    factory = FakeUowFactory(db)
    counts = await batch_jobs.load_sites(factory, demo_sites(), refs)

    assert counts[Outcome.CREATED] == 165 and factory.commits == 1
    assert all(site.territory_ids == ("ti-3205",) for site in db.sites.values())
    assert len(factory.published) == 165

    again = FakeUowFactory(db)
    assert (await batch_jobs.load_sites(again, demo_sites(), refs))[Outcome.UNCHANGED] == 165
    assert again.published == []


async def test_the_reference_load_commits_once(reference_db: RegistryDb) -> None:
    factory = FakeUowFactory(RegistryDb())
    counts = await batch_jobs.load_reference_data(
        factory,
        reference_data.load_territories(),
        reference_data.load_communes(),
        reference_data.load_territory_communes(),
    )

    assert counts == {"territories": 183, "communes": 34969, "links": 18639, "sites_moved": 0}
    assert factory.commits == 1 and factory.published == []
    assert factory.db.links == reference_db.links
