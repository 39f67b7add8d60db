"""`rmn plan`, `rmn resume`, `rmn threads`, `rmn show` on a small market, without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.plan import ResumeArgsError, parse_edits, review_payload

BRIEF = (
    "Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments"
)


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
    assert code == 2, out
    assert len(out.strip().splitlines()) == 1  # one line: the JSON error
    message = json.loads(out)["error"]["message"]
    assert "omega" in message.lower()
    result = CliRunner().invoke(
        app,
        ["plan", "Spend $500k on Omega Mart", "--brand", "acme", "--model", "none",
         "--data-dir", str(market), "--approve"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "omega" in errors[0].lower()


# --- errors as the README promises (issue #12) ---------------------------------------------


def _thread_ids(market: Path) -> set[str]:
    code, out = rmn("threads", "--brand", "acme", "--data-dir", str(market), "--json")
    assert code == 0, out
    return {row["thread_id"] for row in json.loads(out)}


@pytest.mark.parametrize(
    ("brief", "says"),
    [
        ("Maximize revenue on Alpha with ROAS >= 3", "no budget"),
        ("Spend -$500k on Alpha Mart", "must be positive"),
        ("", "empty"),
        ("   ", "empty"),
        ("Spend $500k on Omega Mart", "omega"),
        ("Allocate $5T across Alpha and Beta", "beyond any retail-media plan"),
    ],
)
def test_a_brief_that_cannot_be_planned_exits_2_and_leaves_no_thread(
    market: Path, brief: str, says: str
) -> None:
    # Before: no budget, a negative one and empty text each left a `failed` thread behind.
    before = _thread_ids(market)
    common = ["--brand", "acme", "--model", "none", "--data-dir", str(market)]
    code, out = rmn("plan", brief, *common, "--json")
    assert code == 2, out
    assert len(out.strip().splitlines()) == 1
    error = json.loads(out)["error"]
    assert says in error["message"].lower() and error["type"]
    result = CliRunner().invoke(app, ["plan", brief, *common], catch_exceptions=False)
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and says in result.stderr.lower()
    assert _thread_ids(market) == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tenant", "acme", "--brand", "globex"], "globex"),
        (["--retailer", "omega"], "omega"),
    ],
)
def test_a_refused_rag_query_exits_2_with_one_line(
    rag_cache: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    # Before: a query for another tenant's brand printed "refused: ..." and exited 0.
    monkeypatch.setenv("RMN_CACHE_DIR", str(rag_cache))
    question = "what claims may we make?"
    result = CliRunner().invoke(app, ["rag", "query", question, *args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert says in result.stderr.lower()
    code, out = rmn("rag", "query", question, *args, "--json")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert says in json.loads(out)["error"]["message"].lower()


# --- a budget far beyond the brand's history asks first (issue #12) -----------------------


def test_capacity_comes_from_the_brands_history_and_spends_no_privacy_budget(
    market: Path,
) -> None:
    from tools.brief import parse_brief_rules
    from tools.cleanroom import CleanRoom
    from tools.pipeline.capacity import FACTOR, check_budget

    brief = parse_brief_rules(BRIEF, "acme")
    check = check_budget(brief, data_dir=market)
    assert [(r.retailer, r.source) for r in check.retailers] == [
        ("alpha", "history"),
        ("beta", "history"),
    ]
    assert check.flight_days == 28 and check.limit == FACTOR * check.capacity
    assert check.capacity == pytest.approx(sum(r.per_day for r in check.retailers) * 28)
    assert 0 < check.capacity < 1.2e6 * FACTOR and not check.far_beyond
    far = check_budget(brief.model_copy(update={"total_budget": 5e9}), data_dir=market)
    assert far.far_beyond and far.capacity == check.capacity
    assert "$5,000,000,000" in (far.warning or "") and "alpha" in (far.warning or "")
    # A retailer that requires differential privacy is not read to check a number: its
    # written caps count instead, and no epsilon is spent.
    room = CleanRoom(market)
    before = room.budget("globex", "gamma").spent
    gamma = parse_brief_rules("Spend $1M on Gamma Pharmacy for margin", "globex")
    check = check_budget(gamma, data_dir=market, room=room)
    assert [r.source for r in check.retailers] == ["policy_caps"]
    assert "differential privacy" in check.retailers[0].note
    assert room.budget("globex", "gamma").spent == before


def test_a_budget_far_beyond_the_history_asks_for_confirmation(market: Path) -> None:
    # Before: "$5 billion" went on to the clean room and the optimizer without a question.
    brief = "Allocate $5 billion across Alpha and Beta to maximize incremental margin"
    common = ["--brand", "acme", "--model", "none", "--data-dir", str(market)]
    code, out = rmn("plan", brief, *common, "--json")
    assert code == 0, out
    waiting = json.loads(out)
    assert waiting["status"] == "awaiting_brief_confirmation"
    question = waiting["question"]
    assert question["kind"] == "confirm_brief"
    warning = next(w for w in question["warnings"] if "can absorb" in w)
    assert "$5,000,000,000" in warning and "median of" in warning  # the history's figures
    assert waiting["plan"]["allocation"] == []
