"""Real networks' day-level reports, laid out as their portals export them, harmonized to RMIS
(event grain: one day x line item) with a quality report; and a retailer's own clean-room
export ingested as its clean-room view, with its threshold recorded.

The fixtures under tests/fixtures/networks/ are small files with the portals' quirks: Excel
workbooks, preamble lines above the header, a totals row, "$1,234.56" and "1.25%" strings, US
and month-name dates, header names with trailing spaces, attribution windows in column names.
Each retailer is scaffolded the way a user would (`rmn retailers add --layout`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tools.catalog.scaffold import add_retailer
from tools.curves import cleanroom_view
from tools.harmonize import harmonize_retailer
from tools.paths import use_catalog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "networks"
NETWORKS = ("amazon", "walmart", "instacart", "criteo")
GTINS = {"00085012990013", "00085012990020", "00085012990037"}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "data")
    data = tmp_path / "data"
    for network in NETWORKS:
        add_retailer(data, network.title(), retailer_id=network, source="alpha", layout=network,
                     timezone=None, placements=[], aliases=[])  # fmt: skip
    # A grocer whose network runs on Criteo and whose clean room exports aggregates.
    add_retailer(data, "Clean Room Grocer", retailer_id="clean_room_grocer", source="alpha",
                 layout="criteo", timezone=None, placements=[], aliases=[])  # fmt: skip
    return data


def harmonized(data: Path, retailer: str):  # type: ignore[no-untyped-def]
    with use_catalog(data):
        report = harmonize_retailer(retailer, data / "raw" / retailer, data / "rmis")
    events = pq.read_table(data / "rmis" / retailer / "events.parquet").to_pandas()
    return report, events


@pytest.mark.parametrize(
    ("network", "rows_in", "rows_out", "quarantined"),
    [
        ("amazon", 15, 15, {}),
        ("walmart", 16, 15, {"unknown_item": 1}),
        ("instacart", 15, 15, {}),
        ("criteo", 30, 30, {}),
    ],
)
def test_each_network_report_harmonizes_to_day_level_events(
    data: Path, network: str, rows_in: int, rows_out: int, quarantined: dict[str, int]
) -> None:
    report, events = harmonized(data, network)
    assert (report.rows_in, report.rows_out) == (rows_in, rows_out)
    assert {k: a.count for k, a in report.anomalies.items() if a.count} == quarantined
    assert report.grain == "day"
    # The totals row is dropped as a footer (Walmart's snapshot has none), never harmonized.
    assert report.footer_rows_dropped == (0 if network == "walmart" else 1)
    # One event per day x line item, every item matched to the brand through its products file.
    assert set(events["gtin"]) == GTINS and set(events["brand_id"]) == {"fixture_co"}
    assert events["event_date"].nunique() == 5
    key = ["event_date", "campaign_id", "retailer_item_id", "placement"]
    assert not events.duplicated(key).any()
    assert (events["event_ts"].dt.hour == 0).all()
    assert report.crosswalk_file.endswith("products.csv")


def test_report_quirks_are_read_as_numbers_and_dates(data: Path) -> None:
    _, amazon = harmonized(data, "amazon")
    first = amazon.sort_values("event_id").iloc[0]
    # "Sep 01, 2026" and the "14 Day Total Sales " header (trailing space) of the console export.
    assert str(first["event_date"]) == "2026-09-01" and first["attributed_sales"] == 83.0
    _, instacart = harmonized(data, "instacart")
    # "$1,001.00" spend and "12,001" impressions in the CSV export.
    rows = instacart[instacart["event_id"].str.endswith("|7700001")]
    row = rows.sort_values("event_date").iloc[0]
    assert row["spend"] == 1001.0 and row["impressions"] == 12001
    assert str(row["event_date"]) == "2026-09-01"
    _, criteo = harmonized(data, "criteo")
    assert set(criteo["placement"]) == {"sponsored_product", "display_onsite"}


def test_a_report_without_its_header_says_which_file_and_what_was_read(data: Path) -> None:
    from tools.errors import InputDataError

    bad = data / "raw" / "instacart" / "products_report.csv"
    bad.write_text(bad.read_text().replace("Product ID", "Item Code"))
    with pytest.raises(InputDataError, match="no row has a cell 'Product ID'") as err:
        harmonized(data, "instacart")
    assert str(bad) in err.value.message


def test_a_clean_room_export_is_ingested_as_the_view_with_its_threshold(data: Path) -> None:
    mapping = data / "retailers" / "clean_room_grocer" / "mapping.yaml"
    mapping.write_text(
        mapping.read_text()
        + """cleanroom_export:
  file: cleanroom_weekly.csv
  threshold: 25
  noise: laplace
  epsilon: 1.0
  noise_scale: 40.0
  brand_id: fixture_co
  columns: {week: Week, geo: DMA, sku: UPC, placement: Placement, spend: Spend,
            attributed_sales: Attributed Sales, events: Events}
  placement_map: {Sponsored Products: sponsored_product}
"""
    )
    report, _ = harmonized(data, "clean_room_grocer")
    meta = report.cleanroom_export
    assert meta is not None and meta["threshold"] == 25 and meta["noise"] == "laplace"
    assert meta["rows"] == 8 * 4 * 3 and meta["period"] == "week"
    view = pd.read_parquet(data / "rmis" / "clean_room_grocer" / "cleanroom_view.parquet")
    assert set(view["gtin"]) == GTINS and view["geo"].nunique() == 4
    # The curves read the retailer's own aggregates, not its events: k is the threshold it
    # applied, nothing is spent, and the weekly cells are the export's, summed over geo.
    with use_catalog(data):
        dv = cleanroom_view(data, "fixture_co", retailers=["clean_room_grocer"])
    (access,) = dv.access
    assert access.k == 25 and access.epsilon_spent == 0.0 and access.dp
    assert access.cells == {"week": 8 * 3}
    week = dv.cells[dv.cells["period"] == "week"]
    assert week["spend"].sum() == pytest.approx(view["spend"].sum())
    assert (week["sales_var"] == 2 * 40.0**2).all()
