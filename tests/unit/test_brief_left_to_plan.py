"""A brief that plans what is left of a total once some of it went elsewhere ("$250k of that is
already committed to a TV flight, so plan the rest") is planned at what is left, not at the
whole envelope (yh03, yh10, yh22 of unseen52 each planned the envelope)."""

from __future__ import annotations

from datetime import date

import pytest

from tools.brief import parse_brief_rules

TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("text", "brand", "budget"),
    [
        ("Globex: total $1.5 mil for the quarter (Q2 2027), but $250k of that is already "
         "committed to a TV flight, so plan the rest on retail. Gamma only.", "globex", 1_250_000),
        ("Brand: Initech\nTotal 2027 spring marketing envelope: $2,000,000\nAlready committed to "
         "TV out of that envelope: $400,000\nRetail media budget: the remainder (envelope minus "
         "TV)\nRetailers: Alpha, Delta", "initech", 1_600_000),
        ("Total FY27 marketing budget: $5M\nSpent to date on TV/OLV (from that total): $3.8M\n"
         "Retail media budget: whatever is left of the $5M after TV/OLV\nRetailers: AlphaMart, "
         "Gamma Rx", "globex", 1_200_000),
        # "the remaining amount", "already went", "earmarked for paid search" (yj06, yj15 of
        # unseen54, yk06 of unseen55)
        ("$2M total for this, but $500k of it already went out the door on the holiday push at "
         "Alpha in December. Plan the remaining amount for January across both our retailers.",
         "globex", 1_500_000),
        ("The total envelope is $1.0M, of which $250k is earmarked for paid search (not retail "
         "media). Please plan the remaining amount at Alpha Mart and Delta Home. Hold $75,000 of "
         "it for experiments.", "initech", 750_000),
        ("Budget: $2,000,000 total, but $500k of that is already earmarked for national TV. Plan "
         "the remaining amount.\nRetailers: Alpha only", "globex", 1_500_000),
        # "is going to the brand TV flight", "plan the remaining for retail media" (yl07, yl25
        # of unseen56)
        ("Our total Q2 marketing budget is $2M. Of that, $500k is going to the brand TV flight, "
         "so please plan the remaining amount for retail media across all our retailers.",
         "initech", 1_500_000),
        ("Acme spring: total media pot is $1.2M; $300k of that is already committed to national "
         "search, so plan the remaining for retail media across all our retailers.", "acme",
         900_000),
    ],
)  # fmt: skip
def test_the_budget_is_what_is_left_of_the_total(text: str, brand: str, budget: float) -> None:
    brief = parse_brief_rules(text, brand, TODAY)
    assert brief.total_budget == budget
    if "$75,000" in text:
        assert brief.experiment_reserve == 0.1  # of what is left
    assert any(w.startswith("the budget is what is left to plan") for w in brief.warnings)


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        # what is left, stated (wa28 of unseen42)
        ("We have 2M total but 300k of that is already committed to TV, so plan the remaining "
         "$1.7M on Delta Home.", 1_700_000),
        # the rest of a split is no subtraction
        ("Acme $1M: $400k on Alpha Mart, the rest on Beta Grocers.", 1_000_000),
        # nothing went elsewhere
        ("Acme has $900k; plan the rest of the year's retail media on Alpha and Beta.", 900_000),
    ],
)  # fmt: skip
def test_other_briefs_keep_their_budget(text: str, budget: float) -> None:
    assert parse_brief_rules(text, "acme", TODAY).total_budget == budget
