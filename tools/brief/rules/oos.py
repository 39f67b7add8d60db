"""The out-of-stock switch: whether SKUs that are out of stock are left out of the plan.

"Include out-of-stock SKUs", "incl. OOS", "OOS items are fine", "out-of-stock products can stay
in", "OOS SKUs: keep them in" and "don't exclude out-of-stock" include them;
"exclude", "skip", "no out-of-stock" and "don't include out-of-stock" leave them out. A brief
that says both is read as excluding them, with a warning; one that says neither gets the
default (excluded).
"""

from __future__ import annotations

import re

OOS_TERM = r"(?:out[- ]of[- ]stock|oos|out of stock|stocked[- ]out|stockouts?)"
_OOS_INCLUDE = re.compile(
    rf"\b(?:include|including|includes|keep|allow|allowing|even|plus|consider|ok to include|"
    rf"okay to include|fine to include|leave in|don'?t exclude|do not exclude|no need to exclude|"
    rf"without excluding)\b[^.;]{{0,30}}?\b{OOS_TERM}\b"
    rf"|\bincl\.?\s*{OOS_TERM}\b"
    rf"|\b{OOS_TERM}\b[^.;]{{0,25}}?\b(?:included|are fine|is fine|ok|okay|allowed|too|as well|"
    rf"(?:can|may|should|to) (?:stay|remain)(?: in)?|keep (?:them|it) in(?! mind))\b"
)
_OOS_EXCLUDE = re.compile(
    rf"\b(?:exclude|excluding|skip|skipping|drop|remove|no|without|ignore|leave out|avoid|"
    rf"filter out|not)\b[^.;,]{{0,20}}?\b{OOS_TERM}\b"
)
_NEGATION = re.compile(r"\b(?:don'?t|do not|never|no need to|not|won'?t|shouldn'?t)\s+$")


def read_oos(masked: str) -> tuple[bool | None, list[str]]:
    """-> (exclude_oos when the text says, warnings)."""
    include = exclude = False
    for m in _OOS_INCLUDE.finditer(masked):
        if re.match(r"(?:don'?t|do not|no need to|without) exclud", m.group()):
            include = True
        elif _NEGATION.search(masked[max(0, m.start() - 15) : m.start()]):
            exclude = True  # "don't include out-of-stock SKUs"
        else:
            include = True
    for m in _OOS_EXCLUDE.finditer(masked):
        window = masked[max(0, m.start() - 15) : m.end()]
        if not re.search(
            r"(?:don'?t|do not|no need to|not|without|never)\s+(?:\w+\s+)?exclud", window
        ):
            exclude = True
    if include and exclude:
        return True, ["the brief both includes and excludes out-of-stock SKUs; excluded them"]
    if include or exclude:
        return not include, []
    return None, []
