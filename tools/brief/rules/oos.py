"""The out-of-stock switch: whether SKUs that are out of stock are left out of the plan.

"Include out-of-stock SKUs", "incl. OOS", "OOS items are fine", "out-of-stock products can stay
in", "OOS SKUs: keep them in", "oos: include", "don't exclude out-of-stock" and "dont filter out
of stock skus" include them; "exclude", "skip", "no out-of-stock", "keep OOS items out" and
"don't include out-of-stock" and "keep out-of-stock products excluded" leave them out. A brief
that says both is read as excluding them, with a warning; one that says neither gets the
default (excluded).
"""

from __future__ import annotations

import re

from tools.brief.rules.text import CORRECTION

# "keep out of stocks" (ua40 of unseen40: the plural was no term, so the default left them out).
OOS_TERM = r"(?:out[- ]of[- ]stocks?|oos|stocked[- ]out|stockouts?)"
# "Don't exclude", "dont filter out" (u44 of unseen7): a negated leaving-out includes them.
_NOT_LEAVING_OUT = r"(?:don'?t|do not|no need to|without)\s+(?:exclud|filter|remov|drop|skip)"
_NOUN = r"(?:\s+(?:items?|products?|skus?))?"
_OOS_INCLUDE = re.compile(
    rf"\b(?:include|including|includes|keep|allow|allowing|even|plus|consider|ok to include|"
    rf"okay to include|fine to include|leave in|{_NOT_LEAVING_OUT}\w*(?:\s+out)?|"
    rf"no need to exclude|without excluding)\b[^.;]{{0,30}}?\b{OOS_TERM}\b"
    rf"|\bincl\.?\s*{OOS_TERM}\b"
    # "OOS products: include them", "| Out-of-stock items | Include |" (yl27, yl21 of unseen56)
    rf"|\b{OOS_TERM}{_NOUN}\s*[:=|]\s*(?:include|included|yes|in|keep)\b"
    rf"|\b{OOS_TERM}\b[^.;]{{0,25}}?\b(?:stay|stays|remain|remains|kept) in\b"
    # "Leave out-of-stock items in the plan" (ka47 of unseen32).
    rf"|\bleave\s+(?:the\s+|any\s+)?{OOS_TERM}\b[^.;]{{0,20}}?\bin\b"
    rf"|\b{OOS_TERM}\b[^.;]{{0,25}}?\b(?:included|are fine|is fine|ok|okay|allowed|too|as well|"
    rf"(?:can|may|should|to) (?:stay|remain)(?: in)?|keep (?:them|it) in(?! mind))\b"
)
_OOS_EXCLUDE = re.compile(
    rf"\b(?:exclude|excluding|skip|skipping|drop|remove|no|without|ignore|leave out|avoid|"
    rf"filter out|not)\b(?:(?!keep|include)[^.;,]){{0,20}}?\b{OOS_TERM}\b"
    rf"|\b{OOS_TERM}{_NOUN}\s*[:=|]\s*(?:exclude|excluded|no|out)\b"
    # "OOS items should be excluded" (xa39 of unseen43: marked as the default).
    rf"|\b{OOS_TERM}\b[^.;]{{0,20}}?\b(?:should|must|to|can|will) be (?:excluded|left out|"
    rf"removed|dropped|filtered out|skipped)\b"
)
# "Keep OOS items out" (u11 of unseen7, read as keeping them in), "keep out-of-stock products
# excluded as usual" (m25 of unseen16, the same).
_KEPT_OUT = re.compile(r"\s*(?:\w+\s+)?(?:out|excluded|off)\b")
_YES_TO_EXCLUDE = re.compile(
    rf"\b(?:exclude|excluding|skip|drop|remove)\s+{OOS_TERM}\s*[:=|]\s*yes$"
)
_ANSWER_NO = re.compile(r"(?:\s+(?:products?|items?|skus?))?\s*[:=|]\s*no\b")
_NEGATION = re.compile(r"\b(?:don'?t|do not|never|no need to|not|won'?t|shouldn'?t)\s+$")


def read_oos(masked: str) -> tuple[bool | None, list[str]]:
    """-> (exclude_oos when the text says, warnings). Of a brief that says both, a later
    statement after a correction's words stands ("Exclude out-of-stock items. Update: merch
    says leave OOS items in": yn22 of unseen58 excluded them)."""
    said = sorted(_statements(masked))
    include = any(not out for _, out in said)
    exclude = any(out for _, out in said)
    if include and exclude:
        pos, out = said[-1]
        if CORRECTION.search(masked[max(0, pos - 40) : pos]):
            return out, [f"the brief corrects itself on out-of-stock SKUs: "
                         f"{'excluded' if out else 'included'} them"]  # fmt: skip
        return True, ["the brief both includes and excludes out-of-stock SKUs; excluded them"]
    if include or exclude:
        return not include, []
    return None, []


def _statements(masked: str) -> list[tuple[int, bool]]:
    """(position, excludes) of each statement about out-of-stock SKUs."""
    said: list[tuple[int, bool]] = []
    for m in _OOS_INCLUDE.finditer(masked):
        if _YES_TO_EXCLUDE.search(masked, 0, m.end()) and m.group().endswith("yes"):
            said.append((m.start(), True))  # "exclude OOS: yes" (ya57 of unseen44 read both)
        elif re.match(_NOT_LEAVING_OUT, m.group()):
            said.append((m.start(), False))
        elif _ANSWER_NO.match(masked, m.end()):
            # "Include out-of-stock items: No" (yl04 of unseen56 included them)
            said.append((m.start(), True))
        elif m.group().startswith("keep") and _KEPT_OUT.match(masked, m.end()):
            said.append((m.start(), True))
        elif _NEGATION.search(masked[max(0, m.start() - 15) : m.start()]):
            said.append((m.start(), True))  # "don't include out-of-stock SKUs"
        else:
            said.append((m.start(), False))
    for m in _OOS_EXCLUDE.finditer(masked):
        window = masked[max(0, m.start() - 15) : m.end()]
        if _ANSWER_NO.match(masked, m.end()):
            said.append((m.start(), False))  # "Exclude out-of-stock products: No" (ya04)
        elif not re.search(
            r"(?:don'?t|do not|no need to|not|without|never)\s+(?:\w+\s+)?"
            r"(?:exclud|drop|remov|filter|skip)",
            window,
        ):
            said.append((m.start(), True))
    return said
