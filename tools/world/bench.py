"""Speed of the simulated market, for `rmn bench world`: building a world, writing its
exports, and scoring a large allocation against the truth (`realized_outcome`).

Scoring is what planning evaluations call over and over, so it has a target: 100,000
allocation lines (random line items, repeated, random spends) in under 5 seconds
(`SCORE_TARGET`; other line counts scale it linearly). Seconds are the median of `runs`
runs; generation and exports run once.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools.errors import RMNError
from tools.world.exports import write_exports
from tools.world.truth import World, generate_world, realized_outcome

# (allocation lines, seconds) that scoring must beat.
SCORE_TARGET = (100_000, 5.0)


def random_allocation(world: World, lines: int, seed: int) -> list[tuple[str, str, str, float]]:
    """`lines` allocation rows (retailer, placement, GTIN, spend) on line items drawn at
    random (with repeats), each with a spend drawn uniformly from $0 to $50: plain rows, so
    scoring pays for validating each one as a plan read from JSON would."""
    keys = world.line_keys
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(keys), lines)
    spend = rng.uniform(0, 50, lines)
    return [(*keys[i], s) for i, s in zip(pick.tolist(), spend.tolist(), strict=True)]


def run_world_bench(
    events: int = 1_000_000, lines: int = 100_000, seed: int = 7, days: int = 90, runs: int = 3
) -> dict[str, Any]:
    """Seconds to generate a world, write `events` delivery records (0: skip) and score a
    `lines`-row allocation, with the scoring target checked."""
    if lines < 1 or runs < 1 or events < 0:
        raise RMNError(
            f"lines and runs must be >= 1 and events >= 0, got {lines}, {runs}, {events}"
        )
    started = time.perf_counter()
    world = generate_world(seed=seed, days=days)
    generate_s = time.perf_counter() - started
    exports_s = None
    if events:
        with tempfile.TemporaryDirectory(prefix="rmn-bench-world-") as tmp:
            exports_s = write_exports(world, Path(tmp), events=events).seconds
    allocation = random_allocation(world, lines, seed)
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        realized_outcome(world, allocation)
        timings.append(time.perf_counter() - t0)
    score_s = statistics.median(timings)
    target_s = SCORE_TARGET[1] * lines / SCORE_TARGET[0]
    return {
        "seed": seed,
        "days": days,
        "line_items": len(world.line_keys),
        "generate_s": round(generate_s, 3),
        "events": events,
        "exports_s": exports_s,
        "score": {
            "lines": lines,
            "runs": runs,
            "seconds": round(score_s, 4),
            "all_seconds": [round(t, 4) for t in timings],
            "lines_per_s": round(lines / score_s),
            "target_s": round(target_s, 4),
            "met": score_s < target_s,
        },
    }
