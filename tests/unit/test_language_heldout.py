"""What `rmn bench language` holds out, checked against the adapters' data cards: the bundled
task/creative card (v5: DPO on v2, both under the rule) records the held-out rule (v1's, kept
for rollback, records its product lines), each variant says whether a composed adapter saw
its line, every figure comes on all variants and on the never-seen subset, and a saved run
can be re-summarized without the model. No model is loaded here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.registry import AdapterMetadata, AdapterRegistry
from tools.creative.bench import bench_plans, run_language_bench, subsets_report
from tools.creative.products import HELD_OUT_RULE, held_out_lines, product_lines
from tools.creative.resummarize import resummarize_saved
from tools.creative.seen_lines import AdapterLines, SeenLines, line_status
from tools.world.catalog import BRANDS

ROOT = Path(__file__).resolve().parents[2]
CREATIVE = ROOT / "adapters" / "task" / "creative"
# v1, trained before the held-out rule on a seeded split of product lines; kept for rollback.
CREATIVE_V1 = CREATIVE / "versions" / "v1"
KINDS = ("retailer", "brand", "task")
# The bench lines the held-out rule picks that task/creative v1 was evaluated on, not trained on
# (its seeded split at ef39a46); every other line the rule holds out it was trained on.
NEVER_SEEN_RULE_LINES = {
    "acme:snacks:Popcorn",
    "brand_x:alcohol:Craft Lager",
    "brand_x:personal_care:Hand Soap",
    "brand_x:personal_care:Shampoo",
    "initech:home_goods:Throw Pillow",
}


def _card() -> dict[str, Any]:
    return AdapterMetadata.read(CREATIVE_V1).training.model_dump()


def test_the_served_creative_card_follows_the_held_out_rule() -> None:
    served = AdapterMetadata.read(CREATIVE)
    lines = AdapterLines.from_card("task/creative", served.training.model_dump())
    assert served.version == "v5" and lines.basis == "rule"
    assert served.training.model_dump()["from_adapter"]["held_out_rule"] == HELD_OUT_RULE
    for brand in BRANDS:
        held = held_out_lines(brand)
        assert held  # every brand has lines no copy adapter saw
        for category, noun in product_lines(brand):
            assert lines.saw(brand, category, noun) is ((category, noun) not in held)


def test_creative_card_records_its_product_lines_and_they_add_up() -> None:
    card = _card()
    lines = card["product_lines"]
    train, held = set(lines["train"]), set(lines["eval"])
    assert (len(train), len(held)) == (card["source_items"]["train"], card["source_items"]["eval"])
    assert not train & held
    # every line of the catalog then is one of today's (today's adds brand_x IPA only)
    today = {f"{b}:{c}:{n}" for b in BRANDS for c, n in product_lines(b)}
    assert train | held <= today
    assert today - (train | held) == {"brand_x:alcohol:IPA"}
    rule = {f"{b}:{c}:{n}" for b in BRANDS for c, n in held_out_lines(b)}
    assert rule - train == NEVER_SEEN_RULE_LINES


def test_card_round_trip_keeps_the_lines(tmp_path: Path) -> None:
    meta = AdapterMetadata.read(CREATIVE_V1)
    meta.write(tmp_path)
    again = AdapterMetadata.read(tmp_path)
    assert again.training.model_dump()["product_lines"] == _card()["product_lines"]
    lines = AdapterLines.from_card("task/creative", again.training.model_dump())
    assert lines.basis == "recorded"
    assert lines.saw("acme", "pantry", "Salsa") is True
    assert lines.saw("acme", "snacks", "Popcorn") is False  # its eval split
    assert lines.saw("brand_x", "alcohol", "IPA") is False  # not in the catalog then


def test_cards_without_a_record() -> None:
    retailer = AdapterMetadata.read(ROOT / "adapters" / "retailer" / "alpha").training
    assert AdapterLines.from_card("retailer/alpha", retailer.model_dump()).basis == "no_copy"
    brand = AdapterMetadata.read(ROOT / "adapters" / "brand" / "acme").training.model_dump()
    brand.pop("held_out_rule", None)  # a card written before the rule: it cannot say
    unknown = AdapterLines.from_card("brand/acme", brand)
    assert unknown.basis == "unknown" and unknown.saw("acme", "snacks", "Popcorn") is None
    from tools.creative.products import HELD_OUT_RULE

    ruled = AdapterLines.from_card("brand/acme", {**brand, "held_out_rule": HELD_OUT_RULE})
    assert ruled.basis == "rule"
    assert ruled.saw("acme", "snacks", "Popcorn") is False
    assert ruled.saw("acme", "snacks", "Kettle Chips") is True
    task = AdapterLines.from_card("task/creative", _card())
    # seen by one is seen; else unknown if a card cannot say; else never seen
    assert line_status("acme", "pantry", "Salsa", [unknown, task]).seen is True
    assert line_status("acme", "snacks", "Popcorn", [unknown, task]).seen is None
    assert line_status("acme", "snacks", "Popcorn", [task]).seen is False
    assert line_status("acme", "snacks", "Popcorn", []).seen is False


def test_bundled_adapters_composed_for_copy() -> None:
    seen = SeenLines(AdapterRegistry(ROOT / "adapters"), KINDS)
    # Every brand's current adapter was trained stacked on task/creative v5 and won the served
    # gate (2026-12-06): composed with it. Their previous versions (acme v2 on task/creative
    # v1, globex v3 on v2, initech v1 on v1) would be left out.
    for brand in ("acme", "brand_x", "globex", "initech"):
        names = [a.adapter for a in seen.adapters("alpha", brand)]
        assert names == ["retailer/alpha", f"brand/{brand}", "task/creative"], brand
    assert seen.status("alpha", "acme", "snacks", "Popcorn").seen is False
    assert seen.status("alpha", "acme", "pantry", "Salsa").seen is False  # a held-out line
    kettle = seen.status("alpha", "acme", "snacks", "Kettle Chips")
    assert kettle.seen is True and set(kettle.seen_by) == {"brand/acme", "task/creative"}
    category, noun = sorted(set(product_lines("brand_x")) - held_out_lines("brand_x"))[0]
    trained = seen.status("alpha", "brand_x", category, noun)
    assert set(trained.seen_by) == {"brand/brand_x", "task/creative"}
    for category, noun in held_out_lines("brand_x"):
        assert seen.status("alpha", "brand_x", category, noun).seen is False


def test_held_out_only_draws_only_never_seen_lines() -> None:
    seen = SeenLines(AdapterRegistry(ROOT / "adapters"), KINDS)
    plans = bench_plans(0, 2, None, seen)
    assert plans
    for plan in plans:
        for p in plan:
            assert seen.of_product(p).seen is False, p
    # the default draw (the held-out rule): with every composed card following the rule, never
    # seen either
    default = [p for plan in bench_plans(0, 3) for p in plan]
    assert default and all(seen.of_product(p).seen is False for p in default)


def _record(plan: int, line: str, seen: bool | None, **scores: Any) -> dict[str, Any]:
    brand = line.split(":")[0]
    base = {
        "plan": plan,
        "brand": brand,
        "retailer": "alpha",
        "product": line,
        "placement": "sponsored_search",
        "line": line,
        "seen": seen,
        "seen_by": ["task/creative"] if seen else [],
        "unknown_for": [],
        "adapters": [],
        "path": "llm",
        "as_written": True,
        "fallback": False,
        "headline_differs": True,
        "body_benefit": True,
        "banned": [],
        "avoided": [],
        "voice_word": False,
        "repeats_in_plan": False,
    }
    return base | scores


def test_figures_on_a_constructed_result() -> None:
    records = [
        _record(0, "acme:snacks:Popcorn", False),
        _record(0, "acme:snacks:Popcorn", False, voice_word=True),
        _record(0, "acme:pantry:Salsa", True, as_written=False, fallback=True, path="fallback"),
        _record(1, "acme:pantry:Salsa", True, repeats_in_plan=True, banned=["x"]),
        _record(1, "globex:beauty:Mascara", None),
    ]
    out = subsets_report(records)
    assert out["variants"] == {"all": 5, "never_seen": 2, "seen": 2, "unknown": 1}
    never, alls = out["never_seen"], out["all"]
    assert never["compliant_as_written"] == 1.0 and never["template_fallback"] == 0.0
    assert never["voice_words_used"] == 0.5 and never["plans"] == 1
    assert never["plans_with_repeated_sentences"] == 0 and never["brand_banned_words"] == 0
    assert alls["compliant_as_written"] == 0.8 and alls["template_fallback"] == 0.2
    assert alls["plans_with_repeated_sentences"] == 1 and alls["brand_banned_words"] == 1
    assert out["seen"]["template_fallback"] == 0.5
    # the targets are judged on the never-seen subset
    assert out["targets"]["brand_banned_words"]["met"] is True
    assert out["targets_all"]["brand_banned_words"]["met"] is False
    assert out["lines"]["never_seen"] == ["acme:snacks:Popcorn"]
    assert out["lines"]["unknown"] == ["globex:beauty:Mascara"]
    # none never seen: nothing to judge
    assert subsets_report([records[2]])["targets"] == {}
    # a run with per-variant records re-summarizes exactly
    again = resummarize_saved({"per_variant": records}, None)
    assert again["never_seen"] == never


def test_template_bench_reports_each_variant_and_both_subsets() -> None:
    """Template copy only (no model, no adapter): every line is never seen."""
    out = run_language_bench(None, plans=1, variants=1, brands=["brand_x"], reproducible=False)
    assert len(out["per_variant"]) == out["variants"] > 0
    assert all(r["seen"] is False for r in out["per_variant"])
    assert out["subsets"]["variants"]["never_seen"] == out["variants"]
    assert out["subsets"]["all"]["compliant_as_written"] == out["compliant_as_written"]
    assert out["targets"] == out["subsets"]["targets"]
    # with the bundled cards (as a model run reads them): the rule's lines, never seen
    reg = AdapterRegistry(ROOT / "adapters")
    seen_run = run_language_bench(
        None, plans=1, variants=1, brands=["brand_x"], reproducible=False, registry=reg
    )
    assert {r["seen"] for r in seen_run["per_variant"]} == {False}
    assert seen_run["adapter_cards"]["task/creative"] == "rule"
    only = run_language_bench(
        None, plans=1, variants=1, brands=["brand_x"], reproducible=False, registry=reg,
        held_out_only=True,
    )  # fmt: skip
    assert only["per_variant"] and all(r["seen"] is False for r in only["per_variant"])
    assert only["brands_left_out"] == []


def test_a_saved_run_is_resummarized_without_the_model() -> None:
    # What `--resummarize FILE` reads: a run as `--json` saved it (template copy here, no
    # model), placed again with the bundled cards.
    reg = AdapterRegistry(ROOT / "adapters")
    run = run_language_bench(
        None, plans=1, variants=1, brands=["acme"], reproducible=False, registry=reg
    )
    saved = json.loads(json.dumps(run))
    exact = resummarize_saved(saved, reg)  # from its per-variant records
    assert exact["method"] == "per-variant records"
    # a run saved before per-variant records: its products drawn again from its seed
    older = {k: v for k, v in saved.items() if k != "per_variant"}
    redrawn = resummarize_saved(older, reg)
    for out in (exact, redrawn):
        n = out["variants"]
        assert n["all"] == run["variants"] == n["never_seen"] + n["seen"] + n["unknown"] > 0
        for key in ("compliant_as_written", "template_fallback"):
            assert out["never_seen"][key] == run["subsets"]["never_seen"][key]
