"""The words of our own copy: every benefit, hook, closer and call to action the templates
write and every product line and name variant of the catalog. Copy may use them whatever the
English word lists say ("weeknights", "vibes", "multivitamin"), and a banned phrase is stopped
in the grammar by a word they do not use (`tools.creative.grammar`). Also the words no
headline may end on (`DANGLING_WORDS`), which the grammar and the review share.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tools.catalog.product_lines import PRODUCT_CATEGORIES as CATEGORIES
from tools.creative import products, templates

_LETTERS = re.compile(r"[A-Za-z]+")
# Words a headline may not end on: it was cut short ("No artificial colors or"). Not "on", "to"
# or "for": "Care you can count on" ends on one.
DANGLING_WORDS = ("a", "an", "and", "but", "its", "nor", "of", "or", "our", "than", "the",
                  "their", "your")  # fmt: skip


@lru_cache(maxsize=1)
def copy_phrases() -> tuple[str, ...]:
    """Every benefit, hook, closer and call to action the templates write, lower case."""
    texts = [*templates.DEFAULT_BENEFITS, *templates.CALLS_TO_ACTION]
    texts += [b for bank in templates.BENEFITS.values() for b in bank]
    texts += [b for bank in products.BENEFITS.values() for b in bank]
    for voice in templates.BRAND_VOICES.values():
        texts += [*voice.hooks, *voice.closers]
    return tuple(dict.fromkeys(t.lower().rstrip(".!?") for t in texts))


@lru_cache(maxsize=1)
def catalog_words() -> frozenset[str]:
    """The words of every product line and name variant ("multivitamin", which the English
    lists lack, on copy for a probiotic)."""
    lines = CATEGORIES.values()
    names = [n for line in lines for n in (*line.nouns, *line.variants)]
    return frozenset(w.lower() for n in names for w in _LETTERS.findall(n))


@lru_cache(maxsize=1)
def copy_words() -> frozenset[str]:
    """The words of `copy_phrases` and `catalog_words`, and their singulars ("vibe" as
    "vibes"): ours, so English for copy ("weeknights", "vibes")."""
    words = {w for p in copy_phrases() for w in _LETTERS.findall(p)} | catalog_words()
    return frozenset(words | {w[:-1] for w in words if w.endswith("s")})
