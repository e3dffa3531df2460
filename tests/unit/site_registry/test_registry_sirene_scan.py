"""The Sirene reader's filter-first path (rows out of scope dropped before anything is
built), its progress (rows and bytes) and the scan in a child process, on the real
299-row INSEE sample."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import zipfile
from pathlib import Path

import pytest

from services.site_registry.adapters.reference_data import data_file, load_naf
from services.site_registry.adapters.sirene import (
    PROGRESS_EVERY,
    ReadStats,
    RowFilter,
    SireneEstablishment,
    SireneFormatError,
    SireneRowError,
    naf_codes_in,
    open_sirene,
    read_stock_etablissement,
    scan_in_subprocess,
    sirene_size,
)

pytestmark = pytest.mark.unit

SAMPLE = "sirene_stock_etablissement_sample_299.csv"


def sample_rows() -> list[list[str]]:
    text = data_file(SAMPLE).read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def in_scope(rows: list[list[str]], communes: frozenset[str]) -> list[int]:
    """Indexes of the data rows the filter keeps, restated with the header's names."""
    col = {name: i for i, name in enumerate(rows[0])}
    codes = naf_codes_in(load_naf())
    return [
        k
        for k, row in enumerate(rows[1:], start=1)
        if row[col["codeCommuneEtablissement"]] in communes
        and row[col["nomenclatureActivitePrincipaleEtablissement"]] == "NAFRev2"
        and row[col["activitePrincipaleEtablissement"]] in codes
    ]


def every_commune(rows: list[list[str]]) -> frozenset[str]:
    i = rows[0].index("codeCommuneEtablissement")
    return frozenset(r[i] for r in rows[1:]) - {""}


def test_the_filter_keeps_what_building_everything_then_filtering_keeps() -> None:
    rows = sample_rows()
    communes = every_commune(rows)
    only = RowFilter(communes=communes, naf_codes=naf_codes_in(load_naf()))
    stats = ReadStats()
    kept = list(read_stock_etablissement(io.StringIO(to_csv(rows)), only=only, stats=stats))

    everything = list(read_stock_etablissement(io.StringIO(to_csv(rows))))
    codes = naf_codes_in(load_naf())
    expected = [
        e
        for e in everything
        if isinstance(e, SireneEstablishment)
        and e.commune_insee in communes
        and e.naf_nomenclature == "NAFRev2"
        and e.naf_code in codes
    ]
    assert kept == expected  # same objects, lines included; closed ones too
    assert len(kept) == len(in_scope(rows, communes)) > 0
    assert any(not e.is_active for e in expected if isinstance(e, SireneEstablishment))
    assert stats.rows_read == 299


def test_lines_stay_exact_when_skipped_rows_span_several_lines() -> None:
    rows = sample_rows()
    col = {name: i for i, name in enumerate(rows[0])}
    communes = every_commune(rows)
    keep = in_scope(rows, communes)
    skipped = [k for k in range(1, len(rows)) if k not in keep]
    # Three rows the filter drops span several lines, one of them with \r\n.
    for k, value in zip(skipped[:3], ("A\nB", "C\r\nD", "E\nF\nG"), strict=True):
        rows[k][col["complementAdresseEtablissement"]] = value
    # ...and a kept row takes three.
    rows[keep[-1]][col["complementAdresseEtablissement"]] = "BAT 1\r\nZI\nNORD"
    text = to_csv(rows)
    only = RowFilter(communes=communes, naf_codes=naf_codes_in(load_naf()))
    filtered = list(read_stock_etablissement(io.StringIO(text, newline=""), only=only))
    unfiltered = {
        i.siret: i.line
        for i in read_stock_etablissement(io.StringIO(text, newline=""))
        if isinstance(i, SireneEstablishment)
    }
    assert [i.line for i in filtered] == [unfiltered[i.siret] for i in filtered]
    assert filtered[-1].line == unfiltered[rows[keep[-1]][col["siret"]]]


def test_a_malformed_row_is_reported_in_scope_and_dropped_outside_it() -> None:
    rows = sample_rows()
    col = {name: i for i, name in enumerate(rows[0])}
    communes = every_commune(rows)
    keep = in_scope(rows, communes)
    outside = next(k for k in range(1, len(rows)) if k not in keep)
    for k in (keep[0], outside):
        rows[k][col["dateCreationEtablissement"]] = "2020-02-30"
    rows[outside + 1] = rows[outside + 1][:-1]  # the wrong width: reported wherever it is
    only = RowFilter(communes=communes, naf_codes=naf_codes_in(load_naf()))
    stats = ReadStats()
    items = list(read_stock_etablissement(io.StringIO(to_csv(rows)), only=only, stats=stats))
    errors = [i for i in items if isinstance(i, SireneRowError)]
    assert sorted((e.line, e.reason) for e in errors) == sorted(
        [
            (keep[0] + 1, "dateCreationEtablissement: unparsable value '2020-02-30'"),
            (outside + 2, "expected 53 fields, got 52"),
        ]
    )
    assert stats.rows_read == 299


def test_progress_reports_the_rows_read_every_so_often_and_at_the_end() -> None:
    rows = sample_rows()
    body = rows[1:]
    # Enough rows for two checkpoints; the copies keep the header's width.
    many = [rows[0], *itertools.islice(itertools.cycle(body), 2 * PROGRESS_EVERY + 7)]
    seen: list[int] = []
    only = RowFilter(communes=frozenset({"00000"}), naf_codes=naf_codes_in(load_naf()))
    assert (
        list(read_stock_etablissement(io.StringIO(to_csv(many)), only=only, on_rows=seen.append))
        == []
    )
    assert seen == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, 2 * PROGRESS_EVERY + 7]


def write_formats(tmp_path: Path) -> list[Path]:
    raw = data_file(SAMPLE).read_bytes()
    plain = tmp_path / "StockEtablissement_utf8.csv"
    plain.write_bytes(raw)
    gz = tmp_path / "stock.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    archive = tmp_path / "StockEtablissement_utf8.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("StockEtablissement_utf8.csv", raw)
    return [plain, gz, archive]


def test_bytes_read_add_up_to_the_size_a_progress_bar_is_given(tmp_path: Path) -> None:
    raw_size = data_file(SAMPLE).stat().st_size
    for path in write_formats(tmp_path):
        counted: list[int] = []
        with open_sirene(path, on_bytes=counted.append) as fh:
            assert len(list(read_stock_etablissement(fh))) == 299
        assert sum(counted) == sirene_size(path), path
        # The zip's member and the plain file count the CSV; the .gz its compressed size.
        assert (sirene_size(path) == raw_size) is (path.suffix != ".gz"), path


def test_the_child_process_scan_yields_what_the_reader_yields(tmp_path: Path) -> None:
    rows = sample_rows()
    only = RowFilter(communes=every_commune(rows), naf_codes=naf_codes_in(load_naf()))
    with open_sirene(write_formats(tmp_path)[0]) as fh:
        expected = list(read_stock_etablissement(fh, only=only))
    assert expected
    for path in write_formats(tmp_path):
        stats = ReadStats()
        counted: list[int] = []
        got = list(scan_in_subprocess(path, only=only, stats=stats, on_bytes=counted.append))
        assert got == expected, path
        assert stats.rows_read == 299
        assert sum(counted) == sirene_size(path)
        assert stats.scanner_peak_rss_kib and stats.scanner_peak_rss_kib > 1024


def test_the_child_process_scan_raises_what_the_child_raised(tmp_path: Path) -> None:
    bad = tmp_path / "not-sirene.csv"
    bad.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(SireneFormatError, match="missing column"):
        list(scan_in_subprocess(bad))
