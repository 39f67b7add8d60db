"""Bulk-upload layouts the networks document, filled from an approved plan.

Amazon Ads publishes the Sponsored Products bulksheet (a spreadsheet of Campaign, Ad Group and
Product Ad rows, created with Operation = Create; dates as YYYYMMDD): each planned line becomes
one campaign with its daily budget and flight, one ad group, and one product ad for the
product's ASIN (its item id at the retailer). Networks without a documented upload layout get
the plain per-retailer sheet only.
"""

from __future__ import annotations

from typing import Any

from tools.export.sheets import RetailerSheet

AMAZON_SP_COLUMNS: tuple[str, ...] = (
    "Product",
    "Entity",
    "Operation",
    "Campaign ID",
    "Ad Group ID",
    "Portfolio ID",
    "Ad ID",
    "Keyword ID",
    "Product Targeting ID",
    "Campaign Name",
    "Ad Group Name",
    "Start Date",
    "End Date",
    "Targeting Type",
    "State",
    "Daily Budget",
    "SKU",
    "ASIN",
    "Ad Group Default Bid",
    "Bid",
    "Keyword Text",
    "Match Type",
    "Bidding Strategy",
    "Placement",
    "Percentage",
    "Product Targeting Expression",
)
# A starting default bid for new ad groups (USD): the portal's own suggestion replaces it.
DEFAULT_BID = 0.75


def amazon_sp_rows(sheet: RetailerSheet) -> list[dict[str, Any]]:
    """The Sponsored Products bulksheet rows for the retailer's lines."""
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(sheet.lines, start=1):
        campaign = f"rmn-{line.flight_start:%Y%m%d}-{i:03d}"
        group = f"{campaign}-ag"
        common = {"Product": "Sponsored Products", "Operation": "Create", "Campaign ID": campaign}
        rows.append(common | {
            "Entity": "Campaign",
            "Campaign Name": f"{line.campaign} | {line.product}"[:128],
            "Start Date": f"{line.flight_start:%Y%m%d}",
            "End Date": f"{line.flight_end:%Y%m%d}",
            "Targeting Type": "Auto",
            "State": "enabled",
            "Daily Budget": line.daily_budget,
            "Bidding Strategy": "Dynamic bids - down only",
        })  # fmt: skip
        rows.append(common | {
            "Entity": "Ad Group",
            "Ad Group ID": group,
            "Ad Group Name": line.product[:255],
            "State": "enabled",
            "Ad Group Default Bid": DEFAULT_BID,
        })  # fmt: skip
        rows.append(common | {
            "Entity": "Product Ad",
            "Ad Group ID": group,
            "State": "enabled",
            "ASIN": line.item_id,
        })  # fmt: skip
    return [{c: r.get(c, "") for c in AMAZON_SP_COLUMNS} for r in rows]


# network -> (sheet title, columns, row builder)
BULK_LAYOUTS = {"amazon": ("Sponsored Products Campaigns", AMAZON_SP_COLUMNS, amazon_sp_rows)}
