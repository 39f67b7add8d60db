"""A brand adapter scored as the product serves it, for the versions gate.

The held-out eval (`adapters.training.evaluate`) decodes a brand adapter freely on prompts in
the training rows' shape. The product does not: the creative tool asks for each variant under
the copy grammar (title case where the retailer asks for it, one body sentence opening on the
variant's angle, the facts' numbers only), re-asks on a rule break and falls back to template
copy when the attempts run out. Measured (2026-12-05): initech's v5 lost the free gate, 0.467
against 0.500, on capitalization in 13 of 30 answers, which the served grammar never lets
through; acme's v8 and v9 won the free gate and then wrote fewer variants as written once
served. So a brand adapter is gated on what a user gets: `run_language_bench` on that brand
alone, every line the held-out rule keeps out of training, with the version composed wherever
the registry composes it (a version stacked on another `task/creative` than the installed one
is left out, and is scored as what is then served: retailer + task).

The gate's seeds (`SERVED_SEEDS`) are not the seeds `rmn bench language` reports (0 to 2), so
the variants the gate picks a version on are not the ones the bench's figures are read from;
the products come from the same held-out lines (a brand has 4 to 6).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.registry import KINDS
from adapters.versions import AdapterVersionError, version_folder

# 100 and 101 until 2026-12-06, when their copy was read to fix the re-asks after a repeat
# (`tools.creative.avoid.avoid_headlines`); a gate on seeds read while shaping the tool would
# favour what the fix was shaped on, so the gate moved to seeds nothing had read.
# 300 and 301 until later that day, when initech's v11 copy was read on them to see what the
# gate's refusals were (repeats, and headlines a reviewer rated nonsense: the copy tool now
# has the model choose its headline and its body's end among the product's own phrases).
SERVED_SEEDS: tuple[int, ...] = (700, 701)
SERVED_PLANS = 10
SERVED_METRIC = "compliant_as_written"
# The rates pooled over the seeds; the gate ranks on the primary, then on the mean of the rest
# (each higher is better: the fallback share enters as its complement).
_RATES = (
    "compliant_as_written",
    "headline_differs_from_product",
    "body_names_benefit_or_claim",
    "voice_words_used",
)


@contextmanager
def served_root(root: Path, kind: str, adapter_id: str, version: str) -> Iterator[Path]:
    """A temporary adapters root in which `kind/adapter_id` is `version` and every other
    adapter under `root` is the installed one (links, nothing copied)."""
    folder = root / kind / adapter_id
    chosen = version_folder(folder, version).resolve()
    with tempfile.TemporaryDirectory(prefix="rmn-served-") as tmp:
        for k in KINDS:
            if not (root / k).is_dir():
                continue
            (Path(tmp) / k).mkdir()
            for path in sorted(p for p in (root / k).iterdir() if p.is_dir()):
                target = chosen if (k, path.name) == (kind, adapter_id) else path.resolve()
                (Path(tmp) / k / path.name).symlink_to(target, target_is_directory=True)
        yield Path(tmp)


def pooled(runs: list[dict[str, Any]], adapter: str) -> tuple[dict[str, float], int, int]:
    """The bench runs' rates pooled over their variants (the fallback share as its complement,
    `not_template_fallback`), how many variants there were and how many composed `adapter`
    (kind/id)."""
    total = sum(int(r["variants"]) for r in runs)
    if total == 0:
        raise AdapterVersionError(
            f"the served bench wrote no copy for {adapter}: its brand has no held-out product "
            "at the retailers it sells through, so there is nothing to score it on"
        )

    def mean(key: str) -> float:
        return round(sum(float(r[key]) * int(r["variants"]) for r in runs) / total, 4)

    composed = sum(
        any(a.split("@")[0] == adapter for a in v.get("adapters", []))
        for r in runs
        for v in r.get("per_variant", [])
    )
    scores = {k: mean(k) for k in _RATES}
    scores["not_template_fallback"] = round(1.0 - mean("template_fallback"), 4)
    return scores, total, composed


def served_scores(
    root: Path,
    kind: str,
    adapter_id: str,
    version: str,
    *,
    seeds: tuple[int, ...] = SERVED_SEEDS,
    plans: int = SERVED_PLANS,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`version` of the brand adapter `kind/adapter_id` scored as served (module docstring):
    in the shape `gate.version_scores` returns, with how it was served."""
    from adapters.chat_model import RMNChatModel
    from adapters.runtime import Runtime
    from tools.creative.bench import run_language_bench

    name = f"{kind}/{adapter_id}"
    with served_root(root, kind, adapter_id, version) as tmp:
        llm = RMNChatModel(runtime=Runtime.load(root=tmp))
        runs = []
        for seed in seeds:
            if log:
                log(f"{name} {version}: served bench, seed {seed}, {plans} plans")
            runs.append(
                run_language_bench(
                    llm, seed=seed, plans=plans, brands=[adapter_id],
                    held_out_only=False, reproducible=False,
                )  # fmt: skip
            )
    scores, variants, composed = pooled(runs, name)
    served = {"seeds": list(seeds), "plans": plans, "variants": variants, "composed": composed}
    return {
        "primary_metric": SERVED_METRIC,
        "scores": scores,
        "items": variants,
        "reused": False,
        "served": served,
        **({} if composed else {"served_as": f"without {name} (the runtime leaves {version} out)"}),
    }
