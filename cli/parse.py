"""`rmn parse`: a brief in plain words -> the structured brief the planner works from."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.catalog import data_dir_catalog
from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError


def _human(brief: dict[str, Any]) -> str:
    floor = f", ROAS >= {brief['roas_floor']:g}" if brief["roas_floor"] is not None else ""
    start, end = brief["flight_start"], brief["flight_end"]
    flight = f"{start or 'open'} to {end or 'open'}" if start or end else "not stated"
    lines = [
        f"brand         {brief['brand_id']}",
        f"budget        ${brief['total_budget']:,.0f} "
        f"({brief['experiment_reserve']:.0%} held back for experiments)",
        f"retailers     {', '.join(brief['retailers']) or 'all the brand sells through'}",
        f"objective     {brief['objective']}{floor}",
        f"flight        {flight}",
        f"out of stock  {'excluded' if brief['exclude_oos'] else 'included'}",
        f"parsed by     {brief['parsed_by']}",
    ]
    # the brief's split by retailer, its caps and minimums, where it gives them
    for label, key in (("split", "retailer_split"), ("at most", "retailer_caps"),
                       ("at least", "retailer_mins")):  # fmt: skip
        if brief.get(key):
            amounts = ", ".join(f"{r} ${v:,.0f}" for r, v in brief[key].items())
            lines.insert(-1, f"{label:<14}{amounts}")
    lines += [f"warning: {w}" for w in brief["warnings"]]
    return "\n".join(lines)


def parse(
    brief: Annotated[str, typer.Argument(help="The brief, in plain words (quote it).")],
    brand: Annotated[str, typer.Option("--brand", "-b", help="Brand id, e.g. acme.")],
    today: Annotated[
        str | None,
        typer.Option("--today", help="The day the brief is written, YYYY-MM-DD (default: today)."),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path",
            help="rules | llm | production. Default: production (the model checked by the "
            "rules) when the LLM runtime and base model are installed, else the rules alone.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Whose catalog names the retailers and brands (default: RMN_DATA_DIR or data/, "
            "else the bundled one).",
        ),
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Parse a brief: budget, retailers, objective, ROAS floor, reserve, flight, out-of-stock."""
    with user_errors(as_json), data_dir_catalog(data_dir, must_exist=False):
        from tools.brief import (
            BriefError,
            model_available,
            parse_brief,
            parse_brief_production,
            runtime_generate_json,
        )
        from tools.brief.llm import PATHS
        from tools.brief.schema import check_brand

        check_brand(brand)
        try:
            day = date.fromisoformat(today) if today else date.today()
        except ValueError:
            raise BriefError(
                f"--today must be a date as YYYY-MM-DD, got {today!r}", field="today"
            ) from None
        if path is not None and path not in PATHS:
            raise BriefError(f"unknown --path {path!r}; use one of {', '.join(PATHS)}", path=path)
        chosen = path or "production"
        generate = None
        available, why = model_available()
        if chosen != "rules" and available:
            from tools.policy import brand_owners

            try:
                generate = runtime_generate_json(brand, tenant=brand_owners().get(brand, brand))
            except RMNError as err:
                why = err.message
        if chosen == "llm" and generate is None:
            raise BriefError(f"--path llm needs the model: {why}", path="llm")
        if chosen == "production" and generate is None:
            result = parse_brief_production(brief, brand, day, None, no_model_reason=why)
        else:
            result = parse_brief(brief, brand, day, chosen, generate)
        emit(result.model_dump(mode="json"), as_json, _human)
