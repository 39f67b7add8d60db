"""The one check that a model-written text invents no number.

Every text the model writes for a plan (the allocation and experiment rationale, the
reflection's sentences) is written from a facts table whose numbers are pre-formatted strings
("$1.45M", "4.3", "80%"). The decoding grammar (`adapters.structured.SentenceGrammar`) only
lets those strings appear where a number appears; this module checks the text afterwards, the
same way for the model's text, the template's and the benchmark's:

    check = check_numbers("Alpha gets $780k [1].", allowed=["$780k"], citations=1)
    check.ok, check.unsupported, check.citations  # True, [], [1]

A number is any run of characters holding a digit ("$1.45M", "4.3", "80%", "1st", "2x"), with
sentence punctuation cut off its end; it is supported only when it is exactly one of the
facts' strings. Spelled-out numbers ("three", "million", "percent") are numbers too: they are
never supported, as no fact is written that way. Citation markers `[n]` are not numbers: they
must name one of the passages shown (1..citations).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

# Spelled-out numbers a sentence could use to state a quantity no fact gave. "one" is left out:
# it is mostly a pronoun ("one retailer", "no one"), and claims no amount.
NUMBER_WORDS: frozenset[str] = frozenset(
    {
        "zero", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
        "eighty", "ninety", "hundred", "hundreds", "thousand", "thousands", "million",
        "millions", "billion", "billions", "trillion", "percent", "percentage", "dozen",
        "dozens", "twice", "thrice", "double", "triple", "half", "quarter", "tenfold",
        "twofold", "threefold",
    }
)  # fmt: skip

_CITATION = re.compile(r"\[(\d{1,3})\]")
# A run holding a digit: currency, thousands separators, decimals, scale and unit suffixes
# ("$1.45M", "1,080,000", "80%", "4.3x", "14-day" gives "14").
_NUMBER = re.compile(r"[$€£+-]?[\w.,%$€£]*\d[\w.,%]*")
# A word as the sentence grammar lexes it: letters with inner hyphens and apostrophes.
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_TRAILING = ".,;:"


class NumberCheck(BaseModel):
    """What `check_numbers` found in one text."""

    numbers: list[str] = Field(default_factory=list, description="every number, as written")
    unsupported: list[str] = Field(
        default_factory=list, description="numbers that are none of the facts' strings"
    )
    number_words: list[str] = Field(
        default_factory=list, description="spelled-out numbers (never supported)"
    )
    citations: list[int] = Field(default_factory=list, description="citation markers, in order")
    bad_citations: list[int] = Field(
        default_factory=list, description="markers naming no passage shown"
    )

    @property
    def ok(self) -> bool:
        """No unsupported number, spelled-out number or citation of a passage not shown."""
        return not (self.unsupported or self.number_words or self.bad_citations)

    def problems(self) -> list[str]:
        out = []
        if self.unsupported:
            out.append("numbers not in the facts: " + ", ".join(self.unsupported))
        if self.number_words:
            out.append("spelled-out numbers: " + ", ".join(self.number_words))
        if self.bad_citations:
            out.append(
                "citations of no passage: " + ", ".join(f"[{n}]" for n in self.bad_citations)
            )
        return out


def numbers_in(text: str) -> list[str]:
    """Every number in `text` as written (citation markers are not numbers)."""
    bare = _CITATION.sub(" ", text)
    out = []
    for match in _NUMBER.finditer(bare):
        token = match.group(0).rstrip(_TRAILING)
        # A leading sign belongs to the number only at a word's start ("-5%"), not in "A-1".
        if token[:1] in "+-" and match.start() > 0 and not bare[match.start() - 1].isspace():
            token = token[1:]
        if any(c.isdigit() for c in token):
            out.append(token)
    return out


def number_words_in(text: str) -> list[str]:
    """Spelled-out numbers in `text`, lower-cased, in order: words one of whose hyphenated
    parts is a number word ("twenty-five", "three-way"; also "double-check", which the
    grammar refuses alike)."""
    return [
        w.lower()
        for w in _WORD.findall(text)
        if any(part in NUMBER_WORDS for part in w.lower().split("-"))
    ]


def citations_in(text: str) -> list[int]:
    return [int(n) for n in _CITATION.findall(text)]


def check_numbers(text: str, allowed: Iterable[str], citations: int = 0) -> NumberCheck:
    """Every number in `text` matched against the facts' strings `allowed` (exactly, as
    formatted there), spelled-out numbers found, and citation markers checked against the
    passages shown (`[1]`..`[citations]`)."""
    permitted = set(allowed)
    found = numbers_in(text)
    cited = citations_in(text)
    return NumberCheck(
        numbers=found,
        unsupported=[n for n in found if n not in permitted],
        number_words=number_words_in(text),
        citations=cited,
        bad_citations=[n for n in cited if not 1 <= n <= citations],
    )


def unsupported_numbers(text: str, allowed: Iterable[str]) -> list[str]:
    """The numbers in `text` that are none of `allowed` (spelled-out numbers included): what
    the benchmarks count. Empty for shipped text."""
    check = check_numbers(text, allowed)
    return [*check.unsupported, *check.number_words]


def is_number_string(value: str) -> bool:
    """Whether `value` reads back as exactly one number, itself: what a fact's value must be
    for the grammar and this check to agree on it."""
    return numbers_in(value) == [value] and not number_words_in(value)
