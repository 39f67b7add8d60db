"""A checked query's cells, computed in DuckDB and released under disclosure control.

Every answer is a sum of cells of one fine table: the brand's events grouped by the query's
group-by and filtered dimensions together (`Plan.fine_dimensions`), over all of the brand's
events, filters not applied. A filter keeps or drops whole fine cells, so each output cell
is the sum of the fine cells its filters keep. The fine table's suppression pattern
(`tools.cleanroom.disclosure.protect`: k-anonymity plus secondary suppression) is computed
once over all the brand's events, and an output cell is released only when every fine cell
it sums is released there. So:

- a filtered answer is a sum of numbers the unfiltered fine table releases: whatever a
  filter drops (`geo != 770`, a date window, an `in` list) is itself a sum of released fine
  cells, and the difference of two filtered answers, or of a filtered and an unfiltered one,
  can be computed from released cells without the clean room: it reveals nothing new;
- the fine table's pattern leaves every withheld cell undetermined by the released cells and
  every total of k or more events, so a group's released cells subtracted from its total,
  or from any coarser query's answer, give no withheld cell.

One more filtered cell is released: one that keeps every withheld fine cell of its
unfiltered cell (say `date >= x` where only the last weeks were withheld) while that
unfiltered cell is released by its own query. Its value is then the unfiltered cell minus
released fine cells, which anyone can compute: it reveals nothing either.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.cleanroom.disclosure import protect_linked
from tools.cleanroom.query import Plan
from tools.policy.data_access import DIMENSIONS, METRICS, DataAccessRules

# The RMIS column behind each dimension in the fine table. `week` is kept in `event_date`
# as the Monday that starts it, so that the dimension expressions (and filters) in
# `DIMENSIONS` read the fine table exactly as they read the events.
_FINE_COLUMN = {
    "date": "event_date",
    "week": "event_date",
    "geo": "geo_id",
    "placement": "placement",
    "sku": "gtin",
    "audience": "audience_id",
    "campaign": "campaign_id",
}


# Suppression patterns computed, per (events file, its size and mtime, tenant, k) and then
# per table's key columns: the same tables recur across a tenant's queries.
_PATTERNS: OrderedDict[tuple[Any, ...], dict[tuple[str, ...], Any]] = OrderedDict()
_PATTERNS_KEPT = 16


@dataclass(frozen=True)
class Cells:
    """Released cells (dimension values, `_n` and `sum_<metric>`), how many were withheld
    (under k, and at or above k to protect another cell: secondary suppression), the
    brand's events in the file, and the fine cells no hypercube protects."""

    rows: list[dict[str, Any]]
    withheld_k: int
    withheld_secondary: int
    brand_events: int
    exposed: int = 0  # fine cells protected by the two-per-line fallback only

    @property
    def withheld(self) -> int:
        return self.withheld_k + self.withheld_secondary


def aggregate(
    con: Any, path: Path, tenant: str, plan: Plan, rules: DataAccessRules, *, dp: bool
) -> Cells:
    """Run `plan` for `tenant` over the events at `path` on the DuckDB connection `con`.

    Under differential privacy each row's contribution to a sum is clamped to the rules'
    `sum_clamp`, so that the sums' sensitivity is bounded; the pattern is decided on exact
    counts either way."""
    k = rules.min_cell_size
    sums = []
    for m in plan.summed:
        col = METRICS[m]
        value = f"least(greatest({col}, 0), {float(rules.sum_clamp[m])!r})" if dp else col
        sums.append(f'sum({value}) AS "sum_{m}"')
    fine = plan.fine_dimensions
    inner = (
        f"SELECT {', '.join([*_key_select(fine), 'count(*) AS _n', *sums])} "
        "FROM read_parquet(?) WHERE brand_id = ?"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE fine AS {_numbered(fine, inner)}", [str(path), tenant]
    )
    brand_events = int(con.execute("SELECT coalesce(sum(_n), 0) FROM fine").fetchone()[0])
    if brand_events == 0:
        return Cells([], 0, 0, 0)
    stat = path.stat()
    stamp = (str(path), stat.st_size, stat.st_mtime_ns, tenant, k)
    exposed = _mark_withheld(con, "fine", fine, k, stamp)

    dims = [f'{DIMENSIONS[d]} AS "{d}"' for d in plan.dimensions]
    by = f"GROUP BY {', '.join(str(i + 1) for i in range(len(dims)))}" if dims else ""
    outer = ", ".join(
        [*dims, "sum(_n) AS _n", *(f'sum("sum_{m}") AS "sum_{m}"' for m in plan.summed),
         "count(*) FILTER (WHERE _withheld) AS _kept_withheld"]
    )  # fmt: skip
    where = f"WHERE {' AND '.join(plan.where)}" if plan.where else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE cells AS SELECT {outer} FROM fine {where} {by}",
        plan.params,
    )
    released = "_kept_withheld = 0"
    if set(fine) - set(plan.dimensions):  # filters narrow the cells
        _unfiltered_cells(con, plan, k, stamp)
        on = " AND ".join(f'c."{d}" IS NOT DISTINCT FROM b."{d}"' for d in plan.dimensions)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cells AS SELECT c.*, b._box_withheld, b._box_released "
            f"FROM cells c LEFT JOIN box b ON {on or 'TRUE'}"
        )
        released += " OR (_kept_withheld = _box_withheld AND _box_released)"
    return _released(con, plan, k, released, brand_events, exposed)


def _released(
    con: Any, plan: Plan, k: int, released: str, brand_events: int, exposed: int
) -> Cells:
    """The released cells in order, and the withheld counted."""
    # Without a GROUP BY an empty selection still gives one row, with _n NULL.
    withheld_k, withheld_secondary = con.execute(
        f"SELECT count(*) FILTER (WHERE _n < ?), count(*) FILTER (WHERE _n >= ? AND NOT "
        f"({released})) FROM cells WHERE _n > 0",
        [k, k],
    ).fetchone()
    columns = [*(f'"{d}"' for d in plan.dimensions), "_n", *(f'"sum_{m}"' for m in plan.summed)]
    order = ", ".join(f'"{d}" NULLS LAST' for d in plan.dimensions)
    cur = con.execute(
        f"SELECT {', '.join(columns)} FROM cells WHERE _n > 0 AND ({released}) "
        f"{'ORDER BY ' + order if order else ''}"
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return Cells(rows, int(withheld_k), int(withheld_secondary), brand_events, exposed)


def _key_select(dims: list[str]) -> list[str]:
    """SELECT expressions of a table's key columns for `dims`, from a source with
    `event_date` (the events, or a table by date or week): `week` is kept in `event_date`
    as the Monday that starts it (truncating a Monday gives it back)."""
    return [f"{DIMENSIONS['week']} AS event_date" if d == "week" else _FINE_COLUMN[d] for d in dims]


def _numbered(dims: list[str], inner: str) -> str:
    """A table grouped by the key columns of `dims`, each row numbered `_rid` in key order,
    so that the same data always gives the same table, codes and pattern."""
    keys = [_FINE_COLUMN[d] for d in dims]
    if not keys:
        return f"SELECT *, 0 AS _rid FROM ({inner})"
    order = ", ".join(f"{c} NULLS LAST" for c in keys)
    return f"SELECT *, row_number() OVER (ORDER BY {order}) - 1 AS _rid FROM ({inner} GROUP BY ALL)"


def _unfiltered_cells(con: Any, plan: Plan, k: int, stamp: tuple[Any, ...]) -> None:
    """`box`: per output cell without its filters, how many withheld fine cells it holds and
    whether its own query (the same grouping, unfiltered) releases it."""
    dims = [d for d in DIMENSIONS if d in plan.dimensions]
    dims = [d for d in dims if not (d == "week" and "date" in dims)]
    inner = f"SELECT {', '.join([*_key_select(dims), 'sum(_n) AS _n'])} FROM fine"
    con.execute(f"CREATE OR REPLACE TEMP TABLE coarse AS {_numbered(dims, inner)}")
    _mark_withheld(con, "coarse", dims, k, stamp)
    out = [f'{DIMENSIONS[d]} AS "{d}"' for d in plan.dimensions]
    by = f"GROUP BY {', '.join(str(i + 1) for i in range(len(out)))}" if out else ""
    held = ", ".join([*out, "count(*) FILTER (WHERE _withheld) AS _box_withheld"])
    shown = ", ".join([*out, "bool_and(NOT _withheld) AS _box_released"])
    if out:
        using = ", ".join(f'"{d}"' for d in plan.dimensions)
        sql = (
            f"SELECT * FROM (SELECT {held} FROM fine {by}) "
            f"JOIN (SELECT {shown} FROM coarse {by}) USING ({using})"
        )
    else:
        sql = f"SELECT * FROM (SELECT {held} FROM fine), (SELECT {shown} FROM coarse)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE box AS {sql}")


def _mark_withheld(con: Any, table: str, dims: list[str], k: int, stamp: tuple[Any, ...]) -> int:
    """Add `_withheld` to `table` (grouped by the key columns of `dims`): its suppression
    pattern, protected with every coarser table's (`protect_linked`), computed once per data
    file. Returns how many of its cells rest on the two-per-line fallback."""
    keys = [_FINE_COLUMN[d] for d in dims]
    frame = con.execute(f"SELECT {', '.join([*keys, '_n'])} FROM {table} ORDER BY _rid").df()
    cache = _PATTERNS.setdefault(stamp, {})
    _PATTERNS.move_to_end(stamp)
    while len(_PATTERNS) > _PATTERNS_KEPT:
        _PATTERNS.popitem(last=False)
    pattern = protect_linked(frame, keys, k, cache)
    flags = pd.DataFrame({"_rid": np.arange(len(frame)), "_withheld": pattern.withheld})
    con.register("_flags", flags)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT t.*, f._withheld FROM {table} t "
        "JOIN _flags f USING (_rid)"
    )
    con.unregister("_flags")
    return int(pattern.exposed.sum())
