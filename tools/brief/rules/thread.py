"""A brief that revises an earlier request quoted or forwarded below it.

Briefs arrive as replies: "Scratch the Gamma part of the request below - just Alpha Mart and
Beta Grocers now, and the budget drops to $900k. Everything else in the original request
stands." above "> Please plan $1.2M across Alpha, Beta and Gamma for Q2 ...". Read as one text,
the earlier request's figures competed with the reply's (yj05, yj20, yj26 of unseen54 planned
the old flight, Gamma and the old floor). `split_thread` finds the two parts; `merge_thread`
takes each field from the reply where it says it, else from the earlier request.

The earlier request is the text after a line that marks it ("---------- Forwarded message
----------", "-----Original Message-----", "Earlier request:", "On Mon, Dana wrote:") below a
reply with words of its own, else the quoted lines ("> ...") beside such a reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tools.brief.rules.retailers import asks_every_retailer, retailer_patterns
from tools.brief.rules.text import usd
from tools.brief.schema import BRIEF_FIELDS, brand_retailers, canonical_retailers
from tools.catalog import current

if TYPE_CHECKING:
    from tools.brief.rules.parse import RuleParse

_QUOTED = re.compile(r"^[ \t]*>")
_MARKER = re.compile(
    r"^[\s>*_-]*(?:(?:begin\s+)?forwarded\s+(?:message|email)|original\s+(?:message|email)"
    r"|(?:earlier|original|previous|old|first|initial)\s+(?:request|note|brief|ask|message|"
    r"email|version)\b[^\n]{0,40}:|on\s[^\n]{3,80}\bwrote:)[\s*_-]*$",
    re.IGNORECASE,
)
# Mail headers: lines that say nothing a reply asks for.
_HEADER = re.compile(r"^[\s>]*(?:from|to|cc|sent|date|subject)\s*:", re.IGNORECASE)
_WORDS = re.compile(r"[a-z0-9]{2,}", re.IGNORECASE)


@dataclass(frozen=True)
class Thread:
    reply: str  # the newer text, quoted lines and the earlier request left out
    earlier: str  # the earlier request, its quote marks taken off


def _says_something(line: str) -> bool:
    return bool(_WORDS.search(line)) and not _HEADER.match(line) and not _MARKER.match(line)


def _unquote(lines: list[str]) -> str:
    return "\n".join(re.sub(r"^[ \t]*(?:>[ \t]?)+", "", line) for line in lines).strip()


def split_thread(clean: str) -> Thread | None:
    """The reply and the earlier request of a normalized brief (`text.normalize`), or None for
    a brief that is one request."""
    lines = clean.split("\n")
    for i, line in enumerate(lines):
        if _MARKER.match(line) and any(
            _says_something(x) and not _QUOTED.match(x) for x in lines[:i]
        ):
            reply = [x for x in lines[:i] if not _QUOTED.match(x)]
            return _thread(reply, lines[i + 1 :])
    quoted = [x for x in lines if _QUOTED.match(x)]
    if not quoted:
        return None
    return _thread([x for x in lines if not _QUOTED.match(x)], quoted)


def _thread(reply: list[str], earlier: list[str]) -> Thread | None:
    if not any(map(_says_something, reply)) or not any(map(_says_something, earlier)):
        return None
    return Thread("\n".join(reply).strip(), _unquote(earlier))


# A reply that adds a retailer to the earlier request's: "Also add Delta Home to scope".
_ADDS = re.compile(r"\b(?:add|adding|also include|include \w+ too|bring in)\b")


def _retailers(reply: RuleParse, earlier: RuleParse) -> tuple[list[str], str]:
    """The thread's retailers and where they come from. The reply's own list replaces the
    earlier one where words keep it in ("just Alpha Mart and Beta Grocers now") or it names a
    retailer the earlier request did not plan; its exclusions narrow the earlier list ("drop
    Delta"); "add Delta Home" adds to it; a retailer it names in passing ("the Gamma cap of
    $300k still applies") leaves the earlier list as it was."""
    sold = brand_retailers(reply.brand_id)
    before = earlier.values["retailers"] or sold
    said = reply.values["retailers"] or sold
    # "Everything else as above" says no retailers (p45 of unseen10); "all our retailers" does.
    if "retailers" not in reply.found or not (
        reply.retailer_mentions or asks_every_retailer(reply.text.lower(), reply.brand_id)
    ):
        return earlier.values["retailers"], "earlier"
    if "retailers" not in earlier.found or reply.retailers_kept:
        return reply.values["retailers"], "reply"
    if _ADDS.search(reply.text.lower()):
        added = canonical_retailers(set(before) | set(said))
        return ([] if set(added) == set(sold) else added), "both"
    kept = [r for r in before if r not in reply.retailers_excluded]
    if reply.retailers_excluded and not reply.retailer_mentions - reply.retailers_excluded and kept:
        return kept, "both"
    if set(said) <= set(before):
        return earlier.values["retailers"], "earlier"
    return reply.values["retailers"], "reply"


def _replies(name: str, reply: RuleParse, earlier: RuleParse) -> bool:
    """Whether the reply's value of field `name` stands: the reply states it, or the earlier
    request does not. A flight the reply only implies ("Alpha is handled by another team this
    year") leaves a flight the earlier request states (r20 of unseen12)."""
    if name not in earlier.found:
        return True
    if name.startswith("flight_"):
        return "flight_start" in reply.found and reply.flight_priority > 0
    return name in reply.found


def _field(e: object) -> str:
    return str(getattr(e, "detail", {}).get("field") or "brief")


def field_sources(
    reply: RuleParse, earlier: RuleParse, retailers_from: str | None = None
) -> dict[str, str]:
    """Where each brief field of a thread comes from: "reply", "earlier", or "both" (retailers
    the reply adds to or narrows; `retailers_from` where the caller has it from `_retailers`)."""
    sources = {f: "reply" if _replies(f, reply, earlier) else "earlier" for f in BRIEF_FIELDS}
    sources["retailers"] = retailers_from or _retailers(reply, earlier)[1]
    return sources


def merge_thread(reply: RuleParse, earlier: RuleParse, whole: RuleParse) -> RuleParse:
    """`whole` (the rule parse of the full text), its fields taken from the reply where the
    reply states them and from the earlier request otherwise, with a note naming both."""
    retailers, retailers_from = _retailers(reply, earlier)
    sources = field_sources(reply, earlier, retailers_from)
    from_reply = {f for f, s in sources.items() if s != "earlier"}
    from_earlier = {f for f, s in sources.items() if s == "earlier"}
    for name, source in sources.items():
        if name != "retailers":
            whole.values[name] = (reply if source == "reply" else earlier).values[name]
    whole.values["retailers"] = retailers
    whole.found = (reply.found & from_reply) | (earlier.found & from_earlier)
    if "retailers" in reply.found | earlier.found:
        whole.found.add("retailers")
    planned = set(retailers or brand_retailers(reply.brand_id))
    lifted = _lifted_caps(reply.text.lower(), set(earlier.caps) - set(reply.caps))
    whole.caps = {r: v for r, v in {**earlier.caps, **reply.caps}.items()
                  if r in planned and r not in lifted}  # fmt: skip
    whole.mins = {r: v for r, v in {**earlier.mins, **reply.mins}.items() if r in planned}
    notes = _split(whole, reply, earlier if "total_budget" in from_earlier else None, planned)
    errors = [e for e in reply.errors if _field(e) not in from_earlier]
    said = {e.message for e in errors}
    errors += [e for e in earlier.errors if e.message not in said and (
        _field(e) in from_earlier or _field(e) not in BRIEF_FIELDS)]  # fmt: skip
    # A field neither part states keeps the whole text's error for it: "ok" above "> $5T on
    # alpha" said "no budget found" (the reply's), not that $5T is beyond any plan.
    unstated = {_field(e) for e in errors} - reply.found - earlier.found
    if any(_field(e) in unstated for e in whole.errors):
        errors = [e for e in errors if _field(e) not in unstated]
        errors += [e for e in whole.errors if _field(e) in unstated]
    whole.errors = errors
    taken = [f for f in BRIEF_FIELDS if f in from_earlier and f in earlier.found]
    stated = sorted(reply.found & from_reply, key=BRIEF_FIELDS.index)
    whole.warnings = [_note(stated, taken), *reply.warnings,
                      *(f"(earlier request) {w}" for w in earlier.warnings), *notes]  # fmt: skip
    return whole


_LIFT = r"\b(?:drop|remove|lift|scrap|kill|forget|ignore|take off)\s+(?:the\s+)?"


def _lifted_caps(low: str, capped: set[str]) -> set[str]:
    """The earlier request's caps a reply lifts: "drop the Beta cap entirely", "remove the cap
    on Delta" (yp16 of unseen60 kept the Beta cap)."""
    patterns = retailer_patterns(current())
    return {r for r in capped if re.search(
        rf"{_LIFT}(?:(?:{patterns[r].pattern})(?:'s)?\s+cap|cap\s+(?:on|at|for)\s+(?:"
        rf"{patterns[r].pattern}))\b", low)}  # fmt: skip


def _split(
    whole: RuleParse, reply: RuleParse, earlier: RuleParse | None, planned: set[str]
) -> list[str]:
    """The reply's split of the budget, else the earlier request's where its budget stands;
    of the earlier split, the parts of retailers still planned ("$90k on Alpha Mart, $60k on
    Gamma Pharmacy" below "scratch the Gamma part": $90k, yn05 of unseen58). -> notes."""
    split = reply.split or (earlier.split if earlier else {})
    whole.split = split if set(split) <= planned else {}
    if reply.split or not split or whole.split:
        return []
    gone = ", ".join(sorted(set(split) - planned))
    whole.split = {r: v for r, v in split.items() if r in planned}
    if not whole.split:
        return []
    whole.values["total_budget"] = sum(whole.split.values())
    return [f"the earlier request's split loses {gone}: the budget is the rest of it, "
            f"{usd(whole.values['total_budget'])}"]  # fmt: skip


def _note(said: list[str], taken: list[str]) -> str:
    def names(fields: list[str]) -> str:
        words = dict.fromkeys(f.replace("flight_start", "flight").replace("flight_end", "flight")
                              .replace("_", " ") for f in fields)  # fmt: skip
        return ", ".join(words) or "nothing"

    return (f"the brief revises an earlier request below it: the reply's {names(said)}, "
            f"and the earlier request's {names(taken)} where the reply is silent")  # fmt: skip
