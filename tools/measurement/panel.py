"""Geo x period sales, the data every experiment design and readout works on.

panel = GeoPanel(geos, start, sales)            # sales[g, t]: geo g's total in period t
panel = GeoPanel.from_frame(clean_room_rows)    # from long (geo, period, value) rows
panel.slice_days(first, last)                   # (geos, days) daily sales of a window
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tools.measurement.models import ExperimentDesignError


@dataclass(frozen=True)
class GeoPanel:
    """Sales per geo and period: `sales[g, t]` is geo `geos[g]`'s total over the `period_days`
    days starting `start + t * period_days` (daily, or weekly cells starting on Mondays)."""

    geos: tuple[str, ...]
    start: date
    sales: np.ndarray
    period_days: int = 1

    def __post_init__(self) -> None:
        s = np.asarray(self.sales, dtype=float)
        if s.ndim != 2 or s.shape[0] != len(self.geos):
            raise ExperimentDesignError(
                f"geo panel sales must be (geos, periods) = ({len(self.geos)}, ...), "
                f"got shape {s.shape}"
            )
        if self.period_days not in (1, 7):
            raise ExperimentDesignError(f"period_days must be 1 or 7, got {self.period_days}")
        if self.period_days == 7 and self.start.weekday() != 0:
            raise ExperimentDesignError(f"weekly cells start on Mondays; {self.start} is not one")
        if len(set(self.geos)) != len(self.geos):
            raise ExperimentDesignError("geo panel lists a geo twice")
        if not np.isfinite(s).all() or (s < 0).any():
            raise ExperimentDesignError("geo panel sales must be finite and non-negative")
        object.__setattr__(self, "sales", s)

    @property
    def days(self) -> int:
        return self.sales.shape[1] * self.period_days

    @property
    def end(self) -> date:
        """Last day covered (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    def daily(self) -> np.ndarray:
        """(geos, days) daily sales; a weekly cell is spread evenly over its seven days, which
        keeps every whole-week window's mean exact."""
        if self.period_days == 1:
            return self.sales
        return np.repeat(self.sales / self.period_days, self.period_days, axis=1)

    def slice_days(self, first: date, last: date) -> np.ndarray:
        """(geos, days) daily sales for days first..last (inclusive), which must be covered
        by whole cells of the panel."""
        i0, i1 = (first - self.start).days, (last - self.start).days + 1
        if i0 < 0 or i1 > self.days or i0 >= i1:
            raise ExperimentDesignError(
                f"the geo panel covers {self.start}..{self.end}, not {first}..{last}"
            )
        if i0 % self.period_days or i1 % self.period_days:
            raise ExperimentDesignError(
                f"{first}..{last} does not fall on whole {self.period_days}-day cells of the panel"
            )
        return self.daily()[:, i0:i1]

    def until(self, last: date) -> GeoPanel:
        """The panel's cells that end on or before `last`."""
        n = ((last - self.start).days + 1) // self.period_days
        if n <= 0:
            raise ExperimentDesignError(f"the geo panel starts after {last}")
        return GeoPanel(self.geos, self.start, self.sales[:, :n], self.period_days)

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        geo: str = "geo_id",
        period: str = "period",
        value: str = "sales",
        period_days: int | None = None,
    ) -> GeoPanel:
        """A panel from long rows (geo, period start date, value), e.g. the clean-room geo x
        period query. Missing cells are zero; `period_days` is inferred from the dates."""
        df = pd.DataFrame(frame)[[geo, period, value]].copy()
        df[period] = pd.to_datetime(df[period]).dt.normalize()
        if df.empty:
            raise ExperimentDesignError("no geo x period rows to build a panel from")
        dates = np.sort(df[period].unique())
        if period_days is None:
            gaps = np.diff(dates).astype("timedelta64[D]").astype(int)
            period_days = 7 if gaps.size and gaps.min() == 7 else 1
        wide = df.pivot_table(index=geo, columns=period, values=value, aggfunc="sum")
        full = pd.date_range(dates[0], dates[-1], freq=f"{period_days}D")
        wide = wide.reindex(columns=full, fill_value=0.0).fillna(0.0).sort_index()
        return cls(
            geos=tuple(str(g) for g in wide.index),
            start=pd.Timestamp(full[0]).date(),
            sales=wide.to_numpy(dtype=float),
            period_days=period_days,
        )
