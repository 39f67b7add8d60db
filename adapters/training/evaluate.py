"""The eval harness: the base model and base + adapter, side by side, on the adapter's held-out
split, greedy decoding.

| adapter        | metrics (primary first)                                             |
|----------------|---------------------------------------------------------------------|
| retailer/<id>  | accuracy (normalized exact match), contains_answer                  |
| task/creative  | compliance_rate, json_valid, violation counts                       |
| brand/<id>     | compliance_rate (retailer rules + brand words), json_valid, claims  |
| task/planning  | field_exact_match, json_valid, all_fields_exact                     |

Copy is scored as served: the required disclaimers attached, then `review_copy` (length
limits, prohibited terms and claims, price rules, emoji, exclamation marks, capitalization, the
brand's banned words, claims approved for the product, model debris), plus how specific it is.
Decoding here is free (no grammar), so the scores measure what the adapter learned.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.registry import AdapterMetadata, adapters_root
from adapters.training.artifacts import update_eval
from adapters.training.datasets import Example, build_dataset
from adapters.training.models import BaseModelSpec, base_for_adapter, generate, quiet_libraries
from adapters.versions import adapters_root_of, version_folder
from tools.brief.llm import read_model_answer
from tools.brief.spans import candidates
from tools.creative.products import names_benefit
from tools.creative.quality import headline_is_product_name
from tools.creative.review import review_copy
from tools.errors import RMNError
from tools.policy.compliance import (
    AdCopy,
    brand_guide,
    parse_copy,
    parse_json_object,
    required_disclaimers,
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
    """`kind/id` (its current version) or `kind/id@vN` under the adapters root, or a folder."""
    text = str(adapter)
    match = re.fullmatch(r"(retailer|brand|task)/([a-z0-9_-]+)(?:@(v\d+))?", text)
    if match:
        folder = (root or adapters_root()) / match.group(1) / match.group(2)
        if match.group(3) and (folder / "metadata.json").is_file():
            return version_folder(folder, match.group(3))
        if (folder / "metadata.json").is_file():
            return folder
    if (Path(text) / "metadata.json").is_file():
        return Path(text)
    raise AdapterPathError(
        f"no adapter at {text!r}: give kind/id (e.g. task/planning), kind/id@vN or an adapter "
        f"folder under {root or adapters_root()}",
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
    """Copy as served: the answer parsed, the policy's required disclaimers attached (the model
    never writes them), then `review_copy` (the retailer's rules, the brand guide, the claims
    approved for the product, and model debris); plus how specific it is (a headline that is
    not just the product name, a body that names a benefit or approved claim)."""
    valid = compliant = specific = benefit = 0
    violations: Counter[str] = Counter()
    for out, ex in zip(outputs, examples, strict=True):
        meta = ex.meta
        policy = retailer_policy(meta["retailer"])
        brand = brand_guide(meta["brand"]) if meta.get("brand") else None
        product, category, placement = meta.get("product"), meta["category"], meta["placement"]
        obj = parse_copy(out)
        if obj is None:
            violations["invalid_json"] += 1
            continue
        valid += 1
        copy = AdCopy(headline=obj["headline"], body=obj["body"])
        text = f"{copy.headline} {copy.body}"
        copy.disclaimers = required_disclaimers(text, policy, placement, category, brand)
        found = review_copy(copy, policy, placement, category, brand, product)
        compliant += not found
        violations.update(v.split(":")[0] for v in found)
        if product:
            specific += not headline_is_product_name(copy.headline, product)
            claims = [c.text for c in brand.claims_for_product(product, category)] if brand else []
            benefit += names_benefit(copy.body, product, claims)
    n = max(1, len(examples))
    return {
        "compliance_rate": compliant / n,
        "json_valid": valid / n,
        "headline_differs_from_product": specific / n,
        "body_names_benefit_or_claim": benefit / n,
        "violations": dict(violations.most_common()),
    }


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


def _brief_fields(output: str, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The brief fields a planning answer (the brief's spans, `tools.brief.spans`) converts to,
    JSON-ready; None when it is not a valid answer."""
    cands = candidates(meta["text"], meta["brand"], date.fromisoformat(meta["today"]))
    fields, _ = read_model_answer(parse_json_object(output), cands)
    return None if fields is None else fields.model_dump(mode="json")


def score_fields(outputs: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
    valid = all_exact = 0
    field_hits: Counter[str] = Counter()
    field_total = 0
    for out, ex in zip(outputs, examples, strict=True):
        want: dict[str, Any] = ex.meta["expected_fields"]
        got = _brief_fields(out, ex.meta)
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
    """Score the base model and base + adapter on the first `limit` items of the adapter's
    held-out split; with `write`, record the scores in the adapter's metadata.json under
    "eval"."""
    import torch

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
    stacked = getattr(meta.training, "stacked_on", None)
    prompts = [e.prompt() for e in items]
    bar = _progress_bar((3 if stacked else 2) * len(items), progress)
    tick = bar.update if bar is not None else None
    try:
        base_out = generate(model, tokenizer, prompts, tokens, batch_size, tick)
        tuned, stack_out = _with_adapter(
            model, tokenizer, folder, stacked, prompts, tokens, batch_size, tick
        )
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
        "data_digest": data_digest(items),
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
            {"prompt": items[i].user[:160], "base": base_out[i][:200], "adapter": out[:200]}
            for i, out in enumerate(adapter_out[:2])
        ],
    }
    if stacked and stack_out is not None:
        result["stacked_on"] = {"adapter": stacked["adapter"], "scores": scorer(stack_out, items)}
    if write:
        update_eval(folder, metadata_eval(result))
    return result


def _with_adapter(
    model: Any,
    tokenizer: Any,
    folder: Path,
    stacked: dict[str, Any] | None,
    prompts: list[list[dict[str, str]]],
    tokens: int,
    batch_size: int,
    tick: Callable[[int], Any] | None,
) -> tuple[Any, list[str] | None]:
    """The base with the adapter at `folder` active, in eval mode, and for an adapter stacked
    on another, the outputs of that other adapter alone: a stacked adapter is scored as served,
    on top of the adapter it was trained on, both active."""
    from peft import PeftModel

    if not stacked:
        tuned = PeftModel.from_pretrained(model, str(folder))
        tuned.eval()
        return tuned, None
    under = resolve_adapter(stacked["adapter"], adapters_root_of(folder))
    tuned = PeftModel.from_pretrained(model, str(under), adapter_name="stack")
    tuned.eval()
    stack_out = generate(tuned, tokenizer, prompts, tokens, batch_size, tick)
    tuned.load_adapter(str(folder), adapter_name="adapter")
    tuned.base_model.set_adapter(["adapter", "stack"])
    tuned.eval()
    return tuned, stack_out


def metadata_eval(result: dict[str, Any]) -> dict[str, Any]:
    """The `eval` block of metadata.json: {"base": ..., "adapter": ...} plus how they were made."""
    return {
        "base": _rounded(result["base"]),
        "adapter": _rounded(result["adapter_scores"]),
        "primary_metric": result["primary_metric"],
        "dataset": result["dataset"],
        "data_digest": result.get("data_digest"),
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


def data_digest(items: Sequence[Example]) -> str:
    """A digest of the scored items (prompts and reference answers): scores are comparable only
    between evals with equal digests."""
    digest = hashlib.sha256()
    for e in items:
        digest.update(f"{e.user}\x1f{e.answer}\x1e".encode())
    return digest.hexdigest()[:16]


def _rounded(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def _progress_bar(total: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="eval (base, then adapter)", unit="item", file=sys.stderr)
