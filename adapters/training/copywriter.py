"""Reference ad copy for the creative and brand datasets, written from templates so that every
example is compliant by construction (and checked: `compliance.check_copy` must pass).

Products come from the simulated catalog (`tools.world.catalog`); its categories are mapped to
the category names the policies use. Brand voice comes from phrase banks written to each brand
guide's tone, plus the guide's approved claims and preferred terms.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from tools.policy import BrandGuide, Capitalization, RetailerPolicy
from tools.policy.categories import POLICY_CATEGORY
from tools.policy.compliance import TITLE_SMALL_WORDS, AdCopy, is_acronym
from tools.world.catalog import BRANDS, CATEGORIES, RETAILERS

PLACEMENT_LABELS: dict[str, str] = {
    "sponsored_search": "sponsored search",
    "sponsored_product": "sponsored product",
    "display_onsite": "onsite display",
    "display_offsite": "offsite display",
    "instore_screen": "in-store screen",
    "onsite_video": "onsite video",
}

OFFERS: tuple[str | None, ...] = (None, None, None, "15% off", "20% off", "30% off", "$2 off")


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
    """(catalog category, noun) of every product line a brand makes."""
    return [(c, n) for c in BRANDS[brand_id].categories for n in CATEGORIES[c].nouns]


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


# --- phrase banks ---------------------------------------------------------------------------

# Neutral benefits by policy category, for copy without a brand voice.
BENEFITS: dict[str, tuple[str, ...]] = {
    "snacks": ("crunchy and full of flavor", "made for sharing", "a snack-time favorite"),
    "grocery": ("a pantry staple", "ready in minutes", "easy weeknight meals"),
    "household": ("tough on messes", "keeps your home fresh", "stock up for the week"),
    "health_beauty": ("gentle daily care", "made for everyday routines", "feels light on skin"),
    "otc_medicine": ("relief when you need it", "for your medicine cabinet", "easy to take"),
    "vitamins": ("a simple daily habit", "easy to take every day", "for your daily routine"),
    "home_goods": ("designed for everyday living", "easy to care for", "made to fit your space"),
    "small_electronics": ("fast setup, easy cleanup", "compact and simple to use", "counter-ready"),
    "personal_care": ("fresh all day", "a daily essential", "made for your routine"),
    "beverages": ("crisp and refreshing", "great over ice", "chill a pack for the weekend"),
    "alcohol": ("crisp and refreshing", "made for sharing with friends", "serve it chilled"),
}
CALLS_TO_ACTION: tuple[str, ...] = (
    "Shop now.",
    "Add it to your cart.",
    "Find it in store and online.",
    "Try it this week.",
)


@dataclass(frozen=True)
class Voice:
    hooks: tuple[str, ...]
    closers: tuple[str, ...]


# Written to each guide's tone; none uses the brand's banned words.
BRAND_VOICES: dict[str, Voice] = {
    "acme": Voice(
        hooks=(
            "a family favorite",
            "snack time for the whole crew",
            "great value for busy families",
            "made for busy weeknights",
            "the pantry hero your family loves",
        ),
        closers=(
            "Grab one for the whole family.",
            "Add it to the family list.",
            "Stock up for snack time.",
            "Your crew will thank you.",
        ),
    ),
    "globex": Voice(
        hooks=(
            "care you can count on",
            "gentle, everyday care",
            "simple steps, steady care",
            "made with care, backed by evidence",
        ),
        closers=(
            "Add it to your daily routine.",
            "Find it in the pharmacy aisle.",
            "Ask your pharmacist which one fits you.",
            "Calm, simple care every day.",
        ),
    ),
    "initech": Voice(
        hooks=(
            "a simpler way to get it done",
            "built for everyday use",
            "practical design, precise results",
            "works the way you do",
        ),
        closers=(
            "Set it up in minutes.",
            "Made to last through daily use.",
            "See the specs online.",
            "A simpler way to run your home.",
        ),
    ),
    "brand_x": Voice(
        hooks=(
            "bold flavor, zero fuss",
            "made for every crew",
            "fresh takes for everyone",
            "big taste, good vibes",
        ),
        closers=(
            "Make it your new go-to.",
            "Grab yours and share the good stuff.",
            "Everyone is welcome here.",
            "Bring it to the next hangout.",
        ),
    ),
}


# --- casing ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\S+")


def apply_case(text: str, rule: Capitalization, keep: frozenset[str] = frozenset()) -> str:
    """Headline casing: `keep` holds words (brand names) that stay as written."""
    words = _TOKEN.findall(text)
    out = []
    for i, word in enumerate(words):
        if word in keep or is_acronym(word):
            out.append(word)
        elif rule == Capitalization.TITLE_CASE and (
            i == 0 or word.lower() not in TITLE_SMALL_WORDS
        ):
            out.append(word[:1].upper() + word[1:])
        elif rule == Capitalization.SENTENCE_CASE:
            out.append(word[:1].upper() + word[1:].lower() if i == 0 else word.lower())
        else:
            out.append(word[:1].upper() + word[1:] if i == 0 else word)
    return " ".join(out)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyRequest:
    """One creative request: what the prompt states."""

    retailer_id: str
    placement: str
    product: Product
    offer: str | None = None
    brand_voice: bool = False  # brand adapters: write in the brand's voice with its claims


def _fits(parts: list[str], limit: int) -> bool:
    return len(" ".join(parts)) <= limit


def write_copy(
    request: CopyRequest,
    policy: RetailerPolicy,
    rng: random.Random,
    brand: BrandGuide | None = None,
) -> AdCopy | None:
    """Reference copy for a request, or None when the product cannot run there. Disclaimers
    are left empty; `datasets` fills them from the policy once the text is final."""
    product, category = request.product, request.product.category
    if not policy.bidding.allows(category, request.placement):
        return None
    creative = policy.creative
    limits = creative.limits(request.placement)
    acronyms = {a.upper() for a in creative.allowed_acronyms}
    if not creative.all_caps_words_allowed and any(
        is_acronym(w) and w not in acronyms for w in product.name.split()
    ):
        return None  # the product name itself would break the all-caps rule

    voice = BRAND_VOICES.get(product.brand_id) if request.brand_voice else None
    claims: list[str] = []
    if brand is not None and request.brand_voice:
        claims = [
            c.text
            for c in brand.claims_for(category)
            if not policy.prohibited.violations(c.text, category)
        ]
    hooks = list(voice.hooks if voice else BENEFITS[category])
    rng.shuffle(hooks)
    closers = list(voice.closers if voice else CALLS_TO_ACTION)
    rng.shuffle(closers)

    short = brand_short(product.brand_id)
    keep = frozenset(short.split())
    headline_options = [f"{product.name}, {hooks[0]}", product.name, f"{short} {product.noun}"]
    if request.offer:
        headline_options.insert(0, f"{product.noun}, now {request.offer}")
    if claims and rng.random() < 0.5:
        headline_options.insert(0, claims[0])
    headline = next(
        (
            apply_case(h, creative.capitalization, keep)
            for h in headline_options
            if len(h) <= limits.max_headline_chars
        ),
        None,
    )
    if headline is None:
        return None

    sentences: list[str] = []
    if claims:
        sentences.append(_sentence(claims[0]))
    if request.offer:
        sentences.append(_sentence(f"Now {request.offer}"))
    sentences.append(_sentence(hooks[1 % len(hooks)]))
    sentences.append(closers[0])
    body_parts: list[str] = []
    for s in sentences:
        if _fits([*body_parts, s], limits.max_body_chars):
            body_parts.append(s)
    if request.offer and not any(request.offer in p for p in body_parts + [headline.lower()]):
        short_offer = _sentence(request.offer)
        if _fits([short_offer], limits.max_body_chars):
            body_parts = [short_offer]
    if not body_parts:
        return None
    body = " ".join(body_parts)
    if brand is not None:
        for avoid, prefer in brand.preferred_terms.items():
            body = re.sub(rf"\b{re.escape(avoid)}\b", prefer, body, flags=re.IGNORECASE)
    return AdCopy(headline=headline, body=body)
