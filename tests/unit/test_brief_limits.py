"""A brief's caps and minimums at a retailer limit what it gets, and a retailer named in passing
(a fact about it, a lapsed deal) is no ask: beside "all retailers" neither narrows the plan to
the retailers they name, and no limit stands for the experiment reserve, in the rules' reading
and in the grammar the model reads the brief under (`tools.brief.spans`). Each case is a miss of
unseen50 to unseen53 (briefs with minimums and caps, written blind) or an older set."""

from __future__ import annotations

from datetime import date

import pytest

from tools.brief import parse_brief_rules
from tools.brief.spans import candidates, convert, span_decode_schema

TODAY = date(2026, 12, 7)

IN_PASSING = [
    # yf05 of unseen50 planned Beta and Delta alone
    ("Budget 900K for Acme, all retailers. Floor of $80k at Delta (that's the upfront we "
     "signed). No more than $150k at Beta. Objective: incremental revenue.", "acme"),
    # yf12 of unseen50 planned Alpha Mart alone
    ("Please allocate $3,000,000 for brand_x across all retail partners. As part of our annual "
     "commitment with Alpha Mart, spend there should be at least $750,000.", "brand_x"),
    # w08 of unseen3, a cap
    ("Acme H1 plan: $3.5M total at all our retailers, but cap Delta at $500k. Maximize return "
     "on ad spend.", "acme"),
    # context, not an ask (yi23, yi21, yi09 of unseen53)
    ("The budget is $750,000, across all our retailers. For colour: Delta's average basket is "
     "$130 and we carry 85 SKUs there.", "initech"),
    ("Acme Q1: Budget $1.0M. Retailers: all of ours. Note: our 2026 JBP with Beta expired and "
     "has not been renewed.", "acme"),
    ("acme 1.2mm, all three retailers. beta JBP this year? $400k minimum at Beta.", "acme"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "brand"), IN_PASSING)
def test_all_retailers_stays_all_beside_retailers_named_in_passing(text: str, brand: str) -> None:
    brief = parse_brief_rules(text, brand, TODAY)
    assert brief.retailers == []  # every retailer the brand sells through
    assert any(w.startswith("the brief says all retailers: planned every one")
               for w in brief.warnings)  # fmt: skip


@pytest.mark.parametrize(("text", "brand"), IN_PASSING)
def test_the_model_is_not_offered_a_retailer_named_in_passing(text: str, brand: str) -> None:
    cands = candidates(text, brand, TODAY)
    assert cands.options("retailers") == []
    answer = {"budget": cands.options("budget")[0], "retailers": {}, "objective": None,
              "floor": None, "reserve": None, "flight": None, "stock": None}  # fmt: skip
    assert convert(answer, cands)["retailers"] == []


def test_a_limit_beside_all_retailers_is_kept() -> None:
    brief = parse_brief_rules(IN_PASSING[0][0], "acme", TODAY)
    assert brief.retailer_caps == {"beta": 150_000} and brief.retailer_mins == {"delta": 80_000}


@pytest.mark.parametrize(
    ("text", "retailers"),
    [
        # words keep the named ones in
        ("Acme: $1M across all retailers, but only Alpha and Beta this time. Beta min $200k.",
         ["alpha", "beta"]),
        # without "all retailers", a minimum's retailer is planned beside the named ones
        ("Acme: plan $1M on Alpha. Beta needs at least $200k (JBP).", ["alpha", "beta"]),
        # "everything else stands" is no "all retailers" (p04 of unseen10, q09 of unseen11)
        ("Budget $400k, Delta Home only, margin focus. Correction: the budget is $450k. "
         "Everything else stands.", ["delta"]),
        ("Plan $1.5M on Beta Grocers. Correction from finance: add Delta Home. Everything else "
         "stands.", ["beta", "delta"]),
        # "across the board" is a limit's scope (ye26 of unseen49)
        ("acme - $250k total at beta grocers and delta home. max CPC $1.50 across the board.",
         ["beta", "delta"]),
    ],
)  # fmt: skip
def test_named_retailers_still_narrow_the_plan(text: str, retailers: list[str]) -> None:
    assert parse_brief_rules(text, "acme", TODAY).retailers == retailers
    assert candidates(text, "acme", TODAY).options("retailers")


def test_a_caps_amount_is_no_reserve_option_for_the_model() -> None:
    """The adapter chose "Beta: capped at $400k" as the reserve (27% of $1.5M: yg09 of
    unseen51; yf05 of unseen50 alike)."""
    text = ("Acme Q2 brief:\n• Total: $1.5M\n• Networks: Alpha, Beta, Delta\n• Beta: capped at "
            "$400k\n• Keep $75k for tests")  # fmt: skip
    cands = candidates(text, "acme", TODAY)
    assert "$400k" not in cands.options("budget")  # nor the budget beside one (yj04)
    assert "$400k" not in cands.options("reserve") and "$75k" in cands.options("reserve")


def test_a_rate_is_no_reserve_beside_a_total() -> None:
    """A rate beside a total budget is never its reserve: "$50/day" was the reserve of a $400K
    brief (yg02 of unseen51; that one, a network's minimum per campaign, is not offered at all
    now)."""
    text = "Globex: $400K on Alpha + Gamma for Q1. Gamma gets $2k per week on search."
    cands = candidates(text, "globex", TODAY)
    schema = span_decode_schema(cands)
    assert schema is not None
    branches = {b["properties"]["budget"]["enum"][0]: b["properties"] for b in schema["anyOf"]}
    assert branches["$400K"]["reserve"]["enum"] == [None]
    network = candidates("need a plan for $400K on Alpha + Gamma Rx. heads up: Gamma requires a "
                         "$50/day minimum per campaign.", "globex", TODAY)  # fmt: skip
    assert network.options("budget") == ["$400K"] and network.options("reserve") == []


def test_a_competitors_commitment_is_no_budget() -> None:
    """The adapter planned a competitor's "$1M to Gamma Pharmacy" (yg06 of unseen51)."""
    text = ("We heard a competitor committed $1M to Gamma Pharmacy this year — we're not matching "
            "that. Our budget is $600k, Alpha + Gamma, maximize ROAS.")  # fmt: skip
    assert candidates(text, "globex", TODAY).options("budget") == ["$600k"]
    assert parse_brief_rules(text, "globex", TODAY).total_budget == 600_000


@pytest.mark.parametrize(
    ("text", "brand", "caps"),
    [
        # the retailer named before its cap's words (yh26, yh10 of unseen52)
        ("Budget $1.6M, Alpha and Gamma. Gamma cap: $600k.", "globex", {"gamma": 600_000}),
        # the only retailer of its sentence (yi02 of unseen53, yh18 of unseen52)
        ("Budget is $600k, Alpha Mart + Gamma Rx. Also Gamma won't take more than $150k from "
         "us this flight, so cap them there.", "globex", {"gamma": 150_000}),
        ("Globex plan: $900k across Alpha and Gamma, Feb-Mar 2027. At Gamma we have to spend at "
         "least $200k (upfront), but no more than $500k. Alpha has a $10/day per-line-item "
         "minimum on its platform.", "globex", {"gamma": 500_000}),
        # "don't exceed" (yh08 of unseen52)
        ("We have $2.2M across Alpha, Beta and Gamma. Beta: don't exceed $400k.", "brand_x",
         {"beta": 400_000}),
    ],
)  # fmt: skip
def test_a_cap_is_read_at_the_retailer_it_is_said_of(text: str, brand: str, caps: dict) -> None:
    assert parse_brief_rules(text, brand, TODAY).retailer_caps == caps


@pytest.mark.parametrize(
    "text",
    [
        # yh14 of unseen52, yi11 of unseen53: read as minimums at Alpha
        "Budget $320k on Alpha Mart. Alpha's min per campaign is $2,500 (platform rule).",
        "Budget is $2M across Alpha and Delta. Alpha's daily minimum per campaign is $1,000.",
        "Budget 450k, all our retailers. Alpha charges a $5k per-campaign minimum.",
    ],
)
def test_a_networks_own_minimum_per_campaign_is_no_minimum_and_no_amount_of_the_plan(
    text: str,
) -> None:
    assert parse_brief_rules(text, "initech", TODAY).retailer_mins == {}
    cands = candidates(text, "initech", TODAY)
    assert len(cands.options("budget")) == 1  # the budget alone: no reserve, no second budget


def test_a_rate_per_campaign_is_no_budget_option() -> None:
    """The adapter planned "Beta's platform min is $100/day per campaign" over the flight: an
    $8,900 budget (yh09 of unseen52)."""
    text = ("acme - $750k, Beta + Delta, Feb 1 to Apr 30, 2027. note Beta's platform min is "
            "$100/day per campaign. keep 12% for holdouts")  # fmt: skip
    assert candidates(text, "acme", TODAY).options("budget") == ["$750k"]


def test_prices_and_past_results_are_no_floor_options() -> None:
    text = ("Initech: retail media budget $1.6M, Alpha and Delta. Min ROAS: 3.0. Notes: hero SKU "
            "price $24.99; avg CPM $9.50; our past ROAS on alpha was 5.1 fwiw.")  # fmt: skip
    assert candidates(text, "initech", TODAY).options("floor") == ["3.0"]
    # an amount said as a return stays one (u16 of unseen, ya42 of unseen44)
    for said, number in [("At least $3 back per $1 spent.", "3"),
                         ("we'd want at least 3 dollars back per dollar.", "3"),
                         ("anything under $2.80 return per $1 is a no-go.", "2.80")]:  # fmt: skip
        floor = candidates(f"Globex $600k on Gamma. {said}", "globex", TODAY)
        assert number in floor.options("floor")
