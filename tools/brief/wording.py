"""Writing a gold brief out in words: templates with slots, and the phrasings that fill them.

Each template writes every brief field it has a slot for; optional parts (`[[ ... ]]`) go when
the item has no value for their slot. Each slot is filled with a randomly chosen phrasing:
money as "$2.5M", "2.5 million dollars" or "USD 2,500,000"; retailers by name or id; floors,
reserves and flights in several layouts. A template without a slot for a field leaves it at
its default, and `gold_for` says so.
"""

from __future__ import annotations

import calendar
import random
import re
from datetime import date
from typing import Any

from tools.brief.rules import NUMBER_WORDS, TENS_WORDS
from tools.brief.schema import DEFAULT_RESERVE, brand_retailers
from tools.brief.source_items import SourceItem
from tools.world.catalog import BRANDS, RETAILERS

# --- phrasings ------------------------------------------------------------------------------


def _say(n: int) -> str:
    """English for 0 <= n < 1000."""
    if n < 20:
        return NUMBER_WORDS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return TENS_WORDS[tens - 2] + (f"-{NUMBER_WORDS[unit]}" if unit else "")
    hundreds, rest = divmod(n, 100)
    return f"{NUMBER_WORDS[hundreds]} hundred" + (f" {_say(rest)}" if rest else "")


def _money_in_words(value: float) -> str | None:
    if value >= 1e6:
        millions = value / 1e6
        whole = int(millions)
        frac = round(millions - whole, 3)
        if frac == 0:
            return f"{_say(whole)} million"
        if frac == 0.5:
            return f"{_say(whole)} and a half million"
        if round(frac * 10, 6).is_integer():
            return f"{_say(whole)} point {_say(int(round(frac * 10)))} million"
        return None
    if value == 500_000:
        return "half a million"
    if value % 1000 == 0:
        return f"{_say(int(value // 1000))} thousand"
    return None


def _money(value: float, rng: random.Random, capital: bool = False) -> str:
    forms = [f"${value:,.0f}", f"USD {value:,.0f}", f"{value:,.0f} USD"]
    if value >= 1e6:
        m = f"{value / 1e6:g}"
        forms += [f"${m}M", f"{m} million dollars", f"${m} million", f"{m}M", f"${m}MM", f"{m}m"]
    elif value % 1000 == 0:
        k = f"{value / 1e3:g}"
        forms += [f"${k}K", f"{k}k", f"${k}k", f"{k}k USD"]
    words = _money_in_words(value)
    if words:
        forms.append(f"{words} dollars")
    text = rng.choice(forms)
    return text[0].upper() + text[1:] if capital else text


def _retailer_name(rid: str, rng: random.Random) -> str:
    full = RETAILERS[rid].name
    return rng.choice([full, full, full.split()[0], rid])


def _join(names: list[str], rng: random.Random) -> str:
    if len(names) == 1:
        return names[0]
    style = rng.choice(["and", "and", "comma", "plus", "amp"])
    if style == "plus":
        return " + ".join(names)
    if style == "amp":
        return " & ".join(names)
    if style == "comma" and len(names) > 2:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 2 else " and ".join(names)


def _retailers(item: SourceItem, rng: random.Random) -> str:
    sold = brand_retailers(item.brand)
    if item.retailer_mode == "all":
        return rng.choice(
            ["all retailers", "all our retailers", "all networks", "every retailer",
             "all retail media networks", "every network we sell through"]
        )  # fmt: skip
    if item.retailer_mode == "except":
        dropped = [r for r in sold if r not in item.retailers]
        names = _join([_retailer_name(r, rng) for r in dropped], rng)
        return rng.choice(
            [f"all retailers except {names}", f"everything except {names}",
             f"all networks excluding {names}", f"all networks but {names}",
             f"every retailer other than {names}", f"everywhere but {names}",
             f"all our retailers apart from {names}", f"every network we're in minus {names}"]
        )  # fmt: skip
    names = [_retailer_name(r, rng) for r in rng.sample(item.retailers, len(item.retailers))]
    joined = _join(names, rng)
    if len(names) == 1 and rng.random() < 0.5:
        return rng.choice(
            [f"{joined} only", f"only {joined}", f"just {joined}", f"{joined} exclusively",
             f"all of it on {joined}", f"nothing but {joined}"]
        )  # fmt: skip
    return joined


_OBJECTIVE_WORDS: dict[str, dict[str, list[str]]] = {
    "incremental_margin": {
        "verb": ["maximize incremental margin", "maximize profit", "grow margin",
                 "drive incremental margin", "maximize profitability", "maximise margin"],
        "noun": ["incremental margin", "profit", "margin", "profitability"],
        "ing": ["maximizing incremental margin", "optimizing for profit", "maximizing margin"],
        "plain": ["incremental margin", "profit", "margin"],
    },
    "incremental_revenue": {
        "verb": ["maximize incremental revenue", "maximize sales", "drive sales",
                 "grow top-line revenue", "boost incremental sales", "maximise revenue"],
        "noun": ["incremental revenue", "sales", "revenue", "top-line sales"],
        "ing": ["maximizing sales", "optimizing for incremental revenue", "driving revenue"],
        "plain": ["incremental revenue", "sales", "revenue"],
    },
    "roas": {
        "verb": ["maximize ROAS", "maximize return on ad spend", "get the best ROAS",
                 "optimize for efficiency", "maximize iROAS"],
        "noun": ["ROAS", "return on ad spend", "efficiency"],
        "ing": ["maximizing ROAS", "optimizing for return on ad spend", "maximizing efficiency"],
        "plain": ["ROAS", "return on ad spend"],
    },
}  # fmt: skip


def _num(value: float) -> str:
    return f"{value:g}"


def _floor_np(value: float, rng: random.Random) -> str:
    v = _num(value)
    return rng.choice(
        [f"ROAS >= {v}", f"a ROAS of at least {v}", f"at least {v}x ROAS", f"a {v}:1 ROAS minimum",
         f"a ROAS floor of {v}", f"ROAS no lower than {v}", f"a minimum ROAS of {v}",
         f"ROAS of {v} or better", f"at least ${v} in sales for every $1 spent",
         f"ROAS \u2265 {v}", f"a {v}x return at minimum"]
    )  # fmt: skip


def _floor_keep(value: float, rng: random.Random) -> str:
    v = _num(value)
    return rng.choice([f"ROAS at or above {v}", f"ROAS above {v}", f"ROAS >= {v}"])


def _floor_s(value: float, rng: random.Random) -> str:
    v = _num(value)
    return rng.choice(
        [f"Keep ROAS at or above {v}", f"ROAS must stay above {v}", f"ROAS floor: {v}x",
         f"Minimum ROAS {v}", f"ROAS has to be at least {v}", f"Don't go below {v}x ROAS"]
    )  # fmt: skip


def _pct(value: float) -> str:
    return f"{value * 100:g}"


def _reserve(item: SourceItem, rng: random.Random) -> str:
    r = item.reserve
    if r == 0:
        return rng.choice(["no experiment reserve", "no holdout this time", "no test budget"])
    p = _pct(r)
    forms = [
        f"{p}% for experiments",
        f"hold back {p}% for tests",
        f"{p} percent reserved for incrementality tests",
        f"set aside {p}% for experiments",
        f"keep {p}% for testing",
        f"{p}% experiment reserve",
        f"reserve {r:g} of budget for tests",
        f"set aside {_money(round(r * item.budget, 2), rng)} for experiments",
    ]
    if p == "10":
        forms += ["ten percent for experiments", "a tenth for tests"]
    elif p == "20":
        forms += ["hold back a fifth for experiments", "twenty percent for tests"]
    elif p == "25":
        forms.append("a quarter of it for experiments")
    elif p == "15":
        forms.append("hold back fifteen percent for tests")
    return rng.choice(forms)


def _reserve_pct(item: SourceItem, rng: random.Random) -> str:
    return (
        "none"
        if item.reserve == 0
        else rng.choice([f"{_pct(item.reserve)}%", _pct(item.reserve) + " percent"])
    )


_MONTH_NAMES = list(calendar.month_name)[1:]
_MONTH_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _day(d: date, rng: random.Random, year: bool) -> str:
    month = rng.choice([_MONTH_NAMES, _MONTH_NAMES, _MONTH_ABBR])[d.month - 1]
    if rng.random() < 0.2:
        return f"{d.day} {month}" + (f" {d.year}" if year else "")
    return f"{month} {d.day}" + (f", {d.year}" if year else "")


def _flight(item: SourceItem, rng: random.Random, bare: bool) -> str:
    kind, start, end = item.flight_kind, item.flight_start, item.flight_end
    assert start is not None and end is not None
    lead = "" if bare else rng.choice(["in ", "for ", "during "])
    if kind == "range":
        layout = rng.choice(["words", "words", "us", "iso", "between"])
        if layout == "us":
            return f"{start.month}/{start.day}/{start.year} - {end.month}/{end.day}/{end.year}"
        if layout == "iso":
            return f"{'' if bare else 'from '}{start.isoformat()} to {end.isoformat()}"
        both_years = start.year != end.year or rng.random() < 0.3
        a, b = _day(start, rng, both_years), _day(end, rng, True)
        if layout == "between" and not bare:
            return f"between {a} and {b}"
        return f"{'' if bare else 'from '}{a} to {b}"
    if kind == "quarter":
        q = (start.month - 1) // 3 + 1
        ordinal = ["first", "second", "third", "fourth"][q - 1]
        return lead + rng.choice(
            [f"Q{q} {start.year}", f"Q{q} {start.year}", f"the {ordinal} quarter of {start.year}"]
        )
    if kind == "month":
        return lead + f"{rng.choice([_MONTH_NAMES, _MONTH_ABBR])[start.month - 1]} {start.year}"
    if kind == "weeks":
        n = ((end - start).days + 1) // 7
        return rng.choice(
            [f"over the next {n} weeks", f"for the next {n} weeks", f"next {n} weeks"]
        )
    if kind == "days":
        n = (end - start).days + 1
        return rng.choice([f"over the next {n} days", f"for the next {n} days"])
    if kind == "next_month":
        return "next month"
    n = ((end - start).days + 1) // 7  # start_weeks
    when = _day(start, rng, True)
    return rng.choice([f"for {n} weeks starting {when}", f"starting {when} for {n} weeks"])


def _oos(item: SourceItem, rng: random.Random) -> str:
    if item.oos == "include":
        return rng.choice(
            ["Include out-of-stock SKUs", "Include OOS items too", "Out-of-stock products are fine",
             "Please include out of stock SKUs"]
        )  # fmt: skip
    return rng.choice(["Exclude out-of-stock SKUs", "Skip out-of-stock items"])


# --- templates ------------------------------------------------------------------------------

# `[[ ... ]]` holds an optional part with one slot; it is dropped when the item has no value for
# that slot. Slots: budget, Budget (capitalized), retailers, Retailers, brand, verb, Verb, noun,
# Noun, ing, plain, floor, floor_keep, floor_s, reserve, reserve_s, reserve_pct, flight,
# flight_bare, oos, oos_lower.
TEMPLATES: dict[str, str] = {
    "t01": "Allocate {budget} across {retailers} to {verb}[[ with {floor}]][[, {reserve}]]"
    "[[ {flight}]].[[ {oos}.]]",
    "t02": "Budget: {budget}. Retailers: {retailers}. Objective: {noun}.[[ {floor_s}.]]"
    "[[ {reserve_s}.]][[ Flight: {flight_bare}.]][[ {oos}.]]",
    "t03": "We'd like to spend {budget} on {retailers}[[ {flight}]], {ing}.[[ {floor_s}.]]"
    "[[ {reserve_s}.]][[ {oos}.]]",
    "t04": "Plan {budget} for {brand} on {retailers}[[ {flight}]] to {verb}[[, {floor}]]"
    "[[, {reserve}]].[[ {oos}.]]",
    "t05": "{Retailers}: {budget}[[ {flight}]]. Goal is {noun}.[[ {floor_s}.]][[ {reserve_s}.]]"
    "[[ {oos}.]]",
    "t06": "Can you spread {budget} across {retailers}[[ {flight}]]? We want to {verb}."
    "[[ {floor_s}.]][[ {reserve_s}.]][[ {oos}.]]",
    "t07": "Our budget is {budget}. Put it on {retailers}[[ {flight}]] and {verb}[[ with {floor}]]."
    "[[ {reserve_s}.]][[ {oos}.]]",
    "t08": "{Verb} on {retailers} with {budget}[[ {flight}]][[; {floor}]][[; {reserve}]]."
    "[[ {oos}.]]",
    "t09": "Need a plan: {budget}, {retailers}, {noun}[[, {floor}]][[, {reserve}]]"
    "[[, {flight_bare}]].[[ {oos}.]]",
    "t10": "{Budget} total across {retailers}. Priority: {noun}.[[ {floor_s}.]][[ {reserve_s}.]]"
    "[[ Timing: {flight_bare}.]][[ {oos}.]]",
    "t11": "Hi team, please allocate {budget} to {retailers}[[ {flight}]] with the objective of "
    "{ing}.[[ {floor_s}.]][[ {reserve_s}.]][[ {oos}.]]",
    "t12": "spend {budget} at {retailers}[[ {flight}]], {noun} is the priority[[, {floor}]]"
    "[[, {reserve}]][[. {oos_lower}]]",
    "t13": "Invest {budget} in {retailers}[[ {flight}]]. Optimize for {noun}"
    "[[ and keep {floor_keep}]].[[ {reserve_s}.]][[ {oos}.]]",
    "t14": "For {brand}: {budget} on {retailers}, {verb}[[, {floor}]][[, {reserve}]]"
    "[[, {flight_bare}]].[[ {oos}.]]",
    "t15": "Let's run {budget} across {retailers}[[ {flight}]]. Main KPI: {noun}.[[ {floor_s}.]]"
    "[[ {reserve_s}.]][[ {oos}.]]",
    "t16": "I have {budget} for {retailers}[[ {flight}]]. The aim is to {verb}"
    "[[ while keeping {floor_keep}]].[[ {reserve_s}.]][[ {oos}.]]",
    "t17": "{Budget} budget, {retailers}, {verb}[[, {floor}]][[, {reserve}]][[, {flight_bare}]]"
    "[[, {oos_lower}]]",
    "t18": "Please put {budget} behind {retailers}[[ {flight}]] and {verb}.[[ We need {floor}.]]"
    "[[ {reserve_s}.]][[ {oos}.]]",
    "t19": "Objective: {noun}. Spend: {budget}. Networks: {retailers}.[[ Guardrail: {floor}.]]"
    "[[ Experiments: {reserve_pct}.]][[ Dates: {flight_bare}.]][[ {oos}.]]",
    "t20": "Maximize {plain} with {budget} on {retailers}[[ {flight}]][[, {floor}]][[, {reserve}]]."
    "[[ {oos}.]]",
    "t21": "Over to you: {budget}, {retailers}[[, {flight_bare}]]. {Verb}.[[ {floor_s}.]]"
    "[[ {reserve_s}.]][[ {oos}.]]",
    "t22": "{Retailers} get {budget}[[ {flight}]]; we are {ing}[[ with {floor}]][[; {reserve}]]."
    "[[ {oos}.]]",
    "t23": "Allocate a total of {budget} to {retailers}. {Verb}.[[ {floor_s}.]][[ {reserve_s}.]]"
    "[[ Run it {flight}.]][[ {oos}.]]",
    "t24": "Retail media plan[[ {flight}]]: {budget} across {retailers}, goal is {noun}"
    "[[, {floor}]][[, {reserve}]].[[ {oos}.]]",
    "t25": "Spend {budget} on {retailers}[[ {flight}]] for maximum {plain}[[; {floor}]]"
    "[[; {reserve}]].[[ {oos}.]]",
    "t26": "We're allocating {budget} to {retailers}[[ {flight}]]. Focus on {noun}.[[ {floor_s}.]]"
    "[[ {reserve_s}.]][[ {oos}.]]",
    "t27": "Brief for {brand}[[, {flight_bare}]]: {budget}; {retailers}; {noun} first"
    "[[; {floor}]][[; {reserve}]][[; {oos_lower}]].",
    "t28": "How should we spend {budget} across {retailers}[[ {flight}]] to {verb}?"
    "[[ {floor_s}.]][[ {reserve_s}.]][[ {oos}.]]",
    "t29": "{Budget} on {retailers}. {Noun} first.[[ {floor_s}.]][[ {reserve_s}.]]"
    "[[ Flight: {flight_bare}.]][[ {oos}.]]",
    "t30": "Deploy {budget} across {retailers}[[ {flight}]], {ing}[[, subject to {floor}]]"
    "[[, {reserve}]].[[ {oos}.]]",
}


_SHORT_BRAND_NAMES = {
    "acme": "Acme",
    "globex": "Globex",
    "initech": "Initech",
    "brand_x": "Brand X",
}

# Template slots that state each field; a template without any of them leaves it at its default.
_FIELD_SLOTS: dict[str, tuple[set[str], Any]] = {
    "roas_floor": ({"floor", "floor_keep", "floor_s"}, None),
    "experiment_reserve": ({"reserve", "reserve_s", "reserve_pct"}, DEFAULT_RESERVE),
    "flight_start": ({"flight", "flight_bare"}, None),
    "flight_end": ({"flight", "flight_bare"}, None),
    "exclude_oos": ({"oos", "oos_lower"}, True),
}


def gold_for(template: str, gold: dict[str, Any]) -> dict[str, Any]:
    """The gold fields as the template states them."""
    slots = set(re.findall(r"\{(\w+)\}", TEMPLATES[template]))
    out = dict(gold)
    for name, (stating, default) in _FIELD_SLOTS.items():
        if not slots & stating:
            out[name] = default
    return out


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def slots_for(item: SourceItem, rng: random.Random) -> dict[str, str | None]:
    """A phrasing for every slot of any template (None: the item has no value for it)."""
    words = _OBJECTIVE_WORDS[item.objective]
    budget = _money(item.budget, rng)
    retailers = _retailers(item, rng)
    verb, noun = rng.choice(words["verb"]), rng.choice(words["noun"])
    has_flight = item.flight_kind is not None
    reserve = _reserve(item, rng) if item.reserve_stated else None
    return {
        "budget": budget,
        "Budget": _cap(budget),
        "retailers": retailers,
        "Retailers": _cap(retailers),
        "brand": rng.choice([BRANDS[item.brand].name, _SHORT_BRAND_NAMES[item.brand]]),
        "verb": verb,
        "Verb": _cap(verb),
        "noun": noun,
        "Noun": _cap(noun),
        "ing": rng.choice(words["ing"]),
        "plain": rng.choice(words["plain"]),
        "floor": _floor_np(item.floor, rng) if item.floor else None,
        "floor_keep": _floor_keep(item.floor, rng) if item.floor else None,
        "floor_s": _floor_s(item.floor, rng) if item.floor else None,
        "reserve": reserve,
        "reserve_s": _cap(reserve) if reserve else None,
        "reserve_pct": _reserve_pct(item, rng) if item.reserve_stated else None,
        "flight": _flight(item, rng, bare=False) if has_flight else None,
        "flight_bare": _flight(item, rng, bare=True) if has_flight else None,
        "oos": _oos(item, rng) if item.oos else None,
        "oos_lower": _oos(item, rng).lower() if item.oos else None,
    }


def render(template: str, slots: dict[str, str | None]) -> str:
    """Fill a template; optional `[[ ... ]]` parts go when their slot is empty."""
    out: list[str] = []
    rest = template
    while "[[" in rest:
        head, _, tail = rest.partition("[[")
        part, _, rest = tail.partition("]]")
        out.append(head)
        name = part[part.index("{") + 1 : part.index("}")]
        if slots.get(name) is not None:
            out.append(part)
    out.append(rest)
    filled = "".join(out).format(**{k: v or "" for k, v in slots.items()})
    return filled.replace("..", ".").replace("?.", "?")
