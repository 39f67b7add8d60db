"""The brand's market data, as the data directory holds it: checked to be there (planning
never simulates a market), each retailer's reports harmonized when they are newer than their
RMIS events, and the brand's product names and categories.

    status = prepare_market(Path("examples/foreign"))   # harmonizes raw/<retailer>/ reports
    status.retailers                                     # retailers with data to plan on
"""

from __future__ import annotations

import time
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, Field

from tools.catalog import MAPPING_FILE, has_catalog, load_catalog
from tools.firstparty import FirstPartyStore
from tools.harmonize import QualityReport, harmonize_all, load_mapping
from tools.pipeline.common import PipelineError, Progress, say

SIMULATE_HINT = (
    "`rmn world generate --out {dir}` (or `rmn demo`) builds the simulated market there; "
    "for your own data see 'Use your own data' in the README"
)


class NoMarketDataError(PipelineError):
    """A data directory that is missing, or holds no catalog to plan on."""

    kind = "no_market_data"


class MarketStatus(BaseModel):
    data_dir: str
    retailers: list[str] = Field(description="catalog retailers with data to plan on")
    harmonized: list[str] = Field(
        default_factory=list, description="retailers whose reports this call harmonized"
    )
    reports: list[QualityReport] = Field(default_factory=list)
    seconds: float = 0.0


def check_data_dir(data_dir: Path) -> None:
    """Refuse a data directory that does not exist or holds no catalog: planning never falls
    back to a simulated market."""
    data_dir = Path(data_dir)
    hint = SIMULATE_HINT.format(dir=data_dir)
    if not data_dir.is_dir():
        raise NoMarketDataError(
            f"data directory {data_dir} does not exist; {hint}", data_dir=str(data_dir)
        )
    if not has_catalog(data_dir):
        raise NoMarketDataError(
            f"{data_dir} holds no catalog (retailers/<id>/{MAPPING_FILE}, "
            f"brands/<id>/brand.yaml); {hint}",
            data_dir=str(data_dir),
        )


def _newest(paths: list[Path]) -> float:
    stamps = [p.stat().st_mtime for p in paths if p.is_file()]
    return max(stamps, default=0.0)


def _stale(data_dir: Path, retailer: str, mapping_file: Path, product_files: list[Path]) -> bool:
    """Whether the retailer's raw reports (or its mapping, or the products files its crosswalk
    reads) changed since its RMIS events were written."""
    raw = data_dir / "raw" / retailer
    if not raw.is_dir():
        return False
    events = data_dir / "rmis" / retailer / "events.parquet"
    if not events.is_file():
        return True
    inputs = [p for p in raw.rglob("*") if p.is_file()] + [mapping_file]
    if load_mapping(mapping_file).crosswalk.from_products:
        inputs += product_files
    return _newest(inputs) > events.stat().st_mtime


def prepare_market(data_dir: Path, *, progress: Progress | None = None) -> MarketStatus:
    """Check the data directory and harmonize every catalog retailer whose reports under
    `raw/<retailer>/` are newer than its RMIS events (or have none yet). Concurrent callers
    wait for one another."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    check_data_dir(data_dir)
    catalog = load_catalog(data_dir)
    products = [p for b in catalog.brands.values() for p in b.folder.glob("products.*")]
    stale = [
        r.id for r in catalog.retailers.values()
        if _stale(data_dir, r.id, r.mapping_path, products)
    ]  # fmt: skip
    reports: list[QualityReport] = []
    if stale:
        with FileLock(str(data_dir / ".harmonize.lock")):
            stale = [
                r for r in stale
                if _stale(data_dir, r, catalog.retailers[r].mapping_path, products)
            ]  # fmt: skip
            if stale:
                say(progress, f"harmonizing the reports of {', '.join(stale)}")
                reports = harmonize_all(
                    data_dir / "raw", data_dir / "rmis", catalog_dir=data_dir, retailers=stale
                )
                for rep in reports:
                    say(progress, f"{rep.retailer}: {rep.rows_out:,} events, "
                        f"{rep.rows_quarantined:,} quarantined")  # fmt: skip
    have = [
        r for r in catalog.retailers
        if (data_dir / "rmis" / r / "events.parquet").is_file()
        or (data_dir / "rmis" / r / "cleanroom_view.parquet").is_file()
    ]  # fmt: skip
    return MarketStatus(
        data_dir=str(data_dir),
        retailers=have,
        harmonized=[r.retailer for r in reports],
        reports=reports,
        seconds=time.perf_counter() - started,
    )


def harmonized_retailers(data_dir: Path) -> list[str]:
    """Retailers whose harmonized events are under `<data>/rmis/`."""
    root = Path(data_dir) / "rmis"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "events.parquet").is_file())


def product_names(data_dir: Path, tenant: str, brand: str) -> dict[str, str]:
    """GTIN -> product name from the brand's products file (first-party, tenant-checked)."""
    skus = FirstPartyStore(Path(data_dir), tenant=tenant, brand=brand).skus()
    return dict(zip(skus.column("gtin").to_pylist(), skus.column("name").to_pylist(), strict=True))


def product_categories(data_dir: Path, tenant: str, brand: str) -> dict[str, str]:
    """GTIN -> category from the brand's products file (first-party, tenant-checked)."""
    skus = FirstPartyStore(Path(data_dir), tenant=tenant, brand=brand).skus()
    return dict(
        zip(skus.column("gtin").to_pylist(), skus.column("category").to_pylist(), strict=True)
    )


__all__ = [
    "MarketStatus",
    "NoMarketDataError",
    "check_data_dir",
    "harmonized_retailers",
    "prepare_market",
    "product_categories",
    "product_names",
]
