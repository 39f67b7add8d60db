"""The simulated market: catalog, ground truth, native exports, planted dirt, round trips."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.bench import app as bench_app
from cli.world import app
from tools.errors import RMNError
from tools.firstparty import FILES as FIRST_PARTY_FILES
from tools.firstparty import SKU_COLUMNS, FirstPartyStore
from tools.rmis import Placement, is_valid_gtin14
from tools.world import (
    BRANDS,
    DIRT_KINDS,
    RETAILERS,
    AllocationLine,
    World,
    generate_world,
    load_world,
    realized_outcome,
    write_exports,
)
from tools.world.formats import PLACEMENT_LABELS

EVENTS = 20_000
DAYS = 14


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=7, days=DAYS)


@pytest.fixture(scope="module")
def dirty(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dirty")
    write_exports(world, out, events=EVENTS, dirt_rate=0.01)
    return out


@pytest.fixture(scope="module")
def clean(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_exports(world, out, events=EVENTS, dirt_rate=0.0)
    return out


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _line_spend(world: World, brand: str, per_line: float) -> dict[tuple[str, str, str], float]:
    li = world.line_items
    keys = zip(
        li.column("retailer_id").to_pylist(),
        li.column("placement").to_pylist(),
        li.column("gtin").to_pylist(),
        li.column("brand_id").to_pylist(),
        strict=True,
    )
    return {(r, p, g): per_line for r, p, g, b in keys if b == brand}


# ------------------------------------------------------------------------------ catalog


def test_catalog_retailers_brands_and_skus(world: World) -> None:
    assert {r: RETAILERS[r].timezone for r in RETAILERS} == {
        "alpha": "America/Chicago",
        "beta": "UTC",
        "gamma": "America/New_York",
        "delta": "UTC",
    }
    assert [p.value for p in RETAILERS["delta"].placements] == [
        "sponsored_search",
        "sponsored_product",
        "display_onsite",
        "onsite_video",
    ]
    for rid in RETAILERS:
        n_aud = sum(a.retailer_id == rid for a in world.audiences)
        assert 4 <= n_aud <= 6
    skus = world.skus.to_pandas()
    counts = skus.groupby("brand_id").size()
    assert set(counts.index) == set(BRANDS) and counts.between(20, 50).all()
    assert all(is_valid_gtin14(g) and g.startswith("00") for g in skus["gtin"])
    assert skus["gtin"].is_unique
    assert skus["margin_rate"].between(0.05, 0.5).all()
    assert skus["margin_rate"].std() > 0.05
    assert ((skus["list_price"] - skus["unit_cost"] - skus["unit_margin"]).abs() < 1e-9).all()
    high = (skus["oos_prob"] >= 0.5).mean()
    assert 0.08 <= high <= 0.17 and skus.loc[skus["oos_prob"] < 0.5, "oos_prob"].max() <= 0.1
    # Each retailer carries only what fits its format.
    lst = world.listings.to_pandas().merge(skus[["gtin", "category"]], on="gtin")
    for rid, info in RETAILERS.items():
        assert set(lst.loc[lst["retailer_id"] == rid, "category"]) <= set(info.categories)
    assert set(lst.loc[lst["retailer_id"] == "gamma", "category"]) <= {
        "beauty",
        "skin_care",
        "otc_health",
        "vitamins",
        "personal_care",
    }
    assert world.dmas.num_rows == 50
    assert abs(sum(world.dmas.column("weight").to_pylist()) - 1) < 1e-9
    assert world.line_items.num_rows == sum(
        len(RETAILERS[r].placements) for r in lst["retailer_id"]
    )


def test_bad_parameters_raise_rmn_errors(world: World, tmp_path: Path) -> None:
    with pytest.raises(RMNError, match="days"):
        generate_world(days=0)
    with pytest.raises(RMNError, match="flight_days"):
        generate_world(flight_days=0)
    with pytest.raises(RMNError, match="seed"):
        generate_world(seed=-1)
    with pytest.raises(RMNError, match="events"):
        write_exports(world, tmp_path, events=0)
    with pytest.raises(RMNError, match="dirt_rate"):
        write_exports(world, tmp_path, events=10, dirt_rate=0.5)
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(RMNError, match="not a directory"):
        write_exports(world, tmp_path / "file", events=10)
    assert (tmp_path / "file").read_text() == "keep me"


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_outcomes(
    world: World, dirty: Path, tmp_path: Path
) -> None:
    again = generate_world(seed=7, days=DAYS)
    write_exports(again, tmp_path, events=EVENTS, dirt_rate=0.01)
    assert _hashes(dirty) == _hashes(tmp_path)
    plan = _line_spend(world, "acme", 5_000.0)
    assert realized_outcome(world, plan) == realized_outcome(again, plan)


def test_different_seed_differs(world: World) -> None:
    other = generate_world(seed=8, days=DAYS)
    assert other.skus.column("gtin").to_pylist() != world.skus.column("gtin").to_pylist()
    a = world.line_items.column("a").to_numpy()
    b = other.line_items.column("a").to_numpy()
    assert a.shape != b.shape or not np.allclose(a, b)


# ---------------------------------------------------------------------------- the truth


def test_curves_increasing_concave_and_scaled(world: World) -> None:
    li = world.line_items.to_pandas()
    for i in range(0, len(li), 7):
        r = world.response(i, np.linspace(0, 5 * li["b"].iloc[i], 200))
        d1 = np.diff(r)
        assert r[0] == 0 and (d1 > 0).all() and (np.diff(d1) < 0).all()
    iroas0 = li["a"] / li["b"]
    assert iroas0.between(1, 12).all()
    by_plc = iroas0.groupby(li["placement"]).mean()
    assert by_plc["sponsored_search"] > by_plc["sponsored_product"] > by_plc["display_offsite"]
    assert by_plc.idxmin() == "display_offsite"
    # A brand's summed flight saturation spend is within an order of magnitude of
    # $0.5M-$5M briefs, so such budgets land in the curved region.
    sat = li.groupby("brand_id")["b"].sum() * 28
    assert sat.between(5e5, 5e6).all()


def test_out_of_stock_spend_is_wasted(world: World) -> None:
    li = world.line_items.to_pandas()
    high = li[li["oos_prob"] > 0.5].iloc[0]
    low = li[li["oos_prob"] < 0.1].iloc[0]
    spend = 28 * high["b"]
    key = (high["retailer_id"], high["placement"], high["gtin"])
    out = realized_outcome(world, {key: spend})
    no_oos = out.incremental_revenue / (1 - high["oos_prob"])
    assert out.spend_on_oos == pytest.approx(spend * high["oos_prob"])
    assert out.incremental_revenue < 0.5 * no_oos
    low_out = realized_outcome(
        world,
        [
            AllocationLine(
                retailer_id=low["retailer_id"],
                placement=low["placement"],
                gtin=low["gtin"],
                spend=spend,
            )
        ],
    )
    assert low_out.spend_on_oos == pytest.approx(spend * low["oos_prob"])
    assert low_out.spend_on_oos < 0.1 * spend


def test_history_respects_stock_and_promotions(clean: Path) -> None:
    h = pq.read_table(clean / "world" / "history_truth.parquet").to_pandas()
    assert (h.loc[~h["in_stock"], "incremental_revenue"] == 0).all()
    assert (~h["in_stock"]).any() and h["promo"].any()
    on = h[h["spend"] > 0]
    assert (on["delivery_rows"] >= 1).all() and (h.loc[h["spend"] == 0, "delivery_rows"] == 0).all()
    # Promo days respond more per dollar than regular days (same lines, in stock).
    inst = on[on["in_stock"]]
    ratio = inst["incremental_revenue"] / inst["spend"]
    assert ratio[inst["promo"]].median() > ratio[~inst["promo"]].median()
    # Spend spans low and high levels so curves can be fit from history.
    rel = on.groupby(["retailer_id", "placement", "gtin"])["spend"].agg(["min", "max"])
    assert (rel["max"] / rel["min"]).median() > 4


def _optimal(world: World, lines: np.ndarray, budget: float, value: np.ndarray) -> np.ndarray:
    """Water-filling for exponential curves: spend S_i = F b_i ln(k_i / lam)^+ where
    k_i is the marginal value at zero spend; bisect lam to meet the budget."""
    F = world.flight_days
    b = world.line_items.column("b").to_numpy()[lines]
    k = value / (F * b)
    lo, hi = -30.0, float(np.log(k.max()))
    for _ in range(200):
        lam = (lo + hi) / 2
        spend = F * b * np.maximum(0.0, np.log(np.maximum(k, 1e-300)) - lam)
        lo, hi = (lam, hi) if spend.sum() > budget else (lo, lam)
    return spend


def test_margin_optimal_differs_from_revenue_optimal(world: World) -> None:
    li = world.line_items.to_pandas()
    lines = np.flatnonzero(li["brand_id"] == "acme")
    sub = li.iloc[lines]
    scale = sub["a"] * (1 - sub["oos_prob"])
    budget = 1_000_000.0
    s_rev = _optimal(world, lines, budget, (scale * sub["flight_rev_days"]).to_numpy())
    s_mar = _optimal(world, lines, budget, (scale * sub["flight_margin_days"]).to_numpy())
    keys = list(zip(sub["retailer_id"], sub["placement"], sub["gtin"], strict=True))
    rev_plan = realized_outcome(world, dict(zip(keys, s_rev, strict=True)))
    mar_plan = realized_outcome(world, dict(zip(keys, s_mar, strict=True)))
    assert rev_plan.spend == pytest.approx(budget, rel=1e-6)
    assert mar_plan.spend == pytest.approx(budget, rel=1e-6)
    assert rev_plan.incremental_revenue > mar_plan.incremental_revenue
    assert mar_plan.incremental_margin > 1.05 * rev_plan.incremental_margin
    assert np.abs(s_rev - s_mar).sum() > 0.2 * budget
    # The budget is in the curved region: average return well below the best first dollar.
    best_first = sub["a"] / sub["b"] * (1 - sub["oos_prob"]) * sub["flight_rev_days"] / 28
    assert rev_plan.iroas < 0.8 * best_first.max()


def test_outcome_accepts_lines_dicts_tables_and_rejects_bad_input(world: World) -> None:
    plan = _line_spend(world, "globex", 2_500.0)
    as_lines = [
        AllocationLine(retailer_id=r, placement=p, gtin=g, spend=s) for (r, p, g), s in plan.items()
    ]
    by_dict = realized_outcome(world, plan)
    assert realized_outcome(world, as_lines) == by_dict
    import pandas as pd

    frame = pd.DataFrame(
        [{"retailer_id": r, "placement": p, "gtin": g, "spend": s} for (r, p, g), s in plan.items()]
    )
    assert realized_outcome(world, frame) == by_dict
    assert by_dict.spend == pytest.approx(2_500.0 * len(plan))
    assert by_dict.iroas == pytest.approx(by_dict.incremental_revenue / by_dict.spend)
    assert len(by_dict.lines) == len(plan)
    # Enum placements, and repeated lines add up.
    (r, p, g), _ = next(iter(plan.items()))
    twice = realized_outcome(world, [(r, Placement(p), g, 100.0), (r, p, g, 100.0)])
    assert twice.spend == 200.0 and len(twice.lines) == 1
    empty = realized_outcome(world, {})
    assert empty.iroas == 0.0 and empty.incremental_revenue == 0.0
    with pytest.raises(RMNError, match="unknown line items: alpha/sponsored_search/123"):
        realized_outcome(world, {("alpha", "sponsored_search", "123"): 1.0})
    with pytest.raises(RMNError, match="unknown line items"):
        realized_outcome(world, {(r, "onsite_video" if r != "delta" else "x", g): 1.0})
    with pytest.raises(RMNError, match=f"non-negative.*{g}=-5"):
        realized_outcome(world, {(r, p, g): -5.0})
    with pytest.raises(RMNError, match="non-negative"):
        realized_outcome(world, {(r, p, g): float("nan")})


def test_scores_100k_lines(world: World) -> None:
    # How fast is `rmn bench world`'s business (scoring.target_s); here only the sums count.
    keys = world.line_keys
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(keys), 100_000)
    spend = rng.uniform(0, 50, 100_000)
    allocation = [(*keys[i], s) for i, s in zip(pick.tolist(), spend.tolist(), strict=True)]
    out = realized_outcome(world, allocation)
    total = np.bincount(pick, weights=spend, minlength=len(keys))
    rev, margin = world.expected(total)
    assert out.incremental_revenue == pytest.approx(rev.sum())
    assert out.incremental_margin == pytest.approx(margin.sum())


def test_bench_world_times_scoring_and_names_the_machine() -> None:
    args = ["world", "--events", "0", "--lines", "2000", "--runs", "2", "--seed", "3", "--json"]
    result = CliRunner().invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    score = out["score"]
    assert score["lines"] == 2000 and len(score["all_seconds"]) == 2 and score["seconds"] > 0
    assert score["target_s"] == pytest.approx(5.0 * 2000 / 100_000)
    assert out["exports_s"] is None and out["line_items"] == len(generate_world(seed=3).line_keys)
    assert out["machine"]["cpus"] >= 1 and isinstance(out["machine"]["cpu_flags"], list)


# ------------------------------------------------------------------------------ exports


def _events(con: duckdb.DuckDBPyConnection, out: Path, rid: str) -> duckdb.DuckDBPyRelation:
    return con.sql(_events_sql(out, rid))


def _events_sql(out: Path, rid: str) -> str:
    """A retailer's native events in one neutral shape (row_id, item, gtin, label, ts_local,
    spend, sales, imps, clicks, orders, units), parsed the way a harmonizer would."""
    raw = out / "raw" / rid
    if rid == "alpha":
        sql = f"""
        SELECT ROW_ID AS row_id, ITEM_ID AS item, PLACEMENT_TYPE AS label,
               CAST(EVENT_HOUR_LOCAL AS TIMESTAMP) AS ts_local,
               CAST(SPEND_CENTS AS BIGINT) / 100 AS spend,
               CAST(SALES_CENTS AS BIGINT) / 100 AS sales,
               CAST(IMPRESSIONS AS BIGINT) AS imps, CAST(CLICKS AS BIGINT) AS clicks,
               CAST(ORDERS AS BIGINT) AS orders, CAST(UNITS AS BIGINT) AS units
        FROM read_csv('{raw}/events.csv', all_varchar = true)"""
        xw = (
            f"SELECT ITEM_ID AS item, GTIN AS gtin FROM read_csv('{raw}/item_crosswalk.csv', "
            "all_varchar = true)"
        )
    elif rid == "beta":
        sql = f"""
        SELECT eventId AS row_id, productId AS item, placement AS label,
               strptime(timestampUtc, '%Y-%m-%dT%H:%M:%SZ') AS ts_local,
               cost AS spend, attributedSales AS sales, impressions AS imps, clicks, orders,
               units
        FROM read_json('{raw}/events.jsonl', format = 'newline_delimited', columns = {{
            eventId: 'VARCHAR', advertiserName: 'VARCHAR', campaignId: 'VARCHAR',
            timestampUtc: 'VARCHAR', dma: 'VARCHAR', placement: 'VARCHAR', audience: 'VARCHAR',
            productId: 'VARCHAR', impressions: 'BIGINT', clicks: 'BIGINT', orders: 'BIGINT',
            units: 'BIGINT', cost: 'DOUBLE', attributedSales: 'DOUBLE'}})"""
        xw = (
            f"SELECT productId AS item, '00' || upc AS gtin FROM read_json('{raw}/products.jsonl',"
            " columns = {productId: 'VARCHAR', upc: 'VARCHAR', name: 'VARCHAR'})"
        )
    elif rid == "gamma":
        sql = f"""
        SELECT CAST(event_id AS VARCHAR) AS row_id, sku_code AS item, placement_name AS label,
               ts_local, cost_usd AS spend, revenue_usd AS sales, imps, clks AS clicks,
               convs AS orders, units
        FROM read_parquet('{raw}/events.parquet')"""
        xw = f"SELECT sku_code AS item, gtin FROM read_parquet('{raw}/sku_xref.parquet')"
    else:
        money = "CAST(replace(replace({c}, '$', ''), ',', '') AS DECIMAL(18, 2))"
        sql = f"""
        SELECT id AS row_id, item, placement AS label,
               make_timestamp(CAST(epoch_ms AS BIGINT) * 1000) AS ts_local,
               {money.format(c="cost")} AS spend, {money.format(c="sales")} AS sales,
               CAST(impressions AS BIGINT) AS imps, CAST(clicks AS BIGINT) AS clicks,
               CAST(purchases AS BIGINT) AS orders, CAST(units AS BIGINT) AS units
        FROM read_csv('{raw}/events.csv', delim = ';', all_varchar = true)"""
        xw = (
            f"SELECT item, '0' || ean13 AS gtin FROM read_csv('{raw}/items.csv', delim = ';', "
            "all_varchar = true)"
        )
    labels = PLACEMENT_LABELS[rid]
    cases = " ".join(f"WHEN '{v}' THEN '{k}'" for k, v in labels.items())
    return f"""SELECT e.*, CAST(e.row_id AS VARCHAR) AS rid, x.gtin,
                      CASE e.label {cases} END AS placement
               FROM ({sql}) e LEFT JOIN ({xw}) x USING (item)"""


def test_native_formats(dirty: Path, world: World) -> None:
    exported = world.exported_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert exported == "2026-07-15T06:00:00Z"
    for rid in RETAILERS:
        meta = json.loads((dirty / "raw" / rid / "export.json").read_text())
        assert meta["retailer"] == rid and meta["exported_at"] == exported
        assert all((dirty / "raw" / rid / f).is_file() for f in meta["files"].values())

    alpha = (dirty / "raw" / "alpha" / "events.csv").read_text().splitlines()
    assert alpha[0] == (
        "ROW_ID,ADVERTISER_ID,CAMPAIGN_ID,EVENT_HOUR_LOCAL,DMA_CODE,PLACEMENT_TYPE,"
        "AUDIENCE_SEGMENT,ITEM_ID,IMPRESSIONS,CLICKS,ORDERS,SPEND_CENTS,SALES_CENTS,UNITS"
    )
    row = re.compile(
        r"^\d+,AM-1000[1-4],[^,]+,(\d{4}-\d\d-\d\d \d\d:00:00)?,\d{3},[^,]+,[a-z_]+,"
        r"(AM\d{8})?,\d+,\d+,\d+,(-?\d+)?,\d+,\d+$"
    )
    assert all(row.match(line) for line in alpha[1:])
    # Local wall time: Alpha's clean history starts at local midnight of the first day.
    assert alpha[1].split(",")[3] == "2026-07-01 00:00:00"

    beta = (dirty / "raw" / "beta" / "events.jsonl").read_text().splitlines()
    first = json.loads(beta[0])
    assert list(first) == [
        "eventId",
        "advertiserName",
        "campaignId",
        "timestampUtc",
        "dma",
        "placement",
        "audience",
        "productId",
        "impressions",
        "clicks",
        "orders",
        "units",
        "cost",
        "attributedSales",
    ]
    assert re.fullmatch(r"b-\d{9}", first["eventId"]) and isinstance(first["dma"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z", first["timestampUtc"])
    advertisers = {json.loads(x)["advertiserName"] for x in beta}
    assert advertisers <= {"Acme Foods Inc.", "Globex Health", "Initech Home", "Brand X Co."}
    products = [json.loads(x) for x in (dirty / "raw/beta/products.jsonl").read_text().splitlines()]
    assert all(re.fullmatch(r"BG-\d{6}", p["productId"]) and len(p["upc"]) == 12 for p in products)
    assert all(is_valid_gtin14("00" + p["upc"]) for p in products)

    gamma = pq.read_table(dirty / "raw" / "gamma" / "events.parquet")
    types = {f.name: str(f.type) for f in gamma.schema}
    assert types["ts_local"] == "timestamp[us]" and types["event_id"] == "int64"
    assert types["imps"] == "int64" and types["cost_usd"] == "double"
    g = gamma.to_pandas()
    assert set(g["advertiser"]) <= {"GP-ACME", "GP-GLOBEX", "GP-INITECH", "GP-BRANDX"}
    assert g["sku_code"].dropna().str.fullmatch(r"G\d{7}").all()
    assert g.loc[g["placement_name"] == "SEARCH", "viewable_pct"].isna().all()
    shown = g.loc[g["placement_name"].isin(["PDP", "OFFSITE", "SCREEN"]), "viewable_pct"]
    assert shown.notna().all() and shown.between(0, 100).all()
    xref = pq.read_table(dirty / "raw" / "gamma" / "sku_xref.parquet").to_pandas()
    assert xref["gtin"].map(is_valid_gtin14).all()

    delta = (dirty / "raw" / "delta" / "events.csv").read_text().splitlines()
    assert delta[0] == (
        "id;advertiser;campaign;epoch_ms;geo;placement;audience;item;impressions;clicks;"
        "purchases;units;cost;sales"
    )
    row = re.compile(
        r"^\d+;(acme|globex|initech|brand-x);[^;]+;(\d{13})?;DMA-\d{3};[^;]+;[a-z_]+;"
        r"(DH-\d{7})?;\d+;\d+;\d+;\d+;(-?\$\d{1,3}(,\d{3})*\.\d\d)?;\$\d{1,3}(,\d{3})*\.\d\d$"
    )
    assert all(row.match(line) for line in delta[1:])
    assert any("," in line.split(";")[-1] for line in delta[1:])  # thousands separators
    items = (dirty / "raw" / "delta" / "items.csv").read_text().splitlines()
    assert items[0] == "item;ean13" and all(
        is_valid_gtin14("0" + x.split(";")[1]) for x in items[1:]
    )


def test_dirt_manifest_matches_planted_rows(dirty: Path, world: World) -> None:
    con = duckdb.connect()
    exported_local = world.exported_at.replace(tzinfo=None)
    total_written = 0
    for rid in RETAILERS:
        manifest = json.loads((dirty / "world" / "dirt" / f"{rid}.json").read_text())
        assert manifest["retailer"] == rid and list(manifest["kinds"]) == list(DIRT_KINDS)
        ev = _events(con, dirty, rid)
        n = ev.count("*").fetchall()[0][0]
        assert manifest["rows_written"] == n
        total_written += n

        def ids(where: str, ev: duckdb.DuckDBPyRelation = ev) -> set[str]:
            return {r[0] for r in ev.filter(where).select("rid").fetchall()}

        dups = {r[0]: r[1] for r in ev.aggregate("rid, count(*) AS n").filter("n > 1").fetchall()}
        # Timestamps are compared as local wall time: clean rows end before the flight starts
        # locally, future rows are at least 18 hours past the export in any of these zones.
        found = {
            "duplicate_row": set(dups),
            "null_required": ids("item IS NULL OR spend IS NULL OR ts_local IS NULL"),
            "negative_cost": ids("spend < 0"),
            "future_date": ids(f"ts_local > TIMESTAMP '{exported_local}'"),
            "unknown_placement": ids("placement IS NULL"),
            "clicks_gt_impressions": ids("clicks > imps"),
            "unknown_item": ids("item IS NOT NULL AND gtin IS NULL"),
        }
        assert all(v == 2 for v in dups.values())
        for kind in DIRT_KINDS:
            entry = manifest["kinds"][kind]
            assert entry["count"] == len(entry["row_ids"]) >= 1
            assert set(entry["row_ids"]) == found[kind], (rid, kind)
        # Disjoint kinds: each dirty row has exactly one problem.
        all_ids = [i for k in DIRT_KINDS for i in manifest["kinds"][k]["row_ids"]]
        assert len(all_ids) == len(set(all_ids))
        assert n == ev.aggregate("count(DISTINCT rid)").fetchall()[0][0] + len(dups)
        # Clean rows: within the history window, known item and placement, sane counts.
        dirty_ids = "', '".join(all_ids)
        bad = ev.filter(
            f"rid NOT IN ('{dirty_ids}') AND NOT (ts_local >= TIMESTAMP '{world.start}' "
            f"AND ts_local < TIMESTAMP '{world.flight_start}' AND spend >= 0 AND sales >= 0 "
            "AND orders <= units AND clicks <= imps AND gtin IS NOT NULL)"
        )
        assert bad.count("*").fetchall()[0][0] == 0
    assert EVENTS <= total_written <= EVENTS * 1.05


def test_clean_exports_add_up_to_history_truth(clean: Path, world: World) -> None:
    con = duckdb.connect()
    truth = pq.read_table(clean / "world" / "history_truth.parquet")
    con.register("truth", truth)
    for rid in RETAILERS:
        manifest = json.loads((clean / "world" / "dirt" / f"{rid}.json").read_text())
        assert all(v["count"] == 0 for v in manifest["kinds"].values())
        con.execute(f"CREATE OR REPLACE TEMP VIEW ev AS {_events_sql(clean, rid)}")
        diff = con.sql(
            f"""
            WITH e AS (
              SELECT CAST(ts_local AS DATE) AS date, placement, gtin,
                     round(sum(spend) * 100) AS spend_c, round(sum(sales) * 100) AS sales_c,
                     count(*) AS n
              FROM ev GROUP BY ALL),
            t AS (
              SELECT date, placement, gtin, round(spend * 100) AS spend_c,
                     round(attributed_sales * 100) AS sales_c, delivery_rows AS n
              FROM truth WHERE retailer_id = '{rid}' AND spend > 0)
            SELECT count(*) FROM t FULL JOIN e USING (date, placement, gtin)
            WHERE e.spend_c IS DISTINCT FROM t.spend_c OR e.sales_c IS DISTINCT FROM t.sales_c
               OR e.n IS DISTINCT FROM t.n"""
        ).fetchall()[0][0]
        assert diff == 0, rid
        if rid in ("alpha", "gamma"):
            # In-store screens play during local store hours only.
            hours = con.sql(
                "SELECT min(hour(ts_local)), max(hour(ts_local)) FROM ev "
                "WHERE placement = 'instore_screen'"
            ).fetchall()[0]
            assert hours[0] >= 7 and hours[1] <= 21


def test_row_totals_and_tiny_worlds(world: World, dirty: Path, tmp_path: Path) -> None:
    rows = sum(
        json.loads((dirty / "world" / "dirt" / f"{r}.json").read_text())["rows_written"]
        for r in RETAILERS
    )
    assert EVENTS <= rows <= 1.05 * EVENTS
    tiny = write_exports(world, tmp_path, events=5)
    assert tiny.events == 5 and tiny.rows_written == 5
    for rid in RETAILERS:  # every retailer still has a readable, header-only export
        events_file = tmp_path / "raw" / rid / tiny.retailers[rid].files["events"].split("/")[-1]
        assert events_file.is_file()
    h = pq.read_table(tmp_path / "world" / "history_truth.parquet").to_pandas()
    assert (h["spend"] > 0).sum() <= 5


@pytest.mark.parametrize("start", [date(2026, 10, 29), date(2027, 3, 12)])
def test_daylight_saving_days(start: date, tmp_path: Path) -> None:
    world = generate_world(seed=3, days=5, start=start, flight_days=7)
    write_exports(world, tmp_path, events=4000, dirt_rate=0)
    con = duckdb.connect()
    truth = pq.read_table(tmp_path / "world" / "history_truth.parquet").to_pandas()
    for rid in ("alpha", "gamma"):
        ev = con.execute(_events_sql(tmp_path, rid)).df()
        by_day = ev.groupby(ev["ts_local"].dt.date)["spend"].sum().round(2)
        t = truth[truth["retailer_id"] == rid].groupby("date")["spend"].sum().round(2)
        t = t[t > 0]
        assert by_day.to_dict() == pytest.approx(t.to_dict())


def test_firstparty(clean: Path, world: World) -> None:
    """The simulator writes each brand's folder as a user would: brand.yaml, its guide and
    the documented first-party files, which the store validates and reads."""
    truth = pq.read_table(clean / "world" / "history_truth.parquet").to_pandas()
    for bid in BRANDS:
        fp = clean / "brands" / bid
        assert {"brand.yaml", "voice.md", "claims.md"} <= {p.name for p in fp.iterdir()}
        products = pq.read_table(fp / "products.parquet").to_pandas()
        assert list(products.columns) == list(FIRST_PARTY_FILES["products"][0].model_fields)
        skus = FirstPartyStore(clean, tenant=bid, brand=bid).skus().to_pandas()
        assert list(skus.columns) == list(SKU_COLUMNS)
        assert 20 <= len(skus) <= 50
        promos = pq.read_table(fp / "promotions.parquet").to_pandas()
        assert set(promos.columns) == {"retailer_id", "gtin", "start_date", "end_date",
                                       "discount_pct"}  # fmt: skip
        assert promos["end_date"].max() > world.flight_start  # flight promotions are known
        assert promos["discount_pct"].between(10, 40).all()
        daily = FirstPartyStore(clean, tenant=bid, brand=bid).promotions().to_pandas()
        want = world.promotions.to_pandas()
        want = want[want["gtin"].isin(set(skus["gtin"]))]
        assert len(daily) == len(want)  # the runs expand back to the simulated days
        sell = pq.read_table(fp / "sellthrough.parquet").to_pandas()
        assert set(sell.columns) == {"date", "retailer_id", "gtin", "units", "revenue"}
        inc = (
            truth[truth["brand_id"] == bid]
            .groupby(["date", "retailer_id", "gtin"])
            .agg(inc=("incremental_revenue", "sum"), in_stock=("in_stock", "first"))
            .reset_index()
        )
        m = sell.merge(inc, on=["date", "retailer_id", "gtin"])
        assert len(m) == len(sell)
        assert (m["revenue"] >= m["inc"] - 0.01).all()
        assert (m.loc[~m["in_stock"], "revenue"] == 0).all()
        assert (m.loc[m["in_stock"], "revenue"] > 0).mean() > 0.95


def test_load_world_round_trip(world: World, dirty: Path) -> None:
    loaded = load_world(dirty)
    for name in ("skus", "listings", "line_items", "promotions", "campaigns", "dmas"):
        assert getattr(loaded, name).equals(getattr(world, name)), name
    assert (loaded.seed, loaded.start, loaded.days, loaded.flight_days) == (
        world.seed,
        world.start,
        world.days,
        world.flight_days,
    )
    assert loaded.audiences == world.audiences and loaded.retailers == world.retailers
    plan = _line_spend(world, "initech", 7_000.0)
    assert realized_outcome(loaded, plan) == realized_outcome(world, plan)
    with pytest.raises(RMNError, match="no world found"):
        load_world(dirty / "nowhere")


def test_loaded_world_rewrites_identical_exports(dirty: Path, tmp_path: Path) -> None:
    write_exports(load_world(dirty), tmp_path, events=EVENTS, dirt_rate=0.01)
    assert _hashes(tmp_path) == _hashes(dirty)


# ---------------------------------------------------------------------------------- CLI


def test_cli_generate_and_score(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "w"
    res = runner.invoke(
        app,
        ["generate", "--seed", "5", "--days", "7", "--events", "3000", "--out", str(out), "--json"],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["events"] == 3000 and set(summary["retailers"]) == set(RETAILERS)
    assert summary["dirt"]["future_date"] >= len(RETAILERS)

    world = load_world(out)
    (r, p, g) = world.line_keys[0]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"retailer_id": r, "placement": p, "gtin": g, "spend": 1000}]))
    res = runner.invoke(app, ["score", "--world", str(out), "--allocation", str(plan), "--json"])
    assert res.exit_code == 0, res.output
    scored = json.loads(res.stdout)
    assert scored["spend"] == 1000 and scored["incremental_revenue"] > 0
    assert scored == realized_outcome(world, {(r, p, g): 1000.0}).model_dump(mode="json")
    res = runner.invoke(app, ["score", "--world", str(out), "--allocation", str(plan)])
    assert res.exit_code == 0 and "incremental revenue" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--days", "0"], "days must be"),
        (["generate", "--events", "0"], "events must be"),
        (["generate", "--start", "July 1"], "--start must be a date"),
        (["score", "--world", "/no/such/dir", "--allocation", "x.json"], "no world found"),
    ],
)
def test_cli_bad_input(args: list[str], message: str, tmp_path: Path) -> None:
    if args[0] == "generate":
        args = [*args, "--out", str(tmp_path / "w")]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 2
    assert message in json.loads(res.stdout)["error"]["message"]


def test_cli_score_bad_plans(tmp_path: Path, dirty: Path) -> None:
    runner = CliRunner()
    plan = tmp_path / "plan.json"
    for content, message in [
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "must be a list"),
        ('[{"retailer_id": "alpha", "placement": "sponsored_search"}]', "allocation line 0"),
        ('[{"retailer_id": "zeta", "placement": "x", "gtin": "1", "spend": 1}]', "zeta/x/1"),
    ]:
        plan.write_text(content)
        res = runner.invoke(app, ["score", "--world", str(dirty), "--allocation", str(plan)])
        assert res.exit_code == 2 and message in res.output, (content, res.output)
    res = runner.invoke(
        app, ["score", "--world", str(dirty), "--allocation", str(tmp_path / "missing.json")]
    )
    assert res.exit_code == 2 and "cannot read allocation" in res.output
