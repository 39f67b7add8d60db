"""Writing a plan export: an Excel workbook (openpyxl; sensible column widths, money, date and
count formats, frozen header rows) or one CSV per sheet.

    export = build_export(plan, data_dir)
    write_xlsx(export, Path("out/plan.xlsx"))
    write_csv(export, Path("out/"))       # summary.csv, <retailer>.csv, <retailer>_bulk.csv
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tools.export.bulk import BULK_LAYOUTS
from tools.export.sheets import ExportError, PlanExport

FORMATS = ("xlsx", "csv")
MONEY = '"$"#,##0.00'
DATE = "yyyy-mm-dd"
COUNT = "#,##0"
# Line sheets: (header, ExportLine field, number format)
LINE_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("Retailer", "retailer", None),
    ("Product", "product", None),
    ("GTIN", "gtin", "@"),
    ("Item ID", "item_id", "@"),
    ("Placement", "placement", None),
    ("Campaign", "campaign", None),
    ("Daily budget", "daily_budget", MONEY),
    ("Flight start", "flight_start", DATE),
    ("Flight end", "flight_end", DATE),
    ("Days", "days", COUNT),
    ("Total", "total", MONEY),
    ("Expected incremental revenue", "expected_revenue", MONEY),
    ("Holdout", "holdout", None),
)
MAX_WIDTH = 60


def sheet_title(name: str, used: set[str]) -> str:
    """An Excel sheet title: at most 31 characters, none of []:*?/\\, unique."""
    base = re.sub(r"[\[\]:*?/\\]", "-", name).strip()[:31] or "Sheet"
    title, n = base, 2
    while title.lower() in used:
        suffix = f" ({n})"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(title.lower())
    return title


def _summary(export: PlanExport) -> list[tuple[str, Any, str | None]]:
    rows: list[tuple[str, Any, str | None]] = [
        ("Brand", export.brand_name, None),
        ("Thread", export.thread_id, None),
        ("Approved by", export.approved_by or "", None),
        (
            "Approved at",
            export.approved_at.replace(tzinfo=None) if export.approved_at else "",
            "yyyy-mm-dd hh:mm",
        ),
        ("Budget", export.budget, MONEY),
        ("Experiment reserve", export.reserve, MONEY),
        ("Flight start", export.flight_start, DATE),
        ("Flight end", export.flight_end, DATE),
        ("Flight dates from", export.flight_note, None),
    ]
    rows += [(f"Total at {s.name}", s.total, MONEY) for s in export.sheets]
    exp = export.experiment
    if exp:
        rows += [
            ("Experiment", f"{exp.get('experiment_type')} at {exp.get('retailer')}", None),
            ("Experiment start", str(exp.get("start", ""))[:10], None),
            ("Experiment days", exp.get("duration_days"), COUNT),
            ("Experiment data", exp.get("data_source", ""), None),
        ]
    rows += [("Note", n, None) for n in export.notes]
    return rows


def _line_rows(export: PlanExport) -> list[tuple[str, list[list[Any]], list[str | None]]]:
    """(title, rows with header first, number format per column) of every line sheet."""
    out = []
    for sheet in export.sheets:
        rows = [[h for h, _f, _n in LINE_COLUMNS]]
        rows += [[getattr(line, f) for _h, f, _n in LINE_COLUMNS] for line in sheet.lines]
        out.append((sheet.name, rows, [n for _h, _f, n in LINE_COLUMNS]))
        if sheet.network in BULK_LAYOUTS:
            title, columns, build = BULK_LAYOUTS[sheet.network]
            bulk = [list(columns)] + [list(r.values()) for r in build(sheet)]
            formats = [MONEY if c in ("Daily Budget", "Ad Group Default Bid", "Bid") else None
                       for c in columns]  # fmt: skip
            out.append((f"{sheet.name} {title}", bulk, formats))
    return out


def _width(values: Sequence[Any]) -> float:
    longest = max((len(_text(v)) for v in values), default=8)
    return float(min(max(longest + 2, 8), MAX_WIDTH))


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()[:16]
    return str(value)


def workbook_bytes(export: PlanExport) -> bytes:
    """The workbook: Summary, then per retailer its lines (and its network's bulk sheet)."""
    from openpyxl import Workbook  # heavy; only exports need it
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    used: set[str] = set()
    ws = book.active
    ws.title = sheet_title("Summary", used)
    for label, value, fmt in _summary(export):
        ws.append([label, value])
        cell = ws.cell(row=ws.max_row, column=2)
        if fmt:
            cell.number_format = fmt
        cell.alignment = Alignment(horizontal="left")
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = _width([v for _l, v, _f in _summary(export)])
    for name, rows, formats in _line_rows(export):
        ws = book.create_sheet(sheet_title(name, used))
        for row in rows:
            ws.append(row)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for j, fmt in enumerate(formats, start=1):
            letter = get_column_letter(j)
            ws.column_dimensions[letter].width = _width([r[j - 1] for r in rows])
            if fmt:
                for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    cell.number_format = fmt
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _csv_text(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([v.isoformat() if isinstance(v, date | datetime) else v for v in row])
    return buf.getvalue()


def csv_files(export: PlanExport) -> dict[str, str]:
    """File name -> CSV text: summary.csv, then one per sheet."""
    files = {"summary.csv": _csv_text([[label, value] for label, value, _f in _summary(export)])}
    for name, rows, _formats in _line_rows(export):
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "sheet"
        files[f"{slug}.csv"] = _csv_text(rows)
    return files


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def _atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_export(export: PlanExport, fmt: str, out_dir: Path) -> list[Path]:
    """Write the export under `out_dir` as `<thread>.xlsx` (prefixed `plan-` unless the id
    is), or the CSV files in `<thread>/`; returns the files written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}", format=fmt)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", export.thread_id).strip(".-") or "plan"
    name = safe if safe.startswith("plan") else f"plan-{safe}"
    out_dir = Path(out_dir)
    if fmt == "xlsx":
        path = out_dir / f"{name}.xlsx"
        _atomic(path, workbook_bytes(export))
        return [path]
    folder = out_dir / name
    written = []
    for name, text in csv_files(export).items():
        _atomic(folder / name, text.encode())
        written.append(folder / name)
    return written
