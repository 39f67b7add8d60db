"""Deliberately dirty rows in the retailers' exports: which rows get which kind of dirt
(seeded, disjoint, about `dirt_rate` per kind) and how each kind spoils a delivery record.
The rows are listed in `world/dirt/<retailer>.json`, so data-quality checks can be scored
exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tools.world.catalog import rng_for
from tools.world.formats import BOGUS_PLACEMENTS, DeliveryRows, NativeLabels
from tools.world.simulate import Clock

DIRT_KINDS = (
    "duplicate_row",
    "null_required",
    "negative_cost",
    "future_date",
    "unknown_placement",
    "clicks_gt_impressions",
    "unknown_item",
)
# null_required empties one of these, chosen per row.
NULL_FIELDS = ("item", "cost", "timestamp")


@dataclass
class DirtPlan:
    rows: np.ndarray  # sorted retailer row indices
    kind: np.ndarray  # index into DIRT_KINDS
    null_field: np.ndarray  # index into NULL_FIELDS
    future_s: np.ndarray  # seconds after the export for future_date rows
    bogus: np.ndarray  # index into BOGUS_PLACEMENTS[retailer]
    ghost: np.ndarray  # index of the unknown item id

    def within(self, lo: int, hi: int) -> slice:
        return slice(int(np.searchsorted(self.rows, lo)), int(np.searchsorted(self.rows, hi)))


def plan_dirt(seed: int, retailer_id: str, n_rows: int, rate: float, n_ghosts: int) -> DirtPlan:
    """Pick disjoint rows for each kind of dirt; at least one per kind when rate > 0 and
    there are enough rows to keep at least half of them clean."""
    rng = rng_for(seed, "dirt", retailer_id)
    k = len(DIRT_KINDS)
    per = 0
    if rate > 0 and n_rows >= 2 * k:
        per = min(max(1, round(rate * n_rows)), n_rows // (2 * k))
    rows = rng.choice(n_rows, size=per * k, replace=False) if per else np.zeros(0, np.int64)
    kind = np.repeat(np.arange(k), per)
    order = np.argsort(rows, kind="stable")
    m = rows.size
    return DirtPlan(
        rows=rows[order].astype(np.int64),
        kind=kind[order],
        null_field=rng.integers(0, len(NULL_FIELDS), m),
        future_s=rng.integers(24, 60 * 24 + 1, m) * 3600,
        bogus=rng.integers(0, len(BOGUS_PLACEMENTS[retailer_id]), m),
        ghost=rng.integers(0, n_ghosts, m),
    )


def apply_dirt(
    chunk: dict[str, np.ndarray],
    offset: int,
    plan: DirtPlan,
    labels: NativeLabels,
    clock: Clock,
    exported_s: int,
) -> DeliveryRows:
    """The chunk of delivery records starting at retailer row `offset`, with the planned
    dirt applied (duplicates are marked in `dup_after`, copied by the writer)."""
    n = chunk["utc"].size
    sl = plan.within(offset, offset + n)
    pos = plan.rows[sl] - offset
    kind = plan.kind[sl]

    def at(name: str) -> np.ndarray:
        return pos[kind == DIRT_KINDS.index(name)]

    item_idx = chunk["local_line"].copy()
    plc_idx = chunk["local_line"].copy()
    utc = chunk["utc"].copy()
    spend = chunk["spend_cents"].copy()
    clicks = chunk["clicks"].copy()
    null_item = np.zeros(n, dtype=bool)
    null_cost = np.zeros(n, dtype=bool)
    null_ts = np.zeros(n, dtype=bool)

    sel = kind == DIRT_KINDS.index("null_required")
    field = plan.null_field[sl][sel]
    null_item[pos[sel][field == 0]] = True
    null_cost[pos[sel][field == 1]] = True
    null_ts[pos[sel][field == 2]] = True

    p = at("negative_cost")
    spend[p] = -np.maximum(spend[p], 1)
    sel = kind == DIRT_KINDS.index("future_date")
    utc[pos[sel]] = exported_s + plan.future_s[sl][sel]
    sel = kind == DIRT_KINDS.index("unknown_placement")
    plc_idx[pos[sel]] = labels.n_lines + plan.bogus[sl][sel]
    p = at("clicks_gt_impressions")
    clicks[p] = chunk["impressions"][p] + 1 + (p % 3)
    sel = kind == DIRT_KINDS.index("unknown_item")
    item_idx[pos[sel]] = labels.n_lines + plan.ghost[sl][sel]

    return DeliveryRows(
        idx=offset + np.arange(n, dtype=np.int64),
        local_line=chunk["local_line"],
        item=labels.item.take(pa.array(item_idx, mask=null_item)),
        placement=labels.placement.take(pa.array(plc_idx)),
        utc=utc,
        local=clock.local(utc),
        null_ts=null_ts,
        dma=chunk["dma"],
        audience=chunk["audience"],
        spend_cents=spend,
        null_cost=null_cost,
        sales_cents=chunk["sales_cents"],
        impressions=chunk["impressions"],
        clicks=clicks,
        orders=chunk["orders"],
        units=chunk["units"],
        viewable=chunk["viewable"],
        dup_after=at("duplicate_row"),
    )
