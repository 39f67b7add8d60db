"""The brand's response curves: its line items from the retailers' clean rooms with its
first-party data joined on its own side, fitted with posterior draws and stored.

Fitted curves are kept under `<data>/curves/<tenant>/`, keyed by the data they were fitted
on. A plan re-optimized after an edit, a resumed thread and the tenant's next brief on the
same data read them back instead of asking the clean room again, which would spend the
retailers' privacy budgets a second time for the same aggregates.

Before asking, the fetch says how much epsilon it will spend at the retailers that require
differential privacy, and plans a retailer whose budget cannot cover it on prior-only curves
with a review flag (`tools.pipeline.privacy`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools.cleanroom import CleanRoom
from tools.curves import CurveFit, DataView, fit_curves, full_view
from tools.errors import AccessDeniedError, UnknownRetailerError
from tools.firstparty import FirstPartyStore
from tools.optimize import CurveSet
from tools.pipeline.common import PipelineError, Progress, say
from tools.pipeline.privacy import (
    RetailerBudget,
    fetch_view,
    privacy_budgets,
    review_flags,
    spend_message,
)

# Bump when the stored curve layout or the way curves are built changes.
CURVES_VERSION = 3
# Lines at or above this stock-out probability get no spend when the brief excludes OOS SKUs.
OOS_THRESHOLD = 0.5


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
    prior_only: bool = Field(False, description="privacy budget spent: not queried")


class CurveSummary(BaseModel):
    """Fitted curves on disk and what the plan's confidence needs to know about them."""

    key: str
    path: str = Field(
        description="the .npz file holding the curves and their draws, relative to the data "
        "directory (the state of a thread carries no server paths); `located` resolves it"
    )
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
    privacy: list[RetailerBudget] = Field(
        default_factory=list,
        description="per retailer requiring differential privacy: the epsilon the fetch "
        "needed, said before it was spent, against the budget left",
    )
    epsilon_planned: float = Field(0.0, description="epsilon the fetch was to spend in all")
    prior_only_retailers: list[str] = Field(default_factory=list)
    review_flags: list[str] = Field(
        default_factory=list, description="why a human must review plans on these curves"
    )
    seconds: float = 0.0
    cached: bool = False

    def located(self, data_dir: Path) -> CurveSummary:
        """This summary with `path` resolved against the data directory the curves were
        fitted in, for reading them (an absolute path, from an older thread, is kept)."""
        return self.model_copy(update={"path": str(Path(data_dir) / self.path)})


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


def curves_key(req: CurveRequest, prior_only: list[str] | None = None) -> str:
    payload = {
        "version": CURVES_VERSION,
        "prior_only": sorted(prior_only or []),
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


def _visible_retailers(req: CurveRequest, room: CleanRoom) -> list[str]:
    """The asked retailers in the clean room's order; refuses another tenant's brand and
    retailers without harmonized data."""
    if req.tenant != req.brand:
        raise AccessDeniedError(
            f"tenant '{req.tenant}' may not fit curves for brand '{req.brand}'",
            tenant=req.tenant,
            brand=req.brand,
        )
    available = room.retailers()
    missing = sorted(set(req.retailers) - set(available))
    if missing:
        raise UnknownRetailerError(
            f"no harmonized clean-room data for {', '.join(missing)} under {req.data_dir}; "
            f"available: {', '.join(available) or 'none'}",
            retailers=missing,
            available=available,
        )
    return [r for r in available if r in set(req.retailers)]


def prepare_curves(req: CurveRequest, *, progress: Progress | None = None) -> CurveSummary:
    """Query the retailers' clean rooms for the brand's line items (k-anonymity, blocked
    fields and differential privacy enforced there), add the brand's first-party data, fit
    response curves with posterior draws and store them; or read them back when they were
    already fitted on the same data."""
    started = time.perf_counter()
    data_dir = Path(req.data_dir)
    room = CleanRoom(data_dir)
    retailers = _visible_retailers(req, room)
    budgets = privacy_budgets(room, req.brand, retailers)  # spends nothing
    planned_prior = [b.retailer for b in budgets if b.prior_only]
    key = curves_key(req, planned_prior)
    folder = data_dir / "curves" / req.tenant
    npz_path, meta_path = folder / f"{key}.npz", folder / f"{key}.json"
    relative = str(npz_path.relative_to(data_dir))
    if npz_path.is_file() and meta_path.is_file():
        summary = CurveSummary.model_validate_json(meta_path.read_text())
        update = {"cached": True, "seconds": time.perf_counter() - started, "path": relative}
        return summary.model_copy(update=update)

    planned = spend_message(budgets)
    say(progress, planned)
    say(progress, f"querying the clean rooms of {', '.join(retailers)} for {req.brand}")
    view, prior_only, donors = fetch_view(
        room, req.brand, req.tenant, retailers, planned_prior, req.flight_days
    )
    if prior_only != planned_prior:  # another plan spent the budget meanwhile
        budgets = privacy_budgets(room, req.brand, retailers)
    flags = review_flags(budgets)
    for flag in flags:
        say(progress, f"warning: {flag}")
    store = FirstPartyStore(data_dir, tenant=req.tenant, brand=req.brand)
    full = full_view(view, store)
    say(progress, f"fitting response curves for {len(full.lines)} line items")
    fit = fit_curves(full, seed=req.seed, draws=req.draws)
    arrays, shaped = _curve_arrays(fit, full, store)
    if donors:  # asked only to pool a prior from: their own lines are not planned
        keep = ~np.isin(arrays["retailer_id"], donors)
        arrays = {n: a[:, keep] if a.ndim == 2 and a.size else a[keep] if a.ndim == 1 else a
                  for n, a in arrays.items()}  # fmt: skip
        shaped = shaped[keep]
    summary = CurveSummary(
        key=key,
        path=relative,
        tenant=req.tenant,
        brand=req.brand,
        retailers=retailers,
        flight_days=req.flight_days,
        lines=len(shaped),
        lines_with_history=int(shaped.sum()),
        coverage=float(shaped.mean()) if len(shaped) else 0.0,
        access=_access(view, room, prior_only, donors),
        notes=[planned, *(f"warning: {f}" for f in flags), *full.notes]
        + ([f"prior pooled from {', '.join(donors)}'s history"] if donors else []),
        privacy=budgets,
        epsilon_planned=sum(b.needed for b in budgets if not b.prior_only),
        prior_only_retailers=prior_only,
        review_flags=flags,
        seconds=time.perf_counter() - started,
    )

    def write_npz(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)

    _atomic_write(npz_path, write_npz)
    _atomic_write(meta_path, lambda tmp: tmp.write_text(summary.model_dump_json(indent=2)))
    return summary


def _access(
    view: DataView, room: CleanRoom, prior_only: list[str], donors: list[str]
) -> list[RetailerAccessSummary]:
    """What each planned retailer's clean room returned; those planned prior-only were not
    asked (the donors of a prior are not planned)."""
    asked = [
        RetailerAccessSummary(
            retailer=a.retailer,
            k=a.k,
            dp=a.dp,
            epsilon_spent=a.epsilon_spent,
            lines=a.lines,
            lines_suppressed=a.lines_suppressed,
        )
        for a in view.access
        if a.retailer not in donors
    ]
    return asked + [
        RetailerAccessSummary(
            retailer=r,
            k=room.rules_for(r).min_cell_size,
            dp=True,
            epsilon_spent=0.0,
            lines=0,
            lines_suppressed=0,
            prior_only=True,
        )
        for r in prior_only
    ]


def _curve_arrays(
    fit: CurveFit, full: DataView, store: FirstPartyStore
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(the arrays stored for the fitted curves, which lines their own history shaped)."""
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
    return arrays, shaped


def load_curves(
    summary: CurveSummary,
    *,
    retailers: list[str] | None = None,
    exclude_oos: bool = True,
    excluded_skus: list[str] | None = None,
) -> CurveSet:
    """The stored curves as a `tools.optimize.CurveSet` for the optimizer: only `retailers`
    (default: all fitted ones), with lines at high stock-out risk held at zero when
    `exclude_oos`, and the SKUs in `excluded_skus` held at zero."""
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


def likely_out_of_stock(summary: CurveSummary) -> set[tuple[str, str, str]]:
    """The stored lines likely out of stock (the ones `exclude_oos` holds at zero), as
    (retailer, placement, GTIN)."""
    data = _stored(summary, "retailer_id", "placement", "gtin", "oos_prob")
    return {
        (str(data["retailer_id"][i]), str(data["placement"][i]), str(data["gtin"][i]))
        for i in np.flatnonzero(data["oos_prob"] >= OOS_THRESHOLD)
    }


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
