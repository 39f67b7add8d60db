"""Apply a retailer mapping to its native export with DuckDB: RMIS events, quarantine, report.

Every row is read once into DuckDB and mapped with one vectorized query; rows failing a rule
go to quarantine with the first failing rule (order: `ANOMALY_KINDS`). Outputs are written to
temporary files and renamed into place only when all of them succeeded. A network's report
(Excel, preamble, totals row) is first read into a plain table (`tools.harmonize.layout`); an
item crosswalk may come from the catalog's brands' products files (`from_products`).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tools.catalog import Catalog, current, load_catalog
from tools.errors import InputDataError, MappingError, RMNError, UnknownRetailerError
from tools.firstparty import load_brand_data
from tools.harmonize.cleanroom_export import ingest_export
from tools.harmonize.fields import FieldSQL, blank_sql, chain, native_id_sql
from tools.harmonize.inputs import (
    NativeReader,
    find_files,
    first_line,
    read_manifest,
    require_columns,
)
from tools.harmonize.layout import ReportTable, read_report
from tools.harmonize.mapping import ANOMALY_KINDS, Mapping, load_mapping
from tools.harmonize.report import Anomaly, QualityReport
from tools.harmonize.transforms import GTIN14_OK_SQL, sql_ident, sql_literal
from tools.rmis import EVENT_COLUMNS

OUTPUT_FILES = ("events.parquet", "quarantine.parquet", "quality_report.json")
EXAMPLES = 5
# Native columns the quarantine adds to each row it keeps.
QUARANTINE_COLUMNS = ("reason", "native_id", "source_row")


def _catalog(catalog_dir: str | Path | None) -> Catalog:
    return load_catalog(Path(catalog_dir)) if catalog_dir is not None else current()


def harmonize_retailer(
    retailer: str | None,
    in_dir: str | Path,
    out_dir: str | Path,
    mapping_path: str | Path | None = None,
    *,
    threads: int | None = None,
    catalog_dir: str | Path | None = None,
) -> QualityReport:
    """Harmonize one retailer's export in `in_dir` into `out_dir/<retailer>/`.

    `retailer` picks the catalog's mapping (the catalog at `catalog_dir`, default the one in
    force); `mapping_path` uses a YAML file instead (its retailer must match `retailer` when
    both are given).
    """
    started = time.perf_counter()
    catalog = _catalog(catalog_dir)
    if mapping_path is not None:
        mapping = load_mapping(Path(mapping_path))
        if retailer and mapping.retailer != retailer:
            raise MappingError(
                f"{mapping.path} maps retailer {mapping.retailer!r}, not {retailer!r}",
                file=mapping.path,
            )
    elif retailer:
        if retailer not in catalog.retailers:
            raise UnknownRetailerError(
                f"unknown retailer {retailer!r}; known mappings: "
                f"{', '.join(catalog.retailers) or '(none)'} (catalog {catalog.root}; or pass a "
                "mapping file with --mapping)",
                retailer=retailer,
                known=list(catalog.retailers),
            )
        mapping = load_mapping(catalog.retailers[retailer].mapping_path)
    else:
        raise MappingError("give a retailer or a mapping file")
    return _Run(mapping, Path(in_dir), Path(out_dir), threads, started, catalog).execute()


def find_exports(in_root: str | Path, catalog_dir: str | Path | None = None) -> list[str]:
    """Retailers of the catalog whose export folder exists under `in_root`."""
    root = Path(in_root)
    if not root.is_dir():
        raise InputDataError(f"input folder not found: {root}", path=str(root))
    return [r for r in _catalog(catalog_dir).retailers if (root / r).is_dir()]


def harmonize_all(
    in_root: str | Path,
    out_dir: str | Path,
    *,
    threads: int | None = None,
    workers: int = 2,
    catalog_dir: str | Path | None = None,
    retailers: list[str] | None = None,
) -> list[QualityReport]:
    """Harmonize every retailer found under `in_root` (one sub-folder per retailer), or
    only `retailers`, with the mappings of the catalog at `catalog_dir` (default: the one in
    force, resolved here: the workers are threads and do not inherit it).

    `workers` retailers run at once: each query already uses all cores, but overlapping two
    retailers fills the gaps between and inside queries (about a third faster on 2 cores).
    A retailer that fails does not stop the others; the first error is raised at the end.
    """
    catalog = _catalog(catalog_dir)
    found = find_exports(in_root, catalog.root)
    todo = [r for r in found if retailers is None or r in retailers]
    if not todo:
        raise InputDataError(
            f"no retailer export folders under {in_root}; expected one of: "
            + ", ".join(retailers or list(catalog.retailers)),
            path=str(in_root),
        )

    def one(retailer: str) -> QualityReport | RMNError:
        try:
            return harmonize_retailer(
                retailer,
                Path(in_root) / retailer,
                out_dir,
                threads=threads,
                catalog_dir=catalog.root,
            )
        except RMNError as err:
            return err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(one, todo))
    for result in results:
        if isinstance(result, RMNError):
            raise result
    return [r for r in results if isinstance(r, QualityReport)]


class _Run:
    """State of one harmonization; `execute` is the whole pipeline."""

    def __init__(
        self,
        mapping: Mapping,
        in_dir: Path,
        out_dir: Path,
        threads: int | None,
        started: float,
        catalog: Catalog,
    ) -> None:
        self.m = mapping
        self.in_dir = in_dir
        self.out = out_dir / mapping.retailer
        self.threads = threads
        self.started = started
        self.catalog = catalog
        self.csv_delimiter: dict[Path, str] = {}
        self.layout: ReportTable | None = None
        self.tmp = Path(".")

    def _files(self, pattern: str, key: str, fmt: str, delimiter: str) -> list[Path]:
        found = find_files(self.m, self.in_dir, pattern, key)
        if fmt == "csv":
            self.csv_delimiter.update(dict.fromkeys(found, delimiter))
        return found

    def execute(self) -> QualityReport:
        if not self.in_dir.is_dir():
            raise InputDataError(f"input folder not found: {self.in_dir}", path=str(self.in_dir))
        src = self.m.source
        xw = self.m.crosswalk
        if src.manifest is not None:
            exported_at = read_manifest(self.m, self.in_dir)
        else:  # a report downloaded from a portal: nothing can be dated after now
            exported_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        sources = self._files(src.file, "source.file", src.format, src.delimiter)
        with tempfile.TemporaryDirectory(prefix="rmn-harmonize-") as scratch:
            self.tmp = Path(scratch)
            if src.report_layout:
                self.layout = read_report(self.m, sources, self.tmp / "report.parquet")
            if xw.from_products:
                xw_files = [self._products_crosswalk()]
            else:
                assert xw.file is not None
                xw_files = self._files(xw.file, "crosswalk.file", xw.format, xw.delimiter)
            return self._connected(exported_at, sources, xw_files)

    def _products_crosswalk(self) -> Path:
        """The item ids the catalog's brands list for this retailer (products files, checked
        first: a bad one stops the run) as a crosswalk table with each item's brand."""
        rows: dict[str, list[str]] = {"item_id": [], "gtin": [], "brand_id": []}
        sources = []
        for brand in self.catalog.brands.values():
            if self.m.retailer not in brand.retailers:
                continue
            data = load_brand_data(brand)
            at = data.products[data.products["retailer_id"] == self.m.retailer]
            rows["item_id"] += at["item_id"].astype(str).tolist()
            rows["gtin"] += at["gtin"].tolist()
            rows["brand_id"] += [brand.id] * len(at)
            sources.append(data.files.get("products", str(brand.folder)))
        if not rows["item_id"]:
            raise InputDataError(
                f"no brand in {self.catalog.root} lists item ids at {self.m.retailer} "
                f"(mapping {self.m.path}, crosswalk.from_products): add retailer_id and item_id "
                "columns to a brand's products file",
                retailer=self.m.retailer,
            )
        path = self.tmp / "crosswalk.parquet"
        pq.write_table(pa.table(rows), path)
        self.products_files = sources
        return path

    def _connected(
        self, exported_at: datetime, sources: list[Path], xw_files: list[Path]
    ) -> QualityReport:
        self.con = duckdb.connect(":memory:")
        try:
            self.con.execute("SET TimeZone = 'UTC'")
            if self.threads:
                self.con.execute(f"SET threads = {int(self.threads)}")
            with _staging(self.out) as tmp:
                report = self._run(exported_at, sources, xw_files, tmp)
            if self.m.cleanroom_export is not None:
                meta = ingest_export(
                    self.m.retailer, self.m.cleanroom_export, self.in_dir, self.out.parent
                )
                report = report.model_copy(update={"cleanroom_export": meta.model_dump()})
                (self.out / "quality_report.json").write_text(
                    report.model_dump_json(indent=2) + "\n"
                )
            return report
        except duckdb.Error as err:
            raise InputDataError(
                f"{self.m.retailer}: could not harmonize {sources[0]}: {first_line(err)}",
                file=str(sources[0]),
            ) from None
        finally:
            self.con.close()

    def _run(
        self, exported_at: datetime, sources: list[Path], xw_files: list[Path], tmp: dict[str, Path]
    ) -> QualityReport:
        cols = self._load(sources, xw_files)
        (rows,) = self.con.execute("SELECT count(*) FROM raw").fetchone() or (0,)
        sql = FieldSQL(self.con, self.m, cols, rows)
        f = sql.typed_fields()
        sql.join_key = f[self.m.crosswalk.join_field]
        self._stage(sql, f, exported_at)
        self._write(tmp)
        report = self._report(cols, exported_at, sources, xw_files)
        tmp["quality_report.json"].write_text(report.model_dump_json(indent=2) + "\n")
        return report

    def _load(self, sources: list[Path], xw_files: list[Path]) -> dict[str, str]:
        """Read the export into the `raw` table and the crosswalk into `xw` (key, GTIN,
        whether the GTIN is valid); returns the native columns and their types."""
        con, m = self.con, self.m
        read = NativeReader(con, self.csv_delimiter)
        if self.layout is not None:
            reader = read.reader("parquet", [self.layout.path], ",")
        else:
            reader = read.reader(m.source.format, sources, m.source.delimiter)
        cols = read.columns(reader, sources)
        require_columns(
            m,
            cols,
            {c: f"fields.{n}" for n, s in m.fields.items() for c in s.native_columns},
            sources,
        )
        for reserved in QUARANTINE_COLUMNS:
            if reserved in cols:
                raise InputDataError(
                    f"{sources[0]}: native column {reserved!r} clashes with the quarantine's "
                    f"own column of that name",
                    file=str(sources[0]),
                )
        xw = m.crosswalk
        xw_fmt = "parquet" if xw.from_products else xw.format
        xw_reader = read.reader(xw_fmt, xw_files, xw.delimiter)
        require_columns(
            m,
            read.columns(xw_reader, xw_files),
            {xw.key: "crosswalk.key", xw.gtin: "crosswalk.gtin"},
            xw_files,
        )
        brand = "any_value(brand_id)" if xw.from_products else "NULL"

        # Parsed once into a table whose rowid is the file order (insertion order is kept).
        read.rows(f"CREATE TEMP TABLE raw AS SELECT * FROM {reader}", sources)
        # Later steps carry that order explicitly and may reorder freely (faster joins).
        con.execute("SET preserve_insertion_order = false")
        key = chain(f"CAST({sql_ident(xw.key)} AS VARCHAR)", xw.key_transforms)
        gtin = chain(f"CAST({sql_ident(xw.gtin)} AS VARCHAR)", xw.gtin_transforms)
        read.rows(
            f"""CREATE TEMP TABLE xw AS
            SELECT __key, __gtin, {GTIN14_OK_SQL.format(x="__gtin")} AS __gtin_ok, __n, __brand
            FROM (SELECT try(CAST({key} AS VARCHAR)) AS __key,
                         any_value(try(CAST({gtin} AS VARCHAR))) AS __gtin,
                         count(DISTINCT try(CAST({gtin} AS VARCHAR))) AS __n,
                         CAST({brand} AS VARCHAR) AS __brand
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
        return cols

    def _stage(self, sql: FieldSQL, f: dict[str, str], exported_at: datetime) -> None:
        """The `staged` table: per raw row, its RMIS fields and the first rule it fails."""
        con = self.con
        refs = {n: sql_ident("__f_" + n) for n in EVENT_COLUMNS}
        by_kind = sql.conditions(refs, exported_at)

        # Duplicates are the one rule that looks across rows: the first copy (in file order)
        # goes through the other rules, later copies are quarantined as duplicate_row.
        dup, dup_join = "false", ""
        if sql.unique_fields:
            keys = [f[n] for n in sql.unique_fields]
            con.execute(
                f"""CREATE TEMP TABLE dups AS
                SELECT {", ".join(f"{k} AS __k{i}" for i, k in enumerate(keys))},
                       min(r.rowid) AS __first
                FROM raw r {sql.joins(needed=" ".join(keys))}
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
        native = native_id_sql(self.m)
        inner = ", ".join(
            [f"{f[n]} AS {refs[n]}" for n in EVENT_COLUMNS]
            + [f"{expr} AS {ref}" for ref, expr in sql.presence.items()]
        )
        # Fields are computed once in the inner query; the rules only read them.
        con.execute(
            f"""CREATE TEMP TABLE staged AS
            SELECT __row, __native, NOT __xmiss AS __xhit, {", ".join(refs.values())},
                   CASE {reason} END AS __reason
            FROM (SELECT r.rowid AS __row, {native} AS __native, x.__key IS NULL AS __xmiss,
                         x.__gtin_ok AS __gtin_ok, {dup} AS __dup, {inner}
                  FROM raw r {sql.joins()} {dup_join})"""
        )

    def _write(self, tmp: dict[str, Path]) -> None:
        """Events (rows that passed, RMIS types) and quarantine (rows that failed, native
        columns as read plus why), both in file order."""
        events = ", ".join(
            f"CAST({sql_ident('__f_' + n)} AS {t}) AS {sql_ident(n)}"
            for n, t in EVENT_COLUMNS.items()
        )
        self.con.execute(
            f"COPY (SELECT {events} FROM staged WHERE __reason IS NULL ORDER BY __row) "
            f"TO {sql_literal(str(tmp['events.parquet']))} (FORMAT parquet)"
        )
        self.con.execute(
            f"""COPY (SELECT r.*, s.__reason AS reason, s.__native AS native_id,
                   s.__row + 1 AS source_row
                FROM raw r JOIN (SELECT * FROM staged WHERE __reason IS NOT NULL) s
                ON r.rowid = s.__row ORDER BY s.__row)
            TO {sql_literal(str(tmp["quarantine.parquet"]))} (FORMAT parquet)"""
        )

    def _report(
        self,
        cols: dict[str, str],
        exported_at: datetime,
        sources: list[Path],
        xw_files: list[Path],
    ) -> QualityReport:
        con = self.con
        blanks = ", ".join(
            f"sum(CASE WHEN {blank_sql(sql_ident(c), t)} THEN 1 ELSE 0 END)"
            for c, t in cols.items()
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
        return QualityReport(
            retailer=self.m.retailer,
            mapping=self.m.path,
            exported_at=exported_at.isoformat() + "Z",
            source_files=[str(p) for p in sources],
            crosswalk_file=(
                ", ".join(getattr(self, "products_files", []))
                if self.m.crosswalk.from_products
                else str(xw_files[0])
            ),
            grain=self.m.grain,
            header_rows=self.layout.header_rows if self.layout is not None else {},
            footer_rows_dropped=self.layout.footer_rows if self.layout is not None else 0,
            rows_in=rows_in,
            rows_out=rows_out,
            rows_quarantined=rows_in - rows_out,
            null_rates={
                c: round(int(n or 0) / rows_in, 6) if rows_in else 0.0
                for c, n in zip(cols, nulls, strict=True)
            },
            crosswalk_coverage=round(hits / rows_in, 6) if rows_in else 0.0,
            crosswalk_items=items,
            anomalies=anomalies,
            outputs={k.split(".")[0]: str(v) for k, v in final.items()},
            seconds=round(time.perf_counter() - self.started, 3),
        )


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
