"""Who is held out: seeded, stratified draws of control geos (or ads-off periods) and the
balance check of the groups they make.

Positions are ranked (geos by pre-period sales, periods by time), cut into as many
contiguous strata as there are units to hold out, and one unit per stratum is drawn, so the
control group spans the whole range rather than bunching at one end.
"""

from __future__ import annotations

import math

import numpy as np

from tools.measurement.models import Balance
from tools.seeds import rng_for

# |standardized mean difference| of log pre-period sales under which groups count as balanced.
BALANCE_SMD = 0.2


def stratified_pick(
    n_units: int, n_pick: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut positions 0..n_units-1 into `n_pick` contiguous, near-equal strata and draw one
    position per stratum. Returns (picked mask, stratum of each position)."""
    strata = np.empty(n_units, dtype=int)
    picked = np.zeros(n_units, dtype=bool)
    for s, block in enumerate(np.array_split(np.arange(n_units), n_pick)):
        strata[block] = s
        picked[rng.choice(block)] = True
    return picked, strata


def assign_geos(
    geos: tuple[str, ...], pre_daily: np.ndarray, n_control: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified geo assignment: (control mask, stratum) in the order of `geos`."""
    order = np.lexsort((np.array(geos), -pre_daily))  # by sales, ties by geo id
    picked, strata = stratified_pick(len(geos), n_control, rng_for(seed, "geo-assign"))
    control = np.zeros(len(geos), dtype=bool)
    stratum = np.empty(len(geos), dtype=int)
    control[order] = picked
    stratum[order] = strata
    return control, stratum


def balance(pre_daily: np.ndarray, control: np.ndarray) -> Balance:
    x = np.log(np.maximum(pre_daily, 1e-9))
    xt, xc = x[~control], x[control]
    pooled = math.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2) if min(xt.size, xc.size) > 1 else 0
    smd = float((xt.mean() - xc.mean()) / pooled) if pooled > 0 else 0.0
    return Balance(
        smd_log_sales=round(smd, 4),
        control_sales_share=round(float(pre_daily[control].sum() / pre_daily.sum()), 4),
        balanced=abs(smd) < BALANCE_SMD,
    )
