"""The foreign example (examples/foreign: a brand and two retailers outside the simulator's
cast, in Criteo's and Instacart's report layouts) planned end to end from a fresh data
directory with the simulator's code never imported, exported as a workbook, and served over
HTTP (report, charts, export) to its own tenant only; a missing data directory is an error,
never a simulation; the experiment follows the panel the data supports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from cli.main import app as rmn
from tools.paths import use_catalog
from tools.pipeline import MeasurementRequest, design_measurement
from tools.plan import AllocationRow, Plan
from tools.plan.report_markdown import render_markdown

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "foreign"
BRIEF = (
    "Allocate $250k across Harbor and Pinecrest to maximize incremental margin with ROAS >= 2, "
    "10% for experiments"
)
# Plans and exports in a fresh interpreter, then says which simulator modules were loaded.
SCRIPT = """
import json, sys
from typer.testing import CliRunner
from cli.main import app
data, out = sys.argv[1], sys.argv[2]
runner = CliRunner()
plan = runner.invoke(app, ["plan", sys.argv[3], "--brand", "northwind", "--data-dir", data,
                           "--model", "none", "--approve", "--json"])
result = json.loads(plan.stdout)
export = runner.invoke(app, ["export", result["thread_id"], "--format", "xlsx", "--out", out,
                             "--brand", "northwind", "--data-dir", data, "--json"])
print(json.dumps({"plan_exit": plan.exit_code, "plan": result, "export_exit": export.exit_code,
                  "export": json.loads(export.stdout),
                  "world": sorted(m for m in sys.modules if m.startswith("tools.world"))}))
"""


def fresh(tmp_path: Path) -> Path:
    data = tmp_path / "foreign"
    shutil.copytree(EXAMPLE, data, ignore=shutil.ignore_patterns("make_example.py"))
    return data


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("foreign-plan")
    data = fresh(tmp)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(tmp / "out"), BRIEF],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"data": data}


@pytest.mark.slow
def test_the_example_plans_end_to_end_without_the_simulator(planned: dict) -> None:  # type: ignore[type-arg]
    assert planned["world"] == []  # no module of tools.world was ever imported
    assert planned["plan_exit"] == 0 and planned["plan"]["status"] == "approved"
    plan = planned["plan"]["plan"]
    assert {r["retailer_id"] for r in plan["allocation"]} <= {"harbor", "pinecrest"}
    spend = sum(r["spend"] for r in plan["allocation"])
    assert spend == pytest.approx(225_000, rel=1e-6)  # the budget less the 10% reserve
    assert plan["expected_outcome"]["iroas"]["mean"] >= 2.0
    # The yerba mate is forecast to stock out (stock.xlsx): the brief excludes it.
    assert "00085012341037" not in {r["gtin"] for r in plan["allocation"] if r["spend"] > 1}
    # Harbor carries most of the spend and its sell-through has a geo column: a geo holdout.
    exp = plan["experiment"]
    assert exp["retailer"] == "harbor" and exp["experiment_type"] == "geo_holdout"
    assert exp["data_source"] == "the brand's past sales in 16 regions (its sell-through file)"
    data = planned["data"]
    quality = json.loads((data / "rmis" / "harbor" / "quality_report.json").read_text())
    assert quality["footer_rows_dropped"] == 1 and quality["grain"] == "day"
    assert {k: v["count"] for k, v in quality["anomalies"].items() if v["count"]} == {
        "duplicate_row": 1, "unknown_item": 1
    }  # fmt: skip


@pytest.mark.slow
def test_the_exported_workbook_opens_with_its_rows_and_formats(planned: dict) -> None:  # type: ignore[type-arg]
    assert planned["export_exit"] == 0
    (path,) = planned["export"]["files"]
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "Harbor Grocery", "Pinecrest Market"]
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True)}
    assert summary["Brand"] == "Northwind Provisions" and summary["Budget"] == 250_000
    ws = book["Harbor Grocery"]
    header = [c.value for c in ws[1]]
    assert header[:11] == [
        "Retailer", "Product", "GTIN", "Item ID", "Placement", "Campaign", "Daily budget",
        "Flight start", "Flight end", "Days", "Total",
    ]  # fmt: skip
    first = {h: c.value for h, c in zip(header, ws[2], strict=True)}
    products = (planned["data"] / "brands" / "northwind" / "products.csv").read_text()
    assert f"{first['GTIN'][2:]},{first['Product']}" in products  # UPC-A in the file, GTIN-14 out
    assert f"harbor,{first['Item ID']}" in products  # Criteo's product id for it
    assert first["Daily budget"] * first["Days"] == pytest.approx(first["Total"], abs=0.2)
    assert first["Holdout"].startswith("geo holdout: no ads in")
    formats = {h: c.number_format for h, c in zip(header, ws[2], strict=True)}
    assert formats["Daily budget"] == formats["Total"] == '"$"#,##0.00'
    assert formats["Flight start"] == "yyyy-mm-dd" and formats["GTIN"] == "@"
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["B"].width >= len(first["Product"])


@pytest.mark.slow
def test_the_report_names_the_brand_from_the_catalog_in_force(planned: dict) -> None:  # type: ignore[type-arg]
    data, thread_id = planned["data"], planned["plan"]["thread_id"]
    folder = data / "reports" / thread_id
    written = (folder / "report.md").read_text()
    assert written.splitlines()[2].endswith("| brand: Northwind Provisions")  # its name, no id
    plan = Plan.model_validate_json((folder / "plan.json").read_text())
    with use_catalog(data):
        assert render_markdown(plan, []).splitlines()[2] == written.splitlines()[2]
    # The bundled catalog holds no northwind: the report names the brand by its id.
    assert render_markdown(plan, []).splitlines()[2].endswith("| brand: northwind")


def test_a_missing_data_directory_is_exit_2_and_nothing_is_simulated(tmp_path: Path) -> None:
    typo = tmp_path / "dat"
    result = CliRunner().invoke(
        rmn, ["plan", BRIEF, "--brand", "northwind", "--data-dir", str(typo), "--model", "none"]
    )
    assert result.exit_code == 2
    assert f"data directory {typo} does not exist" in result.stderr
    assert "rmn world generate" in result.stderr and not typo.exists()


def rows(retailer: str, gtin: str = "00085012341013") -> list[AllocationRow]:
    row = AllocationRow(
        retailer_id=retailer, placement="sponsored_product", gtin=gtin, spend=90_000,
        expected_revenue=300_000, expected_margin=120_000,
    )  # fmt: skip
    return [row]


def request(data: Path, retailer: str) -> MeasurementRequest:
    return MeasurementRequest(
        data_dir=data, tenant="northwind", brand="northwind", allocation=rows(retailer),
        reserve=20_000, expected_iroas=3.0,
    )  # fmt: skip


def test_without_geo_sales_the_experiment_is_a_switchback_or_none(tmp_path: Path) -> None:
    data = fresh(tmp_path)
    with use_catalog(data):
        out = design_measurement(request(data, "pinecrest"))
    assert out.panel is not None and out.panel.kind == "national"
    assert out.experiment is not None and out.experiment["experiment_type"] == "switchback"
    # A retailer that allows no switchback, with no sales by geo: no experiment, and why.
    # A valid rule set: no switchback allowed, so no switchback period either.
    rules = data / "retailers" / "pinecrest" / "measurement.md"
    text = rules.read_text().replace("[switchback, audience_holdout]", "[geo_holdout]")
    kept = [line for line in text.splitlines(keepends=True) if "switchback_min_period" not in line]
    assert len(kept) == len(text.splitlines()) - 2  # its value and its `sections` entry
    rules.write_text("".join(kept))
    with use_catalog(data):
        none = design_measurement(request(data, "pinecrest"))
    assert none.experiment is None
    assert none.notes[0].startswith("Pinecrest Market: no experiment possible, because the data")
    assert "allow no switchback" in none.notes[0]


@pytest.mark.slow
def test_the_report_charts_and_export_over_http_for_the_owner_only(tmp_path: Path) -> None:
    from langgraph_sdk import get_sync_client
    from serving_support import asked

    from graph.serving.auth import KeyRing
    from server import create_rmn_app, rmn_settings, serve_in_thread

    data = fresh(tmp_path)
    planner, approver = "nw-planner-0123456789", "nw-approver-0123456789"
    other = "acme-reader-0123456789"
    keys = KeyRing.from_keys(
        {planner: "northwind:planner", approver: "northwind:approver", other: "acme"}
    )
    context = {"model": "none", "data_dir": str(data)}
    settings = rmn_settings(tmp_path / "server", server_context=context)
    with serve_in_thread(create_rmn_app(keys, settings)) as base:
        client = get_sync_client(url=base, api_key=planner, timeout=600)
        thread_id = client.threads.create()["thread_id"]
        out = client.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": "northwind"})
        if asked(out)["kind"] == "confirm_brief":
            out = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert asked(out)["kind"] == "approval"
        final = get_sync_client(url=base, api_key=approver, timeout=600).runs.wait(
            thread_id, "rmn", command={"resume": {"action": "approve"}}
        )
        assert final["status"] == "approved"
        import httpx

        def get(path: str, key: str) -> httpx.Response:
            return httpx.get(f"{base}/threads/{thread_id}{path}", headers={"x-api-key": key},
                             timeout=120)  # fmt: skip

        xlsx = get("/export?format=xlsx", planner)
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
        assert "attachment" in xlsx.headers["content-disposition"]
        csvs = get("/export?format=csv", approver)
        assert csvs.status_code == 200 and csvs.headers["content-type"] == "application/zip"
        report = get("/report", planner)
        assert report.status_code == 200 and "Northwind" in report.text
        chart = get("/charts/allocation.png", planner)
        assert chart.status_code == 200 and chart.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert get("/charts/nope.png", planner).status_code == 404
        # Another tenant's thread answers exactly as an id nobody uses.
        unknown = httpx.get(f"{base}/threads/{uuid.uuid4()}/export", headers={"x-api-key": other})
        for path in ("/export?format=xlsx", "/report", "/charts/allocation.png"):
            theirs = get(path, other)
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json()["type"] == unknown.json()["type"] == "not_found"
