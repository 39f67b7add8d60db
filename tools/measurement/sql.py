"""Clean-room SQL for the geo x period aggregates an experiment readout needs.

The readout needs each geo's total sales per day (or week) before and during the test, and the
test's spend by geo to confirm that held-out geos saw no ads. Sales come from the retailer's
sales relation in its clean room (`GEO_SALES_COLUMNS`: one row per order line, so a cell's row
count is the number of orders behind it); spend from the harmonized RMIS events. Attributed
sales are not an outcome here: held-out geos have no ads, hence no attributed sales.

k-anonymity is applied per geo, not per cell: a geo is released only if every one of its
period cells rests on at least k sales rows, and on either no ad events (a held-out geo) or at
least k. Dropping a whole geo keeps the panel balanced, where dropping single cells would leave
holes that bias a pre/post comparison; the readout simply runs without that geo.

sql = geo_period_sql(period="date", sales="geo_sales")
con.execute(sql, geo_period_params("acme", "alpha", start, end, k=50)).df()
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from tools.cleanroom import DIMENSIONS, DataAccessRules, policy_rules
from tools.errors import QueryRefusedError

Period = Literal["date", "week"]

# The clean room's sales relation: one row per order line of the brand's products.
GEO_SALES_COLUMNS: dict[str, str] = {
    "sale_date": "DATE",
    "retailer_id": "VARCHAR",
    "brand_id": "VARCHAR",
    "geo_id": "VARCHAR",
    "gtin": "VARCHAR",
    "revenue": "DOUBLE",
    "units": "BIGINT",
}

_RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _period_expr(period: Period, column: str) -> str:
    # The clean room's own definitions of `date` and `week`, on the given date column.
    return DIMENSIONS[period].replace("event_date", column)


def _relation(name: str) -> str:
    if not _RELATION.match(name):
        raise QueryRefusedError(f"malformed relation name {name!r}: use letters, digits and _")
    return name


def _per_geo_period(name: str, relation: str, day: str, period: Period, measures: str) -> str:
    """A CTE of the brand's rows at the retailer in the window, summed per geo and period."""
    return f"""{name} AS (
    SELECT geo_id, {_period_expr(period, day)} AS period,
           {measures}
    FROM {relation}
    WHERE brand_id = $brand AND retailer_id = $retailer
      AND {day} BETWEEN $start AND $end
    GROUP BY ALL
)"""


def geo_period_sql(
    period: Period = "date", events: str = "rmis_events", sales: str | None = "geo_sales"
) -> str:
    """DuckDB SQL with named parameters $brand, $retailer, $start, $end (dates, inclusive)
    and $k. One row per released geo and period, every period from $start to $end present.

    Columns: geo_id, period, sale_rows, sales, units, ad_events, spend, impressions. Without a
    `sales` relation only the ad columns are returned, and k applies to the ad events."""
    if period not in ("date", "week"):
        raise QueryRefusedError(f"period must be 'date' or 'week', got {period!r}")
    ev = _relation(events)
    step = "INTERVAL 1 DAY" if period == "date" else "INTERVAL 7 DAY"
    first = _period_expr(period, "CAST($start AS DATE)")
    last = _period_expr(period, "CAST($end AS DATE)")
    ads = _per_geo_period(
        "ads",
        ev,
        "event_date",
        period,
        "count(*) AS ad_events, sum(spend) AS spend, sum(impressions) AS impressions",
    )
    periods = f"""periods AS (
    SELECT CAST(p AS DATE) AS period
    FROM generate_series(CAST({first} AS TIMESTAMP), CAST({last} AS TIMESTAMP), {step}) AS t(p)
)"""
    if sales is None:
        return f"""WITH {ads},
{periods},
geos AS (SELECT DISTINCT geo_id FROM ads),
cells AS (
    SELECT g.geo_id, p.period,
           coalesce(a.ad_events, 0) AS ad_events,
           coalesce(a.spend, 0.0) AS spend,
           coalesce(a.impressions, 0) AS impressions
    FROM geos g CROSS JOIN periods p
    LEFT JOIN ads a ON a.geo_id = g.geo_id AND a.period = p.period
),
released AS (
    SELECT geo_id FROM cells GROUP BY geo_id HAVING min(ad_events) >= $k
)
SELECT * FROM cells WHERE geo_id IN (SELECT geo_id FROM released)
ORDER BY geo_id, period"""
    sold = _per_geo_period(
        "sold",
        _relation(sales),
        "sale_date",
        period,
        "count(*) AS sale_rows, sum(revenue) AS sales, sum(units) AS units",
    )
    return f"""WITH {ads},
{sold},
{periods},
geos AS (SELECT geo_id FROM sold UNION SELECT geo_id FROM ads),
cells AS (
    SELECT g.geo_id, p.period,
           coalesce(s.sale_rows, 0) AS sale_rows,
           coalesce(s.sales, 0.0) AS sales,
           coalesce(s.units, 0) AS units,
           coalesce(a.ad_events, 0) AS ad_events,
           coalesce(a.spend, 0.0) AS spend,
           coalesce(a.impressions, 0) AS impressions
    FROM geos g CROSS JOIN periods p
    LEFT JOIN sold s ON s.geo_id = g.geo_id AND s.period = p.period
    LEFT JOIN ads a ON a.geo_id = g.geo_id AND a.period = p.period
),
released AS (
    SELECT geo_id FROM cells GROUP BY geo_id
    HAVING min(sale_rows) >= $k AND bool_and(ad_events = 0 OR ad_events >= $k)
)
SELECT * FROM cells WHERE geo_id IN (SELECT geo_id FROM released)
ORDER BY geo_id, period"""


def geo_period_params(brand: str, retailer: str, start: date, end: date, k: int) -> dict[str, Any]:
    if end < start:
        raise QueryRefusedError(f"the window ends ({end}) before it starts ({start})")
    return {"brand": brand, "retailer": retailer, "start": start, "end": end, "k": int(k)}


def period_for(retailer: str, rules: DataAccessRules) -> Period:
    """Days where the retailer lets a query group by date, else weeks; geo must be allowed."""
    allowed = set(rules.allowed_dimensions) - set(rules.blocked_fields)
    if "geo" not in allowed:
        raise QueryRefusedError(
            f"{retailer}'s data-access policy does not allow grouping by geo (allowed_dimensions; "
            f"source: {rules.source}), so geo experiments cannot be read out there",
            rule="allowed_dimensions",
            source=rules.source,
        )
    if "date" in allowed:
        return "date"
    if "week" in allowed:
        return "week"
    raise QueryRefusedError(
        f"{retailer}'s data-access policy allows neither date nor week (allowed_dimensions; "
        f"source: {rules.source})",
        rule="allowed_dimensions",
        source=rules.source,
    )


@dataclass(frozen=True)
class GeoPeriodResult:
    """Released geo x period cells, how many geos were withheld under k, and the query run."""

    frame: Any  # pandas.DataFrame
    period: Period
    k: int
    geos_released: int
    geos_withheld: int
    sql: str


def run_geo_period_query(
    con: Any,
    retailer: str,
    brand: str,
    start: date,
    end: date,
    *,
    events: str | Path = "rmis_events",
    sales: str | Path | None = "geo_sales",
    rules: DataAccessRules | None = None,
) -> GeoPeriodResult:
    """Run the geo x period query on a DuckDB connection under the retailer's rules.

    `events` and `sales` name relations on `con`, or are Parquet paths. A retailer that
    requires differential privacy is refused: its clean room must add the noise itself."""
    rules = rules or policy_rules(retailer)
    if rules.dp_required:
        raise QueryRefusedError(
            f"{retailer} releases aggregates only with differential privacy (dp_required; "
            f"source: {rules.source}); run this query inside its clean room, which adds the "
            "noise and charges the privacy budget",
            rule="dp_required",
            source=rules.source,
        )
    period = period_for(retailer, rules)

    def relation(src: str | Path, name: str) -> str:
        if isinstance(src, Path) or str(src).endswith(".parquet"):
            con.read_parquet(str(src)).create_view(name)
            return name
        return str(src)

    ev = relation(events, "_measurement_events")
    sa = relation(sales, "_measurement_sales") if sales is not None else None
    sql = geo_period_sql(period, ev, sa)
    params = geo_period_params(brand, retailer, start, end, rules.min_cell_size)
    frame = con.execute(sql, params).df()
    src, day = (sa, "sale_date") if sa is not None else (ev, "event_date")
    total = con.execute(
        f"SELECT count(DISTINCT geo_id) FROM {src} WHERE brand_id = $brand "
        f"AND retailer_id = $retailer AND {day} BETWEEN $start AND $end",
        {k: params[k] for k in ("brand", "retailer", "start", "end")},
    ).fetchone()[0]
    released = int(frame["geo_id"].nunique()) if len(frame) else 0
    return GeoPeriodResult(
        frame=frame,
        period=period,
        k=rules.min_cell_size,
        geos_released=released,
        geos_withheld=int(total) - released,
        sql=sql,
    )
