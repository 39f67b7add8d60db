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

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tools.cleanroom import CleanRoom, CleanRoomResult, build_query
from tools.errors import RMNError, UnknownBrandError
from tools.firstparty import FirstPartyStore

ViewKind = Literal["cleanroom", "full"]
Period = Literal["day", "week", "total"]
LINE_KEY = ["retailer_id", "placement", "gtin"]
RECENT_WEEKS = 4
# Without `date`, the first and last weeks' lengths are read off the brand's weekly spend;
# a week counts as full when its spend is at least this share of the median week.
_FULL_WEEK = 0.9
_CELL_COLUMNS = ["gtin", "placement", "period", "start", "days", "spend", "sales", "sales_var"]
# Daily totals define the window when at least this share of its days survived.
_DAYS_SEEN = 0.8


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
    daily spend varies (see `tools.curves.fit.spend_cv`).
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


def _query(room: CleanRoom, **fields: Any) -> CleanRoomResult:
    return room.query(build_query(**fields))


def _history_window(
    room: CleanRoom, brand: str, retailer: str, eps: float | None
) -> tuple[date, date, float]:
    """First and last day of the brand's history at the retailer (its local dates), and the
    epsilon spent finding out. Daily totals give it exactly where `date` is allowed and most
    days survive k-anonymity; otherwise weekly totals do, with the first and last weeks'
    lengths read off their spend against the median week."""
    rules = room.rules_for(retailer)
    if "date" in rules.allowed_dimensions and not rules.dp_required:
        res = _query(room, tenant=brand, retailer=retailer, group_by=["date"], metrics=["spend"])
        days = sorted(r["date"] for r in res.rows)
        if days and len(days) >= _DAYS_SEEN * ((days[-1] - days[0]).days + 1):
            return days[0], days[-1], 0.0
    res = _query(
        room, tenant=brand, retailer=retailer, group_by=["week"], metrics=["spend"], dp_epsilon=eps
    )
    weeks = sorted((r["week"], float(r["spend"])) for r in res.rows)
    spent = res.dp.epsilon if res.dp else 0.0
    if not weeks:
        raise RMNError(f"{retailer}'s clean room returned no weeks for brand '{brand}'")
    typical = float(np.median([s for _, s in weeks]))

    def length(spend: float) -> int:
        share = spend / typical if typical > 0 else 1.0
        return 7 if share >= _FULL_WEEK else int(np.clip(round(7 * share), 1, 7))

    start = weeks[0][0] + timedelta(days=7 - length(weeks[0][1]))
    end = weeks[-1][0] + timedelta(days=length(weeks[-1][1]) - 1)
    return start, end, spent


def _dp_var(res: CleanRoomResult) -> float:
    """Variance of the Laplace noise on each attributed-sales sum (0 without DP)."""
    if res.dp is None:
        return 0.0
    return 2.0 * res.dp.noise_scale.get("attributed_sales", 0.0) ** 2


def _epsilon(room: CleanRoom, retailer: str, dp_epsilon: float | None) -> float | None:
    rules = room.rules_for(retailer)
    return (dp_epsilon or rules.default_epsilon) if rules.dp_required else None


def _retailer_cells(
    room: CleanRoom,
    brand: str,
    retailer: str,
    window: tuple[date, date],
    spent: float,
    dp_epsilon: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, RetailerAccess]:
    """Fine and total cells, recent totals and daily pacing of one retailer."""
    rules = room.rules_for(retailer)
    eps = _epsilon(room, retailer, dp_epsilon)
    metrics = ["spend", "attributed_sales"]
    start, end = window

    def run(group_by: list[str], filters: list[dict[str, str]] | None = None) -> CleanRoomResult:
        nonlocal spent
        res = _query(
            room,
            tenant=brand,
            retailer=retailer,
            group_by=group_by,
            metrics=metrics,
            filters=filters or [],
            dp_epsilon=eps,
        )
        spent += res.dp.epsilon if res.dp else 0.0
        return res

    key = ["sku", "placement"]
    totals = run(key)
    last_monday = end - timedelta(days=end.weekday())
    recent_from = last_monday - timedelta(weeks=RECENT_WEEKS - 1)
    recent = run(key, [{"field": "week", "op": ">=", "value": recent_from.isoformat()}])
    results: dict[str, CleanRoomResult] = {"total": totals, "week": run([*key, "week"])}
    # Daily cells are too noisy to be worth their privacy budget where noise is added.
    pacing = pd.DataFrame(columns=["retailer_id", "placement", "date", "spend"])
    if "date" in rules.allowed_dimensions and not rules.dp_required:
        results["day"] = run([*key, "date"])
        daily = _query(
            room, tenant=brand, retailer=retailer, group_by=["placement", "date"], metrics=["spend"]
        )
        pacing = pd.DataFrame(daily.rows, columns=daily.columns)
        pacing.insert(0, "retailer_id", retailer)

    frames = []
    for period, res in results.items():
        df = pd.DataFrame(res.rows, columns=res.columns)
        if df.empty:
            continue
        if period == "total":
            df["start"], df["days"] = start, (end - start).days + 1
        elif period == "week":
            df["start"] = [max(w, start) for w in df["week"]]
            df["days"] = [
                (min(w + timedelta(days=6), end) - s).days + 1
                for w, s in zip(df["week"], df["start"], strict=True)
            ]
        else:
            df["start"], df["days"] = df["date"], 1
        df["period"] = period
        df["sales_var"] = _dp_var(res)
        frames.append(df.rename(columns={"sku": "gtin", "attributed_sales": "sales"}))
    cells = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    cells = cells.reindex(columns=_CELL_COLUMNS)
    cells.insert(0, "retailer_id", retailer)

    rec = pd.DataFrame(recent.rows, columns=recent.columns).rename(
        columns={"sku": "gtin", "spend": "recent_spend", "attributed_sales": "recent_sales"}
    )
    rec = rec.reindex(columns=["gtin", "placement", "recent_spend", "recent_sales"])
    rec.insert(0, "retailer_id", retailer)
    access = RetailerAccess(
        retailer=retailer,
        k=totals.k,
        dp=rules.dp_required,
        epsilon_spent=spent,
        history_start=start,
        history_end=end,
        lines=totals.cells_returned,
        lines_suppressed=totals.cells_suppressed,
        cells={p: r.cells_returned for p, r in results.items() if p != "total"},
        cells_suppressed={p: r.cells_suppressed for p, r in results.items() if p != "total"},
    )
    return cells, rec, pacing, access


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


def cleanroom_view(
    data_dir: Path | str,
    brand: str,
    *,
    retailers: list[str] | None = None,
    flight_days: int = 28,
    dp_epsilon: float | None = None,
    room: CleanRoom | None = None,
) -> DataView:
    """Query every retailer's clean room (or `retailers`) for the brand's line items.

    Where a retailer requires differential privacy, each query spends `dp_epsilon` (default:
    the retailer's default epsilon); four queries are made there, so the tenant's budget must
    cover four times that. Retailers where the brand has no campaigns are skipped."""
    room = room or CleanRoom(Path(data_dir))
    windows: dict[str, tuple[date, date, float]] = {}
    for retailer in retailers or room.retailers():
        try:
            windows[retailer] = _history_window(
                room, brand, retailer, _epsilon(room, retailer, dp_epsilon)
            )
        except UnknownBrandError:
            if retailers:
                raise
    if not windows:
        raise UnknownBrandError(
            f"brand '{brand}' has no campaigns in any clean room under {data_dir}", brand=brand
        )
    # Every retailer exported the same history; where suppression hides its first or last
    # days at one retailer, another shows them.
    window = (min(w[0] for w in windows.values()), max(w[1] for w in windows.values()))
    cell_frames, recent_frames, pacing_frames, access = [], [], [], []
    for retailer, (_, _, spent) in windows.items():
        cells, recent, pacing, info = _retailer_cells(
            room, brand, retailer, window, spent, dp_epsilon
        )
        cell_frames.append(cells)
        recent_frames.append(recent)
        pacing_frames.append(pacing)
        access.append(info)
    cells = pd.concat(cell_frames, ignore_index=True)
    cells = cells[(cells["spend"] > 0) & np.isfinite(cells["sales"])].copy()
    cells["sales"] = cells["sales"].clip(lower=0.0)

    totals = cells[cells["period"] == "total"]
    lines = totals[[*LINE_KEY, "spend", "sales", "days"]].reset_index(drop=True)
    lines = lines.merge(pd.concat(recent_frames, ignore_index=True), on=LINE_KEY, how="left")
    lines["suppressed"] = False
    # A SKU seen at a retailer runs on every placement the brand uses there.
    unseen = [
        (retailer, placement, gtin)
        for retailer, at in lines.groupby("retailer_id")
        for placement in at["placement"].unique()
        for gtin in at["gtin"].unique()
    ]
    lines = add_suppressed_lines(lines, unseen, (window[1] - window[0]).days + 1)
    index = pd.Series(np.arange(len(lines)), index=pd.MultiIndex.from_frame(lines[LINE_KEY]))
    keys = pd.MultiIndex.from_frame(cells[LINE_KEY])
    cells["line"] = index.reindex(keys).to_numpy()
    # Fine cells of a line whose total was suppressed cannot be placed on a curve alone.
    cells = cells[cells["line"].notna()].copy()
    cells["line"] = cells["line"].astype(np.int64)
    cells["stock_days"] = cells["days"].astype(float)
    cells["promo_days"] = 0.0
    cells = cells.drop(columns=LINE_KEY).sort_values(["line", "period", "start"], ignore_index=True)
    return DataView(
        kind="cleanroom",
        brand=brand,
        flight_days=flight_days,
        lines=lines,
        cells=cells,
        access=access,
        pacing=pd.concat(pacing_frames, ignore_index=True),
    )


# ------------------------------------------------------------------------ first party


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
    promos = store.promotions().to_pandas()
    sell = store.sellthrough().to_pandas()

    # The brand's SKU table says where each SKU is listed: lines there whose history the
    # clean room suppressed join the view, on the placements the brand uses at the retailer.
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
    added = len(lines) - len(view.lines)
    position = pd.Series(np.arange(len(lines)), index=pd.MultiIndex.from_frame(lines[LINE_KEY]))
    old_keys = view.lines[LINE_KEY].iloc[view.cells["line"].to_numpy()]
    relocated = position.reindex(pd.MultiIndex.from_frame(old_keys)).to_numpy()
    h_start = min(a.history_start for a in view.access)
    h_end = max(a.history_end for a in view.access)
    f_start = flight_start or h_end + timedelta(days=1)
    n_days = (f_start - h_start).days + view.flight_days
    day0 = np.datetime64(h_start, "D")

    # Per listing (retailer x SKU) and calendar day: the discount (a fraction) and whether
    # the SKU was in stock there (any sell-through).
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
    disc = disc[line_listing]
    in_stock = in_stock[line_listing]

    # Cell sums of in-stock days and in-stock discount, from cumulative sums over days.
    cells = view.cells.copy()
    cells["line"] = relocated.astype(np.int64)
    first = (cells["start"].to_numpy(dtype="datetime64[D]") - day0).astype(np.int64)
    last = np.minimum(first + cells["days"].to_numpy(np.int64), n_days)
    first = np.clip(first, 0, n_days)
    line = cells["line"].to_numpy()
    cum_stock = np.concatenate([np.zeros((len(lines), 1)), np.cumsum(in_stock, axis=1)], axis=1)
    cum_promo = np.concatenate(
        [np.zeros((len(lines), 1)), np.cumsum(in_stock * disc, axis=1)], axis=1
    )
    cells["stock_days"] = cum_stock[line, last] - cum_stock[line, first]
    cells["promo_days"] = cum_promo[line, last] - cum_promo[line, first]

    known = lines["gtin"].isin(skus.index).to_numpy()
    price = skus["list_price"].reindex(lines["gtin"]).to_numpy()
    cost = skus["unit_cost"].reindex(lines["gtin"]).to_numpy()
    full_rate = skus["unit_margin"].reindex(lines["gtin"]).to_numpy() / price
    median_rate = float(np.nanmedian(full_rate)) if known.any() else 0.0
    full_rate = np.where(known, full_rate, median_rate)
    oos = np.where(known, skus["oos_prob"].reindex(lines["gtin"]).to_numpy(), 0.0)

    fl = slice(n_days - view.flight_days, n_days)
    f_disc = disc[:, fl]
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
