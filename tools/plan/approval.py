"""Approving a plan: the auto-approve policy (off unless the run turns it on; it approves only
a plan whose computed confidence reaches the threshold and in which nothing is flagged), what
blocks it, and the summary a human reviews.

    policy = ApprovalPolicy(enabled=True, threshold=0.8)
    approved, why = auto_approval(plan, flags, policy)
    question = approval_summary(plan, policy, flags=flags, constraints=constraints)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tools.plan import AllocationRow, Plan
from tools.plan.guardrails import guardrail_flags
from tools.plan.labels import confidence_text

TOP_LINES = 10
AUTO_APPROVER = "auto-approve policy"
# Who answered from the command line (`Decision.by`): a flag in a script, or a person asked
# at a terminal. Over HTTP it is the API key's id; only a run with no actor at all is "human".
SCRIPT_PREFIX = "script: "
TERMINAL_PREFIX = "terminal: "


def script_actor(command: str, user: str) -> str:
    """`by` for a decision given by flags (`rmn resume --approve`): the command and the OS user."""
    return f"{SCRIPT_PREFIX}{command} (user {user})"


def terminal_actor(user: str) -> str:
    """`by` for a decision a person typed at `rmn plan`'s prompt."""
    return f"{TERMINAL_PREFIX}{user}"


def decided_by(by: str) -> str:
    """`Decision.by` in words: the auto-approval policy, a script, a person at a terminal, an
    API key, or an unnamed person."""
    if by == AUTO_APPROVER:
        return "the auto-approval policy"
    if by.startswith(SCRIPT_PREFIX):
        return f"a script ({by.removeprefix(SCRIPT_PREFIX)})"
    if by.startswith(TERMINAL_PREFIX):
        return f"{by.removeprefix(TERMINAL_PREFIX)} at a terminal"
    if by.startswith("key-"):
        return f"API key {by}"
    return "a person (not named)" if by == "human" else by
# The experiment's fields a reviewer sees.
EXPERIMENT_FIELDS: tuple[str, ...] = (
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
LINE_FIELDS = {"retailer_id", "placement", "gtin", "spend", "expected_revenue", "expected_margin"}
COPY_FIELDS = {"retailer_id", "headline", "body", "disclaimer", "path"}
RATIONALE_FIELDS = {"kind", "text", "path", "citations"}


class ApprovalPolicy(BaseModel):
    """When a plan may be approved without a human."""

    enabled: bool = False
    threshold: float = Field(0.8, ge=0, le=1, description="confidence needed")


def blocking(plan: Plan, flags: list[str]) -> list[str]:
    """What keeps a plan from being approved without a human: the flags raised on the way,
    every governance finding above `info` and every guardrail (`tools.plan.guardrails`)."""
    out = list(flags)
    out += [f"{f.type} in {f.where} ({f.action or f.severity})" for f in plan.governance
            if f.severity != "info"]  # fmt: skip
    # Guardrails in words (money-losing spend, unspent budget, a weak experiment, binding
    # caps, a budget far from history): each needs a person's eyes.
    out += [g for g in guardrail_flags(plan) if g not in out]
    return out


def auto_approval(plan: Plan, flags: list[str], policy: ApprovalPolicy) -> tuple[bool, str]:
    """(whether the policy approves the plan, why or why not)."""
    if not policy.enabled:
        return False, "auto-approval is off"
    if plan.reflection is None:
        return False, "the plan has no confidence assessment"
    value = plan.reflection.confidence.value
    if value < policy.threshold:
        return False, (
            f"confidence {confidence_text(value)} is below the threshold {policy.threshold}"
        )
    reasons = blocking(plan, flags)
    if reasons:
        return False, "flagged: " + "; ".join(reasons)
    return True, f"confidence {confidence_text(value)} >= {policy.threshold} and nothing flagged"


def _totals(rows: list[AllocationRow], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in rows:
        name = getattr(row, key)
        out[name] = round(out.get(name, 0.0) + row.spend, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def approval_summary(
    plan: Plan,
    policy: ApprovalPolicy,
    *,
    flags: list[str],
    constraints: dict[str, Any],
    measurement_notes: list[str],
) -> dict[str, Any]:
    """The reviewable summary an approval question carries: allocation, expected outcome with
    intervals, experiment, copy, risks, confidence, what blocks auto-approval and the answers
    possible."""
    rows = plan.allocation
    exp = plan.experiment
    refl = plan.reflection
    eligible, why = auto_approval(plan, flags, policy)
    return {
        "kind": "approval",
        "thread_id": plan.thread_id,
        "tenant": plan.tenant,
        "brief": plan.brief.shown(),
        "defaults": plan.brief.defaults,
        "constraints": constraints,
        "allocation": {
            "by_retailer": _totals(rows, "retailer_id"),
            "by_placement": _totals(rows, "placement"),
            "lines": len(rows),
            "top_lines": [r.model_dump(include=LINE_FIELDS) for r in rows[:TOP_LINES]],
        },
        "expected_outcome": (
            plan.expected_outcome.model_dump(mode="json") if plan.expected_outcome else None
        ),
        "experiment": {k: exp.get(k) for k in EXPERIMENT_FIELDS} if exp else None,
        "measurement_notes": measurement_notes,
        # Why this split and what the experiment can tell, with the passages each rests on.
        "rationale": [t.model_dump(mode="json", include=RATIONALE_FIELDS) for t in plan.rationale],
        "copy": [v.model_dump(include=COPY_FIELDS) for v in plan.copy_variants],
        "risks": refl.risk_assessment.model_dump(mode="json") if refl else None,
        "confidence": refl.confidence.model_dump(mode="json") if refl else None,
        "flags": blocking(plan, flags),
        "auto_approve": {"eligible": eligible, "why": why},
        "actions": {
            "approve": "accept the plan as it stands",
            "edit": "change constraints and re-plan, e.g. {'action': 'edit', 'changes': "
            "{'roas_floor': 2.5, 'retailer_caps': {'alpha': 500000}, 'excluded_skus': [...]}}",
            "reject": "stop, with a reason",
        },
    }
