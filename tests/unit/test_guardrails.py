"""Guardrails in the reflection (issue #14): what the reflection says about caps agrees with
the plan's numbers. A placement cap (`group_caps`) whose shadow price is positive binds: the
reflection never says "no binding caps" then, and names the cap (before the fix it read only
`retailer_caps` and said "no binding retailer caps" while Beta's sponsored-search cap bound at
$0.08 per dollar, as the plan's own rationale said)."""

from __future__ import annotations

import math

from tools.brief.schema import StructuredBrief
from tools.plan import AllocationRow, ExpectedOutcome, Interval, Plan
from tools.plan.reflection import reflect, signals_from


def make_plan(floor: float | None = 2.0) -> Plan:
    """Three lines at alpha and beta on saturating curves, a $66k brief, a 50%-power test."""
    rows = []
    for i, (retailer, placement) in enumerate(
        [("alpha", "sponsored_product"), ("alpha", "sponsored_search"), ("beta", "display_offsite")]
    ):
        a, b, x = 60_000.0 * (i + 1), 20_000.0, 10_000.0 * (3 - i)
        revenue = a * (1 - math.exp(-x / b))
        rows.append(AllocationRow(
            retailer_id=retailer, placement=placement, gtin=f"0001234500001{i}", spend=x,
            expected_revenue=revenue, expected_margin=0.3 * revenue,
            marginal_return=a / b * math.exp(-x / b), curve_a=a, curve_b=b,
        ))  # fmt: skip
    spend = sum(r.spend for r in rows)
    revenue = sum(r.expected_revenue for r in rows)
    roas = revenue / spend
    return Plan(
        thread_id="t-1", tenant="acme", brief_text="Spend $66,000 on alpha and beta.",
        brief=StructuredBrief(brand_id="acme", total_budget=66_000, retailers=["alpha", "beta"],
                              roas_floor=floor),
        allocation=rows,
        expected_outcome=ExpectedOutcome(
            spend=spend, reserve=6_000,
            incremental_revenue=Interval(mean=revenue, low=0.8 * revenue, high=1.2 * revenue),
            incremental_margin=Interval(mean=0.3 * revenue, low=0.2 * revenue, high=0.4 * revenue),
            iroas=Interval(mean=roas, low=0.8 * roas, high=1.2 * roas),
        ),
        shadow_prices={"spendable": 0.2, "retailer_caps": {}},
        solver_status="optimal",
        experiment={"power": 0.5, "target_power": 0.8, "adequate": False,
                    "budget_for_target_power": 41_000.0},
    )  # fmt: skip


def _all_text(plan_shadow: dict[str, object]) -> tuple[str, object]:
    plan = make_plan()
    plan = plan.model_copy(update={"shadow_prices": plan_shadow})
    signals = signals_from(plan, curve_cv=0.05, coverage=0.9, flags=0)
    r = reflect(plan, signals, [], None, 0.8)
    risks = [f"{k.factor} {k.signal}" for k in r.risk_assessment.high_risk_factors]
    text = " ".join(
        [r.confidence.rationale, r.risk_assessment.summary, r.bias_checkpoint,
         *r.alternate_frames, *risks]
    )  # fmt: skip
    return text, signals


def test_no_binding_caps_never_said_when_a_cap_has_a_positive_shadow_price() -> None:
    text, signals = _all_text(
        {"spendable": 0.4, "retailer_caps": {},
         "group_caps": {"beta/sponsored_search": 0.0778, "alpha/display_onsite": 4.6e-13}}
    )  # fmt: skip
    assert "no binding" not in text and "no cap holds" not in text, text
    # the risk table's signal (the main-risk sentence names the most severe risk, here the
    # underpowered experiment)
    assert "caps bind at Beta Grocers, sponsored search" in text
    # Solver noise (1e-13) is not a binding cap.
    assert "display onsite" not in text and "display_onsite" not in text


def test_without_a_positive_shadow_price_no_cap_is_said_to_bind() -> None:
    text, _ = _all_text({"spendable": 0.4, "retailer_caps": {"alpha": 0.0},
                         "group_caps": {"beta/sponsored_search": 1e-12}})  # fmt: skip
    assert "no cap holds spend back" in text


def test_each_guardrail_in_words_blocks_auto_approval_and_caps_confidence() -> None:
    from tools.plan.approval import ApprovalPolicy, auto_approval
    from tools.plan.guardrails import guardrails

    plan = make_plan(floor=None)
    # Delta loses money: $0.75 of revenue per ad dollar, as in the issue.
    delta = plan.allocation[0].model_copy(
        update={"retailer_id": "delta", "spend": 10_000.0, "expected_revenue": 7_500.0}
    )
    plan = plan.model_copy(
        update={
            "allocation": [*plan.allocation, delta],
            # $66k budget, $6k reserve, $40k spent: $20k left with a cap binding.
            "expected_outcome": ExpectedOutcome(
                spend=40_000, reserve=6_000,
                incremental_revenue=Interval(mean=30_000, low=25_000, high=35_000),
                incremental_margin=Interval(mean=9_000, low=7_000, high=11_000),
                iroas=Interval(mean=0.75, low=0.6, high=0.9),
            ),
            "shadow_prices": {"retailer_caps": {"alpha": 0.4}, "group_caps": {}},
            "brief": plan.brief.model_copy(update={"warnings": [
                "total_budget: the budget $66,000 is 40x what alpha can absorb for acme in 28 "
                "days by its history ($1,650; alpha: median weekly spend)"]}),
        }
    )  # fmt: skip
    found = {g.code: g.words for g in guardrails(plan)}
    assert set(found) == {"loses_money", "unspent", "weak_experiment", "binding_caps",
                          "far_from_history"}  # fmt: skip
    words = [g.words for g in guardrails(plan)]
    assert any("it loses money" in w and "$0.75" in w for w in words)
    # retailers by name: these words read "At delta" and "the caps that bind (alpha)"
    assert any(w.startswith("At Delta Home") and "loses money" in w for w in words)
    unspent = "$20k of the $60k to spend is left unspent: the caps that bind (Alpha Mart)"
    assert unspent in found["unspent"]
    assert "50% chance" in found["weak_experiment"]
    # Every guardrail blocks auto-approval, even with the policy on and a low threshold.
    plan = plan.model_copy(update={"reflection": reflect(plan, signals_from(plan, 0.01, 1.0, 0),
                                                         [], None, 0.5)})  # fmt: skip
    assert plan.reflection is not None and plan.reflection.confidence.value < 0.5
    assert "so that a person reviews the plan" in plan.reflection.confidence.rationale
    approved, why = auto_approval(plan, [], ApprovalPolicy(enabled=True, threshold=0.0))
    assert not approved and "loses money" in why


def test_a_plan_that_trips_no_guardrail_can_still_approve_itself() -> None:
    from tools.plan.approval import ApprovalPolicy, auto_approval
    from tools.plan.guardrails import guardrails

    plan = make_plan(floor=None)
    spent = sum(r.spend for r in plan.allocation)
    outcome = plan.expected_outcome
    assert outcome is not None
    # margin above the ad spend: 0.3 of revenue is $58k on $60k, a plan losing money
    margin = Interval(mean=0.4 * outcome.incremental_revenue.mean, low=60_000, high=90_000)
    plan = plan.model_copy(update={
        "experiment": {"power": 0.85, "target_power": 0.8, "adequate": True},
        "expected_outcome": outcome.model_copy(update={"spend": spent, "reserve": 66_000 - spent,
                                                       "incremental_margin": margin}),
        "shadow_prices": {"retailer_caps": {"alpha": 0.0}, "group_caps": {"beta/x": 1e-13}},
    })  # fmt: skip
    assert guardrails(plan) == []
    plan = plan.model_copy(update={"reflection": reflect(plan, signals_from(plan, 0.01, 1.0, 0),
                                                         [], None, 0.5)})  # fmt: skip
    assert plan.reflection is not None
    assert "Capped" not in plan.reflection.confidence.rationale
    approved, why = auto_approval(plan, [], ApprovalPolicy(enabled=True, threshold=0.5))
    assert approved, why


def test_a_cap_worth_under_half_a_cent_a_dollar_is_not_said_to_bind() -> None:
    """Reports listed "caps bind at Alpha Mart, display onsite ($0.00 per extra dollar)"
    beside a limits table showing that cap at $0.0005."""
    text, signals = _all_text(
        {"spendable": 0.4, "retailer_caps": {},
         "group_caps": {"beta/sponsored_search": 0.0778, "alpha/display_onsite": 0.0005}}
    )  # fmt: skip
    assert set(signals.binding_caps) == {"beta/sponsored_search"}
    assert "display onsite" not in text and "$0.00 per extra dollar" not in text


def test_a_plan_whose_margin_is_below_its_ad_spend_goes_to_a_person() -> None:
    """$725,168 of extra margin on $800,000 of ad spend ($3.92 of revenue per ad dollar): the
    risks rated the loss high while auto-approval's line said "this plan meets both", as only
    revenue under the spend tripped the guardrail (va56 of unseen41, rated misleading)."""
    from tools.plan.approval import ApprovalPolicy, auto_approval
    from tools.plan.guardrails import guardrails

    plan = make_plan(floor=None)  # $58k of margin on $60k of ad spend, $3.22 per ad dollar
    spent = sum(r.spend for r in plan.allocation)
    outcome = plan.expected_outcome
    assert outcome is not None and outcome.iroas.mean > 1
    plan = plan.model_copy(update={
        "experiment": {"power": 0.85, "target_power": 0.8, "adequate": True},
        "expected_outcome": outcome.model_copy(update={"spend": spent, "reserve": 66_000 - spent}),
        "shadow_prices": {"retailer_caps": {"alpha": 0.0}, "group_caps": {}},
    })  # fmt: skip
    assert [(g.code, g.words) for g in guardrails(plan)] == [(
        "loses_money", "The plan is expected to bring back $58k of extra margin on $60k of ad "
        "spend: it loses money after paying for its ads.")]  # fmt: skip
    reflection = reflect(plan, signals_from(plan, 0.01, 1.0, 0), [], None, 0.8)
    plan = plan.model_copy(update={"reflection": reflection})
    assert reflection.confidence.value < 0.8
    assert "this plan does not, as its confidence is below 0.80" in (
        reflection.decision_threshold)
    approved, why = auto_approval(plan, [], ApprovalPolicy(enabled=True, threshold=0.5))
    assert not approved and "loses money after paying for its ads" in why
