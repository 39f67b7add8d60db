"""The experiment for the plan's reserve: a geo holdout or switchback at the retailer that
carries most of the plan's spend, within that retailer's measurement rules, on the panel the
brand's own data supports.

The panel comes from the data directory, never from a simulation: the brand's sales by market
(its `geo_sales` file, or its sell-through when every row carries a geo) make a geo panel;
a clean-room export with a geo column makes one from the retailer's own aggregates; without
either, the brand's national daily sell-through supports a switchback where the retailer
allows one; otherwise no experiment is possible, and the notes say why.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tools.errors import AccessDeniedError, RMNError
from tools.firstparty import FirstPartyStore
from tools.measurement import GeoPanel, design_experiment
from tools.plan import AllocationRow
from tools.plan.labels import retailer_name
from tools.policy import ExperimentType, load_retailer_policy

NATIONAL = "national"
PanelKind = Literal["geo_sales", "cleanroom_geo", "national", "none"]


class MeasurementRequest(BaseModel):
    """The reserve to design an experiment for, and the plan it measures."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path
    tenant: str
    brand: str
    allocation: list[AllocationRow]
    reserve: float = Field(ge=0, description="experiment reserve, USD")
    flight_days: int = Field(28, ge=1, le=366)
    flight_start: date | None = Field(None, description="the flight's first day, if dated")
    expected_iroas: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0)


class PanelSource(BaseModel):
    """Which data an experiment's panel was read from."""

    retailer: str
    kind: PanelKind
    detail: str
    geos: int = 0
    periods: int = 0


class MeasurementPlan(BaseModel):
    experiment: dict[str, Any] | None = Field(None, description="ExperimentDesign as JSON")
    retailer: str | None = None
    panel: PanelSource | None = Field(None, description="the data the design was drawn on")
    notes: list[str] = Field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why there is no experiment, retailer by retailer (the notes less their summary):
        what the report's Experiment section lists."""
        return [] if self.experiment else [n for n in self.notes if n != NONE_CAN_RUN]


# The summary note after every retailer's reason.
NONE_CAN_RUN = "no retailer in the plan can run one"


def _panel_from_long(frame: pd.DataFrame, value: str) -> GeoPanel:
    """A GeoPanel from long (date, geo, value) rows: daily when the dates run day by day,
    weekly when they are Mondays seven days apart; a geo without a row on a date sold 0."""
    days = sorted({d if isinstance(d, date) else pd.Timestamp(d).date() for d in frame["date"]})
    gaps = {(b - a).days for a, b in zip(days, days[1:], strict=False)}
    weekly = gaps == {7} and all(d.weekday() == 0 for d in days)
    step = 7 if weekly else 1
    n = (days[-1] - days[0]).days // step + 1
    index = {days[0] + timedelta(days=i * step): i for i in range(n)}
    geos = sorted(frame["geo"].astype(str).unique())
    at = {g: i for i, g in enumerate(geos)}
    sales = np.zeros((len(geos), n))
    for d, g, v in zip(frame["date"], frame["geo"].astype(str), frame[value], strict=True):
        day = d if isinstance(d, date) else pd.Timestamp(d).date()
        if day not in index:
            raise RMNError(
                f"geo sales dates are neither daily nor weekly (Mondays): {day} breaks the "
                f"series that starts {days[0]}"
            )
        sales[at[g], index[day]] += float(v)
    return GeoPanel(geos=tuple(geos), start=days[0], sales=sales, period_days=step)


_FILES = {"geo_sales": "its regional sales file", "sellthrough": "its sell-through file"}


def geo_panel(
    data_dir: Path, tenant: str, brand: str, retailer: str
) -> tuple[GeoPanel | None, PanelSource]:
    """The panel the brand's data supports at the retailer, and where it came from (see the
    module docstring for the order)."""
    store = FirstPartyStore(Path(data_dir), tenant=tenant, brand=brand)
    geo = store.geo_sales(retailer)
    if len(geo) and geo["geo"].nunique() >= 2:
        panel = _panel_from_long(geo, "revenue")
        source = "geo_sales" if len(store.data().geo_sales) else "sellthrough"
        return panel, PanelSource(
            retailer=retailer,
            kind="geo_sales",
            # In words: "sales by geo (geo_sales file, 50 geos)" read as an internal file.
            detail=f"the brand's past sales in {len(panel.geos)} regions ({_FILES[source]})",
            geos=len(panel.geos),
            periods=panel.sales.shape[1],
        )
    export = Path(data_dir) / "rmis" / retailer / "cleanroom_view.parquet"
    if export.is_file():
        view = pd.read_parquet(export)
        if "geo" in view.columns and view["geo"].notna().any():
            by = view.dropna(subset=["geo"]).rename(columns={"period_start": "date"})
            by = by.groupby(["date", "geo"], as_index=False)["attributed_sales"].sum()
            panel = _panel_from_long(by, "attributed_sales")
            return panel, PanelSource(
                retailer=retailer,
                kind="cleanroom_geo",
                detail=f"{retailer}'s clean-room export by geo ({len(panel.geos)} geos)",
                geos=len(panel.geos),
                periods=panel.sales.shape[1],
            )
    sell = store.sellthrough(retailer).to_pandas()
    if len(sell):
        daily = sell.groupby("date", as_index=False)["revenue"].sum()
        daily["geo"] = NATIONAL
        panel = _panel_from_long(daily, "revenue")
        return panel, PanelSource(
            retailer=retailer,
            kind="national",
            detail=f"the brand's national daily sell-through at {retailer} (no geo column)",
            geos=1,
            periods=panel.sales.shape[1],
        )
    return None, PanelSource(
        retailer=retailer,
        kind="none",
        detail=f"the brand has no sell-through or sales by geo at {retailer}",
    )


def _type_for(panel: GeoPanel, source: PanelSource, retailer: str) -> str | None:
    """The experiment type a national panel allows (switchback), or None for a geo panel
    (the design picks among the retailer's allowed types). Raises when none is possible."""
    if len(panel.geos) > 1:
        return None
    allowed = load_retailer_policy(retailer).measurement.allowed_experiment_types
    if ExperimentType.SWITCHBACK not in allowed:
        names = ", ".join(t.value for t in allowed)
        raise RMNError(
            f"no experiment possible, because the data has no sales by geo ({source.detail}; "
            f"a geo holdout needs a geo column in sell-through or a geo_sales file) and "
            f"{retailer}'s measurement rules allow no switchback (allowed: {names})"
        )
    return ExperimentType.SWITCHBACK.value


def design_measurement(req: MeasurementRequest) -> MeasurementPlan:
    """Design the experiment for the reserve at the retailer that carries most of the plan's
    spend, within that retailer's measurement rules; where its rules or data rule every
    design out, the next retailer by spend. No reserve, or no retailer that allows a design,
    gives no experiment and says why."""
    if req.tenant != req.brand:
        raise AccessDeniedError(
            f"tenant '{req.tenant}' may not design experiments for brand '{req.brand}'",
            tenant=req.tenant,
            brand=req.brand,
        )
    if req.reserve <= 0:
        return MeasurementPlan(notes=["no experiment reserve in the brief: nothing to design"])
    spend: dict[str, float] = {}
    revenue: dict[str, float] = {}
    for row in req.allocation:
        spend[row.retailer_id] = spend.get(row.retailer_id, 0.0) + row.spend
        revenue[row.retailer_id] = revenue.get(row.retailer_id, 0.0) + row.expected_revenue
    ranked = sorted(spend, key=lambda r: (-spend[r], r))
    if not ranked:
        return MeasurementPlan(notes=["the plan funds no retailer: nothing to measure"])
    notes: list[str] = []
    for retailer in ranked:
        name = retailer_name(retailer)
        try:
            panel, source = geo_panel(Path(req.data_dir), req.tenant, req.brand, retailer)
            if panel is None:
                notes.append(f"{name}: no experiment possible, because {source.detail}")
                continue
            design = design_experiment(
                retailer,
                panel,
                req.reserve,
                brand=req.brand,
                experiment_type=_type_for(panel, source, retailer),
                expected_iroas=_own_iroas(spend[retailer], revenue[retailer])
                or req.expected_iroas,
                flight_days=req.flight_days,
                not_before=req.flight_start,
                seed=req.seed,
            )
        except RMNError as err:
            notes.append(f"{name}: {err.detail.get('plain') or err.message}")
            continue
        experiment = design.model_dump(mode="json") | {"data_source": source.detail}
        return MeasurementPlan(experiment=experiment, retailer=retailer, panel=source, notes=notes)
    return MeasurementPlan(notes=[*notes, NONE_CAN_RUN])


def _own_iroas(spend: float, revenue: float) -> float | None:
    """The revenue per ad dollar the plan expects at the retailer the test runs at: the power
    is judged at it. The whole plan's ($2.70) stood beside the test retailer's own ($3.80 at
    Alpha Mart) and understated the test (ua25 of unseen40, round 5)."""
    ratio = revenue / spend if spend > 0 and revenue > 0 else None
    return ratio if ratio is not None and math.isfinite(ratio) else None
