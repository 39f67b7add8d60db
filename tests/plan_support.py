"""A small plan for the reflection tests, unit and integration."""

from __future__ import annotations

import math

from tools.brief.schema import StructuredBrief
from tools.plan import AllocationRow, ExpectedOutcome, Interval, Plan


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
