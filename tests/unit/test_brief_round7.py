"""Misreads of a general month's briefs (unseen59, read after it was scored blind): an aside
about last year in a sentence that asks ("$40k/week ... starting March 1st (last year we spent
$310k over the same window)" lost its flight), money already spent at a retailer ("$400k is
already committed to Alpha Mart's holiday takeover - plan the rest" planned Alpha Mart), a
month before "home" ("their January home event" was refused as a retailer), a price ("avg CPM
$11" was the budget), a past recap, cap words ("shouldn't go above"), "Experiment budget:
none", "hold $180k back for", "max eff", and "both our retailers"."""

from __future__ import annotations

from datetime import date

import pytest

from tools.brief import parse_brief_rules
from tools.brief.spans import candidates

TODAY = date(2026, 12, 7)


def test_an_aside_about_last_year_leaves_the_sentence_its_flight() -> None:
    text = ("For the spring push we've got $30k/week for 8 weeks starting Monday March 1st, 2027 "
            "(last year we spent $200k over the same window). Delta Home only.")  # fmt: skip
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.flight_start) == (240_000, date(2027, 3, 1))


def test_a_retailer_of_money_spent_elsewhere_is_no_ask() -> None:
    text = ("Acme H1: $2M total, but $300k is already committed to Alpha Mart's holiday "
            "takeover - plan the rest\nRetailers for this plan: Beta and Delta")  # fmt: skip
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, sorted(b.retailers)) == (1_700_000, ["beta", "delta"])


def test_money_booked_with_a_retailer_for_a_month_event() -> None:
    text = ("The envelope for Q1 2027 is $2M. Of that, $500k was already booked with Delta Home "
            "for their January home event, so please plan the remaining money across Alpha Mart "
            "and Beta Grocers.")  # fmt: skip
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, sorted(b.retailers)) == (1_500_000, ["alpha", "beta"])


def test_a_price_is_no_budget() -> None:
    text = ("Context: 2026 spend was $2M at 3.0 ROAS; avg CPM $12; Delta has 200 stores.\n"
            "Ask: $1.5M for calendar 2027, both retailers, no more than $600k at Delta.")
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.retailer_caps) == (1_500_000, {"delta": 600_000})
    assert b.resolved_retailers() == ["alpha", "delta"]
    assert "$12" not in candidates(text, "initech", TODAY).options("budget")


def test_a_past_recap_and_cap_words() -> None:
    text = ("Attached is last year's recap ($1.1M, 2.7 ROAS). For Apr 5 - May 9, 2027 we're "
            "approved for $500k. Delta Home is committed to at least $100k under our JBP; Alpha "
            "Mart shouldn't go above $300k. 2.4 ROAS floor.")  # fmt: skip
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, b.roas_floor) == (500_000, 2.4)
    assert (b.retailer_caps, b.retailer_mins) == ({"alpha": 300_000}, {"delta": 100_000})


@pytest.mark.parametrize(
    ("text", "brand", "field", "value"),
    [
        ("$320k per month for Feb-Mar 2027 at Alpha Mart and Gamma Pharmacy. Experiment budget: "
         "none - every dollar working.", "globex", "experiment_reserve", 0.0),
        ("Q2 2027 budget is $1M for Beta Grocers and Delta Home. Please hold $150k back for "
         "incrementality testing.", "acme", "experiment_reserve", 0.15),
        ("600k alpha/delta, max eff, keep oos in", "initech", "objective", "roas"),
    ],
)
def test_said_in_shorthand(text: str, brand: str, field: str, value: object) -> None:
    assert getattr(parse_brief_rules(text, brand, TODAY), field) == value


def test_both_our_retailers_plans_both_beside_a_remark_about_one() -> None:
    text = ("$1.2M total, but $300k of it already went to the holiday push at Alpha in December. "
            "Plan the remaining amount for January across both our retailers. The Gamma Rx JBP "
            "commits us to at least $400k there.")  # fmt: skip
    b = parse_brief_rules(text, "globex", TODAY)
    assert b.total_budget == 900_000 and b.resolved_retailers() == ["alpha", "gamma"]
