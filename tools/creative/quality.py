"""How good a plan's copy is beyond passing the rules: the figures `rmn bench language` reports
per brand and retailer.

Per variant:
- `as_written`: compliant as the model wrote it (path `llm`, or `repaired`: the model's own
  second JSON turn), with no rule fix and no template fallback;
- `fallback`: template copy took the variant's place;
- `headline_differs`: the headline is not just the product name (its words are not a subset of
  the product name's words, so "Acme Sea Salt Kettle Chips" and "Sea Salt Kettle Chips" are
  the product name);
- `body_benefit`: the body names a benefit of the product's line or one of its approved claims
  (`tools.creative.products.names_benefit`);
- brand voice: `banned` (a banned word or forbidden claim of the brand: never), `avoided` (a
  word the guide says to replace by its preferred term: never) and `voice_word` (uses a word of
  the brand's voice: its preferred terms and the phrase banks written to its tone).

Per plan (all variants of all retailers of one plan): `repeated_sentences`, the sentences
(headline or body sentence, case- and punctuation-insensitive) that appear in more than one
variant.

Every figure is reported on all variants and on subsets by whether the variant's product line
was in the training data of an adapter composed for it (`SUBSETS`, `subset_figures`; the bench
works out `seen` from the adapters' data cards): the targets are judged on `never_seen`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tools.creative.products import names_benefit
from tools.creative.review import sentences
from tools.creative.templates import BRAND_VOICES
from tools.plan import CopyVariant
from tools.policy import BrandGuide, find_phrases

_WORD = re.compile(r"[a-z0-9][a-z0-9'&-]*")
_GENERIC = frozenset(
    {"a", "an", "and", "the", "of", "for", "with", "in", "on", "to", "it", "its", "your"}
    | {"you", "at", "by", "from", "as", "or", "one", "this", "that", "is", "are", "be", "can"}
    | {"it's", "made", "every"}
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def headline_is_product_name(headline: str, product: str) -> bool:
    """Whether the headline says nothing but (part of) the product name."""
    said = set(words(headline))
    return bool(said) and said <= set(words(product))


def voice_words(guide: BrandGuide) -> set[str]:
    """The brand's voice vocabulary: its preferred terms and the content words of the phrase
    banks written to its tone (`tools.creative.templates.BRAND_VOICES`)."""
    phrases = list(guide.preferred_terms.values())
    voice = BRAND_VOICES.get(guide.brand_id)
    if voice is not None:
        phrases += [*voice.hooks, *voice.closers]
    return {w for p in phrases for w in words(p) if w not in _GENERIC and len(w) >= 4}


def sentence_key(text: str) -> str:
    return " ".join(words(text))


@dataclass
class VariantScore:
    retailer_id: str
    product: str
    path: str
    as_written: bool
    fallback: bool
    headline_differs: bool
    body_benefit: bool
    banned: list[str]
    avoided: list[str]
    voice_word: bool


def score_variant(
    variant: CopyVariant, product: str, guide: BrandGuide, approved_claims: list[str]
) -> VariantScore:
    text = f"{variant.headline} {variant.body}"
    lexicon = voice_words(guide)
    return VariantScore(
        retailer_id=variant.retailer_id,
        product=product,
        path=variant.path,
        as_written=variant.compliant and variant.path in ("llm", "repaired"),
        fallback=variant.path == "fallback",
        headline_differs=not headline_is_product_name(variant.headline, product),
        body_benefit=names_benefit(variant.body, product, approved_claims),
        banned=guide.banned_in(text),
        avoided=find_phrases(text, list(guide.preferred_terms)),
        voice_word=bool(set(words(text)) & lexicon),
    )


def repeated_sentences(variants: Iterable[CopyVariant]) -> list[str]:
    """Sentences (headlines and body sentences) that more than one variant of a plan uses."""
    seen: Counter[str] = Counter()
    for v in variants:
        keys = {sentence_key(v.headline)} | {sentence_key(s) for s in sentences(v.body)}
        seen.update(k for k in keys if k)
    return sorted(k for k, n in seen.items() if n > 1)


@dataclass
class Tally:
    """Sums over a group of variants (a brand, a retailer, a brand at a retailer, all)."""

    variants: int = 0
    as_written: int = 0
    fallback: int = 0
    headline_differs: int = 0
    body_benefit: int = 0
    banned: int = 0
    avoided: int = 0
    voice_word: int = 0
    paths: Counter[str] = field(default_factory=Counter)

    def add(self, s: VariantScore) -> None:
        self.variants += 1
        self.as_written += s.as_written
        self.fallback += s.fallback
        self.headline_differs += s.headline_differs
        self.body_benefit += s.body_benefit
        self.banned += bool(s.banned)
        self.avoided += bool(s.avoided)
        self.voice_word += s.voice_word
        self.paths[s.path] += 1

    def rates(self) -> dict[str, Any]:
        n = max(1, self.variants)
        return {
            "variants": self.variants,
            "compliant_as_written": round(self.as_written / n, 4),
            "template_fallback": round(self.fallback / n, 4),
            "headline_differs_from_product": round(self.headline_differs / n, 4),
            "body_names_benefit_or_claim": round(self.body_benefit / n, 4),
            "brand_banned_words": self.banned,
            "avoided_terms": self.avoided,
            "voice_words_used": round(self.voice_word / n, 4),
            "paths": dict(sorted(self.paths.items())),
        }


# The targets: (figure, comparison, value).
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("compliant_as_written", ">=", 0.95),
    ("template_fallback", "<=", 0.05),
    ("headline_differs_from_product", ">=", 0.80),
    ("body_names_benefit_or_claim", ">=", 0.80),
    ("brand_banned_words", "<=", 0),
    ("plans_with_repeated_sentences", "<=", 0),
)


def check_targets(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target against `figures`; none when the figures cover no variant (nothing to judge)."""
    if figures.get("variants") == 0:
        return {}
    out = {}
    for key, op, want in TARGETS:
        got = figures.get(key)
        if got is None:
            continue
        met = got >= want if op == ">=" else got <= want
        out[key] = {"value": got, "target": f"{op} {want:g}", "met": bool(met)}
    return out


# Subsets of the bench's variants by `seen` (whether an adapter composed for the variant was
# trained on its product line): True, False, or None where an adapter's data card does not say.
SUBSETS: dict[str, bool | None] = {"never_seen": False, "seen": True, "unknown": None}


def in_subset(record: dict[str, Any], subset: str) -> bool:
    return subset == "all" or record.get("seen") is SUBSETS[subset]


def score_of(record: dict[str, Any]) -> VariantScore:
    """The score a per-variant record of the bench (`run_language_bench`'s `per_variant`) holds."""
    return VariantScore(
        retailer_id=record["retailer"],
        product=record["product"],
        path=record["path"],
        as_written=record["as_written"],
        fallback=record["fallback"],
        headline_differs=record["headline_differs"],
        body_benefit=record["body_benefit"],
        banned=list(record["banned"]),
        avoided=list(record["avoided"]),
        voice_word=record["voice_word"],
    )


def subset_figures(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The bench's figures on all variants and on each subset of `SUBSETS` (variants, plans,
    the rates, plans in which a variant of the subset repeats a sentence of its plan, per brand
    and retailer), from per-variant records."""
    out: dict[str, dict[str, Any]] = {}
    for subset in ("all", *SUBSETS):
        total, brands, retailers = Tally(), {}, {}
        plans, repeated = set(), set()
        for r in (r for r in records if in_subset(r, subset)):
            s = score_of(r)
            total.add(s)
            brands.setdefault(r["brand"], Tally()).add(s)
            retailers.setdefault(r["retailer"], Tally()).add(s)
            plans.add(r["plan"])
            if r.get("repeats_in_plan"):
                repeated.add(r["plan"])
        figures = total.rates()
        figures["plans"] = len(plans)
        figures["plans_with_repeated_sentences"] = len(repeated)
        figures["per_brand"] = {k: t.rates() for k, t in sorted(brands.items())}
        figures["per_retailer"] = {k: t.rates() for k, t in sorted(retailers.items())}
        out[subset] = figures
    return out
