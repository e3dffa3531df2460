"""Importing the real INSEE StockEtablissement sample into the registry, on PostgreSQL,
with the relay publishing to Kafka."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlmodel import select

from services.site_registry.adapters.orm import SiteRow
from services.site_registry.adapters.reference_data import data_file
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.service_layer import batch_jobs, commands
from shared.events.catalogue import SITES
from shared.messaging.tables import OutboxEvent
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

SAMPLE = "sirene_stock_etablissement_sample_299.csv"


def sample_text() -> str:
    return data_file(SAMPLE).read_text(encoding="utf-8")


def expected_rows(text: str, communes: set[str]) -> set[str]:
    """The filter, restated independently of the importer: active, NAF rev. 2 section C
    (divisions 10 to 33), in the communes."""
    keep = set()
    for row in csv.DictReader(io.StringIO(text)):
        code = row["activitePrincipaleEtablissement"]
        if (
            row["etatAdministratifEtablissement"] == "A"
            and row["nomenclatureActivitePrincipaleEtablissement"] == "NAFRev2"
            and row["codeCommuneEtablissement"] in communes
            and code[:2].isdigit()
            and 10 <= int(code[:2]) <= 33
        ):
            keep.add(row["siret"])
    return keep


def all_communes(text: str) -> set[str]:
    return {r["codeCommuneEtablissement"] for r in csv.DictReader(io.StringIO(text))} - {""}


async def site_ids(registry: SiteRegistry) -> set[str]:
    async with registry.session_factory() as s:
        return set((await s.exec(select(SiteRow.siret))).all())


async def outbox_count(registry: SiteRegistry) -> int:
    async with registry.session_factory() as s:
        return len((await s.exec(select(OutboxEvent.id))).all())


async def run_import(
    registry: SiteRegistry, text: str, communes: set[str]
) -> commands.ImportReport:
    return await batch_jobs.import_sirene(
        registry.uow,
        io.StringIO(text, newline=""),
        commands.ImportScope(communes=frozenset(communes)),
        registry.refs,
        batch_size=3,  # several batches even on a small file
    )


async def test_import_keeps_exactly_the_filtered_rows_and_reimport_emits_nothing(
    registry: SiteRegistry,
) -> None:
    text = sample_text()
    communes = all_communes(text)
    expected = expected_rows(text, communes)
    assert len(expected) == 7  # the sample's active manufacturing establishments

    first = await run_import(registry, text, communes)
    assert first.rows_read == 299
    assert first.error_count == 0
    assert first.created == len(expected)
    assert await site_ids(registry) == expected

    await registry.relay.publish_pending()
    bootstrap = registry.settings.kafka_bootstrap_servers
    topic = SITES.physical(registry.settings.kafka_topic_prefix)
    published = await read_all(bootstrap, topic)
    assert sorted(m.key.decode() for m in published if m.key) == sorted(expected)
    outbox_after_first = await outbox_count(registry)

    again = await run_import(registry, text, communes)
    assert (again.created, again.updated, again.closed) == (0, 0, 0)
    assert again.unchanged == len(expected)
    assert await outbox_count(registry) == outbox_after_first
    await registry.relay.publish_pending()
    assert len(await read_all(bootstrap, topic)) == len(published)


async def test_import_scope_is_the_given_communes(registry: SiteRegistry) -> None:
    text = sample_text()
    somme = {c for c in all_communes(text) if c.startswith("80")}
    report = await run_import(registry, text, somme)
    assert await site_ids(registry) == expected_rows(text, somme)
    assert report.created == 5


async def test_changed_row_emits_one_update_and_closed_row_closes(registry: SiteRegistry) -> None:
    text = sample_text()
    communes = all_communes(text)
    await run_import(registry, text, communes)
    await registry.relay.publish_pending()
    before = await outbox_count(registry)

    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    i_siret = header.index("siret")
    i_band = header.index("trancheEffectifsEtablissement")
    i_state = header.index("etatAdministratifEtablissement")
    changed_siret, closed_siret = "00552017600016", "00552007700016"
    for row in rows[1:]:
        if row[i_siret] == changed_siret:
            row[i_band] = "21"
        if row[i_siret] == closed_siret:
            row[i_state] = "F"
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)

    report = await run_import(registry, out.getvalue(), communes)
    assert (report.updated, report.closed, report.created) == (1, 1, 0)
    assert await outbox_count(registry) == before + 2

    await registry.relay.publish_pending()
    messages = await read_all(
        registry.settings.kafka_bootstrap_servers,
        SITES.physical(registry.settings.kafka_topic_prefix),
    )
    last = {m.key.decode(): m for m in messages if m.key}
    update = json.loads(last[changed_siret].value or b"")
    assert update["headcount_band"] == "21" and update["changed_fields"] == ["headcount_band"]
    assert last[closed_siret].headers["ce_type"] == "rebond.site_registry.site_closed.v1"


async def test_malformed_rows_are_reported_with_their_line_and_the_import_goes_on(
    registry: SiteRegistry,
) -> None:
    text = sample_text()
    lines = text.splitlines(keepends=True)
    # Line 5 of the file (4th data row) loses a digit of its SIRET; line 9 loses columns.
    lines[4] = lines[4].replace(lines[4].split(",")[2], lines[4].split(",")[2][:-1], 1)
    lines[8] = ",".join(lines[8].split(",")[:10]) + "\n"
    broken = "".join(lines)
    communes = all_communes(text)

    report = await run_import(registry, broken, communes)
    assert {e.line for e in report.errors} == {5, 9}
    assert all(e.reason for e in report.errors)
    assert report.rows_read == 299
    assert await site_ids(registry) == expected_rows(text, communes) - {
        lines[4].split(",")[2],
        lines[8].split(",")[2],
    }
