"""Where the product keeps things on disk. Every location can be moved with an env var.

The catalog (retailers and brands as files, `tools.catalog`) is read from one folder at a
time: the one the current block is scoped to (`use_catalog`: what the graph's steps do for
their run's data directory, and what a command given `--data-dir` does for its duration),
else `RMN_CORPUS_DIR`, else the bundled catalog `rag_corpus/` (the simulated market's cast
and its policies). A scope is per thread or task, so one process can serve several data
directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_SCOPED_CATALOG: ContextVar[Path | None] = ContextVar("rmn_catalog_dir", default=None)


def data_dir() -> Path:
    """Generated and harmonized data, clean-room state: `RMN_DATA_DIR`, else `./data`."""
    return Path(os.environ.get("RMN_DATA_DIR", "data"))


def cache_dir() -> Path:
    """Rebuildable caches (vector index, converted model weights): `RMN_CACHE_DIR`, else
    `.cache/` in the project root."""
    return Path(os.environ.get("RMN_CACHE_DIR", PROJECT_ROOT / ".cache"))


def bundled_catalog_dir() -> Path:
    """The catalog shipped with the code: `RMN_CORPUS_DIR`, else `rag_corpus/`."""
    return Path(os.environ.get("RMN_CORPUS_DIR", PROJECT_ROOT / "rag_corpus"))


def catalog_dir() -> Path:
    """The catalog folder in force here (see the module docstring for the order)."""
    scoped = _SCOPED_CATALOG.get()
    return scoped if scoped is not None else bundled_catalog_dir()


@contextmanager
def use_catalog(folder: Path) -> Iterator[Path]:
    """Read the catalog from `folder` inside the block (this thread or task only)."""
    token = _SCOPED_CATALOG.set(Path(folder))
    try:
        yield Path(folder)
    finally:
        _SCOPED_CATALOG.reset(token)
