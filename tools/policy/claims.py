"""Claim-like phrases in ad copy, and whether the brand's claims document approves each one for
the product the copy is for.

The phrase inventory has two parts:
- every brand's approved claim texts and forbidden claims (all brands: copy written for one
  product can borrow another brand's claim as easily as another product's), matched with
  hyphens and spaces interchangeable ("aluminum free" is "aluminum-free");
- generic claim patterns (`GENERIC_CLAIMS`): the kinds of statement that need substantiation
  in ad review: free-from and nutrient claims, natural and organic, health and disease,
  endorsements, tests and certifications, superlatives, safety and durability, environmental
  claims, and performance numbers (a percentage other than "% off", which the retailer's price
  rules judge; hours of protection; "2x").

A phrase found in copy is approved when it lies within the text of a claim approved for the
product (`BrandGuide.claims_for_product`) or within the product's own catalog name (its label:
"Zero Sugar Iced Tea" names the product, it adds no claim). Overlapping phrases are reported as
one, as written in the copy ("Aluminum-free deodorant", not "Aluminum-free").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, Field

from tools.policy.loader import brand_owners, corpus_dir, load_brand_guide
from tools.policy.models import BrandGuide

# kind -> patterns (case-insensitive). Words that often appear in plain copy ("treat", "care",
# "fresh", "relief", "free shipping") are left out on purpose: the detector must not make
# ordinary copy non-compliant.
GENERIC_CLAIMS: dict[str, tuple[str, ...]] = {
    "free_from": (
        r"\b(?!(?:hands|hassle|worry|mess|tangle|fuss|stress|care|tax|toll|duty)-)[a-z]+-free\b",
        r"\b(?:sugar|gluten|fat|dairy|lactose|nut|peanut|soy|paraben|parabens|sulfate|sulfates"
        r"|phthalate|phthalates|aluminum|aluminium|bpa|fragrance|alcohol|caffeine|cruelty"
        r"|chemical|toxin|latex|dye|gmo|scent)\s+free\b",
        r"\bfree (?:of|from) [a-z]+",
    ),
    "nutrient": (
        r"\bzero (?:sugar|calories?|carbs?|fat)\b",
        r"\bno (?:added sugars?|sugar|artificial [a-z]+|preservatives|calories)\b",
        r"\b(?:low|reduced|lower|less) (?:fat|calories?|sugar|sodium|salt|carbs?|alcohol"
        r"|cholesterol)\b",
        r"\bhigh (?:protein|fiber|fibre)\b",
        r"\b(?:good|great|excellent) source of\b",
        r"\b(?:heart[- ])?healthy\b",
        r"\bnutritious\b",
    ),
    "natural": (
        r"\b(?:all[- ]|100% )?natural\b",
        r"\borganic\b",
        r"\bnon[- ]gmo\b",
        r"\bvegan\b",
        r"\bplant[- ]based\b",
        r"\bwhole[- ]grains?\b",
        r"\breal fruit\b",
    ),
    "health": (
        r"\bcur(?:e|es|ed|ing)\b",
        r"\bheal(?:s|ed|ing)?\b",
        r"\bprevents?\b",
        r"\bimmun(?:e|ity)\b",
        r"\bboost(?:s|ed|ing)?\b",
        r"\bdetox\w*",
        r"\b(?:weight loss|lose weight|burns? fat|fat[- ]burning|appetite suppressant)\b",
        r"\bnon[- ]drowsy\b",
        r"\bhypoallergenic\b",
        r"\bsensitive skin\b",
        r"\bspf ?\d+\b",
        r"\bbroad[- ]spectrum\b",
        r"\bhydrating\b",
        r"\benergizing\b",
        r"\banti(?:bacterial|microbial|septic|viral)\b",
        r"\bkills? (?:\d+(?:\.\d+)?% of )?(?:\w+ )?(?:germs|bacteria|viruses)\b",
        r"\bdisinfect\w*",
        r"\bsanitiz\w*",
        r"\bpurif(?:y|ies|ying)\b",
    ),
    "endorsement": (
        r"\b(?:clinically|dermatologist|doctor|pharmacist|lab|laboratory|scientifically)"
        r"[- ](?:proven|tested|recommended|approved|shown)\b",
        r"\b(?:fda|epa|usda)[- ](?:approved|certified|registered)\b",
        r"\bcertified\b",
        r"\bproven\b",
        r"\bleaping bunny\b",
        r"\baward[- ]winning\b",
    ),
    "superlative": (
        r"#\s?1\b",
        r"\bnumber one\b",
        r"\bno\. ?1\b",
        r"\bbest[- ]selling\b",
        r"\btop[- ]rated\b",
    ),
    "safety": (
        r"\b(?:dishwasher|microwave|oven|freezer|food)[- ]safe\b",
        r"\bnon[- ]toxic\b",
        r"\bbpa\b",
        r"\bwaterproof\b",
        r"\bwater[- ]resistant\b",
        r"\b(?:fireproof|shatterproof|unbreakable|indestructible|childproof)\b",
        r"\bnever breaks\b",
        r"\bmilitary[- ]grade\b",
        r"\bbaby[- ]safe\b",
        r"\bwarrant(?:y|ies|ied)\b",
        r"\bguarantee[ds]?\b",
    ),
    "environmental": (
        r"\beco[- ]friendly\b",
        r"\bsustainabl[ey]\b",
        r"\brecyclable\b",
        r"\bbiodegradable\b",
        r"\bcompostable\b",
        r"\bcarbon[- ]neutral\b",
        r"\benergy star\b",
        r"\benergy[- ](?:efficient|saving)\b",
        r"\bmade in (?:the )?(?:usa|u\.s\.a\.|america)\b",
        r"\bamerican[- ]made\b",
    ),
    "performance": (
        r"\b\d+(?:\.\d+)?\s?%(?!\s*off\b)(?:\s(?:more|less|fewer))?",
        r"\b\d+[- ]hours?\b",
        r"\ball[- ]day (?:protection|long)\b",
        r"\blong[- ]lasting\b",
        r"\bodor protection\b",
        r"\bcharges? (?:a |your )?(?:phone|device|laptop)\b",
        r"\bfast[- ]charg\w*",
        r"\b\d+x\b",
        r"\b\d+ times (?:more|faster|stronger|longer)\b",
    ),
}

_GENERIC = tuple(re.compile(p, re.IGNORECASE) for ps in GENERIC_CLAIMS.values() for p in ps)
# Sentence punctuation and quotes around a phrase; "%" and "#" belong to it.
_EDGE = re.compile(r"^[\s\"'.,;:!?()]+|[\s\"'.,;:!?()]+$")


class ClaimedProduct(BaseModel):
    """The product a piece of copy is for, as the brand's SKU list names it."""

    name: str = Field(min_length=1)
    category: str | None = Field(default=None, description="catalog or policy category")
    gtin: str | None = None


@dataclass(frozen=True)
class FoundClaim:
    text: str  # as written in the copy
    start: int
    end: int


def normalize(text: str) -> str:
    """Lower case, hyphens as spaces, single spaces, no punctuation at the ends."""
    return _EDGE.sub("", " ".join(text.lower().replace("-", " ").split()))


@lru_cache(maxsize=4096)
def _phrase(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in normalize(phrase).split()]
    left = r"(?<!\w)" if phrase[:1].isalnum() else ""
    right = r"(?!\w)" if phrase.rstrip(".")[-1:].isalnum() else ""
    return re.compile(left + r"[\s-]+".join(words) + right, re.IGNORECASE)


@lru_cache(maxsize=8)
def _inventory(corpus: str) -> tuple[str, ...]:
    """Every brand's approved claim texts and forbidden claims, longest first."""
    phrases: set[str] = set()
    for brand in brand_owners():
        guide = load_brand_guide(brand)
        phrases |= {c.text for c in guide.allowed_claims} | set(guide.forbidden_claims)
    return tuple(sorted((p for p in phrases if normalize(p)), key=lambda p: (-len(p), p)))


def claim_inventory() -> tuple[str, ...]:
    """The brands' claim phrases the detector looks for (besides `GENERIC_CLAIMS`)."""
    return _inventory(str(corpus_dir()))


def _spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for p in _GENERIC for m in p.finditer(text)]
    spans += [m.span() for p in claim_inventory() for m in _phrase(p).finditer(text)]
    return sorted({(s, e) for s, e in spans if e > s})


def find_claims(text: str) -> list[FoundClaim]:
    """Claim-like phrases in `text`, overlapping ones merged, in order."""
    merged: list[list[int]] = []
    for start, end in _spans(text):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [FoundClaim(text[s:e], s, e) for s, e in merged]


def approved_phrases(
    guide: BrandGuide, product: str | None, category: str | None, gtin: str | None = None
) -> list[str]:
    """What claim-like phrases may quote: the product's approved claims and its own name.
    Without a product name or GTIN, the claims approved for some product of the category."""
    if product is None and gtin is None:
        claims = guide.claims_for(category) if category else guide.allowed_claims
        return [c.text for c in claims]
    return [c.text for c in guide.claims_for_product(product, category, gtin)] + [product or ""]


def find_unapproved(
    text: str,
    guide: BrandGuide,
    product: str | None,
    category: str | None,
    gtin: str | None = None,
) -> list[FoundClaim]:
    """The claim-like phrases in `text` that no approved claim of this product (nor its name)
    contains; a merged phrase counts when any phrase inside it is unapproved."""
    allowed = [f" {normalize(p)} " for p in approved_phrases(guide, product, category, gtin)]

    def approved(start: int, end: int) -> bool:
        said = normalize(text[start:end])
        return not said or any(f" {said} " in a for a in allowed)

    raw = _spans(text)
    return [
        found
        for found in find_claims(text)
        if not all(approved(s, e) for s, e in raw if found.start <= s and e <= found.end)
    ]


def unapproved_claims(
    text: str,
    guide: BrandGuide,
    product: str | None,
    category: str | None,
    gtin: str | None = None,
) -> list[str]:
    """`find_unapproved`'s phrases as written, each once."""
    return list(
        dict.fromkeys(f.text for f in find_unapproved(text, guide, product, category, gtin))
    )
