"""`rmn harmonize`: one retailer's native export -> RMIS Parquet + quality report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError
from tools.paths import data_dir, use_catalog


def _human(report: dict[str, Any]) -> str:
    found = ", ".join(f"{k} {a['count']:,}" for k, a in report["anomalies"].items() if a["count"])
    out = Path(report["outputs"]["events"]).parent
    return "\n".join(
        [
            f"{report['retailer']}: {report['rows_in']:,} rows read -> {report['rows_out']:,} "
            f"events, {report['rows_quarantined']:,} quarantined ({report['seconds']:.2f} s)",
            f"  anomalies: {found or 'none'}",
            f"  crosswalk coverage: {report['crosswalk_coverage']:.2%}",
            f"  wrote {out}/ (events.parquet, quarantine.parquet, quality_report.json)",
        ]
    )


def _human_all(result: dict[str, Any]) -> str:
    parts = [_human(r) for r in result["retailers"].values()]
    parts.append(
        f"total: {result['rows_in']:,} rows read -> {result['rows_out']:,} events, "
        f"{result['rows_quarantined']:,} quarantined in {result['seconds']:.2f} s"
    )
    return "\n".join(parts)


def harmonize(
    retailer: Annotated[
        str | None, typer.Option("--retailer", "-r", help="Retailer id (a bundled mapping).")
    ] = None,
    in_dir: Annotated[
        Path | None,
        typer.Option(
            "--in",
            help="Native export folder (default: $RMN_DATA_DIR/raw/<retailer>; "
            "with --all the folder holding one sub-folder per retailer).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="RMIS output root (default: $RMN_DATA_DIR/rmis)."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Use this mapping YAML instead.")
    ] = None,
    all_retailers: Annotated[
        bool, typer.Option("--all", help="Harmonize every retailer export found under --in.")
    ] = False,
    as_json: bool = JsonOption,
) -> None:
    """Map a retailer's native export to RMIS: events, quarantine and a quality report."""
    with user_errors(as_json):
        from tools.catalog import catalog_root
        from tools.harmonize import (
            available_retailers,
            harmonize_all,
            harmonize_retailer,
            load_mapping,
        )

        # The mappings are the catalog's of the data directory the exports sit in (raw/<id>/
        # under it), else the bundled ones.
        raw_root = in_dir if all_retailers or in_dir is None else in_dir.parent
        catalog = catalog_root((raw_root or data_dir() / "raw").parent)
        out_root = out if out is not None else data_dir() / "rmis"
        if all_retailers:
            if retailer or mapping:
                raise RMNError("--all harmonizes every bundled mapping; drop --retailer/--mapping")
            started = time.perf_counter()
            reports = harmonize_all(
                in_dir if in_dir is not None else data_dir() / "raw", out_root, catalog_dir=catalog
            )
            result = {
                "retailers": {r.retailer: r.model_dump(mode="json") for r in reports},
                "rows_in": sum(r.rows_in for r in reports),
                "rows_out": sum(r.rows_out for r in reports),
                "rows_quarantined": sum(r.rows_quarantined for r in reports),
                "seconds": round(time.perf_counter() - started, 3),
            }
            emit(result, as_json, _human_all)
            return
        if retailer is None and mapping is None:
            with use_catalog(catalog):
                known = ", ".join(available_retailers())
            raise RMNError(f"give --retailer NAME (known: {known}), --mapping FILE, or --all")
        name = retailer or load_mapping(mapping).retailer  # type: ignore[arg-type]
        source = in_dir if in_dir is not None else data_dir() / "raw" / name
        report = harmonize_retailer(
            retailer, source, out_root, mapping_path=mapping, catalog_dir=catalog
        )
        emit(report.model_dump(mode="json"), as_json, _human)
