"""The registry's service-layer tests run on the fake unit of work over the real
reference data: the 183 territories, the Pas-de-Calais communes and their links."""

from __future__ import annotations

import asyncio

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.service_layer import commands
from services.site_registry.service_layer.commands import Nomenclatures
from tests.unit.site_registry.fakes import FakeSiteRegistryUnitOfWork, RegistryDb


@pytest.fixture(scope="session")
def refs() -> Nomenclatures:
    return Nomenclatures(naf=reference_data.load_naf(), bands=reference_data.load_headcount_bands())


async def _load_reference(uow: FakeSiteRegistryUnitOfWork) -> None:
    await commands.load_reference_data(
        uow,
        reference_data.load_territories(),
        reference_data.load_communes(),
        reference_data.load_territory_communes(),
    )
    await uow.commit()


@pytest.fixture(scope="session")
def reference_db() -> RegistryDb:
    uow = FakeSiteRegistryUnitOfWork()
    asyncio.run(_load_reference(uow))
    return uow.db


@pytest.fixture
def db(reference_db: RegistryDb) -> RegistryDb:
    """A database holding the reference data and nothing else, the test's own (the
    records are immutable: copying the collections is enough)."""
    ref = reference_db
    return RegistryDb(
        territories=dict(ref.territories),
        groupements=list(ref.groupements),
        communes=dict(ref.communes),
        links=set(ref.links),
    )


@pytest.fixture
def uow(db: RegistryDb) -> FakeSiteRegistryUnitOfWork:
    return FakeSiteRegistryUnitOfWork(db)
