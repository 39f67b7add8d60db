"""Round 6 of what the rules read and the model is offered, from the misses of `unseen63` to
`unseen68` left after round 5: a correction right after a cap corrects the cap, not the
budget; a goal the brief switches is not offered; what the past reports ("Holiday '26 we
spent", "Last year we put", a table under "here's what we spent last year:") is no budget, no
floor and no goal; the "$3" and "$1" of a floor's "$3 back for every $1" are no amounts;
"sales" of a meeting or of a forecast is no goal. The texts are written for the tests."""

from __future__ import annotations

from datetime import date

from tools.brief import parse_brief_rules
from tools.brief.spans import candidates

TODAY = date(2026, 12, 7)


def test_a_correction_after_a_cap_corrects_the_cap() -> None:
    text = ("Initech winter plan\nBudget: $750K\nDates: Jan 18 through end of March 2027\n"
            "Retailers: Alpha Mart, Delta Home\nConstraints: Alpha cap $250K - sorry, make that "
            "$300K. Delta at least $200K.")  # fmt: skip
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.retailer_caps) == (750_000, {"alpha": 300_000})
    options = candidates(text, "initech", TODAY).options("budget")
    assert "$750K" in options and "$300K" not in options and "$250K" not in options


def test_a_cap_corrected_on_the_next_line_of_a_chat() -> None:
    text = ("Ella: budget for H2 2027 is $1.2 million, all three retailers\n"
            "Ella: $60k for holdout\nRaj: any caps?\nElla: cap Gamma at 100k\n"
            "Ella: hmm, make that 150k, new placements")
    b = parse_brief_rules(text, "brand_x", TODAY)
    assert (b.total_budget, b.retailer_caps) == (1_200_000, {"gamma": 150_000})
    assert b.experiment_reserve == 0.05


def test_a_goal_switched_later_is_the_only_goal_offered() -> None:
    text = ("Acme summer, May 1 - Aug 31 2027, $1.05MM on Beta and Delta. Goal: ROAS, with a 3x "
            "floor.\n\nUPDATE: we're switching the goal to incremental margin. Keep the floor.")
    assert parse_brief_rules(text, "acme", TODAY).objective == "incremental_margin"
    assert set(candidates(text, "acme", TODAY).objectives.values()) == {"incremental_margin"}


def test_spend_of_a_past_year_written_with_an_apostrophe_is_no_budget() -> None:
    text = ("Acme is planning $250K in November 2027 and $350K in December across all three "
            "retailers. Margin.\n\nP.S. Holiday '26 we spent $540K and got 3.3x.")  # fmt: skip
    assert parse_brief_rules(text, "acme", TODAY).total_budget == 600_000
    assert "$540K" not in candidates(text, "acme", TODAY).options("budget")


def test_money_put_in_last_year_is_no_budget() -> None:
    text = ("Last year we put $1.4M into Delta Home alone. For H1 2027 Initech has $900k for "
            "Alpha Mart and Delta Home.")  # fmt: skip
    assert "$1.4M" not in candidates(text, "initech", TODAY).options("budget")
    put_now = "Put $500k on Alpha Mart in March 2027, same as last year."
    assert parse_brief_rules(put_now, "initech", TODAY).total_budget == 500_000


def test_the_amounts_of_a_return_per_dollar_are_not_offered() -> None:
    text = ("Globex Q2 2027 is $75k/mo on Alpha and Gamma. We need to make at least $3 back for "
            "every $1 we put in. Carve out $11.25k for a holdout cell.")  # fmt: skip
    cands = candidates(text, "globex", TODAY)
    assert "$1" not in cands.money and "$3" not in cands.money
    assert cands.floors == {"3": 3.0}


def test_sales_of_a_meeting_or_a_forecast_is_no_goal() -> None:
    text = ("Initech always-on, dates after the sales meeting. We're forecasting $4M in sales at "
            "Delta. Budget $60K on Alpha Mart and Delta. Optimize for ROAS.")  # fmt: skip
    assert candidates(text, "initech", TODAY).objectives == {"ROAS": "roas"}
    assert parse_brief_rules(text, "initech", TODAY).objective == "roas"


def test_a_table_under_a_line_about_last_year_is_the_past() -> None:
    text = ("For context, here's what we spent last year:\n\nRetailer | 2026 spend | ROAS\n"
            "Alpha Mart | $610,000 | 3.1\nDelta Home | $390,000 | 2.4\n\nFor April 15 - July 14, "
            "2027 the budget is 1.2 million USD, same two retailers, optimizing for GMV. "
            "Minimum ROAS 2.0.")  # fmt: skip
    cands = candidates(text, "initech", TODAY)
    assert cands.floors == {"2.0": 2.0}
    assert set(cands.objectives.values()) == {"incremental_revenue"}
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.roas_floor) == (1_200_000, 2.0)


def test_a_table_of_limits_after_a_paragraph_that_mentions_the_past_is_not_the_past() -> None:
    text = ("Acme 2027: $3M across all our retailers. Prior year spend was $2.7M. 5% for "
            "experiments.\n\n| Retailer | Constraint |\n|---|---|\n| Beta Grocers | max $500K |")
    assert parse_brief_rules(text, "acme", TODAY).retailer_caps == {"beta": 500_000}


def test_a_count_of_requests_is_no_floor() -> None:
    text = ("Splitting these into two requests. For Brand X: $1.6M, Jan 15 - Apr 15 2027, "
            "everything but Beta, minimum ROAS 3.0.")  # fmt: skip
    assert candidates(text, "brand_x", TODAY).floors == {"3.0": 3.0}
