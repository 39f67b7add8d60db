"""Differential privacy for clean-room answers: OpenDP's Laplace mechanism (the per-tenant
epsilon ledger and the cache of released answers are in `tools.cleanroom.ledger`).

Neighboring datasets differ by one event row. Each row falls in exactly one output cell, so
the vector of per-cell counts changes by at most 1 in L1 norm, and the vector of per-cell sums
of a metric clamped to [0, U] changes by at most U (U = the rules' `sum_clamp`). A query that
releases n such vectors (the event count and one sum per metric) splits its epsilon evenly
across them; by sequential composition the query costs exactly its epsilon. Averages are a
noisy sum over a noisy count, which is post-processing and costs nothing more.

Which cells appear is decided by the k threshold on exact counts, as are the reported numbers
of cells returned and suppressed: cell presence is protected by k-anonymity, not by DP.
"""

from __future__ import annotations

import math

from tools.errors import RMNError
from tools.policy.data_access import MIN_EPSILON

MECHANISM = "laplace"
__all__ = ["MECHANISM", "MIN_EPSILON", "DPReleaseError", "noisy_counts", "noisy_sums"]
# OpenDP rounds its privacy map conservatively, so allow for the last bit of float error.
_MAP_TOLERANCE = 1e-9
# Noisy counts are int64; one this large means the noise saturated it.
_COUNT_LIMIT = 2**53


class DPReleaseError(RMNError):
    """A differentially private release that could not be made: nothing is released and
    nothing is charged."""

    kind = "dp_release_failed"


def _laplace(
    values: list[float] | list[int], sensitivity: float, epsilon: float, integer: bool
) -> tuple[list, float]:
    import opendp.prelude as dp
    from opendp.mod import OpenDPException

    dp.enable_features("contrib")
    scale = sensitivity / epsilon
    try:
        atom = dp.atom_domain(T="i64") if integer else dp.atom_domain(T=float, nan=False)
        metric = dp.l1_distance(T="i64" if integer else float)
        meas = dp.m.make_laplace(dp.vector_domain(atom), metric, scale=scale)
        d_in = int(sensitivity) if integer else float(sensitivity)
        spends = meas.map(d_in)
        noisy = meas(values)
    except OpenDPException as err:
        reason = str(err).strip().splitlines()[-1].strip() if str(err).strip() else repr(err)
        raise DPReleaseError(
            f"the differential-privacy release failed (OpenDP: {reason}; epsilon {epsilon:g}, "
            f"noise scale {scale:g}); nothing was released or charged",
            epsilon=epsilon,
        ) from None
    if spends > epsilon * (1 + _MAP_TOLERANCE):
        raise DPReleaseError(
            f"the Laplace scale {scale:g} does not give epsilon {epsilon:g}; nothing was "
            "released or charged",
            epsilon=epsilon,
        )
    limit = _COUNT_LIMIT if integer else math.inf
    if not all(math.isfinite(v) and abs(v) < limit for v in noisy):
        raise DPReleaseError(
            f"the noise at epsilon {epsilon:g} (scale {scale:g}) overflowed the released "
            "values; use a larger epsilon; nothing was released or charged",
            epsilon=epsilon,
        )
    return noisy, scale


def noisy_counts(counts: list[int], epsilon: float) -> tuple[list[int], float]:
    """Per-cell event counts plus discrete Laplace noise (sensitivity 1); returns the scale."""
    if not counts:
        return [], 1.0 / epsilon
    return _laplace([int(c) for c in counts], 1, epsilon, integer=True)


def noisy_sums(sums: list[float], bound: float, epsilon: float) -> tuple[list[float], float]:
    """Per-cell sums of values clamped to [0, bound], plus Laplace noise (sensitivity bound)."""
    if not sums:
        return [], bound / epsilon
    return _laplace([float(s) for s in sums], bound, epsilon, integer=False)
