"""The brief's split of its budget by retailer, given in shares: "60% Alpha / 40% Beta",
"Alpha Mart 70%, Delta Home 30%", "75% on Alpha and the rest on Beta", "60/40 Alpha/Gamma".

Amounts by retailer ("$200k on Alpha and $150k on Beta") are read with the money
(`budget.choose_budget` marks them as the budget's parts); shares need the total, so they are
read here and turned into amounts once the budget is known. A reading counts only when its
shares name distinct retailers and add up to the whole (100%): a lone "10% at Beta" is no split.
"""

from __future__ import annotations

import re

from tools.brief.rules.money import Mention
from tools.brief.rules.reserve import PERCENT

Span = tuple[int, int]


# A share's retailer after it ("60% on Alpha", "40% to the Beta") or before it ("Alpha 60%",
# "Alpha Mart: 70%", "| Alpha | 60% |").
_TO_RETAILER = re.compile(r"\s*(?:(?:of\s+(?:the\s+)?\S+\s+)?(?:on|at|to|for|in|into)\s+)?"
                          r"(?:the\s+)?")  # fmt: skip
_FROM_RETAILER = re.compile(r"\s*(?:[:=|(-]|gets|at)?\s*")
_REST = re.compile(r"(?:the\s+)?(?:rest|remainder|balance|remaining)\b(?:\s+of\s+it)?\s*"
                   r"(?:goes\s+|go\s+)?(?:on|at|to|for|in|into)\s+(?:the\s+)?")  # fmt: skip
# "60/40", "70:30", "50/30/20": the ratio of a split whose retailers come next ("60/40
# Alpha/Beta", "60/40 between Alpha and Beta") or just before ("Alpha/Beta 60/40").
# "65% / 35% between Alpha and Beta" and "70-30 alpha vs gamma" too (yc10 and yc30 of
# unseen47): the shares add up to 100, which no date or range of a brief does.
_RATIO = re.compile(r"(?<![\d./$])(\d{1,2})%?\s?[/:-]\s?(\d{1,2})%?"
                    r"(?:\s?[/:-]\s?(\d{1,2})%?)?(?![\d/%])")  # fmt: skip
_LIST_GAP = re.compile(r"\s*(?:/|,|&|and|\+|vs\.?|to)?\s*")
_GAP_BEFORE = re.compile(r"\s*(?:/|,|&|and|\+|split|:)?\s*")  # "Alpha/Beta 60/40"
_BEFORE_LIST = re.compile(r"\s*(?:split\s+)?(?:between|across|among|for|on|at)?\s*")


# A fraction of the budget: "2/3 Alpha, 1/3 Gamma" (yb39 of unseen46), "two-thirds".
# The text's number words are digits by now: "two-thirds to Alpha" reads "2-thirds to alpha"
# (yc11 of unseen47); "a quarter to Delta Home, the rest to Alpha Mart" (yc45).
_FRACTION = re.compile(r"(?<![\d/.$])(?P<a>[1-9])\s?/\s?(?P<b>[2-9]|10)(?![\d/%])"
                       r"|\b(?P<n>[1-3]|an?)[- ](?P<unit>thirds?|quarters?)\b"
                       r"|\b(?P<half>half)\b")  # fmt: skip
_UNITS = {"third": 3, "quarter": 4}
# An even split: "split evenly across Alpha and Beta", "Alpha and Beta, half and half".
_EVEN = re.compile(r"\b(?:(?:split|divided|spread)\s+)?(?:evenly|equally|half and half"
                   r"|(?:an\s+)?even split|(?:an\s+)?equal split)\b")  # fmt: skip


# A split the brand has used, not this plan's: "historically we've split about 80/20
# Alpha/Gamma" (yc44 of unseen47).
_HABIT = re.compile(
    r"\b(?:historically|historical|traditionally|typically|usually|in the past|previously"
    r"|last (?:year|time|quarter)|we'?ve (?:always )?split)\b"
)


def _sentence_before(low: str, pos: int) -> str:
    """The words of `pos`'s sentence before it."""
    start = max(low.rfind(". ", 0, pos), low.rfind("\n", 0, pos), low.rfind("; ", 0, pos))
    return low[start + 1 : pos]


def read_shares(
    low: str, mentions: list[Mention], rest: str | None, past: list[Span] | None = None
) -> tuple[dict[str, float], list[Span]]:
    """(retailer id -> share of the budget, 0-1; the spans read), or ({}, []) when the text
    gives no whole split in shares; `rest` gets what the shares leave (`rest_retailer`).
    Shares inside `past` (sentences about the past) are not this plan's: "historically we've
    split about 80/20 Alpha/Gamma" (yc44 of unseen47)."""
    for reader in (_percent_shares, _ratio_shares, _fraction_shares, _even_shares):
        shares, spans = reader(low, mentions)
        if any(s <= a < e for a, _ in spans for s, e in past or []) or any(
            _HABIT.search(_sentence_before(low, a)) for a, _ in spans
        ):
            continue
        if shares and rest is not None and rest not in shares and sum(shares.values()) < 1:
            # "75% on Alpha, the rest on Beta"; "45% Alpha Mart, 35% Beta Grocers, Delta Home
            # gets the remainder" (yd17 of unseen48)
            shares[rest] = 1 - sum(shares.values())
        if len(shares) > 1 and abs(sum(shares.values()) - 1) < 0.005:
            return shares, spans
    return {}, []


def _percent_shares(low: str, mentions: list[Mention]) -> tuple[dict[str, float], list[Span]]:
    shares: dict[str, float] = {}
    spans: list[Span] = []
    for m in PERCENT.finditer(low):
        rid = _retailer_after(low, m.end(), mentions) or _retailer_before(low, m.start(), mentions)
        if rid is None:
            continue
        if rid in shares:
            return {}, []
        shares[rid] = float(m.group("num")) / 100
        spans.append(m.span())
    return shares, spans


def _ratio_shares(low: str, mentions: list[Mention]) -> tuple[dict[str, float], list[Span]]:
    """The last ratio with its retailers: "50/50 Alpha/Beta. Actually, let's do 75/25
    Alpha/Beta instead" is 75/25 (yb34 of unseen46)."""
    found: tuple[dict[str, float], list[Span]] = ({}, [])
    for m in _RATIO.finditer(low):
        parts = [float(g) for g in m.groups() if g is not None]
        # "split 2:1 Alpha Mart to Gamma Pharmacy", "5:2 between Alpha Mart and Delta Home"
        # (yd07, yd20 of unseen48): a colon ratio of any sum, other ratios of 100 only
        colon = ":" in m.group() and "%" not in m.group()
        if abs(sum(parts) - 100) > 0.5 and not (colon and all(parts)):
            continue
        named = _list_after(low, m.end(), mentions) or _list_before(low, m.start(), mentions)
        if len(named) == len(parts) and len(set(named)) == len(named):
            found = {r: p / sum(parts) for r, p in zip(named, parts, strict=True)}, [m.span()]
    return found


def _fraction_shares(low: str, mentions: list[Mention]) -> tuple[dict[str, float], list[Span]]:
    shares: dict[str, float] = {}
    spans: list[Span] = []
    for m in _FRACTION.finditer(low):
        rid = _retailer_after(low, m.end(), mentions) or _retailer_before(low, m.start(), mentions)
        if rid is None or rid in shares:
            continue
        if m.group("half"):
            shares[rid] = 1 / 2
        elif m.group("unit"):
            n = 1 if m.group("n") in ("a", "an") else int(m.group("n"))
            shares[rid] = n / _UNITS[m.group("unit").rstrip("s")]
        else:
            shares[rid] = int(m.group("a")) / int(m.group("b"))
        spans.append(m.span())
    return shares, spans


def _even_shares(low: str, mentions: list[Mention]) -> tuple[dict[str, float], list[Span]]:
    for m in _EVEN.finditer(low):
        named = _list_after(low, m.end(), mentions) or _list_before(low, m.start(), mentions)
        if len(named) > 1 and len(set(named)) == len(named):
            return {r: 1 / len(named) for r in named}, [m.span()]
    return {}, []


# A retailer named before the rest it gets: "Beta Grocers the rest", "Delta Home gets the
# remainder" (yd10, yd17 of unseen48).
_GETS_REST = re.compile(r"\s*(?:gets|takes|with|:|-)?\s*(?:the\s+)?(?:rest|remainder|balance)\b")


def rest_retailer(low: str, mentions: list[Mention]) -> str | None:
    """The retailer that gets what the brief's amounts leave: "the rest on Gamma"."""
    for m in _REST.finditer(low):
        rid = next((r for s, _, r in mentions if s == m.end()), None)
        if rid is not None:
            return rid
    return next((r for _, e, r in mentions if _GETS_REST.match(low, e)), None)


def _retailer_after(low: str, end: int, mentions: list[Mention]) -> str | None:
    gap = _TO_RETAILER.match(low, end)
    assert gap is not None  # every part of it is optional
    return next((r for s, _, r in mentions if s == gap.end()), None)


def _retailer_before(low: str, start: int, mentions: list[Mention]) -> str | None:
    return next((r for _, e, r in mentions
                 if e <= start and (g := _FROM_RETAILER.match(low, e)) and g.end() == start),
                None)  # fmt: skip


def _list_after(low: str, end: int, mentions: list[Mention]) -> list[str]:
    """The retailers listed right after `end` ("/ Alpha/Beta", " between Alpha and Beta")."""
    gap = _BEFORE_LIST.match(low, end)
    assert gap is not None
    pos, named = gap.end(), []
    for s, e, r in mentions:
        if s == pos:
            named.append(r)
            link = _LIST_GAP.match(low, e)
            assert link is not None
            pos = link.end()
    return named


def _list_before(low: str, start: int, mentions: list[Mention]) -> list[str]:
    """The retailers listed right before `start` ("Alpha/Beta 60/40")."""
    named: list[str] = []
    pos = start
    for s, e, r in reversed(mentions):
        if e > pos:
            continue
        if not _GAP_BEFORE.fullmatch(low, e, pos):
            break
        named.insert(0, r)
        pos = s
    return named
