"""First-party data: the documented files (products, stock, promotions, sell-through, geo
sales) in CSV, Parquet or Excel, validated row by row with one clear problem per bad value
(file and row, what is wrong, what is allowed) and nothing loaded while any problem remains;
and only the brand's owning tenant reads them."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from tools.errors import AccessDeniedError, RMNError, UnknownBrandError
from tools.firstparty import FirstPartyError, FirstPartyStore, to_gtin14

CHIPS, MIX = "012345678905", "00012345678912"  # a UPC-A and a GTIN-14, both valid

PRODUCTS = f"""gtin,name,category,price,unit_cost,retailer_id,item_id
{CHIPS},Kettle Chips Sea Salt,snacks,$3.99,2.79,alpha,AM00000001
{CHIPS},Kettle Chips Sea Salt,snacks,$3.99,2.79,beta,BG-000001
{MIX},Trail Mix Original,snacks,5.49,3.84,alpha,AM00000002
"""


def brand_folder(data: Path, brand: str = "acme", retailers: str = "[alpha, beta]") -> Path:
    """A data directory whose catalog holds the brand (and copies of alpha and beta)."""
    bundled = Path(__file__).resolve().parents[2] / "rag_corpus" / "retailers"
    for rid in ("alpha", "beta"):
        if not (data / "retailers" / rid).exists():
            shutil.copytree(bundled / rid, data / "retailers" / rid)
    folder = data / "brands" / brand
    folder.mkdir(parents=True)
    (folder / "brand.yaml").write_text(
        f"id: {brand}\nname: {brand.title()} Foods\nowner_tenant: {brand}\n"
        f"categories: [snacks]\nretailers: {retailers}\n"
    )
    (folder / "products.csv").write_text(PRODUCTS)
    return folder


def store(data: Path, brand: str = "acme") -> FirstPartyStore:
    return FirstPartyStore(data, tenant=brand, brand=brand)


def problems(data: Path) -> list[str]:
    with pytest.raises(FirstPartyError) as err:
        store(data).skus()
    return err.value.detail["problems"]


def test_products_in_csv_give_the_sku_table(tmp_path: Path) -> None:
    brand_folder(tmp_path)
    skus = store(tmp_path).skus()
    assert skus["gtin"].to_pylist() == [to_gtin14(CHIPS), MIX]
    assert skus["list_price"].to_pylist() == [3.99, 5.49]
    assert skus["unit_margin"].to_pylist() == [pytest.approx(1.20), pytest.approx(1.65)]
    assert skus["retailers"].to_pylist() == [["alpha", "beta"], ["alpha"]]
    # No stock file: every product is in stock as far as the plan knows, and it says so.
    assert skus["oos_prob"].to_pylist() == [0.0, 0.0]
    assert any("no stock file" in n for n in store(tmp_path).data().notes)
    assert store(tmp_path).items("beta") == {"BG-000001": to_gtin14(CHIPS)}


def test_excel_and_parquet_files_are_read_too(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    book = Workbook()
    book.active.append(["gtin", "stock_units", "oos_prob", "as_of"])
    book.active.append([CHIPS, 1200, "12%", date(2026, 9, 28)])  # an Excel date cell
    book.active.append([MIX, 40, 0.3, date(2026, 9, 28)])
    book.save(folder / "stock.xlsx")
    pq.write_table(
        pa.table({"retailer_id": ["alpha"], "gtin": [MIX], "start_date": [date(2026, 8, 3)],
                  "end_date": [date(2026, 8, 5)], "discount_pct": [20.0]}),
        folder / "promotions.parquet",
    )  # fmt: skip
    (folder / "sellthrough.csv").write_text(
        f"date,retailer_id,gtin,units,revenue,geo\n2026-08-03,alpha,{CHIPS},120,478.80,501\n"
        f"2026-08-03,alpha,{CHIPS},30,119.70,602\n"
    )
    s = store(tmp_path)
    assert s.skus()["oos_prob"].to_pylist() == [0.12, 0.3]
    assert s.skus()["stock_units"].to_pylist() == [1200, 40]
    # A promotion from start to end is one row per day for the curves.
    assert s.promotions("alpha")["date"].to_pylist() == [date(2026, 8, d) for d in (3, 4, 5)]
    # Sell-through by geo: summed per day for the stock calendar, kept apart as geo sales.
    assert s.sellthrough("alpha")["units"].to_pylist() == [150.0]
    assert sorted(s.geo_sales("alpha")["geo"]) == ["501", "602"]


def test_a_missing_column_is_one_problem_naming_what_is_allowed(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    (folder / "products.csv").write_text(PRODUCTS.replace(",unit_cost", ",cost"))
    (found,) = problems(tmp_path)
    assert found == (
        f"{folder / 'products.csv'}:1: column 'unit_cost' is missing; allowed columns: required "
        "gtin, name, category, price, unit_cost; optional retailer_id, item_id"
    )


def test_bad_gtins_and_negative_prices_name_their_rows(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    (folder / "products.csv").write_text(
        PRODUCTS.replace(f"{MIX},Trail", "00012345678913,Trail").replace(
            "$3.99,2.79,beta", "-1.50,2.79,beta"
        )
    )
    found = problems(tmp_path)
    path = folder / "products.csv"
    assert f"{path}:3: column 'price': price -1.5 is not above 0; allowed: a price above 0" in found
    assert any(
        p.startswith(f"{path}:4: column 'gtin': '00012345678913' has a wrong check digit")
        and "allowed: a GTIN whose last digit is its GS1 check digit" in p
        for p in found
    ), found


def test_duplicate_keys_and_unknown_retailers_are_refused(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    (folder / "products.csv").write_text(
        PRODUCTS + f"{MIX},Trail Mix Original,snacks,5.49,3.84,alpha,AM00000002\n"
        f"{MIX},Trail Mix Original,snacks,5.49,3.84,gamma,G0000001\n"
    )
    found = problems(tmp_path)
    path = folder / "products.csv"
    assert (
        f"{path}:5: duplicate row for gtin={MIX}, retailer_id=alpha (first at row 4); allowed: "
        "one row per gtin, retailer_id"
    ) in found
    assert (
        f"{path}:6: unknown retailer 'gamma'; allowed: alpha, beta (the retailers in acme's "
        "brand.yaml)"
    ) in found


def test_nothing_is_loaded_while_any_file_has_a_problem(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    (folder / "sellthrough.csv").write_text(
        f"date,retailer_id,gtin,units,revenue\n2026-08-03,alpha,{CHIPS},12,47.88\n"
        f"08/04/2026,alpha,{CHIPS},-3,0\n2026-08-05,alpha,00099999999990,1,3.99\n"
    )
    found = problems(tmp_path)
    path = folder / "sellthrough.csv"
    assert f"{path}:3: column 'date': '08/04/2026' is not a date; allowed: YYYY-MM-DD" in found
    assert f"{path}:3: column 'units': -3 is negative; allowed: 0 or more" in found
    assert (
        f"{path}:4: GTIN 00099999999990 is not in the products file; allowed: a product listed "
        "there"
    ) in found
    # The products file was fine, but the store answers nothing while the brand's data is bad.
    with pytest.raises(FirstPartyError):
        store(tmp_path).sellthrough()


def test_a_mistake_repeated_on_many_rows_is_one_problem(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    # The chips' price is wrong: its sell-through rows are not reported for it again.
    (folder / "products.csv").write_text(PRODUCTS.replace("$3.99,2.79,alpha", "-3.99,2.79,alpha"))
    days = [f"2026-08-{d:02d}" for d in range(1, 31)]
    (folder / "sellthrough.csv").write_text(
        "date,retailer_id,gtin,units,revenue\n"
        + "".join(f"{d},alpha,{CHIPS},2,7.98\n" for d in days)  # rows 2-31
        + "".join(f"{d},alpha,00099999999990,1,3.99\n" for d in days)  # rows 32-61
        + "".join(f"{d},gamma,{MIX},1,5.49\n" for d in days[:3])  # rows 62-64
    )
    found = problems(tmp_path)
    path = folder / "sellthrough.csv"
    assert found == [
        f"{folder / 'products.csv'}:2: column 'price': price -3.99 is not above 0; allowed: a "
        "price above 0",
        f"{path}:62: unknown retailer 'gamma' (and 2 more rows); allowed: alpha, beta (the "
        "retailers in acme's brand.yaml)",
        f"{path}:32: GTIN 00099999999990 is not in the products file (and 29 more rows); "
        "allowed: a product listed there",
    ]


def test_two_files_for_one_table_are_refused(tmp_path: Path) -> None:
    folder = brand_folder(tmp_path)
    pq.write_table(pa.table({"gtin": [MIX]}), folder / "products.parquet")
    (found,) = problems(tmp_path)
    assert found.endswith(
        "products.csv and products.parquet both found; allowed: one products file"
    )


def test_only_the_owning_tenant_reads(tmp_path: Path) -> None:
    brand_folder(tmp_path)
    with pytest.raises(AccessDeniedError) as err:
        FirstPartyStore(tmp_path, tenant="globex", brand="acme")
    assert err.value.message == "tenant 'globex' may not read first-party data of brand 'acme'"
    with pytest.raises(RMNError, match="malformed tenant id"):
        FirstPartyStore(tmp_path, tenant="../acme", brand="../acme")


def test_a_brand_the_catalog_does_not_define_is_unknown(tmp_path: Path) -> None:
    brand_folder(tmp_path)
    with pytest.raises(UnknownBrandError, match="unknown brand 'initech'"):
        store(tmp_path, "initech").skus()


def test_the_readme_table_is_the_schema() -> None:
    from tools.firstparty.schema import FILES, optional_columns, required_columns

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use your own data", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    table = {c[0].strip(): [c.strip() for c in c[1:4]] for c in rows if c[0].strip() in FILES}

    def cols(names: list[str] | tuple[str, ...]) -> str:
        return ", ".join(names) or "–"

    assert table == {
        name: [cols(required_columns(name)), cols(optional_columns(name)), cols(keys)]
        for name, (_model, keys, _required) in FILES.items()
    }

