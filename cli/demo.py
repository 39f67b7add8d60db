"""`rmn demo`: the main job on embedded defaults."""

from __future__ import annotations


def demo() -> None:
    """Run the main job on embedded defaults."""
