"""Exact KKT solution of the allocation problem by water-filling.

The curves are separable and strictly concave, so with multipliers lambda (total spend),
nu_g (spend caps) and mu (ROAS floor) every line's optimal spend has a closed form:

    (w_i + mu) * (a_i / b_i) * exp(-x_i / b_i) = lambda + sum_{g containing i} nu_g + mu * k
    x_i = clip(b_i * (ln((w_i + mu) * a_i / b_i) - ln(price_i)), lo_i, hi_i)

In t = ln(price) each line is piecewise linear, so the total spend at a price is too: a
safeguarded Newton step on it lands on the exact level in a few O(n) passes.

Spend caps (retailers, placements within them) are nested or disjoint. Taken children first,
a cap solves its own level on its lines as the caps inside it left them, and then only lowers
those lines' upper bounds; a line's price is the largest level among the budget and the caps
around it, so the caps' multipliers need no search of their own and the budget level is one
more water-fill. That holds for any revenue weights and base price, so the ROAS floor's
search below is unchanged by caps.

The floor multiplier is found by a bracketed root search on s = mu / (1 + mu) in [0, 1]: the
floor's slack rev - k * spend is the derivative of the convex dual in mu, hence nondecreasing
in s, and s = 1 is the limit "maximize rev - k * spend" that decides feasibility. The roas
objective (a ratio) is solved by Dinkelbach iterations, each one water-fill at spend price
theta = current ROAS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tools.optimize.curves import Problem

Side = Literal["upper", "lower", "none"]

# Relative tolerance on a water-fill's total spend; float sums over 1M lines drift ~1e-13.
_SPEND_RTOL = 1e-12
# The floor counts as met when rev >= k * spend * (1 - _FLOOR_RTOL).
_FLOOR_RTOL = 1e-12


def _bracket(
    c: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: float
) -> tuple[float, float]:
    """(t_left, t_right) with spend(t_left) >= target >= spend(t_right)."""
    t_right = float(np.max(c - lo / b))  # every line at its minimum
    unbounded = ~np.isfinite(hi)
    if unbounded.any():
        # One unbounded line alone reaches the target left of here.
        t_left = float(np.max(c[unbounded] - target / b[unbounded]))
    else:
        t_left = float(np.min(c - hi / b))  # every line at its maximum
    return t_left, t_right


def _level(
    c: np.ndarray,
    b: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    target: float,
    guess: float | None = None,
) -> float:
    """The t at which spend(t) = sum(clip(b * (c - t), lo, hi)) equals target.

    spend is decreasing and piecewise linear in t, so Newton lands exactly once the active
    set settles; steps that leave the known bracket fall back to bisection."""
    if target <= float(lo.sum()):
        return float(np.max(c - lo / b))
    if target >= float(hi.sum()):
        return -np.inf
    tol = _SPEND_RTOL * target
    t_left, t_right = -np.inf, np.inf
    bracketed = False
    if guess is None or not np.isfinite(guess):
        t_left, t_right = _bracket(c, b, lo, hi, target)
        bracketed = True
        guess = 0.5 * (t_left + t_right)
    t = guess
    for _ in range(200):
        y = b * (c - t)
        x = np.clip(y, lo, hi)
        err = float(x.sum()) - target
        if abs(err) <= tol:
            break
        if err > 0:
            t_left = t
        else:
            t_right = t
        slope = float(np.sum(b, where=x == y))  # lines strictly inside their bounds
        t_new = t + err / slope if slope > 0 else np.nan
        if not t_left < t_new < t_right:
            if not bracketed:
                left, right = _bracket(c, b, lo, hi, target)
                t_left, t_right = max(t_left, left), min(t_right, right)
                bracketed = True
            if not t_left < t_new < t_right:
                t_new = 0.5 * (t_left + t_right)
        if abs(t_new - t) <= 4e-16 * max(abs(t), 1.0):
            break
        t = t_new
    return t


@dataclass(frozen=True)
class Fill:
    """One water-fill: spend per line at given revenue weights and a base spend price."""

    x: np.ndarray
    t: float  # ln of the price on a dollar of spend (budget included); -inf when free
    cap_t: np.ndarray  # per cap group, ln of its own level; -inf when slack
    side: Side  # which total-spend bound binds

    @property
    def price(self) -> float:
        return float(np.exp(self.t))

    def cap_premium(self, p: Problem) -> np.ndarray:
        """Extra price per cap group from its own cap (0 when slack): a line pays the budget
        price plus the premia of every cap around it. Going parents first, a group's price is
        the larger of its parent's price and its own level."""
        price = np.empty(len(p.groups))
        premium = np.zeros(len(p.groups))
        for j in range(len(p.groups) - 1, -1, -1):
            g = p.groups[j]
            outer = self.price if g.parent < 0 else price[g.parent]
            price[j] = max(outer, float(np.exp(self.cap_t[j])))
            premium[j] = price[j] - outer
        return premium


def fill(
    p: Problem,
    weights: np.ndarray | float,
    base_price: float,
    s_lo: float,
    s_hi: float,
    warm: Fill | None = None,
) -> Fill:
    """Maximize sum weights_i * r_i(x_i) - base_price * sum x_i over the box, the caps and
    s_lo <= sum x <= s_hi. The caller checks that the constraints can be met.

    Caps go children first: a cap's level is solved on its lines' bounds as the caps inside
    it left them, and only lowers those bounds, so the budget level is one last water-fill."""
    # Zero weight becomes a tiny one, so such lines only absorb spend nothing else can.
    c = np.log(np.maximum(weights, 1e-300)) + p.log_ab
    hi = p.hi
    cap_t = np.full(len(p.groups), -np.inf)
    if p.capped:
        hi = hi.copy()
        for j in p.capped:
            idx = p.groups[j].idx
            guess = None if warm is None else float(warm.cap_t[j])
            c_g, b_g, lo_g, hi_g = c[idx], p.b[idx], p.lo[idx], hi[idx]
            tg = _level(c_g, b_g, lo_g, hi_g, p.groups[j].cap, guess)
            if tg > -np.inf:
                hi[idx] = np.clip(b_g * (c_g - tg), lo_g, hi_g)
            cap_t[j] = tg
    t0 = float(np.log(base_price)) if base_price > 0 else -np.inf
    spend0 = float(hi.sum()) if t0 == -np.inf else float(np.clip(p.b * (c - t0), p.lo, hi).sum())
    side: Side = "none"
    t = t0
    guess = None if warm is None else warm.t
    if spend0 > s_hi:
        t, side = _level(c, p.b, p.lo, hi, s_hi, guess), "upper"
    elif spend0 < s_lo:
        t, side = _level(c, p.b, p.lo, hi, s_lo, guess), "lower"
    x = hi.copy() if t == -np.inf else np.clip(p.b * (c - t), p.lo, hi)
    return Fill(x=x, t=t, cap_t=cap_t, side=side)


@dataclass(frozen=True)
class KKTSolution:
    """The exact optimum and its multipliers, in objective units."""

    x: np.ndarray
    status: Literal["optimal", "infeasible"]
    objective: float
    budget_dual: float  # d objective / d spendable budget
    spend_multiplier: float  # lambda on the binding total-spend bound (<= 0 on the lower one)
    floor_dual: float  # mu: objective per unit of (revenue - k * spend)
    cap_duals: np.ndarray  # d objective / d cap, per cap group (Problem.groups)
    iterations: int


def floor_gap(p: Problem, x: np.ndarray) -> float:
    """rev - k * spend (>= 0 when the floor holds)."""
    assert p.k is not None
    return float(p.revenue(x).sum()) - p.k * float(x.sum())


def _floor_met(p: Problem, x: np.ndarray) -> bool:
    assert p.k is not None
    return floor_gap(p, x) >= -_FLOOR_RTOL * p.k * float(x.sum())


def _bound_factor(p: Problem, side: Side) -> float:
    """How the binding total-spend bound moves per extra dollar of spendable budget."""
    if side == "upper":
        return 1.0
    if side == "lower":
        return p.s_lo / p.s_hi
    return 0.0


def max_roas(p: Problem, s_lo: float, s_hi: float, max_iter: int = 100) -> tuple[float, Fill, int]:
    """Highest total ROAS with s_lo <= total spend <= s_hi (s_lo > 0 or some line minimum),
    by Dinkelbach iterations: theta <- rev/spend of argmax(rev - theta * spend)."""
    f = fill(p, 1.0, 0.0, s_lo, s_hi)
    theta = float(p.revenue(f.x).sum()) / float(f.x.sum())
    iterations = 1
    for _ in range(max_iter):
        f_new = fill(p, 1.0, theta, s_lo, s_hi, warm=f)
        iterations += 1
        theta_new = float(p.revenue(f_new.x).sum()) / float(f_new.x.sum())
        if theta_new <= theta * (1 + 1e-15):
            if theta_new >= theta:
                f, theta = f_new, theta_new
            break
        f, theta = f_new, theta_new
    return theta, f, iterations


def max_revenue_at_spend(p: Problem, spend: float) -> np.ndarray:
    """The revenue-maximizing allocation that spends exactly `spend`."""
    return fill(p, 1.0, 0.0, spend, spend).x


def solve_kkt(p: Problem) -> KKTSolution:
    """Exact optimum of `p` (see the module docstring). An infeasible ROAS floor gives status
    "infeasible" with the closest plan (the one with the most floor slack) as x."""
    if p.objective == "roas":
        return _solve_ratio(p)
    return _solve_weighted(p)


def _solve_weighted(p: Problem) -> KKTSolution:
    k = p.k

    def at(s: float, warm: Fill | None) -> Fill:
        weights = p.w if s == 0.0 else (1.0 - s) * p.w + s
        return fill(p, weights, s * k if k is not None else 0.0, p.s_lo, p.s_hi, warm)

    f = at(0.0, None)
    iterations = 1
    if k is None or _floor_met(p, f.x):
        return _weighted_solution(p, f, 0.0, iterations)
    f_hi = at(1.0, f)
    iterations += 1
    if not _floor_met(p, f_hi.x):
        return KKTSolution(
            x=f_hi.x,
            status="infeasible",
            objective=p.objective_value(f_hi.x),
            budget_dual=float("nan"),
            spend_multiplier=float("nan"),
            floor_dual=float("nan"),
            cap_duals=np.full(len(p.groups), np.nan),
            iterations=iterations,
        )
    # Illinois regula falsi on the floor slack, always keeping a feasible right end.
    s_neg, g_neg, f_neg = 0.0, floor_gap(p, f.x), f
    s_pos, g_pos, f_pos = 1.0, floor_gap(p, f_hi.x), f_hi
    # Float sums over 1M lines leave ~1e-12 of noise in the slack; stop at that level.
    tol = 1e-11 * k * p.s_hi
    last = 0
    for _ in range(200):
        if g_pos <= tol or s_pos - s_neg <= 1e-16:
            break
        s = (s_neg * g_pos - s_pos * g_neg) / (g_pos - g_neg)
        if not s_neg < s < s_pos:
            s = 0.5 * (s_neg + s_pos)
        f_s = at(s, f_pos if s_pos - s < s - s_neg else f_neg)
        iterations += 1
        g_s = floor_gap(p, f_s.x)
        if g_s >= 0:
            s_pos, g_pos, f_pos = s, g_s, f_s
            if last == 1:
                g_neg *= 0.5
            last = 1
        else:
            s_neg, g_neg, f_neg = s, g_s, f_s
            if last == -1:
                g_pos *= 0.5
            last = -1
    return _weighted_solution(p, f_pos, s_pos, iterations)


def _weighted_solution(p: Problem, f: Fill, s: float, iterations: int) -> KKTSolution:
    k = p.k or 0.0
    scale = 1.0 / (1.0 - s) if s < 1.0 else np.inf
    q = f.price
    lam = (q - s * k) * scale
    return KKTSolution(
        x=f.x,
        status="optimal",
        objective=p.objective_value(f.x),
        budget_dual=lam * _bound_factor(p, f.side),
        spend_multiplier=lam,
        floor_dual=s * scale,
        cap_duals=f.cap_premium(p) * scale,
        iterations=iterations,
    )


def _solve_ratio(p: Problem) -> KKTSolution:
    theta, f, iterations = max_roas(p, p.s_lo, p.s_hi)
    spend = float(f.x.sum())
    if p.k is not None and theta < p.k * (1 - _FLOOR_RTOL):
        return KKTSolution(
            x=f.x,
            status="infeasible",
            objective=theta,
            budget_dual=float("nan"),
            spend_multiplier=float("nan"),
            floor_dual=float("nan"),
            cap_duals=np.full(len(p.groups), np.nan),
            iterations=iterations,
        )
    # At the optimum rev - theta * spend peaks at 0; by the envelope theorem
    # d theta / d bound = (d peak / d bound) / spend.
    return KKTSolution(
        x=f.x,
        status="optimal",
        objective=theta,
        budget_dual=(f.price - theta) * _bound_factor(p, f.side) / spend,
        spend_multiplier=(f.price - theta) / spend,
        floor_dual=0.0,
        cap_duals=f.cap_premium(p) / spend,
        iterations=iterations,
    )


def max_spend_at_floor(p: Problem, k: float) -> float:
    """Largest total spend (up to the spendable budget and what the lines can absorb) at which
    some allocation reaches ROAS >= k; 0 when none does at any positive spend.

    The best revenue at spend s, R(s), is concave, so R(s) - k * s is too: it peaks where
    every funded line's marginal ROAS is k and the floor holds up to its larger root."""
    lo_total = float(p.lo.sum())
    peak = fill(p, 1.0, k, lo_total, p.s_hi)
    s_peak = float(peak.x.sum())

    def h(spend: float) -> float:
        x = max_revenue_at_spend(p, spend)
        return float(p.revenue(x).sum()) - k * float(x.sum())

    if float(p.revenue(peak.x).sum()) - k * s_peak < 0:
        return 0.0
    capacity = float(fill(p, 1.0, 0.0, 0.0, p.s_hi).x.sum())
    if h(capacity) >= 0:
        return capacity
    # Bisection keeps the left end feasible, so the answer meets the floor.
    left, right = s_peak, capacity
    for _ in range(200):
        if right - left <= 1e-12 * right:
            break
        mid = 0.5 * (left + right)
        if h(mid) >= 0:
            left = mid
        else:
            right = mid
    return left
