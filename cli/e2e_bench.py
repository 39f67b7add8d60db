"""`rmn bench e2e`: seconds from a brief to a plan ready for approval, per node, warm.

Warm means what a running service has: the model, its adapters, the policy index, the market
data and the tenant's fitted curves are loaded by one untimed plan first. Each timed brief runs
on a new thread until the approval interrupt; a brief the planner asks to confirm is confirmed
(that wait is not the user's) and counted.

`--main-ref REF` (e.g. 6c07a30, the code before the language work): after the current code's
briefs, REF's own `rmn bench e2e --json` runs in a temporary git worktree of REF, on this
interpreter, offline, with its own adapters (`tools.main_ref`), on the same number of briefs;
its JSON goes under `main`, what was run and what differs under `main_source`. Its figures are
its own: what its output lacks is left out and said, never filled in.
"""

from __future__ import annotations

import json as jsonlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.common import JsonOption, emit, machine, user_errors
from tools.main_ref import MainRefError, checkout, resolve_ref, run_in
from tools.paths import PROJECT_ROOT

if TYPE_CHECKING:
    from tools.world import WorldSpec

BRIEFS = (
    "Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments",
    "Spend $800k on Alpha to maximize incremental revenue, keep 5% for tests",
    "Put $600,000 into Beta and Delta Home for incremental margin, ROAS at least 2.5",
    "Split 1.5 million dollars across Alpha, Beta and Delta Home to maximize profit, "
    "15% experiment reserve",
    "Allocate USD 900,000 across all our retailers to maximize return on ad spend",
)


# Brief to approval-ready with every language step on the model, warm, 2 quiet cores (#15).
TARGET_P50_S = 15.0

DataOption = typer.Option(
    None, "--data-dir", help="Market data to plan on (default: a fresh temporary one)."
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_e2e_bench(
    briefs: int,
    model: str,
    data_dir: Path | None,
    brand: str = "acme",
    world: WorldSpec | None = None,
    compare_fast_forward: bool = False,
    every_step_on_model: bool = False,
) -> dict[str, Any]:
    """Plan `briefs` briefs to their approval question on `data_dir`, or on a simulated market
    (`world`, the demo's by default) built in a temporary folder first. With
    `compare_fast_forward`, the same briefs again with grammar-forced tokens decoded one pass
    each (`without_fast_forward`, `p50_speedup`). With `every_step_on_model`, the model also
    writes the reflection's words (`reflect_with_model`, off by default; the rationale is on
    the model by default), as the issue's speed target asks."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from graph import Context, build_graph, run_config

    tmp = None
    if data_dir is None:  # a simulated market, built once before the timed runs
        from tools.world import ensure_world

        tmp = tempfile.TemporaryDirectory(prefix="rmn-e2e-")
        data_dir = Path(tmp.name)
        ensure_world(data_dir, world)
    ctx = Context(
        tenant=brand,
        model=model,
        data_dir=str(data_dir),
        # The rationale is on the model by default; the reflection's words only here.
        **({"reflect_with_model": True} if every_step_on_model else {}),
    )
    app = build_graph(InMemorySaver())

    def plan(i: int, brief: str) -> dict[str, Any]:
        config = run_config(f"bench-{i}", tenant=brand)
        started = time.perf_counter()
        out = app.invoke({"brief": brief, "brand_id": brand}, config, context=ctx)
        confirmed = False
        kind = _kind(out)
        if kind == "confirm_brief":
            confirmed = True
            out = app.invoke(Command(resume={"action": "approve"}), config, context=ctx)
            kind = _kind(out)
        seconds = time.perf_counter() - started
        plan_out = out.get("plan") or {}
        copy = plan_out.get("copy") or []
        nodes = {k: round(v, 3) for k, v in (out.get("timings") or {}).items()}
        return {
            "brief": brief,
            "seconds": round(seconds, 3),
            "stopped_at": kind or out.get("status"),
            "confirmed_brief": confirmed,
            "parsed_by": (out.get("parsed") or {}).get("parsed_by"),
            "copy_paths": [c.get("path") for c in copy],
            # Who wrote the rest of what an approver reads: model or template, and why not.
            "rationale_paths": {
                t.get("kind"): t.get("path") for t in plan_out.get("rationale") or []
            },
            "rationale_reasons": [
                t["reason"] for t in plan_out.get("rationale") or [] if t.get("reason")
            ],
            "reflection_by": (plan_out.get("reflection") or {}).get("written_by"),
            # Copy-writing time per variant the plan carries (rewrites governance asked for
            # included): the figure the creative tests used to assert on the wall clock.
            "creative_s_per_variant": (
                round(nodes["creative"] / len(copy), 3) if copy and "creative" in nodes else None
            ),
            "nodes": nodes,
        }

    slow_runs: list[dict[str, Any]] = []
    try:
        warm_start = time.perf_counter()
        warmup = plan(-1, BRIEFS[0])
        warm_seconds = time.perf_counter() - warm_start
        runtime = _runtime(ctx)  # loaded by the warm-up
        kept = _prefix_counts(runtime)
        # Which decode path the runtime chose on this CPU (adapters/decoding.py).
        decode = runtime.stats().get("decode_path") if runtime is not None else None
        comparing = compare_fast_forward and runtime is not None
        setting = runtime.fast_forward if runtime is not None else None
        try:
            if comparing:
                runtime.fast_forward = True
            runs = [plan(i, BRIEFS[i % len(BRIEFS)]) for i in range(briefs)]
            if comparing:  # the same briefs, forced tokens one pass each, in this process
                runtime.fast_forward = False
                slow_runs = [plan(briefs + i, BRIEFS[i % len(BRIEFS)]) for i in range(briefs)]
        finally:
            if runtime is not None:
                runtime.fast_forward = setting
    finally:
        if tmp is not None:
            tmp.cleanup()
    out = _summary(runs) | {"model": model, "briefs": briefs,
                            "warmup_seconds": round(warm_seconds, 2),
                            "warmup_stopped_at": warmup["stopped_at"],
                            "fast_forward": True if slow_runs else setting,
                            "decode_path": decode, "machine": machine(),
                            "prefix_cache": _prefix_counts(runtime, since=kept),
                            "every_step_on_model": every_step_on_model}  # fmt: skip
    if slow_runs:
        slow = _summary(slow_runs)
        out["without_fast_forward"] = {k: slow[k] for k in ("p50_s", "p95_s", "per_node_median_s")}
        if out["p50_s"] and slow["p50_s"]:
            out["p50_speedup"] = round(slow["p50_s"] / out["p50_s"], 2)
    return out


def _runtime(ctx: Any) -> Any:
    """The runtime the graph's model runs on (None without a model)."""
    from graph.llm import chat_model

    llm = chat_model(ctx)
    return llm.runtime if llm is not None else None


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ready = [r for r in runs if r["stopped_at"] == "approval"]
    totals = [r["seconds"] for r in ready]
    per_node: dict[str, list[float]] = {}
    for r in ready:
        for node, s in r["nodes"].items():
            per_node.setdefault(node, []).append(s)
    return {
        "approval_ready": len(ready),
        "p50_s": round(statistics.median(totals), 2) if totals else None,
        "p95_s": round(_pct(totals, 0.95), 2) if totals else None,
        "per_node_median_s": {k: round(statistics.median(v), 3) for k, v in per_node.items()},
        "creative_s_per_variant_p50": _median(r["creative_s_per_variant"] for r in ready),
        "confirmed_briefs": sum(r["confirmed_brief"] for r in runs),
        "written_by": _written_by(ready),
        "target_p50_s": TARGET_P50_S,
        "target_met": bool(totals) and statistics.median(totals) <= TARGET_P50_S,
        "runs": runs,
    }


def _written_by(ready: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """How often each path wrote each kind of text in the approval-ready plans: the brief's
    reading (`parsed_by`), copy variants (llm | repaired | fixed | fallback), the rationale
    texts (model | template) and the reflection's words (llm | template)."""
    tallies: dict[str, Counter[str]] = {k: Counter() for k in ("brief", "copy", "rationale")}
    tallies["reflection"] = Counter()
    for r in ready:
        tallies["brief"][str(r.get("parsed_by"))] += 1
        tallies["copy"].update(str(p) for p in r.get("copy_paths") or [])
        tallies["rationale"].update(str(p) for p in (r.get("rationale_paths") or {}).values())
        if r.get("reflection_by"):
            tallies["reflection"][r["reflection_by"]] += 1
    return {k: dict(sorted(v.items())) for k, v in tallies.items()}


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def _prefix_counts(runtime: Any, since: dict[str, int] | None = None) -> dict[str, int] | None:
    """How often the timed plans found a prompt's worked example already computed (hits) or
    computed it (misses): `adapters.prefixes.PrefixCache`, counted after the warm-up."""
    stats = runtime.stats() if runtime is not None else {}
    if "prefix_hits" not in stats:
        return None
    before = since or {"hits": 0, "misses": 0}
    return {
        "hits": stats["prefix_hits"] - before["hits"],
        "misses": stats["prefix_misses"] - before["misses"],
    }


def _kind(out: dict[str, Any]) -> str | None:
    interrupts = out.get("__interrupt__") or []
    if not interrupts:
        return None
    from tools.plan.questions import question_of  # the planning stack loads only for a bench

    return (question_of(interrupts[0].value) or {}).get("kind")


# What `rmn bench e2e --json` prints at every ref it is compared with (6c07a30 has these): the
# figures compared, and their types. Anything else in main's output is kept as it is.
MAIN_FIELDS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "briefs": (int,),
    "approval_ready": (int,),
    "p50_s": (int, float, type(None)),
    "p95_s": (int, float, type(None)),
    "per_node_median_s": (dict,),
    "runs": (list,),
}
# Runs main's CLI as its `rmn` script does (6c07a30's cli/main.py has the same `app`).
MAIN_CLI = "import sys; sys.argv[0] = 'rmn'; from cli.main import app; app()"

Runner = Callable[..., str]


def main_argv(briefs: int, model: str) -> list[str]:
    """The command main runs: its own e2e bench, on this interpreter, the same briefs count and
    model, its JSON on stdout. Nothing else is passed: 6c07a30's bench has no option to choose
    briefs (it times BRIEFS[i % 5], as the current one does), no world and no fast-forward."""
    args = ["bench", "e2e", "--briefs", str(briefs), "--model", model, "--json"]
    return [sys.executable, "-c", MAIN_CLI, *args]


def parse_main(stdout: str, briefs: int) -> dict[str, Any]:
    """Main's e2e JSON from its stdout (its last non-empty line: `emit` prints one line; a
    library may have printed before it); a clear error if it is not what `rmn bench e2e
    --json` prints."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise MainRefError("main's e2e bench printed nothing on stdout")
    try:
        out = jsonlib.loads(lines[-1])
    except jsonlib.JSONDecodeError as err:
        raise MainRefError(
            f"main's e2e bench printed no JSON ({err}): {lines[-1].strip()[:300]!r}"
        ) from err
    if not isinstance(out, dict):
        raise MainRefError(f"main's e2e bench printed {type(out).__name__} JSON, not an object")
    if "error" in out:
        raise MainRefError(f"main's e2e bench failed: {jsonlib.dumps(out['error'])[:500]}")
    missing = sorted(set(MAIN_FIELDS) - set(out))
    if missing:
        raise MainRefError(f"main's e2e bench printed JSON without {', '.join(missing)}")
    wrong = [
        f"{k}={out[k]!r}"
        for k, types in MAIN_FIELDS.items()
        if not isinstance(out[k], types) or isinstance(out[k], bool)
    ]
    wrong += [
        f"per_node_median_s.{k}={v!r}"
        for k, v in out["per_node_median_s"].items()
        if isinstance(out["per_node_median_s"], dict)
        and (not isinstance(v, int | float) or isinstance(v, bool))
    ]
    if wrong:
        raise MainRefError(f"main's e2e bench printed figures of the wrong type: {wrong[:5]}")
    if out["briefs"] != briefs or len(out["runs"]) != briefs:
        raise MainRefError(
            f"main's e2e bench timed {out['briefs']} briefs ({len(out['runs'])} runs), not {briefs}"
        )
    return out


def _briefs_of(r: dict[str, Any]) -> list[str | None]:
    return [run.get("brief") if isinstance(run, dict) else None for run in r.get("runs", [])]


def measure_main(
    ref: str,
    current: dict[str, Any],
    *,
    data_dir: Path | None,
    root: Path = PROJECT_ROOT,
    runner: Runner | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(main's e2e JSON, what was run and what differs) for the current code's result
    `current`: REF's own `rmn bench e2e --json` (`main_argv`) run by `runner` (default `run_in`:
    worktree as cwd and PYTHONPATH, offline, its own adapters) in a temporary worktree of REF."""
    briefs, model = int(current["briefs"]), str(current["model"])
    argv = main_argv(briefs, model)
    started = time.perf_counter()
    with checkout(ref, root) as (tree, commit):
        if log is not None:
            log(f"main: {ref} ({commit[:12]}) at {tree}: its e2e bench, {briefs} brief(s)")
        run = runner if runner is not None else run_in
        stdout = run(tree, argv, None, log=log, what=f"main's e2e bench at {ref}")
    seconds = round(time.perf_counter() - started, 1)
    main = parse_main(stdout, briefs)
    same_briefs = _briefs_of(main) == _briefs_of(current)
    ours = {k for k in current if k not in ("main", "main_source", "main_note")}
    nodes, main_nodes = current["per_node_median_s"], main["per_node_median_s"]
    run_keys = {k for run in current["runs"] for k in run}
    main_run_keys = {k for run in main["runs"] if isinstance(run, dict) for k in run}
    source = {
        "ref": ref,
        "commit": commit,
        "measured": f"in this run, after the current code's briefs ({seconds} s with checkout, "
        "market, model load and warm-up)",
        "ran": f"{ref}'s own e2e bench: `rmn {' '.join(argv[3:])}` "
        f"(python -c {MAIN_CLI!r}), in a temporary git worktree of {ref} (removed afterwards), "
        f"by {sys.executable} with cwd and PYTHONPATH the worktree, HF_HUB_OFFLINE=1, and a "
        "temporary RMN_CACHE_DIR sharing only this checkout's converted base weights (models/)",
        "adapters": f"its own: the worktree's adapters/ at {ref}, as its graph binds them",
        "model": f"{model}, as the current run's (--model {model})",
        "briefs": (
            f"the same {briefs} brief(s) in the same order (checked on both outputs' runs): "
            "only --briefs, --model and --json are passed; 6c07a30's bench has no option to "
            "choose the briefs (it times BRIEFS[i % 5], the same five, as the current one does)"
            if same_briefs
            else f"{briefs} brief(s), NOT the same texts as the current run's (its runs say "
            f"{_briefs_of(main)}): only --briefs, --model and --json are passed"
        ),
        "same_briefs": same_briefs,
        "market": (
            f"{ref}'s default: a fresh temporary folder that its clean-room node fills with its "
            "default simulated market during its untimed warm-up (6c07a30's default: seed 7, 90 "
            "days, 1,000,000 records, the current default too), so its warmup_seconds include "
            "building the market; "
            + (
                "the current code built its default simulated market before its warm-up, with "
                "its own (newer) simulator"
                if data_dir is None
                else f"the current code planned on {data_dir}, which main was not given (its "
                "code would read and write it in its own, older formats)"
            )
        ),
        "target": f"main's target_p50_s ({main.get('target_p50_s', 'not in its output')}) and "
        f"target_met are its own; the current target is {current.get('target_p50_s')} s",
        "machine": "the same machine, in the same run, one after the other (see machine)",
        "not_in_main_output": sorted(ours - set(main)),
        "not_in_main_runs": sorted(run_keys - main_run_keys),
        "nodes_only_current": [k for k in nodes if k not in main_nodes],
        "nodes_only_main": [k for k in main_nodes if k not in nodes],
    }
    return main, source


def _num(v: Any) -> str:
    return f"{v:>10.2f}" if isinstance(v, int | float) and not isinstance(v, bool) else f"{'-':>10}"


def _brief_line(r: dict[str, Any]) -> str:
    return (
        f"{r['approval_ready']}/{r['briefs']} briefs reached approval on {r['model']}: "
        f"p50 {r['p50_s']} s, p95 {r['p95_s']} s (target p50 <= {r['target_p50_s']} s); "
        f"warm-up {r['warmup_seconds']} s; briefs confirmed: {r['confirmed_briefs']}"
    )


def _human(r: dict[str, Any]) -> str:
    main, source = r.get("main"), r.get("main_source") or {}
    lines = [_brief_line(r)]
    if main is None:
        lines.append("median seconds per node:")
        lines += [f"  {k:<18}{v:>8.2f}" for k, v in r["per_node_median_s"].items()]
    else:
        ref = source.get("ref", "main")
        commit = str(source.get("commit", ""))[:12]
        lines.append(
            f"main {ref} ({commit}), its own e2e bench in this run: {main['approval_ready']}/"
            f"{main['briefs']} briefs reached approval on {main['model']}; warm-up "
            f"{main.get('warmup_seconds', '-')} s (at 6c07a30 that builds its market); its "
            f"target p50 {main.get('target_p50_s', '-')} s; same briefs: "
            f"{source.get('same_briefs')}"
        )
        lines.append(f"  {'':<18}{'current':>10}{'main':>10}")
        lines.append(f"  {'p50 s':<18}{_num(r['p50_s'])}{_num(main['p50_s'])}")
        lines.append(f"  {'p95 s':<18}{_num(r['p95_s'])}{_num(main['p95_s'])}")
        lines.append("median seconds per node:")
        nodes, main_nodes = r["per_node_median_s"], main["per_node_median_s"]
        for k in [*nodes, *(k for k in main_nodes if k not in nodes)]:
            lines.append(f"  {k:<18}{_num(nodes.get(k))}{_num(main_nodes.get(k))}")
    if r["creative_s_per_variant_p50"] is not None:
        lines.append(f"copy: {r['creative_s_per_variant_p50']:.2f} s per variant (median)")
    who = r.get("written_by") or {}
    if any(who.values()):
        lines.append("written by: " + "; ".join(
            f"{k} " + ", ".join(f"{p} {n}" for p, n in v.items()) for k, v in who.items() if v
        ))  # fmt: skip
    slow = r.get("without_fast_forward")
    if slow:
        lines.append(f"without fast-forward: p50 {slow['p50_s']} s, p95 {slow['p95_s']} s "
                     f"(speed-up {r.get('p50_speedup')}x)")  # fmt: skip
    if main is not None:
        lacks = source.get("not_in_main_output") or []
        if lacks:
            lines.append(f"not in main's output (left out): {', '.join(lacks)}")
        only = [*source.get("nodes_only_current", []), *source.get("nodes_only_main", [])]
        if only:
            lines.append(f"nodes timed by one side only ('-': none): {', '.join(only)}")
    return "\n".join(lines)


def e2e(
    briefs: int = typer.Option(5, "--briefs", min=1, max=50, help="Timed briefs."),
    model: str = typer.Option("smollm2", "--model", help="smollm2, tiny or none."),
    data_dir: Path | None = DataOption,
    compare: bool = typer.Option(
        False,
        "--compare-fast-forward",
        help="Time the briefs again with grammar-forced tokens decoded one pass each.",
    ),
    every_step: bool = typer.Option(
        False,
        "--every-step-on-model",
        help="Let the model write the reflection's words too (off by default in the "
        "product: after its worked examples it writes the template's words).",
    ),
    main_ref: str | None = typer.Option(
        None,
        "--main-ref",
        metavar="REF",
        help="Also run REF's own e2e bench (e.g. 6c07a30) in a temporary git worktree, after "
        "the current code's, on the same number of briefs; its figures go under main.",
    ),
    json: bool = JsonOption,
) -> None:
    """Brief to approval-ready plan, warm: p50/p95 and seconds per node (next to main's with
    --main-ref)."""
    with user_errors(json):
        if main_ref is not None:
            resolve_ref(main_ref)  # an unknown ref fails before the current code is timed
        result = run_e2e_bench(
            briefs, model, data_dir, compare_fast_forward=compare, every_step_on_model=every_step
        )
        if main_ref is not None:
            # On stderr first: a main that fails or is stopped does not take these with it.
            typer.echo(f"current: {_brief_line(result)}", err=True)
            log = (lambda line: typer.echo(line, err=True)) if not json else None
            result["main"], result["main_source"] = measure_main(
                main_ref, result, data_dir=data_dir, log=log
            )
        emit(result, json, _human)
