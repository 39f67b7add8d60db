"""Reflection: signals measured from a plan, a monotone confidence, risks with mitigations, and
words from the model only when they are usable (tiny random model: never; real model: one run)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from adapters.chat_model import RMNChatModel
from adapters.runtime import Generation
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_random_adapter
from tools.brief.schema import StructuredBrief
from tools.plan import AllocationRow, ExpectedOutcome, Interval, Plan
from tools.plan.reflection import (
    ReflectionError,
    ReflectionSignals,
    ReflectionWords,
    confidence,
    factors,
    reflect,
    risks,
    signals_from,
    usable_words,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_plan(floor: float | None = 2.0, caps: dict[str, float] | None = None) -> Plan:
    rows = []
    for i, (retailer, placement) in enumerate(
        [("alpha", "sponsored_product"), ("alpha", "sponsored_search"), ("beta", "display_offsite")]
    ):
        a, b, x = 60_000.0 * (i + 1), 20_000.0, 10_000.0 * (3 - i)
        revenue = a * (1 - math.exp(-x / b))
        rows.append(
            AllocationRow(
                retailer_id=retailer,
                placement=placement,
                gtin=f"0001234500001{i}",
                spend=x,
                expected_revenue=revenue,
                expected_margin=0.3 * revenue,
                marginal_return=a / b * math.exp(-x / b),
                curve_a=a,
                curve_b=b,
            )
        )
    spend = sum(r.spend for r in rows)
    revenue = sum(r.expected_revenue for r in rows)
    roas = revenue / spend
    experiment = {"power": 0.5, "target_power": 0.8, "adequate": False}
    experiment["budget_for_target_power"] = 41_000.0
    return Plan(
        thread_id="t-1",
        tenant="acme",
        brief_text="Spend $66,000 on alpha and beta.",
        brief=StructuredBrief(
            brand_id="acme", total_budget=66_000, retailers=["alpha", "beta"], roas_floor=floor
        ),
        allocation=rows,
        expected_outcome=ExpectedOutcome(
            spend=spend,
            reserve=6_000,
            incremental_revenue=Interval(mean=revenue, low=0.8 * revenue, high=1.2 * revenue),
            incremental_margin=Interval(mean=0.3 * revenue, low=0.2 * revenue, high=0.4 * revenue),
            iroas=Interval(mean=roas, low=0.8 * roas, high=1.2 * roas),
        ),
        shadow_prices={"spendable": 0.2, "retailer_caps": caps or {}},
        solver_status="optimal",
        experiment=experiment,
    )


# --- signals --------------------------------------------------------------------------------


def test_signals_are_read_from_the_plan() -> None:
    plan = make_plan(caps={"alpha": 0.4, "beta": 0.0})
    s = signals_from(plan, curve_cv=None, coverage=0.8, flags=2)
    assert plan.expected_outcome is not None
    m = plan.expected_outcome.incremental_margin
    assert s.uncertainty_source == "margin_interval"
    assert s.curve_uncertainty == pytest.approx((m.high - m.low) / m.mean / 3.29)
    iroas = plan.expected_outcome.iroas.mean
    assert s.roas_slack == pytest.approx((iroas - 2.0) / 2.0)
    assert s.binding_caps == {"alpha": 0.4}  # a zero shadow price is a cap that does not bind
    assert s.governance_flags == 2 and s.coverage == 0.8 and s.solver_ok
    assert s.experiment_power == 0.5 and s.experiment_budget_for_target == 41_000
    assert s.spend == sum(r.spend for r in plan.allocation) and s.lines == 3
    assert s.top_retailer == "alpha"
    weakest = min(plan.allocation, key=lambda r: r.marginal_return or 0)
    assert s.weakest_lines[0] == f"{weakest.retailer_id}/{weakest.placement}/{weakest.gtin}"
    with_cv = signals_from(plan, curve_cv=0.3, coverage=None, flags=0)
    assert with_cv.curve_uncertainty == 0.3 and with_cv.uncertainty_source == "curve_cv"
    no_floor = signals_from(make_plan(floor=None), None, None, 0)
    assert no_floor.roas_slack is None


def test_an_infeasible_plan_is_a_failed_solver() -> None:
    plan = make_plan().model_copy(update={"allocation": [], "solver_status": "infeasible"})
    s = signals_from(plan, curve_cv=0.1, coverage=1.0, flags=0)
    assert not s.solver_ok and factors(s)["solver"] < 0.5


# --- confidence -----------------------------------------------------------------------------


def base_signals(**update: object) -> ReflectionSignals:
    values: dict[str, object] = {
        "curve_uncertainty": 0.15,
        "uncertainty_source": "curve_cv",
        "coverage": 0.9,
        "roas_floor": 2.0,
        "iroas": 2.2,
        "roas_slack": 0.1,
        "governance_flags": 0,
        "solver_status": "optimal",
        "solver_ok": True,
        "experiment_power": 0.85,
        "experiment_adequate": True,
    }
    values.update(update)
    return ReflectionSignals.model_validate(values)


@pytest.mark.parametrize(
    ("field", "values", "direction"),
    [
        ("curve_uncertainty", [0.0, 0.1, 0.2, 0.4, 0.8, 2.0], -1),
        ("coverage", [0.0, 0.25, 0.5, 0.75, 1.0], +1),
        ("roas_slack", [-0.3, -0.1, 0.0, 0.05, 0.1, 0.2, 0.5], +1),
        ("governance_flags", [0, 1, 2, 5], -1),
        ("experiment_power", [0.0, 0.2, 0.5, 0.8, 1.0], +1),
    ],
)
def test_confidence_is_monotone_in_each_signal(
    field: str, values: list[float], direction: int
) -> None:
    got = [confidence(base_signals(**{field: v})).value for v in values]
    steps = [direction * (b - a) for a, b in zip(got, got[1:], strict=False)]
    assert all(step >= 0 for step in steps), got
    assert got[0] != got[-1]  # the signal matters
    assert all(0 <= v <= 1 for v in got)


def test_binding_caps_and_a_failed_solver_lower_confidence() -> None:
    free = confidence(base_signals()).value
    capped = confidence(base_signals(binding_caps={"alpha": 0.3, "beta": 0.1})).value
    failed = confidence(base_signals(solver_ok=False, solver_status="infeasible")).value
    assert failed < capped < free


def test_confidence_is_the_product_of_its_factors_and_explains_them() -> None:
    s = base_signals(curve_uncertainty=0.25, governance_flags=1)
    c = confidence(s)
    assert c.value == pytest.approx(math.prod(factors(s).values()), abs=5e-4)
    assert c.rationale.startswith(f"{c.value:.2f} = uncertainty ")
    assert "Curve CV 0.25" in c.rationale and "1 governance flag(s)" in c.rationale
    assert "iROAS 2.20 is 10% above the 2.00 floor" in c.rationale
    assert c.signals["curve_uncertainty"] == 0.25 and c.signals["governance_flags"] == 1.0
    assert c.signals["factor_governance"] == pytest.approx(0.75)


# --- risks and the record -------------------------------------------------------------------


def test_risks_carry_mitigations_drawn_from_the_plan() -> None:
    plan = make_plan(floor=None)
    floor = plan.expected_outcome.iroas.mean / 1.03  # type: ignore[union-attr]
    plan = plan.model_copy(update={"brief": plan.brief.model_copy(update={"roas_floor": floor})})
    s = signals_from(plan, curve_cv=0.45, coverage=0.6, flags=1)
    found = {r.factor: r for r in risks(s)}
    assert set(found) >= {
        "response curve uncertainty",
        "thin data coverage",
        "little room above the ROAS floor",
        "governance findings",
        "underpowered experiment",
    }
    assert found["response curve uncertainty"].severity == "high"  # factor 1/(1 + 0.9^2)
    assert s.weakest_lines[0] in found["little room above the ROAS floor"].mitigation
    assert "$41,000" in found["underpowered experiment"].mitigation
    assert found["thin data coverage"].signal.startswith("40%")
    calm = signals_from(make_plan(floor=None), curve_cv=0.05, coverage=1.0, flags=0)
    calm = calm.model_copy(update={"experiment_power": 0.9, "experiment_adequate": True})
    assert risks(calm) == []


def test_reflect_without_a_model_uses_the_template() -> None:
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    memory = ["2025-01-02 t-0: approved $60,000 over alpha+beta", "b", "c", "d"]
    r = reflect(plan, s, memory, None, threshold=0.8)
    assert r.phase == "reflection" and r.written_by == "template"
    assert r.memory_reference == memory[:3]
    assert r.confidence == confidence(s)
    assert r.decision_threshold == "confidence >= 0.80 and no governance flags"
    assert len(r.alternate_frames) == 2 and f"{s.top_retailer_share:.0%}" in r.alternate_frames[1]
    assert "past plans" in r.bias_checkpoint
    assert r.risk_assessment.mitigation == [x.mitigation for x in risks(s)]
    with pytest.raises(ReflectionError, match="threshold"):
        reflect(plan, s, [], None, threshold=1.5)


def test_usable_words_refuse_numbers_markup_and_loops() -> None:
    good = ReflectionWords(
        alternate_frames=[
            "Judge the plan on revenue growth rather than margin",
            "Ask whether one retailer should carry most of the flight",
        ],
        bias_checkpoint="Anchoring on last quarter's results may hide a seasonal shift",
    )
    assert usable_words(good)
    numbers = good.model_copy(update={"bias_checkpoint": "Expect 25% more sales next month"})
    markup = good.model_copy(update={"bias_checkpoint": "Anchoring on <b>recent</b> results"})
    loop = good.model_copy(update={"bias_checkpoint": "now now now now now now"})
    same = good.model_copy(update={"alternate_frames": [good.alternate_frames[0]] * 2})
    assert not any(usable_words(w) for w in (numbers, markup, loop, same))


# --- models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> RMNChatModel:
    model, _ = tiny_llama()
    root = tmp_path_factory.mktemp("adapters")
    write_random_adapter(
        root, "task", "planning", model, base_fingerprint=tiny_fingerprint(), seed=1
    )
    return RMNChatModel(runtime=tiny_runtime(Path(root), decode="lora"))


def test_tiny_model_garbage_falls_back_to_the_template(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Generation] = []
    generate = tiny.runtime.generate

    def spy(*args: object, **kwargs: object) -> Generation:
        gen = generate(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(gen)
        return gen

    monkeypatch.setattr(tiny.runtime, "generate", spy)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, [], tiny, threshold=0.8, task="planning")
    assert len(calls) == 1 and calls[0].adapters_active == ["task/planning"]
    assert calls[0].tokens <= 2 * 80  # bounded output (a repair turn at most doubles it)
    if calls[0].parsed is not None:  # the grammar admits no digits: numbers cannot leak in
        assert not re.search(r"\d", json.dumps(calls[0].parsed))
    assert r.written_by == "template"
    assert r.alternate_frames == reflect(plan, s, [], None, 0.8).alternate_frames
    assert r.confidence == confidence(s)  # the numbers never come from the model


def test_usable_model_words_are_kept_and_numbers_stay_computed(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = {
        "alternate_frames": [
            "Judge the plan on revenue growth rather than margin",
            "Ask whether one retailer should carry most of the flight",
        ],
        "bias_checkpoint": "Anchoring on recent results may hide a seasonal shift",
    }

    def scripted(*args: object, **kwargs: object) -> Generation:
        return Generation(text=json.dumps(words), parsed=words, adapters_active=[])

    monkeypatch.setattr(tiny.runtime, "generate", scripted)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, [], tiny, threshold=0.7)
    assert r.written_by == "llm" and r.alternate_frames == words["alternate_frames"]
    assert r.bias_checkpoint == words["bias_checkpoint"] and r.confidence == confidence(s)


def test_real_model_reflection(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.runtime import Runtime

    llm = RMNChatModel(runtime=Runtime.load())
    calls: list[Generation] = []
    generate = llm.runtime.generate

    def spy(*args: object, **kwargs: object) -> Generation:
        calls.append(generate(*args, **kwargs))  # type: ignore[arg-type]
        return calls[-1]

    monkeypatch.setattr(llm.runtime, "generate", spy)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, ["2025-01-02 t-0: approved $60,000 over alpha+beta"], llm, 0.8)
    assert len(calls) == 1 and calls[0].tokens <= 2 * 80 and calls[0].adapters_active == []
    assert r.confidence == confidence(s) and len(r.alternate_frames) == 2
    if r.written_by == "llm":
        words = ReflectionWords(
            alternate_frames=r.alternate_frames, bias_checkpoint=r.bias_checkpoint
        )
        assert usable_words(words)
    else:
        assert r.alternate_frames == reflect(plan, s, [], None, 0.8).alternate_frames
