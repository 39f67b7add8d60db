"""The quality report written next to each retailer's harmonized events."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class Anomaly(BaseModel):
    count: int = Field(ge=0)
    examples: list[str] = Field(default_factory=list, description="up to 5 native ids")


class QualityReport(BaseModel):
    retailer: str
    mapping: str = Field(description="the mapping file used")
    exported_at: str = Field(description="export.json's exported_at (UTC)")
    source_files: list[str]
    crosswalk_file: str
    rows_in: int = Field(ge=0, description="physical rows read from the source files")
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
