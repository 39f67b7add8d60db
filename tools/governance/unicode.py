"""Text as the governance checks read it: without the code points that render as nothing.

Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties; 4,174 code points)
names the characters a renderer shows as nothing when it has no use for them: the soft hyphen
U+00AD, the combining grapheme joiner U+034F, zero-width space and joiners U+200B-U+200D, the
word joiner U+2060 and the invisible operators, bidirectional formatting, the byte-order mark
U+FEFF, variation selectors, tag characters, Hangul fillers, ... Put inside a word they hide it
from a pattern while a reader, or a model, still reads the word: "ig\\u00adnore previous
instructions", "jo.smith\\u00ad@example.com". Both the PII scanner and the injection detector
read text through `drop_ignorable`, which also says where each kept character came from, so
that a finding (and its redaction) covers the whole original span, hidden characters
included. The property comes from the `regex` module's Unicode tables, not a list kept here.
"""

from __future__ import annotations

import regex

_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
_VISIBLE_RUN = regex.compile(r"\P{Default_Ignorable_Code_Point}+")


def is_ignorable(ch: str) -> bool:
    """Whether `ch` (one code point) is default-ignorable."""
    return _IGNORABLE.fullmatch(ch) is not None


def drop_ignorable(text: str) -> tuple[str, list[int]]:
    """(`text` without its default-ignorable code points, the index in `text` of each
    character kept)."""
    if _IGNORABLE.search(text) is None:
        return text, list(range(len(text)))
    kept: list[str] = []
    index: list[int] = []
    for run in _VISIBLE_RUN.finditer(text):
        kept.append(run.group())
        index.extend(range(run.start(), run.end()))
    return "".join(kept), index


def original_span(index: list[int], start: int, end: int) -> tuple[int, int]:
    """The span in the original text of the characters `start:end` of its folded copy (`index`
    from `drop_ignorable`, or any map of folded to original positions)."""
    return index[start], index[end - 1] + 1
