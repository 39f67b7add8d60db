"""The clean-room-only view: what a brand sees of its line items through each retailer's
clean room (`tools.curves.views` explains both views). Aggregates only: spend and attributed
sales per line item per day where the retailer allows `date`, per week, over the whole
history and over the last four weeks, all k-anonymous (noisy where the retailer requires
differential privacy). Aggregates a retailer's own clean room already exported
(`tools.harmonize.cleanroom_export`) stand for its view as they are.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.cleanroom import CleanRoom, CleanRoomResult, build_query
from tools.curves.views import LINE_KEY, DataView, RetailerAccess, add_suppressed_lines
from tools.errors import RMNError, UnknownBrandError
from tools.harmonize.cleanroom_export import ExportMeta, read_export

RECENT_WEEKS = 4
# Noisy queries the view makes at a retailer that requires differential privacy (history
# window, line totals, recent totals, weekly cells), each spending its epsilon unless the
# same query was released before (`tools.cleanroom` answers it again from the release).
DP_QUERIES_PER_RETAILER = 4
# Without `date`, the first and last weeks' lengths are read off the brand's weekly spend;
# a week counts as full when its spend is at least this share of the median week.
_FULL_WEEK = 0.9
_CELL_COLUMNS = ["gtin", "placement", "period", "start", "days", "spend", "sales", "sales_var"]
# Daily totals define the window when at least this share of its days survived.
_DAYS_SEEN = 0.8


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
    spent = res.dp.charged if res.dp else 0.0
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
    own_end: date,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, RetailerAccess]:
    """Fine and total cells, recent totals and daily pacing of one retailer. The recent weeks
    end at the retailer's own last history day, so that its queries are the same whichever
    retailers are planned with it (and a noisy one released before is reused, free)."""
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
        spent += res.dp.charged if res.dp else 0.0
        return res

    key = ["sku", "placement"]
    totals = run(key)
    last_monday = own_end - timedelta(days=own_end.weekday())
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
    return _cells_frame(retailer, results, window), rec, pacing, access


def _cells_frame(
    retailer: str, results: dict[str, CleanRoomResult], window: tuple[date, date]
) -> pd.DataFrame:
    """One retailer's cells of every period as rows: start and days of each (a week cut to
    the history window), and the variance of the privacy noise on its sales."""
    start, end = window
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
    return cells


def export_cells(
    retailer: str, view: pd.DataFrame, meta: ExportMeta, window: tuple[date, date]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, RetailerAccess]:
    """A retailer's cells from the aggregates its own clean room exported (summed over geo):
    its periods as they came, a total per line over the window, the last four weeks' totals;
    the threshold it applied is its k, and no privacy budget is spent here."""
    key = ["gtin", "placement"]
    fine = view.groupby([*key, "period_start", "period_days"], as_index=False)[
        ["spend", "attributed_sales"]
    ].sum()
    fine = fine.rename(columns={"attributed_sales": "sales", "period_start": "start", "period_days": "days"})  # fmt: skip  # noqa: E501
    fine["period"] = "week" if meta.period == "week" else "day"
    totals = fine.groupby(key, as_index=False)[["spend", "sales"]].sum()
    totals["period"], totals["start"] = "total", window[0]
    totals["days"] = (window[1] - window[0]).days + 1
    noise_var = 2.0 * meta.noise_scale**2 if meta.noise_scale else 0.0
    cells = pd.concat([totals, fine], ignore_index=True)
    cells["sales_var"] = noise_var
    cells = cells.reindex(columns=_CELL_COLUMNS)
    cells.insert(0, "retailer_id", retailer)
    end = date.fromisoformat(meta.history_end)
    recent_from = end - timedelta(days=end.weekday()) - timedelta(weeks=RECENT_WEEKS - 1)
    rec = fine[fine["start"] >= recent_from].groupby(key, as_index=False)[["spend", "sales"]].sum()
    rec = rec.rename(columns={"spend": "recent_spend", "sales": "recent_sales"})
    rec = rec.reindex(columns=["gtin", "placement", "recent_spend", "recent_sales"])
    rec.insert(0, "retailer_id", retailer)
    access = RetailerAccess(
        retailer=retailer,
        k=meta.threshold,
        dp=meta.noise != "none",
        epsilon_spent=0.0,
        history_start=date.fromisoformat(meta.history_start),
        history_end=end,
        lines=len(totals),
        lines_suppressed=0,
        cells={fine["period"].iloc[0]: len(fine)} if len(fine) else {},
        cells_suppressed={},
    )
    return cells, rec, pd.DataFrame(columns=["retailer_id", "placement", "date", "spend"]), access


def _retailer_windows(
    room: CleanRoom,
    data_dir: Path,
    brand: str,
    retailers: list[str] | None,
    dp_epsilon: float | None,
) -> tuple[dict[str, tuple[date, date, float]], dict[str, tuple[pd.DataFrame, ExportMeta]]]:
    """Each retailer's history window (start, end, epsilon spent finding it) and the
    aggregates its own clean room exported, where it did. Retailers where the brand has no
    campaigns are skipped unless named."""
    windows: dict[str, tuple[date, date, float]] = {}
    exports: dict[str, tuple[pd.DataFrame, ExportMeta]] = {}
    for retailer in retailers or room.retailers():
        # Aggregates the retailer's own clean room produced stand for its view as they are.
        found = read_export(data_dir / "rmis", retailer)
        if found is not None and found[1].brand_id == brand:
            exports[retailer] = found
            meta = found[1]
            start = date.fromisoformat(meta.history_start)
            windows[retailer] = (start, date.fromisoformat(meta.history_end), 0.0)
            continue
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
    return windows, exports


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
    the retailer's default epsilon); `DP_QUERIES_PER_RETAILER` queries are made there, so
    the tenant's budget must cover that many times it, less the queries released before
    (answered again free). Retailers where the brand has no campaigns are skipped."""
    room = room or CleanRoom(Path(data_dir))
    windows, exports = _retailer_windows(room, Path(data_dir), brand, retailers, dp_epsilon)
    # Every retailer exported the same history; where suppression hides its first or last
    # days at one retailer, another shows them.
    window = (min(w[0] for w in windows.values()), max(w[1] for w in windows.values()))
    cell_frames, recent_frames, pacing_frames, access = [], [], [], []
    for retailer, (_, own_end, spent) in windows.items():
        if retailer in exports:
            cells, recent, pacing, info = export_cells(retailer, *exports[retailer], window)
        else:
            cells, recent, pacing, info = _retailer_cells(
                room, brand, retailer, window, spent, dp_epsilon, own_end
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
