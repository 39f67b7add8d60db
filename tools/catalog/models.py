"""The catalog's entries: a retailer (its mapping's header) and a brand (its brand.yaml).

A retailer is a folder `retailers/<id>/` holding its policy documents and `mapping.yaml`, the
harmonizer mapping whose header names the retailer (display name, aliases for briefs, time
zone, placements, the categories it sells). A brand is a folder `brands/<id>/` holding
`brand.yaml` (display name, aliases, owning tenant, categories, the retailers it sells
through), its first-party files and, optionally, its brand guide (`voice.md`, `claims.md`).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.policy.categories import POLICY_CATEGORY
from tools.rmis import Placement

ID_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAPPING_FILE = "mapping.yaml"
BRAND_FILE = "brand.yaml"
# Ad platforms whose report layouts and bulk sheets the product knows (`tools.harmonize`
# layouts, `tools.export.bulk`).
NETWORKS: tuple[str, ...] = ("amazon", "walmart", "instacart", "criteo")
# Product categories a brand or retailer may name: the catalog's and the policies' names.
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys([*POLICY_CATEGORY, *POLICY_CATEGORY.values()]))


def _known_categories(values: list[str]) -> list[str]:
    out = [v.strip().lower() for v in values]
    bad = [v for v in out if v not in CATEGORIES]
    if bad:
        raise ValueError(f"unknown category {bad[0]!r}; allowed: {', '.join(CATEGORIES)}")
    return out


def _aliases(values: list[str]) -> list[str]:
    out = [" ".join(v.split()) for v in values]
    if any(not v for v in out):
        raise ValueError("an alias cannot be empty")
    return out


class RetailerHeader(BaseModel):
    """The keys of a retailer's `mapping.yaml` that say who the retailer is; the rest of the
    file says how its reports map to RMIS (`tools.harmonize.Mapping`)."""

    model_config = ConfigDict(extra="ignore")

    retailer: str = Field(pattern=ID_PATTERN, description="the retailer's id (its folder name)")
    name: str = Field(min_length=1, description="display name, e.g. Harbor Grocery")
    aliases: list[str] = Field(
        default_factory=list, description="other names a brief may use, e.g. Harbor"
    )
    timezone: str = Field(description="IANA time zone its reports are written in")
    placements: list[Placement] = Field(min_length=1, description="the RMIS placements it sells")
    categories: list[str] = Field(
        default_factory=list, description="product categories it sells (none listed: all)"
    )
    network: str | None = Field(
        None, description="the ad platform its media network runs on: " + ", ".join(NETWORKS)
    )

    @field_validator("network")
    @classmethod
    def _network(cls, v: str | None) -> str | None:
        if v is not None and v not in NETWORKS:
            raise ValueError(f"unknown network {v!r}; allowed: {', '.join(NETWORKS)}")
        return v

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {v!r}; allowed: an IANA name such as America/Chicago or UTC"
            ) from err
        return v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return _known_categories(v)

    @field_validator("aliases")
    @classmethod
    def _alias(cls, v: list[str]) -> list[str]:
        return _aliases(v)


class BrandFile(BaseModel):
    """`brands/<id>/brand.yaml`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="the brand's id (its folder name)")
    name: str = Field(min_length=1, description="display name, e.g. Northwind Provisions")
    aliases: list[str] = Field(default_factory=list, description="other names in briefs")
    owner_tenant: str = Field(pattern=ID_PATTERN, description="the tenant that plans for it")
    categories: list[str] = Field(min_length=1, description="product categories it sells")
    retailers: list[str] = Field(min_length=1, description="retailer ids it sells through")
    description: str = ""

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return _known_categories(v)

    @field_validator("aliases")
    @classmethod
    def _alias(cls, v: list[str]) -> list[str]:
        return _aliases(v)


@dataclass(frozen=True)
class Retailer:
    id: str
    name: str
    aliases: tuple[str, ...]
    timezone: str
    placements: tuple[Placement, ...]
    categories: tuple[str, ...]
    folder: Path
    network: str | None = None

    @property
    def mapping_path(self) -> Path:
        return self.folder / MAPPING_FILE

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"

    def carries(self, category: str) -> bool:
        """Whether it sells `category` (a retailer that lists none sells every category)."""
        return not self.categories or category in self.categories


@dataclass(frozen=True)
class Brand:
    id: str
    name: str
    aliases: tuple[str, ...]
    owner_tenant: str
    categories: tuple[str, ...]
    retailers: tuple[str, ...]
    description: str
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"
