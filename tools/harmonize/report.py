"""The quality report written next to each retailer's harmonized events."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator


class Anomaly(BaseModel):
    count: int = Field(ge=0)
    examples: list[str] = Field(default_factory=list, description="up to 5 native ids")


class QualityReport(BaseModel):
    retailer: str
    mapping: str = Field(description="the mapping file used")
    exported_at: str = Field(
        description="export.json's exported_at (UTC); without a manifest, the time of the run"
    )
    source_files: list[str]
    crosswalk_file: str = Field(
        description="the crosswalk file, or the products files it came from"
    )
    grain: str = Field("hour", description="what one event is: hour (delivery records) or day")
    header_rows: dict[str, int] = Field(
        default_factory=dict, description="report files: the row their header was found on"
    )
    footer_rows_dropped: int = Field(
        0, ge=0, description="report rows dropped as footer (totals row and after), not harmonized"
    )
    rows_in: int = Field(
        ge=0, description="data rows read from the source files (not the preamble or footer)"
    )
    rows_out: int = Field(ge=0, description="rows written to events.parquet")
    rows_quarantined: int = Field(ge=0, description="rows written to quarantine.parquet")
    null_rates: dict[str, float] = Field(description="native column -> share null or blank")
    crosswalk_coverage: float = Field(
        ge=0, le=1, description="share of rows whose item id is in the crosswalk"
    )
    crosswalk_items: int = Field(ge=0, description="distinct item ids in the crosswalk")
    anomalies: dict[str, Anomaly] = Field(
        description="kind -> count and examples, every kind listed, in rule order"
    )
    outputs: dict[str, str] = Field(description="events, quarantine, report paths")
    cleanroom_export: dict[str, Any] | None = Field(
        None, description="the retailer's own clean-room aggregates ingested: threshold, noise"
    )
    seconds: float

    @model_validator(mode="after")
    def _balanced(self) -> QualityReport:
        if self.rows_in != self.rows_out + self.rows_quarantined:
            raise ValueError(
                f"rows_in {self.rows_in} != rows_out {self.rows_out} + "
                f"rows_quarantined {self.rows_quarantined}"
            )
        if sum(a.count for a in self.anomalies.values()) != self.rows_quarantined:
            raise ValueError("anomaly counts do not add up to rows_quarantined")
        return self
