"""A budget phased by month or by quarter: "$100k in April, $150k each in May and June",
"Nov: $250K, Dec: $350K", a pasted table's "Jan | $100k" rows. The budget is the phases added
up; each phase alone is no budget. Before, the rules and the model each planned one phase
(yw27 of unseen67, yv29 of unseen66: $100k of $400k, $350k of $600k)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tools.brief.rules.flight import MONTH_RE, Flight, month_end
from tools.brief.rules.money import Money
from tools.brief.rules.text import usd

_LABEL = rf"(?:{MONTH_RE.pattern}|q[1-4])"
_LABELS = rf"{_LABEL}\b\.?(?:\s*(?:,|and|&|\+)\s*{_LABEL}\b\.?)*"
# "$100k in April", "$150k each in May and June", "$250K for November"
_AFTER = re.compile(
    rf"\s*(?P<each>(?:each|apiece|a month|per month)\s+)?(?:in|for|during)\s+"
    rf"(?:the month of\s+)?(?P<labels>{_LABELS})"
)
# "April: $100k", "Jan | $100k", "nov - $250k", "Q1 2027: $200k"
_BEFORE = re.compile(rf"\b(?P<labels>{_LABEL})\b\.?(?:\s+\d{{4}})?\s*[:|=-]\s*$")


@dataclass(frozen=True)
class Phase:
    money: Money
    labels: tuple[str, ...]  # its months ("may", "jun") or quarters ("q1"), as written
    periods: int  # how many of its months it is for ("$150k each in May and June": 2)
    end: int  # where its words end (the months after it, or the amount)

    @property
    def total(self) -> float:
        return self.money.value * self.periods


def read_phases(low: str, money: list[Money]) -> list[Phase]:
    """The amounts of a phased budget, in the brief's order: two or more, each for months (or
    quarters) of its own; [] when the brief phases nothing."""
    phases: list[Phase] = []
    seen: set[str] = set()
    for m in money:
        s, e = m.span
        after, before = _AFTER.match(low, e), _BEFORE.search(low, max(0, s - 20), s)
        hit = after or before
        # A month right beside the amount binds it, a retailer near it or not ("$350K in
        # December across all three of our retailers (Alpha Mart, ...)", "Mar | $80,000\nAlpha
        # and Delta"); "$500k on Alpha in Q1" has no month beside its amount.
        if m.kind != "budget" or hit is None:
            continue
        labels = tuple(dict.fromkeys(x[:3] for x in re.findall(_LABEL, hit.group("labels"))))
        if set(labels) & seen:
            return []  # a month twice: no phasing
        seen |= set(labels)
        periods = len(labels) if after and after.group("each") else 1
        end = after.end() if after else e
        phases.append(Phase(m, labels, periods, end - (low[end - 1] == ".")))
    return phases if len(phases) >= 2 else []


def phased_budget(low: str, money: list[Money]) -> tuple[float, str] | None:
    """(the budget, a note) where every amount the brief could plan is a phase; None where it
    phases nothing or also states a budget of its own ("$400k for Q2: $100k in April, ...")."""
    phases = read_phases(low, money)
    if not phases:
        return None
    parts = {id(p.money) for p in phases}
    if any(m.kind == "budget" and id(m) not in parts for m in money):
        return None
    total = sum(p.total for p in phases)
    return total, f"total budget {usd(total)}: the brief's amounts by month added up"


_MONTH_NUMBERS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip


def phased_flight(low: str, money: list[Money], today: date) -> Flight | None:
    """The flight a phased budget spans, from its first month's start to its last month's end,
    each month the next one of its name on or after the one before ("$250K in November and
    $350K in December", written in December 2026: November to December 2027). Read above the
    months it names alone (priority 3: a stated date range still wins)."""
    phases = read_phases(low, money)
    if not phases:
        return None
    seq: list[int] = []  # the months the phases cover, in the brief's order
    for label in (x for p in phases for x in p.labels):
        q = int(label[1]) if label.startswith("q") else 0
        seq += [3 * q - 2, 3 * q] if q else [_MONTH_NUMBERS[label]]
    year = today.year if month_end(today.year, seq[0]) >= today else today.year + 1
    y1, m1 = year, seq[0]
    for before, mo in zip(seq, seq[1:], strict=False):
        year += mo < before
    y2, m2 = year, seq[-1]
    return Flight(date(y1, m1, 1), month_end(y2, m2), 3, (phases[0].money.span[0], phases[-1].end))
