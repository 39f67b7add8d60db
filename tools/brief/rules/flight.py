"""The flight: when the campaign runs, from dates, periods and durations in the text.

Readings run strongest first and each claims its span, so that a weaker one cannot reread it:
explicit ranges ("March 1 - April 15", "now until June 30"), a start with a length ("for 8
weeks starting January 11"), a start or an end alone, quarters, halves and months ("Q3", "in
March"), and relative periods ("next 4 weeks", "next quarter", "rest of the year"). Of several
flights the strongest wins, then the first. A length with no start leaves the dates open, with
a warning. Dates without a year are the next such date on or after the day the brief was
written.
"""

from __future__ import annotations

import calendar
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta

from tools.brief.rules.flight_words import (
    EVENT_BEFORE,
    FLIGHT_WORD_AFTER,
    SUBJECT_BEFORE,
    stands_alone,
    told_in_the_past,
)

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
MONTH_RE = re.compile(_MON)
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


def date_spans(low: str) -> list[tuple[int, int]]:
    """Where the lowercased brief names a single date ("dec 10", "3/15", "2027-02-01"), flight
    or not: its numbers are days and years, never ratios or amounts."""
    return [m.span() for m in _DATE1.finditer(low)]


_RANGE = re.compile(
    r"(?:\b(?:from|between)\s+)?(?<![\w/$.-])"
    + _date_alts("a")
    # "window: 2027-02-15 -> 2027-05-15" (yw23 of unseen67 read no flight)
    + r"\s*(?:->|→|-|to|through|thru|until|till|and|--)\s*(?:the\s+)?"
    + _date_alts("b")
    + r"(?![\w/])"
)
# "Dec 8-31", "starting Dec 8 through the 31st" (ja32 of unseen29 read no end).
_SAME_MONTH_RANGE = re.compile(
    rf"\b(?P<mon>{_MON})\.?\s+(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s*(?:-|to|through|thru|until)\s*"
    rf"(?:the\s+)?(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\b(?!\s*{_MON})(?:,?\s*(?P<y>\d{{4}}))?"
)
_DURATION = r"(?P<n>\d+)[\s-]*(?P<unit>weeks?|wks?|days?|months?)"
# A form's row: "Weeks | 12" under "Start | 2027-01-11" (yo17 of unseen59 read no end).
_DURATION_CELL = re.compile(r"\b(?P<unit>weeks|days|months)\s*[:|=]\s*(?P<n>\d{1,3})\b")
_END_WORDS = r"(?:ending|ends?|end date|until|through|thru|till|by|finish(?:ing)?|wrap(?:ping)? up)"
_START_WORDS = (
    r"(?:starting|start(?:s|ing)?|beginning|begins?|from|kick(?:s|ing)? off|launching|launch)"
)
# A date the planner must answer by, not the flight's end: "Please submit plans by January 8"
# (yv25 of unseen66 ended its Q2-Q3 flight on January 8).
_DEADLINE = re.compile(
    r"\b(?:submit\w*|send|share|deliver|respond|reply|confirm|review|due|deadline|rsvp)\b"
    r"[^.\n]{0,15}$"
)
_QUARTER = re.compile(
    r"\b(?:q(?P<q1>[1-4])|(?P<q2>[1-4])q|(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th)[\s-]+"
    r"quarter)(?:\s*(?:of|,)?\s*(?:fy\s?)?(?:'(?P<yy>\d{2})|(?P<yyyy>\d{4})|(?<=\dq)(?P<yy2>\d{2})))?\b"
)
# A half: "H1 2027", "second half of FY27", "FY27 H2" (n14 of unseen17), "the first half of
# next year" (n23: read as the whole year).
_HALF = re.compile(
    r"(?:\bfy\s?'?(?P<fy>\d{2}(?:\d{2})?)\s+)?"
    r"\b(?:h(?P<h1>[12])|(?P<ord>first|second|1st|2nd)\s+half)(?:\s*(?:of|,)?\s*(?:fy\s?)?"
    r"(?:'(?P<yy>\d{2})|(?P<yyyy>\d{4})|(?P<next>next|the coming|the following)\s+year))?\b"
)
_AFTER_NEXT_YEAR = re.compile(r"next year\W{0,3}$")
_MONTH_ONLY = re.compile(
    r"(?P<lead>\b(?:in|for|during|over|throughout|through|across|(?:the )?month of|all of|all|"
    r"(?:this )?coming)"  # "run it again this coming March" (ma50 of unseen33)
    r"\s+)?"
    # Not a point in a month: "we're restocking mid-Jan" (oa04 of unseen31 read January).
    rf"(?<!mid-)(?<!mid )\b(?P<mon>{_MON})\b\.?(?!\s*[0-3]?\d(?:st|nd|rd|th)?\b)"
    rf"(?:\s+(?P<y>\d{{4}}|'\d\d\b))?"  # "march '27" (yr16 of unseen62 read no flight)
)
# "February through April 2027", "from Jan to Mar": whole months, the first to the last.
# Also a list of three or more months: "February, March and April 2027" (y16 of unseen5 was
# read as February; "feb, mar, apr 2027", w44 of unseen8, as April), and two months in a row:
# "January and February" (not "May and July").
_MONTH_RANGE = re.compile(
    rf"(?:\bfrom\s+)?\b(?P<m1>{_MON})\b\.?(?:\s+(?P<y1>\d{{4}}))?\s*"
    rf"(?P<sep>->|→|-|to|through|thru|until|till|(?:\s*,\s*{_MON}\b\.?)+\s*(?:,?\s*(?:and|&)|,)|and|&|\+)\s*"
    rf"(?:the\s+end\s+of\s+)?"
    rf"\b(?P<m2>{_MON})\b\.?(?!\s*[0-3]?\d(?:st|nd|rd|th)?\b)(?:\s+(?P<y2>\d{{4}}))?"
    # "apr-may 27" (u17 of unseen7, read as April): two month words joined by a hyphen and a
    # year of two digits, where a day would need a day on the first month too.
    rf"|\b(?P<m3>{_MON})-(?P<m4>{_MON})\s+'?(?P<y4>2[5-9]|3\d)\b(?![.,/:]?\d|,?\s*'?\d\d)"
)
# "the first two weeks of January" (number words are digits by now): from the 1st.
# A whole year: "over calendar 2027", "2027 (full year)", "all of 2027" (w27 and w53 of
# unseen8 had no flight), "whole year 2027" (i30 of unseen25, found by `year_budget_note`).
# The weakest reading: "for 2027, Q1 only" is Q1.
_WHOLE_YEAR = re.compile(
    r"\b(?:(?:calendar(?:\s+year)?|(?:full|whole)[\s-]year|all\s+of|the\s+whole\s+of|"
    r"throughout|for|in|during|over)\s+(?:calendar\s+)?(?P<y1>20\d\d)\b"
    rf"(?!\s*(?:-|to|through|thru)\s*(?:\d|{_MON}\b))"
    r"|\b(?P<y2>20\d\d)\s*\(?\s*(?:full[\s-]year|calendar\s+year|whole\s+year|all\s+year)\b"
    # "$4M for the year (2027)" (d35 of unseen21).
    r"|\bthe\s+year\s*\(\s*(?P<y3>20\d\d)\s*\))"
)
_FIRST_OF_MONTH = re.compile(
    rf"\bfirst\s+(?P<n>\d+)\s+(?P<unit>weeks?|days?)\s+(?:of|in)\s+(?P<mon>{_MON})\b\.?"
    rf"(?:\s+(?P<y>\d{{4}}))?"
)
_RELATIVE = re.compile(rf"\b(?:next|coming|following|upcoming)\s+{_DURATION}\b")
_NEXT_PERIOD = re.compile(
    r"\b(?P<which>next|this|coming|current)\s+(?P<period>month|quarter|qtr|year)\b"
)
# "This year", said against last year, is the year being planned, not the rest of this one (la05
# and oa12 of unseen30/31 read December 6-31 as the flight).
_LAST_YEAR = re.compile(r"\blast (?:year|yr)\b|\bly\b")
_NOW_UNTIL = re.compile(
    r"\b(?:between (?:now|today) and|(?:from |starting )?(?:now|today) (?:until|till|to|through"
    r"|thru)"
    # "starting tomorrow thru Dec 31" (j21 of unseen26 read no start).
    r"|(?:(?:starting|from|beginning)\s+)?(?P<tomorrow>tomorrow)\s+(?:until|till|to|through|thru))"
    r"\s+(?:the\s+)?(?<![\w/$.-])"
    + _date_alts("a")
    + r"(?![\w/])"
)
_MONTH_END = rf"(?:the\s+)?end\s+of\s+(?P<mon>{_MON})\b\.?(?:,?\s+(?P<y>\d{{4}}))?"
# A date to the end of a month: "Jan 1 through the end of June".
_TO_MONTH_END = re.compile(
    r"(?<![\w/$.-])" + _date_alts("a") + rf"\s*(?:-|to|through|thru|until|till)\s*{_MONTH_END}"
)
# "Launch Jan 1 and run through end of June" (l21 of unseen27 read no end).
_END_OF_MONTH = re.compile(rf"\b(?:ending|ends?|until|through|thru|till|by)\s+{_MONTH_END}")
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


def month_end(y: int, m: int) -> date:
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
    y = int(raw.lstrip("'"))
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
    return start, month_end(year, 3 * q)


@dataclass
class Flight:
    """One flight the text states, and the span it was read from."""

    start: date | None
    end: date | None
    priority: int  # higher wins: explicit range > start + length > quarter/month > relative
    span: tuple[int, int]
    note: str = ""


class _Claims:
    """Spans already read as a flight: a later, weaker reading may not reuse them."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []

    def free(self, span: tuple[int, int]) -> bool:
        return not any(s < span[1] and span[0] < e for s, e in self.spans)

    def add(self, span: tuple[int, int]) -> None:
        self.spans.append(span)


def read_flight(masked: str, today: date) -> tuple[list[Flight], list[str]]:
    """-> (every flight the text states, in reading order; warnings)."""
    claims = _Claims()
    flights = _ranges(masked, today, claims)
    flights += _start_and_end_dates(masked, today, claims)
    flights += _periods(masked, today, claims)
    flights += _relative_periods(masked, today, claims)
    warnings: list[str] = []
    if not flights:
        length = re.search(rf"\b(?:for|over|run(?:ning)?(?: for)?)\s+(?:a\s+)?{_DURATION}", masked)
        if length:
            warnings.append(
                f"the brief gives a flight length ({length.group('n')} {length.group('unit')}) "
                "but no start date; flight dates left open"
            )
    return flights, warnings


def _ranges(masked: str, today: date, claims: _Claims) -> list[Flight]:
    """Explicit ranges: two dates, days of one month ("March 3-17"), "now until <date>"."""
    flights: list[Flight] = []
    for m in _RANGE.finditer(masked):
        a, b = _date_parts(m, "a"), _date_parts(m, "b")
        if a and b and (resolved := _resolve_range(a, b, today)):
            flights.append(Flight(*resolved, 5, m.span()))
            claims.add(m.span())
    for m in _TO_MONTH_END.finditer(masked):
        if claims.free(m.span()) and (parts := _date_parts(m, "a")):
            y, mo, d = parts
            with suppress(ValueError):
                start = date(y, mo, d) if y else _next_on_or_after(today, mo, d)
                mo2, y2 = _MONTHS[m.group("mon")], _year(m.group("y"))
                year = y2 or (start.year if mo2 >= start.month else start.year + 1)
                flights.append(Flight(start, month_end(year, mo2), 5, m.span()))
                claims.add(m.span())
    for m in _SAME_MONTH_RANGE.finditer(masked):
        if not claims.free(m.span()):
            continue
        mo, d1, d2, y = (
            _MONTHS[m.group("mon")],
            int(m.group("d1")),
            int(m.group("d2")),
            m.group("y"),
        )
        resolved = _resolve_range((_year(y), mo, d1), (_year(y), mo, d2), today)
        if resolved:
            flights.append(Flight(*resolved, 5, m.span()))
            claims.add(m.span())

    for m in _NOW_UNTIL.finditer(masked):
        parts = _date_parts(m, "a")
        if not claims.free(m.span()) or not parts:
            continue
        y, mo, d = parts
        try:
            end = date(y, mo, d) if y else _next_on_or_after(today, mo, d)
        except ValueError:
            continue
        start = today + timedelta(days=1) if m.group("tomorrow") else _from_now(today, end)
        flights.append(Flight(start, end, 5, m.span()))
        claims.add(m.span())
    return flights


def _start_and_end_dates(masked: str, today: date, claims: _Claims) -> list[Flight]:
    """A start date with a length ("for 8 weeks starting January 11, 2027", "a 4-week flight
    starting 2027-03-01"), a start or an end date alone."""
    flights: list[Flight] = []
    starts: list[tuple[date, tuple[int, int]]] = []
    ends: list[tuple[date, tuple[int, int]]] = []
    for m in _DATE1.finditer(masked):
        parts = _date_parts(m, "a")
        if not claims.free(m.span()) or not parts:
            continue
        y, mo, d = parts
        lead = masked[max(0, m.start() - 25) : m.start()]
        # "start | 2027-04-01" / "end: 2027-05-15": a table's or a form's field and its value
        # (y07 of unseen5: no flight was offered).
        # "push the start to Feb 1", "end date is Feb 28" (yn08, yn18 of unseen58); "start is
        # pushed to Feb 15, end stays Mar 31" (yu17 of unseen65 kept Feb 1)
        # "Start ............ 2027-05-01" in a form (yx16 of unseen68 read no flight)
        to = (r"(?:\s*[:|=]\s*|\s*\.{2,}\s*|\s+)(?:(?:is|to|now|stays|remains)\s+)?"
              r"(?:(?:pushed|moved|shifted|bumped|slid)(?: back| out)?\s+to\s+)?"
              r"(?:on\s+)?(?:the\s+)?$")  # fmt: skip
        is_start = re.search(rf"{_START_WORDS}{to}", lead)
        is_end = re.search(rf"{_END_WORDS}{to}", lead) and not _DEADLINE.search(lead)
        if not (is_start or is_end):
            continue
        try:
            when = date(y, mo, d) if y else _next_on_or_after(today, mo, d)
        except ValueError:
            continue
        claims.add(m.span())
        if is_end:
            ends.append((when, m.span()))
            continue
        sentence_start = masked.rfind(". ", 0, m.start()) + 1
        sentence_end = masked.find(". ", m.end())
        sentence = masked[sentence_start : sentence_end if sentence_end >= 0 else len(masked)]
        length = re.search(rf"(?<!next )(?<!coming ){_DURATION}", sentence) or (
            _DURATION_CELL.search(sentence))  # fmt: skip
        if length:
            end = _span_end(when, int(length.group("n")), length.group("unit"))
            flights.append(Flight(when, end, 4, m.span()))
        else:
            starts.append((when, m.span()))
    for m in _END_OF_MONTH.finditer(masked):
        if claims.free(m.span()):
            mo, year = _MONTHS[m.group("mon")], _year(m.group("y"))
            if year is None:
                year = today.year if month_end(today.year, mo) >= today else today.year + 1
            ends.append((month_end(year, mo), m.span()))
            claims.add(m.span())
    if starts and ends:
        flights.append(Flight(starts[0][0], ends[0][0], 4, starts[0][1]))
    else:
        flights += [Flight(when, None, 3, span) for when, span in starts]
        flights += [Flight(None, when, 3, span) for when, span in ends]
    return flights


def _periods(masked: str, today: date, claims: _Claims) -> list[Flight]:
    """Named periods: quarters ("Q3 2027"), halves ("H1"), months ("in March", "March 2027")."""
    flights = _month_ranges(masked, today, claims)
    for m in _QUARTER.finditer(masked):
        if not claims.free(m.span()):
            continue
        if re.search(r"\b(?:last|previous|prior)\s+$", masked[max(0, m.start() - 12) : m.start()]):
            continue
        q = int(m.group("q1") or m.group("q2") or _ORDINALS[m.group("ord")])
        year = _year(m.group("yyyy") or m.group("yy") or m.group("yy2"))
        if year is None:
            year = today.year if _quarter_dates(q, today.year)[1] >= today else today.year + 1
            # "we ran tests all of Q4" on December 5th: the quarter under way, told in the
            # past, is no flight (ta02 of unseen39 planned October to December).
            if _quarter_dates(q, year)[0] <= today and told_in_the_past(masked, m.start()):
                continue
        flights.append(Flight(*_quarter_dates(q, year), 2, m.span()))
        claims.add(m.span())
    for m in _HALF.finditer(masked):
        year = _year(m.group("yyyy") or m.group("yy") or m.group("fy"))
        # "... next year, first half" (a24 of unseen18: read as the whole year).
        if m.group("next") or _AFTER_NEXT_YEAR.search(masked[max(0, m.start() - 14) : m.start()]):
            year = today.year + 1
        if not claims.free(m.span()) or (year is None and not m.group("h1")):
            continue
        h = int(m.group("h1") or _ORDINALS[m.group("ord")])
        if year is None:
            # "H2" on December 5th is next year's: this year's is five-sixths gone (m11 and
            # n33 of unseen16/17 read H2 2026). This year's while no more than half has passed.
            first, end = date(today.year, 6 * h - 5, 1), month_end(today.year, 6 * h)
            year = today.year if first + (end - first) / 2 >= today else today.year + 1
        flights.append(Flight(date(year, 6 * h - 5, 1), month_end(year, 6 * h), 2, m.span()))
        claims.add(m.span())
    for m in _WHOLE_YEAR.finditer(masked):
        year = int(m.group("y1") or m.group("y2") or m.group("y3"))
        if claims.free(m.span()) and today.year <= year <= today.year + 2:
            first = date(year, 1, 1)
            start = _from_now(today, date(year, 12, 31)) if first <= today else first
            flights.append(Flight(start, date(year, 12, 31), 0, m.span()))
            claims.add(m.span())
    for m in _MONTH_ONLY.finditer(masked):
        year = _year(m.group("y"))
        # "in March", "March 2027", or a month that is a field of its own: "gamma only, feb.",
        # "flight: April", "- jun." (nine briefs of unseen16/17 read no flight); a month word
        # that is nothing else anywhere ("gamma pharmacy 300k february maximize roas", "jan
        # campaign": a23 and b13 of unseen18/19), but "may" and "march" ("we may").
        named = year or m.group("lead") or m.group("mon") not in ("may", "march", "mar")
        # "March flight" (qa07 of unseen36 read no flight): no verb "march" is followed by it.
        named = named or bool(
            FLIGHT_WORD_AFTER.match(masked, m.end())
            and not SUBJECT_BEFORE.search(masked, 0, m.start())  # "we may campaign"
        )
        if not claims.free(m.span()) or not (named or stands_alone(masked, m)):
            continue
        if EVENT_BEFORE.search(masked, 0, m.start()) and not m.group("y"):
            continue
        mo = _MONTHS[m.group("mon")]
        if year is None:
            year = today.year if month_end(today.year, mo) >= today else today.year + 1
        first = date(year, mo, 1)
        start = _from_now(today, month_end(year, mo)) if first <= today else first
        flights.append(Flight(start, month_end(year, mo), 1, m.span()))
        claims.add(m.span())
    return flights


def _month_ranges(masked: str, today: date, claims: _Claims) -> list[Flight]:
    """Ranges of whole months: "February through April 2027" is Feb 1 to Apr 30, 2027 (read
    as April alone before: the month reading took the last month word only); and the start of
    a month: "the first 2 weeks of January" is Jan 1 to Jan 14."""
    flights: list[Flight] = []
    for m in _FIRST_OF_MONTH.finditer(masked):
        if not claims.free(m.span()):
            continue
        mo, year = _MONTHS[m.group("mon")], _year(m.group("y"))
        if year is None:
            year = today.year if date(today.year, mo, 1) > today else today.year + 1
        start = date(year, mo, 1)
        flights.append(Flight(start, _span_end(start, int(m.group("n")), m.group("unit")), 2,
                              m.span()))  # fmt: skip
        claims.add(m.span())
    for m in _MONTH_RANGE.finditer(masked):
        if not claims.free(m.span()):
            continue
        mo1 = _MONTHS[m.group("m1") or m.group("m3")]
        mo2 = _MONTHS[m.group("m2") or m.group("m4")]
        if m.group("sep") in ("and", "&") and mo2 != mo1 % 12 + 1:
            continue
        y1, y2 = _year(m.group("y1")), _year(m.group("y2"))
        y2 = 2000 + int(m.group("y4")) if m.group("y4") else y2
        if y1 is None and y2 is not None:
            y1 = y2 if mo1 <= mo2 else y2 - 1
        if y1 is None:
            y1 = today.year if month_end(today.year, mo1) >= today else today.year + 1
        if y2 is None:
            y2 = y1 if mo2 >= mo1 else y1 + 1
        first = date(y1, mo1, 1)
        start = _from_now(today, month_end(y2, mo2)) if first <= today else first
        flights.append(Flight(start, month_end(y2, mo2), 2, m.span()))
        claims.add(m.span())
    return flights


def _relative_periods(masked: str, today: date, claims: _Claims) -> list[Flight]:
    """Periods from today: "next 4 weeks", "this quarter", "next year", "rest of the year"."""
    flights: list[Flight] = []
    tomorrow = today + timedelta(days=1)
    for m in _RELATIVE.finditer(masked):
        if claims.free(m.span()):
            n, unit = int(m.group("n")), m.group("unit")
            flights.append(Flight(tomorrow, _span_end(tomorrow, n, unit), 0, m.span()))
            claims.add(m.span())
    for m in _NEXT_PERIOD.finditer(masked):
        if not claims.free(m.span()):
            continue
        which, period = m.group("which"), m.group("period")
        if period == "year" and which in ("this", "current") and _LAST_YEAR.search(masked):
            continue  # "Last year we spent $1.4M ... This year the budget is $1.6M" (oa12)
        upcoming = which in ("next", "coming")
        if period == "month":
            first = _add_months(today.replace(day=1), 1 if upcoming else 0)
            end = month_end(first.year, first.month)
        elif period in ("quarter", "qtr"):
            q = (today.month - 1) // 3 + 1 + (1 if upcoming else 0)
            first, end = _quarter_dates((q - 1) % 4 + 1, today.year + (q - 1) // 4)
        else:
            year = today.year + (1 if upcoming else 0)
            first, end = date(year, 1, 1), date(year, 12, 31)
        flights.append(Flight(first if upcoming else _from_now(today, end), end, 0, m.span()))
        claims.add(m.span())
    for m in _REST_OF_YEAR.finditer(masked):
        if claims.free(m.span()):
            end = date(today.year, 12, 31)
            flights.append(Flight(_from_now(today, end), end, 0, m.span()))
            claims.add(m.span())
    return flights


def flight_periods(start: date, end: date, unit: str | None) -> float:
    """How many weeks, days, months or quarters (`unit`) the flight from `start` to `end`
    lasts; whole calendar months count as such."""
    days = (end - start).days + 1
    if unit == "week":
        return days / 7
    if unit == "day":
        return float(days)
    if start.day == 1 and end == month_end(end.year, end.month):
        months = float((end.year - start.year) * 12 + end.month - start.month + 1)
    else:
        months = days / (365.25 / 12)
    return months / 3 if unit == "quarter" else months
