"""Scaffolding catalog entries as files: `rmn brands add` and `rmn retailers add`.

A brand gets brand.yaml, a minimal brand guide (voice.md, claims.md) and header-only
first-party files to fill in; a retailer gets a copy of another retailer's policies and
mapping (`--from`), renamed, or a network's report layout as its mapping (`--layout`). Nothing
existing is overwritten. `rmn check` then says what is left to fill in.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path

from pydantic import BaseModel, ValidationError

from tools.catalog.load import catalog_root, read_catalog
from tools.catalog.models import BRAND_FILE, ID_PATTERN, MAPPING_FILE, NETWORKS, BrandFile
from tools.errors import RMNError
from tools.firstparty.schema import FILES
from tools.paths import bundled_catalog_dir
from tools.rmis import Placement

LAYOUTS_DIR = Path(__file__).resolve().parents[1] / "harmonize" / "layouts"


class ScaffoldError(RMNError):
    kind = "scaffold_error"


class Scaffolded(BaseModel):
    kind: str
    id: str
    folder: str
    files: list[str]
    next_steps: list[str]


def slug(name: str) -> str:
    """An id from a display name: 'Harbor Grocery' -> 'harbor_grocery'."""
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not re.match(ID_PATTERN, text):
        raise ScaffoldError(
            f"cannot make an id from {name!r}; give one with --id (lower-case letters, digits "
            "and _, starting with a letter)"
        )
    return text


def _check_id(value: str, what: str) -> str:
    if not re.match(ID_PATTERN, value):
        raise ScaffoldError(
            f"{what} id {value!r} is not allowed; allowed: lower-case letters, digits and _, "
            "starting with a letter, at most 40 characters"
        )
    return value


def _yaml_list(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def add_brand(
    data_dir: Path,
    name: str,
    *,
    brand_id: str | None,
    retailers: list[str],
    categories: list[str],
    owner: str | None,
    aliases: list[str],
) -> Scaffolded:
    data_dir = Path(data_dir)
    bid = _check_id(brand_id or slug(name), "brand")
    folder = data_dir / "brands" / bid
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists; nothing was written", folder=str(folder))
    known = read_catalog(data_dir).retailers if (data_dir / "retailers").is_dir() else {}
    unknown = [r for r in retailers if r not in known]
    if unknown:
        raise ScaffoldError(
            f"unknown retailer(s) {', '.join(unknown)} in {data_dir}; allowed: "
            f"{', '.join(known) or 'none yet'} (add a retailer first: rmn retailers add)",
            retailers=unknown,
        )
    spec = {"id": bid, "name": name, "aliases": aliases, "owner_tenant": owner or bid,
            "categories": categories, "retailers": retailers}  # fmt: skip
    try:
        BrandFile.model_validate(spec)
    except ValidationError as err:
        e = err.errors()[0]
        raise ScaffoldError(
            f"{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
        ) from None
    owner_tenant = owner or bid
    files = {
        BRAND_FILE: (
            f"# {name} as the catalog knows it.\nid: {bid}\nname: {name}\n"
            f"aliases: {_yaml_list(aliases)}\nowner_tenant: {owner_tenant}\n"
            f"categories: {_yaml_list(categories)}\nretailers: {_yaml_list(retailers)}\n"
        ),
        "voice.md": _voice(bid, name, owner_tenant, categories),
        "claims.md": _claims(bid, name, owner_tenant),
    }
    for file, (model, _keys, _required) in FILES.items():
        files[f"{file}.csv"] = ",".join(model.model_fields) + "\n"
    for file, text in files.items():
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text(text, encoding="utf-8")
    return Scaffolded(
        kind="brand",
        id=bid,
        folder=str(folder),
        files=sorted(files),
        next_steps=[
            f"fill in {folder}/products.csv (one row per product and retailer listing), and "
            "the other first-party files you have (delete the ones you do not)",
            f"edit {folder}/voice.md and claims.md: the brand guide copy is checked against",
            f"rmn check --data-dir {data_dir}",
        ],
    )


def _voice(bid: str, name: str, owner: str, categories: list[str]) -> str:
    return f"""---
brand: {bid}
owner_tenant: {owner}
doc_type: voice
title: {name} voice and tone guide
effective_date: 2026-01-01
sections:
  name: who-we-are
  categories: who-we-are
  tone: how-we-sound
  banned_words: words-we-never-use
  emoji_allowed: emoji
name: {name}
categories: {_yaml_list(categories)}
tone: [plain-spoken]
banned_words: []
emoji_allowed: false
---

# {name} voice and tone guide

## Who we are

{name}: describe the brand and the aisles its ads run in.

## How we sound

Describe the tone of the brand's ads.

## Words we never use

List the words the brand's ads never use.

## Emoji

Emoji are not used.
"""


def _claims(bid: str, name: str, owner: str) -> str:
    return f"""---
brand: {bid}
owner_tenant: {owner}
doc_type: claims
title: {name} approved product claims
effective_date: 2026-01-01
sections:
  forbidden_claims: claims-we-do-not-make
allowed_claims: []
forbidden_claims: [clinically proven]
---

# {name} approved product claims

## Claims we do not make

List the claims the brand never makes; add approved claims with their substantiation.
"""


def _source_folder(data_dir: Path, source: str) -> Path:
    for root in (catalog_root(data_dir), bundled_catalog_dir()):
        folder = root / "retailers" / source
        if (folder / MAPPING_FILE).is_file():
            return folder
    known = sorted(p.parent.name for p in bundled_catalog_dir().glob(f"retailers/*/{MAPPING_FILE}"))
    raise ScaffoldError(
        f"unknown retailer {source!r} to copy from; allowed: {', '.join(known)} or a retailer "
        f"of {data_dir}",
        retailer=source,
    )


def _renamed(text: str, old_id: str, old_name: str, new_id: str, new_name: str) -> str:
    """Another retailer's document or mapping with its id and name replaced by the new ones
    (anchors derived from the name change with it)."""
    old_slug, new_slug = old_name.lower().replace(" ", "-"), new_name.lower().replace(" ", "-")
    text = text.replace(old_name, new_name).replace(old_slug, new_slug)
    # The short name too ("Beta Rewards" -> "Epsilon Rewards"), as a whole word only.
    old_short, new_short = old_name.split()[0], new_name.split()[0]
    text = re.sub(rf"\b{re.escape(old_short)}\b", new_short, text)
    text = re.sub(rf"\b{re.escape(old_short.lower())}\b(?!:)", new_short.lower(), text)
    text = re.sub(rf"(?m)^retailer: {re.escape(old_id)}\s*$", f"retailer: {new_id}", text)
    text = text.replace(f"value: {old_id}}}", f"value: {new_id}}}")
    return text.replace(f'"{old_id}:"', f'"{new_id}:"')


def _header(text: str, values: dict[str, str]) -> str:
    """Set top-level header keys of a mapping (added after `name:` when missing)."""
    for key, value in values.items():
        line = f"{key}: {value}"
        if re.search(rf"(?m)^{key}:", text):
            text = re.sub(rf"(?m)^{key}:.*$", lambda _m, new=line: new, text, count=1)
        else:
            text = re.sub(
                r"(?m)^(name:.*)$", lambda m, new=line: f"{m.group(1)}\n{new}", text, count=1
            )
    return text


def add_retailer(
    data_dir: Path,
    name: str,
    *,
    retailer_id: str | None,
    source: str | None,
    layout: str | None,
    timezone: str | None,
    placements: list[str],
    aliases: list[str],
) -> Scaffolded:
    data_dir = Path(data_dir)
    rid = _check_id(retailer_id or slug(name), "retailer")
    folder = data_dir / "retailers" / rid
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists; nothing was written", folder=str(folder))
    if source is None:
        raise ScaffoldError(
            "give --from RETAILER: the retailer whose policy documents (and mapping, unless "
            "--layout) the new one starts from, e.g. --from alpha"
        )
    if layout is not None and layout not in NETWORKS:
        raise ScaffoldError(f"unknown layout {layout!r}; allowed: {', '.join(NETWORKS)}")
    if timezone is not None:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ScaffoldError(
                f"unknown time zone {timezone!r}; allowed: an IANA name such as "
                "America/Chicago or UTC"
            ) from None
    bad = [p for p in placements if p not in {x.value for x in Placement}]
    if bad:
        raise ScaffoldError(
            f"unknown placement {bad[0]!r}; allowed: {', '.join(p.value for p in Placement)}"
        )
    src = _source_folder(data_dir, source)
    head = read_catalog(src.parent.parent).retailer(src.name)
    files: dict[str, str] = {}
    for path in sorted(src.glob("*.md")):
        files[path.name] = _renamed(
            path.read_text(encoding="utf-8"), src.name, head.name, rid, name
        )
    mapping = (
        (LAYOUTS_DIR / f"{layout}.yaml").read_text(encoding="utf-8")
        if layout is not None
        else (src / MAPPING_FILE).read_text(encoding="utf-8")
    )
    old_id, old_name = ("example", "Example") if layout is not None else (src.name, head.name)
    mapping = _renamed(mapping, old_id, old_name, rid, name)
    values = {"retailer": rid, "name": name, "aliases": _yaml_list(aliases)}
    if timezone:
        values["timezone"] = timezone
    if placements:
        values["placements"] = _yaml_list(placements)
    files[MAPPING_FILE] = _header(mapping, values)
    for file, text in files.items():
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text(text, encoding="utf-8")
    (data_dir / "raw" / rid).mkdir(parents=True, exist_ok=True)
    return Scaffolded(
        kind="retailer",
        id=rid,
        folder=str(folder),
        files=sorted(files),
        next_steps=[
            f"put the network's report exports in {data_dir / 'raw' / rid}/",
            f"edit {folder}/{MAPPING_FILE}: the report's columns, time zone and placements",
            f"edit the policy documents in {folder}/ ({src.name}'s rules were copied): "
            "placements, bid floors, caps, k, measurement",
            f"rmn check --data-dir {data_dir}",
        ],
    )
