"""Local projections of another service's entities (a site, a project) kept by version.

Events of one entity arrive in order on their partition, but a re-drive or a replay can
bring an older version back: a projection applies a version only if it is newer than the
one it holds, so replays and out-of-order duplicates change nothing.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


R = TypeVar("R", bound=SQLModel)


def is_newer(current: Versioned | None, version: int) -> bool:
    """Whether `version` should replace what the projection holds."""
    return current is None or current.version < version


async def upsert_newer(session: AsyncSession, row: R, *, lock: bool = False) -> R | None:
    """Store `row` if its version is newer than the stored one (all its columns replace
    the stored ones); the stored row when it changed, None when `row` was stale."""
    model = type(row)
    key = _primary_key(row)
    current = await session.get(model, key, with_for_update=lock or None)
    version: int = getattr(row, "version")  # noqa: B009 (a table model with a version column)
    if current is not None and not is_newer(current, version):  # type: ignore[arg-type]
        return None
    if current is None:
        session.add(row)
        return row
    for name in model.model_fields:
        setattr(current, name, getattr(row, name))
    return current


def _primary_key(row: SQLModel) -> Any:
    columns = row.__table__.primary_key.columns  # type: ignore[attr-defined]
    values = tuple(getattr(row, c.key) for c in columns)
    return values[0] if len(values) == 1 else values
