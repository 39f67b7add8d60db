"""What the pipeline's steps share: the error a step raises when it cannot run as asked, and
the progress callback the graph's nodes pass in (their `custom` stream)."""

from __future__ import annotations

from collections.abc import Callable

from tools.errors import RMNError

Progress = Callable[[str], None]


class PipelineError(RMNError):
    """A planning step that cannot run on this data as asked."""

    kind = "pipeline_error"


def say(progress: Progress | None, message: str) -> None:
    """Send `message` to the caller's progress callback, when it gave one."""
    if progress is not None:
        progress(message)
