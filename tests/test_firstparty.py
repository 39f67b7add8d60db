"""First-party store: the owning brand reads its own tables; nobody else does."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.errors import AccessDeniedError, InputDataError, RMNError, UnknownBrandError
from tools.firstparty import FirstPartyStore


def write_firstparty(data: Path, brand: str) -> Path:
    root = data / "firstparty" / brand
    root.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "gtin": ["00012345678905", "00012345678912"],
                "name": ["Kettle Chips Sea Salt", "Trail Mix Original"],
                "category": ["snacks", "snacks"],
                "list_price": [3.99, 5.49],
                "unit_cost": [2.79, 3.84],
                "unit_margin": [1.20, 1.65],
                "stock_units": [1200, 40],
                "oos_prob": [0.01, 0.30],
                "retailers": [["alpha", "beta"], ["alpha"]],
            }
        ),
        root / "skus.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "retailer_id": ["alpha", "beta", "alpha"],
                "gtin": ["00012345678905", "00012345678905", "00012345678912"],
                "date": [date(2026, 8, 3), date(2026, 8, 10), date(2026, 8, 17)],
                "discount_pct": [10.0, 15.0, 20.0],
            }
        ),
        root / "promotions.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "date": [date(2026, 8, 3), date(2026, 8, 3)],
                "retailer_id": ["alpha", "beta"],
                "gtin": ["00012345678905", "00012345678905"],
                "units": [120, 45],
                "revenue": [478.80, 179.55],
            }
        ),
        root / "sellthrough.parquet",
    )
    return root


def test_owner_reads_its_tables(tmp_path: Path) -> None:
    write_firstparty(tmp_path, "acme")
    store = FirstPartyStore(tmp_path, tenant="acme", brand="acme")
    skus = store.skus()
    assert skus.num_rows == 2
    assert skus["unit_margin"].to_pylist() == [1.20, 1.65]
    assert skus["retailers"].to_pylist() == [["alpha", "beta"], ["alpha"]]
    assert store.promotions().num_rows == 3
    assert store.promotions(retailer="alpha")["discount_pct"].to_pylist() == [10.0, 20.0]
    alpha = store.sellthrough(retailer="alpha")
    assert (alpha["units"].to_pylist(), alpha["retailer_id"].to_pylist()) == ([120], ["alpha"])
    assert store.sellthrough(retailer="gamma").num_rows == 0


def test_other_tenant_is_denied(tmp_path: Path) -> None:
    write_firstparty(tmp_path, "acme")
    with pytest.raises(AccessDeniedError) as err:
        FirstPartyStore(tmp_path, tenant="globex", brand="acme")
    assert err.value.message == "tenant 'globex' may not read first-party data of brand 'acme'"
    assert err.value.to_dict()["type"] == "access_denied"


def test_malformed_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RMNError, match="malformed tenant id"):
        FirstPartyStore(tmp_path, tenant="../acme", brand="../acme")


def test_missing_data_names_the_command_that_writes_it(tmp_path: Path) -> None:
    store = FirstPartyStore(tmp_path, tenant="initech", brand="initech")
    with pytest.raises(UnknownBrandError, match="rmn world generate"):
        store.skus()
    root = write_firstparty(tmp_path, "acme")
    (root / "sellthrough.parquet").unlink()
    acme = FirstPartyStore(tmp_path, tenant="acme", brand="acme")
    with pytest.raises(
        InputDataError, match=r"sellthrough\.parquet is missing; `rmn world generate"
    ):
        acme.sellthrough()
    assert acme.skus().num_rows == 2


def test_missing_column_is_an_input_error(tmp_path: Path) -> None:
    root = write_firstparty(tmp_path, "acme")
    pq.write_table(pa.table({"gtin": ["00012345678905"]}), root / "skus.parquet")
    with pytest.raises(InputDataError, match="lacks column"):
        FirstPartyStore(tmp_path, tenant="acme", brand="acme").skus()
