"""The tool chain behind the planning graph's data nodes: the brand's market data, its
response curves from the clean room and its first-party data, the allocation with intervals,
and the experiment for the reserve.

    status = ensure_world(data_dir)                       # builds the seeded market if missing
    curves = prepare_curves(CurveRequest(data_dir=data_dir, tenant="acme", brand="acme",
                                         retailers=["alpha", "beta"]))
    alloc = plan_allocation(curves, AllocationRequest(brief=structured_brief))
    exp = design_measurement(MeasurementRequest(data_dir=data_dir, tenant="acme", brand="acme",
                                                allocation=alloc.rows, reserve=250_000))

Fitted curves are kept under `<data>/curves/<tenant>/`, keyed by the data they were fitted
on. A plan re-optimized after an edit, a resumed thread and the tenant's next brief on the
same data read them back instead of asking the clean room again, which would spend the
retailers' privacy budgets a second time for the same aggregates.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools.brief.schema import StructuredBrief
from tools.errors import AccessDeniedError, RMNError, UnknownRetailerError
from tools.plan import AllocationRow, ExpectedOutcome, Interval

# Bump when the stored curve layout or the way curves are built changes.
CURVES_VERSION = 2
# The market `rmn demo` builds; a first `plan` on an empty data directory builds the same.
DEFAULT_WORLD_SEED = 7
DEFAULT_WORLD_DAYS = 90
DEFAULT_WORLD_EVENTS = 1_000_000
# Lines at or above this stock-out probability get no spend when the brief excludes OOS SKUs.
OOS_THRESHOLD = 0.5
# Allocation rows below a cent are solver dust, not a line the plan funds.
MIN_ROW_SPEND = 0.01

Progress = Callable[[str], None]


class PipelineError(RMNError):
    """A planning step that cannot run on this data as asked."""

    kind = "pipeline_error"


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


# ------------------------------------------------------------------------------ market data


class WorldSpec(BaseModel):
    """The seeded market built when the data directory has none (the one `rmn demo` builds)."""

    seed: int = Field(DEFAULT_WORLD_SEED, ge=0)
    days: int = Field(DEFAULT_WORLD_DAYS, ge=14, le=730)
    events: int = Field(DEFAULT_WORLD_EVENTS, ge=1_000)


class WorldStatus(BaseModel):
    data_dir: str
    built: bool = Field(description="whether this call built the market")
    retailers: list[str] = Field(description="retailers with harmonized clean-room data")
    seconds: float


def harmonized_retailers(data_dir: Path) -> list[str]:
    """Retailers whose harmonized events are under `<data>/rmis/`."""
    root = Path(data_dir) / "rmis"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "events.parquet").is_file())


def ensure_world(
    data_dir: Path,
    spec: WorldSpec | None = None,
    *,
    progress: Progress | None = None,
    bars: bool = False,
) -> WorldStatus:
    """Make sure `data_dir` holds harmonized retailer data; where it holds none, simulate the
    default seeded market, write its exports and harmonize them (what `rmn demo` does), so a
    new user's first plan works. Concurrent callers wait for one build. `bars` shows the
    exporter's progress bars on stderr."""
    from filelock import FileLock

    started = time.perf_counter()
    data_dir = Path(data_dir)
    have = harmonized_retailers(data_dir)
    if have:
        return WorldStatus(data_dir=str(data_dir), built=False, retailers=have, seconds=0.0)
    data_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(data_dir / ".world.lock")):
        have = harmonized_retailers(data_dir)
        if have:  # another process built it while this one waited
            return WorldStatus(
                data_dir=str(data_dir),
                built=False,
                retailers=have,
                seconds=time.perf_counter() - started,
            )
        from tools.harmonize import harmonize_all
        from tools.world import generate_world, write_exports

        spec = spec or WorldSpec()
        _say(
            progress,
            f"no market data in {data_dir}: simulating the default market (seed {spec.seed}, "
            f"{spec.days} days, {spec.events:,} delivery records)",
        )
        world = generate_world(seed=spec.seed, days=spec.days)
        write_exports(world, data_dir, events=spec.events, progress=bars)
        _say(progress, "harmonizing the retailers' exports")
        harmonize_all(data_dir / "raw", data_dir / "rmis")
    have = harmonized_retailers(data_dir)
    _say(progress, f"market data ready: {', '.join(have)}")
    return WorldStatus(
        data_dir=str(data_dir), built=True, retailers=have, seconds=time.perf_counter() - started
    )


# ---------------------------------------------------------------------------------- curves


class CurveRequest(BaseModel):
    """Which curves to fit: the tenant's own brand, at these retailers, for one flight."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path
    tenant: str
    brand: str
    retailers: list[str] = Field(min_length=1)
    flight_days: int = Field(28, ge=1, le=366)
    seed: int = Field(0, ge=0)
    draws: int = Field(200, ge=20, le=2_000)


class RetailerAccessSummary(BaseModel):
    retailer: str
    k: int
    dp: bool
    epsilon_spent: float
    lines: int
    lines_suppressed: int


class CurveSummary(BaseModel):
    """Fitted curves on disk and what the plan's confidence needs to know about them."""

    key: str
    path: str = Field(description="the .npz file holding the curves and their draws")
    tenant: str
    brand: str
    retailers: list[str]
    flight_days: int
    lines: int
    lines_with_history: int = Field(description="lines whose curve shape their own data fixed")
    coverage: float = Field(
        ge=0,
        le=1,
        description="share of visible lines with enough history of their own to shape a curve",
    )
    access: list[RetailerAccessSummary]
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False


def _fingerprint(data_dir: Path, brand: str, retailers: list[str]) -> list[list[Any]]:
    """Size and modification time of every file the curves are fitted from."""
    files = [data_dir / "rmis" / r / "events.parquet" for r in retailers]
    fp_dir = data_dir / "firstparty" / brand
    files += [fp_dir / f"{name}.parquet" for name in ("skus", "promotions", "sellthrough")]
    out: list[list[Any]] = []
    for path in files:
        st = path.stat() if path.is_file() else None
        out.append([str(path.relative_to(data_dir)), st.st_size if st else None,
                    st.st_mtime_ns if st else None])  # fmt: skip
    return out


def curves_key(req: CurveRequest) -> str:
    payload = {
        "version": CURVES_VERSION,
        "tenant": req.tenant,
        "brand": req.brand,
        "retailers": sorted(req.retailers),
        "flight_days": req.flight_days,
        "seed": req.seed,
        "draws": req.draws,
        "data": _fingerprint(Path(req.data_dir), req.brand, sorted(req.retailers)),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_curves(req: CurveRequest, *, progress: Progress | None = None) -> CurveSummary:
    """Query the retailers' clean rooms for the brand's line items (k-anonymity, blocked
    fields and differential privacy enforced there), add the brand's first-party data, fit
    response curves with posterior draws and store them; or read them back when they were
    already fitted on the same data."""
    from tools.cleanroom import CleanRoom
    from tools.curves import cleanroom_view, fit_curves, full_view
    from tools.firstparty import FirstPartyStore

    started = time.perf_counter()
    if req.tenant != req.brand:
        raise AccessDeniedError(
            f"tenant '{req.tenant}' may not fit curves for brand '{req.brand}'",
            tenant=req.tenant,
            brand=req.brand,
        )
    data_dir = Path(req.data_dir)
    room = CleanRoom(data_dir)
    available = room.retailers()
    missing = sorted(set(req.retailers) - set(available))
    if missing:
        raise UnknownRetailerError(
            f"no harmonized clean-room data for {', '.join(missing)} under {data_dir}; "
            f"available: {', '.join(available) or 'none'}",
            retailers=missing,
            available=available,
        )
    retailers = [r for r in available if r in set(req.retailers)]
    key = curves_key(req)
    folder = data_dir / "curves" / req.tenant
    npz_path, meta_path = folder / f"{key}.npz", folder / f"{key}.json"
    if npz_path.is_file() and meta_path.is_file():
        summary = CurveSummary.model_validate_json(meta_path.read_text())
        return summary.model_copy(update={"cached": True, "seconds": time.perf_counter() - started})

    _say(progress, f"querying the clean rooms of {', '.join(retailers)} for {req.brand}")
    view = cleanroom_view(
        data_dir, req.brand, retailers=retailers, flight_days=req.flight_days, room=room
    )
    store = FirstPartyStore(data_dir, tenant=req.tenant, brand=req.brand)
    full = full_view(view, store)
    _say(progress, f"fitting response curves for {len(full.lines)} line items")
    fit = fit_curves(full, seed=req.seed, draws=req.draws)
    # Stock-outs are applied per brief (exclude_oos), so the stored set prices every line in.
    curves = fit.curve_set(oos_threshold=None)
    econ = full.economics
    oos_prob = econ.oos_prob if econ is not None else np.zeros(len(curves))
    skus = store.skus()
    category = dict(
        zip(skus.column("gtin").to_pylist(), skus.column("category").to_pylist(), strict=True)
    )
    shaped = ~fit.lines["too_little_data"].to_numpy(dtype=bool)
    arrays: dict[str, np.ndarray] = {
        "retailer_id": curves.retailer_id,
        "placement": curves.placement,
        "gtin": curves.gtin,
        "a": curves.a,
        "b": curves.b,
        "margin": curves.margin,
        "dead": curves.out_of_stock,
        "oos_prob": np.asarray(oos_prob, dtype=float),
        "prior_only": ~shaped,
        "category": np.array([category.get(g, "") for g in curves.gtin.tolist()], dtype=str),
        "a_draws": curves.a_draws if curves.a_draws is not None else np.empty((0, 0)),
        "b_draws": curves.b_draws if curves.b_draws is not None else np.empty((0, 0)),
    }
    summary = CurveSummary(
        key=key,
        path=str(npz_path),
        tenant=req.tenant,
        brand=req.brand,
        retailers=retailers,
        flight_days=req.flight_days,
        lines=len(curves),
        lines_with_history=int(shaped.sum()),
        coverage=float(shaped.mean()) if len(shaped) else 0.0,
        access=[
            RetailerAccessSummary(
                retailer=a.retailer,
                k=a.k,
                dp=a.dp,
                epsilon_spent=a.epsilon_spent,
                lines=a.lines,
                lines_suppressed=a.lines_suppressed,
            )
            for a in view.access
        ],
        notes=list(full.notes),
        seconds=time.perf_counter() - started,
    )

    def write_npz(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)

    _atomic_write(npz_path, write_npz)
    _atomic_write(meta_path, lambda tmp: tmp.write_text(summary.model_dump_json(indent=2)))
    return summary


def load_curves(
    summary: CurveSummary,
    *,
    retailers: list[str] | None = None,
    exclude_oos: bool = True,
    excluded_skus: list[str] | None = None,
) -> Any:
    """The stored curves as a `tools.optimize.CurveSet` for the optimizer: only `retailers`
    (default: all fitted ones), with lines at high stock-out risk held at zero when
    `exclude_oos`, and the SKUs in `excluded_skus` held at zero."""
    from tools.optimize import CurveSet

    data = _stored(summary)
    keep = np.ones(data["a"].shape[0], dtype=bool)
    if retailers is not None:
        unknown = sorted(set(retailers) - set(summary.retailers))
        if unknown:
            raise UnknownRetailerError(
                f"no curves were fitted for {', '.join(unknown)}; fitted: "
                f"{', '.join(summary.retailers)}",
                retailers=unknown,
            )
        keep = np.isin(data["retailer_id"], retailers)
    off = data["dead"].astype(bool)
    if exclude_oos:
        off |= data["oos_prob"] >= OOS_THRESHOLD
    if excluded_skus:
        unknown = sorted(set(excluded_skus) - set(data["gtin"].tolist()))
        if unknown:
            raise PipelineError(
                f"excluded SKU(s) {', '.join(unknown)} are not among the brand's planned line "
                "items",
                skus=unknown,
            )
        off |= np.isin(data["gtin"], excluded_skus)
    draws = data["a_draws"].size > 0
    return CurveSet.from_arrays(
        retailer_id=data["retailer_id"][keep],
        placement=data["placement"][keep],
        gtin=data["gtin"][keep],
        a=data["a"][keep],
        b=data["b"][keep],
        margin=data["margin"][keep],
        out_of_stock=off[keep],
        a_draws=data["a_draws"][:, keep] if draws else None,
        b_draws=data["b_draws"][:, keep] if draws else None,
        prior_only=data["prior_only"][keep],
    )


def _stored(summary: CurveSummary, *names: str) -> dict[str, np.ndarray]:
    path = Path(summary.path)
    if not path.is_file():
        raise PipelineError(
            f"the fitted curves {path} are gone; run the plan again to refit them", path=str(path)
        )
    with np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in (names or z.files)}


def known_gtins(summary: CurveSummary) -> set[str]:
    """The GTINs of the stored curves' line items."""
    return set(_stored(summary, "gtin")["gtin"].tolist())


def sku_categories(summary: CurveSummary) -> dict[str, str]:
    """GTIN -> catalog category of the stored curves' SKUs (from the brand's SKU table)."""
    z = _stored(summary, "gtin", "category")
    return {g: c for g, c in zip(z["gtin"].tolist(), z["category"].tolist(), strict=True) if c}


# ------------------------------------------------------------------------------ allocation


class AllocationRequest(BaseModel):
    """The brief and the constraints a reviewer added (retailer caps, excluded SKUs)."""

    model_config = ConfigDict(extra="forbid")

    brief: StructuredBrief
    retailer_caps: dict[str, float] = Field(default_factory=dict)
    excluded_skus: list[str] = Field(default_factory=list)
    min_spend_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="spend at least this share of the spendable budget (default: all of it); "
        "lower lets a plan that cannot place the whole budget spend less",
    )


class AllocationPlan(BaseModel):
    status: Literal["optimal", "infeasible"]
    solver_status: str
    rows: list[AllocationRow] = Field(default_factory=list)
    expected: ExpectedOutcome | None = None
    shadow_prices: dict[str, Any] = Field(default_factory=dict)
    diagnosis: dict[str, Any] | None = None
    revenue_cv: float | None = Field(
        None, description="coefficient of variation of planned revenue over the curve draws"
    )
    coverage: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of planned spend on lines whose curve their own history shaped",
    )
    constraint_slack: float | None = Field(
        None,
        description="how far the plan's ROAS sits above the floor, relative to the floor "
        "(None without a floor)",
    )
    notes: list[str] = Field(default_factory=list)


def _interval(point: float, band: Any) -> Interval:
    if band is None:
        return Interval(mean=point, low=point, high=point)
    return Interval(mean=point, low=band.low, high=band.high)


def plan_allocation(curves: CurveSummary, req: AllocationRequest) -> AllocationPlan:
    """Allocate the brief's spendable budget over the curves of its retailers, within the
    retailers' spend rules (monthly placement caps, minimum daily budgets, categories a
    placement may not carry). A brief that cannot be met comes back `infeasible` with the
    optimizer's diagnosis (what binds, the best reachable, what to relax), not as an error."""
    from tools.optimize import allocate, policy_limits

    brief = req.brief
    if brief.brand_id != curves.brand:
        raise AccessDeniedError(
            f"the curves are {curves.brand}'s, the brief is {brief.brand_id}'s",
            brand=brief.brand_id,
        )
    retailers = brief.resolved_retailers()
    unknown_caps = sorted(set(req.retailer_caps) - set(retailers))
    if unknown_caps:
        raise UnknownRetailerError(
            f"retailer cap for {', '.join(unknown_caps)}, which the plan does not use; "
            f"its retailers: {', '.join(retailers)}",
            retailers=unknown_caps,
        )
    curve_set = load_curves(
        curves,
        retailers=retailers,
        exclude_oos=brief.exclude_oos,
        excluded_skus=req.excluded_skus,
    )
    curve_set, limits = policy_limits(
        curve_set,
        curves.flight_days,
        categories=sku_categories(curves),
        flight_start=brief.flight_start,
    )
    update: dict[str, Any] = {"retailer_caps": dict(req.retailer_caps)}
    if req.min_spend_fraction is not None:
        update["min_spend_fraction"] = req.min_spend_fraction
    opt_brief = brief.to_optimizer_brief().model_copy(update=update)
    result = allocate(curve_set, opt_brief)
    solver = f"{result.status} ({result.solver_status}, {result.path})"
    notes = [*limits.notes, *result.notes]
    if limits.restricted:
        notes.append(f"{len(limits.restricted)} line(s) held at zero by the retailers' rules")
    if result.status != "optimal" or result.allocation is None or result.outcome is None:
        return AllocationPlan(
            status="infeasible",
            solver_status=solver,
            diagnosis=result.diagnosis.model_dump(mode="json") if result.diagnosis else None,
            notes=notes,
        )
    table = result.allocation
    x = np.asarray(table.spend, dtype=float)
    weight = curve_set.margin if brief.objective == "incremental_margin" else np.ones(len(x))
    rows = [
        AllocationRow(
            retailer_id=table.retailer_id[i],
            placement=table.placement[i],
            gtin=table.gtin[i],
            spend=float(x[i]),
            expected_revenue=float(table.revenue[i]),
            expected_margin=float(table.margin[i]),
            marginal_return=float(table.marginal_roas[i] * weight[i]),
            curve_a=float(curve_set.a[i]),
            curve_b=float(curve_set.b[i]),
        )
        for i in np.argsort(-x, kind="stable")
        if x[i] >= MIN_ROW_SPEND
    ]
    out = result.outcome
    reserve = brief.total_budget * brief.experiment_reserve
    iroas_point = out.roas if out.roas is not None else 0.0
    expected = ExpectedOutcome(
        spend=out.spend,
        reserve=reserve,
        incremental_revenue=_interval(out.revenue, out.revenue_interval),
        incremental_margin=_interval(out.margin, out.margin_interval),
        iroas=_interval(iroas_point, out.roas_interval),
    )
    slack = None
    if brief.roas_floor is not None and out.roas is not None:
        slack = (out.roas - brief.roas_floor) / brief.roas_floor
    return AllocationPlan(
        status="optimal",
        solver_status=solver,
        rows=rows,
        expected=expected,
        shadow_prices=result.shadow_prices.model_dump(mode="json") if result.shadow_prices else {},
        revenue_cv=_revenue_cv(curve_set, x),
        coverage=float(x[~curve_set.prior_only].sum() / x.sum()) if x.sum() > 0 else None,
        constraint_slack=slack,
        notes=notes,
    )


def _revenue_cv(curves: Any, x: np.ndarray) -> float | None:
    """Spread of the plan's total revenue over the curves' posterior draws (sd / mean)."""
    if curves.a_draws is None or not (x > 0).any():
        return None
    funded = x > 0
    rev = (curves.a_draws[:, funded] * -np.expm1(-x[funded] / curves.b_draws[:, funded])).sum(
        axis=1
    )
    mean = float(rev.mean())
    return float(rev.std(ddof=1) / mean) if mean > 0 else None


# ----------------------------------------------------------------------------- measurement


class MeasurementRequest(BaseModel):
    """The reserve to design an experiment for, and the plan it measures."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path
    tenant: str
    brand: str
    allocation: list[AllocationRow]
    reserve: float = Field(ge=0, description="experiment reserve, USD")
    flight_days: int = Field(28, ge=1, le=366)
    expected_iroas: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0)


class MeasurementPlan(BaseModel):
    experiment: dict[str, Any] | None = Field(None, description="ExperimentDesign as JSON")
    retailer: str | None = None
    notes: list[str] = Field(default_factory=list)


def geo_panel(data_dir: Path, brand: str, retailer: str, seed: int = 0) -> Any:
    """The brand's daily sales by DMA at the retailer over the history (a
    `tools.measurement.GeoPanel`). The simulated retailers export no geo sales table, so the
    panel is drawn from the simulated market's own sell-through, split over DMAs the way its
    deliveries are (`tools.measurement.simulate`)."""
    from tools.measurement import GeoPanel
    from tools.measurement.simulate import geo_shares, national_sales, simulate_geo_sales
    from tools.world import load_world

    world = load_world(data_dir)
    sales = simulate_geo_sales(
        national_sales(world, retailer, brand), geo_shares(world, retailer), 1, seed
    )[0]
    return GeoPanel(geos=tuple(world.dmas.column("code").to_pylist()), start=world.start,
                    sales=sales)  # fmt: skip


def design_measurement(req: MeasurementRequest) -> MeasurementPlan:
    """Design the experiment for the reserve at the retailer that carries most of the plan's
    spend, within that retailer's measurement rules; where its rules or data rule every
    design out, the next retailer by spend. No reserve, or no retailer that allows a design,
    gives no experiment and says why."""
    from tools.measurement import design_experiment

    if req.tenant != req.brand:
        raise AccessDeniedError(
            f"tenant '{req.tenant}' may not design experiments for brand '{req.brand}'",
            tenant=req.tenant,
            brand=req.brand,
        )
    if req.reserve <= 0:
        return MeasurementPlan(notes=["no experiment reserve in the brief: nothing to design"])
    spend: dict[str, float] = {}
    for row in req.allocation:
        spend[row.retailer_id] = spend.get(row.retailer_id, 0.0) + row.spend
    ranked = sorted(spend, key=lambda r: (-spend[r], r))
    if not ranked:
        return MeasurementPlan(notes=["the plan funds no retailer: nothing to measure"])
    notes: list[str] = []
    for retailer in ranked:
        try:
            panel = geo_panel(Path(req.data_dir), req.brand, retailer, seed=req.seed)
            design = design_experiment(
                retailer,
                panel,
                req.reserve,
                brand=req.brand,
                expected_iroas=req.expected_iroas,
                flight_days=req.flight_days,
                seed=req.seed,
            )
        except RMNError as err:
            notes.append(f"{retailer}: {err.message}")
            continue
        return MeasurementPlan(
            experiment=design.model_dump(mode="json"), retailer=retailer, notes=notes
        )
    return MeasurementPlan(notes=[*notes, "no retailer in the plan allows an experiment"])


# ------------------------------------------------------------------------------- products


def product_names(data_dir: Path, tenant: str, brand: str) -> dict[str, str]:
    """GTIN -> product name from the brand's own SKU table (first-party, tenant-checked)."""
    from tools.firstparty import FirstPartyStore

    skus = FirstPartyStore(Path(data_dir), tenant=tenant, brand=brand).skus()
    return dict(zip(skus.column("gtin").to_pylist(), skus.column("name").to_pylist(), strict=True))
