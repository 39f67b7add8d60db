"""Clean-room queries: the request model, and the check that turns one into safe SQL.

A query names public fields only (`DIMENSIONS` and `METRICS` in `tools.policy.data_access`).
Metrics are summed by default; `avg:<metric>` asks for the per-event mean (`sum:<metric>` is the
explicit sum). `events` is the number of underlying event rows. Filters apply to dimensions only:
`=`, `!=` and `in` on every dimension, `<`, `<=`, `>`, `>=` and `between` on `date` and
`week` (ISO dates; `week` compares the Monday that starts the week).

A checked query (`Plan`) also names the dimensions it filters on: its answer is a sum of the
cells of the table grouped by its grouped and filtered dimensions together
(`Plan.fine_dimensions`), and is released only where those cells are (`tools.cleanroom.
aggregate`). A date filter that keeps or drops whole weeks (from a Monday, to a Sunday) counts
as a filter on `week`, so week cells are enough.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.errors import QueryRefusedError
from tools.policy.data_access import DIMENSIONS, METRICS, MIN_EPSILON, DataAccessRules
from tools.rmis import Placement, is_valid_gtin14

Op = Literal["=", "!=", "<", "<=", ">", ">=", "in", "between"]
AGGREGATES = ("sum", "avg")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_IN_VALUES = 1000
_RANGE_OPS = {"<", "<=", ">", ">=", "between"}
_DATE_DIMENSIONS = {"date", "week"}
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


def normalize_field(name: str) -> str:
    """Field names compare case-insensitively, with '-' and ' ' read as '_', so that a
    blocked field cannot slip through as 'Unit-Margin'."""
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def _scalar_text(v: Any) -> str:
    return v.isoformat() if isinstance(v, date) else str(v).strip()


class Filter(BaseModel):
    """One condition on a dimension, e.g. `Filter(field="date", op=">=", value="2026-08-01")`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: str | list[str] = Field(description="a list for 'in' and for 'between' (low, high)")

    @field_validator("field")
    @classmethod
    def _field(cls, v: str) -> str:
        return normalize_field(v)

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return [_scalar_text(x) for x in v]
        return _scalar_text(v) if isinstance(v, str | int | float | date) else v

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Read the command-line form: `date>=2026-08-01`, `placement=sponsored_search`,
        `geo in 501,602`, `date between 2026-08-01,2026-08-31`."""
        m = re.match(r"^\s*([A-Za-z_][\w -]*?)\s+(in|between)\s+(.+?)\s*$", text, re.IGNORECASE)
        if m:
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            return cls(field=m.group(1), op=m.group(2).lower(), value=values)  # type: ignore[arg-type]
        m = re.match(r"^\s*([A-Za-z_][\w -]*?)\s*(>=|<=|!=|=|<|>)\s*(.+?)\s*$", text)
        if m:
            return cls(field=m.group(1), op=m.group(2), value=m.group(3))  # type: ignore[arg-type]
        raise QueryRefusedError(
            f"cannot read filter {text!r}; write FIELD OP VALUE with OP one of "
            "=, !=, <, <=, >, >=, e.g. 'date>=2026-08-01', or 'geo in 501,602', "
            "or 'date between 2026-08-01,2026-08-31'",
            filter=text,
        )


class CleanRoomQuery(BaseModel):
    """An aggregate question a tenant (brand) asks about its campaigns at one retailer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(pattern=ID_PATTERN, description="brand id; only its rows are read")
    retailer: str = Field(pattern=ID_PATTERN)
    group_by: list[str] = Field(default_factory=list, description="dimensions; empty = one total")
    metrics: list[str] = Field(
        default_factory=lambda: ["events"], min_length=1, description="'spend', 'avg:spend', ..."
    )
    filters: list[Filter] = Field(default_factory=list)
    dp_epsilon: float | None = Field(
        default=None,
        ge=MIN_EPSILON,
        allow_inf_nan=False,
        description=f"spend this much privacy budget (at least {MIN_EPSILON:g})",
    )
    limit: int | None = Field(default=None, ge=1, description="at most this many rows")

    @field_validator("group_by", "metrics")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        return [normalize_field(x) for x in v if x.strip()]


def build_query(**fields: Any) -> CleanRoomQuery:
    """`CleanRoomQuery(**fields)`, with a malformed request reported as a refused query."""
    try:
        return CleanRoomQuery(**fields)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in err.errors()
        )
        raise QueryRefusedError(f"malformed clean-room query: {problems}") from None


@dataclass(frozen=True)
class MetricSpec:
    """One output column: `agg` of `base` (a METRICS name), shown as `output`."""

    base: str
    agg: Literal["sum", "avg", "count"]
    output: str


@dataclass(frozen=True)
class Plan:
    """A checked query: allow-listed dimensions and metrics, a parameterized WHERE and the
    dimensions it filters on."""

    dimensions: list[str]
    metrics: list[MetricSpec]
    where: list[str]
    params: list[Any]
    filtered: list[str]

    @property
    def fine_dimensions(self) -> list[str]:
        """The dimensions of the table whose cells every answer is a sum of: the grouped and
        the filtered ones (`date` stands for `week` when both are there: it is finer)."""
        dims = set(self.dimensions) | set(self.filtered)
        # In a fixed order, so that a table's suppression pattern never depends on the order
        # in which a query names its dimensions.
        return [d for d in DIMENSIONS if d in dims and not (d == "week" and "date" in dims)]

    @property
    def summed(self) -> list[str]:
        """Base metrics whose per-cell sum is needed (for `sum` and for `avg`)."""
        return list(dict.fromkeys(m.base for m in self.metrics if m.agg != "count"))

    @property
    def columns(self) -> list[str]:
        return self.dimensions + [m.output for m in self.metrics]


def _policy(retailer: str, rule: str, rules: DataAccessRules) -> str:
    return f"{retailer}'s data-access policy ({rule}; source: {rules.source})"


def _split_metric(text: str) -> tuple[str, str | None]:
    if ":" in text:
        agg, _, base = text.partition(":")
        return normalize_field(base), agg
    return text, None


def check_query(q: CleanRoomQuery, rules: DataAccessRules) -> Plan:
    """Refuse anything the rules do not allow, else return the plan to run.

    Blocked fields are checked first and everywhere (group_by, metrics, filters), so that the
    refusal names the rule rather than calling the field unknown."""
    metric_parts = [(m, *_split_metric(m)) for m in q.metrics]
    used = (
        [("group_by", f) for f in q.group_by]
        + [("metrics", base) for _, base, _ in metric_parts]
        + [("filters", f.field) for f in q.filters]
    )
    blocked = set(rules.blocked_fields)
    for where, name in used:
        if name in blocked:
            raise QueryRefusedError(
                f"field '{name}' is blocked by {_policy(q.retailer, 'blocked_fields', rules)}; "
                f"it may not appear in a query (found in {where})",
                field=name,
                rule="blocked_fields",
                source=rules.source,
                found_in=where,
            )

    dimensions = list(dict.fromkeys(_dimension(d, q.retailer, rules) for d in q.group_by))

    specs: dict[str, MetricSpec] = {}
    for text, base, agg in metric_parts:
        spec = _metric(text, base, agg, q.retailer, rules)
        specs.setdefault(spec.output, spec)

    where: list[str] = []
    params: list[Any] = []
    filtered: list[str] = []
    for f in q.filters:
        clause, values = _filter_sql(f, q.retailer, rules)
        where.append(clause)
        params.extend(values)
        filtered.append(
            "week" if f.field == "date" and _keeps_whole_weeks(f.op, values) else f.field
        )
    return Plan(dimensions, list(specs.values()), where, params, list(dict.fromkeys(filtered)))


def _keeps_whole_weeks(op: str, values: list[Any]) -> bool:
    """Whether a date filter keeps or drops whole weeks (Monday to Sunday): then its answer
    is a sum of week cells, not day cells, and only those need to be releasable."""
    monday, sunday = 0, 6
    if op in (">=", "<"):
        return values[0].weekday() == monday
    if op in (">", "<="):
        return values[0].weekday() == sunday
    if op == "between":
        return values[0].weekday() == monday and values[1].weekday() == sunday
    return False


def _dimension(name: str, retailer: str, rules: DataAccessRules) -> str:
    allowed = [d for d in rules.allowed_dimensions if d not in rules.blocked_fields]
    if name not in DIMENSIONS:
        raise QueryRefusedError(
            f"unknown dimension '{name}'; allowed dimensions: {', '.join(allowed)}",
            field=name,
            allowed=allowed,
        )
    if name not in allowed:
        raise QueryRefusedError(
            f"dimension '{name}' is not allowed by "
            f"{_policy(retailer, 'allowed_dimensions', rules)}; allowed: {', '.join(allowed)}",
            field=name,
            rule="allowed_dimensions",
            source=rules.source,
            allowed=allowed,
        )
    return name


def _metric(
    text: str, base: str, agg: str | None, retailer: str, rules: DataAccessRules
) -> MetricSpec:
    allowed = [m for m in rules.allowed_metrics if m not in rules.blocked_fields]
    if base not in METRICS:
        raise QueryRefusedError(
            f"unknown metric '{base}'; allowed metrics: {', '.join(allowed)} "
            "(summed; prefix 'avg:' for the per-event mean)",
            field=base,
            allowed=allowed,
        )
    if base not in allowed:
        raise QueryRefusedError(
            f"metric '{base}' is not allowed by {_policy(retailer, 'allowed_metrics', rules)}; "
            f"allowed: {', '.join(allowed)}",
            field=base,
            rule="allowed_metrics",
            source=rules.source,
            allowed=allowed,
        )
    if agg is not None and agg not in AGGREGATES:
        raise QueryRefusedError(
            f"unknown aggregate '{agg}' in '{text}'; use {' or '.join(AGGREGATES)}",
            field=base,
        )
    if base == "events":
        if agg == "avg":
            raise QueryRefusedError("'events' is a count; 'avg:events' is not defined")
        return MetricSpec("events", "count", "events")
    if agg == "avg":
        return MetricSpec(base, "avg", f"avg_{base}")
    return MetricSpec(base, "sum", base)


def _filter_sql(f: Filter, retailer: str, rules: DataAccessRules) -> tuple[str, list[Any]]:
    name = _dimension(f.field, retailer, rules)
    expr = DIMENSIONS[name]
    if f.op in _RANGE_OPS and name not in _DATE_DIMENSIONS:
        raise QueryRefusedError(
            f"filter on '{name}' cannot use '{f.op}'; ranges apply to date and week only "
            "(use =, != or in)",
            field=name,
        )
    if f.op in ("in", "between"):
        values = f.value if isinstance(f.value, list) else [f.value]
        if f.op == "between" and len(values) != 2:
            raise QueryRefusedError(
                f"'{name} between' takes two values (low, high), got {len(values)}", field=name
            )
        if f.op == "in" and not 1 <= len(values) <= MAX_IN_VALUES:
            raise QueryRefusedError(
                f"'{name} in' takes 1 to {MAX_IN_VALUES} values, got {len(values)}", field=name
            )
        parsed = [_value(name, v) for v in values]
        if f.op == "between":
            if parsed[0] > parsed[1]:
                raise QueryRefusedError(
                    f"'{name} between {values[0]},{values[1]}': low is after high", field=name
                )
            return f"{expr} BETWEEN ? AND ?", parsed
        return f"{expr} IN ({', '.join('?' for _ in parsed)})", parsed
    if isinstance(f.value, list):
        raise QueryRefusedError(
            f"filter '{name} {f.op}' takes one value, got a list; use 'in' for several",
            field=name,
        )
    return f"{expr} {f.op} ?", [_value(name, f.value)]


def _value(name: str, text: str) -> Any:
    """Check a filter value against its dimension and return it typed for the SQL parameter."""
    if name in _DATE_DIMENSIONS:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise QueryRefusedError(
                f"filter on '{name}' needs an ISO date (YYYY-MM-DD), got {text!r}", field=name
            ) from None
    if name == "placement":
        known = [p.value for p in Placement]
        if text not in known:
            raise QueryRefusedError(
                f"unknown placement {text!r}; placements: {', '.join(known)}", field=name
            )
        return text
    if name == "sku" and not is_valid_gtin14(text):
        raise QueryRefusedError(
            f"filter on 'sku' needs a GTIN-14 with a valid check digit, got {text!r}", field=name
        )
    if not _TOKEN.match(text):
        raise QueryRefusedError(f"filter on '{name}' got a malformed id {text!r}", field=name)
    return text
