"""`rmn demo` end to end on a small world: every stage runs and the stages agree, without a
model and on the default path with the bundled one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tools.paths import PROJECT_ROOT
from tools.world import load_world


@pytest.mark.usefixtures("rag_index")
def test_demo_runs_every_stage(
    tmp_path: Path, rag_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RMN_CACHE_DIR", str(rag_cache))
    out = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        ["demo", "--out", str(out), "--events", "60000", "--model", "none", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)

    manifests = {
        r: json.loads((out / "world" / "dirt" / f"{r}.json").read_text())
        for r in ("alpha", "beta", "gamma", "delta")
    }
    assert set(summary["harmonized"]) == set(manifests)
    for retailer, h in summary["harmonized"].items():
        planted = {k: v["count"] for k, v in manifests[retailer]["kinds"].items() if v["count"]}
        assert h["rows_in"] == manifests[retailer]["rows_written"]
        assert h["anomalies"] == planted
        assert h["rows_out"] + h["rows_quarantined"] == h["rows_in"]

    room = summary["cleanroom"]
    assert room["tenant"] == "acme" and room["k"] == 50 and room["rows"]
    # Sponsored search converts best in the simulated market, offsite display worst.
    roas = {row["placement"]: row["attributed_roas"] for row in room["rows"]}
    assert roas["sponsored_search"] > roas["display_offsite"]

    skus = [s for s in load_world(out).skus.to_pylist() if s["brand_id"] == "acme"]
    assert summary["first_party"]["skus"] == len(skus)
    risky = {s["gtin"] for s in summary["first_party"]["high_stockout_risk"]}
    assert risky == {s["gtin"] for s in skus if s["oos_prob"] >= 0.5}

    assert summary["policy"]["source"].startswith("rag_corpus/retailers/gamma/disclaimers.md#")

    # The sample brief went through the whole graph on the demo's own market and was approved.
    plan = summary["plan"]
    assert plan["status"] == "approved", plan
    assert plan["questions_approved"][-1] == "approval"
    assert set(plan["by_retailer"]) <= {"alpha", "beta"} and sum(plan["by_retailer"].values()) > 0
    assert sum(plan["by_retailer"].values()) <= 1.2e6 * 0.9 + 1.0
    assert Path(plan["report"]).is_file() and Path(plan["report"]).parent.parent.parent == out
    assert plan["copy"] and all(c["path"] for c in plan["copy"])


def _with_bundled_model(cache: Path) -> Path:
    """`cache` (the session's policy index) with the converted base model: linked from the
    repository's cache where a run already converted it (~25 s), else converted into it."""
    models, converted = cache / "models", PROJECT_ROOT / ".cache" / "models"
    if not models.exists() and converted.is_dir():
        models.symlink_to(converted, target_is_directory=True)
    return cache


@pytest.mark.slow
@pytest.mark.usefixtures("rag_index")
def test_demo_default_path_plans_with_the_bundled_model(
    tmp_path: Path, rag_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo`'s path: the bundled SmolLM2 model and its adapters take the sample brief to
    an approved plan and a report. The model's generation (the planner's parse, the creative
    step's copy) takes minutes of CPU, not seconds, so this runs once, on a small market."""
    monkeypatch.setenv("RMN_CACHE_DIR", str(_with_bundled_model(rag_cache)))
    out = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--events", "60000", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["plan"]
    assert plan["model"] == "smollm2" and plan["error"] is None
    assert plan["status"] == "approved", plan
    assert plan["questions_approved"][-1] == "approval"
    report = Path(plan["report"])
    assert report.is_file() and report.parent.parent.parent == out
    assert "Status: **approved**" in report.read_text()
    # The model wrote copy on the creative adapter; plans record each adapter with the version
    # served (`task/creative@v5`). A template fallback has none: one of this plan's variants
    # is one, since the model's headline was "Crucery for dunking" in each of its three
    # generations, which the copy checks refuse as not a word.
    by_model = [c for c in plan["copy"] if c["path"] != "fallback"]
    assert len(by_model) >= len(plan["copy"]) - 1 >= 1, plan["copy"]
    for variant in plan["copy"]:
        names = {a.partition("@")[0] for a in variant["adapters"]}
        assert ("task/creative" in names) == (variant["path"] != "fallback"), variant
