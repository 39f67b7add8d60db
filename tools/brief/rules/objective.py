"""The objective: what the plan maximizes (incremental margin, incremental revenue or ROAS).

Terms are scored by the words around them: "maximize profit", "revenue is the goal" and
"ROAS-focused" state an objective; a bare "sales" or "ROAS" only when nothing stronger does,
and never the "ROAS" of a floor ("ROAS >= 3"). Of several stated objectives the first wins,
with a warning. A brief that names none gets `DEFAULT_OBJECTIVE`.
"""

from __future__ import annotations

import re

from tools.brief.rules.text import CORRECTION, about_the_past, clause_of, clause_spans

OBJECTIVE_TERMS: dict[str, str] = {
    "incremental_margin": (
        r"incremental (?:gross )?margin|i-?margin|gross profit|margins?|profits?|profitability|"
        r"profitable|contribution|bottom[- ]line|earnings"
    ),
    "incremental_revenue": (
        r"incremental (?:revenue|sales)|revenue|revnue|rev|sales|top[- ]line|topline|gmv|volume|"
        r"units sold|dollar sales"
    ),
    "roas": (
        # "a plan that gets the most back per ad dollar" (za29 of unseen45 read no goal)
        # "800k alpha/delta, max eff" (yo10 of unseen59)
        r"i?roas|return on (?:ad|advertising) ?spend|return on spend|efficiency|efficient|eff|"
        r"(?:the )?most back (?:per|for (?:each|every)) (?:ad )?dollar|"
        r"bang for (?:the|our|your) buck|return (?:per|on every|for every|on each) (?:ad )?dollar|"
        # "We want to maximize return, but don't let ROAS drop below 2.5" (yu05 of unseen65
        # read no goal); only with a cue (`_CUED_ONLY`)
        r"returns?(?=\s*(?:[,.;!)]|$|\s(?:but|and|please|pls)\b))"
    ),
}
# Terms that state a goal only after a cue ("maximize return"): "a strong return." states none.
_CUED_ONLY = re.compile(r"returns?")
_OBJ_CUE_BEFORE = re.compile(
    r"\b(?:maximi[sz]e|maximi[sz]ing|max|optimi[sz]e|optimi[sz]ing|optimi[sz]ed|for|drive|driving|"
    r"grow|growing|boost|boosting|increase|increasing|focus(?:ed|ing)? on|prioriti[sz]e|"
    r"priority(?: is)?|goal(?: is)?|objective(?: is)?|kpi(?: is)?|aim(?:ing)? (?:for|at)|go for|"
    r"target is|"  # "Our target is ROAS — keep it at or above 4.0" (ya49 of unseen44)
    r"want|wants|care (?:most )?about|best|highest|most|more|maximum|biggest|growth in|"
    r"(?:we're|we are) after)"
    r"(?:\s+(?:the|our|total|overall|possible|in|of|for|on|\w+al))*\s*[:=]?\s*$"
)
_OBJ_CUE_AFTER = re.compile(
    r"^(?:[- ]?(?:focused|first|driven|led|maximi[sz]ing|maximi[sz]ation|optimi[sz]ation|"
    r"optimi[sz]ed|centric|oriented)\b|"
    r"\s+(?:is|as)\s+(?:the|our)\s+(?:goal|objective|priority|kpi|aim|focus)|\s+(?:goal|"
    r"objective|focus|maximi[sz]ation|growth)\b|\s+(?:is what matters|matters most|is king)\b)"
)
# A goal turned down: "Not looking for pure ROAS - profit is what matters" (yn11 of unseen58
# maximized ROAS), "margin rather than revenue".
_NOT_BEFORE = re.compile(
    r"\b(?:(?:not|no longer)\s+(?:looking for|about|after|chasing|optimi[sz]ing for|going for|"
    r"focused on)|rather than|instead of)\s+(?:pure\s+|just\s+|only\s+)?$"
)
# "Sales" as a noun's modifier, or the sales an amount reports, states no goal: "we'll confirm
# dates after the sales meeting", "we're forecasting $4M in sales at Delta" (yw16 and yw28 of
# unseen67: the model chose them over "Optimize for ROAS").
_NOT_A_GOAL_AFTER = re.compile(
    r"\s+(?:meetings?|teams?|calls?|reps?|forecasts?|decks?|org|leads?|kickoff|sync|data"
    r"|numbers|figures|calendar|cycle|channel|force)\b"
)
_AMOUNT_OF = re.compile(r"\d\s*(?:k|m|mm|million|thousand|bn)?\s+(?:in|of)\s+$")
# A want is no cue for a floor's "ROAS": "Want ROAS >= 3.5 and we're after revenue growth" (o11
# of unseen28 read ROAS as the objective).
_WANT_CUE = re.compile(r"\bwants?\s*$")

# A term joined to its cue: "ROAS-optimized", "Revenue-focused" (c23 and d36 of unseen20/21
# read no objective); other hyphenated words ("sales-tax") are no mention.
# "ROAS-maximizing plan pls" (qa12 of unseen36 read no objective).
_HYPHEN_CUE = (
    r"(?:focused|first|driven|led|optimi[sz]ed|centric|oriented|maximi[sz](?:ing|ed|ation))\b"
)


def objective_mentions(
    masked: str, floor_kw_spans: list[tuple[int, int]]
) -> list[tuple[int, int, int, str]]:
    """(score, start, end, objective) of every term that may state the objective, in text
    order: score 2 with a cue ("maximize profit", "ROAS-focused"), 0 bare. The "ROAS" of a
    floor ("ROAS >= 3", `floor_kw_spans`) is no mention unless a cue makes it one, nor a bare
    term of a clause that reports the past."""
    hits: list[tuple[int, int, int, str]] = []
    clauses = clause_spans(masked)
    for objective, pattern in OBJECTIVE_TERMS.items():
        for m in re.finditer(rf"(?<![\w-])(?:{pattern})(?!\w|-(?!{_HYPHEN_CUE}))", masked):
            before = masked[max(0, m.start() - 45) : m.start()]
            after = masked[m.end() : m.end() + 30]
            if _NOT_BEFORE.search(before):
                continue
            score = 2 if _OBJ_CUE_BEFORE.search(before) or _OBJ_CUE_AFTER.match(after) else 0
            if not score and _CUED_ONLY.fullmatch(m.group()):
                continue
            if _NOT_A_GOAL_AFTER.match(after) or _AMOUNT_OF.search(before):
                continue
            in_floor = any(s <= m.start() < e for s, e in floor_kw_spans)
            if in_floor and (not score or _WANT_CUE.search(before)):
                continue
            # "Last year ROAS came in around 3.4" (m05 of unseen16) reports, it asks nothing.
            if not score and about_the_past(masked[slice(*clause_of(m.start(), clauses))], None):
                continue
            hits.append((score, m.start(), m.end(), objective))
    return sorted(hits, key=lambda h: h[1])


def corrected_objective(
    masked: str, hits: list[tuple[int, int, int, str]]
) -> tuple[int, int, int, str] | None:
    """The mention that corrects the objective, when the brief names more than one: "Update
    from the brand: switch the objective to incremental margin" (u46 of unseen7), "we're
    switching the goal to incremental margin" (yw17 of unseen67). Only a change of objective is
    a correction: "budget 600k -> actually bump to 650k. Gamma Pharmacy. revenue." names one
    (ua39 of unseen40)."""
    corrected = [h for h in hits if CORRECTION.search(masked[max(0, h[1] - 40) : h[1]])]
    return corrected[-1] if corrected and len({h[3] for h in hits}) > 1 else None


def read_objective(
    masked: str, floor_kw_spans: list[tuple[int, int]]
) -> tuple[str | None, list[str]]:
    """-> (the objective when the text states one, warnings)."""
    hits = objective_mentions(masked, floor_kw_spans)
    if not hits:
        return None, []
    if corrected := corrected_objective(masked, hits):
        return corrected[3], [f"the brief corrects its objective; used {corrected[3]}"]
    best = max(h[0] for h in hits)
    ranked = [h for h in hits if h[0] == best]
    chosen = ranked[0][3]
    others = sorted({h[3] for h in ranked} - {chosen})
    warnings = []
    if best and others:
        warnings.append(
            f"the brief names several objectives ({', '.join([chosen, *others])}); "
            f"used {chosen}, the first one"
        )
    return chosen, warnings
