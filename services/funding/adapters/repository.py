"""Schemes as rows and back, and the in-process catalogue cache that matching reads."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import SchemeRow
from services.funding.domain.catalogue import Perimeter, Scheme
from shared.messaging.tables import utcnow

_SET_FIELDS = ("beneficiaries", "naf_sections", "kinds", "themes")
_DATE_FIELDS = ("opens_on", "closes_on")


def scheme_to_dict(scheme: Scheme) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(scheme):
        if not f.init:
            continue
        value = getattr(scheme, f.name)
        if f.name == "perimeter":
            value = {"scale": value.scale, "codes": list(value.codes)}
        elif f.name in _SET_FIELDS:
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, date):
            value = value.isoformat()
        out[f.name] = value
    return out


def scheme_from_dict(data: dict[str, Any]) -> Scheme:
    values = dict(data)
    perimeter = values.pop("perimeter")
    for name in _SET_FIELDS:
        values[name] = frozenset(values.get(name) or ())
    for name in ("funders", "naf_prefixes"):
        values[name] = tuple(values.get(name) or ())
    for name in _DATE_FIELDS:
        if values.get(name):
            values[name] = date.fromisoformat(values[name])
    return Scheme(
        perimeter=Perimeter(perimeter["scale"], tuple(perimeter.get("codes") or ())), **values
    )


def scheme_row(scheme: Scheme, *, version: int = 1) -> SchemeRow:
    return SchemeRow(
        id=scheme.id,
        name=scheme.name,
        funders=list(scheme.funders),
        scale=scheme.perimeter.scale,
        generated=scheme.generated,
        data=scheme_to_dict(scheme),
        version=version,
        updated_at=utcnow(),
    )


async def upsert_scheme(session: AsyncSession, scheme: Scheme) -> bool:
    """True when the scheme is new or changed."""
    row = await session.get(SchemeRow, scheme.id, with_for_update=True)
    data = scheme_to_dict(scheme)
    if row is None:
        session.add(scheme_row(scheme))
        return True
    if row.data == data:
        return False
    fresh = scheme_row(scheme, version=row.version + 1)
    for name in ("name", "funders", "scale", "generated", "data", "version", "updated_at"):
        setattr(row, name, getattr(fresh, name))
    return True


class CatalogueCache:
    """All schemes, parsed once and reused while the catalogue's fingerprint (count and
    last change) stays the same: matching a project must not parse 10,000 rows."""

    def __init__(self) -> None:
        self._fingerprint: tuple[int, datetime | None, int] | None = None
        self._schemes: list[Scheme] = []

    async def schemes(self, session: AsyncSession) -> list[Scheme]:
        fingerprint = tuple(
            (
                await session.exec(
                    sa.select(  # type: ignore[call-overload]
                        sa.func.count(),
                        sa.func.max(SchemeRow.updated_at),
                        sa.func.sum(SchemeRow.version),
                    )
                )
            ).one()
        )
        if fingerprint != self._fingerprint:
            rows = (await session.exec(select(SchemeRow).order_by(SchemeRow.id))).all()
            self._schemes = [scheme_from_dict(dict(r.data)) for r in rows]
            self._fingerprint = (int(fingerprint[0]), fingerprint[1], int(fingerprint[2] or 0))
        return self._schemes
