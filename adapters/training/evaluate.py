"""The eval harness: the base model and base + adapter, side by side, on the adapter's held-out
split, greedy decoding.

| adapter        | metrics (primary first)                                             |
|----------------|---------------------------------------------------------------------|
| retailer/<id>  | accuracy (normalized exact match), contains_answer                  |
| task/creative  | compliance_rate, json_valid, violation counts                       |
| brand/<id>     | compliance_rate (retailer rules + brand words), json_valid, claims  |
| task/planning  | field_exact_match, json_valid, all_fields_exact                     |

Compliance uses the typed policies: length limits, prohibited terms and claims, price rules,
emoji, exclamation marks, capitalization, required disclaimers and the brand's banned words.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.registry import AdapterMetadata, adapters_root
from adapters.training.artifacts import update_eval
from adapters.training.datasets import Example, build_dataset
from adapters.training.models import BaseModelSpec, base_for_adapter, generate, quiet_libraries
from tools.errors import RMNError
from tools.policy.compliance import (
    brand_guide,
    check_output,
    parse_json_object,
    retailer_policy,
)

if TYPE_CHECKING:
    import torch

PRIMARY_METRIC = {"retailer": "accuracy", "brand": "compliance_rate", "creative": "compliance_rate"}
PRIMARY_METRIC["planning"] = "field_exact_match"
MAX_NEW_TOKENS = {"retailer": 48, "brand": 128, "creative": 128, "planning": 96}
DEFAULT_LIMIT = 30


class AdapterPathError(RMNError):
    kind = "adapter_not_found"


def role_of(kind: str, adapter_id: str) -> str:
    """Which scorer an adapter gets: its task for task adapters, else its kind."""
    return adapter_id if kind == "task" else kind


def resolve_adapter(adapter: str | Path, root: Path | None = None) -> Path:
    """`kind/id` under the adapters root, or a folder path."""
    text = str(adapter)
    candidates = [Path(text)]
    if re.fullmatch(r"(retailer|brand|task)/[a-z0-9_-]+", text):
        candidates.insert(0, (root or adapters_root()) / text)
    for path in candidates:
        if (path / "metadata.json").is_file():
            return path
    raise AdapterPathError(
        f"no adapter at {text!r}: give kind/id (e.g. task/planning) or an adapter folder "
        f"under {root or adapters_root()}",
        adapter=text,
    )


# --- scoring --------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """Lower case, one line, no surrounding quotes or final full stop."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = " ".join(line.lower().split()).strip("\"'` ")
    return line.rstrip(".").strip()


def score_answers(outputs: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    exact = contains = 0
    for out, ex in zip(outputs, examples, strict=True):
        expected = normalize_answer(ex.answer)
        got = normalize_answer(out)
        exact += got == expected
        contains += expected in " ".join(out.lower().split())
    n = max(1, len(examples))
    return {"accuracy": exact / n, "contains_answer": contains / n}


def score_copy(outputs: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
    valid = compliant = claims_made = claims_possible = 0
    violations: Counter[str] = Counter()
    for out, ex in zip(outputs, examples, strict=True):
        meta = ex.meta
        policy = retailer_policy(meta["retailer"])
        brand = brand_guide(meta["brand"]) if meta.get("brand") else None
        check = check_output(out, policy, meta["placement"], meta["category"], brand)
        valid += check.json_valid
        compliant += check.compliant
        violations.update(v.split(":")[0] for v in check.violations)
        if brand is not None:
            approved = [
                c.text
                for c in brand.claims_for(meta["category"])
                if not policy.prohibited.violations(c.text, meta["category"])
            ]
            if approved:
                claims_possible += 1
                claims_made += check.json_valid and any(c.lower() in out.lower() for c in approved)
    n = max(1, len(examples))
    scores: dict[str, Any] = {"compliance_rate": compliant / n, "json_valid": valid / n}
    if claims_possible:
        scores["approved_claim_rate"] = claims_made / claims_possible
    scores["violations"] = dict(violations.most_common())
    return scores


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float | int) and not isinstance(want, bool):
        return (
            isinstance(got, float | int)
            and not isinstance(got, bool)
            and math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        )
    if isinstance(want, list) and isinstance(got, list):
        return sorted(map(str, got)) == sorted(map(str, want))
    return got == want


def score_fields(outputs: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
    valid = all_exact = 0
    field_hits: Counter[str] = Counter()
    field_total = 0
    for out, ex in zip(outputs, examples, strict=True):
        want: dict[str, Any] = ex.meta["expected_fields"]
        got = parse_json_object(out)
        field_total += len(want)
        if got is None:
            continue
        valid += 1
        hits = [k for k, v in want.items() if k in got and _same(got[k], v)]
        field_hits.update(hits)
        all_exact += len(hits) == len(want)
    n = max(1, len(examples))
    fields = sorted({k for ex in examples for k in ex.meta["expected_fields"]})
    return {
        "field_exact_match": sum(field_hits.values()) / max(1, field_total),
        "json_valid": valid / n,
        "all_fields_exact": all_exact / n,
        "per_field": {k: field_hits[k] / n for k in fields},
    }


SCORERS: dict[str, Callable[[Sequence[str], Sequence[Example]], dict[str, Any]]] = {
    "retailer": score_answers,
    "brand": score_copy,
    "creative": score_copy,
    "planning": score_fields,
}


def answer_is_right(role: str, output: str, example: Example) -> bool:
    """Whether one output scores full marks on the role's primary metric."""
    return SCORERS[role]([output], [example])[PRIMARY_METRIC[role]] >= 1.0


# --- running --------------------------------------------------------------------------------


def evaluate_adapter(
    adapter: str | Path,
    *,
    limit: int | None = DEFAULT_LIMIT,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
    write: bool = True,
    progress: bool = False,
    base: BaseModelSpec | None = None,
    root: Path | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Score the base model and base + adapter on the adapter's held-out split; with `write`,
    record the scores in the adapter's metadata.json under "eval"."""
    import torch
    from peft import PeftModel

    started = time.perf_counter()
    folder = resolve_adapter(adapter, root)
    meta = AdapterMetadata.read(folder)
    role = role_of(meta.kind, meta.id)
    seed = int(getattr(meta.training, "seed", 0) or 0)
    dataset = build_dataset(meta.kind, meta.id, seed)
    items = dataset.eval[:limit] if limit else dataset.eval
    tokens = max_new_tokens or MAX_NEW_TOKENS[role]
    spec = base or base_for_adapter(meta.base_model, meta.base_fingerprint)

    quiet_libraries(progress)
    model, tokenizer = spec.load(dtype or torch.float32, False)
    prompts = [e.prompt() for e in items]
    stacked = getattr(meta.training, "stacked_on", None)
    bar = _progress_bar((3 if stacked else 2) * len(items), progress)
    tick = bar.update if bar is not None else None
    stack_out: list[str] | None = None
    try:
        base_out = generate(model, tokenizer, prompts, tokens, batch_size, tick)
        if stacked:
            # Scored as served: on top of the adapter it was trained on, both active.
            under = resolve_adapter(stacked["adapter"], folder.parent.parent)
            tuned = PeftModel.from_pretrained(model, str(under), adapter_name="stack")
            tuned.eval()
            stack_out = generate(tuned, tokenizer, prompts, tokens, batch_size, tick)
            tuned.load_adapter(str(folder), adapter_name="adapter")
            tuned.base_model.set_adapter(["adapter", "stack"])
        else:
            tuned = PeftModel.from_pretrained(model, str(folder))
        tuned.eval()
        adapter_out = generate(tuned, tokenizer, prompts, tokens, batch_size, tick)
    finally:
        if bar is not None:
            bar.close()

    scorer = SCORERS[role]
    primary = PRIMARY_METRIC[role]
    base_scores, adapter_scores = scorer(base_out, items), scorer(adapter_out, items)
    result: dict[str, Any] = {
        "adapter": f"{meta.kind}/{meta.id}",
        "dataset": dataset.name,
        "split": "eval",
        "items": len(items),
        "primary_metric": primary,
        "decoding": {"greedy": True, "max_new_tokens": tokens},
        "base": base_scores,
        "adapter_scores": adapter_scores,
        "improvement": round(adapter_scores[primary] - base_scores[primary], 4),
        "stacked_on": None,
        "seconds": round(time.perf_counter() - started, 1),
        "evaluated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "samples": [
            {
                "prompt": items[i].user[:160],
                "base": base_out[i][:200],
                "adapter": adapter_out[i][:200],
            }
            for i in range(min(2, len(items)))
        ],
    }
    if stacked and stack_out is not None:
        result["stacked_on"] = {"adapter": stacked["adapter"], "scores": scorer(stack_out, items)}
    if write:
        update_eval(folder, metadata_eval(result))
    return result


def metadata_eval(result: dict[str, Any]) -> dict[str, Any]:
    """The `eval` block of metadata.json: {"base": ..., "adapter": ...} plus how they were made."""
    return {
        "base": _rounded(result["base"]),
        "adapter": _rounded(result["adapter_scores"]),
        "primary_metric": result["primary_metric"],
        "dataset": result["dataset"],
        "split": result["split"],
        "items": result["items"],
        "decoding": result["decoding"],
        "seconds": result["seconds"],
        "evaluated_at": result["evaluated_at"],
        **(
            {
                "stacked_on": result["stacked_on"]["adapter"],
                "stack_only": _rounded(result["stacked_on"]["scores"]),
            }
            if result.get("stacked_on")
            else {}
        ),
    }


def _rounded(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def _progress_bar(total: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="eval (base, then adapter)", unit="item", file=sys.stderr)
