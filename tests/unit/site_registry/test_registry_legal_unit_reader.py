"""The StockUniteLegale reader, on the real sample that goes with the 299-row
establishment sample (the legal units of its 262 SIRENs).

The sample is all `statutDiffusionUniteLegale = O`: the partially and non-diffusible
cases are the sample's own rows with that one field changed (and the person's fields
masked `[ND]`, as INSEE publishes a "P" record)."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from services.site_registry.adapters.reference_data import data_file
from services.site_registry.adapters.sirene import SireneFormatError, SireneRowError
from services.site_registry.adapters.sirene_legal_units import (
    STOCK_UNITE_LEGALE_COLUMNS,
    SireneLegalUnit,
    open_sirene,
    read_stock_unite_legale,
)

pytestmark = pytest.mark.unit

LEGAL_UNITS = "sirene_stock_unite_legale_sample_for_etab_sample.csv"
ESTABLISHMENTS = "sirene_stock_etablissement_sample_299.csv"
SOLE_TRADER = "000325175"  # an active entrepreneur individuel, PME, with a public record
FIRM = "005420021"  # ETABLISSEMENTS LUCIEN BIQUEZ, SAS (5710), PME
PERSON_FIELDS = ("nomUniteLegale", "nomUsageUniteLegale", "prenomUsuelUniteLegale")


def text() -> str:
    return data_file(LEGAL_UNITS).read_text(encoding="utf-8")


def dict_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text(), newline="")))


def establishment_sirens() -> set[str]:
    with data_file(ESTABLISHMENTS).open(encoding="utf-8", newline="") as fh:
        return {row["siren"] for row in csv.DictReader(fh)}


def read(source: str, wanted: set[str] | None = None) -> list[SireneLegalUnit | SireneRowError]:
    sirens = establishment_sirens() if wanted is None else wanted
    return list(read_stock_unite_legale(io.StringIO(source, newline=""), sirens))


def units(source: str, wanted: set[str] | None = None) -> dict[str, SireneLegalUnit]:
    items = read(source, wanted)
    errors = [i for i in items if isinstance(i, SireneRowError)]
    assert errors == []
    return {i.siren: i for i in items if isinstance(i, SireneLegalUnit)}


def edited(siren: str, **values: str) -> str:
    rows = list(csv.reader(io.StringIO(text(), newline="")))
    header = rows[0]
    for row in rows[1:]:
        if row[0] == siren:
            for column, value in values.items():
                row[header.index(column)] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_sample_header_is_the_33_column_layout() -> None:
    header = next(csv.reader(io.StringIO(text())))
    assert tuple(header) == STOCK_UNITE_LEGALE_COLUMNS
    assert len(STOCK_UNITE_LEGALE_COLUMNS) == 33


def test_every_siren_of_the_establishment_sample_gets_a_name() -> None:
    wanted = establishment_sirens()
    read_back = units(text())
    in_both = wanted & {r["siren"] for r in dict_rows()}
    assert len(in_both) == len(wanted) == 262  # the sample has every one of them
    assert set(read_back) == in_both
    # Every record of the sample is wholly diffusible, so each has a name: its
    # denomination (or usual denomination, or acronym) for a legal person, the person's
    # usual first name and name for a sole trader without one.
    assert {r["statutDiffusionUniteLegale"] for r in dict_rows()} == {"O"}
    unnamed = [u.siren for u in read_back.values() if u.name is None]
    assert unnamed == []
    expected_person = {
        r["siren"]
        for r in dict_rows()
        if r["categorieJuridiqueUniteLegale"] == "1000"
        and not (r["denominationUniteLegale"] or r["denominationUsuelle1UniteLegale"])
        and not r["sigleUniteLegale"]
    }
    assert {u.siren for u in read_back.values() if u.name_is_person} == expected_person
    assert len(expected_person) == 209


def test_company_categories_are_counted_as_the_file_states_them() -> None:
    independent = Counter(r["categorieEntreprise"] for r in dict_rows())
    read_back = Counter(u.company_category for u in units(text()).values())
    for category in ("PME", "ETI", "GE"):
        assert read_back[category] == independent[category]
    assert read_back[None] == independent[""]
    assert (read_back["PME"], read_back["ETI"], read_back["GE"]) == (18, 0, 0)
    years = {u.company_category_year for u in units(text()).values() if u.company_category}
    assert years == {2019}


def test_legal_categories_and_states() -> None:
    read_back = units(text()).values()
    independent = Counter(r["categorieJuridiqueUniteLegale"] for r in dict_rows())
    assert Counter(u.legal_category for u in read_back) == independent
    assert sum(u.is_active for u in read_back) == 28


def test_a_firm_is_named_by_its_denomination() -> None:
    firm = units(text())[FIRM]
    assert firm == SireneLegalUnit(
        line=firm.line,
        siren=FIRM,
        name="ETABLISSEMENTS LUCIEN BIQUEZ",
        name_is_person=False,
        legal_category="5710",
        company_category="PME",
        company_category_year=2019,
        is_active=True,
    )


def test_a_sole_trader_with_a_public_record_is_named_and_flagged_as_a_person() -> None:
    trader = units(text())[SOLE_TRADER]
    assert (trader.name, trader.name_is_person) == ("THIERRY JANOYER", True)
    assert trader.legal_category == "1000" and trader.company_category == "PME"


def test_the_used_name_wins_over_the_birth_name() -> None:
    trader = units(edited(SOLE_TRADER, nomUsageUniteLegale="MARTIN"))[SOLE_TRADER]
    assert trader.name == "THIERRY MARTIN"


def test_a_partially_diffusible_sole_trader_has_no_name() -> None:
    masked = {c: "[ND]" for c in PERSON_FIELDS}
    for source in (
        edited(SOLE_TRADER, statutDiffusionUniteLegale="P", **masked),
        # Even if the person's fields were published, "P" is a person who objected.
        edited(SOLE_TRADER, statutDiffusionUniteLegale="P"),
    ):
        trader = units(source)[SOLE_TRADER]
        assert (trader.name, trader.name_is_person) == (None, False)
        assert trader.company_category == "PME"  # the rest of the record stays


def test_a_non_diffusible_record_keeps_no_name_at_all() -> None:
    for siren in (SOLE_TRADER, FIRM):
        unit = units(edited(siren, statutDiffusionUniteLegale="N"))[siren]
        assert (unit.name, unit.name_is_person) == (None, False)


def test_a_partially_diffusible_record_keeps_a_published_business_name_only() -> None:
    kept = units(edited(FIRM, statutDiffusionUniteLegale="P"))[FIRM]
    assert kept.name == "ETABLISSEMENTS LUCIEN BIQUEZ"
    withheld = units(edited(FIRM, statutDiffusionUniteLegale="P", denominationUniteLegale="[ND]"))
    assert withheld[FIRM].name is None


def test_usual_denomination_then_acronym_stand_in_for_the_denomination() -> None:
    usual = edited(FIRM, denominationUniteLegale="", denominationUsuelle1UniteLegale="BIQUEZ")
    assert units(usual)[FIRM].name == "BIQUEZ"
    sigle = edited(FIRM, denominationUniteLegale="[ND]", sigleUniteLegale="ELB")
    assert units(sigle)[FIRM].name == "ELB"
    assert units(edited(FIRM, denominationUniteLegale=""))[FIRM].name is None  # no person


def test_rows_of_other_sirens_are_dropped_unread() -> None:
    assert units(text(), {FIRM, "999999999"}).keys() == {FIRM}
    # A row the reader would refuse is not even parsed when its SIREN is not wanted.
    broken = edited(SOLE_TRADER, categorieJuridiqueUniteLegale="10", categorieEntreprise="XL")
    assert units(broken, {FIRM}).keys() == {FIRM}


def test_bad_rows_are_reported_with_their_line_and_the_stream_goes_on() -> None:
    lines = edited(SOLE_TRADER, categorieEntreprise="TPE").splitlines(keepends=True)
    lines[39] = ",".join(lines[39].split(",")[:5]) + "\n"  # line 40, FIRM, loses columns
    items = read("".join(lines))
    errors = [i for i in items if isinstance(i, SireneRowError)]
    assert [(e.line, e.siret) for e in errors] == [(2, SOLE_TRADER), (40, FIRM)]
    assert "categorieEntreprise" in errors[0].reason and "fields" in errors[1].reason
    assert len(items) == 262


def test_an_unparsable_legal_category_or_year_is_a_row_error() -> None:
    for column, value in (
        ("categorieJuridiqueUniteLegale", "57A0"),
        ("anneeCategorieEntreprise", "19x"),
    ):
        [error] = [
            i for i in read(edited(FIRM, **{column: value})) if isinstance(i, SireneRowError)
        ]
        assert error.siret == FIRM and column in error.reason


def test_missing_required_column_or_empty_file_raises() -> None:
    header, _, rest = text().partition("\n")
    without = header.replace("categorieEntreprise,", "") + "\n" + rest
    with pytest.raises(SireneFormatError, match="categorieEntreprise"):
        read(without)
    with pytest.raises(SireneFormatError, match="empty"):
        read("")


def test_open_sirene_reads_the_legal_units_as_csv_gz_and_zip(tmp_path: Path) -> None:
    raw = data_file(LEGAL_UNITS).read_bytes()
    gz = tmp_path / "StockUniteLegale_utf8.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    archive = tmp_path / "StockUniteLegale_utf8.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("StockUniteLegale_utf8.csv", raw)
    for path in (data_file(LEGAL_UNITS), gz, archive):
        with open_sirene(Path(str(path))) as source:
            got = list(read_stock_unite_legale(source, establishment_sirens()))
        assert len(got) == 262 and all(isinstance(u, SireneLegalUnit) for u in got)
