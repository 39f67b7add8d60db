"""Which words of a model-written sentence are not English: the check that keeps glued or
invented tokens ("theollsund", "ofresponsecurve", "anderionerion") out of what an approver
reads.

    unknown_words("The plan is not immune to bias.", known=("Beta",))   # -> []

The grammar (`adapters.structured.SentenceGrammar`) admits any run of letters as a word, and
SmolLM2-135M, seeded and greedy, writes such runs: on four reflection test plans (the plan of
`tests/integration/test_real_model.py`, with and without caps and memory) every answer held at
least one ("theollsund", "anderionerion"). A word passes when it is in the English word lists
bundled with `english-words` (web2 and GCIDE, 263k lower-case words, loaded once, ~0.2 s), when
a regular ending taken off leaves such a word ("retailers", "planned", "shifting"), or when it
is one of `known` (names and words of the facts and passages the model was shown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# Regular English endings, longest first; "ies" -> "y" is handled on its own.
_ENDINGS = ("ing", "ed", "es", "ly", "er", "est", "s", "d")
# Retail-media words the general lists lack.
DOMAIN = frozenset(
    [
        "ad",
        "ads",
        "roas",
        "iroas",
        "cpc",
        "cpm",
        "ctr",
        "cvr",
        "sku",
        "gtin",
        "upc",
        "geo",
        "holdout",
        "switchback",
        "offsite",
        "onsite",
        "ecommerce",
        "omnichannel",
        "app",
        "dp",
        "k-anonymity",
    ]
)


@lru_cache(maxsize=1)
def english() -> frozenset[str]:
    """The lower-case English words (web2 + GCIDE)."""
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True, alpha=True))


def is_word(word: str, known: frozenset[str] = frozenset()) -> bool:
    """Whether `word` (letters, maybe with an apostrophe) is English or one of `known`."""
    low = word.lower()
    if low in known or low in DOMAIN:
        return True
    if "'" in low:
        low = low.split("'", 1)[0]
    words = english()
    if low in words:
        return True
    if low.endswith("ies") and low[:-3] + "y" in words:
        return True
    stems = [low[: -len(e)] for e in _ENDINGS if low.endswith(e) and len(low) - len(e) >= 2]
    # "planned" -> "plan", "making" -> "make"
    stems += [t[:-1] for t in stems if len(t) > 2 and t[-1] == t[-2]] + [t + "e" for t in stems]
    return any(stem in words or stem in DOMAIN for stem in stems)


def unknown_words(text: str, known: Iterable[str] = ()) -> list[str]:
    """The words of `text` that are neither English nor in `known`, in order, once each."""
    allowed = frozenset(w.lower() for k in known for w in _WORD.findall(k))
    bad = [w for w in _WORD.findall(text) if not is_word(w, allowed)]
    return list(dict.fromkeys(bad))


def stutters(text: str) -> bool:
    """Whether one word is written three times in a row ("urn urn urn")."""
    return re.search(r"\b(\w+)(?:\W+\1\b){2}", text, flags=re.IGNORECASE) is not None


_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")


def name_joins(texts: Iterable[str]) -> frozenset[str]:
    """For each name of two or more capitalized words in `texts` ("Beta Grocers"), each word
    joined to the first letter of the next ("betag"), lower-case: a grammar's banned word
    starts (`SentenceGrammar.banned_prefixes`), so that the model writes the name as shown.

    Why: SmolLM2-135M glued names it was shown: in `rmn bench e2e` (5 briefs) 3 of the 10
    rationale texts wrote "BetaGrocers'" or "AlphaMarts", which the English check refused, so
    the template wrote them. Banning the glued names alone did not help: it wrote
    "BetaGrocerssrede" and "AlphaMartshipshf" instead."""
    out: set[str] = set()
    for text in texts:
        for m in _NAME.finditer(text):
            words = m.group(0).lower().split(" ")
            out |= {a + b[0] for a, b in zip(words, words[1:], strict=False)}
    return frozenset(out)
