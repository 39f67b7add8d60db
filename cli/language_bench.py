"""`rmn bench language`: copy quality on held-out products, per brand and retailer, next to
the figures of main before the language work: measured in the same run with `--main-ref REF`
(main's creative tool at REF writes copy for the same products; `tools.creative.main_copy`),
else read from `tools/creative/bench_main.json` where it was recorded.
Every figure on all variants and on those whose product line no composed adapter was trained
on (read from the adapters' data cards); the targets are judged on the latter."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, machine, user_errors
from tools.errors import RMNError

MAIN_FIGURES = Path(__file__).resolve().parents[1] / "tools" / "creative" / "bench_main.json"
SHOWN = (
    "compliant_as_written",
    "template_fallback",
    "headline_differs_from_product",
    "body_names_benefit_or_claim",
    "brand_banned_words",
    "avoided_terms",
    "voice_words_used",
    "plans_with_repeated_sentences",
    "seconds_per_variant",
)


# What `--record-main` keeps of main's measurement: the figures, not every variant's text.
_NOT_RECORDED = ("per_variant", "samples", "failures", "per_brand_retailer", "repeated")


def _draw(r: dict[str, Any]) -> dict[str, Any]:
    """What decides the products a run draws: runs with the same draw ask for the same copy."""
    keys = ("seed", "plans_per_brand", "variants_per_request", "products_from")
    return {**{k: r.get(k) for k in keys}, "brands": sorted(r.get("per_brand") or {})}


def record_main(result: dict[str, Any], path: Path = MAIN_FIGURES) -> None:
    """Keep main's figures measured in this run (`--main-ref`) for runs without it."""
    from adapters.versions import now

    main = {k: v for k, v in result["main"].items() if k not in _NOT_RECORDED}
    source = {**result["main_source"], "recorded_at": now(), "draw": _draw(result),
              "machine": result.get("machine")}  # fmt: skip
    path.write_text(jsonlib.dumps({"main": main, "main_source": source}, indent=1) + "\n")


def _main_figures(result: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Main's recorded figures and where they come from (None, None when none are recorded);
    a note in the source when they were drawn differently from `result`."""
    if not MAIN_FIGURES.is_file():
        return None, None
    saved = jsonlib.loads(MAIN_FIGURES.read_text())
    if "main_source" not in saved:  # a whole run saved by --save-as-main on a checkout of main
        return saved, None
    source = dict(saved["main_source"])
    source["measured"] = f"recorded {source.get('recorded_at')}, not in this run"
    if source.get("draw") != _draw(result):
        source["draw_differs"] = (
            f"main was measured on another draw ({source.get('draw')}) than this run "
            f"({_draw(result)}): other products, so compare loosely"
        )
    return saved["main"], source


NO_MAIN = (
    f"no figures of main recorded ({MAIN_FIGURES.name} is not in the repository; "
    "`--save-as-main` on a checkout of main writes it)"
)


def _seen_lines(r: dict[str, Any]) -> list[str]:
    """What was held out: how many variants' lines a composed adapter saw, and which."""
    sub = r.get("subsets")
    if not sub:
        return ["no per-variant record of which lines the adapters saw (a run before it)"]
    n = sub["variants"]
    cards = ", ".join(f"{k}: {v}" for k, v in r.get("adapter_cards", {}).items()) or "none"
    lines = [
        f"products from {r.get('products_from', 'the held-out rule')}; "
        f"never seen in any composed adapter's training: {n['never_seen']} of {n['all']} "
        f"variants, seen: {n['seen']}, unknown (a card does not say): {n['unknown']}",
        f"adapter cards: {cards}",
    ]
    if sub["lines"]["seen"]:
        lines.append(f"lines an adapter was trained on: {', '.join(sub['lines']['seen'])}")
    if sub["lines"]["unknown"]:
        lines.append(f"lines no card can place: {', '.join(sub['lines']['unknown'])}")
    if r.get("brands_left_out"):
        lines.append(f"brands left out (no such line): {', '.join(r['brands_left_out'])}")
    return lines


def _human(r: dict[str, Any]) -> str:
    main = r.get("main") or {}
    never = (r.get("subsets") or {}).get("never_seen", {})
    lines = [
        f"{r['variants']} variants, {r['plans']} plans on held-out products ({r['model']}, "
        f"{r['decode']}, adapters {'+'.join(r['kinds'])}, seed {r['seed']}, {r['seconds']} s)",
        *_seen_lines(r),
    ]
    if not main:
        lines.append(NO_MAIN)
    lines += _main_lines(r)
    lines.append(f"{'figure':<34}{'all':>8}{'never seen':>12}{'main':>10}  target (never seen)")
    for key in SHOWN:
        target = r["targets"].get(key, {})
        mark = "" if not target else (" ok" if target["met"] else " MISSED")
        was = main.get(key, "")
        subset = never.get(key, "") if key != "seconds_per_variant" else ""
        lines.append(
            f"{key:<34}{r.get(key)!s:>8}{subset!s:>12}{was!s:>10}  {target.get('target', '')}{mark}"
        )
    if never:
        lines.append(f"{'variants':<34}{r['variants']!s:>8}{never['variants']!s:>12}")
        if not never["variants"]:
            lines.append("no never-seen variant: the targets are not judged (--held-out-only)")
    lines.append("per brand / retailer (compliant as written, fallback, headline, benefit):")
    for group in ("per_brand", "per_retailer"):
        for key, t in r[group].items():
            lines.append(f"  {key:<10} {_four(t)}  ({t['variants']} variants)")
            u = never.get(group, {}).get(key)
            if u:
                lines.append(f"  {'':<10} {_four(u)}  ({u['variants']} never seen)")
            m = main.get(group, {}).get(key)
            if m and r.get("main_source"):
                lines.append(f"  {'':<10} {_four(m)}  ({m['variants']} of main)")
    if "reproducible" in r:
        lines.append(f"reproducible: {r['reproducible']}")
    breaks = r.get("rule_breaks")
    if breaks:
        lines.append(
            f"model generations: {breaks['generations']}, clean as written "
            f"{breaks['clean_generations']}; broke: {breaks['by_kind'] or 'nothing'}"
        )
        lines.append(f"fallback reasons: {breaks['fallback_reasons'] or 'none'}")
    return "\n".join(lines)


def _main_lines(r: dict[str, Any]) -> list[str]:
    """What the main column is: measured in this run (`--main-ref`) or recorded by one
    (`--record-main`)."""
    source, main = r.get("main_source"), r.get("main") or {}
    if not source:
        return []
    lines = [
        f"main: {source['ref']} ({source['commit'][:12]}) {source['measured']}; "
        f"{source['model']}; {source['products']}",
        f"main's adapters: {source['adapters']}",
        *(f"  {k}: {v}" for k, v in source.get("adapter_cards", {}).items()),
        f"main's seed: {source['seed']}",
        f"main's seconds per variant: {source['seconds_per_variant']}",
    ]
    lines += [f"main's categories differ: {x}" for x in source["categories_main_read_differently"]]
    if source.get("draw_differs"):
        lines.append(source["draw_differs"])
    recheck = main.get("checked_by_current_rules")
    if recheck:
        lines.append(
            f"main's copy under the current rules: {recheck['pass_current_rules']} pass, "
            f"{recheck['compliant_as_written_by_current_rules']} compliant as written; "
            f"flagged: {recheck['flagged_by'] or 'nothing'}"
        )
    sub = (main.get("subsets") or {}).get("variants")
    if sub:
        lines.append(
            f"main's variants never seen by its adapters: {sub['never_seen']} of {sub['all']}, "
            f"seen: {sub['seen']}, unknown: {sub['unknown']}"
        )
    lines += [
        f"not computed for main: {k}: {why}" for k, why in main.get("not_computed", {}).items()
    ]
    return lines


def _four(t: dict[str, Any]) -> str:
    return (
        f"{t['compliant_as_written']:.2f} {t['template_fallback']:.2f} "
        f"{t['headline_differs_from_product']:.2f} {t['body_names_benefit_or_claim']:.2f}"
    )


BrandOption = Annotated[
    list[str] | None,
    typer.Option("--brand", help="Only these brands (repeatable; default: all four)."),
]
ResummarizeOption = Annotated[
    Path | None,
    typer.Option(
        "--resummarize",
        help="Load no model: re-summarize this saved --json run into all / never-seen variants.",
    ),
]
MainRefOption = Annotated[
    str | None,
    typer.Option(
        "--main-ref",
        help="Measure main in this run: the creative tool at this git ref (e.g. 6c07a30), in a "
        "temporary worktree with its own adapters, writes copy for the same products, scored "
        "the same way (instead of reading bench_main.json).",
    ),
]
RecordOption = Annotated[
    bool,
    typer.Option(
        "--record-main",
        help=f"With --main-ref: keep main's figures in {MAIN_FIGURES.name}, which runs without "
        "--main-ref print beside their own.",
    ),
]
SaveOption = Annotated[
    Path | None,
    typer.Option("--save-as-main", help="Also write this run's figures to this file."),
]


def language(
    plans: int = typer.Option(3, "--plans", min=1, max=20, help="Plans per brand."),
    variants: int = typer.Option(2, "--variants", min=1, max=6, help="Variants per retailer."),
    seed: int = typer.Option(0, "--seed", min=0, help="Products, placements and sampling."),
    model: str = typer.Option("smollm2", "--model", help="smollm2 or none (templates only)."),
    brand: BrandOption = None,
    repro: bool = typer.Option(
        True, "--repro/--no-repro", help="Rerun the first plan with the same and another seed."
    ),
    held_out_only: bool = typer.Option(
        True,
        "--held-out-only/--all-lines",
        help="Products only from lines no composed adapter was trained on (its data card; "
        "brands with none are left out), the default; --all-lines: every line the held-out "
        "rule keeps out of training, judged on the never-seen subset.",
    ),
    resummarize: ResummarizeOption = None,
    save_main: SaveOption = None,
    main_ref: MainRefOption = None,
    record: RecordOption = False,
    json: bool = JsonOption,
) -> None:
    """Copy on held-out products: compliant as written, fallback share, specific headlines and
    bodies, brand voice, repeated sentences; per brand and retailer, next to main's figures;
    each on all variants and on those whose line no composed adapter saw in training."""
    with user_errors(json):
        from tools.creative.bench import run_language_bench
        from tools.world.catalog import BRANDS

        if resummarize is not None:
            from adapters.registry import AdapterRegistry
            from tools.creative.resummarize import resummarize_saved

            saved = jsonlib.loads(resummarize.read_text())
            emit(resummarize_saved(saved, AdapterRegistry()), json)
            return

        if record and main_ref is None:
            raise RMNError("--record-main keeps what --main-ref measures: give --main-ref too")
        brand = brand or []
        unknown = [b for b in brand if b not in BRANDS]
        if unknown:
            raise RMNError(f"unknown brand(s) {unknown}; use {', '.join(BRANDS)}")
        if model not in ("smollm2", "none"):
            raise RMNError(f"--model is smollm2 or none, not {model!r}")
        llm = None
        if model == "smollm2":
            from adapters.chat_model import RMNChatModel
            from adapters.shared import shared_runtime

            llm = RMNChatModel(runtime=shared_runtime())
        log = (lambda line: typer.echo(line, err=True)) if not json else None
        result = run_language_bench(
            llm, seed=seed, plans=plans, variants=variants, brands=brand or None,
            reproducible=repro, held_out_only=held_out_only, log=log,
        )  # fmt: skip
        result["machine"] = machine()
        if save_main is not None:
            save_main.write_text(jsonlib.dumps(result, indent=1) + "\n")
        if main_ref is not None:
            from tools.creative.main_copy import measure_main

            registry = llm.runtime.registry if llm is not None else None
            result["main"], result["main_source"] = measure_main(
                result, main_ref, model=model, registry=registry, brands=brand or None,
                held_out_only=held_out_only, log=log,
            )  # fmt: skip
            if record:
                record_main(result)
        else:
            result["main"], source = _main_figures(result)
            if source is not None:
                result["main_source"] = source
        if result["main"] is None:
            result["main_note"] = NO_MAIN
        emit(result, json, _human)
