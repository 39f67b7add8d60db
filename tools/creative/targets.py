"""What the copy is written for, and how copy sent back is remembered: the plan's main line at
each retailer it funds, and a digest of a draft that keeps no text (the text may hold the
personal data it was flagged for)."""

from __future__ import annotations

import hashlib

from tools.plan import Plan


def top_skus(plan: Plan) -> dict[str, tuple[str, str]]:
    """Retailer -> (the GTIN the plan spends most on there, the placement it spends most on
    for that GTIN), retailers by total spend: the copy is written for the plan's main line at
    each retailer."""
    spend: dict[str, float] = {}
    lines: dict[tuple[str, str, str], float] = {}
    per_sku: dict[tuple[str, str], float] = {}
    for row in plan.allocation:
        spend[row.retailer_id] = spend.get(row.retailer_id, 0.0) + row.spend
        key = (row.retailer_id, row.gtin)
        per_sku[key] = per_sku.get(key, 0.0) + row.spend
        line = (row.retailer_id, row.gtin, row.placement)
        lines[line] = lines.get(line, 0.0) + row.spend
    out: dict[str, tuple[str, str]] = {}
    for retailer in sorted(spend, key=lambda r: (-spend[r], r)):
        skus = sorted(g for r, g in per_sku if r == retailer)
        gtin = max(skus, key=lambda g: per_sku[(retailer, g)])
        placements = sorted(p for r, g, p in lines if (r, g) == (retailer, gtin))
        out[retailer] = (gtin, max(placements, key=lambda p: lines[(retailer, gtin, p)]))
    return out


def copy_key(retailer_id: str, headline: str, body: str) -> tuple[str, str]:
    """(retailer, digest of the copy): how flagged copy is remembered without keeping its text,
    which may hold the personal data it was flagged for."""
    digest = hashlib.sha256(f"{headline}\x1f{body}".encode()).hexdigest()[:24]
    return retailer_id, digest
