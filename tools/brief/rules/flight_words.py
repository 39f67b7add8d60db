"""What the words around a period say about it: a field of its own ("flight: April"), the
flight itself ("March flight"), an event ("after the Nov billing issue") or a deed told in the
past ("we ran tests all of Q4"). `tools.brief.rules.flight` reads periods with these."""

from __future__ import annotations

import re

_FIELD_BEFORE = re.compile(r"(?:^|[,.;:|(\n/+–—]|\s-|\b(?:flight|timing|dates?|when))\s*$")
# "initech home / 700k / ... / March / keep OOS in" (va36 of unseen41 read no flight).
_FIELD_AFTER = re.compile(r"\s*(?:[,.;:|)\n/–—]|-\s|$)")
FLIGHT_WORD_AFTER = re.compile(r"\s+(?:flight|campaign)\b")
SUBJECT_BEFORE = re.compile(r"\b(?:i|we|you|they|it|he|she|who|which|that)\s+$")
# A month that names an event, not the flight: "pausing Gamma Pharmacy after the Nov billing
# issue" (sa23 of unseen38 read a November 2027 flight), "since the Oct pricing mixup".
EVENT_BEFORE = re.compile(
    r"\b(?:after|since|following|because of|due to|given|before)\s+(?:the|that|our|this|last)\s+$"
)
# A clause's start, and a past deed in it: "we ran tests all of Q4" (ta02 of unseen39).
_CLAUSE_START = re.compile(r".*(?:[.;:,(\n—–]|\s-\s)", re.S)
_PAST_DEED = re.compile(r"\b(?:ran|did|spent|tested|had|was|were|used|tried)\b")


def told_in_the_past(masked: str, pos: int) -> bool:
    """Whether the clause before `pos` has a past verb ("we ran tests all of Q4")."""
    head = masked[max(0, pos - 80) : pos]
    clause = head[m.end() :] if (m := _CLAUSE_START.match(head)) else head
    return bool(_PAST_DEED.search(clause))


def stands_alone(masked: str, m: re.Match[str]) -> bool:
    """Whether a month word is a field of its own: between separators, or after "flight"."""
    before = _FIELD_BEFORE.search(masked[max(0, m.start() - 12) : m.start()])
    return bool(before) and bool(m.group().endswith(".") or _FIELD_AFTER.match(masked, m.end()))
