"""Score a parse path against gold briefs.

Rows are either held-out rows ({"text", "brand", "today", "gold" | "error"}) or dataset rows
(prompt/completion, as `build_brief_dataset` makes them). A row with "error" expects the parser
to refuse the brief; it counts towards `exact_match` and `error_accuracy`, not the fields.

    python -m tools.brief.evaluate --path rules --split heldout
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from datetime import date
from typing import Any

from tools.brief.llm import (
    PARSED_BY_FALLBACK,
    PATHS,
    GenerateJSON,
    parse_brief,
    read_model_answer,
    split_user_message,
)
from tools.brief.schema import BRIEF_FIELDS, BriefError, StructuredBrief, brand_retailers


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset or held-out row as {"text", "brand", "today", "gold" | "error"}."""
    if "prompt" in row:
        user = next(m["content"] for m in row["prompt"] if m["role"] == "user")
        text, brand, today = split_user_message(user)
        gold = json.loads(row["completion"][0]["content"])
        return {"text": text, "brand": brand, "today": today.isoformat(), "gold": gold}
    return row


def field_matches(name: str, got: Any, gold: Any, brand: str) -> bool:
    if name == "retailers":
        everything = set(brand_retailers(brand))
        return (set(got) or everything) == (set(gold) or everything)
    if isinstance(gold, bool) or isinstance(got, bool):
        return got is gold
    if gold is None or got is None:
        return got is None and gold is None
    if isinstance(gold, int | float):
        return isinstance(got, int | float) and math.isclose(got, gold, rel_tol=1e-6, abs_tol=1e-9)
    return str(got) == str(gold)


def _fields(brief: StructuredBrief) -> dict[str, Any]:
    return brief.fields()


def evaluate_parser(
    path: str,
    rows: Iterable[dict[str, Any]],
    generate_json: GenerateJSON | None = None,
) -> dict[str, Any]:
    """{"n", "exact_match", "field_accuracy": {field: acc}, "json_valid_rate", "fallback_rate",
    "error_accuracy", "n_error_rows", "failures"} for one path: "rules", "llm" or
    "production". `json_valid_rate` is over the rows the model was asked about (1.0 for the
    rules path, which writes no JSON); `fallback_rate` is the share of production parses the
    rules had to finish alone."""
    if path not in PATHS:
        raise BriefError(f"unknown parse path {path!r}; use one of {', '.join(PATHS)}", path=path)
    if path == "llm" and generate_json is None:
        raise BriefError("evaluating the llm path needs generate_json", path=path)

    asked = valid = 0
    recording: GenerateJSON | None = None
    if generate_json is not None:
        inner = generate_json

        def recording(system: str, user: str, schema: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal asked, valid
            asked += 1
            out = inner(system, user, schema)
            _, brand, _ = split_user_message(user)
            valid += read_model_answer(out, brand)[0] is not None
            return out

    n = exact = fallbacks = produced = 0
    error_rows = error_hits = 0
    field_hits = dict.fromkeys(BRIEF_FIELDS, 0)
    field_rows = 0
    failures: list[dict[str, Any]] = []
    for raw in rows:
        row = normalize_row(raw)
        n += 1
        today = date.fromisoformat(row["today"])
        try:
            brief = parse_brief(row["text"], row["brand"], today, path, recording)
            outcome: StructuredBrief | BriefError = brief
        except BriefError as err:
            outcome = err
        if isinstance(outcome, StructuredBrief):
            produced += 1
            fallbacks += outcome.parsed_by == PARSED_BY_FALLBACK
        if "error" in row:
            error_rows += 1
            ok = isinstance(outcome, BriefError) and outcome.detail.get("field") == row["error"]
            error_hits += ok
            exact += ok
            if not ok:
                got = outcome.fields() if isinstance(outcome, StructuredBrief) else outcome.message
                failures.append({"id": row.get("id"), "expected_error": row["error"], "got": got})
            continue
        field_rows += 1
        if isinstance(outcome, BriefError):
            failures.append({"id": row.get("id"), "error": outcome.message})
            continue
        got = _fields(outcome)
        wrong = {
            name: {"got": got[name], "gold": row["gold"][name]}
            for name in BRIEF_FIELDS
            if not field_matches(name, got[name], row["gold"][name], row["brand"])
        }
        for name in BRIEF_FIELDS:
            field_hits[name] += name not in wrong
        exact += not wrong
        if wrong:
            failures.append({"id": row.get("id"), "text": row["text"], "wrong": wrong})

    def rate(hits: int, total: int) -> float:
        return round(hits / total, 4) if total else 0.0

    return {
        "path": path,
        "n": n,
        "exact_match": rate(exact, n),
        "field_accuracy": {k: rate(v, field_rows) for k, v in field_hits.items()},
        "json_valid_rate": rate(valid, asked) if generate_json is not None else 1.0,
        "fallback_rate": rate(fallbacks, produced) if path == "production" else 0.0,
        "error_accuracy": rate(error_hits, error_rows),
        "n_error_rows": error_rows,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> None:
    from tools.brief.dataset import build_brief_dataset, load_heldout
    from tools.brief.llm import runtime_generate_json

    parser = argparse.ArgumentParser(description="Score a brief parse path against gold briefs.")
    parser.add_argument("--path", default="rules", choices=PATHS)
    parser.add_argument("--split", default="heldout", choices=["heldout", "train", "eval"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=1000, help="dataset size (train/eval splits)")
    parser.add_argument("--limit", type=int, default=None, help="score the first N rows only")
    parser.add_argument(
        "--adapters", default="auto", choices=["auto", "none"], help="none: the base model alone"
    )
    args = parser.parse_args(argv)
    rows = (
        load_heldout()
        if args.split == "heldout"
        else build_brief_dataset(args.seed, args.n)[args.split]
    )
    rows = rows[: args.limit] if args.limit else rows
    generate = None if args.path == "rules" else runtime_generate_json(adapters=args.adapters)
    result = evaluate_parser(args.path, rows, generate)
    result["failures"] = result["failures"][:10]
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
