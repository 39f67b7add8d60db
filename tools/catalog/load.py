"""Reading a catalog folder: its retailers (`retailers/<id>/mapping.yaml`) and brands
(`brands/<id>/brand.yaml`), checked against each other, cached until a file changes.

    catalog = load_catalog(Path("examples/foreign"))
    catalog.retailer("harbor").timezone
    catalog.brand_retailers("northwind")
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import ValidationError

from tools.catalog.models import (
    BRAND_FILE,
    MAPPING_FILE,
    Brand,
    BrandFile,
    Retailer,
    RetailerHeader,
)
from tools.catalog.yamlfile import CatalogError, YamlFile
from tools.errors import UnknownBrandError, UnknownRetailerError
from tools.paths import bundled_catalog_dir, catalog_dir


class Catalog:
    """The retailers and brands of one catalog folder, in id order."""

    def __init__(self, root: Path, retailers: list[Retailer], brands: list[Brand]) -> None:
        self.root = root
        self.retailers = {r.id: r for r in sorted(retailers, key=lambda r: r.id)}
        self.brands = {b.id: b for b in sorted(brands, key=lambda b: b.id)}

    def retailer(self, retailer_id: str) -> Retailer:
        try:
            return self.retailers[retailer_id]
        except KeyError:
            known = list(self.retailers)
            raise UnknownRetailerError(
                f"unknown retailer {retailer_id!r}; known in {self.root}: "
                f"{', '.join(known) or 'none'}",
                retailer=retailer_id,
                known=known,
            ) from None

    def brand(self, brand_id: str) -> Brand:
        try:
            return self.brands[brand_id]
        except KeyError:
            known = list(self.brands)
            raise UnknownBrandError(
                f"unknown brand {brand_id!r}; known in {self.root}: {', '.join(known) or 'none'}",
                brand=brand_id,
                known=known,
            ) from None

    def brand_retailers(self, brand_id: str) -> list[str]:
        """The retailers the brand sells through (its brand.yaml), in catalog order."""
        listed = set(self.brand(brand_id).retailers)
        return [r for r in self.retailers if r in listed]

    def canonical(self, ids: list[str] | set[str]) -> list[str]:
        """Known retailer ids, de-duplicated, in catalog order."""
        wanted = set(ids)
        return [r for r in self.retailers if r in wanted]

    def tenant_brands(self, tenant: str) -> list[str]:
        """The brands whose brand.yaml names `tenant` as owner."""
        return [b.id for b in self.brands.values() if b.owner_tenant == tenant]

    def owners(self) -> dict[str, str]:
        return {b.id: b.owner_tenant for b in self.brands.values()}


def read_retailer(folder: Path, display: str) -> Retailer:
    """One retailer from its folder's mapping header."""
    path = folder / MAPPING_FILE
    if not path.is_file():
        raise CatalogError(
            display, None, f"no {MAPPING_FILE}: a retailer folder needs its harmonizer mapping"
        )
    doc = YamlFile(path, f"{display}/{MAPPING_FILE}")
    try:
        head = RetailerHeader.model_validate(doc.data)
    except ValidationError as err:
        raise doc.validation_error(err, RetailerHeader) from None
    if head.retailer != folder.name:
        raise doc.error(
            ("retailer",),
            f"{head.retailer!r} differs from its folder's name; allowed: {folder.name!r}",
        )
    return Retailer(
        id=head.retailer,
        name=head.name,
        aliases=tuple(head.aliases),
        timezone=head.timezone,
        placements=tuple(head.placements),
        categories=tuple(head.categories),
        folder=folder,
        network=head.network,
    )


def read_brand(folder: Path, display: str) -> tuple[Brand, YamlFile]:
    """One brand from its folder's brand.yaml (its retailers are checked by the catalog)."""
    path = folder / BRAND_FILE
    if not path.is_file():
        raise CatalogError(display, None, f"no {BRAND_FILE}: a brand folder needs one")
    doc = YamlFile(path, f"{display}/{BRAND_FILE}")
    try:
        spec = BrandFile.model_validate(doc.data)
    except ValidationError as err:
        raise doc.validation_error(err, BrandFile) from None
    if spec.id != folder.name:
        raise doc.error(("id",), f"{spec.id!r} differs from its folder's name; allowed: "
                        f"{folder.name!r}")  # fmt: skip
    brand = Brand(
        id=spec.id,
        name=spec.name,
        aliases=tuple(spec.aliases),
        owner_tenant=spec.owner_tenant,
        categories=tuple(spec.categories),
        retailers=tuple(dict.fromkeys(spec.retailers)),
        description=spec.description,
        folder=folder,
    )
    return brand, doc


def entry_folders(root: Path, kind: str) -> list[Path]:
    """The entry folders of `kind` (retailers | brands) under a catalog root."""
    base = root / kind
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_catalog(root: Path, problems: list[CatalogError] | None = None) -> Catalog:
    """The catalog under `root`. The first bad entry raises, unless `problems` is given: then
    every problem is appended there and the bad entries are left out."""

    def fail(err: CatalogError) -> None:
        if problems is None:
            raise err
        problems.append(err)

    retailers: list[Retailer] = []
    for folder in entry_folders(root, "retailers"):
        try:
            retailers.append(read_retailer(folder, str(folder)))
        except CatalogError as err:
            fail(err)
    known = {r.id for r in retailers}
    brands: list[Brand] = []
    for folder in entry_folders(root, "brands"):
        try:
            brand, doc = read_brand(folder, str(folder))
        except CatalogError as err:
            fail(err)
            continue
        bad = [(i, r) for i, r in enumerate(brand.retailers) if r not in known]
        allowed = ", ".join(sorted(known)) or "none (add retailers/<id>/ first)"
        for i, r in bad:
            fail(doc.error(("retailers", i), f"unknown retailer {r!r}; allowed: {allowed}"))
        if not bad:
            brands.append(brand)
    return Catalog(root, retailers, brands)


_CACHE: dict[Path, tuple[tuple[tuple[str, int, int], ...], Catalog]] = {}
_LOCK = threading.Lock()


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    files = [f / MAPPING_FILE for f in entry_folders(root, "retailers")]
    files += [f / BRAND_FILE for f in entry_folders(root, "brands")]
    out = []
    for path in files:
        st = path.stat() if path.is_file() else None
        out.append((str(path), st.st_mtime_ns if st else 0, st.st_size if st else -1))
    return tuple(out)


def load_catalog(root: Path | None = None) -> Catalog:
    """The catalog under `root` (default: the folder in force, `tools.paths.catalog_dir`),
    read again only when one of its files changed."""
    root = Path(root or catalog_dir()).resolve()
    sig = _signature(root)
    with _LOCK:
        hit = _CACHE.get(root)
        if hit is not None and hit[0] == sig:
            return hit[1]
    catalog = read_catalog(root)
    with _LOCK:
        _CACHE[root] = (sig, catalog)
    return catalog


def has_catalog(folder: Path) -> bool:
    """Whether `folder` holds a catalog of its own (a retailer mapping or a brand.yaml)."""
    folder = Path(folder)
    return any((folder / "retailers").glob(f"*/{MAPPING_FILE}")) or any(
        (folder / "brands").glob(f"*/{BRAND_FILE}")
    )


def catalog_root(data_dir: Path) -> Path:
    """Where a data directory's catalog is: the directory itself when it holds one (your own
    data, or a market `rmn world generate` wrote), else the bundled catalog."""
    return Path(data_dir) if has_catalog(Path(data_dir)) else bundled_catalog_dir()


def current() -> Catalog:
    """The catalog in force (`tools.paths.catalog_dir`)."""
    return load_catalog()
