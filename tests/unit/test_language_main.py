"""`rmn bench language --main-ref`: main's copy measured in the same run
(`tools.creative.main_copy`). The requests main gets are the bench's own, a failing driver or an
unknown ref is a clear error, and main's variants are scored by the bench's own scoring: the same
copy gives the same figures. No model is loaded here; the one run of 6c07a30's code writes
template copy only (`--model none`)."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters.registry import AdapterMetadata
from cli.main import app
from tools import main_ref
from tools.creative import bench, main_copy
from tools.creative.bench import bench_plans, bench_requests, run_language_bench
from tools.creative.main_copy import (
    DRIVER,
    main_cards,
    measure_main,
    results_of,
    run_driver,
    serialize_plans,
)
from tools.creative.seen_lines import AdapterLines
from tools.creative.write import write_copy_many
from tools.main_ref import MainRefError, resolve_ref

ROOT = Path(__file__).resolve().parents[2]
MAIN = "6c07a30"
FIGURES = (
    "variants",
    "compliant_as_written",
    "template_fallback",
    "headline_differs_from_product",
    "body_names_benefit_or_claim",
    "brand_banned_words",
    "avoided_terms",
    "voice_words_used",
    "paths",
    "plans",
    "plans_with_repeated_sentences",
    "per_brand",
    "per_retailer",
    "per_brand_retailer",
    "repeated",
    "samples",
)


def test_the_requests_are_the_benchs_own_as_json() -> None:
    plans = bench_plans(0, 2, ["acme"])
    job = serialize_plans(plans, 2, 5)
    assert len(job) == len(plans) == 2
    for i, (plan, asked) in enumerate(zip(plans, job, strict=True)):
        assert asked == [r.model_dump(mode="json") for r in bench_requests(plan, 2, 5 + i)]
        for product, request in zip(plan, asked, strict=True):
            assert request["retailer_id"] == product.retailer_id
            assert request["brand_id"] == "acme"
            assert request["product_name"] == product.name
            assert request["category"] == product.catalog_category  # catalog, not policy
            assert request["placement"] == product.placement
            assert request["variants"] == 2 and request["seed"] == 5 + i
            assert request["gtin"] is None  # asked by name: nothing for main to look up
    assert json.loads(json.dumps(job)) == job


def test_the_driver_is_written_against_main_and_compiles() -> None:
    compile(DRIVER, "driver", "exec")
    doc = ast.get_docstring(ast.parse(DRIVER)) or ""
    assert "6c07a30" in doc and "write_copy_many" in doc


def test_the_driver_also_runs_on_code_after_the_language_work() -> None:
    """`--main-ref 2dc111f` stopped on "module 'tools.creative' has no attribute '_resolve'":
    the driver runs on this checkout's own code too (template copy, no model), where each
    variant names the adapters it ran with."""
    plans = bench_plans(0, 1, ["acme"])
    job = {"model": "none", "plans": serialize_plans(plans, 1, 0)}
    answer = run_driver(ROOT, job)
    assert len(answer["requests"]) == len(plans[0]) and answer["variants"]
    assert all(v["source"] == "template" for v in answer["variants"])
    assert answer["adapters"] == {}


def test_an_unknown_ref_is_a_clear_error() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and this repository")
    before = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True)
    unknown = pytest.raises(MainRefError, match="unknown ref 'no-such-ref-4f2a'")
    with unknown, main_ref.checkout("no-such-ref-4f2a", ROOT):
        pytest.fail("checked out an unknown ref")
    with pytest.raises(MainRefError, match="not a git ref"):
        resolve_ref("--output=x", ROOT)
    after = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True)
    assert before.stdout == after.stdout


def test_no_git_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main_ref.shutil, "which", lambda _name: None)
    with pytest.raises(MainRefError, match="needs git"):
        resolve_ref(MAIN, ROOT)


def test_a_failing_driver_is_a_clear_error(tmp_path: Path) -> None:
    boom = "import sys\nsys.stderr.write('old API gone\\n')\nsys.exit(3)"
    with pytest.raises(MainRefError, match="exit 3") as err:
        run_driver(tmp_path, {"plans": []}, source=boom)
    assert "old API gone" in err.value.message
    with pytest.raises(MainRefError, match="no JSON"):
        run_driver(tmp_path, {"plans": []}, source="print('not json')")
    with pytest.raises(MainRefError, match="without requests"):
        run_driver(tmp_path, {"plans": []}, source="print('{}')")


def test_the_driver_runs_in_the_worktree_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RMN_ADAPTERS_DIR", "/current/adapters")
    monkeypatch.setenv("RMN_CORPUS_DIR", "/current/corpus")
    probe = (
        "import json, os, sys\n"
        "job = json.load(sys.stdin)\n"
        "print('main: plan 1/1', file=sys.stderr)\n"
        "print('a library warning', file=sys.stderr)\n"
        "env = {k: os.environ.get(k) for k in ('PYTHONPATH', 'HF_HUB_OFFLINE', "
        "'RMN_ADAPTERS_DIR', 'RMN_CORPUS_DIR')}\n"
        "json.dump({'requests': job['plans'], 'variants': [], 'env': env, 'cwd': os.getcwd(), "
        "'python': sys.executable}, sys.stdout)\n"
    )
    said: list[str] = []
    answer = run_driver(tmp_path, {"plans": [[{"a": 1}]]}, source=probe, log=said.append)
    assert said == ["main: plan 1/1"]  # progress, not the libraries' noise
    assert answer["requests"] == [[{"a": 1}]]
    assert answer["env"] == {
        "PYTHONPATH": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "RMN_ADAPTERS_DIR": None,
        "RMN_CORPUS_DIR": None,
    }
    assert Path(answer["cwd"]).resolve() == tmp_path.resolve()
    assert answer["python"] == sys.executable


def _answer_from(plans: list[list[bench.BenchProduct]], variants: int, seed: int) -> dict:
    """A driver's answer holding the current code's own template copy for `plans`."""
    requests, out = [], []
    for p, plan in enumerate(plans):
        asked = bench_requests(plan, variants, seed + p)
        for request, result in zip(asked, write_copy_many(None, asked), strict=True):
            r = len(requests)
            requests.append(
                {
                    "plan": p,
                    "sent": request.model_dump(mode="json"),
                    "attempts": result.attempts,
                    "failures": result.failures,
                    "placement": result.placement,
                    "category": result.category,
                    "composed": [],
                }
            )
            for v in result.variants:
                out.append({"plan": p, "request": r, **v.model_dump(mode="json")})
    return {
        "requests": requests,
        "variants": out,
        "dropped_fields": {},
        "adapters": {},
        "kinds": ["retailer", "task"],
        "seconds_load": 0.0,
        "seconds_write": 1.5,
    }


def test_mains_copy_is_scored_by_the_benchs_own_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main_copy.score_copy is bench.score_copy
    run = run_language_bench(None, seed=2, plans=1, variants=2, brands=["acme", "globex"])
    plans = bench_plans(2, 1, ["acme", "globex"])
    answer = _answer_from(plans, 2, 2)
    assert len(answer["variants"]) == run["variants"] > 0

    @contextmanager
    def fake_checkout(ref: str, root: Path) -> Iterator[tuple[Path, str]]:
        yield tmp_path, "f" * 40

    monkeypatch.setattr(main_copy, "checkout", fake_checkout)
    monkeypatch.setattr(main_copy, "run_driver", lambda tree, job, **_: answer)
    main, source = measure_main(
        run, "fake", model="none", registry=None, brands=["acme", "globex"], held_out_only=False
    )
    # The same copy, scored for main, gives the bench's figures for the current code.
    for key in FIGURES:
        assert main[key] == run[key], key
    assert main["per_variant"] == run["per_variant"]
    assert main["subsets"]["all"] == {
        k: v for k, v in run["subsets"]["all"].items() if k != "rule_breaks"
    }
    assert main["seconds_per_variant"] == round(1.5 / run["variants"], 2)
    assert "rule_breaks" not in main and "rule_breaks" in main["not_computed"]
    assert source["commit"] == "f" * 40 and source["categories_main_read_differently"] == []
    assert "seed 2" in source["products"] and "score_copy" in source["scoring"]
    # The current rules pass the current code's own template copy.
    assert main["checked_by_current_rules"]["pass_current_rules"] == 1.0


def test_other_products_for_main_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_language_bench(None, seed=2, plans=1, variants=1, brands=["acme"])
    run["per_variant"][0]["product"] = "Acme Something Else"
    monkeypatch.setattr(main_copy, "run_driver", lambda *a, **k: pytest.fail("ran main"))
    with pytest.raises(MainRefError, match="not those this run wrote copy for"):
        measure_main(run, "fake", model="none", registry=None, brands=["acme"], held_out_only=False)


def test_results_of_a_short_answer_is_an_error() -> None:
    plans = bench_plans(0, 1, ["acme"])
    answer = _answer_from(plans, 1, 0)
    answer["requests"] = answer["requests"][:-1]
    answer["variants"] = [v for v in answer["variants"] if v["request"] < len(answer["requests"])]
    with pytest.raises(MainRefError, match="requests for a plan of"):
        results_of(answer, plans)


def test_a_card_without_lines_is_read_by_identical_weights_only() -> None:
    v1 = ROOT / "adapters" / "task" / "creative" / "versions" / "v1"
    card = AdapterMetadata.read(v1).training.model_dump(mode="json")
    card.pop("product_lines")
    card.pop("held_out_rule", None)
    assert AdapterLines.from_card("task/creative", card).basis == "unknown"
    sha = hashlib.sha256((v1 / "adapter_model.safetensors").read_bytes()).hexdigest()
    cards, basis = main_cards(
        {"task/creative": {"card": card, "weights_sha256": sha}}, ROOT / "adapters"
    )
    assert AdapterLines.from_card("task/creative", cards["task/creative"]).basis == "recorded"
    assert "versions/v1" in basis["task/creative"] and sha[:12] in basis["task/creative"]
    cards, basis = main_cards(
        {"task/creative": {"card": card, "weights_sha256": "0" * 64}}, ROOT / "adapters"
    )
    assert cards["task/creative"] is card and basis["task/creative"] == "its own card at the ref"


def _main_known() -> bool:
    if shutil.which("git") is None:
        return False
    try:
        resolve_ref(MAIN, ROOT)
    except MainRefError:
        return False
    return True


@pytest.mark.skipif(not _main_known(), reason=f"needs git and commit {MAIN}")
def test_main_at_6c07a30_writes_template_copy_in_the_same_run() -> None:
    before = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True)
    args = ["bench", "language", "--plans", "1", "--variants", "1", "--brand", "acme"]
    out = CliRunner().invoke(app, [*args, "--model", "none", "--main-ref", MAIN, "--json"])
    assert out.exit_code == 0, out.output
    result: dict[str, Any] = json.loads(out.stdout)
    main, source = result["main"], result["main_source"]
    assert source["commit"].startswith(MAIN) and source["ref"] == MAIN
    assert main["variants"] == result["variants"] > 0
    assert main["plans"] == result["plans"] == 1
    assert main["template_fallback"] == 1.0 and main["compliant_as_written"] == 0.0
    assert {r["product"] for r in main["per_variant"]} == {
        r["product"] for r in result["per_variant"]
    }
    assert source["categories_main_read_differently"] == []
    assert "seed" in source["seed"]  # 6c07a30's CopyRequest has no seed: dropped, and said
    assert set(main["not_computed"]) >= {"rule_breaks", "reproducible"}
    after = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True)
    assert before.stdout == after.stdout  # the worktree is gone


def test_mains_lines_are_placed_by_its_own_adapters_cards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_language_bench(None, seed=0, plans=1, variants=1, brands=["acme"])
    answer = _answer_from(bench_plans(0, 1, ["acme"]), 1, 0)
    card = AdapterMetadata.read(ROOT / "adapters" / "task" / "creative" / "versions" / "v1")
    lines = card.training.model_dump(mode="json")
    blind = {k: v for k, v in lines.items() if k not in ("product_lines", "held_out_rule")}

    @contextmanager
    def fake_checkout(ref: str, root: Path) -> Iterator[tuple[Path, str]]:
        yield tmp_path, "e" * 40

    monkeypatch.setattr(main_copy, "checkout", fake_checkout)
    monkeypatch.setattr(main_copy, "run_driver", lambda tree, job, **_: answer)
    for r in answer["requests"]:
        r["composed"] = ["task/creative"]
    for card_data, subset in ((blind, "unknown"), (lines, None)):
        answer["adapters"] = {"task/creative": {"card": card_data, "weights_sha256": "0" * 64}}
        main, _ = measure_main(
            run, "fake", model="none", registry=None, brands=["acme"], held_out_only=False,
            adapters_dir=ROOT / "adapters",
        )  # fmt: skip
        counts = main["subsets"]["variants"]
        if subset == "unknown":  # a card that cannot say: unknown, and said why
            assert counts["unknown"] == counts["all"] > 0
            assert "no card of task/creative places" in main["not_computed"]["subsets.never_seen"]
        else:  # v1's recorded lines place every variant, as the current reader reads them
            v1 = AdapterLines.from_card("task/creative", lines)
            want = [v1.saw(*r["line"].split(":")) for r in main["per_variant"]]
            assert [r["seen"] for r in main["per_variant"]] == want
            assert counts["unknown"] == 0


def test_recorded_main_figures_are_shown_with_their_source_and_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--record-main` keeps what `--main-ref` measured; a run without it prints those figures
    # and says they were recorded, not measured in this run, and when its draw differs.
    from cli import language_bench

    path = tmp_path / "bench_main.json"
    monkeypatch.setattr(language_bench, "MAIN_FIGURES", path)
    run = {"seed": 0, "plans_per_brand": 3, "variants_per_request": 2, "products_from": "x",
           "per_brand": {"acme": {}}, "machine": {"cpus": 2},
           "main": {"compliant_as_written": 0.3, "per_variant": [{"text": "..."}]},
           "main_source": {"ref": "6c07a30", "measured": "in this run"}}  # fmt: skip
    language_bench.record_main(run, path)
    main, source = language_bench._main_figures(run)
    assert main == {"compliant_as_written": 0.3}  # figures, not every variant's text
    assert source is not None and source["ref"] == "6c07a30"
    assert "not in this run" in source["measured"] and "draw_differs" not in source
    _, other = language_bench._main_figures({**run, "seed": 1})
    assert other is not None and "compare loosely" in other["draw_differs"]
    out = CliRunner().invoke(app, ["bench", "language", "--model", "none", "--record-main"])
    assert out.exit_code != 0 and "give --main-ref too" in out.output
