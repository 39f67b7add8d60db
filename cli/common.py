"""Shared plumbing for `rmn` subcommands: JSON or human output, user errors without tracebacks."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer

from tools.errors import RMNError

JsonOption = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
# The vector instructions numpy, DuckDB, Arrow and torch pick their kernels by: a benchmark's
# figures compare across machines only with these (and the core count) alike.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def strict_json(result: Any, indent: int | None = None) -> str:
    """JSON as RFC 8259 allows it: a non-finite number (a tool's NaN, an infinity) is written
    as null, never as the bare NaN/Infinity other parsers refuse; other objects as `str`."""
    from pydantic_core import to_jsonable_python

    ready = to_jsonable_python(result, fallback=str, inf_nan_mode="null")
    return json.dumps(ready, indent=indent, allow_nan=False)


def emit(result: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print a command's result: JSON when asked, else the human rendering (or indented JSON)."""
    if as_json or human is None:
        typer.echo(strict_json(result, indent=None if as_json else 2))
    else:
        typer.echo(human(result))


def fail(err: RMNError, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(strict_json({"error": err.to_dict()}))
    else:
        typer.echo(f"error: {err.message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def user_errors(as_json: bool) -> Iterator[None]:
    """Turn `RMNError` into a clear message and exit status 2; anything else is a bug and raises."""
    try:
        yield
    except RMNError as err:
        fail(err, as_json)


def progress_enabled() -> bool:
    """Progress bars go to stderr, and only when a person is watching."""
    return sys.stderr.isatty()


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on: cores, CPU model, which of `SIMD_FLAGS` the CPU has,
    Python and the platform."""
    model, flags = "", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass  # not Linux: no flags to report
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor() or None,
        "cpu_flags": [f for f in SIMD_FLAGS if f in flags],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
