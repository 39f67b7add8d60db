"""What a brand can see when it fits response curves: two views of the same history.

The clean-room-only view holds aggregates only: spend and attributed sales per line item
(retailer x placement x SKU) per day where the retailer allows `date`, per week, over the
whole history, and over the last four weeks, all k-anonymous (and noisy where the retailer
requires differential privacy). It knows nothing of margins, stock or promotions.

The full view adds the brand's first-party data, joined on the brand's side: each SKU's unit
margin, the flight stock-out probability, the days each listing was out of stock in the
history (no sell-through), and the promotion calendar of the history and the flight.

Both views also list the brand's line items whose history total did not come back (k-anonymity
suppressed it): flagged `suppressed`, with no cells, they get prior-only curves when fitted.
The clean-room-only view infers them from what did come back (a SKU seen at a retailer runs on
every placement the brand uses there); the full view knows from the brand's SKU table which
retailers list each SKU.

`cleanroom_view(data_dir, brand)` runs the clean-room queries; `full_view(view, store)` adds
the first-party data to a clean-room view without asking the clean room again (which would
spend privacy budget twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from tools.errors import RMNError
from tools.firstparty import FirstPartyStore

ViewKind = Literal["cleanroom", "full"]
Period = Literal["day", "week", "total"]
LINE_KEY = ["retailer_id", "placement", "gtin"]


@dataclass(frozen=True)
class RetailerAccess:
    """What one retailer's clean room returned for the view."""

    retailer: str
    k: int
    dp: bool
    epsilon_spent: float
    history_start: date
    history_end: date
    lines: int
    lines_suppressed: int
    cells: dict[str, int]
    cells_suppressed: dict[str, int]


@dataclass(frozen=True, eq=False)
class Economics:
    """The brand's own flight economics per line (full view only), aligned with `lines`.

    Promotion sums run over the flight days: `promo_days` is the sum of the day's discount
    (a fraction), `margin_days` the sum of the day's margin rate at its selling price, and
    `promo_margin_days` the sum of discount x margin rate. With a promotion lift of beta per
    unit of discount, the flight earns `flight_days + beta * promo_days` full-price days of
    response and `margin_days + beta * promo_margin_days` margin-weighted days."""

    margin_rate: np.ndarray
    oos_prob: np.ndarray
    promo_days: np.ndarray
    margin_days: np.ndarray
    promo_margin_days: np.ndarray


@dataclass(frozen=True, eq=False)
class DataView:
    """Aggregates for curve fitting, one row per line item in `lines`.

    `lines`: retailer_id, placement, gtin, spend and sales over the history, days (history
    days), recent_spend and recent_sales (last four weeks; NaN where suppressed), and
    suppressed (no history total came back: k-anonymity hid it, or the line never ran; its
    spend and sales are NaN and it has no cells).
    `pacing`: the brand's daily spend per retailer x placement (retailer_id, placement, date,
    spend) where the retailer allows `date` without noise; it measures how much a line's
    daily spend varies (see `tools.curves.cells.spend_cv`).
    `cells`: one row per returned clean-room cell: line (row of `lines`), period (day, week,
    total), start, days, spend, sales, sales_var (variance of privacy noise on sales),
    stock_days (days the SKU was in stock) and promo_days (sum of the in-stock days'
    discount fractions). The clean-room-only view takes every day as in stock, at full price.
    """

    kind: ViewKind
    brand: str
    flight_days: int
    lines: pd.DataFrame
    cells: pd.DataFrame
    access: list[RetailerAccess]
    pacing: pd.DataFrame = field(default_factory=pd.DataFrame)
    economics: Economics | None = None
    flight_start: date | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def knows_economics(self) -> bool:
        return self.economics is not None


# ------------------------------------------------------------------------ clean room


def add_suppressed_lines(
    lines: pd.DataFrame, keys: list[tuple[str, str, str]], days: int
) -> pd.DataFrame:
    """`lines` plus the (retailer, placement, gtin) `keys` it lacks, flagged suppressed, with
    NaN history; sorted by line key."""
    lines = lines.assign(suppressed=lines.get("suppressed", False))
    have = set(map(tuple, lines[LINE_KEY].to_numpy().tolist()))
    new = sorted({k for k in keys if k not in have})
    extra = pd.DataFrame(new, columns=LINE_KEY)
    extra["days"] = days
    extra["suppressed"] = True
    frames = [lines, extra.reindex(columns=lines.columns)] if new else [lines]
    out = pd.concat(frames, ignore_index=True)
    out["suppressed"] = out["suppressed"].astype(bool)
    out["days"] = out["days"].astype(lines["days"].dtype)
    return out.sort_values(LINE_KEY, ignore_index=True)


def with_prior_only_lines(view: DataView, keys: list[tuple[str, str, str]]) -> DataView:
    """The view plus (retailer, placement, gtin) line items it has no history for, flagged
    suppressed (fitted on prior-only curves): e.g. those of a retailer whose privacy budget
    is spent. Cells keep pointing at their lines."""
    days = int(view.lines["days"].max()) if len(view.lines) else 1
    lines = add_suppressed_lines(view.lines, keys, days)
    position = pd.Series(np.arange(len(lines)), index=pd.MultiIndex.from_frame(lines[LINE_KEY]))
    old_keys = view.lines[LINE_KEY].iloc[view.cells["line"].to_numpy()]
    cells = view.cells.copy()
    cells["line"] = position.reindex(pd.MultiIndex.from_frame(old_keys)).to_numpy()
    return replace(view, lines=lines, cells=cells)


def full_view(
    view: DataView, store: FirstPartyStore, *, flight_start: date | None = None
) -> DataView:
    """The clean-room view plus the brand's first-party data.

    `flight_start` defaults to the day after the last history day; the flight runs
    `view.flight_days` days from it. Lines whose SKU the store does not know keep the
    clean-room assumptions (in stock, full price) and the brand's median margin rate."""
    if view.kind != "cleanroom":
        raise RMNError("full_view takes a clean-room view")
    if store.brand != view.brand:
        raise RMNError(
            f"first-party data of '{store.brand}' cannot extend a view of '{view.brand}'"
        )
    skus = store.skus().to_pandas().set_index("gtin")
    lines, relocated = _with_listed_lines(view, skus)
    added = len(lines) - len(view.lines)
    h_start = min(a.history_start for a in view.access)
    h_end = max(a.history_end for a in view.access)
    f_start = flight_start or h_end + timedelta(days=1)
    cal = _Calendar.of(
        lines, store, h_start, (f_start - h_start).days + view.flight_days, view.flight_days
    )
    cells = view.cells.copy()
    cells["line"] = relocated.astype(np.int64)
    cells["stock_days"], cells["promo_days"] = cal.cell_sums(cells)
    economics, known = _economics(lines, skus, cal)
    notes = list(view.notes)
    if added:
        notes.append(
            f"{added} line(s) listed in the brand's SKU table came back from no clean room "
            "(history suppressed): their curves come from the pooled prior alone"
        )
    if not known.all():
        notes.append(
            f"{int((~known).sum())} line(s) sell SKUs missing from the brand's SKU table: "
            "assumed in stock, at full price and the median margin rate"
        )
    return DataView(
        kind="full",
        brand=view.brand,
        flight_days=view.flight_days,
        lines=lines,
        cells=cells,
        access=view.access,
        pacing=view.pacing,
        economics=economics,
        flight_start=f_start,
        notes=notes,
    )


def _with_listed_lines(view: DataView, skus: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The view's lines plus those the brand's SKU table lists that no clean room returned,
    and where each of the view's cells' lines now sits.

    The brand's SKU table says where each SKU is listed: lines there whose history the clean
    room suppressed join the view, on the placements the brand uses at the retailer."""
    hidden = view.lines.get("suppressed", pd.Series(False, index=view.lines.index))
    seen = view.lines[~hidden.to_numpy(dtype=bool)]
    used = {r: sorted(set(at["placement"])) for r, at in seen.groupby("retailer_id")}
    listed = [
        (retailer, placement, gtin)
        for gtin, where in zip(skus.index, skus["retailers"], strict=True)
        for retailer in list(where)
        for placement in used.get(retailer, [])
    ]
    lines = add_suppressed_lines(view.lines, listed, int(view.lines["days"].max()))
    position = pd.Series(np.arange(len(lines)), index=pd.MultiIndex.from_frame(lines[LINE_KEY]))
    old_keys = view.lines[LINE_KEY].iloc[view.cells["line"].to_numpy()]
    relocated = position.reindex(pd.MultiIndex.from_frame(old_keys)).to_numpy()
    return lines, relocated


@dataclass(frozen=True, eq=False)
class _Calendar:
    """Per line and calendar day from the history's first day through the flight: the
    discount (a fraction) and whether the SKU was in stock at the retailer (any
    sell-through)."""

    day0: np.datetime64
    discount: np.ndarray  # (lines, days)
    in_stock: np.ndarray  # (lines, days)
    flight_days: int

    @classmethod
    def of(
        cls,
        lines: pd.DataFrame,
        store: FirstPartyStore,
        h_start: date,
        n_days: int,
        flight_days: int,
    ) -> _Calendar:
        promos = store.promotions().to_pandas()
        sell = store.sellthrough().to_pandas()
        day0 = np.datetime64(h_start, "D")
        # Per listing (retailer x SKU) first, then spread to its lines.
        listings = lines[["retailer_id", "gtin"]].drop_duplicates(ignore_index=True)
        listing_pos = pd.Series(np.arange(len(listings)), index=pd.MultiIndex.from_frame(listings))
        line_listing = listing_pos.reindex(
            pd.MultiIndex.from_frame(lines[["retailer_id", "gtin"]])
        ).to_numpy()
        disc = np.zeros((len(listings), n_days))
        in_stock = np.ones((len(listings), n_days))

        def locate(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            day = (frame["date"].to_numpy(dtype="datetime64[D]") - day0).astype(np.int64)
            row = listing_pos.reindex(pd.MultiIndex.from_frame(frame[["retailer_id", "gtin"]]))
            row = row.to_numpy(dtype=float)
            keep = (day >= 0) & (day < n_days) & ~np.isnan(row)
            return row[keep].astype(np.int64), day[keep], keep

        if not promos.empty:
            rows, days, keep = locate(promos)
            disc[rows, days] = promos["discount_pct"].to_numpy()[keep] / 100.0
        if not sell.empty:
            rows, days, keep = locate(sell)
            in_stock[rows, days] = (sell["units"].to_numpy()[keep] > 0).astype(float)
        return cls(day0, disc[line_listing], in_stock[line_listing], flight_days)

    def cell_sums(self, cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's in-stock days and in-stock discount days, from cumulative sums."""
        n_lines, n_days = self.in_stock.shape
        first = (cells["start"].to_numpy(dtype="datetime64[D]") - self.day0).astype(np.int64)
        last = np.minimum(first + cells["days"].to_numpy(np.int64), n_days)
        first = np.clip(first, 0, n_days)
        line = cells["line"].to_numpy()
        zero = np.zeros((n_lines, 1))
        cum_stock = np.concatenate([zero, np.cumsum(self.in_stock, axis=1)], axis=1)
        cum_promo = np.concatenate([zero, np.cumsum(self.in_stock * self.discount, axis=1)], axis=1)
        return (
            cum_stock[line, last] - cum_stock[line, first],
            cum_promo[line, last] - cum_promo[line, first],
        )

    @property
    def flight_discount(self) -> np.ndarray:
        n_days = self.discount.shape[1]
        return self.discount[:, n_days - self.flight_days : n_days]


def _economics(
    lines: pd.DataFrame, skus: pd.DataFrame, cal: _Calendar
) -> tuple[Economics, np.ndarray]:
    """The flight economics per line, and which lines' SKUs the brand's table knows (the
    others take the median margin rate, in stock)."""
    known = lines["gtin"].isin(skus.index).to_numpy()
    price = skus["list_price"].reindex(lines["gtin"]).to_numpy()
    cost = skus["unit_cost"].reindex(lines["gtin"]).to_numpy()
    full_rate = skus["unit_margin"].reindex(lines["gtin"]).to_numpy() / price
    median_rate = float(np.nanmedian(full_rate)) if known.any() else 0.0
    full_rate = np.where(known, full_rate, median_rate)
    oos = np.where(known, skus["oos_prob"].reindex(lines["gtin"]).to_numpy(), 0.0)

    f_disc = cal.flight_discount
    with np.errstate(divide="ignore", invalid="ignore"):
        day_rate = 1.0 - cost[:, None] / (price[:, None] * (1.0 - f_disc))
    day_rate = np.where(known[:, None], day_rate, median_rate)
    economics = Economics(
        margin_rate=full_rate,
        oos_prob=oos,
        promo_days=f_disc.sum(axis=1),
        margin_days=day_rate.sum(axis=1),
        promo_margin_days=(f_disc * day_rate).sum(axis=1),
    )
    return economics, known
