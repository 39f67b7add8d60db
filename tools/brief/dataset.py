"""Brief datasets: briefs in plain words with their gold structured fields.

Each source item (`tools.brief.source_items`) is one gold brief. It is written out by several
templates (`tools.brief.wording`), each filling its slots with a randomly chosen phrasing.
Templates and source items are both split: the eval split only has templates and items the
train split never saw.

`tools/brief/data/heldout.jsonl` holds briefs written by hand, in phrasings no template makes.

Rows are TRL conversational prompt/completion rows in the turns the model is served
(`tools.brief.prompts`); DPO rows pair the gold answer with a plausible wrong one.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from tools.brief.labels import brief_answer
from tools.brief.prompts import served_user_message, training_prompt
from tools.brief.schema import BRIEF_FIELDS
from tools.brief.source_items import SourceItem, sample_item
from tools.brief.spans import Candidates, candidates
from tools.brief.wording import TEMPLATES, gold_for, render, slots_for
from tools.paths import data_dir

DATA_DIR = Path(__file__).parent / "data"
# Every hand-written set, by name, each written by a colleague who had not seen the templates
# or the lexers: unseen (before the span reader) and unseen2 independently of each other;
# unseen3, unseen4 and unseen5 each before the changes it was to measure (unseen5 after every
# change to the lexers and rules until 2026-12-05; unseen6, by a writer shown only the output
# fields and their rules, before that day's lexer changes, which unseen5's failures motivated;
# unseen7 to unseen9 the same way, after them; unseen7's failures shaped the next changes,
# unseen8 measured them, unseen9 came after; unseen8's and unseen9's failures shaped the lexer
# changes of 2026-12-05 (later), which unseen10 and unseen11, written blind by two more
# colleagues before those changes, measured; their failures shaped the next changes, which
# unseen12 and unseen13, written the same way before them, measured; unseen14 and unseen15,
# written after every change, were measured once and shaped nothing; the failures of those
# four are unread; unseen16 and unseen17, written later still, measured the rules' floors
# without a word of ROAS; then three rounds of changes, each read from one pair's failures and
# measured on the next pair, written blind before it: unseen18/19, unseen20/21 and
# unseen22/23; unseen24/25 measured round 4 again, mended, and their failures are unread;
# unseen26/27 measured round 6 (the misses those rounds had left) and their failures shaped
# round 7, which unseen28/29 measured; theirs shaped round 8, which unseen30/31 measured;
# theirs shaped round 9, which unseen32/33 measured; theirs shaped round 10, which unseen34/35
# measured; theirs shaped round 11, which unseen36/37 measured, and their failures are unread).
HANDWRITTEN: dict[str, Path] = {
    name: DATA_DIR / f"{name}.jsonl"
    for name in ("heldout", "unseen", "unseen2", "unseen3", "unseen4", "unseen5", "unseen6",
                 "unseen7", "unseen8", "unseen9", "unseen10", "unseen11", "unseen12", "unseen13",
                 "unseen14", "unseen15", "unseen16", "unseen17", "unseen18", "unseen19",
                 "unseen20", "unseen21", "unseen22", "unseen23", "unseen24", "unseen25",
                 "unseen26", "unseen27", "unseen28", "unseen29", "unseen30", "unseen31",
                 "unseen32", "unseen33", "unseen34", "unseen35", "unseen36", "unseen37",
                 "unseen38", "unseen39", "unseen40", "unseen41", "unseen42",
                 "unseen43", "unseen44", "unseen45", "unseen46", "unseen47",
                 "unseen48", "unseen49", "unseen50", "unseen51", "unseen52", "unseen53",
                 "unseen54", "unseen55", "unseen56", "unseen57", "unseen58", "unseen59",
                 "unseen60", "unseen61", "unseen62", "unseen63", "unseen64", "unseen65",
                 "unseen66", "unseen67", "unseen68", "unseen69", "unseen70", "unseen71")
}  # fmt: skip
HELDOUT_PATH = HANDWRITTEN["heldout"]
# The hand-written sets task/planning trains on, beside the templates: the genre the templates
# do not write (emails, threads that correct themselves, last year's spend, a competitor's ROAS).
# v6 and v7 trained on `unseen` to `unseen4`; v9 (2026-12-07) on every set whose failures had
# been read, since those had shaped the lexers and rules and no longer measured anything
# cleanly; v10 (later that day) on those and `unseen60` to `unseen63`, read after v9 was
# trained (rounds 8 to 10 of the rules: each set measured one round blind, then shaped the
# next). A v11 trained on those and `unseen65` to `unseen68` (2026-12-08, 3,572 rows) was
# refused by the served gate (0.986 against v10's 0.989), so this list stays v10's. Held out
# from training: `heldout`, the sets whose failures are unread (`unseen12` to `unseen15`,
# `unseen22`, `unseen24`, `unseen25`, `unseen37`: the planning gate scores on them,
# `PLANNING_GATE_SETS`); `unseen65` to `unseen68`, each read after it measured a round of what
# the model is offered; and the blind sets, unread: `unseen64` (round 10 of the rules),
# `unseen69` and `unseen70` (rounds 4 and 5 of what the model is offered) and `unseen71`
# (round 6).
PLANNING_TRAIN_SETS: tuple[str, ...] = (
    "unseen", "unseen2", "unseen3", "unseen4", "unseen5", "unseen6", "unseen7", "unseen8",
    "unseen9", "unseen10", "unseen11", "unseen16", "unseen17", "unseen18", "unseen19",
    "unseen20", "unseen21", "unseen23", "unseen26", "unseen27", "unseen28", "unseen29",
    "unseen30", "unseen31", "unseen32", "unseen33", "unseen34", "unseen35", "unseen36",
    "unseen38", "unseen39", "unseen40", "unseen41", "unseen42", "unseen43", "unseen44",
    "unseen45", "unseen46", "unseen47", "unseen48", "unseen49", "unseen50", "unseen51",
    "unseen52", "unseen53", "unseen54", "unseen55", "unseen56", "unseen57", "unseen58",
    "unseen59", "unseen60", "unseen61", "unseen62", "unseen63",
)  # fmt: skip
PLANNING_GATE_SETS: tuple[str, ...] = (
    "unseen12", "unseen13", "unseen14", "unseen15", "unseen22", "unseen24", "unseen25",
    "unseen37",
)  # fmt: skip
EVAL_FRACTION = 0.2
PARAPHRASES = 2  # renderings of each source item


@dataclass(frozen=True)
class BriefExample:
    """One brief: its text, the gold fields, and where it came from."""

    source: str  # the source item (one gold brief)
    template: str
    text: str
    brand: str
    today: date
    gold: dict[str, Any]  # BRIEF_FIELDS, JSON-ready

    @property
    def user(self) -> str:
        """The user turn as served: the brief and the schema line the runtime appends."""
        return served_user_message(self.text, self.brand, self.today)

    @property
    def prompt(self) -> list[dict[str, str]]:
        """System and user turns, as training rows hold them."""
        return training_prompt(self.text, self.brand, self.today)

    @cached_property
    def span_answer(self) -> str | None:
        """The spans that state the gold fields (None: the lexers cannot read this wording).
        Computed once: rows, DPO pairs and the split's filter all read it."""
        return brief_answer(self.text, self.brand, self.today, self.gold)

    @property
    def answer(self) -> str:
        if self.span_answer is None:
            raise ValueError(f"no span answer gives the gold fields of {self.text!r}")
        return self.span_answer

    def row(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "completion": [{"role": "assistant", "content": self.answer}],
        }

    def meta(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "brand": self.brand,
            "today": self.today.isoformat(),
            "gold": self.gold,
            "template": self.template,
        }


# --- building -------------------------------------------------------------------------------


def split_templates(seed: int) -> tuple[list[str], list[str]]:
    """(train, eval) template ids: a seeded shuffle, about `EVAL_FRACTION` held out."""
    ids = sorted(TEMPLATES)
    random.Random(f"{seed}:brief-templates").shuffle(ids)
    n_eval = max(1, round(len(ids) * EVAL_FRACTION))
    return sorted(ids[n_eval:]), sorted(ids[:n_eval])


def _gold_key(item: SourceItem) -> str:
    return json.dumps([item.brand, item.today.isoformat(), item.gold], sort_keys=True)


def brief_examples(seed: int = 0, n: int = 1000) -> dict[str, list[BriefExample]]:
    """About `n` examples in all, `EVAL_FRACTION` of them in "eval". Train and eval share no
    template and no source item; the same seed always gives the same examples."""
    if n < 2 * PARAPHRASES:
        raise ValueError(f"n must be at least {2 * PARAPHRASES}")
    train_t, eval_t = split_templates(seed)
    n_eval_items = max(1, round(n * EVAL_FRACTION / PARAPHRASES))
    n_train_items = max(1, round(n / PARAPHRASES) - n_eval_items)
    rng = random.Random(f"{seed}:brief-items")
    seen: set[str] = set()
    out: dict[str, list[BriefExample]] = {"train": [], "eval": []}
    for split, count, templates in (
        ("train", n_train_items, train_t),
        ("eval", n_eval_items, eval_t),
    ):
        made = 0
        while made < count:
            item = sample_item(f"{split}-{made:05d}", rng)
            key = _gold_key(item)
            if key in seen:  # the same gold brief never lands in both splits
                continue
            seen.add(key)
            for template in rng.sample(templates, min(PARAPHRASES, len(templates))):
                text = render(TEMPLATES[template], slots_for(item, rng))
                gold = gold_for(template, item.gold)
                example = BriefExample(item.source, template, text, item.brand, item.today, gold)
                if example.span_answer is None:
                    continue  # a wording the span lexers cannot read: no answer to teach
                out[split].append(example)
            made += 1
    return out


def build_brief_dataset(seed: int = 0, n: int = 1000) -> dict[str, list[dict[str, Any]]]:
    """TRL prompt/completion rows: {"train": [...], "eval": [...]} (see `brief_examples`)."""
    examples = brief_examples(seed, n)
    return {split: [e.row() for e in rows] for split, rows in examples.items()}


# --- preference pairs -----------------------------------------------------------------------


def _flaws(
    answer: dict[str, Any], cands: Candidates
) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    """Plausible wrong span answers: another amount as the budget, a dropped floor or flight,
    a retailer mention's role flipped, another objective word."""
    flaws: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
    other_money = [k for k in cands.money if k != answer["budget"]]
    if other_money:
        flaws["another amount as the budget"] = lambda a: {**a, "budget": other_money[0]}
    other_objectives = [
        k for k, v in cands.objectives.items() if v != cands.objectives.get(answer["objective"])
    ]
    if other_objectives:
        flaws["wrong objective"] = lambda a: {**a, "objective": other_objectives[0]}
    if answer["retailers"]:
        first = next(iter(answer["retailers"]))
        flipped = "exclude" if answer["retailers"][first] == "include" else "include"
        flaws["retailer's role flipped"] = lambda a: {
            **a,
            "retailers": {**a["retailers"], first: flipped},
        }
    for key, name in (("floor", "dropped ROAS floor"), ("flight", "dropped flight")):
        if answer[key] is not None:
            flaws[name] = lambda a, key=key: {**a, key: None}
    other_floors = [k for k in cands.floors if k != answer["floor"]]
    if other_floors:
        flaws["another number as the floor"] = lambda a: {**a, "floor": other_floors[0]}
    if answer["reserve"] is not None:
        flaws["reserve left out"] = lambda a: {**a, "reserve": None}
    flaws["no budget"] = lambda a: {**a, "budget": None}
    return flaws


def rejected_answer(
    text: str, brand: str, today: date, answer_json: str, rng: random.Random
) -> tuple[str, str]:
    """(a plausible wrong answer to a brief whose right answer is `answer_json`, what is
    wrong with it)."""
    cands = candidates(text, brand, today)
    answer = json.loads(answer_json)
    flaws = _flaws(answer, cands)
    name = rng.choice(sorted(flaws))
    return json.dumps(flaws[name](answer), separators=(",", ":")), name


def build_dpo_pairs(seed: int = 0, n: int = 1000) -> dict[str, list[dict[str, Any]]]:
    """DPO rows {"prompt", "chosen", "rejected"} for the same examples as `build_brief_dataset`:
    chosen is the gold answer, rejected a plausible wrong one (wrong key, budget scale,
    a retailer's role flipped, ...)."""
    rng = random.Random(f"{seed}:brief-dpo")
    out: dict[str, list[dict[str, Any]]] = {}
    for split, examples in brief_examples(seed, n).items():
        rows = []
        for e in examples:
            rejected, _flaw = rejected_answer(e.text, e.brand, e.today, e.answer, rng)
            rows.append(
                {
                    "prompt": e.prompt,
                    "chosen": [{"role": "assistant", "content": e.answer}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
        out[split] = rows
    return out


# --- the hand-written sets -----------------------------------------------------------------


def handwritten_examples(names: tuple[str, ...]) -> list[BriefExample]:
    """The gold briefs of the named hand-written sets as examples (source "<set>:<id>"), those
    whose spans can state their gold fields (amounts per retailer that add up to a budget no
    span states cannot be taught as spans). Kept per process: labelling the 2,685 briefs of
    the 51 training sets parses each one, and the tests build the dataset more than once."""
    return list(_handwritten_examples(tuple(names)))


@lru_cache(maxsize=8)
def _handwritten_examples(names: tuple[str, ...]) -> tuple[BriefExample, ...]:
    out = []
    for name in names:
        for row in load_heldout(HANDWRITTEN[name]):
            if "gold" not in row:
                continue
            today = date.fromisoformat(row["today"])
            source = f"{name}:{row['id']}"
            e = BriefExample(
                source, f"handwritten:{name}", row["text"], row["brand"], today, row["gold"]
            )
            if e.span_answer is not None:
                out.append(e)
    return tuple(out)


# --- the held-out set -----------------------------------------------------------------------


def load_heldout(path: Path | None = None) -> list[dict[str, Any]]:
    """Hand-written briefs: {"id", "brand", "today", "text"} and either "gold" (the fields, and
    in the sets that measure them the brief's split by retailer, "retailer_split", its caps
    at retailers, "retailer_caps", and its minimums, "retailer_mins": {retailer: USD} or null)
    or "error" (the field a correct parser must refuse)."""
    rows = []
    for line in (path or HELDOUT_PATH).read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    for row in rows:
        amounts = {"retailer_split", "retailer_caps", "retailer_mins"}
        if "gold" in row and set(row["gold"]) - amounts != set(
            BRIEF_FIELDS
        ):
            raise ValueError(f"held-out row {row['id']} must give every brief field")
    return rows


def write_brief_dataset(out: Path, seed: int = 0, n: int = 1000) -> dict[str, int]:
    """Write train/eval rows and DPO pairs as JSONL under `out`; returns rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    files = {
        **{f"{k}.jsonl": v for k, v in build_brief_dataset(seed, n).items()},
        **{f"dpo_{k}.jsonl": v for k, v in build_dpo_pairs(seed, n).items()},
    }
    for name, rows in files.items():
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        counts[name] = len(rows)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the brief datasets as JSONL.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="default: $RMN_DATA_DIR/brief")
    args = parser.parse_args(argv)
    out = args.out or data_dir() / "brief"
    print(json.dumps({"out": str(out), "rows": write_brief_dataset(out, args.seed, args.n)}))


if __name__ == "__main__":
    main()
