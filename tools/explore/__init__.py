"""Spending the experiment reserve where the response curves are least known."""

from tools.explore.bandit import (
    BanditInputError,
    BanditSettings,
    ParticlePosterior,
    allocate_round,
    curve_uncertainty,
    reserve_lines,
    run_bandit,
    run_bandit_bench,
)

__all__ = [
    "BanditInputError",
    "BanditSettings",
    "ParticlePosterior",
    "allocate_round",
    "curve_uncertainty",
    "reserve_lines",
    "run_bandit",
    "run_bandit_bench",
]
