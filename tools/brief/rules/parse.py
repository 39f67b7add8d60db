"""The rule parse of one brief: every field, read in order, into a `RuleParse`.

Reading order: the text is normalized (number words become digits), then ROAS floors,
retailers, money, the flight, the budget (a rate needs the flight's length), the objective,
the experiment reserve and the out-of-stock switch are read. Spans already claimed by one
reading (a floor's "$3 for every $1", a reserve's "$140k for tests") are masked so the next
reading cannot reuse them. Anything the text states that cannot be planned is an error;
anything it leaves open is a default, and a warning only when the text itself is ambiguous.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tools.brief.rules.budget import (
    FOLLOWED,
    budget_from_rate,
    budget_problem,
    choose_budget,
    left_to_plan,
    spent_elsewhere,
    year_budget_note,
)
from tools.brief.rules.flight import Flight, read_flight
from tools.brief.rules.flight_choice import asked_flights, choose_flight
from tools.brief.rules.flight_words import flight_note
from tools.brief.rules.limits import (
    named_for_limits_only,
    read_caps,
    read_mins,
    take_over_corrected_limits,
)
from tools.brief.rules.money import (
    MONEY,
    Mention,
    Money,
    amount,
    foreign_currency_error,
    others_clauses,
    read_money,
    theirs_by_name,
    unreadable_amount_error,
)
from tools.brief.rules.objective import read_objective
from tools.brief.rules.oos import read_oos
from tools.brief.rules.phasing import phased_budget, phased_flight
from tools.brief.rules.reserve import PERCENT, choose_reserve, read_reserve
from tools.brief.rules.retailers import (
    other_brand_words,
    other_brands_warning,
    read_retailers,
)
from tools.brief.rules.roas import Floor, choose_floor, read_floors
from tools.brief.rules.share_limits import read_share_limits
from tools.brief.rules.split import read_shares, rest_retailer
from tools.brief.rules.tables import past_cells
from tools.brief.rules.text import (
    CORRECTION,
    as_float,
    done_clauses,
    lower,
    mask,
    normalize,
    past_sentences,
    usd,
)
from tools.brief.rules.thread import merge_thread, split_thread
from tools.brief.schema import (
    BRIEF_FIELDS,
    DEFAULT_OBJECTIVE,
    DEFAULT_RESERVE,
    DEFAULTED,
    BriefError,
    StructuredBrief,
    brand_retailers,
    check_brand,
)
from tools.catalog import current

Span = tuple[int, int]

# --- result ---------------------------------------------------------------------------------


@dataclass
class RuleParse:
    """What the rules read. `values` holds every brief field (defaults where the text is
    silent), `found` the fields the text states, `numbers` every number the text contains
    (amounts in USD, percentages also as fractions) so that model output can be checked
    against the text."""

    brand_id: str
    today: date
    text: str
    values: dict[str, Any]
    found: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    errors: list[BriefError] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)
    # Numbers no reading claimed (not part of an amount, date, share or floor): where a
    # number the rules missed could still be.
    free_numbers: list[float] = field(default_factory=list)
    retailer_mentions: set[str] = field(default_factory=set)
    # Of those, the ones its words leave out, and whether words keep one in ("only"): a reply
    # above an earlier request replaces, narrows or adds to its retailers (`thread`).
    retailers_excluded: set[str] = field(default_factory=set)
    retailers_kept: bool = False
    # How firmly the text states its flight (`flight.Flight.priority`; 0: only relative words)
    flight_priority: int = -1
    # The brief's split of the budget by retailer (`StructuredBrief.retailer_split`) and its
    # caps at retailers (`StructuredBrief.retailer_caps`).
    split: dict[str, float] = field(default_factory=dict)
    caps: dict[str, float] = field(default_factory=dict)
    mins: dict[str, float] = field(default_factory=dict)  # `StructuredBrief.retailer_mins`

    def raise_errors(self) -> None:
        if not self.errors:
            return
        first = self.errors[0]
        if len(self.errors) == 1:
            raise first
        message = "; ".join(e.message for e in self.errors)
        raise type(first)(message, **first.detail, problems=[e.to_dict() for e in self.errors[1:]])

    def brief(self, parsed_by: str = "rules") -> StructuredBrief:
        self.raise_errors()
        return StructuredBrief(
            brand_id=self.brand_id,
            parsed_by=parsed_by,
            warnings=list(self.warnings),
            defaults=self.defaults(),
            retailer_split=self.split,
            retailer_caps=self.caps,
            retailer_mins=self.mins,
            **self.values,
        )

    def defaults(self, values: dict[str, Any] | None = None) -> list[str]:
        """The fields of `DEFAULTED` the text leaves open and `values` (default: the rules'
        own) leave at their default."""
        values = self.values if values is None else values
        return [f for f in DEFAULTED if f not in self.found and values[f] == self.values[f]]

    def record(self, name: str, value: Any) -> None:
        """Record a field the text states."""
        self.values[name] = value
        self.found.add(name)


EMPTY_BRIEF = "the brief is empty: say how much to spend, and where"


def check_brief(text: object, brand: str, today: date | None = None) -> RuleParse:
    """The rule parse of a brief about to be planned. Raises `BriefError` for one that cannot
    be (not text, empty, no budget or one out of range, an unknown retailer, ...): what a
    caller checks before it starts a thread, so that none is left `failed` by bad input."""
    if not isinstance(text, str):
        raise BriefError(f"the brief must be text, got {type(text).__name__}", field="brief")
    if not text.strip():
        raise BriefError(EMPTY_BRIEF, field="brief")
    parsed = rule_parse(text, brand, today)
    parsed.raise_errors()
    return parsed


def parse_brief_rules(text: str, brand: str, today: date | None = None) -> StructuredBrief:
    """Parse a brief with the rules alone. Raises `BriefError` for a brief that cannot be
    planned as written (no budget, unknown retailer, reserve over 50%, ...)."""
    return rule_parse(text, brand, today).brief("rules")


# --- the parser -----------------------------------------------------------------------------


def rule_parse(text: str, brand: str, today: date | None = None) -> RuleParse:
    """Read every field the rules can find; errors are collected, not raised (see
    `RuleParse.raise_errors`), so the production path can still report them all. A reply
    above an earlier request is read as both (`thread`)."""
    check_brand(brand)
    today = today or date.today()
    whole = _read(text, brand, today)
    thread = split_thread(whole.text)
    if thread is None:
        return whole
    earlier = _read(thread.earlier, brand, today)
    reply = _read(thread.reply, brand, today, above=earlier)
    return merge_thread(reply, earlier, whole)


def _read(text: str, brand: str, today: date, *, above: RuleParse | None = None) -> RuleParse:
    """The rule parse of one text. Of a reply `above` an earlier request, a cap or minimum
    never stands in for the budget, and where the reply gives none its caps and minimums are
    weighed against the earlier request's ("the JBP minimum at Delta is $40k not $30k": yp16
    of unseen60 planned $40k)."""
    clean = normalize(text)
    low = lower(clean)
    values: dict[str, Any] = {
        "total_budget": None,
        "retailers": [],
        "objective": DEFAULT_OBJECTIVE,
        "roas_floor": None,
        "experiment_reserve": DEFAULT_RESERVE,
        "flight_start": None,
        "flight_end": None,
        "exclude_oos": True,
    }
    result = RuleParse(brand, today, clean, values)

    # ROAS floors first: their "$3 for every $1" and "3x" must not read as money or shares.
    floors, no_floor_spans, floor_values = _floor(result, low)
    floor_spans = [f.span for f in floors]
    others = theirs_by_name(tuple(other_brand_words(brand)))
    mentions, retailer_errors = _retailers(result, low, others)

    for problem in (foreign_currency_error(clean, low), unreadable_amount_error(clean, low)):
        if problem is not None:
            result.errors.append(problem)
    money = read_money(mask(low, floor_spans), mentions, today, others)
    take_over_corrected_limits(low, money, mentions)
    rest = rest_retailer(low, mentions)  # "the rest on Gamma": the retailer that gets it
    budget, notes = choose_budget(money, rest=rest, stand_in=above is None)
    if left := left_to_plan(low, money):
        budget, notes = left[0], [left[1]]
    elif phased := phased_budget(low, money):
        budget, notes = phased[0], [phased[1]]
    result.warnings.extend(notes)
    past = past_sentences(low, today) + done_clauses(low)
    # Caps and minimums given as shares ("Gamma no more than 40% of the total"): no split part.
    share_limits = read_share_limits(low, mentions, past + floor_spans)
    limit_spans = [x.span for x in share_limits]
    shares, share_spans = read_shares(mask(low, floor_spans + limit_spans), mentions, rest, past)
    mask_spans = floor_spans + [m.span for m in money] + share_spans + limit_spans

    # Flight (read before the budget is final: a weekly budget needs the flight length).
    flights = _flight(result, mask(low, mask_spans), money)
    budget = _budget(result, budget, [m for m in money if m.kind == "rate"])
    if result.values["flight_start"] is None and result.values["flight_end"] is None:
        result.warnings.extend(year_budget_note(low, money, budget))
    result.split = _split(result, money, shares, rest)
    if (result.values["retailers"] and not result.retailers_kept
            and named_for_limits_only(low, money, mentions)):  # fmt: skip
        result.values["retailers"] = []
        result.warnings.append("the brief names retailers only to limit them: planned every one")
    limit = result.values["total_budget"] or (above.values["total_budget"] if above else None)
    limits = money + [x.as_money(limit) for x in share_limits] if limit else money
    result.caps = _caps(result, low, limits, mentions, limit)
    result.mins = _mins(result, low, limits, mentions, limit)

    # Objective, on the text less money and floor numbers.
    objective, notes = read_objective(
        mask(low, [m.span for m in money] + no_floor_spans + past_cells(low, today)),
        [f.kw_span for f in floors if f.kw_span],
    )
    result.warnings.extend(notes)
    if objective:
        result.record("objective", objective)

    reserve_spans, derived = _reserve(result, mask(low, mask_spans), money, budget)

    oos, notes = read_oos(mask(low, mask_spans))
    result.warnings.extend(notes)
    if oos is not None:
        result.record("exclude_oos", oos)

    other_brands = other_brands_warning(low, brand)
    if other_brands:
        result.warnings.append(other_brands)

    result.errors.extend(retailer_errors)
    order = {name: k for k, name in enumerate(BRIEF_FIELDS)}
    result.errors.sort(key=lambda e: order.get(str(e.detail.get("field")), len(order)))
    claimed = mask_spans + [f.span for f in flights] + reserve_spans
    _record_numbers(result, low, derived + floor_values, claimed)
    return result


def _floor(result: RuleParse, low: str) -> tuple[list[Floor], list[Span], list[float]]:
    """-> (floors, "no ROAS floor" spans, every floor value)."""
    floors, no_floor_spans, notes = read_floors(low, result.today)
    result.warnings.extend(notes)
    floor, floor_values, notes = choose_floor(floors)
    result.warnings.extend(notes)
    if floor is not None:
        result.record("roas_floor", floor)
    elif no_floor_spans:
        result.found.add("roas_floor")
    return floors, no_floor_spans, floor_values


def _retailers(
    result: RuleParse, low: str, others: re.Pattern[str] | None
) -> tuple[list[Mention], list[BriefError]]:
    """-> (retailer mentions, retailer errors: reported after every other field's).
    Neither a past sentence's retailers, nor those of someone else's spend (`others`, another
    brand's by name), nor those of money already spent elsewhere ("$400k is already committed
    to Alpha Mart's holiday takeover - plan the rest": yo04 of unseen59) are asked for."""
    asked_not = (past_sentences(low, result.today, repeating_asks=True)
                 + others_clauses(low, others) + spent_elsewhere(low))  # fmt: skip
    read = read_retailers(result.text, low, result.brand_id, asked_not)
    result.retailer_mentions = read.mentioned
    result.retailers_excluded, result.retailers_kept = read.excluded, read.kept
    result.warnings.extend(read.warnings)
    if read.retailers is not None:
        result.record("retailers", read.retailers)
    return read.mentions, read.errors


def _flight(result: RuleParse, masked: str, money: list[Money]) -> list[Flight]:
    """-> every flight the text mentions (their spans are not free numbers), and the months a
    phased budget spans (`phasing.phased_flight`)."""
    stated, notes = read_flight(masked, result.today)
    result.warnings.extend(notes)
    if phased := phased_flight(lower(result.text), money, result.today):
        stated.append(phased)
    low = lower(result.text)
    past = past_sentences(low, result.today) + done_clauses(low)
    flights = asked_flights(stated, masked, past, CORRECTION)
    flight, notes, errors = choose_flight(flights)
    if flight is not None:
        result.values["flight_start"], result.values["flight_end"] = flight.start, flight.end
        result.found.update({"flight_start", "flight_end"})
        result.flight_priority = flight.priority
        notes += flight_note(flight, result.text)
    result.warnings.extend(notes)
    result.errors.extend(errors)
    return stated


def _budget(result: RuleParse, budget: float | None, rates: list[Money]) -> float | None:
    """The final budget: the amount chosen, else a rate over the flight; errors when there is
    none (unless the text already has a budget error) or it is not positive."""
    if budget is None and rates:
        start, end = result.values["flight_start"], result.values["flight_end"]
        budget, notes, errors = budget_from_rate(rates[0], start, end)
        result.warnings.extend(notes)
        result.errors.extend(errors)
    problem = budget_problem(budget)
    if problem is None:
        assert budget is not None
        result.record("total_budget", float(budget))
    elif budget is not None or not any(
        e.detail.get("field") == "total_budget" for e in result.errors
    ):
        result.errors.append(problem)
    return budget


def _split(
    result: RuleParse, money: list[Money], shares: dict[str, float], rest: str | None
) -> dict[str, float]:
    """The budget's parts by retailer id (amounts, else `shares` of the budget), when they are
    the whole budget and name distinct retailers the brief plans; {} otherwise (a warning
    about amounts stays). "The rest on Gamma" gets what the amounts leave."""
    budget = result.values["total_budget"]
    if budget is None:
        return {}
    parts = [m for m in money if m.kind == "part"]
    split: dict[str, float] = {}
    for m in parts:
        if m.retailer_id is None or m.retailer_id in split:
            return {}
        split[m.retailer_id] = m.value
    if not parts:
        split = {r: round(share * budget, 2) for r, share in shares.items()}
    elif rest and rest not in split and sum(split.values()) < budget:
        # "$1.1M total, $800k of it at AlphaMart and the rest on Gamma" (yb31 of unseen46)
        split[rest] = round(budget - sum(split.values()), 2)
    planned = set(result.values["retailers"]) or set(brand_retailers(result.brand_id))
    if not split or not set(split) <= planned:
        return {}
    if not math.isclose(sum(split.values()), budget, rel_tol=1e-9, abs_tol=0.05):
        return {}
    if not parts:
        # "33.3%", not "33.3333%" (an even split across three, yd of unseen48)
        said = ", ".join(f"{current().retailer(r).name} {shares[r] * 100:.1f}".rstrip("0")
                         .rstrip(".") + f"% ({usd(v)})"
                         for r, v in split.items())  # fmt: skip
        result.warnings.append(f"the brief splits the budget in shares: {said}; {FOLLOWED}")
    return split


def _caps(
    result: RuleParse, low: str, money: list[Money], mentions: list[Mention], budget: float | None
) -> dict[str, float]:
    """The most the brief lets the plan spend at a retailer (`limits.read_caps`)."""
    planned = result.values["retailers"] or brand_retailers(result.brand_id)
    caps, notes = read_caps(low, money, mentions, budget, planned)
    result.warnings.extend(notes)
    return caps


def _mins(
    result: RuleParse, low: str, money: list[Money], mentions: list[Mention], budget: float | None
) -> dict[str, float]:
    """The least the brief has the plan spend at a retailer (`minimums.read_mins`); none
    beside a split, which fixes every retailer's amount (a note says so)."""
    planned = result.values["retailers"] or brand_retailers(result.brand_id)
    mins, notes, errors = read_mins(low, money, mentions, budget, planned, result.caps)
    if mins and result.split:
        result.warnings.append("ignored the minimums at retailers: the brief's split already "
                               "gives each retailer its amount")  # fmt: skip
        return {}
    result.warnings.extend(notes)
    result.errors.extend(errors)
    return mins


def _reserve(
    result: RuleParse, masked: str, money: list[Money], budget: float | None
) -> tuple[list[Span], list[float]]:
    """Experiment reserve: a share, an amount ("$140k for tests") or "no experiments".
    -> (the spans of the shares read, the shares reserve amounts come to)."""
    shares, zero, notes = read_reserve(masked)
    result.warnings.extend(notes)
    amounts = [(m.span[0], m.value) for m in money if m.kind == "reserve"]
    reserve, derived, notes, errors = choose_reserve(result.text, shares, zero, amounts, budget)
    result.warnings.extend(notes)
    result.errors.extend(errors)
    if reserve is not None:
        result.record("experiment_reserve", reserve)
    return [x.span for x in shares + zero], derived


_PLAIN_NUMBER = re.compile(
    r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d{1,3}(?!\w))?|\.\d+"
)


def _record_numbers(
    result: RuleParse, low: str, extra: Iterable[float], claimed: list[Span]
) -> None:
    """Every number in the text (amounts in USD, percentages also as fractions, and `extra`),
    and the numbers outside the `claimed` spans and percentages."""
    values = [as_float(m.group()) for m in _PLAIN_NUMBER.finditer(low)]
    values += [amount(m) for m in MONEY.finditer(low)]
    for m in PERCENT.finditer(low):
        values.append(float(m.group("num")) / 100)
    values.extend(extra)
    result.numbers = sorted({v for v in values if math.isfinite(v)})
    claimed = claimed + [m.span() for m in PERCENT.finditer(low)]
    free = {as_float(m.group()) for m in _PLAIN_NUMBER.finditer(mask(low, claimed))}
    result.free_numbers = sorted(v for v in free if math.isfinite(v))
