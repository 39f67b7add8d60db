"""Clean room: k-anonymity, blocked fields, tenant scoping, differential privacy, audit."""

from __future__ import annotations

import json
import tempfile
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from tools.cleanroom import (
    DEFAULT_BLOCKED_FIELDS,
    DIMENSIONS,
    METRICS,
    CleanRoom,
    CleanRoomQuery,
    DataAccessRules,
    Filter,
    PrivacyLedger,
)
from tools.errors import (
    InputDataError,
    PrivacyBudgetExceededError,
    QueryRefusedError,
    UnknownBrandError,
    UnknownRetailerError,
)
from tools.rmis import EVENT_COLUMNS, Placement, gtin_check_digit

BRANDS = ("acme", "globex", "initech")
START = date(2026, 8, 1)
PLACEMENTS = [p.value for p in Placement]
GEOS = ["501", "602", "803", "807"]
AUDIENCES = ["all_shoppers", "deal_seekers", "new_parents"]
SUM_METRICS = [m for m, col in METRICS.items() if col]


def gtin(n: int) -> str:
    body = f"{n:013d}"
    return body + str(gtin_check_digit(body))


def brand_gtins(brand: str) -> list[str]:
    base = 10_000_000 * (BRANDS.index(brand) + 1)
    return [gtin(base + i) for i in range(4)]


def random_events(seed: int, n: int, days: int = 21) -> dict[str, np.ndarray]:
    """RMIS events with skewed categories, so that some cells are large and many are tiny."""
    rng = np.random.default_rng(seed)

    def skewed(values: list[str], size: int) -> np.ndarray:
        w = 0.45 ** np.arange(len(values))
        return rng.choice(np.array(values, dtype=object), size=size, p=w / w.sum())

    brand = rng.choice(np.array(BRANDS, dtype=object), size=n, p=[0.5, 0.3, 0.2])
    campaign = np.array([f"{b}_c{rng.integers(0, 3)}" for b in brand], dtype=object)
    sku = np.array([brand_gtins(b)[int(rng.integers(0, 4))] for b in brand], dtype=object)
    offset = np.clip(rng.geometric(0.15, size=n) - 1, 0, days - 1)
    day = np.datetime64(START, "D") + offset.astype("timedelta64[D]")
    impressions = rng.integers(0, 5_000, size=n)
    clicks = rng.binomial(impressions, 0.02)
    conversions = rng.binomial(clicks, 0.1)
    units = conversions * rng.integers(1, 3, size=n)
    return {
        "event_id": np.array([f"r:{i}" for i in range(n)], dtype=object),
        "retailer_id": np.full(n, "alpha", dtype=object),
        "brand_id": brand,
        "campaign_id": campaign,
        "event_date": day,
        "geo_id": skewed(GEOS, n),
        "placement": skewed(PLACEMENTS, n),
        "audience_id": skewed(AUDIENCES, n),
        "gtin": sku,
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "spend": np.round(rng.gamma(2.0, 8.0, size=n), 2),
        "attributed_sales": np.round(units * rng.uniform(2.0, 9.0, size=n), 2),
        "attributed_units": units,
    }


def write_events(data: Path, retailer: str, ev: dict[str, np.ndarray]) -> Path:
    n = len(ev["event_id"])
    ts = ev["event_date"].astype("datetime64[s]") + np.arange(n) % 24 * np.timedelta64(1, "h")
    cols: dict[str, pa.Array] = {
        "event_id": pa.array(ev["event_id"], pa.string()),
        "retailer_id": pa.array(np.full(n, retailer, dtype=object), pa.string()),
        "brand_id": pa.array(ev["brand_id"], pa.string()),
        "campaign_id": pa.array(ev["campaign_id"], pa.string()),
        "event_ts": pa.array(ts, pa.timestamp("us")),
        "event_date": pa.array(ev["event_date"], pa.date32()),
        "geo_id": pa.array(ev["geo_id"], pa.string()),
        "placement": pa.array(ev["placement"], pa.string()),
        "audience_id": pa.array(ev["audience_id"], pa.string()),
        "gtin": pa.array(ev["gtin"], pa.string()),
        "retailer_item_id": pa.array([f"AM{i:08d}" for i in range(n)], pa.string()),
        "impressions": pa.array(ev["impressions"], pa.int64()),
        "clicks": pa.array(ev["clicks"], pa.int64()),
        "conversions": pa.array(ev["conversions"], pa.int64()),
        "spend": pa.array(ev["spend"], pa.float64()),
        "attributed_sales": pa.array(ev["attributed_sales"], pa.float64()),
        "attributed_units": pa.array(ev["attributed_units"], pa.int64()),
        "viewability": pa.array(np.full(n, 0.7), pa.float64()),
    }
    assert list(cols) == list(EVENT_COLUMNS)
    path = data / "rmis" / retailer / "events.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def fixed_events(cells: dict[tuple[str, str], int], spend: float = 2.0) -> dict[str, np.ndarray]:
    """Exactly `count` events for each (brand, placement), all else constant."""
    brand, placement = [], []
    for (b, p), count in cells.items():
        brand += [b] * count
        placement += [p] * count
    n = len(brand)
    ones = np.ones(n, dtype=np.int64)
    return {
        "event_id": np.array([f"r:{i}" for i in range(n)], dtype=object),
        "brand_id": np.array(brand, dtype=object),
        "campaign_id": np.array([f"{b}_c0" for b in brand], dtype=object),
        "event_date": np.full(n, np.datetime64(START, "D")),
        "geo_id": np.full(n, "501", dtype=object),
        "placement": np.array(placement, dtype=object),
        "audience_id": np.full(n, "all_shoppers", dtype=object),
        "gtin": np.array([brand_gtins(b)[0] for b in brand], dtype=object),
        "impressions": 100 * ones,
        "clicks": 3 * ones,
        "conversions": ones,
        "spend": np.full(n, spend),
        "attributed_sales": np.full(n, 10.0),
        "attributed_units": ones,
    }


def rules(**overrides: Any) -> Any:
    fixed = DataAccessRules(source="rag_corpus/retailers/test.md#data-access", **overrides)
    return lambda retailer: fixed


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_events(root, "alpha", random_events(7, 4_000))
    return root


def q(**fields: Any) -> CleanRoomQuery:
    return CleanRoomQuery(**{"tenant": "acme", "retailer": "alpha", **fields})


# --- the property test ----------------------------------------------------------------------


def week_start(d: np.ndarray) -> np.ndarray:
    days = d.astype("datetime64[D]").astype(np.int64)
    return (days - (days + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday


def reference_column(ev: dict[str, np.ndarray], dim: str) -> np.ndarray:
    if dim == "week":
        return week_start(ev["event_date"])
    return ev[DIMENSIONS[dim]]


def as_reference_value(dim: str, value: Any) -> Any:
    return np.datetime64(value, "D") if dim in ("date", "week") else value


def reference_mask(ev: dict[str, np.ndarray], tenant: str, filters: list[Filter]) -> np.ndarray:
    mask = ev["brand_id"] == tenant
    for f in filters:
        col = reference_column(ev, f.field)
        vals = f.value if isinstance(f.value, list) else [f.value]
        vals = [as_reference_value(f.field, v) for v in vals]
        if f.op == "in":
            mask &= np.isin(col, np.array(vals, dtype=col.dtype))
        elif f.op == "between":
            mask &= (col >= vals[0]) & (col <= vals[1])
        else:
            ops = {
                "=": np.equal,
                "!=": np.not_equal,
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }
            mask &= ops[f.op](col, vals[0])
    return mask


def iso(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


filter_strategy = st.one_of(
    st.builds(
        lambda op, d: Filter(field="date", op=op, value=iso(d)),
        st.sampled_from(["<", "<=", ">", ">=", "=", "!="]),
        st.integers(-2, 22),
    ),
    st.builds(
        lambda a, b: Filter(field="date", op="between", value=[iso(min(a, b)), iso(max(a, b))]),
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    st.builds(
        lambda op, d: Filter(field="week", op=op, value=iso(d)),
        st.sampled_from([">=", "<", "="]),
        st.integers(-7, 21),
    ),
    st.builds(
        lambda op, p: Filter(field="placement", op=op, value=p),
        st.sampled_from(["=", "!="]),
        st.sampled_from(PLACEMENTS),
    ),
    st.builds(
        lambda ps: Filter(field="placement", op="in", value=ps),
        st.lists(st.sampled_from(PLACEMENTS), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda gs: Filter(field="geo", op="in", value=gs),
        st.lists(st.sampled_from(GEOS), min_size=1, max_size=3, unique=True),
    ),
    st.builds(lambda a: Filter(field="audience", op="=", value=a), st.sampled_from(AUDIENCES)),
    # Other brands' campaigns and SKUs too: filtering on them must never reveal anything.
    st.builds(
        lambda b, i: Filter(field="campaign", op="=", value=f"{b}_c{i}"),
        st.sampled_from(BRANDS),
        st.integers(0, 2),
    ),
    st.builds(
        lambda b, i: Filter(field="sku", op="!=", value=brand_gtins(b)[i]),
        st.sampled_from(BRANDS),
        st.integers(0, 3),
    ),
)

metric_strategy = st.one_of(
    st.sampled_from(list(METRICS)),
    st.sampled_from([f"avg:{m}" for m in SUM_METRICS]),
)


@st.composite
def blocked_injection(draw: st.DrawFn) -> tuple[str, str] | None:
    if not draw(st.booleans()):
        return None
    name = draw(st.sampled_from(DEFAULT_BLOCKED_FIELDS))
    spelled = draw(st.sampled_from([name, name.upper(), name.replace("_", "-").title()]))
    return draw(st.sampled_from(["group_by", "metrics", "avg_metric", "filters"])), spelled


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(30, 600),
    k=st.integers(1, 60),
    tenant=st.sampled_from(BRANDS),
    group_by=st.lists(st.sampled_from(list(DIMENSIONS)), max_size=3, unique=True),
    metrics=st.lists(metric_strategy, min_size=1, max_size=4, unique=True),
    filters=st.lists(filter_strategy, max_size=2),
    blocked=blocked_injection(),
)
def test_no_cell_below_k_no_blocked_field_no_other_brand(
    seed: int,
    n: int,
    k: int,
    tenant: str,
    group_by: list[str],
    metrics: list[str],
    filters: list[Filter],
    blocked: tuple[str, str] | None,
) -> None:
    ev = random_events(seed, n)
    if blocked is not None:
        where, name = blocked
        if where == "group_by":
            group_by = [*group_by, name]
        elif where == "metrics":
            metrics = [name, *metrics]
        elif where == "avg_metric":
            metrics = [*metrics, f"avg:{name}"]
        else:
            filters = [*filters, Filter(field=name, op="=", value="1")]
    query = CleanRoomQuery(
        tenant=tenant, retailer="alpha", group_by=group_by, metrics=metrics, filters=filters
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_events(Path(tmp), "alpha", ev)
        room = CleanRoom(Path(tmp), rules_for=rules(min_cell_size=k))
        if blocked is not None:
            with pytest.raises(QueryRefusedError) as refused:
                room.query(query)
            canonical = blocked[1].lower().replace("-", "_")
            assert f"field '{canonical}' is blocked" in refused.value.message
            assert "blocked_fields" in refused.value.message
            assert room.audit.tail(1)[0]["status"] == "refused"
            event("refused: blocked field")
            return
        if not (ev["brand_id"] == tenant).any():
            with pytest.raises(UnknownBrandError):
                room.query(query)
            return
        result = room.query(query)
    event(f"cells returned: {'some' if result.rows else 'none'}")
    event(f"cells suppressed: {'some' if result.cells_suppressed else 'none'}")

    blocked_names = set(DEFAULT_BLOCKED_FIELDS)
    assert not blocked_names & set(result.columns)
    assert all(not blocked_names & set(row) for row in result.rows)
    assert set(result.columns) <= set(DIMENSIONS) | set(METRICS) | {f"avg_{m}" for m in SUM_METRICS}

    mask = reference_mask(ev, tenant, filters)
    dims = list(dict.fromkeys(group_by))
    keys = [reference_column(ev, d)[mask] for d in dims]
    all_cells = {tuple(key) for key in zip(*keys, strict=True)} if dims else set()
    own_campaigns = set(ev["campaign_id"][ev["brand_id"] == tenant])
    own_skus = set(ev["gtin"][ev["brand_id"] == tenant])

    assert result.k == k
    for row in result.rows:
        cell = mask.copy()
        for d in dims:
            cell &= reference_column(ev, d) == as_reference_value(d, row[d])
        count = int(cell.sum())
        assert count >= k, f"cell {row} covers {count} < k={k} events"
        if "events" in row:
            assert row["events"] == count
        for m in SUM_METRICS:
            exact = float(ev[METRICS[m]][cell].sum())
            if m in row:
                assert row[m] == pytest.approx(exact, rel=1e-9, abs=1e-6)
            if f"avg_{m}" in row:
                assert row[f"avg_{m}"] == pytest.approx(exact / count, rel=1e-9, abs=1e-6)
        if "campaign" in row:
            assert row["campaign"] in own_campaigns
        if "sku" in row:
            assert row["sku"] in own_skus

    if dims:
        small = sum(
            1
            for key in all_cells
            if int(
                np.logical_and.reduce(
                    [mask] + [reference_column(ev, d) == v for d, v in zip(dims, key, strict=True)]
                ).sum()
            )
            < k
        )
        assert result.cells_suppressed == small
        assert result.cells_returned == len(all_cells) - small
    else:
        total = int(mask.sum())
        assert result.cells_returned == (1 if total >= k else 0)
        assert result.cells_suppressed == (1 if 0 < total < k else 0)


# --- k-anonymity and tenant scoping ---------------------------------------------------------


def test_cells_below_k_are_suppressed_exactly(tmp_path: Path) -> None:
    ss, sp = "sponsored_search", "sponsored_product"
    ev = fixed_events({("acme", ss): 50, ("acme", sp): 49, ("acme", "display_onsite"): 51})
    write_events(tmp_path, "alpha", ev)
    result = CleanRoom(tmp_path).query(q(group_by=["placement"], metrics=["events", "spend"]))
    assert result.k == 50
    assert result.columns == ["placement", "events", "spend"]
    assert result.rows == [
        {"placement": "display_onsite", "events": 51, "spend": pytest.approx(102.0)},
        {"placement": "sponsored_search", "events": 50, "spend": pytest.approx(100.0)},
    ]
    assert (result.cells_returned, result.cells_suppressed) == (2, 1)


def test_tenant_sees_only_its_own_rows(tmp_path: Path) -> None:
    ss, sp = "sponsored_search", "sponsored_product"
    ev = fixed_events({("acme", ss): 60, ("globex", ss): 500, ("globex", sp): 70})
    write_events(tmp_path, "alpha", ev)
    room = CleanRoom(tmp_path)
    acme = room.query(q(group_by=["placement", "campaign"], metrics=["events"]))
    assert acme.rows == [{"placement": ss, "campaign": "acme_c0", "events": 60}]
    globex = room.query(q(tenant="globex", group_by=["placement"], metrics=["events"]))
    assert globex.rows == [
        {"placement": sp, "events": 70},
        {"placement": ss, "events": 500},
    ]
    # Filtering on another brand's campaign reveals nothing, not even a suppressed cell.
    spy = room.query(
        q(
            group_by=["campaign"],
            metrics=["events"],
            filters=[Filter(field="campaign", op="=", value="globex_c0")],
        )
    )
    assert (spy.rows, spy.cells_returned, spy.cells_suppressed) == ([], 0, 0)


def test_unknown_tenant_and_retailer(data: Path) -> None:
    room = CleanRoom(data)
    with pytest.raises(UnknownBrandError, match="brand 'umbrella' has no campaigns"):
        room.query(q(tenant="umbrella"))
    with pytest.raises(UnknownRetailerError) as err:
        room.query(q(retailer="zeta"))
    assert "rmn harmonize --retailer zeta" in err.value.message
    assert "retailers with data: alpha" in err.value.message


def test_group_by_week_date_and_avg_limit(data: Path) -> None:
    result = CleanRoom(data).query(
        q(group_by=["week"], metrics=["events", "spend", "avg:spend"], limit=2)
    )
    assert result.columns == ["week", "events", "spend", "avg_spend"]
    assert len(result.rows) == 2 == result.cells_returned
    weeks = [row["week"] for row in result.rows]
    assert weeks == sorted(weeks) and all(w.weekday() == 0 for w in weeks)
    for row in result.rows:
        assert row["avg_spend"] == pytest.approx(row["spend"] / row["events"])


def test_malformed_events_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "rmis" / "alpha" / "events.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"brand_id": ["acme"], "spend": [1.0]}), path)
    with pytest.raises(InputDataError, match="lacks RMIS column"):
        CleanRoom(tmp_path).query(q())


# --- refusals -------------------------------------------------------------------------------


GAMMA_SOURCE = "rag_corpus/retailers/gamma/data_access.md#blocked-fields"


@pytest.mark.parametrize(
    "fields",
    [
        {"metrics": ["spend", "unit_margin"]},
        {"metrics": ["avg:Unit_Margin"]},
        {"group_by": ["placement", "unit-margin"]},
        {"filters": [Filter(field="unit_margin", op=">", value="0.2")]},
    ],
)
def test_blocked_field_is_refused_with_field_rule_and_source(tmp_path: Path, fields: Any) -> None:
    gamma = DataAccessRules(min_cell_size=100, source=GAMMA_SOURCE)
    write_events(tmp_path, "gamma", random_events(3, 200))
    room = CleanRoom(tmp_path, rules_for=lambda retailer: gamma)
    with pytest.raises(QueryRefusedError) as err:
        room.query(q(retailer="gamma", **fields))
    assert err.value.message.startswith(
        f"field 'unit_margin' is blocked by gamma's data-access policy "
        f"(blocked_fields; source: {GAMMA_SOURCE})"
    )
    assert err.value.detail["field"] == "unit_margin"
    last = room.audit.tail(1)[0]
    assert (last["status"], last["retailer"], last["error_type"]) == (
        "refused",
        "gamma",
        "query_refused",
    )


@pytest.mark.parametrize(
    "name", ["stock", "promo", "promo_flag", "household_id", "email", "oos_prob"]
)
def test_every_default_blocked_field_is_refused(data: Path, name: str) -> None:
    with pytest.raises(QueryRefusedError, match=f"field '{name}' is blocked"):
        CleanRoom(data).query(q(group_by=[name]))


def test_unknown_and_disallowed_fields(data: Path) -> None:
    room = CleanRoom(data, rules_for=rules(allowed_dimensions=["date", "placement", "sku"]))
    with pytest.raises(QueryRefusedError) as err:
        room.query(q(group_by=["brand_id"]))
    assert err.value.message == (
        "unknown dimension 'brand_id'; allowed dimensions: date, placement, sku"
    )
    with pytest.raises(QueryRefusedError, match=r"dimension 'audience' is not allowed .*"):
        room.query(q(group_by=["audience"]))
    with pytest.raises(QueryRefusedError, match="allowed_dimensions; source: rag_corpus"):
        room.query(q(filters=[Filter(field="geo", op="=", value="501")]))
    with pytest.raises(QueryRefusedError, match="unknown metric 'revenue'; allowed metrics: spend"):
        room.query(q(metrics=["revenue"]))
    with pytest.raises(QueryRefusedError, match="unknown aggregate 'max'"):
        room.query(q(metrics=["max:spend"]))
    with pytest.raises(QueryRefusedError, match="avg:events"):
        room.query(q(metrics=["avg:events"]))


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        (Filter(field="date", op=">=", value="08/01/2026"), "ISO date"),
        (Filter(field="placement", op="=", value="billboard"), "unknown placement"),
        (Filter(field="sku", op="=", value="12345678901234"), "GTIN-14"),
        (Filter(field="geo", op=">", value="500"), "ranges apply to date and week only"),
        (Filter(field="date", op="between", value=["2026-08-09", "2026-08-01"]), "low is after"),
        (Filter(field="date", op="between", value=["2026-08-09"]), "takes two values"),
        (Filter(field="geo", op="=", value=["501", "602"]), "use 'in'"),
        (Filter(field="campaign", op="=", value="x'; DROP TABLE t; --"), "malformed id"),
    ],
)
def test_filter_values_are_validated(data: Path, flt: Filter, message: str) -> None:
    with pytest.raises(QueryRefusedError, match=message):
        CleanRoom(data).query(q(filters=[flt]))


def test_filter_parse() -> None:
    assert Filter.parse("date>=2026-08-01") == Filter(field="date", op=">=", value="2026-08-01")
    assert Filter.parse("placement = sponsored_search").value == "sponsored_search"
    assert Filter.parse("geo in 501, 602").value == ["501", "602"]
    between = Filter.parse("date BETWEEN 2026-08-01,2026-08-31")
    assert (between.op, between.value) == ("between", ["2026-08-01", "2026-08-31"])
    assert Filter.parse("Unit-Margin!=0").field == "unit_margin"
    with pytest.raises(QueryRefusedError, match="cannot read filter"):
        Filter.parse("spend")


def test_rules_model_rejects_inconsistent_rules() -> None:
    with pytest.raises(ValueError, match="unknown dimension"):
        DataAccessRules(allowed_dimensions=["brand"])
    with pytest.raises(ValueError, match="sum_clamp needs a bound"):
        DataAccessRules(sum_clamp={"spend": 10.0})
    with pytest.raises(ValueError, match="default_epsilon cannot exceed"):
        DataAccessRules(default_epsilon=5.0, tenant_epsilon_budget=1.0)
    assert set(DataAccessRules.model_fields) == {
        "min_cell_size",
        "blocked_fields",
        "allowed_dimensions",
        "allowed_metrics",
        "dp_required",
        "default_epsilon",
        "tenant_epsilon_budget",
        "sum_clamp",
        "source",
    }


# --- differential privacy -------------------------------------------------------------------
# OpenDP draws its noise from the operating system's secure generator, which cannot be seeded;
# the assertions on noisy values below fail with probability far below 1e-9.


def test_dp_adds_noise_and_spends_budget_persistently(tmp_path: Path) -> None:
    write_events(tmp_path, "alpha", random_events(7, 4_000))
    provider = rules(min_cell_size=5, tenant_epsilon_budget=1.0)
    room = CleanRoom(tmp_path, rules_for=provider)
    shape = {"group_by": ["date", "geo"], "metrics": ["events", "spend"]}
    exact = room.query(q(**shape))
    noisy = room.query(q(**shape, dp_epsilon=0.4))

    assert noisy.dp is not None
    assert (noisy.dp.mechanism, noisy.dp.epsilon) == ("laplace", 0.4)
    # Two releases (count and spend sum) share the epsilon: scale = sensitivity / (eps / 2).
    assert noisy.dp.noise_scale["events"] == pytest.approx(1 / 0.2)
    assert noisy.dp.noise_scale["spend"] == pytest.approx(500.0 / 0.2)
    assert (noisy.dp.spent, noisy.dp.remaining) == (pytest.approx(0.4), pytest.approx(0.6))
    assert exact.dp is None
    # Same cells (suppression uses exact counts), different values.
    keys = [(r["date"], r["geo"]) for r in exact.rows]
    assert keys == [(r["date"], r["geo"]) for r in noisy.rows]
    assert len(keys) >= 20
    changed = [a["events"] != b["events"] for a, b in zip(exact.rows, noisy.rows, strict=True)]
    assert sum(changed) >= 5
    assert all(a["spend"] != b["spend"] for a, b in zip(exact.rows, noisy.rows, strict=True))
    assert all(isinstance(r["events"], int) and r["events"] >= 0 for r in noisy.rows)

    # The ledger outlives the instance: a new clean room sees the spend and refuses overdraft.
    again = CleanRoom(tmp_path, rules_for=provider)
    status = again.budget("acme", "alpha")
    assert (status.spent, status.remaining, status.queries) == (
        pytest.approx(0.4),
        pytest.approx(0.6),
        1,
    )
    again.query(q(**shape, dp_epsilon=0.5))
    with pytest.raises(PrivacyBudgetExceededError) as err:
        again.query(q(**shape, dp_epsilon=0.2))
    assert "spent 0.9 + requested 0.2 > budget 1" in err.value.message
    assert err.value.detail["budget"] == 1.0
    assert again.budget("acme", "alpha").spent == pytest.approx(0.9)
    # Budgets are per tenant and per retailer.
    assert again.budget("globex", "alpha").spent == 0.0
    assert (tmp_path / "cleanroom" / "privacy_ledger.sqlite").is_file()
    entries = again.audit.tail(10)
    assert [e["status"] for e in entries] == ["ok", "ok", "ok", "refused"]
    assert [e["epsilon_spent"] for e in entries] == [0.0, 0.4, 0.5, 0.0]
    assert entries[-1]["error_type"] == "privacy_budget_exceeded"


def test_dp_clamps_each_rows_contribution(tmp_path: Path) -> None:
    ev = fixed_events({("acme", "sponsored_search"): 60}, spend=2.0)
    ev["spend"][0] = 1_000_000.0  # one outlier would dominate an unclamped noisy sum
    write_events(tmp_path, "alpha", ev)
    provider = rules(
        tenant_epsilon_budget=5_000.0,
        sum_clamp={"spend": 100.0, **{m: 10.0 for m in SUM_METRICS if m != "spend"}},
    )
    room = CleanRoom(tmp_path, rules_for=provider)
    exact = room.query(q(metrics=["spend"])).rows[0]["spend"]
    noisy = room.query(q(metrics=["spend"], dp_epsilon=1_000.0)).rows[0]["spend"]
    assert exact == pytest.approx(1_000_118.0)
    # Clamped sum is 100 + 59 * 2 = 218; the noise scale is 100 / 1000 = 0.1.
    assert noisy == pytest.approx(218.0, abs=5.0)


def test_dp_required_uses_default_epsilon(tmp_path: Path) -> None:
    write_events(tmp_path, "alpha", random_events(11, 1_000))
    room = CleanRoom(
        tmp_path, rules_for=rules(dp_required=True, default_epsilon=0.25, min_cell_size=10)
    )
    result = room.query(q(group_by=["placement"], metrics=["clicks", "avg:spend"]))
    assert result.dp is not None and result.dp.epsilon == 0.25
    assert set(result.dp.noise_scale) == {"events", "clicks", "spend"}
    assert room.budget("acme", "alpha").spent == pytest.approx(0.25)
    assert all(isinstance(r["clicks"], int) for r in result.rows)


def test_ledger_is_safe_against_concurrent_writers(tmp_path: Path) -> None:
    ledger = PrivacyLedger(tmp_path / "ledger.sqlite")
    outcomes: list[str] = []

    def spend(i: int) -> None:
        try:
            PrivacyLedger(ledger.path).charge("acme", "alpha", 1.0, 5.0, f"a{i}")
            outcomes.append("ok")
        except PrivacyBudgetExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 7
    assert ledger.status("acme", "alpha", 5.0).spent == pytest.approx(5.0)


# --- audit ----------------------------------------------------------------------------------


def test_audit_log_records_ok_and_refused_queries(tmp_path: Path) -> None:
    write_events(tmp_path, "alpha", random_events(5, 500))
    room = CleanRoom(tmp_path, rules_for=rules(min_cell_size=20))
    ok = room.query(q(group_by=["placement"], metrics=["spend"]))
    with pytest.raises(QueryRefusedError):
        room.query(q(tenant="globex", metrics=["email"]))
    with pytest.raises(UnknownRetailerError):
        room.query(q(retailer="beta"))

    lines = (tmp_path / "cleanroom" / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["status"] for e in entries] == ["ok", "refused", "refused"]
    first = entries[0]
    assert first["audit_id"] == ok.audit_id
    assert (first["tenant"], first["retailer"], first["k"]) == ("acme", "alpha", 20)
    assert first["query"]["group_by"] == ["placement"]
    assert (first["cells_returned"], first["cells_suppressed"]) == (
        ok.cells_returned,
        ok.cells_suppressed,
    )
    assert first["reason"] is None and first["epsilon_spent"] == 0.0
    datetime.fromisoformat(first["ts"])
    assert "field 'email' is blocked" in entries[1]["reason"]
    assert "rmn harmonize --retailer beta" in entries[2]["reason"]
    assert len({e["audit_id"] for e in entries}) == 3
    assert [e["tenant"] for e in room.audit.tail(5, tenant="globex")] == ["globex"]
    assert room.audit.tail(1) == entries[-1:]


# --- command line ---------------------------------------------------------------------------


runner = CliRunner()


def test_cli_query_budget_and_audit(data: Path) -> None:
    args = ["cleanroom", "query", "--brand", "acme", "--retailer", "alpha", "--data", str(data)]
    out = runner.invoke(
        app,
        [
            *args,
            "--group-by",
            "placement,sku",
            "--metrics",
            "spend,attributed_sales",
            "--filter",
            "date>=2026-08-02",
            "--filter",
            "placement in sponsored_search,sponsored_product",
            "--limit",
            "3",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert set(body) == {
        "retailer",
        "tenant",
        "k",
        "columns",
        "rows",
        "cells_returned",
        "cells_suppressed",
        "dp",
        "audit_id",
    }
    assert body["columns"] == ["placement", "sku", "spend", "attributed_sales"]
    assert body["k"] == 50 and 1 <= len(body["rows"]) <= 3
    assert {r["placement"] for r in body["rows"]} <= {"sponsored_search", "sponsored_product"}

    human = runner.invoke(app, [*args, "--group-by", "placement", "--dp-epsilon", "0.5"])
    assert human.exit_code == 0, human.output
    assert "placement" in human.stdout and "suppressed (k=50)" in human.stdout
    assert "epsilon 0.5" in human.stdout

    refused = runner.invoke(app, [*args, "--metrics", "unit_margin", "--json"])
    assert refused.exit_code == 2
    error = json.loads(refused.stdout)["error"]
    assert error["type"] == "query_refused" and error["field"] == "unit_margin"
    bad = runner.invoke(app, [*args, "--dp-epsilon", "-1", "--json"])
    assert bad.exit_code == 2 and "dp_epsilon" in json.loads(bad.stdout)["error"]["message"]

    budget = runner.invoke(
        app,
        ["cleanroom", "budget", "--brand", "acme", "--retailer", "alpha"]
        + ["--data", str(data), "--json"],
    )
    assert budget.exit_code == 0, budget.output
    status = json.loads(budget.stdout)
    assert status["spent"] >= 0.5 and status["budget"] == 10.0
    assert status["remaining"] == pytest.approx(status["budget"] - status["spent"])

    audit = runner.invoke(app, ["cleanroom", "audit", "--tail", "2", "--data", str(data), "--json"])
    assert audit.exit_code == 0, audit.output
    entries = json.loads(audit.stdout)["entries"]
    # A request that is malformed before it names a valid query is not a query: not audited.
    assert [e["status"] for e in entries] == ["ok", "refused"]
    text = runner.invoke(app, ["cleanroom", "audit", "--data", str(data)])
    assert "acme@alpha" in text.stdout and "ok" in text.stdout


# --- rules from the retailer policy corpus ----------------------------------------------------


def test_rules_come_from_each_retailers_policy_document() -> None:
    from tools.cleanroom import policy_rules
    from tools.policy import load_retailer_policy

    for retailer in ("alpha", "beta", "gamma", "delta"):
        rules_ = policy_rules(retailer)
        policy = load_retailer_policy(retailer).data_access
        assert rules_.min_cell_size == policy.min_cell_size
        assert rules_.blocked_fields == policy.blocked_fields
        assert rules_.source == f"rag_corpus/retailers/{retailer}/data_access.md"
    # The retailers differ, so the clean room behaves differently per retailer.
    assert policy_rules("gamma").min_cell_size > policy_rules("alpha").min_cell_size
    assert policy_rules("gamma").dp_required and not policy_rules("alpha").dp_required
    fallback = policy_rules("omega")
    assert fallback.min_cell_size == 50 and "no data-access policy for 'omega'" in fallback.source


def test_default_clean_room_enforces_the_policy_k_and_blocked_fields(tmp_path: Path) -> None:
    ev = random_events(11, 4_000)
    write_events(tmp_path, "gamma", ev)
    room = CleanRoom(tmp_path)  # rules from rag_corpus/retailers/gamma/data_access.md
    result = room.query(q(retailer="gamma", group_by=["week", "placement"], metrics=["events"]))
    assert result.k == 100
    assert result.dp is not None  # gamma requires differential privacy: its default epsilon
    mine = ev["brand_id"] == "acme"
    cells = Counter(
        zip(
            week_start(ev["event_date"][mine]).tolist(), ev["placement"][mine].tolist(), strict=True
        )
    )
    large = {cell for cell, n in cells.items() if n >= 100}
    assert 0 < len(large) < len(cells)  # the data has cells on both sides of k
    returned = {(np.datetime64(r["week"], "D").tolist(), r["placement"]) for r in result.rows}
    assert returned == large
    assert result.cells_suppressed == len(cells) - len(large)
    with pytest.raises(
        QueryRefusedError, match=r"'diagnosis_code' is blocked by gamma.*data_access\.md"
    ):
        room.query(q(retailer="gamma", group_by=["diagnosis_code"]))
