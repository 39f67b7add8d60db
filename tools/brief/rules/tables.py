"""Pasted tables: the cells under a header of the past ("LY spend", "2025 ROAS") report the
past, so they are no budget and no floor of this brief."""

from __future__ import annotations

import re
from datetime import date

from tools.brief.rules.text import PAST_TIME, about_the_past, past_year

_LINE = re.compile(r"[^\n]+")
_SEPARATOR = re.compile(r"[\s|:-]+")  # a markdown table's "---|---" line


def past_cells(low: str, today: date) -> list[tuple[int, int]]:
    """The spans of the cells of a pasted table (lines of "|"-separated cells, the first line
    its header) whose column's header reports the past: under "Retailer | LY spend | LY ROAS |
    CPM", the row "Alpha | $410,000 | 3.1 | $8.20" gives last year's spend and ROAS (yu07 of
    unseen65: the model planned the $410,000 and kept a 3.1 floor). Every column but the first
    is the past's when the line before the table ends with a sentence that reports the past:
    "here's what we spent last year:" above "Retailer | 2026 spend | ROAS" (yx08 of unseen68
    offered its ROAS column as floors and its "ROAS" header as the objective)."""
    spans: list[tuple[int, int]] = []
    past: set[int] | None = None  # the past columns of the table being read; None: no table
    intro = ""  # the last line before a table
    for line in _LINE.finditer(low):
        cells = _cells(line.group(), line.start())
        if len(cells) < 2:
            # its last sentence: not "$3M across all our retailers. Prior year spend was
            # $2.7M. ... 5% for experiments." above a table of this year's limits (yi29)
            past, intro = None, re.split(r"[.!?]\s", line.group())[-1]
        elif _SEPARATOR.fullmatch(line.group()):
            continue
        elif past is None:
            past = {i for i, (s, e) in enumerate(cells) if _of_the_past(low[s:e], today)}
            if about_the_past(intro, today):
                past |= set(range(1, len(cells)))
                spans += cells[1:]  # the header too: "ROAS" there names no goal
        else:
            spans += [cells[i] for i in sorted(past) if i < len(cells)]
    return spans


def _cells(line: str, offset: int) -> list[tuple[int, int]]:
    bounds = [-1, *[m.start() for m in re.finditer(r"\|", line)], len(line)]
    return [(offset + a + 1, offset + b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _of_the_past(header: str, today: date) -> bool:
    return bool(PAST_TIME.search(header) or past_year(header, today, this_year=True))
