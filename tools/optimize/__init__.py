"""Retail-media budget optimizer: saturating curves in, an allocation with intervals, shadow
prices and (for briefs that cannot be met) a diagnosis out. `policy_limits` turns the
retailers' spend rules into limits on the curves before `allocate`."""

from tools.optimize.convex import solve_cvxpy
from tools.optimize.curves import (
    Brief,
    CurveSet,
    GroupCap,
    LineItem,
    OptimizerInputError,
    Problem,
    prepare,
)
from tools.optimize.diagnose import Diagnosis
from tools.optimize.kkt import KKTSolution, solve_kkt
from tools.optimize.limits import PolicyLimitReport, RestrictedLine, policy_limits
from tools.optimize.results import AllocationResult
from tools.optimize.solver import KKT_THRESHOLD, allocate

__all__ = [
    "KKT_THRESHOLD",
    "AllocationResult",
    "Brief",
    "CurveSet",
    "Diagnosis",
    "GroupCap",
    "KKTSolution",
    "LineItem",
    "OptimizerInputError",
    "PolicyLimitReport",
    "Problem",
    "RestrictedLine",
    "allocate",
    "policy_limits",
    "prepare",
    "solve_cvxpy",
    "solve_kkt",
]
