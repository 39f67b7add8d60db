"""`rmn check` on the foreign example with one mistake planted at a time: each is reported as
`file:line: what is wrong; what is allowed` and the command exits 2; the untouched example
checks clean."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as rmn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "foreign"


def check(data: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(rmn, ["check", "--data-dir", str(data), "--json"])
    return result.exit_code, json.loads(result.stdout)["problems"]


def edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def plant(data: Path) -> None:
        file = data / path
        text = file.read_text()
        assert old in text, f"{old!r} not in {file}"
        file.write_text(text.replace(old, new, 1))

    return plant


def line_of(data: Path, path: str, needle: str) -> int:
    lines = (data / path).read_text().splitlines()
    return 1 + next(i for i, t in enumerate(lines) if needle in t)


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "data", ignore=shutil.ignore_patterns("make_example.py"))
    return tmp_path / "data"


def test_the_example_checks_clean(data: Path) -> None:
    code, problems = check(data)
    assert (code, problems) == (0, [])


# (mistake, file, the line's text after the edit, what the problem must say)
MISTAKES = [
    ("unknown_transform", edit("retailers/harbor/mapping.yaml", "[parse_money]", "[parse_monee]"),
     "retailers/harbor/mapping.yaml", "parse_monee",
     r"fields\.spend\.transforms\.0: unknown transform 'parse_monee'; allowed: .*parse_money"),
    ("unknown_time_zone",
     edit("retailers/pinecrest/mapping.yaml", "timezone: America/New_York", "timezone: Mars/Olympus"),  # noqa: E501
     "retailers/pinecrest/mapping.yaml", "Mars/Olympus",
     r"timezone: unknown time zone 'Mars/Olympus'; allowed: an IANA name"),
    ("unknown_placement",
     edit("retailers/harbor/mapping.yaml", "Onsite Display: display_onsite", "Onsite Display: billboard"),  # noqa: E501
     "retailers/harbor/mapping.yaml", "billboard",
     r"'billboard' is not an RMIS placement; allowed: .*display_onsite"),
    ("placements_disagree",
     edit("retailers/pinecrest/mapping.yaml", "placements: [sponsored_product]",
          "placements: [sponsored_product, sponsored_search]"),
     "retailers/pinecrest/mapping.yaml", "placements: [sponsored_product, sponsored_search]",
     r"differ from those overview\.md sells; allowed: \['sponsored_product'\]"),
    ("brand_unknown_retailer",
     edit("brands/northwind/brand.yaml", "retailers: [harbor, pinecrest]", "retailers: [harbor, pinecrst]"),  # noqa: E501
     "brands/northwind/brand.yaml", "pinecrst",
     r"retailers\.1: unknown retailer 'pinecrst'; allowed: harbor, pinecrest"),
    ("brand_unknown_category",
     edit("brands/northwind/brand.yaml", "[beverages, snacks]", "[beverages, snackz]"),
     "brands/northwind/brand.yaml", "snackz",
     r"categories: unknown category 'snackz'; allowed: snacks, .*beverages"),
    ("brand_missing_key", edit("brands/northwind/brand.yaml", "owner_tenant: northwind\n", ""),
     "brands/northwind/brand.yaml", "id: northwind",
     r"missing key 'owner_tenant'; required: id, name, owner_tenant, categories, retailers"),
    ("policy_front_matter",
     edit("retailers/harbor/data_access.md", "min_cell_size: 5", "min_cell_size: -5"),
     "retailers/harbor/data_access.md", "min_cell_size: -5",
     r"min_cell_size: Input should be greater than or equal to 1"),
    ("products_missing_column",
     edit("brands/northwind/products.csv", "gtin,name,category,price,", "gtin,name,category,cost,"),
     "brands/northwind/products.csv", "gtin,name",
     r"column 'price' is missing; allowed columns: required gtin, name, category, price, unit_cost"),  # noqa: E501
    ("products_bad_gtin",
     edit("brands/northwind/products.csv", "085012341013,", "085012341014,"),
     "brands/northwind/products.csv", "085012341014",
     r"column 'gtin': '085012341014' has a wrong check digit \(expected 3\); allowed: a GTIN"),
    ("products_negative_price",
     edit("brands/northwind/products.csv", "$6.99,3.90,harbor", "-6.99,3.90,harbor"),
     "brands/northwind/products.csv", "-6.99",
     r"column 'price': price -6\.99 is not above 0; allowed: a price above 0"),
    ("products_duplicate_key",
     edit("brands/northwind/products.csv", "pinecrest,2345602\n",
          "pinecrest,2345602\n085012341020,Northwind Oat Milk Latte 4-pack,beverages,7.49,4.60,pinecrest,2345602\n"),  # noqa: E501
     "brands/northwind/products.csv", "beverages,7.49,",
     r"duplicate row for gtin=00085012341020, retailer_id=pinecrest \(first at row \d+\); allowed: one row per gtin, retailer_id"),  # noqa: E501
    ("products_unknown_retailer",
     edit("brands/northwind/products.csv", "3.90,harbor,412300118", "3.90,harbour,412300118"),
     "brands/northwind/products.csv", "harbour",
     r"unknown retailer 'harbour'; allowed: harbor, pinecrest \(the retailers in northwind's brand\.yaml\)"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("plant", "path", "needle", "says"),
    [m[1:] for m in MISTAKES],
    ids=[m[0] for m in MISTAKES],
)
def test_check_reports_each_planted_mistake_at_its_line(
    data: Path, plant: Callable[[Path], None], path: str, needle: str, says: str
) -> None:
    plant(data)
    code, problems = check(data)
    assert code == 2
    line = line_of(data, path, needle)
    where = f"{data.name}/{path}:{line}: " if path.endswith(".md") else f"{data / path}:{line}: "
    hits = [p for p in problems if p.startswith(where) and re.search(says, p)]
    assert hits, f"no problem at {where} saying {says!r} in {problems}"


def test_check_prints_one_line_per_problem_and_exits_2(data: Path) -> None:
    edit("brands/northwind/brand.yaml", "[beverages, snacks]", "[beverages, snackz]")(data)
    result = CliRunner().invoke(rmn, ["check", "--data-dir", str(data)])
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{data / 'brands/northwind/brand.yaml'}:6: categories: unknown")


def test_a_missing_data_directory_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(rmn, ["check", "--data-dir", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 2 and "does not exist" in result.stdout
