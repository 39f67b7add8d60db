"""`rmn bench language --main-ref REF`: main's copy, measured in the same run on the products,
retailers, placements and variant counts the bench drew for the current code, and scored by the
bench's own scoring (`tools.creative.bench.score_copy`).

"Main" is the code before the language work (6c07a30, 2026-11-23): it has no language bench,
but it has a creative tool (`tools/creative.py`: `CopyRequest`, `write_copy_many`). How:

1. `checkout` (`tools.main_ref`): a temporary `git worktree add --detach` of this repository at
   REF, removed afterwards, also on error;
2. `run_driver`: `DRIVER` (written against 6c07a30's API) runs in a subprocess with the worktree
   as working directory and PYTHONPATH, on this interpreter, with its own adapters (the
   worktree's `adapters/`), offline (`tools.main_ref.run_in`); the requests go in as JSON on
   stdin, the variants come back as JSON on stdout;
3. `measure_main`: the bench's plans are drawn again and checked against the run's per-variant
   records, main's variants are turned back into `CopyResult`s and scored exactly as the
   bench scores its own. What main's result cannot tell is left out and said
   (`not_computed`), never filled in. Which lines main's adapters saw is read from their own
   data cards; where a card does not say, from a card of this checkout for byte-identical
   weights that records them (6c07a30's task/creative is today's `versions/v1`), and said.
   Main's variants are also judged again by the current rules (`checked_by_current_rules`):
   `compliant_as_written` is main's own verdict, as the bench takes the current code's.

Main's code reads the converted base weights from this checkout's cache (`models/` only: the
same GGUF, converted by the same code), so no conversion runs; everything else it reads comes
from the worktree.

The products need no mapping: the bench asks for copy by product name and catalog category
(no GTIN), which 6c07a30's `CopyRequest` takes as they are (it resolves no GTIN; its catalog's
categories map to the same policy categories, checked per request in `main_source`).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.creative.bench import BenchProduct, bench_plans, bench_requests, score_copy
from tools.creative.seen_lines import AdapterLines, SeenLines
from tools.creative.write import CopyRequest, CopyResult, resolve
from tools.errors import RMNError
from tools.main_ref import MainRefError, checkout, run_in
from tools.paths import PROJECT_ROOT
from tools.plan import CopyVariant
from tools.policy import policy_category
from tools.policy.compliance import AdCopy

if TYPE_CHECKING:
    from adapters.registry import AdapterRegistry


DRIVER = r'''"""Main's copy for `rmn bench language --main-ref` (`tools.creative.main_copy`).

Written against the API of commit 6c07a30 (2026-11-23), the code before the language work (and
working with later code, whose variants name the adapters they ran with: its `_resolve` is
gone; found measuring 2dc111f, where the driver stopped on an AttributeError), and run with
that checkout as working directory and PYTHONPATH: `tools.creative.CopyRequest`
(retailer_id, brand_id, gtin, product_name, variants, max_attempts, placement, category,
tenant; extra fields forbidden), `tools.creative.write_copy_many(llm, requests, kinds)` ->
`CopyResult` (variants, attempts, failures, placement, category), `tools.creative.DEFAULT_KINDS`
and the private `_resolve` / `_available_adapters` (the adapters it composes for a request), and
the chat model as its creative node gets it: `graph.llm.chat_model(graph.context.Context(model=
...))`. One `write_copy_many` call per plan, as its creative node and the bench make.

stdin: {"model": "smollm2" | "none", "plans": [[request, ...], ...]}, requests as the current
bench dumps them; fields 6c07a30's CopyRequest does not have are dropped and reported.
stdout (JSON only; whatever the libraries print goes to stderr): {"requests": [...],
"variants": [...], "dropped_fields": {...}, "adapters": {...}, "kinds", "runtime", "seconds_load",
"seconds_write"}. Each variant: the plan and request it answers, headline, body, disclaimer,
compliant (6c07a30's own verdict), path (llm, repaired, fixed: the model wrote it; fallback:
template copy), source ("model" or "template"), the adapters active and attempts.
"""

import hashlib
import json
import os
import sys
import time


def main():
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed, by Python or a C library, goes to stderr
    sys.stdout = sys.stderr
    job = json.load(sys.stdin)
    import tools.creative as creative

    fields = set(creative.CopyRequest.model_fields)
    kinds = creative.DEFAULT_KINDS
    started = time.perf_counter()
    llm = None
    if job["model"] != "none":
        from graph.context import Context
        from graph.llm import chat_model

        llm = chat_model(Context(model=job["model"]))
    loaded = time.perf_counter()
    entries = {} if llm is None else {e.name: e for e in llm.runtime.registry.entries()}
    dropped, requests, variants, adapters = {}, [], [], {}
    for p, plan in enumerate(job["plans"]):
        asked = []
        for raw in plan:
            for key in sorted(set(raw) - fields):
                dropped.setdefault(key, sorted({*dropped.get(key, []), json.dumps(raw[key])}))
            asked.append(creative.CopyRequest(**{k: v for k, v in raw.items() if k in fields}))
        print(f"main: plan {p + 1}/{len(job['plans'])}", file=sys.stderr, flush=True)
        results = creative.write_copy_many(llm, asked, kinds)
        for request, result in zip(asked, results, strict=True):
            composed = []
            if hasattr(creative, "_resolve"):  # 6c07a30's API
                ctx = creative._resolve(request)
                if llm is not None and ctx.blocked is None:
                    composed = creative._available_adapters(llm, ctx, kinds).names
            else:  # later code: each variant names the adapters it ran with (kind/id@vN)
                composed = sorted({a.split("@")[0] for v in result.variants
                                   for a in getattr(v, "adapters", None) or []})
            for name in composed:
                if name not in adapters and name in entries:
                    entry = entries[name]
                    weights = (entry.path / "adapter_model.safetensors").read_bytes()
                    adapters[name] = {
                        "card": entry.metadata.training.model_dump(mode="json"),
                        "weights_sha256": hashlib.sha256(weights).hexdigest(),
                    }
            r = len(requests)
            requests.append({
                "plan": p,
                "sent": request.model_dump(mode="json"),
                "attempts": result.attempts,
                "failures": result.failures,
                "placement": result.placement,
                "category": result.category,
                "composed": composed,
            })
            for v in result.variants:
                variants.append({
                    "plan": p,
                    "request": r,
                    **v.model_dump(mode="json"),
                    "source": "template" if v.path == "fallback" else "model",
                })
    written = time.perf_counter()
    json.dump({
        "requests": requests,
        "variants": variants,
        "dropped_fields": dropped,
        "adapters": adapters,
        "kinds": list(kinds),
        "runtime": None if llm is None else {
            "model_name": getattr(llm.runtime, "model_name", None),
            "merged_dtype": str(getattr(llm.runtime, "merged_dtype", None)),
        },
        "seconds_load": round(loaded - started, 2),
        "seconds_write": round(written - loaded, 2),
    }, out)
    out.flush()


main()
'''


def run_driver(
    tree: Path,
    job: dict[str, Any],
    *,
    source: str = DRIVER,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `source` (the driver) in `tree` on `job` (`tools.main_ref.run_in`); its JSON answer.
    Its progress lines ("main: ...") go to `log` as they come. A clear error if it fails or
    answers something that is not JSON. The job and the answer pass through files, so neither
    pipe can fill."""
    said = run_in(
        tree, [sys.executable, "-c", source], json.dumps(job), log=log, what="main's driver"
    )
    try:
        answer = json.loads(said)
    except json.JSONDecodeError as err:
        raise MainRefError(
            f"main's driver answered no JSON ({err}): {said.strip()[:300]!r}"
        ) from err
    if not isinstance(answer, dict) or not {"requests", "variants"} <= set(answer):
        raise MainRefError("main's driver answered JSON without requests and variants")
    return answer


def serialize_plans(plans: list[list[BenchProduct]], variants: int, seed: int) -> list[list[dict]]:
    """The requests of every plan as the bench makes them (`bench_requests`, the plan's seed),
    as JSON-ready dicts: what the driver gets on stdin."""
    return [
        [r.model_dump(mode="json") for r in bench_requests(plan, variants, seed + i)]
        for i, plan in enumerate(plans)
    ]


def results_of(answer: dict[str, Any], plans: list[list[BenchProduct]]) -> list[list[CopyResult]]:
    """Main's answer as the current `CopyResult`s, one list per plan in order, one result per
    product. `rule_breaks` stays empty: 6c07a30's result does not record it."""
    per_plan: list[list[CopyResult]] = [[] for _ in plans]
    variants: dict[int, list[CopyVariant]] = {}
    keys = set(CopyVariant.model_fields)
    for v in answer["variants"]:
        variants.setdefault(v["request"], []).append(
            CopyVariant(**{k: x for k, x in v.items() if k in keys})
        )
    for r, req in enumerate(answer["requests"]):
        per_plan[req["plan"]].append(
            CopyResult(
                variants=variants.get(r, []),
                attempts=req["attempts"],
                failures=req["failures"],
                placement=req["placement"],
                category=req["category"],
            )
        )
    for plan, results in zip(plans, per_plan, strict=True):
        if len(plan) != len(results):
            raise MainRefError(
                f"main answered {len(results)} requests for a plan of {len(plan)} products"
            )
    return per_plan


class MainSeenLines(SeenLines):
    """`SeenLines` over the adapters main composed for each retailer and brand (the driver
    reports them), read from their data cards by the current reader (`AdapterLines`)."""

    def __init__(self, composed: dict[tuple[str, str], list[str]], cards: dict[str, dict]) -> None:
        super().__init__(None, ())
        self.composed, self.card_data = composed, cards

    def adapters(self, retailer_id: str, brand_id: str) -> list[AdapterLines]:
        out = []
        for name in self.composed.get((retailer_id, brand_id), []):
            if name not in self._cards:
                self._cards[name] = AdapterLines.from_card(name, self.card_data[name])
            out.append(self._cards[name])
        return out


def _same_weights_card(name: str, sha256: str, root: Path) -> tuple[str, dict] | None:
    """A card of this checkout that records the product lines of an adapter with exactly these
    weights (`name`'s folder or one of its `versions/`), and where it is; None if none does."""
    from adapters.registry import PEFT_WEIGHTS_FILE, AdapterMetadata
    from adapters.stacking import weights_digest

    folder = root / name
    for candidate in [folder, *sorted((folder / "versions").glob("*"))]:
        if not (candidate / PEFT_WEIGHTS_FILE).is_file() or weights_digest(candidate) != sha256:
            continue
        try:
            card = AdapterMetadata.read(candidate).training.model_dump()
        except (OSError, ValueError, RMNError):  # a folder being written, or a broken card
            continue
        if AdapterLines.from_card(name, card).basis == "recorded":
            return str(candidate.relative_to(root.parent)), card
    return None


def main_cards(adapters: dict[str, dict], root: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """(the card to read each of main's adapters by, where it came from): main's own card, or,
    where that does not say which lines the adapter was trained on, a card of this checkout
    for byte-identical weights that records them."""
    cards, basis = {}, {}
    for name, a in sorted(adapters.items()):
        cards[name], basis[name] = a["card"], "its own card at the ref"
        if AdapterLines.from_card(name, a["card"]).basis != "unknown":
            continue
        same = _same_weights_card(name, a["weights_sha256"], root)
        if same is not None:
            where, cards[name] = same
            basis[name] = (
                f"its own card does not record its lines; {where} has byte-identical weights "
                f"(sha256 {a['weights_sha256'][:12]}) and its card records them"
            )
    return cards, basis


def recheck(answer: dict[str, Any], sent: list[dict[str, Any]]) -> dict[str, Any]:
    """Main's variants judged again by the current rules (`review_copy`, as the current writer
    judges its own): how many pass, and how many of the model's, as written, pass."""
    flagged: Counter[str] = Counter()
    passed = written_pass = 0
    for v in answer["variants"]:
        ctx = resolve(CopyRequest(**sent[v["request"]]))
        disclaimers = (v.get("disclaimer") or "").splitlines()
        found = ctx.check(AdCopy(headline=v["headline"], body=v["body"], disclaimers=disclaimers))
        flagged.update({f.split(":", 1)[0] for f in found})
        passed += not found
        written_pass += v["path"] in ("llm", "repaired") and v["compliant"] and not found
    n = max(1, len(answer["variants"]))
    return {
        "variants": len(answer["variants"]),
        "pass_current_rules": round(passed / n, 4),
        "compliant_as_written_by_current_rules": round(written_pass / n, 4),
        "flagged_by": dict(flagged.most_common()),
    }


def _never_seen_note(counts: dict[str, int], cards: dict[str, dict]) -> str | None:
    """Why main has no never-seen figures (none of its variants is on a line all its composed
    adapters' cards say they never saw), or None when it has them."""
    if counts["never_seen"] or not counts["all"]:
        return None
    why = []
    if counts["seen"]:
        why.append(f"{counts['seen']} are on lines its adapters were trained on (their cards)")
    if counts["unknown"]:
        unknown = [n for n, c in cards.items() if AdapterLines.from_card(n, c).basis == "unknown"]
        why.append(f"{counts['unknown']} on lines no card of {', '.join(unknown)} places")
    return (
        f"none of main's {counts['all']} variants is on a line its adapters never saw: "
        f"{'; '.join(why)}; the main column is on all of main's variants"
    )


def _categories_differ(answer: dict[str, Any], plans: list[list[BenchProduct]]) -> list[str]:
    products = [p for plan in plans for p in plan]
    return [
        f"{p.name} at {p.retailer_id}: main read {req['category']!r}, "
        f"now {policy_category(p.catalog_category)!r}"
        for p, req in zip(products, answer["requests"], strict=True)
        if req["category"] != policy_category(p.catalog_category)
    ]


def _check_same_products(plans: list[list[BenchProduct]], result: dict[str, Any]) -> None:
    """The plans drawn again must be the ones the run wrote copy for."""
    drawn = {(i, p.name, p.retailer_id, p.placement) for i, plan in enumerate(plans) for p in plan}
    written = {
        (r["plan"], r["product"], r["retailer"], r["placement"]) for r in result["per_variant"]
    }
    if len(plans) != result["plans"] or not written <= drawn:
        raise MainRefError(
            "the products drawn again for main are not those this run wrote copy for"
        )


def measure_main(
    result: dict[str, Any],
    ref: str,
    *,
    model: str,
    registry: AdapterRegistry | None,
    brands: list[str] | None,
    held_out_only: bool,
    root: Path = PROJECT_ROOT,
    adapters_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(main's figures, what was measured) for a finished bench run `result`: main at `ref`
    writes copy for the same plans (drawn again from the run's seed, checked against its
    records), scored by `score_copy`. `model`: "smollm2" or "none", as the run's; `root`: the
    repository checked out; `adapters_dir`: where this checkout's adapter cards are read
    (default: `registry`'s root)."""
    kinds = tuple(result["kinds"])
    seen = SeenLines(registry, kinds)
    seed, variants = int(result["seed"]), int(result["variants_per_request"])
    plans = bench_plans(
        seed, int(result["plans_per_brand"]), brands, seen if held_out_only else None
    )
    _check_same_products(plans, result)
    job = {"model": model, "plans": serialize_plans(plans, variants, seed)}
    sent = [r for plan in job["plans"] for r in plan]
    started = time.perf_counter()
    with checkout(ref, root) as (tree, commit):
        if log is not None:
            log(f"main: {ref} ({commit[:12]}) checked out at {tree}; {len(sent)} requests")
        answer = run_driver(tree, job, log=log)
    seconds = round(time.perf_counter() - started, 1)
    composed = {
        (r["sent"]["retailer_id"], r["sent"]["brand_id"]): r["composed"] for r in answer["requests"]
    }
    if adapters_dir is None:
        from adapters.registry import adapters_root

        adapters_dir = registry.root if registry is not None else adapters_root()
    cards, card_basis = main_cards(answer.get("adapters", {}), adapters_dir)
    figures = score_copy(plans, results_of(answer, plans), MainSeenLines(composed, cards))
    dropped = answer.get("dropped_fields", {})
    not_computed = {
        "rule_breaks": f"the CopyResult of {ref} (6c07a30's API, which the driver is written "
        "against) does not record what each generation broke: only the failures of dropped "
        "copy, nothing for copy a rule fixed",
        "reproducible": (
            f"the CopyRequest of {ref} has no seed: same-seed / other-seed reruns do not apply"
            if "seed" in dropped
            else "main's first plan was not rerun"
        ),
    }
    figures.pop("rule_breaks")
    for key in ("never_seen", "seen", "unknown"):
        figures["subsets"][key].pop("rule_breaks", None)
    never = _never_seen_note(figures["subsets"]["variants"], cards)
    if never:
        not_computed["subsets.never_seen"] = never
    n = figures["variants"]
    figures.update(
        model="none (template copy only)" if model == "none" else model,
        kinds=answer.get("kinds"),
        runtime=answer.get("runtime"),
        seconds=answer["seconds_write"],
        seconds_load=answer["seconds_load"],
        seconds_per_variant=round(answer["seconds_write"] / max(1, n), 2),
        failures=[f for r in answer["requests"] for f in r["failures"]],
        checked_by_current_rules=recheck(answer, sent),
        not_computed=not_computed,
    )
    rt = answer.get("runtime")
    source = {
        "ref": ref,
        "commit": commit,
        "measured": f"in this run ({seconds} s with checkout and model load)",
        "code": f"a temporary git worktree of {ref}, run by {sys.executable} with PYTHONPATH "
        "the worktree, HF_HUB_OFFLINE=1",
        "model": figures["model"]
        + (f" ({rt['model_name']}, merged {rt['merged_dtype']})" if rt else ""),
        "adapters": "main's own (the worktree's adapters/), as its write_copy_many composes "
        f"them (kinds {'+'.join(answer.get('kinds') or [])}): "
        + (", ".join(sorted(card_basis)) or "none"),
        "adapter_cards": card_basis,
        "products": f"the same {len(plans)} plans, {len(sent)} products and placements, "
        f"{variants} variant(s) each, drawn from seed {seed}; asked by product name and "
        f"catalog category, which the CopyRequest of {ref} takes as they are (no GTIN lookup)",
        "categories_main_read_differently": _categories_differ(answer, plans),
        "seed": f"products drawn from seed {seed}; "
        + (
            f"fields the CopyRequest of {ref} lacks were dropped: {', '.join(sorted(dropped))}"
            if dropped
            else "no request field dropped"
        ),
        "scoring": "tools.creative.bench.score_copy: the bench's own scoring of its variants",
        "seconds_per_variant": "main's write_copy_many seconds / variants, model load "
        f"({answer['seconds_load']} s) excluded",
    }
    return figures, source
