"""Plans out to the networks: an approved plan as an Excel workbook or CSV files, per retailer
(product, the network's item id, placement, daily budget, flight, total, holdout), with the
network's bulk-upload layout where it documents one.

    export = build_export(plan, data_dir)          # in the catalog of the data directory
    write_export(export, "xlsx", Path("out"))     # out/plan-<thread>.xlsx
"""

from tools.export.bulk import AMAZON_SP_COLUMNS, BULK_LAYOUTS
from tools.export.sheets import (
    ExportError,
    ExportLine,
    PlanExport,
    RetailerSheet,
    build_export,
    holdout_text,
)
from tools.export.write import (
    FORMATS,
    LINE_COLUMNS,
    csv_files,
    workbook_bytes,
    write_export,
    zip_of,
)

__all__ = [
    "AMAZON_SP_COLUMNS",
    "BULK_LAYOUTS",
    "FORMATS",
    "LINE_COLUMNS",
    "ExportError",
    "ExportLine",
    "PlanExport",
    "RetailerSheet",
    "build_export",
    "csv_files",
    "holdout_text",
    "workbook_bytes",
    "write_export",
    "zip_of",
]
