"""The model's candidates for a brief that revises an earlier request (`rules.thread`).

The model reads the whole thread, but each field but the retailers offers only the spans of
the part the rules take it from: yj05 of unseen54 had "Flight is March 2027" above a forwarded
"for Q1", and the model could choose either. Retailers are offered from the whole text, since
offered the reply's mentions alone, the model excluded every one of them in 2 of 24 briefs
whose grammar that changed (k12 of unseen15: "it's Delta Home, not Alpha Mart"); a retailer the
reply scratches ("scratch the Gamma part of the request below") may only be excluded wherever
the earlier request names it (yn05 of unseen58).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from tools.brief.rules.parse import rule_parse
from tools.brief.rules.thread import field_sources, split_thread

if TYPE_CHECKING:
    from tools.brief.spans import Candidates

# The candidates that carry each field (the flight's end goes with its start).
_CARRIED_BY = {
    "total_budget": ("money",),
    "objective": ("objectives",),
    "roas_floor": ("floors",),
    "experiment_reserve": ("reserves",),
    "flight_start": ("flights",),
    "exclude_oos": ("stock",),
}


def narrow_to_thread(
    out: Candidates, lex: Callable[[str, str, date], Candidates]
) -> Candidates:
    """`out` (the candidates of a whole brief, `lex`ed), narrowed where the brief is a reply
    above an earlier request; unchanged otherwise."""
    thread = split_thread(out.text)
    if thread is None:
        return out
    brand, today = out.brand, out.today
    parts = {"reply": lex(thread.reply, brand, today), "earlier": lex(thread.earlier, brand, today)}
    reply = rule_parse(thread.reply, brand, today)
    sources = field_sources(reply, rule_parse(thread.earlier, brand, today))
    for name, attrs in _CARRIED_BY.items():
        if part := parts.get(sources[name]):
            for attr in attrs:
                setattr(out, attr, getattr(part, attr))
    if (part := parts.get(sources["experiment_reserve"])) and part is not parts.get(
        sources["total_budget"]
    ):  # "$150k for tests" said in the other part; not its budget (yn21 of unseen58)
        for key, money in part.money.items():
            if money.kind == "reserve":
                out.money.setdefault(key, money)
    if sources["retailers"] == "both":
        for mention, rid in out.mentions.items():
            if rid in reply.retailers_excluded:
                out.excluded.add(mention)
                out.kept.discard(mention)
    return out
