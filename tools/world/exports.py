"""Native retailer exports, first-party brand data and the world's truth on disk.

Each retailer writes its delivery records in its own format (names, units, time zones and
ids differ on purpose), with a known share of dirty rows recorded in a manifest so that data
quality checks can be scored exactly. Every file is written to a temporary name and renamed
into place, so a failed run never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time as _time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel

from tools.errors import RMNError
from tools.firstparty import FILES as FIRST_PARTY_COLUMNS
from tools.world.catalog import ITEM_ID_FORMAT, format_native_id, rng_for
from tools.world.simulate import (
    Clock,
    History,
    history_table,
    iter_delivery,
    make_clock,
    promo_matrix,
    retailer_row_count,
    simulate_history,
)
from tools.world.truth import WORLD_TABLES, World, world_dir, world_json

MAX_EVENTS = 500_000_000
MAX_DIRT_RATE = 0.1

ADVERTISERS: dict[str, dict[str, str]] = {
    "alpha": {
        "acme": "AM-10001",
        "globex": "AM-10002",
        "initech": "AM-10003",
        "brand_x": "AM-10004",
    },
    "beta": {
        "acme": "Acme Foods Inc.",
        "globex": "Globex Health",
        "initech": "Initech Home",
        "brand_x": "Brand X Co.",
    },
    "gamma": {
        "acme": "GP-ACME",
        "globex": "GP-GLOBEX",
        "initech": "GP-INITECH",
        "brand_x": "GP-BRANDX",
    },
    "delta": {"acme": "acme", "globex": "globex", "initech": "initech", "brand_x": "brand-x"},
}
PLACEMENT_LABELS: dict[str, dict[str, str]] = {
    "alpha": {
        "sponsored_product": "Sponsored Products",
        "sponsored_search": "Search Ads",
        "display_onsite": "Onsite Display",
        "display_offsite": "Offsite Display",
        "instore_screen": "In-Store TV",
    },
    "beta": {"sponsored_product": "sp", "sponsored_search": "search", "display_offsite": "offsite"},
    "gamma": {
        "sponsored_search": "SEARCH",
        "sponsored_product": "PDP",
        "display_offsite": "OFFSITE",
        "instore_screen": "SCREEN",
    },
    "delta": {
        "sponsored_search": "search",
        "sponsored_product": "product",
        "display_onsite": "display",
        "onsite_video": "video",
    },
}
# Labels no mapping knows: test traffic and formats launched after the mapping was written.
BOGUS_PLACEMENTS: dict[str, tuple[str, ...]] = {
    "alpha": ("Sponsored Brands Video", "TEST", "unknown"),
    "beta": ("TEST", "sb_video", "unknown"),
    "gamma": ("TEST", "BANNER", "UNKNOWN"),
    "delta": ("test", "banner", "unknown"),
}
FILES: dict[str, dict[str, str]] = {
    "alpha": {"events": "events.csv", "crosswalk": "item_crosswalk.csv"},
    "beta": {"events": "events.jsonl", "crosswalk": "products.jsonl"},
    "gamma": {"events": "events.parquet", "crosswalk": "sku_xref.parquet"},
    "delta": {"events": "events.csv", "crosswalk": "items.csv"},
}
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
BETA_ID_MULT = 387_420_489  # coprime with 10**9: a bijection on 9-digit ids
GAMMA_ID_BASE = 4_100_000_000


class RetailerExport(BaseModel):
    retailer_id: str
    events: int
    rows_written: int
    dirt: dict[str, int]
    files: dict[str, str]


class ExportSummary(BaseModel):
    out_dir: str
    seed: int
    start: str
    days: int
    flight_days: int
    events_requested: int
    events: int
    rows_written: int
    dirt_rate: float
    retailers: dict[str, RetailerExport]
    dirt: dict[str, int]
    paths: dict[str, str]
    seconds: float


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary sibling path that replaces `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")


def _write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


# ------------------------------------------------------------------------------- dirt


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


def native_ids(retailer_id: str, idx: np.ndarray, seed: int) -> pa.Array:
    """Native row ids for retailer row indices: ints, or strings for Beta Grocers."""
    if retailer_id == "alpha" or retailer_id == "delta":
        return pa.array(idx + 1, pa.int64())
    if retailer_id == "gamma":
        return pa.array(idx + GAMMA_ID_BASE, pa.int64())
    offset = int(rng_for(seed, "beta-ids").integers(0, 10**9))
    num = (idx.astype(np.int64) * BETA_ID_MULT + offset) % 10**9
    digits = pc.utf8_lpad(pa.array(num).cast(pa.string()), width=9, padding="0")
    return pc.binary_join_element_wise("b-", digits, "")


# ---------------------------------------------------------------------------- retailer


@dataclass
class _Labels:
    """Small per-retailer lookup arrays that delivery records index into."""

    advertiser: pa.Array  # per local line
    campaign: pa.Array  # per local line
    item: pa.Array  # per local line, then unknown ids
    placement: pa.Array  # per local line, then bogus labels
    audience: pa.Array
    dma: pa.Array  # codes as strings
    is_search: np.ndarray  # per local line
    n_lines: int


def _ghost_items(world: World, retailer_id: str, n: int) -> list[str]:
    known = set(world.listings.column("item_id").to_pylist())
    rng = rng_for(world.seed, "ghost-items", retailer_id)
    _, digits = ITEM_ID_FORMAT[retailer_id]
    out: list[str] = []
    while len(out) < n:
        cand = format_native_id(
            retailer_id, int(rng.integers(10 ** (digits - 1), 10**digits)), ITEM_ID_FORMAT
        )
        if cand not in known and cand not in out:
            out.append(cand)
    return out


def _labels(world: World, retailer_id: str) -> _Labels:
    li = world.line_items
    mask = li.column("retailer_id").to_numpy(False) == retailer_id
    sub = li.filter(pa.array(mask))
    placements = sub.column("placement").to_pylist()
    adv = ADVERTISERS[retailer_id]
    plc = PLACEMENT_LABELS[retailer_id]
    auds = [a.audience_id for a in world.audiences if a.retailer_id == retailer_id]
    return _Labels(
        advertiser=pa.array([adv[b] for b in sub.column("brand_id").to_pylist()]),
        campaign=sub.column("campaign_id").combine_chunks(),
        item=pa.array(sub.column("item_id").to_pylist() + _ghost_items(world, retailer_id, 5)),
        placement=pa.array([plc[p] for p in placements] + list(BOGUS_PLACEMENTS[retailer_id])),
        audience=pa.array(auds),
        dma=world.dmas.column("code").combine_chunks(),
        is_search=np.array([p == "sponsored_search" for p in placements]),
        n_lines=len(placements),
    )


@dataclass
class _Rows:
    """One chunk of delivery records after dirt, in retailer-neutral form."""

    idx: np.ndarray
    local_line: np.ndarray
    item: pa.Array
    placement: pa.Array
    utc: np.ndarray
    local: np.ndarray
    null_ts: np.ndarray
    dma: np.ndarray
    audience: np.ndarray
    spend_cents: np.ndarray
    null_cost: np.ndarray
    sales_cents: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    orders: np.ndarray
    units: np.ndarray
    viewable: np.ndarray
    dup_after: np.ndarray  # local positions that get an exact extra copy


def _apply_dirt(
    chunk: dict[str, np.ndarray],
    offset: int,
    plan: DirtPlan,
    labels: _Labels,
    clock: Clock,
    exported_s: int,
) -> _Rows:
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

    return _Rows(
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


def _empty_chunk() -> dict[str, np.ndarray]:
    ints = (
        "local_line",
        "utc",
        "dma",
        "audience",
        "spend_cents",
        "sales_cents",
        "impressions",
        "clicks",
        "orders",
        "units",
    )
    return {k: np.zeros(0, np.int64) for k in ints} | {"viewable": np.zeros(0)}


def _ts(seconds: np.ndarray, mask: np.ndarray, unit: str) -> pa.Array:
    values = seconds.astype("datetime64[s]").astype(f"datetime64[{unit}]")
    return pa.array(values, pa.timestamp(unit), mask=mask)


def _batch_alpha(r: _Rows, lab: _Labels, seed: int) -> pa.RecordBatch:
    ll = pa.array(r.local_line)
    return pa.RecordBatch.from_pydict(
        {
            "ROW_ID": native_ids("alpha", r.idx, seed),
            "ADVERTISER_ID": lab.advertiser.take(ll),
            "CAMPAIGN_ID": lab.campaign.take(ll),
            "EVENT_HOUR_LOCAL": _ts(r.local, r.null_ts, "s"),
            "DMA_CODE": lab.dma.take(pa.array(r.dma)).cast(pa.int64()),
            "PLACEMENT_TYPE": r.placement,
            "AUDIENCE_SEGMENT": lab.audience.take(pa.array(r.audience)),
            "ITEM_ID": r.item,
            "IMPRESSIONS": pa.array(r.impressions, pa.int64()),
            "CLICKS": pa.array(r.clicks, pa.int64()),
            "ORDERS": pa.array(r.orders, pa.int64()),
            "SPEND_CENTS": pa.array(r.spend_cents, pa.int64(), mask=r.null_cost),
            "SALES_CENTS": pa.array(r.sales_cents, pa.int64()),
            "UNITS": pa.array(r.units, pa.int64()),
        }
    )


def _batch_beta(r: _Rows, lab: _Labels, seed: int) -> pa.RecordBatch:
    ll = pa.array(r.local_line)
    return pa.RecordBatch.from_pydict(
        {
            "eventId": native_ids("beta", r.idx, seed),
            "advertiserName": lab.advertiser.take(ll),
            "campaignId": lab.campaign.take(ll),
            "timestampUtc": pc.strftime(_ts(r.utc, r.null_ts, "s"), format="%Y-%m-%dT%H:%M:%SZ"),
            "dma": lab.dma.take(pa.array(r.dma)),
            "placement": r.placement,
            "audience": lab.audience.take(pa.array(r.audience)),
            "productId": r.item,
            "impressions": pa.array(r.impressions, pa.int64()),
            "clicks": pa.array(r.clicks, pa.int64()),
            "orders": pa.array(r.orders, pa.int64()),
            "units": pa.array(r.units, pa.int64()),
            "cost": pa.array(r.spend_cents / 100, pa.float64(), mask=r.null_cost),
            "attributedSales": pa.array(r.sales_cents / 100, pa.float64()),
        }
    )


def _batch_gamma(r: _Rows, lab: _Labels, seed: int) -> pa.RecordBatch:
    ll = pa.array(r.local_line)
    return pa.RecordBatch.from_pydict(
        {
            "event_id": native_ids("gamma", r.idx, seed),
            "advertiser": lab.advertiser.take(ll),
            "campaign": lab.campaign.take(ll),
            "ts_local": _ts(r.local, r.null_ts, "us"),
            "dma_code": lab.dma.take(pa.array(r.dma)),
            "placement_name": r.placement,
            "audience_code": lab.audience.take(pa.array(r.audience)),
            "sku_code": r.item,
            "imps": pa.array(r.impressions, pa.int64()),
            "clks": pa.array(r.clicks, pa.int64()),
            "convs": pa.array(r.orders, pa.int64()),
            "units": pa.array(r.units, pa.int64()),
            "cost_usd": pa.array(r.spend_cents / 100, pa.float64(), mask=r.null_cost),
            "revenue_usd": pa.array(r.sales_cents / 100, pa.float64()),
            # Search ads are text results: viewability is not measured for them.
            "viewable_pct": pa.array(r.viewable, pa.float64(), mask=lab.is_search[r.local_line]),
        }
    )


def _money(cents: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Cents as money strings: 123456 -> "$1,234.56", -5 -> "-$0.05"."""
    a = np.abs(cents)
    dollars = a // 100

    def text(x: np.ndarray, width: int = 0) -> pa.Array:
        t = pa.array(x).cast(pa.string())
        return pc.utf8_lpad(t, width=width, padding="0") if width else t

    def join(*parts: pa.Array | str) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    g = [dollars // 1000**k % 1000 for k in range(4)]
    grouped = pc.if_else(
        pa.array(dollars >= 1000**3),
        join(text(g[3]), ",", text(g[2], 3), ",", text(g[1], 3), ",", text(g[0], 3)),
        pc.if_else(
            pa.array(dollars >= 1000**2),
            join(text(g[2]), ",", text(g[1], 3), ",", text(g[0], 3)),
            pc.if_else(pa.array(dollars >= 1000), join(text(g[1]), ",", text(g[0], 3)), text(g[0])),
        ),
    )
    out = join(pc.if_else(pa.array(cents < 0), "-$", "$"), grouped, ".", text(a % 100, 2))
    if null is not None and null.any():
        out = pc.if_else(pa.array(null), pa.scalar(None, pa.string()), out)
    return out


def _batch_delta(r: _Rows, lab: _Labels, seed: int) -> pa.RecordBatch:
    ll = pa.array(r.local_line)
    return pa.RecordBatch.from_pydict(
        {
            "id": native_ids("delta", r.idx, seed),
            "advertiser": lab.advertiser.take(ll),
            "campaign": lab.campaign.take(ll),
            "epoch_ms": pa.array(r.utc * 1000, pa.int64(), mask=r.null_ts),
            "geo": pc.binary_join_element_wise("DMA-", lab.dma.take(pa.array(r.dma)), ""),
            "placement": r.placement,
            "audience": lab.audience.take(pa.array(r.audience)),
            "item": r.item,
            "impressions": pa.array(r.impressions, pa.int64()),
            "clicks": pa.array(r.clicks, pa.int64()),
            "purchases": pa.array(r.orders, pa.int64()),
            "units": pa.array(r.units, pa.int64()),
            "cost": _money(r.spend_cents, r.null_cost),
            "sales": _money(r.sales_cents),
        }
    )


_BATCH: dict[str, Callable[[_Rows, _Labels, int], pa.RecordBatch]] = {
    "alpha": _batch_alpha,
    "beta": _batch_beta,
    "gamma": _batch_gamma,
    "delta": _batch_delta,
}


@contextmanager
def _csv_writer(path: Path, schema: pa.Schema, delimiter: str = ",") -> Iterator[pacsv.CSVWriter]:
    """CSV with a plain header line: pyarrow would quote every header name."""
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((delimiter.join(schema.names) + "\n").encode())
        opts = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none")
        with pacsv.CSVWriter(sink, schema, write_options=opts) as writer:
            yield writer


def _json_values(col: pa.Array) -> pa.Array:
    """JSON text of each value: quoted strings, floats with a decimal point, null."""
    if pa.types.is_string(col.type):
        escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
        text = pc.binary_join_element_wise('"', escaped, '"', "")
    elif pa.types.is_floating(col.type):
        plain = col.cast(pa.string())
        text = pc.if_else(
            pc.match_substring_regex(plain, "[.e]"),
            plain,
            pc.binary_join_element_wise(plain, ".0", ""),
        )
    else:
        text = col.cast(pa.string())
    return text.fill_null("null")


def _jsonl(batch: pa.RecordBatch) -> pa.Buffer:
    """The batch as JSON Lines, keys in column order, built column-wise."""
    parts: list[pa.Array | str] = []
    for i, name in enumerate(batch.schema.names):
        parts.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
        parts.append(_json_values(batch.column(i)))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    lo, hi = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return lines.buffers()[2].slice(lo, hi - lo)


@contextmanager
def _event_writer(
    retailer_id: str, path: Path, schema: pa.Schema
) -> Iterator[Callable[[pa.RecordBatch], None]]:
    """A function that appends one batch to `path` in the retailer's native format."""
    if retailer_id in ("alpha", "delta"):
        with _csv_writer(path, schema, "," if retailer_id == "alpha" else ";") as csv_writer:
            yield csv_writer.write_batch
    elif retailer_id == "gamma":
        with pq.ParquetWriter(path, schema) as pq_writer:
            yield pq_writer.write_batch
    else:
        with pa.OSFile(str(path), "wb") as sink:

            def write(batch: pa.RecordBatch) -> None:
                if batch.num_rows:
                    sink.write(_jsonl(batch))

            yield write


def _write_events(retailer_id: str, path: Path, batches: Iterator[pa.RecordBatch]) -> None:
    with atomic_path(path) as tmp, ExitStack() as stack:
        write: Callable[[pa.RecordBatch], None] | None = None
        for batch in batches:
            if write is None:
                write = stack.enter_context(_event_writer(retailer_id, tmp, batch.schema))
            write(batch)


def _write_crosswalk(world: World, retailer_id: str, path: Path) -> None:
    lst = world.listings.filter(
        pa.array(world.listings.column("retailer_id").to_numpy(False) == retailer_id)
    )
    items = lst.column("item_id")
    gtins = lst.column("gtin")
    with atomic_path(path) as tmp:
        if retailer_id == "alpha":
            t = pa.table({"ITEM_ID": items, "GTIN": gtins})
            with _csv_writer(tmp, t.schema) as w:
                w.write_table(t)
        elif retailer_id == "beta":
            names = dict(
                zip(
                    world.skus.column("gtin").to_pylist(),
                    world.skus.column("name").to_pylist(),
                    strict=True,
                )
            )
            lines = [
                json.dumps({"productId": i, "upc": g[2:], "name": names[g]})
                for i, g in zip(items.to_pylist(), gtins.to_pylist(), strict=True)
            ]
            tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
        elif retailer_id == "gamma":
            pq.write_table(pa.table({"sku_code": items, "gtin": gtins}), tmp)
        else:
            ean = pc.utf8_slice_codeunits(gtins, 1)
            t = pa.table({"item": items, "ean13": ean})
            with _csv_writer(tmp, t.schema, ";") as w:
                w.write_table(t)


def _export_retailer(
    world: World,
    hist: History,
    retailer_id: str,
    out: Path,
    dirt_rate: float,
    tick: Callable[[int], None],
    max_rows: int,
) -> tuple[RetailerExport, dict[str, Any]]:
    rdir = out / "raw" / retailer_id
    files = FILES[retailer_id]
    n_rows = retailer_row_count(world, hist, retailer_id)
    labels = _labels(world, retailer_id)
    plan = plan_dirt(world.seed, retailer_id, n_rows, dirt_rate, 5)
    clock = make_clock(world, world.retailers[retailer_id].timezone)
    exported_s = int(world.exported_at.timestamp())
    batch_fn = _BATCH[retailer_id]
    written = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal written
        offset = 0
        chunks = iter_delivery(world, hist, retailer_id, clock, max_rows)
        # A retailer without deliveries still gets a header-only export.
        for chunk in itertools.chain(chunks, [] if n_rows else [_empty_chunk()]):
            rows = _apply_dirt(chunk, offset, plan, labels, clock, exported_s)
            batch = batch_fn(rows, labels, world.seed)
            n = rows.utc.size
            if rows.dup_after.size:
                order = np.sort(np.concatenate([np.arange(n), rows.dup_after]), kind="stable")
                batch = batch.take(pa.array(order))
            offset += n
            written += batch.num_rows
            tick(n)
            yield batch

    rdir.mkdir(parents=True, exist_ok=True)
    _write_events(retailer_id, rdir / files["events"], batches())
    _write_crosswalk(world, retailer_id, rdir / files["crosswalk"])
    _write_json(
        rdir / "export.json",
        {
            "retailer": retailer_id,
            "exported_at": world.exported_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timezone": world.retailers[retailer_id].timezone,
            "files": files,
        },
    )

    ids = native_ids(retailer_id, plan.rows, world.seed).cast(pa.string()).to_pylist()
    kinds = {
        kind: {
            "count": int((plan.kind == k).sum()),
            "row_ids": [ids[i] for i in np.flatnonzero(plan.kind == k)],
        }
        for k, kind in enumerate(DIRT_KINDS)
    }
    manifest = {"retailer": retailer_id, "rows_written": written, "kinds": kinds}
    summary = RetailerExport(
        retailer_id=retailer_id,
        events=n_rows,
        rows_written=written,
        dirt={k: v["count"] for k, v in kinds.items()},
        files={k: str(rdir / v) for k, v in files.items()} | {"meta": str(rdir / "export.json")},
    )
    return summary, manifest


# -------------------------------------------------------------------------- first party


def _write_firstparty(world: World, hist: History, out: Path) -> dict[str, str]:
    skus = world.skus
    discount, _ = promo_matrix(world)
    lst = world.listings
    li_idx, day = np.nonzero(discount)
    promo = pa.table(
        {
            "retailer_id": lst.column("retailer_id").take(pa.array(li_idx)),
            "gtin": lst.column("gtin").take(pa.array(li_idx)),
            "date": pa.array(
                np.datetime64(world.start, "D") + day.astype("timedelta64[D]"), pa.date32()
            ),
            "discount_pct": discount[li_idx, day],
        }
    )
    D, n_list = hist.sell_units.shape
    sd = np.repeat(np.arange(D), n_list)
    sl = np.tile(np.arange(n_list), D)
    sell = pa.table(
        {
            "date": pa.array(
                np.datetime64(world.start, "D") + sd.astype("timedelta64[D]"), pa.date32()
            ),
            "retailer_id": lst.column("retailer_id").take(pa.array(sl)),
            "gtin": lst.column("gtin").take(pa.array(sl)),
            "units": hist.sell_units.ravel(),
            "revenue": hist.sell_revenue.ravel(),
        }
    )
    brand_of_gtin = dict(
        zip(skus.column("gtin").to_pylist(), skus.column("brand_id").to_pylist(), strict=True)
    )
    promo_brand = np.array([brand_of_gtin[g] for g in promo.column("gtin").to_pylist()])
    list_brand = np.array([brand_of_gtin[g] for g in lst.column("gtin").to_pylist()])
    sell_brand = list_brand[sl]
    sku_brand = skus.column("brand_id").to_numpy(False)
    # The brand's own systems hold these; the store's contract lists the columns.
    cols = list(FIRST_PARTY_COLUMNS["skus"])
    paths = {}
    for bid in world.brands:
        bdir = out / "firstparty" / bid
        _write_parquet(bdir / "skus.parquet", skus.filter(pa.array(sku_brand == bid)).select(cols))
        _write_parquet(bdir / "promotions.parquet", promo.filter(pa.array(promo_brand == bid)))
        _write_parquet(bdir / "sellthrough.parquet", sell.filter(pa.array(sell_brand == bid)))
        paths[bid] = str(bdir)
    return paths


# ------------------------------------------------------------------------------ driver


def write_exports(
    world: World,
    out_dir: Path | str,
    events: int = 1_000_000,
    dirt_rate: float = 0.005,
    progress: bool = False,
    max_chunk_rows: int = 250_000,
) -> ExportSummary:
    """Simulate the history and write raw/ (native retailer exports), world/ (truth) and
    firstparty/ (brand data) under `out_dir`. `events` is the number of delivery records
    across all retailers before duplicate rows are added."""
    t0 = _time.perf_counter()
    if (
        isinstance(events, bool)
        or not isinstance(events, Integral)
        or not 1 <= events <= MAX_EVENTS
    ):
        raise RMNError(f"events must be an integer between 1 and {MAX_EVENTS:,}, got {events!r}")
    events = int(events)
    if not isinstance(dirt_rate, int | float) or not 0 <= dirt_rate <= MAX_DIRT_RATE:
        raise RMNError(f"dirt_rate must be between 0 and {MAX_DIRT_RATE}, got {dirt_rate!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RMNError(f"output path {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RMNError(f"cannot create output directory {out}: {err.strerror}") from None

    from tqdm import tqdm

    hist = simulate_history(world, events)
    total = int(hist.rows.sum())
    bar = tqdm(
        total=total,
        unit="rows",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        desc="delivery records",
    )
    retailers: dict[str, RetailerExport] = {}
    manifests: dict[str, dict[str, Any]] = {}
    try:
        for rid in world.retailers:
            bar.set_postfix_str(rid)
            retailers[rid], manifests[rid] = _export_retailer(
                world, hist, rid, out, float(dirt_rate), bar.update, max_chunk_rows
            )
    finally:
        bar.close()

    wdir = world_dir(out)
    for rid, manifest in manifests.items():
        _write_json(wdir / "dirt" / f"{rid}.json", manifest)
    _write_parquet(wdir / "history_truth.parquet", history_table(world, hist))
    for name in WORLD_TABLES:
        _write_parquet(wdir / f"{name}.parquet", getattr(world, name))
    fp = _write_firstparty(world, hist, out)

    dirt_totals = {k: sum(r.dirt[k] for r in retailers.values()) for k in DIRT_KINDS}
    exports_meta = {"events": events, "dirt_rate": float(dirt_rate)}
    # world.json goes last: its presence means the world on disk is complete.
    _write_json(wdir / "world.json", world_json(world) | {"exports": exports_meta})
    return ExportSummary(
        out_dir=str(out),
        seed=world.seed,
        start=world.start.isoformat(),
        days=world.days,
        flight_days=world.flight_days,
        events_requested=events,
        events=total,
        rows_written=sum(r.rows_written for r in retailers.values()),
        dirt_rate=float(dirt_rate),
        retailers=retailers,
        dirt=dirt_totals,
        paths={
            "raw": str(out / "raw"),
            "world": str(wdir),
            "history_truth": str(wdir / "history_truth.parquet"),
            "dirt_manifests": str(wdir / "dirt"),
            "firstparty": str(out / "firstparty"),
        }
        | {f"firstparty_{b}": p for b, p in fp.items()},
        seconds=round(_time.perf_counter() - t0, 3),
    )
