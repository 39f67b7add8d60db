"""Native retailer exports, first-party brand data and the world's truth on disk.

`write_exports(world, out_dir)` simulates the history and writes, under `out_dir`:
raw/<retailer>/ (each retailer's delivery records in its own format, `tools.world.formats`,
with a known share of dirty rows, `tools.world.dirt`), world/ (the truth and the dirt
manifests), and the market's catalog as any user's is laid out (`tools.catalog`):
retailers/<retailer>/ (mapping and policies) and brands/<brand>/ (brand.yaml, guide, and the
brand's own first-party files in the documented schema, `tools.firstparty`). Every file is
written to a temporary name and renamed into place (`tools.world.files`), so a failed run never
leaves a half-written file where a good one was.
"""

from __future__ import annotations

import itertools
import sys
import time as _time
from collections.abc import Callable, Iterator
from datetime import timedelta
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel
from tqdm import tqdm

from tools.errors import RMNError
from tools.paths import bundled_catalog_dir
from tools.seeds import rng_for
from tools.world.dirt import DIRT_KINDS, DirtPlan, apply_dirt, plan_dirt
from tools.world.files import write_bytes, write_json, write_parquet
from tools.world.formats import (
    BATCH,
    FILES,
    native_ids,
    native_labels,
    write_crosswalk,
    write_events,
)
from tools.world.geo import NationalSales, geo_shares, simulate_geo_sales
from tools.world.simulate import (
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


def _export_retailer(
    world: World,
    hist: History,
    retailer_id: str,
    out: Path,
    dirt_rate: float,
    tick: Callable[[int], None],
    max_rows: int,
) -> tuple[RetailerExport, dict[str, Any]]:
    """Write one retailer's events, crosswalk and export.json; returns its summary and its
    dirt manifest."""
    rdir = out / "raw" / retailer_id
    files = FILES[retailer_id]
    n_rows = retailer_row_count(world, hist, retailer_id)
    plan = plan_dirt(world.seed, retailer_id, n_rows, dirt_rate, 5)
    written = 0

    def tally(n_in: int, n_out: int) -> None:
        nonlocal written
        written += n_out
        tick(n_in)

    rdir.mkdir(parents=True, exist_ok=True)
    batches = _native_batches(world, hist, retailer_id, plan, n_rows, max_rows, tally)
    write_events(retailer_id, rdir / files["events"], batches)
    write_crosswalk(world, retailer_id, rdir / files["crosswalk"])
    write_json(
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


def _native_batches(
    world: World,
    hist: History,
    retailer_id: str,
    plan: DirtPlan,
    n_rows: int,
    max_rows: int,
    tally: Callable[[int, int], None],
) -> Iterator[pa.RecordBatch]:
    """The retailer's delivery records in its native columns, chunk by chunk, dirt applied
    and duplicate rows copied; `tally(records, rows written)` after each chunk."""
    labels = native_labels(world, retailer_id)
    clock = make_clock(world, world.retailers[retailer_id].timezone)
    exported_s = int(world.exported_at.timestamp())
    batch_fn = BATCH[retailer_id]
    offset = 0
    chunks = iter_delivery(world, hist, retailer_id, clock, max_rows)
    # A retailer without deliveries still gets a header-only export.
    for chunk in itertools.chain(chunks, [] if n_rows else [_empty_chunk()]):
        rows = apply_dirt(chunk, offset, plan, labels, clock, exported_s)
        batch = batch_fn(rows, labels, world.seed)
        n = rows.utc.size
        if rows.dup_after.size:
            order = np.sort(np.concatenate([np.arange(n), rows.dup_after]), kind="stable")
            batch = batch.take(pa.array(order))
        offset += n
        tally(n, batch.num_rows)
        yield batch


# -------------------------------------------------------------------------- first party


def _promotion_runs(world: World, discount: np.ndarray) -> pa.Table:
    """The promotions calendar as the brand keeps it: one row per run of consecutive days
    with one discount on one listing (`start_date`..`end_date`)."""
    lst = world.listings
    rows: dict[str, list[Any]] = {k: [] for k in ("retailer_id", "gtin", "start_date",
                                                   "end_date", "discount_pct")}  # fmt: skip
    day0 = world.start
    for li in np.flatnonzero(discount.any(axis=1)):
        d = discount[li]
        on = np.flatnonzero(d)
        # A run breaks where a day is skipped or the discount changes.
        breaks = np.flatnonzero((np.diff(on) != 1) | (np.diff(d[on]) != 0)) + 1
        for run in np.split(on, breaks):
            rows["retailer_id"].append(lst.column("retailer_id")[int(li)].as_py())
            rows["gtin"].append(lst.column("gtin")[int(li)].as_py())
            rows["start_date"].append(day0 + timedelta(days=int(run[0])))
            rows["end_date"].append(day0 + timedelta(days=int(run[-1])))
            rows["discount_pct"].append(float(d[run[0]]))
    return pa.table(rows, schema=pa.schema([
        ("retailer_id", pa.string()), ("gtin", pa.string()), ("start_date", pa.date32()),
        ("end_date", pa.date32()), ("discount_pct", pa.float64())]))  # fmt: skip


def _geo_sales(
    world: World, hist: History, lst: pd.DataFrame, brand_of: pd.Series, brand: str
) -> pa.Table:
    """The brand's daily sales by DMA at each retailer it sells at (its market data): the
    national sell-through split over DMAs with each market's own drift and noise
    (`tools.world.geo`)."""
    mine = (lst["gtin"].map(brand_of) == brand).to_numpy()
    D = hist.sell_revenue.shape[0]
    days = [world.start + timedelta(days=d) for d in range(D)]
    codes = world.dmas.column("code").to_pylist()
    frames = []
    for retailer in world.retailers:
        at = mine & (lst["retailer_id"] == retailer).to_numpy()
        if not at.any():
            continue
        national = NationalSales(
            world.start,
            hist.sell_revenue[:, at].sum(axis=1),
            hist.sell_units[:, at].sum(axis=1).astype(float),
        )
        seed = int(rng_for(world.seed, "geo_sales", brand, retailer).integers(2**31))
        sales = simulate_geo_sales(national, geo_shares(world, retailer), 1, seed)[0]
        frames.append(
            pd.DataFrame(
                {
                    "date": np.tile(days, len(codes)),
                    "retailer_id": retailer,
                    "geo": np.repeat(codes, D),
                    "revenue": np.round(sales.ravel(), 2),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return pa.Table.from_pandas(out, preserve_index=False)


def _write_catalog(world: World, out: Path) -> None:
    """The cast as catalog files, copied from the bundled catalog: each retailer's folder
    (mapping and policies) and each brand's (brand.yaml and its guide), so the market's data
    directory is a catalog of its own, read the way any user's is."""
    bundled = bundled_catalog_dir()
    for kind, ids in (("retailers", world.retailers), ("brands", world.brands)):
        for entry in ids:
            src = bundled / kind / entry
            for path in sorted(src.glob("*")):
                if path.is_file() and path.suffix in (".md", ".yaml"):
                    write_bytes(out / kind / entry / path.name, path.read_bytes())


def _write_firstparty(world: World, hist: History, out: Path) -> dict[str, str]:
    """Each brand's first-party files in the documented schema (`tools.firstparty`), in its
    catalog folder `brands/<brand>/`."""
    skus = world.skus.to_pandas().set_index("gtin")
    lst = world.listings.to_pandas()
    discount, _ = promo_matrix(world)
    promo = _promotion_runs(world, discount).to_pandas()
    D, n_list = hist.sell_units.shape
    sell = pd.DataFrame(
        {
            "date": np.repeat(
                np.datetime64(world.start, "D") + np.arange(D).astype("timedelta64[D]"), n_list
            ),
            "retailer_id": np.tile(lst["retailer_id"].to_numpy(), D),
            "gtin": np.tile(lst["gtin"].to_numpy(), D),
            "units": hist.sell_units.ravel(),
            "revenue": hist.sell_revenue.ravel(),
        }
    )
    sell["date"] = sell["date"].dt.date
    brand_of = skus["brand_id"]
    paths = {}
    for bid in world.brands:
        bdir = out / "brands" / bid
        # Products in the order of the brand's SKU table, each with its listings.
        order = pd.Series(np.arange(len(skus)), index=skus.index)
        mine = lst[lst["gtin"].map(brand_of) == bid]
        mine = mine.assign(_o=mine["gtin"].map(order)).sort_values("_o", kind="stable")
        info = skus.loc[mine["gtin"]]
        products = pd.DataFrame(
            {
                "gtin": mine["gtin"].to_numpy(),
                "name": info["name"].to_numpy(),
                "category": info["category"].to_numpy(),
                "price": info["list_price"].to_numpy(),
                "unit_cost": info["unit_cost"].to_numpy(),
                "retailer_id": mine["retailer_id"].to_numpy(),
                "item_id": mine["item_id"].to_numpy(),
            }
        )
        own = skus[skus["brand_id"] == bid]
        stock = pd.DataFrame(
            {
                "gtin": own.index.to_numpy(),
                "stock_units": own["stock_units"].to_numpy(),
                "oos_prob": own["oos_prob"].to_numpy(),
            }
        )
        write_parquet(
            bdir / "products.parquet", pa.Table.from_pandas(products, preserve_index=False)
        )
        write_parquet(bdir / "stock.parquet", pa.Table.from_pandas(stock, preserve_index=False))
        write_parquet(
            bdir / "promotions.parquet",
            pa.Table.from_pandas(promo[promo["gtin"].map(brand_of) == bid], preserve_index=False),
        )
        write_parquet(
            bdir / "sellthrough.parquet",
            pa.Table.from_pandas(sell[sell["gtin"].map(brand_of) == bid], preserve_index=False),
        )
        write_parquet(bdir / "geo_sales.parquet", _geo_sales(world, hist, lst, brand_of, bid))
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
    """Simulate the history and write raw/ (native retailer exports), world/ (truth),
    retailers/ and brands/ (the catalog, with each brand's first-party data) under `out_dir`.
    `events` is the number of delivery records across all retailers before duplicate rows are
    added."""
    t0 = _time.perf_counter()
    events, out = _check_request(events, dirt_rate, out_dir)
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
        write_json(wdir / "dirt" / f"{rid}.json", manifest)
    write_parquet(wdir / "history_truth.parquet", history_table(world, hist))
    for name in WORLD_TABLES:
        write_parquet(wdir / f"{name}.parquet", getattr(world, name))
    _write_catalog(world, out)
    fp = _write_firstparty(world, hist, out)

    exports_meta = {"events": events, "dirt_rate": float(dirt_rate)}
    # world.json goes last: its presence means the world on disk is complete.
    write_json(wdir / "world.json", world_json(world) | {"exports": exports_meta})
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
        dirt={k: sum(r.dirt[k] for r in retailers.values()) for k in DIRT_KINDS},
        paths={
            "raw": str(out / "raw"),
            "world": str(wdir),
            "history_truth": str(wdir / "history_truth.parquet"),
            "dirt_manifests": str(wdir / "dirt"),
            "retailers": str(out / "retailers"),
            "brands": str(out / "brands"),
        }
        | {f"brand_{b}": p for b, p in fp.items()},
        seconds=round(_time.perf_counter() - t0, 3),
    )


def _check_request(events: int, dirt_rate: float, out_dir: Path | str) -> tuple[int, Path]:
    """Refuse a malformed event count or dirt rate; create the output folder."""
    if (
        isinstance(events, bool)
        or not isinstance(events, Integral)
        or not 1 <= events <= MAX_EVENTS
    ):
        raise RMNError(f"events must be an integer between 1 and {MAX_EVENTS:,}, got {events!r}")
    if not isinstance(dirt_rate, int | float) or not 0 <= dirt_rate <= MAX_DIRT_RATE:
        raise RMNError(f"dirt_rate must be between 0 and {MAX_DIRT_RATE}, got {dirt_rate!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RMNError(f"output path {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RMNError(f"cannot create output directory {out}: {err.strerror}") from None
    return int(events), out
