"""The lexicon of the brief's spans (`tools.brief.spans`): what a number or an amount in a
brief is when it states no field (a clock time, a count, a duration, a price per store, an
amount in brackets after the past), how shares and returns are written, and which shares are
no reserve (a fee, a retailer's cap). Each pattern records the brief where the model chose such
a number; the lexers mask what these match before offering candidates."""

from __future__ import annotations

import re
from datetime import date

from tools.brief.rules.money import Mention, cap_words, minimum_words, superseded
from tools.brief.rules.reserve import HALF_SHARE, told_as_reserve
from tools.brief.rules.text import clause_of, clause_spans


def span_text(clean: str, s: int, e: int) -> str:
    """The brief's words at `clean[s:e]` as the model is shown them: spaces and line breaks
    as one space."""
    return " ".join(clean[s:e].split())


# Floors are ratios: a number above this is an amount, a year or a count, never a ROAS floor.
MAX_FLOOR = 50.0
# The numbers offered as a floor. Every gold floor of the hand-written sets (over 2,000) lies in
# 1.2..6; the model chose 40 ("we got the extra 40 from the trade fund"), 16 (a phone number
# said in words) and 0.5 (yv15 of unseen66, yx14 and yx10 of unseen68).
OFFERED_FLOORS = (1.0, 12.0)
NUMBER = re.compile(r"(?<![\w.,/-])(?P<num>\d+(?:\.\d+)?)(?P<unit>\s?x\b|:1\b)?(?!\d|,\d|/|\.\d)")
# A bare "half" only as a share, not a period (`reserve.HALF_SHARE`).
FRACTION = re.compile(
    r"(?<![\w-])(?:a|an|one|1)[\s-]+(?P<word>tenth|fifth|quarter|third)\b|"
    + HALF_SHARE
    + r"|(?<![\d.])(?P<num>0?\.\d+)(?=\s+(?:of\b|for\b|to\b|held\b|set\b|reserved\b))"
)
DURATION = re.compile(r"\b\d+(?:\.\d+)?[\s-]*(?:days?|weeks?|wks?|months?|mos?|years?|yrs?)\b")
FRACTION_WORDS = {"tenth": 0.1, "fifth": 0.2, "quarter": 0.25, "third": 1 / 3, "half": 0.5}
# Numbers that are never a ratio, found in briefs where the adapter chose them as the floor
# (unseen8 and unseen9): clock times ("[10:02] Mia:"), phone numbers ("+1 555 0134"), a year
# after an apostrophe ("April '27"); and, from the model's choices in unseen65, a time of day
# ("walk through it on Dec 14 at 3pm": yu27) and a count of retailers ("retailers? all three":
# yu26; the brief's number words are digits by then).
NOT_A_RATIO = re.compile(
    r"\b\d{1,2}:\d{2}\b|\+\d[\d ().-]{6,}\d|'\d{2}\b"
    r"|\b\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)(?!\w)|\ball \d\b(?!\.\d|\s?x\b)"
)
# What a number followed by one of these counts, on the same line and with up to two words
# between ("1,150 stores", "14 new SKUs", "all 3 of its retailers", "4.5M loyalty members",
# "1,200 Alpha Mart stores"), so it is no amount of money and no ratio.
COUNTED_AFTER = re.compile(
    r"[ \t]+of[ \t]+them\b"  # "we're in 1,900 of them" (q59 of unseen11)
    r"|(?:[ \t]+(?!(?:at|on|for|in|into|over|across|per|with|from|to|and|or|roas|x|behind|"
    r"between|among|every|all|each|the|our|its|their|his|her|my|your)\b)[a-z][a-z'-]*)"
    r"{0,2}(?:[ \t]+of[ \t]+(?:its|our|the|their|his|her))?[ \t]*"
    r"(?:stores?|locations?|doors|skus?|items?|units?|products?|shoppers?|customers?|"
    r"households?|retailers?|networks?|brands?|people|members?|reviews?|impressions?|clicks?|"
    r"visits?|orders?|requests?|briefs?)\b"  # "splitting these into 2 requests" (yx18)
)
# An amount per store, per SKU and the like: no budget ("~$1,200 per store for endcaps").
PER_UNIT = re.compile(
    r"\s*(?:per|a|each|/)\s*(?:store|location|door|sku|unit|item|shopper|household|member)s?\b"
)
# What follows an amount of money said as a return on each dollar: "$3 back per $1", "3
# dollars for every dollar", "$2.50 in revenue per $1 spent".
RETURN = re.compile(
    r"\s*(?:back|in return|returns?|returned|(?:in|of) (?:revenue|sales))\b"
    r"|\s*(?:per|for every|for each|on every|on each|/)\s*(?:\$\s?1\b|(?:ad )?dollar\b)"
)
# A bare whole number of five digits or more is an amount ("budget: 850000", a CSV row's
# "320000": v45 and v08 of unseen9 offered none), unless it is part of a phone number.
BARE_AMOUNT = re.compile(r"(?<![+\d] )(?<![+\d-])[1-9]\d{4,}(?![\d-])")


# A fee told with its share: "the 8% agency fee is billed on top", "agency fee of 12%" (the
# model's reserve in yv11 of unseen66 and yw09 of unseen67).
_FEE_BEFORE = re.compile(r"\b(?:fees?|commission)\s*(?:of|:|=|is|at)?\s*$")
_FEE_AFTER = re.compile(
    r"\s*(?:(?:agency|management|platform|service|tech)\s+)?(?:fees?|commission)\b"
)


def no_reserve(low: str, m: re.Match[str], mentions: list[Mention]) -> bool:
    """Whether the share `m` is a fee, or a cap or a minimum at a retailer named in its clause
    ("Gamma shouldn't get more than 40% of the total budget": the model's reserve in yu03 of
    unseen65), not a reserve."""
    s, e = m.span()
    if _FEE_BEFORE.search(low, max(0, s - 25), s) or _FEE_AFTER.match(low, e):
        return True
    if told_as_reserve(low, s, e) or not (cap_words(low, s, e) or minimum_words(low, s, e)):
        return False
    lo, hi = clause_of(s, clause_spans(low))
    return any(lo <= start < hi for start, _, _ in mentions)


def past_aside(low: str, s: int, clauses: list[tuple[int, int]], today: date) -> bool:
    """Whether the amount at `s` is in brackets after a clause that reports the past: "in 2026
    Initech spent $2.1M (Alpha $1.4M, Delta $700K)" (yv16 of unseen66: the model planned the
    $1.4M). Not every amount of a past sentence: "we're allocating $2.7M - last spring was
    $2.1M" plans the $2.7M (sa34 of unseen38)."""
    opened = low.rfind("(", 0, s)
    if opened < 0 or low.rfind(")", 0, s) > opened:
        return False
    return superseded(low, opened, low[slice(*clause_of(opened, clauses))], today)
