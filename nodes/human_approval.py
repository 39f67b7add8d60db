"""human_approval: the plan shown for review (allocation, expected outcome with intervals,
experiment, copy, risks, confidence) and the reviewer's answer: approve, edit (back to the
optimizer with the changes) or reject (the plan ends rejected, the reason kept).

The auto-approve policy (off unless the context turns it on) skips the question only when the
plan's computed confidence reaches the threshold and nothing in it is flagged.
"""

from __future__ import annotations

from typing import Any

from graph.context import Context
from nodes import (
    Update,
    ask_review,
    context_of,
    decision_entry,
    now,
    state_get,
    step,
)
from nodes.optimizer import replan_target, replanned_query

TOP_LINES = 10
AUTO_APPROVER = "auto-approve policy"


def blocking(plan: Any, flags: list[str]) -> list[str]:
    """What keeps a plan from being approved without a human: the flags raised on the way
    and every governance finding above `info`."""
    out = list(flags)
    out += [f"{f.type} in {f.where} ({f.action or f.severity})" for f in plan.governance
            if f.severity != "info"]  # fmt: skip
    return out


def auto_approval(plan: Any, flags: list[str], ctx: Context) -> tuple[bool, str]:
    """(whether the policy approves the plan, why or why not)."""
    if not ctx.auto_approve:
        return False, "auto-approval is off"
    if plan.reflection is None:
        return False, "the plan has no confidence assessment"
    value = plan.reflection.confidence.value
    if value < ctx.confidence_threshold:
        return False, f"confidence {value:.2f} is below the threshold {ctx.confidence_threshold}"
    reasons = blocking(plan, flags)
    if reasons:
        return False, "flagged: " + "; ".join(reasons)
    return True, f"confidence {value:.2f} >= {ctx.confidence_threshold} and nothing flagged"


def _totals(rows: list[Any], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in rows:
        name = getattr(row, key)
        out[name] = round(out.get(name, 0.0) + row.spend, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def summary(plan: Any, state: Any, ctx: Context) -> dict[str, Any]:
    """The reviewable summary an approval interrupt carries."""
    rows = plan.allocation
    exp = plan.experiment
    experiment = None
    if exp:
        experiment = {
            k: exp.get(k)
            for k in (
                "retailer",
                "experiment_type",
                "start",
                "duration_days",
                "holdout_pct",
                "test_spend",
                "mde_lift",
                "mde_iroas",
                "power",
                "adequate",
                "rationale",
            )
        }
    refl = plan.reflection
    eligible, why = auto_approval(plan, state_get(state, "flags") or [], ctx)
    return {
        "kind": "approval",
        "thread_id": plan.thread_id,
        "tenant": plan.tenant,
        "brief": plan.brief.fields(),
        "constraints": state_get(state, "constraints") or {},
        "allocation": {
            "by_retailer": _totals(rows, "retailer_id"),
            "by_placement": _totals(rows, "placement"),
            "lines": len(rows),
            "top_lines": [
                r.model_dump(
                    include={
                        "retailer_id",
                        "placement",
                        "gtin",
                        "spend",
                        "expected_revenue",
                        "expected_margin",
                    }
                )  # fmt: skip
                for r in rows[:TOP_LINES]
            ],
        },
        "expected_outcome": (
            plan.expected_outcome.model_dump(mode="json") if plan.expected_outcome else None
        ),
        "experiment": experiment,
        "measurement_notes": state_get(state, "measurement_notes") or [],
        "copy": [
            v.model_dump(include={"retailer_id", "headline", "body", "disclaimer", "path"})
            for v in plan.copy_variants
        ],
        "risks": refl.risk_assessment.model_dump(mode="json") if refl else None,
        "confidence": refl.confidence.model_dump(mode="json") if refl else None,
        "flags": blocking(plan, state_get(state, "flags") or []),
        "auto_approve": {"eligible": eligible, "why": why},
        "actions": {
            "approve": "accept the plan as it stands",
            "edit": "change constraints and re-plan, e.g. {'action': 'edit', 'changes': "
            "{'roas_floor': 2.5, 'retailer_caps': {'alpha': 500000}, 'excluded_skus': [...]}}",
            "reject": "stop, with a reason",
        },
    }


@step("human_approval")
def human_approval(state: Any, runtime: Any) -> Update:
    from tools.pipeline import CurveSummary, known_gtins
    from tools.plan import Decision, Plan

    ctx = context_of(runtime)
    plan = Plan.model_validate(state_get(state, "plan"))
    approved, why = auto_approval(plan, state_get(state, "flags") or [], ctx)
    if approved:
        decision = Decision(action="auto_approve", reason=why, by=AUTO_APPROVER, at=now())
        return {
            "status": "approved",
            "next_step": "finalize",
            "decisions": [decision_entry(decision, plan)],
        }
    parsed = state_get(state, "parsed")
    constraints = state_get(state, "constraints") or {}
    gtins = known_gtins(CurveSummary.model_validate(state_get(state, "curves")))
    review, new_parsed, new_constraints = ask_review(
        summary(plan, state, ctx), parsed, constraints, gtins=gtins
    )
    decision = Decision(
        action=review.action, reason=review.reason, changes=review.changes, at=now()
    )
    if review.action in ("approve", "reject"):
        return {
            "status": "approved" if review.action == "approve" else "rejected",
            "next_step": "finalize",
            "decisions": [decision_entry(decision, plan)],
        }
    return {
        "parsed": new_parsed,
        "constraints": new_constraints,
        "query_plan": replanned_query(state, new_parsed),
        "status": "replanning",
        "next_step": replan_target(parsed, new_parsed, state_get(state, "curves")),
        "decisions": [decision_entry(decision, plan)],
    }
