"""Reference ad copy for the creative and brand datasets: the composer the template fallback
uses too (`tools.creative.compose`), with seeded choices, so every answer is compliant and
decodable under the served grammar by construction (and checked: `review_copy` and the grammar
must pass).

Products come from the simulated catalog (`tools.world.catalog`): every product line (category
and noun) of each brand, named as the catalog names SKUs ("Acme Sea Salt Kettle Chips"); the
held-out product lines (`tools.creative.products.HELD_OUT_RULE`) only ever reach the eval split.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.creative.compose import Angle, angles_of, compose, headlines, passes
from tools.creative.facts import MODEL_SENTENCES, CopyFacts
from tools.creative.products import product_lines as catalog_lines
from tools.policy.categories import POLICY_CATEGORY
from tools.policy.compliance import AdCopy
from tools.world.catalog import BRANDS, CATEGORIES, RETAILERS


@dataclass(frozen=True)
class Product:
    brand_id: str
    name: str  # e.g. "Acme Sea Salt Kettle Chips"
    noun: str  # the product line, e.g. "Kettle Chips": the unit datasets split by
    catalog_category: str

    @property
    def category(self) -> str:
        return POLICY_CATEGORY[self.catalog_category]


def brand_short(brand_id: str) -> str:
    return BRANDS[brand_id].name.split()[0]


def product_lines(brand_id: str) -> list[tuple[str, str]]:
    """(catalog category, noun) of every product line a brand makes, in catalog order."""
    return catalog_lines(brand_id)


def products_for_line(brand_id: str, catalog_category: str, noun: str) -> list[Product]:
    short = brand_short(brand_id)
    named = [Product(brand_id, f"{short} {noun}", noun, catalog_category)]
    named += [
        Product(brand_id, f"{short} {v} {noun}", noun, catalog_category)
        for v in CATEGORIES[catalog_category].variants
    ]
    return named


def retailers_carrying(catalog_category: str) -> list[str]:
    return [rid for rid, r in RETAILERS.items() if catalog_category in r.categories]


def reference_copy(facts: CopyFacts, angle: Angle, rng: random.Random) -> AdCopy | None:
    """Composed copy for `facts` leading with `angle` (seeded choices), or None when nothing
    fits the placement, the rules and the grammar."""
    return compose(facts, angle, rng)


def served_copy(facts: CopyFacts, angle: Angle, rng: random.Random) -> AdCopy | None:
    """Copy in the shape the served grammar decodes for `angle` (`CopyFacts.opening_schema`):
    the body is one sentence that opens on the angle's phrase and goes on ("No artificial
    colors or flavors, from Acme."), under a headline of the brand's hooks. `compose` also
    writes the angle as the headline over a body of other benefits, a shape the model can
    never decode: brand/acme trained on it put its claim in the headline in most held-out
    answers (v7, DPO on it: 19 of 30) and ran over the headline's limit in 9 of them. None
    when nothing fits."""
    openings = facts.openings()
    if len(openings) != len(angles_of(facts)):
        return None
    opening = dict(zip((a.text for a in angles_of(facts)), openings, strict=True)).get(angle.text)
    if not opening:
        return None
    short = facts.guide.name.split()[0]
    others = [a.text for a in angles_of(facts) if a != angle and not a.claim]
    tails = [", every time", f", from {short}", *(f", {o}" for o in others)]
    grammar = facts.grammar.with_opening(opening, MODEL_SENTENCES)
    options = [(h, f"{opening}{t}.") for h in headlines(facts, None) for t in tails]
    rng.shuffle(options)
    for head, body in options:
        copy = AdCopy(headline=head, body=body)
        if grammar.accepts(head, body) and passes(facts, copy):
            return copy
    return None
