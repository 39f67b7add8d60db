"""What a re-ask may not write again: the words and the headline of the model's refused copy
that the checks named, banned in the re-ask's grammar (`CopyGrammar.avoiding`).

Why: asked again with its refused answer, the broken rule in plain words and a new seed (the
re-ask before `write._reask`), the model wrote the same copy again. In `rmn bench language`
seeds 0-2 (180 variants), 7 variants went to template fallback after three identical refused
generations: "Your Family's Bestchoice" (a fusion around the banned claim word "best"),
"Cuckies the way of the family", "Smokey and easy to drink", "..., fits most can." (cut at the
body's limit), and a headline another variant had written. Banning what was refused makes the
next generation differ there.

    avoid_after(AdCopy(headline="Cuckies for all", body="Real cheddar taste."),
                ["unknown_word:Cuckies"]).words   # -> frozenset({"cuckies"})
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tools.creative.quality import sentence_key, words
from tools.creative.review import COMMON_WORDS, sentences
from tools.policy.compliance import AdCopy

_LETTERS = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Avoid:
    """Words (lower case) and headlines (sentence keys) a slot's re-asks may not write."""

    words: frozenset[str] = frozenset()
    headlines: frozenset[str] = frozenset()
    sentences: frozenset[str] = frozenset()  # body sentences (keys) of the call's variants

    def __or__(self, other: Avoid) -> Avoid:
        return Avoid(
            self.words | other.words,
            self.headlines | other.headlines,
            self.sentences | other.sentences,
        )


def avoid_after(copy: AdCopy, violations: Sequence[str]) -> Avoid:
    """What a re-ask after `copy`, refused for `violations` (`review_copy` codes), may not
    write: each unknown word; the word a cut phrase was cut in ("can" of "fits most can."); the
    content words a loop repeats (a forced body opening is a literal, so the body still opens on
    it)."""
    banned: set[str] = set()
    for code in violations:
        kind, _, arg = code.partition(":")
        if kind == "unknown_word" and arg.isalpha():
            banned.add(arg.lower())
        elif kind == "cut_phrase":
            banned |= _cut_words(copy, arg)
        elif kind == "repetitive":
            banned |= _looped(copy)
    return Avoid(words=frozenset(banned))


def avoid_headlines(*copies: AdCopy) -> Avoid:
    """The copies' headlines and body sentences as ones a re-ask may not write: after a
    variant was dropped for repeating another's sentence, its own and those of every other
    variant of the call (a body whose end the model chooses, `compose.body_tails`, would
    otherwise end the same way again: 27 of 85 generations repeated another variant on
    `rmn bench language` seed 0).

    Why every other's: a brand adapter writes the brand's few hooks as headlines ("Bold and
    fresh", "Fresh vibe", "Great over ice"), and with only the headline it repeated banned, a
    re-ask wrote another variant's. Read on the versions gate's seeds (100 and 101 of
    `run_language_bench`, 10 plans), brand_x composed: 7 of 120 variants went to template
    copy; of seed 100's 4, 3 had been dropped for repeating another variant, one of them on
    all three attempts, each time another variant's headline."""
    keys = {sentence_key(c.headline) for c in copies}
    said = {sentence_key(s) for c in copies for s in sentences(c.body)}
    return Avoid(
        headlines=frozenset(k for k in keys if k), sentences=frozenset(k for k in said if k)
    )


def _cut_words(copy: AdCopy, phrase: str) -> set[str]:
    """The last word of each part (headline, body sentence) that is the start of a longer word
    of `phrase`: where the part was cut."""
    longer = _LETTERS.findall(phrase.lower())
    out = set()
    for part in [copy.headline, *sentences(copy.body)]:
        last = _LETTERS.findall(part.lower())[-1:]
        if last and any(w != last[0] and w.startswith(last[0]) for w in longer):
            out.add(last[0])
    return out


def _looped(copy: AdCopy) -> set[str]:
    """The content words said more than once in the headline and body."""
    said = Counter(w for w in words(f"{copy.headline} {copy.body}")
                   if w.isalpha() and len(w) >= 3 and w not in COMMON_WORDS)  # fmt: skip
    return {w for w, n in said.items() if n >= 2}
