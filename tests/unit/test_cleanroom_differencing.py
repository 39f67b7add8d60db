"""The clean room against differencing: over generated worlds, every known way of combining
answers to rebuild a cell that k-anonymity withheld, computed from the clean room's answers
and compared with the true cell from the raw events; none may rebuild one exactly.

Attacks on a target cell (date d, geo g) of the brand's date x geo table (fewer than k
events):
- total minus filtered: the day's total minus the day with `geo != g` (the known attack on
  Alpha), or with `geo in <every other geo>`;
- complementary filters: the day's total minus `geo in L1` minus `geo in L2`, L1 and L2
  splitting the other geos; nested `in` lists that differ by g alone;
- sums of groups against an unfiltered total: the day's total minus the released cells of
  the day grouped by geo; the date table's cell minus the date x geo table's released cells;
  the same one dimension finer (grouped by geo and placement);
- overlapping date windows: geo g from day d on minus geo g from day d + 1 on (as filters
  and as `between`), and the same per geo in a table grouped by geo.

Then, stronger than any one recipe: every answer the attacks got, as linear equations over
the brand's date x geo x placement cells; the target must not lie in their span (no linear
combination of released numbers equals it).

At a retailer that requires differential privacy, the same differences come out noisy, and
every release is charged once (a repeated query is answered from the cache, free).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tools.cleanroom import CleanRoom, CleanRoomResult, build_query, policy_rules
from tools.errors import QueryRefusedError
from tools.harmonize import harmonize_all
from tools.world import generate_world, write_exports

WORLDS = (3, 11)
BRAND = "acme"
TARGETS_PER_TABLE = 4
# (dimension of the target cells next to date, a finer dimension to split them by, its
# RMIS column): date x geo cells are nearly all under k at Alpha; date x audience cells are
# a mix, with days on which one audience alone is under k (secondary suppression's work).
TABLES = {"geo": ("placement", "geo_id"), "audience": ("placement", "audience_id")}
COLUMN = {
    "date": "event_date",
    "geo": "geo_id",
    "audience": "audience_id",
    "placement": "placement",
}


@dataclass
class World:
    data: Path
    events: pd.DataFrame  # the brand's raw events at alpha


@pytest.fixture(scope="module", params=WORLDS, ids=lambda s: f"seed{s}")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    out = tmp_path_factory.mktemp(f"diff-world-{request.param}")
    write_exports(generate_world(seed=request.param, days=28), out, events=90_000)
    harmonize_all(out / "raw", out / "rmis")
    ev = pd.read_parquet(out / "rmis" / "alpha" / "events.parquet")
    return World(out, ev[ev["brand_id"] == BRAND].reset_index(drop=True))


def lone_small_cells(ev: pd.DataFrame, column: str, k: int) -> int:
    """Days on which exactly one date x `column` cell is under k."""
    n = ev.groupby(["event_date", column]).size()
    return int((n[n < k].groupby(level=0).size() == 1).sum())


def targets(ev: pd.DataFrame, column: str, k: int) -> list[tuple[date, str, int, float]]:
    """Suppressed date x `column` cells: (date, value, events, spend). First those alone
    under k on their day (the day's total minus its other cells is exactly such a cell,
    unless a second one is withheld with it), then the largest under k (the hardest to
    hide), then the smallest."""
    cells = ev.groupby(["event_date", column]).agg(n=("spend", "size"), spend=("spend", "sum"))
    small = cells[(cells["n"] > 0) & (cells["n"] < k)].copy()
    small["alone"] = small.groupby(level=0)["n"].transform("size") == 1
    small = small.sort_values(["alone", "n"], ascending=False)
    picked = pd.concat([small.head(TARGETS_PER_TABLE - 1), small.tail(1)]).drop_duplicates()
    return [(d, v, int(r.n), float(r.spend)) for (d, v), r in picked.iterrows()]


# ----------------------------------------------------------------------- the attacker


@dataclass
class Attacker:
    """Asks the clean room as the brand, remembering every answer it got."""

    room: CleanRoom
    retailer: str = "alpha"
    answers: list[tuple[dict[str, Any], CleanRoomResult]] = field(default_factory=list)

    def ask(self, group_by: list[str] | None = None, **filters: Any) -> CleanRoomResult | None:
        flt = []
        for key, value in filters.items():
            name, _, op = key.partition("__")
            op = {"": "=", "ne": "!=", "in": "in", "ge": ">=", "between": "between"}[op]
            flt.append({"field": name, "op": op, "value": value})
        query = {
            "tenant": BRAND,
            "retailer": self.retailer,
            "group_by": group_by or [],
            "metrics": ["events", "spend"],
            "filters": flt,
        }
        try:
            result = self.room.query(build_query(**query))
        except QueryRefusedError:
            return None
        self.answers.append((query, result))
        return result

    def total(self, **filters: Any) -> tuple[int, float] | None:
        res = self.ask(**filters)
        if res is None or not res.rows:
            return None
        return int(res.rows[0]["events"]), float(res.rows[0]["spend"])


Pair = tuple[int, float] | None


def minus(a: Pair, *bs: Pair) -> Pair:
    if a is None or any(b is None for b in bs):
        return None
    return a[0] - sum(b[0] for b in bs), a[1] - sum(b[1] for b in bs)  # type: ignore[index]


def row_of(res: CleanRoomResult | None, **key: Any) -> Pair:
    for row in res.rows if res is not None else []:
        if all(row[k] == v for k, v in key.items()):
            return int(row["events"]), float(row["spend"])
    return None


def released_sum(res: CleanRoomResult | None, **key: Any) -> Pair:
    if res is None:
        return None
    rows = [r for r in res.rows if all(r[k] == v for k, v in key.items())]
    return sum(int(r["events"]) for r in rows), sum(float(r["spend"]) for r in rows)


def attacks(a: Attacker, d: date, dim: str, v: str, values: list[str]) -> dict[str, Pair]:
    """Every recipe's rebuilt (events, spend) of the cell (date d, `dim` = v); None where an
    answer it needs was refused or withheld."""
    finer = TABLES[dim][0]
    day = d.isoformat()
    others = [x for x in values if x != v]
    half = len(others) // 2
    nxt = (d + timedelta(days=1)).isoformat()
    last = "2100-01-01"
    total = a.total(date=day)
    by_dim = a.ask([dim], date=day)
    by_date = a.ask(["date"])
    by_date_dim = a.ask(["date", dim], date__between=[day, day])
    by_dim_finer = a.ask([dim, finer], date=day)
    from_d, from_next = a.ask([dim], date__ge=day), a.ask([dim], date__ge=nxt)
    at = {dim: v}
    return {
        "total minus != filter": minus(total, a.total(date=day, **{f"{dim}__ne": v})),
        "total minus in-list of the others": minus(
            total, a.total(date=day, **{f"{dim}__in": others})
        ),
        "total minus two in-lists": minus(
            total,
            a.total(date=day, **{f"{dim}__in": others[:half]}),
            a.total(date=day, **{f"{dim}__in": others[half:]}),
        ),
        "nested in-lists": minus(
            a.total(date=day, **{f"{dim}__in": [v, *others[1:]]}),
            a.total(date=day, **{f"{dim}__in": others[1:]}),
        ),
        "total minus released groups": minus(total, released_sum(by_dim)),
        "date cell minus released date x dim": minus(
            row_of(by_date, date=d), released_sum(by_date_dim, date=d)
        ),
        "group minus released finer groups": minus(
            row_of(by_dim, **at), released_sum(by_dim_finer, **at)
        ),
        "overlapping windows": minus(a.total(**at, date__ge=day), a.total(**at, date__ge=nxt)),
        "overlapping between": minus(
            a.total(**at, date__between=[day, last]), a.total(**at, date__between=[nxt, last])
        ),
        "windows grouped": minus(row_of(from_d, **at), row_of(from_next, **at)),
    }


# ----------------------------------------------------------------------- linear algebra


def _population(atoms: pd.DataFrame, query: dict[str, Any], row: dict[str, Any]) -> np.ndarray:
    """Which atoms one released row sums."""
    mask = np.ones(len(atoms), dtype=bool)
    for f in query["filters"]:
        values = atoms[COLUMN[f["field"]]]
        v = f["value"]
        if f["field"] == "date":
            v = [date.fromisoformat(x) for x in v] if isinstance(v, list) else date.fromisoformat(v)
        if f["op"] == "=":
            mask &= (values == v).to_numpy()
        elif f["op"] == "!=":
            mask &= (values != v).to_numpy()
        elif f["op"] == "in":
            mask &= values.isin(v).to_numpy()
        elif f["op"] == ">=":
            mask &= (values >= v).to_numpy()
        else:
            mask &= ((values >= v[0]) & (values <= v[1])).to_numpy()
    for dim in query["group_by"]:
        mask &= (atoms[COLUMN[dim]] == row[dim]).to_numpy()
    return mask


def determined(atoms: pd.DataFrame, answers: list, target: np.ndarray) -> bool:
    """Whether the target's indicator lies in the span of the released rows' indicators."""
    rows = [
        _population(atoms, query, row).astype(float) for query, res in answers for row in res.rows
    ]
    if not rows:
        return False
    a = np.array(rows)
    used = a.any(axis=0) | target
    a, t = a[:, used], target[used].astype(float)
    y, *_ = np.linalg.lstsq(a.T, t, rcond=None)
    return bool(np.abs(a.T @ y - t).max() < 1e-6)


# ----------------------------------------------------------------------- the tests


@pytest.mark.parametrize("dim", list(TABLES))
def test_no_suppressed_cell_is_rebuilt_by_differencing(world: World, dim: str) -> None:
    k = policy_rules("alpha").min_cell_size
    room = CleanRoom(world.data)
    finer, column = TABLES[dim]
    values = sorted(world.events[column].unique().tolist())
    atoms = world.events.groupby(["event_date", column, COLUMN[finer]]).size().reset_index()
    rebuilt: list[str] = []
    tried = answered = 0
    for d, v, n, spend in targets(world.events, column, k):
        attacker = Attacker(room)
        for name, got in attacks(attacker, d, dim, v, values).items():
            tried += 1
            answered += got is not None
            if got is not None and got[0] == n and abs(got[1] - spend) < 0.005:
                rebuilt.append(f"{name}: ({d}, {dim} {v}) = {n} events, ${spend:,.2f}")
        target = ((atoms["event_date"] == d) & (atoms[column] == v)).to_numpy()
        if determined(atoms, attacker.answers, target):
            rebuilt.append(f"linear combination of all answers: ({d}, {dim} {v})")
        # The day's total is always released: the defence withholds small things only.
        assert attacker.answers[0][1].cells_returned == 1
    assert tried >= 10 * TARGETS_PER_TABLE
    if dim == "audience":  # the data has days whose total minus the rest is one cell
        assert lone_small_cells(world.events, column, k) >= 3
    assert answered > 0  # some attacks got every answer they needed, and still failed
    assert not rebuilt, "suppressed cells rebuilt:\n" + "\n".join(rebuilt)
