"""What the optimizer plans over: line items with saturating response curves, and the brief.

A line item is one (retailer, placement, GTIN) for one flight. Its incremental revenue at
flight spend x is r(x) = a * (1 - exp(-x / b)): `a` is the revenue the line saturates at and
`b` the spend scale (the first b dollars earn 63% of a; the first dollar returns a / b).

`LineItem` documents and validates one record; `CurveSet` holds many as numpy columns, which is
what the solvers read. `Problem` is the normalized form both solvers share: bounds after
out-of-stock and policy rules, retailer groups, and the spend window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from tools.errors import RMNError, UnknownRetailerError

Objective = Literal["incremental_margin", "incremental_revenue", "roas"]


class OptimizerInputError(RMNError):
    """Curves or a brief the optimizer cannot use (non-positive curve, min above max, ...)."""

    kind = "optimizer_input_error"


class LineItem(BaseModel):
    """One retailer x placement x GTIN line for one flight, with its response curve."""

    retailer_id: str
    placement: str
    gtin: str
    a: float = Field(gt=0, description="incremental revenue the line saturates at, USD")
    b: float = Field(gt=0, description="spend scale, USD; the first dollar returns a / b")
    margin: float = Field(ge=0, le=1, description="incremental margin per incremental revenue")
    min_spend: float = Field(0.0, ge=0, description="hard minimum flight spend, USD")
    max_spend: float | None = Field(None, ge=0, description="hard maximum flight spend, USD")
    min_unit: float = Field(
        0.0, ge=0, description="policy minimum: the line gets either 0 or at least this, USD"
    )
    out_of_stock: bool = Field(False, description="forced to zero spend")
    a_draws: list[float] | None = Field(None, description="posterior draws of a, paired with b")
    b_draws: list[float] | None = Field(None, description="posterior draws of b, paired with a")
    a_se: float | None = Field(None, ge=0, description="standard error of a (if no draws)")
    b_se: float | None = Field(None, ge=0, description="standard error of b (if no draws)")

    @model_validator(mode="after")
    def _consistent(self) -> LineItem:
        if self.max_spend is not None and self.min_spend > self.max_spend:
            raise ValueError(f"min_spend {self.min_spend} exceeds max_spend {self.max_spend}")
        if (self.a_draws is None) != (self.b_draws is None):
            raise ValueError("a_draws and b_draws come together")
        if self.a_draws is not None and len(self.a_draws) != len(self.b_draws or []):
            raise ValueError("a_draws and b_draws must have the same length")
        return self


class GroupCap(BaseModel):
    """A cap on the summed flight spend of a set of line items, e.g. what one brand may spend
    on one placement at one retailer during the flight. Caps on a curve set must be nested or
    disjoint (a laminar family, like placements inside retailers): that keeps the exact
    water-fill exact."""

    name: str = Field(min_length=1, description="unique among a curve set's caps")
    lines: list[int] = Field(min_length=1, description="rows of the curve set it covers")
    cap: float = Field(ge=0, description="most the lines may spend together, USD")
    source: str = Field("", description="where the cap comes from, e.g. a policy section")


def _column(
    values: Sequence[float] | np.ndarray | float | None, n: int, default: float
) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=float)
    arr = np.asarray(values, dtype=float)
    return np.full(n, float(arr), dtype=float) if arr.ndim == 0 else arr.copy()


@dataclass(frozen=True, eq=False)
class CurveSet:
    """Many line items as columns. Draws, when given, have shape (draws, lines); draw d pairs
    a_draws[d] with b_draws[d], so an allocation can be evaluated under each draw.

    `group_caps` cap the summed spend of sets of lines (see `GroupCap`); `prior_only` flags
    lines whose curve comes from the pooled prior alone (no history of their own)."""

    retailer_id: np.ndarray
    placement: np.ndarray
    gtin: np.ndarray
    a: np.ndarray
    b: np.ndarray
    margin: np.ndarray
    min_spend: np.ndarray
    max_spend: np.ndarray  # inf where unbounded
    min_unit: np.ndarray
    out_of_stock: np.ndarray
    a_draws: np.ndarray | None = None
    b_draws: np.ndarray | None = None
    group_caps: tuple[GroupCap, ...] = ()
    prior_only: np.ndarray | None = None  # bool per line; None: no line is prior-only
    retailers: np.ndarray = field(init=False)  # sorted unique retailer ids
    retailer_code: np.ndarray = field(init=False)  # index into `retailers`, per line

    @classmethod
    def from_arrays(
        cls,
        *,
        retailer_id: Sequence[str] | np.ndarray,
        placement: Sequence[str] | np.ndarray,
        gtin: Sequence[str] | np.ndarray,
        a: Sequence[float] | np.ndarray,
        b: Sequence[float] | np.ndarray,
        margin: Sequence[float] | np.ndarray | float,
        min_spend: Sequence[float] | np.ndarray | float | None = None,
        max_spend: Sequence[float] | np.ndarray | float | None = None,
        min_unit: Sequence[float] | np.ndarray | float | None = None,
        out_of_stock: Sequence[bool] | np.ndarray | None = None,
        a_draws: np.ndarray | None = None,
        b_draws: np.ndarray | None = None,
        group_caps: Sequence[GroupCap] = (),
        prior_only: Sequence[bool] | np.ndarray | None = None,
    ) -> CurveSet:
        a_arr = np.asarray(a, dtype=float)
        n = a_arr.shape[0]
        oos = (
            np.zeros(n, dtype=bool)
            if out_of_stock is None
            else np.asarray(out_of_stock, dtype=bool).copy()
        )
        return cls(
            retailer_id=np.asarray(retailer_id, dtype=str),
            placement=np.asarray(placement, dtype=str),
            gtin=np.asarray(gtin, dtype=str),
            a=a_arr.copy(),
            b=np.asarray(b, dtype=float).copy(),
            margin=_column(margin, n, 1.0),
            min_spend=_column(min_spend, n, 0.0),
            max_spend=_column(max_spend, n, np.inf),
            min_unit=_column(min_unit, n, 0.0),
            out_of_stock=oos,
            a_draws=None if a_draws is None else np.asarray(a_draws, dtype=float),
            b_draws=None if b_draws is None else np.asarray(b_draws, dtype=float),
            group_caps=tuple(group_caps),
            prior_only=None if prior_only is None else np.asarray(prior_only, dtype=bool).copy(),
        )

    @classmethod
    def from_items(cls, items: Sequence[LineItem], draws: int = 200, seed: int = 0) -> CurveSet:
        """Columns from records. Items with standard errors instead of draws get `draws`
        lognormal draws (mean a or b, the given standard error), seeded."""
        if not items:
            raise OptimizerInputError("no line items to plan over")
        n = len(items)
        a = np.array([it.a for it in items])
        b = np.array([it.b for it in items])
        has_draws = [it.a_draws is not None for it in items]
        has_se = [it.a_se is not None or it.b_se is not None for it in items]
        a_draws = b_draws = None
        if any(has_draws) or any(has_se):
            lengths = {len(it.a_draws) for it in items if it.a_draws is not None}
            if len(lengths) > 1:
                raise OptimizerInputError("every line item needs the same number of draws")
            d = lengths.pop() if lengths else draws
            rng = np.random.default_rng(seed)
            a_draws = np.empty((d, n))
            b_draws = np.empty((d, n))
            for j, it in enumerate(items):
                if it.a_draws is not None and it.b_draws is not None:
                    a_draws[:, j] = it.a_draws
                    b_draws[:, j] = it.b_draws
                else:
                    a_draws[:, j] = lognormal_draws(it.a, it.a_se or 0.0, d, rng)
                    b_draws[:, j] = lognormal_draws(it.b, it.b_se or 0.0, d, rng)
        return cls.from_arrays(
            retailer_id=[it.retailer_id for it in items],
            placement=[it.placement for it in items],
            gtin=[it.gtin for it in items],
            a=a,
            b=b,
            margin=[it.margin for it in items],
            min_spend=[it.min_spend for it in items],
            max_spend=[np.inf if it.max_spend is None else it.max_spend for it in items],
            min_unit=[it.min_unit for it in items],
            out_of_stock=[it.out_of_stock for it in items],
            a_draws=a_draws,
            b_draws=b_draws,
        )

    def __post_init__(self) -> None:
        n = self.a.shape[0]
        cols = (
            "retailer_id",
            "placement",
            "gtin",
            "b",
            "margin",
            "min_spend",
            "max_spend",
            "min_unit",
            "out_of_stock",
        )
        for name in cols:
            if getattr(self, name).shape != (n,):
                raise OptimizerInputError(
                    f"column {name!r} has {getattr(self, name).shape[0]} entries, expected {n}",
                    column=name,
                )
        if n == 0:
            raise OptimizerInputError("no line items to plan over")
        if not (np.all(np.isfinite(self.a)) and np.all(self.a > 0)):
            raise OptimizerInputError("every curve needs a finite a > 0", column="a")
        if not (np.all(np.isfinite(self.b)) and np.all(self.b > 0)):
            raise OptimizerInputError("every curve needs a finite b > 0", column="b")
        if np.any(~np.isfinite(self.margin)) or np.any(self.margin < 0):
            raise OptimizerInputError("margin rates must be finite and >= 0", column="margin")
        if np.any(~np.isfinite(self.min_spend)) or np.any(self.min_spend < 0):
            raise OptimizerInputError("min_spend must be finite and >= 0", column="min_spend")
        if np.any(np.isnan(self.max_spend)) or np.any(self.max_spend < 0):
            raise OptimizerInputError("max_spend must be >= 0 (inf for none)", column="max_spend")
        if np.any(~np.isfinite(self.min_unit)) or np.any(self.min_unit < 0):
            raise OptimizerInputError("min_unit must be finite and >= 0", column="min_unit")
        bad = np.flatnonzero((self.min_spend > self.max_spend) & ~self.out_of_stock)
        if bad.size:
            raise OptimizerInputError(
                f"{bad.size} line(s) have min_spend above max_spend (first: row {bad[0]})",
                rows=bad[:10].tolist(),
            )
        if (self.a_draws is None) != (self.b_draws is None):
            raise OptimizerInputError("a_draws and b_draws come together")
        if self.a_draws is not None and self.b_draws is not None:
            if self.a_draws.ndim != 2 or self.a_draws.shape[1] != n:
                raise OptimizerInputError(f"a_draws must have shape (draws, {n})")
            if self.b_draws.shape != self.a_draws.shape:
                raise OptimizerInputError("b_draws must have the shape of a_draws")
            if np.any(self.a_draws <= 0) or np.any(self.b_draws <= 0):
                raise OptimizerInputError("draws of a and b must be > 0")
        flags = np.zeros(n, dtype=bool) if self.prior_only is None else self.prior_only
        if flags.shape != (n,):
            raise OptimizerInputError(f"prior_only must have {n} entries", column="prior_only")
        object.__setattr__(self, "prior_only", flags.astype(bool))
        object.__setattr__(self, "group_caps", tuple(self.group_caps))
        names = [g.name for g in self.group_caps]
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise OptimizerInputError(f"group cap names must be unique: {', '.join(dup)}")
        for g in self.group_caps:
            rows = np.asarray(g.lines)
            if rows.min() < 0 or rows.max() >= n:
                raise OptimizerInputError(
                    f"group cap {g.name!r} names rows outside 0..{n - 1}", group=g.name
                )
            if np.unique(rows).size != rows.size:
                raise OptimizerInputError(f"group cap {g.name!r} repeats a row", group=g.name)
        retailers, code = np.unique(self.retailer_id, return_inverse=True)
        object.__setattr__(self, "retailers", retailers)
        object.__setattr__(self, "retailer_code", code.astype(np.intp))

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def revenue(self, x: np.ndarray) -> np.ndarray:
        """Incremental revenue per line at spend x."""
        return self.a * -np.expm1(-x / self.b)

    def replace(self, **columns: Any) -> CurveSet:
        """A copy with some columns (or `group_caps`, `prior_only`) replaced; validated again."""
        keep = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        unknown = sorted(set(columns) - set(keep))
        if unknown:
            raise OptimizerInputError(f"CurveSet has no column(s) {', '.join(unknown)}")
        return CurveSet(**(keep | columns))

    def marginal_roas(self, x: np.ndarray) -> np.ndarray:
        """Incremental revenue of the next dollar per line at spend x."""
        return self.a / self.b * np.exp(-x / self.b)

    def return_at_minimum(self) -> np.ndarray:
        """Incremental revenue per dollar of a line funded at its minimum unit (the first
        dollar's where it has none): what a line dropped below its minimum would bring there."""
        unit = self.min_unit
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(unit > 0, self.revenue(unit) / unit, self.a / self.b)


def lognormal_draws(mean: float, se: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Positive draws with the given mean and standard error (a point mass when se is 0)."""
    if se <= 0:
        return np.full(draws, mean)
    sigma2 = np.log1p((se / mean) ** 2)
    return rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), draws)


class Brief(BaseModel):
    """The planning brief: how much to spend, on what objective, under which guardrails."""

    budget: float = Field(gt=0, description="total budget B, USD")
    reserve_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of B held back for experiments (rho)"
    )
    objective: Objective = "incremental_margin"
    roas_floor: float | None = Field(
        None, gt=0, description="k: total incremental revenue >= k * total spend"
    )
    retailer_caps: dict[str, float] = Field(
        default_factory=dict, description="maximum spend per retailer, USD"
    )
    retailer_mins: dict[str, float] = Field(
        default_factory=dict,
        description="minimum spend per retailer, USD (a commitment such as a joint business "
        "plan's); solved by cvxpy, which the exact water-fill cannot replace here",
    )
    min_spend_fraction: float = Field(
        1.0,
        ge=0,
        le=1,
        description="the plan spends at least this share of the spendable budget; 1 spends "
        "all of it, lower values let a ROAS floor or the roas objective spend less",
    )

    @model_validator(mode="after")
    def _caps_non_negative(self) -> Brief:
        for retailer, cap in self.retailer_caps.items():
            if not cap >= 0:
                raise ValueError(f"retailer cap for {retailer!r} must be >= 0, got {cap}")
        for retailer, low in self.retailer_mins.items():
            if not 0 <= low < float("inf"):
                raise ValueError(f"retailer minimum for {retailer!r} must be >= 0, got {low}")
        return self

    @property
    def spendable(self) -> float:
        """B * (1 - rho): what the plan may spend once the experiment reserve is held back."""
        return self.budget * (1.0 - self.reserve_fraction)


@dataclass(frozen=True, eq=False)
class CapGroup:
    """One spend cap in a `Problem`: a retailer cap from the brief or a curve set's group cap."""

    name: str
    kind: Literal["retailer", "group"]
    idx: np.ndarray  # line indices
    cap: float
    parent: int  # position of the smallest enclosing cap in Problem.groups, -1 for none


def nest_caps(
    n: int, caps: Sequence[tuple[str, Literal["retailer", "group"], np.ndarray, float]]
) -> tuple[CapGroup, ...]:
    """Order caps children first and link each to its smallest enclosing cap. Raises when two
    caps overlap without one containing the other (the family must be laminar).

    Going from the largest set down, each line remembers the last cap that covered it; a cap
    whose lines remember different caps straddles a boundary."""
    order = sorted(range(len(caps)), key=lambda j: -len(caps[j][2]))
    owner = np.full(n, -1)
    parent: dict[int, int] = {}
    for j in order:
        name, _, idx, _ = caps[j]
        seen = np.unique(owner[idx])
        if seen.size > 1:
            clash = [caps[o][0] for o in seen if o >= 0] or ["uncapped lines"]
            raise OptimizerInputError(
                f"spend cap {name!r} partly overlaps {clash[0]!r}: caps must be nested or "
                "disjoint (e.g. placements inside retailers)",
                group=name,
            )
        parent[j] = int(seen[0])
        owner[idx] = j
    children_first = order[::-1]
    pos = {j: i for i, j in enumerate(children_first)}
    return tuple(
        CapGroup(
            name=caps[j][0],
            kind=caps[j][1],
            idx=caps[j][2],
            cap=float(caps[j][3]),
            parent=-1 if parent[j] < 0 else pos[parent[j]],
        )
        for j in children_first
    )


@dataclass(frozen=True, eq=False)
class SpendMin:
    """One retailer's minimum spend in a `Problem` (the brief's `retailer_mins`)."""

    name: str
    idx: np.ndarray  # line indices
    amount: float


@dataclass(frozen=True, eq=False)
class Problem:
    """The normalized optimization problem both solvers read.

    maximize  sum w_i r_i(x_i)              (objective "roas": sum r_i / sum x_i)
    s.t.      s_lo <= sum x_i <= s_hi
              sum_{i in g} x_i <= cap_g     for each cap g (retailers, placement groups, ...)
              sum r_i(x_i) >= k * sum x_i   (when k is set)
              sum_{i in r} x_i >= min_r     for each retailer minimum r (`mins`)
              lo_i <= x_i <= hi_i

    The caps form a laminar family, ordered children first (`nest_caps`).
    """

    a: np.ndarray
    b: np.ndarray
    w: np.ndarray  # objective weight on revenue: margin rate, or 1
    lo: np.ndarray
    hi: np.ndarray
    groups: tuple[CapGroup, ...]
    s_lo: float
    s_hi: float
    k: float | None
    objective: Objective
    mins: tuple[SpendMin, ...] = ()
    log_ab: np.ndarray = field(init=False)
    # Positions in `groups` of the caps that can bind (their lines can exceed them), in
    # children-first order.
    capped: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "log_ab", np.log(self.a) - np.log(self.b))
        capped = tuple(
            j for j, g in enumerate(self.groups) if g.idx.size and self.hi[g.idx].sum() > g.cap
        )
        object.__setattr__(self, "capped", capped)

    def revenue(self, x: np.ndarray) -> np.ndarray:
        return self.a * -np.expm1(-x / self.b)

    def objective_value(self, x: np.ndarray) -> float:
        rev = self.revenue(x)
        if self.objective == "roas":
            spend = float(x.sum())
            return float(rev.sum()) / spend if spend > 0 else 0.0
        return float(np.dot(self.w, rev))

    def group_totals(self, x: np.ndarray) -> np.ndarray:
        """Spend per cap group."""
        return np.array([float(x[g.idx].sum()) for g in self.groups])

    def line_premium(self, duals: np.ndarray) -> np.ndarray:
        """Per line, the sum of the cap duals of every group that contains it."""
        out = np.zeros(self.a.shape[0])
        for g, d in zip(self.groups, duals, strict=True):
            out[g.idx] += d
        return out


def prepare(curves: CurveSet, brief: Brief, excluded: np.ndarray | None = None) -> Problem:
    """Apply the brief and line rules to the curves: out-of-stock and excluded lines are held
    at zero, a funded line's hard minimum is raised to its policy minimum unit, and a line
    whose maximum is below its minimum unit can only get zero. The brief's retailer caps and
    the curve set's group caps become one nested family of caps."""
    for what, given in (("cap", brief.retailer_caps), ("minimum", brief.retailer_mins)):
        unknown = sorted(set(given) - set(curves.retailers.tolist()))
        if unknown:
            raise UnknownRetailerError(
                f"retailer {what} for unknown retailer(s): {', '.join(unknown)}",
                known=curves.retailers.tolist(),
            )
    if brief.objective == "roas" and brief.min_spend_fraction <= 0:
        raise OptimizerInputError(
            "the roas objective needs min_spend_fraction > 0: with no spend required, the "
            "highest ROAS is the first dollar on the best line"
        )
    lo = np.maximum(curves.min_spend, np.where(curves.min_spend > 0, curves.min_unit, 0.0))
    hi = curves.max_spend.copy()
    off = curves.out_of_stock.copy()
    if excluded is not None:
        off |= excluded
    bad = np.flatnonzero((lo > hi) & ~off)
    if bad.size:
        raise OptimizerInputError(
            f"{bad.size} line(s) have a minimum (min_spend or min_unit) above max_spend "
            f"(first: row {bad[0]})",
            rows=bad[:10].tolist(),
        )
    off |= hi < curves.min_unit
    lo[off] = 0.0
    hi[off] = 0.0
    caps: list[tuple[str, Literal["retailer", "group"], np.ndarray, float]] = []
    for retailer, cap in sorted(brief.retailer_caps.items()):
        code = int(np.searchsorted(curves.retailers, retailer))
        caps.append((retailer, "retailer", np.flatnonzero(curves.retailer_code == code), cap))
    for g in curves.group_caps:
        caps.append((g.name, "group", np.sort(np.asarray(g.lines, dtype=np.intp)), g.cap))
    weights = curves.margin if brief.objective == "incremental_margin" else np.ones(len(curves))
    mins = tuple(
        SpendMin(r, np.flatnonzero(curves.retailer_code == np.searchsorted(curves.retailers, r)), v)
        for r, v in sorted(brief.retailer_mins.items())
        if v > 0
    )
    return Problem(
        a=curves.a,
        b=curves.b,
        w=weights,
        lo=lo,
        hi=hi,
        groups=nest_caps(len(curves), caps),
        s_lo=brief.spendable * brief.min_spend_fraction,
        s_hi=brief.spendable,
        k=brief.roas_floor,
        objective=brief.objective,
        mins=mins,
    )
