"""The transforms a mapping may apply to a value: a small registry of DuckDB SQL templates.

Each template receives the incoming SQL expression as `{x}` and its parameters as SQL string
literals. Templates never raise on bad values: a value that cannot be converted becomes NULL,
and the engine quarantines the row (reason `invalid_value` or a more specific rule).
Adding a transform means adding one entry to `TRANSFORMS`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Text forms of the incoming value; most templates start from one of these.
_TEXT = "CAST({x} AS VARCHAR)"
_DIGITS = "regexp_full_match(trim(CAST({x} AS VARCHAR)), '[0-9]{{1,{n}}}')"


@dataclass(frozen=True)
class Transform:
    name: str
    sql: str
    doc: str
    params: tuple[str, ...] = ()
    # Costly per value (time-zone rules): the engine evaluates it once per distinct value.
    memo: bool = False

    def render(self, x: str, args: dict[str, str]) -> str:
        return self.sql.format(x=x, **{k: sql_literal(v) for k, v in args.items()})


def _gtin_pad(n: int, lead: str) -> str:
    """Pad a UPC/EAN (possibly stored as a number, which drops leading zeros) to GTIN-14."""
    digits = _DIGITS.replace("{n}", str(n))
    return f"CASE WHEN {digits} THEN '{lead}' || lpad(trim(CAST({{x}} AS VARCHAR)), {n}, '0') END"


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in [
        # Only rows that have a leading or trailing space pay for building a new string.
        Transform(
            "trim",
            f"CASE WHEN {_TEXT} < '!' OR ends_with({_TEXT}, ' ') THEN trim({_TEXT}) "
            f"ELSE {_TEXT} END",
            "strip surrounding spaces",
        ),
        Transform("lower", f"lower({_TEXT})", "lower-case text"),
        Transform("upper", f"upper({_TEXT})", "upper-case text"),
        Transform("to_text", _TEXT, "the value as text (e.g. an integer id)"),
        Transform("prefix", f"({{value}} || {_TEXT})", "prepend text", ("value",)),
        Transform(
            "strip_prefix",
            f"CASE WHEN starts_with({_TEXT}, {{value}}) "
            f"THEN substr({_TEXT}, length({{value}}) + 1) ELSE {_TEXT} END",
            "remove a leading text such as 'DMA-' when present",
            ("value",),
        ),
        Transform(
            "cents_to_dollars",
            "(TRY_CAST({x} AS DOUBLE) / 100.0)",
            "integer cents -> dollars",
        ),
        Transform(
            "parse_money",
            "TRY_CAST(replace(replace(replace(trim(CAST({x} AS VARCHAR)), '$', ''), ',', ''), "
            "' ', '') AS DOUBLE)",
            "money text like '$1,234.56' or '-$3.10' -> number",
        ),
        Transform(
            "parse_money_eu",
            "TRY_CAST(replace(replace(regexp_replace(trim(CAST({x} AS VARCHAR)), "
            "'[^0-9,.-]', '', 'g'), '.', ''), ',', '.') AS DOUBLE)",
            "money in a comma-decimal locale ('1.234,56 €') -> number",
        ),
        Transform(
            "to_fraction",
            "(TRY_CAST({x} AS DOUBLE) / 100.0)",
            "a percentage 0-100 -> a share 0-1",
        ),
        Transform(
            "to_utc",
            "timezone('UTC', timezone({tz}, TRY_CAST({x} AS TIMESTAMP)))",
            "wall-clock time in an IANA time zone -> UTC",
            ("tz",),
            memo=True,
        ),
        Transform(
            "iso_to_utc",
            "timezone('UTC', TRY_CAST({x} AS TIMESTAMPTZ))",
            "ISO-8601 text with offset or 'Z' (no offset means UTC) -> UTC",
            memo=True,
        ),
        Transform(
            "epoch_ms_to_utc",
            "epoch_ms(TRY_CAST({x} AS BIGINT))",
            "milliseconds since 1970-01-01 UTC -> UTC timestamp",
        ),
        Transform(
            "epoch_s_to_utc",
            "timezone('UTC', to_timestamp(TRY_CAST({x} AS DOUBLE)))",
            "seconds since 1970-01-01 UTC -> UTC timestamp",
            memo=True,
        ),
        Transform("to_date", "TRY_CAST({x} AS DATE)", "timestamp -> its date"),
        Transform(
            "parse_date",
            "try_strptime(trim(CAST({x} AS VARCHAR)), [{format}, '%Y-%m-%d'])",
            "a report's date text in `format` (strftime codes: '%m/%d/%Y', '%d/%m/%Y', "
            "'%b %d, %Y'; ISO YYYY-MM-DD, as Excel date cells are read, always works) -> "
            "that day at 00:00",
            ("format",),
            memo=True,
        ),
        Transform(
            "parse_number",
            "TRY_CAST(replace(replace(trim(CAST({x} AS VARCHAR)), ',', ''), ' ', '') AS DOUBLE)",
            "a count or amount with thousands separators ('12,345') -> number",
        ),
        Transform(
            "parse_percent",
            "(TRY_CAST(replace(replace(trim(CAST({x} AS VARCHAR)), '%', ''), ',', '') AS DOUBLE)"
            " / 100.0)",
            "percent text ('12.5%') -> a share (0.125)",
        ),
        Transform("gtin_from_upc12", _gtin_pad(12, "00"), "12-digit UPC-A -> GTIN-14"),
        Transform("gtin_from_ean13", _gtin_pad(13, "0"), "13-digit EAN-13 -> GTIN-14"),
        Transform("gtin14", _gtin_pad(14, ""), "left-pad a numeric GTIN to 14 digits"),
    ]
}


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# GS1 check digit of a GTIN-14, for rows whose crosswalk entry is malformed.
GTIN14_OK_SQL = (
    "(regexp_full_match({x}, '[0-9]{{14}}') AND "
    "(10 - list_sum(list_transform(range(1, 14), lambda i: "
    "CAST(substr({x}, i, 1) AS INTEGER) * CASE WHEN i % 2 = 1 THEN 3 ELSE 1 END)) % 10) % 10"
    " = CAST(substr({x}, 14, 1) AS INTEGER))"
)
