"""Reading a network's report as its portal exports it, into a plain table for DuckDB.

Portal downloads are not clean tables: Excel workbooks, a few lines of preamble above the
header (report name, account, date range), a totals row at the bottom, sometimes notes after
it. `read_report` finds the header (`source.header_row_with`, after `source.skip_rows`), drops
blank rows and the footer (`source.footer_pattern`: the first row whose first non-blank cell
matches, and everything after it; counted in the quality report), and writes every cell as
text to a Parquet file the engine reads like any other export. Excel date cells become
YYYY-MM-DD text; numbers keep their digits (no thousands separators).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tools.errors import InputDataError
from tools.harmonize.mapping import Mapping


@dataclass(frozen=True)
class ReportTable:
    path: Path  # the Parquet file of text columns
    rows: int
    footer_rows: int  # rows dropped as footer (totals and after)
    header_rows: dict[str, int]  # source file -> row of its header (1-based)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _rows_csv(path: Path, delimiter: str) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [row for row in csv.reader(fh, delimiter=delimiter)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputDataError(
            f"{path}: not a readable UTF-8 CSV file: {err}", file=str(path)
        ) from None


def _rows_xlsx(path: Path, sheet: str | None) -> list[list[str]]:
    from openpyxl import load_workbook  # heavy; only Excel reports need it

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a file that is not a workbook
        raise InputDataError(
            f"{path}: not a readable Excel workbook: {err}", file=str(path)
        ) from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InputDataError(
                f"{path}: no sheet {sheet!r} (mapping source.sheet); sheets: "
                f"{', '.join(book.sheetnames)}",
                file=str(path),
            )
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        return [[_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
    finally:
        book.close()


def _header_index(mapping: Mapping, path: Path, rows: list[list[str]]) -> int:
    src = mapping.source
    start = src.skip_rows
    if src.header_row_with is None:
        for i in range(start, len(rows)):
            if any(c.strip() for c in rows[i]):
                return i
        raise InputDataError(f"{path}: no header row (the file is empty)", file=str(path))
    want = src.header_row_with.strip()
    for i in range(start, len(rows)):
        if any(c.strip() == want for c in rows[i]):
            return i
    first = " | ".join(",".join(r)[:60] for r in rows[start : start + 3])
    raise InputDataError(
        f"{path}: no row has a cell {want!r} (mapping {mapping.path}, source.header_row_with); "
        f"the first rows read: {first}",
        file=str(path),
    )


def read_report(mapping: Mapping, files: list[Path], out: Path) -> ReportTable:
    """Every file of a report export as one text table at `out` (Parquet)."""
    src = mapping.source
    footer = re.compile(src.footer_pattern) if src.footer_pattern else None
    columns: list[str] = []
    data: list[dict[str, str]] = []
    dropped = 0
    headers: dict[str, int] = {}
    for path in files:
        rows = (
            _rows_xlsx(path, src.sheet) if src.format == "xlsx" else _rows_csv(path, src.delimiter)
        )
        h = _header_index(mapping, path, rows)
        header = [c.strip() for c in rows[h]]
        while header and not header[-1]:
            header.pop()
        headers[str(path)] = h + 1
        for name in header:
            if name and name not in columns:
                columns.append(name)
        body = rows[h + 1 :]
        for i, row in enumerate(body):
            cells = [c.strip() for c in row]
            filled = [c for c in cells if c]
            if not filled:
                continue
            if footer is not None and footer.search(filled[0]):
                dropped += sum(1 for r in body[i:] if any(c.strip() for c in r))
                break
            if len(cells) > len(header) and any(cells[len(header) :]):
                raise InputDataError(
                    f"{path}: row {h + 2 + i} has {len(filled)} values but the header (row "
                    f"{h + 1}) has {len(header)} columns",
                    file=str(path),
                )
            data.append(
                {name: cells[j] if j < len(cells) else "" for j, name in enumerate(header) if name}
            )
    table = pa.table({c: pa.array([r.get(c, "") for r in data], pa.string()) for c in columns})
    pq.write_table(table, out)
    return ReportTable(out, len(data), dropped, headers)
