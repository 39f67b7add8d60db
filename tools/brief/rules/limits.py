"""Limits at a retailer: the most the plan may spend there ("no more than $200k at Beta", "at
most $400k on any one retailer", "Gamma cap: $600k"; `StructuredBrief.retailer_caps`) and the
least ("Per our JBP with Beta Grocers, at least $300k must go to Beta", "gamma min 100k",
"Floor of $80k at Delta (that's the upfront we signed)": a joint business plan's or an
upfront's commitment; `StructuredBrief.retailer_mins`).

`money.read_money` marks an amount with a cap's words as kind "cap" and one next to a retailer
with a minimum's words as kind "min"; here each gets its retailer (the one named with it, or
right before it with a minimum's words between, else the only one its clause or sentence names)
and is kept when it binds this plan: below the budget, at a retailer the plan covers; a
minimum also not in a sentence that turns it down ("we declined", "that agreement expired",
"no commitment this year") and not above the brief's cap there.
"""

from __future__ import annotations

import re

from tools.brief.rules.money import Mention, Money, each_retailer, sentence_of
from tools.brief.rules.text import clause_of, clause_spans, usd
from tools.brief.schema import BriefError
from tools.catalog import current

# A minimum the brief asks for and turns down, one that no longer holds, or another brand's
# (yf28 and yf30 of unseen50: "that agreement expired and there's no commitment this year",
# "asked us for at least $300k but we declined").
_TURNED_DOWN = re.compile(
    r"\b(?:declined|expired|no (?:longer|commitments?|minimums?)|not (?:matching|committing)"
    r"|(?:won't|will not|don't|do not) (?:commit|match|need)"
    # someone else's: "our competitor committed $500k to Beta Grocers in their JBP" (yf24)
    r"|competitors?|rivals?|their jbp|(?:haven't|have not|hasn't) committed)\b"
)
# A network's own order minimum, not a commitment, in the amount's part of its sentence (up to
# a semicolon: "JBP: Delta min $300K; note Alpha platform minimum buy is $25K (fyi)", ys21 of
# unseen63): "Gamma's minimum IO is $50k, which we clear easily", "Gamma's platform minimum is
# $250k - just their MAC" (yq12 of unseen61, yr29 of unseen62).
_ORDER_MINIMUM = re.compile(
    r"\b(?:min(?:imum)? (?:io|order|buy|insertion order)s?|which we (?:clear|meet|exceed|beat)"
    r"|platform min(?:imum)? is)\b"
)
# Between a retailer and its minimum: "beta has to get 500K", "Beta can't go under $400k",
# "Alpha JBP 600,000 min" (yg25, yg19, yg05 of unseen51).
_LEAD = re.compile(
    r"\s*(?:\(?(?:jbp|upfront|contract)\)?\s*)?(?:[:=|-]\s*)?(?:has to|have to|needs to|must)?"
    r"\s*(?:get|see|receive|take)?\s*(?:(?:can'?t|cannot|must not|may not|won'?t)"
    r" (?:drop|go|fall|dip|be) (?:below|under)|not (?:below|under)"
    r"|(?:at )?(?:min(?:imum)?|at least|no less than))?"
    r"\s*(?:of\s+)?$"
)


def _retailer(low: str, m: Money, mentions: list[Mention]) -> str | None:
    """The retailer of a limit: named with it, else (a minimum) named right before it with a
    minimum's words between, else the only one its clause names, else the only one its
    sentence names ("At Gamma we have to spend at least $200k, but no more than $500k", "gamma
    won't take more than $150k from us": yh18 of unseen52, yi02 of unseen53)."""
    if m.retailer_id is not None:
        return m.retailer_id
    if m.kind == "min":
        before = [r for r in mentions
                  if r[1] <= m.span[0] and _LEAD.fullmatch(low, r[1], m.span[0])]  # fmt: skip
        if before:
            return before[-1][2]
    for lo, hi in (clause_of(m.span[0], clause_spans(low)), sentence_of(low, m.span[0])):
        named = {r[2] for r in mentions if lo <= r[0] < hi}
        if len(named) == 1:
            return named.pop()
    return None


# Between a limit and the amount that corrects it: at most one line break ("cap Gamma at 100k\n
# Ella: hmm, make that 150k") and no other amount.
_CORRECTION_GAP = 80


def take_over_corrected_limits(low: str, money: list[Money], mentions: list[Mention]) -> None:
    """A correction right after a cap or a minimum corrects that limit, not the budget: "Alpha
    cap $250K - sorry, make that $300K", "cap Gamma at 100k / hmm, make that 150k" (yw24 of
    unseen67 and yx30 of unseen68 planned $300K and $150k as the budget, by the rules and the
    model alike). The correcting amount becomes the limit at the same retailer and the first
    one is superseded; `money` (in text order, from `money.read_money`) changes in place."""
    for before, m in zip(money, money[1:], strict=False):
        if not (m.correction and m.kind == "budget" and before.kind in ("cap", "min")):
            continue
        gap = low[before.span[1] : m.span[0]]
        if m.score or len(gap) > _CORRECTION_GAP or gap.count("\n") > 1:
            continue  # "make the budget 1.3M" is the budget's correction
        m.kind, m.retailer = before.kind, before.retailer
        m.retailer_id = before.retailer_id or _retailer(low, before, mentions)
        before.kind, before.why = "superseded", "a limit the brief corrects"


def named_for_limits_only(low: str, money: list[Money], mentions: list[Mention]) -> bool:
    """Whether every retailer the text names is named only with its cap or minimum: "Half a
    million for Acme ... Don't go over $150k on Delta", "Keep Beta Grocers at or above $150k
    (JBP commitment)" plan every retailer, not the one limited (ym05 of unseen57, yn10 of
    unseen58 planned Delta alone, Beta alone)."""
    limits = [m for m in money if m.kind in ("cap", "min")]
    if not mentions or not limits:
        return False
    limited = {(sentence_of(low, m.span[0]), _retailer(low, m, mentions)) for m in limits}
    return all((sentence_of(low, s), rid) in limited for s, _, rid in mentions)


def read_caps(
    low: str, money: list[Money], mentions: list[Mention], budget: float | None,
    planned: list[str],
) -> tuple[dict[str, float], list[str]]:
    """-> ({retailer: USD} the plan may spend at most, notes). A limit on any one retailer
    applies to each planned; one that names no retailer of the plan, or is not below the
    budget, is ignored with a note."""
    caps: dict[str, float] = {}
    notes: list[str] = []
    for m in money:
        if m.kind != "cap" or budget is None or m.value == budget:
            continue
        each = each_retailer(low, *m.span)
        retailer = m.retailer_id or (None if each else _retailer(low, m, mentions))
        targets = [retailer] if retailer else (planned if each else [])
        if m.value > budget or not targets or not set(targets) <= set(planned):
            notes.append(f"ignored {usd(m.value)}: a per-retailer limit the plan cannot place "
                         "on a retailer it plans")  # fmt: skip
            continue
        for r in targets:
            caps[r] = min(caps.get(r, m.value), m.value)
    if caps:
        said = ", ".join(f"{current().retailer(r).name} {usd(v)}" for r, v in caps.items())
        notes.append(f"the brief caps the ads at a retailer: at most {said} (the plan's "
                     "retailer caps; an edit changes or lifts them)")  # fmt: skip
    return caps, notes


def _part(low: str, m: Money) -> tuple[int, int]:
    """The sentence of amount `m`, up to the semicolons around it."""
    lo, hi = sentence_of(low, m.span[0])
    end = low.find(";", m.span[1], hi)
    return max(lo, low.rfind(";", lo, m.span[0]) + 1), end if end >= 0 else hi


def read_mins(
    low: str,
    money: list[Money],
    mentions: list[Mention],
    budget: float | None,
    planned: list[str],
    caps: dict[str, float],
) -> tuple[dict[str, float], list[str], list[BriefError]]:
    """-> ({retailer: USD} the plan must spend at least, notes, errors). Errors: minimums
    that add up to more than the budget, or one above the brief's cap at its retailer."""
    mins: dict[str, float] = {}
    notes: list[str] = []
    for m in money:
        if m.kind != "min" or budget is None:
            continue
        lo, hi = sentence_of(low, m.span[0])
        if _TURNED_DOWN.search(low, lo, hi) or _ORDER_MINIMUM.search(low, *_part(low, m)):
            notes.append(f"ignored {usd(m.value)}: a minimum the brief turns down")
            continue
        retailer = _retailer(low, m, mentions)
        # "Each retailer must receive at least $400k" (yu25 of unseen65): at every one planned.
        targets = [retailer] if retailer else (planned if each_retailer(low, *m.span) else [])
        if m.value >= budget or not targets or not set(targets) <= set(planned):
            notes.append(f"ignored {usd(m.value)}: a minimum the plan cannot place on a "
                         "retailer it plans")  # fmt: skip
            continue
        for r in targets:
            mins[r] = max(mins.get(r, m.value), m.value)
    if not mins:
        return {}, notes, []
    name = {r: current().retailer(r).name for r in mins}
    errors = [
        BriefError(f"the minimum at {name[r]} ({usd(v)}) is above the cap there "
                   f"({usd(caps[r])})", field="retailer_mins", retailer=r)  # fmt: skip
        for r, v in mins.items()
        if r in caps and v > caps[r]
    ]
    if sum(mins.values()) > budget:
        errors.append(BriefError(
            f"the retailer minimums add up to {usd(sum(mins.values()))}, above the "
            f"{usd(budget)} budget", field="retailer_mins"))  # fmt: skip
    said = ", ".join(f"{name[r]} {usd(v)}" for r, v in mins.items())
    notes.append(f"the brief holds a minimum at a retailer: at least {said} of the ads (the "
                 "plan's retailer minimums; an edit changes or lifts them)")  # fmt: skip
    return mins, notes, errors
