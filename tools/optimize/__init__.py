"""Retail-media budget optimizer: saturating curves in, an allocation with intervals, shadow
prices and (for briefs that cannot be met) a diagnosis out."""

from tools.optimize.curves import Brief, CurveSet, LineItem, OptimizerInputError, Problem, prepare
from tools.optimize.diagnose import Diagnosis
from tools.optimize.kkt import KKTSolution, solve_kkt
from tools.optimize.solver import KKT_THRESHOLD, AllocationResult, allocate, solve_cvxpy

__all__ = [
    "KKT_THRESHOLD",
    "AllocationResult",
    "Brief",
    "CurveSet",
    "Diagnosis",
    "KKTSolution",
    "LineItem",
    "OptimizerInputError",
    "Problem",
    "allocate",
    "prepare",
    "solve_cvxpy",
    "solve_kkt",
]
