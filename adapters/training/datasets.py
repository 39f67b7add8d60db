"""Training and evaluation data for every adapter, built from the project's own sources.

| adapter            | rows                                             | split by (source item) |
|--------------------|--------------------------------------------------|------------------------|
| retailer/<id>      | policy question + retrieved section -> fact      | corpus section         |
| task/creative      | retailer, placement, product -> AdCopy JSON      | product line           |
| brand/<id>         | the same, in the brand's voice with its claims   | product line           |
| task/planning      | brief text -> StructuredBrief fields JSON        | gold brief + template  |

Every split is seeded, and the train and eval splits never share a source item, so the eval
measures what the adapter learned to do rather than what it memorized. Rows are in TRL's
conversational prompt/completion format with the system message the adapter is served under
(`adapters.prompts`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from adapters.prompts import chat_messages
from adapters.training.copywriter import (
    Product,
    product_lines,
    products_for_line,
    reference_copy,
    retailers_carrying,
    served_copy,
)
from adapters.training.policy_qa import policy_facts
from tools.brief.dataset import (
    PLANNING_TRAIN_SETS,
    brief_examples,
    handwritten_examples,
    rejected_answer,
)
from tools.creative.compose import angles_of
from tools.creative.facts import CopyFacts
from tools.creative.products import HELD_OUT_RULE, held_out_lines
from tools.creative.prompts import creative_request
from tools.creative.review import review_copy
from tools.errors import RMNError
from tools.policy import (
    BrandGuide,
    RetailerPolicy,
    list_brands,
    list_retailers,
    load_retailer_policy,
)
from tools.policy.compliance import (
    brand_guide,
    required_disclaimers,
    retailer_policy,
)
from tools.policy.prompts import qa_request
from tools.world.catalog import BRANDS

if TYPE_CHECKING:
    from datasets import Dataset

# Brands with products in the simulated catalog: the ones copy can be written for.
CATALOG_BRANDS: tuple[str, ...] = tuple(BRANDS)

DEFAULT_SEED = 0
EVAL_FRACTION = 0.25
ROWS_PER_LINE = {"task": 8, "brand": 12}
# Held-out rows per held-out line. A brand has 4 to 6 such lines, so at 2 rows its gate scored
# 8 to 12 items and one item moved compliance by 8 to 12 points: brand/brand_x's v4 was
# refused at 5/8 against 8/8 for task/creative alone. 8 rows give each brand the gate's 30.
EVAL_ROWS_PER_LINE = {"task": 2, "brand": 8}
HELD_OUT_SPLIT = f"held-out product lines: {HELD_OUT_RULE}"


class UnknownAdapterError(RMNError):
    kind = "unknown_adapter"


@dataclass(frozen=True)
class Example:
    """One supervised example. `meta` carries what the eval needs to score an answer."""

    source: str
    user: str
    answer: str
    task: str | None  # whose system message: a task name, or None for the default one
    meta: dict[str, Any] = field(default_factory=dict)

    def prompt(self) -> list[dict[str, str]]:
        return chat_messages(self.task, self.user)

    def row(self) -> dict[str, Any]:
        """TRL's conversational prompt/completion row."""
        return {
            "prompt": self.prompt(),
            "completion": [{"role": "assistant", "content": self.answer}],
        }


@dataclass(frozen=True)
class PreferencePair:
    """A DPO pair: a good answer and a worse one to the same prompt, and what makes it worse."""

    source: str
    user: str
    chosen: str
    rejected: str
    task: str | None
    flaw: str

    def row(self) -> dict[str, Any]:
        return {
            "prompt": chat_messages(self.task, self.user),
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


@dataclass
class AdapterDataset:
    """The train and eval splits of one adapter's data, and how they were made."""

    kind: str
    adapter_id: str
    name: str
    task: str | None
    split_by: str
    seed: int
    train: list[Example]
    eval: list[Example]

    def sources(self, split: str) -> set[str]:
        return {e.source for e in getattr(self, split)}

    def rows(self, split: str = "train") -> list[dict[str, Any]]:
        return [e.row() for e in getattr(self, split)]

    def hf(self, split: str = "train") -> Dataset:
        from datasets import Dataset

        return Dataset.from_list(self.rows(split))

    def preference_pairs(self, split: str = "train") -> list[PreferencePair]:
        rng = random.Random(f"{self.seed}:pairs:{self.name}")
        pairs = [_reject(e, self, rng) for e in getattr(self, split)]
        return [p for p in pairs if p is not None]

    def preference_hf(self, split: str = "train") -> Dataset:
        from datasets import Dataset

        return Dataset.from_list([p.row() for p in self.preference_pairs(split)])

    def card(self) -> dict[str, Any]:
        """The data card recorded in the adapter's metadata."""
        return {
            "dataset": self.name,
            "rows": len(self.train) + len(self.eval),
            "splits": {"train": len(self.train), "eval": len(self.eval)},
            "split_by": self.split_by,
            "source_items": {
                "train": len(self.sources("train")),
                "eval": len(self.sources("eval")),
            },
            "seed": self.seed,
            "system_task": self.task,
            **({"held_out_rule": HELD_OUT_RULE} if self.task == "creative" else {}),
        }


def split_sources(
    sources: Iterable[str], seed: int, eval_fraction: float = EVAL_FRACTION
) -> tuple[set[str], set[str]]:
    """(train, eval) sets of source items: a seeded shuffle, at least one item in each."""
    unique = sorted(set(sources))
    if len(unique) < 2:
        raise ValueError("need at least two source items to split")
    random.Random(f"{seed}:split").shuffle(unique)
    n_eval = min(len(unique) - 1, max(1, round(len(unique) * eval_fraction)))
    return set(unique[n_eval:]), set(unique[:n_eval])


def _split(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    train_src, _ = split_sources((e.source for e in examples), seed)
    train = [e for e in examples if e.source in train_src]
    held = [e for e in examples if e.source not in train_src]
    return train, _mixed(held, seed)


def _mixed(held: list[Example], seed: int) -> list[Example]:
    """The eval split in a seeded order, so that its first items (an eval `--limit`) span
    many source items rather than a few."""
    out = list(held)
    random.Random(f"{seed}:eval-order").shuffle(out)
    return out


# --- retailer: policy questions -------------------------------------------------------------

EVAL_QUESTIONS_PER_SECTION = 4


def retailer_dataset(retailer_id: str, seed: int = DEFAULT_SEED) -> AdapterDataset:
    policy = load_retailer_policy(retailer_id)
    facts = policy_facts(policy)
    train_src, _ = split_sources((f.source for f in facts), seed)
    rng = random.Random(f"{seed}:qa:{retailer_id}")
    train: list[Example] = []
    held: dict[str, list[Example]] = {}
    for fact in facts:
        meta = {"expected": fact.answer, "rule": fact.rule, "retailer": retailer_id}
        if fact.source in train_src:
            train += [
                Example(
                    fact.source, qa_request(policy.name, fact.source, q), fact.answer, None, meta
                )
                for q in fact.questions
            ]
        else:
            q = rng.choice(fact.questions)
            held.setdefault(fact.source, []).append(
                Example(
                    fact.source, qa_request(policy.name, fact.source, q), fact.answer, None, meta
                )
            )
    # Long lists (blocked fields) would swamp the eval with one section's yes/no questions.
    eval_rows = [
        e
        for rows in held.values()
        for e in rng.sample(rows, min(len(rows), EVAL_QUESTIONS_PER_SECTION))
    ]
    rng.shuffle(train)
    rng.shuffle(eval_rows)
    return AdapterDataset(
        "retailer",
        retailer_id,
        f"rmn-policy-qa/{retailer_id}",
        None,
        "corpus section",
        seed,
        train,
        eval_rows,
    )


# --- creative and brand: ad copy ------------------------------------------------------------


def _copy_examples(
    kind: str, brand_ids: list[str], seed: int, rows_per_line: int, held_out: bool
) -> list[Example]:
    """`rows_per_line` examples per product line of the brands: the lines the held-out rule
    keeps back (`held_out=True`, the eval split) or all the others (training)."""
    policies = {r: retailer_policy(r) for r in list_retailers()}
    examples: list[Example] = []
    for brand_id in brand_ids:
        guide = brand_guide(brand_id)
        kept_back = held_out_lines(brand_id)
        for catalog_category, noun in product_lines(brand_id):
            if ((catalog_category, noun) in kept_back) != held_out:
                continue
            source = f"{brand_id}:{catalog_category}:{noun}"
            rng = random.Random(f"{seed}:copy:{kind}:{source}")
            products = products_for_line(brand_id, catalog_category, noun)
            retailers = [r for r in retailers_carrying(catalog_category) if r in policies]
            made, tries = 0, 0
            while made < rows_per_line and tries < rows_per_line * 6 and retailers:
                tries += 1
                example = _copy_example(
                    kind, rng.choice(products), policies[rng.choice(retailers)], guide, rng, source
                )
                if example is not None:
                    examples.append(example)
                    made += 1
    return examples


def _copy_example(
    kind: str,
    product: Product,
    policy: RetailerPolicy,
    guide: BrandGuide,
    rng: random.Random,
    source: str,
) -> Example | None:
    """One row: the served prompt (`creative_request`, with the variant's angle) and the
    composed answer as the served grammar writes it (`{"headline":...,"body":...}`). `meta`
    carries the disclaimers the served copy gets attached (the model never writes them), so
    the row holds the whole copy as it would run. A brand row of a product with approved
    claims leads with one of them: the brand adapter is where the claims are taught (a
    random angle put a claim in 37 of the 84 brand/globex answers that could carry one); and
    its answer has the shape the served grammar decodes (`copywriter.served_copy`): one body
    sentence opening on the angle, under one of the brand's hooks."""
    placements = [p.value for p in policy.placements if policy.bidding.allows(product.category, p)]
    if not placements:
        return None
    facts = CopyFacts(policy, rng.choice(placements), product.name, product.category, guide)
    angles = angles_of(facts)
    if not angles:
        return None
    claims = [i for i, a in enumerate(angles) if a.claim]
    index = rng.choice(claims) if kind == "brand" and claims else rng.randrange(len(angles))
    write = served_copy if kind == "brand" else reference_copy
    copy = write(facts, angles[index], rng)
    if copy is None:
        return None
    problems = review_copy(
        copy, policy, facts.placement, product.category, guide, product.name
    ) or ([] if facts.grammar.accepts(copy.headline, copy.body) else ["grammar"])
    if problems:  # the composer only writes passing copy; never teach a violation
        raise AssertionError(f"reference copy breaks {problems}: {copy}")
    user = creative_request(facts, facts.angles()[index])
    answer = json.dumps({"headline": copy.headline, "body": copy.body}, separators=(",", ":"))
    text = f"{copy.headline} {copy.body}"
    meta = {
        "disclaimers": required_disclaimers(text, policy, facts.placement, product.category, guide),
        "retailer": policy.retailer_id,
        "placement": facts.placement,
        "category": product.category,
        "brand": guide.brand_id,
        "product": product.name,
    }
    return Example(source, user, answer, "creative", meta)


def _copy_dataset(
    kind: str, adapter_id: str, name: str, brands: list[str], seed: int
) -> AdapterDataset:
    rows = ROWS_PER_LINE[kind]
    train = _copy_examples(kind, brands, seed, rows, held_out=False)
    held = _copy_examples(kind, brands, seed, EVAL_ROWS_PER_LINE[kind], held_out=True)
    random.Random(f"{seed}:copy-train:{name}").shuffle(train)
    return AdapterDataset(
        kind, adapter_id, name, "creative", HELD_OUT_SPLIT, seed, train, _mixed(held, seed)
    )


def creative_dataset(seed: int = DEFAULT_SEED) -> AdapterDataset:
    brands = sorted(set(list_brands()) & set(CATALOG_BRANDS))
    return _copy_dataset("task", "creative", "rmn-creative", brands, seed)


def brand_dataset(brand_id: str, seed: int = DEFAULT_SEED) -> AdapterDataset:
    if brand_id not in CATALOG_BRANDS:
        raise UnknownAdapterError(f"brand {brand_id!r} has no products in the catalog")
    return _copy_dataset("brand", brand_id, f"rmn-brand-voice/{brand_id}", [brand_id], seed)


# --- planning: briefs -----------------------------------------------------------------------


PLANNING_ROWS = 1000
# Each hand-written training brief is seen this many times. v6 and v7 repeated their 213 twice
# (about a third of the rows); from v9 the 2,536 of `PLANNING_TRAIN_SETS` that spans can state
# are three quarters of the rows once each.
HANDWRITTEN_REPEAT = 1


def planning_dataset(seed: int = DEFAULT_SEED) -> AdapterDataset:
    """The brief datasets of `tools.brief.dataset`, split there by template and gold brief, and
    the hand-written sets of `PLANNING_TRAIN_SETS` in the train split (the eval split, which
    the promotion gate scores, stays templated)."""
    splits = brief_examples(seed, PLANNING_ROWS)
    handwritten = handwritten_examples(PLANNING_TRAIN_SETS) * HANDWRITTEN_REPEAT

    def convert(rows: list[Any]) -> list[Example]:
        return [
            Example(
                e.source,
                e.user,
                e.answer,
                "planning",
                {
                    "expected_fields": e.gold,
                    "template": e.template,
                    "brand": e.brand,
                    "text": e.text,
                    "today": e.today.isoformat(),
                },
            )
            for e in rows
        ]

    return AdapterDataset(
        "task",
        "planning",
        "rmn-briefs",
        "planning",
        f"gold brief and template; hand-written sets {', '.join(PLANNING_TRAIN_SETS)} "
        f"(x{HANDWRITTEN_REPEAT}) in train only",
        seed,
        convert(splits["train"] + handwritten),
        _mixed(convert(splits["eval"]), seed),
    )


# --- dispatch -------------------------------------------------------------------------------

Builder = Callable[[int], AdapterDataset]


def builders() -> dict[tuple[str, str], Builder]:
    """(kind, id) -> dataset builder, for every adapter the project knows how to train."""
    table: dict[tuple[str, str], Builder] = {
        ("task", "planning"): planning_dataset,
        ("task", "creative"): creative_dataset,
    }
    for r in list_retailers():
        table[("retailer", r)] = lambda seed, r=r: retailer_dataset(r, seed)
    for b in list_brands():
        if b in CATALOG_BRANDS:
            table[("brand", b)] = lambda seed, b=b: brand_dataset(b, seed)
    return table


def build_dataset(kind: str, adapter_id: str, seed: int = DEFAULT_SEED) -> AdapterDataset:
    """The splits for one adapter. Raises `UnknownAdapterError` for one there is no data for."""
    table = builders()
    if (kind, adapter_id) not in table:
        known = ", ".join(f"{k}/{i}" for k, i in sorted(table))
        raise UnknownAdapterError(
            f"no training data for {kind}/{adapter_id}; known: {known}",
            adapter=f"{kind}/{adapter_id}",
        )
    return table[(kind, adapter_id)](seed)


# --- preference pairs -----------------------------------------------------------------------


def _reject(example: Example, dataset: AdapterDataset, rng: random.Random) -> PreferencePair | None:
    """A worse answer to the example's prompt, with the flaw it has."""
    answer = example.answer

    def pair(rejected: str, flaw: str) -> PreferencePair:
        return PreferencePair(example.source, example.user, answer, rejected, example.task, flaw)

    if dataset.task is None:  # policy answers: a wordy, hedged non-answer
        return pair(f"It depends on the retailer. Please check the policy. {answer}?", "unsure")
    if dataset.task == "planning" and rng.random() < 0.5:
        meta = example.meta
        today = date.fromisoformat(meta["today"])
        wrong, flaw = rejected_answer(meta["text"], meta["brand"], today, answer, rng)
        return pair(wrong, flaw)
    if dataset.task == "creative" and answer.startswith("{"):
        rejected, flaw = copy_rejection(example, rng)
        return pair(rejected, flaw)
    options: list[tuple[str, str]] = [
        (f"Sure! Here is the JSON you asked for:\n{answer}", "prose_around_json"),
        (answer[: max(1, len(answer) * 2 // 3)], "truncated_json"),
        (answer.replace('"', "'"), "single_quotes"),
    ]
    rejected, flaw = rng.choice(options)
    return pair(rejected, flaw)


# Copy families the project's own checks prefer one side of (`copy_rejection`).
GENERIC_BODIES = ("Add it to your cart.", "Shop now.", "Find it in store and online.")
INVENTED_NUMBERS = ("Now 30% more.", "Loved by 10,000 families.", "Rated 5 stars.")
UNAPPROVED = ("Clinically proven.", "All natural.", "The #1 choice.", "Guaranteed results.")


def copy_rejection(example: Example, rng: random.Random) -> tuple[str, str]:
    """A worse copy answer to a creative prompt, of one of three families the project's checks
    judge: non-compliant (a banned word, an over-long or mis-cased headline, an unapproved
    claim), generic (the product name as headline, a stock call to action as body) or
    unsupported (a number nobody approved)."""
    obj = json.loads(example.answer)
    meta = example.meta
    policy = retailer_policy(meta["retailer"])
    limit = policy.creative.limits(meta["placement"]).max_headline_chars
    family = rng.choice(("compliant", "specific", "supported"))

    def dump(**change: str) -> str:
        return json.dumps({**obj, **change}, separators=(",", ":"))

    if family == "specific":
        return dump(headline=meta["product"], body=rng.choice(GENERIC_BODIES)), "generic_copy"
    if family == "supported":
        return dump(body=f"{rng.choice(INVENTED_NUMBERS)} {obj['body']}"), "unsupported_number"
    options = [
        (dump(headline=(obj["headline"] + " and so much more for you")[: limit + 12]),
         "headline_too_long"),
        (dump(body=f"{rng.choice(UNAPPROVED)} {obj['body']}"), "unapproved_claim"),
    ]  # fmt: skip
    if policy.creative.capitalization.value == "sentence_case":
        shouted = " ".join(w[:1].upper() + w[1:] for w in obj["headline"].split())
        if shouted != obj["headline"]:
            options.append((dump(headline=shouted), "capitalization"))
    banned = list(policy.prohibited.prohibited_terms)
    if meta.get("brand"):
        banned += brand_guide(meta["brand"]).banned_words
    if banned:
        word = rng.choice(banned)
        options.append((dump(body=f"{word.capitalize()}. {obj['body']}"), "banned_word"))
    return rng.choice(options)
