"""The report's text: a plan in Markdown for the managers who approve spend.

    render_markdown(plan, charts=["allocation.png"], names=product_names(...))

Plain headings, no field names or ids in snake_case, products and retailers by name; each
section says what it holds in words (see "What the approver reads" in README).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from tools.brief.schema import StructuredBrief
from tools.catalog import CatalogError, load_catalog
from tools.pipeline.query import DEFAULT_FLIGHT_DAYS
from tools.plan import AllocationRow, Decision, Plan
from tools.plan.approval import decided_by
from tools.plan.labels import (
    ACTION_WORDS,
    CONFIDENCE_FACTORS,
    EXPERIMENT_ROWS,
    GOALS,
    INDEXED,
    LIMITS,
    PARSED_BY,
    PLACES,
    SEVERITY,
    WRITTEN_BY,
    cap_label,
    change_words,
    confidence_text,
    percent,
    product_name,
    retailer_name,
    words,
)
from tools.plan.labels import whole_dollars as _usd
from tools.plan.rationale import TITLES

ALLOCATION_CHART = "allocation.png"
CURVES_CHART = "curves.png"
MAX_LINES_SHOWN = 40
# Finding types whose matched text is personal data: the report names them, never shows them.
PII_TYPES = frozenset(
    {"EMAIL", "PHONE", "SSN", "CREDIT_CARD", "IP_ADDRESS", "PERSON", "ADDRESS", "IBAN_CODE"}
)


def render_markdown(
    plan: Plan,
    charts: list[str],
    decisions: list[Decision] | None = None,
    names: dict[str, str] | None = None,
) -> str:
    """The report text; `charts` are the chart files written next to it; `decisions` every
    review decision in order (default: the plan's own); `names` GTIN -> product name (the
    brand's products file, `tools.pipeline.product_names`): products are named, not numbered.

    Written for the managers who approve spend: plain headings, no field names or ids in
    snake_case, the flight dates, and margin said to be before ad spend with what is left
    after it."""
    out: list[str] = [f"# Plan {_cell(plan.thread_id)}", ""]
    out += [
        f"Status: **{plan.status}** | tenant: {_cell(plan.tenant)} | brand: "
        f"{_cell(_brand_label(plan.brief.brand_id))}",
        "",
    ]
    out += _brief(plan)
    out += _allocation(plan, ALLOCATION_CHART in charts, names or {})
    out += _outcome(plan, CURVES_CHART in charts)
    out += _shadow_prices(plan)
    out += _experiment(plan)
    out += _rationale(plan)
    out += _copy(plan, names or {})
    out += _governance(plan)
    out += _reflection(plan)
    out += _decisions(plan, decisions, names or {})
    return "\n".join(out).rstrip() + "\n"


def _brand_label(brand_id: str) -> str:
    """The brand as people know it, "Northwind Provisions (northwind)": its display name in
    the catalog in force (a graph step's is its data directory's); just the id where that
    catalog does not hold the brand or cannot be read."""
    try:
        brand = load_catalog().brands.get(brand_id)
    except CatalogError:
        brand = None
    return brand.label if brand is not None else brand_id


def _cell(value: Any) -> str:
    """A value safe inside a Markdown table cell: one line, pipes and HTML escaped."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def _brief(plan: Plan) -> list[str]:
    out = ["## Brief", ""]
    out += ["> " + _cell(line) if line.strip() else ">" for line in plan.brief_text.splitlines()]
    out.append("")
    b = plan.brief
    out += [_flight(b), ""]
    floor = f"${b.roas_floor:,.2f} of extra revenue per ad dollar" if b.roas_floor else "none"
    rows: list[list[Any]] = [
        ["Budget", _usd(b.total_budget)],
        ["Retailers", ", ".join(retailer_name(r) for r in b.retailers)
         or "every retailer the brand sells through"],
        ["Goal", GOALS.get(b.objective, words(b.objective))],
        ["Minimum return per ad dollar", floor],
        ["Held for experiments", f"{percent(b.experiment_reserve)}"
         f" ({_usd((b.total_budget or 0) * b.experiment_reserve)})"],
        ["Leave out products likely out of stock", "yes" if b.exclude_oos else "no"],
        ["Brief read by", PARSED_BY.get(b.parsed_by, words(b.parsed_by))],
    ]  # fmt: skip
    rows += [["Warning", w] for w in b.warnings]
    return out + _table(["The brief", "As read"], rows)


def _flight(b: StructuredBrief) -> str:
    """The flight's dates in words ("1 March 2025 to 28 March 2025 (28 days)"), or that the
    brief gave none and the plan assumes the standard four weeks."""
    if b.flight_start and b.flight_end:
        days = (b.flight_end - b.flight_start).days + 1
        return f"Flight: {_date(b.flight_start)} to {_date(b.flight_end)} ({days} days)."
    if b.flight_start or b.flight_end:
        which = (f"starts {_date(b.flight_start)}" if b.flight_start
                 else f"ends {_date(b.flight_end)}")  # fmt: skip
        return f"Flight: {which}; planned as the standard four weeks ({DEFAULT_FLIGHT_DAYS} days)."
    return (
        "Flight: no dates in the brief; planned as the standard four weeks "
        f"({DEFAULT_FLIGHT_DAYS} days)."
    )


def _date(d: date | None) -> str:
    return "" if d is None else f"{d.day} {d:%B %Y}"


def _allocation(plan: Plan, chart: bool, names: dict[str, str]) -> list[str]:
    out = ["## Allocation", ""]
    funded = [r for r in plan.allocation if r.spend > 0]
    if not funded:
        return [*out, "No allocation: the optimizer did not produce a plan.", ""]
    total = sum(r.spend for r in funded)
    groups: dict[tuple[str, str], list[AllocationRow]] = {}
    for r in funded:
        groups.setdefault((r.retailer_id, r.placement), []).append(r)
    rows = []
    for (retailer, placement), items in sorted(groups.items()):
        spend = sum(r.spend for r in items)
        rows.append(
            [
                retailer_name(retailer),
                words(placement),
                len(items),
                _usd(spend),
                f"{spend / total:.1%}",
                _usd(sum(r.expected_revenue for r in items)),
                _usd(sum(r.expected_margin for r in items)),
            ]
        )
    out += _table(
        ["Retailer", "Placement", "Products", "Spend", "Share of spend", "Expected extra revenue",
         "Expected extra margin"], rows,
    )  # fmt: skip
    if chart:
        out += [f"![Allocation by retailer and placement]({ALLOCATION_CHART})", ""]
    top = sorted(funded, key=lambda r: (-r.spend, r.retailer_id, r.placement, r.gtin))
    lines = [
        [
            retailer_name(r.retailer_id),
            words(r.placement),
            product_name(r.gtin, names),
            _usd(r.spend),
            _usd(r.expected_revenue),
            _usd(r.expected_margin),
            "" if r.marginal_return is None else f"${r.marginal_return:,.2f}",
        ]
        for r in top[:MAX_LINES_SHOWN]
    ]
    shown = f"top {MAX_LINES_SHOWN} of {len(top)}" if len(top) > MAX_LINES_SHOWN else "all"
    out += [f"Products placed ({shown}, by spend):", ""]
    out += _table(
        ["Retailer", "Placement", "Product", "Spend", "Expected extra revenue",
         "Expected extra margin", _next_dollar(plan)], lines,
    )  # fmt: skip
    return out


def _goal(plan: Plan) -> str:
    return "margin" if plan.brief.objective == "incremental_margin" else "revenue"


def _next_dollar(plan: Plan) -> str:
    """The line table's last column: the objective gained by the next dollar, by name."""
    return f"Extra {_goal(plan)} from the next dollar"


def _test_share(plan: Plan) -> str:
    """What the test spends of the reserve, where it spends less than it holds."""
    e = plan.experiment or {}
    held, spent = e.get("budget"), e.get("test_spend")
    if not (_finite(held) and _finite(spent) and held - spent > 0.01 * held):
        return ""
    return f", of which the test spends {_usd(spent)} ({_usd(held - spent)} held but unspent)"


def _outcome(plan: Plan, chart: bool) -> list[str]:
    out = ["## Expected outcome", ""]
    o = plan.expected_outcome
    if o is None:
        out += ["No expected outcome.", ""]
    else:
        out += [
            f"Planned ad spend {_usd(o.spend)} plus {_usd(o.reserve)} held for the "
            f"experiment{_test_share(plan)}.",
            "",
        ]
        m = o.incremental_margin
        rows = [
            ["Extra revenue", _usd(o.incremental_revenue.mean),
             _usd(o.incremental_revenue.low), _usd(o.incremental_revenue.high)],
            ["Extra margin (before ad spend)", _usd(m.mean), _usd(m.low), _usd(m.high)],
            ["Extra revenue per ad dollar", _dollars(o.iroas.mean), _dollars(o.iroas.low),
             _dollars(o.iroas.high)],
        ]  # fmt: skip
        out += _table(["Measure", "Expected", "Likely at least", "Likely at most"], rows)
        out += ['"Likely" is the 90% interval over the response curves\' uncertainty.', ""]
        out += [_net_of_spend(m.mean, o.spend), ""]
    if chart:
        out += [
            f"![Response curves of the top lines with the chosen spend]({CURVES_CHART})",
            "",
        ]
    return out


def _dollars(value: float) -> str:
    return f"${value:,.2f}" if math.isfinite(value) else ""


def _net_of_spend(margin: float, spend: float) -> str:
    """Whether margin is net of ad spend, in words, and what is left once the spend is paid."""
    net = margin - spend
    verb = "gain" if net >= 0 else "lose"
    return (
        "Expected extra margin is before ad spend: it is the margin on the extra sales the ads "
        f"bring. Net of the {_usd(spend)} of planned ad spend the plan is expected to {verb} "
        f"{_usd(abs(net))}."
    )


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key in sorted(data):
        value = data[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, f"{name}.")
        elif not isinstance(value, list):
            items.append((name, value))
    return items


def _shadow_prices(plan: Plan) -> list[str]:
    out = ["## What each limit costs", ""]
    items = [(k, v) for k, v in _flatten(plan.shadow_prices) if _finite(v)]
    if not items:
        return [*out, "Not reported.", ""]
    goal = _goal(plan)
    # Only the limits that hold the plan back: a row per cap of $0.0000 (and "$-0.0000") was
    # what a reviewer read as noise, beside jargon ("shadow prices", "does not bind").
    rows = [[_limit(k), f"${v:,.4f}"] for k, v in items if round(v, 4) > 0]
    idle = len(items) - len(rows)
    out += [f"Extra {goal} the plan would gain if each limit were loosened by one unit (what "
            "the optimizer reports each limit costs the plan).", ""]  # fmt: skip
    if not rows:
        return [*out, "No limit holds the plan back.", ""]
    out += _table(["Limit", f"Extra {goal} per unit"], rows)
    if idle:
        out += [f"The other {idle} limit(s) cost the plan nothing: loosening them adds no "
                f"{goal}.", ""]  # fmt: skip
    return out


def _limit(key: str) -> str:
    """A shadow price's key in words: `retailer_caps.alpha` -> "The cap at Alpha Mart"."""
    head, _, tail = key.partition(".")
    if head == "retailer_caps" and tail:
        return f"One more dollar of the cap at {cap_label(tail)}"
    if head == "group_caps" and tail:
        return f"One more dollar of the monthly cap at {cap_label(tail)}"
    return LIMITS.get(key, words(key).replace(".", ": ").capitalize())


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _experiment_value(value: Any, fmt: str) -> str:
    if fmt == "retailer":
        return retailer_name(str(value))
    if fmt == "yes":
        return "yes" if value else "no"
    if not _finite(value):
        return words(value) if fmt in ("words", "text", "date") else ""
    number = float(value)
    return {"usd": _usd(number), "pct": f"{number:.0%}", "pct1": f"{number:.1%}",
            "int": f"{number:,.0f}",
            "dollars": f"${number:,.2f}"}.get(fmt, words(value))  # fmt: skip


def _experiment(plan: Plan) -> list[str]:
    out = ["## Experiment", ""]
    e = plan.experiment
    if not e:
        return [*out, "No experiment designed.", ""]
    rows = [[label, _experiment_value(e[key], fmt)] for key, label, fmt in EXPERIMENT_ROWS
            if key in e and e[key] is not None]  # fmt: skip
    if _test_share(plan):  # a reserve of $640,000 beside a test spend of $99,556
        at = next(i for i, r in enumerate(rows) if r[0] == "Test spend") + 1
        rows.insert(at, ["Held but not spent by this test", _usd(e["budget"] - e["test_spend"])])
    return out + _table(["The experiment", "Planned"], rows)


def _rationale(plan: Plan) -> list[str]:
    """The rationale texts (who wrote each) and the Sources: every [n] they cite, by title."""
    if not plan.rationale:
        return []
    out = ["## Rationale", ""]
    rows = []
    for t in plan.rationale:
        title = TITLES.get(t.kind, t.kind)
        # Why the template wrote it ("repeats a word") stays in plan.json: read as a defect.
        who = "model" if t.path == "model" else "template"
        out += [f"**{title}** ({_cell(who)}): {_cell(t.text)}", ""]
        # The document by its title first: a path alone read as an internal file name.
        rows += [[title, f"[{c.id}]", c.title or words(c.doc_type), c.section, c.source]
                 for c in t.citations if f"[{c.id}]" in t.text]  # fmt: skip (cited ones)
    if rows:
        out += ["### Sources", ""]
        out += _table(["text", "marker", "document", "section", "file"], rows)
    return out


def _copy(plan: Plan, names: dict[str, str]) -> list[str]:
    out = ["## Copy", ""]
    if not plan.copy_variants:
        return [*out, "No copy.", ""]
    rows = [
        [
            retailer_name(v.retailer_id),
            product_name(v.gtin, names) if v.gtin else "the brand's range",
            v.headline,
            v.body,
            v.disclaimer or "",
            "yes" if v.compliant else "no: " + ", ".join(words(x) for x in v.violations),
            WRITTEN_BY.get(v.path, words(v.path)),
            v.attempts,
            " + ".join(v.adapters) or "none",
        ]
        for v in plan.copy_variants
    ]
    header = ["Retailer", "Product", "Headline", "Body", "Disclaimer", "Meets the policies",
              "Written by", "Tries", "Adapters"]  # fmt: skip
    return out + _table(header, rows)


def _governance(plan: Plan) -> list[str]:
    out = ["## Governance findings", ""]
    if not plan.governance:
        return [*out, "None.", ""]
    rows = []
    # Second opinions that agreed with the rule checks: one line, not a row each (noise).
    agreed = [_where(f.where) for f in plan.governance if f.agrees]
    shown = [f for f in plan.governance if not f.agrees]
    for f in shown:
        text = "(personal data, not shown)" if f.type.upper() in PII_TYPES else f.text[:80]
        span = f"{f.start}-{f.end}" if f.start is not None and f.end is not None else ""
        rows.append([words(f.type).lower(), _where(f.where), span,
                     SEVERITY.get(f.severity, f.severity), f.action, text])  # fmt: skip
    if agreed:
        out += [f"The retailer model's second opinion agreed with the rule checks on "
                f"{', '.join(agreed)} (information only: the rule checks decide).", ""]  # fmt: skip
    if not rows:
        return out
    return out + _table(
        ["Finding", "Where", "Characters", "Severity", "What was done", "Text"], rows
    )


def _where(where: str) -> str:
    """A finding's place in words: `copy[0].body` -> "copy variant 1, body"."""
    m = INDEXED.match(where)
    if not m:
        return words(where)
    place = PLACES.get(m.group(1), words(m.group(1)))
    return f"{place} {int(m.group(2)) + 1}" + (f", {words(m.group(3))}" if m.group(3) else "")


def _confidence_factors(signals: dict[str, float], rationale: str) -> list[str]:
    """Each factor in words with its score, then what was measured (not the formula)."""
    rows = [[label[:1].upper() + label[1:], confidence_text(signals[key])]
            for key, label in CONFIDENCE_FACTORS.items() if key in signals]  # fmt: skip
    measured = rationale.partition(". ")[2]  # after "0.84 = uncertainty 1.00 x ...", jargon
    out = _table(["What it weighs", "Score (1.00: no doubt from it)"], rows) if rows else []
    if measured:
        out += [f"Measured: {_cell(measured[:1].upper() + measured[1:])}", ""]
    return out


def _reflection(plan: Plan) -> list[str]:
    out = ["## Reflection", ""]
    r = plan.reflection
    if r is None:
        return [*out, "No reflection.", ""]
    out += [
        f"**Confidence {confidence_text(r.confidence.value)}** (with auto-approval on, a plan "
        f"is approved without a person only when {_cell(r.decision_threshold)}).",
        "",
    ]
    out += _confidence_factors(r.confidence.signals, r.confidence.rationale)
    if r.memory_reference:
        out += ["Similar past plans:", ""] + [f"- {_cell(m)}" for m in r.memory_reference] + [""]
    if r.alternate_frames:
        out += ["Alternate frames:", ""] + [f"- {_cell(a)}" for a in r.alternate_frames] + [""]
    if r.risk_assessment.summary:  # "The main risk is ...": no "Main risk:" before it
        out += [_cell(r.risk_assessment.summary), ""]
    risks = r.risk_assessment.high_risk_factors
    if risks:
        out += _table(
            ["Risk", "Severity", "What was measured", "What to do"],
            [[k.factor.capitalize(), k.severity, words(k.signal), k.mitigation] for k in risks],
        )
    else:
        out += ["No risk factors measured.", ""]
    out += [_cell(r.bias_checkpoint), ""]
    # Which sentences: "These sentences were written by a template" read as contradicting
    # the rationale's "(model)" above it.
    who = "the model" if r.written_by == "llm" else "a template"
    out += [f"The reflection's sentences (main risk, bias to check, other ways to read the "
            f"plan) were written by {who}; its numbers are computed.", ""]  # fmt: skip
    return out


def _decisions(plan: Plan, decisions: list[Decision] | None, names: dict[str, str]) -> list[str]:
    """Who decided what, in order, with every change an edit made."""
    out = ["## Decisions", ""]
    history = decisions if decisions is not None else [d for d in [plan.decision] if d]
    if not history:
        return [*out, "Awaiting a decision.", ""]
    for d in history:
        line = (f"- {d.at.strftime('%Y-%m-%d %H:%M')} UTC: "
                f"{ACTION_WORDS.get(d.action, d.action)} by {decided_by(d.by)}")  # fmt: skip
        if d.changes:
            line += "; changes: " + "; ".join(
                change_words(k, v, names) for k, v in sorted(d.changes.items())
            )
        if d.reason:
            line += f". Reason: {_cell(d.reason)}"
        out.append(line)
    return [*out, ""]
