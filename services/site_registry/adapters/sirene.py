"""Streaming reader for the INSEE Sirene ``StockEtablissement`` file (format v3).

The national file has tens of millions of rows (several GB), so the reader is
a generator over ``csv.reader``: one row in memory at a time, header names
mapped to indexes once, no per-row dict. A bad row never aborts the stream; it
comes out as a ``SireneRowError`` carrying the physical line number where the
row starts (line 1 is the header), so an import can report it and go on.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, TextIO

from services.site_registry.domain.nomenclature import NafNomenclature
from services.site_registry.domain.siret import InvalidIdentifier, validate_siret

# The 53 columns of StockEtablissement as published by INSEE (format of 2024,
# with identifiantAdresse and the Lambert coordinates), in file order.
STOCK_ETABLISSEMENT_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
)

# Columns the reader needs. The Lambert columns are not listed: files from
# before 2023 lack them, and an establishment without coordinates is still an
# establishment.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "etablissementSiege",
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "codeCommuneEtablissement",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
)
LAMBERT_X = "coordonneeLambertAbscisseEtablissement"
LAMBERT_Y = "coordonneeLambertOrdonneeEtablissement"

# Partially diffusible establishments (statutDiffusion "P") have protected
# fields replaced by this marker; it means "not published", not "malformed".
NOT_DIFFUSED = "[ND]"

NAF_REV2 = "NAFRev2"


class SireneFormatError(ValueError):
    """The file is not a StockEtablissement CSV (missing or unreadable header)."""


@dataclass(frozen=True, slots=True)
class SireneEstablishment:
    line: int
    siret: str
    siren: str
    nic: str
    name: str | None
    naf_code: str | None
    naf_nomenclature: str | None
    headcount_band: str | None
    headcount_year: int | None
    commune_insee: str | None
    postal_code: str | None
    address: str | None
    is_active: bool
    is_head_office: bool
    created_on: date | None
    lambert_x: float | None
    lambert_y: float | None


@dataclass(frozen=True, slots=True)
class SireneRowError:
    line: int
    reason: str
    siret: str | None


def _opt(value: str) -> str | None:
    if not value or value == NOT_DIFFUSED:
        return None
    return value


@dataclass(frozen=True, slots=True)
class RowFilter:
    """Which rows are worth building, tested on the raw fields before anything else: a
    national file is 99 % rows of other territories, and building then dropping them
    was where an import's time went. Only NAF rév. 2 codes count: legacy codes (NAP,
    NAF1993, NAFRev1) can look like rév. 2 codes ("22.1A") without meaning the same
    activity. Closed establishments pass: an import closes the sites it knows."""

    communes: frozenset[str]
    naf_codes: frozenset[str]


@dataclass(slots=True)
class ReadStats:
    """What a read has gone through so far: updated at each row yielded, every
    ``PROGRESS_EVERY`` rows, and at the end."""

    rows_read: int = 0
    # A read in a child process (`scan_in_subprocess`): that process's peak memory.
    scanner_peak_rss_kib: int | None = None


PROGRESS_EVERY = 10_000  # rows between two progress callbacks


def read_header(reader: Any, required: tuple[str, ...], kind: str) -> list[str]:
    """A Sirene stock file's header, its names stripped; ``SireneFormatError`` naming
    ``kind`` when it is missing, unreadable or lacks a required column."""
    try:
        header = next(reader)
    except StopIteration:
        raise SireneFormatError(f"empty file: no {kind} header") from None
    except csv.Error as exc:
        raise SireneFormatError(f"unreadable header: {exc}") from None
    header = [name.strip() for name in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise SireneFormatError(f"not a {kind} header: missing column(s) " + ", ".join(missing))
    return header


def read_stock_etablissement(
    source: TextIO,
    *,
    only: RowFilter | None = None,
    stats: ReadStats | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[SireneEstablishment | SireneRowError]:
    """Yield one establishment or one row error per data row of ``source``.

    ``source`` should be opened with ``newline=""`` (``open_sirene`` does) so
    that quoted fields containing line breaks survive. Raises
    ``SireneFormatError`` before yielding anything if the header lacks a
    required column. Blank lines carry no record and are skipped.

    With ``only``, a row of the right width that the filter refuses is passed
    over silently: it is not validated, so a malformed row outside the scope
    is not reported (a row of the wrong width always is). ``stats.rows_read``
    counts every data row read; ``on_rows`` receives that count every
    ``PROGRESS_EVERY`` rows and at the end.
    """
    reader = csv.reader(source)
    header = read_header(reader, REQUIRED_COLUMNS, "StockEtablissement")
    width = len(header)
    layout = _Layout.of(header)
    i_siret = layout.siret
    i_commune = layout.commune
    i_naf = layout.naf
    i_nomen = layout.nomenclature
    communes = only.communes if only is not None else None
    codes = only.naf_codes if only is not None else frozenset()
    counts = stats if stats is not None else ReadStats()

    # The hot loop: a row out of scope costs the csv parse, a width check and
    # at most three lookups, nothing else (no line bookkeeping, no object).
    rows = counts.rows_read
    checkpoint = rows + PROGRESS_EVERY
    last_line = reader.line_num  # where the last row reported or built ended
    while True:
        # csv.Error (e.g. a runaway quote hitting the field size limit) ends a
        # for loop, so the loop is re-entered after reporting it: the reader
        # itself resumes on the next line.
        try:
            for row in reader:
                if len(row) == width:
                    rows += 1
                    if rows == checkpoint:
                        checkpoint += PROGRESS_EVERY
                        counts.rows_read = rows
                        if on_rows is not None:
                            on_rows(rows)
                    if communes is not None and (
                        row[i_commune] not in communes
                        or row[i_naf] not in codes
                        or row[i_nomen] != NAF_REV2
                    ):
                        continue
                elif not row:
                    continue
                else:
                    rows += 1
                    counts.rows_read = rows
                    last_line = reader.line_num
                    siret_guess = row[i_siret] if len(row) > i_siret else None
                    yield SireneRowError(
                        last_line - _line_breaks(row),
                        f"expected {width} fields, got {len(row)}",
                        siret_guess,
                    )
                    continue
                counts.rows_read = rows
                last_line = reader.line_num
                start = last_line - _line_breaks(row)
                item = layout.build(row, start)
                yield item
            counts.rows_read = rows
            if on_rows is not None:
                on_rows(rows)
            return
        except csv.Error as exc:
            rows += 1
            counts.rows_read = rows
            # Only rows built or reported mark their end, so a record that
            # cannot be parsed is placed after the last of those: exact when
            # no filter skips rows, the closest known line otherwise.
            start = last_line + 1 if communes is None else reader.line_num
            last_line = reader.line_num
            yield SireneRowError(start, f"unreadable CSV row: {exc}", None)


def _line_breaks(row: list[str]) -> int:
    """Line breaks inside a row's quoted fields: how many physical lines it spans, less
    one. Counted only for rows kept or reported, never in the hot loop."""
    breaks = 0
    for value in row:
        if "\n" in value or "\r" in value:
            # newline="" splits lines on \n, \r and \r\n alike.
            breaks += value.count("\n") + value.count("\r") - value.count("\r\n")
    return breaks


@dataclass(frozen=True, slots=True)
class _Layout:
    """The header's column positions, looked up once per file."""

    header: tuple[str, ...]
    siren: int
    nic: int
    siret: int
    created: int
    band: int
    year: int
    head_office: int
    number: int
    street_type: int
    street: int
    postal: int
    commune: int
    state: int
    sign: int
    denomination: int
    naf: int
    nomenclature: int
    x: int | None
    y: int | None

    @classmethod
    def of(cls, header: list[str]) -> _Layout:
        pos = {name: i for i, name in enumerate(header)}
        return cls(
            header=tuple(header),
            siren=pos["siren"],
            nic=pos["nic"],
            siret=pos["siret"],
            created=pos["dateCreationEtablissement"],
            band=pos["trancheEffectifsEtablissement"],
            year=pos["anneeEffectifsEtablissement"],
            head_office=pos["etablissementSiege"],
            number=pos["numeroVoieEtablissement"],
            street_type=pos["typeVoieEtablissement"],
            street=pos["libelleVoieEtablissement"],
            postal=pos["codePostalEtablissement"],
            commune=pos["codeCommuneEtablissement"],
            state=pos["etatAdministratifEtablissement"],
            sign=pos["enseigne1Etablissement"],
            denomination=pos["denominationUsuelleEtablissement"],
            naf=pos["activitePrincipaleEtablissement"],
            nomenclature=pos["nomenclatureActivitePrincipaleEtablissement"],
            x=pos.get(LAMBERT_X),
            y=pos.get(LAMBERT_Y),
        )

    def build(self, row: list[str], start: int) -> SireneEstablishment | SireneRowError:
        """The row as an establishment, or why it is not one."""
        raw_siret = row[self.siret]
        try:
            siret = validate_siret(raw_siret)
        except InvalidIdentifier as exc:
            return SireneRowError(start, str(exc), raw_siret or None)
        siren = row[self.siren]
        nic = row[self.nic]
        if siren + nic != siret:
            return SireneRowError(
                start, f"siren {siren!r} + nic {nic!r} does not make siret {siret}", siret
            )
        # `column` tracks the field being parsed so the error can name it.
        try:
            column = self.created
            value = row[column]
            created_on = date.fromisoformat(value) if value else None
            column = self.year
            value = row[column]
            year = int(value) if value else None
            x = y = None
            if self.x is not None and self.y is not None:
                column = self.x
                value = row[column]
                x = None if not value or value == NOT_DIFFUSED else float(value)
                column = self.y
                value = row[column]
                y = None if not value or value == NOT_DIFFUSED else float(value)
        except ValueError:
            return SireneRowError(
                start, f"{self.header[column]}: unparsable value {value!r}", siret
            )
        number = _opt(row[self.number])
        street_type = _opt(row[self.street_type])
        street = _opt(row[self.street])
        address = (
            " ".join(p for p in (number, street_type, street) if p) if number or street else None
        )
        return SireneEstablishment(
            line=start,
            siret=siret,
            siren=siren,
            nic=nic,
            name=_opt(row[self.denomination]) or _opt(row[self.sign]),
            naf_code=row[self.naf] or None,
            naf_nomenclature=row[self.nomenclature] or None,
            headcount_band=row[self.band] or None,
            headcount_year=year,
            commune_insee=_opt(row[self.commune]),
            postal_code=_opt(row[self.postal]),
            address=address,
            is_active=row[self.state] == "A",
            is_head_office=row[self.head_office] == "true",
            created_on=created_on,
            lambert_x=x,
            lambert_y=y,
        )


class _CountingReader(io.RawIOBase):
    """A binary stream that reports how many bytes went through it: the progress of a
    read through gzip, zip or a plain file, at the cost of one call per buffer."""

    def __init__(self, inner: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        super().__init__()
        self._inner = inner
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._on_bytes(n)
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


_READ_BUFFER = 1 << 20  # bytes; large reads keep the per-buffer cost negligible


def _counted(binary: IO[bytes], on_bytes: Callable[[int], None] | None) -> IO[bytes]:
    if on_bytes is None:
        return binary
    return io.BufferedReader(_CountingReader(binary, on_bytes), buffer_size=_READ_BUFFER)


def _zip_member(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    members = [
        m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".csv")
    ]
    if len(members) != 1:
        names = ", ".join(m.filename for m in members) or "none"
        raise SireneFormatError(f"{path}: expected one CSV in the zip, found {names}")
    return members[0]


def sirene_size(path: Path) -> int:
    """The bytes ``open_sirene(path, on_bytes=...)`` reports in all: the CSV's size
    inside a zip, the compressed size of a ``.gz`` (gzip does not record the size of
    large files), the file's size otherwise. A progress bar's total."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            return _zip_member(archive, path).file_size
    return path.stat().st_size


def open_sirene(path: Path, on_bytes: Callable[[int], None] | None = None) -> TextIO:
    """Open a Sirene stock file (StockEtablissement, StockUniteLegale) as UTF-8 text,
    whether ``.csv``, ``.gz`` or ``.zip``.

    INSEE distributes ``StockEtablissement_utf8.zip`` (``StockUniteLegale_utf8.zip``)
    holding one CSV; it is
    read straight from the archive (no extraction to disk). ``utf-8-sig``
    accepts plain UTF-8 and drops a byte-order mark if a tool added one, which
    would otherwise hide the first column name. ``on_bytes`` receives the bytes
    read as they are read (see ``sirene_size`` for their total).
    """
    suffix = path.suffix.lower()
    if suffix == ".gz":
        compressed = _counted(path.open("rb"), on_bytes)
        binary = gzip.GzipFile(fileobj=compressed, mode="rb")
        # GzipFile leaves a file object it was given open: closing the text layer
        # must close the file too.
        return _TextWithCleanup(binary, compressed)
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        try:
            member = archive.open(_zip_member(archive, path))
        finally:
            # The open member keeps the underlying file alive (ZipFile counts
            # references), so closing the archive here leaves a single object
            # for the caller to close.
            archive.close()
        return io.TextIOWrapper(_counted(member, on_bytes), encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(
        _counted(path.open("rb", buffering=_READ_BUFFER), on_bytes),
        encoding="utf-8-sig",
        newline="",
    )


class _TextWithCleanup(io.TextIOWrapper):
    """A text stream that also closes the file under its binary layer."""

    def __init__(self, binary: gzip.GzipFile, underlying: IO[bytes]) -> None:
        super().__init__(binary, encoding="utf-8-sig", newline="")
        self._underlying = underlying

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._underlying.close()


def build_filter(
    communes: set[str], naf: NafNomenclature, section: str = "C"
) -> Callable[[SireneEstablishment], bool]:
    """Predicate: active, located in ``communes``, NAF rév. 2 code in ``section``.

    Only rows whose nomenclature is ``NAFRev2`` count: legacy codes (NAP,
    NAF1993, NAFRev1) can look like rév. 2 codes ("22.1A") without meaning the
    same activity.
    """
    codes: set[str] = set()
    for naf_code in naf.codes_in_section(section):
        codes.add(naf_code.code)
        codes.add(naf_code.code.replace(".", ""))
    if not codes:
        raise ValueError(f"NAF section {section!r} has no sub-class")
    wanted_communes = frozenset(communes)
    wanted_codes = frozenset(codes)

    def keep(e: SireneEstablishment) -> bool:
        return (
            e.is_active
            and e.commune_insee in wanted_communes
            and e.naf_nomenclature == NAF_REV2
            and e.naf_code in wanted_codes
        )

    return keep


# --- Reading in a separate process -------------------------------------------------------
#
# Parsing the CSV is all CPU, and so is an import's database side (building, validating
# and flushing the rows it keeps): in one process they add up. A child process scans
# and filters while the importer writes, so an import costs about the longer of the two
# rather than their sum. The child sends only what survives the filter, in chunks,
# through a bounded queue: memory stays flat and a slow database slows the scan down.

_CHUNK = 500  # items per message from the scanning process
_QUEUE_CHUNKS = 8  # messages in flight at most


def _scan_worker(path: str, only: RowFilter | None, queue: Any) -> None:
    """The child's side: each message is (kind, payload, rows read, bytes read)."""
    read_bytes = 0

    def on_bytes(n: int) -> None:
        nonlocal read_bytes
        read_bytes += n

    def on_rows(rows: int) -> None:
        queue.put(("progress", None, rows, read_bytes))

    try:
        stats = ReadStats()
        chunk: list[SireneEstablishment | SireneRowError] = []
        with open_sirene(Path(path), on_bytes=on_bytes) as source:
            for item in read_stock_etablissement(source, only=only, stats=stats, on_rows=on_rows):
                chunk.append(item)
                if len(chunk) >= _CHUNK:
                    queue.put(("items", chunk, stats.rows_read, read_bytes))
                    chunk = []
        queue.put(("items", chunk, stats.rows_read, read_bytes))
        queue.put(("done", peak_rss_kib(), stats.rows_read, read_bytes))
    except BaseException as exc:  # the parent re-raises it; a child has nowhere to report
        queue.put(("failed", exc, 0, read_bytes))


def peak_rss_kib() -> int | None:
    """This process's own peak resident memory (Linux ``VmHWM``). Not ``ru_maxrss``: a
    process started by vfork and exec keeps its parent's high-water mark there."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def scan_in_subprocess(
    path: Path,
    *,
    only: RowFilter | None = None,
    stats: ReadStats | None = None,
    on_rows: Callable[[int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[SireneEstablishment | SireneRowError]:
    """What ``read_stock_etablissement(open_sirene(path), only=...)`` yields, read and
    filtered by a child process. Blocking: an async caller iterates it in a thread
    or between batches. Raises what the child raised (``SireneFormatError`` for a bad
    header); stopping early stops the child."""
    import multiprocessing
    import queue as queue_module

    context = multiprocessing.get_context("spawn")  # never fork a process with threads
    messages = context.Queue(maxsize=_QUEUE_CHUNKS)
    child = context.Process(
        target=_scan_worker, args=(str(path), only, messages), name="sirene-scan", daemon=True
    )
    child.start()
    counts = stats if stats is not None else ReadStats()
    reported_bytes = 0
    try:
        while True:
            try:
                kind, payload, rows, read_bytes = messages.get(timeout=1.0)
            except queue_module.Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"the Sirene scanning process died (exit code {child.exitcode})"
                    ) from None
                continue
            if on_bytes is not None and read_bytes > reported_bytes:
                on_bytes(read_bytes - reported_bytes)
                reported_bytes = read_bytes
            if kind == "failed":
                raise payload
            counts.rows_read = max(counts.rows_read, rows)
            if kind == "progress":
                if on_rows is not None:
                    on_rows(rows)
            elif kind == "items":
                yield from payload
            else:  # done
                counts.scanner_peak_rss_kib = payload
                if on_rows is not None:
                    on_rows(rows)
                return
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        messages.close()
        messages.cancel_join_thread()


def naf_codes_in(naf: NafNomenclature, section: str = "C") -> frozenset[str]:
    """The section's sub-class codes as Sirene writes them ("25.11Z")."""
    codes = frozenset(c.code for c in naf.codes_in_section(section))
    if not codes:
        raise ValueError(f"NAF section {section!r} has no sub-class")
    return codes
