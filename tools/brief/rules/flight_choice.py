"""Which of the flights a brief states it asks for: none a past sentence reports, a correction
over what it corrects, the strongest reading, and a later flight inside the first."""

from __future__ import annotations

import re

from tools.brief.rules.flight import Flight
from tools.brief.schema import BriefError


def asked_flights(
    flights: list[Flight],
    low: str,
    past: list[tuple[int, int]],
    correction: re.Pattern[str],
) -> list[Flight]:
    """The flights the brief asks for, of those it states: none inside a sentence that only
    reports the past (`past`: "our fall 2025 campaign (Sep 8-Oct 19) ran 140 SKUs"), and,
    where correction words come right before some ("EDIT: flight moved to Feb-Mar 2027"), those
    only. Both were read as the flight in unseen10 and unseen11 (p16, q14; p35, q46)."""
    kept = [f for f in flights if not any(s <= f.span[0] < e for s, e in past)]
    fixed = [f for f in kept if correction.search(low[max(0, f.span[0] - 40) : f.span[0]])]
    whole = [f for f in kept if f not in fixed and f.start and f.end]
    if fixed and whole and all((f.start is None) != (f.end is None) for f in fixed):
        # A correction of one end keeps the other: "flight Jan 1 - Mar 31. Actually, push the
        # start to Feb 1" is Feb 1 to Mar 31 (yn08 of unseen58 planned from Jan 1).
        base = max(whole, key=lambda f: f.priority)
        start = next((f.start for f in reversed(fixed) if f.start), base.start)
        end = next((f.end for f in reversed(fixed) if f.end), base.end)
        if start and end and start <= end:
            return [Flight(start, end, base.priority, fixed[-1].span)]
    return fixed or kept


def choose_flight(flights: list[Flight]) -> tuple[Flight | None, list[str], list[BriefError]]:
    """(the flight the brief sets: the strongest reading, the first of equals; warnings;
    errors)."""
    if not flights:
        return None, [], []
    top = max(f.priority for f in flights)
    best = sorted((f for f in flights if f.priority == top), key=lambda f: f.span[0])
    # A later flight inside the first refines it: "$3M for retail media in H1. Of that, $1M is
    # for this first plan, Jan-Feb" (xa29 of unseen43 planned H1).
    inside = [f for f in best[1:] if _within(f, best[0])]
    flight = inside[0] if inside else best[0]
    warnings: list[str] = []
    errors: list[BriefError] = []
    if len({(f.start, f.end) for f in best}) > 1:
        which = "the later one, inside the first" if inside else "the first one"
        warnings.append(f"several flights mentioned; used {flight.start} to "
                        f"{flight.end or 'open'}, {which}")  # fmt: skip
    if flight.start and flight.end and flight.end < flight.start:
        errors.append(
            BriefError(
                f"the flight ends ({flight.end}) before it starts ({flight.start})",
                field="flight_end",
            )
        )
    return flight, warnings, errors


def _within(f: Flight, outer: Flight) -> bool:
    """Whether `f` lies inside `outer` and is shorter (both dated)."""
    a, b, c, d = outer.start, f.start, f.end, outer.end
    return bool(a and b and c and d) and a <= b <= c <= d and c - b < d - a
