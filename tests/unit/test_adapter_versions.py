"""Adapter versions (`adapters.versions`, `rmn adapters`): a new version is a candidate beside
the current one, promotion swaps them, rollback restores the replaced one, prune deletes the
files of the others and keeps their records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.versions import (
    AdapterVersionError,
    add_version,
    promote,
    prune,
    read_manifest,
    rollback,
    version_folder,
)
from cli.main import app


def _staged(tmp: Path, name: str) -> Path:
    """A finished adapter folder whose weights file says which training run wrote it."""
    staged = tmp / f"staged-{name}"
    staged.mkdir()
    (staged / "adapter_config.json").write_text("{}")
    (staged / "adapter_model.safetensors").write_text(name)
    (staged / "metadata.json").write_text(
        json.dumps({"created_at": "2026-12-03", "training": {"method": "sft", "command": name}})
    )
    return staged


def _served(folder: Path) -> str:
    return (folder / "adapter_model.safetensors").read_text()


def _three_versions(tmp_path: Path) -> Path:
    """v1 current, then v2 and v3 each promoted in turn: v3 current, v2 previous, v1 replaced."""
    folder = tmp_path / "task" / "planning"
    assert add_version(folder, _staged(tmp_path, "one")) == ("v1", True)
    assert add_version(folder, _staged(tmp_path, "two")) == ("v2", False)
    assert _served(folder) == "one"  # a candidate is not served until promoted
    promote(folder, "v2", {"candidate": 0.5})
    assert add_version(folder, _staged(tmp_path, "three")) == ("v3", False)
    promote(folder, "v3", {"candidate": 0.8})
    return folder


def test_promote_serves_the_candidate_and_rollback_restores_the_replaced_one(
    tmp_path: Path,
) -> None:
    folder = _three_versions(tmp_path)
    manifest = read_manifest(folder)
    assert manifest.current == "v3" and _served(folder) == "three"
    assert {v.version: v.status for v in manifest.versions} == {
        "v1": "replaced",
        "v2": "previous",
        "v3": "current",
    }
    assert _served(version_folder(folder, "v1")) == "one"
    assert json.loads((folder / "metadata.json").read_text())["version"] == "v3"
    rollback(folder)
    assert read_manifest(folder).current == "v2" and _served(folder) == "two"
    with pytest.raises(AdapterVersionError, match="no version 'v9'"):
        version_folder(folder, "v9")


def test_prune_keeps_the_current_version_and_the_one_a_rollback_restores(
    tmp_path: Path,
) -> None:
    folder = _three_versions(tmp_path)
    assert prune(folder) == ["v1"]
    assert not (folder / "versions" / "v1").exists()
    assert {v.version: v.status for v in read_manifest(folder).versions}["v1"] == "pruned"
    assert prune(folder) == []  # nothing left to prune
    rollback(folder)  # v3 -> v2: its files were kept
    assert _served(folder) == "two"
    rollback(folder)  # a rollback undone: back to v3, the version v2 replaced this time
    assert _served(folder) == "three"


def test_rollback_to_a_version_whose_files_are_gone_is_refused(tmp_path: Path) -> None:
    folder = _three_versions(tmp_path)
    for f in (folder / "versions" / "v2").iterdir():  # as in a copy that left them out
        f.unlink()
    with pytest.raises(AdapterVersionError, match="v2's files are not here"):
        rollback(folder)
    assert read_manifest(folder).current == "v3" and _served(folder) == "three"


def test_rmn_adapters_prune_and_list_show_pruned_versions(tmp_path: Path) -> None:
    folder = _three_versions(tmp_path)
    runner = CliRunner()
    out = runner.invoke(
        app, ["adapters", "prune", "task/planning", "--root", str(tmp_path), "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"adapter": "task/planning", "current": "v3", "pruned": ["v1"]}
    assert not (folder / "versions" / "v1").exists()
    out = runner.invoke(app, ["adapters", "prune", "task/nothing", "--root", str(tmp_path)])
    assert out.exit_code != 0 and "no adapter task/nothing" in out.output


# --- the gate and stacked adapters ----------------------------------------------------------


def _stacked_version(tmp: Path, name: str, under_weights: str) -> Path:
    """A staged brand/acme version trained on top of a task/creative whose weights file held
    `under_weights` (what `rmn train sft --stack-on` records)."""
    staged = tmp / f"staged-{name}"
    staged.mkdir()
    (staged / "adapter_config.json").write_text("{}")
    (staged / "adapter_model.safetensors").write_text(name)
    digest = hashlib.sha256(under_weights.encode()).hexdigest()
    card = {"dataset": "d", "rows": 1, "splits": {}, "steps": 1, "command": name, "seed": 0,
            "stacked_on": {"adapter": "task/creative", "weights_sha256": digest}}  # fmt: skip
    meta = {"kind": "brand", "id": "acme", "owner_tenant": "acme", "base_model": "b",
            "base_fingerprint": "f", "peft": {"r": 1, "alpha": 1, "target_modules": ["q_proj"]},
            "training": card, "created_at": "2026-12-04T00:00:00Z"}  # fmt: skip
    (staged / "metadata.json").write_text(json.dumps(meta))
    return staged


def test_a_current_version_stacked_on_a_replaced_task_adapter_is_scored_as_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # brand/acme v1 was trained on top of task/creative "creative-v1"; task/creative is now
    # "creative-v2", so the runtime leaves v1 out and serves task/creative alone. The gate
    # used to score v1 stacked on the new task adapter (or reuse its old score) and refused a
    # v2 trained on the new one that beats what is actually served.
    from adapters.training import gate

    root = tmp_path / "adapters"
    (root / "task" / "creative").mkdir(parents=True)
    (root / "task" / "creative" / "adapter_model.safetensors").write_text("creative-v2")
    (root / "task" / "creative" / "metadata.json").write_text("{}")
    folder = root / "brand" / "acme"
    add_version(folder, _stacked_version(tmp_path, "acme-v1", "creative-v1"))
    add_version(folder, _stacked_version(tmp_path, "acme-v2", "creative-v2"))
    scored: list[str] = []

    def fake_eval(adapter: Path, **_: object) -> dict[str, object]:
        name = (Path(adapter) / "adapter_model.safetensors").read_text()
        scored.append(name)
        own = {"acme-v1": 0.99, "acme-v2": 0.8}[name]  # v1 on top of the new task adapter
        return {"primary_metric": "compliance_rate", "items": 3,
                "adapter_scores": {"compliance_rate": own},
                "stacked_on": {"adapter": "task/creative",
                               "scores": {"compliance_rate": 0.5}}}  # fmt: skip

    monkeypatch.setattr(gate, "evaluate_adapter", fake_eval)
    monkeypatch.setattr(gate, "held_out_digest", lambda *a: "items")
    result = gate.run_gate("brand", "acme", root=root, limit=3, served=False)
    assert scored == ["acme-v2"]  # v1 is never stacked on an adapter it was not trained on
    assert result["promoted"] and result["current"]["score"] == 0.5
    assert "task/creative alone" in result["current"]["served_as"]
    assert read_manifest(folder).current == "v2"

    # A candidate trained on another task/creative than the installed one is refused unscored.
    add_version(folder, _stacked_version(tmp_path, "acme-v3", "creative-v1"))
    with pytest.raises(AdapterVersionError, match="train it again with --stack-on"):
        gate.run_gate("brand", "acme", root=root, limit=3, served=False)
    assert scored == ["acme-v2"]


def test_a_refused_candidate_keeps_its_scores_after_prune_and_is_no_rollback_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gate wrote a refusal only into the candidate's own metadata, which prune deletes: the
    # refused DPO candidate of task/creative left no score. And a version that had been current,
    # was rolled back, then refused when gated again stayed the rollback target (brand_x v2).
    from adapters.training import gate

    folder = tmp_path / "task" / "planning"
    for name in ("one", "two", "three"):  # full cards, as training writes them
        staged = _stacked_version(tmp_path, name, "")
        meta = json.loads((staged / "metadata.json").read_text())
        del meta["training"]["stacked_on"]
        meta |= {"kind": "task", "id": "planning", "owner_tenant": None}
        config = {"r": 1, "lora_alpha": 1, "target_modules": ["q_proj"]}
        (staged / "adapter_config.json").write_text(json.dumps(config))
        (staged / "metadata.json").write_text(json.dumps(meta))
        version, _ = add_version(folder, staged)
        if version != "v1":
            promote(folder, version, {})  # v3 current, v2 previous
    rollback(folder)  # v2 current; v3 is what a rollback would restore
    scores = {"three": 0.4, "two": 0.6}

    def fake_eval(adapter: Path, **_: object) -> dict[str, object]:
        own = scores[(Path(adapter) / "adapter_model.safetensors").read_text()]
        return {"primary_metric": "field_exact_match", "items": 3,
                "adapter_scores": {"field_exact_match": own}}  # fmt: skip

    monkeypatch.setattr(gate, "evaluate_adapter", fake_eval)
    monkeypatch.setattr(gate, "held_out_digest", lambda *a: "items")
    with pytest.raises(gate.GateRefusedError, match="v3 does not beat v2"):
        gate.run_gate("task", "planning", "v3", root=tmp_path, limit=3, served=False)
    manifest = read_manifest(folder)
    refusal = manifest.history[-1]
    assert (refusal.action, refusal.from_version, refusal.to_version) == ("refuse", "v2", "v3")
    assert refusal.scores["candidate"]["score"] == 0.4
    assert refusal.scores["current"]["score"] == 0.6
    assert {v.version: v.status for v in manifest.versions}["v3"] == "refused"
    with pytest.raises(AdapterVersionError, match="v3 was refused by the gate"):
        rollback(folder)
    assert read_manifest(folder).current == "v2" and _served(folder) == "two"
    assert prune(folder) == ["v1", "v3"]  # a refused version's files are not kept for rollback
    after = read_manifest(folder)
    assert after.history[-1].scores["candidate"]["score"] == 0.4  # the record outlives them
    out = CliRunner().invoke(app, ["adapters", "list", "--root", str(tmp_path)])
    assert "v3 pruned (refused: field_exact_match 0.400 vs v2 0.600)" in out.output, out.output


# --- brand adapters gated as served ---------------------------------------------------------


def _acme_on_creative(tmp_path: Path) -> Path:
    """An adapters root with task/creative and brand/acme v1 (current) and v2 (candidate), both
    trained on that task/creative."""
    root = tmp_path / "adapters"
    (root / "task" / "creative").mkdir(parents=True)
    (root / "task" / "creative" / "adapter_model.safetensors").write_text("creative")
    (root / "task" / "creative" / "metadata.json").write_text("{}")
    for name in ("acme-v1", "acme-v2"):
        add_version(root / "brand" / "acme", _stacked_version(tmp_path, name, "creative"))
    return root


def test_a_brand_adapter_is_gated_on_its_copy_as_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gate decoded brand adapters freely, on prompts in the training rows' shape, and
    # refused initech's v5 on capitalization (13 of 30 answers) that the served copy grammar
    # never lets through. A brand adapter is now scored on the creative tool's copy of its
    # brand's held-out products; the free eval is not asked.
    from adapters.training import gate

    root = _acme_on_creative(tmp_path)
    asked: list[tuple[str, str]] = []

    def served(root_: Path, kind: str, adapter_id: str, version: str, **_: object) -> dict:
        asked.append((f"{kind}/{adapter_id}", version))
        voice = {"v1": 0.5, "v2": 0.8}[version]
        rates = {"compliant_as_written": 1.0, "voice_words_used": voice,
                 "not_template_fallback": 1.0}  # fmt: skip
        how = {"seeds": [100], "plans": 2, "variants": 40}
        return {"primary_metric": "compliant_as_written", "scores": rates, "items": 40,
                "reused": False, "served": how}  # fmt: skip

    def free(*_: object, **__: object) -> dict:
        raise AssertionError("a brand adapter is not gated on the free eval")

    monkeypatch.setattr(gate, "served_scores", served)
    monkeypatch.setattr(gate, "evaluate_adapter", free)
    result = gate.run_gate("brand", "acme", root=root)
    assert asked == [("brand/acme", "v2"), ("brand/acme", "v1")]
    # Equal as written, better on the rest (voice words): promoted, with both recorded.
    assert result["promoted"] and result["unit"] == "served variants" and result["items"] == 40
    assert result["candidate"]["secondary"] > result["current"]["secondary"]
    manifest = read_manifest(root / "brand" / "acme")
    assert manifest.current == "v2"
    recorded = manifest.history[-1].scores
    assert recorded["served"] == {"seeds": [100], "plans": 2, "variants": 40}
    assert recorded["candidate"]["scores"]["voice_words_used"] == 0.8  # what it traded, kept
    # Only brand adapters and task/planning are scored as served.
    with pytest.raises(AdapterVersionError, match="only brand adapters and task/planning"):
        gate.run_gate("task", "creative", root=root, served=True)


def test_the_served_root_serves_the_version_asked_for_and_the_rest_as_installed(
    tmp_path: Path,
) -> None:
    from adapters.training.served import served_root

    root = _acme_on_creative(tmp_path)
    with served_root(root, "brand", "acme", "v2") as tmp:
        assert _served(tmp / "brand" / "acme") == "acme-v2"
        assert (tmp / "task" / "creative" / "adapter_model.safetensors").read_text() == "creative"
    with served_root(root, "brand", "acme", "v1") as tmp:
        assert _served(tmp / "brand" / "acme") == "acme-v1"
    assert not tmp.exists()  # nothing is left behind
    with (
        pytest.raises(AdapterVersionError, match="no version 'v7'"),
        served_root(root, "brand", "acme", "v7"),
    ):
        pass


def test_served_scores_pool_the_seeds_by_variants() -> None:
    from adapters.training.served import pooled

    def run(variants: int, written: float, fallback: float, composed: int) -> dict:
        rows = [{"adapters": ["task/creative@v5", "brand/acme@v2"]}] * composed
        rows += [{"adapters": ["task/creative@v5"]}] * (variants - composed)
        return {"variants": variants, "compliant_as_written": written,
                "template_fallback": fallback, "headline_differs_from_product": 1.0,
                "body_names_benefit_or_claim": 1.0, "voice_words_used": 0.5,
                "per_variant": rows}  # fmt: skip

    scores, variants, composed = pooled([run(30, 1.0, 0.0, 30), run(10, 0.6, 0.2, 0)], "brand/acme")
    assert variants == 40 and composed == 30
    assert scores["compliant_as_written"] == 0.9  # (30 * 1.0 + 10 * 0.6) / 40
    assert scores["not_template_fallback"] == 0.95  # the fallback share enters as its complement
    with pytest.raises(AdapterVersionError, match="has no held-out product"):
        pooled([run(0, 0.0, 0.0, 0)], "brand/acme")
