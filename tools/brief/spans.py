"""Candidate spans: the substrings of a brief that may carry each field.

The model path asks the model which candidate carries each field, under a JSON schema built
for the brief whose values are enums of these candidates (`tools.brief.prompts.span_schema`),
so every span it answers is a verbatim substring of the brief as written; tested code
(`tools.brief.convert`) turns the chosen spans into values with the rule readers.

Candidates are cut for recall, not precision: every money-like amount, every retailer mention,
every objective term, every small number that could be a ROAS floor, every share or zero
statement that could be the experiment reserve, every date or period phrase. Telling the
budget from a reserve amount, the ROAS floor from another number, the objective from a floor's
"ROAS", is the model's job; the code only cuts and converts.

Positions: the readings run on the normalized text (`rules.text.normalize`: number words as
digits, plain punctuation). `align` maps every normalized character back to the characters it
came from, so a candidate is cut from the brief as written ("two and a half million", not
"2.5 million") and converts the same way the rules read it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date

from tools.brief.rules.flight import MONTH_RE, read_flight
from tools.brief.rules.money import _LOOSE_SCALES, _RATE, MONEY, amount
from tools.brief.rules.objective import objective_terms
from tools.brief.rules.reserve import PERCENT, RESERVE_WORDS
from tools.brief.rules.retailers import read_retailers
from tools.brief.rules.text import _UNICODE, lower, mask, normalize

Span = tuple[int, int]

# The fields the model answers with spans (and "stock", a label), in the order it writes them.
SPAN_FIELDS: tuple[str, ...] = (
    "budget",
    "retailers",
    "except",
    "objective",
    "floor",
    "reserve",
    "flight",
    "stock",
)
STOCK_LABELS: tuple[str, ...] = ("include", "exclude")


# --- alignment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aligned:
    """A brief, its normalized text and where each normalized character came from."""

    original: str
    text: str  # normalize(original)
    low: str  # lower(text), same length
    origin: tuple[Span, ...]  # per character of `text`: its source range in `original`

    def cut(self, span: Span) -> str:
        """The original text behind a span of the normalized text, trimmed."""
        start, end = span
        if not self.origin or start >= end:
            return ""
        s, e = self.origin[start][0], self.origin[min(end, len(self.origin)) - 1][1]
        return self.original[s:e].strip(" \t\n,;")


def align(text: str) -> Aligned:
    """`normalize(text)` with the source range of every character. Punctuation replacements and
    space runs map one to one; number-word runs ("two and a half") map to the whole run."""
    chars: list[str] = []
    origin: list[Span] = []
    for i, c in enumerate(text):
        for r in _UNICODE.get(c, c):
            chars.append(r)
            origin.append((i, i + 1))
    # Runs of spaces and tabs become one space; the ends are stripped (as `normalize` does).
    spaced: list[str] = []
    spaced_origin: list[Span] = []
    for c, o in zip(chars, origin, strict=True):
        if c in " \t" and spaced and spaced[-1] == " ":
            spaced_origin[-1] = (spaced_origin[-1][0], o[1])
            continue
        spaced.append(" " if c in " \t" else c)
        spaced_origin.append(o)
    while spaced and spaced[0] == " ":
        spaced.pop(0)
        spaced_origin.pop(0)
    while spaced and spaced[-1] == " ":
        spaced.pop()
        spaced_origin.pop()
    before = "".join(spaced)
    after = normalize(text)
    mapped: list[Span] = []
    # Number words become digits: the two texts share no characters inside a rewritten run.
    ops = difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            mapped.extend(spaced_origin[i1:i2])
        elif tag in ("replace", "insert"):
            lo = spaced_origin[i1 if i1 < len(spaced_origin) else -1]
            hi = spaced_origin[max(i1, i2 - 1) if i2 > i1 else max(0, i1 - 1)]
            mapped.extend([(min(lo[0], hi[0]), max(lo[1], hi[1]))] * (j2 - j1))
    return Aligned(text, after, lower(after), tuple(mapped))


# --- candidates -----------------------------------------------------------------------------


@dataclass
class Candidates:
    """Candidate spans per field, as cut from the brief (unique, in text order), and the
    positions (in the normalized text) they were cut from."""

    budget: list[str] = field(default_factory=list)
    retailers: list[str] = field(default_factory=list)
    objective: list[str] = field(default_factory=list)
    floor: list[str] = field(default_factory=list)
    reserve: list[str] = field(default_factory=list)
    flight: list[str] = field(default_factory=list)
    stock: bool = False  # whether the brief mentions out-of-stock items at all
    where: dict[str, list[tuple[Span, str]]] = field(default_factory=dict)

    def of(self, name: str) -> list[str]:
        """The candidates the model may answer for one of `SPAN_FIELDS`."""
        if name == "except":
            return self.retailers
        if name == "stock":
            return list(STOCK_LABELS) if self.stock else []
        values: list[str] = getattr(self, name)
        return values


def _add(cands: Candidates, name: str, al: Aligned, span: Span) -> None:
    text = al.cut(span)
    if not text:
        return
    cands.where.setdefault(name, []).append((span, text))
    values: list[str] = getattr(cands, name)
    if text not in values:
        values.append(text)


def _inside(span: Span, spans: list[Span]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in spans)


def _overlaps(span: Span, spans: list[Span]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in spans)


def candidate_spans(text: str, brand: str, today: date) -> Candidates:
    """Every span of `text` that may carry a field of the brief, per field."""
    al = align(text)
    cands = Candidates()
    money = _money_spans(al.low)
    for span in money:
        _add(cands, "budget", al, span)
    _, _, mentions, _, _ = read_retailers(al.text, al.low, brand)
    for span in sorted(mentions):
        _add(cands, "retailers", al, span)
    for s, e, _objective in objective_terms(al.low):
        _add(cands, "objective", al, (s, e))
    flights = _flight_spans(al.low, today, money)
    for span in flights:
        _add(cands, "flight", al, span)
    shares = _reserve_spans(al.low, money)
    for span in sorted(shares + money):
        _add(cands, "reserve", al, span)
    taken = [s for s in money if not _small_amount(al.low, s)] + flights + shares
    for span in _floor_spans(al.low, taken):
        _add(cands, "floor", al, span)
    cands.stock = bool(_OOS.search(al.low))
    return cands


# Money: an amount with a currency or a scale, or a bare number with thousands separators.
_CURRENCY_AFTER = re.compile(r"\s?(?:eur|euros?|gbp|pounds|yen|cad|aud|inr|rupees)\b")
_CURRENCY_BEFORE = re.compile(r"(?:[£€¥]|\b(?:eur|gbp|cad|aud|jpy|inr))\s?$")


def _money_spans(low: str) -> list[Span]:
    spans: list[Span] = []
    for m in MONEY.finditer(low):
        pre, scale, post = m.group("pre"), m.group("scale"), m.group("post")
        raw = m.group("num")
        if not (pre or scale or post or m.group("exp") or "," in raw):
            continue
        if not pre and not post and scale in _LOOSE_SCALES and low[m.start("scale") - 1] == " ":
            continue  # "4 m" is too loose to be money
        if not scale and not m.group("exp") and amount(m) < 1000:
            continue  # "$3 in sales for every $1": a floor's dollars, not an amount to spend
        s = m.start() if m.group("neg") else (m.start("pre") if pre else m.start("num"))
        e = m.end()
        rate = _RATE.match(low[e : e + 30])
        if rate:
            e += rate.end()  # "$100k per week" converts over the flight
        foreign = _CURRENCY_AFTER.match(low, e)
        if foreign:
            e = foreign.end()
        before = _CURRENCY_BEFORE.search(low[max(0, s - 4) : s])
        if before:
            s -= len(before.group())
        spans.append((s, e))
    return spans


def _small_amount(low: str, span: Span) -> bool:
    return False


# Floors: a small number, alone or with "x", ":1", "+" or a leading "$" ("$3 for every $1").
_FLOOR_NUM = re.compile(
    r"(?<![\w.,/:$-])(?P<dollar>\$\s?)?(?P<num>\d{1,2}(?:\.\d+)?|\.\d+)"
    r"(?P<unit>\s?x\b|\s?:\s?1\b|\s?to 1\b|\+)?"
    r"(?![\w%]|[.,/:-]\d|\s?(?:%|percent\b|pct\b|per cent\b|k\b|m\b|mm\b|mn\b|bn\b|million\b|"
    r"thousand\b|billion\b|grand\b|weeks?\b|wks?\b|days?\b|months?\b|dollars?\b|usd\b))"
)


def _floor_spans(low: str, taken: list[Span]) -> list[Span]:
    spans: list[Span] = []
    for m in _FLOOR_NUM.finditer(low):
        if _overlaps(m.span(), taken):
            continue
        value = float(m.group("num"))
        if 0 < value <= 50:
            spans.append(m.span())
    return spans


# Reserve shares: percentages, fractions ("0.05 of budget", "1/10 of"), fraction words ("a
# fifth", "one-tenth") and statements of no reserve ("no test budget", "experiments: none").
_DECIMAL = re.compile(
    r"(?<![\w.$,])(?:0?\.\d+)(?:\s+(?:of\s+)?(?:the\s+)?(?:total\s+)?(?:budget|spend|it)\b)?"
    r"(?![\d%]|\s?(?:x\b|k\b|m\b|mm\b|million\b|thousand\b|:))"
)
_RATIO = re.compile(r"(?<![\d./])\d{1,2}\s?/\s?\d{1,3}\s+of\b")
_FRACTION_WORD = re.compile(r"\b(?:a|one)[\s-]+(?:tenth|fifth|quarter|third)\b")
_NEGATION = r"(?:no|zero|nothing|none|without|skip|skipping|drop|dropping|don'?t|do not|not|nor)"
_ZERO = re.compile(
    rf"\b{_NEGATION}\b(?:[\s-]+[a-z'-]+){{0,4}}?[\s-]+{RESERVE_WORDS}\b"
    rf"|\b{RESERVE_WORDS}(?:\s+(?:reserve|budget|holdback|share))?\s?[:=-]?\s?"
    r"(?:none|nothing|zero|nil|n/a)\b"
)


def _reserve_spans(low: str, money: list[Span]) -> list[Span]:
    spans: list[Span] = []
    for pattern in (PERCENT, _DECIMAL, _RATIO, _FRACTION_WORD, _ZERO):
        for m in pattern.finditer(low):
            if not _overlaps(m.span(), money + spans):
                spans.append(m.span())
    return spans


# Flights: every period the flight reader finds, every month, date, quarter or half, and
# two of them joined ("Jan 10 through Mar 7", "Jan & Feb 2027") or a start with a length.
_QUARTER_ATOM = re.compile(
    r"\b(?:\d{4}\s+)?(?:q[1-4]|h[12]|(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+"
    r"(?:quarter|half))(?:\s*(?:of|,)?\s*(?:fy\s?)?(?:'\d{2}|\d{4}|next year|this year))?\b"
)
_MONTH_ATOM = re.compile(
    rf"\b{MONTH_RE.pattern}\b\.?(?:\s+[0-3]?\d(?:st|nd|rd|th)?\b(?!\s*(?:%|x\b|k\b|m\b)))?"
    r"(?:,?\s+'?\d{4}\b)?"
)
_NUMERIC_DATE = re.compile(
    r"(?<![\w/$.-])(?:\d{4}-\d{1,2}-\d{1,2}|(?:1[0-2]|0?[1-9])/[0-3]?\d(?:/(?:\d{4}|\d{2}))?)"
    r"(?![\w/])"
)
_DAY_MONTH = re.compile(rf"\b[0-3]?\d(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH_RE.pattern}\b")
_CONNECTOR = re.compile(
    r"^\s*(?:-|--|->|\u2192|to|through|thru|until|till|and|&|to the end of|through the end of|"
    r"until the end of)\s*(?:the\s+)?$"
)
_DURATION = re.compile(r"\b\d+[\s-]*(?:weeks?|wks?|days?|months?)\b")
_OOS = re.compile(r"out[- ]of[- ]stock|\boos\b|stocked[- ]out|\bstockouts?\b")


def _flight_atoms(low: str, today: date, money: list[Span]) -> list[Span]:
    masked = mask(low, money)
    flights, _ = read_flight(masked, today)
    atoms = [f.span for f in flights]
    for pattern in (_QUARTER_ATOM, _MONTH_ATOM, _NUMERIC_DATE, _DAY_MONTH):
        for m in pattern.finditer(masked):
            if m.group().strip() and not _overlaps(m.span(), money):
                atoms.append(m.span())
    # Keep the widest reading of each place in the text.
    atoms = sorted(set(atoms), key=lambda s: (s[0], -s[1]))
    kept: list[Span] = []
    for span in atoms:
        if kept and span[0] < kept[-1][1]:
            if span[1] > kept[-1][1]:
                kept[-1] = (kept[-1][0], span[1])
            continue
        kept.append(span)
    return kept


def _flight_spans(low: str, today: date, money: list[Span]) -> list[Span]:
    atoms = _flight_atoms(low, today, money)
    joined: list[Span] = []
    k = 0
    while k < len(atoms):
        s, e = atoms[k]
        while k + 1 < len(atoms) and _CONNECTOR.match(low[e : atoms[k + 1][0]]):
            k += 1
            e = atoms[k][1]
        joined.append((s, e))
        k += 1
    out: list[Span] = []
    for s, e in joined:
        # A start with a length in the same clause: "for 8 weeks starting Jan 11".
        clause_s = max(low.rfind(c, 0, s) for c in ".;?!\n") + 1
        ends = [low.find(c, e) for c in ".;?!\n"]
        clause_e = min([x for x in ends if x >= 0] or [len(low)])
        for d in _DURATION.finditer(low, clause_s, clause_e):
            if _overlaps(d.span(), joined):
                continue
            if re.search(
                r"\b(?:next|coming|following|upcoming|over the next)\s*$", low[: d.start()]
            ):
                continue
            between = low[min(e, d.end()) : max(s, d.start())]
            if len(between) <= 40 and not _overlaps((min(s, d.start()), max(e, d.end())), money):
                s, e = min(s, d.start()), max(e, d.end())
                break
        out.append((s, e))
    return out
