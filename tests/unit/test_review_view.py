"""What the review page says of a plan's experiment and confidence, in words."""

from __future__ import annotations

from graph.serving.web.view import _confidence, _experiment


def test_the_experiment_is_judged_against_its_own_target_power() -> None:
    exp = {"experiment_type": "geo_holdout", "retailer": "alpha", "duration_days": 28,
           "start": "2027-01-04", "holdout_pct": 0.2, "test_spend": 50_000.0, "power": 0.85,
           "target_power": 0.9, "adequate": False}  # fmt: skip
    text = _experiment(exp) or ""
    assert "85% chance" in text and "below the 90% needed" in text, text


def test_a_confidence_below_the_threshold_never_reads_as_it() -> None:
    text = _confidence({"confidence": {"value": 0.798, "signals": {}}}) or ""
    assert text.startswith("79% confident"), text
