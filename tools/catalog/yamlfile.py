"""YAML files whose problems are reported at their line: `file:line: where: what; allowed`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tools.errors import RMNError


class CatalogError(RMNError):
    """A catalog file (a retailer's mapping header, a brand's brand.yaml) that cannot be used;
    the message reads `file:line: what is wrong; what is allowed`."""

    kind = "catalog_error"

    def __init__(self, file: str, line: int | None, problem: str, **detail: Any) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}", file=file, line=line, **detail)
        self.file = file
        self.line = line
        self.problem = problem


class YamlFile:
    """One YAML mapping read with the line of every key and item."""

    def __init__(self, path: Path, display: str | None = None) -> None:
        self.path = path
        self.display = display or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise CatalogError(self.display, None, f"cannot be read: {err}") from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(err, "problem", None) or str(err)
            raise CatalogError(self.display, line, f"not valid YAML: {problem}") from None
        if not isinstance(data, dict):
            raise CatalogError(self.display, 1, "must be a YAML mapping of key: value lines")
        self.data: dict[str, Any] = data
        self.lines = line_index(node)

    def line(self, *loc: Any) -> int | None:
        return line_for(self.lines, loc)

    def error(self, loc: tuple[Any, ...], problem: str) -> CatalogError:
        dotted = ".".join(str(p) for p in loc)
        text = f"{dotted}: {problem}" if dotted else problem
        return CatalogError(self.display, self.line(*loc), text, location=dotted)

    def validation_error(self, err: ValidationError, model: type[BaseModel]) -> CatalogError:
        """The first problem pydantic found, at its line, with what is allowed."""
        first = err.errors()[0]
        loc = tuple(first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            msg = f"unknown key {loc[-1]!r}; allowed keys: {allowed}"
        elif first["type"] == "missing":
            msg = f"missing key {loc[-1]!r}; required: " + ", ".join(
                n for n, f in model.model_fields.items() if f.is_required()
            )
        return self.error(loc, msg)


def line_index(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Path of keys/indexes -> 1-based line, from the composed YAML node tree."""
    index: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> None:
        index.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*path, k.value)
                index[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*path, i))

    if node is not None:
        walk(node, ())
    return index


def line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest key of `loc` the file has."""
    path: tuple[Any, ...] = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
        elif isinstance(part, str) and part.isdigit() and (*path, int(part)) in lines:
            path = (*path, int(part))
    return lines.get(path)
