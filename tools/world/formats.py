"""Each retailer's native export format: its labels for advertisers and placements, its row
ids, column names, units, time zones and file types (Alpha CSV in cents and Chicago time,
Beta JSON Lines in UTC, Gamma Parquet in New York time, Delta `;`-CSV with epoch
milliseconds and "$1,234.56" money strings), and the writers for its events and item
crosswalk. Names, units, time zones and ids differ on purpose: the harmonizer maps them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tools.world.catalog import ITEM_ID_FORMAT, format_native_id, rng_for
from tools.world.files import atomic_path
from tools.world.truth import World

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

BETA_ID_MULT = 387_420_489  # coprime with 10**9: a bijection on 9-digit ids
GAMMA_ID_BASE = 4_100_000_000


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


@dataclass
class NativeLabels:
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


def native_labels(world: World, retailer_id: str) -> NativeLabels:
    li = world.line_items
    mask = li.column("retailer_id").to_numpy(False) == retailer_id
    sub = li.filter(pa.array(mask))
    placements = sub.column("placement").to_pylist()
    adv = ADVERTISERS[retailer_id]
    plc = PLACEMENT_LABELS[retailer_id]
    auds = [a.audience_id for a in world.audiences if a.retailer_id == retailer_id]
    return NativeLabels(
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
class DeliveryRows:
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


def _ts(seconds: np.ndarray, mask: np.ndarray, unit: str) -> pa.Array:
    values = seconds.astype("datetime64[s]").astype(f"datetime64[{unit}]")
    return pa.array(values, pa.timestamp(unit), mask=mask)


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


def _common_columns(
    r: DeliveryRows, lab: NativeLabels, retailer_id: str, seed: int
) -> dict[str, pa.Array]:
    """The columns every retailer exports, before its own names, units and formats."""
    ll = pa.array(r.local_line)
    return {
        "id": native_ids(retailer_id, r.idx, seed),
        "advertiser": lab.advertiser.take(ll),
        "campaign": lab.campaign.take(ll),
        "dma": lab.dma.take(pa.array(r.dma)),
        "placement": r.placement,
        "audience": lab.audience.take(pa.array(r.audience)),
        "item": r.item,
        "impressions": pa.array(r.impressions, pa.int64()),
        "clicks": pa.array(r.clicks, pa.int64()),
        "orders": pa.array(r.orders, pa.int64()),
        "units": pa.array(r.units, pa.int64()),
    }


def _batch_alpha(r: DeliveryRows, lab: NativeLabels, seed: int) -> pa.RecordBatch:
    c = _common_columns(r, lab, "alpha", seed)
    return pa.RecordBatch.from_pydict(
        {
            "ROW_ID": c["id"],
            "ADVERTISER_ID": c["advertiser"],
            "CAMPAIGN_ID": c["campaign"],
            "EVENT_HOUR_LOCAL": _ts(r.local, r.null_ts, "s"),
            "DMA_CODE": c["dma"].cast(pa.int64()),
            "PLACEMENT_TYPE": c["placement"],
            "AUDIENCE_SEGMENT": c["audience"],
            "ITEM_ID": c["item"],
            "IMPRESSIONS": c["impressions"],
            "CLICKS": c["clicks"],
            "ORDERS": c["orders"],
            "SPEND_CENTS": pa.array(r.spend_cents, pa.int64(), mask=r.null_cost),
            "SALES_CENTS": pa.array(r.sales_cents, pa.int64()),
            "UNITS": c["units"],
        }
    )


def _batch_beta(r: DeliveryRows, lab: NativeLabels, seed: int) -> pa.RecordBatch:
    c = _common_columns(r, lab, "beta", seed)
    return pa.RecordBatch.from_pydict(
        {
            "eventId": c["id"],
            "advertiserName": c["advertiser"],
            "campaignId": c["campaign"],
            "timestampUtc": pc.strftime(_ts(r.utc, r.null_ts, "s"), format="%Y-%m-%dT%H:%M:%SZ"),
            "dma": c["dma"],
            "placement": c["placement"],
            "audience": c["audience"],
            "productId": c["item"],
            "impressions": c["impressions"],
            "clicks": c["clicks"],
            "orders": c["orders"],
            "units": c["units"],
            "cost": pa.array(r.spend_cents / 100, pa.float64(), mask=r.null_cost),
            "attributedSales": pa.array(r.sales_cents / 100, pa.float64()),
        }
    )


def _batch_gamma(r: DeliveryRows, lab: NativeLabels, seed: int) -> pa.RecordBatch:
    c = _common_columns(r, lab, "gamma", seed)
    return pa.RecordBatch.from_pydict(
        {
            "event_id": c["id"],
            "advertiser": c["advertiser"],
            "campaign": c["campaign"],
            "ts_local": _ts(r.local, r.null_ts, "us"),
            "dma_code": c["dma"],
            "placement_name": c["placement"],
            "audience_code": c["audience"],
            "sku_code": c["item"],
            "imps": c["impressions"],
            "clks": c["clicks"],
            "convs": c["orders"],
            "units": c["units"],
            "cost_usd": pa.array(r.spend_cents / 100, pa.float64(), mask=r.null_cost),
            "revenue_usd": pa.array(r.sales_cents / 100, pa.float64()),
            # Search ads are text results: viewability is not measured for them.
            "viewable_pct": pa.array(r.viewable, pa.float64(), mask=lab.is_search[r.local_line]),
        }
    )


def _batch_delta(r: DeliveryRows, lab: NativeLabels, seed: int) -> pa.RecordBatch:
    c = _common_columns(r, lab, "delta", seed)
    return pa.RecordBatch.from_pydict(
        {
            "id": c["id"],
            "advertiser": c["advertiser"],
            "campaign": c["campaign"],
            "epoch_ms": pa.array(r.utc * 1000, pa.int64(), mask=r.null_ts),
            "geo": pc.binary_join_element_wise("DMA-", c["dma"], ""),
            "placement": c["placement"],
            "audience": c["audience"],
            "item": c["item"],
            "impressions": c["impressions"],
            "clicks": c["clicks"],
            "purchases": c["orders"],
            "units": c["units"],
            "cost": _money(r.spend_cents, r.null_cost),
            "sales": _money(r.sales_cents),
        }
    )


# Delivery records -> one record batch in the retailer's native columns.
BATCH: dict[str, Callable[[DeliveryRows, NativeLabels, int], pa.RecordBatch]] = {
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


def write_events(retailer_id: str, path: Path, batches: Iterator[pa.RecordBatch]) -> None:
    with atomic_path(path) as tmp, ExitStack() as stack:
        write: Callable[[pa.RecordBatch], None] | None = None
        for batch in batches:
            if write is None:
                write = stack.enter_context(_event_writer(retailer_id, tmp, batch.schema))
            write(batch)


def write_crosswalk(world: World, retailer_id: str, path: Path) -> None:
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
