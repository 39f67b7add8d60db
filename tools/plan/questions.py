"""The questions the planning graph asks a person (confirm a brief, relax an infeasible one,
approve a plan) as LangChain human-in-the-loop requests, the shape of langchain v1's
`HumanInTheLoopMiddleware`, so Studio and LangChain's agent chat UI show them with their own
buttons:

    request = hitl_request(summary, allowed=("edit", "reject"))
    # {"action_requests": [{"name": "relax_constraints", "args": {**summary, "plan_version",
    #                       "error"}, "description": "## This brief cannot be met ..."}],
    #  "review_configs": [{"action_name": "relax_constraints",
    #                      "allowed_decisions": ["edit", "reject"], "args_schema": {...}}]}
    question_of(request)     # the args back: the summary, its plan_version and error

`args` is the full summary (its `kind`: confirm_brief | infeasible | approval) plus
`plan_version`, a digest of exactly that summary, which an answer names to say which question
it answers, and `error`, why the last answer could not be used (a re-asked question keeps its
version). `description` is Markdown for a marketing manager; `args_schema` is what an edit may
change (`tools.plan.review.Changes`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from tools.catalog import current
from tools.plan.facts import money
from tools.plan.labels import (
    GOALS,
    agree,
    and_list,
    confidence_text,
    counted,
    held_words,
    note_words,
    percent,
    shown_confidence,
    with_default,
)
from tools.plan.rationale import TITLES
from tools.plan.review import edit_schema

# Question kind -> the name of the action it asks about.
ACTION_NAMES: dict[str, str] = {
    "confirm_brief": "confirm_brief",
    "infeasible": "relax_constraints",
    "approval": "approve_plan",
}
# Not part of what was shown: the version itself, and the error of a re-asked question.
UNVERSIONED = ("plan_version", "error")
CHOICES = {
    "approve": "**approve** it as it stands",
    "edit": "**edit** the budget, retailers, goal, minimum return on ad spend, experiment "
    "share, flight dates, retailer caps or excluded products",
    "reject": "**reject** it with a reason",
}


def plan_version(summary: dict[str, Any]) -> str:
    """A short digest of what a question shows (its summary, without version and error)."""
    shown = {k: v for k, v in summary.items() if k not in UNVERSIONED}
    text = json.dumps(shown, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hitl_request(
    summary: dict[str, Any], allowed: tuple[str, ...] | list[str], *, error: str | None = None
) -> dict[str, Any]:
    """The question as a LangChain HITL request: one action request carrying the summary,
    its version and the error, described in Markdown, with the decisions `allowed`."""
    name = ACTION_NAMES[summary["kind"]]
    args = {**summary, "plan_version": plan_version(summary), "error": error}
    return {
        "action_requests": [
            {"name": name, "args": args, "description": describe(args, tuple(allowed))}
        ],
        "review_configs": [
            {"action_name": name, "allowed_decisions": list(allowed), "args_schema": edit_schema()}
        ],
    }


def _request(value: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if not isinstance(value, dict):
        return None
    requests, configs = value.get("action_requests"), value.get("review_configs")
    if not (isinstance(requests, list) and requests and isinstance(requests[0], dict)):
        return None
    config = configs[0] if isinstance(configs, list) and configs else {}
    return requests[0], config if isinstance(config, dict) else {}


def question_of(value: Any) -> dict[str, Any] | None:
    """The summary a question shows (the args of its action request, with `kind`,
    `plan_version` and `error`); an older checkpoint's question (the summary itself) as it
    is; None for anything else."""
    found = _request(value)
    if found is not None:
        args = found[0].get("args")
        return args if isinstance(args, dict) else None
    if isinstance(value, dict) and value.get("kind") in ACTION_NAMES:
        return value
    return None


def question_ref(value: Any) -> dict[str, Any]:
    """What names a question besides its interrupt id: its kind and plan version."""
    args = question_of(value) or {}
    version = args.get("plan_version") or (plan_version(args) if args else None)
    return {"kind": args.get("kind"), "plan_version": version}


def allowed_decisions(value: Any) -> list[str]:
    """The decisions a question allows."""
    found = _request(value)
    if found is not None:
        return [str(d) for d in found[1].get("allowed_decisions") or []]
    args = question_of(value) or {}
    return list(args.get("actions") or ("approve", "edit", "reject"))


def description_of(value: Any) -> str | None:
    """A question's Markdown description (built from the summary for an older question)."""
    found = _request(value)
    if found is not None:
        return found[0].get("description")
    args = question_of(value)
    return describe(args, tuple(allowed_decisions(value))) if args else None


# --------------------------------------------------------------------------- descriptions


def usd(value: float | None) -> str:
    """Dollars as a manager writes them (`tools.plan.facts.money`): $1.37M, $139k, $950."""
    return "-" if value is None else money(value)


def _words(text: Any) -> str:
    return str(text).replace("_", " ")


def _retailer(rid: str) -> str:
    info = current().retailers.get(rid)
    return info.name if info else _words(rid)


def _flight(start: str | None, end: str | None) -> str:
    if start and end:
        return f"{start} to {end}"
    if start:
        return f"from {start}, four weeks"
    return "no dates given: four weeks" + (f" ending {end}" if end else "")


def _brief_lines(
    brief: dict[str, Any], constraints: dict[str, Any], defaults: list[str] | None = None
) -> list[str]:
    """The brief as a list; a value the brief left open marked as the default (`defaults`,
    the question's or, for a question carrying the whole brief, the brief's)."""
    left_open = set(defaults or brief.get("defaults") or [])
    budget = brief.get("total_budget")
    reserve = brief.get("experiment_reserve") or 0.0
    retailers = [_retailer(r) for r in brief.get("retailers") or []]
    floor = brief.get("roas_floor")
    start, end = brief.get("flight_start"), brief.get("flight_end")
    held = f"{percent(reserve)} ({usd((budget or 0) * reserve)}) is held for experiments"
    where = and_list(retailers) if retailers else "every retailer the brand sells through"
    goal = GOALS.get(brief.get("objective") or "", _words(brief.get("objective")))
    lines = [
        f"- **Budget:** {usd(budget)}, of which "
        + with_default(held, "experiment_reserve", left_open),
        "- **Retailers:** " + with_default(where, "retailers", left_open),
        "- **Goal:** " + with_default(goal, "objective", left_open)
        + (f", with at least ${floor:,.2f} of extra revenue per ad dollar" if floor else ""),
        f"- **Flight:** {_flight(start, end)}",
    ]
    split = brief.get("retailer_split") or {}
    if split:
        parts = ", ".join(f"{_retailer(r)} {usd(v)}" for r, v in split.items())
        lines.append(f"- **Split:** {parts}, as the brief gives it")
    if not brief.get("exclude_oos", True):
        lines.append("- Products likely to be out of stock are kept in")
    caps = constraints.get("retailer_caps") or {}
    if caps:
        lines.append("- **Caps:** " + ", ".join(f"{_retailer(r)} at most {usd(c)}"
                                                for r, c in caps.items()))  # fmt: skip
    mins = constraints.get("retailer_mins") or {}
    if mins:
        lines.append("- **Minimums:** " + ", ".join(f"{_retailer(r)} at least {usd(c)}"
                                                    for r, c in mins.items()))  # fmt: skip
    skus = constraints.get("excluded_skus") or []
    if skus:
        n = len(skus)
        lines.append(f"- **Excluded:** {counted(n, 'product')} {agree(n, 'gets')} no spend")
    if constraints.get("min_spend_fraction"):
        share = constraints["min_spend_fraction"]
        lines.append(f"- At least {share:.0%} of the spendable budget must be placed")
    return lines


def _band(outcome: dict[str, Any], key: str, fmt: Callable[[float], str]) -> str | None:
    iv = outcome.get(key)
    if not isinstance(iv, dict) or iv.get("mean") is None:
        return None
    return f"{fmt(iv['mean'])} (likely between {fmt(iv['low'])} and {fmt(iv['high'])})"


def _describe_approval(q: dict[str, Any]) -> list[str]:
    brief = q.get("brief") or {}
    brand = current().brands.get(q.get("tenant") or "")
    alloc = q.get("allocation") or {}
    by_retailer = alloc.get("by_retailer") or {}
    lines = [f"## Plan for review: {usd(brief.get('total_budget'))}"
             + (f" for {brand.name}" if brand else ""), "",  # fmt: skip
             *_brief_lines(brief, q.get("constraints") or {}, q.get("defaults")), "",
             f"**Where the money goes** ({alloc.get('lines', 0)} product placements):"]  # fmt: skip
    lines += [f"- {_retailer(r)}: {usd(s)}" for r, s in by_retailer.items()]
    outcome = q.get("expected_outcome") or {}
    results = [
        ("Extra margin", _band(outcome, "incremental_margin", usd)),
        ("Extra revenue", _band(outcome, "incremental_revenue", usd)),
        ("Revenue per ad dollar", _band(outcome, "iroas", lambda x: f"${x:,.2f}")),
    ]
    lines += ["", "**Expected result:**"] + [f"- {k}: {v}" for k, v in results if v]
    exp = q.get("experiment")
    if exp:
        lines += ["", f"**Experiment:** a {_words(exp.get('experiment_type'))} at "
                  f"{_retailer(exp.get('retailer') or '')} for {exp.get('duration_days')} days "
                  f"from {exp.get('start')}, {usd(exp.get('test_spend'))} of test spend, "
                  f"{(exp.get('power') or 0):.0%} chance to detect the expected lift"
                  + ("." if exp.get("adequate") else " (too weak to read reliably).")]  # fmt: skip
    risks = (q.get("risks") or {}).get("high_risk_factors") or []
    flags = q.get("flags") or []
    if risks or flags:
        lines += ["", "**Needs attention:**"]
        lines += [f"- {_words(r.get('factor'))}: {_words(r.get('signal'))}" for r in risks]
        lines += [f"- {_words(f)}" for f in flags]
    lines += _rationale_lines(q.get("rationale") or [])
    conf = q.get("confidence") or {}
    if conf.get("value") is not None:
        why = (q.get("auto_approve") or {}).get("why")
        held = held_words(conf)
        line = f"**Confidence:** {confidence_text(shown_confidence(conf), as_percent=True)}"
        line += f" as measured, {held}" if held else ""
        lines += ["", line + (f" ({_words(why)})" if why else "")]
    return lines


def _rationale_lines(texts: list[dict[str, Any]]) -> list[str]:
    """The plan's rationale, each text with the policy passages its [n] markers cite."""
    lines: list[str] = []
    for t in texts:
        title = TITLES.get(t.get("kind") or "", _words(t.get("kind")))
        lines += ["", f"**{title}:** {t.get('text')}"]
        # The section's title shows; the corpus file it is in is the link's target.
        lines += [f"  - [{c.get('id')}] [{c.get('section')}]({c.get('source')})"
                  for c in t.get("citations") or []]  # fmt: skip
    return lines


def _describe_infeasible(q: dict[str, Any]) -> list[str]:
    lines = ["## This brief cannot be met as written", "", _words(q.get("message") or ""), ""]
    lines += _brief_lines(q.get("brief") or {}, q.get("constraints") or {})
    suggestions = q.get("suggestions") or []
    if suggestions:
        lines += ["", "**What would work:**"] + [f"- {_words(s)}" for s in suggestions]
    lines += ["", "Approving is not possible: no plan meets the brief as written."]
    return lines


def _describe_confirm(q: dict[str, Any]) -> list[str]:
    lines = ["## Please confirm the brief as read", ""]
    lines += _brief_lines(q.get("brief") or {}, {}, q.get("defaults"))
    warnings = q.get("warnings") or []
    if warnings:
        lines += ["", "**Why we ask:**"] + [f"- {_words(note_words(w))}" for w in warnings]
    return lines


DESCRIBE: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "approval": _describe_approval,
    "infeasible": _describe_infeasible,
    "confirm_brief": _describe_confirm,
}


def describe(question: dict[str, Any], allowed: tuple[str, ...]) -> str:
    """A question's summary in Markdown for a manager: plain words, dollars formatted, no
    field names, the choices `allowed`; a re-asked question starts with why the last answer
    was not used."""
    lines: list[str] = []
    if question.get("error"):
        lines += [f"> **Your last answer could not be used:** {_words(question['error'])}", ""]
    lines += DESCRIBE.get(question.get("kind") or "", lambda q: [])(question)
    choices = [CHOICES[a] for a in allowed if a in CHOICES]
    if choices:
        lines += ["", f"**Your choices:** {and_list(choices, 'or')}."]
    return "\n".join(lines)
