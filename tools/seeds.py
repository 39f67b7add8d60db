"""Seeded random streams shared by the simulator, experiment designs and benchmarks."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *labels: str) -> np.random.Generator:
    """An independent, stable random stream per purpose, so adding draws in one place never
    shifts the numbers drawn in another."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])
