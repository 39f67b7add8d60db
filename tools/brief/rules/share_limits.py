"""Limits at a retailer given as a share of the budget: "Gamma shouldn't get more than 40% of
the total budget", "cap Alpha at 70% of budget", "Alpha must get at least 30% of budget",
"Delta: max 40% of budget", "Beta can't take more than a third of the total".

The rules read caps and minimums in dollars only (`limits`), so these were lost: 20 of the 120
briefs of `unseen65` to `unseen68` planned with no cap or minimum where the brief set one as a
share. A share needs the budget, so it is found here first (its span kept off the split and the
reserve) and turned into an amount once the budget is known (`ShareLimit.as_money`), marked
"cap" or "min" like a limit in dollars: `limits.read_caps` and `read_mins` place it on its
retailer and check it the same way ("Gamma needs at least 20% of the budget" on a $2.5M brief
is a $500k minimum at Gamma).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.brief.rules.money import (
    Mention,
    Money,
    cap_words,
    each_retailer,
    minimum_words,
    sentence_of,
)
from tools.brief.rules.reserve import HALF_SHARE, PERCENT, told_as_reserve

Span = tuple[int, int]

# A share: "40%", "35 percent", "a third", "one quarter", "half" (of the total).
_SHARE = re.compile(
    PERCENT.pattern
    + r"|(?<![\w-])(?:a|an|one|1)[\s-]+(?P<word>fifth|quarter|third)\b|"
    + HALF_SHARE
)
_WORDS = {"fifth": 0.2, "quarter": 0.25, "third": 1 / 3}
# A share of something else than the budget: "no more than 20% below last year's ROAS", "at
# least 30% of sales from new items", "CPMs up to 40% higher".
_NOT_OF_BUDGET = re.compile(
    r"\s*(?:roas|return|lift|growth|off|discount|higher|lower|more|less|increase|decrease|above"
    r"|below|over|under|of\s+(?:the\s+)?(?:sales|revenue|margin|traffic|inventory|units|impressions"
    r"|shoppers|customers|audience))\b"
)


@dataclass(frozen=True)
class ShareLimit:
    """A cap ("cap") or a minimum ("min") at a retailer, as a share of the budget."""

    kind: str
    share: float
    span: Span

    def as_money(self, budget: float) -> Money:
        """The limit in dollars of `budget`, for `limits.read_caps` / `read_mins`."""
        return Money(round(self.share * budget, 2), self.span, self.kind)


def _share(m: re.Match[str]) -> float:
    if m.group("num"):
        return float(m.group("num")) / 100
    return _WORDS[m.group("word")] if m.group("word") else 0.5


def read_share_limits(low: str, mentions: list[Mention], skip: list[Span]) -> list[ShareLimit]:
    """The caps and minimums the brief gives as shares of its budget: a share (below 100%) with
    a cap's or a minimum's words around it, in a sentence that names a retailer or says "each
    retailer"; not a reserve ("at least 10% for tests"), not a share of something else, and not
    in `skip` (what the brief reports of the past, its ROAS floors)."""
    found: list[ShareLimit] = []
    for m in _SHARE.finditer(low):
        s, e = m.span()
        share = _share(m)
        if not 0 < share < 1 or any(a <= s < b for a, b in skip):
            continue
        lo, hi = sentence_of(low, s)
        # Reserve words in its own sentence only: "Gamma can take at most 60%. 10% reserve."
        if told_as_reserve(low[lo:hi], s - lo, e - lo) or _NOT_OF_BUDGET.match(low, e):
            continue
        # A minimum's words first, as `money.read_money` weighs them ("can't dip under 20%").
        kind = "min" if minimum_words(low, s, e) else "cap" if cap_words(low, s, e) else None
        named = any(lo <= r[0] < hi for r in mentions)
        if kind and (named or each_retailer(low, s, e)):
            found.append(ShareLimit(kind, share, (s, e)))
    return found
