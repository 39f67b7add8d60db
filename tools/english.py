"""The English word lists every language check reads: web2 and GCIDE from `english-words`
(263k lower-case words, loaded once, ~0.2 s). `tools.plan.vocabulary` judges model-written
words by them and `tools.brief.rules.retailers` keeps English words out of a retailer name's
typos."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def english() -> frozenset[str]:
    """The lower-case English words (web2 + GCIDE)."""
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True, alpha=True))
