"""Reading one first-party file (CSV, Parquet or Excel) as rows, each with the place it came
from: the line of a CSV, the sheet row of an Excel file, the 1-based row of a Parquet file."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tools.firstparty.schema import FORMATS


@dataclass
class RawFile:
    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    where: list[int]  # per row: the CSV line / sheet row / Parquet row it came from
    header_at: int  # the CSV line / sheet row of the header (0 for Parquet)


class ReadProblem(Exception):
    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.path, self.line, self.problem = path, line, problem


def find_file(folder: Path, name: str) -> list[Path]:
    """The files named `name` with an accepted extension (more than one is a problem)."""
    return [folder / f"{name}{ext}" for ext in FORMATS if (folder / f"{name}{ext}").is_file()]


def read_file(path: Path) -> RawFile:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    return _read_parquet(path)


def _clean_header(path: Path, line: int, cells: list[Any]) -> list[str]:
    names = [str(c).strip().lower().replace(" ", "_") if c is not None else "" for c in cells]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise ReadProblem(path, line, "the header row is empty; allowed: column names")
    for i, name in enumerate(names):
        if not name:
            raise ReadProblem(path, line, f"column {i + 1} has no name; allowed: a column name")
        if name in names[:i]:
            raise ReadProblem(path, line, f"column {name!r} appears twice; allowed: once")
    return names


def _read_csv(path: Path) -> RawFile:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header: list[str] | None = None
            rows: list[dict[str, Any]] = []
            where: list[int] = []
            header_at = 0
            for cells in reader:
                line = reader.line_num
                if header is None:
                    if not any(c.strip() for c in cells):
                        continue
                    header, header_at = _clean_header(path, line, cells), line
                    continue
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
                    raise ReadProblem(
                        path,
                        line,
                        f"{len(cells)} fields but the header has {len(header)}; allowed: one "
                        "value per column",
                    )
                rows.append(dict(zip(header, cells, strict=False)))
                where.append(line)
    except (UnicodeDecodeError, csv.Error) as err:
        raise ReadProblem(path, None, f"not a readable UTF-8 CSV file: {err}") from None
    if header is None:
        raise ReadProblem(path, None, "the file is empty; allowed: a header row, then data")
    return RawFile(path, header, rows, where, header_at)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    return value


def _read_xlsx(path: Path) -> RawFile:
    from openpyxl import load_workbook  # heavy; only Excel files need it

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a file that is not a workbook
        raise ReadProblem(path, None, f"not a readable Excel workbook: {err}") from None
    try:
        sheet = book.worksheets[0]
        header: list[str] | None = None
        rows: list[dict[str, Any]] = []
        where: list[int] = []
        header_at = 0
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            filled = [v for v in values if v is not None and str(v).strip()]
            if not filled:
                continue
            if header is None:
                header, header_at = _clean_header(path, number, list(values)), number
                continue
            rows.append({h: _cell(v) for h, v in zip(header, values, strict=False)})
            where.append(number)
    finally:
        book.close()
    if header is None:
        raise ReadProblem(path, None, "the first sheet is empty; allowed: a header row, then data")
    return RawFile(path, header, rows, where, header_at)


def _read_parquet(path: Path) -> RawFile:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise ReadProblem(path, None, f"not a readable Parquet file: {err}") from None
    columns = [c.strip().lower() for c in table.column_names]
    rows = table.rename_columns(columns).to_pylist()
    return RawFile(path, columns, rows, list(range(1, len(rows) + 1)), 0)


def place(path: Path, line: int | None) -> str:
    """How a problem's place is written: `file:line` (CSV), `file:row` (Excel, Parquet)."""
    return f"{path}:{line}" if line else str(path)
