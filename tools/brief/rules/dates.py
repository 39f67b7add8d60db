"""Date wording made plain before any reading (`text.normalize`), so that the flight's
readings and the model see the dates themselves:

- a weekday before a date goes: "Mon 5 Apr to Sun 9 May 2027" -> "5 Apr to 9 May 2027",
  "beginning Monday March 1, 2027" -> "beginning March 1, 2027";
- a date in parentheses after the day it names stands for it: "Presidents Day (Feb 15,
  2027) through Memorial Day (May 31, 2027)" -> "Feb 15, 2027 through May 31, 2027", "mid-Feb
  (Feb 15) through Mar 31" -> "Feb 15 through Mar 31";
- a named day of a fixed date, as a flight's bound, is that date: "through New Year's Eve" ->
  "through December 31";
- ".." between two dates is "to": "2027-03-01..2027-03-31".

Seven briefs of `unseen7` (read after its first measure, so no longer clean) lost their flight
to these: their dates were stated and no reading matched around the weekday or parentheses.
"""

from __future__ import annotations

import re

from tools.brief.rules.flight import MONTH_RE

_MON = MONTH_RE.pattern
_WEEKDAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
# What a date looks like right after a weekday: "March 1", "5 Apr", "3/15", "2027-03-01".
_DATE_AHEAD = (
    rf"(?=(?:[0-3]?\d(?:st|nd|rd|th)?\s+(?:of\s+)?)?{_MON}\b|[01]?\d/[0-3]?\d\b|\d{{4}}-\d)"
)
_WEEKDAY_BEFORE_DATE = re.compile(rf"\b{_WEEKDAY}\.?,?\s+{_DATE_AHEAD}", re.IGNORECASE)
# Days named by a name ("Presidents Day weekend", "mid-Feb", "this Monday").
_NAMED_DAY = (
    r"(?:(?:presidents?'?|president's|memorial|labou?r|independence|columbus|veterans'?|"
    r"mother's|father's|valentine's|new year's|martin luther king(?: jr\.?)?)\s+day"
    rf"(?:\s+weekend)?|new year's eve|christmas(?:\s+eve)?|thanksgiving|black friday|"
    rf"cyber monday|easter(?:\s+sunday)?|mid-{_MON}\.?|(?:this|next|the)\s+{_WEEKDAY})"
)
_DATE = (
    rf"(?:{_MON}\.?\s+[0-3]?\d(?:st|nd|rd|th)?(?:,?\s*\d{{4}})?"
    rf"|[0-3]?\d(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}\.?(?:,?\s*\d{{4}})?"
    r"|\d{4}-\d{1,2}-\d{1,2}|[01]?\d/[0-3]?\d(?:/\d{2,4})?)"
)
_NAMED_THEN_DATE = re.compile(rf"\b{_NAMED_DAY}\s*\(\s*(?P<date>{_DATE})\s*\)", re.IGNORECASE)
_FIXED_DAYS = {
    "new year's eve": "December 31",
    "new year's day": "January 1",
    "christmas eve": "December 24",
    "christmas day": "December 25",
    "christmas": "December 25",
    "valentine's day": "February 14",
    "independence day": "July 4",
    "halloween": "October 31",
}
# Only as a flight's bound: "Christmas candles" stays a product.
_FIXED = re.compile(
    r"\b(?P<lead>(?:through|thru|until|till|to|by|from|starting|beginning|ending)\s+)"
    r"(?P<day>" + "|".join(re.escape(k) for k in _FIXED_DAYS) + r")\b(?!\s*\()",
    re.IGNORECASE,
)
_DOTS = re.compile(rf"(?<=\d)\s*\.\.\.?\s*(?=\d|{_MON})", re.IGNORECASE)
# Day-first numeric dates, as ISO: "08.02.2027" (dots are always day first), "15/02/2027"
# (slashes only where the first number cannot be a month). v10 and v21 of unseen9 lost their
# flight to these.
_DOTTED = re.compile(r"(?<![\d.])(?P<d>[0-3]?\d)\.(?P<m>[01]?\d)\.(?P<y>20\d\d)(?![\d.]\d)")
_DAY_FIRST = re.compile(r"(?<![\d/])(?P<d>1[3-9]|2\d|3[01])/(?P<m>[01]?\d)/(?P<y>20\d\d)(?![\d/])")
# Halves written year first or number first, as "H2 2027": "2027 H2", "1H27", "2H 2027"
# (v17, v23 and v57 of unseen9).
_YEAR_HALF = re.compile(r"\b(?P<y>20\d\d)\s+h(?P<h>[12])\b", re.IGNORECASE)
_NUMBER_HALF = re.compile(r"\b(?P<h>[12])h\s*'?(?P<y>(?:20)?\d\d)\b", re.IGNORECASE)
# A range of quarters as the months they cover: "Q2-Q3 2027" -> "April through September
# 2027" (v36 of unseen9 was read as Q2); two in a row, "Q1 and Q2 2027", "Q3+Q4" (a39 and b48
# of unseen18/19 were read as the first).
_QUARTER_RANGE = re.compile(
    r"\bq(?P<a>[1-4])\s*(?P<sep>-|to|through|thru|until|and|\+|&)\s*q(?P<b>[1-4])\b",
    re.IGNORECASE,
)
_QUARTER_MONTHS = {1: ("January", "March"), 2: ("April", "June"), 3: ("July", "September"),
                   4: ("October", "December")}  # fmt: skip
# Day ordinals in words beside a month, as digits: "april first through september
# thirtieth", "the first of February to the thirty-first of July" (w41 and w52 of unseen8).
_ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_UNIT_ORD = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth"
_ORD = rf"(?:(?:twenty|thirty)[\s-]?(?:{_UNIT_ORD})|" + "|".join(_ORDINAL_WORDS) + ")"
_NOT_A_DAY = r"(?!\s+(?:half|quarter|weeks?|fortnight|months?|two|three|four)\b)"
_ORDINAL_DAY = re.compile(
    rf"\b(?:(?P<mon>{_MON})\.?\s+(?:the\s+)?(?P<o1>{_ORD})\b{_NOT_A_DAY}"
    rf"|(?P<o2>{_ORD})\s+of\s+(?P<mon2>{_MON})\b)",
    re.IGNORECASE,
)


def _ordinal_day(m: re.Match[str]) -> str:
    words = re.split(r"[\s-]+", (m.group("o1") or m.group("o2")).lower())
    day = {"twenty": 20, "thirty": 30}.get(words[0], 0) + _ORDINAL_WORDS.get(words[-1], 0)
    return f"{m.group('mon')} {day}" if m.group("mon") else f"{day} of {m.group('mon2')}"


def spoken_days(text: str) -> str:
    """Day ordinals in words beside a month as digits ("april first" -> "april 1"); run before
    number words become digits, which would make "thirty-first" "30-first"."""
    return _ORDINAL_DAY.sub(_ordinal_day, text)


def _iso(m: re.Match[str]) -> str:
    y, mo, d = int(m.group("y")), int(m.group("m")), int(m.group("d"))
    return f"{y:04d}-{mo:02d}-{d:02d}" if 1 <= mo <= 12 and 1 <= d <= 31 else m.group()


def _half(m: re.Match[str]) -> str:
    y = m.group("y")
    return f"H{m.group('h')} {y if len(y) == 4 else '20' + y}"


def _quarters(m: re.Match[str]) -> str:
    a, b = int(m.group("a")), int(m.group("b"))
    in_a_row = b == a + 1 or m.group("sep").lower() not in ("and", "+", "&")
    if a >= b or not in_a_row:
        return m.group()
    return f"{_QUARTER_MONTHS[a][0]} through {_QUARTER_MONTHS[b][1]}"


def plain_dates(text: str) -> str:
    """`text` with its date wording made plain (see the module docstring)."""
    text = _WEEKDAY_BEFORE_DATE.sub("", text)
    text = _NAMED_THEN_DATE.sub(lambda m: m.group("date"), text)
    text = _FIXED.sub(lambda m: m.group("lead") + _FIXED_DAYS[m.group("day").lower()], text)
    text = _DAY_FIRST.sub(_iso, _DOTTED.sub(_iso, text))
    text = _NUMBER_HALF.sub(_half, _YEAR_HALF.sub(_half, text))
    text = _QUARTER_RANGE.sub(_quarters, text)
    return _DOTS.sub(" to ", text)
