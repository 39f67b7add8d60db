"""Reviews from a terminal (issues #12 and #14): `rmn resume` refuses an answer for an older
question (`--plan-version`), a decision the question does not offer and a bad edit (`--edit
roas_floor=inf`) with exit 2 and one line, and the thread keeps waiting at the same question
with its plan; `rmn show` prints the question's description, version and only the possible
answers; the interactive prompt offers only those too (an infeasible brief: edit or reject)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli.main import app
from cli.plan import ask

BRIEF = (
    "Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments"
)


@pytest.fixture(autouse=True)
def _policy_index(rag_index: object, rag_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner reads the session's policy index, not the repository's cache."""
    monkeypatch.setenv("RMN_CACHE_DIR", str(rag_cache))


def rmn(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def shown(market: Path, thread: str) -> dict[str, Any]:
    code, out, _ = rmn("show", thread, "--brand", "acme", "--data-dir", str(market), "--json")
    assert code == 0, out
    return json.loads(out)


def test_resume_refuses_stale_and_bad_answers_and_the_thread_waits(market: Path) -> None:
    common = ["--brand", "acme", "--model", "none", "--data-dir", str(market)]
    code, out, _ = rmn("plan", BRIEF, *common, "--thread", "review-1", "--json")
    assert code == 0, out
    first = json.loads(out)["question"]
    assert first["kind"] == "approval" and first["allowed_decisions"] == ["approve", "edit",
                                                                          "reject"]  # fmt: skip
    assert first["plan_version"] and first["interrupt_id"] and "Plan for review" in first[
        "description"]  # fmt: skip
    plan = json.loads(out)["plan"]

    bad_edits = [
        (["roas_floor=inf"], "roas_floor"),
        (["roas_floor=1e400"], "roas_floor"),
        (["retailer_caps.alpha=-5"], "retailer_caps"),
        (["flight_start=2026-10-05", "flight_end=2029-01-01"], "366 days"),
    ]
    for edits, says in bad_edits:
        flags = [arg for edit in edits for arg in ("--edit", edit)]
        code, out, _ = rmn("resume", "review-1", *flags, *common, "--json")
        assert code == 2 and len(out.strip().splitlines()) == 1, out
        error = json.loads(out)["error"]
        assert says in error["message"] and error["question"]["kind"] == "approval", error
        now = shown(market, "review-1")
        assert now["status"] == "awaiting_approval" and now["plan"] == plan
        assert now["question"]["plan_version"] == first["plan_version"]
    # Without --json: one line on stderr.
    code, out, err = rmn("resume", "review-1", "--edit", "roas_floor=NaN", *common)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error:") and "roas_floor" in err

    code, out, _ = rmn("resume", "review-1", "--edit", "roas_floor=3.5",
                       "--plan-version", first["plan_version"], *common, "--json")  # fmt: skip
    assert code == 0, out
    second = json.loads(out)["question"]
    assert second["plan_version"] != first["plan_version"]
    # An approval meant for the first plan: refused before anything runs.
    code, out, _ = rmn("resume", "review-1", "--approve",
                       "--plan-version", first["plan_version"], *common, "--json")  # fmt: skip
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    message = json.loads(out)["error"]["message"]
    assert "stale decision" in message and second["plan_version"] in message
    assert shown(market, "review-1")["status"] == "awaiting_approval"

    code, out, _ = rmn("show", "review-1", "--brand", "acme", "--data-dir", str(market))
    assert code == 0 and "Plan for review" in out and second["plan_version"] in out
    assert "--approve | --edit key=value | --reject REASON" in out

    code, out, _ = rmn("resume", "review-1", "--approve",
                       "--plan-version", second["plan_version"], *common, "--json")  # fmt: skip
    assert code == 0, out
    done = json.loads(out)
    assert done["status"] == "approved" and done["plan"]["brief"]["roas_floor"] == 3.5


def test_an_infeasible_brief_offers_only_edit_and_reject(
    market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--brand", "acme", "--model", "none", "--data-dir", str(market)]
    brief = BRIEF.replace("ROAS >= 3", "ROAS >= 40")
    code, out, _ = rmn("plan", brief, *common, "--thread", "review-2")
    assert code == 0, out
    assert "cannot be met" in out and "--edit key=value | --reject REASON" in out
    assert "--approve" not in out and "approving is not possible" in out
    question = shown(market, "review-2")["question"]
    assert question["kind"] == "infeasible" and question["allowed_decisions"] == ["edit", "reject"]

    code, out, _ = rmn("resume", "review-2", "--approve", *common, "--json")
    assert code == 2, out
    message = json.loads(out)["error"]["message"]
    assert "not possible" in message and "--edit key=value | --reject REASON" in message
    assert shown(market, "review-2")["status"] == "infeasible"

    # The interactive prompt offers edit and reject only.
    prompts: list[str] = []
    replies = iter(["approve", "r", "too ambitious"])

    def prompt(text: str, **_: Any) -> str:
        prompts.append(text)
        return next(replies)

    monkeypatch.setattr(typer, "prompt", prompt)
    answer = ask(question)
    assert prompts[:2] == ["edit / reject", "edit / reject"]  # "approve" is not a choice
    assert answer == {"action": "reject", "reason": "too ambitious",
                      "plan_version": question["plan_version"]}  # fmt: skip
