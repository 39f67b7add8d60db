"""Fields said the way forms, lists and plain speech say them: a floor as what every dollar must
bring back, a list's numbers, a holdout given as an amount after its label, a cap in a table's
row (misses of unseen54 and unseen55, briefs written blind)."""

from __future__ import annotations

from datetime import date

import pytest

from tools.brief import parse_brief_rules
from tools.brief.spans import candidates

TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("said", "floor"),
    [
        ("Threshold: we need every dollar to bring back three.", 3.0),
        ("On performance, we need every dollar to bring back at least two and a half.", 2.5),
        ("Every ad dollar should return at least $4.", 4.0),
    ],
)
def test_a_floor_said_as_what_every_dollar_brings_back(said: str, floor: float) -> None:
    brief = parse_brief_rules(f"Initech, $600k across Alpha and Delta. {said}", "initech", TODAY)
    assert brief.roas_floor == floor


def test_a_lists_numbers_are_no_floor() -> None:
    """"3. Goal: maximize ROAS\\n4. Gamma Rx cap: $400k" read a floor of 4 (yk02 of unseen55)."""
    text = ("Globex plan request\n1. Budget: $1.2M\n2. Retailers: all of ours\n3. Goal: maximize "
            "ROAS\n4. Gamma Rx cap: $400k\n5. No holdout this time")  # fmt: skip
    brief = parse_brief_rules(text, "globex", TODAY)
    assert brief.roas_floor is None and brief.objective == "roas"
    assert "4" not in candidates(text, "globex", TODAY).options("floor")


@pytest.mark.parametrize(
    ("said", "reserve"), [("Holdout: $68k.", 0.08), ("holdout 42.5k", 0.05)]
)
def test_a_holdout_given_as_an_amount_after_its_label(said: str, reserve: float) -> None:
    brief = parse_brief_rules(f"Globex $850k across Alpha and Gamma. {said}", "globex", TODAY)
    assert brief.experiment_reserve == reserve


def test_a_cap_in_a_tables_row() -> None:
    text = ("Brand X brief\n| item | value |\n|---|---|\n| budget | $750,000 |\n| retailers | "
            "Alpha, Beta, Gamma |\n| Beta max | $150,000 |\n| holdout | 10% |")  # fmt: skip
    assert parse_brief_rules(text, "brand_x", TODAY).retailer_caps == {"beta": 150_000}


def test_a_retailers_limit_is_no_budget_option_beside_a_budget() -> None:
    """The adapter planned "at least $400,000" at Alpha as the budget of a 2.5M brief (yj04 of
    unseen54); where a limit is the only amount, it stays the budget's one option."""
    text = ("Alpha Mart | IN | upfront signed: we must spend at least $400,000 here\n"
            "Gamma Pharmacy | IN | spend no more than $200,000 here\nTotal budget: 2.5M USD.")
    assert candidates(text, "brand_x", TODAY).options("budget") == ["2.5M USD"]
    alone = candidates("At least $1M across Alpha and Beta.", "acme", TODAY)
    assert alone.options("budget") == ["$1M"]


@pytest.mark.parametrize(
    ("said", "exclude"),
    [
        # a form's answer to "include?" (yl04 of unseen56 included them)
        ("Include out-of-stock items: No", True),
        ("| Out-of-stock items | Include |", False),
        ("OOS products: include them", False),
    ],
)
def test_a_forms_out_of_stock_answer(said: str, exclude: bool) -> None:
    text = f"Initech\nBudget: $800,000\nRetailer: Delta Home\n{said}"
    assert parse_brief_rules(text, "initech", TODAY).exclude_oos is exclude


def test_a_weekly_budget_beside_a_cap_and_a_holdout_held_for_a_test() -> None:
    """"$75k per week over the 4-week flight ... Alpha at no more than $200k ... $15k of the
    budget is held for a geo holdout" planned $15,000 (yl22 of unseen56)."""
    brief = parse_brief_rules(
        "For Valentine's we're running $75k per week over the 4-week flight, January 18 to "
        "February 14, 2027, at Alpha and Gamma. Keep Alpha at no more than $200k total for this "
        "flight. $15k of the budget is held for a geo holdout.", "globex", TODAY,
    )  # fmt: skip
    assert brief.total_budget == 300_000 and brief.experiment_reserve == 0.05
    assert brief.retailer_caps == {"alpha": 200_000}


@pytest.mark.parametrize(
    ("text", "brand", "mins", "budget"),
    [
        # an upfront's or a JBP's amount is a commitment (ym13, ym21 of unseen57)
        ("Acme full-year 2027 plan: $2.4M. We have an upfront with Alpha Mart for $600k that we "
         "must honor.", "acme", {"alpha": 600_000}, 2_400_000),
        ("Acme: $80k/week, 10-week flight Feb 1 - Apr 11 2027. Alpha JBP commit is $200k.",
         "acme", {"alpha": 200_000}, 800_000),
        # a cap's words beside a JBP keep it a cap
        ("Globex plan: $900k across Alpha and Gamma. Our JBP: at Gamma we have to spend at least "
         "$200k, but no more than $500k at Gamma.", "globex", {"gamma": 200_000}, 900_000),
    ],
)  # fmt: skip
def test_a_jbps_or_upfronts_amount_is_a_minimum(
    text: str, brand: str, mins: dict, budget: float
) -> None:
    brief = parse_brief_rules(text, brand, TODAY)
    assert brief.retailer_mins == mins and brief.total_budget == budget


def test_not_use_leaves_a_retailer_out() -> None:
    """"Please not use Gamma Pharmacy" planned Gamma alone (ym20 of unseen57)."""
    brief = parse_brief_rules("Dear team, brand_x budget is 2 millions USD for second quarter "
                              "2027. Please not use Gamma Pharmacy.", "brand_x", TODAY)  # fmt: skip
    assert brief.retailers == ["alpha", "beta"]
