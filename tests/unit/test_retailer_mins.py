"""Retailer minimums in the optimizer (`Brief.retailer_mins`): a minimum the optimum already
meets changes nothing; one it does not is met exactly, at the best plan that meets it (checked
against a finite difference of its shadow price); minimums out of reach are diagnosed, and the
water-fill is never asked (it has no minimums)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_optimize import assert_feasible, make_case, spend_of
from tools.errors import UnknownRetailerError
from tools.optimize import Brief, CurveSet, allocate


def _at(curves: CurveSet, x: np.ndarray, retailer: str) -> float:
    return float(x[curves.retailer_id == retailer].sum())


def _smallest_retailer(curves: CurveSet, brief: Brief) -> tuple[str, float]:
    """The uncapped retailer the plan without minimums gives least, and what it gives it."""
    x = spend_of(allocate(curves, brief))
    names = sorted(set(curves.retailer_id.tolist()) - set(brief.retailer_caps))
    spent = {r: _at(curves, x, r) for r in names}
    retailer = min(spent, key=spent.__getitem__)
    return retailer, spent[retailer]


@pytest.mark.parametrize("floor", [False, True])
def test_a_minimum_the_plan_meets_anyway_changes_nothing(floor: bool) -> None:
    curves, brief = make_case(120, 3, floor=floor, caps=True)
    plain = allocate(curves, brief)
    retailer, spent = _smallest_retailer(curves, brief)
    held = allocate(curves, brief.model_copy(update={"retailer_mins": {retailer: 0.5 * spent}}))
    assert held.status == "optimal" and held.path == "cvxpy"
    np.testing.assert_allclose(spend_of(held), spend_of(plain), rtol=1e-5, atol=1e-3)
    assert held.shadow_prices.retailer_mins[retailer] == pytest.approx(0.0, abs=1e-6)
    assert held.checks.retailer_mins == 0.0


@pytest.mark.parametrize("objective", ["incremental_margin", "roas"])
def test_a_binding_minimum_is_met_exactly_and_priced(objective: str) -> None:
    curves, brief = make_case(120, 4, floor=False, caps=True, objective=objective)
    plain = allocate(curves, brief)
    retailer, spent = _smallest_retailer(curves, brief)
    need = spent + 0.1 * brief.spendable
    held = allocate(curves, brief.model_copy(update={"retailer_mins": {retailer: need}}))
    x = spend_of(held)
    assert held.status == "optimal"
    assert _at(curves, x, retailer) == pytest.approx(need, rel=1e-7)
    assert_feasible(curves, brief, x)
    assert held.objective_value < plain.objective_value  # a minimum that binds costs
    assert held.checks.retailer_mins <= 1e-9
    if objective == "roas":
        return

    def optimum(low: float) -> float:
        update = {"retailer_mins": {retailer: low}}
        return allocate(curves, brief.model_copy(update=update)).objective_value

    h = 1e-3 * need
    slope = (optimum(need - h) - optimum(need + h)) / (2 * h)
    assert slope > 0
    assert held.shadow_prices.retailer_mins[retailer] == pytest.approx(slope, rel=1e-3)


def test_minimums_are_solved_by_cvxpy_even_above_the_water_fill_threshold() -> None:
    curves, brief = make_case(60, 5, floor=False, caps=False)
    retailer, spent = _smallest_retailer(curves, brief)
    update = {"retailer_mins": {retailer: spent + 0.05 * brief.spendable}}
    held = allocate(curves, brief.model_copy(update=update), kkt_threshold=10)
    assert held.path == "cvxpy"
    assert any("retailer minimums" in n for n in held.notes)
    assert _at(curves, spend_of(held), retailer) >= update["retailer_mins"][retailer] * (1 - 1e-9)


def test_minimums_out_of_reach_are_diagnosed() -> None:
    curves, brief = make_case(60, 6, floor=False, caps=True)
    names = sorted(set(curves.retailer_id.tolist()))
    over = {r: 0.6 * brief.spendable for r in names[:2]}
    result = allocate(curves, brief.model_copy(update={"retailer_mins": over}))
    assert result.status == "infeasible"
    assert result.diagnosis.binding == "retailer_minimum"
    assert "add up to" in result.diagnosis.message
    ((capped, cap),) = brief.retailer_caps.items()
    above = allocate(curves, brief.model_copy(update={"retailer_mins": {capped: cap * 1.5}}))
    assert above.status == "infeasible" and above.diagnosis.binding == "retailer_minimum"
    assert f"minimum at {capped}" in above.diagnosis.message


def test_bad_minimums_are_refused() -> None:
    curves, brief = make_case(30, 7, floor=False, caps=False)
    with pytest.raises(UnknownRetailerError, match="retailer minimum for unknown"):
        allocate(curves, brief.model_copy(update={"retailer_mins": {"nowhere": 1.0}}))
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="retailer minimum"):
            Brief(budget=1e6, retailer_mins={"alpha": bad})
