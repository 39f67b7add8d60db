"""Reading one corpus document: YAML front matter (with line numbers for every value) and the
Markdown sections of its body."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tools.errors import RMNError


class PolicyParseError(RMNError):
    """A corpus document whose front matter cannot be read or does not match the policy schema."""

    kind = "policy_parse_error"

    def __init__(self, file: str, line: int | None, problem: str, **detail: Any) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}", file=file, line=line, **detail)
        self.file = file
        self.line = line


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def slugify(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    text = unicodedata.normalize("NFKD", heading).lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"\s", "-", text.strip())


@dataclass(frozen=True)
class Section:
    """One heading and the text under it, up to the next heading of any level."""

    level: int
    heading: str
    anchor: str
    path: tuple[str, ...]  # headings from the top of the document down to this one
    text: str
    line: int  # of the heading, 1-based in the file


@dataclass
class Document:
    path: Path
    display_path: str  # e.g. rag_corpus/retailers/gamma/data_access.md
    front_matter: dict[str, Any]
    root: yaml.Node | None
    first_yaml_line: int  # file line of the first front-matter line
    sections: list[Section] = field(default_factory=list)
    intro: str = ""  # text between the front matter and the first heading

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        """File line of the front-matter value at `loc` (keys and list indexes), or of the
        deepest part of it that exists."""
        node = self.root
        line = node.start_mark.line if node is not None else None
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if str(key_node.value) == str(part):
                        child, line = value_node, key_node.start_mark.line
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
                line = child.start_mark.line
            if child is None:
                break
            node = child
        return None if line is None else line + self.first_yaml_line

    def anchors(self) -> dict[str, Section]:
        return {s.anchor: s for s in self.sections}

    def error(self, loc: tuple[str | int, ...], problem: str) -> PolicyParseError:
        return PolicyParseError(self.display_path, self.line_of(loc), problem)

    def validation_error(
        self, err: ValidationError, prefix: tuple[str | int, ...] = ()
    ) -> PolicyParseError:
        """Turn a pydantic error into a message naming the file and line of the first problem,
        listing every problem."""
        problems = []
        first_line = None
        for e in err.errors():
            loc = prefix + tuple(e["loc"])
            line = self.line_of(loc)
            first_line = first_line or line
            what = ".".join(str(p) for p in loc) or "front matter"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append({"line": line, "key": what, "problem": msg})
        summary = "; ".join(f"line {p['line']}: {p['key']}: {p['problem']}" for p in problems)
        return PolicyParseError(self.display_path, first_line, summary, problems=problems)


def _check_unique_keys(node: yaml.Node, doc_path: str, offset: int) -> None:
    # PyYAML keeps the last of two equal keys; a policy must not silently lose a rule.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise PolicyParseError(
                    doc_path, key_node.start_mark.line + offset, f"duplicate key {key!r}"
                )
            seen.add(key)
            _check_unique_keys(value_node, doc_path, offset)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_unique_keys(item, doc_path, offset)


def _split_sections(body_lines: list[str], first_line: int) -> tuple[str, list[Section]]:
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    used: dict[str, int] = {}
    intro: list[str] = []
    current: list[str] = intro
    pending: tuple[int, str, int] | None = None
    in_fence = False

    def close() -> None:
        if pending is not None:
            level, heading, line = pending
            base = slugify(heading)
            n = used.get(base, 0)
            used[base] = n + 1
            anchor = base if n == 0 else f"{base}-{n}"
            path = tuple(h for _, h in stack)
            sections.append(Section(level, heading, anchor, path, "\n".join(current).strip(), line))

    for i, raw in enumerate(body_lines):
        if _FENCE.match(raw):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(raw)
        if m is None:
            current.append(raw)
            continue
        close()
        level, heading = len(m.group(1)), m.group(2).strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading))
        pending = (level, heading, first_line + i)
        current = []
    close()
    return "\n".join(intro).strip(), sections


def read_document(path: Path, display_path: str) -> Document:
    """Parse one Markdown file with `---` delimited YAML front matter."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PolicyParseError(display_path, None, f"cannot read: {err}") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise PolicyParseError(display_path, 1, "missing front matter: the file must start '---'")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise PolicyParseError(
            display_path, 1, "front matter is not closed by a '---' line"
        ) from None
    yaml_text = "\n".join(lines[1:end])
    first_yaml_line = 2
    try:
        root = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(yaml_text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + first_yaml_line if mark is not None else None
        problem = " ".join(str(p) for p in (err.context, err.problem) if p)
        raise PolicyParseError(display_path, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise PolicyParseError(display_path, None, f"invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise PolicyParseError(display_path, first_yaml_line, "front matter must be a mapping")
    if root is not None:
        _check_unique_keys(root, display_path, first_yaml_line)
    intro, sections = _split_sections(lines[end + 1 :], end + 2)
    return Document(path, display_path, data, root, first_yaml_line, sections, intro)
