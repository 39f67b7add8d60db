"""A seeded simulator of a retail-media market with known ground truth.

`generate_world` builds the catalog and the true response curves; `write_exports` simulates
the history and writes each retailer's native export, the brands' first-party data and the
truth; `realized_outcome` scores any flight allocation against the truth.
"""

from tools.world.catalog import BRANDS, RETAILERS, BrandInfo, RetailerInfo
from tools.world.exports import DIRT_KINDS, ExportSummary, RetailerExport, write_exports
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
    "generate_world",
    "load_world",
    "parse_allocation",
    "realized_outcome",
    "write_exports",
]
