"""The process's one runtime on the real base model, loaded on first use and shared by every
caller (the brief parser, the graph's chat model, the CLI): the model weights and the merged
adapter caches are held once per process, not once per caller."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.runtime import Runtime


@lru_cache(maxsize=1)
def shared_runtime() -> Runtime:
    """The process's runtime on the real base model (loaded on first use)."""
    from adapters.runtime import Runtime

    return Runtime.load()
