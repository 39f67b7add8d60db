"""`rmn evaluate plans`: compare flight plans on seeded simulated worlds against the truth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors
from tools.errors import RMNError

app = typer.Typer(
    help="Evaluate planning against simulated worlds with known ground truth.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Evaluate planning against simulated worlds with known ground truth."""


_LABELS = {
    "oracle": "oracle (true curves)",
    "full": "ours, full view",
    "cleanroom": "ours, clean room only",
    "equal_split": "equal split",
    "roas_proportional": "attributed-ROAS split",
}


def _ci(m: dict[str, Any], fmt: str) -> str:
    if m["ci95"] is None:
        return format(m["mean"], fmt)
    lo, hi = m["ci95"]
    return f"{format(m['mean'], fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def _human(r: dict[str, Any]) -> str:
    s = r["settings"]
    lines = [
        f"{s['worlds']} world(s) from seed {s['seed']}, {s['events']:,} records each; brand "
        f"{s['brand']}, objective {s['objective']}, ROAS floor {s['roas_floor']}, reserve "
        f"{s['reserve_fraction']:.0%}"
        f"{', retailer spend rules applied' if s.get('policy_limits') else ''}. "
        "Means with 95% intervals over worlds:",
        f"{'plan':<24}{'incr. margin':>36}{'incr. revenue':>36}{'iROAS':>22}"
        f"{'SKU coverage':>22}{'spend on OOS':>32}",
    ]
    for name, label in _LABELS.items():
        p = r["plans"][name]
        lines.append(
            f"{label:<24}{_ci(p['incremental_margin'], ',.0f'):>36}"
            f"{_ci(p['incremental_revenue'], ',.0f'):>36}{_ci(p['iroas'], '.2f'):>22}"
            f"{_ci(p['sku_coverage'], '.2f'):>22}{_ci(p['spend_on_oos'], ',.0f'):>32}"
        )
    share = r["share_of_oracle_margin"]["full"]
    lines.append(
        f"full view's share of oracle margin: {_ci(share, '.4f')} "
        f"(target {share['target']}, {'met' if share['met'] else 'not met'})"
    )
    g = r["federation_gain"]
    lines.append(
        f"federation gain (full - clean room only): margin {_ci(g['incremental_margin'], ',.0f')}"
        f" ({_ci(g['incremental_margin_pct'], '.1f')} %), iROAS {_ci(g['iroas'], '+.2f')}, "
        f"SKU coverage {_ci(g['sku_coverage'], '+.2f')}"
    )
    for name, sens in r.get("sensitivity", {}).items():
        lines.append(
            f"sensitivity {name}: share of oracle margin "
            f"{_ci(sens['share_of_oracle_margin'], '.4f')}, spend on OOS "
            f"{_ci(sens['spend_on_oos'], ',.0f')}"
        )
    lines.append(f"finished in {r['seconds']:.0f} s")
    return "\n".join(lines)


@app.command()
def plans(
    worlds: Annotated[int, typer.Option(min=1, help="Seeded worlds to simulate.")] = 20,
    events: Annotated[int, typer.Option(min=1000, help="Delivery records per world.")] = 300_000,
    seed: Annotated[int, typer.Option(min=0, help="First world's seed.")] = 1,
    brand: Annotated[str, typer.Option(help="The brand whose flight is planned.")] = "acme",
    budget: Annotated[
        float | None, typer.Option(help="Flight budget, USD (default: the brand's scale).")
    ] = None,
    reserve: Annotated[float, typer.Option(help="Share held back for experiments.")] = 0.1,
    roas_floor: Annotated[
        float, typer.Option("--roas-floor", help="Minimum iROAS of the plan (0: none).")
    ] = 2.0,
    days: Annotated[int, typer.Option(help="History days per world.")] = 90,
    flight_days: Annotated[int, typer.Option("--flight-days", help="Flight length.")] = 28,
    oos_threshold: Annotated[
        float,
        typer.Option(
            "--oos-threshold",
            help="The full view zeroes SKUs at or above this stock-out risk and prices the "
            "risk in below it (1.01: price it in everywhere).",
        ),
    ] = 0.9,
    policy: Annotated[
        bool,
        typer.Option(
            "--policy-limits/--no-policy-limits",
            help="Optimizer plans obey the retailers' placement caps, minimum daily budgets "
            "and category rules.",
        ),
    ] = False,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Write the worlds here instead of a temp dir.")
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Oracle vs our plans (full and clean-room-only views) vs naive splits, over N worlds."""
    with user_errors(as_json):
        from pydantic import ValidationError

        from tools.evaluate import EvalSettings, WorldResult, evaluate_plans

        try:
            settings = EvalSettings(
                worlds=worlds,
                seed=seed,
                events=events,
                days=days,
                flight_days=flight_days,
                brand=brand,
                budget=budget,
                reserve_fraction=reserve,
                roas_floor=roas_floor or None,
                oos_threshold=oos_threshold if oos_threshold <= 1 else None,
                policy_limits=policy,
            )
        except ValidationError as err:
            first = err.errors()[0]
            raise RMNError(f"--{'-'.join(map(str, first['loc']))}: {first['msg']}") from None

        def tick(i: int, r: WorldResult) -> None:
            if progress_enabled():
                share = r.plans["full"].incremental_margin / r.plans["oracle"].incremental_margin
                print(
                    f"world {i + 1}/{worlds} (seed {r.seed}): full view at {share:.3f} of "
                    f"oracle margin, {r.seconds:.1f} s",
                    file=sys.stderr,
                )

        emit(evaluate_plans(settings, keep, tick), as_json, _human)
