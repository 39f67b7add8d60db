"""Pasted tables: the cells under a header of the past ("LY spend", "2025 ROAS") report the
past, so they are no budget and no floor of this brief."""

from __future__ import annotations

import re
from datetime import date

from tools.brief.rules.text import PAST_TIME, past_year

_LINE = re.compile(r"[^\n]+")
_SEPARATOR = re.compile(r"[\s|:-]+")  # a markdown table's "---|---" line


def past_cells(low: str, today: date) -> list[tuple[int, int]]:
    """The spans of the cells of a pasted table (lines of "|"-separated cells, the first line
    its header) whose column's header reports the past: under "Retailer | LY spend | LY ROAS |
    CPM", the row "Alpha | $410,000 | 3.1 | $8.20" gives last year's spend and ROAS (yu07 of
    unseen65: the model planned the $410,000 and kept a 3.1 floor)."""
    spans: list[tuple[int, int]] = []
    past: set[int] | None = None  # the past columns of the table being read; None: no table
    for line in _LINE.finditer(low):
        cells = _cells(line.group(), line.start())
        if len(cells) < 2:
            past = None
        elif _SEPARATOR.fullmatch(line.group()):
            continue
        elif past is None:
            past = {i for i, (s, e) in enumerate(cells) if _of_the_past(low[s:e], today)}
        else:
            spans += [cells[i] for i in sorted(past) if i < len(cells)]
    return spans


def _cells(line: str, offset: int) -> list[tuple[int, int]]:
    bounds = [-1, *[m.start() for m in re.finditer(r"\|", line)], len(line)]
    return [(offset + a + 1, offset + b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _of_the_past(header: str, today: date) -> bool:
    return bool(PAST_TIME.search(header) or past_year(header, today, this_year=True))
