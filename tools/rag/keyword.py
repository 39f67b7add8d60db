"""The keyword half of retrieval: BM25 (`bm25s`) over the chunks the Chroma collection holds.

Tokens are lower-case runs of letters and digits, English function words removed, Snowball
stemmed (PyStemmer), so that "cures" finds "cure" and "heals" finds "heal". Words that carry
meaning in a policy question ("no", "not", "only", "off", "more") are kept; "isn't" and
"can't" count as "not", and a possessive "'s" is dropped ("Gamma's" is "gamma").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import bm25s
    import Stemmer

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

# Function words (pronouns, auxiliaries, determiners, prepositions, conjunctions, question
# words). Negations and quantities are not here on purpose: "no emoji", "% off", "40% more".
_FUNCTION_WORDS = """
    a about above after again against am an and any are as at be been before being below
    between both but by can could did do does doing during each else for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just
    let me my myself of on once or other our ours ourselves own s she should so some such t
    than that the their theirs them themselves then there these they this those through to too
    until us very was we were what when where which while who whom why will with would you your
    yours yourself yourselves
"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    import Stemmer

    return Stemmer.Stemmer("english")


def _word(token: str) -> str:
    if token.endswith("n't"):
        return "not"
    return token.split("'", 1)[0]


def tokenize(text: str) -> list[str]:
    tokens = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    words = [w for w in map(_word, tokens) if w not in STOPWORDS]
    return list(_stemmer().stemWords(words))


class KeywordIndex:
    """BM25 scores of a question against every chunk, in the order the chunks were given."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self.size = len(texts)
        self._bm25: bm25s.BM25 | None = None
        tokens = [tokenize(t) for t in texts]
        if any(tokens):
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)
            self._vocab: dict[str, int] = dict(self._bm25.vocab_dict)

    def scores(self, question: str) -> np.ndarray:
        """One BM25 score per chunk (0 where no question word occurs); never NaN."""
        out = np.zeros(self.size, dtype=np.float64)
        if self._bm25 is None:
            return out
        # Words the corpus never uses score nothing; bm25s would reject them.
        ids = [self._vocab[t] for t in tokenize(question) if t in self._vocab]
        if ids:
            out[:] = self._bm25.get_scores(ids)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
