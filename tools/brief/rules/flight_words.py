"""What the words around a period say about it: a field of its own ("flight: April"), the
flight itself ("March flight"), an event ("after the Nov billing issue") or a deed told in the
past ("we ran tests all of Q4"). `tools.brief.rules.flight` reads periods with these; the
chosen flight's own words are said in a note where they give no dates (`flight_note`)."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.brief.rules.flight import Flight

_FIELD_BEFORE = re.compile(r"(?:^|[,.;:|(\n/+–—]|\s-|\b(?:flight|timing|dates?|when))\s*$")
# "initech home / 700k / ... / March / keep OOS in" (va36 of unseen41 read no flight).
_FIELD_AFTER = re.compile(r"\s*(?:[,.;:|)\n/–—]|-\s|$)")
# "Acme March plan: $300k" (yn13 of unseen58 read no flight)
FLIGHT_WORD_AFTER = re.compile(r"\s+(?:flight|campaign|plan|push|budget|sprint)\b")
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


# A flight read from words that give no year and no days ("next quarter", "February", "Q1",
# "the next 6 weeks") is said with the dates it was read as: "Flight: 1 January 2027 to 31
# March 2027" under a brief saying "next quarter" read as if the brief gave the dates (ua42
# of unseen40). A settled note (`tools.brief.llm.settled`): it asks no one.
FLIGHT_NOTE = "flight_start: the brief's '{0}' is read as {1} to {2}"
FLIGHT_WORDS = re.compile(r"^flight_start: the brief's '(.*)' is read as \d")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b|'\d\d\b|\bfy\d\d\b", re.I)
_LEAD = re.compile(r"^(?:in|for|during|over|across|through)\s+", re.I)


def flight_note(flight: Flight, text: str) -> list[str]:
    """The note saying which words a flight was read from, where they gave no dates or year
    (a quarter, half, month, or a period from today)."""
    words = _LEAD.sub("", " ".join(text[flight.span[0] : flight.span[1]].split()).strip(" ,.;:"))
    if flight.priority > 2 or not (flight.start and flight.end) or _YEAR.search(words):
        return []
    return [FLIGHT_NOTE.format(words, day_words(flight.start), day_words(flight.end))]


def day_words(d: date) -> str:
    """A day as a report writes it: "1 January 2027"."""
    return f"{d.day} {d:%B %Y}"
