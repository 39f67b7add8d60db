"""RMIS harmonizer: mappings, transforms, rules, outputs and error paths, on tiny native
exports written by the tests themselves (one per retailer format)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from tools.errors import InputDataError, MappingError, UnknownRetailerError
from tools.harmonize import (
    ANOMALY_KINDS,
    TRANSFORMS,
    available_retailers,
    harmonize_all,
    harmonize_retailer,
    load_mapping,
    parse_mapping,
)
from tools.harmonize import report as report_module
from tools.paths import bundled_catalog_dir
from tools.rmis import EVENT_COLUMNS, RMISEvent, gtin_check_digit

MAPPINGS_DIR = bundled_catalog_dir() / "retailers"

EXPORTED_AT = datetime(2024, 4, 1, tzinfo=UTC)
PLANTED = (
    "duplicate_row",
    "null_required",
    "negative_cost",
    "future_date",
    "unknown_placement",
    "clicks_gt_impressions",
    "unknown_item",
)


def gtin(n: int) -> str:
    body = f"{n:013d}"
    return body + str(gtin_check_digit(body))


# -- tiny native exports ---------------------------------------------------------------------
# Each retailer: a clean row builder (native column -> value) and how to plant each kind of dirt.


def _ts(i: int) -> datetime:
    """UTC hour of clean row i: rows 1-12 span the 2024-03-10 DST change."""
    return datetime(2024, 3, 1, 16, tzinfo=UTC) + timedelta(hours=19 * i)


def alpha_row(i: int) -> dict[str, Any]:
    local = _ts(i).astimezone(_tz("America/Chicago")).replace(tzinfo=None)
    return {
        "ROW_ID": i,
        "ADVERTISER_ID": ["AM-10001", "AM-10002", "AM-10003", "AM-10004"][i % 4],
        "CAMPAIGN_ID": f"a-c{i % 3}",
        "EVENT_HOUR_LOCAL": local.strftime("%Y-%m-%d %H:%M:%S"),
        "DMA_CODE": 501 + i % 5,
        "PLACEMENT_TYPE": [
            "Sponsored Products",
            "Search Ads",
            "Onsite Display",
            "Offsite Display",
            "In-Store TV",
        ][i % 5],
        "AUDIENCE_SEGMENT": "loyal",
        "ITEM_ID": f"AM{i % 4:08d}",
        "IMPRESSIONS": 100 + i,
        "CLICKS": i % 7,
        "ORDERS": i % 3,
        "SPEND_CENTS": 1234 + i,
        "SALES_CENTS": 5000 + i,
        "UNITS": i % 4,
    }


def beta_row(i: int) -> dict[str, Any]:
    return {
        "eventId": f"b-{i:09d}",
        "advertiserName": ["Acme Foods Inc.", "Globex Health", "Initech Home", "Brand X Co."][
            i % 4
        ],
        "campaignId": f"b-c{i % 3}",
        "timestampUtc": _ts(i).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dma": str(501 + i % 5),
        "placement": ["sp", "search", "offsite"][i % 3],
        "audience": "families",
        "productId": f"BG-{i % 4:06d}",
        "impressions": 100 + i,
        "clicks": i % 7,
        "orders": i % 3,
        "units": i % 4,
        "cost": 12.34 + i,
        "attributedSales": 50.0 + i,
    }


def gamma_row(i: int) -> dict[str, Any]:
    placement = ["SEARCH", "PDP", "OFFSITE", "SCREEN"][i % 4]
    return {
        "event_id": i,
        "advertiser": ["GP-ACME", "GP-GLOBEX", "GP-INITECH", "GP-BRANDX"][i % 4],
        "campaign": f"g-c{i % 3}",
        "ts_local": _ts(i).astimezone(_tz("America/New_York")).replace(tzinfo=None),
        "dma_code": str(501 + i % 5),
        "placement_name": placement,
        "audience_code": "wellness",
        "sku_code": f"G{i % 4:07d}",
        "imps": 100 + i,
        "clks": i % 7,
        "convs": i % 3,
        "units": i % 4,
        "cost_usd": 12.34 + i,
        "revenue_usd": 50.0 + i,
        "viewable_pct": None if placement == "SEARCH" else 55.0,
    }


def delta_row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "advertiser": ["acme", "globex", "initech", "brand-x"][i % 4],
        "campaign": f"d-c{i % 3}",
        "epoch_ms": int(_ts(i).timestamp() * 1000),
        "geo": f"DMA-{501 + i % 5}",
        "placement": ["search", "product", "display", "video"][i % 4],
        "audience": "movers",
        "item": f"DH-{i % 4:07d}",
        "impressions": 100 + i,
        "clicks": i % 7,
        "purchases": i % 3,
        "units": i % 4,
        "cost": f"${1234.56 + i:,.2f}",
        "sales": f"${5000 + i:,.2f}",
    }


def _tz(name: str) -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


FUTURE = EXPORTED_AT + timedelta(days=3)
# kind -> native column -> dirty value, per retailer.
DIRT: dict[str, dict[str, dict[str, Any]]] = {
    "alpha": {
        "null_required": {"ITEM_ID": ""},
        "negative_cost": {"SPEND_CENTS": -150},
        "future_date": {"EVENT_HOUR_LOCAL": "2024-04-03 10:00:00"},
        "unknown_placement": {"PLACEMENT_TYPE": "Sponsored Brands Video"},
        "clicks_gt_impressions": {"IMPRESSIONS": 3, "CLICKS": 9},
        "unknown_item": {"ITEM_ID": "AM99999999"},
    },
    "beta": {
        "null_required": {"cost": None},
        "negative_cost": {"cost": -2.5},
        "future_date": {"timestampUtc": FUTURE.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "unknown_placement": {"placement": "TEST"},
        "clicks_gt_impressions": {"impressions": 3, "clicks": 9},
        "unknown_item": {"productId": "BG-999999"},
    },
    "gamma": {
        "null_required": {"ts_local": None},
        "negative_cost": {"cost_usd": -0.01},
        "future_date": {"ts_local": datetime(2024, 4, 3, 10)},
        "unknown_placement": {"placement_name": "unknown"},
        "clicks_gt_impressions": {"imps": 3, "clks": 9},
        "unknown_item": {"sku_code": "G9999999"},
    },
    "delta": {
        "null_required": {"item": ""},
        "negative_cost": {"cost": "-$1,000.00"},
        "future_date": {"epoch_ms": int(FUTURE.timestamp() * 1000)},
        "unknown_placement": {"placement": "TEST"},
        "clicks_gt_impressions": {"impressions": 3, "clicks": 9},
        "unknown_item": {"item": "DH-9999999"},
    },
}
ROW = {"alpha": alpha_row, "beta": beta_row, "gamma": gamma_row, "delta": delta_row}
ID_COLUMN = {"alpha": "ROW_ID", "beta": "eventId", "gamma": "event_id", "delta": "id"}


def crosswalk_rows(retailer: str) -> list[dict[str, Any]]:
    rows = []
    for k in range(4):
        g = gtin(10_000_000 + k)
        if retailer == "alpha":
            rows.append({"ITEM_ID": f"AM{k:08d}", "GTIN": g})
        elif retailer == "beta":
            rows.append({"productId": f"BG-{k:06d}", "upc": g[2:]})
        elif retailer == "gamma":
            rows.append({"sku_code": f"G{k:07d}", "gtin": g})
        else:
            rows.append({"item": f"DH-{k:07d}", "ean13": g[1:]})
    return rows


def write_table(path: Path, rows: list[dict[str, Any]], fmt: str, delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)


FILES = {
    "alpha": (("events.csv", "item_crosswalk.csv"), "csv", ","),
    "beta": (("events.jsonl", "products.jsonl"), "jsonl", ","),
    "gamma": (("events.parquet", "sku_xref.parquet"), "parquet", ","),
    "delta": (("events.csv", "items.csv"), "csv", ";"),
}


def write_export(
    root: Path, retailer: str, n_clean: int = 12, dirt: bool = True
) -> tuple[Path, dict[str, list[str]], int]:
    """Write a retailer export; returns (folder, {kind: native ids}, physical rows)."""
    folder = root / retailer
    rows = [ROW[retailer](i) for i in range(1, n_clean + 1)]
    planted: dict[str, list[str]] = {}
    if dirt:
        next_id = n_clean + 1
        for kind, change in DIRT[retailer].items():
            row = {**ROW[retailer](next_id), **change}
            rows.append(row)
            planted[kind] = [str(row[ID_COLUMN[retailer]])]
            next_id += 1
        # Exact extra copies of clean rows 2 and 5 (row 5 twice).
        copies = [dict(rows[1]), dict(rows[4]), dict(rows[4])]
        rows[6:6] = copies
        planted["duplicate_row"] = [str(rows[1][ID_COLUMN[retailer]])] + [
            str(rows[4][ID_COLUMN[retailer]])
        ] * 2
    (events, xwalk), fmt, delim = FILES[retailer]
    write_table(folder / events, rows, fmt, delim)
    write_table(folder / xwalk, crosswalk_rows(retailer), fmt, delim)
    (folder / "export.json").write_text(
        json.dumps(
            {
                "retailer": retailer,
                "exported_at": EXPORTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "files": {"events": events, "crosswalk": xwalk},
            }
        )
    )
    return folder, planted, len(rows)


def harmonize(tmp_path: Path, retailer: str, **kw: Any) -> tuple[Any, dict[str, list[str]], int]:
    folder, planted, n = write_export(tmp_path / "raw", retailer, **kw)
    return harmonize_retailer(retailer, folder, tmp_path / "rmis"), planted, n


def read_parquet(path: Path) -> pa.Table:
    return pq.read_table(path)


def quarantined_ids(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in read_parquet(path).select(["reason", "native_id"]).to_pylist():
        out.setdefault(row["reason"], []).append(row["native_id"])
    return {k: sorted(v) for k, v in out.items()}


# -- mappings --------------------------------------------------------------------------------


def test_every_retailer_has_a_bundled_mapping_covering_rmis() -> None:
    assert available_retailers() == ["alpha", "beta", "delta", "gamma"]
    for retailer in available_retailers():
        mapping = load_mapping(retailer)
        assert mapping.retailer == retailer
        assert list(mapping.fields) == list(EVENT_COLUMNS) or set(mapping.fields) == set(
            EVENT_COLUMNS
        )


# -- the four native formats, end to end --------------------------------------------------


@pytest.mark.parametrize("retailer", ["alpha", "beta", "gamma", "delta"])
def test_planted_dirt_is_found_exactly_and_clean_rows_pass(tmp_path: Path, retailer: str) -> None:
    report, planted, physical = harmonize(tmp_path, retailer)
    out = tmp_path / "rmis" / retailer

    assert report.rows_in == physical
    assert report.rows_out == 12 and report.rows_quarantined == physical - 12
    assert list(report.anomalies) == list(ANOMALY_KINDS)
    for kind, stat in report.anomalies.items():
        assert stat.count == len(planted.get(kind, [])), kind
        assert stat.examples == sorted(set(stat.examples), key=stat.examples.index) or kind == (
            "duplicate_row"
        )
    assert quarantined_ids(out / "quarantine.parquet") == {k: sorted(v) for k, v in planted.items()}

    events = read_parquet(out / "events.parquet")
    assert events.column_names == list(EVENT_COLUMNS)
    duck_types = {
        "VARCHAR": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "DATE": pa.date32(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
    }
    assert [events.schema.field(c).type for c in EVENT_COLUMNS] == [
        duck_types[t] for t in EVENT_COLUMNS.values()
    ]
    rows = events.to_pylist()
    for row in rows:
        RMISEvent.model_validate(row)
    assert [r["event_id"] for r in rows] == [
        f"{retailer}:{r[ID_COLUMN[retailer]]}" for r in [ROW[retailer](i) for i in range(1, 13)]
    ]

    # Quarantine keeps the native columns as read, plus why and where.
    quarantine = read_parquet(out / "quarantine.parquet")
    native_columns = list(ROW[retailer](1))
    assert quarantine.column_names == [*native_columns, "reason", "native_id", "source_row"]
    dup_rows = [r for r in quarantine.to_pylist() if r["reason"] == "duplicate_row"]
    assert [r["source_row"] for r in dup_rows] == [7, 8, 9]

    on_disk = json.loads((out / "quality_report.json").read_text())
    assert on_disk["rows_in"] == on_disk["rows_out"] + on_disk["rows_quarantined"]
    assert set(on_disk["null_rates"]) == set(native_columns)
    item_column = load_mapping(retailer).fields["retailer_item_id"].column
    misses = 1 + (item_column in DIRT[retailer]["null_required"])
    assert on_disk["crosswalk_coverage"] == pytest.approx((physical - misses) / physical, abs=1e-6)
    assert on_disk["source_files"] == [str(tmp_path / "raw" / retailer / FILES[retailer][0][0])]
    assert not list(out.glob(".*.tmp"))


def test_values_are_converted_to_rmis_units_and_utc(tmp_path: Path) -> None:
    for retailer in ("alpha", "beta", "gamma", "delta"):
        harmonize(tmp_path, retailer, dirt=False)
    rows = {
        r: {
            e["event_id"]: e
            for e in read_parquet(tmp_path / "rmis" / r / "events.parquet").to_pylist()
        }
        for r in ("alpha", "beta", "gamma", "delta")
    }
    # Row 3 is 2024-03-04 01:00 UTC, still 2024-03-03 on Chicago and New York clocks.
    for retailer, key in [
        ("alpha", "alpha:3"),
        ("beta", "beta:b-000000003"),
        ("gamma", "gamma:3"),
        ("delta", "delta:3"),
    ]:
        e = rows[retailer][key]
        assert e["event_ts"] == _ts(3).replace(tzinfo=None)
        assert e["event_date"] == _ts(3).date()
        assert e["retailer_id"] == retailer
        assert e["brand_id"] == "brand_x"  # the fourth advertiser in each retailer's list
        assert e["gtin"] == gtin(10_000_003)
        assert e["geo_id"] == "504"
        assert e["impressions"] == 103 and e["clicks"] == 3 and e["conversions"] == 0
    for i in (1, 12):  # both sides of the 2024-03-10 DST change
        assert rows["alpha"][f"alpha:{i}"]["event_ts"] == _ts(i).replace(tzinfo=None)
        assert rows["gamma"][f"gamma:{i}"]["event_ts"] == _ts(i).replace(tzinfo=None)
    assert rows["alpha"]["alpha:3"]["spend"] == pytest.approx(12.37)
    assert rows["alpha"]["alpha:3"]["attributed_sales"] == pytest.approx(50.03)
    assert rows["delta"]["delta:3"]["spend"] == pytest.approx(1237.56)
    assert rows["delta"]["delta:3"]["attributed_sales"] == pytest.approx(5003.0)
    assert rows["beta"]["beta:b-000000003"]["spend"] == pytest.approx(15.34)
    assert rows["alpha"]["alpha:3"]["placement"] == "display_offsite"
    assert rows["beta"]["beta:b-000000003"]["placement"] == "sponsored_product"
    assert rows["gamma"]["gamma:3"]["placement"] == "instore_screen"
    assert rows["delta"]["delta:3"]["placement"] == "onsite_video"
    assert rows["delta"]["delta:2"]["brand_id"] == "initech"
    # Viewability: a percentage becomes a share; NULL (search) stays NULL and is not dirt.
    assert rows["gamma"]["gamma:3"]["viewability"] == pytest.approx(0.55)
    assert rows["gamma"]["gamma:4"]["viewability"] is None
    assert rows["alpha"]["alpha:3"]["viewability"] is None


# -- transforms ----------------------------------------------------------------------------

TRANSFORM_CASES: list[tuple[str, dict[str, str], str, Any]] = [
    ("trim", {}, "'  a b '", "a b"),
    ("lower", {}, "'AbC'", "abc"),
    ("upper", {}, "'AbC'", "ABC"),
    ("to_text", {}, "42", "42"),
    ("prefix", {"value": "alpha:"}, "7", "alpha:7"),
    ("strip_prefix", {"value": "DMA-"}, "'DMA-501'", "501"),
    ("strip_prefix", {"value": "DMA-"}, "'501'", "501"),
    ("cents_to_dollars", {}, "'12345'", 123.45),
    ("cents_to_dollars", {}, "'12x'", None),
    ("parse_money", {}, "'$1,234.56'", 1234.56),
    ("parse_money", {}, "'-$3.10'", -3.10),
    ("parse_money", {}, "'n/a'", None),
    ("to_fraction", {}, "'55'", 0.55),
    ("to_utc", {"tz": "America/Chicago"}, "'2024-01-15 10:00:00'", datetime(2024, 1, 15, 16)),
    ("to_utc", {"tz": "America/Chicago"}, "'2024-07-15 10:00:00'", datetime(2024, 7, 15, 15)),
    (
        "to_utc",
        {"tz": "America/New_York"},
        "TIMESTAMP '2024-07-15 10:00:00'",
        datetime(2024, 7, 15, 14),
    ),
    ("to_utc", {"tz": "America/Chicago"}, "'yesterday-ish'", None),
    ("iso_to_utc", {}, "'2024-07-15T10:00:00Z'", datetime(2024, 7, 15, 10)),
    ("iso_to_utc", {}, "'2024-07-15T10:00:00+02:00'", datetime(2024, 7, 15, 8)),
    ("epoch_ms_to_utc", {}, "'1721037600000'", datetime(2024, 7, 15, 10)),
    ("epoch_s_to_utc", {}, "1721037600", datetime(2024, 7, 15, 10)),
    ("to_date", {}, "TIMESTAMP '2024-07-15 23:00:00'", datetime(2024, 7, 15).date()),
    ("gtin_from_upc12", {}, "'012345678905'", "00012345678905"),
    ("gtin_from_upc12", {}, "12345678905", "00012345678905"),  # a number lost its leading 0
    ("gtin_from_upc12", {}, "'1234567890123'", None),
    ("gtin_from_ean13", {}, "'4006381333931'", "04006381333931"),
    ("gtin_from_ean13", {}, "'40063813339x'", None),
    ("gtin14", {}, "'4006381333931'", "04006381333931"),
    # Report quirks: locale dates (ISO always works too), counts, percents, comma decimals.
    ("parse_date", {"format": "%m/%d/%Y"}, "'07/15/2024'", datetime(2024, 7, 15)),
    ("parse_date", {"format": "%d/%m/%Y"}, "'15/07/2024'", datetime(2024, 7, 15)),
    ("parse_date", {"format": "%b %d, %Y"}, "'Jul 15, 2024'", datetime(2024, 7, 15)),
    ("parse_date", {"format": "%m/%d/%Y"}, "'2024-07-15'", datetime(2024, 7, 15)),
    ("parse_date", {"format": "%m/%d/%Y"}, "'Total'", None),
    ("parse_number", {}, "'12,345'", 12345.0),
    ("parse_number", {}, "'n/a'", None),
    ("parse_percent", {}, "'12.5%'", 0.125),
    ("parse_money_eu", {}, "'1.234,56 €'", 1234.56),
]


def test_every_transform_is_covered() -> None:
    assert {c[0] for c in TRANSFORM_CASES} == set(TRANSFORMS)


@pytest.mark.parametrize(("name", "args", "value", "expected"), TRANSFORM_CASES)
def test_transform(name: str, args: dict[str, str], value: str, expected: Any) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sql = TRANSFORMS[name].render(value, args)
    (got,) = con.execute(f"SELECT try({sql})").fetchone()  # type: ignore[misc]
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


# -- rules ---------------------------------------------------------------------------------


def _write_alpha(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    folder, _, _ = write_export(tmp_path / "raw", "alpha", n_clean=2, dirt=False)
    write_table(folder / "events.csv", rows, "csv")
    return folder


def test_a_row_with_several_problems_gets_the_first_rule_in_order(tmp_path: Path) -> None:
    rows = [
        alpha_row(1),
        # negative cost, future, unknown placement and unknown item at once
        {
            **alpha_row(2),
            "SPEND_CENTS": -1,
            "EVENT_HOUR_LOCAL": "2030-01-01 00:00:00",
            "PLACEMENT_TYPE": "TEST",
            "ITEM_ID": "AM99999999",
        },
        # unknown placement and more clicks than impressions
        {**alpha_row(3), "PLACEMENT_TYPE": "TEST", "CLICKS": 999},
        # a duplicate of row 2 is a duplicate first
        {
            **alpha_row(2),
            "SPEND_CENTS": -1,
            "EVENT_HOUR_LOCAL": "2030-01-01 00:00:00",
            "PLACEMENT_TYPE": "TEST",
            "ITEM_ID": "AM99999999",
        },
        # unknown advertiser
        {**alpha_row(4), "ADVERTISER_ID": "AM-99999"},
    ]
    folder = _write_alpha(tmp_path, rows)
    report = harmonize_retailer("alpha", folder, tmp_path / "rmis")
    assert quarantined_ids(tmp_path / "rmis" / "alpha" / "quarantine.parquet") == {
        "negative_cost": ["2"],
        "unknown_placement": ["3"],
        "duplicate_row": ["2"],
        "unknown_advertiser": ["4"],
    }
    assert report.anomalies["unknown_advertiser"].examples == ["4"]
    assert report.rows_out == 1


def test_unreadable_and_blank_values_are_quarantined_not_guessed(tmp_path: Path) -> None:
    rows = [
        alpha_row(1),
        {**alpha_row(2), "IMPRESSIONS": "lots"},
        {**alpha_row(3), "UNITS": "2.5"},  # would round to 3 if cast blindly
        {**alpha_row(4), "CAMPAIGN_ID": "   "},
        {**alpha_row(5), "EVENT_HOUR_LOCAL": "2024-13-45 99:00:00"},
        {**alpha_row(6), "CLICKS": -2},
        {**alpha_row(7), "UNITS": "3.0"},  # integral, fine
    ]
    folder = _write_alpha(tmp_path, rows)
    report = harmonize_retailer("alpha", folder, tmp_path / "rmis")
    assert quarantined_ids(tmp_path / "rmis" / "alpha" / "quarantine.parquet") == {
        "invalid_value": ["2", "3", "5"],
        "null_required": ["4"],
        "negative_value": ["6"],
    }
    assert report.rows_out == 2
    assert report.null_rates["CAMPAIGN_ID"] == pytest.approx(1 / 7, abs=1e-6)


def test_viewability_out_of_range_and_bad_crosswalk_gtin(tmp_path: Path) -> None:
    folder, _, _ = write_export(tmp_path / "raw", "gamma", n_clean=4, dirt=False)
    rows = [gamma_row(i) for i in range(1, 5)]
    rows[1]["viewable_pct"] = 150.0
    write_table(folder / "events.parquet", rows, "parquet")
    xw = crosswalk_rows("gamma")
    xw[3]["gtin"] = xw[3]["gtin"][:-1] + str((int(xw[3]["gtin"][-1]) + 1) % 10)
    write_table(folder / "sku_xref.parquet", xw, "parquet")
    report = harmonize_retailer("gamma", folder, tmp_path / "rmis")
    assert report.anomalies["out_of_range"].examples == ["2"]
    assert report.anomalies["invalid_gtin"].examples == ["3"]  # row 3 sells item 3
    assert report.rows_out == 2


# -- adding a retailer is adding a YAML file -----------------------------------------------

EPSILON_YAML = """\
retailer: epsilon
name: Epsilon Outlet
source: {format: csv, file: "deliveries_*.csv", delimiter: "|"}
crosswalk: {file: xref.csv, format: csv, delimiter: "|", key: sku, gtin: code,
            gtin_transforms: [gtin14]}
fields:
  event_id: {column: rid, transforms: [{prefix: "epsilon:"}]}
  retailer_id: {value: epsilon}
  brand_id: {column: adv, transforms: [lower], map: {acme: acme}}
  campaign_id: {column: cmp}
  event_ts: {column: ts, transforms: [epoch_s_to_utc]}
  event_date: {field: event_ts, transforms: [to_date]}
  geo_id: {value: "501"}
  placement: {column: pl, map: {S: sponsored_search}}
  audience_id: {value: all}
  gtin: {crosswalk: true}
  retailer_item_id: {column: sku, transforms: [upper]}
  impressions: {column: imp}
  clicks: {column: clk}
  conversions: {value: 0}
  spend: {column: usd}
  attributed_sales: {value: 0}
  attributed_units: {value: 0}
  viewability: {value: null}
rules:
  - {check: unique, field: event_id}
  - {check: not_null, fields: [event_ts, spend, retailer_item_id]}
  - {check: known_value, field: placement, kind: unknown_placement}
  - {check: crosswalk_hit, field: retailer_item_id}
"""


def _epsilon(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "epsilon.yaml"
    mapping.write_text(EPSILON_YAML)
    folder = tmp_path / "raw" / "epsilon"
    base = {
        "adv": "ACME",
        "cmp": "c1",
        "ts": 1721037600,
        "pl": "S",
        "imp": 10,
        "clk": 1,
        "usd": 2.5,
    }
    write_table(
        folder / "deliveries_1.csv",
        [
            {"rid": 1, **base, "sku": "k1"},
            {"rid": 2, **base, "sku": "k9"},
        ],
        "csv",
        "|",
    )
    write_table(
        folder / "deliveries_2.csv", [{"rid": 3, **base, "sku": "K1", "pl": "X"}], "csv", "|"
    )
    write_table(folder / "xref.csv", [{"sku": "K1", "code": gtin(5)}], "csv", "|")
    (folder / "export.json").write_text(
        json.dumps({"retailer": "epsilon", "exported_at": "2024-08-01T00:00:00Z"})
    )
    return mapping, folder


def test_a_new_retailer_needs_only_a_mapping_file(tmp_path: Path) -> None:
    mapping, folder = _epsilon(tmp_path)
    report = harmonize_retailer(None, folder, tmp_path / "rmis", mapping_path=mapping)
    assert report.retailer == "epsilon" and report.rows_in == 3
    assert len(report.source_files) == 2
    assert {k: a.examples for k, a in report.anomalies.items() if a.count} == {
        "unknown_placement": ["3"],
        "unknown_item": ["2"],
    }
    [event] = read_parquet(tmp_path / "rmis" / "epsilon" / "events.parquet").to_pylist()
    RMISEvent.model_validate(event)
    assert event["event_ts"] == datetime(2024, 7, 15, 10)
    assert (event["gtin"], event["brand_id"], event["retailer_item_id"]) == (gtin(5), "acme", "K1")


# -- errors a user can act on --------------------------------------------------------------


def test_unknown_retailer_lists_the_known_mappings(tmp_path: Path) -> None:
    with pytest.raises(UnknownRetailerError) as err:
        harmonize_retailer("omega", tmp_path, tmp_path / "out")
    assert "omega" in err.value.message
    for known in available_retailers():
        assert known in err.value.message


def _mapping_error(text: str) -> MappingError:
    with pytest.raises(MappingError) as err:
        parse_mapping(text, "bad.yaml")
    return err.value


def _alpha_yaml() -> str:
    return (MAPPINGS_DIR / "alpha" / "mapping.yaml").read_text()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_malformed_yaml_names_file_and_line() -> None:
    text = _alpha_yaml().replace("  format: csv\n", "  format: [csv\n", 1)
    err = _mapping_error(text)
    assert err.message.startswith("bad.yaml, line ")
    assert "not valid YAML" in err.message
    assert err.detail["line"] >= _line_of(text, "format: [csv")


def test_unknown_transform_names_line_and_what_is_allowed() -> None:
    text = _alpha_yaml().replace("transforms: [cents_to_dollars]", "transforms: [cents2usd]", 1)
    err = _mapping_error(text)
    assert err.detail["line"] == _line_of(text, "cents2usd")
    assert "unknown transform 'cents2usd'" in err.message
    assert "parse_money" in err.message and "to_utc" in err.message
    assert "fields.spend.transforms.0" in err.message


@pytest.mark.parametrize(
    ("old", "new", "needle", "says"),
    [
        (
            '  delimiter: ","\n',
            '  delimiter: ","\n  header: yes\n',
            "header: yes",
            "unknown key 'header'",
        ),
        ("  viewability: {value: null}\n", "", "fields:", "missing RMIS fields: viewability"),
        ("In-Store TV: instore_screen", "In-Store TV: tv", "In-Store TV", "not an RMIS placement"),
        (
            "{to_utc: America/Chicago}",
            "{to_utc: Mars/Olympus}",
            "Mars/Olympus",
            "unknown time zone",
        ),
        (
            "  - {check: crosswalk_hit, field: retailer_item_id}",
            "  - {check: crosswalk_hit, field: retailer_item_id, kind: oops}",
            "kind: oops",
            "unknown kind 'oops'",
        ),
        (
            "  - {check: valid_gtin, field: gtin}",
            "  - {check: sometimes, field: gtin}",
            "check: sometimes",
            "'crosswalk_hit'",
        ),
        (
            "  audience_id: {column: AUDIENCE_SEGMENT, transforms: [trim]}",
            "  audience_id: {column: AUDIENCE_SEGMENT, value: x}",
            "audience_id:",
            "exactly one of column",
        ),
        (
            "  - {check: not_null}",
            "  - {check: not_null, fields: [colour]}",
            "check: not_null",
            "unknown field 'colour'",
        ),
    ],
)
def test_invalid_mapping_says_where_and_why(old: str, new: str, needle: str, says: str) -> None:
    text = _alpha_yaml()
    assert old in text
    text = text.replace(old, new, 1)
    err = _mapping_error(text)
    assert says in err.message
    assert err.detail["line"] == _line_of(text, needle)
    assert err.message.startswith(f"bad.yaml, line {err.detail['line']}: ")


def test_file_missing_a_mapped_column_names_file_column_and_mapping(tmp_path: Path) -> None:
    folder, _, _ = write_export(tmp_path / "raw", "delta", dirt=False)
    rows = [{k: v for k, v in delta_row(i).items() if k != "purchases"} for i in (1, 2)]
    write_table(folder / "events.csv", rows, "csv", ";")
    with pytest.raises(InputDataError) as err:
        harmonize_retailer("delta", folder, tmp_path / "rmis")
    msg = err.value.message
    assert str(folder / "events.csv") in msg
    assert "'purchases'" in msg and "delta/mapping.yaml" in msg and "fields.conversions" in msg


@pytest.mark.parametrize("missing", ["folder", "events.jsonl", "products.jsonl", "export.json"])
def test_missing_inputs_are_clear_errors(tmp_path: Path, missing: str) -> None:
    folder, _, _ = write_export(tmp_path / "raw", "beta", dirt=False)
    if missing == "folder":
        folder = tmp_path / "nowhere"
    else:
        (folder / missing).unlink()
    with pytest.raises(InputDataError) as err:
        harmonize_retailer("beta", folder, tmp_path / "rmis")
    assert (str(folder) if missing == "folder" else missing) in err.value.message
    assert not (tmp_path / "rmis" / "beta" / "events.parquet").exists()


def test_export_for_another_retailer_is_refused(tmp_path: Path) -> None:
    folder, _, _ = write_export(tmp_path / "raw", "beta", dirt=False)
    (folder / "export.json").write_text('{"retailer": "alpha", "exported_at": "2024-04-01T00Z"}')
    with pytest.raises(InputDataError, match="retailer 'alpha'"):
        harmonize_retailer("beta", folder, tmp_path / "rmis")


def test_conflicting_crosswalk_and_broken_files_are_input_errors(tmp_path: Path) -> None:
    folder, _, _ = write_export(tmp_path / "raw", "alpha", dirt=False)
    xw = crosswalk_rows("alpha")
    write_table(folder / "item_crosswalk.csv", [*xw, {**xw[0], "GTIN": gtin(77)}], "csv")
    with pytest.raises(InputDataError, match="conflicting GTINs: AM00000000"):
        harmonize_retailer("alpha", folder, tmp_path / "rmis")
    folder, _, _ = write_export(tmp_path / "raw2", "beta", dirt=False)
    with (folder / "events.jsonl").open("a") as fh:
        fh.write('{"eventId": "b-1", "cost": \n')
    with pytest.raises(InputDataError, match="events.jsonl"):
        harmonize_retailer("beta", folder, tmp_path / "rmis")


def test_a_failed_run_leaves_previous_outputs_intact(tmp_path: Path) -> None:
    report, _, _ = harmonize(tmp_path, "alpha")
    out = tmp_path / "rmis" / "alpha"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"events.parquet", "quarantine.parquet", "quality_report.json"}

    rows = [{k: v for k, v in alpha_row(i).items() if k != "SPEND_CENTS"} for i in (1, 2)]
    write_table(tmp_path / "raw" / "alpha" / "events.csv", rows, "csv")
    with pytest.raises(InputDataError):
        harmonize_retailer("alpha", tmp_path / "raw" / "alpha", tmp_path / "rmis")
    # A failure late in the run (after outputs were being written) must not leak either.
    with pytest.raises(MappingError):
        harmonize_retailer(
            "beta",
            tmp_path / "raw" / "alpha",
            tmp_path / "rmis",
            mapping_path=MAPPINGS_DIR / "alpha" / "mapping.yaml",
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_outputs_are_replaced_only_when_all_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harmonize(tmp_path, "gamma")
    out = tmp_path / "rmis" / "gamma"
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*_: Any, **__: Any) -> None:
        raise InputDataError("disk full")

    # Fails after both Parquet files were written to their temporary names.
    monkeypatch.setattr(report_module.QualityReport, "model_dump_json", boom)
    with pytest.raises(InputDataError, match="disk full"):
        harmonize_retailer("gamma", tmp_path / "raw" / "gamma", tmp_path / "rmis")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# -- command line ----------------------------------------------------------------------------

runner = CliRunner()


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_cli_harmonizes_one_retailer_as_json(tmp_path: Path) -> None:
    folder, planted, n = write_export(tmp_path / "raw", "beta")
    result = _cli(
        "harmonize",
        "--retailer",
        "beta",
        "--in",
        str(folder),
        "--out",
        str(tmp_path / "rmis"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_in"] == n
    assert report["anomalies"]["unknown_item"]["examples"] == planted["unknown_item"]
    human = _cli("harmonize", "-r", "beta", "--in", str(folder), "--out", str(tmp_path / "h"))
    assert human.exit_code == 0
    assert f"beta: {n} rows read -> 12 events" in human.output


def test_cli_all_and_mapping_file(tmp_path: Path) -> None:
    for retailer in ("alpha", "delta"):
        write_export(tmp_path / "raw", retailer)
    result = _cli(
        "harmonize",
        "--all",
        "--in",
        str(tmp_path / "raw"),
        "--out",
        str(tmp_path / "rmis"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert sorted(body["retailers"]) == ["alpha", "delta"]
    assert body["rows_in"] == body["rows_out"] + body["rows_quarantined"]
    mapping, folder = _epsilon(tmp_path)
    result = _cli(
        "harmonize",
        "--mapping",
        str(mapping),
        "--in",
        str(folder),
        "--out",
        str(tmp_path / "rmis"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["retailer"] == "epsilon"


@pytest.mark.parametrize(
    ("args", "kind", "says"),
    [
        (["--retailer", "omega"], "unknown_retailer", "known mappings: alpha, beta, delta"),
        (["--retailer", "beta", "--in", "/nonexistent/beta"], "input_data_error", "not found"),
        ([], "error", "--retailer"),
    ],
)
def test_cli_errors_are_json_without_traceback(
    tmp_path: Path, args: list[str], kind: str, says: str
) -> None:
    result = _cli("harmonize", *args, "--out", str(tmp_path / "rmis"), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == kind and says in error["message"]
    assert "Traceback" not in result.output


def test_cli_bad_mapping_file_exits_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = _alpha_yaml().replace('[trim, {prefix: "alpha:"}]', "[trimm]")
    bad.write_text(text)
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if "[trimm]" in t)
    result = _cli("harmonize", "--mapping", str(bad), "--in", str(tmp_path), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "mapping_error" and error["line"] == line
    assert "unknown transform 'trimm'" in error["message"]


# -- against the simulator ---------------------------------------------------------------------


def test_harmonizing_a_simulated_world_finds_exactly_the_planted_dirt(tmp_path: Path) -> None:
    world = pytest.importorskip("tools.world")
    world.write_exports(world.generate_world(seed=7, days=90), tmp_path, events=20_000)
    reports = harmonize_all(tmp_path / "raw", tmp_path / "rmis")
    assert [r.retailer for r in reports] == ["alpha", "beta", "delta", "gamma"]
    for report in reports:
        retailer = report.retailer
        manifest = json.loads((tmp_path / "world" / "dirt" / f"{retailer}.json").read_text())
        assert report.rows_in == manifest["rows_written"]
        assert report.rows_in == report.rows_out + report.rows_quarantined
        assert set(manifest["kinds"]) == set(PLANTED)
        found = quarantined_ids(tmp_path / "rmis" / retailer / "quarantine.parquet")
        for kind in ANOMALY_KINDS:
            expected = manifest["kinds"].get(kind, {"count": 0, "row_ids": []})
            assert report.anomalies[kind].count == expected["count"], (retailer, kind)
            assert found.get(kind, []) == sorted(expected["row_ids"]), (retailer, kind)
        assert report.crosswalk_coverage > 0.9
        events = read_parquet(tmp_path / "rmis" / retailer / "events.parquet")
        assert events.column_names == list(EVENT_COLUMNS)
        assert events.num_rows == report.rows_out
        for row in (
            events.slice(0, 200).to_pylist() + events.slice(events.num_rows - 50).to_pylist()
        ):
            RMISEvent.model_validate(row)
        ids = events.column("event_id").to_pylist()
        assert len(set(ids)) == len(ids)


def test_bench_harmonize_reports_throughput() -> None:
    pytest.importorskip("tools.world")
    result = _cli("bench", "harmonize", "--events", "4000", "--runs", "1", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["events"] == 4000 and body["seconds"] > 0
    assert body["events_per_s"] == pytest.approx(4000 / body["seconds"], rel=0.01)
    assert sorted(body["per_retailer"]) == ["alpha", "beta", "delta", "gamma"]
    assert sum(r["events"] for r in body["per_retailer"].values()) == body["rows_in"]


def test_all_retailers_one_failing_does_not_stop_the_others(tmp_path: Path) -> None:
    for retailer in ("alpha", "beta", "gamma"):
        write_export(tmp_path / "raw", retailer)
    (tmp_path / "raw" / "beta" / "products.jsonl").unlink()
    with pytest.raises(InputDataError, match="products.jsonl"):
        harmonize_all(tmp_path / "raw", tmp_path / "rmis")
    assert (tmp_path / "rmis" / "alpha" / "quality_report.json").is_file()
    assert (tmp_path / "rmis" / "gamma" / "quality_report.json").is_file()
    assert not (tmp_path / "rmis" / "beta").exists() or not any(
        (tmp_path / "rmis" / "beta").iterdir()
    )


def test_rare_timestamps_are_converted_inline_and_common_ones_once(tmp_path: Path) -> None:
    # 12 distinct hours over 12 rows: too few repeats for a lookup; same answers either way.
    harmonize(tmp_path, "alpha", dirt=False)
    inline = read_parquet(tmp_path / "rmis" / "alpha" / "events.parquet").column("event_ts")
    assert inline.to_pylist() == [_ts(i).replace(tzinfo=None) for i in range(1, 13)]
    folder = tmp_path / "raw" / "alpha"
    rows = [{**alpha_row(i), "EVENT_HOUR_LOCAL": "2024-03-10 01:00:00"} for i in range(1, 41)]
    rows += [{**alpha_row(41), "EVENT_HOUR_LOCAL": "2024-03-10 03:00:00"}]  # after DST starts
    write_table(folder / "events.csv", rows, "csv")
    harmonize_retailer("alpha", folder, tmp_path / "rmis")
    ts = read_parquet(tmp_path / "rmis" / "alpha" / "events.parquet").column("event_ts")
    assert ts.to_pylist() == [datetime(2024, 3, 10, 7)] * 40 + [datetime(2024, 3, 10, 8)]


def test_malformed_csv_names_the_line(tmp_path: Path) -> None:
    folder, _, _ = write_export(tmp_path / "raw", "delta", dirt=False)
    lines = (folder / "events.csv").read_text().splitlines()
    lines[4] += ";extra"
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputDataError) as err:
        harmonize_retailer("delta", folder, tmp_path / "rmis")
    assert err.value.message == (
        f"{folder / 'events.csv'}: cannot be read: line 5 has 15 fields, the header has 14"
    )
    (folder / "events.csv").write_text("")
    with pytest.raises(InputDataError, match="events.csv: file is empty"):
        harmonize_retailer("delta", folder, tmp_path / "rmis")
