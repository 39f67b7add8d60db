"""RMIS harmonizer: each retailer's native export -> RMIS events, quarantine and a quality
report, driven by one YAML mapping per retailer (`tools/harmonize/mappings/`)."""

from tools.harmonize.engine import find_exports, harmonize_all, harmonize_retailer
from tools.harmonize.mapping import (
    ANOMALY_KINDS,
    Mapping,
    available_retailers,
    load_mapping,
    parse_mapping,
)
from tools.harmonize.report import Anomaly, QualityReport
from tools.harmonize.transforms import TRANSFORMS

__all__ = [
    "ANOMALY_KINDS",
    "TRANSFORMS",
    "Anomaly",
    "Mapping",
    "QualityReport",
    "available_retailers",
    "find_exports",
    "harmonize_all",
    "harmonize_retailer",
    "load_mapping",
    "parse_mapping",
]
