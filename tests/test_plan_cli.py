"""`rmn plan`, `rmn resume`, `rmn threads`, `rmn show` on a small market, without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.plan import ResumeArgsError, parse_edits, review_payload
from tools.pipeline import WorldSpec, ensure_world

BRIEF = (
    "Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments"
)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cli-market")
    ensure_world(data, WorldSpec(seed=7, days=90, events=100_000))
    return data


@pytest.fixture(autouse=True)
def _policy_index(rag_index: object, rag_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner reads the session's policy index, not the repository's cache."""
    monkeypatch.setenv("RMN_CACHE_DIR", str(rag_cache))


def rmn(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def test_edits_parse_numbers_nested_caps_and_sku_lists() -> None:
    assert parse_edits(["roas_floor=3.5", "retailer_caps.alpha=500000", "excluded_skus=a,b"]) == {
        "roas_floor": 3.5,
        "retailer_caps": {"alpha": 500000},
        "excluded_skus": ["a", "b"],
    }
    with pytest.raises(ResumeArgsError, match="key=value"):
        parse_edits(["roas_floor"])
    with pytest.raises(ResumeArgsError, match="exactly one"):
        review_payload(True, "no", [])
    assert review_payload(False, "too much display", []) == {
        "action": "reject",
        "reason": "too much display",
    }


def test_plan_waits_then_edit_and_approve_finish_it(market: Path) -> None:
    common = ["--brand", "acme", "--model", "none", "--data-dir", str(market)]
    code, out = rmn("plan", BRIEF, *common, "--thread", "cli-1", "--json")
    assert code == 0, out
    waiting = json.loads(out)
    # Not a terminal and no --approve: the thread waits at the approval question.
    assert waiting["status"] == "awaiting_approval"
    assert waiting["question"]["kind"] == "approval"
    spend = sum(waiting["question"]["allocation"]["by_retailer"].values())
    assert 0 < spend <= 1.2e6 * 0.9 + 1

    code, out = rmn("threads", "--brand", "acme", "--data-dir", str(market), "--json")
    assert code == 0
    assert {"thread_id": "cli-1", "status": "awaiting_approval"}.items() <= next(
        r for r in json.loads(out) if r["thread_id"] == "cli-1"
    ).items()

    # Another tenant can neither read nor answer it.
    other = ["--brand", "globex", "--data-dir", str(market), "--json"]
    code, out = rmn("show", "cli-1", *other)
    assert code == 2 and "another tenant" in json.loads(out)["error"]["message"]

    code, out = rmn("resume", "cli-1", "--edit", "roas_floor=3.5", *common, "--json")
    assert code == 0, out
    edited = json.loads(out)
    assert edited["status"] == "awaiting_approval"
    assert edited["question"]["brief"]["roas_floor"] == 3.5

    code, out = rmn("resume", "cli-1", "--approve", *common, "--json")
    assert code == 0, out
    done = json.loads(out)
    assert done["status"] == "approved" and done["plan"]["decision"]["action"] == "approve"
    assert Path(done["report"]["markdown"]).is_file()
    assert done["plan"]["expected_outcome"]["iroas"]["mean"] >= 3.5 - 1e-6

    code, out = rmn("resume", "cli-1", "--approve", *common, "--json")
    assert code == 2 and "not waiting" in json.loads(out)["error"]["message"]
    code, out = rmn("show", "cli-1", "--brand", "acme", "--data-dir", str(market), "--json")
    assert code == 0 and json.loads(out)["plan"]["status"] == "approved"


def test_plan_with_approve_prints_the_final_plan(market: Path) -> None:
    code, out = rmn(
        "plan", BRIEF, "--brand", "acme", "--model", "none", "--data-dir", str(market),
        "--approve", "--json",
    )  # fmt: skip
    assert code == 0, out
    plan = json.loads(out)["plan"]
    assert plan["status"] == "approved"
    for key in ("allocation", "expected_outcome", "experiment", "copy", "reflection", "decision"):
        assert plan[key], key
    row = plan["allocation"][0]
    assert {"retailer_id", "placement", "gtin", "spend"} <= set(row)


def test_unknown_retailer_is_a_clear_error(market: Path) -> None:
    code, out = rmn(
        "plan", "Spend $500k on Omega Mart", "--brand", "acme", "--model", "none",
        "--data-dir", str(market), "--approve", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert result["status"] == "failed" or code == 2
    message = (result.get("error") or {}).get("message", "")
    assert "omega" in message.lower()
