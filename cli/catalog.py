"""`rmn check`, `rmn brands add`, `rmn retailers add`: the catalog as files.

A data directory is a catalog of its own (`retailers/<id>/`, `brands/<id>/`): these commands
scaffold its entries and check everything a plan will read, reporting each problem as
`file:line: what is wrong; what is allowed` (exit status 2 when there is any).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools import paths
from tools.errors import RMNError

DataDirOption = typer.Option(
    None, "--data-dir", help="The data directory (default: RMN_DATA_DIR or data/)."
)
brands_app = typer.Typer(help="Brands as files: brands/<id>/brand.yaml and first-party files.")
retailers_app = typer.Typer(help="Retailers as files: retailers/<id>/mapping.yaml and policies.")


class CheckFailedError(RMNError):
    kind = "check_failed"


@contextmanager
def data_dir_catalog(data_dir: Path | None, *, must_exist: bool = True) -> Iterator[Path]:
    """The data directory a command works on, with its catalog in force for the command's
    duration. `must_exist`: it must exist and hold a catalog (planning never simulates one);
    otherwise a directory without one reads the bundled catalog."""
    from tools.catalog import catalog_root
    from tools.pipeline import check_data_dir

    folder = Path(data_dir) if data_dir is not None else paths.data_dir()
    if must_exist:
        check_data_dir(folder)
    with paths.use_catalog(catalog_root(folder)):
        yield folder


def _human_check(r: dict[str, Any]) -> str:
    lines = [f"{p}" for p in r["problems"]]
    summary = (
        f"{r['catalog']}: {len(r['retailers'])} retailer(s), {len(r['brands'])} brand(s), "
        f"{len(r['problems'])} problem(s)"
    )
    return "\n".join([*lines, summary])


def check(
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Check everything a plan reads: mappings, policy front matter, brand files, first-party
    files. Each problem: `file:line: what is wrong; what is allowed`; exit 2 if any."""
    with user_errors(as_json):
        from tools.catalog import catalog_root
        from tools.catalog.check import check_catalog

        folder = Path(data_dir) if data_dir is not None else paths.data_dir()
        if not folder.is_dir():
            raise CheckFailedError(f"data directory {folder} does not exist", data_dir=str(folder))
        report = check_catalog(catalog_root(folder), data_dir=folder)
        result = report.model_dump(mode="json")
        if report.problems:
            if as_json:
                error = {"type": "check_failed", "message": f"{len(report.problems)} problem(s)"}
                emit(result | {"error": error}, True)
            else:
                typer.echo(_human_check(result), err=True)
            raise typer.Exit(code=2)
        emit(result, as_json, _human_check)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@brands_app.command("add")
def brands_add(
    name: Annotated[str, typer.Argument(help="The brand's display name, e.g. 'Northwind'.")],
    retailers: Annotated[
        list[str], typer.Option("--retailer", "-r", help="A retailer id it sells through.")
    ],
    categories: Annotated[
        list[str], typer.Option("--category", "-c", help="A product category it sells.")
    ],
    brand_id: Annotated[
        str | None, typer.Option("--id", help="Its id (default: from NAME).")
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="The owning tenant (default: the brand id).")
    ] = None,
    aliases: Annotated[list[str], typer.Option("--alias", help="Another name briefs use.")] = [],  # noqa: B006
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Scaffold brands/<id>/: brand.yaml and header-only first-party files to fill in."""
    with user_errors(as_json):
        from tools.catalog.scaffold import add_brand

        folder = Path(data_dir) if data_dir is not None else paths.data_dir()
        made = add_brand(
            folder,
            name,
            brand_id=brand_id,
            retailers=_split(retailers),
            categories=_split(categories),
            owner=owner,
            aliases=_split(aliases),
        )
        emit(made.model_dump(mode="json"), as_json, _human_made)


@retailers_app.command("add")
def retailers_add(
    name: Annotated[
        str, typer.Argument(help="The retailer's display name, e.g. 'Harbor Grocery'.")
    ],
    source: Annotated[
        str | None,
        typer.Option("--from", help="A retailer to copy the policies and mapping from (alpha)."),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout", help="The network's report layout: amazon, walmart, instacart, criteo."
        ),
    ] = None,
    retailer_id: Annotated[
        str | None, typer.Option("--id", help="Its id (default: from NAME).")
    ] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone.")] = None,
    placements: Annotated[
        list[str], typer.Option("--placement", "-p", help="An RMIS placement it sells.")
    ] = [],  # noqa: B006
    aliases: Annotated[list[str], typer.Option("--alias", help="Another name briefs use.")] = [],  # noqa: B006
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Scaffold retailers/<id>/: the policies and mapping of --from, or a --layout mapping."""
    with user_errors(as_json):
        from tools.catalog.scaffold import add_retailer

        folder = Path(data_dir) if data_dir is not None else paths.data_dir()
        made = add_retailer(
            folder,
            name,
            retailer_id=retailer_id,
            source=source,
            layout=layout,
            timezone=timezone,
            placements=_split(placements),
            aliases=_split(aliases),
        )
        emit(made.model_dump(mode="json"), as_json, _human_made)


def _human_made(r: dict[str, Any]) -> str:
    lines = [f"{r['kind']} {r['id']} written under {r['folder']}:"]
    lines += [f"  {f}" for f in r["files"]]
    lines += [f"next: {step}" for step in r["next_steps"]]
    return "\n".join(lines)
