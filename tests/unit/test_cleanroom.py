"""Clean room: k-anonymity, blocked fields, tenant scoping, differential privacy, audit."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cleanroom_support import (
    SUM_METRICS,
    fixed_events,
    q,
    random_events,
    rules,
    week_start,
    write_events,
)
from typer.testing import CliRunner

from cli.main import app
from tools.cleanroom import (
    CleanRoom,
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


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_events(root, "alpha", random_events(7, 4_000))
    return root


# --- k-anonymity and tenant scoping ---------------------------------------------------------


def test_cells_below_k_are_suppressed_with_a_partner(tmp_path: Path) -> None:
    """49 events under k = 50 are withheld, and so is the smallest other cell: with only the
    49 withheld, the total (150, one query away) minus the cells shown would give it away."""
    ss, sp = "sponsored_search", "sponsored_product"
    ev = fixed_events({("acme", ss): 50, ("acme", sp): 49, ("acme", "display_onsite"): 51})
    write_events(tmp_path, "alpha", ev)
    room = CleanRoom(tmp_path)
    result = room.query(q(group_by=["placement"], metrics=["events", "spend"]))
    assert result.k == 50
    assert result.columns == ["placement", "events", "spend"]
    assert result.rows == [
        {"placement": "display_onsite", "events": 51, "spend": pytest.approx(102.0)},
    ]
    assert (result.cells_returned, result.cells_suppressed) == (1, 2)
    assert result.secondary_suppressed == 1
    total = room.query(q(metrics=["events"])).rows[0]["events"]
    assert total - sum(r["events"] for r in result.rows) == 99  # two cells, neither alone


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
    with pytest.raises(ValueError, match="greater than or equal to 0.001"):
        DataAccessRules(default_epsilon=1e-12)
    with pytest.raises(ValueError, match="budget_period"):
        DataAccessRules(budget_period="hourly")
    assert set(DataAccessRules.model_fields) == {
        "budget_period",
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
            "date>=2026-08-03",  # a Monday: the answer is a sum of released week cells
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
        "secondary_suppressed",
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
    assert status["period"] == "quarterly"  # rag_corpus/retailers/alpha/data_access.md
    assert datetime.fromisoformat(status["refreshes_at"]).day == 1

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
    # Every cell under k is withheld; some larger ones may be too, to protect them.
    assert returned and returned <= large
    assert result.cells_suppressed == len(cells) - len(returned)
    assert result.secondary_suppressed == len(large) - len(returned)
    with pytest.raises(
        QueryRefusedError, match=r"'diagnosis_code' is blocked by gamma.*data_access\.md"
    ):
        room.query(q(retailer="gamma", group_by=["diagnosis_code"]))
