"""History simulation: daily spend and outcomes per line item, and their split into hourly
delivery records (one placement, SKU, audience and geo in one hour).

Everything is vectorized over line items and days (numpy arrays shaped days x lines) and
over delivery records in chunks of whole days, so memory stays bounded at any event count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from tools.world.catalog import audience_weights, rng_for
from tools.world.truth import World

# fmt: off
# Online shopping by local hour: quiet overnight, lunch bump, evening peak.
DIURNAL_ONLINE = np.array(
    [0.6, 0.4, 0.3, 0.25, 0.25, 0.35, 0.6, 1.0, 1.4, 1.6, 1.7, 1.8,
     1.9, 1.8, 1.7, 1.7, 1.8, 2.0, 2.2, 2.4, 2.4, 2.1, 1.6, 1.0]
)
# In-store screens only play while stores are open (07:00-21:59).
DIURNAL_STORE = np.array(
    [0.0] * 7 + [0.8, 1.0, 1.3, 1.5, 1.7, 1.8, 1.7, 1.6, 1.6, 1.8, 2.0, 1.9, 1.5, 1.0] + [0.0] * 3
)
# fmt: on
# How far past the export the timestamp tables reach (future-dated rows go up to 60 days).
FUTURE_DAYS = 62


@dataclass
class History:
    """Per (day, line item) truth of the history window, arrays shaped (days, lines)."""

    spend_cents: np.ndarray
    incremental_revenue: np.ndarray
    sales_cents: np.ndarray
    discount_pct: np.ndarray
    in_stock: np.ndarray
    rows: np.ndarray
    # Per (day, listing): total sell-through (baseline + incremental).
    sell_units: np.ndarray
    sell_revenue: np.ndarray


def promo_matrix(world: World) -> tuple[np.ndarray, np.ndarray]:
    """(discount_pct, promo_lift) per listing (rows of `world.listings`) and day from `start`
    through the end of the flight."""
    total = world.days + world.flight_days
    lst = world.listings.select(["retailer_id", "gtin"]).to_pandas()
    lst["listing"] = np.arange(len(lst))
    promo = world.promotions.to_pandas()
    merged = promo.merge(lst, on=["retailer_id", "gtin"], how="inner")
    day = (pd.to_datetime(merged["date"]) - pd.Timestamp(world.start)).dt.days.to_numpy()
    discount = np.zeros((len(lst), total))
    lift = np.zeros((len(lst), total))
    li = merged["listing"].to_numpy()
    discount[li, day] = merged["discount_pct"].to_numpy()
    lift[li, day] = merged["promo_lift"].to_numpy()
    return discount, lift


def simulate_history(world: World, events: int) -> History:
    """Daily spend and outcomes per line item. When `events` is small, fewer line-days
    deliver, so that every delivering line-day still has at least one record."""
    rng = rng_for(world.seed, "history")
    li = world.line_items
    listing = li.column("listing").to_numpy()
    spend_cents = _daily_spend(world, rng, events)
    listing_in_stock = _stock_runs(world)

    discount_all, lift_all = promo_matrix(world)
    discount_l = discount_all[:, : world.days].T  # (D, listings)
    lift_l = lift_all[:, : world.days].T
    in_stock = listing_in_stock[:, listing]
    mult = 1.0 + lift_l[:, listing]

    a = li.column("a").to_numpy()
    b = li.column("b").to_numpy()
    s = spend_cents / 100.0
    noise = np.exp(0.2 * rng.normal(size=spend_cents.shape) - 0.02)
    inc = mult * a * -np.expm1(-s / b) * in_stock * noise
    # Attributed sales are an unbiased but noisy read of incremental revenue.
    attributed = inc * rng.gamma(6.0, 1.0 / 6.0, size=spend_cents.shape)
    sell_units, sell_revenue = _sell_through(world, inc, discount_l, lift_l, listing_in_stock)
    return History(
        spend_cents=spend_cents,
        incremental_revenue=inc,
        sales_cents=np.round(attributed * 100).astype(np.int64),
        discount_pct=discount_l[:, listing],
        in_stock=in_stock,
        rows=_delivery_rows(world, spend_cents, events),
        sell_units=sell_units,
        sell_revenue=sell_revenue,
    )


def _daily_spend(world: World, rng: np.random.Generator, events: int) -> np.ndarray:
    """(days, lines) spend in cents: lognormal around each line's level, with low days,
    pulses and dark days so the response curves can be identified from the data; thinned so
    that no more line-days deliver than there are `events`."""
    level = world.line_items.column("hist_spend_level").to_numpy()
    D, L = world.days, level.shape[0]
    sigma = 0.45
    spend = level * np.exp(sigma * rng.normal(size=(D, L)) - sigma**2 / 2)
    spend *= np.where(rng.random((D, L)) < 0.08, 0.15, 1.0)
    spend *= np.where(rng.random((D, L)) < 0.05, rng.uniform(2.5, 4.0, size=(D, L)), 1.0)
    p_active = min(0.9, events / (1.5 * D * L))
    active = rng.random((D, L)) < p_active
    spend_cents = np.where(active, np.round(spend * 100), 0).astype(np.int64)
    delivering = np.flatnonzero(spend_cents.ravel() > 0)
    if delivering.size > events:
        thin = rng_for(world.seed, "history-thin")
        drop = thin.choice(delivering, size=delivering.size - events, replace=False)
        spend_cents.ravel()[drop] = 0
    return spend_cents


def _stock_runs(world: World) -> np.ndarray:
    """(days, listings) in stock. Stock-outs come in runs: a two-state Markov chain per
    listing whose stationary out-of-stock share is the SKU's history stock-out probability."""
    n_listings = world.listings.num_rows
    sku_oos = dict(
        zip(
            world.skus.column("gtin").to_pylist(),
            world.skus.column("hist_oos_prob").to_pylist(),
            strict=True,
        )
    )
    p_oos = np.array([sku_oos[g] for g in world.listings.column("gtin").to_pylist()])
    recover = 0.35
    p_break = p_oos * recover / np.maximum(1 - p_oos, 1e-9)
    stock_rng = rng_for(world.seed, "stock")
    out = stock_rng.random(n_listings) < p_oos
    listing_in_stock = np.empty((world.days, n_listings), dtype=bool)
    for d in range(world.days):
        u = stock_rng.random(n_listings)
        out = np.where(out, u >= recover, u < p_break)
        listing_in_stock[d] = ~out
    return listing_in_stock


def _delivery_rows(world: World, spend_cents: np.ndarray, events: int) -> np.ndarray:
    """(days, lines) delivery records: at least one per delivering line-day, the rest in
    proportion to spend."""
    flat = spend_cents.ravel()
    on = flat > 0
    rows = np.zeros(flat.size, dtype=np.int64)
    n_on = int(on.sum())
    if n_on:
        w = flat[on].astype(float)
        rows[on] = 1 + rng_for(world.seed, "rows").multinomial(events - n_on, w / w.sum())
    return rows.reshape(spend_cents.shape)


def _sell_through(
    world: World,
    inc: np.ndarray,
    discount_l: np.ndarray,
    lift_l: np.ndarray,
    listing_in_stock: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(units, revenue) per (day, listing): an organic baseline (promotions lift it too)
    plus the ads' incremental sales."""
    li = world.line_items
    listing = li.column("listing").to_numpy()
    n_listings = world.listings.num_rows
    D = world.days
    price = li.column("list_price").to_numpy()
    base_rng = rng_for(world.seed, "baseline")
    a_by_listing = np.bincount(listing, weights=li.column("a").to_numpy(), minlength=n_listings)
    listing_price = np.zeros(n_listings)
    listing_price[listing] = price
    base_units = a_by_listing * base_rng.uniform(1.0, 3.0, n_listings) / listing_price
    dow = (np.datetime64(world.start, "D") + np.arange(D)).astype("datetime64[D]").astype(int)
    weekly = np.where((dow + 3) % 7 >= 5, 1.15, 0.95)  # 1970-01-01 was a Thursday
    base = (
        base_units
        * weekly[:, None]
        * (1 + 0.8 * lift_l)
        * listing_in_stock
        * np.exp(0.1 * base_rng.normal(size=(D, n_listings)))
    )
    eff_price = listing_price * (1 - discount_l / 100)
    inc_by_listing = np.zeros((D, n_listings))
    np.add.at(inc_by_listing.T, listing, inc.T)
    sell_revenue = np.round(base * eff_price + inc_by_listing, 2)
    sell_units = np.round(sell_revenue / eff_price).astype(np.int64)
    return sell_units, sell_revenue


def history_table(world: World, hist: History) -> pa.Table:
    """history_truth.parquet: one row per (date, line item); `date` is the retailer's local
    date, the day its delivery records fall on in its own time zone."""
    D, L = hist.spend_cents.shape
    li = world.line_items
    day = np.repeat(np.arange(D), L)
    line = np.tile(np.arange(L), D)
    dates = np.datetime64(world.start, "D") + day.astype("timedelta64[D]")
    return pa.table(
        {
            "date": pa.array(dates, pa.date32()),
            "retailer_id": li.column("retailer_id").take(line),
            "placement": li.column("placement").take(line),
            "gtin": li.column("gtin").take(line),
            "brand_id": li.column("brand_id").take(line),
            "spend": hist.spend_cents.ravel() / 100.0,
            "incremental_revenue": hist.incremental_revenue.ravel(),
            "attributed_sales": hist.sales_cents.ravel() / 100.0,
            "promo": hist.discount_pct.ravel() > 0,
            "discount_pct": hist.discount_pct.ravel(),
            "in_stock": hist.in_stock.ravel(),
            "delivery_rows": hist.rows.ravel(),
        }
    )


@dataclass
class Clock:
    """UTC instants of a retailer's local days and a lookup from UTC hour to local offset."""

    day_start: np.ndarray  # (days + 1,) epoch seconds of local midnight
    hour0: int  # epoch seconds of the first hour in `offsets`
    offsets: np.ndarray  # seconds east of UTC, per hour from hour0

    def local(self, utc: np.ndarray) -> np.ndarray:
        """Local wall time (as naive epoch seconds) of UTC epoch seconds."""
        return utc + self.offsets[(utc - self.hour0) // 3600]


def make_clock(world: World, tz: str) -> Clock:
    zone = ZoneInfo(tz)
    starts = [
        int(datetime.combine(world.start + timedelta(days=d), time(0), tzinfo=zone).timestamp())
        for d in range(world.days + 1)
    ]
    hour0 = starts[0] - 86400
    end = int(world.exported_at.timestamp()) + (FUTURE_DAYS + 1) * 86400
    n = (end - hour0) // 3600 + 1
    offsets = np.array(
        [
            int(
                datetime.fromtimestamp(hour0 + 3600 * i, UTC)
                .astimezone(zone)
                .utcoffset()
                .total_seconds()
            )
            for i in range(n)
        ],
        dtype=np.int64,
    )
    return Clock(np.array(starts, dtype=np.int64), hour0, offsets)


def _split(total: np.ndarray, counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Split integer cell totals over their rows in proportion to `w`; rows sum exactly to
    each cell's total and are never negative."""
    ends = np.cumsum(counts)
    starts = ends - counts
    cw = np.cumsum(w)
    before_cell = np.where(starts > 0, cw[starts - 1], 0.0)
    cell_sum = cw[ends - 1] - before_cell
    frac = (cw - np.repeat(before_cell, counts)) / np.repeat(cell_sum, counts)
    frac[ends - 1] = 1.0
    upto = np.floor(np.minimum(frac, 1.0) * np.repeat(total, counts)).astype(np.int64)
    prev = np.empty_like(upto)
    prev[1:] = upto[:-1]
    prev[starts] = 0
    return upto - prev


def _draw_hours(rng: np.random.Generator, store: np.ndarray) -> np.ndarray:
    u = rng.random(store.size)
    online = np.searchsorted(np.cumsum(DIURNAL_ONLINE) / DIURNAL_ONLINE.sum(), u, side="right")
    instore = np.searchsorted(np.cumsum(DIURNAL_STORE) / DIURNAL_STORE.sum(), u, side="right")
    return np.minimum(np.where(store, instore, online), 23)


def iter_delivery(
    world: World, hist: History, retailer_id: str, clock: Clock, max_rows: int = 500_000
) -> Iterator[dict[str, np.ndarray]]:
    """Delivery records of one retailer in time order, in chunks of whole days (a chunk
    exceeds `max_rows` only when a single day does)."""
    rng = rng_for(world.seed, "delivery", retailer_id)
    li = world.line_items
    lines = np.flatnonzero(li.column("retailer_id").to_numpy(False) == retailer_id)
    if lines.size == 0:
        return
    store = li.column("placement").to_numpy(False)[lines] == "instore_screen"
    cpm = li.column("cpm").to_numpy()[lines]
    ctr = li.column("ctr").to_numpy()[lines]
    price = li.column("list_price").to_numpy()[lines]

    rows = hist.rows[:, lines]  # (days, local lines)
    day_rows = rows.sum(axis=1)
    dma_w = world.dmas.column("weight").to_numpy()
    # Each network over-indexes in some markets.
    dma_w = dma_w * np.exp(0.3 * rng_for(world.seed, "geo", retailer_id).normal(size=dma_w.size))
    dma_cdf = np.cumsum(dma_w) / dma_w.sum()
    aud_cdf = np.cumsum(audience_weights(retailer_id))
    n_hours = np.diff(clock.day_start) // 3600

    d0 = 0
    while d0 < world.days:
        d1 = d0 + 1
        acc = int(day_rows[d0])
        while d1 < world.days and acc + int(day_rows[d1]) <= max_rows:
            acc += int(day_rows[d1])
            d1 += 1
        block = rows[d0:d1]
        cell_day, cell_line = np.nonzero(block)
        counts = block[cell_day, cell_line]
        cell_day = cell_day + d0
        d0 = d1
        if counts.size == 0:
            continue
        glob_line = lines[cell_line]
        spend_cell = hist.spend_cents[cell_day, glob_line]
        sales_cell = hist.sales_cents[cell_day, glob_line]
        eff_price_cell = price[cell_line] * (1 - hist.discount_pct[cell_day, glob_line] / 100)

        n = int(counts.sum())
        cell = np.repeat(np.arange(counts.size), counts)
        local_line = cell_line[cell]
        day = cell_day[cell]
        hour = np.minimum(_draw_hours(rng, store[local_line]), n_hours[day] - 1)
        utc = clock.day_start[day] + hour * 3600
        dma = np.minimum(np.searchsorted(dma_cdf, rng.random(n), side="right"), dma_w.size - 1)
        aud = np.minimum(np.searchsorted(aud_cdf, rng.random(n), side="right"), aud_cdf.size - 1)

        w_spend = rng.gamma(1.5, size=n)
        spend = _split(spend_cell, counts, w_spend)
        sales = _split(sales_cell, counts, w_spend * rng.gamma(4.0, 0.25, size=n))
        imps = np.floor(
            spend / 100 / cpm[local_line] * 1000 * np.exp(0.1 * rng.normal(size=n)) + rng.random(n)
        ).astype(np.int64)
        clicks = rng.binomial(imps, np.minimum(ctr[local_line], 1.0))
        units = np.floor(sales / 100 / eff_price_cell[cell] + rng.random(n)).astype(np.int64)
        orders = np.where(units > 0, 1 + rng.binomial(np.maximum(units - 1, 0), 0.7), 0)
        viewable = np.round(100 * rng.beta(8.0, 3.0, size=n), 1)

        order = np.argsort(utc, kind="stable")
        yield {
            "local_line": local_line[order],
            "utc": utc[order],
            "dma": dma[order],
            "audience": aud[order],
            "spend_cents": spend[order],
            "sales_cents": sales[order],
            "impressions": imps[order],
            "clicks": clicks[order],
            "orders": orders[order],
            "units": units[order],
            "viewable": viewable[order],
        }


def retailer_row_count(world: World, hist: History, retailer_id: str) -> int:
    mask = world.line_items.column("retailer_id").to_numpy(False) == retailer_id
    return int(hist.rows[:, mask].sum())
