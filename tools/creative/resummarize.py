"""`rmn bench language --resummarize`: the figures of a saved run on all variants and on the
subsets by `seen`, without rerunning the model (`resummarize_saved`). Apart from the bench
(`tools.creative.bench`) because it reads a saved report rather than writing copy: exactly from
its per-variant records, else by drawing its products again from the seed and splitting its
per-pair tallies into ranges (`_targets_of_ranges` judges the targets on those).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from tools.creative.bench import bench_plans, subsets_report
from tools.creative.binding import DEFAULT_KINDS
from tools.creative.quality import SUBSETS, check_targets
from tools.creative.seen_lines import SeenLines, subset_of
from tools.errors import RMNError
from tools.world.catalog import BRANDS

if TYPE_CHECKING:
    from adapters.registry import AdapterRegistry


# Per-variant counts behind each figure of `Tally.rates` (the rates are count / variants).
_COUNTED = (
    "compliant_as_written",
    "template_fallback",
    "headline_differs_from_product",
    "body_names_benefit_or_claim",
    "voice_words_used",
)
_COUNTS = ("brand_banned_words", "avoided_terms")


def resummarize_saved(saved: dict[str, Any], registry: AdapterRegistry | None) -> dict[str, Any]:
    """The figures of a saved run (`rmn bench language --json`) on all variants and on the
    subsets by `seen`, without rerunning the model. From its `per_variant` records when it has
    them (exact); else the run's products are drawn again from its seed (the draw reads no
    model; its `samples` must match) and each brand-at-retailer tally is split by the `seen` of
    its products: exact where all of a pair's products fall in one subset, else a [low, high]
    range of what the pair can add. `registry` holds the composed adapters' cards (those
    installed now: the run's own are not recorded in it)."""
    if saved.get("per_variant") is not None:
        return {"method": "per-variant records", **subsets_report(saved["per_variant"])}
    kinds = tuple(saved.get("kinds") or DEFAULT_KINDS)
    if str(saved.get("model", "")).startswith("none"):
        registry = None
    seen = SeenLines(registry, kinds)
    vpr = int(saved["variants_per_request"])
    brands = [b for b in BRANDS if b in saved["per_brand"]]
    held_out_only = str(saved.get("products_from", "")).startswith("lines no composed")
    plans = bench_plans(
        int(saved["seed"]), int(saved["plans_per_brand"]), brands, seen if held_out_only else None
    )
    drawn = [
        (p.name, p.retailer_id, p.placement) for plan in plans for p in plan for _ in range(vpr)
    ]
    samples = [(s["product"], s["retailer"], s["placement"]) for s in saved.get("samples", [])]
    if not samples or drawn[: len(samples)] != samples:
        raise RMNError("the saved run's samples are not the products its seed draws now")
    # per pair: the subset of each variant (vpr per product), checked against the pair's count
    pair_subsets: dict[str, list[str]] = {}
    for plan in plans:
        for p in plan:
            key = f"{p.brand_id}/{p.retailer_id}"
            pair_subsets.setdefault(key, []).extend([subset_of(seen.of_product(p).seen)] * vpr)
    for key, tally in saved["per_brand_retailer"].items():
        if len(pair_subsets.get(key, [])) != tally["variants"]:
            raise RMNError(
                f"{key}: the saved run has {tally['variants']} variants, not one per draw"
            )
    out: dict[str, Any] = {
        "method": "reconstructed: products drawn again from the seed, pair tallies split",
        "adapter_cards": seen.cards(),
        "all": {k: saved[k] for k in ("variants", *_COUNTED, *_COUNTS, "paths", "plans")},
    }
    out["all"]["plans_with_repeated_sentences"] = saved["plans_with_repeated_sentences"]
    repeated_plans = {r["plan"] for r in saved.get("repeated", [])}
    for subset in SUBSETS:
        n = sum(s.count(subset) for s in pair_subsets.values())
        lows: Counter[str] = Counter()
        highs: Counter[str] = Counter()
        for key, tally in saved["per_brand_retailer"].items():
            mine, total = pair_subsets[key].count(subset), tally["variants"]
            counts = {k: round(tally[k] * total) for k in _COUNTED}
            counts |= {k: tally[k] for k in _COUNTS}
            counts |= {f"paths.{k}": v for k, v in tally["paths"].items()}
            for k, c in counts.items():
                lows[k] += max(0, c - (total - mine))
                highs[k] += min(c, mine)
        in_plan = [[subset_of(seen.of_product(p).seen) for p in plan] for plan in plans]
        lows["plans_with_repeated_sentences"] = sum(
            i in repeated_plans and set(s) == {subset} for i, s in enumerate(in_plan)
        )
        highs["plans_with_repeated_sentences"] = sum(
            i in repeated_plans and subset in s for i, s in enumerate(in_plan)
        )
        figures: dict[str, Any] = {"variants": n, "plans": sum(subset in s for s in in_plan)}
        for k in sorted(set(lows) | set(highs)):
            lo, hi = lows[k], highs[k]
            if k in _COUNTED:
                lo, hi = round(lo / max(1, n), 4), round(hi / max(1, n), 4)
            value: Any = lo if lo == hi else [lo, hi]
            if k.startswith("paths."):
                figures.setdefault("paths", {})[k[6:]] = value
            else:
                figures[k] = value
        out[subset] = figures
    out["targets"] = _targets_of_ranges(out["never_seen"])
    out["variants"] = {k: out[k]["variants"] for k in ("all", *SUBSETS)}
    out["lines"] = {
        k: sorted(
            {
                seen.of_product(p).line
                for plan in plans
                for p in plan
                if subset_of(seen.of_product(p).seen) == k
            }
        )
        for k in SUBSETS
    }
    return out


def _targets_of_ranges(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`check_targets` where a figure may be a [low, high] range: met when both ends meet it,
    missed when neither does, else None (the saved run cannot say)."""
    if figures.get("variants") == 0:
        return {}
    low = {k: v[0] if isinstance(v, list) else v for k, v in figures.items()}
    high = {k: v[1] if isinstance(v, list) else v for k, v in figures.items()}
    a, b = check_targets(low), check_targets(high)
    out = {}
    for key, t in a.items():
        met = t["met"] if t["met"] == b[key]["met"] else None
        out[key] = {"value": figures[key], "target": t["target"], "met": met}
    return out
