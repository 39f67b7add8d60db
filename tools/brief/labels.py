"""Training labels for the planning adapter: the span answer whose conversion gives a brief's
gold fields (`gold_spans`), written as the adapter is to answer (`brief_answer`). Training and
evaluation read these; serving never sees gold values (`tools.brief.spans` converts the
model's spans at serving time)."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from typing import Any

from tools.brief.schema import BRIEF_FIELDS, DEFAULT_OBJECTIVE, DEFAULT_RESERVE, field_matches
from tools.brief.spans import SPAN_KEYS, Candidates, SpanError, candidates, convert


def brief_answer(text: str, brand: str, today: date, gold: dict[str, Any]) -> str | None:
    """The model's answer for a brief with gold fields (JSON-ready): the spans that state them,
    compact JSON in the schema's key order; None when the brief's candidates cannot give them."""
    answer = gold_spans(gold, candidates(text, brand, today))
    return None if answer is None else json.dumps(answer, separators=(",", ":"))


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _near(text: str, span: str, cue: str) -> bool:
    at = text.lower().find(span.lower())
    return at >= 0 and bool(re.search(cue, text.lower()[max(0, at - 40) : at + len(span) + 25]))


_OBJ_CUE = r"maxim|optimi|goal|objective|focus|aim|priority|first|want|kpi|target|driv|grow|most"
_FLOOR_CUE = r"roas|return|floor|minimum|at least|back per"


def _first(options: dict[str, Any], gold: Any, text: str = "", cue: str = "") -> str | None:
    hits = [k for k, v in options.items() if v == gold or (isinstance(v, float) and _same(v, gold))]
    cued = [k for k in hits if cue and _near(text, k, cue)]
    return (cued or hits or [None])[0]


def gold_spans(gold: dict[str, Any], cands: Candidates) -> dict[str, Any] | None:
    """The span answer whose conversion gives `gold` (BRIEF_FIELDS, JSON-ready), or None when
    some field cannot be read from this brief's candidates."""
    g = dict(gold)
    start = date.fromisoformat(g["flight_start"]) if g["flight_start"] else None
    end = date.fromisoformat(g["flight_end"]) if g["flight_end"] else None
    answer: dict[str, Any] = dict.fromkeys(SPAN_KEYS)
    if start or end:
        answer["flight"] = _first(cands.flights, (start, end))
        if answer["flight"] is None:
            return None
    answer["budget"] = _first(
        {k: m.value for k, m in cands.money.items()}, float(g["total_budget"])
    )
    if answer["budget"] is None:  # a rate over the flight
        for k, m in cands.money.items():
            trial = {**answer, "budget": k}
            if m.rate_unit and _try(trial, cands, "total_budget", g["total_budget"]):
                answer["budget"] = k
        if answer["budget"] is None:
            return None
    answer["retailers"] = _gold_retailers(g["retailers"], cands)
    if g["objective"] != DEFAULT_OBJECTIVE or g["objective"] in cands.objectives.values():
        answer["objective"] = _first(cands.objectives, g["objective"], cands.text, _OBJ_CUE)
    if g["roas_floor"] is not None:
        answer["floor"] = _first(cands.floors, float(g["roas_floor"]), cands.text, _FLOOR_CUE)
    readable, answer["reserve"] = _gold_reserve(float(g["experiment_reserve"]), answer, cands)
    if not readable:
        return None
    answer["stock"] = _first(cands.stock, bool(g["exclude_oos"]))
    try:
        got = convert(answer, cands)
    except SpanError:
        return None
    return answer if _matches(got, g, cands.brand) else None


def _try(answer: dict[str, Any], cands: Candidates, name: str, gold: Any) -> bool:
    filled = {k: answer.get(k) for k in SPAN_KEYS}
    filled["retailers"] = filled["retailers"] or {}
    try:
        return _same(convert(filled, cands)[name], float(gold))
    except SpanError:
        return False


def _gold_retailers(gold: list[str], cands: Candidates) -> dict[str, str]:
    """Each mention's role: planned on when every gold retailer is named (or gold is every
    retailer), else excluded ("all but Delta": Delta is excluded, the rest of the brand's
    retailers remain). `gold_spans` drops a brief whose roles cannot give the gold list."""
    named = set(cands.mentions.values())
    listed = not gold or set(gold) <= named
    return {
        m: "include" if listed and (not gold or rid in gold) else "exclude"
        for m, rid in cands.mentions.items()
    }


def _gold_reserve(
    gold: float, answer: dict[str, Any], cands: Candidates
) -> tuple[bool, str | None]:
    """(whether the brief's spans can give the reserve, the span; None: the default)."""
    span = _first(cands.reserves, gold)
    if span is None:
        budget = cands.money.get(answer["budget"] or "")
        if budget is not None:
            shares = {
                k: m.value / budget.value for k, m in cands.money.items() if k != answer["budget"]
            }
            span = _first(shares, gold)
    return span is not None or _same(gold, DEFAULT_RESERVE), span


def _matches(got: dict[str, Any], gold: dict[str, Any], brand: str) -> bool:
    """Whether the spans' conversion gives the gold of every field the model answers (a later
    set's gold also gives caps, minimums and splits, which the rules read: not compared)."""
    values = {
        **got,
        "flight_start": got["flight_start"].isoformat() if got["flight_start"] else None,
        "flight_end": got["flight_end"].isoformat() if got["flight_end"] else None,
    }
    return all(field_matches(k, values[k], gold[k], brand) for k in BRIEF_FIELDS)
