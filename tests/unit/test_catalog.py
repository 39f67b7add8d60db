"""The catalog is data: retailers and brands are folders of files, read by brief parsing,
tenant ownership, the harmonizer and the simulator alike; `rmn retailers add` and
`rmn brands add` scaffold them, and a retailer added that way is understood in a brief with no
code changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as rmn
from tools.brief import BriefError, parse_brief
from tools.catalog import CatalogError, current, load_catalog
from tools.catalog.scaffold import ScaffoldError, add_brand, add_retailer
from tools.paths import bundled_catalog_dir, use_catalog
from tools.policy.ownership import tenant_brands
from tools.world.catalog import BRANDS, RETAILERS


def run(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(rmn, [*args, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture()
def epsilon(tmp_path: Path) -> Path:
    """A data directory with a retailer and a brand added as files, as a new user would."""
    data = tmp_path / "data"
    run("retailers", "add", "Epsilon Foods", "--id", "epsilon", "--from", "beta",
        "--alias", "Epsilon Fresh", "--data-dir", str(data))  # fmt: skip
    run("brands", "add", "Zeno Snacks", "-r", "epsilon", "-c", "snacks", "--alias", "Zeno",
        "--data-dir", str(data))  # fmt: skip
    return data


def test_the_bundled_cast_is_files_the_simulator_reads() -> None:
    catalog = load_catalog(bundled_catalog_dir())
    assert list(catalog.retailers) == ["alpha", "beta", "delta", "gamma"]
    assert list(catalog.brands) == ["acme", "brand_x", "globex", "initech"]
    for rid, info in RETAILERS.items():
        entry = catalog.retailer(rid)
        assert (entry.name, entry.timezone, entry.placements) == (
            info.name, info.timezone, info.placements
        )  # fmt: skip
    for bid, info in BRANDS.items():
        brand = catalog.brand(bid)
        assert (brand.name, brand.categories, brand.owner_tenant) == (
            info.name,
            info.categories,
            bid,
        )
        # brand.yaml's retailers are those that sell one of the brand's categories, as the
        # simulator lists the brand's SKUs there.
        sells = [r for r, i in RETAILERS.items() if set(i.categories) & set(info.categories)]
        assert sorted(brand.retailers) == sorted(sells)


def test_a_retailer_added_as_files_is_understood_in_a_brief(epsilon: Path) -> None:
    """Before: `rmn parse 'Allocate $1M across Epsilon Foods'` answered "unknown retailer
    'Epsilon'; known retailers: Alpha Mart (alpha), ..." whatever files were added."""
    out = run("parse", "Allocate $1M across Epsilon Foods", "--brand", "zeno_snacks",
              "--data-dir", str(epsilon), "--path", "rules")  # fmt: skip
    assert out["retailers"] == ["epsilon"] and out["total_budget"] == 1_000_000
    with use_catalog(epsilon):
        # Its name, its first word, its id and its alias; the brand's alias is not a retailer.
        for text in ("Epsilon", "epsilon", "Epsilon Fresh", "Epsilon Foods"):
            brief = parse_brief(
                f"Put $200k on {text} for Zeno, ROAS >= 2", "zeno_snacks", path="rules"
            )
            assert brief.retailers == ["epsilon"], text
        with pytest.raises(BriefError, match="unknown retailer 'Walmart'"):
            parse_brief("Allocate $1M across Epsilon and Walmart", "zeno_snacks", path="rules")


def test_briefs_outside_a_catalog_do_not_know_its_retailers(epsilon: Path) -> None:
    with pytest.raises(BriefError, match="unknown retailer 'Epsilon'"):
        parse_brief("Allocate $1M across Epsilon Foods", "acme", path="rules")


def test_tenant_ownership_is_read_from_brand_yaml(epsilon: Path) -> None:
    with use_catalog(epsilon):
        assert tenant_brands("zeno_snacks") == ["zeno_snacks"] and tenant_brands("acme") == []
        assert current().brand_retailers("zeno_snacks") == ["epsilon"]
    assert tenant_brands("acme") == ["acme"]  # the bundled catalog outside the block


def test_scaffolded_retailer_is_a_renamed_copy(epsilon: Path) -> None:
    folder = epsilon / "retailers" / "epsilon"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in (bundled_catalog_dir() / "retailers" / "beta").iterdir()]
    )
    overview = (folder / "overview.md").read_text()
    assert "retailer: epsilon" in overview and "Beta" not in overview
    entry = load_catalog(epsilon).retailer("epsilon")
    assert (entry.name, entry.aliases, entry.timezone) == (
        "Epsilon Foods",
        ("Epsilon Fresh",),
        "UTC",
    )
    assert (epsilon / "raw" / "epsilon").is_dir()


def test_a_scaffolded_brand_checks_only_once_its_files_are_filled(epsilon: Path) -> None:
    result = CliRunner().invoke(rmn, ["check", "--data-dir", str(epsilon), "--json"])
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    products = epsilon / "brands" / "zeno_snacks" / "products.csv"
    assert f"{products}: no products listed; allowed: one row per product" in problems


def test_scaffolding_refuses_what_it_cannot_write(epsilon: Path) -> None:
    with pytest.raises(ScaffoldError, match="already exists"):
        add_retailer(epsilon, "Epsilon Foods", retailer_id="epsilon", source="beta", layout=None,
                     timezone=None, placements=[], aliases=[])  # fmt: skip
    with pytest.raises(ScaffoldError, match="unknown retailer 'omega' to copy from"):
        add_retailer(epsilon, "Omega", retailer_id=None, source="omega", layout=None,
                     timezone=None, placements=[], aliases=[])  # fmt: skip
    with pytest.raises(ScaffoldError, match="unknown time zone 'Mars/Olympus'"):
        add_retailer(epsilon, "Zeta", retailer_id=None, source="alpha", layout=None,
                     timezone="Mars/Olympus", placements=[], aliases=[])  # fmt: skip
    with pytest.raises(ScaffoldError, match=r"unknown retailer\(s\) gamma"):
        add_brand(epsilon, "Kappa", brand_id=None, retailers=["gamma"], categories=["snacks"],
                  owner=None, aliases=[])  # fmt: skip
    with pytest.raises(ScaffoldError, match="unknown category 'toys'"):
        add_brand(epsilon, "Kappa", brand_id=None, retailers=["epsilon"], categories=["toys"],
                  owner=None, aliases=[])  # fmt: skip


def test_a_catalog_error_names_the_file_and_line(epsilon: Path) -> None:
    brand = epsilon / "brands" / "zeno_snacks" / "brand.yaml"
    brand.write_text(brand.read_text().replace("retailers: [epsilon]", "retailers: [epsilom]"))
    with pytest.raises(CatalogError) as err:
        load_catalog(epsilon)
    assert err.value.message.startswith(f"{brand}:")
    assert "unknown retailer 'epsilom'; allowed: epsilon" in err.value.message


def test_no_product_takes_a_variant_it_cannot_have() -> None:
    """ "Globex Gel Caps Cough Syrup" was read as a catalog error by approvers: a variant its
    product cannot have is replaced, with the same draws, so no other name changes."""
    from tools.world.catalog import build_skus

    names = set(build_skus(7)[0].column("name").to_pylist())
    assert "Globex Non-Drowsy Cough Syrup" in names
    assert not any("Gel Caps Cough Syrup" in n for n in names)
    # the rest of the default world's catalog as before (a sample of its names)
    assert {"Globex Gel Caps Sleep Aid", "Globex Softgels Vitamin C",
            "Acme Ultra Bath Tissue", "Initech Classic Coffee Maker"} <= names  # fmt: skip
