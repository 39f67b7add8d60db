"""`rmn harmonize`: one retailer's native export -> RMIS Parquet + quality report."""

from __future__ import annotations


def harmonize() -> None:
    """Map a retailer's native export to RMIS."""
