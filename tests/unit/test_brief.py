"""The rule-based brief parser: every field in the forms people write it, the errors a brief
that cannot be planned gets, and the warnings an ambiguous one gets. The model path, the
production cross-check, the datasets and `rmn parse`: test_brief_model.py."""

import re
from datetime import date

import pytest
from brief_support import SPEC_BRIEF, TODAY, rules

from tools.brief import BriefError, parse_brief_rules, rule_parse
from tools.brief.rules import normalize

# --- rules: the fields ----------------------------------------------------------------------


def test_the_readme_brief() -> None:
    b = rules(SPEC_BRIEF)
    assert b.fields() == {
        "total_budget": 2_500_000.0,
        "retailers": ["alpha", "beta"],
        "objective": "incremental_margin",
        "roas_floor": 3.0,
        "experiment_reserve": 0.1,
        "flight_start": None,
        "flight_end": None,
        "exclude_oos": True,
    }
    assert b.brand_id == "acme" and b.parsed_by == "rules" and b.warnings == []


@pytest.mark.parametrize(
    ("money", "usd"),
    [
        ("$2.5M", 2_500_000),
        ("750k", 750_000),
        ("$750K", 750_000),
        ("one million dollars", 1_000_000),
        ("USD 250,000", 250_000),
        ("2.5 million", 2_500_000),
        ("$1,200,000", 1_200_000),
        ("$3MM", 3_000_000),
        ("1.2M USD", 1_200_000),
        ("2 mil", 2_000_000),
        ("700 grand", 700_000),
        ("half a million", 500_000),
        ("two and a half million dollars", 2_500_000),
        ("seven hundred fifty thousand dollars", 750_000),
        ("Two point five million", 2_500_000),
    ],
)
def test_money_as_people_write_it(money: str, usd: float) -> None:
    assert rules(f"Spend {money} on Alpha Mart to maximize sales").total_budget == usd


@pytest.mark.parametrize("code", ["zebra76e46412", "okapi1e9", "SKU12345", "Q3promo250k"])
def test_a_number_inside_a_word_is_not_money(code: str) -> None:
    # A run marker "zebra76e46412" was read as 76e464 dollars and the brief refused as "not a
    # finite amount" (tests/integration/test_server_delete.py, when its random marker held one).
    b = rules(f"Allocate $1M across Alpha and Beta to maximize incremental margin for {code}")
    assert b.total_budget == 1_000_000


@pytest.mark.parametrize(
    ("brand", "phrase", "expected"),
    [
        ("globex", "Gamma Pharmacy", ["gamma"]),
        ("globex", "gamma pharmacy and alpha", ["alpha", "gamma"]),
        ("acme", "Alpha Mart", ["alpha"]),
        ("acme", "alpha", ["alpha"]),
        ("acme", "Beta Grocers + Delta Home", ["beta", "delta"]),
        ("acme", "Delta, Beta & Alpha", ["alpha", "beta", "delta"]),
        ("acme", "all retailers", []),
        ("acme", "all three of our retailers", []),
        ("acme", "everything except Delta", ["alpha", "beta"]),
        ("brand_x", "all networks excluding Beta and Gamma", ["alpha"]),
        ("acme", "all networks but Beta", ["alpha", "delta"]),
        ("acme", "everywhere but Alpha and Delta", ["beta"]),
        ("acme", "every network we're in but Beta", ["alpha", "delta"]),
        ("acme", "nothing but Beta", ["beta"]),
        ("acme", "Alpha, but keep Beta in", ["alpha", "beta"]),
    ],
)
def test_retailers_by_name_or_id(brand: str, phrase: str, expected: list[str]) -> None:
    assert rules(f"Spend $1M on {phrase}.", brand).retailers == expected


def test_brief_without_retailers_means_all_of_the_brand() -> None:
    b = rules("Spend $1M to maximize profit.", "globex")
    assert b.retailers == [] and b.resolved_retailers() == ["alpha", "gamma"]


@pytest.mark.parametrize(
    ("phrase", "objective"),
    [
        ("maximize profit", "incremental_margin"),
        ("grow margin", "incremental_margin"),
        ("profit-focused", "incremental_margin"),
        ("maximize sales", "incremental_revenue"),
        ("the goal is revenue", "incremental_revenue"),
        ("top-line growth is the priority", "incremental_revenue"),
        ("maximize return on ad spend", "roas"),
        ("optimize for ROAS", "roas"),
        ("efficiency is the goal", "roas"),
    ],
)
def test_objective_synonyms(phrase: str, objective: str) -> None:
    assert rules(f"$1M on Alpha, {phrase}.").objective == objective


def test_a_roas_floor_is_not_the_objective() -> None:
    b = rules("$1M on Alpha, ROAS >= 3.")
    assert b.roas_floor == 3.0 and b.objective == "incremental_margin"
    assert "objective" not in rule_parse("$1M on Alpha, ROAS >= 3.", "acme", TODAY).found


@pytest.mark.parametrize(
    ("phrase", "floor"),
    [
        ("ROAS >= 3", 3.0),
        ("ROAS \u2265 2.8", 2.8),
        ("at least 3x return", 3.0),
        ("ROAS of 2.5 or better", 2.5),
        ("a 3:1 ROAS minimum", 3.0),
        ("minimum ROAS 2.2", 2.2),
        ("keep ROAS at or above 2.5", 2.5),
        ("roas 2.5+", 2.5),
        ("at least $3 in sales for every $1 spent", 3.0),
        ("ROAS of at least three", 3.0),
        ("no ROAS constraint", None),
        # A floor named without the word ROAS was not read.
        ("with a floor of 2.8", 2.8),
        ("hard floor: 3.1x", 3.1),
        ("floor displays at 2 stores", None),
        ("a budget floor of $200k", None),
    ],
)
def test_roas_floors(phrase: str, floor: float | None) -> None:
    b = rules(f"Allocate $2M across Alpha and Beta, {phrase}, maximize margin.")
    assert b.roas_floor == floor
    assert b.total_budget == 2_000_000 and b.objective == "incremental_margin"


def test_an_upper_limit_on_roas_is_not_a_floor() -> None:
    b = rules("Allocate $2M across Alpha, ROAS at most 5")
    assert b.roas_floor is None and any("upper limit" in w for w in b.warnings)


@pytest.mark.parametrize(
    ("phrase", "reserve"),
    [
        ("10% for experiments", 0.10),
        ("ten percent for experiments", 0.10),
        ("0.1 of budget for tests", 0.10),
        ("hold back 15 percent for tests", 0.15),
        ("12.5% experiment reserve", 0.125),
        ("hold back a fifth for experiments", 0.20),
        ("set aside $250k for incrementality tests", 0.10),
        ("experiments: none", 0.0),
        ("no experiment reserve", 0.0),
        ("keep 7 pct for a holdout", 0.07),
    ],
)
def test_experiment_reserve_in_any_form(phrase: str, reserve: float) -> None:
    b = rules(f"Allocate $2.5M across Alpha and Beta, {phrase}.")
    assert b.experiment_reserve == pytest.approx(reserve)


def test_reserve_defaults_to_ten_percent_without_a_warning() -> None:
    b = rules("Allocate $2.5M across Alpha and Beta.")
    assert b.experiment_reserve == 0.10 and b.warnings == []


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("from March 1 to March 28, 2027", "2027-03-01", "2027-03-28"),
        ("in Q1 2027", "2027-01-01", "2027-03-31"),
        ("for the first quarter of 2027", "2027-01-01", "2027-03-31"),
        ("over the next 4 weeks", "2026-11-24", "2026-12-21"),
        ("for the next 30 days", "2026-11-24", "2026-12-23"),
        ("next month", "2026-12-01", "2026-12-31"),
        ("in March 2027", "2027-03-01", "2027-03-31"),
        ("3/1/2027 - 3/28/2027", "2027-03-01", "2027-03-28"),
        ("from 2027-02-01 to 2027-02-28", "2027-02-01", "2027-02-28"),
        ("Dec 1 to Dec 31", "2026-12-01", "2026-12-31"),
        ("dec 7 2026 to jan 31 2027", "2026-12-07", "2027-01-31"),
        ("for 4 weeks starting Jan 4, 2027", "2027-01-04", "2027-01-31"),
        ("from 1 February to 28 February 2027", "2027-02-01", "2027-02-28"),
        # Read as April alone before: the month reading took the last month word only.
        ("February through April 2027", "2027-02-01", "2027-04-30"),
        ("from Feb to Apr", "2027-02-01", "2027-04-30"),
        ("for the first two weeks of January", "2027-01-01", "2027-01-14"),  # no flight before
    ],
)
def test_flight_dates(phrase: str, start: str, end: str) -> None:
    b = rules(f"Spend $1M on Alpha {phrase}.")
    assert (str(b.flight_start), str(b.flight_end)) == (start, end)


def test_an_amount_told_as_a_typo_is_ignored() -> None:
    """ "budget is 1.3M (someone typo'd 13M in the deck, ignore that)" kept 1.3M only as "the
    first" of several budgets, a reason an approver could not trust (va21 of unseen41)."""
    said = rule_parse("Acme - budget is 1.3M (someone typo'd 13M in the deck, ignore that). All "
                      "retailers. Q1 2027.", "acme", date(2026, 12, 5))  # fmt: skip
    assert said.values["total_budget"] == 1_300_000
    assert said.warnings == ["ignored $13,000,000: the brief gives it as a mistake to ignore"]


def test_a_flight_read_from_words_says_them_and_asks_no_one() -> None:
    """ "next quarter" above "Flight: 1 January 2027 to 31 March 2027" read as dates the brief
    gave (ua42 of unseen40): a flight read from words without a year or days is said with
    them, as a settled note; one the brief dates or gives the year of is not."""
    from tools.brief.llm import settled

    said = rule_parse("Brand X, $975k, Alpha Mart, next quarter", "brand_x",
                      date(2026, 12, 5)).warnings  # fmt: skip
    assert said == ["flight_start: the brief's 'next quarter' is read as 1 January 2027 to "
                    "31 March 2027"]  # fmt: skip
    assert settled(said[0])
    month = rule_parse("Acme $1M on Alpha in February", "acme", date(2026, 12, 5)).warnings
    assert month == ["flight_start: the brief's 'February' is read as 1 February 2027 to "
                     "28 February 2027"]  # fmt: skip
    for dated in ("Q1 2027", "Q1 '27", "Feb 1 - Feb 28", "1 March to 28 March 2027"):
        assert rule_parse(f"Acme $1M on Alpha {dated}", "acme", date(2026, 12, 5)).warnings == []


def test_relative_flights_follow_today() -> None:
    b = rules("Spend $1M on Alpha over the next 2 weeks.", today=date(2027, 1, 4))
    assert (b.flight_start, b.flight_end) == (date(2027, 1, 5), date(2027, 1, 18))


@pytest.mark.parametrize(
    ("phrase", "exclude"),
    [
        ("Include out-of-stock SKUs.", False),
        ("OOS items are fine.", False),
        ("Don't include out-of-stock SKUs.", True),
        ("Exclude out-of-stock items.", True),
        ("", True),
        # Read as the default (excluded) before.
        ("Alpha | incl. OOS", False),
        ("OOS SKUs: keep them in.", False),
        ("Out-of-stock products can stay in.", False),
        ("Skip OOS SKUs, and keep them in mind for later.", True),
    ],
)
def test_out_of_stock_switch(phrase: str, exclude: bool) -> None:
    assert rules(f"Spend $1M on Alpha. {phrase}").exclude_oos is exclude


def test_number_words_become_digits_but_not_everywhere() -> None:
    assert normalize("two and a half million") == "2.5 million"
    assert normalize("hold back fifteen percent") == "hold back 15 percent"
    assert normalize("the first half of 2027") == "the first half of 2027"
    # A "one" that points at a thing counts nothing: "maximize ROAS on this one" was a floor of
    # 1 that the production parse took from the model (pa32 of unseen35).
    assert normalize("maximize ROAS on this one") == "maximize ROAS on this one"
    assert normalize("one retailer, one million") == "1 retailer, 1 million"
    # "a million and a half" was 1.000001 million ($1,000,000.50); "two and a quarter million"
    # was "2 and a quarter million", which no reading took as money.
    assert normalize("a million and a half") == "1.5 million"
    assert normalize("two and a quarter million") == "2.25 million"
    assert normalize("a quarter million") == "250 thousand"
    assert normalize("a quarter of it for tests, next quarter") == (
        "a quarter of it for tests, next quarter"
    )
    assert rules("Initech: a million and a half on Alpha", "initech").total_budget == 1_500_000


# --- rules: errors and warnings -------------------------------------------------------------


def _error(text: str, brand: str = "acme") -> BriefError:
    with pytest.raises(BriefError) as info:
        rules(text, brand)
    return info.value


def test_unknown_retailer_is_an_error() -> None:
    err = _error("Allocate $2.5M across Alpha and Omega Mart to maximize margin.")
    assert err.detail["field"] == "retailers" and err.detail["retailers"] == ["Omega Mart"]
    assert "unknown retailer 'Omega Mart'" in err.message
    assert _error("Spend $2.5M on Alpha and Epsilon.").detail["retailers"] == ["Epsilon"]


def test_retailer_the_brand_does_not_sell_through_is_an_error() -> None:
    err = _error("Spend $1M on Gamma Pharmacy for margin.", "acme")
    assert err.detail["retailers"] == ["gamma"]
    assert err.message.startswith("Acme Foods (acme) does not sell through Gamma Pharmacy")


def test_missing_budget_is_an_error() -> None:
    err = _error("Maximize revenue on Alpha with ROAS >= 3 and 10% for experiments.")
    assert err.detail["field"] == "total_budget" and "no budget found" in err.message


@pytest.mark.parametrize("text", ["Budget $0 for Alpha.", "Budget -$50k on Alpha."])
def test_non_positive_budget_is_an_error(text: str) -> None:
    err = _error(text)
    assert err.detail["field"] == "total_budget" and "must be positive" in err.message


def test_reserve_over_half_is_an_error() -> None:
    err = _error("Allocate $2M across Alpha and Beta, hold back 60% for experiments.")
    assert err.detail == {"field": "experiment_reserve", "experiment_reserve": 0.6}
    assert "over the 50% limit" in err.message


def test_other_currencies_and_backwards_flights_are_errors() -> None:
    assert "USD" in _error("We want to invest \u00a32M across Alpha and Beta.").message
    err = _error("Spend $1M on Alpha from 2027-03-01 to 2027-02-01.")
    assert err.detail["field"] == "flight_end"


def test_several_problems_are_reported_together() -> None:
    err = _error("Spend $1M on Gamma and Omega Mart, hold back 70% for tests.")
    assert err.detail["field"] == "retailers"
    assert {p["field"] for p in err.detail["problems"]} == {"experiment_reserve", "retailers"}


def test_two_budgets_are_a_warning_not_a_guess() -> None:
    b = rules("Total budget $2.2M (not the $2.5M we discussed). Alpha and Beta.")
    assert b.total_budget == 2_200_000
    assert b.warnings == ["ignored $2,500,000: the brief gives it as an earlier amount it replaces"]
    b = rules("Spend $300,000 at Alpha Mart. Actually, make the budget $350,000.")
    assert b.total_budget == 350_000 and "the correction" in b.warnings[0]


def test_per_retailer_amounts_add_up_and_caps_are_said() -> None:
    b = rules("$2M on Alpha Mart and $1M on Beta Grocers, maximize margin.")
    assert b.total_budget == 3_000_000 and "sum of the per-retailer amounts" in b.warnings[0]
    b = rules("$1,000,000 total across Alpha and Beta; no more than $400k on any one retailer.")
    assert b.total_budget == 1_000_000 and b.warnings[0] == (
        "the brief caps the ads at a retailer: at most Alpha Mart $400,000, Beta Grocers "
        "$400,000 (the plan's retailer caps; an edit changes or lifts them)")


def test_weekly_budget_needs_a_flight() -> None:
    b = rules("$100k per week on Alpha for the next 4 weeks.")
    assert b.total_budget == 400_000 and "per week" in b.warnings[-1]
    assert _error("$100k per week on Alpha.").detail["field"] == "total_budget"


# --- money in scientific notation and beyond any plan (issue #12) -------------------------


@pytest.mark.parametrize(
    ("money", "usd"),
    [
        ("$2.5e6", 2_500_000),
        ("$2.5E+6", 2_500_000),
        ("1e6 dollars", 1_000_000),
        ("2.5e6 USD", 2_500_000),
        ("USD 1.2e6", 1_200_000),
    ],
)
def test_money_in_scientific_notation_is_read_whole(money: str, usd: float) -> None:
    # Before: "$2.5e6" was read as $2.50 and "1e6 dollars" as $6.
    assert rules(f"Spend {money} on Alpha Mart to maximize sales").total_budget == usd


def test_a_bare_number_in_scientific_notation_next_to_a_budget_word_is_money() -> None:
    # Before: "no budget found" (the bare 1e6 was not read at all).
    assert rules("Allocate 1e6 across Alpha and Beta to maximize margin").total_budget == 1e6


@pytest.mark.parametrize(
    "money", ["$5 trillion", "$5T", "$5 tn", "five trillion dollars", "$5,000,000,000,000"]
)
def test_a_budget_beyond_any_plan_is_refused_with_its_amount(money: str) -> None:
    # Before: "$5 trillion" and "$5T" were read as $5 and planned.
    err = _error(f"Allocate {money} across Alpha and Beta to maximize margin")
    assert err.detail["field"] == "total_budget"
    assert err.detail["total_budget"] == 5e12
    assert "$5,000,000,000,000" in err.message and "at most $100,000,000,000" in err.message


def test_an_amount_too_large_for_a_number_is_refused_not_infinite() -> None:
    err = _error("Allocate $1e400 across Alpha and Beta")
    assert err.detail["field"] == "total_budget" and "not a finite amount" in err.message
    assert "total_budget" not in err.detail or err.detail["total_budget"] is None


def test_scientific_notation_does_not_eat_other_numbers() -> None:
    b = rules("Spend $2.5e6 on Alpha Mart from 2027-03-01 to 2027-03-28 with ROAS >= 3")
    assert b.total_budget == 2_500_000 and b.roas_floor == 3.0
    assert (str(b.flight_start), str(b.flight_end)) == ("2027-03-01", "2027-03-28")
    assert rules("Spend $3M on Alpha, the 3rd test cell").total_budget == 3_000_000


@pytest.mark.parametrize(
    ("text", "budget", "floor"),
    [
        # Read as $1.62M and $7.38M before: last year's spend outranked a weakly cued budget.
        ("Last year we spent $1.62MM. Can you spread USD 1,300,000 across Alpha?", 1.3e6, None),
        ("We spent 7.38m last year. Can you spread $5.9MM across Alpha next month?", 5.9e6, None),
        # Read as $2.7M (the two amounts summed) with last year's ROAS of 3.4 as the floor.
        (
            "Last year we spent $1.2M at Alpha and got about 3.4 ROAS. Now Acme wants "
            "$1.5M on Alpha Mart only, with ROAS >= 2.8.",
            1.5e6,
            2.8,
        ),
        # A competitor's ROAS set the floor.
        ("A competitor reports 5x ROAS. Put $900k on Alpha, max margin.", 9e5, None),
        ("Put $900k on Alpha with ROAS >= 3. Competitors see ROAS around 6.", 9e5, 3.0),
        # Still this brief's own: no past verb.
        ("Spend $1M on Alpha like last year, ROAS >= 2.", 1e6, 2.0),
    ],
)
def test_numbers_for_the_past_or_for_others_state_nothing(
    text: str, budget: float, floor: float | None
) -> None:
    b = rules(text)
    assert (b.total_budget, b.roas_floor) == (budget, floor)


def test_a_no_before_a_comma_does_not_reach_the_out_of_stock_clause() -> None:
    # "no test budget, out-of-stock products are fine" read as both excluding and including.
    b = rules("$2.3M on Alpha, no test budget, out-of-stock products are fine")
    assert b.exclude_oos is False and b.experiment_reserve == 0.0


# --- what the lexers offer the model (unseen5's misreadings) --------------------------------


def test_the_lexers_offer_what_unseen5s_briefs_state_and_not_what_they_count() -> None:
    """Bugs from `unseen5` (each offered the adapter a wrong span or none): "1,150 stores" as
    a budget (y09), "one tenth" as a ROAS floor of 1 (y13), no flight from a table's start and
    end rows (y07), February alone from "February, March and April 2027" (y16), and no
    retailer from "alpah and gama" (y10)."""
    from tools.brief.spans import candidates

    today = date(2026, 12, 3)
    stores = candidates("Acme at Delta Home: 1,150 stores. Budget $450,000, Q1.", "acme", today)
    assert list(stores.money) == ["$450,000"]
    tenth = candidates("Acme: $800k. Put one tenth aside for tests. ROAS 2.5.", "acme", today)
    assert tenth.floors == {"2.5": 2.5} and 0.1 in tenth.reserves.values()
    table = candidates("budget | $900,000\nstart | 2027-04-01\nend | 2027-05-15", "globex", today)
    assert list(table.flights.values()) == [(date(2027, 4, 1), date(2027, 5, 15))]
    months = candidates("$150k a month for February, March and April 2027", "initech", today)
    assert list(months.flights.values()) == [(date(2027, 2, 1), date(2027, 4, 30))]
    typos = candidates("brand x: 1.2 mil, alpah and gama, max margin", "brand_x", today)
    assert typos.mentions == {"alpah": "alpha", "gama": "gamma"}
    beat = candidates("Acme: $1M to beat last year on Meta and Alpha", "acme", today)
    assert set(beat.mentions.values()) == {"alpha"}  # neither "beat" nor "meta" is Beta


# --- what the rules read (unseen7's misreadings) -------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # A weekday before a date (u08, u24, u32, u42, u51): no flight, or the month around.
        ("$50k/week for the 5 weeks from Mon 5 Apr to Sun 9 May 2027", "2027-04-05", "2027-05-09"),
        (
            "$25,000 per week, beginning Monday March 1, 2027 and ending Sunday May 23, 2027",
            "2027-03-01",
            "2027-05-23",
        ),
        ("$40k a week for 10 weeks starting Monday 11 Jan 2027", "2027-01-11", "2027-03-21"),
        # A date in parentheses after the day it names (u15, u16, u48).
        ("$350,000, mid-Feb (Feb 15) through Mar 31", "2027-02-15", "2027-03-31"),
        (
            "$1M, Presidents Day (Feb 15, 2027) through Memorial Day (May 31, 2027)",
            "2027-02-15",
            "2027-05-31",
        ),
        (
            "$900K from Presidents Day weekend (Sat Feb 13, 2027) through April 30",
            "2027-02-13",
            "2027-04-30",
        ),
        # A named day of a fixed date as a bound (u39), ".." (u50), two months in a row (u56).
        ("$120k from Dec 7 through New Year's Eve", "2026-12-07", "2026-12-31"),
        ("budget: 950k / flight: 2027-03-01..2027-03-31", "2027-03-01", "2027-03-31"),
        ("US$620,000 across January and February", "2027-01-01", "2027-02-28"),
    ],
)
def test_dates_around_weekdays_named_days_and_parentheses_are_read(
    text: str, start: str, end: str
) -> None:
    b = rules(text, "globex", date(2026, 12, 5))
    assert (str(b.flight_start), str(b.flight_end)) == (start, end)


def test_two_months_apart_are_no_flight_range() -> None:
    b = rules("$1M in May and July 2027", "globex", date(2026, 12, 5))
    assert (b.flight_start, b.flight_end) != (date(2027, 5, 1), date(2027, 7, 31))


@pytest.mark.parametrize(
    ("text", "floor"),
    [
        ("| min ROAS | 2:1 |", 2.0),  # u04: a table cell
        ("Target incremental margin, 4-to-1 ROAS minimum.", 4.0),  # u37: read as 1
        ("maximize roas (at least 3x), 10% test", 3.0),  # u41
        ("margin, 3:1 floor, 20% tests", 3.0),  # u43
        ("competitors see 5x there; we need at least 2.5x", 2.5),  # u45
        ("kpi: roas / roas_min: 3.0", 3.0),  # u50
        ("sales focus, 2x floor", 2.0),  # u60
    ],
)
def test_floors_written_as_ratios_are_read(text: str, floor: float) -> None:
    assert rules(f"$600k on Alpha. {text}", "acme", date(2026, 12, 5)).roas_floor == floor


@pytest.mark.parametrize(
    ("text", "floor"),
    [
        # Floors with no word of ROAS, which the rules read as none (the model read them).
        ("Max sales. Nothing under 1.5x. 10% reserve.", 1.5),  # y51 of unseen5
        ("revenue, 2.5x or better. no holdout.", 2.5),  # z32 of unseen6
        ("revenue objective, 2.2 floor, standard 10% reserve", 2.2),  # v23 of unseen9
        ("optimizing contribution margin with a 2.5:1 minimum", 2.5),  # p25 of unseen10
        ("profit-maximizing, min 2x, 10% experiments", 2.0),  # q47 of unseen11
        # A ratio with no word of need, and a whole number before "floor", set none.
        ("a competitor says they got 6:1 there", None),
        ("12 floor displays at Alpha", None),
    ],
)
def test_floors_with_a_word_of_need_and_no_roas_are_read(text: str, floor: float | None) -> None:
    assert rules(f"$600k on Alpha. {text}", "acme", date(2026, 12, 5)).roas_floor == floor


@pytest.mark.parametrize(
    ("text", "exclude"),
    [
        ("Keep OOS items out.", True),  # u11: read as keeping them in
        ("dont filter out of stock skus", False),  # u44
        ("oos: include", False),  # u50
        ("oos: exclude", True),
        ("keep the oos skus in", False),
    ],
)
def test_out_of_stock_wording_is_read(text: str, exclude: bool) -> None:
    assert rules(f"$600k on Alpha, March 2027. {text}").exclude_oos is exclude


def test_fractions_of_a_million_and_mil_are_amounts() -> None:
    # "a quarter of a million" was read as $1M (u27), "half a mil" as no budget (u07).
    assert rules("a quarter of a million dollars on Alpha").total_budget == 250_000
    assert rules("three quarters of a million on Alpha").total_budget == 750_000
    assert rules("half a mil for alpha mart next month").total_budget == 500_000
    assert normalize("the first half of 2027, a quarter of the budget") == (
        "the first half of 2027, a quarter of the budget"
    )


def test_a_month_range_after_a_retailer_list_is_no_retailer() -> None:
    # u46: "Alpha Mart and Gamma Pharmacy, April-June 2027" refused "unknown retailer".
    b = rules("$1.5 million across Alpha Mart and Gamma Pharmacy, April-June 2027", "brand_x")
    assert set(b.retailers) == {"alpha", "gamma"}
    assert (b.flight_start, b.flight_end) == (date(2027, 4, 1), date(2027, 6, 30))


def test_rev_is_revenue() -> None:
    assert rules("320k on gamma, rev objective, min roas 2", "globex").objective == (
        "incremental_revenue"
    )


def test_a_corrected_objective_or_reserve_wins() -> None:
    # u46 and u43 of unseen7: the first value was kept.
    b = rules("$1.5M on Alpha, objective revenue.\nUpdate: switch the objective to margin.")
    assert b.objective == "incremental_margin"
    b = rules("$700k on Alpha, 20% tests\nBen: 20% is too much. Let's do 10%.\nAna: agreed, 10%.")
    assert b.experiment_reserve == 0.1


def test_reserve_from_a_table_a_restatement_and_not_the_past() -> None:
    # u04, u32, u38 and u58 of unseen7.
    assert rules("| spend | $500,000 |\n| experiments | none |").experiment_reserve == 0.0
    assert rules("| spend | $500,000 |\n| Holdout | 25% |").experiment_reserve == 0.25
    half = rules("$850k on Alpha. Test reserve: half of the usual 10%, so 5%.")
    assert half.experiment_reserve == 0.05
    past = rules("Last year we spent $1.2M and 6% went to tests. This year $1.8M, 10% for tests.")
    assert past.experiment_reserve == 0.1


def test_a_weekly_spend_row_is_a_rate() -> None:
    # u32 of unseen7: "$30k" was the whole budget.
    b = rules("| Weekly spend | $30k |\n| Weeks | 6 (Mon 1 Feb - Sun 14 Mar 2027) |", "initech")
    assert (b.total_budget, b.flight_start, b.flight_end) == (
        180_000,
        date(2027, 2, 1),
        date(2027, 3, 14),
    )


def test_this_half_is_a_period_not_a_reserve() -> None:
    # u21 of unseen7: "test Beta Grocers alone this half" held back 50% in the rules.
    b = rules("Acme H2 2027: we want to test Beta Grocers alone this half. Budget $1.3M.")
    assert b.experiment_reserve == 0.1
    assert rules("$1M on Alpha, hold half back for tests").experiment_reserve == 0.5


# --- what the rules read (unseen8's and unseen9's misreadings) ------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # Day ordinals in words (w41, w52 of unseen8): September alone, or July alone.
        (
            "$900k, april first through september thirtieth twenty twenty-seven",
            "2027-04-01",
            "2027-09-30",
        ),
        ("$1.25M from the first of February to the thirty-first of July 2027", "2027-02-01",
         "2027-07-31"),  # fmt: skip
        # Day-first numeric dates (v10, v21 of unseen9): no flight.
        ("$420k from 15/02/2027 to 15/04/2027", "2027-02-15", "2027-04-15"),
        ("USD 1,250,000, flight 08.02.2027 - 30.04.2027", "2027-02-08", "2027-04-30"),
        # Halves year first or number first (v17, v23, v57): 2026's H2, or none.
        ("5M for 2027 H2", "2027-07-01", "2027-12-31"),
        ("2MM for 1H27, beta only", "2027-01-01", "2027-06-30"),
        ("Acme Foods 2H 2027 plan. $6M total.", "2027-07-01", "2027-12-31"),
        # A range of quarters (v36): Q2 alone.
        ("$2.2M, Flight ........ Q2-Q3 2027", "2027-04-01", "2027-09-30"),
        # A whole year (w27, w53 of unseen8): none.
        ("two and a half million dollars at Alpha Mart over calendar 2027", "2027-01-01",
         "2027-12-31"),  # fmt: skip
        ("$2M total for 2027 (full year)", "2027-01-01", "2027-12-31"),
        # Three months listed with commas only (w44): April alone.
        ("acme beta grocers - 70k/mo for feb, mar, apr 2027", "2027-02-01", "2027-04-30"),
        # An arrow between two dates (w04, v15): none.
        ("Flight | 2027-03-01 \u2192 2027-08-31 | $2,000,000", "2027-03-01", "2027-08-31"),
    ],
)
def test_spoken_day_first_and_year_first_dates_are_read(text: str, start: str, end: str) -> None:
    b = rules(text, "acme", date(2026, 12, 5))
    assert (str(b.flight_start), str(b.flight_end)) == (start, end)


def test_a_year_for_the_past_is_no_flight_and_a_later_quarter_wins() -> None:
    b = rules("$1M on Alpha; we spent $800k in 2025. Q2 in 2027.", "acme", date(2026, 12, 5))
    assert (str(b.flight_start), str(b.flight_end)) == ("2027-04-01", "2027-06-30")


@pytest.mark.parametrize(
    ("text", "budget", "floor"),
    [
        # An earlier year's spend and ROAS (w33 of unseen8): its 2.9 was the floor.
        ("brand x beta grocers: 2025 spend was 380k @ 2.9 roas. for 2027 Q1 we have 420k. "
         "keep roas >= 2.5.", 420000, 2.5),  # fmt: skip
        # "LY" is last year (w60): its 2.7 was the floor.
        ("acme q2 2027, alpha mart, 340k. LY we hit 2.7 roas there on 290k. no roas floor.",
         340000, None),  # fmt: skip
    ],
)
def test_an_earlier_year_and_ly_state_nothing(
    text: str, budget: float, floor: float | None
) -> None:
    b = rules(text, "acme" if "acme" in text else "brand_x", date(2026, 12, 5))
    assert (b.total_budget, b.roas_floor) == (budget, floor)


def test_twenty_twenty_seven_is_a_year_and_a_half_of_a_number_is_no_share() -> None:
    assert normalize("september thirtieth twenty twenty-seven") == "september 30 2027"
    b = rules("Globex, $250k on Alpha, a minimum return of two and a half times spend", "globex")
    assert b.experiment_reserve == 0.1


# --- what the rules read (unseen10's and unseen11's misreadings) ----------------------------


@pytest.mark.parametrize(
    ("text", "brand", "field", "value"),
    [
        # A past campaign's dates are no flight (p16, q14, q40): they were the flight.
        ("Initech Home - context: our fall 2025 campaign (Sep 8-Oct 19) on Delta ran 140 SKUs. "
         "The new one is $650k on Alpha Mart + Delta Home, May 1 - June 30, 2027.", "initech",
         "flight_start", date(2027, 5, 1)),  # fmt: skip
        ("The Nov 2025 campaign (Nov 1-30) ran 48 SKUs at Alpha Mart. For next quarter we'd "
         "like $950,000 on Alpha Mart.", "brand_x", "flight_start", date(2027, 1, 1)),  # fmt: skip
        ("6 weeks, Aug 2 - Sep 12 2027, at $45,000 per week on Alpha Mart. 2026 BTS ran "
         "Aug 3-Sep 13 at $38k/wk.", "initech", "flight_start", date(2027, 8, 2)),  # fmt: skip
        # Repeating a past push asks for its retailer again, not for its dates (r53 of
        # unseen12): no retailer, once the past sentence was dropped whole.
        ("Acme Foods: repeating the Beta Grocers sales push we ran 2026-09-01 to 2026-10-15, "
         "but bigger: $800k, 2027-09-01 to 2027-10-15.", "acme", "retailers", ["beta"]),
        ("Acme Foods: repeating the Beta Grocers sales push we ran 2026-09-01 to 2026-10-15, "
         "but bigger: $800k, 2027-09-01 to 2027-10-15.", "acme", "flight_start",
         date(2027, 9, 1)),  # fmt: skip
        # A corrected flight wins (p35, q46): the first one did.
        ("Globex Health - $850k on Gamma Pharmacy, flight Jan-Feb 2027.\n\nEDIT: flight moved "
         "to Feb-Mar 2027.", "globex", "flight_start", date(2027, 2, 1)),  # fmt: skip
        ("Original: $1.2M, Alpha Mart, Mar-Apr 2027.\nUpdate from Lee: flight moves to Apr-May "
         "2027, rest unchanged.", "brand_x", "flight_start", date(2027, 4, 1)),  # fmt: skip
        # A retailer of a sentence about the past is not planned (q32): Alpha was.
        ("$520,000 on Delta Home, floor of 2.6.\n> Last time (Sept 2026) we did $300k at "
         "Alpha.", "initech", "retailers", ["delta"]),  # fmt: skip
        # "Beta Grocers is out", "leave Alpha and Beta out" (p46, v46): both were planned.
        ("$2,000,000 on Alpha Mart and Gamma Pharmacy - Beta Grocers is out this round.",
         "brand_x", "retailers", ["alpha", "gamma"]),  # fmt: skip
        ("Brand X: leave Alpha and Beta out of this one. $500k for Q3 2027.", "brand_x",
         "retailers", ["gamma"]),  # fmt: skip
        # A list's member with "only" after it is kept (w31): "drop" reached it too.
        ("$420k at Alpha Mart + Delta Home.\nUpdate: drop Alpha Mart, Delta Home only.",
         "initech", "retailers", ["delta"]),  # fmt: skip
        # "| ROAS |" is the objective when the floor has its own cell (p24): margin.
        ("Initech Home | Delta Home | 550k | ROAS | floor 3.0 | Q3 2027", "initech", "objective",
         "roas"),  # fmt: skip
        ("Acme, $880k on Beta. We want the most return per ad dollar, floor 3.3.", "acme",
         "objective", "roas"),  # fmt: skip
        ("acme foods - beta grocrs, $1.6m, drive revnue, no roas floor", "acme", "objective",
         "incremental_revenue"),  # fmt: skip
        # "Don't set a ROAS floor" is no ROAS objective (p49).
        ("Acme Foods at Delta Home, $780k. Don't set a ROAS floor.", "acme", "objective",
         "incremental_margin"),  # fmt: skip
        # "Zero holdout" ("0 holdout" once number words are digits; p20) and "OOS items stay
        # in" (p43).
        ("Initech, Alpha Mart, $300k. Zero holdout - we ran the lift study already.", "initech",
         "experiment_reserve", 0.0),  # fmt: skip
        ("Globex, $260k on Alpha Mart. OOS items stay in.", "globex", "exclude_oos", False),
        # "returned ... on $380k" last year is no budget (p32): it was.
        ("Last year's Initech campaign there returned 2.1 ROAS on $380k. For Q2 2027 we want "
         "$500k on Delta Home.", "initech", "total_budget", 500000),  # fmt: skip
    ],
)
def test_past_campaigns_corrections_and_cell_wording_are_read(
    text: str, brand: str, field: str, value: object
) -> None:
    assert getattr(rules(text, brand, date(2026, 12, 5)), field) == value


@pytest.mark.parametrize(
    ("brand", "text"),
    [
        # A period after a listed retailer is no retailer (m57 and n08: the brief was refused).
        ("acme", "Acme Foods, budget 4.4M, Alpha Mart + Delta Home, H2 2027, margin objective"),
        ("initech", "Initech, 1.5M, both Alpha Mart and Delta Home, H1 2027? Minimum ROAS 4."),
    ],
)
def test_a_period_after_a_retailer_list_is_no_unknown_retailer(brand: str, text: str) -> None:
    assert rules(text, brand, date(2026, 12, 5)).total_budget > 0


# Fields the rules read wrong in unseen16/unseen17 (their failures read, 2026-12-05).
_READ_WRONG_IN_UNSEEN16_17 = [
    # A month that is a field of its own (nine briefs of unseen16/17 read no flight).
    ("globex", "globex, 1.2 mil, gamma pharmacy only, feb. keep OOS items in", "flight_start",
     date(2027, 2, 1)),
    ("globex", "$800K | - alpha mart only | - objective: ROAS | - flight: April", "flight_end",
     date(2027, 4, 30)),
    ("acme", "acme - alpha and delta - 2.1M - jun. last june we were at 1.7", "flight_start",
     date(2027, 6, 1)),
    ("acme", "acme $1M on alpha, we may change it later", "flight_start", None),
    # "H2" in December is next year's; "FY27 H2"; "the first half of next year"; "next qtr";
    # "- full year 2027 -" is no range.
    ("globex", "globex 2.2m all rets, maximize incremental margin, 20% holdout, H2",
     "flight_start", date(2027, 7, 1)),
    ("brand_x", "Brand X retail media FY27 H2 | - total $4.2M", "flight_end",
     date(2027, 12, 31)),
    ("globex", "Globex on Alpha Mart, $1M, for the first half of next year?", "flight_end",
     date(2027, 6, 30)),
    ("initech", "initech home. 1.35M. delta + alpha. next qtr. margin.", "flight_end",
     date(2027, 3, 31)),
    ("globex", "Globex Health - $5.5M - full year 2027 - alpha & gamma", "flight_start",
     date(2027, 1, 1)),
    # Last year's ROAS reported before "so let's": neither the floor nor the objective.
    ("acme", "Acme $4M. Last year Q1 we did 3.1M and ROAS came in around 3.4 so let's make "
     "sure we don't go below 3x.", "roas_floor", 3.0),
    ("acme", "Acme $4M. Last year Q1 we did 3.1M and ROAS came in around 3.4 so let's make "
     "sure we don't go below 3x.", "objective", "incremental_margin"),
    ("acme", "acme 2 mil, alpha, beta. last yr we did 1.6 mil at 3.1 roas. keep roas at or "
     "above 3.", "roas_floor", 3.0),
    ("brand_x", "Brand X $1.35M, Beta. Last year's Q2 returned 2.9 ROAS, don't want to dip "
     "below 2.5 this time.", "roas_floor", 2.5),
    ("brand_x", "Brand X $1M, don't go below $200k at Beta", "roas_floor", None),
    # No experiments, said as a want; a retailer on hold; OOS kept excluded.
    ("brand_x", "Brand X $4.2M on Alpha Mart. We don't want any holdout this round.",
     "experiment_reserve", 0.0),
    ("brand_x", "brand x 450k for january, beta only. don't hold any back for tests.",
     "experiment_reserve", 0.0),
    ("initech", "Initech $2.4M next quarter, Alpha Mart only for now, Delta Home is on hold.",
     "retailers", ["alpha"]),
    ("acme", "acme - alpha - 2.1M. keep out-of-stock products excluded as usual.",
     "exclude_oos", True),
]

# Fields the rules read wrong in unseen18/unseen19 (their failures read).
_READ_WRONG_IN_UNSEEN18_19 = [
    # A month word that is nothing else; "month of March"; two months or quarters in a row.
    ("globex", "globex gamma pharmacy 300k february maximize roas floor 2.5x 15% test",
     "flight_start", date(2027, 2, 1)),
    ("acme", "acme foods jan campaign 850k all retailers. nothing fancy", "flight_end",
     date(2027, 1, 31)),
    ("initech", "Initech Home – Delta Home only – $180k – month of March – maximize ROAS",
     "flight_start", date(2027, 3, 1)),
    ("brand_x", "can you run brand x at 1.1m over feb+mar on alpha mart", "flight_end",
     date(2027, 3, 31)),
    ("globex", "Globex – Gamma Pharmacy – budget 2,000,000 – Q1 and Q2 2027 – revenue",
     "flight_end", date(2027, 6, 30)),
    ("initech", "initech 2 million for q3 — wait, make that Q3+Q4, same 2M total.",
     "flight_end", date(2027, 12, 31)),
    ("acme", "Acme $1M on Alpha, Q1 and Q3 2027", "flight_end", date(2027, 3, 31)),
    ("initech", "Initech has 1.5M for retail media next year, first half. Alpha & Delta.",
     "flight_end", date(2027, 6, 30)),
    # Floors: after "ROAS," and "guardrail", a correction, last month's ROAS.
    ("acme", "Acme $800K through Alpha Mart. The goal is ROAS, minimum 3.8.", "roas_floor",
     3.8),
    ("globex", "Globex $2M in Q2. Primary KPI incremental revenue. ROAS guardrail 2.8.",
     "roas_floor", 2.8),
    ("globex", "Globex 1.6 million on Gamma. Min ROAS of 3.2. Actually, lower the floor to "
     "3.0.", "roas_floor", 3.0),
    ("initech", "Initech $400,000 on Delta Home. Last Feb we spent 320k there and got ~2.1 "
     "ROAS fyi. Keep ROAS above 2.5 please.", "roas_floor", 2.5),
    ("acme", "Acme $1M on Alpha, ROAS, 10% tests", "roas_floor", None),
    # No testing money; OOS kept in, said briefly or after "no tests".
    ("brand_x", "Brand X $1,100,000 at Beta Grocers. Please don't reserve anything for "
     "testing.", "experiment_reserve", 0.0),
    ("brand_x", "brand x 2.25M alpha beta gamma Q3 margin no tests keep OOS", "exclude_oos",
     False),
    ("brand_x", "Brand X 1.9M USD. Notes: client wants OOS products kept in the plan.",
     "exclude_oos", False),
]

# Fields the rules read wrong in unseen20/unseen21 (their failures read), and the one brief of
# unseen23 read after round 4.
_READ_WRONG_IN_UNSEEN20_23 = [
    # A retailer handled elsewhere, paused or to be decided is left out.
    ("brand_x", "Brand X $3.25M. Beta Grocers and Gamma Pharmacy only, Alpha is being "
     "handled by a separate JBP deal.", "retailers", ["beta", "gamma"]),
    ("acme", "Acme 1.8M. retailers: Alpha + Delta (beta is handled by another agency). H1",
     "retailers", ["alpha", "delta"]),
    ("acme", "Acme $3.4M. Beta Grocers and Delta Home only, Alpha is on pause.", "retailers",
     ["beta", "delta"]),
    ("brand_x", "brand x 2.4M. retailers: beta + gamma (alpha TBD, leave out for now)",
     "retailers", ["beta", "gamma"]),
    # Said in the singular after a list, of its last mention alone (f57 of unseen23: the
    # whole list was excluded and the brief refused).
    ("acme", "Acme $3.25M. They want Alpha Mart and Delta Home, Beta is on pause because "
     "of the contract.", "retailers", ["alpha", "delta"]),
    ("acme", "Acme $1M, Alpha Mart and Beta Grocers are out, Delta only", "retailers",
     ["delta"]),
    # A term joined to its cue states the objective.
    ("globex", "Globex budget 900k, no dates yet, gamma pharmacy, want ROAS-optimized",
     "objective", "roas"),
    ("initech", "1.05M for Initech on Delta, 4/1 through 6/30? Revenue-focused.",
     "objective", "incremental_revenue"),
    # Last spring's and last Q1's ROAS set no floor; a floor said again; "min 5".
    ("acme", "Acme $1,900,000 across Alpha and Delta. Last spring we got 3.6 ROAS on "
     "Alpha. Target margin.", "roas_floor", None),
    ("acme", "Acme - Delta - $550k - Q1 2027. Last Q1 at Delta we spent 480k at 2.9 ROAS.",
     "roas_floor", None),
    ("globex", "Globex $1,000,000 for Q1. ROAS floor 3, but actually bump it to 3.5.",
     "roas_floor", 3.5),
    ("initech", "initech $200k alpha mart march 2027 roas focus min 5", "roas_floor", 5.0),
    ("acme", "Acme $1M on Alpha; bump it to 12 retailers next year", "roas_floor", None),
    # Reserves: "test cell", "exp"; OOS not dropped.
    ("acme", "Brand | Acme Foods | Budget | $900K | Test cell | 5%", "experiment_reserve",
     0.05),
    ("initech", "initech budget is 2.1M, alpha. H1. margin. 12% exp.", "experiment_reserve",
     0.12),
    ("globex", "Globex, $1.5MM, all retailers, July 2027, margin, no exp reserve",
     "experiment_reserve", 0.0),
    ("brand_x", "brand x $825k next quarter at beta, floor 2.5x, and don't drop OOS items",
     "exclude_oos", False),
    # Budgets: a cut from one amount to another, last year's spend as a noun.
    ("brand_x", "the brand x budget got cut from 3M to 2.5M after the offsite", "total_budget",
     2_500_000),
    ("brand_x", "brand x\n* last yr spend: 2.1M\n* 2027 Q1 budget: 2.4M", "total_budget",
     2_400_000),
    # A correction said with "sorry"; the year in brackets.
    ("brand_x", "brand x 1.5M on alpha and beta for Q1... wait no, sorry, Q2.", "flight_start",
     date(2027, 4, 1)),
    ("globex", "Globex Health — $4M for the year (2027). Gamma Pharmacy.", "flight_end",
     date(2027, 12, 31)),
]


# Read wrong in earlier sets and left by their rounds (u17 of unseen7, n35 of unseen17, a18 of
# unseen18, d34 and d44 of unseen21), with the guards beside them.
_LEFT_BY_EARLIER_ROUNDS = [
    ("acme", "@planning acme, 600k, delta only, apr-may 27, margin, thx", "flight_end",
     date(2027, 5, 31)),
    ("globex", "Globex: feb-mar 27, $900k at gamma", "flight_end", date(2027, 3, 31)),
    ("brand_x", "notes\n* last yr spend: 2.1M, roas 3.1\n* Q1 budget: 2.4M\n"
     "* roas can't go below 2.5", "roas_floor", 2.5),
    ("brand_x", "LY ROAS 2.8, floor 3.0. Budget 1M at Alpha", "roas_floor", 3.0),
    ("brand_x", "brand x 2.4M q1 at beta, roas cant go below 2.5", "roas_floor", 2.5),
    ("brand_x", "Brand X, $1.1M at Beta Grocers for March. No test reserve, we already ran "
     "tests in Q4.", "flight_start", date(2027, 3, 1)),
    ("globex", "Globex: $1.8M, Alpha Mart only. Actually, scratch that - do Gamma Pharmacy "
     "only.", "retailers", ["gamma"]),
    ("globex", "Globex: $1.8M at Alpha Mart. Scratch that, $2M. Gamma too.", "retailers",
     ["alpha", "gamma"]),
    ("initech", "initech - we spent 1.7M last year on alpha; this year it's 2.1M, same "
     "retailer. H1.", "retailers", ["alpha"]),
]


_READ_WRONG_IN_UNSEEN26_27 = [
    # A retailer paused, before or after its mention.
    ("initech", "initech spring push, 1.1M. pause alpha mart for now so it's only delta home",
     "retailers", ["delta"]),
    ("globex", "Globex - $1.6M. We're pausing Gamma for now so everything goes to Alpha Mart.",
     "retailers", ["alpha"]),
    ("initech", "Initech: 600k. Alpha only (Delta paused). Revenue.", "retailers", ["alpha"]),
    ("globex", "Globex Health - 2.0M, Alpha Mart (Gamma's paused while we renegotiate).",
     "retailers", ["alpha"]),
    ("brand_x", "Brand X: 2.5MM budget, gamma pharmacy excluded, Mar 1-Apr 30.", "retailers",
     ["alpha", "beta"]),
    # An earlier draft's retailers, unless what follows adds to them.
    ("acme", "Acme, $3.6M. We originally discussed Beta Grocers too, but legal hasn't cleared "
     "it, so plan Alpha Mart and Delta Home only.", "retailers", ["alpha", "delta"]),
    ("brand_x", "brand x: we originally said Alpha and Beta, but let's do 2.3M and add Gamma "
     "too.", "retailers", ["alpha", "beta", "gamma"]),
    # The amount to use, said right before it.
    ("acme", "Budget: 3M. Actually scratch that, finance just cut us to 2.4M. Everywhere.",
     "total_budget", 2_400_000),
    ("acme", "Our agency recommended 2.5M but we're going with 1.9M. All retailers.",
     "total_budget", 1_900_000),
    ("initech", "Budget $1.8M - wait, that number included agency fees; use $1.5M. Alpha.",
     "total_budget", 1_500_000),
    ("globex", "Globex, Alpha only. Budget 850k -> bumped to 950k after the Q4 overdelivery. "
     "Jan 1 to Feb 28.", "total_budget", 950_000),
    ("globex", "Globex, Alpha only. Budget 850k -> bumped to 950k after the Q4 overdelivery. "
     "Jan 1 to Feb 28.", "flight_start", date(2027, 1, 1)),
    ("brand_x", "Brand X - 1.5M -> scratch that, 1.7M. Alpha + Gamma.", "total_budget",
     1_700_000),
    ("globex", "Competitor dropped $5M at Gamma last quarter. Globex has 2.2M for H1 2027, both "
     "of our retailers.", "total_budget", 2_200_000),
    # No experiments, said as not bothering.
    ("globex", "Globex, 650k at Gamma. Don't bother with experiments, every dollar in market.",
     "experiment_reserve", 0.0),
    ("brand_x", "Brand X, 300k at Beta next month. dont bother with a holdout.",
     "experiment_reserve", 0.0),
    # A ROAS in a sentence that reports the past.
    ("globex", "Recap: Q4 2026 we did $900K at Gamma with a 3.1 ROAS. For Q1 2027 we want "
     "$1.1M, Gamma only.", "roas_floor", None),
    # Flights: tomorrow, the end of a month, a first quarter written with a hyphen.
    ("acme", "acme, $3.3M, all retailers, starting tomorrow thru Dec 31", "flight_start",
     date(2026, 12, 6)),
    ("acme", "Acme $4.2M, all retailers. Launch Jan 1 and run through end of June.",
     "flight_end", date(2027, 6, 30)),
    ("acme", "Acme $4.2M, all retailers, Jan 1 through the end of June.", "flight_start",
     date(2027, 1, 1)),
    ("acme", "Acme's first-quarter plan: $3.6M in retail media.", "flight_end",
     date(2027, 3, 31)),
]


_READ_WRONG_IN_UNSEEN28_29 = [
    # A retailer on pause, not to be used, scratched.
    ("acme", "Acme $2.5M, Alpha Mart and Delta Home only (Beta's on pause while we renegotiate).",
     "retailers", ["alpha", "delta"]),
    ("brand_x", "Brand X. Budget 2M. Don't use Gamma Pharmacy - we're paused there.",
     "retailers", ["alpha", "beta"]),
    ("globex", "re: Q1 - $1.0M, gamma, rev. Actually scratch gamma, do alpha mart only.",
     "retailers", ["alpha"]),
    # A floor's ROAS after a want is no objective; "after revenue growth" is one.
    ("globex", "Plan 1.8M for Globex at Gamma. Want ROAS >= 3.5 and we're after revenue growth.",
     "objective", "incremental_revenue"),
    ("globex", "Globex 1.6M at Gamma. Objective: ROAS. Floor 2.5.", "objective", "roas"),
    # The final number; a market's size; a quarter and a flight said in the past.
    ("brand_x", "We're at $1.2M for Beta in Q1 - wait, sorry, that was the draft. Final number "
     "is $950k.", "total_budget", 950_000),
    ("brand_x", "We're at $1.2M for Beta in Q1 - wait, sorry, that was the draft. Final number "
     "is $950k.", "flight_start", date(2027, 1, 1)),
    ("acme", "Acme: the category is ~$1.2bn nationally. 6M across Alpha, Beta, Delta.",
     "total_budget", 6_000_000),
    ("brand_x", "For Brand X: we spent 1.4M in Q4 with a 3.1 ROAS. For Q1 I want $1.6M at Alpha.",
     "total_budget", 1_600_000),
    ("brand_x", "For Brand X: we spent 1.4M in Q4 with a 3.1 ROAS. For Q1 I want $1.6M at Alpha.",
     "roas_floor", None),
    ("initech", "Initech: Alpha Mart and Delta Home, $900k. We had $650k in Q4. Revenue.",
     "flight_start", None),
    ("acme", "Last Q we did $800k at Delta with a 2.1 ROAS. This time: $1.1M at Delta, need "
     "ROAS >= 2.5.", "roas_floor", 2.5),
    ("brand_x", "Our last Alpha Mart flight returned 4.2 ROAS on $300k. Let's go bigger: $800k "
     "on Alpha Mart in January.", "total_budget", 800_000),
    # Round 20 (unseen41, read after its measure): someone else's spend told as a rumour, a
    # floor after "must clear" or "dont let it dip under", a month between slashes.
    ("brand_x", "Competitor is rumored to be dropping $5M at Beta Grocers in Q1. We're not "
     "matching that. Our number is $2.2M, split across Alpha Mart and Beta Grocers.",
     "total_budget", 2_200_000),
    ("globex", "Globex Health wants a Q2 flight. Budget $1.05M (last Q2 was $870k at 2.4x). Max "
     "ROAS, must clear 3.0. Both Alpha Mart and Gamma Pharmacy.", "roas_floor", 3.0),
    ("initech", "hey can u plan initech for next month? 1.1m, delta + alpha. maximize roas but "
     "dont let it dip under 2.0. no tests pls", "roas_floor", 2.0),
    ("initech", "initech home / 700k / every retailer we're at / max ROAS / min ROAS 2.5 / March "
     "/ keep OOS in", "flight_start", date(2027, 3, 1)),
    # "Last flight" with no words between (ua47 of unseen40, round 19).
    ("globex", "Globex Health: $880,000 on Alpha Mart. Last flight got a 2.1 ROAS; this time we "
     "need ROAS >= 2.5. Margin.", "roas_floor", 2.5),
    # A need after the word ROAS in the same sentence, with no ratio unit.
    ("globex", "Globex: $300k on Gamma next month. Maximize ROAS but no lower than 3.0.",
     "roas_floor", 3.0),
    ("globex", "Globex 2.25 mil for gamma only. maximize ROAS, and it has to be at least 3.5",
     "roas_floor", 3.5),
    ("brand_x", "BX Gamma only. 400k. Last yr ROAS was 3.1 there, want at least 3.0 this time.",
     "roas_floor", 3.0),
    ("brand_x", "BX Gamma only. 400k. Maximize ROAS, at least 2 retailers.", "roas_floor", None),
    # The end of a month's days.
    ("acme", "Delta only. $540k for the rest of December, starting Dec 8 through the 31st.",
     "flight_end", date(2026, 12, 31)),
]


_READ_WRONG_IN_UNSEEN30_31 = [
    # "This year" against last year is the planned year, not December's rest.
    ("brand_x", "Last year we spent $1.8M at Beta. This year's budget is $2.2M, all three "
     "retailers. Run it next quarter.", "flight_start", date(2027, 1, 1)),
    ("initech", "Last year Initech spent $1.4M at Delta and hit 2.1 ROAS. This year the budget "
     "is $1.6M, same two retailers.", "flight_end", None),
    ("initech", "Initech, $1.6M at Delta, through the rest of this year.", "flight_end",
     date(2026, 12, 31)),
    # A point in a month is no flight month.
    ("initech", "initech budget for next quarter is 900k. Delta only. We're restocking mid-Jan.",
     "flight_end", date(2027, 3, 31)),
    # Handled elsewhere, said with "'s".
    ("globex", "Globex - $500k for April. Alpha Mart only (Gamma's being handled by the "
     "pharmacy team).", "retailers", ["alpha"]),
    # No experiments, misspelt or said of the budget.
    ("acme", "acme needs a plan for 350k on delta home, jan 2027. no experimnts this time pls",
     "experiment_reserve", 0.0),
    ("acme", "Acme $1.8M at Delta. Please don't reserve any budget for experiments.",
     "experiment_reserve", 0.0),
    # A spend that ended, and a number finance says.
    ("acme", "Acme's 2026 RMN spend ended at $3.1M with blended ROAS of 2.4. For next year's "
     "first half: $3.6M, don't let ROAS go under 2.2.", "total_budget", 3_600_000),
    ("acme", "Acme's 2026 RMN spend ended at $3.1M with blended ROAS of 2.4. For next year's "
     "first half: $3.6M, don't let ROAS go under 2.2.", "roas_floor", 2.2),
    ("initech", "Initech Home plan - budget $2M, hmm, no, finance says $1.75M. Alpha only.",
     "total_budget", 1_750_000),
]

_READ_WRONG_IN_UNSEEN32_33 = [
    # A zero share said with "share".
    ("globex", "Globex: Alpha Mart only, $1.4M, max ROAS, experiment share 0, Q2 2027.",
     "experiment_reserve", 0.0),
    # Out-of-stock items left in.
    ("globex", "Globex, $900k at Gamma. Leave out-of-stock items in the plan.", "exclude_oos",
     False),
    # Two retailers paused together, and one pulled out of.
    ("brand_x", "Brand X: $1.1M for Q2. Beta only - Alpha Mart and Gamma Pharmacy are both "
     "paused.", "retailers", ["beta"]),
    ("globex", "Globex - we're pulling out of Gamma Pharmacy for now. $700k on what's left.",
     "retailers", ["alpha"]),
    # A table row that says no.
    ("initech", "Initech, Q3 2027\nRetailer | In?\nAlpha Mart | no (paused)\nDelta Home | yes\n"
     "Budget: 600K", "retailers", ["delta"]),
    # Last flight's ROAS in brackets beside its spend; the floor asked for after it.
    ("acme", "acme spring push done (spent $600k, ROAS 3.7). next month: $900k everywhere, min "
     "ROAS 2.5", "roas_floor", 2.5),
    # A competitor's spend, said with "reportedly".
    ("acme", "Our competitor reportedly dropped $4M at Alpha Mart. Our plan: $1.6M at Alpha "
     "Mart.", "total_budget", 1_600_000),
    # Corrections: "wait, make that", "? no,".
    ("brand_x", "brand x: $900k, beta only, ROAS floor 2 - wait, make that 2.5. Q1.",
     "roas_floor", 2.5),
    ("globex", "Globex - $2bn? no, $2M of course. Gamma only. Q3 next year.", "total_budget",
     2_000_000),
    # The coming month after last year's.
    ("brand_x", "We spent $300k at Beta last May and want to run it again this coming May with "
     "$450k.", "flight_start", date(2027, 5, 1)),
]

_READ_WRONG_IN_UNSEEN34_35 = [
    # A label of the past before a colon: its spend and ROAS are no budget and no floor.
    ("initech", "Last quarter: $300k spend, 2.9 ROAS at Alpha. Next quarter we go to $500k at "
     "Alpha Mart.", "total_budget", 500_000),
    ("initech", "Last quarter: $300k spend, 2.9 ROAS at Alpha. Next quarter we go to $500k at "
     "Alpha Mart.", "roas_floor", None),
    ("brand_x", "Last year's Beta campaign: $700k, 1.9 ROAS. New plan: $850k at Beta, floor "
     "2.2.", "roas_floor", 2.2),
    # The share of a larger envelope this plan gets.
    ("acme", "Of the $900M total marketing pot, this plan gets $4M. Alpha Mart only.",
     "total_budget", 4_000_000),
    # A floor the ROAS must clear.
    ("globex", "$600k at Alpha Mart; ROAS has to clear 2.8.", "roas_floor", 2.8),
]


@pytest.mark.parametrize(
    ("brand", "text", "field", "value"),
    [*_READ_WRONG_IN_UNSEEN16_17, *_READ_WRONG_IN_UNSEEN18_19, *_READ_WRONG_IN_UNSEEN20_23,
     *_LEFT_BY_EARLIER_ROUNDS, *_READ_WRONG_IN_UNSEEN26_27, *_READ_WRONG_IN_UNSEEN28_29,
     *_READ_WRONG_IN_UNSEEN30_31, *_READ_WRONG_IN_UNSEEN32_33, *_READ_WRONG_IN_UNSEEN34_35],
)
def test_fields_the_blind_sets_read_wrong(brand: str, text: str, field: str, value: object) -> None:
    assert getattr(rules(text, brand, date(2026, 12, 5)), field) == value


def test_a_past_roas_equal_to_the_floor_is_not_said_to_be_ignored() -> None:
    """ "Last year's Q1 was 1.2M w/ ROAS 3.4 ... ROAS kept above 3.4" warned "ignored ROAS 3.4"
    beside a floor of $3.40, read by an approver as a contradiction (pa23 of unseen35)."""
    text = ("Q1 2027 Globex: 1.5M total. Last year's Q1 was 1.2M w/ ROAS 3.4. This time we want "
            "revenue growth and ROAS kept above 3.4. 10% tests.")  # fmt: skip
    b = rules(text, "globex")
    assert b.roas_floor == 3.4
    assert not any("ROAS 3.4" in w for w in b.warnings), b.warnings
    other = rules(text.replace("ROAS 3.4.", "ROAS 2.9."), "globex")
    assert other.roas_floor == 3.4 and other.warnings == [
        "ignored ROAS 2.9: the brief gives it as a past result or someone else's, not as this "
        "plan's minimum"] + other.warnings[1:]  # fmt: skip


def test_a_month_flight_and_a_maximizing_goal_are_read() -> None:
    """ "March flight" read as no dates and "ROAS-maximizing plan" as no goal (qa07 and qa12 of
    unseen36), both rated misleading by an approver reading their reports."""
    b = rules("Can you build Globex a plan? $650k, profit-focused, 20% reserved for "
              "incrementality tests, March flight.", "globex", date(2026, 12, 5))  # fmt: skip
    assert (b.flight_start, b.flight_end) == (date(2027, 3, 1), date(2027, 3, 31))
    assert rules("$650k at Alpha, a May campaign", "globex", date(2026, 12, 5)).flight_start == \
        date(2027, 5, 1)  # fmt: skip
    assert rules("$650k at Alpha; we may campaign later", "globex").flight_start is None
    assert rules("Initech Home, $1.1M, Alpha Mart. ROAS-maximizing plan pls.",
                 "initech").objective == "roas"  # fmt: skip
    assert rules("$1M at Alpha, revenue-maximizing please").objective == "incremental_revenue"


def test_a_retailer_named_then_left_out_leaves_the_others() -> None:
    """ "Last Feb we spent $650k at Gamma Pharmacy alone and it underdelivered, so this time
    leave Gamma out" refused the brief as excluding every retailer (sa02 of unseen38)."""
    text = ("For February we have $800k to work with. Last Feb we spent $650k at Gamma "
            "Pharmacy alone and it underdelivered, so this time leave Gamma out.")  # fmt: skip
    assert rules(text, "brand_x").retailers == ["alpha", "beta"]


def test_a_retailer_handled_elsewhere_or_left_out_by_pronoun_is_excluded() -> None:
    """ "Alpha Mart and Beta Grocers (Gamma is handled separately by the pharmacy team, leave
    it out)" planned Gamma too (sa18 of unseen38, rated misleading by an approver)."""
    text = ("Brand X, $900k: plan Alpha and Beta (Gamma is handled separately by another "
            "team, leave it out). Revenue goal.")  # fmt: skip
    assert rules(text, "brand_x").retailers == ["alpha", "beta"]
    pronoun = "Brand X, $900k across Alpha and Beta. Gamma had a bad quarter; leave it out."
    assert rules(pronoun, "brand_x").retailers == ["alpha", "beta"]
    # The pronoun speaks of the nearest mention only, in its own sentence.
    assert rules("$900k on Alpha Mart; keep it simple.", "brand_x").retailers == ["alpha"]
    assert rules("Gamma only, $900k. Drop it if stock runs out? No, keep it.",
                 "brand_x").retailers == ["gamma"]  # fmt: skip
    assert rules("$900k on Alpha and Beta; Gamma is handled separately", "brand_x"
                 ).retailers == ["alpha", "beta"]  # fmt: skip


def test_a_month_naming_a_past_event_is_not_the_flight() -> None:
    """ "pausing Gamma Pharmacy after the Nov billing issue" read as a November 2027 flight
    (sa23 of unseen38, rated misleading by an approver)."""
    text = "Alpha only (pausing Gamma since the Oct pricing mixup). Budget $700k. Sales lift."
    b = rules(text, "globex", date(2026, 12, 5))
    assert (b.flight_start, b.flight_end) == (None, None)
    assert rules("$700k at Alpha after the March reset", "globex").flight_start is None
    still = rules("$700k at Alpha, flight: Oct.", "globex", date(2026, 12, 5))
    assert still.flight_start == date(2027, 10, 1)


def test_a_quarter_under_way_told_in_the_past_is_not_the_flight() -> None:
    """ "no holdouts this time - we ran tests all of Q4. Feb flight." planned October to
    December 2026 (ta02 of unseen39, rated misleading by an approver)."""
    text = "budget 800k, all retailers. no tests this time - we ran tests all of Q4. Feb flight."
    b = rules(text, "brand_x", date(2026, 12, 5))
    assert (b.flight_start, b.flight_end) == (date(2027, 2, 1), date(2027, 2, 28))
    # the rest of this quarter, asked for, is still a flight
    now = rules("budget 800k, run it for the rest of Q4", "brand_x", date(2026, 12, 5))
    assert now.flight_end == date(2026, 12, 31)


def test_same_retailer_plus_another_keeps_the_past_one() -> None:
    """ "Last year we spent $900k at Delta Home ... This year the budget's $1.1M - same
    retailer plus Alpha Mart" planned Alpha Mart alone (ta04 of unseen39, rated misleading)."""
    text = ("Last year we spent $800k at Delta Home and it flopped. This year it's $1.2M - same "
            "retailer plus Alpha Mart.")  # fmt: skip
    assert rules(text, "initech").retailers in ([], ["alpha", "delta"])


def test_a_share_told_as_a_holdout_is_said_to_be_read_as_budget() -> None:
    """ "hold out 20%" is read as 20% of the budget held for the test (the gold rule); an
    approver may mean 20% of the market held out, so the reading is said, as a settled note
    that asks no one (reviewers of unseen38 and unseen39)."""
    from tools.brief.llm import settled

    told = rules("Plan $800k at Alpha Mart, hold out 20% for a geo test.")
    assert told.experiment_reserve == 0.2
    note = "the brief's 20% holdout is read as 20% of the budget held for the test"
    assert [w for w in told.warnings if note in w] and all(settled(w) for w in told.warnings)
    assert any("12% of the budget" in w for w in rules("$500k, 12% for holdouts").warnings)
    # a holdout ending its clause ("Revenue growth. 10% holdout.": ua16, ua30 of unseen40 had
    # no note, the clause and the words before it run together)
    for brief in ("$1.8M on Beta Grocers. Revenue growth. 10% holdout. Starting Jan 11.",
                  "budget 450k. just alpha. 25% holdout, we're running an incrementality study"):
        assert any("holdout is read as" in w for w in rules(brief).warnings), brief
    # Money words say it is budget: nothing to say; neither is there for "no holdout".
    for brief in ("$500k, reserve 10% of budget for holdout tests", "$500k, no holdout",
                  "$500k, 10% for experiments"):  # fmt: skip
        assert not [w for w in rules(brief).warnings if "market held out" in w], brief


def test_a_budget_for_a_year_without_dates_asks_a_person() -> None:
    """ "this yr buget is 850k" with no dates was planned over the standard 28 days, a year's
    money in four weeks, and nothing said so (sa12 of unseen38): the reading stands, with a
    note to check. A year the brief dates is its flight ("whole year 2027", i30 of unseen25)."""
    from tools.brief.llm import settled

    for brief, said in (("last year we did 700k at alpha mart. this yr buget is 850k.", "this yr"),
                        ("Our annual budget of $2M, Alpha Mart only.", "annual")):  # fmt: skip
        b = rules(brief)
        note = [w for w in b.warnings if "given for a year" in w]
        assert note and f"({said!r})" in note[0] and not settled(note[0]), b.warnings
        assert b.flight_start is None and b.total_budget in (850_000, 2_000_000)
    # Dated, or a year said of something else: nothing to check.
    assert not rules("This year the budget is $1.6M, Q1 2027, Alpha Mart.").warnings
    assert not [w for w in rules("$400k at Alpha Mart. Last year we spent $2M.").warnings
                if "for a year" in w]
    whole = rules("Brand X, 5M, whole year 2027, all retailers, margin, 10% test", "brand_x")
    assert (whole.flight_start, whole.flight_end) == (date(2027, 1, 1), date(2027, 12, 31))


def test_round_17_out_of_scope_sitting_out_re_running_and_wont_run_tests() -> None:
    """Planner round 17, from the round 5 finding set (read sets): "Delta's not in scope" and
    "Beta & Delta sit this one out" planned the retailer anyway (ta52, ta57 of unseen39); a
    re-run of a past campaign named no retailer (sa57 of unseen38); "We won't run any tests"
    held the default 10% (ta58)."""
    assert rules("$650K @ Alpha Mart, margin, Feb 1-Mar 31. Delta's not in scope.",
                 "initech").retailers == ["alpha"]  # fmt: skip
    assert rules("Acme: 350k on Alpha Mart in Feb. Beta & Delta sit this one out.").retailers \
        == ["alpha"]  # fmt: skip
    rerun = rules("We're re-running the Alpha Mart campaign that did $1.1M last year. This "
                  "year's budget is $1.35M. Next quarter.")  # fmt: skip
    assert rerun.retailers == ["alpha"] and rerun.total_budget == 1_350_000
    assert rules("$1.9M for Alpha Mart + Beta Grocers. We won't run any tests.",
                 "brand_x").experiment_reserve == 0.0  # fmt: skip
    # a test not run somewhere else is no statement about this plan's reserve
    assert rules("$1.9M at Alpha Mart, 10% for tests.").experiment_reserve == 0.1


def test_round_18_rows_other_brands_only_suffix_and_plural_stock_outs() -> None:
    """Planner round 18, from the four briefs of unseen40 rated misleading in both versions of
    round 5's measure (read after it): an "Objective | ROAS" row above a "Floor | 3.0" row
    read no objective (ua29); "(Initech supposedly put $3M into Alpha, fwiw.)" was Globex's
    budget (ua35); "Gamma-only test" named no retailer (ua38); "keep out of stocks" was not
    about stock-outs (ua40)."""
    table = rules("Budget    | $4,000,000\nObjective | ROAS\nFloor     | 3.0\nReserve   | 10%")
    assert (table.objective, table.roas_floor) == ("roas", 3.0)
    rival = rules("Globex Health: planning $1.0M. (Initech supposedly put $3M into Alpha, fwiw.) "
                  "We'll do Alpha Mart and Gamma Pharmacy.", "globex")  # fmt: skip
    assert rival.total_budget == 1_000_000
    own = rules("Initech: we put $3M into Alpha Mart this quarter.", "initech")
    assert own.total_budget == 3_000_000  # the brief's own brand: its budget
    assert rules("Brand X Gamma-only test: $200k, max ROAS", "brand_x").retailers == ["gamma"]
    assert rules("INITECH | $5.5M | all | margin | keep out of stocks", "initech").exclude_oos \
        is False  # fmt: skip


def test_a_correction_of_something_else_is_no_correction_of_the_objective() -> None:
    """ "budget 600k -> actually bump to 650k. Gamma Pharmacy. revenue." names one objective;
    "the brief corrects its objective" beside it was noise to an approver (ua39 of unseen40)
    and a question nobody needed (23 briefs of the registered sets had it)."""
    b = rules("Globex budget 600k -> actually bump to 650k. Gamma Pharmacy. revenue. Q1.",
              "globex")  # fmt: skip
    assert b.objective == "incremental_revenue" and b.total_budget == 650_000
    assert not [w for w in b.warnings if "corrects its objective" in w]
    switched = rules("$500k at Alpha Mart, maximize revenue. Update: switch the objective to "
                     "incremental margin.")  # fmt: skip
    assert switched.objective == "incremental_margin"
    assert "the brief corrects its objective; used incremental_margin" in switched.warnings


@pytest.mark.parametrize(
    ("text", "why"),
    [
        # va45 of unseen41: "a past or replaced amount, or someone else's" did not say which
        ("From Dana: Our competitor spent ~$4M at Beta last quarter. We're going in with $1.6M "
         "at Beta Grocers for Q1.", "a competitor's spend"),
        ("Spend $1.6M at Alpha Mart in Q1; last year we spent $4M there.", "a past amount"),
        ("The category is ~$4M nationally. Spend $1.6M at Alpha Mart.", "the size of a market"),
    ],
)  # fmt: skip
def test_an_ignored_amount_says_why_it_is_not_the_budget(text: str, why: str) -> None:
    said = rule_parse(text, "acme", date(2026, 12, 5))
    assert said.values["total_budget"] == 1_600_000
    assert f"ignored $4,000,000: the brief gives it as {why}" in said.warnings


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("ACME — 2M. No, 2.25M. Final. alpha mart. margin. roas >= 2. 10pct tests. feb 1-mar 15",
         2_250_000),  # va41 of unseen41
        ("Initech — running it back from last spring ($1.9M, 2.2x). This time $2.1M, Alpha Mart "
         "only, max ROAS, floor 2.5, Apr 1 - May 31, 10% for experiments.", 2_100_000),  # va48
        ("Initech: we had $800k planned but ops says $720k is the real number. Alpha + Delta. "
         "Revenue. Feb 8–Mar 7. No experiments.", 720_000),  # va56
    ],
)  # fmt: skip
def test_the_amount_said_to_replace_an_earlier_one_is_the_budget(text: str, budget: int) -> None:
    said = rule_parse(text, "initech" if text.startswith("Initech") else "acme",
                      date(2026, 12, 5))  # fmt: skip
    assert said.values["total_budget"] == budget
    assert any(w.endswith("the correction") for w in said.warnings)


def test_a_total_with_its_per_retailer_parts_keeps_the_split() -> None:
    """ "$1M at Alpha Mart and $500k at Delta Home — so $1.5M total" listed the parts as other
    budgets and never said the split was dropped (va44 of unseen41); the split is the brief's
    now, and the ads follow it (3 of the 9 misleading reports of unseen45's measure were
    splits planned freely)."""
    said = rule_parse("Initech: thinking $1M at Alpha Mart and $500k at Delta Home — so $1.5M "
                      "total. Margin. Q1.", "initech", date(2026, 12, 5))  # fmt: skip
    assert said.values["total_budget"] == 1_500_000
    assert said.split == {"alpha": 1_000_000, "delta": 500_000}
    assert said.warnings[0] == (
        "total budget $1,500,000 is the sum of the per-retailer amounts ($1,000,000 + $500,000); "
        "the ads follow that split (edit retailer_split; null lets the optimizer split)"
    )
    assert said.brief().retailer_split == {"alpha": 1_000_000, "delta": 500_000}


@pytest.mark.parametrize(
    ("text", "brand", "split"),
    [
        ("$2M on Alpha Mart and $1M on Beta Grocers, maximize margin.", "acme",
         {"alpha": 2e6, "beta": 1e6}),
        ("Alpha $125k, Delta $75k for Q1, margin", "acme", {"alpha": 125e3, "delta": 75e3}),
        ("| Retailer | Budget |\n|---|---|\n| Alpha Mart | $250,000 |\n| Gamma Pharmacy | "
         "$150,000 |\nTotal $400k, ROAS", "globex", {"alpha": 250e3, "gamma": 150e3}),
        ("$500k for Q1, split 60% Alpha / 40% Beta, hold 10% for tests", "acme",
         {"alpha": 300e3, "beta": 200e3}),
        ("$1M total: Alpha Mart 70%, Delta Home 30%. No tests.", "initech",
         {"alpha": 700e3, "delta": 300e3}),
        ("Put 75% of the $400k on Alpha and the rest on Beta", "acme",
         {"alpha": 300e3, "beta": 100e3}),
        ("Budget 800k, 60/40 Alpha/Gamma. ROAS goal.", "globex", {"alpha": 480e3, "gamma": 320e3}),
        ("Alpha/Beta 50/50, $200k, 15% for tests", "acme", {"alpha": 100e3, "beta": 100e3}),
        ("Acme Q4 2027: $360k split evenly across Alpha, Beta and Delta.", "acme",
         {"alpha": 120e3, "beta": 120e3, "delta": 120e3}),
        # read after the first measure (unseen46, yb): a corrected part, an amount before its
        # retailer, a table of bare amounts, the rest of a total, the last ratio, fractions
        ("acme — Alpha 200k, Beta 100k — actually make Beta 150k. feb flight", "acme",
         {"alpha": 200e3, "beta": 150e3}),
        ("Brand X: $90k total — $60k Beta Grocers, $30k Gamma. Max ROAS.", "brand_x",
         {"beta": 60e3, "gamma": 30e3}),
        ("Acme H1\n\nretailer | spend\nAlpha Mart | 1,000,000\nBeta Grocers | 750,000\n"
         "Delta Home | 250,000\n\nobjective: revenue", "acme",
         {"alpha": 1e6, "beta": 750e3, "delta": 250e3}),
        ("Globex: $1.1M total, $800k of it at AlphaMart and the rest on Gamma.", "globex",
         {"alpha": 800e3, "gamma": 300e3}),
        ("Brand X — $400k, split 50/50 Alpha/Beta. Actually, let's do 75/25 Alpha/Beta "
         "instead.", "brand_x", {"alpha": 300e3, "beta": 100e3}),
        ("Globex: $600k. 2/3 Alpha, 1/3 Gamma. April 2027.", "globex",
         {"alpha": 400e3, "gamma": 200e3}),
        ("acme foods bdgt: alhpa mart 75k, beta grocers 50k, delta 25k. incr margin", "acme",
         {"alpha": 75e3, "beta": 50e3, "delta": 25e3}),
        # read after the second (unseen47, yc)
        ("For Globex we want $300k over February: two-thirds to Alpha, one-third to Gamma.",
         "globex", {"alpha": 200e3, "gamma": 100e3}),
        ("globex 150K, 70-30 alpha vs gamma, march 2027", "globex",
         {"alpha": 105e3, "gamma": 45e3}),
        ("Brand X: $2M, 65% / 35% between Alpha Mart and Beta Grocers.", "brand_x",
         {"alpha": 1.3e6, "beta": 700e3}),
        ("We're approved for $900K. Please allocate $500K to Alpha Mart, $250K to Beta "
         "Grocers, and the balance to Delta Home.", "acme",
         {"alpha": 500e3, "beta": 250e3, "delta": 150e3}),
        ("Acme plan: Alpha $400k, Beta $300k, Delta $100k ($800k total). Correction — Beta "
         "should be $200k, so $700k total.", "acme",
         {"alpha": 400e3, "beta": 200e3, "delta": 100e3}),
        ("Acme — $600k for Q4 2027. A quarter to Delta Home, the rest to Alpha Mart.", "acme",
         {"alpha": 450e3, "delta": 150e3}),
        ("acme jan: alpha mrt 45k, beta grocrs 35k, delta 20k", "acme",
         {"alpha": 45e3, "beta": 35e3, "delta": 20e3}),
        # read after the third (unseen48, yd): colon ratios, a retailer named before its rest
        ("Globex: $300k for Feb 1 – Apr 30, 2027, split 2:1 Alpha Mart to Gamma Pharmacy.",
         "globex", {"alpha": 200e3, "gamma": 100e3}),
        ("Initech: $420k, allocated 5:2 between Alpha Mart and Delta Home.", "initech",
         {"alpha": 300e3, "delta": 120e3}),
        ("Brand X — total $2.4M. Gamma Pharmacy gets $1M, Alpha Mart $800k, and Beta Grocers "
         "the rest.", "brand_x", {"alpha": 800e3, "beta": 600e3, "gamma": 1e6}),
        ("Acme, total $1,000,000: 45% Alpha Mart, 35% Beta Grocers, Delta Home gets the "
         "remainder.", "acme", {"alpha": 450e3, "beta": 350e3, "delta": 200e3}),
        # read after the reports' measure (unseen48): no test, a retailer not run
        ("Globex: $300k, split 2:1 Alpha Mart to Gamma Pharmacy. No incrementality tests on "
         "this one.", "globex", {"alpha": 200e3, "gamma": 100e3}),
        ("Brand X — $180k. Alpha Mart $100k and Gamma Pharmacy $80k; we're not running Beta "
         "Grocers this time.", "brand_x", {"alpha": 100e3, "gamma": 80e3}),
        # no split: one total, a cap at one retailer, a share that is not the whole, a split
        # the brand used before
        ("Globex: historically we've split about 80/20 Alpha/Gamma. For February 2027 we have "
         "$160k across both; optimize for margin.", "globex", {}),
        ("$300k across Alpha and Beta, split however you think best", "acme", {}),
        ("$1,000,000 total across Alpha and Beta; no more than $400k on any one retailer.",
         "acme", {}),
        ("$300k across Alpha and Beta, 40% at Beta", "acme", {}),
    ],
)  # fmt: skip
def test_the_brief_splits_its_budget_by_retailer(
    text: str, brand: str, split: dict[str, float]
) -> None:
    """A split given in amounts or in shares of the total is the brief's `retailer_split`;
    the reserve is not read from a split's percentages."""
    said = rule_parse(text, brand, date(2026, 12, 6))
    assert said.split == split
    assert said.brief().retailer_split == split
    assert not any(re.search(r"\d\.\d\d+%", w) for w in said.warnings)  # "33.3333%"
    if split and "for tests" in text:
        assert said.values["experiment_reserve"] == (0.15 if "15%" in text else 0.1)
    if "incrementality tests" in text:
        assert said.values["experiment_reserve"] == 0
    if "rest on" in text and "%" not in text:  # the rest named, its amount (yd03, unseen48)
        assert any(re.search(r"and the rest \(\$[\d,]+\) at [A-Z]", w) for w in said.warnings)


def test_round_twenty_two_reads_what_is_left_and_whose_spend_it_is() -> None:
    """Round 22 (unseen42, read after its measure): the remaining amount of a larger one is
    the budget (wa28 planned $2M of "2M total but 300k of that is already committed to TV, so
    plan the remaining $1.7M"); a retailer named only for a competitor's spend is not asked
    for (wa09 planned Alpha Mart alone of "all of our retail partners"); revenue is not a
    budget (wa12 listed "$1.3bn in annual revenue" among several budgets)."""
    said = rule_parse("initech: we have 2M total but 300k of that is already committed to TV, "
                      "so plan the remaining $1.7M on Delta Home. Q1. maximize ROAS.", "initech",
                      date(2026, 12, 5))  # fmt: skip
    assert said.values["total_budget"] == 1_700_000
    assert said.warnings[0].endswith("used $1,700,000, the amount left to plan")
    said = rule_parse("For Q2 next year we're looking at $1.1M across all of our retail partners. "
                      "Heard a competitor is dropping ~2M at Alpha, but we're not matching that.",
                      "acme", date(2026, 12, 5))  # fmt: skip
    assert said.values["retailers"] == [] and said.values["total_budget"] == 1_100_000
    said = rule_parse("Initech — we crossed $1.3bn in annual revenue last year. Allocate $750k to "
                      "Alpha Mart for H1 2027, maximize revenue.", "initech", date(2026, 12, 5))
    assert said.values["total_budget"] == 750_000
    assert said.warnings[0] == "ignored $1,300,000,000: the brief gives it as revenue, not spend"


@pytest.mark.parametrize(
    ("text", "brand", "field", "value"),
    [
        # a past total's breakdown in brackets is past too (xa18: $1.5M planned as "the total")
        ("Last year's Brand X retail media total was $3.2M (Alpha $1.5M, Beta $1M, Gamma $700k). "
         "For Q1 2027 we're consolidating: $2M, Alpha and Gamma only.", "brand_x",
         "total_budget", 2_000_000),
        # the amount said to be this plan's, and the narrower flight inside the wider (xa29)
        ('Email from our CFO: "I approved $3M for retail media in H1. Of that, $1M is for this '
         'first plan, Jan–Feb, across Alpha and Beta. The rest comes later."', "acme",
         "total_budget", 1_000_000),
        ('Email from our CFO: "I approved $3M for retail media in H1. Of that, $1M is for this '
         'first plan, Jan–Feb, across Alpha and Beta. The rest comes later."', "acme",
         "flight_end", date(2027, 2, 28)),
        # "should be excluded" states the stock-out choice (xa39: marked as the default)
        ("Globex Health brief for January: $1.25M. OOS items should be excluded.", "globex",
         "exclude_oos", True),
        # a bare floor after "nothing under" beside the return it bounds (xa40)
        ("initech — let's do 2.1M on alpha mart for march + april, maximize return on ad spend "
         "but nothing under 3.0", "initech", "roas_floor", 3.0),
    ],
)  # fmt: skip
def test_round_twenty_three(text: str, brand: str, field: str, value: object) -> None:
    """Round 23 (unseen43, read after the round's second measure)."""
    _reads(text, brand, field, value)


def test_a_forms_retailers_all_is_the_briefs_own_word() -> None:
    """ "Retailers: all" was marked as the default, so the report said "(the brief names
    none)" of a brief that asks for all (xa04 of unseen43)."""
    said = rule_parse("Initech Home budget: 400k. Retailers: all. Objective: maximize ROAS.",
                      "initech", date(2026, 12, 5))  # fmt: skip
    assert said.values["retailers"] == [] and "retailers" in said.found


@pytest.mark.parametrize(
    ("text", "brand", "field", "value"),
    [
        # another brand's "Omega" is no unknown retailer, and its push is theirs (ya53)
        ("Our rival Brand Omega just announced a $2.5M retail push. We're not matching that. "
         "Acme will spend $600K across Alpha Mart and Beta Grocers.", "acme", "total_budget",
         600_000),
        # amounts after their retailers add up to the budget (ya56)
        ("Initech: Alpha $125k, Delta $75k. Reserve 0.15 for testing.", "initech",
         "total_budget", 200_000),
        # a floor said as "with 2.5 as the minimum" (ya56)
        ("Initech: $200k on Alpha. Objective: return on ad spend, with 2.5 as the minimum.",
         "initech", "roas_floor", 2.5),
        # "Final answer $375k" replaces the earlier figures (ya58)
        ("> Finance: Q2 is $350,000.\n> Brand lead: Can we get $400k?\n> Finance: Final answer "
         "$375k, no more.\nGo with finance's final number. Gamma Pharmacy.", "brand_x",
         "total_budget", 375_000),
        # a floor after a dash (ya49), and "target is ROAS" names the goal
        ("Acme: $1.5M on Alpha Mart. Our target is ROAS \u2014 keep it at or above 4.0.", "acme",
         "roas_floor", 4.0),
        ("Acme: $1.5M on Alpha Mart. Our target is ROAS \u2014 keep it at or above 4.0.", "acme",
         "objective", "roas"),
        # "no separate test reserve" (ya50)
        ("Brand X: $5,000 test at Beta Grocers. Since this whole thing is a test, no separate "
         "test reserve.", "brand_x", "experiment_reserve", 0.0),
        # "today through Dec 31" starts the flight (ya54: it read an end alone)
        ("Brand X holiday: 45k across Alpha and Gamma, today through Dec 31. Sales.", "brand_x",
         "flight_start", date(2026, 12, 6)),
    ],
)  # fmt: skip
def test_round_twenty_four(text: str, brand: str, field: str, value: object) -> None:
    """Round 24 (the finding half of unseen44)."""
    _reads(text, brand, field, value)


def test_a_rivals_push_is_their_spend() -> None:
    """ "Our rival Brand Omega just announced a $2.5M retail push" was refused as an unknown
    retailer 'Omega' (ya53 of unseen44); its amount is a competitor's, said so."""
    said = rule_parse("Our rival Brand Omega just announced a $2.5M retail push. We're not "
                      "matching that. Acme will spend $600K across Alpha Mart and Beta Grocers.",
                      "acme", date(2026, 12, 5))  # fmt: skip
    assert not said.errors
    assert said.warnings == ["ignored $2,500,000: the brief gives it as a competitor's spend"]


def test_exclude_oos_yes_excludes_them_without_a_contradiction() -> None:
    """ "exclude OOS: yes" was read as both including and excluding them, and the report said
    "The brief both includes and excludes out-of-stock SKUs" (ya57 of unseen44)."""
    said = rule_parse("Acme – Delta Home only – 52,000 USD – exclude OOS: yes – tests: none",
                      "acme", date(2026, 12, 5))  # fmt: skip
    assert said.values["exclude_oos"] is True and "exclude_oos" in said.found
    assert not any("out-of-stock" in w for w in said.warnings)


@pytest.mark.parametrize(
    ("text", "brand", "field", "value"),
    [
        # "no need for a test cell", "no need to hold money for tests" (ya02, ya21)
        ("Brand X: $120,000 on Alpha Mart for January. No need for a test cell this time.",
         "brand_x", "experiment_reserve", 0.0),
        ("Acme: $85,000 on Alpha Mart. No need to hold money for tests - the window is short.",
         "acme", "experiment_reserve", 0.0),
        # a form's "Exclude out-of-stock products: No" keeps them in (ya04)
        ("Brand: Initech Home | Budget (USD): 300,000 | Retailers: Alpha Mart | Exclude "
         "out-of-stock products: No", "initech", "exclude_oos", False),
        # floors as a percentage, after a slash, and per ad dollar in sales (ya10, ya32, ya12,
        # ya21; "min 250%" read a floor of 25)
        ("BX: 0.25MM USD across the board. Efficiency is the name of the game; 400% ROAS "
         "minimum.", "brand_x", "roas_floor", 4.0),
        ("Initech: 150K, Alpha, objective ROAS, min 250%, reserve 0%", "initech", "roas_floor",
         2.5),
        ("Initech Home / Alpha Mart / $95k / ROAS / min 3.2 / Q1", "initech", "roas_floor", 3.2),
        ("Acme: $85,000 on Alpha Mart. We want every ad dollar to bring back at least $3.50 in "
         "sales, and within that, maximize incremental margin.", "acme", "roas_floor", 3.5),
        # the amount of this request or plan, and this year's actuals are past (ya20, ya35, ya30)
        ("Total Initech Home retail budget for 2027 is $2M, but this request is just the Q1 "
         "tranche: $480,000. Alpha Mart only.", "initech", "total_budget", 480_000),
        ("Our annual retail budget at Globex Health is $1.6M; for this plan we're allocating "
         "$400k to Alpha Mart.", "globex", "total_budget", 400_000),
        ("Recap:\n- 2026 actuals: $780k, blended ROAS 3.1\n- 2027 Q1 approved: $220k\nFor Q1 we "
         "want Beta Grocers and Gamma Pharmacy.", "brand_x", "total_budget", 220_000),
    ],
)  # fmt: skip
def test_round_twenty_five(text: str, brand: str, field: str, value: object) -> None:
    """Round 25 (the measure half of unseen44, read after its measure)."""
    _reads(text, brand, field, value)


def _reads(text: str, brand: str, field: str, value: object) -> None:
    """The rules read `field` of `text` as `value`, from the brief's own words, with no error."""
    said = rule_parse(text, brand, date(2026, 12, 5))
    assert said.values[field] == value
    assert field in said.found
    assert not said.errors


@pytest.mark.parametrize(
    ("text", "brand", "field", "value"),
    [
        # a competitor's doubled spend and another brand's running spend are theirs (za15, za33)
        ("Saw that a competitor just doubled their Alpha Mart spend to $2M. We're not chasing "
         "that. Globex Health will put $650k into Gamma Pharmacy for Q2 2027.", "globex",
         "total_budget", 650_000),
        ("FYI Globex is apparently running $1M on Alpha Mart this quarter.\n---\nTeam, for Acme "
         "please plan $700k on Alpha Mart and Beta Grocers.", "acme", "total_budget", 700_000),
        # "so we're at $600k for this plan", "the number is $540k" (za22, za17)
        ("Brand X update: we had $800k approved, then finance clawed back $200k, so we're at "
         "$600k for this plan. Alpha Mart, Beta Grocers. Maximize ROAS.", "brand_x",
         "total_budget", 600_000),
        ("In Q4 we spent $610k across Alpha Mart and Beta Grocers. For Q1 2027 the number is "
         "$540k.", "acme", "total_budget", 540_000),
        # "the most back per ad dollar" names the return as the goal (za29)
        ("Acme wants a plan that gets the most back per ad dollar. $180k. March 2027.", "acme",
         "objective", "roas"),
    ],
)  # fmt: skip
def test_round_twenty_six(text: str, brand: str, field: str, value: object) -> None:
    """Round 26 (unseen45, read after this round's second measure)."""
    _reads(text, brand, field, value)


@pytest.mark.parametrize(
    ("text", "brand", "caps"),
    [
        ("Acme $600k Q1, margin, no more than $150k at Beta Grocers.", "acme", {"beta": 150e3}),
        ("$500k for Globex, Alpha Mart max $300k, 10% tests", "globex", {"alpha": 300e3}),
        ("Brand X 800k across alpha, beta and gamma; Gamma capped at 100k.", "brand_x",
         {"gamma": 100e3}),
        ("$1,000,000 total across Alpha and Beta; no more than $400k on any one retailer.",
         "acme", {"alpha": 400e3, "beta": 400e3}),
        # read after the measure (unseen49, ye)
        ("Initech: $500k, Alpha Mart + Delta Home. Don't put more than $300k on any single "
         "retailer.", "initech", {"alpha": 300e3, "delta": 300e3}),
        ("Brand X: $450k at Alpha and Gamma. Gamma can take up to $120k, no more.", "brand_x",
         {"gamma": 120e3}),
        ("Globex | Budget $1.6M | Alpha Mart and Gamma Pharmacy | Gamma spend not to exceed "
         "$700k; Alpha spend not to exceed $1.1M", "globex", {"alpha": 1.1e6, "gamma": 700e3}),
        ("acme q4 2027: $900k total. no single retailer gets more than $350k.", "acme",
         {"alpha": 350e3, "beta": 350e3, "delta": 350e3}),
        ("Acme $1.75M across Alpha Mart, Beta Grocers and Delta Home. Caps: Beta ≤ $500k, "
         "Delta ≤ $250k; Alpha uncapped.", "acme", {"beta": 500e3, "delta": 250e3}),
        # no cap: a minimum, a split of the whole budget, a cap on no retailer of the plan
        ("Acme $600k across Alpha and Beta, at least $100k at Alpha.", "acme", {}),
        ("$200k on Alpha Mart and $150k on Beta Grocers, maximize margin.", "acme", {}),
    ],
)  # fmt: skip
def test_the_brief_caps_ad_spend_at_a_retailer(text: str, brand: str, caps: dict) -> None:
    """ "No more than $150k at Beta" was ignored ("per-retailer limits are not part of the
    brief (set retailer caps in the plan)"): it is the brief's `retailer_caps`, which the
    planner hands to the plan's constraints."""
    said = rule_parse(text, brand, date(2026, 12, 6))
    assert said.caps == caps and said.brief().retailer_caps == caps
    assert not (caps and said.split)  # a cap is no split
    assert not any("per-retailer limits are not part of the brief" in w for w in said.warnings)


def test_a_forms_flight_beside_last_years_figures_is_read() -> None:
    """A one-line form's " | " ends its field as a line would: "Flight: 2027-01-01 to
    2027-12-31 | Last year's ROAS: 3.4" lost its flight to the past's field (yh25 of
    unseen52)."""
    brief = parse_brief_rules(
        "Brand: ACME | Budget: $2.75M | Retailers: Alpha Mart, Beta Grocers, Delta Home | Flight: "
        "2027-01-01 to 2027-12-31 | Last year's ROAS: 3.4 | Last year's budget: $2.4M",
        "acme", date(2026, 12, 7),
    )  # fmt: skip
    assert (brief.flight_start, brief.flight_end) == (date(2027, 1, 1), date(2027, 12, 31))
    assert brief.total_budget == 2_750_000 and brief.roas_floor is None
