"""The registry's fake unit of work: in-memory repositories with the methods the real
ones (`services/site_registry/adapters/repository.py`) offer to the commands.

What a unit of work commits lands in a `RegistryDb` shared by every unit of work of a
test, so a command sees what an earlier one committed, and a rolled-back one leaves no
trace: each unit of work hands out copies, as a session hands out rows of its own.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Self

from services.site_registry.adapters.reference_data import (
    CommuneRecord,
    Groupement,
    TerritoryRecord,
)
from services.site_registry.domain.model import ClosureShock, ShockStatus, Site
from shared.messaging.unit_of_work import RecordsEvents
from tests.support.fake_uow import FakeUnitOfWork


@dataclass
class RegistryDb:
    """The committed state: sites, shocks and the reference tables."""

    sites: dict[str, Site] = field(default_factory=dict)
    shocks: dict[uuid.UUID, ClosureShock] = field(default_factory=dict)
    territories: dict[str, TerritoryRecord] = field(default_factory=dict)
    groupements: list[tuple[str, Groupement]] = field(default_factory=list)
    communes: dict[str, CommuneRecord] = field(default_factory=dict)
    links: set[tuple[str, str]] = field(default_factory=set)  # (territory id, commune)


def _copy(site: Site) -> Site:
    return dataclasses.replace(site, events=[])


class FakeSiteRepository:
    def __init__(self, db: RegistryDb) -> None:
        self._db = db
        self._seen: dict[str, Site] = {}

    @property
    def seen(self) -> list[Site]:
        return list(self._seen.values())

    async def get(self, siret: str, *, for_update: bool = False) -> Site | None:
        return self._load(siret)

    async def get_many(self, sirets: Iterable[str]) -> dict[str, Site]:
        found = {siret: self._load(siret) for siret in sirets}
        return {siret: site for siret, site in found.items() if site is not None}

    def loaded(self, siret: str) -> Site | None:
        return self._seen.get(siret)

    async def of_sirens(self, sirens: Iterable[str]) -> dict[str, list[Site]]:
        wanted = set(sirens)
        by_siren: dict[str, list[Site]] = {}
        for siret in sorted({*self._db.sites, *self._seen}):
            site = self._load(siret)
            if site is not None and site.facts.siren in wanted:
                by_siren.setdefault(site.facts.siren, []).append(site)
        return by_siren

    async def sirens(self) -> set[str]:
        return {s.facts.siren for s in [*self._db.sites.values(), *self._seen.values()]}

    async def territory_assignments(self) -> list[tuple[str, str, tuple[str, ...]]]:
        sites = {**self._db.sites, **self._seen}
        return [(s.siret, s.facts.commune_insee, s.territory_ids) for s in sites.values()]

    def add(self, site: Site) -> None:
        self._seen[site.siret] = site

    def sync(self) -> None:
        for site in self._seen.values():
            self._db.sites[site.siret] = _copy(site)

    def _load(self, siret: str) -> Site | None:
        if siret not in self._seen and siret in self._db.sites:
            self._seen[siret] = _copy(self._db.sites[siret])
        return self._seen.get(siret)


class FakeClosureShockRepository:
    def __init__(self, db: RegistryDb) -> None:
        self._db = db
        self._added: list[ClosureShock] = []

    async def open_shock_of(self, site_id: str) -> ClosureShock | None:
        return next(
            (
                s
                for s in [*self._db.shocks.values(), *self._added]
                if s.site_id == site_id and s.status is ShockStatus.OPEN
            ),
            None,
        )

    async def get(self, shock_id: uuid.UUID) -> ClosureShock | None:
        return self._db.shocks.get(shock_id) or next(
            (s for s in self._added if s.id == shock_id), None
        )

    def add(self, shock: ClosureShock) -> None:
        self._added.append(shock)

    def sync(self) -> None:
        for shock in self._added:
            # The database's partial unique index: one open shock per site.
            assert not any(
                s.site_id == shock.site_id and s.status is ShockStatus.OPEN
                for s in self._db.shocks.values()
            ), f"a second open shock for site {shock.site_id}"
            self._db.shocks[shock.id] = shock
        self._added.clear()


class FakeTerritoryMap:
    def __init__(self, db: RegistryDb) -> None:
        self._db = db
        self._by_commune: dict[str, tuple[str, ...]] | None = None

    async def preload(self, communes: Iterable[str]) -> None:
        pass

    async def territories_of(self, commune_insee: str) -> tuple[str, ...]:
        if self._by_commune is None:  # indexed once per unit of work, as a session reads
            index: dict[str, list[str]] = {}
            for t, c in self._db.links:
                index.setdefault(c, []).append(t)
            self._by_commune = {c: tuple(sorted(ts)) for c, ts in index.items()}
        return self._by_commune.get(commune_insee, ())

    async def ids(self) -> list[str]:
        return sorted(self._db.territories)

    async def communes_of(self, territory_ids: Sequence[str]) -> set[str]:
        return {c for t, c in self._db.links if t in territory_ids}


class FakeReferenceTables:
    def __init__(self, db: RegistryDb) -> None:
        self._db = db
        self._replacement: RegistryDb | None = None

    async def replace(
        self,
        territories: Sequence[TerritoryRecord],
        groupements: Sequence[tuple[str, Groupement]],
        communes: Sequence[CommuneRecord],
        links: Sequence[tuple[str, str]],
    ) -> None:
        keys = [(tid, g.siren) for tid, g in groupements]
        assert len(keys) == len(set(keys)), "duplicate (territory, groupement) primary keys"
        assert {t for t, _ in links} <= {t.id for t in territories}, "a link's foreign key"
        self._replacement = RegistryDb(
            territories={t.id: t for t in territories},
            groupements=list(groupements),
            communes={c.insee_code: c for c in communes},
            links=set(links),
        )

    def sync(self) -> None:
        new, self._replacement = self._replacement, None
        if new is not None:
            self._db.territories = new.territories
            self._db.groupements = new.groupements
            self._db.communes = new.communes
            self._db.links = new.links


class FakeSiteRegistryUnitOfWork(FakeUnitOfWork):
    source = "site_registry"

    def __init__(self, db: RegistryDb | None = None) -> None:
        super().__init__()
        self.db = db if db is not None else RegistryDb()
        self._start()

    def _start(self) -> None:
        self.sites = FakeSiteRepository(self.db)
        self.shocks = FakeClosureShockRepository(self.db)
        self.territories = FakeTerritoryMap(self.db)
        self.reference = FakeReferenceTables(self.db)

    async def __aenter__(self) -> Self:
        self._start()  # a new session: nothing seen yet
        return self

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return self.sites.seen

    async def commit(self) -> None:
        self.sites.sync()  # the real one writes the aggregates back before the outbox rows
        self.shocks.sync()
        self.reference.sync()
        await super().commit()

    async def rollback(self) -> None:
        await super().rollback()
        self._start()  # what was not committed is gone


class FakeUowFactory:
    """`uow_factory` for the batch jobs: one unit of work per call, over one database,
    counting the commits of them all."""

    def __init__(self, db: RegistryDb | None = None) -> None:
        self.db = db if db is not None else RegistryDb()
        self.opened: list[FakeSiteRegistryUnitOfWork] = []

    def __call__(self) -> FakeSiteRegistryUnitOfWork:
        uow = FakeSiteRegistryUnitOfWork(self.db)
        self.opened.append(uow)
        return uow

    @property
    def commits(self) -> int:
        return sum(u.commits for u in self.opened)

    @property
    def published(self) -> list[object]:
        return [e for u in self.opened for e in u.published]
