"""The cvxpy model of a `Problem`, solved by Clarabel (`solve_cvxpy`), and `Solved`, what
either solver returns before repair and reporting (`tools.optimize.solver`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse

from tools.optimize.curves import Problem
from tools.optimize.results import Path

# Clarabel at 1e-10 leaves budget and floor residuals ~1e-11 (its 1e-8 defaults leave ~1e-8);
# where tight tolerances stall, the defaults are tried before the water-fill takes over.
_CLARABEL_TIGHT: dict[str, Any] = {
    "tol_feas": 1e-10,
    "tol_gap_abs": 1e-10,
    "tol_gap_rel": 1e-10,
    "max_iter": 400,
}


@dataclass(frozen=True)
class Solved:
    """A solver's plan and multipliers, in objective units, before repair and reporting."""

    x: np.ndarray
    status: Literal["optimal", "infeasible"]
    solver_status: str
    budget_dual: float
    floor_dual: float
    cap_duals: np.ndarray
    path: Path
    # d objective / d minimum, per retailer minimum (Problem.mins): what a dollar of it costs.
    min_duals: np.ndarray | None = None


# cvxpy ---------------------------------------------------------------------------------------


def _clarabel(prob: Any) -> None:
    # cvxpy takes seconds to import (2.4 s measured on this 2-core machine) and only plans
    # up to KKT_THRESHOLD lines need it, so it is imported here rather than at module top.
    import cvxpy as cp
    from cvxpy.error import SolverError

    # An inaccurate status is reported in solver_status; the plan is checked and repaired.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            prob.solve(solver=cp.CLARABEL, **_CLARABEL_TIGHT)
        except SolverError:
            prob.solve(solver=cp.CLARABEL)


_BAD_STATUS = ("infeasible", "infeasible_inaccurate", "unbounded", "unbounded_inaccurate")


@dataclass
class _ConvexModel:
    """The rescaled cvxpy model of a problem over its active lines (see `solve_cvxpy`):
    z = x / b per active line, revenue and spend in units of `scale`, and the constraints
    whose duals price the budget, the caps, the ROAS floor and the retailer minimums."""

    p: Problem
    act: np.ndarray
    scale: float
    z: Any
    u: Any
    rev: Any
    spend: Any
    cons: list[Any]
    budget_cons: list[Any]
    cap_groups: list[int]
    cap_con: Any
    floor_con: Any
    min_con: Any = None

    @classmethod
    def build(cls, p: Problem, act: np.ndarray) -> _ConvexModel:
        import cvxpy as cp  # see _clarabel

        scale = p.s_hi / act.size
        a, b = p.a[act], p.b[act]
        z = cp.Variable(act.size, bounds=[p.lo[act] / b, p.hi[act] / b])
        u = 1 - cp.exp(-z)
        rev = (a / scale) @ u
        spend = (b / scale) @ z
        cons: list[Any] = []
        if p.s_lo >= p.s_hi:
            budget_cons = [spend == p.s_hi / scale]
        else:
            budget_cons = [spend <= p.s_hi / scale]
            if p.s_lo > 0:
                budget_cons.append(spend >= p.s_lo / scale)
        cons += budget_cons
        pos = np.full(p.a.shape[0], -1)
        pos[act] = np.arange(act.size)
        cap_groups = list(p.capped)
        cap_con = None
        if cap_groups:
            idxs = [p.groups[j].idx for j in cap_groups]
            rows = np.concatenate([np.full(idx.size, r) for r, idx in enumerate(idxs)])
            cols = np.concatenate([pos[idx] for idx in idxs])
            keep = cols >= 0
            m = sparse.csr_matrix(
                ((p.b / scale)[act][cols[keep]], (rows[keep], cols[keep])),
                shape=(len(cap_groups), act.size),
            )
            cap_con = m @ z <= np.array([p.groups[j].cap for j in cap_groups]) / scale
            cons.append(cap_con)
        floor_con = None
        if p.k is not None and p.objective != "roas":
            floor_con = rev >= p.k * spend
            cons.append(floor_con)
        min_con = None
        if p.mins:
            m = np.zeros((len(p.mins), act.size))
            for r, low in enumerate(p.mins):
                cols = pos[low.idx]
                m[r, cols[cols >= 0]] = (p.b / scale)[low.idx[cols >= 0]]
            min_con = m @ z >= np.array([low.amount for low in p.mins]) / scale
            cons.append(min_con)
        return cls(p, act, scale, z, u, rev, spend, cons, budget_cons, cap_groups, cap_con,
                   floor_con, min_con)  # fmt: skip

    def read(self, x: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """The solved plan written into `x`, the budget dual and the cap duals."""
        p, act = self.p, self.act
        x[act] = np.clip(p.b[act] * self.z.value, p.lo[act], p.hi[act])
        duals = [float(c.dual_value) for c in self.budget_cons]
        if p.s_lo >= p.s_hi:
            lam = duals[0]
        else:
            lam = duals[0] - (duals[1] * p.s_lo / p.s_hi if len(duals) > 1 else 0.0)
        caps = np.zeros(len(p.groups))
        if self.cap_con is not None:
            caps[self.cap_groups] = np.maximum(
                np.asarray(self.cap_con.dual_value, dtype=float), 0.0
            )
        return x, lam, caps

    def min_duals(self) -> np.ndarray | None:
        """Per retailer minimum, the objective lost per dollar it holds (0 where slack)."""
        if self.min_con is None:
            return None
        return np.maximum(np.asarray(self.min_con.dual_value, dtype=float).reshape(-1), 0.0)


def solve_cvxpy(p: Problem) -> Solved:
    """Clarabel on a rescaled model: spend x = b * z (z ~ 1 on every line) and totals in units
    of the average line's spend (spendable / lines), so every coefficient is ~1. Raw dollars
    break interior-point solvers at 1k lines; totals per spendable dollar stall Clarabel at
    10k (coefficients ~1/n)."""
    import cvxpy as cp  # see _clarabel

    n = p.a.shape[0]
    act = np.flatnonzero(p.hi > 0)
    x = np.zeros(n)
    zero_duals = np.zeros(len(p.groups))
    if act.size == 0:
        return Solved(x, "optimal", "no line can take spend", 0.0, 0.0, zero_duals, "cvxpy")
    model = _ConvexModel.build(p, act)
    if p.objective == "roas":
        return _dinkelbach(model, x, zero_duals)
    a, w = p.a[act], p.w[act]
    prob = cp.Problem(cp.Maximize((w * a / model.scale) @ model.u), model.cons)
    _clarabel(prob)
    if prob.status in _BAD_STATUS or model.z.value is None:
        return Solved(x, "infeasible", prob.status, np.nan, np.nan, zero_duals, "cvxpy")
    x, lam, caps = model.read(x)
    mu = float(model.floor_con.dual_value) if model.floor_con is not None else 0.0
    return Solved(x, "optimal", prob.status, lam, mu, caps, "cvxpy", model.min_duals())


def _dinkelbach(model: _ConvexModel, x: np.ndarray, zero_duals: np.ndarray) -> Solved:
    """The roas objective: theta <- rev/spend of argmax(rev - theta * spend), one compiled
    model re-solved with theta as a parameter."""
    import cvxpy as cp  # see _clarabel

    p = model.p
    theta = cp.Parameter(nonneg=True, value=0.0)
    prob = cp.Problem(cp.Maximize(model.rev - theta * model.spend), model.cons)
    ratio = 0.0
    status = "optimal"
    for _ in range(50):
        _clarabel(prob)
        status = prob.status
        if status in _BAD_STATUS or model.z.value is None:
            return Solved(x, "infeasible", status, np.nan, np.nan, zero_duals, "cvxpy")
        x, lam, caps = model.read(x)
        new = float(p.revenue(x).sum() / x.sum())
        if new <= ratio * (1 + 1e-10):
            break
        ratio = new
        theta.value = ratio
    spent = float(x.sum())
    if p.k is not None and p.revenue(x).sum() < p.k * spent * (1 - 1e-9):
        return Solved(x, "infeasible", status, np.nan, np.nan, zero_duals, "cvxpy")
    mins = model.min_duals()
    return Solved(x, "optimal", status, lam / spent, 0.0, caps / spent, "cvxpy",
                  None if mins is None else mins / spent)  # fmt: skip
