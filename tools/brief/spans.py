"""The model's reading of a brief as spans: which words of the brief carry each field.

A small model is unreliable at writing numbers and dates ("750k" became 75000, "$1M" 1e-15),
but it can point. So the model is asked which span of the brief states each field, choosing
only among `Candidates` (the grammar allows nothing else), and tested code here turns the
chosen spans into values (`convert`). Candidates come from lexers, not from the rule parser's
choices: every amount of money is a budget candidate, every small number a floor candidate,
every percentage or fraction a reserve candidate, every date expression a flight candidate,
every objective word an objective candidate. Deciding which one is the budget (not the cap),
which number is the floor, which percentage is the reserve is the model's job; converting
"$2.5 mil" or "Q1 next year" is the code's. What the brief's own words settle, the lexers do,
with the rules' patterns (they were the model's misses on hand-written briefs): an amount or a
ROAS it replaces or gives for the past or for others is not offered ("not $400k", "last year's
$1M", a pasted table's "LY spend" column), nor a date or a retailer of a sentence that only
reports the past, nor a retailer of money spent elsewhere, nor a flight the brief then
corrects; a count, an amount per store, a clock time, a phone number are no amount and no
floor; a price in cents ("CPCs around $0.85") is no amount; a share the brief corrects or
gives a retailer as a cap is no reserve; a mention the words exclude ("except Beta") may only
be excluded, one they keep in ("Gamma only") only included. Where the brief plans what is
left of a total ("$2.5 mil, but $600k of it is already committed to TV, so plan the rest") or
phases its budget by month ("$100k in April, $150k each in May and June"), one span converts
to the total and its parts are not offered (`span_totals`).

The answer, in `SPAN_KEYS` order: budget, retailers, objective, floor, reserve, flight, stock;
a field the brief does not state is null and takes its default. `retailers` gives every
retailer mention of the brief a role, "include" or "exclude" (none included: every retailer the
brand sells through but the excluded ones). Writing the mentions as a list, the model answered
"every retailer" for a single named one ("spends 1.2 million USD on Delta Home" -> []) and
read "all networks but Beta" as Beta: a per-mention choice of two words is an easier question
for a small model than when to close a list.

The prompt shows `span_json_schema`; the runtime decodes under `span_decode_schema`, the same
answers less the ones no plan can take (the reserve naming the budget's own amount), which one
enum per field cannot express.

Training rows are labelled in `tools.brief.labels` (for each gold field, the candidate whose
conversion gives the gold value); serving never sees gold values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tools.brief.rules.budget import (
    budget_from_rate,
    budget_problem,
    replaced_by_correction,
    spent_elsewhere,
)
from tools.brief.rules.corrections import PRICE_BEFORE, unit_price
from tools.brief.rules.flight import date_spans, read_flight
from tools.brief.rules.flight_choice import asked_flights
from tools.brief.rules.limits import take_over_corrected_limits
from tools.brief.rules.money import (
    MONEY,
    Mention,
    Money,
    amount,
    minimum_words,
    network_minimum,
    rate_unit_at,
    read_money,
    superseded,
)
from tools.brief.rules.objective import corrected_objective, objective_mentions
from tools.brief.rules.oos import OOS_TERM, read_oos
from tools.brief.rules.phasing import phased_flight
from tools.brief.rules.reserve import PERCENT, ZERO_RESERVE, replaced_shares
from tools.brief.rules.retailers import (
    asks_every_retailer,
    brand_name_spans,
    mention_cues,
    retailer_patterns,
)
from tools.brief.rules.roas import floor_word_beside, list_numbers, not_ours, read_floors
from tools.brief.rules.tables import past_cells
from tools.brief.rules.text import (
    CORRECTION,
    clause_of,
    clause_spans,
    lower,
    mask,
    normalize,
    past_sentences,
)
from tools.brief.schema import (
    DEFAULT_OBJECTIVE,
    DEFAULT_RESERVE,
    MAX_RESERVE,
    brand_retailers,
)
from tools.brief.span_lexicon import (
    BARE_AMOUNT,
    COUNTED_AFTER,
    DURATION,
    FRACTION,
    FRACTION_WORDS,
    MAX_FLOOR,
    NOT_A_RATIO,
    NUMBER,
    OFFERED_FLOORS,
    PER_UNIT,
    RETURN,
    no_reserve,
    past_aside,
)
from tools.brief.span_lexicon import (
    span_text as _span,
)
from tools.brief.span_thread import narrow_to_thread
from tools.brief.span_totals import left_to_plan, phased
from tools.catalog import current

# The answer's keys, in the order the model writes them.
SPAN_KEYS: tuple[str, ...] = (
    "budget",
    "retailers",
    "objective",
    "floor",
    "reserve",
    "flight",
    "stock",
)
ROLES: tuple[str, str] = ("include", "exclude")  # a retailer mention's role in the answer

@dataclass(frozen=True)
class Amount:
    """A money candidate: its amount, and the rate unit when it is "per week" and the like."""

    value: float
    rate_unit: str | None = None
    # A minimum's words around it ("at least $200k at Alpha", `money.minimum_words`): never the
    # reserve. The adapter chose it as one in 6 of 30 briefs of unseen51 (200k of 750k: 27%).
    minimum: bool = False
    # How the rules read it (`money.read_money`): a cap at a retailer ("Beta: capped at $400k")
    # is never the reserve (the adapter chose one in yg09 of unseen51 and yf05 of unseen50),
    # and neither a cap nor a minimum at a retailer is the budget beside an amount that can be
    # ("Alpha Mart | upfront signed: at least $400,000" was the budget of a 2.5M brief: yj04).
    kind: str = "budget"

    @property
    def reservable(self) -> bool:
        return not (self.minimum or self.kind == "cap")

    @property
    def budgetable(self) -> bool:
        # Nor is a reserve the rules read ("Holdout $5,500" was the budget of a $110k brief,
        # yp15 of unseen60), beside an amount that can be.
        return self.kind not in ("cap", "min", "reserve")


@dataclass
class Candidates:
    """What each field of one brief may be read from: the span as the model sees it (the
    normalized brief's own words) -> what it converts to."""

    text: str  # the normalized brief, as the model is shown it
    today: date
    brand: str
    money: dict[str, Amount] = field(default_factory=dict)
    mentions: dict[str, str] = field(default_factory=dict)  # mention -> retailer id
    excluded: set[str] = field(default_factory=set)  # mentions the brief's words exclude
    kept: set[str] = field(default_factory=set)  # mentions the brief's words keep in
    objectives: dict[str, str] = field(default_factory=dict)  # term -> objective
    floors: dict[str, float] = field(default_factory=dict)
    reserves: dict[str, float] = field(default_factory=dict)  # shares; money is in `money`
    flights: dict[str, tuple[date | None, date | None]] = field(default_factory=dict)
    stock: dict[str, bool] = field(default_factory=dict)  # clause -> exclude_oos

    def options(self, key: str) -> list[str]:
        """The spans the answer's `key` may hold (null aside)."""
        return {
            "budget": [k for k, m in self.money.items() if m.budgetable] or list(self.money),
            "retailers": list(self.mentions),
            "objective": list(self.objectives),
            "floor": list(self.floors),
            # An amount is a reserve ("$140k for tests") only beside another amount, the budget.
            "reserve": list(self.reserves) + ([k for k, m in self.money.items() if m.reservable]
                                              if len(self.money) > 1 else []),
            "flight": list(self.flights),
            "stock": list(self.stock),
        }[key]


def candidates(text: str, brand: str, today: date) -> Candidates:
    """Every span of the brief that could state each field, with what it converts to; of a
    reply above an earlier request, narrowed to the part each field comes from
    (`span_thread`)."""
    return narrow_to_thread(_lex(text, brand, today), _lex)


def _lex(text: str, brand: str, today: date) -> Candidates:
    clean = normalize(text)
    low = lower(clean)
    out = Candidates(clean, today, brand)
    scan = mask(low, brand_name_spans(low, current()))
    mentions = _mentions(out, clean, scan)
    read = read_money(low, mentions, out.today)
    take_over_corrected_limits(low, read, mentions)
    floors, no_floor_spans, _ = read_floors(low, today)
    money_spans = _money(out, clean, low, read, [f.span for f in floors])
    left_to_plan(out.money, clean, low, read)
    phased(out.money, clean, low, read)
    if asks_every_retailer(scan, brand):
        _every_retailer(out)
    # The "ROAS" of a floor ("ROAS floor 2.75", "no minimum ROAS") states no objective: the
    # model chose it as one in 2 of 60 hand-written briefs of unseen2, so it is not offered.
    kw_spans = [f.kw_span for f in floors if f.kw_span]
    past_table = past_cells(low, today)  # and no goal: a past table's "ROAS" header (yx08)
    masked_floors = mask(low, no_floor_spans + past_table)
    hits = objective_mentions(masked_floors, kw_spans)
    if corrected := corrected_objective(masked_floors, hits):
        # Not the goal the brief then corrects: "Goal: ROAS ... UPDATE: we're switching the
        # goal to incremental margin" (yw17 of unseen67: the model kept ROAS).
        hits = [h for h in hits if h[3] == corrected[3] or h[1] > corrected[1]]
    for _, s, e, objective in hits:
        out.objectives.setdefault(_span(clean, s, e), objective)
    percent_spans = [m.span() for m in PERCENT.finditer(low)]
    not_held = replaced_shares(low)
    for m in PERCENT.finditer(low):
        # A share over the limit can never be planned: the grammar does not offer it; nor one
        # the brief replaces, a fee, or a retailer's cap or minimum (`span_lexicon.no_reserve`).
        share = float(m.group("num")) / 100
        if share <= MAX_RESERVE and m.span() not in not_held and not no_reserve(low, m, mentions):
            out.reserves.setdefault(_span(clean, *m.span()), share)
    masked = mask(low, [s for s, _ in money_spans])
    stated, _ = read_flight(masked, today)
    if month_phases := phased_flight(low, read, today):
        stated.append(month_phases)
    flights = asked_flights(stated, masked, past_sentences(low, today), CORRECTION)
    for m in FRACTION.finditer(mask(low, percent_spans + [f.span for f in stated])):
        if no_reserve(low, m, mentions):
            continue  # "Alpha shouldn't take more than half of the total" (yw22 of unseen67)
        value = FRACTION_WORDS[m.group("word") or "half"] if not m.group("num") else None
        out.reserves.setdefault(_span(clean, *m.span()), value or float(m.group("num")))
    for m in ZERO_RESERVE.finditer(low):
        out.reserves.setdefault(_span(clean, *m.span()), 0.0)
    for f in flights:
        out.flights.setdefault(_span(clean, *f.span), (f.start, f.end))
    # Not ratios: percentages, amounts, the numbers of a date, counts of days or weeks, and a
    # floor the brief gives for the past or for others, or says it does not want.
    # Every date counts, not only the flight's: "Let's discuss at the Dec 10 sync" offered
    # "10" as a floor (x09 of unseen4; the adapter chose it).
    not_ratios = [m.span() for m in DURATION.finditer(low)] + [f.span for f in stated]
    not_ratios += date_spans(low) + no_floor_spans + list_numbers(low) + past_table
    # Nor the number of a fraction: "Put one tenth aside" offered "1" (y13 of unseen5).
    not_ratios += [m.span() for m in FRACTION.finditer(low) if m.group("num") is None]
    # Nor an amount of money, but one said as a return ("at least $3 back per $1 spent", "3
    # dollars back per dollar"): the adapter chose a price ("hero SKU price $24.99"), a CPM
    # ("$9.50") and an average basket ("about $42") as the floor (yh03, yh04 of unseen52, yi01
    # of unseen53).
    not_ratios += percent_spans + [
        (s, e) for (s, e), v in money_spans if v >= MAX_FLOOR or not RETURN.match(low, e)
    ]
    _floors(out, clean, mask(low, not_ratios))
    for s, e in clause_spans(low):
        clause = low[max(0, s) : max(0, e)]
        if re.search(rf"\b{OOS_TERM}\b", clause):
            said, _ = read_oos(clause)
            out.stock.setdefault(_span(clean, s, e), True if said is None else said)
    return out


def _mentions(out: Candidates, clean: str, scan: str) -> list[Mention]:
    """Every retailer mention -> `out.mentions`, in the brief's order, as the schema shows them;
    returns every mention (start, end, retailer id), those of the past included (money near a
    retailer).

    A mention after words that exclude it ("everywhere except Beta Grocers", "not alpha"; a
    list's members too) may only be excluded (`out.excluded`), and its key keeps those words:
    the model gave 6 such mentions the role "include" in the 120 briefs of unseen8 and unseen9
    (the rules read all 6 right). Likewise a mention that words keep in ("Gamma Pharm only",
    "Retailers | Alpha Mart") may only be included (`out.kept`): the model excluded 5 such in
    unseen9 and unseen10. A mention in a sentence that only reports the past ("Last time we did
    $300k at Alpha") is not offered. Before, mentions came retailer by retailer, not in the
    brief's order: "delta and beta please, not alpha" was shown as alpha, beta, delta."""
    # Nor one of money spent elsewhere: "Beta's $350k co-op is already committed and managed
    # by the Beta account team outside of this plan, so plan the rest across Alpha and Gamma"
    # (yu18 of unseen65: the model planned Beta too), as the rules read it.
    past = past_sentences(scan, out.today, repeating_asks=True) + spent_elsewhere(scan)
    every = [
        (m.start(), m.end(), rid)
        for rid, pattern in retailer_patterns(current()).items()
        for m in pattern.finditer(scan)
    ]
    found = sorted(x for x in every if not any(s <= x[0] < e for s, e in past))
    said: dict[str, set[str]] = {}  # key -> the roles its mentions' words settle
    prev_end = -1
    for (s, e, rid), (cue, kept) in zip(found, mention_cues(scan, found), strict=True):
        # The cue is this mention's own when no other mention stands between them.
        key = _span(clean, cue if cue is not None and prev_end <= cue < s else s, e)
        prev_end = e
        out.mentions.setdefault(key, rid)
        roles = said.setdefault(key, set())
        if cue is not None:
            roles.add("exclude")
        elif kept:
            roles.add("include")
    # A key whose mentions' words disagree ("Alpha only ... not Alpha") is the model's choice.
    out.excluded = {k for k, v in said.items() if v == {"exclude"}}
    out.kept = {k for k, v in said.items() if v == {"include"}}
    return every


def _every_retailer(out: Candidates) -> None:
    """Where the brief says its plan covers all retailers, the retailers it names in passing
    ("Delta's average basket is $130", "cap Gamma at $300K") are not offered, unless words keep
    one in ("but only Alpha and Beta this time"): the adapter included them and planned them
    alone ("all retailers. Floor of $80k at Delta", yf05 of unseen50), as the rules did
    (`retailers.asks_every_retailer`). Excluded ones stay: "all retailers except Beta"."""
    if out.kept:
        return
    for key in [k for k in out.mentions if k not in out.excluded]:
        del out.mentions[key]


def _floors(out: Candidates, clean: str, scan: str) -> None:
    """Every small number of `scan` (the brief less what cannot be a ratio) -> `out.floors`,
    but for the numbers of clock times, phone numbers and two-digit years, counts ("14 new
    SKUs"), numbers of a clause about the past or others (`roas.not_ours`), and a bare "1" with
    no floor word near it ("this one", written as a digit)."""
    noise = [m.span() for m in NOT_A_RATIO.finditer(scan)]
    clauses = clause_spans(scan)
    for m in NUMBER.finditer(mask(scan, noise)):
        value = float(m.group("num"))
        low_end, high_end = OFFERED_FLOORS
        if not low_end <= value <= high_end or COUNTED_AFTER.match(scan, m.end()):
            continue
        if not_ours(scan[slice(*clause_of(m.start(), clauses))], out.today):
            continue  # "last year's spend was 1.2mn at 3.1x" (v16 of unseen9: chosen)
        if m.group() == "1" and not floor_word_beside(scan, *m.span()):
            continue
        out.floors.setdefault(_span(clean, *m.span()), value)


def _money(
    out: Candidates, clean: str, low: str, read: list[Money], floor_spans: list[tuple[int, int]]
) -> list[tuple[tuple[int, int], float]]:
    """Every amount of money -> `out.money`; returns (span, value) of each, including the
    amounts that are not offered (replaced, past or per-store ones, the "$3" and "$1" of a
    floor's "$3 back for every $1": `floor_spans`), so that no other field reads them. `read`
    is the rules' reading of the amounts (`money.read_money`): its corrections and caps."""
    found: list[tuple[tuple[int, int], float]] = []
    clauses = clause_spans(low)
    replaced: set[str] = set()
    # Budgets a later correction replaces, as the rules read them: "3M, actually make it 3.4M",
    # "$2M, hmm, no, finance says $1.75M" (the adapter chose the first amount in 9 briefs of
    # unseen29 to unseen31).
    corrected_away = replaced_by_correction(read)
    kinds = {m.span: m.kind for m in read}

    for m in MONEY.finditer(low):
        pre, scale, post = m.group("pre"), m.group("scale"), m.group("post")
        bare = not (pre or scale or post)
        whole = "," in m.group("num") or m.group("exp") or BARE_AMOUNT.match(low, m.start())
        if bare and not whole:
            continue  # a bare "3" is a count or a ratio; a bare "250,000" may be an amount
        if not (pre or post) and COUNTED_AFTER.match(low, m.end()):
            # "1,150 stores", "4.5M loyalty members" (y09 of unseen5, v51 of unseen9): a count,
            # and no floor either.
            found.append((m.span(), math.inf))
            continue
        if not pre and not post and scale in ("m", "b", "t") and low[m.start("scale") - 1] == " ":
            continue  # "4 m" is too loose to be money
        value = amount(m)
        if not math.isfinite(value) or value <= 0:
            continue
        s = m.start("pre") if pre else m.start("num")
        found.append(((s, m.end()), value))
        if any(a <= s < b for a, b in floor_spans):
            continue  # the model chose the "$1" as a reserve of $11.25k (yx07 of unseen68)
        key = _span(clean, s, m.end())
        # Replaced or past: "budget is $400k, not $300k", "2025 spend was 380k" (w10 and w33
        # of unseen8: the adapter chose them). A replaced amount is not offered where the brief
        # first gave it either (p04 of unseen10: "$400k ... actually $450k, not $400k").
        # "budget is $450k not 500" replaces the $500k (`money.read_money`, yl03 of unseen56)
        if kinds.get((s, m.end())) == "superseded" or superseded(
            low, s, low[slice(*clause_of(s, clauses))], out.today
        ):
            replaced.add(key)
            continue
        if (s, m.end()) in corrected_away:
            replaced.add(key)
            continue
        if past_aside(low, s, clauses, out.today):
            continue
        if PER_UNIT.match(low, m.end()) or network_minimum(low, s, m.end()):
            continue  # "~$150 per store per week" (p17 of unseen10: chosen as the budget)
        price = PRICE_BEFORE.search(low, max(0, s - 45), s)
        if price or unit_price(m.group("num"), scale, value):
            continue  # "avg CPM $11" (yo26 of unseen59: the rules' budget), a "$0.85" CPC
        out.money.setdefault(key, Amount(value, rate_unit_at(low, s, m.end()),
                                         minimum_words(low, s, m.end()),
                                         kinds.get((s, m.end()), "budget")))
    for key in replaced:
        out.money.pop(key, None)
    return found


# --- the answer's grammar -------------------------------------------------------------------


def span_json_schema(cands: Candidates) -> dict[str, Any]:
    """The JSON the model writes: each field one of its candidates or null; `retailers` an
    object with every mention as a key, in the brief's order, and its role. Keys in `SPAN_KEYS`
    order, all required."""

    def one_of(options: list[str]) -> dict[str, Any]:
        return {"enum": [*options, None]}

    mentions = cands.options("retailers")
    roles = {
        "type": "object",
        "properties": {
            m: {"enum": _roles(m, cands)} for m in mentions
        },
        "required": mentions,
        "additionalProperties": False,
    }
    props = {key: roles if key == "retailers" else one_of(cands.options(key)) for key in SPAN_KEYS}
    return {
        "type": "object",
        "properties": props,
        "required": list(SPAN_KEYS),
        "additionalProperties": False,
    }


def _roles(mention: str, cands: Candidates) -> list[str]:
    if mention in cands.excluded:
        return ["exclude"]
    return ["include"] if mention in cands.kept or _last_left(mention, cands) else list(ROLES)


def _last_left(mention: str, cands: Candidates) -> bool:
    """Whether the brief's words exclude every other retailer the brand sells through and no
    other mention names another: excluding this one too leaves nothing to plan (k12 of
    unseen15, "it's Delta Home, not Alpha Mart": the model excluded both)."""
    rid = cands.mentions[mention]
    out = {cands.mentions[m] for m in cands.excluded}
    free = {r for m, r in cands.mentions.items() if m not in cands.excluded}
    return rid not in out and free == {rid} and set(brand_retailers(cands.brand)) <= out | {rid}


def span_decode_schema(cands: Candidates) -> dict[str, Any] | None:
    """What the grammar decodes under, stricter than `span_json_schema` (which the prompt
    shows): once the model has chosen the budget span, the reserve may not be that same amount,
    nor an amount over `MAX_RESERVE` of it. None where there is nothing to narrow (fewer than
    two amounts: no amount is then a reserve option).

    Why: the most common invalid answer of the planning adapter on hand-written briefs was the
    budget's own span as the reserve ("$600k ... hold $30k back" -> reserve "$600k", 100%),
    which converts to no plan. A JSON schema cannot say "not the budget's value" in one enum,
    so this is an `anyOf` with one branch per budget choice; the prompt keeps the plain schema
    the adapter was trained on."""
    money = list(cands.money)
    if len(money) < 2:
        return None
    base = span_json_schema(cands)
    branches = []
    for budget in [*cands.options("budget"), None]:
        props = dict(base["properties"])
        props["budget"] = {"enum": [budget]}
        props["reserve"] = {"enum": [*_reserves_beside(cands, budget), None]}
        branches.append({**base, "properties": props})
    return {"anyOf": branches}


def _reserves_beside(cands: Candidates, budget: str | None) -> list[str]:
    """The reserve spans that can go with the budget span `budget`: every share, and every
    other amount within `MAX_RESERVE` of it (any other amount beside a rate, whose total
    depends on the flight)."""
    if budget is None:
        return cands.options("reserve")
    total = cands.money[budget]
    amounts = [
        span
        for span, m in cands.money.items()
        if span != budget and m.reservable
        # a rate beside a total is none ("$50/day minimum per campaign", yg02 of unseen51)
        and (total.rate_unit or (m.value <= MAX_RESERVE * total.value and not m.rate_unit))
    ]
    return [*cands.reserves, *amounts]


# --- spans -> values ------------------------------------------------------------------------


# The brief field each answer key states (a refusal names the field, as the rules' do).
SPAN_FIELDS: dict[str, str] = {
    "budget": "total_budget",
    "retailers": "retailers",
    "objective": "objective",
    "floor": "roas_floor",
    "reserve": "experiment_reserve",
    "flight": "flight_start",
    "stock": "exclude_oos",
}


class SpanError(ValueError):
    """An answer that names a span the brief does not offer for that field, or a value no plan
    can take; `field` is the brief field at fault (None: the answer as a whole)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.field = SPAN_FIELDS.get(key or "")


def _pick(options: dict[str, Any], key: str, said: Any) -> Any:
    if said not in options:
        raise SpanError(f"{key}: {said!r} is not one of the brief's {key} spans", key)
    return options[said]


def convert(answer: dict[str, Any], cands: Candidates) -> dict[str, Any]:
    """The brief's fields from the model's spans (`BRIEF_FIELDS`; defaults for nulls). Raises
    `SpanError` for a span the brief does not offer, or a value no plan can take."""
    missing = [k for k in SPAN_KEYS if k not in answer]
    if missing:
        raise SpanError(f"the answer lacks {', '.join(missing)}")
    start = end = None
    if answer["flight"] is not None:
        start, end = _pick(cands.flights, "flight", answer["flight"])
    budget = None
    if answer["budget"] is not None:
        money = _pick(cands.money, "budget", answer["budget"])
        budget = money.value
        if money.rate_unit:
            rate = Money(money.value, (0, 0), "rate", rate_unit=money.rate_unit)
            budget, _, errors = budget_from_rate(rate, start, end)
            if errors:
                raise SpanError(errors[0].message, "budget")
    if budget is None:
        raise SpanError("budget: the answer names no amount", "budget")
    problem = budget_problem(budget)
    if problem is not None:
        raise SpanError(f"budget: {problem.message}", "budget")
    fields: dict[str, Any] = {"total_budget": float(budget)}
    fields["retailers"] = _retailers(answer, cands)
    fields["objective"] = (
        DEFAULT_OBJECTIVE
        if answer["objective"] is None
        else _pick(cands.objectives, "objective", answer["objective"])
    )
    fields["roas_floor"] = (
        None if answer["floor"] is None else _pick(cands.floors, "floor", answer["floor"])
    )
    fields["experiment_reserve"] = _reserve(answer["reserve"], cands, budget)
    fields["flight_start"], fields["flight_end"] = start, end
    fields["exclude_oos"] = (
        True if answer["stock"] is None else _pick(cands.stock, "stock", answer["stock"])
    )
    return fields


def _retailers(answer: dict[str, Any], cands: Candidates) -> list[str]:
    sold = brand_retailers(cands.brand)
    roles = answer["retailers"] or {}
    if not isinstance(roles, dict) or any(r not in ROLES for r in roles.values()):
        raise SpanError(
            f"retailers: each mention's role must be one of {', '.join(ROLES)}", "retailers"
        )
    if any(r not in _roles(m, cands) for m, r in roles.items() if m in cands.mentions):
        raise SpanError(
            "retailers: the brief's words settle a mention's role otherwise", "retailers"
        )
    named = [_pick(cands.mentions, "retailers", m) for m, r in roles.items() if r == "include"]
    dropped = {_pick(cands.mentions, "retailers", m) for m, r in roles.items() if r == "exclude"}
    if not named and not dropped:
        return []  # every retailer the brand sells through
    base = named or sold
    out = [r for r in dict.fromkeys(base) if r not in dropped]
    if not out:
        raise SpanError("retailers: the answer excludes every retailer it names", "retailers")
    return out


def _reserve(said: str | None, cands: Candidates, budget: float) -> float:
    if said is None:
        return DEFAULT_RESERVE
    if said in cands.reserves:
        share = cands.reserves[said]
    elif said in cands.options("reserve"):
        share = cands.money[said].value / budget
    else:
        raise SpanError(f"reserve: {said!r} is not one of the brief's reserve spans", "reserve")
    if not 0 <= share <= MAX_RESERVE:
        raise SpanError(
            f"reserve: {said!r} is {share:.0%} of the budget, over the limit", "reserve"
        )
    return round(share, 6)
