"""Ad copy for a plan: written by the chat model, checked against the retailer's rules and the
brand guide, fixed by rule where a rule can fix it, regenerated where it cannot, and replaced by
template copy from the brand's approved claims when the attempts run out.

    results = write_copy_many(llm, [CopyRequest(retailer_id="alpha", brand_id="acme"), ...])
    results[0].variants[0].path  # llm | repaired | fixed | fallback

Only compliant copy is returned. The model writes the headline and the body; disclaimers are
legal text, so they are attached from the policy (`required_disclaimers`), never written by the
model. Every generation of one round (all requests, all variants) goes to the runtime as one
`generate_many` call, which batches rows that share an adapter set.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.prompts import schema_instruction
from adapters.registry import KINDS, AdapterSet, Kind
from adapters.training.copywriter import (
    BENEFITS,
    CALLS_TO_ACTION,
    POLICY_CATEGORY,
    apply_case,
)
from adapters.training.datasets import creative_request
from tools.errors import RMNError
from tools.plan import CopyVariant
from tools.policy import BrandGuide, RetailerPolicy
from tools.policy.compliance import (
    AdCopy,
    brand_guide,
    capitalization_ok,
    check_copy,
    is_acronym,
    required_disclaimers,
    retailer_policy,
)
from tools.world.catalog import BRANDS, CATEGORIES, RETAILERS

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel
    from adapters.runtime import Generation

CopyPath = Literal["llm", "repaired", "fixed", "fallback"]

# The adapter kinds copy is written with, when the registry has them: the retailer's and the
# creative task's, not the brand's. Measured with the bundled adapters on SmolLM2-135M, one
# round, two variants per product: composing brand/<id> with task/creative wrote incoherent
# copy (invented numbers, loops; 0 of 6 usable on three briefs), retailer/alpha +
# task/creative wrote usable copy for 6 of 8 variants on four products, task/creative alone
# for 3 of 8. Pass ("retailer", "brand", "task") to compose every adapter the registry has.
DEFAULT_KINDS: tuple[Kind, ...] = ("retailer", "task")
CREATIVE_TASK = "creative"
# A token of English copy is about 4 characters; 3 leaves room for names and punctuation. The
# constant covers the JSON keys and quotes.
CHARS_PER_TOKEN = 3
JSON_TOKENS = 16
# The grammar lets a field run this far past its limit: a model cut off at the exact limit ends
# mid-word ("Kettle Chps"), while one allowed to finish is trimmed at a word by `fix_copy`.
SLACK_CHARS = 20
FIX_PASSES = 3

_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U0000fe0f\U0000200d]"
)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_DISCOUNT = re.compile(
    r"[,;:\-\u2013\u2014]?\s*(?:now\s+|save\s+|get\s+)?(?:up to\s+)?"
    r"\d+(?:\.\d+)?\s*(?:%|percent)\s*off\b",
    re.IGNORECASE,
)
DEFAULT_BENEFITS: tuple[str, ...] = ("made for every day", "an everyday favorite")
# Markup and template debris a small model leaves in copy: tags, entities, braces, URLs.
_MARKUP = re.compile(r"<[^>]*>?|&#?\w+;|&(?=\w)|[{}\[\]|\\]|https?://\S*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Words that may recur in short copy without it being a loop.
_COMMON = frozenset(
    {"and", "for", "the", "with", "you", "your", "our", "its", "this", "that", "are", "from"}
)
REPEAT_LIMIT = 3  # a content word this many times in a headline and body is a loop
UNIQUE_WORDS = 0.6  # below this share of distinct words, copy is a loop
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'&-]*")
# Words a trimmed headline should not end on.
_DANGLING = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "of", "on", "or", "the"}
    | {"to", "with", "your", "our", "now", "is", "are"}
)


class CreativeError(RMNError):
    """A copy request that cannot be served as written."""

    kind = "creative_error"


class CopyRequest(BaseModel):
    """Copy for one retailer and brand. `placement` defaults to the retailer's tightest
    placement for the product's category (copy within its limits is within every other's);
    `category` (a policy or catalog category) defaults to one read from the product name or,
    without one, the brand's first category the retailer carries; `tenant` defaults to the
    brand's owner."""

    model_config = ConfigDict(extra="forbid")

    retailer_id: str
    brand_id: str
    gtin: str | None = None
    product_name: str | None = None
    variants: int = Field(2, ge=1, le=6)
    max_attempts: int = Field(3, ge=1, le=6)
    placement: str | None = None
    category: str | None = None
    tenant: str | None = None


class CopyResult(BaseModel):
    variants: list[CopyVariant]
    attempts: int = Field(description="generation rounds run for this request")
    failures: list[str] = Field(description="copy that was dropped, and why")
    placement: str = Field("", description="the placement whose rules the copy was checked on")
    category: str = Field("", description="the policy category it was checked for")


@dataclass
class _Context:
    """One request resolved against the policy corpus and the adapter registry."""

    request: CopyRequest
    policy: RetailerPolicy
    guide: BrandGuide
    placement: str
    category: str
    product: str
    tenant: str
    adapters: AdapterSet = field(default_factory=AdapterSet)
    blocked: str | None = None  # why no copy can run here at all

    @property
    def limits(self) -> tuple[int, int]:
        spec = self.policy.creative.limits(self.placement)
        return spec.max_headline_chars, spec.max_body_chars

    @property
    def schema(self) -> dict[str, Any]:
        head, body = self.limits
        return {
            "type": "object",
            "properties": {
                "headline": {"type": "string", "minLength": 1, "maxLength": head + SLACK_CHARS},
                "body": {"type": "string", "minLength": 1, "maxLength": body + SLACK_CHARS},
            },
            "required": ["headline", "body"],
        }

    @property
    def max_new_tokens(self) -> int:
        return math.ceil((sum(self.limits) + 2 * SLACK_CHARS) / CHARS_PER_TOKEN) + JSON_TOKENS

    def check(self, copy: AdCopy) -> list[str]:
        return review_copy(
            copy, self.policy, self.placement, self.category, self.guide, self.product
        )

    def angles(self) -> list[str]:
        """Prompt lines that make variants differ (greedy decoding repeats itself): the
        brand's tone words and the approved claims that may run here."""
        claims = [
            f"lead with the claim: {c.text}"
            for c in self.guide.claims_for(self.category)
            if not self.policy.prohibited.violations(c.text, self.category)
        ]
        tones = [f"sound {t}" for t in self.guide.tone]
        mixed = [a for pair in zip(tones, claims, strict=False) for a in pair]
        longer = tones if len(tones) > len(claims) else claims
        return mixed + longer[len(mixed) // 2 :]


@dataclass
class _Slot:
    """One variant being written: its conversation so far and what became of it."""

    ctx: _Context
    index: int
    messages: list[dict[str, str]]
    generations: int = 0
    variant: CopyVariant | None = None
    failures: list[str] = field(default_factory=list)


# --- public API -----------------------------------------------------------------------------


def write_copy(
    llm: RMNChatModel | None,
    request: CopyRequest,
    kinds: tuple[Kind, ...] = DEFAULT_KINDS,
) -> CopyResult:
    """Compliant copy variants for one request (see `write_copy_many`)."""
    return write_copy_many(llm, [request], kinds)[0]


def write_copy_many(
    llm: RMNChatModel | None,
    requests: list[CopyRequest],
    kinds: tuple[Kind, ...] = DEFAULT_KINDS,
) -> list[CopyResult]:
    """Compliant copy for each request, in order. Each round sends every unfinished variant of
    every request to the model at once; a variant whose copy breaks a rule that no rule can
    fix is asked again with the broken rules named, up to the request's `max_attempts`; then
    template copy from the brand's approved claims takes its place. `llm=None` writes template
    copy only. `kinds` are the adapter kinds to bind when the registry has them."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise CreativeError(f"unknown adapter kind(s) {unknown}: use {', '.join(KINDS)}")
    contexts = [_resolve(r) for r in requests]
    slots: list[list[_Slot]] = []
    for ctx in contexts:
        if llm is not None and ctx.blocked is None:
            ctx.adapters = _available_adapters(llm, ctx, kinds)
        prompts = _prompts(ctx)
        slots.append([_Slot(ctx, i, prompts[i]) for i in range(ctx.request.variants)])
    rounds = [0] * len(contexts)
    if llm is not None:
        _generate_rounds(llm, contexts, slots, rounds)
    return [_result(ctx, s, n) for ctx, s, n in zip(contexts, slots, rounds, strict=True)]


def quality_issues(copy: AdCopy, supported: str = "") -> list[str]:
    """What makes copy unfit to show beyond the retailer's rules: `markup` (tags, entities,
    braces, URLs), `unfinished_sentence` (a body that stops mid-sentence),
    `repeated_sentence`, `sentence_fragment` (a sentence that starts in lower case, the tail of
    a repetition), `repetitive` (a loop of the same words) and `unsupported_number:<n>` (a
    number that is not in `supported`: the product name and the approved claims; a model that
    writes "now 25 years" makes a claim nobody approved)."""
    found = []
    if _MARKUP.search(copy.headline) or _MARKUP.search(copy.body):
        found.append("markup")
    body = copy.body.strip()
    if body and not body.endswith((".", "!", "?")):
        found.append("unfinished_sentence")
    sentences = [s.strip() for s in _SENTENCE.findall(body) if s.strip()]
    if len({s.lower() for s in sentences}) < len(sentences):
        found.append("repeated_sentence")
    if any(s[:1].islower() for s in sentences):
        found.append("sentence_fragment")
    text = f"{copy.headline} {copy.body}"
    words = [w.lower() for w in _WORD.findall(text)]
    content = Counter(w for w in words if len(w) >= 3 and w not in _COMMON)
    looping = bool(content) and content.most_common(1)[0][1] >= REPEAT_LIMIT
    if looping or (len(words) >= 6 and len(set(words)) < UNIQUE_WORDS * len(words)):
        found.append("repetitive")
    allowed = set(_NUMBER.findall(supported))
    found += [f"unsupported_number:{n}" for n in dict.fromkeys(_NUMBER.findall(text))
              if n not in allowed]  # fmt: skip
    return found


def review_copy(
    copy: AdCopy,
    policy: RetailerPolicy,
    placement: str,
    category: str | None = None,
    brand: BrandGuide | None = None,
    product: str | None = None,
) -> list[str]:
    """`check_copy` (the retailer's rules and the brand guide) plus `quality_issues`, with the
    product name, the brand's name and its approved claims as the supported text."""
    found = check_copy(copy.model_dump(), policy, placement, category, brand)
    return found + quality_issues(copy, _supported(brand, category, product))


def _supported(brand: BrandGuide | None, category: str | None, product: str | None) -> str:
    parts = [product or ""]
    if brand is not None:
        parts.append(brand.name)
        claims = brand.claims_for(category) if category else brand.allowed_claims
        parts += [c.text for c in claims]
    return " ".join(parts)


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


def _fix_once(
    copy: AdCopy,
    policy: RetailerPolicy,
    placement: str,
    category: str | None,
    brand: BrandGuide | None,
    product: str | None,
) -> tuple[AdCopy, list[str]]:
    found = review_copy(copy, policy, placement, category, brand, product)
    headline, body = copy.headline, copy.body
    creative = policy.creative
    fixed: list[str] = []

    def has(prefix: str) -> list[str]:
        return [v for v in found if v == prefix or v.startswith(prefix)]

    if has("markup"):
        headline, body = _strip_markup(headline), _strip_markup(body)
        fixed += has("markup")
    if has("repeated_sentence"):
        unique: dict[str, str] = {}
        for sentence in _SENTENCE.findall(body):
            unique.setdefault(sentence.strip().lower(), sentence.strip())
        body = " ".join(s for s in unique.values() if s)
        fixed += has("repeated_sentence")
    if has("sentence_fragment"):
        whole = [s.strip() for s in _SENTENCE.findall(body) if s.strip()[:1].isupper()]
        if whole:
            body = " ".join(whole)
            fixed += has("sentence_fragment")
    if has("unfinished_sentence"):
        finished = [
            s.strip() for s in _SENTENCE.findall(body) if s.strip().endswith((".", "!", "?"))
        ]
        if finished:
            body = " ".join(finished)
            fixed += has("unfinished_sentence")
    numbers = [c.split(":", 1)[1] for c in has("unsupported_number:")]
    if numbers:
        pattern = re.compile(r"(?<![\d.,])(?:" + "|".join(map(re.escape, numbers)) + r")(?![\d])")
        kept = [s.strip() for s in _SENTENCE.findall(body) if s.strip() and not pattern.search(s)]
        clauses = [c for c in re.split(r",\s*", headline) if c.strip() and not pattern.search(c)]
        if kept and clauses:
            headline, body = ", ".join(clauses), " ".join(kept)
            fixed += has("unsupported_number:")
    if has("emoji"):
        headline, body = _strip_emoji(headline), _strip_emoji(body)
        fixed += has("emoji")
    if has("too_many_exclamation_marks"):
        headline, body = _limit_exclamations(headline, body, creative.max_exclamation_marks)
        fixed += has("too_many_exclamation_marks")
    if has("all_caps"):
        allowed = {a.upper() for a in creative.allowed_acronyms}
        headline, body = _unshout(headline, allowed), _unshout(body, allowed)
        fixed += has("all_caps")
    banned = has("brand_banned:")
    if banned and brand is not None:
        for code in banned:
            word = code.split(":", 1)[1]
            prefer = _preferred(brand, word)
            if prefer is not None:
                headline, body = (
                    _replace_word(headline, word, prefer),
                    _replace_word(body, word, prefer),
                )
                fixed.append(code)
    price = has("price_claim_not_allowed") + has("discount_too_deep") + has("price_phrase:")
    if price:
        phrases = [c.split(":", 1)[1] for c in price if c.startswith("price_phrase:")]
        headline = _drop_discount(headline, phrases, sentence=False)
        body = _drop_discount(body, phrases, sentence=True)
        fixed += price
    limits = creative.limits(placement)
    max_head, max_body = limits.max_headline_chars, limits.max_body_chars
    if len(headline) > max_head:
        headline = _trim_words(headline, max_head)
        fixed += has("headline_too_long")
    if len(body) > max_body:
        body = _trim_body(body, max_body)
        fixed += has("body_too_long")
    keep = frozenset(brand.name.split()[:1]) if brand is not None else frozenset()
    if not capitalization_ok(headline, creative.capitalization):
        headline = apply_case(headline, creative.capitalization, keep)
        fixed += has("capitalization")
    headline, body = headline.strip(), body.strip()
    disclaimers = required_disclaimers(f"{headline} {body}", policy, placement, category, brand)
    fixed += has("missing_disclaimer:")
    # Disclaimers beyond the required ones are legal text nobody asked for.
    if any(d not in disclaimers for d in copy.disclaimers):
        fixed.append("extra_disclaimer")
    out = AdCopy(headline=headline, body=body, disclaimers=disclaimers)
    if out == copy:
        return copy, []
    return out, list(dict.fromkeys(fixed))


def fallback_copy(
    policy: RetailerPolicy,
    placement: str,
    category: str,
    brand: BrandGuide,
    product: str,
    index: int = 0,
) -> AdCopy | None:
    """The `index`-th template copy (see `fallback_candidates`), or None when there are not
    that many."""
    found = fallback_candidates(policy, placement, category, brand, product)
    return found[index] if 0 <= index < len(found) else None


def fallback_candidates(
    policy: RetailerPolicy,
    placement: str,
    category: str,
    brand: BrandGuide,
    product: str,
) -> list[AdCopy]:
    """Every distinct template copy that passes `review_copy`, built from the brand's approved
    claims, the product name, the category's phrase bank and plain calls to action. Copy that
    passes as written comes before copy the rules had to fix (a shouted acronym lower-cased
    reads badly); consecutive candidates lead with different headlines, so variants differ."""
    limits = policy.creative.limits(placement)
    claims = [
        c.text
        for c in brand.claims_for(category)
        if not policy.prohibited.violations(c.text, category) and not brand.banned_in(c.text)
    ]
    hooks = list(BENEFITS.get(category, DEFAULT_BENEFITS))
    keep = frozenset(brand.name.split())
    heads = [h for h in dict.fromkeys([*claims, product]) if len(h) <= limits.max_headline_chars]
    rounds: list[list[AdCopy]] = []
    for h, head in enumerate(heads):
        leads: list[str | None] = [c for c in claims if c.lower() not in head.lower()] or [None]
        for i, (lead, hook) in enumerate(itertools.product(leads, hooks)):
            sentences = [_sentence(lead)] if lead else []
            sentences += [_sentence(hook), CALLS_TO_ACTION[(h + i) % len(CALLS_TO_ACTION)]]
            body = ""
            for sentence in sentences:
                longer = f"{body} {sentence}".strip()
                if len(longer) <= limits.max_body_chars:
                    body = longer
            for avoid, prefer in brand.preferred_terms.items():
                body = _replace_word(body, avoid, prefer)
            if body:
                headline = apply_case(head, policy.creative.capitalization, keep)
                if i >= len(rounds):
                    rounds.append([])
                rounds[i].append(AdCopy(headline=headline, body=body))
    ordered = [c for r in rounds for c in r]  # round-robin over headlines
    clean, fixed = [], []
    for copy in ordered:
        text = f"{copy.headline} {copy.body}"
        copy.disclaimers = required_disclaimers(text, policy, placement, category, brand)
        if not review_copy(copy, policy, placement, category, brand, product):
            clean.append(copy)
            continue
        repaired, _ = fix_copy(copy, policy, placement, category, brand, product)
        if not review_copy(repaired, policy, placement, category, brand, product):
            fixed.append(repaired)
    unique: dict[tuple[str, str], AdCopy] = {}
    for copy in clean + fixed:
        unique.setdefault((copy.headline.lower(), copy.body.lower()), copy)
    return list(unique.values())


# --- resolving a request ----------------------------------------------------------------------


def _resolve(request: CopyRequest) -> _Context:
    policy = retailer_policy(request.retailer_id)
    guide = brand_guide(request.brand_id)
    category = _category(request, guide)
    placement = request.placement or _tightest_placement(policy, category)
    product = request.product_name or guide.name
    ctx = _Context(
        request,
        policy,
        guide,
        placement or policy.placements[0].value,
        category,
        product,
        request.tenant or guide.owner_tenant,
    )
    if request.placement is not None:
        policy.creative.limits(request.placement)  # raises for a placement not sold there
    if placement is None or not policy.bidding.allows(category, ctx.placement):
        where = f"on {ctx.placement}" if request.placement else "on any placement"
        ctx.blocked = (
            f"{category.replace('_', ' ')} products cannot be advertised at {policy.name} {where}"
        )
    return ctx


def _category(request: CopyRequest, guide: BrandGuide) -> str:
    policy_categories = set(POLICY_CATEGORY.values())
    if request.category is not None:
        if request.category in POLICY_CATEGORY:
            return POLICY_CATEGORY[request.category]
        if request.category in policy_categories:
            return request.category
        raise CreativeError(
            f"unknown category {request.category!r}; use one of "
            f"{', '.join(sorted(policy_categories | set(POLICY_CATEGORY)))}",
            category=request.category,
        )
    catalog = list(BRANDS[request.brand_id].categories) if request.brand_id in BRANDS else []
    if request.product_name:
        name = request.product_name.lower()
        for cat in catalog:
            if any(noun.lower() in name for noun in CATEGORIES[cat].nouns):
                return POLICY_CATEGORY[cat]
    carried = RETAILERS[request.retailer_id].categories if request.retailer_id in RETAILERS else ()
    for cat in catalog:
        if cat in carried:
            return POLICY_CATEGORY[cat]
    if catalog:
        return POLICY_CATEGORY[catalog[0]]
    return guide.categories[0]


def _tightest_placement(policy: RetailerPolicy, category: str) -> str | None:
    allowed = [p for p in policy.placements if policy.bidding.allows(category, p)]
    if not allowed:
        return None
    spec = policy.creative.limits
    best = min(allowed, key=lambda p: (spec(p).max_headline_chars, spec(p).max_body_chars))
    return best.value


def _available_adapters(llm: RMNChatModel, ctx: _Context, kinds: tuple[Kind, ...]) -> AdapterSet:
    """The adapters of `kinds` the registry has for this retailer and brand, checked for the
    tenant by binding them (a brand adapter of another tenant is refused, not skipped)."""
    have = {(e.metadata.kind, e.metadata.id) for e in llm.runtime.registry.entries()}
    wanted = {
        "retailer": ctx.request.retailer_id,
        "brand": ctx.request.brand_id,
        "task": CREATIVE_TASK,
    }
    picked = {k: wanted[k] if k in kinds and (k, wanted[k]) in have else None for k in KINDS}
    bound = llm.bind_adapters(**picked, tenant=ctx.tenant)
    return bound.adapters


def _prompts(ctx: _Context) -> list[list[dict[str, str]]]:
    """One conversation per variant: the user turn the creative adapters were trained on, with
    the decode schema's line in place of AdCopy's and, after the first variant, an angle."""
    brand = ctx.guide if ctx.adapters.brand else None
    user = creative_request(ctx.policy, ctx.placement, ctx.product, ctx.category, None, brand)
    trained = schema_instruction(AdCopy.model_json_schema())
    ours = schema_instruction(ctx.schema)
    user = user.replace(trained, ours)
    angles = ctx.angles()
    out = []
    for i in range(ctx.request.variants):
        text = user
        if i > 0 and angles:
            text = user.replace(ours, f"Angle: {angles[(i - 1) % len(angles)]}\n{ours}")
        out.append([{"role": "user", "content": text}])
    return out


# --- generating -----------------------------------------------------------------------------


def _generate_rounds(
    llm: RMNChatModel, contexts: list[_Context], slots: list[list[_Slot]], rounds: list[int]
) -> None:
    from adapters.runtime import Request

    while True:
        pending = [
            (r, s)
            for r, group in enumerate(slots)
            for s in group
            if contexts[r].blocked is None
            and s.variant is None
            and rounds[r] < contexts[r].request.max_attempts
        ]
        if not pending:
            return
        for r in sorted({r for r, _ in pending}):
            rounds[r] += 1
        calls = [
            Request(s.messages, s.ctx.adapters, s.ctx.tenant, s.ctx.max_new_tokens, s.ctx.schema)
            for _, s in pending
        ]
        gens = llm.runtime.generate_many(calls)
        for (r, slot), gen in zip(pending, gens, strict=True):
            _take(slot, gen, rounds[r])
        for group in slots:
            _drop_duplicates(group)


def _take(slot: _Slot, gen: Generation, attempt: int) -> None:
    """Judge one generation: accept it (as written, repaired or fixed) or record why not and
    set up the next attempt's conversation."""
    ctx = slot.ctx
    slot.generations += 2 if gen.repaired or gen.fallback else 1
    label = f"{ctx.policy.retailer_id} variant {slot.index + 1} attempt {attempt}"
    if gen.parsed is None:
        slot.failures.append(f"{label}: no valid JSON ({gen.error})")
        # The same prompt would decode the same text: ask from a different angle.
        angles = ctx.angles() or [f"variant {attempt + 1}"]
        base = slot.messages[0]["content"]
        ours = schema_instruction(ctx.schema)
        lines = [ln for ln in base.split("\n") if not ln.startswith("Angle: ")]
        text = "\n".join(lines).replace(
            ours, f"Angle: {angles[(slot.index + attempt) % len(angles)]}\n{ours}"
        )
        slot.messages = [{"role": "user", "content": text}]
        return
    parsed = gen.parsed if isinstance(gen.parsed, dict) else dict(gen.parsed)
    raw = AdCopy(headline=str(parsed["headline"]), body=str(parsed["body"]))
    copy = _with_disclaimers(raw, ctx)
    violations = ctx.check(copy)
    path: CopyPath = "repaired" if gen.repaired else "llm"
    if violations:
        fixed, _ = fix_copy(copy, ctx.policy, ctx.placement, ctx.category, ctx.guide, ctx.product)
        remaining = ctx.check(fixed)
        if remaining:
            slot.failures.append(f"{label}: dropped ({'; '.join(remaining)})")
            slot.messages = [
                slot.messages[0],
                {"role": "assistant", "content": gen.text},
                {"role": "user", "content": _feedback(remaining, ctx)},
            ]
            return
        copy, path = fixed, "fixed"
    slot.variant = _variant(ctx, copy, path, slot.generations, gen.adapters_active)


def _drop_duplicates(group: list[_Slot]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for slot in group:
        if slot.variant is None:
            continue
        key = (slot.variant.headline.lower(), slot.variant.body.lower())
        if key in seen:
            slot.failures.append(
                f"{slot.ctx.policy.retailer_id} variant {slot.index + 1}: "
                f"dropped (same copy as variant {seen[key] + 1})"
            )
            slot.messages = [
                slot.messages[0],
                {
                    "role": "assistant",
                    "content": slot.variant.model_dump_json(include={"headline", "body"}),
                },
                {"role": "user", "content": "Write a different headline and body than that one."},
            ]
            slot.variant = None
        else:
            seen[key] = slot.index


def _result(ctx: _Context, slots: list[_Slot], rounds: int) -> CopyResult:
    failures = [f for s in slots for f in s.failures]
    if ctx.blocked is not None:
        return CopyResult(
            variants=[],
            attempts=0,
            failures=[ctx.blocked],
            placement=ctx.placement,
            category=ctx.category,
        )
    variants: list[CopyVariant] = []
    taken = {(s.variant.headline.lower(), s.variant.body.lower()) for s in slots if s.variant}

    def templates() -> Iterator[AdCopy]:
        # Built only when a variant needs one.
        found = fallback_candidates(ctx.policy, ctx.placement, ctx.category, ctx.guide, ctx.product)
        yield from (c for c in found if (c.headline.lower(), c.body.lower()) not in taken)

    spare = templates()
    for slot in slots:
        if slot.variant is not None:
            variants.append(slot.variant)
            continue
        copy = next(spare, None)
        if copy is None:
            failures.append(
                f"{ctx.policy.retailer_id} variant {slot.index + 1}: no template copy passes "
                f"the rules for {ctx.product} on {ctx.placement}"
            )
            continue
        variants.append(_variant(ctx, copy, "fallback", max(slot.generations, 1), []))
    return CopyResult(
        variants=variants,
        attempts=rounds,
        failures=failures,
        placement=ctx.placement,
        category=ctx.category,
    )


def _variant(
    ctx: _Context, copy: AdCopy, path: CopyPath, generations: int, adapters: list[str]
) -> CopyVariant:
    return CopyVariant(
        retailer_id=ctx.policy.retailer_id,
        gtin=ctx.request.gtin,
        headline=copy.headline,
        body=copy.body,
        disclaimer="\n".join(copy.disclaimers) or None,  # one line per disclaimer
        compliant=not ctx.check(copy),
        violations=[],
        attempts=max(generations, 1),
        adapters=list(adapters),
        path=path,
    )


def _with_disclaimers(copy: AdCopy, ctx: _Context) -> AdCopy:
    text = f"{copy.headline} {copy.body}"
    needed = required_disclaimers(text, ctx.policy, ctx.placement, ctx.category, ctx.guide)
    return copy.model_copy(update={"disclaimers": needed})


def _feedback(violations: list[str], ctx: _Context) -> str:
    head, body = ctx.limits
    said = {
        "headline_too_long": f"the headline must be at most {head} characters",
        "body_too_long": f"the body must be at most {body} characters",
        "empty_field": "the headline and the body must not be empty",
        "capitalization": f"the headline must be in {ctx.policy.creative.capitalization.value}",
        "emoji": "no emoji",
        "all_caps": "no words in all capitals",
        "too_many_exclamation_marks": "fewer exclamation marks",
        "price_claim_not_allowed": "no price or discount claims",
        "discount_too_deep": "no discount that large",
    }
    parts = []
    for v in violations:
        code, _, arg = v.partition(":")
        if v in said:
            parts.append(said[v])
        elif code in ("prohibited", "brand_banned", "price_phrase"):
            parts.append(f'do not say "{arg}"')
        else:
            parts.append(v.replace("_", " "))
    return "That copy breaks the rules: " + "; ".join(dict.fromkeys(parts)) + ". Write it again."


# --- rule fixes -----------------------------------------------------------------------------


def _strip_markup(text: str) -> str:
    return re.sub(r"\s{2,}", " ", _MARKUP.sub(" ", text)).strip()


def _strip_emoji(text: str) -> str:
    return re.sub(r"\s{2,}", " ", _EMOJI.sub("", text)).strip()


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

    return _WORD.sub(fix, text)


def _preferred(brand: BrandGuide, word: str) -> str | None:
    for avoid, prefer in brand.preferred_terms.items():
        if avoid.lower() == word.lower():
            return prefer
    return None


def _replace_word(text: str, word: str, replacement: str) -> str:
    return re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", replacement, text, flags=re.IGNORECASE)


def _drop_discount(text: str, phrases: list[str], sentence: bool) -> str:
    """The text without its percentage-off claims and banned price phrases: whole sentences in
    a body, the phrase alone in a headline."""
    patterns = [_DISCOUNT] + [
        re.compile(rf"(?<!\w){re.escape(p)}(?!\w)", re.IGNORECASE) for p in phrases
    ]
    if sentence:
        kept = [
            s.strip()
            for s in _SENTENCE.findall(text)
            if s.strip() and not any(p.search(s) for p in patterns)
        ]
        return " ".join(kept)
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
    for s in _SENTENCE.findall(text):
        candidate = f"{kept} {s.strip()}".strip()
        if len(candidate) > limit:
            break
        kept = candidate
    if kept:
        return kept
    cut = _trim_words(text, limit - 1)
    return f"{cut}." if cut and not cut.endswith((".", "!", "?")) else cut


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."
