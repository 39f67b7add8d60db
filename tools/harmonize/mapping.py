"""Retailer mappings: the YAML that says how one retailer's native export becomes RMIS.

A mapping lives in the retailer's catalog folder (`<catalog>/retailers/<id>/mapping.yaml`).
Its header says who the retailer is (`tools.catalog.RetailerHeader`: name, aliases, time zone,
placements); the rest names the source files and how they are laid out (a network's report:
preamble lines, a totals row, Excel), how each RMIS column is computed (native column or
constant, transforms, value map, crosswalk lookup) and the validation rules. `load_mapping`
validates it and reports problems as `MappingError` with the file and line.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tools.catalog import MAPPING_FILE, current
from tools.catalog.yamlfile import line_for, line_index
from tools.errors import MappingError, UnknownRetailerError
from tools.harmonize.cleanroom_export import CleanRoomExportSpec
from tools.harmonize.transforms import TRANSFORMS
from tools.rmis import EVENT_COLUMNS, Placement, RMISEvent

# Anomaly kinds in the order rules are applied: a row failing several rules is quarantined
# under the first. `invalid_value` is the last resort for anything a transform could not read.
ANOMALY_KINDS: dict[str, str] = {
    "duplicate_row": "another row with the same native id came first",
    "null_required": "a required native value is missing or blank",
    "negative_cost": "spend is negative",
    "negative_value": "a count or amount other than spend is negative",
    "future_date": "event time is after the export's exported_at",
    "unknown_placement": "placement label not in the mapping's value map",
    "unknown_advertiser": "advertiser not in the mapping's value map",
    "clicks_gt_impressions": "more clicks than impressions",
    "unknown_item": "item id not in the item crosswalk",
    "invalid_gtin": "the crosswalk's GTIN is not a valid GTIN-14",
    "out_of_range": "a value outside its allowed range (e.g. viewability above 1)",
    "invalid_value": "a value that cannot be converted (not a number, not a time)",
}

Check = Literal[
    "unique",
    "not_null",
    "non_negative",
    "not_after_export",
    "known_value",
    "not_greater_than",
    "crosswalk_hit",
    "valid_gtin",
    "between",
]
DEFAULT_KIND: dict[str, str] = {
    "unique": "duplicate_row",
    "not_null": "null_required",
    "non_negative": "negative_value",
    "not_after_export": "future_date",
    "known_value": "invalid_value",
    "not_greater_than": "invalid_value",
    "crosswalk_hit": "unknown_item",
    "valid_gtin": "invalid_gtin",
    "between": "out_of_range",
}

# RMIS columns that may be NULL in events (all others are required).
OPTIONAL_FIELDS = frozenset(
    name for name, f in RMISEvent.model_fields.items() if not f.is_required()
)

_Strict = ConfigDict(extra="forbid")


class TransformCall(BaseModel):
    """One step of a field's transform chain: `trim`, or `{to_utc: America/Chicago}`."""

    model_config = _Strict
    name: str
    args: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            name, args = raw, {}
        elif isinstance(raw, dict) and len(raw) == 1 and "name" not in raw:
            [(name, given)] = raw.items()
            if isinstance(given, dict):
                args = given
            else:
                t = TRANSFORMS.get(name)
                if t is not None and not t.params:
                    raise ValueError(f"transform {name} takes no parameters; write just {name}")
                if t is not None and len(t.params) > 1:
                    raise ValueError(f"transform {name} takes {_params(name)}, as a mapping")
                args = {t.params[0] if t else "value": given}
        elif isinstance(raw, dict):
            return raw
        else:
            raise ValueError("a transform is a name (trim) or a one-key mapping ({to_utc: TZ})")
        if name not in TRANSFORMS:
            raise ValueError(
                f"unknown transform {name!r}; allowed: {', '.join(sorted(TRANSFORMS))}"
            )
        expected = set(TRANSFORMS[name].params)
        if set(args) != expected:
            raise ValueError(f"transform {name} takes {_params(name)}, got {sorted(args)}")
        if name == "to_utc":
            _check_timezone(str(args["tz"]))
        return {"name": name, "args": {k: str(v) for k, v in args.items()}}


def _params(name: str) -> str:
    params = TRANSFORMS[name].params
    return ", ".join(params) if params else "no parameters"


def _check_timezone(tz: str) -> None:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"unknown time zone {tz!r}; use an IANA name like America/Chicago"
        ) from err


class SourceSpec(BaseModel):
    """The native event file(s), and how a network's report is laid out. `file` may be a glob
    such as `events_*.csv`. Reports downloaded from a portal often carry a preamble above the
    header (`header_row_with` finds the header; `skip_rows` skips a fixed count) and a totals
    row at the bottom (`footer_pattern`: such rows are dropped and counted, never harmonized).
    Without a `manifest`, the export time is the time of the run."""

    model_config = _Strict
    format: Literal["csv", "jsonl", "parquet", "xlsx"]
    file: str
    delimiter: str = ","
    manifest: str | None = "export.json"
    sheet: str | None = Field(None, description="xlsx: the sheet to read (default: the first)")
    header_row_with: str | None = Field(
        None, description="the header is the first row with a cell equal to this text"
    )
    skip_rows: int = Field(0, ge=0, le=1000, description="rows above the header to skip")
    footer_pattern: str | None = Field(
        None, description="regex: a row whose first non-blank cell matches is a footer (totals)"
    )

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("delimiter must be a single character")
        return v

    @field_validator("footer_pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise ValueError(
                    f"footer_pattern is not a valid regular expression: {err}"
                ) from None
        return v

    @property
    def report_layout(self) -> bool:
        """Whether the file needs the report reader (Excel, a preamble or a footer)."""
        return (
            self.format == "xlsx"
            or self.header_row_with is not None
            or self.skip_rows > 0
            or self.footer_pattern is not None
        )


class CrosswalkSpec(BaseModel):
    """Retailer item id -> GTIN-14 table, joined on `join_field` (an RMIS field): a file in
    the export folder (`file`, `format`, `key`, `gtin`), or `from_products: true` for the
    item ids the catalog's brands list for this retailer in their products files
    (`retailer_id`, `item_id`, `gtin`; the brand of each item is then known as well)."""

    model_config = _Strict
    file: str | None = None
    format: Literal["csv", "jsonl", "parquet"] = "csv"
    delimiter: str = ","
    key: str = "item_id"
    gtin: str = "gtin"
    key_transforms: list[TransformCall] = Field(default_factory=list)
    gtin_transforms: list[TransformCall] = Field(default_factory=list)
    join_field: str = "retailer_item_id"
    from_products: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> CrosswalkSpec:
        if (self.file is None) == (not self.from_products):
            raise ValueError("give exactly one of file: NAME or from_products: true")
        return self


class FieldSpec(BaseModel):
    """How one RMIS column is computed: from exactly one of `column` (a native column),
    `columns` (several joined with '|': a day-level report's row key, e.g. date, campaign and
    item), `value` (a constant), `field` (another RMIS field) or `crosswalk: true` (the GTIN
    found for the join field; on brand_id, the brand that lists the item); then `transforms`
    in order, then `map` (label -> value)."""

    model_config = _Strict
    column: str | None = None
    columns: list[str] | None = Field(None, min_length=2)
    value: str | int | float | None = None
    field: str | None = None
    crosswalk: bool = False
    transforms: list[TransformCall] = Field(default_factory=list)
    map: dict[str, str] | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        # YAML reads unquoted 10001 as an int; labels are compared as text.
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [
            k
            for k in ("column", "columns", "value", "field", "crosswalk")
            if (k == "value" and "value" in self.model_fields_set)
            or (k == "crosswalk" and self.crosswalk)
            or (k not in ("value", "crosswalk") and getattr(self, k) is not None)
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of column, columns, value, field, crosswalk: true"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def native_columns(self) -> list[str]:
        """The native columns this field reads."""
        return [self.column] if self.column is not None else list(self.columns or [])

    @property
    def source(self) -> str:
        if self.column is not None or self.columns is not None:
            return "column"
        if self.field is not None:
            return "field"
        return "crosswalk" if self.crosswalk else "value"


class RuleSpec(BaseModel):
    """A validation rule; `kind` is the anomaly it reports (defaults by check)."""

    model_config = _Strict
    check: Check
    field: str | None = None
    fields: list[str] | None = None
    than: str | None = None
    min: float | None = None
    max: float | None = None
    kind: str | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str | None) -> str | None:
        if v is not None and v not in ANOMALY_KINDS:
            raise ValueError(f"unknown kind {v!r}; allowed: {', '.join(ANOMALY_KINDS)}")
        return v

    @property
    def anomaly(self) -> str:
        return self.kind or DEFAULT_KIND[self.check]

    def targets(self) -> list[str]:
        return list(self.fields or []) + ([self.field] if self.field else [])


class Mapping(BaseModel):
    """One retailer's mapping. `path` is where it was loaded from (for messages)."""

    model_config = _Strict
    retailer: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = ""
    # Who the retailer is: read by the catalog (`tools.catalog.RetailerHeader` checks them).
    aliases: list[str] = Field(default_factory=list)
    timezone: str | None = None
    placements: list[Placement] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    network: str | None = None
    # What one event is: a delivery record of one hour (the simulated networks) or one day x
    # line item (a network's day-level performance report).
    grain: Literal["hour", "day"] = "hour"
    source: SourceSpec
    crosswalk: CrosswalkSpec
    fields: dict[str, FieldSpec]
    rules: list[RuleSpec] = Field(default_factory=list)
    # Aggregates the retailer's own clean room produced: ingested as its clean-room view.
    cleanroom_export: CleanRoomExportSpec | None = None
    path: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        # Raised as MappingError (not ValueError) so it carries its own location in the YAML.
        missing = [c for c in EVENT_COLUMNS if c not in self.fields]
        if missing:
            raise _issue(("fields",), f"missing RMIS fields: {', '.join(missing)}")
        for name, spec in self.fields.items():
            where = ("fields", name)
            if name not in EVENT_COLUMNS:
                raise _issue(
                    where, f"unknown RMIS field {name!r}; allowed: {', '.join(EVENT_COLUMNS)}"
                )
            if spec.field is not None:
                ref = self.fields.get(spec.field)
                if ref is None or ref.source == "field":
                    raise _issue(
                        (*where, "field"),
                        f"field must name an RMIS field computed from a column, value or "
                        f"crosswalk, not {spec.field!r}",
                    )
            if spec.crosswalk and name not in ("gtin", "brand_id"):
                raise _issue(
                    (*where, "crosswalk"),
                    "crosswalk: true is only for the gtin and brand_id fields",
                )
            if spec.crosswalk and name == "brand_id" and not self.crosswalk.from_products:
                raise _issue(
                    (*where, "crosswalk"),
                    "brand_id: {crosswalk: true} needs crosswalk.from_products: true (the brand "
                    "that lists the item)",
                )
            if name == "placement" and spec.map is not None:
                allowed = {p.value for p in Placement}
                bad = [label for label, value in spec.map.items() if value not in allowed]
                if bad:
                    raise _issue(
                        (*where, "map", bad[0]),
                        f"{spec.map[bad[0]]!r} is not an RMIS placement; "
                        f"allowed: {', '.join(sorted(allowed))}",
                    )
        if not self.fields["event_id"].native_columns:
            raise _issue(
                ("fields", "event_id"),
                "event_id must come from the native id column (or `columns` that make a key)",
            )
        if not self.fields["gtin"].crosswalk:
            raise _issue(("fields", "gtin"), "gtin must be `crosswalk: true`")
        join = self.crosswalk.join_field
        if join not in self.fields or self.fields[join].source != "column":
            raise _issue(
                ("crosswalk", "join_field"), f"join_field {join!r} must be a column-sourced field"
            )
        for i, rule in enumerate(self.rules):
            where = ("rules", i)
            for target in [*rule.targets(), *([rule.than] if rule.than else [])]:
                if target not in self.fields:
                    raise _issue(where, f"rule names unknown field {target!r}")
            need_one = rule.check in (
                "unique",
                "not_after_export",
                "known_value",
                "not_greater_than",
                "crosswalk_hit",
                "valid_gtin",
                "between",
            )
            if need_one and (rule.field is None or rule.fields):
                raise _issue(where, f"check {rule.check} takes one `field`")
            if rule.check == "non_negative" and not rule.targets():
                raise _issue(where, "check non_negative needs `fields`")
            if rule.check == "not_greater_than" and rule.than is None:
                raise _issue(where, "check not_greater_than needs `than`")
            if rule.check == "between" and rule.min is None and rule.max is None:
                raise _issue(where, "check between needs `min` and/or `max`")
            if rule.check == "known_value" and self.fields[str(rule.field)].map is None:
                raise _issue(where, f"known_value needs a `map` on field {rule.field}")
        return self

    def required_fields(self) -> list[str]:
        return [c for c in EVENT_COLUMNS if c not in OPTIONAL_FIELDS]


def _issue(loc: tuple[Any, ...], message: str) -> MappingError:
    return MappingError(message, location=list(loc))


def available_retailers() -> list[str]:
    """Retailers of the catalog in force that have a mapping."""
    return list(current().retailers)


def load_mapping(retailer_or_path: str | Path) -> Mapping:
    """Load a catalog retailer's mapping by id, or any mapping YAML by path."""
    text = str(retailer_or_path)
    if isinstance(retailer_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(retailer_or_path)
        if not path.is_file():
            raise MappingError(f"mapping file not found: {path}", file=str(path))
    else:
        catalog = current()
        if text not in catalog.retailers:
            known = ", ".join(catalog.retailers) or "(none)"
            raise UnknownRetailerError(
                f"unknown retailer {text!r}; known mappings: {known} (catalog "
                f"{catalog.root}; or pass a mapping file with --mapping)",
                retailer=text,
                known=list(catalog.retailers),
            )
        path = catalog.retailers[text].folder / MAPPING_FILE
    return parse_mapping(path.read_text(encoding="utf-8"), str(path))


def parse_mapping(text: str, source: str = "<mapping>") -> Mapping:
    """Validate mapping YAML text; errors name `source` and the YAML line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        raise MappingError(
            f"{source}{f', line {line}' if line else ''}: not valid YAML: {problem}",
            file=source,
            line=line,
        ) from None
    if not isinstance(data, dict):
        raise MappingError(f"{source}: a mapping must be a YAML mapping (key: value)", file=source)
    lines = line_index(node)
    try:
        mapping = Mapping.model_validate({**data, "path": source})
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif first["type"] == "missing":
            msg = f"missing key {loc[-1]!r}"
        raise _located(source, lines, loc, msg, len(err.errors())) from None
    except MappingError as err:
        loc = tuple(err.detail.get("location", ()))
        raise _located(source, lines, loc, err.message, 1) from None
    return mapping


def _located(
    source: str, lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...], msg: str, n: int
) -> MappingError:
    line = line_for(lines, loc)
    dotted = ".".join(str(p) for p in loc if not re.match(r"^[a-z-]+\[", str(p)))
    more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
    return MappingError(
        f"{source}{f', line {line}' if line else ''}: {dotted or 'mapping'}: {msg}{more}",
        file=source,
        line=line,
        location=dotted,
    )
