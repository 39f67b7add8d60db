"""creative: ad copy for each retailer the plan funds, for the SKU it spends most on there,
written under the retailer + brand + creative adapters (those installed) with the brand's voice
and the product's approved claims in the prompt and the rules in the decode grammar, and
checked against the retailer's rules; copy that still breaks them after the retries is replaced
by compliant template copy (`tools.creative`). Only compliant copy goes on into the plan.
Progress: one `custom` stream message per variant as it is settled.

Copy is kept per request (`copy_cache`: product, retailer, placement, prompt, seed and adapter
versions digested): an edit that leaves a retailer's main product and placement as they were
reuses its copy instead of writing it again.

When governance sends copy back, only the retailers whose copy it flagged are written again,
with one more variant per flagged one, and copy identical to what was flagged is dropped.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import chat_model
from graph.state import State
from graph.steps import Update, context_of, progress, step
from tools.creative import DEFAULT_KINDS, CopyRequest, CopyResult, write_copy_many
from tools.creative.targets import copy_key, top_skus
from tools.creative.write import request_digest
from tools.pipeline import product_categories, product_names
from tools.plan import Plan

# Variants asked of one retailer at most, however often its copy was sent back.
MAX_VARIANTS = 6
# Copy kept for reuse, newest last: a plan's retailers several edits deep.
CACHE_ENTRIES = 16


@step("creative")
def creative(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    plan = Plan.model_validate(state.plan)
    tenant = ctx.tenant
    brand = plan.brief.brand_id
    sent_back = state.rejected_copy or []
    rejected = {(c["retailer_id"], c["digest"]) for c in sent_back}
    # Only the retailers governance flagged on its last pass are written again.
    last_pass = int(state.governance_loops or 0)
    redo = {c["retailer_id"] for c in sent_back if c.get("loop") == last_pass}
    skus = top_skus(plan)
    # On a rewrite, copy governance did not flag stays as it is.
    kept = [v for v in plan.copy_variants if redo and v.retailer_id not in redo]
    todo = {r: top for r, top in skus.items() if not redo or r in redo}
    names = product_names(ctx.data_path(), tenant, brand)
    categories = product_categories(ctx.data_path(), tenant, brand)
    extra = {r: sum(1 for k in rejected if k[0] == r) for r in todo}
    requests = [
        CopyRequest(
            retailer_id=retailer,
            brand_id=brand,
            gtin=gtin,
            product_name=names.get(gtin),
            category=categories.get(gtin),
            placement=placement,
            variants=min(ctx.copy_variants + extra[retailer], MAX_VARIANTS),
            max_attempts=ctx.max_creative_attempts,
            tenant=tenant,
            seed=ctx.seed,
        )
        for retailer, (gtin, placement) in todo.items()
    ]
    kinds = DEFAULT_KINDS if ctx.use_adapters else ()
    llm = chat_model(ctx)
    cache: dict[str, Any] = dict(state.copy_cache or {})
    keys = [request_digest(r, kinds, llm) for r in requests]
    # Copy sent back by governance is written again, never taken from the cache.
    reuse = {i for i, k in enumerate(keys) if k in cache and requests[i].retailer_id not in redo}
    say = progress(runtime, "creative")
    if reuse:
        say(f"copy reused for {len(reuse)} of {len(requests)} retailer(s): unchanged products")
    fresh_requests = [r for i, r in enumerate(requests) if i not in reuse]
    written = write_copy_many(llm, fresh_requests, kinds, say) if fresh_requests else []
    results: list[CopyResult] = []
    fresh_iter = iter(written)
    for i, key in enumerate(keys):
        result = CopyResult.model_validate(cache[key]) if i in reuse else next(fresh_iter)
        cache.pop(key, None)  # re-inserted last: the newest entries are kept
        cache[key] = result.model_dump(mode="json")
        results.append(result)
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
    failures = [f for result in written for f in result.failures]
    missing = [r for r in skus if not any(v.retailer_id == r for v in variants)]
    failures += [f"{r}: no compliant copy" for r in missing]
    plan.copy_variants = variants
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "copy_failures": failures,
        "copy_missing": missing,
        "copy_cache": dict(list(cache.items())[-CACHE_ENTRIES:]),
        "creative_runs": int(state.creative_runs or 0) + 1,
        "adapters": {f"creative/{v.retailer_id}": list(v.adapters) for v in fresh},
        "status": "copy_written",
    }
