"""`rmn bench language`: the copy the production path writes for products of the lines the
held-out rule keeps out of training (`tools.creative.products.HELD_OUT_RULE`), scored per brand
and retailer (`tools.creative.quality`).

A bench "plan" is what the creative node writes for one plan: for one brand, one held-out
product at each retailer that carries one, on a placement the retailer allows for it, `variants`
variants each, all in one `write_copy_many` call. Products, placements and the sampling seed
are drawn from `seed`, so one seed is one run: the same seed writes the same copy, another
seed other copy (`reproducible` reruns the first plan to show both).

**What was held out is checked, not assumed.** Each variant says whether its product line was in
the training data of an adapter composed for it (`seen`: True, False, or None where an adapter's
data card does not say), from the adapters' data cards (`tools.creative.seen_lines`): the lines
recorded in `training.product_lines`, else the held-out rule recorded in
`training.held_out_rule` (all other lines count as seen), else no copy in the data
(`system_task` not "creative": policy Q&A), else unknown. Every figure is reported on all
variants and on the never-seen subset (`subsets`), and the targets are judged on the never-seen
subset: bundled task/creative was trained before the held-out rule, on a seeded random split of
product lines, so most lines the rule holds out today were in its training data. `held_out_only`
draws the products from the lines no composed adapter saw instead of the rule's (brands with
none are left out, and said).
A saved run is re-summarized by `tools.creative.resummarize`.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools.creative.binding import DEFAULT_KINDS
from tools.creative.products import HELD_OUT_RULE, held_out_lines, product_lines
from tools.creative.quality import (
    SUBSETS,
    Tally,
    VariantScore,
    check_targets,
    in_subset,
    repeated_sentences,
    score_variant,
    sentence_key,
    subset_figures,
)
from tools.creative.review import sentences
from tools.creative.seen_lines import LineStatus, SeenLines, subset_of
from tools.creative.write import CopyRequest, CopyResult, write_copy_many
from tools.plan import CopyVariant
from tools.policy import policy_category
from tools.policy.compliance import brand_guide, retailer_policy
from tools.world.catalog import BRANDS, CATEGORIES, RETAILERS

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel
    from adapters.registry import AdapterRegistry, Kind


@dataclass(frozen=True)
class BenchProduct:
    brand_id: str
    retailer_id: str
    name: str
    catalog_category: str
    placement: str


def bench_plans(
    seed: int,
    plans: int,
    brands: list[str] | None = None,
    never_seen: SeenLines | None = None,
) -> list[list[BenchProduct]]:
    """`plans` plans per brand: each one held-out product per retailer that carries one; with
    `never_seen`, a product of a line no adapter composed for it saw in training instead of a
    line of the held-out rule (a brand or retailer with none gets no product)."""
    out: list[list[BenchProduct]] = []
    for brand_id in brands or list(BRANDS):
        short = BRANDS[brand_id].name.split()[0]
        lines = sorted(held_out_lines(brand_id) if never_seen is None else product_lines(brand_id))
        for p in range(plans):
            rng = random.Random(f"{seed}:language:{brand_id}:{p}")
            plan = []
            for retailer_id, retailer in RETAILERS.items():
                carried = [(c, n) for c, n in lines if c in retailer.categories]
                if never_seen is not None:
                    carried = [
                        x for x in carried if never_seen.never_seen(retailer_id, brand_id, x)
                    ]
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


def bench_requests(plan: list[BenchProduct], variants: int, seed: int) -> list[CopyRequest]:
    """The `write_copy_many` requests of one bench plan: `variants` variants of each product,
    sampled from `seed` (the bench passes its seed plus the plan's index)."""
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
    "unknown_word": "words",
    "cut_phrase": "words",
    "dangling_headline": "words",
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
    """The bench's counts: overall, per brand, per retailer and per pair, a few samples, and
    one record per variant (its scores and whether its line was seen: `subset_figures`)."""

    seen: SeenLines
    total: Tally = field(default_factory=Tally)
    by_brand: dict[str, Tally] = field(default_factory=dict)
    by_retailer: dict[str, Tally] = field(default_factory=dict)
    by_pair: dict[str, Tally] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    breaks: Breaks = field(default_factory=Breaks)
    subset_breaks: dict[str, Breaks] = field(default_factory=lambda: {k: Breaks() for k in SUBSETS})
    records: list[dict[str, Any]] = field(default_factory=list)
    repeated: list[dict[str, Any]] = field(default_factory=list)

    def add_plan(self, index: int, plan: list[BenchProduct], results: list[CopyResult]) -> None:
        """Score `plan`'s variants (`score_plan`) and note the sentences its variants repeat."""
        dupes = repeated_sentences(self.score_plan(index, plan, results))
        if dupes:
            self.repeated.append({"plan": index, "brand": plan[0].brand_id, "sentences": dupes})

    def figures(self, plans: int) -> dict[str, Any]:
        """The bench's figures over the `plans` plans scored: the rates, the subsets by `seen`
        (targets judged on the never-seen one), per brand, retailer and pair, repeats, rule
        breaks, samples and the per-variant records."""
        figures = self.total.rates()
        figures["plans"] = plans
        figures["plans_with_repeated_sentences"] = len(self.repeated)
        subsets = subsets_report(self.records)
        for key in SUBSETS:
            subsets[key]["rule_breaks"] = self.subset_breaks[key].report()
        return {
            **figures,
            # The targets are judged on the variants no composed adapter saw the line of.
            "targets": subsets["targets"],
            "subsets": subsets,
            "per_brand": {k: t.rates() for k, t in sorted(self.by_brand.items())},
            "per_retailer": {k: t.rates() for k, t in sorted(self.by_retailer.items())},
            "per_brand_retailer": {k: t.rates() for k, t in sorted(self.by_pair.items())},
            "repeated": self.repeated,
            "rule_breaks": self.breaks.report(),
            "samples": self.samples,
            "per_variant": self.records,
        }

    def score_plan(
        self, index: int, plan: list[BenchProduct], results: list[CopyResult]
    ) -> list[CopyVariant]:
        """Score every variant written for `plan`'s products; the plan's variants."""
        guide = brand_guide(plan[0].brand_id)
        written, records = [], []
        for product, result in zip(plan, results, strict=True):
            status = self.seen.of_product(product)
            self.breaks.add(result)
            self.subset_breaks[subset_of(status.seen)].add(result)
            claims = [
                c.text
                for c in guide.claims_for_product(product.name, product.catalog_category)
                if not retailer_policy(product.retailer_id).prohibited.violations(
                    c.text, policy_category(product.catalog_category)
                )
            ]
            for v in result.variants:
                s = score_variant(v, product.name, guide, claims)
                self.add(product, v, s)
                records.append(_record(index, product, v, s, status))
                written.append(v)
        dupes = set(repeated_sentences(written))
        for r, v in zip(records, written, strict=True):
            keys = {sentence_key(v.headline)} | {sentence_key(x) for x in sentences(v.body)}
            r["repeats_in_plan"] = bool(keys & dupes)
        self.records.extend(records)
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


def _record(
    plan: int, p: BenchProduct, v: CopyVariant, s: VariantScore, status: LineStatus
) -> dict[str, Any]:
    return {
        "plan": plan,
        "brand": p.brand_id,
        "retailer": p.retailer_id,
        "product": p.name,
        "placement": p.placement,
        **status.report(),
        "adapters": list(v.adapters),
        "path": s.path,
        "as_written": s.as_written,
        "fallback": s.fallback,
        "headline_differs": s.headline_differs,
        "body_benefit": s.body_benefit,
        "banned": s.banned,
        "avoided": s.avoided,
        "voice_word": s.voice_word,
    }


def subsets_report(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure on all variants and on each subset by `seen`, the targets judged on the
    never-seen subset (and, for comparison, on all), and the lines of each subset."""
    figures = subset_figures(records)
    lines = {k: sorted({r["line"] for r in records if in_subset(r, k)}) for k in SUBSETS}
    return {
        "variants": {k: f["variants"] for k, f in figures.items()},
        "targets": check_targets(figures["never_seen"]),
        "targets_all": check_targets(figures["all"]),
        "lines": lines,
        **figures,
    }


def run_language_bench(
    llm: RMNChatModel | None,
    *,
    seed: int = 0,
    plans: int = 3,
    variants: int = 2,
    brands: list[str] | None = None,
    kinds: tuple[Kind, ...] = DEFAULT_KINDS,
    reproducible: bool = True,
    held_out_only: bool = False,
    registry: AdapterRegistry | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write and score the copy of every bench plan; see the module docstring. `registry`
    (default: the model's) is where the composed adapters' data cards are read."""
    started = time.perf_counter()
    if registry is None and llm is not None:
        registry = llm.runtime.registry
    seen = SeenLines(registry, kinds)
    tallies = _Tallies(seen)
    all_plans = bench_plans(seed, plans, brands, seen if held_out_only else None)
    asked = brands or list(BRANDS)
    planned = {plan[0].brand_id for plan in all_plans}
    first: list[CopyResult] = []
    for i, plan in enumerate(all_plans):
        if log:
            names = ", ".join(
                f"{p.retailer_id}: {p.name}{'' if seen.of_product(p).seen is False else ' (seen)'}"
                for p in plan
            )
            log(f"plan {i + 1}/{len(all_plans)} ({plan[0].brand_id}): {names}")
        results = write_copy_many(llm, bench_requests(plan, variants, seed + i), kinds)
        first = results if i == 0 else first
        tallies.add_plan(i, plan, results)
    out: dict[str, Any] = {
        "held_out_rule": HELD_OUT_RULE,
        "products_from": (
            "lines no composed adapter was trained on (data cards)"
            if held_out_only
            else "the held-out rule's lines"
        ),
        "brands_left_out": [b for b in asked if b not in planned],
        "adapter_cards": seen.cards(),
        "seed": seed,
        "plans_per_brand": plans,
        "variants_per_request": variants,
        "kinds": list(kinds),
        "model": "none (template copy only)" if llm is None else llm.runtime.model_name,
        "decode": None if llm is None else llm.runtime.decode_label(),
        **tallies.figures(len(all_plans)),
    }
    if reproducible and all_plans and llm is not None:
        again = write_copy_many(llm, bench_requests(all_plans[0], variants, seed), kinds)
        other = write_copy_many(llm, bench_requests(all_plans[0], variants, seed + 1), kinds)
        out["reproducible"] = {
            "same_seed_same_copy": _texts(again) == _texts(first),
            "other_seed_other_copy": _texts(other) != _texts(first),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["seconds_per_variant"] = round(out["seconds"] / max(1, tallies.total.variants), 2)
    return out


def score_copy(
    plans: list[list[BenchProduct]], results: list[list[CopyResult]], seen: SeenLines
) -> dict[str, Any]:
    """The bench's figures (`_Tallies.figures`) for copy written elsewhere for `plans` (one list
    of results per plan, in order), scored exactly as `run_language_bench` scores its own:
    `rmn bench language --main-ref` scores main's copy with it (`tools.creative.main_copy`)."""
    tallies = _Tallies(seen)
    for i, (plan, written) in enumerate(zip(plans, results, strict=True)):
        tallies.add_plan(i, plan, written)
    return tallies.figures(len(plans))


def _texts(results: list[CopyResult]) -> list[tuple[str, str]]:
    return [(v.headline, v.body) for r in results for v in r.variants]
