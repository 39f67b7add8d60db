"""Copy composed from templates: a headline and a body that lead with one of the product's
benefits or approved claims (the variant's angle), in the brand's voice, within the placement's
limits and the decode grammar. Adapter training writes its reference answers with it
(`adapters.training.copywriter`, seeded choices) and the template fallback its copy
(`tools.creative.fallback`, choices enumerated in order), so the copy a model is taught and the
copy that replaces a failed model read alike.

Every composed copy says something about the product: its headline is never just the product
name, and its body names a benefit or an approved claim.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tools.creative.facts import CopyFacts
from tools.creative.products import product_line
from tools.creative.quality import headline_is_product_name
from tools.creative.review import review_copy
from tools.creative.templates import BRAND_VOICES, apply_case, replace_word, sentence
from tools.policy.compliance import AdCopy, required_disclaimers

# Sentences that lead with a benefit phrase ({b}: as written, lower case; {n}: the product
# line, lower case).
# Benefits are noun phrases ("kettle-cooked crunch"), verb phrases ("cuts through grease") or
# adjective phrases ("great over ice"): these read right with any of them.
LEADS: tuple[str, ...] = ("{B}.", "{B}, every time.", "{N} - {b}.", "{B}, from {s}.")
# Headlines around a benefit ({s}: the brand's short name).
HEADLINES: tuple[str, ...] = ("{B}", "{N}, {b}", "{N} - {b}")


@dataclass(frozen=True)
class Angle:
    """What a copy leads with: a benefit phrase or an approved claim."""

    text: str
    claim: bool


def angles_of(facts: CopyFacts) -> list[Angle]:
    """The angles in `CopyFacts.angles` order (benefits and claims alternating)."""
    out = []
    for line in facts.angles():
        if line.startswith('lead with the claim "'):
            out.append(Angle(line.removeprefix('lead with the claim "')[:-1], True))
        elif line.startswith('lead with "'):
            out.append(Angle(line.removeprefix('lead with "')[:-1], False))
    return out


def _fill(template: str, phrase: str, noun: str, short: str) -> str:
    text = template.format(
        B=phrase[:1].upper() + phrase[1:],
        b=phrase,
        N=noun[:1].upper() + noun[1:].lower(),
        n=noun.lower(),
        s=short,
    )
    return text


# Policy categories a shopper eats or drinks from. A brand's voice lines that speak of food
# ("big taste, good vibes", "snack time for the whole crew") suit only these: brand_x's
# adapter wrote "Fresh taste, every time" on a shampoo and acme's "snack time" reached trash
# bags (rated wrong for the product by a reviewer, seed 800 of `run_language_bench`).
EDIBLE_CATEGORIES = frozenset({"snacks", "grocery", "pantry", "food", "beverages", "alcohol"})
_FOOD_WORDS = re.compile(
    r"\b(?:snacks?|pantry|flavou?rs?|tastes?|tasty|delicious|drinks?|sips?|plates?|yummy)\b"
)


# Lines about getting a job done suit tools and appliances, not decor: initech's "A simpler way
# to get it done" and "Practical design, precise results" headed ads for candles and throw
# pillows (6 to 9 of 400 variants rated wrong for the product, seeds 808/809), and "Set it up in
# minutes." closed them. Decor is told by the product's name: the policy category
# (`facts.category`) puts baking sheets and candles both in home goods.
_DECOR = re.compile(r"\b(?:candles?|pillows?|towels?|towel set|frames?|curtains?|rugs?|vases?|"
                    r"blankets?|throws?)\b")  # fmt: skip
_TASK_WORDS = re.compile(
    r"\b(?:get it done|precise results|works the way you do|set it up|specs)\b"
)


def fits_category(phrase: str, category: str, product: str = "") -> bool:
    """Whether a brand voice line suits a product of `category` named `product`: food words
    only on food, task words not on decor."""
    low = phrase.lower()
    if _TASK_WORDS.search(low) and _DECOR.search(product.lower()):
        return False
    return category in EDIBLE_CATEGORIES or not _FOOD_WORDS.search(low)


def hooks_for(facts: CopyFacts) -> list[str]:
    """The brand's hooks that suit the product (`fits_category`), as written."""
    voice = BRAND_VOICES.get(facts.guide.brand_id)
    return [h for h in voice.hooks if fits_category(h, facts.category, facts.product)] \
        if voice else []  # fmt: skip


def headlines(facts: CopyFacts, angle: Angle | None) -> list[str]:
    """Headline options, cased for the retailer: around the angle, or (None) the brand's
    hooks that suit the product's category."""
    noun = product_line(facts.product) or facts.product.split()[-1]
    short = facts.guide.name.split()[0]
    if angle is None:
        raw = [h[:1].upper() + h[1:] for h in hooks_for(facts)]
    elif angle.claim:
        raw = [angle.text]
    else:
        raw = [_fill(t, angle.text, noun, short) for t in HEADLINES]
    rule = facts.policy.creative.capitalization
    cased = [apply_case(h, rule, frozenset({short})) for h in raw]
    return [h for h in dict.fromkeys(cased) if len(h) <= facts.limits[0]]


def headline_options(facts: CopyFacts, lead: Angle | None, opening: str) -> tuple[str, ...]:
    """The headlines the model chooses among for a variant that leads with `lead` and whose
    body opens on `opening`: the templates' headlines around its own angle, then the brand's
    hooks that suit the product, then around the other angles but the one the body opens on;
    each one the grammar and the checks pass, never the product name.

    Why chosen, not written: a reviewer rated 90 of the 200 variants of seed 800 (`rmn bench
    language`'s plans, every brand) not fit to run, most of them for the model's own headline
    ("Bus a Day", "Socks of care", "Draft a for a to the in the in the in to", "Fresh taste"
    on a shampoo), while the body, opened on a benefit, mostly read right."""
    others = [a for a in angles_of(facts) if a != lead and a.text.lower() != opening.lower()]
    body = f"{opening or 'Find it'} today."
    out = []
    for angle in ([lead] if lead else []) + [None] + others:
        for head in headlines(facts, angle):
            if head not in out and passes(facts, AdCopy(headline=head, body=body)):
                out.append(head)
    return tuple(out)


# Ends of a body sentence any product's benefit can take ({s}: the brand's short name).
TAILS: tuple[str, ...] = (", every time.", ", every day.", ", from {s}.")


def body_tails(facts: CopyFacts, opening: str) -> tuple[str, ...]:
    """The ends the model chooses among for a body that opens on `opening`: the templates'
    (`TAILS`), then another of the product's benefits, then a brand hook that suits it, as a
    clause ("Fits most cans, easy drawstring ties."); each body the grammar and the checks
    pass. () without an opening.

    Why: with the headline chosen, what a reviewer still rated bad was mostly the body's
    model-written end, 55 of the 66 variants rated bad on seeds 804 and 805 ("Fits most cans,
    make a family member's cup.", "Adds color to a sofa, a can.")."""
    if not opening:
        return ()
    short = facts.guide.name.split()[0]
    others = [b for b in facts.benefits if b.lower() != opening.lower()]
    raw = [t.format(s=short) for t in TAILS] + [f", {p}." for p in [*others, *hooks_for(facts)]]
    grammar = facts.grammar.with_opening(opening, 1)
    head = facts.product.split()[-1]  # a word any headline here may end on
    out = []
    for tail in dict.fromkeys(raw):
        body = opening + tail
        for avoid, prefer in facts.guide.preferred_terms.items():
            body = replace_word(body, avoid, prefer)
        copy = AdCopy(headline=head, body=body)
        if body.startswith(opening) and grammar.accepts(head, body) and reviewed(facts, copy):
            out.append(body[len(opening) :])
    return tuple(out)


def bodies(facts: CopyFacts, lead: Angle, second: Angle | None, closers: list[str]) -> list[str]:
    """Body options: a sentence about `lead`, then (where they fit) one about `second` and a
    closer in the brand's voice; the fullest first."""
    noun = product_line(facts.product) or facts.product.split()[-1]
    short = facts.guide.name.split()[0]
    if lead.claim:
        leads = [sentence(lead.text)]
    else:
        leads = [_fill(t, lead.text, noun, short) for t in LEADS]
    seconds = ([sentence(second.text)] if second else []) + [""]
    out = []
    for first, then, closer in itertools.product(leads, seconds, [*closers, ""]):
        body = " ".join(p for p in (first, then, closer) if p)
        for avoid, prefer in facts.guide.preferred_terms.items():
            body = replace_word(body, avoid, prefer)
        if len(body) <= facts.limits[1]:
            out.append(body)
    return list(dict.fromkeys(out))


def closers_for(facts: CopyFacts) -> list[str]:
    """The brand's closers that suit the product (`fits_category`: snack-time lines only for
    food)."""
    voice = BRAND_VOICES.get(facts.guide.brand_id)
    if voice is None:
        return []
    return [c for c in voice.closers if fits_category(c, facts.category, facts.product)]


def passes(facts: CopyFacts, copy: AdCopy) -> bool:
    if not facts.grammar.accepts(copy.headline, copy.body):
        return False
    if headline_is_product_name(copy.headline, facts.product):
        return False
    return reviewed(facts, copy)


def reviewed(facts: CopyFacts, copy: AdCopy) -> bool:
    """Whether the checks (`review_copy`) pass `copy`, with the disclaimers it needs set."""
    text = f"{copy.headline} {copy.body}"
    copy.disclaimers = required_disclaimers(
        text, facts.policy, facts.placement, facts.category, facts.guide
    )
    found = review_copy(
        copy, facts.policy, facts.placement, facts.category, facts.guide, facts.product
    )
    return not found


def _pairs(
    facts: CopyFacts, angle: Angle, others: list[Angle], closers: list[str]
) -> Iterator[tuple[str, str]]:
    """(headline, body) options for an angle: the headline says the angle and the body another
    benefit or claim, or a brand hook heads a body that leads with the angle."""
    second = others[0] if others else None
    third = others[1] if len(others) > 1 else None
    for head in headlines(facts, angle):
        if second is not None:
            for body in bodies(facts, second, third, closers):
                yield head, body
    for head in headlines(facts, None):
        for body in bodies(facts, angle, second, closers):
            yield head, body


def compose(facts: CopyFacts, angle: Angle, rng: random.Random) -> AdCopy | None:
    """One copy for `angle` with seeded choices (training's reference answers); None when no
    option fits the placement, the rules and the grammar."""
    others = [a for a in angles_of(facts) if a != angle]
    rng.shuffle(others)
    closers = closers_for(facts)
    rng.shuffle(closers)
    options = list(_pairs(facts, angle, others, closers[:1]))
    rng.shuffle(options)
    for head, body in options:
        copy = AdCopy(headline=head, body=body)
        if passes(facts, copy):
            return copy
    return None


def enumerate_copy(facts: CopyFacts) -> Iterator[AdCopy]:
    """Every composed copy that passes, in a fixed order, round-robin over the angles (the
    fallback's order): the first option of each angle, then the second of each, and so on."""
    closers = closers_for(facts)
    all_angles = angles_of(facts)

    def options(angle: Angle) -> Iterator[AdCopy]:
        others = [a for a in all_angles if a != angle]
        for head, body in _pairs(facts, angle, others, closers):
            copy = AdCopy(headline=head, body=body)
            if passes(facts, copy):
                yield copy

    streams = [options(a) for a in all_angles]
    for batch in itertools.zip_longest(*streams):
        yield from (c for c in batch if c is not None)
