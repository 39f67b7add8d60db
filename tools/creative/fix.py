"""Rule fixes for ad copy: every problem `review_copy` reports that a rule can repair without a
new generation (debris, style, price wording, length, case, disclaimers). What no rule can fix
(a prohibited claim) is left for the writer to ask the model about again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tools.creative.review import MARKUP, known_texts, review_copy, sentences
from tools.creative.templates import apply_case, replace_word
from tools.creative.words import copy_phrases
from tools.policy import BrandGuide, RetailerPolicy
from tools.policy.compliance import (
    EMOJI,
    TITLE_SMALL_WORDS,
    WORD,
    AdCopy,
    capitalization_ok,
    is_acronym,
    required_disclaimers,
)

FIX_PASSES = 3
# What the fixer cuts for a price violation. Wider than the `PERCENT_OFF` the checker counts
# ("20% off"): it takes the lead-in ("now", "save up to") and the punctuation before the claim
# with it, and the spelled-out "20 percent off" a model writes next to it.
_DISCOUNT = re.compile(
    r"[,;:\-\u2013\u2014]?\s*(?:now\s+|save\s+|get\s+)?(?:up to\s+)?"
    r"\d+(?:\.\d+)?\s*(?:%|percent)\s*off\b",
    re.IGNORECASE,
)
# Words a trimmed headline should not end on.
_DANGLING = TITLE_SMALL_WORDS | {"your", "our", "now", "is", "are"}


def fix_copy(
    copy: AdCopy,
    policy: RetailerPolicy,
    placement: str,
    category: str | None = None,
    brand: BrandGuide | None = None,
    product: str | None = None,
) -> tuple[AdCopy, list[str]]:
    """The copy with every rule-fixable problem repaired, and the problems it repaired:
    markup, repeated sentences, fragments and unfinished sentences removed, sentences with
    unsupported numbers dropped, emoji and extra exclamation marks removed, shouted words and
    headline case corrected, banned brand words replaced by the guide's preferred terms,
    discount wording the retailer does not allow removed, over-long text trimmed at a word
    (the body at a sentence where it can) and the required disclaimers attached. What no rule
    can fix is left for `review_copy` to report."""
    fixed: list[str] = []
    # One repair can expose another (stripped markup leaves a repeated sentence), so repair
    # until a pass changes nothing.
    for _ in range(FIX_PASSES):
        copy, repaired = _fix_once(copy, policy, placement, category, brand, product)
        fixed += [r for r in repaired if r not in fixed]
        if not repaired:
            break
    return copy, fixed


@dataclass
class _Draft:
    """Copy being repaired in one pass: its text, what the review found at the start of the
    pass, and the problems repaired so far."""

    headline: str
    body: str
    found: list[str]
    fixed: list[str] = field(default_factory=list)

    def has(self, prefix: str) -> list[str]:
        return [v for v in self.found if v == prefix or v.startswith(prefix)]

    def repaired(self, prefix: str) -> None:
        self.fixed += self.has(prefix)


def _fix_once(
    copy: AdCopy,
    policy: RetailerPolicy,
    placement: str,
    category: str | None,
    brand: BrandGuide | None,
    product: str | None,
) -> tuple[AdCopy, list[str]]:
    found = review_copy(copy, policy, placement, category, brand, product)
    draft = _Draft(copy.headline, copy.body, found)
    _fix_debris(draft, brand, category, product)
    _fix_style(draft, policy, brand)
    _fix_price(draft)
    _fix_length_and_case(draft, policy, placement, brand)
    headline, body = draft.headline.strip(), draft.body.strip()
    disclaimers = required_disclaimers(f"{headline} {body}", policy, placement, category, brand)
    draft.repaired("missing_disclaimer:")
    # Disclaimers beyond the required ones are legal text nobody asked for.
    if any(d not in disclaimers for d in copy.disclaimers):
        draft.fixed.append("extra_disclaimer")
    out = AdCopy(headline=headline, body=body, disclaimers=disclaimers)
    if out == copy:
        return copy, []
    return out, list(dict.fromkeys(draft.fixed))


def _fix_debris(
    draft: _Draft, brand: BrandGuide | None, category: str | None, product: str | None
) -> None:
    """Markup, repeated sentences, fragments, unfinished sentences and sentences with numbers
    nobody approved or words that are not words."""
    if draft.has("markup"):
        draft.headline, draft.body = _strip_markup(draft.headline), _strip_markup(draft.body)
        draft.repaired("markup")
    if draft.has("repeated_sentence"):
        unique: dict[str, str] = {}
        for s in sentences(draft.body):
            unique.setdefault(s.lower(), s)
        draft.body = " ".join(unique.values())
        draft.repaired("repeated_sentence")
    if draft.has("sentence_fragment"):
        whole = [s for s in sentences(draft.body) if s[:1].isupper()]
        if whole:
            draft.body = " ".join(whole)
            draft.repaired("sentence_fragment")
    if draft.has("unfinished_sentence"):
        finished = [s for s in sentences(draft.body) if s.endswith((".", "!", "?"))]
        if finished:
            draft.body = " ".join(finished)
            draft.repaired("unfinished_sentence")
    numbers = [c.split(":", 1)[1] for c in draft.has("unsupported_number:")]
    if numbers:
        pattern = re.compile(r"(?<![\d.,])(?:" + "|".join(map(re.escape, numbers)) + r")(?![\d])")
        kept = [s for s in sentences(draft.body) if not pattern.search(s)]
        clauses = [
            c for c in re.split(r",\s*", draft.headline) if c.strip() and not pattern.search(c)
        ]
        if kept and clauses:
            draft.headline, draft.body = ", ".join(clauses), " ".join(kept)
            draft.repaired("unsupported_number:")
    _fix_unknown_words(draft, brand, category, product)


def _fix_unknown_words(
    draft: _Draft, brand: BrandGuide | None, category: str | None, product: str | None
) -> None:
    """Two words written as one are parted where the parted pair is in a phrase the copy may
    use ("madefor chips" -> "made for chips": "made for" is in benefits and hooks; 45 of the
    102 flags of `rmn bench language`, seed 0, before Alpha stopped banning "made"); a
    headline cut at its limit loses its last clause ("A daily probiotic, part of a i" -> "A
    daily probiotic"); then body sentences with a word that is still not one ("Crumbars.")
    are dropped, when the headline has none and a sentence is left. A headline that is one
    clause with such a word needs a new generation."""
    _trim_headline(draft)
    unknown = [c.split(":", 1)[1] for c in draft.has("unknown_word:")]
    if not unknown:
        return
    known = known_texts(brand, category, product)
    phrases = " | ".join([*copy_phrases(), *(k.lower() for k in known)])
    for word in list(unknown):
        if (parted := _parted(word, phrases)) is not None:
            pattern = re.compile(rf"\b{re.escape(word)}\b")
            draft.headline = pattern.sub(parted, draft.headline)
            draft.body = pattern.sub(parted, draft.body)
            draft.repaired(f"unknown_word:{word}")
            unknown.remove(word)
    if not unknown:
        return
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, unknown)) + r")\b")
    kept = [s for s in sentences(draft.body) if not pattern.search(s)]
    if kept and not pattern.search(draft.headline):
        draft.body = " ".join(kept)
        draft.repaired("unknown_word:")


def _trim_headline(draft: _Draft) -> None:
    """The headline without its last clause (after ", ", " - " or "; ") when that clause was
    cut short: a word that is not one, a phrase cut inside a word, or a dangling last word."""
    cut = draft.has("cut_phrase:") + draft.has("dangling_headline")
    unknown = [c.split(":", 1)[1] for c in draft.has("unknown_word:")]
    parts = re.split(r"(, | - |; )", draft.headline)
    if len(parts) < 3:
        return
    last = parts[-1]
    if not (cut or any(re.search(rf"\b{re.escape(w)}\b", last) for w in unknown)):
        return
    if any(re.search(rf"\b{re.escape(w)}\b", "".join(parts[:-2])) for w in unknown):
        return
    draft.headline = "".join(parts[:-2])
    for code in [*cut, *(f"unknown_word:{w}" for w in unknown if w not in draft.headline)]:
        draft.repaired(code)


def _parted(word: str, phrases: str) -> str | None:
    """`word` as two words ("madefor" -> "made for") when that pair is in `phrases`."""
    low = word.lower()
    for cut in range(2, len(low) - 1):
        if re.search(rf"\b{low[:cut]} {low[cut:]}\b", phrases):
            return f"{word[:cut]} {word[cut:]}"
    return None


def _fix_style(draft: _Draft, policy: RetailerPolicy, brand: BrandGuide | None) -> None:
    """Emoji, extra exclamation marks, shouted words and the brand's banned words."""
    creative = policy.creative
    if draft.has("emoji"):
        draft.headline, draft.body = _strip_emoji(draft.headline), _strip_emoji(draft.body)
        draft.repaired("emoji")
    if draft.has("too_many_exclamation_marks"):
        draft.headline, draft.body = _limit_exclamations(
            draft.headline, draft.body, creative.max_exclamation_marks
        )
        draft.repaired("too_many_exclamation_marks")
    if draft.has("all_caps"):
        allowed = {a.upper() for a in creative.allowed_acronyms}
        draft.headline = _unshout(draft.headline, allowed)
        draft.body = _unshout(draft.body, allowed)
        draft.repaired("all_caps")
    banned = draft.has("brand_banned:")
    if banned and brand is not None:
        for code in banned:
            word = code.split(":", 1)[1]
            prefer = _preferred(brand, word)
            if prefer is not None:
                draft.headline = replace_word(draft.headline, word, prefer)
                draft.body = replace_word(draft.body, word, prefer)
                draft.fixed.append(code)


def _fix_price(draft: _Draft) -> None:
    """Discount wording the retailer does not allow, and its banned price phrases."""
    price = (
        draft.has("price_claim_not_allowed")
        + draft.has("discount_too_deep")
        + draft.has("price_phrase:")
    )
    if price:
        phrases = [c.split(":", 1)[1] for c in price if c.startswith("price_phrase:")]
        draft.headline = _drop_discount(draft.headline, phrases, sentence=False)
        draft.body = _drop_discount(draft.body, phrases, sentence=True)
        draft.fixed += price


def _fix_length_and_case(
    draft: _Draft, policy: RetailerPolicy, placement: str, brand: BrandGuide | None
) -> None:
    """Over-long text trimmed at a word (the body at a sentence), then the headline's case."""
    creative = policy.creative
    limits = creative.limits(placement)
    max_head, max_body = limits.max_headline_chars, limits.max_body_chars
    if len(draft.headline) > max_head:
        draft.headline = _trim_words(draft.headline, max_head)
        draft.repaired("headline_too_long")
    if len(draft.body) > max_body:
        draft.body = _trim_body(draft.body, max_body)
        draft.repaired("body_too_long")
    keep = frozenset(brand.name.split()[:1]) if brand is not None else frozenset()
    if not capitalization_ok(draft.headline, creative.capitalization):
        draft.headline = apply_case(draft.headline, creative.capitalization, keep)
        draft.repaired("capitalization")


# --- text edits -----------------------------------------------------------------------------


def _strip_markup(text: str) -> str:
    return re.sub(r"\s{2,}", " ", MARKUP.sub(" ", text)).strip()


def _strip_emoji(text: str) -> str:
    return re.sub(r"\s{2,}", " ", EMOJI.sub("", text)).strip()


def _limit_exclamations(headline: str, body: str, allowed: int) -> tuple[str, str]:
    left = allowed

    def keep(match: re.Match[str]) -> str:
        nonlocal left
        if left > 0:
            left -= 1
            return "!"
        return "."

    return re.sub(r"!", keep, headline).rstrip("."), re.sub(r"!", keep, body)


def _unshout(text: str, allowed: set[str]) -> str:
    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if is_acronym(word) and word not in allowed:
            return word[:1] + word[1:].lower()
        return word

    return WORD.sub(fix, text)


def _preferred(brand: BrandGuide, word: str) -> str | None:
    for avoid, prefer in brand.preferred_terms.items():
        if avoid.lower() == word.lower():
            return prefer
    return None


def _drop_discount(text: str, phrases: list[str], sentence: bool) -> str:
    """The text without its percentage-off claims and banned price phrases: whole sentences in
    a body, the phrase alone in a headline."""
    patterns = [_DISCOUNT] + [
        re.compile(rf"(?<!\w){re.escape(p)}(?!\w)", re.IGNORECASE) for p in phrases
    ]
    if sentence:
        return " ".join(s for s in sentences(text) if not any(p.search(s) for p in patterns))
    for p in patterns:
        text = p.sub("", text)
    return re.sub(r"\s{2,}", " ", text).strip(" ,;:-")


def _trim_words(text: str, limit: int) -> str:
    """`text` cut at the last clause (comma, colon, dash) that fits, else at the last word that
    fits, without a dangling small word or comma."""
    clauses = re.split(r"(?<=[,;:])\s+|\s+[-\u2013\u2014]\s+", text)
    kept = ""
    for clause in clauses:
        longer = f"{kept} {clause}".strip()
        if len(longer.rstrip(",;:")) > limit:
            break
        kept = longer
    if kept:
        return kept.rstrip(",;:")
    words = text.split()
    out: list[str] = []
    for w in words:
        if len(" ".join([*out, w])) > limit:
            break
        out.append(w)
    while out and out[-1].lower().strip(",;:-") in _DANGLING:
        out.pop()
    return " ".join(out).rstrip(",;:-")


def _trim_body(text: str, limit: int) -> str:
    """Whole sentences that fit, else the first sentence cut at a word and closed."""
    kept = ""
    for s in sentences(text):
        candidate = f"{kept} {s}".strip()
        if len(candidate) > limit:
            break
        kept = candidate
    if kept:
        return kept
    cut = _trim_words(text, limit - 1)
    return f"{cut}." if cut and not cut.endswith((".", "!", "?")) else cut
