"""Misreads of two blind sets' briefs (unseen60 and unseen61, read after each was scored blind):
a cap bullet under the retailers' line ("- No more than $90k at Beta" capped Delta), a bare
"budget: 250000", a CPM range or a CPM "at Beta" read as the budget, a product line after the
brand ("Initech Smart Home" refused as a retailer), reserves told in dollars ("Test cells:
$32k", "Holdout | $240k", "keep a $49,500 holdout", "the $40k test reserve"), rates in a form
("Budget (weekly) | $25,000" with "Weeks | 12"), money committed elsewhere before "plan the
rest", a chat that asks for a field and answers it on the next line, and corrections in
threads (a new floor, "5% instead of 10%", "put it all on Alpha", "raise it to $70k", a lifted
cap and a new minimum in a reply)."""

from __future__ import annotations

from datetime import date

from tools.brief import parse_brief_rules
from tools.brief.rules.text import normalize

TODAY = date(2026, 12, 7)


def test_a_cap_bullet_is_the_retailer_it_names_not_the_line_above() -> None:
    text = ("Acme spring plan\n- Budget: $500k\n- Retailers: Alpha Mart, Beta Grocers, Delta "
            "Home\n- No more than $120k at Beta\n- Objective: margin")  # fmt: skip
    b = parse_brief_rules(text, "acme", TODAY)
    assert b.retailer_caps == {"beta": 120_000}


def test_a_bare_budget_in_a_key_value_brief() -> None:
    text = "brand: initech\nbudget: 180000\nretailers: alpha, delta\nobjective: margin"
    assert parse_brief_rules(text, "initech", TODAY).total_budget == 180_000


def test_a_cpm_range_and_a_cpm_at_a_retailer_are_no_budget() -> None:
    text = ("Last spring Delta's CPMs ran $7-10. Budget $90k for March 2027, both retailers. "
            "Holdout $4,500.")  # fmt: skip
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (90_000, 0.05)
    text = ("- $100k/month, Feb through Apr 2027\n- Context: CPMs at Beta running ~$12\n"
            "- Retailers: Beta and Delta")  # fmt: skip
    assert parse_brief_rules(text, "acme", TODAY).total_budget == 300_000


def test_a_product_line_after_the_brand_is_no_retailer() -> None:
    text = "Initech Smart Home - Q2 ask\n- $400k, Alpha Mart + Delta Home\n- margin"
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.resolved_retailers()) == (400_000, ["alpha", "delta"])


def test_reserves_told_in_dollars() -> None:
    cells = "Total: $800k\nWhere: Alpha Mart and Gamma Rx\nTest cells: $40k\nGoal: profit"
    assert parse_brief_rules(cells, "globex", TODAY).experiment_reserve == 0.05
    table = "Brand | Initech\nTotal budget | $2M\nRetailers | all\nHoldout | $300k"
    assert parse_brief_rules(table, "initech", TODAY).experiment_reserve == 0.15
    weekly = ("Gamma only, 4 weeks starting Jan 4 2027, at $50k a week. Please keep a $20,000 "
              "holdout. Revenue.")  # fmt: skip
    b = parse_brief_rules(weekly, "globex", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (200_000, 0.1)


def test_a_test_reserve_a_reply_drops_is_no_budget() -> None:
    text = ("Please ignore the $30k test reserve in the note below; no holdout this time.\n\n"
            "---------- Forwarded message ---------\n"
            "Plan request (Acme): $600k, Q1 2027, Alpha Mart + Delta Home, max ROAS, $30k "
            "reserved for experiments.")  # fmt: skip
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (600_000, 0.0)


def test_a_weekly_form_row_and_its_weeks() -> None:
    text = ("Field | Value\nBudget (weekly) | $20,000\nWeeks | 10\nStart | 2027-02-01\n"
            "Retailers | Alpha Mart, Delta Home\nTest reserve | $20,000")  # fmt: skip
    b = parse_brief_rules(text, "initech", TODAY)
    assert (b.total_budget, b.flight_end, b.experiment_reserve) == (
        200_000, date(2027, 4, 11), 0.1)  # fmt: skip


def test_money_committed_elsewhere_before_plan_the_rest() -> None:
    locked = ("Q1: we've got $2M total. $500k is already locked in on Alpha's takeover, so plan "
              "the remaining.")  # fmt: skip
    assert parse_brief_rules(locked, "initech", TODAY).total_budget == 1_500_000
    handled = ("Q2 budget is $1M. Delta already has $200k committed through co-op, handled by "
               "the Delta team. Please plan the rest across both retailers.")  # fmt: skip
    assert parse_brief_rules(handled, "initech", TODAY).total_budget == 800_000
    pulled = ("Update: finance pulled $40k for the Alpha circular (handled outside this plan), "
              "so plan whatever's left of the $240k. Acme, March 2027, all three retailers.")
    assert parse_brief_rules(pulled, "acme", TODAY).total_budget == 200_000
    other = ("Globex Q3 budget is $2M. $500k is committed to Gamma's screens (out of scope) - "
             "please plan the other $1.5M across Alpha Mart and Gamma.")  # fmt: skip
    assert parse_brief_rules(other, "globex", TODAY).total_budget == 1_500_000


def test_a_chat_answers_the_field_it_was_asked_for() -> None:
    text = ("Ana: acme plan, $150k, Beta + Delta, March 2027, revenue\nBo: holdout?\nAna: 6%\n"
            "[9:14] Bo: floor?\n[9:15] Ana: 2.2")  # fmt: skip
    assert "Ana: holdout 6%" in normalize(text)
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.experiment_reserve, b.roas_floor) == (0.06, 2.2)


def test_corrections_of_a_floor_a_reserve_and_the_budget() -> None:
    now = ("Quick update: make it $400k, and the ROAS floor is now 3.2. Everything else "
           "stands.\n\n-----Original Message-----\nPlan $500k over Jan-Feb 2027, all three "
           "retailers, margin objective, ROAS floor 2.5.")  # fmt: skip
    b = parse_brief_rules(now, "acme", TODAY)
    assert (b.total_budget, b.roas_floor, b.objective) == (400_000, 3.2, "incremental_margin")
    chat = ("kim: globex plan - 1m, roas objective, floor 4, apr 2027\nlee: 4 seems high\n"
            "kim: fair, make the floor 3. and switch objective to margin")  # fmt: skip
    assert parse_brief_rules(chat, "globex", TODAY).roas_floor == 3.0
    instead = ("Plan $300k for Initech in May 2027, margin. We'll go with a 4% holdout instead "
               "of 10%.")  # fmt: skip
    assert parse_brief_rules(instead, "initech", TODAY).experiment_reserve == 0.04
    raised = "Jo: globex, $50k, Alpha only, Feb 2027, revenue\nJo: add Gamma, and raise it to $80k"
    assert parse_brief_rules(raised, "globex", TODAY).total_budget == 80_000


def test_a_reply_puts_it_all_on_one_retailer() -> None:
    text = ("One change to the brief below: drop Delta. Put it all on Alpha. Everything else "
            "stays.\n\n> Initech Q3 plan: $500k, Alpha Mart and Delta Home, margin.")  # fmt: skip
    assert parse_brief_rules(text, "initech", TODAY).retailers == ["alpha"]


def test_a_reply_lifts_a_cap_and_changes_a_minimum() -> None:
    text = ("One more change: drop the Beta cap entirely. Also the JBP minimum at Delta is $50k "
            "not $35k. Rest stands.\n\n> On Dec 3, Tom wrote:\n> Acme Feb-Mar 2027, $400k, "
            "Alpha/Beta/Delta. Cap Beta at $80k. Delta JBP min $35k. Margin.")  # fmt: skip
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, b.retailer_caps, b.retailer_mins) == (400_000, {}, {"delta": 50_000})


# --- read sets' misses (unseen57, unseen58) --------------------------------------------------


def test_retailers_named_only_to_limit_them_plan_every_retailer() -> None:
    cap = "A million for Acme, April 1 to June 30, 2027. Margin. Don't go over $200k on Delta."
    b = parse_brief_rules(cap, "acme", TODAY)
    assert (b.resolved_retailers(), b.retailer_caps) == (["alpha", "beta", "delta"],
                                                         {"delta": 200_000})  # fmt: skip
    floor = "Acme Q1 budget is $600k. Keep Beta Grocers at or above $120k (JBP). Goal: margin."
    b = parse_brief_rules(floor, "acme", TODAY)
    assert (b.resolved_retailers(), b.retailer_mins) == (["alpha", "beta", "delta"],
                                                         {"beta": 120_000})  # fmt: skip
    named = "Plan $600k on Beta and Delta in Q1 2027. Cap Delta at $100k."
    assert parse_brief_rules(named, "acme", TODAY).retailers == ["beta", "delta"]


def test_money_for_production_before_the_remaining_media() -> None:
    text = ("Approved: USD 1,200,000. $200k of this goes to creative production; plan the "
            "remaining media.")  # fmt: skip
    assert parse_brief_rules(text, "initech", TODAY).total_budget == 1_000_000


def test_a_month_before_plan_is_the_flight() -> None:
    b = parse_brief_rules("Acme March plan: $200k, revenue, all retailers.", "acme", TODAY)
    assert (b.flight_start, b.flight_end) == (date(2027, 3, 1), date(2027, 3, 31))
    assert parse_brief_rules("we may plan $200k for Alpha", "acme", TODAY).flight_start is None


def test_struck_out_words_are_taken_back() -> None:
    text = "acme jan plan: ~~$200k~~ $250k, alpha + beta, margin\n~~12% holdout~~ 6% holdout"
    b = parse_brief_rules(text, "acme", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (250_000, 0.06)


def test_a_goal_turned_down_and_a_change_of_mind() -> None:
    text = ("Initech, Alpha Mart only. $100k for March 2027. Not looking for pure ROAS - margin "
            "is what matters.")  # fmt: skip
    assert parse_brief_rules(text, "initech", TODAY).objective == "incremental_margin"
    text = ("Globex, Gamma only: $30k a week for 4 weeks from Feb 1 2027, maximize ROAS, min ROAS "
            "2.0.\nChanged my mind on the goal - let's go for revenue, keep the 2.0 floor.")
    b = parse_brief_rules(text, "globex", TODAY)
    assert (b.objective, b.roas_floor) == ("incremental_revenue", 2.0)


def test_a_later_update_on_out_of_stock_items_stands() -> None:
    text = ("Initech Q2, $200k across Alpha/Delta, margin. Exclude out-of-stock items.\n"
            "Update: ops says leave OOS items in, they restock in April.")  # fmt: skip
    assert parse_brief_rules(text, "initech", TODAY).exclude_oos is False
    both = "Acme Q2, $200k. Exclude out-of-stock items. OOS items are fine at Beta."
    assert parse_brief_rules(both, "acme", TODAY).exclude_oos is True


def test_an_amount_in_a_message_to_ignore_is_no_budget() -> None:
    text = ("Ignore my earlier message bumping this to $900k - the original $650k stands.\n"
            "Acme, Q2 2027, all retailers, revenue.")  # fmt: skip
    assert parse_brief_rules(text, "acme", TODAY).total_budget == 650_000


def test_a_past_result_in_brackets_after_last_year_is_no_floor() -> None:
    text = ("Delta wasn't strong for us last year (ROAS 1.3 on $150k), but it stays in. Initech Q1 "
            "2027 budget $300k, both retailers, maximize ROAS with a 2.5 minimum.")  # fmt: skip
    assert parse_brief_rules(text, "initech", TODAY).roas_floor == 2.5


def test_more_misreads_of_read_sets() -> None:
    # "Minimum return 4x" (yk27 of unseen55) read no floor
    assert parse_brief_rules("Initech 300k, Alpha and Delta. Goal ROAS. Minimum return 3x.",
                             "initech", TODAY).roas_floor == 3.0  # fmt: skip
    # a title ending in "test" above "Budget: $200k" held the budget back (yk25)
    b = parse_brief_rules("Acme - Beta test\nBudget: $150k, Beta only.\nHoldout: none.\n"
                          "Note: Beta requires a $5k minimum per campaign.", "acme", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (150_000, 0.0)
    # "- Tests: $375k" (yj24 of unseen54) held the default 10%
    b = parse_brief_rules("- Budget: 2M USD\n- Retailers: all\n- Tests: $300k\n- Flight: Q2",
                          "acme", TODAY)  # fmt: skip
    assert b.experiment_reserve == 0.15
    # "Acme's Q2 number is 1,400,000" (yf13 of unseen50) planned the $300k minimum
    b = parse_brief_rules("Acme's Q3 number is 1,000,000. Plan on Beta and Delta only. We owe "
                          "Beta 200,000 minimum under the JBP.", "acme", TODAY)  # fmt: skip
    assert (b.total_budget, b.retailer_mins) == (1_000_000, {"beta": 200_000})
    # money committed to search and social before "plan the rest" (yi25 of unseen53)
    b = parse_brief_rules("The Q3 ecommerce budget is $1M. $200K is committed to search and "
                          "$100K to paid social; plan the rest across Alpha and Delta.",
                          "initech", TODAY)  # fmt: skip
    assert b.total_budget == 700_000
    # a competitor's spend at a retailer asks nothing there (yk05 of unseen55)
    b = parse_brief_rules("Acme budget 300 thousand dollar, all retailer. Competitor spend 2 "
                          "million in Delta Home, we not follow.", "acme", TODAY)  # fmt: skip
    assert b.resolved_retailers() == ["alpha", "beta", "delta"]
    # "not a requirement" (ym24 of unseen57); "Test money: 0." (ym20)
    b = parse_brief_rules("Plan 500k for acme in May 2027. We usually see 3.1 ROAS at Beta, not "
                          "a requirement though. Test money: 0.", "acme", TODAY)  # fmt: skip
    assert (b.roas_floor, b.experiment_reserve) == (None, 0.0)


# --- round 9, from unseen62's misses (read after it measured round 8) -----------------------


def test_round_9_shorthand_starts_and_reserves() -> None:
    # "flr 3.5x" (yr05); "kicks off 2027-03-01, end date TBD" (yr12); "march '27" (yr16)
    b = parse_brief_rules("globex | 400K | alpha+gamma | max roas, flr 3x | march '27", "globex",
                          TODAY)  # fmt: skip
    assert (b.roas_floor, b.flight_start, b.flight_end) == (3.0, date(2027, 3, 1),
                                                            date(2027, 3, 31))  # fmt: skip
    b = parse_brief_rules("Initech x Delta: $500k, kicks off 2027-04-01, end TBD.", "initech",
                          TODAY)  # fmt: skip
    assert (b.flight_start, b.flight_end) == (date(2027, 4, 1), None)
    # "$87,500 goes to test cells" (yr14); "$24k of the total held out for a geo test" (yr24)
    b = parse_brief_rules("Gamma Rx only, $1M for Feb 2027, max ROAS. $50,000 goes to test "
                          "cells.", "globex", TODAY)  # fmt: skip
    assert b.experiment_reserve == 0.05
    b = parse_brief_rules("Initech Alpha burst: $50k/week for 6 weeks starting Mar 1, 2027. "
                          "$15k of the total held out for a geo test.", "initech", TODAY)
    assert (b.total_budget, b.experiment_reserve) == (300_000, 0.05)


def test_round_9_rumours_corrections_and_commitments() -> None:
    # "Competitor A is rumored at $3M" (yr22)
    b = parse_brief_rules("LY we spent $1.5M. Competitor B is rumored at $2M. This years "
                          "buget is $1.8M, Alpha and Beta. Reserve $180k for experiments.",
                          "acme", TODAY)  # fmt: skip
    assert (b.total_budget, b.experiment_reserve) == (1_800_000, 0.1)
    # "edit: ... actually make the holdout 15%" (yr23)
    b = parse_brief_rules("globex fall: 400K, Gamma only, Sept 2027, revenue, holdout 10%\nedit: "
                          "add Alpha back in. and actually make the holdout 12%", "globex", TODAY)
    assert b.experiment_reserve == 0.12
    # a platform's minimum as context (yr29); "commit $500k to Delta" (yr30)
    b = parse_brief_rules("Globex H1 2027: $2M across Alpha and Gamma. Note Gamma's platform "
                          "minimum is $200k - we haven't committed to anything.", "globex", TODAY)
    assert b.retailer_mins == {}
    b = parse_brief_rules("initech spring: $1 million, Apr 2027, revenue. commit $300k to Delta.",
                          "initech", TODAY)  # fmt: skip
    assert b.retailer_mins == {"delta": 300_000}


# --- round 10, from unseen63's misses (read after it measured round 9) ----------------------


def test_round_10_reserves_in_forms_and_asides() -> None:
    # "| $40k holdout |", "reserve=$44,000", "Hold $55k out for experiments" (ys05, ys21, ys22)
    form = "globex | alpha only | $400k | roas goal, floor 3x | $20k holdout | excl oos"
    assert parse_brief_rules(form, "globex", TODAY).experiment_reserve == 0.05
    keys = "brand=initech; budget=$500,000; retailers=alpha,delta; reserve=$25,000; goal=margin"
    assert parse_brief_rules(keys, "initech", TODAY).experiment_reserve == 0.05
    hold = "acme: $800k, all three retailers. Goal is margin. Hold $40k out for experiments."
    assert parse_brief_rules(hold, "acme", TODAY).experiment_reserve == 0.05
    # a cap in a run-on line is no reserve: "gamma cap 300k holdout 75k" (yk24 of unseen55)
    runon = "globex 1m alpha gamma roas goal gamma cap 200k holdout 50k flight may 2027"
    b = parse_brief_rules(runon, "globex", TODAY)
    assert (b.retailer_caps, b.experiment_reserve) == ({"gamma": 200_000}, 0.05)


def test_round_10_corrections_chats_and_minimums() -> None:
    # "leadership cut it back to $720K. Final." (ys19)
    text = ("Budget $500K for Alpha and Beta in May '27.\nCorrection: $550K.\nOne more - cut it "
            "back to $520K.")  # fmt: skip
    assert parse_brief_rules(text, "acme", TODAY).total_budget == 520_000
    # "maximize ROAS, keep it above 2.75" (ys28)
    chat = ("Al: acme, $200K, Alpha & Beta, June 2027\nPlanner: objective?\nAl: maximize ROAS, "
            "keep it above 2.5")  # fmt: skip
    assert parse_brief_rules(chat, "acme", TODAY).roas_floor == 2.5
    # a network's order minimum in another part of the line (ys21); a JBP declined (yk14)
    keys = ("brand=initech; budget=$900,000; JBP: Delta min $200K; note Alpha platform minimum "
            "buy is $20K (fyi)")  # fmt: skip
    assert parse_brief_rules(keys, "initech", TODAY).retailer_mins == {"delta": 200_000}
    declined = ("Globex Q3: $1M, Alpha Mart + Gamma. Alpha offered a $400k JBP commitment; we "
                "declined it, so no minimum there.")  # fmt: skip
    assert parse_brief_rules(declined, "globex", TODAY).retailer_mins == {}
    # a competitor named in brackets (ys12)
    rumour = ("Competitor (Stark Co) is rumored to spend ~$2M at Delta in Q3. Our Q3 2027 budget: "
              "$500K, Delta only.")  # fmt: skip
    assert parse_brief_rules(rumour, "initech", TODAY).total_budget == 500_000


def test_a_correction_of_one_end_of_the_flight_keeps_the_other() -> None:
    # "flight Jan 1 - Mar 31. Actually, push the start to Feb 1" (yn08 of unseen58 planned from
    # Jan 1); "Sorry, correction - end date is Feb 28" (yn18 kept Mar 31)
    start = ("Acme Q2: $500k, Alpha/Beta/Delta, margin, flight Apr 1 - Jun 30.\nActually, push "
             "the start to May 1 - budget stays the same.")  # fmt: skip
    b = parse_brief_rules(start, "acme", TODAY)
    assert (b.flight_start, b.flight_end) == (date(2027, 5, 1), date(2027, 6, 30))
    end = ("Initech: $200k, Alpha + Delta, Apr 1 through Jun 30, revenue.\nSorry, correction - "
           "end date is May 31.")  # fmt: skip
    b = parse_brief_rules(end, "initech", TODAY)
    assert (b.flight_start, b.flight_end) == (date(2027, 4, 1), date(2027, 5, 31))
