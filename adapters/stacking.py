"""Stacked adapters: an adapter trained on top of another, frozen one (`rmn train sft
--stack-on task/creative`) records which one under `training.stacked_on`, with that adapter's
weights digest. It is composed, and scored by the versions gate, only on top of that same
adapter as installed: a brand adapter trained alone was measured to break the copy when summed
with task/creative, so one stacked on an older task/creative is not assumed to suit a newer one.
The copy writer (`tools.creative.write`), `rmn adapters list` and the gate
(`adapters.training.gate`) all ask here.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from adapters.registry import PEFT_WEIGHTS_FILE


def weights_digest(folder: Path) -> str:
    """sha256 of an adapter folder's weights, cached by path, modification time and size."""
    path = folder / PEFT_WEIGHTS_FILE
    stat = path.stat()
    return _digest_of(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest_of(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stacked_under(training: dict[str, Any]) -> str | None:
    """The adapter (`kind/id`) a training card says this one was stacked on, if any."""
    stacked = training.get("stacked_on")
    return stacked.get("adapter") if isinstance(stacked, dict) else None


def stacked_as_trained(training: dict[str, Any], under_name: str, under_folder: Path) -> bool:
    """Whether the card says the adapter was trained on top of `under_name` and, where it
    recorded a digest, the weights at `under_folder` are the ones it was trained on."""
    if stacked_under(training) != under_name:
        return False
    digest = training["stacked_on"].get("weights_sha256")
    return digest is None or digest == weights_digest(under_folder)
