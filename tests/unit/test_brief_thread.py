"""Briefs that correct themselves: a reply above (or below) an earlier request it quotes or
forwards takes each field from the reply where the reply says it, else from the earlier
request (yj05, yj20, yj26 of unseen54 planned the earlier request's flight, retailer and
floor); a correction that names the replaced amount by a bare figure ("$450k not 500", yl03 of
unseen56); a holdout corrected in dollars (yk30 of unseen55 planned the holdout as the budget);
a commitment said after its amount ("a $150k upfront commitment", yk23 of unseen55)."""

from __future__ import annotations

from datetime import date

import pytest

from tools.brief import BriefError, parse_brief_rules
from tools.brief.rules.thread import split_thread
from tools.brief.spans import candidates, span_json_schema

TODAY = date(2026, 12, 7)

FORWARDED = (
    "New plan, this replaces my earlier note.\n\nPlan $800k on Alpha Mart and Delta Home only. "
    "Optimize for revenue. No test cell this time. Flight is April 2027.\n\n"
    "---------- Forwarded message ----------\nFrom: Lee\nSubject: Q2\n"
    "> Please plan $1.4M across all our retailers for Q2, optimizing for margin. Keep 12% for "
    "experiments. Remember the Beta JBP minimum of $250k."
)


def test_a_reply_above_a_forwarded_request_wins_field_by_field() -> None:
    b = parse_brief_rules(FORWARDED, "acme", TODAY)
    assert b.total_budget == 800_000
    assert sorted(b.retailers) == ["alpha", "delta"]
    assert b.objective == "incremental_revenue"
    assert b.experiment_reserve == 0.0
    assert (b.flight_start, b.flight_end) == (date(2027, 4, 1), date(2027, 4, 30))
    assert b.retailer_mins == {}  # Beta is no longer planned
    assert b.warnings[0].startswith("the brief revises an earlier request below it")


def test_scratching_a_retailer_of_the_request_below_keeps_the_rest_of_it() -> None:
    text = (
        "Scratch the Delta part of the request below - just Alpha Mart and Beta Grocers now, "
        "and the budget drops to $700k. The Beta upfront commitment is $200k minimum. "
        "Everything else in the original request stands.\n\n"
        "> From: Sam\n> Please plan $1M across Alpha, Beta and Delta for Q3 2027, maximizing "
        "revenue. Delta JBP minimum is $150k."
    )
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, sorted(b.retailers)) == (700_000, ["alpha", "beta"])
    assert b.objective == "incremental_revenue"
    assert (b.flight_start, b.flight_end) == (date(2027, 7, 1), date(2027, 9, 30))
    assert b.retailer_mins == {"beta": 200_000}


def test_a_reply_drops_the_floor_and_leaves_the_earlier_retailers_and_flight() -> None:
    text = (
        "Per the VP: drop the ROAS floor, and the objective is now revenue. Budget stays at "
        "$900k, and the Alpha cap of $250k still applies. Everything else as below.\n\n"
        "> Earlier request:\n> $900k across Alpha Mart and Gamma Rx, optimize for margin, ROAS "
        "floor 2.8, cap Alpha at $250k, flight from March through May 2027."
    )
    b = parse_brief_rules(text, "globex", TODAY)
    assert (b.roas_floor, b.objective) == (None, "incremental_revenue")
    assert sorted(b.retailers or ["alpha", "gamma"]) == ["alpha", "gamma"]
    assert (b.flight_start, b.flight_end) == (date(2027, 3, 1), date(2027, 5, 31))
    assert b.retailer_caps == {"alpha": 250_000}


def test_a_reply_below_the_quote_adds_a_retailer_and_lifts_the_floor() -> None:
    text = (
        "Fwd: Globex spring\n\n> Original: $1.3M, Alpha Mart only, revenue, ROAS 2.4+, "
        "March 2027.\n\nUpdate: add Gamma Pharmacy too, same total budget. Also lift the floor "
        "to 2.9."
    )
    b = parse_brief_rules(text, "globex", TODAY)
    assert b.total_budget == 1_300_000 and b.roas_floor == 2.9
    assert sorted(b.retailers or ["alpha", "gamma"]) == ["alpha", "gamma"]
    assert b.flight_start == date(2027, 3, 1)


@pytest.mark.parametrize(
    ("reply", "retailers", "flight_start"),
    [
        # "this year" in passing keeps the quoted flight (r20 of unseen12 planned December)
        ("Correction: Delta only - Alpha is handled by another team this year. Rest stands.",
         ["delta"], date(2027, 6, 1)),
        # "Everything else as above" is no "all retailers" (p45 of unseen10 planned all)
        ("Update from finance: the budget is $750k now. Everything else as above.",
         ["alpha", "delta"], date(2027, 6, 1)),
    ],
)
def test_what_a_reply_says_in_passing_leaves_the_quote(
    reply: str, retailers: list[str], flight_start: date
) -> None:
    text = ("Fwd: Initech plan\n\n> Please plan $900k for Initech on Alpha Mart and Delta Home, "
            f"June-August 2027, maximize sales, floor 2:1.\n\n{reply}")  # fmt: skip
    b = parse_brief_rules(text, "initech", TODAY)
    assert sorted(b.retailers or ["alpha", "delta"]) == retailers
    assert b.flight_start == flight_start and b.roas_floor == 2


def test_one_request_is_no_thread() -> None:
    assert split_thread("Plan $500k on Alpha Mart.\nROAS > 3 please.") is None
    assert split_thread("> Plan $500k on Alpha Mart.\n> Margin.") is None  # nothing above it
    thread = split_thread("Make it $600k.\n\n> Plan $500k on Alpha Mart.")
    assert thread is not None and thread.earlier == "Plan $500k on Alpha Mart."


def test_the_model_is_offered_the_replys_flight_only() -> None:
    c = candidates(FORWARDED, "acme", TODAY)
    assert list(c.flights) == ["April 2027"]
    assert "$1.4M" not in c.options("budget") and "$800k" in c.options("budget")


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("[9:02] ana: Initech April plan - $600k, Alpha and Delta, margin\n[9:15] bo: heads up, "
         "finance came back, budget is $550k not 600\n[9:16] ana: ok", 550_000),
        ("Plan $2M for Acme in Q2. Correction: it's $1.8M, not 2.", 1_800_000),
        # a bare count after "not" names no amount
        ("Plan $400k for Acme on Alpha. $450k not 500 stores is the ask.", 400_000),
    ],
)
def test_a_correction_names_the_replaced_amount_by_its_bare_figure(
    text: str, budget: float
) -> None:
    assert parse_brief_rules(text, "initech" if "Initech" in text else "acme", TODAY).total_budget \
        == budget


def test_a_holdout_corrected_in_dollars_is_the_reserve_not_the_budget() -> None:
    text = ("Globex brief (revised). Budget: $400k across Alpha Mart and Gamma Rx. Correction: "
            "holdout is $20k, not $40k as I wrote earlier. Objective: margin.")  # fmt: skip
    b = parse_brief_rules(text, "globex", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (400_000, 0.05)


@pytest.mark.parametrize(
    ("text", "mins"),
    [
        ("Plan $650k for Initech at Alpha Mart and Delta Home. Delta has a $120k upfront "
         "commitment we need to honor.", {"delta": 120_000}),
        ("Plan $2M across all our retailers. We've agreed a $500k upfront with Alpha Mart for "
         "2027.", {"alpha": 500_000}),
        # someone else's upfront, or one that is theirs
        ('Fwd from our Alpha rep: "Brand Z has locked a $1.1M upfront with us for 2027." Our '
         "budget is $1.5M across all our retailers.", {}),
        ("Brand X has a $400k JBP at Delta, that's theirs, not ours. Plan $1M on Alpha Mart "
         "and Delta Home.", {}),
    ],
)
def test_a_commitment_said_after_its_amount(text: str, mins: dict[str, float]) -> None:
    brand = "initech" if "Initech" in text or "Delta" in text else "acme"
    assert parse_brief_rules(text, brand, TODAY).retailer_mins == mins


def test_scratching_a_retailer_drops_its_part_of_the_earlier_split() -> None:
    """yn05 of unseen58 planned both parts: $150k at Alpha and Gamma."""
    text = ("Please scratch the Gamma part of the request below - the shopper team has it.\n\n"
            "> Globex, May 2027. $70k on Alpha Mart, $40k on Gamma Pharmacy. Margin.")  # fmt: skip
    b = parse_brief_rules(text, "globex", TODAY)
    assert (b.total_budget, b.retailers, b.retailer_split) == (70_000, ["alpha"], {"alpha": 70_000})
    assert any("split loses gamma" in w for w in b.warnings)


def test_a_retraction_that_adds_a_retailer_keeps_the_first() -> None:
    """"scratch that, include Gamma Rx too" planned Gamma alone (yn17 of unseen58)."""
    text = "Globex Feb - $120k, Alpha only, max ROAS.\nscratch that, include Gamma Rx too."
    assert sorted(parse_brief_rules(text, "globex", TODAY).retailers) == ["alpha", "gamma"]


def test_the_earlier_requests_budget_is_no_option_beside_the_replys() -> None:
    """Its reserve is offered where the reply keeps it (yn21 of unseen58: the model chose the
    earlier $300k as the budget when it was offered as a reserve)."""
    text = ("New total is $240k (was $280k). Rest of the brief below is unchanged.\n\n"
            "-----Original Message-----\nFrom: Jo\n\nBudget: $280k\nRetailers: Alpha Mart\n"
            "Holdout: $14k")  # fmt: skip
    c = candidates(text, "globex", TODAY)
    assert "$280k" not in c.options("budget") and "$280k" not in c.options("reserve")
    assert "$240k" in c.options("budget") and "$14k" in c.options("reserve")
    b = parse_brief_rules(text, "globex", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (240_000, 14_000 / 280_000)


def test_an_amount_a_correction_replaces_is_no_budget_option() -> None:
    text = ("[9:02] ana: Initech April plan - $600k, Alpha and Delta, margin\n[9:15] bo: heads "
            "up, finance came back, budget is $550k not 600")  # fmt: skip
    assert candidates(text, "initech", TODAY).options("budget") == ["$550k"]


def _roles(text: str, brand: str) -> dict[str, list[str]]:
    schema = span_json_schema(candidates(text, brand, TODAY))["properties"]["retailers"]
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") == "object"]
    return {m: p["enum"] for m, p in options[0]["properties"].items()}


def test_the_last_retailer_left_may_only_be_included() -> None:
    """Excluding it too leaves nothing to plan: the model excluded both in k12 of unseen15."""
    roles = _roles("Initech, $300k in May 2027. Correction: it's Delta Home, not Alpha Mart.",
                   "initech")  # fmt: skip
    assert roles == {"Delta Home": ["include"], "not Alpha Mart": ["exclude"]}
    # beside another free mention, the model chooses
    assert _roles("Initech, $300k: Delta Home and Alpha Mart.", "initech") == {
        "Delta Home": ["include", "exclude"], "Alpha Mart": ["include", "exclude"]}


def test_a_retailer_the_reply_scratches_is_excluded_where_the_quote_names_it() -> None:
    """yn05 of unseen58: the model excluded Alpha Mart as well as Gamma."""
    text = ("Please scratch the Gamma part of the request below - the shopper team has it.\n\n"
            "> Globex, May 2027. $70k on Alpha Mart, $40k on Gamma Pharmacy. Margin.")  # fmt: skip
    roles = _roles(text, "globex")
    assert roles["Gamma Pharmacy"] == ["exclude"] and roles["Alpha Mart"] == ["include"]


def test_a_thread_keeps_the_specific_error_of_a_field_neither_part_states() -> None:
    """"ok" above "> $5T on alpha" said "no budget found", not that $5T is beyond any plan."""
    with pytest.raises(BriefError, match="beyond any retail-media plan"):
        parse_brief_rules("ok, go ahead\n\n> $5T on Alpha Mart", "acme", TODAY)
    with pytest.raises(BriefError, match="no budget found"):
        parse_brief_rules("Make it a 10% holdout.\n\n> Alpha Mart only, margin", "acme", TODAY)
