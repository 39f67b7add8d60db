"""The rule-based brief parser: deterministic, the fallback for the model and its cross-check.

Reading order: number words become digits ("two and a half million" -> "2.5 million"), then
ROAS floors, money, retailers, the objective, the experiment reserve, the flight and the
out-of-stock switch are read from the text. Spans already claimed by one reading (a floor's
"$3 for every $1", a reserve's "$140k for tests") are masked so the next reading cannot reuse
them. Anything the text states that cannot be planned is an error; anything it leaves open
is a default, and a warning only when the text itself is ambiguous.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tools.brief.schema import (
    BRIEF_FIELDS,
    DEFAULT_OBJECTIVE,
    DEFAULT_RESERVE,
    MAX_RESERVE,
    BriefError,
    StructuredBrief,
    brand_retailers,
    canonical_retailers,
    check_brand,
    retailer_label,
)
from tools.world.catalog import BRANDS, RETAILERS

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
            brand_id=self.brand_id, parsed_by=parsed_by, warnings=list(self.warnings), **self.values
        )


def parse_brief_rules(text: str, brand: str, today: date | None = None) -> StructuredBrief:
    """Parse a brief with the rules alone. Raises `BriefError` for a brief that cannot be
    planned as written (no budget, unknown retailer, reserve over 50%, ...)."""
    return rule_parse(text, brand, today).brief("rules")


# --- text preparation -----------------------------------------------------------------------

_UNICODE = {
    "\u2013": "-",
    "\u2014": " - ",
    "\u2212": "-",
    "\u2265": ">=",
    "\u2264": "<=",
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00a0": " ",
    "\u202f": " ",
}

NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNITS = {w: i for i, w in enumerate(NUMBER_WORDS)}
_TENS = {w: 10 * i for i, w in enumerate(TENS_WORDS, 2)}
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_CORE = set(_UNITS) | set(_TENS) | set(_SCALES) | {"hundred"}
_GLUE = {"and", "a", "an", "point", "half"}


def normalize(text: str) -> str:
    """Plain ASCII punctuation, single spaces, and number words as digits."""
    for src, dst in _UNICODE.items():
        text = text.replace(src, dst)
    text = re.sub(r"[ \t]+", " ", text).strip()
    return _words_to_digits(text)


def _fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _eval_words(words: list[str]) -> float | None:
    total, current = 0.0, 0.0
    decimals: list[int] | None = None
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in _UNITS:
            if decimals is not None:
                if _UNITS[w] > 9:
                    return None
                decimals.append(_UNITS[w])
            else:
                current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in _SCALES:
            if decimals:
                current += float("0." + "".join(map(str, decimals)))
                decimals = None
            total += (current or 1) * _SCALES[w]
            current = 0.0
        elif w == "point":
            decimals = []
        elif w == "half":
            current += 0.5
        elif w in ("a", "an") and nxt not in ("half", "hundred", *_SCALES):
            return None
    if decimals:
        current += float("0." + "".join(map(str, decimals)))
    return total + current


def _words_to_digits(text: str) -> str:
    """Rewrite runs of number words: "two and a half million" -> "2.5 million",
    "seven hundred fifty thousand" -> "750 thousand", "fifteen percent" -> "15 percent"."""
    tokens = [(m.start(), m.end(), m.group().lower()) for m in re.finditer(r"[A-Za-z]+", text)]
    words = _CORE | _GLUE
    out: list[str] = []
    pos = i = 0
    while i < len(tokens):
        if tokens[i][2] not in words:
            i += 1
            continue
        # A run: number words and glue joined by spaces or hyphens only.
        j = i + 1
        while (
            j < len(tokens)
            and tokens[j][2] in words
            and re.fullmatch(r"[\s-]+", text[tokens[j - 1][1] : tokens[j][0]])
        ):
            j += 1
        a, b = i, j
        while a < b and tokens[a][2] in ("and", "point"):
            a += 1
        while b > a and tokens[b - 1][2] in ("and", "a", "an", "point"):
            b -= 1
        i = j
        run = [t[2] for t in tokens[a:b]]
        has_scale = any(w in _SCALES for w in run)
        # "half" counts only inside an amount ("half a million"), never "first half of 2027";
        # a bare scale word ("millions of shoppers") is not a number.
        if not any(w in _UNITS or w in _TENS or w == "hundred" for w in run) and not (
            has_scale and any(w in ("a", "an", "half") for w in run)
        ):
            continue
        if "half" in run and not has_scale:
            continue
        value = _eval_words(run)
        if value is None:
            continue
        if value >= 1e6 and has_scale:
            rendered = f"{_fmt(value / 1e6)} million"
        elif value >= 1e3 and has_scale:
            rendered = f"{_fmt(value / 1e3)} thousand"
        else:
            rendered = _fmt(value)
        out.append(text[pos : tokens[a][0]])
        out.append(rendered)
        pos = tokens[b - 1][1]
    out.append(text[pos:])
    return "".join(out)


def _lower(text: str) -> str:
    # Same length as the input, so spans found in the lower-cased text index the original.
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for s, e in spans:
        for k in range(s, e):
            chars[k] = " "
    return "".join(chars)


def _as_float(raw: str) -> float:
    return float(raw.replace(",", ""))


# --- ROAS floor -----------------------------------------------------------------------------

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_ROAS_KW = r"(?:i?roas|return on (?:ad|advertising) ?spend|return on spend|ad return|returns?)"
# Words that may sit between "ROAS" and its number: "ROAS should stay at or above 2.5",
# "ROAS. It must not fall below 2.5".
_ROAS_FILL = (
    r"(?:\s*(?:of|at|to|should|must|has|have|needs?|will|stay|stays|remain|remains|be|is|being|"
    r"it|that|this|keep|kept|above|over|least|or|floor|minimum|min|target|threshold|"
    r"requirement|a|an|the|no|not|lower|less|than|below|under|fall|falls|drop|drops|go|goes|"
    r"greater|higher|equal|equals|we|need|never|always|ideally|around|about|can't|cannot|can|"
    r"could|as|low|dip|dips|sink|slip|get|gets|live|with|and|most|more|up|max|maximum|cap|"
    r"capped)\b"
    r"|\s*(?:>=|=>|>|=|:|\.))"
)
_ROAS_AFTER = re.compile(
    rf"(?<![\w-]){_ROAS_KW}\b(?P<fill>{_ROAS_FILL}*?)\s*(?P<num>{_NUM})"
    r"(?P<unit>\s*(?:x\b|times\b|:\s?1\b|to 1\b|%|\+))?"
)
_ROAS_BEFORE = re.compile(
    rf"(?<![\w.])(?P<num>{_NUM})(?:\s*(?:x\b|times\b|:\s?1\b|to 1\b)\s*(?:\+\s*)?"
    r"(?:i?roas|return on (?:ad|advertising) ?spend|returns?)\b|\s*(?:\+\s*)?"
    r"(?:i?roas|return on (?:ad|advertising) ?spend)\b)"
)
_ROAS_PER_DOLLAR = re.compile(
    r"\$\s?(?P<num>\d+(?:\.\d+)?)\s+(?:back\s+|(?:in|of)\s+(?:incremental\s+)?(?:sales|revenue)\s+|"
    r"(?:in\s+)?return\s+)?(?:for|per|on)\s+(?:every|each)?\s*(?:\$\s?1(?:\.00)?\b|dollar\b)"
    r"(?:\s+(?:spent|of (?:ad )?spend|invested))?"
)
_ROAS_UPPER = re.compile(r"(?:at most|no more than|max(?:imum)?|up to|cap(?:ped)?(?: at)?)\s*$")
_NO_FLOOR = re.compile(
    rf"\b(?:no|without(?: an?| any)?|drop the|no need for an?)\s+{_ROAS_KW}\s+"
    r"(?:constraint|floor|minimum|requirement|target|limit|guardrail)s?\b"
)


@dataclass
class _Floor:
    value: float
    span: tuple[int, int]
    kw_span: tuple[int, int] | None


def _read_floors(low: str) -> tuple[list[_Floor], list[tuple[int, int]], list[str]]:
    floors: list[_Floor] = []
    masked: list[tuple[int, int]] = []
    warnings: list[str] = []
    for m in _NO_FLOOR.finditer(low):
        masked.append(m.span())
    for m in _ROAS_PER_DOLLAR.finditer(low):
        floors.append(_Floor(float(m.group("num")), m.span(), None))
    taken = _mask(low, [f.span for f in floors] + masked)
    for m in _ROAS_AFTER.finditer(taken):
        value = _as_float(m.group("num"))
        unit = (m.group("unit") or "").strip()
        rest = taken[m.end() : m.end() + 12]
        if unit == "%" or re.match(r"\s*(?:percent|pct)\b", rest):
            if value < 100:  # "ROAS: 10% for tests" is a reserve, not a floor
                continue
            value /= 100
        if re.match(r"\s*(?:k|m|mm|million|thousand|bn)\b|,\d{3}|/\d|-\d", rest):
            continue  # an amount or a date, not a ratio
        keyword = re.match(_ROAS_KW, m.group())
        assert keyword is not None
        if keyword.group().startswith("return") and not re.search(
            r"least|min|above|over|>|floor|better|higher|keep|stay", m.group("fill") + rest
        ):
            continue  # a bare "return" followed by some number says nothing about ROAS
        if _ROAS_UPPER.search(m.group("fill")):
            warnings.append(
                f"ignored an upper limit on ROAS ({m.group().strip()!r}); the planner takes "
                "a floor only"
            )
            masked.append(m.span())
            continue
        if 0 < value <= 50:
            floors.append(_Floor(value, m.span(), (m.start(), m.start() + keyword.end())))
    taken = _mask(low, [f.span for f in floors] + masked)
    for m in _ROAS_BEFORE.finditer(taken):
        value = _as_float(m.group("num"))
        if "$" in taken[max(0, m.start() - 3) : m.start()] or not 0 < value <= 50:
            continue
        keyword = re.search(r"i?roas|return", m.group())
        assert keyword is not None
        floors.append(_Floor(value, m.span(), (m.start() + keyword.start(), m.end())))
    floors.sort(key=lambda f: f.span[0])
    return floors, masked, warnings


# --- money ----------------------------------------------------------------------------------

_SCALE_WORDS = {
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
}
_MONEY = re.compile(
    r"(?P<neg>(?<![\w.])-(?=[$\d]))?(?P<pre>us\$|\$|usd\s?)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<scale>millions|million|thousand|billion|grand|mill|mil|mm|mn|bn|k|m|b)\b)?"
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
_TOTAL_CUE = re.compile(r"\b(?:total|overall|in all|altogether|all[- ]in)\b")
_CORRECTION = re.compile(
    r"\b(?:actually|make it|make that|make the budget|instead|revised|revise|updated|update|"
    r"change (?:it|that|the budget) to|bump (?:it )?(?:up )?to|correction|increase (?:it|the "
    r"budget) to|reduce (?:it|the budget) to|cut (?:it|the budget) to)\b"
)
_SUPERSEDED = re.compile(
    r"(?:\bnot\s+(?:the\s+)?|\binstead of\s+(?:the\s+)?|\brather than\s+(?:the\s+)?|"
    r"\b(?:was|previously|originally|last year's|last quarter's|used to be)\s+(?:the\s+)?)$"
)
_RESERVE_WORDS = (
    r"(?:experiment\w*|tests?|testing|holdouts?|hold-outs?|incrementality|lift|learning|"
    r"learnings|geo[- ]tests?|measurement)"
)
_RESERVE_BEFORE = re.compile(
    r"\b(?:set aside|setting aside|hold back|holding back|hold out|holdback|reserve|reserving|"
    r"keep|keeping|put aside|carve out|earmark)\s+(?:about\s+|roughly\s+|another\s+)?$"
    r"|\b(?:experiment\w*|test(?:ing)?|holdout|learning|incrementality)\s+(?:budget|reserve|"
    r"allocation|pot|fund|money|cell)\s*(?:of|is|:|=|-)?\s*$"
)
_RESERVE_AFTER = re.compile(
    rf"^\s*(?:of (?:it|that|the budget)\s+)?(?:(?:is|are|will be)\s+)?(?:reserved\s+|held back\s+"
    rf"|set aside\s+)?(?:for|to|as|in)\s+(?:\w+\s+){{0,2}}{_RESERVE_WORDS}"
)
_CAP_BEFORE = re.compile(
    r"(?:no more than|not more than|at most|up to|maximum of|max(?:imum)?|cap(?:ped)?(?: at| of)?|"
    r"limit(?:ed)?(?: to| of)?|ceiling of|under)\s+$"
)
_CAP_NEAR = re.compile(r"\b(?:cap|caps|capped|limit|limited|ceiling)\b[^.;$]{0,25}$")
_CAP_AFTER = re.compile(r"^\s*(?:max|maximum|cap|limit|tops|at most|ceiling)\b")
_PER_RETAILER = re.compile(
    r"\b(?:per|any|each|every|a single|any (?:one|1|single)|one|1) (?:retailer|network|rmn|partner)"
)
_RATE = re.compile(
    r"^\s*(?:(?:per|a|each|every|/)\s*(?P<unit>week|wk|month|mo|day)\b|(?P<adj>weekly|monthly|daily)\b)"
)


@dataclass
class _Money:
    value: float
    span: tuple[int, int]
    kind: str  # budget | reserve | cap | rate | superseded | part (of a per-retailer split)
    score: int = 0
    correction: bool = False
    rate_unit: str | None = None
    retailer: tuple[int, int] | None = None  # "$2M on Alpha": the retailer it is for


def _read_money(low: str, retailer_spans: list[tuple[int, int]]) -> list[_Money]:
    found: list[_Money] = []
    for m in _MONEY.finditer(low):
        pre, scale, post = m.group("pre"), m.group("scale"), m.group("post")
        raw = m.group("num")
        # A bare "250,000" is an amount only next to a budget word.
        bare = not (pre or scale or post)
        if bare and (
            "," not in raw or not _BUDGET_CUE.search(low[max(0, m.start() - 30) : m.start()])
        ):
            continue
        if not pre and not post and scale in ("m", "b") and low[m.start("scale") - 1] == " ":
            continue  # "4 m" is too loose to be money
        value = _as_float(raw) * _SCALE_WORDS.get(scale or "", 1.0)
        if m.group("neg") and (pre or scale):
            value = -value
        s, e = m.start("pre") if pre else m.start("num"), m.end()
        before, after = low[max(0, s - 45) : s], low[e : e + 60]
        if re.search(r"(?:for|per|on)\s+(?:every|each)?\s*$", before) and value in (1, 1.0):
            continue  # the "$1" of "$3 for every $1"
        money = _Money(value, (s, e), "budget")
        rate = _RATE.match(after)
        near_retailer = any(abs(rs - e) < 40 or abs(s - re_) < 40 for rs, re_ in retailer_spans)
        if _SUPERSEDED.search(before):
            money.kind = "superseded"
        elif _RESERVE_BEFORE.search(before) or _RESERVE_AFTER.match(after):
            money.kind = "reserve"
        elif (
            _CAP_BEFORE.search(before) or _CAP_AFTER.match(after) or _CAP_NEAR.search(before)
        ) and (near_retailer or _PER_RETAILER.search(low[max(0, s - 45) : e + 45])):
            money.kind = "cap"
        elif rate:
            money.kind = "rate"
            unit = rate.group("unit") or rate.group("adj")
            money.rate_unit = {
                "wk": "week",
                "weekly": "week",
                "mo": "month",
                "monthly": "month",
            }.get(unit, "day" if unit == "daily" else unit)
        lead = re.match(r"\s*(?:on|at|for|to|in|into|with|behind)\s+", after)
        if lead:
            money.retailer = next(
                (span for span in retailer_spans if span[0] == e + lead.end()), None
            )
        clause = low[max(0, s - 40) : s]
        money.score = 2 * bool(_TOTAL_CUE.search(low[max(0, s - 25) : e + 10])) + bool(
            _BUDGET_CUE.search(clause)
        )
        money.correction = bool(_CORRECTION.search(low[max(0, s - 35) : s]))
        found.append(money)
    return found


def _usd(value: float) -> str:
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"


# --- retailers ------------------------------------------------------------------------------


def _retailer_pattern(rid: str) -> re.Pattern[str]:
    name = RETAILERS[rid].name.lower()
    first, _, rest = name.partition(" ")
    suffix = (
        rf"(?:[\s-]?{re.escape(rest)}s?|[\s-]?{re.escape(rest.rstrip('s'))}y?)?" if rest else ""
    )
    alias = rf"{re.escape(first)}{suffix}"
    if rid != first:
        alias = rf"(?:{alias}|{re.escape(rid)})"
    return re.compile(rf"(?<![\w-]){alias}(?![\w-])(?!\s?(?:test|version|release)\b)")


_RETAILER_PATTERNS = {rid: _retailer_pattern(rid) for rid in RETAILERS}
_ALL_RETAILERS = re.compile(
    r"\b(?:all|every|each)\s+(?:\d+\s+|of\s+)?(?:(?:our|the|its|their|my|his|her|of our|of the|"
    r"of its)\s+)?(?:\w+\s+)?(?:retailers?|networks?|rmns?|retail media networks?|channels|"
    r"partners|banners|stores)\b|\beverywhere\b|\bacross the board\b|\beverything\b"
)
_EXCLUDE = re.compile(
    r"\b(?:except(?: for)?|excluding|exclude|but not|other than|apart from|minus|not on|no|"
    r"without|skip|skipping|leave out|leaving out|all but|not)\s+$"
)
_RETAILER_SUFFIX = re.compile(
    r"\b([a-z][a-z0-9&'-]*)\s+(mart|market|markets|grocers|grocer|grocery|groceries|pharmacy|"
    r"drugstore|drug|drugs|stores|supermarket|supermarkets|supercenter|club|depot|wholesale|"
    r"home)\b"
)
_SUFFIX_STOP = {
    "the", "a", "an", "our", "your", "their", "my", "its", "this", "that", "any", "every", "each",
    "one", "retail", "in", "at", "new", "stock", "super", "flea", "farmers", "online", "local",
    "big", "box", "mass", "other", "same", "all", "no", "of", "to", "for", "and", "or", "on",
    "whole", "natural", "organic", "snack", "pet", "than", "across", "per", "grocery",
    "pharmacy", "drug", "home", "from", "with", "by", "is", "are", "via", "into", "between",
}  # fmt: skip
_GREEK = (
    "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "omicron", "sigma", "upsilon", "omega",
)  # fmt: skip
_REAL_RETAILERS = (
    "walmart", "kroger", "amazon", "instacart", "cvs", "walgreens", "costco", "albertsons",
    "safeway", "home depot", "best buy", "ulta", "sephora", "dollar general", "sam's club",
    "doordash", "rite aid", "publix", "meijer", "lowe's", "wayfair", "chewy", "whole foods",
)  # fmt: skip
_NAME_STOP = {
    "and", "or", "the", "i", "we", "please", "hold", "keep", "include", "exclude", "maximize",
    "maximise", "optimize", "allocate", "spend", "objective", "goal", "budget", "roas", "q1",
    "q2", "q3", "q4", "flight", "reserve", "experiments", "tests", "no", "not", "only", "with",
    "total", "usd", "retailers", "all", "plan", "let's", "put", "run", "for", "to", "in", "on",
}  # fmt: skip


def _brand_name_spans(low: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for bid, info in BRANDS.items():
        names = {info.name.lower().rstrip("."), bid.replace("_", " "), bid}
        for name in names:
            for m in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", low):
                spans.append(m.span())
    return spans


def _unknown_retailers(
    text: str, scan: str, known_spans: list[tuple[int, int]], brand_spans: list[tuple[int, int]]
) -> list[str]:
    """Names that look like retailers but are not ones we know: "Omega Mart", "Epsilon",
    "Walmart", or a capitalized name listed with a known retailer ("Alpha, Beta and Zeta")."""

    def inside(pos: int, spans: list[tuple[int, int]]) -> bool:
        return any(s <= pos < e for s, e in spans)

    unknown: list[str] = []
    for m in _RETAILER_SUFFIX.finditer(scan):
        if m.group(1) not in _SUFFIX_STOP and not inside(m.start(), known_spans + brand_spans):
            unknown.append(text[m.start() : m.end()])
    for word in _GREEK:
        for m in re.finditer(rf"\b{word}\b", scan):
            if not any(word in u.lower() for u in unknown):
                unknown.append(text[m.start() : m.end()])
    for name in _REAL_RETAILERS:
        for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", scan):
            unknown.append(text[m.start() : m.end()])
    for _s, e in known_spans:
        m = re.match(r"\s*(?:,|and|&|\+|/|or)\s*([A-Z][\w'-]+)", text[e : e + 30])
        if not m:
            continue
        word, start = m.group(1), e + m.start(1)
        if (
            word.lower() in _NAME_STOP
            or inside(start, known_spans + brand_spans)
            or _MONTH_RE.fullmatch(word.lower())
            or any(word.lower() in u.lower() for u in unknown)
        ):
            continue
        unknown.append(word)
    return list(dict.fromkeys(unknown))


def _read_retailers(
    text: str, low: str, brand: str
) -> tuple[list[str] | None, set[str], list[tuple[int, int]], list[str], list[BriefError]]:
    """-> (retailers, or None when the text names none; every retailer mentioned; mention
    spans; warnings; errors)."""
    warnings: list[str] = []
    errors: list[BriefError] = []
    brand_spans = _brand_name_spans(low)
    scan = _mask(low, brand_spans)
    mentions = sorted(
        (m.start(), m.end(), rid)
        for rid, pattern in _RETAILER_PATTERNS.items()
        for m in pattern.finditer(scan)
    )
    spans = [(s, e) for s, e, _ in mentions]

    included: set[str] = set()
    excluded: set[str] = set()
    for i, (_s, _e, rid) in enumerate(mentions):
        # Walk back over a list ("except Beta and Delta") to the word that governs it.
        k = i
        while k > 0 and re.fullmatch(
            r"\s*(?:,|and|or|&|/|\+|nor)\s*", scan[mentions[k - 1][1] : mentions[k][0]]
        ):
            k -= 1
        head = scan[max(0, mentions[k][0] - 25) : mentions[k][0]]
        (excluded if _EXCLUDE.search(head) else included).add(rid)

    unknown = _unknown_retailers(text, scan, spans, brand_spans)
    if unknown:
        known = ", ".join(retailer_label(r) for r in RETAILERS)
        errors.append(
            BriefError(
                f"unknown retailer {', '.join(repr(n) for n in unknown)}; known retailers: {known}",
                field="retailers",
                retailers=unknown,
                known=list(RETAILERS),
            )
        )

    sold = brand_retailers(brand)
    not_sold = [r for r in canonical_retailers(included | excluded) if r not in sold]
    if not_sold:
        errors.append(
            BriefError(
                f"{BRANDS[brand].name} ({brand}) does not sell through "
                f"{', '.join(retailer_label(r) for r in not_sold)}; its retailers: "
                f"{', '.join(retailer_label(r) for r in sold)}",
                field="retailers",
                retailers=not_sold,
                brand=brand,
                brand_retailers=sold,
            )
        )

    says_all = bool(_ALL_RETAILERS.search(scan))
    retailers: list[str] | None
    if excluded:
        base = included if included and not says_all else set(sold)
        retailers = canonical_retailers(base - excluded)
        if not retailers and not not_sold:
            errors.append(
                BriefError(
                    f"the brief excludes every retailer {BRANDS[brand].name} sells through",
                    field="retailers",
                )
            )
    elif included:
        retailers = canonical_retailers(included)
        if says_all and set(retailers) != set(sold):
            warnings.append(
                f"the brief says all retailers but names {', '.join(retailers)}; "
                "planned over the named ones"
            )
    elif says_all:
        retailers = []
    else:
        retailers = None
    return retailers, included | excluded, spans, warnings, errors


# --- objective ------------------------------------------------------------------------------

_OBJECTIVE_TERMS: dict[str, str] = {
    "incremental_margin": (
        r"incremental (?:gross )?margin|i-?margin|gross profit|margins?|profits?|profitability|"
        r"profitable|contribution|bottom[- ]line|earnings"
    ),
    "incremental_revenue": (
        r"incremental (?:revenue|sales)|revenue|sales|top[- ]line|topline|gmv|volume|"
        r"units sold|dollar sales"
    ),
    "roas": (
        r"i?roas|return on (?:ad|advertising) ?spend|return on spend|efficiency|efficient|"
        r"bang for (?:the|our|your) buck"
    ),
}
_OBJ_CUE_BEFORE = re.compile(
    r"\b(?:maximi[sz]e|maximi[sz]ing|max|optimi[sz]e|optimi[sz]ing|optimi[sz]ed|for|drive|driving|"
    r"grow|growing|boost|boosting|increase|increasing|focus(?:ed|ing)? on|prioriti[sz]e|"
    r"priority(?: is)?|goal(?: is)?|objective(?: is)?|kpi(?: is)?|aim(?:ing)? (?:for|at)|go for|"
    r"want|wants|care (?:most )?about|best|highest|most|more|maximum|biggest|growth in)"
    r"(?:\s+(?:the|our|total|overall|possible|in|of|for|on|\w+al))*\s*[:=]?\s*$"
)
_OBJ_CUE_AFTER = re.compile(
    r"^(?:[- ]?(?:focused|first|driven|led|maximi[sz]ing|maximi[sz]ation|optimi[sz]ation)\b|"
    r"\s+(?:is|as)\s+(?:the|our)\s+(?:goal|objective|priority|kpi|aim|focus)|\s+(?:goal|"
    r"objective|focus|maximi[sz]ation)\b)"
)


def _read_objective(
    masked: str, floor_kw_spans: list[tuple[int, int]]
) -> tuple[str | None, list[str]]:
    hits: list[tuple[int, int, str]] = []  # (score, position, objective)
    for objective, pattern in _OBJECTIVE_TERMS.items():
        for m in re.finditer(rf"(?<![\w-])(?:{pattern})(?![\w-])", masked):
            before = masked[max(0, m.start() - 45) : m.start()]
            after = masked[m.end() : m.end() + 30]
            score = 2 if _OBJ_CUE_BEFORE.search(before) or _OBJ_CUE_AFTER.match(after) else 0
            in_floor = any(s <= m.start() < e for s, e in floor_kw_spans)
            if in_floor and not score:
                continue
            hits.append((score, m.start(), objective))
    if not hits:
        return None, []
    best = max(h[0] for h in hits)
    ranked = sorted((h for h in hits if h[0] == best), key=lambda h: h[1])
    chosen = ranked[0][2]
    others = sorted({h[2] for h in ranked} - {chosen})
    warnings = []
    if best and others:
        warnings.append(
            f"the brief names several objectives ({', '.join([chosen, *others])}); "
            f"used {chosen}, the first one"
        )
    return chosen, warnings


# --- experiment reserve ---------------------------------------------------------------------

_PERCENT = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b|pct\b|per-cent\b)")
_FRACTION_OF = re.compile(
    r"(?<![\d.])(?P<num>0?\.\d+)(?:\s+(?:of\s+)?(?:the\s+)?(?:total\s+)?(?:budget|spend|it)\b)?"
    r"|(?<![\d./])(?P<a>\d{1,2})\s?/\s?(?P<b>\d{1,3})\s+of\b"
)
_FRACTION_WORDS = {"tenth": 0.1, "fifth": 0.2, "quarter": 0.25, "third": 1 / 3, "half": 0.5}
_FRACTION_WORD = re.compile(r"\b(?:a|one)\s+(?P<word>tenth|fifth|quarter|third)\b|\bhalf\b")
_RESERVE_CUE = re.compile(
    rf"\b(?:{_RESERVE_WORDS}|reserve|reserved|set aside|hold back|held back|hold out|held out|"
    r"holdback|carve[- ]out|earmark(?:ed)?)\b"
)
_ZERO_RESERVE = re.compile(
    r"\b(?:no|zero|without(?: an?| any)?|skip(?: the)?|drop(?: the)?)\s+"
    r"(?:experiment(?:al|s|ation)?|tests?|testing|holdouts?|hold-outs?|"
    r"(?:test|experiment) (?:reserve|budget|holdback)|reserve|holdback)\b"
    r"(?!\s+(?:constraint|floor))"
    r"|\b(?:experiments?|tests?|test reserve|experiment reserve|reserve|holdout)\s?[:=-]?\s?"
    r"(?:none|nothing|zero|nil|n/a|0(?:%| percent)?(?![\d.]))"
    r"|\bdon'?t hold (?:anything )?back\b"
)
_CLAUSE_SPLIT = re.compile(r"[;!?\n()]|,(?!\d{3})|\.(?=\s|$)|\s-\s|\bbut\b|\bwhile\b|\bwith\b")


def _clauses(low: str) -> list[tuple[int, int]]:
    bounds = [0] + [m.end() for m in _CLAUSE_SPLIT.finditer(low)] + [len(low) + 1]
    return [(bounds[k], bounds[k + 1] - 1) for k in range(len(bounds) - 1)]


def _clause_of(pos: int, clauses: list[tuple[int, int]]) -> tuple[int, int]:
    for s, e in clauses:
        if s <= pos <= e:
            return s, e
    return clauses[-1]


@dataclass
class _Share:
    value: float
    span: tuple[int, int]


def _read_reserve(masked: str) -> tuple[list[_Share], list[_Share], list[str]]:
    """-> (reserve shares, zero-reserve statements, warnings about stray percentages)."""
    clauses = _clauses(masked)
    shares: list[_Share] = []
    zero = [_Share(0.0, m.span()) for m in _ZERO_RESERVE.finditer(masked)]
    warnings: list[str] = []
    candidates: list[tuple[float, tuple[int, int], bool]] = []  # value, span, is_percent
    for m in _PERCENT.finditer(masked):
        candidates.append((float(m.group("num")) / 100, m.span(), True))
    taken = _mask(masked, [c[1] for c in candidates])
    for m in _FRACTION_OF.finditer(taken):
        if m.group("num"):
            candidates.append((float(m.group("num")), m.span(), False))
        elif int(m.group("b")) > 0:
            candidates.append((int(m.group("a")) / int(m.group("b")), m.span(), False))
    for m in _FRACTION_WORD.finditer(taken):
        word = m.group("word") or "half"
        candidates.append((_FRACTION_WORDS[word], m.span(), False))
    for value, span, is_percent in sorted(candidates, key=lambda c: c[1]):
        cs, ce = _clause_of(span[0], clauses)
        clause = masked[cs:ce]
        if _RESERVE_CUE.search(clause):
            shares.append(_Share(value, span))
        elif is_percent:
            warnings.append(
                f"ignored {masked[span[0] : span[1]].strip()!r}: not clear what the percentage "
                "is for"
            )
    return shares, zero, warnings


# --- flight ---------------------------------------------------------------------------------

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1,
    "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}  # fmt: skip
_MON = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_MONTH_RE = re.compile(_MON)
_YEAR = r"(?:,?\s*'?(?P<{name}>\d{{4}}|(?<=')\d{{2}}))"
_DAY = r"(?P<{name}>[0-3]?\d)(?:st|nd|rd|th)?"


def _date_alts(tag: str) -> str:
    """One date, groups suffixed with `tag`: ISO, US numeric, "March 1, 2027", "1 March 2027"."""
    y = _YEAR.format(name=f"y{tag}")
    return (
        rf"(?:(?P<iy{tag}>\d{{4}})-(?P<im{tag}>\d{{1,2}})-(?P<id{tag}>\d{{1,2}})"
        rf"|(?P<um{tag}>1[0-2]|0?[1-9])/(?P<ud{tag}>[0-3]?\d)(?!\d)(?:/(?P<uy{tag}>\d{{4}}|\d{{2}})(?!\d))?"
        rf"(?!\s*of\b)"
        rf"|(?P<mon{tag}>{_MON})\.?\s+{_DAY.format(name=f'md{tag}')}(?!\d)"
        r"(?!\s*(?:%|x\b|k\b|m\b|:\d|\.\d|,\d{3}))"
        rf"(?:{y})?"
        rf"|{_DAY.format(name=f'dm{tag}')}\s+(?:of\s+)?(?P<dmon{tag}>{_MON})\b\.?"
        rf"{_YEAR.format(name=f'dy{tag}')}?)"
    )


_DATE1 = re.compile(r"(?<![\w/$.-])" + _date_alts("a") + r"(?![\w/])")
_RANGE = re.compile(
    r"(?:\b(?:from|between)\s+)?(?<![\w/$.-])"
    + _date_alts("a")
    + r"\s*(?:-|to|through|thru|until|till|and|--)\s*(?:the\s+)?"
    + _date_alts("b")
    + r"(?![\w/])"
)
_SAME_MONTH_RANGE = re.compile(
    rf"\b(?P<mon>{_MON})\.?\s+(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s*(?:-|to|through|thru|until)\s*"
    rf"(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\b(?!\s*{_MON})(?:,?\s*(?P<y>\d{{4}}))?"
)
_DURATION = r"(?P<n>\d+)[\s-]*(?P<unit>weeks?|wks?|days?|months?)"
_START_WORDS = (
    r"(?:starting|start(?:s|ing)?|beginning|begins?|from|kicking off|kick off|launching|launch)"
)
_QUARTER = re.compile(
    r"\b(?:q(?P<q1>[1-4])|(?P<q2>[1-4])q|(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th)\s+"
    r"quarter)(?:\s*(?:of|,)?\s*(?:fy\s?)?(?:'(?P<yy>\d{2})|(?P<yyyy>\d{4})|(?<=\dq)(?P<yy2>\d{2})))?\b"
)
_HALF = re.compile(
    r"\b(?:h(?P<h1>[12])|(?P<ord>first|second|1st|2nd)\s+half)(?:\s*(?:of|,)?\s*(?:fy\s?)?"
    r"(?:'(?P<yy>\d{2})|(?P<yyyy>\d{4})))?\b"
)
_MONTH_ONLY = re.compile(
    rf"(?P<lead>\b(?:in|for|during|over|throughout|through|across|the month of|all of|all)\s+)?"
    rf"\b(?P<mon>{_MON})\b\.?(?!\s*[0-3]?\d(?:st|nd|rd|th)?\b)(?:\s+(?P<y>\d{{4}}))?"
)
_RELATIVE = re.compile(rf"\b(?:next|coming|following|upcoming)\s+{_DURATION}\b")
_NEXT_PERIOD = re.compile(
    r"\b(?P<which>next|this|coming|current)\s+(?P<period>month|quarter|year)\b"
)
_NOW_UNTIL = re.compile(
    r"\b(?:between now and|from now (?:until|till|to|through|thru)|now (?:until|till|through|thru)|"
    r"starting now (?:until|till|through|thru|to))\s+(?:the\s+)?(?<![\w/$.-])"
    + _date_alts("a")
    + r"(?![\w/])"
)
_REST_OF_YEAR = re.compile(
    r"\b(?:rest of the year|rest of (?:this|the) year|through (?:the )?end of (?:the )?year|"
    r"until (?:the )?end of (?:the )?year|through year[- ]end|until year[- ]end)\b"
)


_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
}


def _from_now(today: date, end: date) -> date:
    """Where a flight that starts "now" starts: tomorrow, as a plan written today cannot launch
    today (today itself when the period ends today)."""
    tomorrow = today + timedelta(days=1)
    return tomorrow if tomorrow <= end else today


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _add_months(d: date, n: int) -> date:
    idx = d.month - 1 + n
    y, m = d.year + idx // 12, idx % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def _span_end(start: date, n: int, unit: str) -> date:
    if unit.startswith("w"):
        return start + timedelta(days=7 * n - 1)
    if unit.startswith("d"):
        return start + timedelta(days=n - 1)
    return _add_months(start, n) - timedelta(days=1)


def _year(raw: str | None) -> int | None:
    if not raw:
        return None
    y = int(raw)
    return 2000 + y if y < 100 else y


def _date_parts(m: re.Match[str], tag: str) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) of one matched date, or None when it is not a real date."""
    g = m.groupdict()
    if g.get(f"iy{tag}"):
        y, mo, d = int(g[f"iy{tag}"]), int(g[f"im{tag}"]), int(g[f"id{tag}"])
    elif g.get(f"um{tag}"):
        y, mo, d = _year(g[f"uy{tag}"]), int(g[f"um{tag}"]), int(g[f"ud{tag}"])
    elif g.get(f"mon{tag}"):
        y, mo, d = _year(g.get(f"y{tag}")), _MONTHS[g[f"mon{tag}"]], int(g[f"md{tag}"])
    elif g.get(f"dmon{tag}"):
        y, mo, d = _year(g.get(f"dy{tag}")), _MONTHS[g[f"dmon{tag}"]], int(g[f"dm{tag}"])
    else:
        return None
    if not 1 <= mo <= 12 or not 1 <= d <= 31:
        return None
    if y is not None and d > calendar.monthrange(y, mo)[1]:
        return None
    return y, mo, d


def _next_on_or_after(today: date, mo: int, d: int) -> date:
    for y in (today.year, today.year + 1):
        try:
            candidate = date(y, mo, d)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return date(today.year + 1, mo, min(d, calendar.monthrange(today.year + 1, mo)[1]))


def _resolve_range(
    a: tuple[int | None, int, int], b: tuple[int | None, int, int], today: date
) -> tuple[date, date] | None:
    (ya, ma, da), (yb, mb, db) = a, b
    try:
        if ya is None and yb is None:
            start = _next_on_or_after(today, ma, da)
            ya = start.year
            yb = ya if (mb, db) >= (ma, da) else ya + 1
        elif ya is None:
            assert yb is not None
            ya = yb if (ma, da) <= (mb, db) else yb - 1
        elif yb is None:
            yb = ya if (mb, db) >= (ma, da) else ya + 1
        return date(ya, ma, da), date(yb, mb, db)
    except ValueError:
        return None


def _quarter_dates(q: int, year: int) -> tuple[date, date]:
    start = date(year, 3 * q - 2, 1)
    return start, _month_end(year, 3 * q)


@dataclass
class _Flight:
    start: date | None
    end: date | None
    priority: int  # higher wins: explicit range > start + length > quarter/month > relative
    span: tuple[int, int]
    note: str = ""


def _read_flight(masked: str, today: date) -> tuple[list[_Flight], list[str]]:
    flights: list[_Flight] = []
    warnings: list[str] = []
    claimed: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return not any(s < span[1] and span[0] < e for s, e in claimed)

    for m in _RANGE.finditer(masked):
        a, b = _date_parts(m, "a"), _date_parts(m, "b")
        if a and b and (resolved := _resolve_range(a, b, today)):
            flights.append(_Flight(*resolved, 5, m.span()))
            claimed.append(m.span())
    for m in _SAME_MONTH_RANGE.finditer(masked):
        if not free(m.span()):
            continue
        mo, d1, d2, y = (
            _MONTHS[m.group("mon")],
            int(m.group("d1")),
            int(m.group("d2")),
            m.group("y"),
        )
        resolved = _resolve_range((_year(y), mo, d1), (_year(y), mo, d2), today)
        if resolved:
            flights.append(_Flight(*resolved, 5, m.span()))
            claimed.append(m.span())

    for m in _NOW_UNTIL.finditer(masked):
        parts = _date_parts(m, "a")
        if not free(m.span()) or not parts:
            continue
        y, mo, d = parts
        try:
            end = date(y, mo, d) if y else _next_on_or_after(today, mo, d)
        except ValueError:
            continue
        flights.append(_Flight(_from_now(today, end), end, 5, m.span()))
        claimed.append(m.span())

    # A start date with a length ("for 8 weeks starting January 11, 2027", "a 4-week flight
    # starting 2027-03-01"), a start or an end date alone.
    starts: list[tuple[date, tuple[int, int]]] = []
    ends: list[tuple[date, tuple[int, int]]] = []
    for m in _DATE1.finditer(masked):
        parts = _date_parts(m, "a")
        if not free(m.span()) or not parts:
            continue
        y, mo, d = parts
        lead = masked[max(0, m.start() - 25) : m.start()]
        is_start = re.search(rf"{_START_WORDS}\s+(?:on\s+)?(?:the\s+)?$", lead)
        is_end = re.search(
            r"(?:ending|ends?|end date|until|through|thru|till|by|finish(?:ing)?|wrap(?:ping)? up)"
            r"\s+(?:on\s+)?(?:the\s+)?$",
            lead,
        )
        if not (is_start or is_end):
            continue
        try:
            when = date(y, mo, d) if y else _next_on_or_after(today, mo, d)
        except ValueError:
            continue
        claimed.append(m.span())
        if is_end:
            ends.append((when, m.span()))
            continue
        sentence_start = masked.rfind(". ", 0, m.start()) + 1
        sentence_end = masked.find(". ", m.end())
        sentence = masked[sentence_start : sentence_end if sentence_end >= 0 else len(masked)]
        length = re.search(rf"(?<!next )(?<!coming ){_DURATION}", sentence)
        if length:
            end = _span_end(when, int(length.group("n")), length.group("unit"))
            flights.append(_Flight(when, end, 4, m.span()))
        else:
            starts.append((when, m.span()))
    if starts and ends:
        flights.append(_Flight(starts[0][0], ends[0][0], 4, starts[0][1]))
    else:
        flights += [_Flight(when, None, 3, span) for when, span in starts]
        flights += [_Flight(None, when, 3, span) for when, span in ends]

    for m in _QUARTER.finditer(masked):
        if not free(m.span()):
            continue
        if re.search(r"\b(?:last|previous|prior)\s+$", masked[max(0, m.start() - 12) : m.start()]):
            continue
        q = int(m.group("q1") or m.group("q2") or _ORDINALS[m.group("ord")])
        year = _year(m.group("yyyy") or m.group("yy") or m.group("yy2"))
        if year is None:
            year = today.year if _quarter_dates(q, today.year)[1] >= today else today.year + 1
        flights.append(_Flight(*_quarter_dates(q, year), 2, m.span()))
        claimed.append(m.span())
    for m in _HALF.finditer(masked):
        year = _year(m.group("yyyy") or m.group("yy"))
        if not free(m.span()) or (year is None and not m.group("h1")):
            continue
        h = int(m.group("h1") or _ORDINALS[m.group("ord")])
        if year is None:
            year = today.year if _month_end(today.year, 6 * h) >= today else today.year + 1
        flights.append(_Flight(date(year, 6 * h - 5, 1), _month_end(year, 6 * h), 2, m.span()))
        claimed.append(m.span())
    for m in _MONTH_ONLY.finditer(masked):
        year = _year(m.group("y"))
        # "in March", "March 2027"; a bare month word ("may") is too easily something else.
        if not free(m.span()) or not (year or m.group("lead")):
            continue
        mo = _MONTHS[m.group("mon")]
        if year is None:
            year = today.year if _month_end(today.year, mo) >= today else today.year + 1
        first = date(year, mo, 1)
        start = _from_now(today, _month_end(year, mo)) if first <= today else first
        flights.append(_Flight(start, _month_end(year, mo), 1, m.span()))
        claimed.append(m.span())

    tomorrow = today + timedelta(days=1)
    for m in _RELATIVE.finditer(masked):
        if free(m.span()):
            n, unit = int(m.group("n")), m.group("unit")
            flights.append(_Flight(tomorrow, _span_end(tomorrow, n, unit), 0, m.span()))
            claimed.append(m.span())
    for m in _NEXT_PERIOD.finditer(masked):
        if not free(m.span()):
            continue
        which, period = m.group("which"), m.group("period")
        upcoming = which in ("next", "coming")
        if period == "month":
            first = _add_months(today.replace(day=1), 1 if upcoming else 0)
            end = _month_end(first.year, first.month)
        elif period == "quarter":
            q = (today.month - 1) // 3 + 1 + (1 if upcoming else 0)
            first, end = _quarter_dates((q - 1) % 4 + 1, today.year + (q - 1) // 4)
        else:
            year = today.year + (1 if upcoming else 0)
            first, end = date(year, 1, 1), date(year, 12, 31)
        flights.append(_Flight(first if upcoming else _from_now(today, end), end, 0, m.span()))
        claimed.append(m.span())
    for m in _REST_OF_YEAR.finditer(masked):
        if free(m.span()):
            end = date(today.year, 12, 31)
            flights.append(_Flight(_from_now(today, end), end, 0, m.span()))
            claimed.append(m.span())
    if not flights:
        length = re.search(rf"\b(?:for|over|run(?:ning)?(?: for)?)\s+(?:a\s+)?{_DURATION}", masked)
        if length:
            warnings.append(
                f"the brief gives a flight length ({length.group('n')} {length.group('unit')}) "
                "but no start date; flight dates left open"
            )
    return flights, warnings


# --- out of stock ---------------------------------------------------------------------------

_OOS = r"(?:out[- ]of[- ]stock|oos|out of stock|stocked[- ]out|stockouts?)"
_OOS_INCLUDE = re.compile(
    rf"\b(?:include|including|includes|keep|allow|allowing|even|plus|consider|ok to include|"
    rf"okay to include|fine to include|leave in|don'?t exclude|do not exclude|no need to exclude|"
    rf"without excluding)\b[^.;]{{0,30}}?\b{_OOS}\b"
    rf"|\b{_OOS}\b[^.;]{{0,25}}?\b(?:included|are fine|is fine|ok|okay|allowed|too|as well)\b"
)
_OOS_EXCLUDE = re.compile(
    rf"\b(?:exclude|excluding|skip|skipping|drop|remove|no|without|ignore|leave out|avoid|"
    rf"filter out|not)\b[^.;]{{0,20}}?\b{_OOS}\b"
)
_NEGATION = re.compile(r"\b(?:don'?t|do not|never|no need to|not|won'?t|shouldn'?t)\s+$")


def _read_oos(masked: str) -> tuple[bool | None, list[str]]:
    """-> (exclude_oos when the text says, warnings)."""
    include = exclude = False
    for m in _OOS_INCLUDE.finditer(masked):
        if re.match(r"(?:don'?t|do not|no need to|without) exclud", m.group()):
            include = True
        elif _NEGATION.search(masked[max(0, m.start() - 15) : m.start()]):
            exclude = True  # "don't include out-of-stock SKUs"
        else:
            include = True
    for m in _OOS_EXCLUDE.finditer(masked):
        window = masked[max(0, m.start() - 15) : m.end()]
        if not re.search(
            r"(?:don'?t|do not|no need to|not|without|never)\s+(?:\w+\s+)?exclud", window
        ):
            exclude = True
    if include and exclude:
        return True, ["the brief both includes and excludes out-of-stock SKUs; excluded them"]
    if include or exclude:
        return not include, []
    return None, []


# --- the parser -----------------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])\d+(?:\.\d+)?|\.\d+")


def _numbers(low: str, extra: Iterable[float]) -> list[float]:
    values = [_as_float(m.group()) for m in _PLAIN_NUMBER.finditer(low)]
    for m in _MONEY.finditer(low):
        scale = m.group("scale")
        values.append(_as_float(m.group("num")) * _SCALE_WORDS.get(scale or "", 1.0))
    for m in _PERCENT.finditer(low):
        values.append(float(m.group("num")) / 100)
    values.extend(extra)
    return sorted(set(values))


def rule_parse(text: str, brand: str, today: date | None = None) -> RuleParse:
    """Read every field the rules can find; errors are collected, not raised (see
    `RuleParse.raise_errors`), so the production path can still report them all."""
    check_brand(brand)
    today = today or date.today()
    clean = normalize(text)
    low = _lower(clean)
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
    warn, errors, found = result.warnings, result.errors, result.found

    # ROAS floors first: their "$3 for every $1" and "3x" must not read as money or shares.
    floors, no_floor_spans, floor_warnings = _read_floors(low)
    warn.extend(floor_warnings)
    floor_values = sorted({f.value for f in floors})
    if floor_values:
        values["roas_floor"] = floors[0].value
        found.add("roas_floor")
        if len(floor_values) > 1:
            warn.append(
                f"several ROAS floors mentioned ({', '.join(_fmt(v) for v in floor_values)}); "
                f"used {_fmt(floors[0].value)}, the first one"
            )
    elif no_floor_spans:
        found.add("roas_floor")
    floor_spans = [f.span for f in floors]

    retailers, mentioned, retailer_spans, r_warnings, r_errors = _read_retailers(clean, low, brand)
    result.retailer_mentions = mentioned
    warn.extend(r_warnings)
    if retailers is not None:
        values["retailers"] = retailers
        found.add("retailers")

    # Money.
    for m in _FOREIGN.finditer(low):
        errors.append(
            BriefError(
                "budgets are planned in USD; the brief gives "
                f"{clean[m.start() : m.end() + 3].strip()!r} - restate it in dollars",
                field="total_budget",
            )
        )
        break
    money = _read_money(_mask(low, floor_spans), retailer_spans)
    budgets = [m for m in money if m.kind == "budget"]
    if not budgets:
        budgets = [m for m in money if m.kind == "cap"]
        for m in budgets:
            m.kind = "budget"
    rates = [m for m in money if m.kind == "rate"]
    budget: float | None = None
    if budgets:
        corrections = [m for m in budgets if m.correction]
        split = [m for m in budgets if m.retailer]
        if corrections:
            chosen = corrections[-1]
            reason = "the correction"
        elif (
            len(split) == len(budgets) > 1
            and len({m.retailer for m in split}) == len(split)
            and not any(m.score >= 2 for m in budgets)
        ):
            # "$2M on Alpha and $1M on Beta": the total is the sum of the parts.
            chosen = _Money(sum(m.value for m in split), split[0].span, "budget")
            reason = "the sum of the per-retailer amounts"
            for m in split:
                m.kind = "part"
        else:
            ranked = sorted(budgets, key=lambda m: (-m.score, m.span[0]))
            chosen = ranked[0]
            reason = {2: "the total", 1: "the one named as the budget"}.get(
                min(chosen.score, 2), "the first"
            )
            if chosen.score and ranked[1:] and ranked[1].score == chosen.score:
                reason = "the first"
        budget = chosen.value
        if reason.startswith("the sum"):
            parts = " + ".join(_usd(m.value) for m in split)
            warn.append(
                f"total budget {_usd(budget)} is the sum of the per-retailer amounts ({parts}); "
                "the split itself is not part of the brief (set retailer caps in the plan)"
            )
        others = sorted({m.value for m in budgets if m.kind == "budget" and m.value != budget})
        if others:
            warn.append(
                f"several budgets mentioned ({', '.join(_usd(v) for v in [budget, *others])}); "
                f"used {_usd(budget)}, {reason}"
            )
    for m in money:
        if m.kind == "superseded" and m.value != budget:
            warn.append(f"ignored {_usd(m.value)}: the brief gives it as a past or replaced amount")
    for m in money:
        if m.kind == "cap" and budget is not None and m.value != budget:
            warn.append(
                f"ignored {_usd(m.value)}: per-retailer limits are not part of the brief "
                "(set retailer caps in the plan)"
            )
    mask_spans = floor_spans + [m.span for m in money]

    # Flight (read before the budget is final: a weekly budget needs the flight length).
    masked = _mask(low, mask_spans)
    flights, f_warnings = _read_flight(masked, today)
    warn.extend(f_warnings)
    if flights:
        top = max(f.priority for f in flights)
        best = sorted((f for f in flights if f.priority == top), key=lambda f: f.span[0])
        flight = best[0]
        values["flight_start"], values["flight_end"] = flight.start, flight.end
        found.update({"flight_start", "flight_end"})
        if len({(f.start, f.end) for f in best}) > 1:
            warn.append(
                "several flights mentioned; used "
                f"{flight.start} to {flight.end or 'open'}, the first one"
            )
        if flight.start and flight.end and flight.end < flight.start:
            errors.append(
                BriefError(
                    f"the flight ends ({flight.end}) before it starts ({flight.start})",
                    field="flight_end",
                )
            )
    if budget is None and rates:
        rate = rates[0]
        start, end = values["flight_start"], values["flight_end"]
        if start and end:
            days = (end - start).days + 1
            if rate.rate_unit == "week":
                periods = days / 7
            elif rate.rate_unit == "day":
                periods = float(days)
            elif start.day == 1 and end == _month_end(end.year, end.month):
                periods = float((end.year - start.year) * 12 + end.month - start.month + 1)
            else:
                periods = days / (365.25 / 12)
            budget = round(rate.value * periods, 2)
            warn.append(
                f"total budget {_usd(budget)} computed from {_usd(rate.value)} per "
                f"{rate.rate_unit} over {_fmt(round(periods, 2))} {rate.rate_unit}s"
            )
        else:
            errors.append(
                BriefError(
                    f"the brief gives {_usd(rate.value)} per {rate.rate_unit} but no flight "
                    "dates; give a total budget or the flight",
                    field="total_budget",
                )
            )
    if budget is None and not any(e.detail.get("field") == "total_budget" for e in errors):
        errors.append(
            BriefError(
                "no budget found in the brief; say how much to spend, e.g. '$2.5M' or '750k USD'",
                field="total_budget",
            )
        )
    elif budget is not None and budget <= 0:
        errors.append(
            BriefError(
                f"the budget must be positive; the brief gives {_usd(budget)}",
                field="total_budget",
                total_budget=budget,
            )
        )
    elif budget is not None:
        values["total_budget"] = float(budget)
        found.add("total_budget")

    # Objective, on the text less money and floor numbers.
    objective, o_warnings = _read_objective(
        _mask(low, [m.span for m in money] + no_floor_spans),
        [f.kw_span for f in floors if f.kw_span],
    )
    warn.extend(o_warnings)
    if objective:
        values["objective"] = objective
        found.add("objective")

    # Experiment reserve: a share, an amount ("$140k for tests") or "no experiments".
    shares, zero, s_warnings = _read_reserve(_mask(low, mask_spans))
    reserve_money = [m for m in money if m.kind == "reserve"]
    candidates: list[tuple[int, float, str]] = [
        (s.span[0], s.value, clean[s.span[0] : s.span[1]].strip()) for s in shares
    ]
    derived: list[float] = []
    for m in reserve_money:
        if budget and budget > 0:
            share = round(m.value / budget, 6)
            derived.append(share)
            candidates.append((m.span[0], share, f"{_usd(m.value)} of {_usd(budget)}"))
    candidates += [(z.span[0], 0.0, "no experiments") for z in zero]
    candidates.sort()
    warn.extend(s_warnings)
    if candidates:
        distinct = sorted({round(c[1], 6) for c in candidates})
        reserve = candidates[0][1]
        if len(distinct) > 1:
            warn.append(
                f"several experiment reserves mentioned ({', '.join(c[2] for c in candidates)}); "
                f"used {_fmt(reserve)}, the first one"
            )
        if reserve > MAX_RESERVE:
            errors.append(
                BriefError(
                    f"an experiment reserve of {reserve:.0%} ({candidates[0][2]}) is over the "
                    f"{MAX_RESERVE:.0%} limit; at most half the budget can be held back",
                    field="experiment_reserve",
                    experiment_reserve=reserve,
                )
            )
        else:
            values["experiment_reserve"] = reserve
            found.add("experiment_reserve")

    oos, oos_warnings = _read_oos(_mask(low, mask_spans))
    warn.extend(oos_warnings)
    if oos is not None:
        values["exclude_oos"] = oos
        found.add("exclude_oos")

    other_brands = [
        info.name
        for bid, info in BRANDS.items()
        if bid != brand
        and re.search(rf"(?<![\w-]){re.escape(info.name.lower().rstrip('.'))}\b", low)
    ]
    if other_brands:
        warn.append(
            f"the brief mentions {', '.join(other_brands)}, but it is parsed for "
            f"{BRANDS[brand].name} ({brand})"
        )

    errors.extend(r_errors)
    order = {name: k for k, name in enumerate(BRIEF_FIELDS)}
    errors.sort(key=lambda e: order.get(str(e.detail.get("field")), len(order)))
    result.numbers = _numbers(low, derived + floor_values)
    claimed = mask_spans + [f.span for f in flights] + [x.span for x in shares + zero]
    claimed += [m.span() for m in _PERCENT.finditer(low)]
    result.free_numbers = sorted(
        {_as_float(m.group()) for m in _PLAIN_NUMBER.finditer(_mask(low, claimed))}
    )
    return result
