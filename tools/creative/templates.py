"""The copy templates: phrase banks written to each policy category and brand guide, calls to
action, headline casing and sentence closing. Serving builds its fallback copy from them
(`tools.creative.fallback`) and training its reference copy (`adapters.training.copywriter`),
so the copy a model is taught and the copy that replaces a failed model read alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.policy import Capitalization
from tools.policy.compliance import TITLE_SMALL_WORDS, is_acronym

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
# For a category without a bank (a brand guide's own category).
DEFAULT_BENEFITS: tuple[str, ...] = ("made for every day", "an everyday favorite")
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
            "family favorite",
            "made for families",
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
            "calm, simple care",
            "care that counts",
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
            "simply practical",
            "made for daily use",
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
            "bold and fresh",
            "good vibes only",
        ),
        closers=(
            "Make it your new go-to.",
            "Grab yours and share the good stuff.",
            "Everyone is welcome here.",
            "Bring it to the next hangout.",
        ),
    ),
}


# --- casing and sentences -------------------------------------------------------------------

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


def sentence(text: str) -> str:
    """A phrase as a sentence: capitalized, closed with a full stop unless it has an ending."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def replace_word(text: str, word: str, replacement: str) -> str:
    """`text` with every whole-word `word` (any case) replaced: a brand's preferred terms."""
    return re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", replacement, text, flags=re.IGNORECASE)
