"""Import of an article file (CSV or XLSX) from disk, streamed.

The file is read row by row (csv module / openpyxl read-only mode) and fed to
the same ArticleResource the admin uses, one chunk at a time, so memory
holds one chunk plus the SKUs and barcodes seen so far, whatever the file's
size. The whole file is one transaction: unless `apply_valid` is given, a
file with any bad row is rolled back entirely, so nothing of it is applied."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tablib
from django.db import transaction
from openpyxl.utils.exceptions import InvalidFileException

from posinv.exceptions import InvalidInput, Problem
from posinv.resources import ArticleResource

MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    """One refused row: its number (1 = the first row under the header),
    the column and why."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did. `errors` keeps the first MAX_REPORTED_ERRORS;
    `error_rows` counts them all."""

    rows: int = 0
    new: int = 0
    updated: int = 0
    error_rows: int = 0
    applied: bool = False
    errors: list[RowError] = field(default_factory=list)


def _csv_rows(path: Path) -> tuple[list[str], Iterator[list]]:
    handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (closed when the iterator ends)
    sample = handle.read(8192)
    handle.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(handle, dialect)
    header = next(reader, [])

    def rows():
        with handle:
            yield from reader

    return header, rows()


def _xlsx_rows(path: Path) -> tuple[list[str], Iterator[list]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    rows_iter = workbook.active.iter_rows(values_only=True)
    header = [("" if h is None else str(h)) for h in next(rows_iter, ())]

    def rows():
        try:
            for row in rows_iter:
                if row and any(cell not in (None, "") for cell in row):
                    yield list(row)
        finally:
            workbook.close()

    return header, rows()


def article_file_rows(*, path: Path) -> tuple[list[str], Iterator[list]]:
    """The header and a lazy iterator over the data rows of a CSV or XLSX file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in {".xlsx", ".xlsm"}:
        return _xlsx_rows(path)
    raise InvalidInput([Problem(field="file", reason=f"{path.name}: expected a .csv or .xlsx file")])


def article_file_count_rows(*, path: Path) -> int | None:
    """Data rows in the file, for a progress bar (cheap: no parsing of cells)."""
    if path.suffix.lower() == ".csv":
        with open(path, "rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    try:
        return max((workbook.active.max_row or 1) - 1, 0)
    finally:
        workbook.close()


def articles_import_file(
    *,
    path: Path,
    apply_valid: bool = False,
    chunk_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the article file at `path`. Raises InvalidInput for a file that
    cannot be read as an article file (format, columns). Bad rows are
    reported with row, column and reason; unless `apply_valid`, a file with
    any bad row changes nothing."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput([Problem(field="file", reason=f"{path}: no such file")])
    try:
        header, rows = article_file_rows(path=path)
        header = [str(h).strip() for h in header]
        resource = ArticleResource()
        problems = resource.header_problems(header)
        if problems:
            raise InvalidInput([Problem(field="columns", reason=p) for p in problems])
        report = ImportReport()
        with transaction.atomic():
            chunk: list[list] = []
            for row in rows:
                chunk.append((list(row) + [""] * len(header))[: len(header)])
                if len(chunk) >= chunk_size:
                    _import_chunk(resource, header, chunk, report, progress)
                    chunk = []
            if chunk:
                _import_chunk(resource, header, chunk, report, progress)
            report.applied = report.error_rows == 0 or apply_valid
            if not report.applied:
                transaction.set_rollback(True)
        return report
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [Problem(field="file", reason=f"{path.name} is not UTF-8 text; save it as CSV UTF-8")]
        ) from exc
    except (csv.Error, zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
        # KeyError: openpyxl's answer to a zip that is not a workbook.
        raise InvalidInput([Problem(field="file", reason=f"{path.name} cannot be read: {exc}")]) from exc


def _import_chunk(resource, header, chunk, report: ImportReport, progress) -> None:
    dataset = tablib.Dataset(*chunk, headers=header)
    resource.row_offset = report.rows
    # Our own transaction surrounds the whole file; import-export must not
    # open (and roll back) one per chunk.
    result = resource.import_data(dataset, dry_run=False, use_transactions=False)
    if result.base_errors:
        raise InvalidInput([Problem(field="file", reason=str(e.error)) for e in result.base_errors])
    failed = set()
    for invalid in result.invalid_rows:
        number = report.rows + invalid.number
        failed.add(number)
        for column, messages in invalid.error_dict.items():
            for message in messages:
                _add_error(report, RowError(row=number, column=column, reason=message))
    for error_row in result.error_rows:
        number = report.rows + error_row.number
        failed.add(number)
        for error in error_row.errors:
            _add_error(report, RowError(row=number, column="-", reason=str(error.error)))
    report.error_rows += len(failed)
    report.new += result.totals.get("new", 0)
    report.updated += result.totals.get("update", 0)
    report.rows += len(chunk)
    if progress:
        progress(len(chunk))


def _add_error(report: ImportReport, error: RowError) -> None:
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append(error)
