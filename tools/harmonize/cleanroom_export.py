"""Aggregates a retailer's own clean room already produced, ingested as that retailer's
clean-room view instead of being re-derived from events.

A retailer's clean room often hands brands aggregates rather than rows: spend and attributed
sales per week (or day), SKU, placement and perhaps geo, already k-anonymous and perhaps noised.
The mapping's `cleanroom_export` section says where that file is, which column is which, and
the threshold (k) and noise the retailer applied; `ingest_export` writes
`<rmis>/<retailer>/cleanroom_view.parquet` with `cleanroom_view.json` (the threshold, the noise,
the files), which the curves read for that retailer (`tools.curves.views`).
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tools.errors import InputDataError
from tools.firstparty.schema import to_gtin14
from tools.rmis import Placement

VIEW_FILE = "cleanroom_view.parquet"
META_FILE = "cleanroom_view.json"
VIEW_COLUMNS = ["period", "period_start", "period_days", "geo", "placement", "gtin", "spend",
                "attributed_sales", "events"]  # fmt: skip


class ExportColumns(BaseModel):
    """Which column of the export is which (week or date, the others as available)."""

    model_config = ConfigDict(extra="forbid")
    week: str | None = None
    date: str | None = None
    sku: str
    placement: str | None = None
    geo: str | None = None
    spend: str
    attributed_sales: str
    events: str | None = None


class CleanRoomExportSpec(BaseModel):
    """The mapping's `cleanroom_export` section."""

    model_config = ConfigDict(extra="forbid")
    file: str = Field(description="a name or glob under the retailer's raw folder")
    delimiter: str = ","
    threshold: int = Field(ge=1, description="the k the retailer's clean room applied")
    noise: Literal["none", "laplace", "gaussian"] = "none"
    epsilon: float | None = Field(None, gt=0, description="the epsilon spent, when noised")
    noise_scale: float | None = Field(
        None, ge=0, description="the scale of the noise on attributed sales, when stated"
    )
    brand_id: str = Field(description="the brand the aggregates are of")
    columns: ExportColumns
    placement_map: dict[str, Placement] = Field(default_factory=dict)
    default_placement: Placement | None = None


class ExportMeta(BaseModel):
    retailer: str
    brand_id: str
    threshold: int
    noise: str
    epsilon: float | None
    noise_scale: float | None
    files: list[str]
    rows: int
    cells_below_threshold: int
    period: str
    history_start: str
    history_end: str


def _number(series: pd.Series, file: Path, column: str) -> pd.Series:
    text = series.astype(str).str.replace(r"[$,\s]", "", regex=True)
    out = pd.to_numeric(text, errors="coerce")
    bad = out.isna() | (out < 0)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 2
        raise InputDataError(
            f"{file}:{row}: column {column!r}: {series.iloc[row - 2]!r} is not a number of 0 or "
            "more; allowed: amounts such as 1234.5 or $1,234.50",
            file=str(file),
        )
    return out.astype(float)


def _read_export_file(path: Path, spec: CleanRoomExportSpec) -> pd.DataFrame:
    """One export file as view rows (one per period x geo x placement x SKU)."""
    c = spec.columns
    raw = pd.read_csv(path, sep=spec.delimiter, dtype=str, keep_default_na=False)
    need = [v for v in c.model_dump().values() if v]
    missing = [col for col in need if col not in raw.columns]
    if missing:
        raise InputDataError(
            f"{path}: column {missing[0]!r} is missing (mapping cleanroom_export.columns); "
            f"columns present: {', '.join(raw.columns)}",
            file=str(path),
        )
    period = "week" if c.week else "date"
    when = pd.to_datetime(raw[c.week or c.date or ""], errors="coerce")
    if when.isna().any():
        row = int(when.isna().to_numpy().nonzero()[0][0]) + 2
        raise InputDataError(f"{path}:{row}: not a date; allowed: YYYY-MM-DD", file=str(path))
    start = when.dt.date
    if period == "week":  # weeks start on Mondays, as the clean room's `week` does
        start = start.map(lambda d: d - timedelta(days=d.weekday()))
    placements = (
        raw[c.placement].map(lambda v: spec.placement_map.get(v.strip(), v.strip()))
        if c.placement
        else pd.Series([spec.default_placement] * len(raw))
    )
    bad = [p for p in placements if str(getattr(p, "value", p)) not in {x.value for x in Placement}]
    if bad:
        raise InputDataError(
            f"{path}: placement {bad[0]!r} is not an RMIS placement; allowed: map it in "
            "cleanroom_export.placement_map",
            file=str(path),
        )
    return pd.DataFrame(
        {
            "period": period,
            "period_start": start,
            "period_days": 7 if period == "week" else 1,
            "geo": raw[c.geo].astype(str) if c.geo else None,
            "placement": [str(getattr(p, "value", p)) for p in placements],
            "gtin": [to_gtin14(v) for v in raw[c.sku]],
            "spend": _number(raw[c.spend], path, c.spend),
            "attributed_sales": _number(raw[c.attributed_sales], path, c.attributed_sales),
            "events": _number(raw[c.events], path, c.events) if c.events else float("nan"),
        }
    )


def ingest_export(
    retailer: str, spec: CleanRoomExportSpec, in_dir: Path, out_dir: Path
) -> ExportMeta:
    """Read the export, map its columns, and write the view and its meta under `out_dir`."""
    files = sorted(p for p in in_dir.glob(spec.file) if p.is_file())
    if not files:
        raise InputDataError(
            f"{in_dir / spec.file}: file not found (mapping cleanroom_export.file)",
            file=str(in_dir / spec.file),
        )
    frames = [_read_export_file(path, spec) for path in files]
    c = spec.columns
    view = pd.concat(frames, ignore_index=True)[VIEW_COLUMNS]
    below = int((view["events"] < spec.threshold).sum()) if c.events else 0
    if below:  # the retailer's own rule, applied again: such a cell should not have come out
        view = view[~(view["events"] < spec.threshold)]
    first: date = min(view["period_start"])
    last: date = max(view["period_start"]) + timedelta(days=int(view["period_days"].iloc[0]) - 1)
    meta = ExportMeta(
        retailer=retailer,
        brand_id=spec.brand_id,
        threshold=spec.threshold,
        noise=spec.noise,
        epsilon=spec.epsilon,
        noise_scale=spec.noise_scale,
        files=[str(p) for p in files],
        rows=len(view),
        cells_below_threshold=below,
        period=str(view["period"].iloc[0]),
        history_start=first.isoformat(),
        history_end=last.isoformat(),
    )
    folder = out_dir / retailer
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{VIEW_FILE}.tmp-{os.getpid()}"
    view.to_parquet(tmp, index=False)
    os.replace(tmp, folder / VIEW_FILE)
    (folder / META_FILE).write_text(meta.model_dump_json(indent=2) + "\n")
    return meta


def read_export(rmis_dir: Path, retailer: str) -> tuple[pd.DataFrame, ExportMeta] | None:
    """The ingested view of a retailer and its meta, or None when it has none."""
    folder = Path(rmis_dir) / retailer
    if not (folder / VIEW_FILE).is_file() or not (folder / META_FILE).is_file():
        return None
    meta = ExportMeta.model_validate(json.loads((folder / META_FILE).read_text()))
    return pd.read_parquet(folder / VIEW_FILE), meta


def export_summary(meta: ExportMeta) -> dict[str, Any]:
    return meta.model_dump(mode="json")
