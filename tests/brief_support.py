"""What the brief tests share: the day the briefs are written, the README's brief, and the
rules path as the tests call it."""

from __future__ import annotations

from datetime import date

from tools.brief import StructuredBrief, parse_brief_rules

TODAY = date(2026, 11, 23)  # a Monday
SPEC_BRIEF = (
    "Allocate $2.5M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments"
)


def rules(text: str, brand: str = "acme", today: date = TODAY) -> StructuredBrief:
    return parse_brief_rules(text, brand, today)
