"""Response curves from clean-room aggregates: the two data views, recovery of the simulator's
true curves, interval coverage, partial pooling, and the flight-scale curves for the optimizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.cleanroom import CleanRoom
from tools.curves import (
    OOS_THRESHOLD,
    CurveFit,
    DataView,
    cleanroom_view,
    fit_curves,
    full_view,
    spend_cv,
)
from tools.errors import PrivacyBudgetExceededError, RMNError
from tools.evaluate import oracle_curves
from tools.explore import reserve_lines
from tools.firstparty import FirstPartyStore
from tools.harmonize import harmonize_all
from tools.optimize import Brief, allocate
from tools.world import World, generate_world, realized_outcome, write_exports

SEED = 3
BRAND = "acme"
KEY = ["retailer_id", "placement", "gtin"]


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=SEED)


@pytest.fixture(scope="module")
def data(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("curves-world")
    write_exports(world, out, events=1_000_000)
    harmonize_all(out / "raw", out / "rmis")
    return out


@pytest.fixture(scope="module")
def views(data: Path) -> tuple[DataView, DataView]:
    cr = cleanroom_view(data, BRAND)
    return cr, full_view(cr, FirstPartyStore(data, tenant=BRAND, brand=BRAND))


@pytest.fixture(scope="module")
def fits(views: tuple[DataView, DataView]) -> dict[str, CurveFit]:
    cr, full = views
    return {
        "cleanroom": fit_curves(cr),
        "full": fit_curves(full),
        "unpooled": fit_curves(full, pooling=False),
    }


def _with_truth(fit: CurveFit, world: World) -> pd.DataFrame:
    truth = world.line_items.to_pandas()[[*KEY, "a", "b", "oos_prob"]]
    t = fit.lines.merge(truth, on=KEY, suffixes=("", "_true"), validate="one_to_one")
    assert len(t) == len(fit.lines)
    return t


def _response_error(t: pd.DataFrame, level: np.ndarray, multiple: float) -> np.ndarray:
    """Log error of the fitted daily response at `multiple` x the line's history spend level."""
    x = multiple * level

    def r(a: pd.Series, b: pd.Series) -> np.ndarray:
        return (a * -np.expm1(-x / b)).to_numpy()

    return np.log(r(t["a"], t["b"]) / r(t["a_true"], t["b_true"]))


# ------------------------------------------------------------------------------ views


def test_cleanroom_view_holds_aggregates_only(views: tuple[DataView, DataView], world: World):
    cr, _ = views
    assert cr.kind == "cleanroom" and cr.economics is None and not cr.knows_economics
    blocked = {"margin", "unit_margin", "unit_cost", "oos_prob", "stock_units", "discount_pct"}
    assert not blocked & (set(cr.lines.columns) | set(cr.cells.columns))
    # Every day counts as in stock at full price: the view cannot know otherwise.
    assert (cr.cells["stock_days"] == cr.cells["days"]).all()
    assert (cr.cells["promo_days"] == 0).all()
    # Only the brand's own line items, each with its history total.
    brand_keys = set(
        map(tuple, world.line_items.to_pandas().query("brand_id == @BRAND")[KEY].to_numpy())
    )
    assert set(map(tuple, cr.lines[KEY].to_numpy())) <= brand_keys
    totals = cr.cells[cr.cells["period"] == "total"]
    assert sorted(totals["line"]) == list(range(len(cr.lines)))
    # k-anonymity: fine cells are suppressed (most days), none is below the retailer's k.
    by_retailer = {a.retailer: a for a in cr.access}
    assert by_retailer["alpha"].cells_suppressed["day"] > by_retailer["alpha"].cells["day"]
    assert {a.retailer for a in cr.access} == {"alpha", "beta", "delta"}


def test_cleanroom_queries_respect_policies(data: Path, views: tuple[DataView, DataView]):
    """Gamma allows weeks, not dates, and requires noise: the view asks accordingly and pays
    for it from the tenant's privacy budget. A second pass gets the released answers back
    free; one at a larger epsilon is new releases, which the budget cannot cover."""
    room = CleanRoom(data)
    globex = cleanroom_view(data, "globex", room=room)
    gamma = next(a for a in globex.access if a.retailer == "gamma")
    assert gamma.dp and "day" not in gamma.cells and gamma.epsilon_spent > 0
    at_gamma = globex.lines["retailer_id"].to_numpy()[globex.cells["line"]] == "gamma"
    assert (globex.cells.loc[at_gamma, "sales_var"] > 0).all()
    assert set(globex.cells.loc[at_gamma, "period"]) <= {"week", "total"}
    assert room.budget("globex", "gamma").spent == pytest.approx(gamma.epsilon_spent)
    again = cleanroom_view(data, "globex", room=room)
    assert next(a for a in again.access if a.retailer == "gamma").epsilon_spent == 0.0
    assert room.budget("globex", "gamma").spent == pytest.approx(gamma.epsilon_spent)
    assert again.cells.equals(globex.cells)
    with pytest.raises(PrivacyBudgetExceededError):
        cleanroom_view(data, "globex", room=room, dp_epsilon=1.0)


def test_full_view_adds_first_party(views: tuple[DataView, DataView], data: Path):
    cr, full = views
    econ = full.economics
    assert full.kind == "full" and econ is not None
    pd.testing.assert_frame_equal(full.lines, cr.lines)
    skus = FirstPartyStore(data, BRAND, BRAND).skus().to_pandas().set_index("gtin")
    gtins = full.lines["gtin"]
    expected = (skus["unit_margin"] / skus["list_price"]).reindex(gtins).to_numpy()
    np.testing.assert_allclose(econ.margin_rate, expected)
    np.testing.assert_allclose(econ.oos_prob, skus["oos_prob"].reindex(gtins).to_numpy())
    # Stock-outs (days without sell-through) and promotions now shape the cells.
    assert (full.cells["stock_days"] <= full.cells["days"]).all()
    assert (full.cells["stock_days"] < full.cells["days"]).any()
    assert (full.cells["promo_days"] > 0).any()
    # Promotions in the flight lift response days and sell at a lower margin.
    promo = econ.promo_days > 0
    assert promo.any() and (~promo).any()
    no_promo_rate = econ.margin_days[~promo] / full.flight_days
    np.testing.assert_allclose(no_promo_rate, econ.margin_rate[~promo])
    assert (econ.margin_days[promo] / full.flight_days < econ.margin_rate[promo]).all()


def test_full_view_zeroes_predicted_out_of_stock_lines(fits: dict[str, CurveFit]):
    fit = fits["full"]
    econ = fit.view.economics
    assert econ is not None
    at_risk = econ.oos_prob >= 0.5
    assert at_risk.any() and (~at_risk).any()
    curves = fit.curve_set(oos_threshold=0.5)
    np.testing.assert_array_equal(curves.out_of_stock, at_risk)
    plan = allocate(curves, Brief(budget=2.5e6, reserve_fraction=0.1, roas_floor=2.0))
    assert plan.status == "optimal"
    assert np.all(np.asarray(plan.allocation.spend)[at_risk] == 0)
    np.testing.assert_array_equal(fit.curve_set().out_of_stock, econ.oos_prob >= OOS_THRESHOLD)
    # Below the threshold the stock-out risk is priced in: revenue scales by (1 - p).
    priced = fit.curve_set(oos_threshold=None)
    assert not priced.out_of_stock.any()
    rev_days, _ = fit.flight_scale()
    np.testing.assert_allclose(
        priced.a, fit.lines["a"] * rev_days * (1 - econ.oos_prob), rtol=1e-12
    )
    np.testing.assert_allclose(fit.curve_set().a[~curves.out_of_stock], priced.a[~at_risk])


def test_cleanroom_curves_assume_stock_and_one_margin(fits: dict[str, CurveFit]):
    fit = fits["cleanroom"]
    f = fit.view.flight_days
    curves = fit.curve_set()
    assert not curves.out_of_stock.any()
    np.testing.assert_array_equal(curves.margin, 1.0)
    np.testing.assert_allclose(curves.a, fit.lines["a"] * f)
    np.testing.assert_allclose(curves.b, fit.lines["b"] * f)
    assert np.all(fit.curve_set(margin_rate=0.3).margin == 0.3)
    assert fit.promo_lift == 0.0
    assert curves.a_draws is not None and curves.a_draws.shape == (200, len(fit.lines))


# ---------------------------------------------------------------------------- fitting


def test_recovers_true_curves_for_well_observed_lines(
    fits: dict[str, CurveFit], views: tuple[DataView, DataView], world: World
):
    fit = fits["full"]
    t = _with_truth(fit, world)
    level = (views[1].lines["spend"] / views[1].lines["days"]).to_numpy()
    well = ~t["too_little_data"].to_numpy()
    assert well.sum() >= 50
    log_b = np.log(t["b"] / t["b_true"])[well]
    log_a = np.log(t["a"] / t["a_true"])[well]
    assert np.median(np.abs(log_b)) < 0.3
    assert np.median(np.abs(log_a)) < 0.2
    assert abs(float(np.median(log_b))) < 0.25
    # Where planning moves spend (around and above today's level) the curves are close.
    for multiple in (1.0, 2.0):
        assert np.median(np.abs(_response_error(t, level, multiple)[well])) < 0.08
    # The promotion lift per unit of discount is 1.5-3.5 in the simulator (2.5 on average).
    assert 1.5 <= fit.promo_lift <= 3.5
    assert fit.spend_cv == pytest.approx(spend_cv(views[1]))
    assert 0.5 < fit.spend_cv < 1.1


def test_intervals_cover_the_truth_for_most_lines(fits: dict[str, CurveFit], world: World):
    t = _with_truth(fits["full"], world)
    cover_a = (t["a_low"] <= t["a_true"]) & (t["a_true"] <= t["a_high"])
    cover_b = (t["b_low"] <= t["b_true"]) & (t["b_true"] <= t["b_high"])
    well = ~t["too_little_data"]
    assert cover_a.mean() > 0.6 and cover_b.mean() > 0.6
    assert cover_a[well].mean() > 0.7 and cover_b[well].mean() > 0.7
    # The intervals are informative, not just wide: a factor well under 3 for a typical line.
    width = np.log(t["b_high"] / t["b_low"])
    assert np.median(width[well]) < np.log(3.0)


def test_pooling_helps_thin_lines(
    fits: dict[str, CurveFit], views: tuple[DataView, DataView], world: World
):
    pooled = _with_truth(fits["full"], world)
    alone = _with_truth(fits["unpooled"], world)
    level = (views[1].lines["spend"] / views[1].lines["days"]).to_numpy()
    thin = pooled["too_little_data"].to_numpy()
    assert thin.sum() >= 20

    def rmse(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x[thin] ** 2)))

    def iroas_error(t: pd.DataFrame) -> np.ndarray:
        return np.log(t["a"] / t["b"] / (t["a_true"] / t["b_true"])).to_numpy()

    assert rmse(iroas_error(pooled)) < 0.8 * rmse(iroas_error(alone))
    for multiple in (1.0, 2.0):
        assert rmse(_response_error(pooled, level, multiple)) < 0.8 * rmse(
            _response_error(alone, level, multiple)
        )


def test_fit_quality_is_reported_per_line(fits: dict[str, CurveFit]):
    lines = fits["full"].lines
    assert set(lines["period"]) <= {"day", "week", "total"}
    assert (lines.loc[lines["period"] == "total", "n_periods"] == 1).all()
    assert (lines["too_little_data"] == (lines["n_periods"] < 4)).all()
    many = lines["n_periods"] >= 3
    assert lines.loc[many, "rmse"].notna().all() and lines.loc[~many, "r2"].isna().all()
    assert (lines.loc[many, "r2"].dropna() <= 1.0).all()
    # A day's attributed sales scatter by ~50% around the curve (attribution noise, promotion
    # events); a week's by less.
    rel = lines.dropna(subset=["rel_rmse"]).groupby("period")["rel_rmse"].median()
    assert rel["day"] < 0.8 and rel["week"] < rel["day"]
    assert ((lines["a_low"] <= lines["a"]) & (lines["a"] <= lines["a_high"])).mean() > 0.95


def test_draws_are_seeded_and_paired(views: tuple[DataView, DataView]):
    cr, _ = views
    one = fit_curves(cr, draws=50, seed=4)
    two = fit_curves(cr, draws=50, seed=4)
    other = fit_curves(cr, draws=50, seed=5)
    np.testing.assert_array_equal(one.a_draws, two.a_draws)
    assert not np.array_equal(one.a_draws, other.a_draws)
    assert one.a_draws.shape == one.b_draws.shape == (50, len(cr.lines))
    assert (one.a_draws > 0).all() and (one.b_draws > 0).all()
    curves = one.curve_set()
    np.testing.assert_allclose(curves.b_draws, one.b_draws * cr.flight_days)


def test_empty_view_is_refused(views: tuple[DataView, DataView]):
    cr, _ = views
    empty = DataView(
        kind="cleanroom",
        brand=BRAND,
        flight_days=28,
        lines=cr.lines.iloc[:0],
        cells=cr.cells.iloc[:0],
        access=cr.access,
    )
    with pytest.raises(RMNError, match="no line items"):
        fit_curves(empty)
    with pytest.raises(RMNError, match="clean-room view"):
        full_view(views[1], FirstPartyStore(Path("."), BRAND, BRAND))


# ------------------------------------------------------------- suppressed line items


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, DataView, DataView]:
    """A short, sparsely sampled history: k-anonymity suppresses some lines' totals."""
    world = generate_world(seed=SEED, days=56)
    out = tmp_path_factory.mktemp("thin-world")
    write_exports(world, out, events=100_000)
    harmonize_all(out / "raw", out / "rmis")
    cr = cleanroom_view(out, BRAND)
    return world, cr, full_view(cr, FirstPartyStore(out, tenant=BRAND, brand=BRAND))


def test_suppressed_lines_join_the_views(thin: tuple[World, DataView, DataView]):
    world, cr, full = thin
    truth = world.line_items.to_pandas().query("brand_id == @BRAND")
    for view in (cr, full):
        hidden = view.lines["suppressed"].to_numpy(dtype=bool)
        assert hidden.any() and (~hidden).any()
        # No history and no cells for them; every other line keeps its total.
        assert view.lines.loc[hidden, ["spend", "sales"]].isna().all().all()
        assert not np.isin(np.flatnonzero(hidden), view.cells["line"]).any()
        totals = view.cells[view.cells["period"] == "total"]
        assert sorted(totals["line"]) == np.flatnonzero(~hidden).tolist()
        # They are real line items of the brand, and no visible line is marked hidden.
        keys = set(map(tuple, view.lines.loc[hidden, KEY].to_numpy()))
        assert keys <= set(map(tuple, truth[KEY].to_numpy()))
    # The brand's SKU table finds every line the clean room hid (the world runs every listed
    # SKU on every placement); the clean-room view alone finds only some.
    hidden_full = set(map(tuple, full.lines.loc[full.lines["suppressed"], KEY].to_numpy()))
    hidden_cr = set(map(tuple, cr.lines.loc[cr.lines["suppressed"], KEY].to_numpy()))
    assert set(map(tuple, truth[KEY].to_numpy())) == set(map(tuple, full.lines[KEY].to_numpy()))
    assert hidden_cr < hidden_full
    assert sum(a.lines_suppressed for a in cr.access) == len(hidden_full)
    assert any("pooled prior alone" in note for note in full.notes)
    shared = full.lines[~full.lines["suppressed"]].reset_index(drop=True)
    seen = cr.lines[~cr.lines["suppressed"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(shared, seen)


def test_prior_only_curves_are_wide_and_cover_the_truth(
    thin: tuple[World, DataView, DataView],
):
    world, _, full = thin
    fit = fit_curves(full, seed=SEED)
    lines = fit.lines
    prior = lines["prior_only"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(prior, full.lines["suppressed"].to_numpy(dtype=bool))
    assert (lines.loc[prior, "period"] == "none").all()
    assert (lines.loc[prior, "n_periods"] == 0).all() and lines.loc[prior, "too_little_data"].all()
    assert lines.loc[prior, "r2"].isna().all()
    t = _with_truth(fit, world)
    width = np.log(t["b_high"] / t["b_low"]).to_numpy()
    assert np.median(width[prior]) > 1.5 * np.median(width[~prior])
    for p in ("a", "b"):
        covered = (t[f"{p}_low"] <= t[f"{p}_true"]) & (t[f"{p}_true"] <= t[f"{p}_high"])
        assert covered[prior].mean() >= 0.85
    # Suppressed lines spent little, and the prior knows it: no systematic overstatement of
    # what they can absorb or earn.
    assert abs(float(np.median(np.log(t["b"] / t["b_true"])[prior]))) < 0.5
    assert abs(float(np.median(np.log(t["a"] / t["a_true"])[prior]))) < 0.5
    curves = fit.curve_set(oos_threshold=None)
    np.testing.assert_array_equal(curves.prior_only, prior)
    again = fit_curves(full, seed=SEED)
    np.testing.assert_array_equal(again.a_draws, fit.a_draws)


def test_plans_spend_a_little_on_prior_only_lines(thin: tuple[World, DataView, DataView]):
    world, _, full = thin
    curves = fit_curves(full, seed=SEED).curve_set(oos_threshold=None)
    prior = curves.prior_only
    brief = Brief(budget=world.brands[BRAND].budget_scale, reserve_fraction=0.1, roas_floor=2.0)
    plan = allocate(curves, brief)
    without = allocate(curves.replace(out_of_stock=curves.out_of_stock | prior), brief)
    assert plan.status == without.status == "optimal"
    x = np.asarray(plan.allocation.spend)
    assert (x[prior] > 0).mean() > 0.5
    # A little: less per line than the lines with a history get.
    assert x[prior].mean() < x[~prior].mean()

    def realized(result) -> float:  # noqa: ANN001
        a = result.allocation
        keys = zip(a.retailer_id, a.placement, a.gtin, strict=True)
        return realized_outcome(world, dict(zip(keys, a.spend, strict=True))).incremental_margin

    oracle = allocate(oracle_curves(world, BRAND), brief)
    assert realized(without) < realized(plan) <= realized(oracle)
    # The experiment reserve goes to them first: their curves are the least known.
    picked = reserve_lines(curves, int(prior.sum()))
    assert prior[picked].mean() >= 0.9


def test_a_view_with_no_history_is_refused(thin: tuple[World, DataView, DataView]):
    _, cr, _ = thin
    hidden = cr.lines.assign(suppressed=True)
    blind = DataView(
        kind="cleanroom",
        brand=BRAND,
        flight_days=28,
        lines=hidden,
        cells=cr.cells.iloc[:0],
        access=cr.access,
    )
    with pytest.raises(RMNError, match="no history"):
        fit_curves(blind)
