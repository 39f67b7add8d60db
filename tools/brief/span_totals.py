"""Totals the brief states in parts, offered to the model as one span that converts to the
total: what is left of a pot once money committed elsewhere is taken off, and a budget phased
by month. The parts alone are not offered."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tools.brief.rules.budget import left_over
from tools.brief.rules.money import Money
from tools.brief.rules.phasing import read_phases
from tools.brief.span_lexicon import span_text as _span

if TYPE_CHECKING:
    from tools.brief.spans import Amount


def left_to_plan(money: dict[str, Amount], clean: str, low: str, read: list[Money]) -> None:
    """Where the brief plans what is left of a total once money spent or committed elsewhere
    is taken off (`budget.left_over`: "$2.5 mil, but $600k of it is already committed to the
    TV tie-in, so plan the remainder"), the total's span converts to what is left and the
    amounts taken off are not offered. Before, no span converted to the $1.9M to plan, so no
    training row taught it, and the model chose the $600k (yu05 and yu18 of unseen65)."""
    parts = left_over(low, read)
    if parts is None:
        return
    total, gone = parts
    key = _span(clean, *total.span)
    if key not in money:
        return
    money[key] = replace(money[key], value=total.value - sum(m.value for m in gone))
    for m in gone:
        money.pop(_span(clean, *m.span), None)


def phased(money: dict[str, Amount], clean: str, low: str, read: list[Money]) -> None:
    """A budget phased by month ("$100k in April, $150k each in May and June") is offered as
    one span, from its first amount to its last month, converting to the phases added up
    (`phasing.read_phases`); no single phase is offered. Before, no span gave the $400k."""
    phases = read_phases(low, read)
    keys = [_span(clean, *p.money.span) for p in phases]
    if not phases or any(k not in money for k in keys):
        return
    first = money[keys[0]]
    for key in keys:  # "$600k in Q1, $600k in Q2": one key for both
        money.pop(key, None)
    key = _span(clean, phases[0].money.span[0], phases[-1].end)
    money[key] = replace(first, value=sum(p.total for p in phases), rate_unit=None, kind="budget")
