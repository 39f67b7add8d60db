"""What one request's model copy chooses among: the headlines of a variant's angle and the ends
of a body after its opening (`compose.headline_options`, `compose.body_tails`), worked out
once per request, since every re-ask of a variant asks for them again (each option is checked
with `review_copy`).

A re-ask after a repeat may not end its body on a sentence another variant of the call wrote
(`Avoid.sentences`): with the body's end chosen, two variants on one opening chose the same end
and the re-ask chose it again (27 of 85 generations repeated on `rmn bench language` seed 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.creative.compose import Angle, angles_of, body_tails, headline_options
from tools.creative.facts import CopyFacts
from tools.creative.quality import sentence_key


@dataclass
class Choices:
    """The options of one request's variants, cached by angle and opening."""

    facts: CopyFacts
    _heads: dict[tuple[Angle | None, str], tuple[str, ...]] = field(default_factory=dict)
    _tails: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def headlines(self, at: int, opening: str) -> tuple[str, ...]:
        """The headlines of the variant leading with angle `at` (any int: taken modulo the
        angles) whose body opens on `opening`: around its own angle first."""
        angles = angles_of(self.facts)
        lead = angles[at % len(angles)] if angles else None
        if (lead, opening) not in self._heads:
            self._heads[lead, opening] = headline_options(self.facts, lead, opening)
        return self._heads[lead, opening]

    def tails(self, opening: str, avoid: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The ends of a body opening on `opening`, but those making a sentence in `avoid`
        (sentence keys)."""
        if opening not in self._tails:
            self._tails[opening] = body_tails(self.facts, opening)
        return tuple(t for t in self._tails[opening] if sentence_key(opening + t) not in avoid)
