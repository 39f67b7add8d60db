"""`rmn bench language`: the copy the production path writes for products no adapter was
trained on (`tools.creative.products.HELD_OUT_RULE`), scored per brand and retailer
(`tools.creative.quality`).

A bench "plan" is what the creative node writes for one plan: for one brand, one held-out
product at each retailer that carries one, on a placement the retailer allows for it, `variants`
variants each, all in one `write_copy_many` call. Products, placements and the sampling seed
are drawn from `seed`, so one seed is one run: the same seed writes the same copy, another
seed other copy (`reproducible` reruns the first plan to show both).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools.creative.products import HELD_OUT_RULE, held_out_lines
from tools.creative.quality import (
    Tally,
    VariantScore,
    check_targets,
    repeated_sentences,
    score_variant,
)
from tools.creative.write import DEFAULT_KINDS, CopyRequest, CopyResult, write_copy_many
from tools.plan import CopyVariant
from tools.policy import policy_category
from tools.policy.compliance import brand_guide, retailer_policy
from tools.world.catalog import BRANDS, CATEGORIES, RETAILERS

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel
    from adapters.registry import Kind


@dataclass(frozen=True)
class BenchProduct:
    brand_id: str
    retailer_id: str
    name: str
    catalog_category: str
    placement: str


def bench_plans(seed: int, plans: int, brands: list[str] | None = None) -> list[list[BenchProduct]]:
    """`plans` plans per brand: each one held-out product per retailer that carries one."""
    out: list[list[BenchProduct]] = []
    for brand_id in brands or list(BRANDS):
        short = BRANDS[brand_id].name.split()[0]
        lines = sorted(held_out_lines(brand_id))
        for p in range(plans):
            rng = random.Random(f"{seed}:language:{brand_id}:{p}")
            plan = []
            for retailer_id, retailer in RETAILERS.items():
                carried = [(c, n) for c, n in lines if c in retailer.categories]
                if not carried:
                    continue
                category, noun = rng.choice(carried)
                variant = rng.choice(CATEGORIES[category].variants)
                policy = retailer_policy(retailer_id)
                pc = policy_category(category)
                allowed = [x.value for x in policy.placements if policy.bidding.allows(pc, x)]
                if not allowed:
                    continue
                plan.append(
                    BenchProduct(
                        brand_id,
                        retailer_id,
                        f"{short} {variant} {noun}",
                        category,
                        rng.choice(allowed),
                    )
                )
            if plan:
                out.append(plan)
    return out


def _requests(plan: list[BenchProduct], variants: int, seed: int) -> list[CopyRequest]:
    extra: dict[str, Any] = {"seed": seed} if "seed" in CopyRequest.model_fields else {}
    return [
        CopyRequest(
            retailer_id=p.retailer_id,
            brand_id=p.brand_id,
            product_name=p.name,
            category=p.catalog_category,
            placement=p.placement,
            variants=variants,
            **extra,
        )
        for p in plan
    ]


# What each `review_copy` code (the part before ":") is about, as the issue names the kinds:
# why copy was not compliant as the model wrote it.
BREAK_GROUPS: dict[str, str] = {
    "headline_too_long": "length",
    "body_too_long": "length",
    "empty_field": "length",
    "brand_banned": "banned_words",
    "prohibited": "banned_words",
    "price_phrase": "banned_words",
    "price_claim_not_allowed": "banned_words",
    "discount_too_deep": "banned_words",
    "unapproved_claim": "claims",
    "unsupported_number": "claims",
    "capitalization": "case",
    "all_caps": "case",
    "sentence_fragment": "case",
    "emoji": "punctuation",
    "too_many_exclamation_marks": "punctuation",
    "unfinished_sentence": "punctuation",
    "markup": "punctuation",
    "repeated_sentence": "repeats",
    "repetitive": "repeats",
    "repeats_other_variant": "repeats",
    "invalid_json": "json",
    "missing_disclaimer": "disclaimer",
    "category_not_allowed": "placement",
}


@dataclass
class Breaks:
    """What the model's generations broke as written (`CopyResult.rule_breaks`): per
    generation, each kind counted once; `first` the first generation of each variant only;
    `fallback` every generation of the variants that went to template copy; `fixed` the
    accepted generation of the variants a rule fixed."""

    generations: int = 0
    clean: int = 0
    first: Counter[str] = field(default_factory=Counter)
    first_generations: int = 0
    first_clean: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    fallback: Counter[str] = field(default_factory=Counter)
    fixed: Counter[str] = field(default_factory=Counter)

    def add(self, result: CopyResult) -> None:
        paths = {i: v.path for i, v in enumerate(result.variants)}
        for i, generations in enumerate(result.rule_breaks):
            for g, codes in enumerate(generations):
                kinds = {c.split(":", 1)[0] for c in codes}
                self.generations += 1
                self.clean += not kinds
                self.by_kind.update(kinds)
                if g == 0:
                    self.first_generations += 1
                    self.first_clean += not kinds
                    self.first.update(kinds)
                if paths.get(i) == "fallback":
                    self.fallback.update(kinds)
            if paths.get(i) == "fixed" and generations:
                self.fixed.update({c.split(":", 1)[0] for c in generations[-1]})

    def report(self) -> dict[str, Any]:
        def grouped(c: Counter[str]) -> dict[str, int]:
            out: Counter[str] = Counter()
            for kind, n in c.items():
                out[BREAK_GROUPS.get(kind, "other")] += n
            return dict(out.most_common())

        return {
            "generations": self.generations,
            "clean_generations": self.clean,
            "by_kind": dict(self.by_kind.most_common()),
            "by_group": grouped(self.by_kind),
            "first_generation": {
                "generations": self.first_generations,
                "clean": self.first_clean,
                "by_kind": dict(self.first.most_common()),
            },
            "fixed_by_rule": dict(self.fixed.most_common()),
            "fallback_reasons": dict(self.fallback.most_common()),
        }


@dataclass
class _Tallies:
    """The bench's counts: overall, per brand, per retailer and per pair, and a few samples."""

    total: Tally = field(default_factory=Tally)
    by_brand: dict[str, Tally] = field(default_factory=dict)
    by_retailer: dict[str, Tally] = field(default_factory=dict)
    by_pair: dict[str, Tally] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    breaks: Breaks = field(default_factory=Breaks)

    def score_plan(self, plan: list[BenchProduct], results: list[CopyResult]) -> list[CopyVariant]:
        """Score every variant written for `plan`'s products; the plan's variants."""
        guide = brand_guide(plan[0].brand_id)
        written = []
        for product, result in zip(plan, results, strict=True):
            self.breaks.add(result)
            claims = [
                c.text
                for c in guide.claims_for_product(product.name, product.catalog_category)
                if not retailer_policy(product.retailer_id).prohibited.violations(
                    c.text, policy_category(product.catalog_category)
                )
            ]
            for v in result.variants:
                self.add(product, v, score_variant(v, product.name, guide, claims))
                written.append(v)
        return written

    def add(self, product: BenchProduct, v: CopyVariant, s: VariantScore) -> None:
        for table, key in (
            (self.by_brand, product.brand_id),
            (self.by_retailer, product.retailer_id),
            (self.by_pair, f"{product.brand_id}/{product.retailer_id}"),
        ):
            table.setdefault(key, Tally()).add(s)
        self.total.add(s)
        if len(self.samples) < 12:
            self.samples.append(
                {
                    "product": product.name,
                    "retailer": product.retailer_id,
                    "placement": product.placement,
                    "headline": v.headline,
                    "body": v.body,
                    "path": v.path,
                }
            )


def run_language_bench(
    llm: RMNChatModel | None,
    *,
    seed: int = 0,
    plans: int = 3,
    variants: int = 2,
    brands: list[str] | None = None,
    kinds: tuple[Kind, ...] = DEFAULT_KINDS,
    reproducible: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write and score the copy of every bench plan; see the module docstring."""
    started = time.perf_counter()
    tallies = _Tallies()
    repeated: list[dict[str, Any]] = []
    all_plans = bench_plans(seed, plans, brands)
    first: list[CopyResult] = []
    for i, plan in enumerate(all_plans):
        if log:
            names = ", ".join(f"{p.retailer_id}: {p.name}" for p in plan)
            log(f"plan {i + 1}/{len(all_plans)} ({plan[0].brand_id}): {names}")
        results = write_copy_many(llm, _requests(plan, variants, seed + i), kinds)
        first = results if i == 0 else first
        dupes = repeated_sentences(tallies.score_plan(plan, results))
        if dupes:
            repeated.append({"plan": i, "brand": plan[0].brand_id, "sentences": dupes})
    figures = tallies.total.rates()
    figures["plans"] = len(all_plans)
    figures["plans_with_repeated_sentences"] = len(repeated)
    out: dict[str, Any] = {
        "held_out_rule": HELD_OUT_RULE,
        "seed": seed,
        "plans_per_brand": plans,
        "variants_per_request": variants,
        "kinds": list(kinds),
        "model": "none (template copy only)" if llm is None else llm.runtime.model_name,
        "decode": None if llm is None else llm.runtime.decode_label(),
        **figures,
        "targets": check_targets(figures),
        "per_brand": {k: t.rates() for k, t in sorted(tallies.by_brand.items())},
        "per_retailer": {k: t.rates() for k, t in sorted(tallies.by_retailer.items())},
        "per_brand_retailer": {k: t.rates() for k, t in sorted(tallies.by_pair.items())},
        "repeated": repeated,
        "rule_breaks": tallies.breaks.report(),
        "samples": tallies.samples,
    }
    if reproducible and all_plans and llm is not None:
        again = write_copy_many(llm, _requests(all_plans[0], variants, seed), kinds)
        other = write_copy_many(llm, _requests(all_plans[0], variants, seed + 1), kinds)
        out["reproducible"] = {
            "same_seed_same_copy": _texts(again) == _texts(first),
            "other_seed_other_copy": _texts(other) != _texts(first),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["seconds_per_variant"] = round(out["seconds"] / max(1, tallies.total.variants), 2)
    return out


def _texts(results: list[CopyResult]) -> list[tuple[str, str]]:
    return [(v.headline, v.body) for r in results for v in r.variants]
