"""Amounts a brief replaces or that are no spend: a correction that names the old amount by
its bare figure ("budget is $450k not 500"), and prices ("avg CPM $11")."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.brief.rules.money import Money

# A price, not spend: "avg CPM $11", "hero SKU price $24.99", "average basket is $42".
PRICE_BEFORE = re.compile(
    r"\b(?:cpm|cpc|cpa|cpv|cpcs|cpms|prices?|priced at|retails? (?:at|for)|msrp|srp|aov|basket"
    r"(?: size)?|order value)\s*"
    # "category CPMs at Beta running ~$11" was the budget of a $360k brief (yq08 of unseen61)
    r"(?:(?:at|on|for)\s+[\w']+(?:\s+(?:mart|grocers|home|pharmacy|rx))?\s+)?"
    # "Alpha's CPMs run $8-12" read $8 as the budget (yp15 of unseen60)
    r"(?:(?:are|is|were|was)\s+)?(?:(?:run|runs|running|came in|coming in|sits?|sitting|"
    r"averages?|averaging|hovers?|hovering)\s+)?"
    r"(?:is|of|:|=|~|at|around|about|avg|average)?\s*(?:~\s*)?$"
)
# An amount in cents under $100 ("$0.85", "$9.50", a CPM column's "$8.20"): a price, a CPC
# or a CPM, never a budget, however the brief says it. "CPCs have been running around $0.85"
# was the budget of a $1.2M brief (yu21 of unseen65, rules and model alike).
_CENTS = re.compile(r"\d*\.\d{2}")
UNIT_PRICE_LIMIT = 100.0


def unit_price(number: str, scale: str | None, value: float) -> bool:
    """Whether an amount of money, as written (`number`, its `scale` word), is a unit price."""
    return not scale and bool(_CENTS.fullmatch(number)) and value < UNIT_PRICE_LIMIT


# A correction that names the amount it replaces by its bare figure: "finance came back,
# budget is $450k not 500" (yl03 of unseen56 planned the $500k said earlier).
_NOT_BARE = re.compile(
    r"\s*,?\s*(?:and\s+)?not\s+(?:the\s+)?(\d+(?:\.\d+)?)(?![\d%x$]|[.,]\d|\s*(?:k|m|mm|bn?|"
    r"mil\w*|million|thousand|billion|percent|x|%|stores?|skus?|units?|days?|weeks?|months?)\b)"
)


def replaced_by_bare_figures(low: str, found: list[Money]) -> None:
    """Marks as replaced the amounts a correction names by a bare figure ("$450k not 500":
    $500k, $500 or $500M said elsewhere), and the correction as one."""
    for money in found:
        said = _NOT_BARE.match(low, money.span[1])
        if said is None or money.kind != "budget":
            continue
        figure = float(said.group(1))
        for other in found:
            if other is not money and other.kind == "budget" and any(
                math.isclose(other.value, figure * unit) for unit in (1.0, 1e3, 1e6)
            ):
                other.kind, other.why = "superseded", "an earlier amount it replaces"
                money.correction = True


