"""What one piece of copy is written from: the retailer's rules for the placement, the product,
its benefits and the claims approved for it that may run at this retailer, and the brand's
voice passage. The prompt (`tools.creative.prompts`), the decode grammar
(`tools.creative.grammar`), the template fallback and adapter training all read it from here,
so what the model is shown, what it may write and what it is taught agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from tools.creative.grammar import CopyGrammar, CopySchema, copy_grammar
from tools.creative.products import benefits_for
from tools.creative.templates import BENEFITS as CATEGORY_BENEFITS
from tools.creative.templates import DEFAULT_BENEFITS
from tools.policy import BrandGuide, RetailerPolicy
from tools.policy.prompts import section_text

VOICE_SENTENCES = 2  # of the brand's "how we sound" section: enough for the tone, few tokens


@dataclass(frozen=True)
class CopyFacts:
    policy: RetailerPolicy
    placement: str
    product: str  # the product name as the brand's SKU list has it
    category: str  # policy category
    guide: BrandGuide

    @property
    def limits(self) -> tuple[int, int]:
        spec = self.policy.creative.limits(self.placement)
        return spec.max_headline_chars, spec.max_body_chars

    @cached_property
    def benefits(self) -> list[str]:
        """The product line's plain benefits (`tools.creative.products.BENEFITS`); for a
        product outside the catalog's lines, the category's (`templates.BENEFITS`)."""
        found = benefits_for(self.product)
        return found or list(CATEGORY_BENEFITS.get(self.category, DEFAULT_BENEFITS))

    @cached_property
    def claims(self) -> list[str]:
        """The claims approved for this product that this retailer lets run (its prohibited
        claims and the brand's banned words win)."""
        return [
            c.text
            for c in self.guide.claims_for_product(self.product, self.category)
            if not self.policy.prohibited.violations(c.text, self.category)
            and not self.guide.banned_in(c.text)
        ]

    @cached_property
    def voice(self) -> str:
        """The first sentences of the brand guide's "how we sound" section."""
        source = self.guide.sources.get("voice.tone")
        if not source:
            return ", ".join(self.guide.tone).capitalize() + "."
        text = " ".join(section_text(source).split("\n", 1)[-1].split())
        said = re.findall(r"[^.!?]+[.!?]", text)
        return " ".join(s.strip() for s in said[:VOICE_SENTENCES]) or text

    @property
    def sources(self) -> list[str]:
        """The corpus sections the prompt quotes or draws on, as citations."""
        out = [self.guide.sources.get("voice.tone", "")]
        for claim in self.guide.claims_for_product(self.product, self.category):
            if claim.text in self.claims:
                out.append(self.guide.claims_source(claim.id))
        out.append(self.policy.source_for("creative", f"placements.{self.placement}"))
        return [s for s in dict.fromkeys(out) if s]

    @cached_property
    def grammar(self) -> CopyGrammar:
        return copy_grammar(
            self.policy, self.placement, self.category, self.guide, self.product, self.claims
        )

    @cached_property
    def schema(self) -> CopySchema:
        return CopySchema.of_grammar(self.grammar)

    def opening_schema(
        self, opening: str, avoid_words: frozenset[str] = frozenset(),
        avoid_headlines: frozenset[str] = frozenset(), headlines: tuple[str, ...] = (),
        tails: tuple[str, ...] = (),
    ) -> CopySchema:  # fmt: skip
        """The model's grammar for a variant whose body opens on `opening` (one of
        `openings()`; "" for none), with at most `MODEL_SENTENCES` body sentences and its
        headline one of `headlines` and its body's end one of `tails`
        (`tools.creative.compose.headline_options`, `body_tails`; () for its own words); a
        re-ask's also without the words and headlines its refused copy wrote
        (`tools.creative.avoid`)."""
        grammar = self.grammar.avoiding(avoid_words, avoid_headlines).choosing(headlines, tails)
        return _opening_schema(grammar, opening)

    def openings(self) -> list[str]:
        """The body opening of each angle (parallel to `angles()`): the benefit or approved
        claim it leads with, as the body's first words (a benefit's first letter capitalized;
        a claim as approved), or "" where that opening would break a rule here or leave the
        model no room to go on."""
        phrases = self._angle_phrases()
        return [_opening_ok(self, p) for p in phrases] if phrases else []

    def _angle_phrases(self) -> list[str]:
        mixed = [p for pair in zip(self.benefits, self.claims, strict=False) for p in pair]
        longer = self.benefits if len(self.benefits) > len(self.claims) else self.claims
        return mixed + longer[len(mixed) // 2 :]

    def angles(self) -> list[str]:
        """What each variant leads with, so that variants differ: the product's benefits and
        approved claims, alternating, benefits first."""
        benefits = [f'lead with "{b}"' for b in self.benefits]
        claims = [f'lead with the claim "{c}"' for c in self.claims]
        mixed = [a for pair in zip(benefits, claims, strict=False) for a in pair]
        longer = benefits if len(benefits) > len(claims) else claims
        out = mixed + longer[len(mixed) // 2 :]
        return out or [f"sound {t}" for t in self.guide.tone]


# Body sentences the model may write. Measured with `rmn bench language --plans 1 --no-repro`
# (20 variants) on main before the openings: every generation the rules rejected was a repeat,
# none broke length, case, banned words, claims or punctuation (the grammar already rules those
# out): 6 loops (`repetitive`: "Find it in store. Find it in store and home.") and 4 sentences
# another variant of the plan also wrote (mostly the closer "Add it to your cart."). One
# sentence, opened on the variant's own benefit, leaves the model no room for either.
MODEL_SENTENCES = 1
# Characters the model needs after an opening for its own words and the full stop.
OPENING_ROOM = 8


@lru_cache(maxsize=512)
def _opening_schema(grammar: CopyGrammar, opening: str) -> CopySchema:
    return CopySchema.of_grammar(grammar.with_opening(opening, MODEL_SENTENCES))


def _opening_ok(facts: CopyFacts, phrase: str) -> str:
    """`phrase` as a body opening, or "" when it cannot open this body: too long for the
    placement, or copy opening on it breaks a rule (`review_copy`: an approved claim in capitals
    a retailer does not allow, say) or the grammar (which the writer's copy must also pass)."""
    from tools.creative.review import review_copy
    from tools.policy.compliance import AdCopy, required_disclaimers

    opening = phrase[:1].upper() + phrase[1:]
    if len(opening) + OPENING_ROOM > facts.limits[1]:
        return ""
    body = f"{opening} today."
    headline = facts.product.split()[-1]  # a word any headline here may end on
    grammar = facts.grammar.with_opening(opening, MODEL_SENTENCES)
    needed = required_disclaimers(
        f"{headline} {body}", facts.policy, facts.placement, facts.category, facts.guide
    )
    copy = AdCopy(headline=headline, body=body, disclaimers=needed)
    problems = review_copy(
        copy, facts.policy, facts.placement, facts.category, facts.guide, facts.product
    )
    return opening if not problems and grammar.accepts(headline, body) else ""
