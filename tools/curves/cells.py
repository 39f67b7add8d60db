"""The cells a curve fit uses: each line item's finest period with enough surviving
clean-room cells (days, else weeks, else its history total), and how much a line's daily
spend varies (`spend_cv`), which sets the saturation of a multi-day cell. The model is in
`tools.curves.fit`'s docstring."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.curves.views import DataView
from tools.errors import RMNError

# Below this many periods a line's own shape is barely identified: it leans on the pooling.
MIN_PERIODS = 4
# A line is fitted on daily cells when at least this many days survived k-anonymity,
# else on weekly cells when at least MIN_PERIODS weeks did, else on its history total.
MIN_DAYS = 14


class CurveFitError(RMNError):
    """A view the curves cannot be fitted from (no line items, no history)."""

    kind = "curve_fit_error"


@dataclass(frozen=True, eq=False)
class Cells:
    """The cells a fit uses, one period kind per line, as arrays."""

    line: np.ndarray
    spend: np.ndarray
    sales: np.ndarray
    days: np.ndarray
    stock_days: np.ndarray
    promo_days: np.ndarray
    sales_var: np.ndarray
    multi_day: np.ndarray
    period: np.ndarray  # per line: "day", "week" or "total"
    n_periods: np.ndarray  # per line
    level: np.ndarray  # per line: mean daily spend over the history (L)


def select_cells(view: DataView, min_days: int = MIN_DAYS, min_weeks: int = MIN_PERIODS) -> Cells:
    """Pick each line's finest period with enough surviving cells. One kind per line: mixing
    a line's weeks with its total would count the same spend twice."""
    c = view.cells
    n = len(view.lines)
    counts = c.groupby(["line", "period"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=np.arange(n), columns=["day", "week", "total"], fill_value=0)
    period = np.where(
        counts["day"].to_numpy() >= min_days,
        "day",
        np.where(counts["week"].to_numpy() >= min_weeks, "week", "total"),
    )
    if (counts["total"].to_numpy() == 0).any():
        raise CurveFitError("every line item needs its history total in the view")
    chosen = c[c["period"].to_numpy() == period[c["line"].to_numpy()]]
    chosen = chosen[chosen["stock_days"] > 0]
    # A line out of stock in every chosen period still has a total: take it at face value.
    lost = np.setdiff1d(np.arange(n), chosen["line"].to_numpy())
    if lost.size:
        period[lost] = "total"
        rescue = c[(c["period"] == "total") & c["line"].isin(lost)].copy()
        rescue["stock_days"] = rescue["days"].astype(float)
        chosen = pd.concat([chosen, rescue]).sort_values(["line", "start"], kind="stable")
    n_periods = np.bincount(chosen["line"], minlength=n)
    lines = view.lines
    return Cells(
        line=chosen["line"].to_numpy(np.int64),
        spend=chosen["spend"].to_numpy(float),
        sales=chosen["sales"].to_numpy(float),
        days=chosen["days"].to_numpy(float),
        stock_days=chosen["stock_days"].to_numpy(float),
        promo_days=chosen["promo_days"].to_numpy(float),
        sales_var=chosen["sales_var"].to_numpy(float),
        multi_day=chosen["days"].to_numpy() > 1,
        period=period,
        n_periods=n_periods,
        level=lines["spend"].to_numpy(float) / lines["days"].to_numpy(float),
    )


def spend_cv(view: DataView, min_coverage: float = 0.9) -> float | None:
    """Day-to-day coefficient of variation of a line's spend, from the brand's daily spend per
    retailer x placement: with independent lines, the variance of the group's daily total is
    kappa^2 times the sum of its lines' squared mean daily spends. Groups with more than
    1 - `min_coverage` of their days suppressed are skipped (the survivors are the busy days).
    None when no group qualifies."""
    pacing = view.pacing
    if pacing.empty:
        return None
    lines = view.lines.assign(level=view.lines["spend"] / view.lines["days"])
    sq = lines.groupby(["retailer_id", "placement"])["level"].apply(lambda s: float((s**2).sum()))
    days = {a.retailer: (a.history_end - a.history_start).days + 1 for a in view.access}
    num = den = 0.0
    for (retailer, placement), grp in pacing.groupby(["retailer_id", "placement"]):
        spend = grp["spend"].to_numpy(float)
        if (retailer, placement) not in sq.index or spend.size < min_coverage * days[retailer]:
            continue
        num += float(((spend - spend.mean()) ** 2).sum())
        den += (spend.size - 1) * float(sq[(retailer, placement)])
    return float(np.sqrt(num / den)) if den > 0 else None
