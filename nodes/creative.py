"""creative: ad copy for each retailer the plan funds, for the SKU it spends most on there,
written under the retailer + brand + creative adapters (those installed) and checked against
the retailer's rules; copy that still breaks them after the retries is replaced by compliant
template copy (`tools.creative`). Only compliant copy goes on into the plan.

When governance sends copy back, only the retailers whose copy it flagged are written again,
with one more variant per flagged one, and copy identical to what was flagged is dropped.
"""

from __future__ import annotations

import hashlib
from typing import Any

from graph.llm import chat_model
from nodes import Update, context_of, state_get, step


def top_skus(plan: Any) -> dict[str, tuple[str, str]]:
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


@step("creative")
def creative(state: Any, runtime: Any) -> Update:
    from tools.creative import DEFAULT_KINDS, CopyRequest, write_copy_many
    from tools.pipeline import product_names
    from tools.plan import Plan

    ctx = context_of(runtime)
    plan = Plan.model_validate(state_get(state, "plan"))
    tenant = state_get(state, "tenant")
    brand = plan.brief.brand_id
    sent_back = state_get(state, "rejected_copy") or []
    rejected = {(c["retailer_id"], c["digest"]) for c in sent_back}
    # Only the retailers governance flagged on its last pass are written again.
    last_pass = int(state_get(state, "governance_loops") or 0)
    redo = {c["retailer_id"] for c in sent_back if c.get("loop") == last_pass}
    skus = top_skus(plan)
    # On a rewrite, copy governance did not flag stays as it is.
    kept = [v for v in plan.copy_variants if redo and v.retailer_id not in redo]
    todo = {r: top for r, top in skus.items() if not redo or r in redo}
    names = product_names(ctx.data_path(), tenant, brand)
    extra = {r: sum(1 for k in rejected if k[0] == r) for r in todo}
    requests = [
        CopyRequest(
            retailer_id=retailer,
            brand_id=brand,
            gtin=gtin,
            product_name=names.get(gtin),
            placement=placement,
            variants=min(ctx.copy_variants + extra[retailer], 6),
            max_attempts=ctx.max_creative_attempts,
            tenant=tenant,
        )
        for retailer, (gtin, placement) in todo.items()
    ]
    kinds = DEFAULT_KINDS if ctx.use_adapters else ()
    results = write_copy_many(chat_model(ctx), requests, kinds) if requests else []
    fresh = []
    for result in results:
        usable = [
            v
            for v in result.variants
            if v.compliant and copy_key(v.retailer_id, v.headline, v.body) not in rejected
        ]
        fresh.extend(usable[: ctx.copy_variants])
    order = {r: i for i, r in enumerate(skus)}
    variants = sorted([*kept, *fresh], key=lambda v: order.get(v.retailer_id, len(order)))
    failures = [f for result in results for f in result.failures]
    missing = [r for r in skus if not any(v.retailer_id == r for v in variants)]
    failures += [f"{r}: no compliant copy" for r in missing]
    plan.copy_variants = variants
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "copy_failures": failures,
        "copy_missing": missing,
        "creative_runs": int(state_get(state, "creative_runs") or 0) + 1,
        "adapters": {f"creative/{v.retailer_id}": list(v.adapters) for v in fresh},
        "status": "copy_written",
    }
