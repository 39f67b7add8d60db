"""Template copy: what takes a variant's place when the model's attempts run out, composed from
the product's benefits and the claims the brand approves for it (`tools.creative.compose`, the
same composer adapter training writes its reference answers with), and kept only where it
passes `review_copy` and the decode grammar.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from tools.creative.compose import enumerate_copy
from tools.creative.facts import CopyFacts
from tools.policy import BrandGuide, RetailerPolicy
from tools.policy.compliance import AdCopy

# Enough distinct candidates for every variant a request may ask for, twice over.
MAX_CANDIDATES = 12


def fallback_copy(
    policy: RetailerPolicy,
    placement: str,
    category: str,
    brand: BrandGuide,
    product: str,
    index: int = 0,
) -> AdCopy | None:
    """The `index`-th template copy (see `fallback_candidates`), or None when there are not
    that many."""
    found = fallback_candidates(policy, placement, category, brand, product)
    return found[index] if 0 <= index < len(found) else None


def fallback_stream(facts: CopyFacts) -> Iterator[AdCopy]:
    """Every template copy that passes, lazily, in `fallback_candidates` order."""
    return enumerate_copy(facts)


def fallback_candidates(
    policy: RetailerPolicy,
    placement: str,
    category: str,
    brand: BrandGuide,
    product: str,
) -> list[AdCopy]:
    """Distinct template copy that passes `review_copy` (disclaimers attached), round-robin
    over the product's angles so that consecutive candidates lead with different benefits or
    claims; at most `MAX_CANDIDATES`. Only claims the brand's claims document approves for
    this product appear: a category's claims once put "Dishwasher safe" on a scented candle."""
    facts = CopyFacts(policy, placement, product, category, brand)
    unique: dict[tuple[str, str], AdCopy] = {}
    for copy in itertools.islice(enumerate_copy(facts), MAX_CANDIDATES * 4):
        unique.setdefault((copy.headline.lower(), copy.body.lower()), copy)
        if len(unique) >= MAX_CANDIDATES:
            break
    return list(unique.values())
