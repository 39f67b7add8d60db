"""Checks ad copy against a retailer's typed policy and, optionally, a brand guide.

Copy is the JSON object the creative task returns:
`{"headline": str, "body": str, "disclaimers": [str, ...]}`. Disclaimers travel in their own
field because the legal lines (an FDA statement is 150 characters) cannot fit the body limits
of small placements; retailers render them below the ad. Prohibited-term checks read only the
headline and body, since some required disclaimers quote words ("cure") that copy may not use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from tools.policy import (
    BrandGuide,
    Capitalization,
    RetailerPolicy,
    corpus_dir,
    find_phrases,
    load_brand_guide,
    load_retailer_policy,
)
from tools.policy.claims import unapproved_claims

# The copy text patterns the checker reads and the creative fixer (`tools.creative.fix`) edits:
# emoji (with the variation selector and joiner that glue them), words, and a percent-off claim
# (its number in group 1).
EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U0000fe0f\U0000200d]"
)
PERCENT_OFF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*off", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'&-]*")
# Short function words stay lower case inside a title-case headline.
TITLE_SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "of", "on", "or", "the"}
    | {"to", "with"}
)


@lru_cache(maxsize=64)
def _policy(retailer_id: str, corpus: str) -> RetailerPolicy:
    return load_retailer_policy(retailer_id)


@lru_cache(maxsize=64)
def _guide(brand_id: str, corpus: str) -> BrandGuide:
    return load_brand_guide(brand_id)


def retailer_policy(retailer_id: str) -> RetailerPolicy:
    """`load_retailer_policy`, read once per corpus: scoring reads it for every output."""
    return _policy(retailer_id, str(corpus_dir()))


def brand_guide(brand_id: str) -> BrandGuide:
    return _guide(brand_id, str(corpus_dir()))


# What the creative task answers with. No docstring or field descriptions: the JSON schema goes
# into every prompt, and the field names say enough.
class AdCopy(BaseModel):
    headline: str
    body: str
    disclaimers: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class CopyCheck:
    """The verdict on one model output: whether it parsed, and every rule it breaks."""

    json_valid: bool
    violations: list[str] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return self.json_valid and not self.violations


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The output as a JSON object, or None. The whole output must be the object: prose around
    it is what breaks downstream parsers, so it does not count as valid."""
    try:
        value = json.loads(text.strip())
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def parse_copy(text: str) -> dict[str, Any] | None:
    """A creative output with a string headline and body (and a list of disclaimer strings)."""
    obj = parse_json_object(text)
    if obj is None:
        return None
    if not isinstance(obj.get("headline"), str) or not isinstance(obj.get("body"), str):
        return None
    disclaimers = obj.get("disclaimers", [])
    if not isinstance(disclaimers, list) or not all(isinstance(d, str) for d in disclaimers):
        return None
    return obj


def is_acronym(word: str) -> bool:
    # "D3" or "4K" is a name, not shouting: it takes two capital letters to shout.
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def capitalization_ok(headline: str, rule: Capitalization) -> bool:
    words = WORD.findall(headline)
    if not words or rule == Capitalization.ANY:
        return True
    if not words[0][0].isupper():
        return False
    later = [w for w in words[1:] if len(w) >= 4]
    if rule == Capitalization.TITLE_CASE:
        return all(w[0].isupper() for w in words[1:] if w.lower() not in TITLE_SMALL_WORDS)
    # Sentence case: a proper noun may be capitalized, a headline of capitalized words may not.
    return len(later) < 2 or not all(w[0].isupper() for w in later)


def required_disclaimers(
    copy_text: str,
    policy: RetailerPolicy,
    placement: str,
    category: str | None,
    brand: BrandGuide | None = None,
) -> list[str]:
    """The disclaimer texts copy must carry: triggered retailer disclaimers, the category's
    required one, and those of any brand claim the copy makes."""
    texts = [d.text for d in policy.disclaimers.required_for(copy_text, category, placement)]
    restriction = policy.bidding.restriction(category) if category else None
    if restriction and restriction.required_disclaimer:
        rule = policy.disclaimers.get(restriction.required_disclaimer)
        if rule is not None:
            texts.append(rule.text)
    if brand is not None:
        for claim in brand.allowed_claims:
            if claim.required_disclaimer and claim.text.lower() in copy_text.lower():
                texts.append(claim.required_disclaimer)
    return list(dict.fromkeys(texts))


def check_copy(
    copy: dict[str, Any],
    policy: RetailerPolicy,
    placement: str,
    category: str | None = None,
    brand: BrandGuide | None = None,
    product: str | None = None,
    gtin: str | None = None,
) -> list[str]:
    """Every rule `copy` breaks, as short codes such as `headline_too_long` or
    `prohibited:miracle`; empty when the copy may run.

    With a brand and the product (`product` name from the SKU list, or `gtin`), every
    claim-like phrase in the headline and body must be approved for that product in the
    brand's claims document, else `unapproved_claim:<phrase as written>`
    (`tools.policy.claims`). Without the product there is nothing to check claims against:
    the writer, fixer, fallback and governance always pass it."""
    headline, body = str(copy.get("headline", "")), str(copy.get("body", ""))
    disclaimers = [str(d) for d in copy.get("disclaimers", [])]
    text = f"{headline} {body}"
    creative = policy.creative
    found: list[str] = []

    limits = creative.limits(placement)
    if len(headline) > limits.max_headline_chars:
        found.append("headline_too_long")
    if len(body) > limits.max_body_chars:
        found.append("body_too_long")
    if not headline.strip() or not body.strip():
        found.append("empty_field")
    if category is not None and not policy.bidding.allows(category, placement):
        found.append("category_not_allowed")

    found += [f"prohibited:{p}" for p in policy.prohibited.violations(text, category)]
    price = creative.price_claims
    found += [f"price_phrase:{p}" for p in find_phrases(text, price.banned_phrases)]
    discounts = [float(m) for m in PERCENT_OFF.findall(text)]
    if discounts and not price.allowed:
        found.append("price_claim_not_allowed")
    if price.max_discount_pct is not None and any(d > price.max_discount_pct for d in discounts):
        found.append("discount_too_deep")

    no_emoji = not creative.emoji_allowed or (brand is not None and not brand.emoji_allowed)
    if no_emoji and EMOJI.search(text):
        found.append("emoji")
    if text.count("!") > creative.max_exclamation_marks:
        found.append("too_many_exclamation_marks")
    if not creative.all_caps_words_allowed:
        acronyms = {a.upper() for a in creative.allowed_acronyms}
        if any(is_acronym(w) and w not in acronyms for w in WORD.findall(text)):
            found.append("all_caps")
    if not capitalization_ok(headline, creative.capitalization):
        found.append("capitalization")

    carried = {_norm(d) for d in disclaimers}
    for needed in required_disclaimers(text, policy, placement, category, brand):
        if _norm(needed) not in carried:
            found.append(f"missing_disclaimer:{needed[:40]}")

    if brand is not None:
        found += [f"brand_banned:{w}" for w in brand.banned_in(text)]
        if product is not None or gtin is not None:
            claims = unapproved_claims(text, brand, product, category, gtin)
            found += [f"unapproved_claim:{c}" for c in claims]
    return found


def check_output(
    text: str,
    policy: RetailerPolicy,
    placement: str,
    category: str | None = None,
    brand: BrandGuide | None = None,
    product: str | None = None,
) -> CopyCheck:
    """Parse a raw model output and check it (`check_copy`)."""
    copy = parse_copy(text)
    if copy is None:
        return CopyCheck(json_valid=False, violations=["invalid_json"])
    return CopyCheck(True, check_copy(copy, policy, placement, category, brand, product))
