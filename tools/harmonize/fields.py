"""SQL for a mapping's fields and rules over the raw table of one native export.

Every RMIS field becomes one DuckDB expression of exactly its `EVENT_COLUMNS` type (NULL
where a value cannot be read), built from the native column, a constant, another field or
the crosswalk, then the mapping's transforms and value map; costly conversions are looked up
once per distinct native value. Every rule becomes conditions that put a row under its
anomaly kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from tools.errors import MappingError
from tools.harmonize.inputs import first_line
from tools.harmonize.mapping import ANOMALY_KINDS, OPTIONAL_FIELDS, Mapping
from tools.harmonize.transforms import GTIN14_OK_SQL, TRANSFORMS, sql_ident, sql_literal
from tools.rmis import EVENT_COLUMNS

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}


def chain(expr: str, calls: list[Any]) -> str:
    """`expr` through the transforms `calls`, in order."""
    for call in calls:
        expr = TRANSFORMS[call.name].render(expr, call.args)
    return expr


class FieldSQL:
    """The field expressions and rule conditions of one mapping over the `raw` table (alias
    `r`, native columns `cols`) on connection `con`, with the crosswalk table `xw` (alias
    `x`) and the lookup tables it creates joined in."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, mapping: Mapping, cols: dict[str, str], rows: int
    ) -> None:
        self.con = con
        self.m = mapping
        self.cols = cols
        self.rows = rows
        self.lookups: list[tuple[str, str]] = []
        self.join_key = "NULL"
        self.presence: dict[str, str] = {}
        self.unique_fields: list[str] = []

    def raw_expr(self, name: str, typed: dict[str, str], base: str | None = None) -> str:
        spec = self.m.fields[name]
        if spec.column is not None:
            expr = base or f"r.{sql_ident(spec.column)}"
        elif spec.columns is not None:
            expr = joined_columns_sql(spec.columns)
        elif spec.field is not None:
            expr = typed[spec.field]
        elif spec.crosswalk:
            expr = "x.__brand" if name == "brand_id" else "x.__gtin"
        else:
            expr = "NULL" if spec.value is None else sql_literal(str(spec.value))
        expr = chain(expr, spec.transforms)
        if spec.map is not None:
            cases = " ".join(
                f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in spec.map.items()
            )
            expr = f"(CASE CAST({expr} AS VARCHAR) {cases} END)"
        return expr

    def typed_fields(self) -> dict[str, str]:
        """RMIS field -> SQL expression of exactly its EVENT_COLUMNS type (NULL if unreadable)."""
        typed: dict[str, str] = {}
        base = [n for n, s in self.m.fields.items() if s.source != "field"]
        derived = [n for n, s in self.m.fields.items() if s.source == "field"]
        # Derived fields build on the typed expressions of the fields they name.
        for batch in (base, derived):
            raw = {n: self.raw_expr(n, typed) for n in batch}
            types = self.bind_types(raw) if raw else {}
            for n in batch:
                typed[n] = cast_sql(raw[n], types[n], EVENT_COLUMNS[n])
                spec = self.m.fields[n]
                if spec.column and any(TRANSFORMS[c.name].memo for c in spec.transforms):
                    memo = cast_sql(self.raw_expr(n, typed, base="__k"), types[n], EVENT_COLUMNS[n])
                    typed[n] = self.lookup(spec.column, memo, typed[n])
        return typed

    def lookup(self, column: str, expr: str, inline: str) -> str:
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

    def joins(self, on_false: bool = False, needed: str | None = None) -> str:
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

    def bind_types(self, exprs: dict[str, str]) -> dict[str, str]:
        """DuckDB type of each expression; one that does not fit its native column is a
        mapping error naming the field."""

        def describe(items: dict[str, str]) -> list[tuple[Any, ...]]:
            # Prefixed aliases: identifiers are case-insensitive, so a native IMPRESSIONS
            # column would otherwise lend its spelling to an `impressions` alias.
            select = ", ".join(f"{e} AS {sql_ident('__t_' + n)}" for n, e in items.items())
            return self.con.execute(
                f"DESCRIBE SELECT {select} FROM raw r {self.joins(on_false=True)}"
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
                        f"{first_line(err)}",
                        file=self.m.path,
                        field=name,
                    ) from None
            raise

    def present(self, name: str) -> str:
        """Column (of the inner staging query) telling whether the native value behind a field
        is there: not NULL, not blank text."""
        spec = self.m.fields[name]
        if spec.field is not None:
            return self.present(spec.field)
        if spec.crosswalk:
            return self.present(self.m.crosswalk.join_field)
        if spec.columns is not None:
            parts = []
            for column in spec.columns:
                ref = f"__p_{list(self.cols).index(column)}"
                col = f"r.{sql_ident(column)}"
                self.presence[ref] = f"(NOT {blank_sql(col, self.cols[column])})"
                parts.append(ref)
            return "(" + " AND ".join(parts) + ")"
        if spec.column is None:
            return "false" if spec.value is None else "true"
        ref = f"__p_{list(self.cols).index(spec.column)}"
        col = f"r.{sql_ident(spec.column)}"
        self.presence[ref] = f"(NOT {blank_sql(col, self.cols[spec.column])})"
        return ref

    def conditions(self, f: dict[str, str], exported_at: datetime) -> dict[str, list[str]]:
        """Anomaly kind -> SQL conditions that put a row there, over the columns of the inner
        staging query: fields `f`, presence flags, `__xmiss`, `__gtin_ok`, `__dup`."""
        by_kind: dict[str, list[str]] = {k: [] for k in ANOMALY_KINDS}
        self.unique_fields = []
        stamp = f"TIMESTAMP {sql_literal(exported_at.isoformat(sep=' '))}"
        column_fields = [n for n in self.m.required_fields() if self.m.fields[n].source == "column"]
        for rule in self.m.rules:
            target = rule.field or ""
            if rule.check == "unique":
                self.unique_fields = rule.targets()  # see the dups table in the engine
                continue
            if rule.check == "not_null":
                cond = " OR ".join(f"NOT {self.present(n)}" for n in rule.fields or column_fields)
            elif rule.check == "non_negative":
                cond = " OR ".join(f"{f[n]} < 0" for n in rule.targets())
            elif rule.check == "not_after_export":
                cond = f"{f[target]} > {stamp}"
            elif rule.check == "known_value":
                cond = f"({self.present(target)} AND {f[target]} IS NULL)"
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
                by_kind["invalid_value"].append(f"({f[name]} IS NULL AND {self.present(name)})")
            else:
                by_kind["invalid_value"].append(f"({f[name]} IS NULL)")
        return by_kind


def joined_columns_sql(columns: list[str]) -> str:
    """Several native columns as one text key, joined with '|' (a day-level report's rows are
    keyed by date, campaign and item)."""
    return (
        "concat_ws('|', " + ", ".join(f"CAST(r.{sql_ident(c)} AS VARCHAR)" for c in columns) + ")"
    )


def native_id_sql(mapping: Mapping) -> str:
    """The native row id the quarantine and anomaly examples show: the event_id's column(s)."""
    spec = mapping.fields["event_id"]
    if spec.columns is not None:
        return joined_columns_sql(spec.columns)
    return f"CAST(r.{sql_ident(str(spec.column))} AS VARCHAR)"


def cast_sql(expr: str, source: str, target: str) -> str:
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


def blank_sql(col: str, type_: str) -> str:
    """SQL: NULL, or text that is empty or only spaces (trim only runs on rare candidates)."""
    if type_ != "VARCHAR":
        return f"({col} IS NULL)"
    return f"({col} IS NULL OR {col} = '' OR ({col} < '!' AND trim({col}) = ''))"
