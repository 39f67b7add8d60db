"""What the review pages show, built from a thread's state and the question it waits on: the
brief restated, totals in plain words with their intervals, spend by retailer, placement and
product (names, not GTINs), the experiment in one paragraph, each copy variant with the
policy passages it was checked against, risks and confidence in a sentence each.

Numbers come from the plan as the tools computed it; this module only words them. Call it
inside `use_catalog(...)` of the server's data directory (retailer and brand names)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools.errors import RMNError
from tools.pipeline.market import product_names
from tools.plan.diff import plan_diff
from tools.plan.guardrails import TARGET_POWER
from tools.plan.labels import (
    CONFIDENCE_FACTORS,
    WRITTEN_BY,
    confidence_text,
    held_words,
    percent,
    retailer_name,
    shown_confidence,
)
from tools.plan.plan import Plan
from tools.plan.questions import GOALS, allowed_decisions, question_of, usd

__all__ = [
    "PlanView",
    "Passage",
    "known_product_names",
    "plan_view",
    "policy_href",
    "retailer_name",
]


class Passage(BaseModel):
    """A policy passage a text was checked against, linked to its corpus section."""

    title: str
    href: str
    text: str = ""


class CopyView(BaseModel):
    retailer: str
    product: str
    headline: str
    body: str
    disclaimer: str | None
    written_by: str
    passages: list[Passage] = Field(default_factory=list)
    index: int


class RationaleView(BaseModel):
    kind: str  # allocation | experiment: what a rating of it names
    title: str
    text: str
    written_by: str
    cites: list[Passage] = Field(default_factory=list)


class LineView(BaseModel):
    retailer: str
    placement: str
    product: str
    spend: str
    margin: str


class PlanView(BaseModel):
    thread_id: str
    kind: str
    status: str
    plan_version: str | None
    allowed: list[str]
    error: str | None
    brief: list[tuple[str, str]]
    totals: list[str]
    by_retailer: list[tuple[str, str, str]]
    by_placement: list[tuple[str, str]]
    lines: list[LineView]
    experiment: str | None
    rationale: list[RationaleView]
    copy_variants: list[CopyView]
    risks: list[str]
    confidence: str | None
    flags: list[str]
    retailer_ids: list[str]
    caps: dict[str, float | None]
    excluded: list[str]
    products: list[tuple[str, str]]
    form: dict[str, str]
    decisions: list[str]
    description: str | None
    diff: list[str] = Field(default_factory=list)


def _words(text: Any) -> str:
    return str(text or "").replace("_", " ")


def _money_band(iv: dict[str, Any] | None, fmt: Any = usd) -> str | None:
    if not isinstance(iv, dict) or not _finite(iv.get("mean")):
        return None
    return f"{fmt(iv['mean'])}, likely between {fmt(iv['low'])} and {fmt(iv['high'])}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def policy_href(source: str) -> str:
    """`/review/policy/<retailer or brand folder>/<doc>#<section>` for a corpus source such as
    `cli-market0/retailers/beta/prohibited_content.md#monthly-caps`."""
    path, _, anchor = source.partition("#")
    parts = path.split("/")
    if len(parts) >= 3 and parts[-3] in ("retailers", "brands") and parts[-1].endswith(".md"):
        href = f"/review/policy/{parts[-3]}/{parts[-2]}/{parts[-1][:-3]}"
        return href + (f"#{anchor}" if anchor else "")
    return ""


def _brief_rows(brief: dict[str, Any], constraints: dict[str, Any]) -> list[tuple[str, str]]:
    budget = brief.get("total_budget")
    reserve = brief.get("experiment_reserve") or 0.0
    floor = brief.get("roas_floor")
    start, end = brief.get("flight_start"), brief.get("flight_end")
    retailers = [retailer_name(r) for r in brief.get("retailers") or []]
    rows = [
        ("Budget", usd(budget)),
        ("Held for experiments", f"{percent(reserve)} ({usd((budget or 0) * reserve)})"),
        ("Retailers", ", ".join(retailers) or "every retailer the brand sells through"),
        ("Goal", GOALS.get(brief.get("objective") or "", _words(brief.get("objective")))),
        ("Minimum return per ad dollar", f"${floor:,.2f}" if floor else "none"),
        ("Flight", f"{start or 'not set'} to {end or 'not set'}"
         if start or end else "no dates given: four weeks"),  # fmt: skip
    ]
    split = brief.get("retailer_split") or {}
    if split:
        rows.append(("Split, as the brief gives it", ", ".join(
            f"{retailer_name(r)} {usd(v)}" for r, v in split.items())))  # fmt: skip
    caps = constraints.get("retailer_caps") or {}
    if caps:
        rows.append(("Caps", ", ".join(f"{retailer_name(r)} at most {usd(c)}"
                                       for r, c in caps.items() if c is not None)))  # fmt: skip
    mins = constraints.get("retailer_mins") or {}
    if mins:
        rows.append(("Minimums", ", ".join(f"{retailer_name(r)} at least {usd(c)}"
                                           for r, c in mins.items() if c is not None)))  # fmt: skip
    if constraints.get("excluded_skus"):
        rows.append(("Excluded products", str(len(constraints["excluded_skus"]))))
    return rows


def _totals(outcome: dict[str, Any]) -> list[str]:
    out = []
    margin = _money_band(outcome.get("incremental_margin"))
    if margin:
        out.append(f"Expected extra margin {margin} (before ad spend).")
        mean = outcome["incremental_margin"]["mean"]
        spend = outcome.get("spend")
        if _finite(spend):
            net = mean - spend
            out.append(f"After the {usd(spend)} of planned spend that is {usd(net)} "
                       + ("gained." if net >= 0 else "lost."))  # fmt: skip
    revenue = _money_band(outcome.get("incremental_revenue"))
    if revenue:
        out.append(f"Expected extra revenue {revenue}.")
    iroas = _money_band(outcome.get("iroas"), lambda x: f"${x:,.2f}")
    if iroas:
        out.append(f"Each ad dollar brings back {iroas} of extra revenue.")
    return out


def _lines(plan: dict[str, Any], names: dict[str, str]) -> list[LineView]:
    rows = sorted(plan.get("allocation") or [], key=lambda r: -float(r.get("spend") or 0))
    return [
        LineView(
            retailer=retailer_name(r["retailer_id"]),
            placement=_words(r["placement"]),
            product=names.get(r["gtin"], f"product {r['gtin']}"),
            spend=usd(r["spend"]),
            margin=usd(r.get("expected_margin")),
        )
        for r in rows
        if float(r.get("spend") or 0) > 0
    ]


def _passages(retrieved: list[dict[str, Any]], retailer: str | None) -> list[Passage]:
    seen: dict[str, Passage] = {}
    for p in retrieved:
        if p.get("purpose") != "copy_rules" or p.get("retailer") not in (retailer, None):
            continue
        source = str(p.get("source") or "")
        title = str(p.get("text") or "").split("\n", 1)[0] or source
        body = str(p.get("text") or "").split("\n", 1)[-1]
        if source not in seen:
            seen[source] = Passage(title=title, href=policy_href(source), text=body[:400])
    return list(seen.values())


def _copy(plan: dict[str, Any], retrieved: list[dict[str, Any]], names: dict[str, str],
          ) -> list[CopyView]:  # fmt: skip
    out = []
    for i, c in enumerate(plan.get("copy") or []):
        gtin = c.get("gtin")
        out.append(
            CopyView(
                retailer=retailer_name(c["retailer_id"]),
                product=names.get(gtin or "", "the brand's range") if gtin else "the brand's range",
                headline=c.get("headline", ""),
                body=c.get("body", ""),
                disclaimer=c.get("disclaimer"),
                written_by=WRITTEN_BY.get(c.get("path", ""), str(c.get("path"))),
                passages=_passages(retrieved, c["retailer_id"]),
                index=i,
            )
        )
    return out


def _experiment(exp: dict[str, Any] | None) -> str | None:
    if not exp:
        return None
    power = exp.get("power") or 0.0
    text = (
        f"A {_words(exp.get('experiment_type'))} at {retailer_name(exp.get('retailer') or '')} "
        f"runs {exp.get('duration_days')} days from {exp.get('start')}, holding out "
        f"{(exp.get('holdout_pct') or 0):.0%} of the market with {usd(exp.get('test_spend'))} "
        f"of test spend. It has a {power:.0%} chance of detecting the expected lift"
    )
    if exp.get("adequate"):
        return text + ", enough to read the result with confidence."
    target = exp.get("target_power") or TARGET_POWER  # the design's own, not always 80%
    return text + (
        f", below the {target:.0%} needed to read it reliably: treat its result as directional."
    )


def _risks(q: dict[str, Any]) -> list[str]:
    risks = (q.get("risks") or {}).get("high_risk_factors") or []
    return [
        f"{_words(r.get('factor')).capitalize()} ({r.get('severity')} risk): "
        f"{_words(r.get('signal'))}. What to do: {r.get('mitigation')}."
        for r in risks
    ]


def _confidence(q: dict[str, Any]) -> str | None:
    conf = q.get("confidence") or {}
    value = conf.get("value")
    if not _finite(value):
        return None
    why = (q.get("auto_approve") or {}).get("why")
    weakest = _weakest(conf.get("signals") or {})
    held = held_words(conf)
    text = f"{confidence_text(shown_confidence(conf), as_percent=True)} confident in these numbers"
    if held:
        text += f" ({held})"
    if weakest:
        text += f", held down most by {weakest}"
    return text + (f"; {why}." if why else ".")


def _weakest(signals: dict[str, Any]) -> str | None:
    factors = {k: v for k, v in signals.items() if k in CONFIDENCE_FACTORS and _finite(v)}
    if not factors:
        return None
    name, value = min(factors.items(), key=lambda kv: kv[1])
    return CONFIDENCE_FACTORS[name] if value < 0.999 else None


def known_product_names(data_dir: Path, tenant: str, brand: str | None) -> dict[str, str]:
    """GTIN -> product name from the brand's products file; none when it cannot be read."""
    try:
        return product_names(data_dir, tenant, brand or tenant)
    except (RMNError, OSError):
        return {}


def _rationale(q: dict[str, Any]) -> list[RationaleView]:
    titles = {"allocation": "Why this split", "experiment": "What the experiment can tell"}
    out = []
    for t in q.get("rationale") or []:
        cites = [
            Passage(title=f"[{c['id']}] {c.get('section') or c['source']}",
                    href=policy_href(c["source"]))
            for c in t.get("citations") or []
        ]  # fmt: skip
        kind = str(t.get("kind") or "")
        out.append(RationaleView(kind=kind, title=titles.get(kind, _words(kind)),
                                 text=t.get("text", ""), cites=cites,
                                 written_by=WRITTEN_BY.get(t.get("path", ""),
                                                           _words(t.get("path")))))  # fmt: skip
    return out


def _by_retailer(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    spend: dict[str, float] = {}
    for r in plan.get("allocation") or []:
        spend[r["retailer_id"]] = spend.get(r["retailer_id"], 0.0) + float(r.get("spend") or 0)
    total = sum(spend.values()) or 1.0
    return [(retailer_name(k), usd(v), f"{v / total:.0%}")
            for k, v in sorted(spend.items(), key=lambda kv: -kv[1])]  # fmt: skip


def _form(brief: dict[str, Any], constraints: dict[str, Any]) -> dict[str, str]:
    """The edit form's fields as they stand (what the reviewer changes)."""

    def num(v: Any) -> str:
        # as typed: "1500000", not "1.5e+06" (`:g`, which the budget field showed)
        return "" if v is None else f"{v:f}".rstrip("0").rstrip(".")

    caps = constraints.get("retailer_caps") or {}
    form = {
        "total_budget": num(brief.get("total_budget")),
        "roas_floor": num(brief.get("roas_floor")),
        "experiment_reserve": num(brief.get("experiment_reserve")),
        "flight_start": str(brief.get("flight_start") or ""),
        "flight_end": str(brief.get("flight_end") or ""),
    }
    form.update({f"cap_{r}": num(c) for r, c in caps.items()})
    form.update({f"min_{r}": num(c) for r, c in (constraints.get("retailer_mins") or {}).items()})
    form.update({f"split_{r}": num(v) for r, v in (brief.get("retailer_split") or {}).items()})
    return form


def plan_view(
    thread_id: str,
    values: dict[str, Any],
    pending: Any,
    data_dir: Path,
    decisions: list[str],
) -> PlanView:
    """The plan page of a thread: its pending question (`pending`, an interrupt's value) when
    it waits on one, else its last plan."""
    q = question_of(pending) or {}
    plan = values.get("plan") or {}
    brief = q.get("brief") or plan.get("brief") or values.get("parsed") or {}
    constraints = q.get("constraints") or values.get("constraints") or {}
    tenant = str(values.get("tenant") or "")
    names = known_product_names(data_dir, tenant, values.get("brand_id"))
    outcome = q.get("expected_outcome") or plan.get("expected_outcome") or {}
    placements: dict[str, float] = {}
    for r in plan.get("allocation") or []:
        placements[r["placement"]] = placements.get(r["placement"], 0.0) + float(r["spend"])
    retailer_ids = list(brief.get("retailers") or [])
    for r in plan.get("allocation") or []:
        if r["retailer_id"] not in retailer_ids:
            retailer_ids.append(r["retailer_id"])
    funded = sorted({r["gtin"] for r in plan.get("allocation") or [] if r.get("spend")})
    request = (pending or {}).get("action_requests") if isinstance(pending, dict) else None
    return PlanView(
        thread_id=thread_id,
        kind=str(q.get("kind") or "none"),
        status=str(values.get("status") or ""),
        plan_version=q.get("plan_version"),
        allowed=allowed_decisions(pending) if q else [],
        error=q.get("error"),
        brief=_brief_rows(brief, constraints),
        totals=_totals(outcome),
        by_retailer=_by_retailer(plan),
        by_placement=[(_words(k), usd(v)) for k, v in
                      sorted(placements.items(), key=lambda kv: -kv[1])],  # fmt: skip
        lines=_lines(plan, names),
        experiment=_experiment(q.get("experiment") or plan.get("experiment")),
        rationale=_rationale(q if q else {"rationale": plan.get("rationale")}),
        copy_variants=_copy(plan, values.get("retrieved") or [], names),
        risks=_risks(q) if q else [],
        confidence=_confidence(q) if q else None,
        flags=[_words(f) for f in q.get("flags") or values.get("flags") or []],
        retailer_ids=retailer_ids,
        caps=dict(constraints.get("retailer_caps") or {}),
        excluded=list(constraints.get("excluded_skus") or []),
        products=[(g, names.get(g, g)) for g in funded],
        form=_form(brief, constraints),
        decisions=decisions,
        description=request[0].get("description") if request else None,
        diff=_diff_lines(values),
    )


def _diff_lines(values: dict[str, Any]) -> list[str]:
    """The plan as it stands against the plan the last edit replaced, in sentences."""
    edits = [d for d in values.get("decisions") or []
             if (d.get("decision") or {}).get("action") == "edit" and d.get("plan")]  # fmt: skip
    if not edits or not values.get("plan"):
        return []
    diff = plan_diff(Plan.model_validate(edits[-1]["plan"]), Plan.model_validate(values["plan"]))
    out = []
    for m in diff.moved:
        if abs(m.after - m.before) >= 500:
            name = retailer_name(m.name) if m.scope == "retailer" else _words(m.name)
            verb = "up" if m.after > m.before else "down"
            out.append(f"{name}: {usd(m.before)} to {usd(m.after)} ({verb} "
                       f"{usd(abs(m.after - m.before))}).")  # fmt: skip
    if not out:
        out.append("Spend by retailer and placement barely moved (under $500 each).")
    change = diff.margin_change
    if change is not None:
        out.append(f"Expected extra margin {usd(diff.margin_before)} to {usd(diff.margin_after)} "
                   f"({'+' if change >= 0 else '-'}{usd(abs(change))}).")  # fmt: skip
    if diff.iroas_before is not None and diff.iroas_after is not None:
        out.append(f"Return per ad dollar ${diff.iroas_before:,.2f} to ${diff.iroas_after:,.2f}.")
    if diff.binding:
        out.append("What binds now: " + "; ".join(
            f"{b.constraint} (worth ${b.value:,.2f} of objective per extra unit)"
            for b in diff.binding[:5]) + ".")  # fmt: skip
    else:
        out.append("No constraint binds in the new plan.")
    return out
