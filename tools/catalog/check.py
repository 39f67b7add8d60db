"""`rmn check`: everything a plan will read, checked before a plan reads it.

Per retailer: the mapping header and the whole harmonizer mapping, the policy documents'
front matter (and that they sell the mapping's placements), and whether its reports are
there. Per brand: brand.yaml, its guide's front matter (and owner), and every first-party
file row by row. Each problem is one line, `file:line: what is wrong; what is allowed`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from tools.catalog.load import Catalog, read_catalog
from tools.catalog.models import MAPPING_FILE
from tools.catalog.yamlfile import CatalogError, YamlFile
from tools.errors import MappingError, RMNError
from tools.firstparty import check_brand_files
from tools.policy import load_brand_guide, load_retailer_policy
from tools.policy.frontmatter import PolicyParseError


class CheckReport(BaseModel):
    catalog: str
    retailers: list[str]
    brands: list[str]
    problems: list[str] = Field(description="file:line: what is wrong; what is allowed")
    notes: list[str] = Field(default_factory=list, description="worth knowing, not wrong")


def _mapping_problem(err: MappingError) -> str:
    """A mapping error as `file:line: ...` (the mapping loader writes `file, line N: ...`)."""
    file, line = err.detail.get("file"), err.detail.get("line")
    text = err.message
    if file and text.startswith(str(file)):
        text = re.sub(r"^, line \d+", "", text[len(str(file)) :]).lstrip(": ")
    where = f"{file}:{line}" if file and line else str(file or "")
    return f"{where}: {text}" if where else text


def _retailer_problems(
    catalog: Catalog, rid: str, data_dir: Path | None
) -> tuple[list[str], list[str]]:
    from tools.harmonize import load_mapping  # the harmonizer reads the catalog too

    problems: list[str] = []
    notes: list[str] = []
    entry = catalog.retailers[rid]
    try:
        mapping = load_mapping(entry.mapping_path)
        sold = set(entry.placements)
        mapped = mapping.fields["placement"]
        values = set((mapped.map or {}).values()) | (
            {str(mapped.value)} if mapped.value is not None else set()
        )
        extra = sorted(v for v in values if v not in sold)
        if extra:
            line = YamlFile(entry.mapping_path).line("fields", "placement")
            problems.append(
                f"{entry.mapping_path}:{line}: fields.placement gives {', '.join(extra)}, which "
                f"the header's placements do not list; allowed: {', '.join(p.value for p in sold)}"
            )
    except MappingError as err:
        problems.append(_mapping_problem(err))
    try:
        policy = load_retailer_policy(rid, corpus=catalog.root)
        if set(policy.placements) != set(entry.placements):
            line = YamlFile(entry.mapping_path).line("placements")
            sells = sorted(p.value for p in policy.placements)
            listed = sorted(p.value for p in entry.placements)
            problems.append(
                f"{entry.mapping_path}:{line}: placements {listed} differ from those "
                f"overview.md sells; allowed: {sells}"
            )
    except PolicyParseError as err:
        problems.append(err.message)
    except RMNError as err:
        problems.append(f"{entry.folder}: {err.message}")
    if data_dir is not None:
        raw = Path(data_dir) / "raw" / rid
        if not raw.is_dir() or not any(p.is_file() for p in raw.iterdir()):
            notes.append(f"{raw}: no report exports yet (a plan can use {rid} only with data)")
    return problems, notes


def _brand_problems(catalog: Catalog, bid: str) -> list[str]:
    problems: list[str] = []
    brand = catalog.brands[bid]
    if any(brand.folder.glob("*.md")):
        try:
            guide = load_brand_guide(bid, corpus=catalog.root)
            if guide.owner_tenant != brand.owner_tenant:
                problems.append(
                    f"{brand.folder / 'voice.md'}: owner_tenant {guide.owner_tenant!r} differs "
                    f"from brand.yaml's {brand.owner_tenant!r}; allowed: the same owner"
                )
        except PolicyParseError as err:
            problems.append(err.message)
        except RMNError as err:
            problems.append(f"{brand.folder}: {err.message}")
    _, found = check_brand_files(brand)
    problems += [str(p) for p in found]
    return problems


def check_catalog(root: Path, data_dir: Path | None = None) -> CheckReport:
    """Every problem in the catalog at `root` (and, given the data directory, whether each
    retailer's reports are there)."""
    errors: list[CatalogError] = []
    catalog = read_catalog(Path(root), errors)
    problems = [e.message for e in errors]
    notes: list[str] = []
    for rid in catalog.retailers:
        found, said = _retailer_problems(catalog, rid, data_dir)
        problems += found
        notes += said
    for bid in catalog.brands:
        problems += _brand_problems(catalog, bid)
    if not catalog.retailers and not catalog.brands and not errors:
        problems.append(
            f"{root}: no catalog (retailers/<id>/{MAPPING_FILE}, brands/<id>/brand.yaml); "
            "allowed: a folder laid out as 'Use your own data' in the README describes"
        )
    return CheckReport(
        catalog=str(root),
        retailers=list(catalog.retailers),
        brands=list(catalog.brands),
        problems=problems,
        notes=notes,
    )
