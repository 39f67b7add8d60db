"""Building the simulated market in a data directory, when asked: `rmn demo`,
`rmn world generate`, tests and benchmarks. Planning never simulates (a data directory
without data is an error there, `tools.pipeline.prepare_market`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, Field

from tools.harmonize import harmonize_all
from tools.world.exports import write_exports
from tools.world.truth import generate_world

# The market `rmn demo` builds.
DEFAULT_WORLD_SEED = 7
DEFAULT_WORLD_DAYS = 90
DEFAULT_WORLD_EVENTS = 1_000_000


class WorldSpec(BaseModel):
    """The seeded market to build (the one `rmn demo` builds by default)."""

    seed: int = Field(DEFAULT_WORLD_SEED, ge=0)
    days: int = Field(DEFAULT_WORLD_DAYS, ge=14, le=730)
    events: int = Field(DEFAULT_WORLD_EVENTS, ge=1_000)


class WorldStatus(BaseModel):
    data_dir: str
    built: bool = Field(description="whether this call built the market")
    retailers: list[str] = Field(description="retailers with harmonized clean-room data")
    seconds: float


def harmonized_retailers(data_dir: Path) -> list[str]:
    """Retailers whose harmonized events are under `<data>/rmis/`."""
    root = Path(data_dir) / "rmis"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "events.parquet").is_file())


def ensure_world(
    data_dir: Path,
    spec: WorldSpec | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    bars: bool = False,
) -> WorldStatus:
    """Build the simulated market in `data_dir` unless it already holds harmonized data:
    simulate it, write its exports and catalog, harmonize them. Concurrent callers wait for
    one build. `bars` shows the exporter's progress bars on stderr."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    have = harmonized_retailers(data_dir)
    if have:
        return WorldStatus(data_dir=str(data_dir), built=False, retailers=have, seconds=0.0)
    data_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(data_dir / ".world.lock")):
        have = harmonized_retailers(data_dir)
        if have:  # another process built it while this one waited
            return WorldStatus(data_dir=str(data_dir), built=False, retailers=have,
                               seconds=time.perf_counter() - started)  # fmt: skip
        spec = spec or WorldSpec()
        if progress is not None:
            progress(
                f"no market data in {data_dir}: simulating the market (seed {spec.seed}, "
                f"{spec.days} days, {spec.events:,} delivery records)"
            )
        world = generate_world(seed=spec.seed, days=spec.days)
        write_exports(world, data_dir, events=spec.events, progress=bars)
        if progress is not None:
            progress("harmonizing the retailers' exports")
        harmonize_all(data_dir / "raw", data_dir / "rmis", catalog_dir=data_dir)
    have = harmonized_retailers(data_dir)
    return WorldStatus(
        data_dir=str(data_dir), built=True, retailers=have, seconds=time.perf_counter() - started
    )
