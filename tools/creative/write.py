"""Ad copy for a plan: written by the chat model under a grammar that carries the retailer's and
brand's rules (`grammar`), checked against them (`review`), asked again from the next angle
where it broke one, with what it wrote banned in the re-ask's grammar (`avoid`); copy a rule
could fix (`fix`) is kept in reserve for when the attempts run out, and template copy from the
product's benefits and approved claims takes the place of the rest (`fallback`).

    results = write_copy_many(llm, [CopyRequest(retailer_id="alpha", brand_id="acme"), ...])
    results[0].variants[0].path  # llm | repaired | fixed | fallback

Only compliant copy is returned. The model chooses the headline and, after the body's forced
opening, its end among the product's own phrases (`choices`); disclaimers are legal text, so
they are attached from the policy (`required_disclaimers`), never written by the model. Every
generation of one round (all requests, all variants) goes to the chat model as one
`generate_many` batch. Each variant leads with its own angle (a benefit or approved claim of
the product; variants of one product across the requests of a call take successive angles)
and is sampled with its own seed, from the request's `seed`: one seed is one reproducible
run, another seed other copy. No sentence (a headline or a body sentence) appears in two
variants of one call: a later variant that repeats one is asked for different copy.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.prompts import Message
from adapters.registry import KINDS, AdapterSet, Kind
from tools.catalog import current
from tools.creative import prompts
from tools.creative.avoid import Avoid, avoid_after, avoid_headlines
from tools.creative.binding import DEFAULT_KINDS, bound_model
from tools.creative.choices import Choices
from tools.creative.facts import CopyFacts
from tools.creative.fallback import fallback_stream
from tools.creative.fix import fix_copy
from tools.creative.grammar import CopySchema
from tools.creative.quality import sentence_key
from tools.creative.review import review_copy, sentences
from tools.errors import RMNError
from tools.plan import CopyVariant
from tools.policy import BrandGuide, RetailerPolicy
from tools.policy.categories import POLICY_CATEGORY, policy_category
from tools.policy.compliance import AdCopy, brand_guide, required_disclaimers, retailer_policy

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel
    from adapters.generation import Generation

CopyPath = Literal["llm", "repaired", "fixed", "fallback"]
Progress = Callable[[str], None]

# A token of English copy is about 4 characters; 3 leaves room for names and punctuation. The
# constant covers the JSON keys and quotes. The grammar ends the answer within the limits.
CHARS_PER_TOKEN = 3
JSON_TOKENS = 16
# Sampling: variety across variants and runs, seeded per variant. 0.7 kept the held-out copy
# as compliant as greedy decoding in `rmn bench language` while variants stopped repeating.
TEMPERATURE = 0.7


class CreativeError(RMNError):
    """A copy request that cannot be served as written."""

    kind = "creative_error"


class CopyRequest(BaseModel):
    """Copy for one retailer and brand. `placement` defaults to the retailer's tightest
    placement for the product's category (copy within its limits is within every other's);
    `category` (a policy or catalog category; the graph passes the product's, from the
    brand's products file) defaults to the brand's first category the retailer carries;
    `tenant` defaults to the brand's owner; `seed` seeds the variants' sampling."""

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
    seed: int = Field(0, ge=0)


class CopyResult(BaseModel):
    """The compliant copy for one request, and what it took to get it."""

    variants: list[CopyVariant]
    attempts: int = Field(description="generation rounds run for this request")
    failures: list[str] = Field(description="copy that was dropped, and why")
    placement: str = Field("", description="the placement whose rules the copy was checked on")
    category: str = Field("", description="the policy category it was checked for")
    sources: list[str] = Field(
        default_factory=list, description="the corpus sections the prompt drew on"
    )
    rule_breaks: list[list[list[str]]] = Field(
        default_factory=list,
        description="per variant, per generation, what the model's copy broke as written "
        "(`review_copy` codes; `invalid_json`; `repeats_other_variant`); [] where it broke "
        "nothing: why copy was fixed, asked again or replaced by template copy",
    )


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
    angle_offset: int = 0  # variants of one product across requests take successive angles
    model: RMNChatModel | None = None  # the chat model bound to the adapters and tenant

    @cached_property
    def facts(self) -> CopyFacts:
        return CopyFacts(self.policy, self.placement, self.product, self.category, self.guide)

    @cached_property
    def choices(self) -> Choices:
        return Choices(self.facts)

    @property
    def max_new_tokens(self) -> int:
        return math.ceil(sum(self.facts.limits) / CHARS_PER_TOKEN) + JSON_TOKENS

    def check(self, copy: AdCopy) -> list[str]:
        return review_copy(
            copy, self.policy, self.placement, self.category, self.guide, self.product
        )

    def angle(self, index: int) -> str:
        angles = self.facts.angles()
        return angles[(self.angle_offset + index) % len(angles)]

    def schema(self, index: int, avoid: Avoid | None = None) -> CopySchema:
        """The grammar of the variant writing angle `index`: its body opens on the benefit or
        claim of the next angle (`CopyFacts.openings`), so that it names one and variants on
        different angles never share a sentence. The next angle, not its own: the headline
        leads with its own angle (the prompt asks it to), and a body opening on the same
        phrase made the copy say it three times (`repetitive`: 13 of 29 generations of
        `rmn bench language --plans 1 --no-repro`, 4 of 20 variants went to templates)."""
        openings = self.facts.openings()
        at = self.angle_offset + index + 1
        opening = openings[at % len(openings)] if openings else ""
        avoid = avoid or Avoid()
        heads = self.choices.headlines(self.angle_offset + index, opening)
        tails = self.choices.tails(opening, avoid.sentences)
        return self.facts.opening_schema(opening, avoid.words, avoid.headlines, heads, tails)

    def bound(self, llm: RMNChatModel, kinds: tuple[Kind, ...]) -> RMNChatModel:
        """The chat model bound to the adapters this request's copy is written with."""
        request = self.request
        return bound_model(llm, request.retailer_id, request.brand_id, self.tenant, kinds)

    def seed(self, index: int, attempt: int) -> int:
        key = f"{self.request.seed}:{self.policy.retailer_id}:{self.product}:{index}:{attempt}"
        return zlib.crc32(key.encode())


@dataclass
class _Slot:
    """One variant being written: its conversation so far and what became of it."""

    ctx: _Context
    index: int
    messages: list[Message]
    generations: int = 0
    reasks: int = 0  # each re-ask takes the next angle (`angle_index`)
    accepted: int = 0  # acceptance order: an earlier variant keeps a sentence both use
    variant: CopyVariant | None = None
    failures: list[str] = field(default_factory=list)
    breaks: list[list[str]] = field(default_factory=list)  # per generation, as written
    avoid: Avoid = field(default_factory=Avoid)  # what the re-asks may not write again
    reserve: CopyVariant | None = None  # the first refused copy a rule could fix

    @property
    def angle_index(self) -> int:
        return self.index + self.reasks * self.ctx.request.variants


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
    progress: Progress | None = None,
) -> list[CopyResult]:
    """Compliant copy for each request, in order. Each round sends every unfinished variant of
    every request to the model at once; a variant whose copy breaks a rule, or repeats a
    sentence of another variant, is asked again (`_reask`), up to the request's
    `max_attempts`; then its reserve (its first copy a rule could fix) or template copy from
    the product's benefits and approved claims takes its place. `llm=None` writes template
    copy only. `kinds` are the adapter kinds to bind when the registry has them. `progress`
    hears one line per variant as it is settled."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise CreativeError(f"unknown adapter kind(s) {unknown}: use {', '.join(KINDS)}")
    contexts = [resolve(r) for r in requests]
    seen: dict[tuple[str, str], int] = {}
    slots: list[list[_Slot]] = []
    for ctx in contexts:
        # Products of one line share their benefits (and so their openings): successive
        # angles across them, as across the retailers of one product.
        key = (ctx.guide.brand_id, "\x1f".join(ctx.facts.angles()) if ctx.blocked is None
               else ctx.product)  # fmt: skip
        ctx.angle_offset = seen.get(key, 0)
        seen[key] = ctx.angle_offset + ctx.request.variants
        if llm is not None and ctx.blocked is None:
            ctx.model = ctx.bound(llm, kinds)
            ctx.adapters = ctx.model.adapters
        first = prompts.copy_prompts(
            ctx.facts, [ctx.angle(i) for i in range(ctx.request.variants)]
        ) if ctx.blocked is None else [[] for _ in range(ctx.request.variants)]  # fmt: skip
        slots.append([_Slot(ctx, i, first[i]) for i in range(ctx.request.variants)])
    rounds = [0] * len(contexts)
    total = sum(len(s) for s in slots)
    if llm is not None:
        _generate_rounds(contexts, slots, rounds, _Reporter(progress, total))
    taken: set[str] = set()
    for s in (s for group in slots for s in group if s.variant is not None):
        taken |= copy_sentences(s.variant.headline, s.variant.body)
    return [_result(ctx, s, n, taken) for ctx, s, n in zip(contexts, slots, rounds, strict=True)]


def request_digest(
    request: CopyRequest,
    kinds: tuple[Kind, ...] = DEFAULT_KINDS,
    llm: RMNChatModel | None = None,
) -> str:
    """A digest of everything the copy for `request` is written from: the product, retailer,
    placement, the first variant's prompt, variants, attempts, seed, and the adapters (with
    their versions) `llm` would bind. Equal digests mean the same copy would be written, so it
    may be reused."""
    ctx = resolve(request)
    prompt = "" if ctx.blocked else prompts.creative_request(ctx.facts, ctx.angle(0))
    adapters = ""
    if llm is not None and ctx.blocked is None:
        bound = ctx.bound(llm, kinds)
        adapters = ",".join(llm.runtime.registry.versioned_name(n) for n in bound.adapters.names)
    key = "\x1f".join(
        [
            ctx.policy.retailer_id,
            ctx.product,
            ctx.placement,
            ctx.category,
            prompt,
            str(request.variants),
            str(request.max_attempts),
            str(request.seed),
            ",".join(kinds),
            adapters,
            "none" if llm is None else llm.runtime.model_name,
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:24]


# --- resolving a request ----------------------------------------------------------------------


def resolve(request: CopyRequest) -> _Context:
    """The request resolved against the policy corpus: placement, category, product, tenant,
    or why no copy can run at all (`blocked`)."""
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
    # The brand's and retailer's categories come from the catalog in force (brand.yaml, the
    # retailer's mapping); the product's own category, when known, came in `category`.
    catalog = current()
    brand = catalog.brands.get(request.brand_id)
    listed = list(brand.categories) if brand is not None else []
    retailer = catalog.retailers.get(request.retailer_id)
    for cat in listed:
        if retailer is None or retailer.carries(cat):
            return policy_category(cat)
    if listed:
        return policy_category(listed[0])
    return guide.categories[0]


def _tightest_placement(policy: RetailerPolicy, category: str) -> str | None:
    allowed = [p for p in policy.placements if policy.bidding.allows(category, p)]
    if not allowed:
        return None
    spec = policy.creative.limits
    best = min(allowed, key=lambda p: (spec(p).max_headline_chars, spec(p).max_body_chars))
    return best.value


# --- generating -----------------------------------------------------------------------------


class _Reporter:
    """Progress lines, one per settled variant."""

    def __init__(self, say: Progress | None, total: int) -> None:
        self.say = say
        self.total = total
        self.done = 0

    def settled(self, slot: _Slot) -> None:
        self.done += 1
        if self.say is not None and slot.variant is not None:
            self.say(
                f"copy {self.done}/{self.total}: {slot.ctx.policy.retailer_id} variant "
                f"{slot.index + 1} ({slot.variant.path}, {slot.generations} generation(s))"
            )


def _generate_rounds(
    contexts: list[_Context], slots: list[list[_Slot]], rounds: list[int], report: _Reporter
) -> None:
    from adapters.chat_model import ChatCall, generate_many, generation_of

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
            _settle_reserves([s for group in slots for s in group], report)
            return
        for r in sorted({r for r, _ in pending}):
            rounds[r] += 1
        calls = []
        for r, s in pending:
            assert s.ctx.model is not None
            calls.append(
                ChatCall(
                    s.ctx.model,
                    s.messages,
                    s.ctx.schema(s.angle_index, s.avoid),
                    max_new_tokens=s.ctx.max_new_tokens,
                    temperature=TEMPERATURE,
                    seed=s.ctx.seed(s.index, rounds[r]),
                )
            )
        answers = generate_many(calls)
        for (r, slot), answer in zip(pending, answers, strict=True):
            _take(slot, generation_of(answer), rounds[r])
            slot.accepted = next(_ORDER)
        _drop_repeats([s for group in slots for s in group])
        for _, slot in pending:
            if slot.variant is not None:
                report.settled(slot)


_ORDER = itertools.count(1)


def _take(slot: _Slot, gen: Generation, attempt: int) -> None:
    """Judge one generation: accept it (as written, repaired or fixed) or record why not and
    set up the next attempt's conversation."""
    ctx = slot.ctx
    slot.generations += 2 if gen.repaired or gen.fallback else 1
    label = f"{ctx.policy.retailer_id} variant {slot.index + 1} attempt {attempt}"
    if gen.parsed is None:
        slot.breaks.append(["invalid_json"])
        slot.failures.append(f"{label}: no valid JSON ({gen.error})")
        _reask(slot, Avoid())
        return
    parsed = gen.parsed if isinstance(gen.parsed, dict) else dict(gen.parsed)
    raw = AdCopy(headline=str(parsed["headline"]), body=str(parsed["body"]))
    copy = _with_disclaimers(raw, ctx)
    violations = ctx.check(copy)
    slot.breaks.append(list(violations))
    path: CopyPath = "repaired" if gen.repaired else "llm"
    # The conversation this generation answered: what a reviewer's rating of it rates.
    prompt = gen.messages or list(slot.messages)
    if violations:
        fixed, _ = fix_copy(copy, ctx.policy, ctx.placement, ctx.category, ctx.guide, ctx.product)
        remaining = ctx.check(fixed)
        if not remaining and slot.reserve is None:
            slot.reserve = _variant(ctx, fixed, "fixed", slot.generations,
                                    _versioned(ctx, gen), prompt)  # fmt: skip
        if attempt < ctx.request.max_attempts or remaining:
            # Asked again before a rule's fix is taken: the model's own copy over a mended one.
            kept = "fixable, kept in reserve" if not remaining else "dropped"
            slot.failures.append(f"{label}: {kept} ({'; '.join(violations)})")
            _reask(slot, avoid_after(copy, violations))
            return
        copy, path = fixed, "fixed"
    slot.variant = _variant(ctx, copy, path, slot.generations, _versioned(ctx, gen), prompt)


def _reask(slot: _Slot, avoid: Avoid) -> None:
    """Set up a re-ask: the first turn again from the next angle (whose body opens on another
    benefit or claim), its grammar without what the slot's refused copy wrote (`avoid`).
    Not the refused answer with the broken rule in words: shown it, SmolLM2 copied it. In
    `rmn bench language` seeds 0-2, 12 plans whose copy went to a fix or to templates, re-asked
    with the answer and the rule, 5 variants broke a rule in all three generations; the same
    with the next angle, 2; from the next angle without the answer, none."""
    ctx = slot.ctx
    slot.avoid = slot.avoid | avoid
    slot.reasks += 1
    slot.messages = prompts.reask_prompt(ctx.facts, ctx.angle(slot.angle_index))


def _settle_reserves(all_slots: list[_Slot], report: _Reporter) -> None:
    """Each variant the model's attempts did not settle takes its reserve, the first refused
    copy a rule could fix (unless it repeats another variant's sentence: template copy then)."""
    settled = [s for s in all_slots if s.variant is None and s.reserve is not None]
    for slot in settled:
        slot.variant, slot.accepted = slot.reserve, next(_ORDER)
    _drop_repeats(all_slots)
    for slot in settled:
        if slot.variant is not None:
            report.settled(slot)


def _versioned(ctx: _Context, gen: Generation) -> list[str]:
    """The adapters a generation ran with, each with its version (`kind/id@vN`)."""
    if ctx.model is None:
        return list(gen.adapters_active)
    registry = ctx.model.runtime.registry
    return [registry.versioned_name(name) for name in gen.adapters_active]


def copy_sentences(headline: str, body: str) -> set[str]:
    """The sentence keys of a copy: its headline and each body sentence, normalized."""
    keys = {sentence_key(headline)} | {sentence_key(s) for s in sentences(body)}
    return {k for k in keys if k}


def _drop_repeats(all_slots: list[_Slot]) -> None:
    """A variant that repeats a sentence of an earlier variant of the call loses the repeated
    body sentences where what is left still passes every check (path `fixed`), else is asked
    again. Measured on the demo brief with the bundled adapters: the model ended nearly every
    body on "Add it to your cart.", so only the first variant of the plan survived and 3 of 4
    went to template fallback after three re-asks each; the re-ask did not change the closer."""
    taken: dict[str, str] = {}
    for slot in sorted(all_slots, key=lambda s: s.accepted):
        if slot.variant is None:
            continue
        keys = copy_sentences(slot.variant.headline, slot.variant.body)
        clash = sorted(k for k in keys if k in taken)
        trimmed = _without(slot, set(clash)) if clash else None
        if trimmed is not None:
            slot.breaks[-1].append("repeats_other_variant")
            slot.variant = trimmed
            keys = copy_sentences(trimmed.headline, trimmed.body)
            clash = []
        name = f"{slot.ctx.policy.retailer_id} variant {slot.index + 1}"
        if clash:
            slot.breaks[-1].append("repeats_other_variant")
            slot.failures.append(f"{name}: dropped (repeats {taken[clash[0]]}: {clash[0]!r})")
            others = [s.variant for s in all_slots if s is not slot and s.variant is not None]
            _reask(slot, avoid_headlines(slot.variant, *others))
            slot.variant = None
            continue
        for k in keys:
            taken.setdefault(k, name)


def _without(slot: _Slot, repeated: set[str]) -> CopyVariant | None:
    """The slot's variant without its body sentences in `repeated`, when its headline is not
    one of them, a sentence is left, and the shorter copy passes every check; else None."""
    variant = slot.variant
    if variant is None or sentence_key(variant.headline) in repeated:
        return None
    said = sentences(variant.body)
    kept = [s for s in said if sentence_key(s) not in repeated]
    if not kept or len(kept) == len(said):
        return None
    copy = _with_disclaimers(AdCopy(headline=variant.headline, body=" ".join(kept)), slot.ctx)
    if slot.ctx.check(copy):
        return None
    return _variant(slot.ctx, copy, "fixed", variant.attempts, variant.adapters, variant.prompt)


def _result(ctx: _Context, slots: list[_Slot], rounds: int, taken: set[str]) -> CopyResult:
    """The request's variants, template copy in place of those the model did not settle
    (none repeating a sentence in `taken`, the call's sentences so far, which it extends)."""
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
    spare = fallback_stream(ctx.facts)
    for slot in slots:
        if slot.variant is not None:
            variants.append(slot.variant)
            continue
        copy = next((c for c in spare if not copy_sentences(c.headline, c.body) & taken), None)
        if copy is None:
            failures.append(
                f"{ctx.policy.retailer_id} variant {slot.index + 1}: no template copy passes "
                f"the rules for {ctx.product} on {ctx.placement}"
            )
            continue
        taken |= copy_sentences(copy.headline, copy.body)
        variants.append(_variant(ctx, copy, "fallback", max(slot.generations, 1), []))
    return CopyResult(
        variants=variants,
        attempts=rounds,
        failures=failures,
        placement=ctx.placement,
        category=ctx.category,
        sources=ctx.facts.sources,
        rule_breaks=[s.breaks for s in slots],
    )


def _variant(
    ctx: _Context,
    copy: AdCopy,
    path: CopyPath,
    generations: int,
    adapters: list[str],
    prompt: list[Message] | None = None,
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
        prompt=prompt,
    )


def _with_disclaimers(copy: AdCopy, ctx: _Context) -> AdCopy:
    text = f"{copy.headline} {copy.body}"
    needed = required_disclaimers(text, ctx.policy, ctx.placement, ctx.category, ctx.guide)
    return copy.model_copy(update={"disclaimers": needed})
