"""`rmn bench bandit`: Thompson sampling of the experiment reserve against an equal split."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, user_errors


def _human(r: dict[str, Any]) -> str:
    err = r["posterior_error"]
    ratio = "n/a" if r["regret_ratio"] is None else f"{r['regret_ratio']:.3f}"
    return "\n".join(
        [
            f"{r['brand']}: {r['lines']} lines, ${r['daily_reserve_usd']:,.0f}/day reserve, "
            f"{r['rounds']} rounds in {r['seconds']:.2f} s",
            f"  cumulative regret  thompson ${r['final_regret_ts']:,.0f}  "
            f"equal split ${r['final_regret_equal']:,.0f}  ratio {ratio}",
            f"  thompson stays below equal split from round {r['crossover_round']}",
            f"  posterior |log error| on {r['funded_lines']} funded lines: "
            f"a {err['log_a_start']:.3f} -> {err['log_a_end']:.3f}, "
            f"b {err['log_b_start']:.3f} -> {err['log_b_end']:.3f}",
        ]
    )


def bandit(
    rounds: Annotated[int, typer.Option(min=1, help="Rounds (days) of reserve spend.")] = 50,
    seed: Annotated[int, typer.Option(help="World and sampling seed.")] = 7,
    json: bool = JsonOption,
) -> None:
    """Spend one brand's 10% experiment reserve by Thompson sampling on a generated world and
    compare cumulative regret with an equal split of the same budget."""
    with user_errors(json):
        from tools.explore import run_bandit_bench

        emit(run_bandit_bench(rounds=rounds, seed=seed), json, _human)
