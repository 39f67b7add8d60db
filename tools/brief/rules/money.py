"""Money in a brief: the total budget, and the amounts that are not it.

Every amount ("$2.5M", "750k USD", "2,500,000 dollars") is read once and classified by the words
around it: the budget, an experiment reserve ("$140k for tests"), a per-retailer cap, a rate
("$100k per week", turned into a total over the flight), or an amount the text itself replaces
("not $2M", "last year's $1M"), with the retailer it is for ("$2M on Alpha", "Alpha: $2M").
Which of several budgets is the budget is `budget.choose_budget`'s. Foreign currencies are an
error: budgets are planned in USD.

Numbers may carry an exponent ("$2.5e6", "1e6 dollars": Python's own float reading takes it
whole) and scale words up to trillions ("$5T", "$5 tn"); an amount too large for a float, or a
budget beyond `MAX_BUDGET`, is an error that names it rather than a number that is planned.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from tools.brief.rules.corrections import PRICE_BEFORE, replaced_by_bare_figures, unit_price
from tools.brief.rules.reserve import RESERVE_AFTER, RESERVE_BEFORE
from tools.brief.rules.tables import past_cells
from tools.brief.rules.text import (
    CORRECTION,
    OTHERS,
    about_the_past,
    after_past_figure,
    as_float,
    clause_of,
    clause_spans,
)
from tools.brief.schema import BriefError

Mention = tuple[int, int, str]  # a retailer mention: start, end, retailer id

SCALE_WORDS = {
    "k": 1e3,
    "thousand": 1e3,
    "grand": 1e3,
    "m": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "mil": 1e6,
    "mill": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
    "billions": 1e9,
    "t": 1e12,
    "tn": 1e12,
    "trillion": 1e12,
    "trillions": 1e12,
}
# One-letter scales ("4 m", "5 t") count only glued to the number or with a currency.
_LOOSE_SCALES = ("m", "b", "t")
# A number inside a word is a code, not money: "zebra76e46412" once read as 76e464 dollars
# (a test's random run marker), and the brief was refused as "not a finite amount".
MONEY = re.compile(
    r"(?P<neg>(?<![\w.])-(?=[$\d]))?(?:(?P<pre>us\$|\$|usd\s?)|(?<!\w))"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)(?P<exp>e[+-]?\d{1,3})?)"
    r"(?:\s?(?P<scale>millions|million|thousand|billions|billion|trillions|trillion|grand|mill|"
    r"mil|mm|mn|bn|tn|k|m|b|t)\b)?"
    r"(?:\s?(?P<post>dollars|dollar|usd|bucks)\b)?"
)
_FOREIGN = re.compile(
    r"(?:[£€¥]\s?\d|\d[\d,.]*\s?(?:k|m|mm|million|thousand)?\s?(?:eur|euros?|gbp|pounds|yen|"
    r"cad|aud|inr|rupees)\b|\b(?:eur|gbp|cad|aud|jpy|inr)\s?\d)"
)
_BUDGET_CUE = re.compile(
    r"\b(?:budget|allocate|allocating|spend|spending|invest|investing|put|plan|deploy|total|"
    r"overall|flight|behind|have|got|do|use|run)\b"
)
# "Acme's Q2 number is 1,400,000" (yf13 of unseen50 planned the $300k minimum)
_LABEL = re.compile(r"\b(?:total )?budget\s*(?:\(usd\)\s*)?[:=|]\s*$|\bnumber is\s+$")
_TOTAL_CUE = re.compile(r"\b(?:total|overall|in all|altogether|all[- ]in)\b")
_SUPERSEDED = re.compile(
    r"(?:\bnot\s+(?:the\s+)?|\binstead of\s+(?:the\s+)?|\brather than\s+(?:the\s+)?|"
    r"\b(?:was|previously|originally|last year's|last quarter's|used to be)\s+(?:the\s+)?"
    # "the budget got cut from 3M to 2.5M" (d50 of unseen21 kept 3M).
    r"|\b(?:cut|down|up|raised|increased|reduced|lowered|dropped|moved|went|going|bumped|"
    r"changed|revised)\s+from\s+"
    # "Ignore my earlier message bumping this to $700k - the original $550k stands" (yn24)
    r"|\bignore (?:my|the|our) (?:earlier|previous|last|prior) (?:message|note|email|ask)"
    r"[^.;,:\n-]{0,30})$"
)
# Sales, not spend: "we crossed $1.3bn in annual revenue last year" (wa12 of unseen42, listed
# among "several budgets mentioned").
_EARNED = re.compile(r"\S+\s+(?:in|of)\s+(?:annual\s+|yearly\s+|total\s+)?(?:revenue|sales)\b")
# "Sales forecast for Feb is ~$3.2M, just for reference" (yx17 of unseen68 planned it).
_FORECAST = re.compile(
    r"\b(?:sales|revenue|gmv|demand)\s+(?:forecast|projection|estimate)s?\b[^$\d\n]{0,20}$"
)
# The size of a market, not a budget: "the category is ~$1.2bn nationally" (o33 of unseen28).
_MARKET = re.compile(r"\b(?:category is|market is|market size|industry|nationally)\b")
# Someone else's spend, said with no past time: "our competitor reportedly dropped $5M at Beta
# Grocers this year" (ma13 of unseen33: added to the plan's $2.2M).
# "Competitor is rumored to be dropping $5M at Beta Grocers in Q1" (va10 of unseen41: read as
# the budget).
_SPENT_VERBS = (
    # "Competitor spend 1 million in Beta Grocers" (yk05 of unseen55 planned Beta alone); "Our
    # rival Brand Omega just announced a $2.5M retail push" (ya53 of unseen44); "a competitor
    # just doubled their Alpha Mart spend to $2M", "Globex is apparently running $1M on Alpha
    # Mart" (za15, za33 of unseen45 planned them); "We heard a competitor committed $1M to
    # Gamma Pharmacy" (yg06 of unseen51: the adapter chose it as the budget)
    r"(?:spent|spends|spend|spending|dropped|drops|dropping|put|puts|putting|invested|investing|"
    r"poured|pouring|threw|throwing|announced|announcing|launched|launching|doubled|tripled|"
    r"running|runs|ran|committed|committing|commits|rumou?red)\b"  # "is rumored at $3M" (yr22)
)


def _spent_by(who: str, gap: int) -> re.Pattern[str]:
    """Spend said of `who`, with up to `gap` words between ("Competitor is rumored to be
    dropping", "Initech supposedly put")."""
    return re.compile(rf"\b{who}\b(?:'s)?(?:\s+[\w()]+){{0,{gap}}}?\s+{_SPENT_VERBS}")


_THEIRS = _spent_by(OTHERS, 4)
# An amount told as a mistake to ignore: "budget is 1.3M (someone typo'd 13M in the deck,
# ignore that)" (va21 of unseen41: kept 1.3M only as "the first").
_TYPO = re.compile(r"\btypo(?:'d|ed)\b")
_ACTUALS = re.compile(r"\bactuals?\s*[:=-]?\s*$")
_CAP_BEFORE = re.compile(
    # "| Beta max | $150,000 |" (yk04 of unseen55)
    r"(?:(?:max(?:imum)?|cap)\s*[:|=]|"
    r"no more than|not more than|at most|up to|maximum of|max(?:imum)?|cap(?:ped)?(?: at| of)?|"
    r"limit(?:ed)?(?: to| of)?|ceiling of|under|<=?"
    # "Don't put more than $300k on any single retailer", "no single retailer gets more than
    # $350k", "Gamma spend not to exceed $700k" (ye08, ye13, ye11 of unseen49)
    r"|(?:\bno|\bnot|n't|\bnever)\b[^.;$]{0,40}\bmore than|not to exceed"
    # "Beta: don't exceed $400K" (yh08 of unseen52)
    r"|(?:must|should|do|does|wo|ca)n'?t exceed|(?:do|must|should|will|can) not exceed"
    # "Alpha Mart shouldn't go above $350k" (yo29 of unseen59: read as a minimum)
    r"|(?:must|should|do|does|wo|ca)n'?t go (?:above|over|beyond)"
    r"|(?:do|must|should|will|can) not go (?:above|over|beyond)"
    r"|tops? out at"  # "Delta should top out at $120K" (yw12 of unseen67)
    r")\s+$"
)
# A minimum at a retailer ("at least $300k must go to Beta", "Gamma min 100k", "floor of $80k
# at Delta", "keep Alpha Mart at $200k or more", "commits us to $600k", "we owe Beta 300,000
# minimum"): a joint business plan's or an upfront's commitment (`parse._mins`).
_MIN_BEFORE = re.compile(
    r"(?:\b(?:at least|at leats|no less than|not less than|minimum(?: of)?|min\.?"
    r"|(?:a )?floor of|commits? (?:us )?to|committed to(?: spend(?:ing)?)?|committed|commit"
    r"|guaranteed?|locks? in(?: at least)?|on the hook for|has to get|have to get|needs to get"
    # "Beta can't drop below $300k", "delta not under 300K" (yg01, yg25 of unseen51)
    r"|(?:can'?t|cannot|must not|mustn'?t|shouldn'?t|won'?t|may not) (?:drop|go|fall|dip|be)"
    r" (?:below|under)|not (?:below|under))|>=)\s+$"
)
# A network's own minimum per unit, not the plan's: "a $5,000 minimum per campaign", "a
# minimum daily budget of $100 per line item" (yg20 of unseen51).
_PER_UNIT = re.compile(
    r"\s*(?:minimum\s+)?(?:per|a|an|each|every)\s+(?:campaign|line|line item|ad group|day|order"
    r"|placement|keyword|sku|creative)\b"
)
# What a network sets its minimums on: after the amount ("a $5k per-campaign minimum", "$100/day
# per campaign") or before it ("Alpha's min per campaign is $2,500", "Alpha's daily minimum per
# campaign is $1,000": yh14 of unseen52 and yi11 of unseen53 read these as minimums at Alpha,
# and the model chose "$5k per-campaign" as a reserve and "$100/day per campaign" as a budget).
_NETWORK_UNIT = (
    r"(?:per|each|every)[\s-]+(?:campaign|line item|line|ad group|order|placement|keyword"
    r"|creative)\b"
)
_NETWORK_UNIT_AFTER = re.compile(
    rf"\s*(?:(?:/|per\s+|a\s+)(?:day|week|month)\s*)?(?:minimum\s+)?{_NETWORK_UNIT}"
)
_NETWORK_UNIT_BEFORE = re.compile(
    rf"\bmin(?:imum)?\b[^$\d.;\n]{{0,20}}\b{_NETWORK_UNIT}[^$\d.;\n]{{0,15}}$"
)
# "commitment from our JBP is $150K" (yf20), not "300k of that is already committed to TV, so
# plan the remaining $1.7M on Delta Home" (wa28 of unseen42, the budget).
_MIN_NEAR = re.compile(
    r"\b(?:min|minimum|owe|owes)\b[^.;,$\n]{0,30}$|\bcommitment\b[^.;,$\n]{0,25}\b(?:is|of)\s+$"
)
_MIN_AFTER = re.compile(r"^[ \t]*(?:min(?:imum)?\b|at (?:a )?minimum\b|or (?:more|above|higher)\b)")
_CAP_NEAR = re.compile(r"\b(?:cap|caps|capped|limit|limited|ceiling)\b[^.;$]{0,25}$")
_CAP_AFTER = re.compile(r"^\s*(?:max|maximum|cap|limit|tops|at most|ceiling)\b")
PER_RETAILER = re.compile(
    r"\b(?:per|any|each|every|a single|any (?:one|1|single)|no single|no one|one|1) "
    r"(?:retailer|network|rmn|partner)"
    # "Run it on both Alpha and Delta but no more than $600k at either one" (yu08 of unseen65)
    r"|\beither (?:one|1|of them|retailer|network)\b"
)
# "$300K per quarter, full calendar 2027" (yv07 of unseen66 planned one quarter's)
_RATE = re.compile(
    r"^\s*(?:(?:per|a|each|every|/)\s*(?P<unit>week|wk|month|mo|day|quarter|qtr)\b"
    r"|(?P<adj>weekly|monthly|daily|quarterly)\b)"
)


# A rate named before its amount: a table's "| Weekly spend | $30k |" (u32 of unseen7).
_RATE_BEFORE = re.compile(
    r"\b(?P<adj>weekly|monthly|daily)\s+(?:spend|budget|amount|investment)\s*[|:=-]?\s*$"
    # "| Budget (weekly) | $25,000 |" (yo17 of unseen59 planned one week's)
    r"|\b(?:spend|budget|amount|investment)\s*\((?P<adj2>weekly|monthly|daily)\)\s*[|:=-]?\s*$"
)


def rate_unit_at(low: str, s: int, e: int) -> str | None:
    """The period of the amount at `low[s:e]` when it is a rate: "per week" after it, or a
    "weekly spend" row before it."""
    unit = rate_unit_after(low[e : e + 60])
    named = _RATE_BEFORE.search(low[max(0, s - 45) : s])
    return unit or (rate_unit_after(named.group("adj") or named.group("adj2")) if named else None)


def rate_unit_after(after: str) -> str | None:
    """The period of a rate whose amount `after` follows ("per week", "monthly": "week",
    "month", "day"), or None when the amount is not a rate."""
    rate = _RATE.match(after)
    if not rate:
        return None
    unit = rate.group("unit") or rate.group("adj")
    units = {"wk": "week", "weekly": "week", "mo": "month", "monthly": "month", "daily": "day",
             "qtr": "quarter", "quarterly": "quarter"}  # fmt: skip
    return units.get(unit, unit)


@dataclass
class Money:
    value: float
    span: tuple[int, int]
    # budget | reserve | cap | min | rate | superseded | part (of a per-retailer split)
    kind: str
    score: int = 0
    correction: bool = False
    rate_unit: str | None = None
    retailer: tuple[int, int] | None = None  # "$2M on Alpha": the retailer it is for
    retailer_id: str | None = None  # that retailer's id
    why: str = ""  # of a superseded amount: why it is not the budget (`superseded_why`)
    # of a correction: what it is, where its words say ("the remaining $1.7M": the amount left
    # to plan), else "the correction"
    because: str = "the correction"


def amount(m: re.Match[str]) -> float:
    """The amount a `MONEY` match states, in USD (infinite when too large for a float)."""
    value = as_float(m.group("num")) * SCALE_WORDS.get(m.group("scale") or "", 1.0)
    return value if math.isfinite(value) else math.inf


def superseded(
    low: str, s: int, clause: str, today: date | None, others: re.Pattern[str] | None = None
) -> bool:
    """Whether the amount at `s` is one the brief does not plan (`superseded_why`)."""
    return superseded_why(low, s, clause, today, others) is not None


def superseded_why(
    low: str, s: int, clause: str, today: date | None, others: re.Pattern[str] | None = None
) -> str | None:
    """Why the amount at `s` is not this plan's budget, as the warning says it, or None: a
    mistake to ignore, someone else's spend (a competitor, or another brand by name: `others`,
    from `theirs_by_name`), a market's size, revenue ("$1.3bn in annual revenue"), an amount
    the brief reports for the past (`text.about_the_past`: "last year we spent $1.2M") or one
    it replaces ("not $300k", "was $1.5M"). The specific reason first: "Our competitor spent
    ~$4M at Beta last quarter" was said as "a past or replaced amount, or someone else's" (va45
    of unseen41)."""
    if _TYPO.search(clause):
        return "a mistake to ignore"
    if _THEIRS.search(clause):
        return "a competitor's spend"
    if others and others.search(clause):
        return "another brand's spend"
    if _MARKET.search(clause):
        return "the size of a market"
    if _EARNED.match(low, s) or _FORECAST.search(low, max(0, s - 40), s):
        return "revenue, not spend"
    # Past first: "Last year's spend was 4.2M" is a past amount, not one the brief replaces;
    # "2026 actuals: $780k" too, of this year (ya30 of unseen44 planned it).
    if about_the_past(clause, today) or after_past_figure(low, s) or _ACTUALS.search(
        low, max(0, s - 20), s
    ):
        return "a past amount"
    if _SUPERSEDED.search(low[max(0, s - 45) : s]):
        return "an earlier amount it replaces"
    return None


def others_clauses(low: str, others: re.Pattern[str] | None = None) -> list[tuple[int, int]]:
    """The clauses that tell someone else's spend (a competitor's, or another brand's by name:
    `others`): "Heard a competitor is dropping ~2M at Alpha, but we're not matching that" is
    no ask to plan Alpha (wa09 of unseen42 planned Alpha Mart alone, of "all of our retail
    partners")."""
    return [
        (s, e) for s, e in clause_spans(low)
        if _THEIRS.search(low, s, e) or (others is not None and others.search(low, s, e))
    ]  # fmt: skip


@lru_cache(maxsize=32)
def theirs_by_name(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """Spend said of another brand by name, in the brief's lower case: "(Initech supposedly
    put $3M into Alpha, fwiw.)" was planned as Globex's budget (ua35 of unseen40)."""
    if not names:
        return None
    named = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return _spent_by(f"(?:{named})", 2)


def read_money(
    low: str,
    mentions: list[Mention],
    today: date | None = None,
    others: re.Pattern[str] | None = None,
) -> list[Money]:
    """Every finite amount in the text, classified, with the retailer it is for among the
    retailer `mentions`; `unreadable_amount_error` reports the others. `today` dates the past
    ("2025 spend was 380k"); `others` names other brands' spend (`theirs_by_name`)."""
    found: list[Money] = []
    clauses = clause_spans(low)
    past = past_cells(low, today) if today is not None else []
    for m in MONEY.finditer(low):
        pre, scale, post = m.group("pre"), m.group("scale"), m.group("post")
        raw = m.group("num")
        # A bare "250,000" or "1e6" is an amount only next to a budget word.
        bare = not (pre or scale or post)
        # "Alpha Mart | 1,000,000" in a pasted table is an amount too (yb19 of unseen46).
        in_cell = any(r[1] <= m.start() and _CELL.fullmatch(low, r[1], m.start())
                      for r in mentions)  # fmt: skip
        # "Alpha JBP 600,000 min" (yg05 of unseen51) names its own kind.
        named = _MIN_AFTER.match(low[m.end() : m.end() + 30])
        # "budget: 250000" in a key-value brief (yp07 of unseen60 found no budget).
        labelled = re.fullmatch(r"\d{4,}|\d{1,3}(?:,\d{3})+", raw) and _LABEL.search(
            low, max(0, m.start() - 30), m.start())  # fmt: skip
        if bare and not labelled and (
            not ("," in raw or m.group("exp"))
            or not (in_cell or named or _BUDGET_CUE.search(low[max(0, m.start() - 30) : m.start()]))
        ):
            continue
        if not pre and not post and scale in _LOOSE_SCALES and low[m.start("scale") - 1] == " ":
            continue  # "4 m" is too loose to be money
        value = amount(m)
        if not math.isfinite(value):
            continue
        if m.group("neg") and (pre or scale):
            value = -value
        s, e = m.start("pre") if pre else m.start("num"), m.end()
        before, after = low[max(0, s - 45) : s], low[e : e + 60]
        if re.search(r"(?:for|per|on)\s+(?:every|each)?\s*$", before) and value in (1, 1.0):
            continue  # the "$1" of "$3 for every $1"
        if PRICE_BEFORE.search(before) or unit_price(raw, scale, value):
            continue  # "avg CPM $11" was the budget of a $1.9M brief (yo26 of unseen59)
        money = Money(value, (s, e), "budget")
        near_retailer = any(abs(rs - e) < 40 or abs(s - re_) < 40 for rs, re_, _ in mentions)
        cs, ce = clause_of(s, clauses)
        if cs > 1 and low[cs - 1] == ")" and (opened := low.rfind("(", 0, cs - 1)) >= 0:
            # through a bracketed name: "Competitor (Wayne Co) is rumored to spend ~$1M at
            # Delta" (ys12 of unseen63 planned $1M)
            cs = clause_of(opened, clauses)[0]
        clause = low[cs:ce]
        if any(a <= s < b for a, b in past):
            money.kind, money.why = "superseded", "a past amount (its table column)"
        elif why := superseded_why(low, s, clause, today, others):
            money.kind = "superseded"
            money.why = why
        elif RESERVE_BEFORE.search(before) or RESERVE_AFTER.match(after):
            money.kind = "reserve"
        elif (near_retailer or _in_sentence(low, s, mentions) or each_retailer(low, s, e)) and (
            minimum_words(low, s, e)
        ):
            # not "Gamma Pharmacy's sponsored-search minimum is $5k/week": the network's rule
            money.kind = "min"
        elif cap_words(low, s, e) and (near_retailer or each_retailer(low, s, e)):
            money.kind = "cap"
        elif rate_unit := rate_unit_at(low, s, e):
            money.kind = "rate"
            money.rate_unit = rate_unit
        money.retailer, money.retailer_id = _retailer_of(low, s, e, mentions)
        use = _USE.search(low[max(0, s - 45) : s])
        for_this = _FOR_THIS.match(after)
        money.correction = bool(CORRECTION.search(low[max(0, s - 35) : s]) or use or for_this)
        if use and re.search(_LEFT, use.group()):
            money.because = "the amount left to plan"
        elif for_this or (use and re.search(r"request|for this", use.group())):
            money.because = "the amount for this plan"
        found.append(money)
    replaced_by_bare_figures(low, found)
    amounts = [m.span for m in found]
    for money in found:
        (s, e) = money.span
        money.score = 2 * _cued(_TOTAL_CUE, low, (s, e), max(0, s - 25), e + 10, amounts) + (
            _cued(_BUDGET_CUE, low, (s, e), max(0, s - 40), s, amounts)
        )
    return found


# A line that lists minimums after its header: "Commitments: Alpha 800K (JBP), Gamma 400K
# (upfront)", "Minimum spend | Alpha Mart $400,000; Gamma Pharmacy $150,000" (yg15 of unseen51,
# yf04 of unseen50: the second amount was missed).
_MIN_HEADER = re.compile(r"\b(?:commitments|minimums|min(?:imum)? spend)\s*[:|]")
# ... and an amount after a joint business plan or an upfront in its sentence: "an upfront with
# Alpha Mart for $600k that we must honor", "joint business plans with Alpha Mart for $400k and
# Beta Grocers for $200k", "Alpha JBP commit is $200k" (ym13, ym16, ym21 of unseen57).
_COMMITTED_IN = re.compile(r"\b(?:jbps?|joint business plans?|upfronts?)\b")
# ... or after it, said as a commitment: "Delta has a $150k upfront commitment we need to
# honor" (yk23 of unseen55); not "Brand Z has locked a $1.2M upfront with us" (yh26 of
# unseen52) nor "Brand X has a $500k JBP at Gamma, that's theirs" (yi18 of unseen53).
_COMMITTED_AFTER = re.compile(
    r"^\s*(?:\((?:jbp|upfront)\)|(?:jbps?|joint business plans?|upfronts?)\s+"
    r"(?:commit\w*|minimum|min\b|obligation))"  # "| $200K (JBP) |" (yi13 of unseen53)
)
# ... or by us: "We've agreed a $600k upfront with Alpha Mart for 2027" (yl15 of unseen56).
_WE_COMMITTED = re.compile(
    r"\b(?:we|we've|we have|our team)\s+(?:\w+\s+)?(?:agreed|signed|committed|booked|locked)"
    r"\s+(?:in\s+)?(?:a|an|to)?\s*$"
)
_UPFRONT_AFTER = re.compile(r"^\s*(?:jbps?|joint business plans?|upfronts?)\b")
# A return, not spend: "At least $2 back for every $1" (y36 of unseen).
_RETURN_AFTER = re.compile(r"^\s*(?:back|in return|returned|of (?:revenue|sales) )")


def each_retailer(low: str, s: int, e: int) -> bool:
    """Whether the limit at `low[s:e]` holds at every retailer: "at most $400k on any one
    retailer", "min $50k at each retailer" (yu16 of unseen65: no minimum read)."""
    return bool(PER_RETAILER.search(low, max(0, s - 45), e + 45))


def cap_words(low: str, s: int, e: int) -> bool:
    """Whether the amount or share at `low[s:e]` has a cap's words around it ("cap Beta at
    $150k", "Gamma shouldn't get more than 40% of the total")."""
    before, after = low[max(0, s - 45) : s], low[e : e + 60]
    return bool(_CAP_BEFORE.search(before) or _CAP_AFTER.match(after) or _CAP_NEAR.search(before))


def minimum_words(low: str, s: int, e: int) -> bool:
    """Whether the amount at `low[s:e]` has a minimum's words around it ("at least $300k must
    go to Beta", "gamma min 100k"), as `read_money` marks a retailer's minimum; neither a rate,
    a network's minimum per unit nor a reserve ("a 2x return at minimum, set aside 350,000 USD
    for experiments": a training template)."""
    before, after = low[max(0, s - 45) : s], low[e : e + 60]
    if RESERVE_BEFORE.search(before) or RESERVE_AFTER.match(after):
        return False
    line = low[max(low.rfind("\n", 0, s), low.rfind(".", 0, s)) + 1 : s]
    cued = (_MIN_BEFORE.search(before) or _MIN_AFTER.match(after) or _MIN_NEAR.search(before)
            or _MIN_HEADER.search(line)
            or ((_COMMITTED_IN.search(line) or _COMMITTED_AFTER.match(after)
                 or (_WE_COMMITTED.search(before) and _UPFRONT_AFTER.match(after)))
                and not _cap_words(before, after)))  # fmt: skip
    return (bool(cued) and not rate_unit_at(low, s, e) and not _PER_UNIT.match(after)
            and not network_minimum(low, s, e) and not _RETURN_AFTER.match(after))  # fmt: skip


def _cap_words(before: str, after: str) -> bool:
    """Whether a cap's words stand around an amount: a JBP's sentence may also cap a retailer."""
    return bool(_CAP_BEFORE.search(before) or _CAP_NEAR.search(before) or _CAP_AFTER.match(after))


def network_minimum(low: str, s: int, e: int) -> bool:
    """Whether the amount at `low[s:e]` is a network's own minimum per unit ("a $5k
    per-campaign minimum", "$100/day per campaign", "min per campaign is $2,500"): neither a
    retailer's minimum nor an amount of the plan."""
    return bool(_NETWORK_UNIT_AFTER.match(low, e)
                or _NETWORK_UNIT_BEFORE.search(low, max(0, s - 45), s))  # fmt: skip


def sentence_of(low: str, pos: int) -> tuple[int, int]:
    """The span of the sentence around `pos`: from after the last ".", "!", "?" or line end
    before it to the next one."""
    start = max(low.rfind(c, 0, pos) for c in ".!?\n") + 1
    ends = [i for i in (low.find(c, pos) for c in ".!?\n") if i >= 0]
    return start, min(ends, default=len(low))


def _in_sentence(low: str, pos: int, mentions: list[Mention]) -> bool:
    """Whether the sentence around `pos` names a retailer: a minimum's retailer may be further
    than a cap's ("Delta partnership terms say we're on the hook for $0.25M minimum there")."""
    start, end = sentence_of(low, pos)
    return any(start <= r[0] < end for r in mentions)


def _cued(
    cue: re.Pattern[str],
    low: str,
    span: tuple[int, int],
    lo: int,
    hi: int,
    amounts: list[tuple[int, int]],
) -> bool:
    """Whether `cue` occurs in `low[lo:hi]` with no other amount between it and the amount at
    `span`: in "$90k total - $60k beta grocers, $30k gamma" the total is the $90k, not the
    $60k beside it (yb16 of unseen46 planned $60k)."""
    others = [o for o in amounts if o != span]
    for c in cue.finditer(low, lo, hi):
        a, b = (c.end(), span[0]) if c.end() <= span[0] else (span[1], c.start())
        if any(a <= o[0] < b for o in others):
            continue
        if c.end() <= span[0] and any(low[o[1] : c.start()] == " " for o in others):
            continue  # the cue of the amount right before it ("$90k total")
        return True
    return False


def _retailer_of(
    low: str, s: int, e: int, mentions: list[Mention]
) -> tuple[tuple[int, int] | None, str | None]:
    """The retailer the amount at `s`-`e` is for (its mention span and id): named right before
    it ("Alpha $125k, Delta $75k": ya56 of unseen44 planned $125k, the first; "Beta gets
    $180k", "Beta – the remaining $150k"), else right after it ("$2M on Alpha", "$800k of it
    at AlphaMart", "$60k Beta Grocers, $30k Gamma": yb16 and yb31 of unseen46)."""
    # Not across a line: "- Retailers: Alpha Mart, Beta Grocers, Delta Home\n- No more than
    # $90k at Beta" capped Delta (yp04 of unseen60).
    found = next((r for r in mentions if r[1] <= s and _BEFORE_IT.fullmatch(low, r[1], s)
                  and "\n" not in low[r[1] : s]), None)  # fmt: skip
    if found is None:
        lead = _AFTER_IT.match(low, e)
        assert lead is not None  # every part of it is optional
        found = next((r for r in mentions if r[0] == lead.end()), None)
    return ((found[0], found[1]), found[2]) if found else (None, None)


# Between a retailer and its amount: "Alpha $125k", "Delta Home: $75k", "| Alpha Mart |
# $250,000 |", "Beta gets $180k", "Delta is $250k", "Beta – the remaining $150k".
_BEFORE_IT = re.compile(
    r"\s*(?:[:=|(\u2013\u2014-]|gets|is|at|to|should be|stays at|will be|to get)?\s*"
    # a cap's words: "Alpha Mart max $300k", "Gamma capped at $100k", "Beta <= $500k", "Gamma
    # can take up to $120k", "Gamma spend not to exceed $700k" (ye17, ye10, ye11 of unseen49)
    r"(?:(?:can|may) (?:take|get|have) )?(?:spend )?"
    r"(?:(?:max(?:imum)?|capped at|cap(?:ped)?|at most|up to|no more than|under|<=?"
    r"|not to exceed)\s*(?:of\s+)?)?"
    r"(?:the\s+(?:remaining|rest|other|balance)\s*,?\s*)?"
)
# Between an amount and its retailer: "on Alpha", "of it at Alpha", "to the Beta", or nothing.
_AFTER_IT = re.compile(
    r"(?:\s+of\s+(?:it|that|this))?\s*(?:(?:on|at|for|to|in|into|with|behind)\s+)?(?:the\s+)?"
)
# A retailer's cell in a pasted table, before its amount: "alpha mart | ", "alpha mart:\t".
_CELL = re.compile(r"\s*[:|\t]\s*")
# The amount this plan gets, said after it: "I approved $3M for retail media in H1. Of that,
# $1M is for this first plan, Jan-Feb" (xa29 of unseen43 planned $3M).
_FOR_THIS = re.compile(
    r"\s*(?:(?:is|goes|will go|is going)\s+)?(?:for|to|into)\s+(?:this|the)\s+(?:\w+\s+)?"
    r"(?:plan|campaign|flight|brief)\b"
)
# What is left of a larger amount to plan: "the remaining $1.7M", "the rest, $1.7M".
# "please plan the other $1.2M across Alpha Mart and Gamma" (yq15 of unseen61 planned $1.5M).
_LEFT = r"(?:the )?(?:remaining|rest(?: of it)?,?|what'?s left,?)|\b(?:plan|use|spend) the other"
# The amount to use, said right before it: "Budget $1.8M - wait, that number included agency
# fees; use $1.5M", "finance just cut us to 2.4M", "we're going with 1.9M", "850k -> bumped to
# 950k" (j40, j05, j30 and j55 of unseen26).
_USE = re.compile(
    # "add Gamma too, and raise it to $70k" (yp14 of unseen60 kept $40k)
    r"\b(?:use|going with|(?:bump(?:ed)?|raised?|lower(?:ed)?|cut|increased?|reduced?|upped)"
    r"(?: us| it| that)?(?: back| up| down)? to"  # "cut it back to $720K" (ys19 of unseen63)
    r"|final (?:number|budget|amount|figure|answer)(?: is)?:?"
    # "budget $2M, hmm, no, finance says $1.75M" (oa28 of unseen31).
    r"|(?:finance|leadership|the cfo|cfo|the client|client|ops) (?:says|said|approved|confirmed)"
    # "2M. No, 2.25M. Final." and "running it back from last spring ($1.9M, 2.2x). This time
    # $2.1M" (va41 and va48 of unseen41: both kept the first amount).
    r"|[.!;]\s*no,|this time"
    # "we have 2M total but 300k of that is already committed to TV, so plan the remaining
    # $1.7M" (wa28 of unseen42 planned $2M).
    rf"|{_LEFT}"
    # "Of our $1.2bn total marketing envelope, this plan gets $12M" (na41 of unseen34).
    r"|(?:this|the) (?:plan|campaign|flight|brief) (?:gets|has|will get|is getting)"
    # "this request is just the Q1 tranche: $480,000", "for this plan we're allocating $400k"
    # (ya20 and ya35 of unseen44 planned the year's budget).
    r"|(?:this|the) request is (?:just |only )?[^.;$]{0,25}?:"
    r"|for this (?:plan|campaign|brief|request),? (?:we're|we are|we'll|we will) (?:allocating|"
    r"spending|putting|using)"
    # "so we're at $600k for this plan", "For Q1 2027 the number is $540k" (za22, za17 of
    # unseen45 kept the earlier amount).
    r"|(?:we're|we are) (?:now )?at|the (?:number|figure|amount) is(?: now)?)"
    r"\s+\$?$"
)


def foreign_currency_error(clean: str, low: str) -> BriefError | None:
    """The error for a budget given in another currency ("£2M", "500k EUR"), if any."""
    m = _FOREIGN.search(low)
    if m is None:
        return None
    return BriefError(
        "budgets are planned in USD; the brief gives "
        f"{clean[m.start() : m.end() + 3].strip()!r} - restate it in dollars",
        field="total_budget",
    )


def unreadable_amount_error(clean: str, low: str) -> BriefError | None:
    """The error for an amount too large for a number ("$1e400"), if the text has one."""
    for m in MONEY.finditer(low):
        if (m.group("pre") or m.group("scale") or m.group("post") or m.group("exp")) and not (
            math.isfinite(amount(m))
        ):
            return BriefError(
                f"{clean[m.start() : m.end()].strip()!r} is not a finite amount; "
                "give the budget in dollars, e.g. '$2.5M'",
                field="total_budget",
            )
    return None
