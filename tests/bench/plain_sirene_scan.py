"""The baseline of the Sirene import benchmark: what a person would write with Python's
csv module to pick a territory's manufacturing establishments out of StockEtablissement.

Same file, same decoding (UTF-8, ``newline=""``), same filter as the importer's (commune
in the territories, NAF rév. 2 nomenclature, section C code; a row of the wrong width
is not a row), and nothing else: no validation, no objects, no database. Run as its own
process so that its peak memory is its own::

    python -m tests.bench.plain_sirene_scan FILE ti-3205 [ti-... ...]

prints one JSON line: rows read, rows kept, rows kept and active, seconds.
"""

from __future__ import annotations

import csv
import json
import sys
import time

from services.site_registry.adapters.reference_data import load_naf, load_territory_communes
from services.site_registry.adapters.sirene import NAF_REV2, naf_codes_in, peak_rss_kib


def scan(path: str, territories: list[str]) -> dict[str, float]:
    by_territory = load_territory_communes()
    communes = frozenset(c for t in territories for c in by_territory[t])
    codes = naf_codes_in(load_naf())
    started = time.perf_counter()
    rows = kept = active = 0
    with open(path, encoding="utf-8-sig", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        width = len(header)
        i_commune = header.index("codeCommuneEtablissement")
        i_naf = header.index("activitePrincipaleEtablissement")
        i_nomen = header.index("nomenclatureActivitePrincipaleEtablissement")
        i_state = header.index("etatAdministratifEtablissement")
        for row in reader:
            if not row:
                continue
            rows += 1
            if (
                len(row) == width
                and row[i_commune] in communes
                and row[i_nomen] == NAF_REV2
                and row[i_naf] in codes
            ):
                kept += 1
                active += row[i_state] == "A"
    return {
        "rows_read": rows,
        "kept": kept,
        "kept_active": active,
        "seconds": time.perf_counter() - started,
        "peak_rss_mib": round((peak_rss_kib() or 0) / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(scan(sys.argv[1], sys.argv[2:])))
