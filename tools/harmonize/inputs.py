"""Reading a retailer's native export into DuckDB: its manifest (`export.json`), the files a
mapping names, the DuckDB reader for each format, and errors that name the file, the mapping
key and what is wrong (the first malformed line of a CSV DuckDB refused)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tools.errors import InputDataError
from tools.harmonize.mapping import Mapping
from tools.harmonize.transforms import sql_literal


def read_manifest(mapping: Mapping, in_dir: Path) -> datetime:
    """The export's `exported_at` as naive UTC, after checking the manifest is for the
    mapping's retailer."""
    path = in_dir / mapping.source.manifest
    if not path.is_file():
        raise InputDataError(
            f"{path}: export manifest not found (mapping {mapping.path}, source.manifest)",
            file=str(path),
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stamp = datetime.fromisoformat(str(data["exported_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError) as err:
        raise InputDataError(
            f"{path}: needs a JSON object with exported_at as ISO-8601 UTC ({err})",
            file=str(path),
        ) from None
    if data.get("retailer") not in (None, mapping.retailer):
        raise InputDataError(
            f"{path}: export is for retailer {data['retailer']!r}, but mapping "
            f"{mapping.path} is for {mapping.retailer!r}",
            file=str(path),
        )
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp


def find_files(mapping: Mapping, in_dir: Path, pattern: str, key: str) -> list[Path]:
    """The non-empty files `pattern` (a name or a glob) names under `in_dir`."""
    if any(ch in pattern for ch in "*?["):
        found = sorted(p for p in in_dir.glob(pattern) if p.is_file())
    else:
        found = [in_dir / pattern] if (in_dir / pattern).is_file() else []
    if not found:
        raise InputDataError(
            f"{in_dir / pattern}: file not found (mapping {mapping.path}, {key})",
            file=str(in_dir / pattern),
        )
    for path in found:
        if path.stat().st_size == 0:
            raise InputDataError(f"{path}: file is empty (mapping {key})", file=str(path))
    return found


def require_columns(
    mapping: Mapping, have: dict[str, str], need: dict[str, str], files: list[Path]
) -> None:
    """Refuse files that lack a column the mapping reads (`need`: column -> mapping key)."""
    for column, where in need.items():
        if column not in have:
            raise InputDataError(
                f"{files[0]}: column {column!r} is missing (mapping {mapping.path}, {where}); "
                f"columns present: {', '.join(have)}",
                file=str(files[0]),
                column=column,
                mapping=mapping.path,
            )


class NativeReader:
    """DuckDB reads of native files on one connection; `csv_delimiter` lists the CSV files
    read, so that a refused read can name the malformed line."""

    def __init__(self, con: duckdb.DuckDBPyConnection, csv_delimiter: dict[Path, str]) -> None:
        self.con = con
        self.csv_delimiter = csv_delimiter

    def reader(self, fmt: str, files: list[Path], delimiter: str) -> str:
        """SQL that reads `files` in `fmt`, every column as text where the format allows."""
        paths = "[" + ", ".join(sql_literal(str(p)) for p in files) + "]"
        many = "true" if len(files) > 1 else "false"
        if fmt == "csv":
            # All text: a stray value must not fail the whole read; casts happen per field.
            return (
                f"read_csv({paths}, header=true, delim={sql_literal(delimiter)}, quote='\"', "
                f"escape='\"', all_varchar=true, union_by_name={many})"
            )
        if fmt == "jsonl":
            keys = self.rows(
                f"DESCRIBE SELECT * FROM read_json({paths}, format='newline_delimited')",
                files,
            )
            cols = ", ".join(f"{sql_literal(k[0])}: 'VARCHAR'" for k in keys)
            return f"read_json({paths}, format='newline_delimited', columns={{{cols}}})"
        return f"read_parquet({paths}, union_by_name={many})"

    def rows(self, sql: str, files: list[Path]) -> list[tuple[Any, ...]]:
        """Run `sql` over `files`; a refused read names the file and the problem."""
        try:
            return self.con.execute(sql).fetchall()
        except duckdb.Error as err:
            names, problem = ", ".join(str(f) for f in files), first_line(err)
            for path in files:
                found = path in self.csv_delimiter and _csv_problem(path, self.csv_delimiter[path])
                if found:
                    names, problem = str(path), found
                    break
            raise InputDataError(f"{names}: cannot be read: {problem}", file=names) from None

    def columns(self, reader: str, files: list[Path]) -> dict[str, str]:
        """Column name -> DuckDB type of what `reader` reads."""
        return {r[0]: r[1] for r in self.rows(f"DESCRIBE SELECT * FROM {reader}", files)}


def _csv_problem(path: Path, delimiter: str) -> str | None:
    """Name the first malformed line of a CSV that DuckDB refused (only on that error path)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh, delimiter=delimiter)
            header = next(rows, [])
            for row in rows:
                if row and len(row) != len(header):
                    return (
                        f"line {rows.line_num} has {len(row)} fields, the header has {len(header)}"
                    )
    except (csv.Error, UnicodeDecodeError) as err:
        return f"not valid CSV: {err}"
    return None


def first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
