"""The policy loader: typed rules for every retailer and brand, rules that differ where the
retailers differ, and front-matter errors reported with file and line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tools.errors import UnknownBrandError, UnknownRetailerError
from tools.policy import (
    BASE_BLOCKED_FIELDS,
    POLICY_CATEGORY,
    BrandGuide,
    DataAccessPolicy,
    ExperimentType,
    PolicyParseError,
    RetailerPolicy,
    UnsupportedPlacementError,
    corpus_dir,
    list_brands,
    list_retailers,
    load_brand_guide,
    load_retailer_policy,
    policy_category,
)
from tools.policy.frontmatter import slugify
from tools.rmis import Placement, RMISPolicyDimension

PLACEMENTS = {
    "alpha": {
        "sponsored_product",
        "sponsored_search",
        "display_onsite",
        "display_offsite",
        "instore_screen",
    },
    "beta": {"sponsored_product", "sponsored_search", "display_offsite"},
    "gamma": {"sponsored_search", "sponsored_product", "display_offsite", "instore_screen"},
    "delta": {"sponsored_search", "sponsored_product", "display_onsite", "onsite_video"},
}


@pytest.fixture(scope="module")
def policies() -> dict[str, RetailerPolicy]:
    return {r: load_retailer_policy(r) for r in list_retailers()}


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "rag_corpus"
    shutil.copytree(corpus_dir(), dest)
    return dest


def _edit(path: Path, old: str, new: str) -> int:
    """Replace `old` once; returns the 1-based line where the replacement starts."""
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


# --- loading ---------------------------------------------------------------------------------


def test_every_retailer_loads_with_its_placements(policies: dict[str, RetailerPolicy]) -> None:
    assert sorted(policies) == ["alpha", "beta", "delta", "gamma"]
    for rid, p in policies.items():
        assert isinstance(p, RetailerPolicy)
        assert {pl.value for pl in p.placements} == PLACEMENTS[rid]
        assert {pl.value for pl in p.creative.placements} == PLACEMENTS[rid]
        assert {pl.value for pl in p.bidding.placements} == PLACEMENTS[rid]
        for spec in p.creative.placements.values():
            assert isinstance(spec.max_headline_chars, int) and spec.max_headline_chars > 0
            assert spec.max_body_chars > spec.max_headline_chars
        assert p.disclaimers.required_disclaimers
        assert p.prohibited.prohibited_terms
        assert p.measurement.allowed_experiment_types


def test_every_brand_loads_and_is_owned_by_its_tenant() -> None:
    assert list_brands() == ["acme", "brand_x", "globex", "initech"]
    categories = {
        "acme": {"grocery", "snacks", "household"},
        "globex": {"health_beauty", "otc_medicine", "vitamins"},
        "initech": {"home_goods", "small_electronics"},
        "brand_x": {"personal_care", "beverages", "alcohol"},
    }
    for bid in list_brands():
        guide = load_brand_guide(bid)
        assert isinstance(guide, BrandGuide)
        assert guide.owner_tenant == bid
        assert categories[bid] <= set(guide.categories)
        assert guide.tone and guide.banned_words and guide.allowed_claims
        assert all(w == w.lower() for w in guide.banned_words)
        assert all(s.startswith(f"rag_corpus/brands/{bid}/") for s in guide.sources.values())


def test_unknown_ids_are_user_errors() -> None:
    with pytest.raises(UnknownRetailerError, match="known: alpha, beta, delta, gamma"):
        load_retailer_policy("omega")
    with pytest.raises(UnknownBrandError):
        load_brand_guide("umbrella")


# --- the data-access contract with the clean room --------------------------------------------


def test_data_access_has_exactly_the_clean_room_fields(
    policies: dict[str, RetailerPolicy],
) -> None:
    assert set(DataAccessPolicy.model_fields) == {
        "min_cell_size",
        "blocked_fields",
        "allowed_dimensions",
        "allowed_metrics",
        "dp_required",
        "default_epsilon",
        "tenant_epsilon_budget",
        "budget_period",
        "sum_clamp",
        "source",
    }
    dims = {"date", "week", "geo", "placement", "sku", "audience", "campaign"}
    metrics = {
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "attributed_sales",
        "attributed_units",
        "events",
    }
    for rid, p in policies.items():
        da = p.data_access
        assert isinstance(da.min_cell_size, int) and da.min_cell_size > 1
        assert set(BASE_BLOCKED_FIELDS) <= set(da.blocked_fields)
        assert set(da.allowed_dimensions) <= dims
        assert set(da.allowed_metrics) <= metrics and "events" in da.allowed_metrics
        assert isinstance(da.dp_required, bool)
        assert 0 < da.default_epsilon <= da.tenant_epsilon_budget
        assert set(da.allowed_metrics) <= set(da.sum_clamp)
        assert all(isinstance(v, float) and v > 0 for v in da.sum_clamp.values())
        assert da.source == f"rag_corpus/retailers/{rid}/data_access.md#minimum-cell-size"


def test_data_access_feeds_the_clean_room_rules_model(policies: dict[str, RetailerPolicy]) -> None:
    rules_module = pytest.importorskip("tools.cleanroom")
    for p in policies.values():
        rules = rules_module.DataAccessRules(**p.data_access.model_dump())
        assert rules.min_cell_size == p.data_access.min_cell_size
        assert rules.source == p.data_access.source


# --- retailers differ in ways that change decisions ------------------------------------------


def test_clean_room_rules_differ(policies: dict[str, RetailerPolicy]) -> None:
    k = {rid: p.data_access.min_cell_size for rid, p in policies.items()}
    assert k == {"alpha": 50, "beta": 75, "gamma": 100, "delta": 30}
    gamma = policies["gamma"].data_access
    assert gamma.dp_required and gamma.tenant_epsilon_budget == 3.0
    assert not any(policies[r].data_access.dp_required for r in ("alpha", "beta", "delta"))
    # Gamma is coarser: no daily dates, no audiences, no unit counts; extra health fields blocked.
    assert {"date", "audience"}.isdisjoint(gamma.allowed_dimensions)
    assert "attributed_units" not in gamma.allowed_metrics
    assert {"rx_flag", "diagnosis_code"} <= set(gamma.blocked_fields)
    assert "audience" not in policies["beta"].data_access.allowed_dimensions
    assert "audience" in policies["delta"].data_access.allowed_dimensions


def test_creative_limits_and_spend_caps_differ(policies: dict[str, RetailerPolicy]) -> None:
    search = {rid: p.creative.limits("sponsored_search") for rid, p in policies.items()}
    assert {rid: s.max_headline_chars for rid, s in search.items()} == {
        "alpha": 40,
        "beta": 35,
        "gamma": 30,
        "delta": 45,
    }
    caps = {
        rid: p.bidding.placements[Placement.SPONSORED_SEARCH].max_monthly_spend_usd
        for rid, p in policies.items()
    }
    assert len(set(caps.values())) == 4
    assert policies["beta"].creative.emoji_allowed and not policies["gamma"].creative.emoji_allowed
    assert policies["gamma"].creative.max_exclamation_marks == 0
    assert policies["delta"].creative.capitalization == "title_case"
    assert policies["delta"].creative.price_claims.comparison_allowed
    assert not policies["alpha"].creative.price_claims.comparison_allowed


def test_category_and_measurement_rules_change_decisions(
    policies: dict[str, RetailerPolicy],
) -> None:
    beta, gamma, delta = policies["beta"], policies["gamma"], policies["delta"]
    # The grocer sells alcohol on sponsored products only, with an age notice.
    assert beta.bidding.allows("alcohol", "sponsored_product")
    assert not beta.bidding.allows("alcohol", "sponsored_search")
    assert not beta.bidding.allows("alcohol", "display_offsite")
    assert [d.id for d in beta.disclaimers.required_for("Crisp and light", "alcohol")] == ["age_21"]
    # The pharmacy and the home store do not advertise alcohol at all.
    assert not any(gamma.bidding.allows("alcohol", p) for p in gamma.placements)
    assert not any(delta.bidding.allows("alcohol", p) for p in delta.placements)
    # Delta has no in-store screens but is the only network with switchback tests.
    assert not delta.bidding.allows("home_goods", "instore_screen")
    with pytest.raises(UnsupportedPlacementError, match="instore_screen"):
        delta.creative.limits("instore_screen")
    switchback = {
        rid
        for rid, p in policies.items()
        if ExperimentType.SWITCHBACK in p.measurement.allowed_experiment_types
    }
    assert switchback == {"delta"}
    assert delta.measurement.switchback_min_period_hours == 24
    assert gamma.measurement.allowed_experiment_types == [ExperimentType.GEO_HOLDOUT]
    assert gamma.measurement.min_test_days > beta.measurement.min_test_days


def test_prohibited_terms_and_disclaimers_match_case_insensitively(
    policies: dict[str, RetailerPolicy],
) -> None:
    gamma = policies["gamma"]
    found = gamma.prohibited.violations("A MIRACLE formula that Cures dry skin", "health_beauty")
    assert found == ["miracle", "cures"]
    # Disease-claim phrases apply to their categories only; general terms apply everywhere.
    assert gamma.prohibited.violations("Cures boredom", "otc_medicine") == []
    assert gamma.prohibited.violations("Shop at Alpha Mart", None) == ["alpha mart"]
    ids = [d.id for d in gamma.disclaimers.required_for("Save $3 on SPF 50", None)]
    assert ids == ["sunscreen", "price_validity"]
    assert [d.id for d in gamma.disclaimers.required_for("Daily multivitamin", "vitamins")] == [
        "supplement_fda"
    ]
    # "was" triggers Delta's reference-price disclaimer only as a whole word.
    delta = policies["delta"]
    assert "reference_price" in [d.id for d in delta.disclaimers.required_for("Was $99, now $79")]
    assert "reference_price" not in [d.id for d in delta.disclaimers.required_for("Washable")]


def test_policy_dimensions_cite_existing_sections(policies: dict[str, RetailerPolicy]) -> None:
    for rid, p in policies.items():
        rows = p.to_policy_dimensions()
        assert all(isinstance(r, RMISPolicyDimension) and r.retailer_id == rid for r in rows)
        k_rows = [r for r in rows if r.rule == "min_cell_size"]
        assert len(k_rows) == 1 and k_rows[0].value == p.data_access.min_cell_size
        headlines = {r.placement: r.value for r in rows if r.rule == "max_headline_chars"}
        assert headlines == {pl: s.max_headline_chars for pl, s in p.creative.placements.items()}
        assert {r.policy_type for r in rows} == {
            "creative",
            "prohibited_content",
            "disclaimers",
            "data_access",
            "measurement",
            "bidding",
        }
        for r in rows:
            path, _, anchor = r.source.partition("#")
            assert anchor, f"{r.rule} has no section"
            text = (corpus_dir().parent / path).read_text()
            headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
            assert anchor in {slugify(h) for h in headings}, r.source
        json.dumps([r.model_dump(mode="json") for r in rows])


# --- parse errors name the file and line -----------------------------------------------------


def test_bad_yaml_is_reported_with_file_and_line(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/gamma/data_access.md"
    line = _edit(doc, "dp_required: true", "dp_required: [true")
    with pytest.raises(PolicyParseError) as err:
        load_retailer_policy("gamma", corpus=corpus_copy)
    assert err.value.file == "rag_corpus/retailers/gamma/data_access.md"
    assert err.value.line is not None and line <= err.value.line <= line + 1
    assert "invalid YAML" in err.value.message
    assert err.value.message.startswith(
        f"rag_corpus/retailers/gamma/data_access.md:{err.value.line}"
    )


def test_wrong_type_is_reported_with_file_and_line(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/gamma/data_access.md"
    line = _edit(doc, "min_cell_size: 100", "min_cell_size: a hundred")
    with pytest.raises(PolicyParseError) as err:
        load_retailer_policy("gamma", corpus=corpus_copy)
    assert (err.value.file, err.value.line) == ("rag_corpus/retailers/gamma/data_access.md", line)
    assert "min_cell_size" in err.value.message and "integer" in err.value.message


def test_nested_wrong_type_points_at_the_nested_line(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/beta/creative_specs.md"
    line = _edit(
        doc,
        "  sponsored_search: {max_headline_chars: 35, max_body_chars: 100}",
        "  sponsored_search: {max_headline_chars: thirty-five, max_body_chars: 100}",
    )
    with pytest.raises(PolicyParseError) as err:
        load_retailer_policy("beta", corpus=corpus_copy)
    assert err.value.line == line
    assert "placements.sponsored_search.max_headline_chars" in err.value.message


def test_unknown_key_is_reported_with_file_and_line(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/alpha/measurement.md"
    line = _edit(
        doc, "max_concurrent_tests: 3\n", "max_concurrent_tests: 3\nmax_concurent_tests: 3\n"
    )
    with pytest.raises(PolicyParseError) as err:
        load_retailer_policy("alpha", corpus=corpus_copy)
    assert (err.value.file, err.value.line) == (
        "rag_corpus/retailers/alpha/measurement.md",
        line + 1,
    )
    assert "max_concurent_tests: unknown key" in err.value.message


def test_missing_blocked_field_and_dangling_section_are_errors(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/delta/data_access.md"
    line = _edit(doc, "blocked_fields: [margin, unit_margin,", "blocked_fields: [unit_margin,")
    with pytest.raises(PolicyParseError, match="must block margin") as err:
        load_retailer_policy("delta", corpus=corpus_copy)
    assert err.value.line == line

    doc = corpus_copy / "brands/acme/voice.md"
    line = _edit(doc, "  tone: how-acme-sounds", "  tone: how-acme-speaks")
    with pytest.raises(PolicyParseError, match="no heading with anchor #how-acme-speaks") as err:
        load_brand_guide("acme", corpus=corpus_copy)
    assert (err.value.file, err.value.line) == ("rag_corpus/brands/acme/voice.md", line)


def test_every_rule_must_be_explained_in_a_section(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/gamma/placements_bidding.md"
    _edit(doc, "  min_daily_budget_usd: minimum-daily-budget\n", "")
    line = next(
        i for i, t in enumerate(doc.read_text().splitlines(), 1) if t.startswith("min_daily_b")
    )
    with pytest.raises(PolicyParseError, match="'min_daily_budget_usd' has no entry") as err:
        load_retailer_policy("gamma", corpus=corpus_copy)
    assert err.value.line == line


def test_duplicate_keys_and_missing_front_matter_are_errors(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/beta/measurement.md"
    line = _edit(doc, "min_test_days: 21\n", "min_test_days: 21\nmin_test_days: 7\n")
    with pytest.raises(PolicyParseError, match="duplicate key 'min_test_days'") as err:
        load_retailer_policy("beta", corpus=corpus_copy)
    assert err.value.line == line + 1

    doc = corpus_copy / "retailers/alpha/overview.md"
    doc.write_text(doc.read_text().split("---", 2)[2])
    with pytest.raises(PolicyParseError, match="missing front matter") as err:
        load_retailer_policy("alpha", corpus=corpus_copy)
    assert err.value.line == 1


def test_cli_reports_parse_errors_as_json(corpus_copy: Path) -> None:
    doc = corpus_copy / "retailers/gamma/measurement.md"
    line = _edit(doc, "min_test_days: 28", "min_test_days: four weeks")
    result = CliRunner().invoke(
        app,
        ["rag", "policy", "--retailer", "gamma", "--json"],
        env={"RMN_CORPUS_DIR": str(corpus_copy)},
    )
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "policy_parse_error"
    assert (error["file"], error["line"]) == ("rag_corpus/retailers/gamma/measurement.md", line)


def test_cli_brand_guide_is_tenant_scoped() -> None:
    runner = CliRunner()
    own = runner.invoke(app, ["rag", "policy", "--brand", "acme", "--tenant", "acme", "--json"])
    assert own.exit_code == 0
    assert json.loads(own.stdout)["owner_tenant"] == "acme"
    other = runner.invoke(app, ["rag", "policy", "--brand", "acme", "--tenant", "globex", "--json"])
    assert other.exit_code == 2
    assert json.loads(other.stdout)["error"]["type"] == "access_denied"


def test_catalog_categories_map_to_policy_names(policies: dict[str, RetailerPolicy]) -> None:
    assert policy_category("otc_health") == "otc_medicine"
    assert policy_category(" Alcohol ") == "alcohol"
    assert policy_category("firearms") == "firearms"  # already a policy name
    # The restricted categories the simulated brands sell are reachable from catalog names.
    named = {c for p in policies.values() for c in p.bidding.prohibited_categories} | {
        r.category for p in policies.values() for r in p.bidding.category_restrictions
    }
    assert {"alcohol", "otc_medicine", "vitamins", "small_electronics"} <= named
    assert {"alcohol", "otc_medicine", "vitamins", "small_electronics"} <= set(
        POLICY_CATEGORY.values()
    )
    assert not policies["delta"].bidding.allows(policy_category("otc_health"), "sponsored_search")
