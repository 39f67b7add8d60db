"""Experiments for the measurement reserve: design under each retailer's rules, power, readout,
clean-room SQL with k-anonymity, and coverage by simulation."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import TTestIndPower
from typer.testing import CliRunner

from cli.measurement_bench import measurement
from tools.cleanroom import DataAccessRules
from tools.errors import QueryRefusedError
from tools.measurement import (
    ExperimentDesignError,
    GeoPanel,
    MeasurementRuleError,
    design_experiment,
    detectable_effect_size,
    read_out,
    run_geo_period_query,
)
from tools.measurement.assignment import stratified_pick
from tools.measurement.bench import SCENARIOS, run_scenario
from tools.measurement.simulate import (
    geo_shares,
    national_sales,
    plant_daily_lift,
    plant_geo_lift,
    simulate_geo_sales,
)
from tools.policy import ExperimentType, load_retailer_policy
from tools.rmis import EVENT_COLUMNS
from tools.world import generate_world

PRE, TEST = 91, 28
START = date(2026, 7, 6)  # a Monday, so weekly cells line up
BUDGET = 250_000.0


@pytest.fixture(scope="module")
def sims() -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Three seeded draws of daily geo sales (pre-period and test window) per retailer."""
    world = generate_world(seed=7, days=PRE + TEST, start=START)
    geos = tuple(world.dmas.column("code").to_pylist())
    out = {}
    for retailer, brand in (("alpha", "acme"), ("beta", "acme"), ("gamma", "globex")):
        nat = national_sales(world, retailer, brand)
        out[retailer] = (geos, simulate_geo_sales(nat, geo_shares(world, retailer), 3, seed=1))
    nat = national_sales(world, "delta", "initech")
    out["delta"] = (geos, simulate_geo_sales(nat, geo_shares(world, "delta"), 3, seed=1))
    return out


def pre_panel(sims: dict, retailer: str, i: int = 0) -> GeoPanel:
    geos, sales = sims[retailer]
    return GeoPanel(geos, START, sales[i, :, :PRE])


# ---------------------------------------------------------------------------- assignment


def test_assignment_is_stratified_balanced_and_deterministic(sims: dict) -> None:
    pre = pre_panel(sims, "alpha")
    a = design_experiment("alpha", pre, BUDGET, expected_iroas=3.0, seed=11)
    b = design_experiment("alpha", pre, BUDGET, expected_iroas=3.0, seed=11)
    c = design_experiment("alpha", pre, BUDGET, expected_iroas=3.0, seed=12)
    assert a.experiment_type == ExperimentType.GEO_HOLDOUT
    assert a.control_geos() == b.control_geos()
    assert a.control_geos() != c.control_geos()
    # 20% of 50 DMAs (alpha's maximum holdout), one per stratum of DMAs ranked by sales.
    assert a.n_control == 10 and a.n_treatment == 40
    strata = [g.stratum for g in a.geos if g.group == "control"]
    assert sorted(strata) == list(range(10))
    ranked = sorted(a.geos, key=lambda g: -g.pre_daily_sales)
    assert [g.stratum for g in ranked] == sorted(g.stratum for g in a.geos)
    for d in (a, c):
        assert d.balance is not None and d.balance.balanced
        assert abs(d.balance.smd_log_sales) < 0.2
        assert 0.1 < d.balance.control_sales_share < 0.35
    assert a.design_effect == pytest.approx(1.0, abs=0.1)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(4, 200), data=st.data())
def test_stratified_pick_takes_one_per_near_equal_stratum(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n // 2))
    picked, strata = stratified_pick(n, k, np.random.default_rng(n * 1000 + k))
    assert picked.sum() == k
    sizes = np.bincount(strata)
    assert sizes.max() - sizes.min() <= 1
    assert (np.bincount(strata, weights=picked) == 1).all()
    assert (np.diff(strata) >= 0).all()  # strata are contiguous


# -------------------------------------------------------------------------------- rules


@pytest.mark.parametrize("retailer", ["alpha", "beta", "gamma", "delta"])
def test_design_obeys_each_retailers_rules(sims: dict, retailer: str) -> None:
    m = load_retailer_policy(retailer).measurement
    d = design_experiment(retailer, pre_panel(sims, retailer), BUDGET, expected_iroas=3.0)
    assert d.experiment_type in m.allowed_experiment_types
    assert m.min_test_days <= d.duration_days <= m.max_test_days
    assert m.min_holdout_pct <= d.holdout_pct <= m.max_holdout_pct
    assert d.test_spend <= BUDGET
    checked = {r.rule for r in d.rules}
    assert {"allowed_experiment_types", "min_test_days", "max_test_days"} <= checked
    assert {"min_holdout_pct", "max_holdout_pct", "max_concurrent_tests"} <= checked
    assert all(f"retailers/{retailer}/measurement.md#" in r.source for r in d.rules)
    if retailer == "gamma":  # its clean room reports by week only
        assert d.start.weekday() == 0 and d.duration_days % 7 == 0


def test_switchback_is_refused_at_alpha_with_the_rule_named(sims: dict) -> None:
    with pytest.raises(MeasurementRuleError) as err:
        design_experiment("alpha", pre_panel(sims, "alpha"), BUDGET, experiment_type="switchback")
    assert err.value.detail["rule"] == "allowed_experiment_types"
    assert "experiment-designs-alpha-mart-supports" in err.value.detail["source"]
    assert "alpha/measurement.md" in err.value.message
    # Asking for a period length is asking for a switchback.
    with pytest.raises(MeasurementRuleError, match="allowed_experiment_types"):
        design_experiment("alpha", pre_panel(sims, "alpha"), BUDGET, period_hours=48)


def test_switchback_at_delta_respects_the_minimum_period(sims: dict) -> None:
    pre = pre_panel(sims, "delta")
    m = load_retailer_policy("delta").measurement
    assert m.switchback_min_period_hours is not None
    d = design_experiment("delta", pre, BUDGET, experiment_type="switchback", expected_iroas=3.0)
    assert d.experiment_type == ExperimentType.SWITCHBACK
    assert d.period_hours is not None and d.period_hours >= m.switchback_min_period_hours
    assert all(p.hours == d.period_hours for p in d.periods)
    assert len(d.periods) * d.period_hours == 24 * d.duration_days
    gaps = np.diff([p.start.timestamp() for p in d.periods])
    assert (gaps == 3600 * d.period_hours).all()
    off = sum(not p.ads_on for p in d.periods)
    assert m.min_holdout_pct <= off / len(d.periods) <= m.max_holdout_pct
    assert any(r.rule == "switchback_min_period_hours" for r in d.rules)
    # 48 h periods are fine; 12 h periods break the rule.
    d48 = design_experiment("delta", pre, BUDGET, period_hours=48, duration_days=28)
    assert d48.period_hours == 48 and len(d48.periods) == 14
    with pytest.raises(MeasurementRuleError) as err:
        design_experiment("delta", pre, BUDGET, experiment_type="switchback", period_hours=12)
    assert err.value.detail["rule"] == "switchback_min_period_hours"
    assert "delta/measurement.md#switchback-tests" in err.value.detail["source"]


@pytest.mark.parametrize(
    ("retailer", "kwargs", "rule"),
    [
        ("alpha", {"duration_days": 100}, "max_test_days"),
        ("gamma", {"duration_days": 21}, "min_test_days"),
        ("alpha", {"holdout_pct": 0.5}, "max_holdout_pct"),
        ("beta", {"holdout_pct": 0.05}, "min_holdout_pct"),
        ("gamma", {"running_tests": 1}, "max_concurrent_tests"),
        ("gamma", {"experiment_type": "audience_holdout"}, "allowed_experiment_types"),
        ("alpha", {"budget": 1_000.0, "daily_spend": 500.0}, "min_test_days"),
    ],
)
def test_requests_that_break_a_rule_are_refused(
    sims: dict, retailer: str, kwargs: dict, rule: str
) -> None:
    args = {"budget": BUDGET, **kwargs}
    with pytest.raises(MeasurementRuleError) as err:
        design_experiment(retailer, pre_panel(sims, retailer), **args)
    assert err.value.detail["rule"] == rule
    assert err.value.detail["source"].startswith(f"rag_corpus/retailers/{retailer}/measurement.md")
    assert rule in err.value.message


def test_unsupported_or_malformed_requests_are_clear_errors(sims: dict) -> None:
    pre = pre_panel(sims, "alpha")
    with pytest.raises(ExperimentDesignError, match="audience"):
        design_experiment("alpha", pre, BUDGET, experiment_type="audience_holdout")
    with pytest.raises(ExperimentDesignError, match="unknown experiment type"):
        design_experiment("alpha", pre, BUDGET, experiment_type="coin_flip")
    with pytest.raises(ExperimentDesignError, match="budget"):
        design_experiment("alpha", pre, -5.0)
    with pytest.raises(ExperimentDesignError, match="Monday"):
        design_experiment("gamma", pre_panel(sims, "gamma"), BUDGET, start=START + timedelta(95))


# -------------------------------------------------------------------------------- power


def test_effect_size_comes_from_statsmodels() -> None:
    ref = TTestIndPower().solve_power(nobs1=40, alpha=0.05, power=0.8, ratio=10 / 40)
    assert detectable_effect_size(40, 10, 0.05, 0.8) == pytest.approx(ref, rel=1e-6)
    # Covariates spend degrees of freedom: the same power needs a larger effect.
    assert detectable_effect_size(40, 10, 0.05, 0.8, df=30) > detectable_effect_size(
        40, 10, 0.05, 0.8
    )


def test_mde_falls_with_duration_and_holdout(sims: dict) -> None:
    pre = pre_panel(sims, "delta")

    def mde(**kw: object) -> float:
        design = design_experiment("delta", pre, 1e6, daily_spend=1e3, seed=3, **kw)  # type: ignore[arg-type]
        return design.mde_lift

    geo = [mde(experiment_type="geo_holdout", duration_days=d) for d in (14, 28, 56)]
    assert geo[0] > geo[1] > geo[2]
    held = [mde(experiment_type="geo_holdout", duration_days=28, holdout_pct=h) for h in (0.1, 0.3)]
    assert held[0] > held[1]
    sw = [mde(experiment_type="switchback", duration_days=d) for d in (14, 28, 56)]
    assert sw[0] > sw[1] > sw[2]


def test_power_rises_with_effect_and_design_reports_its_options(sims: dict) -> None:
    d = design_experiment("alpha", pre_panel(sims, "alpha"), BUDGET, expected_iroas=3.0)
    assert d.power_at_lift(d.mde_lift) == pytest.approx(d.target_power, abs=1e-6)
    assert d.power_at_lift(d.mde_lift / 2) < d.target_power < d.power_at_lift(2 * d.mde_lift)
    assert d.mde_iroas == pytest.approx(d.mde_lift * d.baseline_daily_sales / d.daily_spend)
    assert d.options and [o.duration_days for o in d.options] == sorted(
        o.duration_days for o in d.options
    )
    assert d.duration_days in [o.duration_days for o in d.options]


def test_a_reserve_too_small_says_so_with_the_mde_it_reaches(sims: dict) -> None:
    pre = pre_panel(sims, "alpha")
    rich = design_experiment("alpha", pre, BUDGET, expected_iroas=3.0)
    assert rich.adequate and rich.power is not None and rich.power >= 0.8
    # The shortest test reaching the target power is chosen.
    assert rich.duration_days == min(
        o.duration_days for o in rich.options if o.power is not None and o.power >= 0.8
    )
    poor = design_experiment("alpha", pre, 20_000, expected_iroas=3.0)
    assert poor.adequate is False and poor.power is not None and poor.power < 0.8
    assert poor.mde_iroas > 3.0
    assert poor.budget_for_target_power is not None
    assert poor.budget_for_target_power > poor.test_spend
    assert "cannot reach" in poor.rationale and f"{poor.mde_iroas:.2f}" in poor.rationale
    # Out of budget, the test runs as long as the reserve lasts, for the most power.
    assert poor.duration_days == 28 and poor.test_spend == pytest.approx(20_000)


# ------------------------------------------------------------------------------ readout


def test_geo_readout_recovers_a_planted_lift(sims: dict) -> None:
    geos, sales = sims["alpha"]
    d = design_experiment("alpha", pre_panel(sims, "alpha"), BUDGET, duration_days=28, seed=5)
    treated = np.array([g in set(d.treated_geos()) for g in geos])
    lift = 0.06
    full = plant_geo_lift(sales[0], treated, PRE, TEST, lift)
    r = read_out(d, GeoPanel(geos, START, full))
    assert r.lift_ci[0] < lift < r.lift_ci[1]
    assert r.significant and r.p_value < 0.05
    assert r.n_treatment == 40 and r.n_control == 10
    truth = float(sales[0][treated, PRE:].sum()) * lift / d.test_spend
    assert r.iroas is not None and r.iroas_ci is not None
    assert r.iroas_ci[0] < truth < r.iroas_ci[1]
    assert r.incremental_revenue == pytest.approx(r.iroas * d.test_spend)
    # Nothing planted: the interval covers zero.
    r0 = read_out(d, GeoPanel(geos, START, sales[0]))
    assert r0.lift_ci[0] < 0 < r0.lift_ci[1]


def test_switchback_readout_recovers_a_planted_lift(sims: dict) -> None:
    geos, sales = sims["delta"]
    d = design_experiment(
        "delta", pre_panel(sims, "delta"), BUDGET, experiment_type="switchback", duration_days=28
    )
    lift = 0.12
    full = plant_daily_lift(sales[1], d.on_days(), PRE, lift)
    r = read_out(d, GeoPanel(geos, START, full), test_spend=40_000)
    assert r.lift_ci[0] < lift < r.lift_ci[1] and r.significant
    assert r.test_spend == 40_000 and r.n_control == d.n_control


def test_weekly_readout_for_a_retailer_that_reports_by_week(sims: dict) -> None:
    geos, sales = sims["gamma"]
    daily = sales[0]
    weeks = daily.reshape(len(geos), -1, 7).sum(axis=2)
    panel = GeoPanel(geos, START, weeks, period_days=7)
    d = design_experiment("gamma", panel.until(START + timedelta(PRE - 1)), BUDGET, seed=2)
    assert d.duration_days == 28  # gamma's minimum, in whole weeks
    treated = np.array([g in set(d.treated_geos()) for g in geos])
    by_week = read_out(d, GeoPanel(geos, START, plant_geo_lift(weeks, treated, 13, 4, 0.08), 7))
    assert by_week.lift_ci[0] < 0.08 < by_week.lift_ci[1]
    # Whole-week windows lose nothing: the weekly readout equals the daily one.
    by_day = read_out(d, GeoPanel(geos, START, plant_geo_lift(daily, treated, PRE, TEST, 0.08)))
    assert by_week.lift == pytest.approx(by_day.lift, rel=1e-9)
    assert by_week.lift_ci == pytest.approx(by_day.lift_ci, rel=1e-9)


def test_a_test_that_starts_after_the_flight_does_ends_by_its_last_day(sims: dict) -> None:
    """Gamma reports by week, so a flight starting on a Sunday has its test start on the
    Monday: a 42-day test then ran a day past the 42-day flight (va19 of unseen41). It ends
    by the flight's last day, in whole weeks; a flight too short for any test is refused."""
    geos, sales = sims["gamma"]
    weeks = sales[0].reshape(len(geos), -1, 7).sum(axis=2)
    pre = GeoPanel(geos, START, weeks, period_days=7).until(START + timedelta(PRE - 1))
    sunday = pre.end + timedelta(days=7)  # pre ends on a Sunday (START is a Monday)
    assert sunday.weekday() == 6
    d = design_experiment("gamma", pre, BUDGET, flight_days=42, not_before=sunday,
                          expected_iroas=0.05, seed=2)  # fmt: skip
    assert d.start == sunday + timedelta(days=1)
    assert d.end <= sunday + timedelta(days=41) and d.duration_days == 35
    with pytest.raises(MeasurementRuleError, match="leaves 27 days of the flight"):
        design_experiment("gamma", pre, BUDGET, flight_days=28, not_before=sunday, seed=2)


def test_readout_drops_withheld_geos_and_needs_the_test_window(sims: dict) -> None:
    geos, sales = sims["alpha"]
    d = design_experiment("alpha", pre_panel(sims, "alpha"), BUDGET, duration_days=28)
    gone = d.control_geos()[0]
    keep = [i for i, g in enumerate(geos) if g != gone]
    panel = GeoPanel(tuple(geos[i] for i in keep), START, sales[0][keep])
    r = read_out(d, panel)
    assert r.dropped_geos == [gone] and r.n_control == 9
    with pytest.raises(ExperimentDesignError, match="covers"):
        read_out(d, GeoPanel(geos, START, sales[0][:, : PRE + 7]))


# ---------------------------------------------------------------------------------- SQL


def _events(rows: list[tuple[str, date, int]]) -> pd.DataFrame:
    """RMIS events with every RMIS column: `n` rows per (geo, day)."""
    recs = []
    for geo, day, n in rows:
        for j in range(n):
            ts = pd.Timestamp(day) + pd.Timedelta(hours=j % 24)
            recs.append(
                {
                    "event_id": f"alpha:{geo}-{day}-{j}",
                    "retailer_id": "alpha",
                    "brand_id": "acme",
                    "campaign_id": "AMC0000001",
                    "event_ts": ts,
                    "event_date": day,
                    "geo_id": geo,
                    "placement": "sponsored_search",
                    "audience_id": "all_shoppers",
                    "gtin": "00012345678905",
                    "retailer_item_id": "AM00000001",
                    "impressions": 100,
                    "clicks": 2,
                    "conversions": 1,
                    "spend": 1.5,
                    "attributed_sales": 4.0,
                    "attributed_units": 1,
                    "viewability": 0.7,
                }
            )
    df = pd.DataFrame(recs, columns=list(EVENT_COLUMNS))
    # Another brand's rows never count towards acme's cells.
    other = df.head(200).assign(brand_id="globex")
    return pd.concat([df, other], ignore_index=True)


def _sales(rows: list[tuple[str, date, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "sale_date": day,
                "retailer_id": "alpha",
                "brand_id": "acme",
                "geo_id": geo,
                "gtin": "00012345678905",
                "revenue": 5.0 + (j % 3),
                "units": 1 + j % 2,
            }
            for geo, day, n in rows
            for j in range(n)
        ]
    )


def test_sql_returns_geo_by_period_cells_with_no_cell_under_k() -> None:
    days = [date(2026, 8, 3) + timedelta(d) for d in range(14)]
    k = load_retailer_policy("alpha").data_access.min_cell_size
    ads = [(g, d, n) for g, n in (("501", k + 10), ("602", k), ("803", k - 1)) for d in days]
    ads += [("505", days[3], 5)]  # a thin ad cell in an otherwise held-out geo
    sold = [(g, d, k + 5) for g in ("501", "602", "803", "807", "505") for d in days]
    sold += [("504", d, k + (-1 if i == 6 else 5)) for i, d in enumerate(days)]  # one thin day
    con = duckdb.connect()
    con.register("rmis_events", _events(ads))
    con.register("geo_sales", _sales(sold))

    res = run_geo_period_query(con, "alpha", "acme", days[0], days[-1])
    df = res.frame
    assert res.period == "date" and res.k == k
    assert sorted(df["geo_id"].unique()) == ["501", "602", "807"]
    assert res.geos_withheld == 3  # 803 (thin ads), 505 (thin ad cell), 504 (thin sales day)
    assert (df["sale_rows"] >= k).all()
    assert ((df["ad_events"] == 0) | (df["ad_events"] >= k)).all()
    assert (df.groupby("geo_id").size() == len(days)).all()
    assert (df.loc[df["geo_id"] == "807", "spend"] == 0).all()  # a held-out geo shows no ads
    cell = df[(df["geo_id"] == "501") & (df["period"] == pd.Timestamp(days[0]))].iloc[0]
    assert cell["ad_events"] == k + 10 and cell["spend"] == pytest.approx(1.5 * (k + 10))

    panel = GeoPanel.from_frame(df)
    assert panel.geos == ("501", "602", "807") and panel.sales.shape == (3, 14)
    assert panel.start == days[0] and panel.period_days == 1

    weekly = DataAccessRules(allowed_dimensions=["week", "geo"], min_cell_size=k)
    wk = run_geo_period_query(con, "alpha", "acme", days[0], days[-1], rules=weekly)
    assert wk.period == "week" and len(wk.frame) == 2 * wk.geos_released
    assert "504" in set(wk.frame["geo_id"])  # its thin day is inside a week of k or more
    assert (wk.frame["sale_rows"] >= k).all()
    assert GeoPanel.from_frame(wk.frame).period_days == 7

    ads_only = run_geo_period_query(con, "alpha", "acme", days[0], days[-1], sales=None)
    assert sorted(ads_only.frame["geo_id"].unique()) == ["501", "602"]
    assert (ads_only.frame["ad_events"] >= k).all()


def test_sql_refuses_what_the_data_access_policy_forbids() -> None:
    con = duckdb.connect()
    with pytest.raises(QueryRefusedError, match="dp_required") as err:
        run_geo_period_query(con, "gamma", "globex", date(2026, 8, 3), date(2026, 8, 9))
    assert "gamma/data_access.md" in err.value.detail["source"]
    no_geo = DataAccessRules(allowed_dimensions=["date", "placement"])
    with pytest.raises(QueryRefusedError, match="geo"):
        run_geo_period_query(con, "alpha", "acme", date(2026, 8, 3), date(2026, 8, 9), rules=no_geo)


# --------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_small_coverage_simulation_lands_near_95_percent(scenario: object) -> None:
    r = run_scenario(scenario, sims=60, seed=3)  # type: ignore[arg-type]
    assert 0.85 <= r["coverage"] <= 1.0
    assert r["iroas_coverage"] == r["coverage"]
    assert r["false_positive_rate"] <= 0.15
    assert abs(r["relative_bias"]) < 0.25
    assert abs(r["empirical_power"] - r["predicted_power"]) < 0.25
    assert 0.7 < r["predicted_power"] < 0.9  # the planted lift is the median MDE
    assert math.isclose(r["true_iroas_mean"], 3.0, rel_tol=0.2)


def test_bench_command_prints_json_and_refuses_bad_input() -> None:
    app = typer.Typer()
    app.command()(measurement)
    runner = CliRunner()
    out = runner.invoke(app, ["--sims", "12", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert {s["scenario"] for s in result["scenarios"]} == {s.name for s in SCENARIOS}
    for s in result["scenarios"]:
        assert {"coverage", "relative_bias", "empirical_power", "predicted_power"} <= set(s)
    bad = runner.invoke(app, ["--sims", "3", "--json"])
    assert bad.exit_code == 2
    assert json.loads(bad.output)["error"]["type"] == "bench_input_error"


def test_a_flight_shorter_than_any_test_is_said_to_be_the_reason(sims: dict) -> None:
    """A reserve spread over a 14-day flight "lasts 14.0 days, shorter than the shortest
    allowed test": the flight was short, not the reserve (xa22 of unseen43). A reserve paced
    faster than the flight still says how long it lasts."""
    pre = pre_panel(sims, "gamma")
    with pytest.raises(MeasurementRuleError) as err:
        design_experiment("gamma", pre, 75_000.0, flight_days=14)
    assert err.value.detail["rule"] == "min_test_days"
    assert "the flight is 14 days, shorter than the shortest test allowed (28 days)" in (
        err.value.message)  # fmt: skip
    with pytest.raises(MeasurementRuleError) as err:
        design_experiment("alpha", pre_panel(sims, "alpha"), 1_000.0, daily_spend=500.0)
    assert "lasts 2.0 days" in err.value.message
