"""The curated seed catalogue: real schemes for industrial projects, each with its source.

``data/schemes_seed.json`` lists hand-entered schemes and calls (with ``curated`` notes
saying what is still to verify, and ``null`` for every figure no source states) and
*imports* real files through the importers — the five ADEME Agir 2023 business schemes
come from ``data/aides_ademe_agir_dispositifs_entreprises_2023.json``, with the few
``overrides`` the seed documents (each with its ``why``). Every scheme is validated; a
seed that does not validate, or repeats an id, is a bug and raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, Final

from services.funding.adapters.aides_territoires import parse_ademe_agir, parse_aides_territoires
from services.funding.domain.catalogue import (
    Call,
    InvalidCall,
    InvalidScheme,
    Perimeter,
    Scheme,
    SelectionRound,
    validate_call,
    validate_scheme,
)

__all__ = ["DATA_DIR", "SEED_FILE", "load_seed", "load_seed_calls", "scheme_from_json"]

DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data"
SEED_FILE: Final = DATA_DIR / "schemes_seed.json"

_IMPORTERS: Final = {"ademe_agir": parse_ademe_agir, "aides_territoires": parse_aides_territoires}
_OVERRIDABLE: Final = frozenset({"opens_on", "closes_on"})


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def scheme_from_json(entry: Mapping[str, Any]) -> Scheme:
    """One seed entry (see ``schemes_seed.json``) as a validated ``Scheme``."""
    perimeter = entry["perimeter"]
    return validate_scheme(
        Scheme(
            id=entry["id"],
            name=entry["name"],
            funders=tuple(entry["funders"]),
            perimeter=Perimeter(perimeter["scale"], tuple(perimeter.get("codes") or ())),
            aid_type=entry["aid_type"],
            beneficiaries=frozenset(entry.get("beneficiaries") or ()),
            naf_sections=frozenset(entry.get("naf_sections") or ()),
            naf_prefixes=tuple(entry.get("naf_prefixes") or ()),
            kinds=frozenset(entry.get("kinds") or ()),
            themes=frozenset(entry.get("themes") or ()),
            rate_min_pct=entry.get("rate_min_pct"),
            rate_max_pct=entry.get("rate_max_pct"),
            amount_min_eur=entry.get("amount_min_eur"),
            amount_max_eur=entry.get("amount_max_eur"),
            capex_min_eur=entry.get("capex_min_eur"),
            capex_max_eur=entry.get("capex_max_eur"),
            opens_on=_day(entry.get("opens_on")),
            closes_on=_day(entry.get("closes_on")),
            source_url=entry.get("source_url"),
            source=entry.get("source", ""),
            generated=bool(entry.get("generated", False)),
            de_minimis=bool(entry.get("de_minimis", False)),
            curated=entry.get("curated"),
        )
    )


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _imported(spec: Mapping[str, Any]) -> list[Scheme]:
    parse = _IMPORTERS[spec["adapter"]]
    schemes, problems = parse(_read(DATA_DIR / spec["file"]))
    if problems:
        raise InvalidScheme(spec["file"], tuple(f"#{p.index} {p.id}: {p.reason}" for p in problems))
    overrides: Mapping[str, Mapping[str, Any]] = spec.get("overrides") or {}
    unknown = overrides.keys() - {s.id for s in schemes}
    if unknown:
        raise InvalidScheme(spec["file"], (f"overrides name unknown schemes {sorted(unknown)}",))
    out = []
    for scheme in schemes:
        changes = {k: v for k, v in overrides.get(scheme.id, {}).items() if k != "why"}
        if changes.keys() - _OVERRIDABLE:
            raise InvalidScheme(scheme.id, (f"only {sorted(_OVERRIDABLE)} may be overridden",))
        if changes:
            dated = {k: _day(v) for k, v in changes.items()}
            why = overrides[scheme.id].get("why", "")
            scheme = validate_scheme(
                replace(
                    scheme,
                    opens_on=dated.get("opens_on", scheme.opens_on),
                    closes_on=dated.get("closes_on", scheme.closes_on),
                    source=f"{scheme.source}; seed override: {why}",
                )
            )
        out.append(scheme)
    return out


def load_seed(path: Path = SEED_FILE) -> list[Scheme]:
    """Every seed scheme, imported ones first, in file order; ids are unique."""
    doc = _read(path)
    schemes = [s for spec in doc.get("imports", []) for s in _imported(spec)]
    schemes += [scheme_from_json(entry) for entry in doc.get("schemes", [])]
    seen: set[str] = set()
    for s in schemes:
        if s.id in seen:
            raise InvalidScheme(s.id, ("the seed lists this id twice",))
        seen.add(s.id)
    return schemes


def load_seed_calls(path: Path = SEED_FILE, schemes: list[Scheme] | None = None) -> list[Call]:
    """The seed's calls, each checked against its scheme."""
    by_id = {s.id: s for s in (schemes if schemes is not None else load_seed(path))}
    calls = []
    for entry in _read(path).get("calls", []):
        call = Call(
            id=entry["id"],
            scheme_id=entry["scheme_id"],
            name=entry["name"],
            rounds=tuple(
                SelectionRound(
                    name=r["name"],
                    closes_on=_day(r.get("closes_on")),
                    envelope_eur=r.get("envelope_eur"),
                    quota=r.get("quota"),
                )
                for r in entry["rounds"]
            ),
            source_url=entry.get("source_url"),
            source=entry.get("source", ""),
            curated=entry.get("curated"),
        )
        if call.scheme_id not in by_id:
            raise InvalidCall(f"call {call.id}: no scheme {call.scheme_id} in the seed")
        calls.append(validate_call(call, by_id[call.scheme_id]))
    return calls
