"""tests/bench/generate_sirene.py, read back by the real reader (small N, in memory)."""

from __future__ import annotations

import io
from typing import Any

from services.site_registry.adapters.reference_data import load_naf, load_territory_communes
from services.site_registry.adapters.sirene import (
    STOCK_ETABLISSEMENT_COLUMNS,
    SireneEstablishment,
    SireneRowError,
    build_filter,
    read_stock_etablissement,
)
from tests.bench import generate_sirene


def generate(rows: int, seed: int, malformed: bool) -> tuple[str, Any]:
    out = io.StringIO(newline="")
    stats = generate_sirene.generate(out, rows, seed, malformed)
    return out.getvalue(), stats


def test_generated_file_round_trips_through_the_reader() -> None:
    text, stats = generate(5000, seed=7, malformed=True)
    assert text.splitlines()[0].split(",") == list(STOCK_ETABLISSEMENT_COLUMNS)
    items = list(read_stock_etablissement(io.StringIO(text, newline="")))
    errors = [i for i in items if isinstance(i, SireneRowError)]
    good = [i for i in items if isinstance(i, SireneEstablishment)]
    expected_errors = stats.malformed
    assert len(expected_errors) == 10
    assert [e.line for e in errors] == [m.line for m in expected_errors]
    assert len(good) + len(errors) == 5000

    keep = build_filter(set(load_territory_communes()["ti-3205"]), load_naf())
    kept = [g for g in good if keep(g)]
    assert len(kept) == stats.expected_matches
    assert 0.01 * 5000 < len(kept) < 0.06 * 5000  # "a few %"
    assert all(g.name and g.name.startswith("GENERATED") for g in good)
    assert len({g.siret for g in good}) == len(good)


def test_generation_is_deterministic() -> None:
    a, _ = generate(300, seed=3, malformed=False)
    b, _ = generate(300, seed=3, malformed=False)
    c, _ = generate(300, seed=4, malformed=False)
    assert a == b
    assert a != c
