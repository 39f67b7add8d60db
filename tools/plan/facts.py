"""The facts a text about a plan may use, and the check that it keeps to them.

    facts = FactsTable(); facts.add("planned spend", money(900_000))   # "$900k"
    check_text("Planned spend is $900k across two retailers [1].", facts, citations=1)  # None

A facts table holds every number a text may use, pre-formatted as it may appear ("$1.08M",
"73%", "4.2"); the formatting functions here write them. `check_text` says why a text cannot
be shipped: a number none of the facts' (or spelled out, `tools.plan.numbers`), a number away
from its fact's name, a citation marker naming no passage shown, a word that is not English
(`tools.plan.vocabulary`), or a loop. The rationale (`tools.plan.rationale`) and the
reflection's sentences (`tools.plan.reflection_words`) are both checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, Field, model_validator

from tools.plan.numbers import check_numbers, is_number_string, numbers_in
from tools.plan.vocabulary import clashes, dangles, stutters, unknown_words

MIN_WORDS = 5
# A text whose distinct words are fewer than this share of its words is a loop.
MIN_DISTINCT = 0.5
_LETTERS = re.compile(r"[A-Za-z']+")


class Fact(BaseModel):
    name: str = Field(description="what the number is, in words: 'Alpha Mart share'")
    value: str = Field(description="the value as a text may write it: '73%', '$1.08M', 'alpha'")


class FactsTable(BaseModel):
    """The numbers (and names) a text may use. A value holding a digit must read back as
    exactly one number, itself (`is_number_string`), so that the grammar and the checker
    agree on it."""

    facts: list[Fact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _atomic_numbers(self) -> FactsTable:
        bad = [
            f.value
            for f in self.facts
            if re.search(r"\d", f.value) and not is_number_string(f.value)
        ]
        if bad:
            raise ValueError(f"fact values must be single numbers as written: {bad}")
        return self

    def add(self, name: str, value: str) -> None:
        self.facts.append(Fact(name=name, value=value))
        self._atomic_numbers()

    def numbers(self) -> tuple[str, ...]:
        """The number strings a text may use."""
        return tuple(dict.fromkeys(f.value for f in self.facts if re.search(r"\d", f.value)))

    def get(self, name: str) -> str | None:
        return next((f.value for f in self.facts if f.name == name), None)

    def as_dict(self) -> dict[str, str]:
        return {f.name: f.value for f in self.facts}

    def pairs(self) -> list[tuple[str, str]]:
        return [(f.name, f.value) for f in self.facts]


# --- formatting -------------------------------------------------------------------------------


def money(value: float) -> str:
    """Dollars as a manager writes them, wherever a text or question says them: $1.37M, $139k,
    $950. Halves round up, as people round: $604,500 is "$605k" and $4,675,000 "$4.68M"
    (Python's own formatting rounds to even and on the binary value, so "$604k" and "$4.67M"
    stood beside the tables' $604,500 and $4,675,000; round 5 finding set)."""
    sign = "-" if value < 0 else ""
    v = abs(value)
    if (millions := _half_up(v, 1e6, 2)) >= 1:  # $999,995 is "$1.00M", not "$1,000k"
        return f"{sign}${millions:,.2f}M"
    if (thousands := _half_up(v, 1e3, 0)) >= 10:
        return f"{sign}${thousands:,.0f}k"
    return f"{sign}${_half_up(v, 1, 0):,.0f}"


def _half_up(value: float, unit: float, places: int) -> Decimal:
    """`value / unit` to `places` decimals, halves up, on the whole dollars the tables print
    (a spend of $85,499.998 is $85,500 there, and read "$85k" beside it: ua52 of unseen40),
    from the decimal digits the value prints with (repr), not its binary expansion."""
    dollars = Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    exact = dollars / Decimal(repr(unit))
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def share(value: float) -> str:
    return f"{value:.0%}"


def ratio(value: float) -> str:
    return f"{value:.1f}"


def per_dollar(value: float) -> str:
    return f"${value:.2f}"


# Words of a fact's name that say nothing about which fact it is.
_NAME_STOPWORDS = frozenset(
    [
        "the",
        "of",
        "a",
        "an",
        "and",
        "in",
        "on",
        "to",
        "for",
        "at",
        "it",
        "its",
        "one",
        "more",
        "value",
        "end",
        "high",
        "low",
        "range",
        "with",
        "that",
        "this",
        "is",
        "per",
        "by",
        "as",
    ]
)
# How many words either side of a number may name its fact.
ATTRIBUTION_WINDOW = 8


def unattributed_numbers(text: str, facts: FactsTable) -> list[str]:
    """Numbers written away from their fact: no word of the name of any fact with that value
    (compared on their first four letters: "spend" ~ "spending") within
    `ATTRIBUTION_WINDOW` words. "one brand may spend at most $1.20M", with $1.20M the total
    budget, is caught; "Alpha Mart gets 73%", with 73% Alpha Mart's share, is not."""
    tokens = text.split()
    stems = [{w.lower()[:4] for w in _LETTERS.findall(t)} for t in tokens]
    out = []
    for i, token in enumerate(tokens):
        for number in numbers_in(token):
            keys = {
                w.lower()[:4]
                for f in facts.facts
                if f.value == number
                for w in _LETTERS.findall(f.name)
                if w.lower() not in _NAME_STOPWORDS
            }
            near = set().union(*stems[max(0, i - ATTRIBUTION_WINDOW) : i + ATTRIBUTION_WINDOW + 1])
            if keys and not keys & near:
                out.append(number)
    return out


def check_text(
    text: str,
    facts: FactsTable,
    citations: int,
    *,
    need_number: bool = True,
    known: Iterable[str] = (),
) -> str | None:
    """Why `text` cannot be shipped, or None: a number none of the facts' (or spelled out),
    a number away from the name of its fact, a marker naming no passage shown, no marker when
    passages were shown, no fact number used (`need_number`), a word that is neither English
    nor in the facts or `known` (the passages shown), or a loop."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    check = check_numbers(stripped, facts.numbers(), citations)
    if not check.ok:
        return "; ".join(check.problems())
    misplaced = unattributed_numbers(stripped, facts)
    if misplaced:
        return "numbers away from their fact: " + ", ".join(misplaced)
    if citations and not check.citations:
        return "cites no passage"
    if need_number and not check.numbers:
        return "uses none of the facts' numbers"
    invented = unknown_words(stripped, [*known, *(f"{n} {v}" for n, v in facts.pairs())])
    if invented:
        return "words that are not English: " + ", ".join(invented[:5])
    if stutters(stripped):
        return "repeats a word"
    if clashes(stripped):
        return "two limits on one amount"
    if dangles(stripped):
        return "an article before no noun"
    words = [w.lower() for w in _LETTERS.findall(stripped)]
    if len(words) < MIN_WORDS:
        return "too short"
    if len(set(words)) < MIN_DISTINCT * len(words):
        return "repeats itself"
    sentences = [s.strip() for s in re.split(r"(?<=\.)\s+(?=[A-Z])", stripped) if s.strip()]
    if len(set(sentences)) < len(sentences):
        return "repeats a sentence"
    return None
