"""Whether copy may be shown: the retailer's rules and the brand guide (`check_copy`), plus what
makes model copy unfit beyond them (`quality_issues`): debris, loops, unfinished sentences and
numbers nobody approved. `review_copy` is the one verdict the writer, the fixer and the fallback
all judge copy by.
"""

from __future__ import annotations

import re
from collections import Counter

from tools.policy import BrandGuide, RetailerPolicy
from tools.policy.compliance import WORD, AdCopy, check_copy

SENTENCE = re.compile(r"[^.!?]+[.!?]*")
# Markup and template debris a small model leaves in copy: tags, entities, braces, URLs.
MARKUP = re.compile(r"<[^>]*>?|&#?\w+;|&(?=\w)|[{}\[\]|\\]|https?://\S*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Words that may recur in short copy without it being a loop.
_COMMON = frozenset(
    {"and", "for", "the", "with", "you", "your", "our", "its", "this", "that", "are", "from"}
)
REPEAT_LIMIT = 3  # a content word this many times in a headline and body is a loop
UNIQUE_WORDS = 0.6  # below this share of distinct words, copy is a loop


def sentences(text: str) -> list[str]:
    """The non-empty sentences of `text`, stripped."""
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def quality_issues(copy: AdCopy, supported: str = "") -> list[str]:
    """What makes copy unfit to show beyond the retailer's rules: `markup` (tags, entities,
    braces, URLs), `unfinished_sentence` (a body that stops mid-sentence),
    `repeated_sentence`, `sentence_fragment` (a sentence that starts in lower case, the tail of
    a repetition), `repetitive` (a loop of the same words) and `unsupported_number:<n>` (a
    number that is not in `supported`: the product name and the approved claims; a model that
    writes "now 25 years" makes a claim nobody approved)."""
    found = []
    if MARKUP.search(copy.headline) or MARKUP.search(copy.body):
        found.append("markup")
    body = copy.body.strip()
    if body and not body.endswith((".", "!", "?")):
        found.append("unfinished_sentence")
    said = sentences(body)
    if len({s.lower() for s in said}) < len(said):
        found.append("repeated_sentence")
    if any(s[:1].islower() for s in said):
        found.append("sentence_fragment")
    text = f"{copy.headline} {copy.body}"
    words = [w.lower() for w in WORD.findall(text)]
    content = Counter(w for w in words if len(w) >= 3 and w not in _COMMON)
    looping = bool(content) and content.most_common(1)[0][1] >= REPEAT_LIMIT
    if looping or (len(words) >= 6 and len(set(words)) < UNIQUE_WORDS * len(words)):
        found.append("repetitive")
    allowed = set(_NUMBER.findall(supported))
    found += [f"unsupported_number:{n}" for n in dict.fromkeys(_NUMBER.findall(text))
              if n not in allowed]  # fmt: skip
    return found


def review_copy(
    copy: AdCopy,
    policy: RetailerPolicy,
    placement: str,
    category: str | None = None,
    brand: BrandGuide | None = None,
    product: str | None = None,
) -> list[str]:
    """`check_copy` (the retailer's rules, the brand guide and the claims approved for the
    product) plus `quality_issues`, with the product name, the brand's name and the product's
    approved claims as the supported text."""
    found = check_copy(copy.model_dump(), policy, placement, category, brand, product)
    return found + quality_issues(copy, _supported(brand, category, product))


def _supported(brand: BrandGuide | None, category: str | None, product: str | None) -> str:
    parts = [product or ""]
    if brand is not None:
        parts.append(brand.name)
        if product is not None:
            claims = brand.claims_for_product(product, category)
        else:
            claims = brand.claims_for(category) if category else brand.allowed_claims
        parts += [c.text for c in claims]
    return " ".join(parts)
