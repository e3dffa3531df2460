"""The StockEtablissement reader, on the real 299-row INSEE sample."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import zipfile
from collections import Counter
from datetime import date
from pathlib import Path
from typing import TextIO, cast

import pytest

from services.site_registry.adapters.reference_data import data_file, load_naf
from services.site_registry.adapters.sirene import (
    STOCK_ETABLISSEMENT_COLUMNS,
    SireneEstablishment,
    SireneFormatError,
    SireneRowError,
    build_filter,
    open_sirene,
    read_stock_etablissement,
)

SAMPLE = "sirene_stock_etablissement_sample_299.csv"


def sample_text() -> str:
    return data_file(SAMPLE).read_text(encoding="utf-8")


def sample_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(sample_text(), newline="")))


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def read(text: str) -> list[SireneEstablishment | SireneRowError]:
    return list(read_stock_etablissement(io.StringIO(text, newline="")))


def establishments(text: str) -> list[SireneEstablishment]:
    items = read(text)
    assert all(isinstance(i, SireneEstablishment) for i in items), [
        i for i in items if isinstance(i, SireneRowError)
    ]
    return [i for i in items if isinstance(i, SireneEstablishment)]


def test_sample_header_is_the_53_column_layout() -> None:
    assert tuple(sample_rows()[0]) == STOCK_ETABLISSEMENT_COLUMNS
    assert len(STOCK_ETABLISSEMENT_COLUMNS) == 53


def test_sample_counts() -> None:
    rows = establishments(sample_text())
    assert len(rows) == 299
    assert [r.line for r in rows] == list(range(2, 301))
    assert sum(r.is_active for r in rows) == 15
    naf = load_naf()
    rev2 = [r for r in rows if r.naf_nomenclature == "NAFRev2"]
    assert len(rev2) == 48
    section_c = Counter(
        r.naf_code for r in rev2 if r.naf_code and naf.section_of(r.naf_code) == "C"
    )
    assert section_c == {
        "32.12Z": 5,
        "20.30Z": 4,
        "17.21A": 2,
        "10.81Z": 1,
        "17.12Z": 1,
        "17.21B": 1,
        "25.72Z": 1,
    }
    assert sum(r.is_head_office for r in rows) == 262
    assert sum(1 for r in rows if (r.commune_insee or "").startswith("62")) == 3


def test_sample_field_mapping() -> None:
    rows = establishments(sample_text())
    first = rows[0]
    assert first.siret == "00032517500016"
    assert (first.siren, first.nic) == ("000325175", "00016")
    assert first.name is None
    assert (first.naf_code, first.naf_nomenclature) == ("32.12Z", "NAFRev2")
    assert first.created_on == date(2000, 9, 26)
    assert (first.commune_insee, first.postal_code) == ("98727", "98770")
    assert first.address == "MANIHI COTE MONTAGNE TUAMOTU"
    assert not first.is_active and not first.is_head_office
    assert first.lambert_x is None and first.lambert_y is None
    # Name falls back to enseigne1 when there is no denominationUsuelle.
    avignon = rows[2]
    assert avignon.name == "TAHITI PERLES CREATIONS"
    assert avignon.address == "6 AV FRANCOIS MAURIAC"
    with_band = [r for r in rows if r.headcount_band]
    assert len(with_band) == 6
    assert all(r.headcount_year == 2021 for r in with_band)


def test_filter_keeps_active_manufacturing_in_chosen_communes() -> None:
    rows = establishments(sample_text())
    # Somme, Marseille and Marne communes holding active and closed section C
    # rows, plus Rang-du-Fliers (62), active but in transport (52.10B).
    keep = build_filter({"80308", "80190", "80488", "13204", "51380", "62688"}, load_naf())
    assert sorted(r.siret for r in rows if keep(r)) == [
        "00032517500065",  # Marseille 4, 32.12Z, active
        "00552007700016",  # Feuquières-en-Vimeu, 25.72Z
        "00552017600016",  # Feuquières-en-Vimeu, 17.21A
        "00552017600032",  # Chepy, 17.21A
        "00552024200081",  # Longpré-les-Corps-Saints, 20.30Z (its closed twin is out)
    ]


def test_filter_ignores_legacy_nomenclatures() -> None:
    rows = sample_rows()
    header = rows[0]
    i_siret = header.index("siret")
    i_nomen = header.index("nomenclatureActivitePrincipaleEtablissement")
    for row in rows[1:]:
        if row[i_siret] == "00552007700016":
            row[i_nomen] = "NAFRev1"  # same-looking code, other nomenclature
    keep = build_filter({"80308"}, load_naf())
    kept = [r.siret for r in establishments(to_csv(rows)) if keep(r)]
    assert kept == ["00552017600016"]


def test_filter_other_section() -> None:
    keep = build_filter({"80001"}, load_naf(), section="G")
    assert [r.siret for r in establishments(sample_text()) if keep(r)] == ["00542002100056"]


def test_malformed_rows_are_reported_with_their_line_and_the_stream_goes_on() -> None:
    rows = sample_rows()
    header = rows[0]
    col = {name: i for i, name in enumerate(header)}
    # Data row k starts on line k + 2 until a field spans two lines.
    rows[1 + 4][col["complementAdresseEtablissement"]] = "BATIMENT A\nZI NORD"  # lines 6-7
    rows[1 + 9] = rows[1 + 9][:-1]  # line 12
    siret = rows[1 + 19][col["siret"]]
    rows[1 + 19][col["siret"]] = siret[:-1] + str((int(siret[-1]) + 1) % 10)  # line 22
    rows[1 + 29][col["dateCreationEtablissement"]] = "2020-02-30"  # line 32
    rows[1 + 39][col["coordonneeLambertAbscisseEtablissement"]] = "abc"  # line 42
    rows[1 + 49][col["nic"]] = "99999"  # line 52: siren + nic != siret

    items = read(to_csv(rows))
    errors = [i for i in items if isinstance(i, SireneRowError)]
    good = [i for i in items if isinstance(i, SireneEstablishment)]
    assert [(e.line, e.siret) for e in errors] == [
        (12, rows[1 + 9][col["siret"]]),
        (22, rows[1 + 19][col["siret"]]),
        (32, rows[1 + 29][col["siret"]]),
        (42, rows[1 + 39][col["siret"]]),
        (52, rows[1 + 49][col["siret"]]),
    ]
    assert errors[0].reason == "expected 53 fields, got 52"
    assert "fails the Luhn check" in errors[1].reason
    assert errors[2].reason == "dateCreationEtablissement: unparsable value '2020-02-30'"
    assert errors[3].reason == "coordonneeLambertAbscisseEtablissement: unparsable value 'abc'"
    assert "does not make siret" in errors[4].reason
    assert len(good) == 299 - 5
    by_line = {g.line: g for g in good}
    assert by_line[6].siret == rows[1 + 4][col["siret"]]
    assert 7 not in by_line
    assert by_line[8].siret == rows[1 + 5][col["siret"]]
    assert good[-1].line == 301


def test_unreadable_csv_row_is_reported_and_reading_resumes() -> None:
    rows = sample_rows()
    text = to_csv(rows[:4])
    # A field beyond csv.field_size_limit() (what a runaway quote produces in
    # a real file) makes the csv module raise csv.Error for this line.
    rows[4][rows[0].index("libelleVoieEtablissement")] = "M" * (csv.field_size_limit() + 1)
    text += to_csv(rows[4:8])
    items = read(text)
    assert [type(i).__name__ for i in items] == [
        "SireneEstablishment",
        "SireneEstablishment",
        "SireneEstablishment",
        "SireneRowError",
        "SireneEstablishment",
        "SireneEstablishment",
        "SireneEstablishment",
    ]
    error = items[3]
    assert isinstance(error, SireneRowError)
    assert error.line == 5
    assert "unreadable CSV row" in error.reason
    assert [i.line for i in items] == [2, 3, 4, 5, 6, 7, 8]


def test_not_diffused_fields_become_none() -> None:
    rows = sample_rows()
    col = {name: i for i, name in enumerate(rows[0])}
    for name in (
        "numeroVoieEtablissement",
        "typeVoieEtablissement",
        "libelleVoieEtablissement",
        "coordonneeLambertAbscisseEtablissement",
        "coordonneeLambertOrdonneeEtablissement",
    ):
        rows[3][col[name]] = "[ND]"
    third = establishments(to_csv(rows[:4]))[2]
    assert third.address is None
    assert third.lambert_x is None and third.lambert_y is None


def test_coordinates_are_parsed() -> None:
    rows = sample_rows()
    col = {name: i for i, name in enumerate(rows[0])}
    rows[1][col["coordonneeLambertAbscisseEtablissement"]] = "652469.3"
    rows[1][col["coordonneeLambertOrdonneeEtablissement"]] = "6861717"
    first = establishments(to_csv(rows[:2]))[0]
    assert (first.lambert_x, first.lambert_y) == (652469.3, 6861717.0)


def test_missing_required_column_raises() -> None:
    rows = sample_rows()
    i = rows[0].index("etatAdministratifEtablissement")
    text = to_csv([r[:i] + r[i + 1 :] for r in rows])
    with pytest.raises(SireneFormatError, match=r"missing column.*etatAdministratifEtablissement"):
        read(text)


def test_files_without_coordinate_columns_are_accepted() -> None:
    rows = sample_rows()
    drop = {
        rows[0].index("coordonneeLambertAbscisseEtablissement"),
        rows[0].index("coordonneeLambertOrdonneeEtablissement"),
    }
    trimmed = [[v for i, v in enumerate(r) if i not in drop] for r in rows]
    got = establishments(to_csv(trimmed))
    assert len(got) == 299
    assert all(r.lambert_x is None for r in got)


def test_empty_file_raises() -> None:
    with pytest.raises(SireneFormatError, match="empty"):
        read("")


class CountingLines:
    """An iterator of lines that counts how many the reader pulled."""

    def __init__(self, text: str) -> None:
        self._lines = iter(text.splitlines(keepends=True))
        self.lines_read = 0

    def __iter__(self) -> CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.lines_read += 1
        return line


def test_reader_is_lazy() -> None:
    source = CountingLines(sample_text())
    # csv.reader only needs an iterator of lines; TextIO is the usual case.
    first = list(itertools.islice(read_stock_etablissement(cast(TextIO, source)), 3))
    assert len(first) == 3
    assert source.lines_read == 4  # header + 3 rows, not the 300 lines of the file


def test_open_sirene_reads_csv_gz_and_zip(tmp_path: Path) -> None:
    raw = sample_text().encode("utf-8")
    plain = tmp_path / "StockEtablissement_utf8.csv"
    plain.write_bytes(raw)
    gz = tmp_path / "stock.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    archive = tmp_path / "StockEtablissement_utf8.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("StockEtablissement_utf8.csv", raw)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + raw)
    for path in (plain, gz, archive, bom):
        with open_sirene(path) as fh:
            items = list(read_stock_etablissement(fh))
        assert len(items) == 299, path
        assert all(isinstance(i, SireneEstablishment) for i in items), path


def test_open_sirene_refuses_a_zip_without_exactly_one_csv(tmp_path: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", "x")
        zf.writestr("b.csv", "y")
    with pytest.raises(SireneFormatError, match="expected one CSV"):
        open_sirene(archive)
