"""What an approved plan looks like on its way to the networks' portals: per retailer, one row
per line item (product, the network's item id, placement, daily budget, flight, total, the
experiment's holdout where one is planned), plus the network's bulk-upload layout where the
network documents one (`tools.export.bulk`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools.catalog import current
from tools.errors import RMNError
from tools.firstparty import FirstPartyStore
from tools.pipeline.query import flight_days
from tools.plan import Plan


class ExportError(RMNError):
    """A plan that cannot be exported (not approved, no lines, an unknown format)."""

    kind = "export_error"


class ExportLine(BaseModel):
    retailer_id: str
    retailer: str
    product: str
    gtin: str
    item_id: str = Field(description="the network's own id for the product ('' when unknown)")
    placement: str
    campaign: str
    daily_budget: float
    flight_start: date
    flight_end: date
    days: int
    total: float
    expected_revenue: float
    holdout: str = Field("", description="the experiment's holdout at this retailer, if any")


class RetailerSheet(BaseModel):
    retailer_id: str
    name: str
    network: str | None
    lines: list[ExportLine]

    @property
    def total(self) -> float:
        return sum(line.total for line in self.lines)


class PlanExport(BaseModel):
    """An approved plan, ready to be written as a workbook or CSV files."""

    thread_id: str
    brand: str
    brand_name: str
    approved_by: str | None
    approved_at: datetime | None
    budget: float
    reserve: float
    flight_start: date
    flight_end: date
    flight_note: str
    sheets: list[RetailerSheet]
    experiment: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)


def _flight(plan: Plan) -> tuple[date, date, str]:
    """The flight's dates: the brief's; else the experiment's start (the flight it was
    designed for); else the day after approval. The length is the brief's flight."""
    days = flight_days(plan.brief)
    if plan.brief.flight_start and plan.brief.flight_end:
        return plan.brief.flight_start, plan.brief.flight_end, "the brief's flight dates"
    if plan.brief.flight_start:
        start = plan.brief.flight_start
        return start, start + timedelta(days=days - 1), "the brief's start, four weeks"
    if plan.experiment and plan.experiment.get("start"):
        start = date.fromisoformat(str(plan.experiment["start"])[:10])
        why = "no dates in the brief: the flight the experiment was designed for"
        return start, start + timedelta(days=days - 1), why
    base = plan.decision.at.date() if plan.decision else date.today()
    start = base + timedelta(days=1)
    return (
        start,
        start + timedelta(days=days - 1),
        "no dates in the brief: from the day after approval",
    )


def holdout_text(experiment: dict[str, Any] | None, retailer: str) -> str:
    """The experiment's holdout at `retailer`, in words for the portal sheet."""
    if not experiment or experiment.get("retailer") != retailer:
        return ""
    kind = str(experiment.get("experiment_type", ""))
    if kind == "geo_holdout":
        control = [g["geo"] for g in experiment.get("geos") or [] if g.get("group") == "control"]
        pct = float(experiment.get("holdout_pct") or 0.0)
        return (
            f"geo holdout: no ads in {len(control)} markets ({pct:.0%}) from "
            f"{experiment.get('start')} for {experiment.get('duration_days')} days: "
            + ", ".join(control)
        )
    if kind == "switchback":
        off = [str(p["start"])[:10] for p in experiment.get("periods") or [] if not p.get("ads_on")]
        return f"switchback: ads off on {', '.join(off)}"
    return kind.replace("_", " ")


def build_export(plan: Plan, data_dir: Path) -> PlanExport:
    """The approved plan's lines per retailer with product names and the networks' item ids
    (from the brand's products file), in the catalog in force."""
    if plan.status != "approved" or plan.decision is None:
        raise ExportError(
            f"thread {plan.thread_id} holds no approved plan (status {plan.status}); approve it "
            "first (`rmn resume THREAD --approve`)",
            thread_id=plan.thread_id,
        )
    lines = [row for row in plan.allocation if row.spend > 0]
    if not lines:
        raise ExportError(f"the plan of thread {plan.thread_id} funds no line item")
    brand = plan.brief.brand_id
    catalog = current()
    store = FirstPartyStore(Path(data_dir), tenant=plan.tenant, brand=brand)
    skus = store.skus()
    names = dict(zip(skus.column("gtin").to_pylist(), skus.column("name").to_pylist(), strict=True))
    start, end, why = _flight(plan)
    days = (end - start).days + 1
    brand_name = catalog.brands[brand].name if brand in catalog.brands else brand
    sheets = []
    for rid in dict.fromkeys(r.retailer_id for r in lines):
        info = catalog.retailers.get(rid)
        item_of = {g: i for i, g in store.items(rid).items()}
        holdout = holdout_text(plan.experiment, rid)
        rows = [
            ExportLine(
                retailer_id=rid,
                retailer=info.name if info else rid,
                product=names.get(r.gtin, r.gtin),
                gtin=r.gtin,
                item_id=item_of.get(r.gtin, ""),
                placement=r.placement,
                campaign=f"{brand_name} | {r.placement.replace('_', ' ')} | {start:%Y-%m}",
                daily_budget=round(r.spend / days, 2),
                flight_start=start,
                flight_end=end,
                days=days,
                total=round(r.spend, 2),
                expected_revenue=round(r.expected_revenue, 2),
                holdout=holdout,
            )
            for r in sorted(
                (r for r in lines if r.retailer_id == rid), key=lambda r: (-r.spend, r.gtin)
            )
        ]
        sheets.append(
            RetailerSheet(
                retailer_id=rid,
                name=info.name if info else rid,
                network=info.network if info else None,
                lines=rows,
            )
        )
    expected = plan.expected_outcome
    return PlanExport(
        thread_id=plan.thread_id,
        brand=brand,
        brand_name=brand_name,
        approved_by=plan.decision.by,
        approved_at=plan.decision.at,
        budget=plan.brief.total_budget,
        reserve=expected.reserve if expected else 0.0,
        flight_start=start,
        flight_end=end,
        flight_note=why,
        sheets=sheets,
        experiment=plan.experiment,
        notes=[f"daily budget = line total / {days} flight days"],
    )
