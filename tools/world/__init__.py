"""A seeded simulator of a retail-media market with known ground truth.

`generate_world` builds the cast's SKUs and the true response curves; `write_exports`
simulates the history and writes each retailer's native export, the market's catalog (the
retailers' and brands' folders, with the brands' first-party data) and the truth;
`ensure_world` does both and harmonizes, into a data directory that holds no data yet;
`realized_outcome` scores any flight allocation against the truth.
"""

from tools.world.catalog import BRANDS, RETAILERS, BrandInfo, RetailerInfo
from tools.world.dirt import DIRT_KINDS
from tools.world.exports import ExportSummary, RetailerExport, write_exports
from tools.world.market import WorldSpec, WorldStatus, ensure_world
from tools.world.truth import (
    AllocationLine,
    Outcome,
    OutcomeLine,
    World,
    generate_world,
    load_world,
    parse_allocation,
    realized_outcome,
)

__all__ = [
    "BRANDS",
    "DIRT_KINDS",
    "RETAILERS",
    "AllocationLine",
    "BrandInfo",
    "ExportSummary",
    "Outcome",
    "OutcomeLine",
    "RetailerExport",
    "RetailerInfo",
    "World",
    "WorldSpec",
    "WorldStatus",
    "ensure_world",
    "generate_world",
    "load_world",
    "parse_allocation",
    "realized_outcome",
    "write_exports",
]
