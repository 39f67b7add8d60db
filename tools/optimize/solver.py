"""Allocate a brief's budget over line items.

Two solvers read the same `Problem`: a cvxpy model solved by Clarabel, and the exact KKT
water-fill (`tools.optimize.kkt`). `allocate` uses cvxpy up to `KKT_THRESHOLD` lines and the
water-fill above it (or whichever is asked for), then checks the plan against every constraint,
repairs solver-tolerance overshoot by tiny scaling, and reports outcomes, intervals, shadow
prices and, for a brief that cannot be met, a diagnosis.

Objectives: "incremental_margin" (sum m_i r_i), "incremental_revenue" (sum r_i), and "roas"
(sum r_i / sum x_i over plans that spend at least min_spend_fraction of the spendable budget;
a ratio, solved by Dinkelbach iterations; at min_spend_fraction 1 it is the revenue plan).

The policy minimum unit (a line gets 0 or at least its minimum) is not convex. The plan is
solved convex; lines funded below their minimum are then dropped and the plan re-solved until
every funded line meets its minimum. That is a heuristic, reported in `dropped_below_minimum`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

import numpy as np

from tools.optimize.convex import Solved, solve_cvxpy
from tools.optimize.curves import Brief, CurveSet, Problem, prepare
from tools.optimize.diagnose import Diagnosis, diagnose_floor, precheck
from tools.optimize.kkt import KKTSolution, floor_gap, solve_kkt
from tools.optimize.results import (
    AllocationResult,
    Checks,
    Path,
    ShadowPrices,
    allocation_table,
    outcome,
)

Method = Literal["auto", "cvxpy", "kkt"]

# Above this many lines `auto` uses the water-fill: Clarabel takes ~0.4 s at 10k lines and
# 5-8 s at 100k, while the water-fill stays under a second at 1M.
KKT_THRESHOLD = 20_000

def _from_kkt(sol: KKTSolution) -> Solved:
    return Solved(
        x=sol.x,
        status=sol.status,
        solver_status=f"water-fill {'converged' if sol.status == 'optimal' else 'infeasible'}"
        f" ({sol.iterations} fills)",
        budget_dual=sol.budget_dual,
        floor_dual=sol.floor_dual,
        cap_duals=sol.cap_duals,
        path="kkt",
    )


# feasibility -----------------------------------------------------------------------------------


def repair(p: Problem, x: np.ndarray) -> np.ndarray:
    """Pull a solver's answer inside the constraints it misses by its tolerance: clip to the
    line bounds, scale down over-cap retailers and an over-budget total, scale down a floor
    shortfall (ROAS only rises as a concave plan shrinks), and top up a total left short of
    the spend the brief requires when that keeps every other constraint. Caps go children
    first, so scaling a cap's lines down never breaks one inside it."""
    x = np.clip(x, p.lo, p.hi)
    for j in p.capped:
        g = p.groups[j]
        total = float(x[g.idx].sum())
        if total > g.cap:
            x[g.idx] *= g.cap / total
    total = float(x.sum())
    if total > p.s_hi:
        x *= p.s_hi / total
    if p.k is not None and total > 0 and floor_gap(p, x) < 0:
        x = x * _floor_scale(p, x)
    total = float(x.sum())
    if 0 < total < p.s_lo:
        topped = _top_up(p, x, p.s_lo - total)
        if topped is not None:
            x = topped
    return x


def _floor_scale(p: Problem, x: np.ndarray) -> float:
    """The largest c <= 1 with the floor met at c * x (c ~ 1 - 1e-9 for solver noise)."""
    lo_c, hi_c = 1.0 - 1e-6, 1.0
    while floor_gap(p, x * lo_c) < 0 and lo_c > 0.0:
        lo_c = max(1.0 - 2.0 * (1.0 - lo_c), 0.0)
    for _ in range(80):
        mid = 0.5 * (lo_c + hi_c)
        if floor_gap(p, x * mid) >= 0:
            lo_c = mid
        else:
            hi_c = mid
    return lo_c


def _top_up(p: Problem, x: np.ndarray, short: float) -> np.ndarray | None:
    """Spread `short` dollars over lines in proportion to spend, leaving out lines the spread
    would lift above their maximum and the lines of any cap it would break; None if no such
    spread keeps every bound, cap and the floor."""
    room = (x < p.hi) & (x > 0)
    for _ in range(len(p.capped) + x.size + 1):
        base = float(x[room].sum())
        if base <= 0:
            return None
        y = x.copy()
        y[room] *= 1.0 + short / base
        full = room & (y > p.hi)
        over = [j for j in p.capped if float(y[p.groups[j].idx].sum()) > p.groups[j].cap]
        if not full.any() and not over:
            break
        room &= ~full
        for j in over:
            room[p.groups[j].idx] = False
    else:
        return None
    if p.k is not None and floor_gap(p, y) < 0:
        return None
    return y


def check(p: Problem, x: np.ndarray) -> Checks:
    total = float(x.sum())
    viol = {"retailer": 0.0, "group": 0.0}
    for j in p.capped:
        g = p.groups[j]
        over = float(x[g.idx].sum()) - g.cap
        viol[g.kind] = max(viol[g.kind], over / max(g.cap, 1.0))
    floor = 0.0
    if p.k is not None and total > 0:
        floor = max(0.0, -floor_gap(p, x) / (p.k * total))
    bounds = float(np.max(np.maximum(p.lo - x, 0.0) + np.maximum(x - p.hi, 0.0)))
    short = max([(m.amount - float(x[m.idx].sum())) / max(m.amount, 1.0) for m in p.mins] + [0.0])
    return Checks(
        budget=max(0.0, total - p.s_hi) / p.s_hi,
        min_total_spend=max(0.0, p.s_lo - total) / p.s_hi,
        roas_floor=floor,
        retailer_caps=viol["retailer"],
        line_bounds=bounds / p.s_hi,
        group_caps=viol["group"],
        retailer_mins=short,
    )


# the allocator ---------------------------------------------------------------------------------


# A plan may miss a constraint by at most this much (relative) after repair.
FEASIBILITY_TOL = 1e-9


def worst_violation(checks: Checks) -> float:
    return max(checks.model_dump().values())


def _solve(p: Problem, path: Path, notes: list[str]) -> Solved:
    """Solve on `path`; Clarabel's verdicts are tolerance-bound, so where cvxpy fails, calls
    the brief infeasible, or leaves a constraint missed after repair, the exact water-fill
    decides."""
    if p.mins:
        return _solve_with_retailer_mins(p, notes)
    if path == "kkt":
        return _from_kkt(solve_kkt(p))
    from cvxpy.error import SolverError  # see _clarabel

    try:
        sol = solve_cvxpy(p)
    except SolverError as err:
        notes.append(f"cvxpy failed ({err}); the exact water-fill produced the plan")
        return _from_kkt(solve_kkt(p))
    if sol.status == "infeasible":
        exact = solve_kkt(p)
        if exact.status == "optimal":
            notes.append(f"cvxpy reported {sol.solver_status}; the exact water-fill found a plan")
            return _from_kkt(exact)
        return sol
    missed = worst_violation(check(p, repair(p, sol.x)))
    if missed > FEASIBILITY_TOL:
        exact = _from_kkt(solve_kkt(p))
        verdict = "found a plan" if exact.status == "optimal" else "confirmed it infeasible"
        notes.append(
            f"cvxpy's plan missed a constraint by {missed:.1e} (solver tolerance); the exact "
            f"water-fill {verdict}"
        )
        return exact
    return sol


def _solve_with_retailer_mins(p: Problem, notes: list[str]) -> Solved:
    """cvxpy alone: the exact water-fill has no retailer minimums, so it can neither replace
    nor overrule cvxpy here. A plan cvxpy leaves short of a constraint after repair is kept
    with the miss in its checks and a note."""
    from cvxpy.error import SolverError  # see _clarabel

    try:
        sol = solve_cvxpy(p)
    except SolverError as err:
        notes.append(f"cvxpy failed ({err}) on a brief with retailer minimums")
        nan = np.full(len(p.groups), np.nan)
        return Solved(np.zeros(p.a.shape[0]), "infeasible", "cvxpy failed", np.nan, np.nan, nan,
                      "cvxpy")  # fmt: skip
    if sol.status == "optimal":
        missed = worst_violation(check(p, repair(p, sol.x)))
        if missed > FEASIBILITY_TOL:
            notes.append(f"cvxpy's plan missed a constraint by {missed:.1e} (solver tolerance)")
    return sol


def allocate(
    curves: CurveSet,
    brief: Brief,
    method: Method = "auto",
    kkt_threshold: int = KKT_THRESHOLD,
) -> AllocationResult:
    """Plan the brief's spendable budget over the curves; see the module docstring."""
    start = time.perf_counter()
    notes: list[str] = []
    path: Path
    if method == "auto":
        path = "kkt" if len(curves) > kkt_threshold else "cvxpy"
        if path == "kkt":
            notes.append(
                f"{len(curves)} lines is above the {kkt_threshold}-line cvxpy threshold: the "
                "exact water-fill produced the plan"
            )
    else:
        path = method
    if brief.retailer_mins and path == "kkt":
        path = "cvxpy"
        notes.append("retailer minimums: cvxpy produced the plan (the water-fill has none)")
    unreachable = int(
        np.count_nonzero(
            (curves.max_spend < curves.min_unit) & (curves.min_spend == 0) & ~curves.out_of_stock
        )
    )
    if unreachable:
        notes.append(f"{unreachable} line(s) have max_spend below their minimum unit: zero spend")
    solved = _solve_with_minimums(curves, brief, path, notes, start)
    if isinstance(solved, AllocationResult):
        return solved
    p, sol, dropped = solved
    return _optimal(curves, brief, p, sol, dropped, notes, start)


def _solve_with_minimums(
    curves: CurveSet, brief: Brief, path: Path, notes: list[str], start: float
) -> tuple[Problem, Solved, list[int]] | AllocationResult:
    """Solve, drop the lines funded below their minimum unit and re-solve until none is;
    returns the last problem, its solution and the dropped rows, or the infeasible result."""
    excluded = np.zeros(len(curves), dtype=bool)
    dropped: list[int] = []
    for _ in range(100):
        p = prepare(curves, brief, excluded)
        diagnosis = precheck(p)
        if diagnosis is not None:
            return _infeasible(
                brief, path, "not solved: " + diagnosis.binding, diagnosis, dropped, notes, start
            )
        sol = _solve(p, path, notes)
        path = sol.path
        if sol.status == "infeasible":
            diagnosis = diagnose_floor(p, brief.reserve_fraction)
            return _infeasible(brief, path, sol.solver_status, diagnosis, dropped, notes, start)
        below = (sol.x > 0) & (sol.x < curves.min_unit * (1 - 1e-9)) & (p.lo == 0)
        if not below.any():
            break
        excluded |= below
        # A few millionths of a unit is an interior-point solver's zero, not a funded line.
        funded = below & (sol.x >= 1e-6 * curves.min_unit)
        dropped.extend(np.flatnonzero(funded).tolist())
    if dropped:
        notes.append(
            f"{len(dropped)} line(s) were funded below their minimum unit and dropped; the "
            "plan was re-solved without them"
        )
        p, sol, promoted = _promote(curves, brief, p, sol, excluded, path, notes)
        dropped = [i for i in dropped if i not in promoted]
    return p, sol, dropped


# Dropped lines tried at their minimum unit, best return there first (`_promote`): a re-solve
# each, about 7 ms on ya48's 390 lines, where 53 dropped lines beat the plan's last dollar.
MAX_PROMOTIONS = 25


def _promote(
    curves: CurveSet, brief: Brief, p: Problem, sol: Solved, excluded: np.ndarray,
    path: Path, notes: list[str],
) -> tuple[Problem, Solved, set[int]]:  # fmt: skip
    """Fund a dropped line at its minimum unit where the plan gains by it. Dropping every line
    funded below its minimum left Delta Home's best line out of a plan although, at its
    $1,240 minimum, it brought $8.02 a dollar against the $5.67 the last dollar brought at
    Alpha Mart (ya48 of unseen44). Each try, while a line's return at its minimum beats the
    plan's next dollar (the budget's dual), is a re-solve with that line held at its minimum,
    kept only if the objective rises and no other line falls below its own minimum."""
    unit = curves.min_unit
    ok = excluded & (unit > 0) & (curves.max_spend >= unit) & ~curves.out_of_stock
    at_unit = np.where(ok, p.w * curves.return_at_minimum(), -np.inf)
    value = p.objective_value(sol.x)
    promoted: set[int] = set()
    for i in np.argsort(-at_unit, kind="stable")[:MAX_PROMOTIONS]:
        if not np.isfinite(at_unit[i]) or at_unit[i] <= sol.budget_dual:
            break
        floor = curves.min_spend.copy()
        floor[i] = unit[i]
        trial, keep = curves.replace(min_spend=floor), excluded.copy()
        keep[i] = False
        q = prepare(trial, brief, keep)
        if precheck(q) is not None:
            continue
        got = _solve(q, path, [])
        below = (got.x > 0) & (got.x < unit * (1 - 1e-9)) & (q.lo == 0)
        if got.status == "infeasible" or below.any():
            continue
        if q.objective_value(got.x) > value * (1 + 1e-9):
            curves, excluded, p, sol, value = trial, keep, q, got, q.objective_value(got.x)
            promoted.add(int(i))
    if promoted:
        notes.append(f"{len(promoted)} of them funded at their minimum unit, where the plan gains")
    return p, sol, promoted


def _optimal(
    curves: CurveSet,
    brief: Brief,
    p: Problem,
    sol: Solved,
    dropped: list[int],
    notes: list[str],
    start: float,
) -> AllocationResult:
    """The repaired plan with its checks, outcome, shadow prices and the caps that bind."""
    x = repair(p, sol.x)
    checks = check(p, x)
    spend = float(x.sum())
    if spend == 0:
        notes.append(
            "the plan spends nothing: no line's first dollar meets the ROAS floor"
            if p.k is not None
            else "the plan spends nothing: no line can take spend"
        )
    value = p.objective_value(x)
    shadow = _shadow(curves, brief, p, sol, value, spend)
    binding = [
        f"{g.name} (${g.cap:,.0f}; {shadow.group_caps[g.name]:.3g} per extra dollar)"
        for g in p.groups
        if g.kind == "group" and float(x[g.idx].sum()) >= g.cap * (1 - 1e-9)
    ]
    if binding:
        notes.append(f"{len(binding)} spend cap(s) bind: {', '.join(binding)}")
    dropped.sort()
    return AllocationResult(
        status="optimal",
        solver_status=sol.solver_status,
        path=sol.path,
        objective=brief.objective,
        objective_value=value,
        seconds=time.perf_counter() - start,
        spendable=brief.spendable,
        allocation=allocation_table(curves, x),
        outcome=outcome(curves, x),
        shadow_prices=shadow,
        checks=checks,
        dropped_below_minimum=dropped,
        notes=notes,
    )


def _shadow(
    curves: CurveSet, brief: Brief, p: Problem, sol: Solved, value: float, spend: float
) -> ShadowPrices:
    per_unit = sol.floor_dual * spend if p.k is not None else 0.0
    relax = None
    if p.k is not None:
        relax = 0.0
        if sol.floor_dual > 0 and p.objective != "roas":
            lower = replace(p, k=max(p.k - 0.1, 0.0) or None)
            if p.mins:  # the water-fill has no minimums
                again = solve_cvxpy(lower)
                ok = again.status == "optimal"
                relax = lower.objective_value(again.x) - value if ok else None
            else:
                relax = solve_kkt(lower).objective - value
    duals = {
        kind: {
            g.name: float(d) for g, d in zip(p.groups, sol.cap_duals, strict=True) if g.kind == kind
        }
        for kind in ("retailer", "group")
    }
    return ShadowPrices(
        spendable=sol.budget_dual,
        budget=sol.budget_dual * (1.0 - brief.reserve_fraction),
        roas_floor_per_unit=per_unit,
        roas_floor_relax_0_1=relax,
        retailer_caps=duals["retailer"],
        group_caps=duals["group"],
        retailer_mins={
            m.name: float(d)
            for m, d in zip(p.mins, sol.min_duals if sol.min_duals is not None else [], strict=True)
        },
    )


def _infeasible(
    brief: Brief,
    path: Path,
    solver_status: str,
    diagnosis: Diagnosis,
    dropped: list[int],
    notes: list[str],
    start: float,
) -> AllocationResult:
    return AllocationResult(
        status="infeasible",
        solver_status=solver_status,
        path=path,
        objective=brief.objective,
        objective_value=None,
        seconds=time.perf_counter() - start,
        spendable=brief.spendable,
        diagnosis=diagnosis,
        dropped_below_minimum=sorted(dropped),
        notes=notes,
    )
