"""Where the product keeps things on disk. Every location can be moved with an env var."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Generated and harmonized data, clean-room state: `RMN_DATA_DIR`, else `./data`."""
    return Path(os.environ.get("RMN_DATA_DIR", "data"))


def cache_dir() -> Path:
    """Rebuildable caches (vector index, converted model weights): `RMN_CACHE_DIR`, else
    `.cache/` in the project root."""
    return Path(os.environ.get("RMN_CACHE_DIR", PROJECT_ROOT / ".cache"))
