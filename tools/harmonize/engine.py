"""Apply a retailer mapping to its native export with DuckDB: RMIS events, quarantine, report.

Every row is read once into DuckDB and mapped with one vectorized query; rows failing a rule
go to quarantine with the first failing rule (order: `ANOMALY_KINDS`). Outputs are written to
temporary files and renamed into place only when all of them succeeded.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.errors import InputDataError, MappingError, RMNError
from tools.harmonize.mapping import ANOMALY_KINDS, OPTIONAL_FIELDS, Mapping, load_mapping
from tools.harmonize.report import Anomaly, QualityReport
from tools.harmonize.transforms import GTIN14_OK_SQL, TRANSFORMS, sql_ident, sql_literal
from tools.rmis import EVENT_COLUMNS

OUTPUT_FILES = ("events.parquet", "quarantine.parquet", "quality_report.json")
EXAMPLES = 5
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}


def harmonize_retailer(
    retailer: str | None,
    in_dir: str | Path,
    out_dir: str | Path,
    mapping_path: str | Path | None = None,
    *,
    threads: int | None = None,
) -> QualityReport:
    """Harmonize one retailer's export in `in_dir` into `out_dir/<retailer>/`.

    `retailer` picks the bundled mapping; `mapping_path` uses a YAML file instead (its
    retailer must match `retailer` when both are given).
    """
    started = time.perf_counter()
    if mapping_path is not None:
        mapping = load_mapping(Path(mapping_path))
        if retailer and mapping.retailer != retailer:
            raise MappingError(
                f"{mapping.path} maps retailer {mapping.retailer!r}, not {retailer!r}",
                file=mapping.path,
            )
    elif retailer:
        mapping = load_mapping(retailer)
    else:
        raise MappingError("give a retailer or a mapping file")
    return _Run(mapping, Path(in_dir), Path(out_dir), threads, started).execute()


def find_exports(in_root: str | Path) -> list[str]:
    """Retailers with a bundled mapping whose export folder exists under `in_root`."""
    from tools.harmonize.mapping import available_retailers

    root = Path(in_root)
    if not root.is_dir():
        raise InputDataError(f"input folder not found: {root}", path=str(root))
    return [r for r in available_retailers() if (root / r).is_dir()]


def harmonize_all(
    in_root: str | Path,
    out_dir: str | Path,
    *,
    threads: int | None = None,
    workers: int = 2,
) -> list[QualityReport]:
    """Harmonize every retailer found under `in_root` (one sub-folder per retailer).

    `workers` retailers run at once: each query already uses all cores, but overlapping two
    retailers fills the gaps between and inside queries (about a third faster on 2 cores).
    A retailer that fails does not stop the others; the first error is raised at the end.
    """
    from concurrent.futures import ThreadPoolExecutor

    retailers = find_exports(in_root)
    if not retailers:
        from tools.harmonize.mapping import available_retailers

        raise InputDataError(
            f"no retailer export folders under {in_root}; expected one of: "
            + ", ".join(available_retailers()),
            path=str(in_root),
        )

    def one(retailer: str) -> QualityReport | RMNError:
        try:
            return harmonize_retailer(retailer, Path(in_root) / retailer, out_dir, threads=threads)
        except RMNError as err:
            return err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(one, retailers))
    for result in results:
        if isinstance(result, RMNError):
            raise result
    return [r for r in results if isinstance(r, QualityReport)]


class _Run:
    """State of one harmonization; `execute` is the whole pipeline."""

    def __init__(
        self, mapping: Mapping, in_dir: Path, out_dir: Path, threads: int | None, started: float
    ) -> None:
        self.m = mapping
        self.in_dir = in_dir
        self.out = out_dir / mapping.retailer
        self.threads = threads
        self.started = started

    # -- inputs ------------------------------------------------------------------------------

    def _manifest(self) -> datetime:
        path = self.in_dir / self.m.source.manifest
        if not path.is_file():
            raise InputDataError(
                f"{path}: export manifest not found (mapping {self.m.path}, source.manifest)",
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
        if data.get("retailer") not in (None, self.m.retailer):
            raise InputDataError(
                f"{path}: export is for retailer {data['retailer']!r}, but mapping "
                f"{self.m.path} is for {self.m.retailer!r}",
                file=str(path),
            )
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(UTC).replace(tzinfo=None)
        return stamp

    def _files(self, pattern: str, key: str, fmt: str, delimiter: str) -> list[Path]:
        if any(ch in pattern for ch in "*?["):
            found = sorted(p for p in self.in_dir.glob(pattern) if p.is_file())
        else:
            found = [self.in_dir / pattern] if (self.in_dir / pattern).is_file() else []
        if not found:
            raise InputDataError(
                f"{self.in_dir / pattern}: file not found (mapping {self.m.path}, {key})",
                file=str(self.in_dir / pattern),
            )
        for path in found:
            if path.stat().st_size == 0:
                raise InputDataError(f"{path}: file is empty (mapping {key})", file=str(path))
            if fmt == "csv":
                self.csv_delimiter[path] = delimiter
        return found

    def _reader(self, fmt: str, files: list[Path], delimiter: str) -> str:
        paths = "[" + ", ".join(sql_literal(str(p)) for p in files) + "]"
        many = "true" if len(files) > 1 else "false"
        if fmt == "csv":
            # All text: a stray value must not fail the whole read; casts happen per field.
            return (
                f"read_csv({paths}, header=true, delim={sql_literal(delimiter)}, quote='\"', "
                f"escape='\"', all_varchar=true, union_by_name={many})"
            )
        if fmt == "jsonl":
            keys = self._sql_rows(
                f"DESCRIBE SELECT * FROM read_json({paths}, format='newline_delimited')",
                files,
            )
            cols = ", ".join(f"{sql_literal(k[0])}: 'VARCHAR'" for k in keys)
            return f"read_json({paths}, format='newline_delimited', columns={{{cols}}})"
        return f"read_parquet({paths}, union_by_name={many})"

    def _sql_rows(self, sql: str, files: list[Path]) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return self.con.execute(sql).fetchall()
        except duckdb.Error as err:
            names, problem = ", ".join(str(f) for f in files), _first_line(err)
            for path in files:
                found = path in self.csv_delimiter and _csv_problem(path, self.csv_delimiter[path])
                if found:
                    names, problem = str(path), found
                    break
            raise InputDataError(f"{names}: cannot be read: {problem}", file=names) from None

    def _columns(self, reader: str, files: list[Path]) -> dict[str, str]:
        return {r[0]: r[1] for r in self._sql_rows(f"DESCRIBE SELECT * FROM {reader}", files)}

    def _require(self, have: dict[str, str], need: dict[str, str], files: list[Path]) -> None:
        for column, where in need.items():
            if column not in have:
                raise InputDataError(
                    f"{files[0]}: column {column!r} is missing (mapping {self.m.path}, {where}); "
                    f"columns present: {', '.join(have)}",
                    file=str(files[0]),
                    column=column,
                    mapping=self.m.path,
                )

    # -- SQL for fields and rules ----------------------------------------------------------

    def _chain(self, expr: str, calls: list[Any]) -> str:
        for call in calls:
            expr = TRANSFORMS[call.name].render(expr, call.args)
        return expr

    def _raw_expr(self, name: str, typed: dict[str, str], base: str | None = None) -> str:
        spec = self.m.fields[name]
        if spec.column is not None:
            expr = base or f"r.{sql_ident(spec.column)}"
        elif spec.field is not None:
            expr = typed[spec.field]
        elif spec.crosswalk:
            expr = "x.__gtin"
        else:
            expr = "NULL" if spec.value is None else sql_literal(str(spec.value))
        expr = self._chain(expr, spec.transforms)
        if spec.map is not None:
            cases = " ".join(
                f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in spec.map.items()
            )
            expr = f"(CASE CAST({expr} AS VARCHAR) {cases} END)"
        return expr

    def _typed_fields(self) -> dict[str, str]:
        """RMIS field -> SQL expression of exactly its EVENT_COLUMNS type (NULL if unreadable)."""
        typed: dict[str, str] = {}
        base = [n for n, s in self.m.fields.items() if s.source != "field"]
        derived = [n for n, s in self.m.fields.items() if s.source == "field"]
        # Derived fields build on the typed expressions of the fields they name.
        for batch in (base, derived):
            raw = {n: self._raw_expr(n, typed) for n in batch}
            types = self._bind_types(raw) if raw else {}
            for n in batch:
                typed[n] = _cast(raw[n], types[n], EVENT_COLUMNS[n])
                spec = self.m.fields[n]
                if spec.column and any(TRANSFORMS[c.name].memo for c in spec.transforms):
                    memo = _cast(self._raw_expr(n, typed, base="__k"), types[n], EVENT_COLUMNS[n])
                    typed[n] = self._lookup(spec.column, memo, typed[n])
        return typed

    def _lookup(self, column: str, expr: str, inline: str) -> str:
        """Evaluate a costly conversion once per distinct native value (hourly timestamps
        repeat thousands of times) and join it back; inline when values barely repeat."""
        alias = f"lk{len(self.lookups)}"
        self.con.execute(
            f"""CREATE TEMP TABLE {alias} AS SELECT __k, {expr} AS __v
            FROM (SELECT DISTINCT {sql_ident(column)} AS __k FROM raw) WHERE __k IS NOT NULL"""
        )
        (distinct,) = self.con.execute(f"SELECT count(*) FROM {alias}").fetchone() or (0,)
        if distinct * 8 > self.rows:
            self.con.execute(f"DROP TABLE {alias}")
            return inline
        self.lookups.append((alias, column))
        return f"{alias}.__v"

    def _joins(self, on_false: bool = False, needed: str | None = None) -> str:
        """The crosswalk and lookup joins that field expressions refer to (all of them, or
        those that the SQL text `needed` mentions)."""
        joins = []
        if needed is None or "x.__" in needed:
            xw = "false" if on_false else f"x.__key = {self.join_key}"
            joins.append(f"LEFT JOIN xw x ON {xw}")
        for alias, column in self.lookups:
            if needed is None or f"{alias}." in needed:
                on = "false" if on_false else f"{alias}.__k = r.{sql_ident(column)}"
                joins.append(f"LEFT JOIN {alias} ON {on}")
        return " ".join(joins)

    def _bind_types(self, exprs: dict[str, str]) -> dict[str, str]:
        import duckdb

        def describe(items: dict[str, str]) -> list[tuple[Any, ...]]:
            # Prefixed aliases: identifiers are case-insensitive, so a native IMPRESSIONS
            # column would otherwise lend its spelling to an `impressions` alias.
            select = ", ".join(f"{e} AS {sql_ident('__t_' + n)}" for n, e in items.items())
            return self.con.execute(
                f"DESCRIBE SELECT {select} FROM raw r {self._joins(on_false=True)}"
            ).fetchall()

        try:
            return {row[0].removeprefix("__t_"): row[1] for row in describe(exprs)}
        except duckdb.Error:
            for name, expr in exprs.items():
                try:
                    describe({name: expr})
                except duckdb.Error as err:
                    spec = self.m.fields[name]
                    source = f"column {spec.column!r} ({self.cols.get(spec.column or '', '?')})"
                    raise MappingError(
                        f"{self.m.path}: fields.{name}: transforms do not fit {source}: "
                        f"{_first_line(err)}",
                        file=self.m.path,
                        field=name,
                    ) from None
            raise

    def _present(self, name: str) -> str:
        """Column (of the inner staging query) telling whether the native value behind a field
        is there: not NULL, not blank text."""
        spec = self.m.fields[name]
        if spec.field is not None:
            return self._present(spec.field)
        if spec.crosswalk:
            return self._present(self.m.crosswalk.join_field)
        if spec.column is None:
            return "false" if spec.value is None else "true"
        ref = f"__p_{list(self.cols).index(spec.column)}"
        col = f"r.{sql_ident(spec.column)}"
        self.presence[ref] = f"(NOT {_blank(col, self.cols[spec.column])})"
        return ref

    def _conditions(self, f: dict[str, str], exported_at: datetime) -> dict[str, list[str]]:
        """Anomaly kind -> SQL conditions that put a row there, over the columns of the inner
        staging query: fields `f`, presence flags, `__xmiss`, `__gtin_ok`, `__dup`."""
        by_kind: dict[str, list[str]] = {k: [] for k in ANOMALY_KINDS}
        self.unique_fields: list[str] = []
        stamp = f"TIMESTAMP {sql_literal(exported_at.isoformat(sep=' '))}"
        column_fields = [n for n in self.m.required_fields() if self.m.fields[n].source == "column"]
        for rule in self.m.rules:
            target = rule.field or ""
            if rule.check == "unique":
                self.unique_fields = rule.targets()  # see the dups table in _run
                continue
            if rule.check == "not_null":
                cond = " OR ".join(f"NOT {self._present(n)}" for n in rule.fields or column_fields)
            elif rule.check == "non_negative":
                cond = " OR ".join(f"{f[n]} < 0" for n in rule.targets())
            elif rule.check == "not_after_export":
                cond = f"{f[target]} > {stamp}"
            elif rule.check == "known_value":
                cond = f"({self._present(target)} AND {f[target]} IS NULL)"
            elif rule.check == "not_greater_than":
                cond = f"{f[target]} > {f[str(rule.than)]}"
            elif rule.check == "crosswalk_hit":
                cond = "__xmiss"
            elif rule.check == "valid_gtin":
                cond = (
                    "NOT coalesce(__gtin_ok, false)"
                    if self.m.fields[target].crosswalk
                    else f"NOT coalesce({GTIN14_OK_SQL.format(x=f[target])}, false)"
                )
            else:  # between
                parts = []
                if rule.min is not None:
                    parts.append(f"{f[target]} < {rule.min!r}")
                if rule.max is not None:
                    parts.append(f"{f[target]} > {rule.max!r}")
                cond = " OR ".join(parts)
            if cond:
                by_kind[rule.anomaly].append(f"coalesce({cond}, false)")
        # Last resort: a required field that ended NULL, or a value present but unreadable.
        for name in EVENT_COLUMNS:
            if name in OPTIONAL_FIELDS:
                by_kind["invalid_value"].append(f"({f[name]} IS NULL AND {self._present(name)})")
            else:
                by_kind["invalid_value"].append(f"({f[name]} IS NULL)")
        return by_kind

    # -- pipeline ----------------------------------------------------------------------------

    def execute(self) -> QualityReport:
        import duckdb

        if not self.in_dir.is_dir():
            raise InputDataError(f"input folder not found: {self.in_dir}", path=str(self.in_dir))
        exported_at = self._manifest()
        src = self.m.source
        xw = self.m.crosswalk
        self.csv_delimiter: dict[Path, str] = {}
        sources = self._files(src.file, "source.file", src.format, src.delimiter)
        xw_files = self._files(xw.file, "crosswalk.file", xw.format, xw.delimiter)

        self.con = duckdb.connect(":memory:")
        try:
            self.con.execute("SET TimeZone = 'UTC'")
            if self.threads:
                self.con.execute(f"SET threads = {int(self.threads)}")
            with _staging(self.out) as tmp:
                report = self._run(exported_at, sources, xw_files, tmp)
            return report
        except duckdb.Error as err:
            raise InputDataError(
                f"{self.m.retailer}: could not harmonize {sources[0]}: {_first_line(err)}",
                file=str(sources[0]),
            ) from None
        finally:
            self.con.close()

    def _run(
        self, exported_at: datetime, sources: list[Path], xw_files: list[Path], tmp: dict[str, Path]
    ) -> QualityReport:
        con = self.con
        m = self.m
        reader = self._reader(m.source.format, sources, m.source.delimiter)
        self.cols = self._columns(reader, sources)
        self._require(
            self.cols,
            {s.column: f"fields.{n}.column" for n, s in m.fields.items() if s.column},
            sources,
        )
        for reserved in ("reason", "native_id", "source_row"):
            if reserved in self.cols:
                raise InputDataError(
                    f"{sources[0]}: native column {reserved!r} clashes with the quarantine's "
                    f"own column of that name",
                    file=str(sources[0]),
                )
        xw = m.crosswalk
        xw_reader = self._reader(xw.format, xw_files, xw.delimiter)
        self._require(
            self._columns(xw_reader, xw_files),
            {xw.key: "crosswalk.key", xw.gtin: "crosswalk.gtin"},
            xw_files,
        )

        # Parsed once into a table whose rowid is the file order (insertion order is kept).
        self._sql_rows(f"CREATE TEMP TABLE raw AS SELECT * FROM {reader}", sources)
        # Later steps carry that order explicitly and may reorder freely (faster joins).
        con.execute("SET preserve_insertion_order = false")
        key = self._chain(f"CAST({sql_ident(xw.key)} AS VARCHAR)", xw.key_transforms)
        gtin = self._chain(f"CAST({sql_ident(xw.gtin)} AS VARCHAR)", xw.gtin_transforms)
        self._sql_rows(
            f"""CREATE TEMP TABLE xw AS
            SELECT __key, __gtin, {GTIN14_OK_SQL.format(x="__gtin")} AS __gtin_ok, __n
            FROM (SELECT try(CAST({key} AS VARCHAR)) AS __key,
                         any_value(try(CAST({gtin} AS VARCHAR))) AS __gtin,
                         count(DISTINCT try(CAST({gtin} AS VARCHAR))) AS __n
                  FROM {xw_reader} GROUP BY 1)
            WHERE __key IS NOT NULL""",
            xw_files,
        )
        clash = con.execute("SELECT __key FROM xw WHERE __n > 1 ORDER BY 1 LIMIT 5").fetchall()
        if clash:
            raise InputDataError(
                f"{xw_files[0]}: item ids with conflicting GTINs: "
                + ", ".join(c[0] for c in clash),
                file=str(xw_files[0]),
            )

        (self.rows,) = con.execute("SELECT count(*) FROM raw").fetchone() or (0,)
        self.lookups: list[tuple[str, str]] = []
        self.join_key = "NULL"
        f = self._typed_fields()
        self.join_key = f[xw.join_field]
        self.presence: dict[str, str] = {}
        refs = {n: sql_ident("__f_" + n) for n in EVENT_COLUMNS}
        by_kind = self._conditions(refs, exported_at)

        # Duplicates are the one rule that looks across rows: the first copy (in file order)
        # goes through the other rules, later copies are quarantined as duplicate_row.
        dup, dup_join = "false", ""
        if self.unique_fields:
            keys = [f[n] for n in self.unique_fields]
            con.execute(
                f"""CREATE TEMP TABLE dups AS
                SELECT {", ".join(f"{k} AS __k{i}" for i, k in enumerate(keys))},
                       min(r.rowid) AS __first
                FROM raw r {self._joins(needed=" ".join(keys))}
                WHERE {" AND ".join(f"{k} IS NOT NULL" for k in keys)}
                GROUP BY ALL HAVING count(*) > 1"""
            )
            on = " AND ".join(f"d.__k{i} = {k}" for i, k in enumerate(keys))
            dup, dup_join = "coalesce(r.rowid > d.__first, false)", f"LEFT JOIN dups d ON {on}"
            by_kind["duplicate_row"].append("__dup")
        reason = " ".join(
            f"WHEN {' OR '.join(conds)} THEN {sql_literal(kind)}"
            for kind, conds in by_kind.items()
            if conds
        )
        native = f"CAST(r.{sql_ident(str(m.fields['event_id'].column))} AS VARCHAR)"
        inner = ", ".join(
            [f"{f[n]} AS {refs[n]}" for n in EVENT_COLUMNS]
            + [f"{sql} AS {ref}" for ref, sql in self.presence.items()]
        )
        # Fields are computed once in the inner query; the rules only read them.
        con.execute(
            f"""CREATE TEMP TABLE staged AS
            SELECT __row, __native, NOT __xmiss AS __xhit, {", ".join(refs.values())},
                   CASE {reason} END AS __reason
            FROM (SELECT r.rowid AS __row, {native} AS __native, x.__key IS NULL AS __xmiss,
                         x.__gtin_ok AS __gtin_ok, {dup} AS __dup, {inner}
                  FROM raw r {self._joins()} {dup_join})"""
        )

        events = ", ".join(
            f"CAST({sql_ident('__f_' + n)} AS {t}) AS {sql_ident(n)}"
            for n, t in EVENT_COLUMNS.items()
        )
        con.execute(
            f"COPY (SELECT {events} FROM staged WHERE __reason IS NULL ORDER BY __row) "
            f"TO {sql_literal(str(tmp['events.parquet']))} (FORMAT parquet)"
        )
        con.execute(
            f"""COPY (SELECT r.*, s.__reason AS reason, s.__native AS native_id,
                   s.__row + 1 AS source_row
                FROM raw r JOIN (SELECT * FROM staged WHERE __reason IS NOT NULL) s
                ON r.rowid = s.__row ORDER BY s.__row)
            TO {sql_literal(str(tmp["quarantine.parquet"]))} (FORMAT parquet)"""
        )

        blanks = ", ".join(
            f"sum(CASE WHEN {_blank(sql_ident(c), t)} THEN 1 ELSE 0 END)"
            for c, t in self.cols.items()
        )
        rows_in, *nulls = con.execute(f"SELECT count(*), {blanks} FROM raw").fetchone() or (0,)
        groups = con.execute(
            f"""SELECT __reason, count(*), count(*) FILTER (WHERE __xhit),
                   arg_min(__native, __row, {EXAMPLES})
            FROM staged GROUP BY 1"""
        ).fetchall()
        anomalies = {k: Anomaly(count=0) for k in ANOMALY_KINDS}
        rows_out = hits = 0
        for kind, n, hit, examples in groups:
            hits += hit
            if kind is None:
                rows_out = n
            else:
                anomalies[kind] = Anomaly(count=n, examples=[e for e in examples if e])
        (items,) = con.execute("SELECT count(*) FROM xw").fetchone() or (0,)
        final = {name: self.out / name for name in OUTPUT_FILES}
        report = QualityReport(
            retailer=m.retailer,
            mapping=m.path,
            exported_at=exported_at.isoformat() + "Z",
            source_files=[str(p) for p in sources],
            crosswalk_file=str(xw_files[0]),
            rows_in=rows_in,
            rows_out=rows_out,
            rows_quarantined=rows_in - rows_out,
            null_rates={
                c: round(int(n or 0) / rows_in, 6) if rows_in else 0.0
                for c, n in zip(self.cols, nulls, strict=True)
            },
            crosswalk_coverage=round(hits / rows_in, 6) if rows_in else 0.0,
            crosswalk_items=items,
            anomalies=anomalies,
            outputs={k.split(".")[0]: str(v) for k, v in final.items()},
            seconds=round(time.perf_counter() - self.started, 3),
        )
        tmp["quality_report.json"].write_text(report.model_dump_json(indent=2) + "\n")
        return report


def _cast(expr: str, source: str, target: str) -> str:
    """Convert `expr` (of DuckDB type `source`) to `target`; anything unreadable -> NULL."""
    if source == target:
        out = expr
    elif target == "VARCHAR":
        out = f"CAST({expr} AS VARCHAR)"
    elif target == "BIGINT" and source in _INTEGER_TYPES:
        out = f"TRY_CAST({expr} AS BIGINT)"
    elif target == "BIGINT":
        # Through DOUBLE so that '2.5' is rejected rather than rounded to 3.
        d = f"TRY_CAST({expr} AS DOUBLE)"
        out = f"(CASE WHEN {d} = trunc({d}) THEN TRY_CAST({d} AS BIGINT) END)"
    elif target == "DOUBLE":
        d = expr if source == "DOUBLE" else f"TRY_CAST({expr} AS DOUBLE)"
        out = f"(CASE WHEN isfinite({d}) THEN {d} END)"
    elif target == "TIMESTAMP" and source in ("VARCHAR", "TIMESTAMP WITH TIME ZONE"):
        # Text with an offset must honour it; text without one is taken as UTC.
        tz = expr if source != "VARCHAR" else f"TRY_CAST({expr} AS TIMESTAMPTZ)"
        out = f"timezone('UTC', {tz})"
    else:
        out = f"TRY_CAST({expr} AS {target})"
    if target == "DOUBLE" and source == "DOUBLE":
        return out
    return f"try({out})"


def _blank(col: str, type_: str) -> str:
    """SQL: NULL, or text that is empty or only spaces (trim only runs on rare candidates)."""
    if type_ != "VARCHAR":
        return f"({col} IS NULL)"
    return f"({col} IS NULL OR {col} = '' OR ({col} < '!' AND trim({col}) = ''))"


def _csv_problem(path: Path, delimiter: str) -> str | None:
    """Name the first malformed line of a CSV that DuckDB refused (only on that error path)."""
    import csv

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


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


@contextmanager
def _staging(out: Path) -> Iterator[dict[str, Path]]:
    """Temp paths for the outputs, renamed over the real ones only if the block succeeds."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputDataError(f"cannot create output folder {out}: {err}") from None
    token = uuid.uuid4().hex[:8]
    tmp = {name: out / f".{name}.{token}.tmp" for name in OUTPUT_FILES}
    try:
        yield tmp
        for name, path in tmp.items():
            os.replace(path, out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
