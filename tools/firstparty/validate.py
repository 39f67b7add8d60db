"""Validating a brand's first-party files as a whole: every file read and every row checked
before anything is used, one problem per bad value with its file and row, and nothing loaded
when there is any problem (`FirstPartyError` lists them)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from tools.catalog import Brand
from tools.errors import InputDataError
from tools.firstparty.read import RawFile, ReadProblem, find_file, place, read_file
from tools.firstparty.schema import (
    FILES,
    FORMATS,
    optional_columns,
    required_columns,
    to_gtin14,
)

# Problems listed per file before the rest are counted.
MAX_PROBLEMS_PER_FILE = 50


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{place(self.file, self.line)}: {self.message}"


class FirstPartyError(InputDataError):
    """A brand's first-party files that cannot be used as they are: every problem found, each
    `file:row: what is wrong; what is allowed`."""

    kind = "first_party_error"

    def __init__(self, brand: str, problems: list[Problem]) -> None:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"first-party data of brand '{brand}' has {len(problems)} problem(s); nothing was "
            f"loaded:\n{shown}{more}",
            brand=brand,
            problems=[str(p) for p in problems],
        )
        self.problems = problems


@dataclass
class BrandData:
    """A brand's validated first-party tables (empty where an optional file is absent)."""

    brand: str
    products: pd.DataFrame
    stock: pd.DataFrame
    promotions: pd.DataFrame
    sellthrough: pd.DataFrame
    geo_sales: pd.DataFrame
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Checker:
    def __init__(self, brand: Brand) -> None:
        self.brand = brand
        self.problems: list[Problem] = []
        # file name -> GTINs of its rows that failed validation (already reported there)
        self.invalid: dict[str, set[str]] = {}

    def add(self, path: Path, line: int | None, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    def read(self, name: str) -> tuple[Path | None, list[dict[str, Any]], list[int]]:
        """(file, validated rows as dicts, their places) of one file; problems recorded."""
        folder = self.brand.folder
        found = find_file(folder, name)
        required = FILES[name][2]
        allowed = " or ".join(f"{name}{ext}" for ext in FORMATS)
        if not found:
            if required:
                self.add(folder, None, f"no {name} file; allowed: {allowed}")
            return None, [], []
        if len(found) > 1:
            self.add(folder, None, f"{' and '.join(p.name for p in found)} both found; "
                     f"allowed: one {name} file")  # fmt: skip
            return None, [], []
        path = found[0]
        try:
            raw = read_file(path)
        except ReadProblem as err:
            self.add(err.path, err.line, err.problem)
            return path, [], []
        if not self._columns(name, raw):
            return path, [], []
        return path, *self._rows(name, raw)

    def _columns(self, name: str, raw: RawFile) -> bool:
        missing = [c for c in required_columns(name) if c not in raw.columns]
        allowed = (
            f"required {', '.join(required_columns(name))}; optional "
            f"{', '.join(optional_columns(name)) or 'none'}"
        )
        for column in missing:
            self.add(raw.path, raw.header_at or None, f"column {column!r} is missing; "
                     f"allowed columns: {allowed}")  # fmt: skip
        return not missing

    def _rows(self, name: str, raw: RawFile) -> tuple[list[dict[str, Any]], list[int]]:
        model: type[BaseModel] = FILES[name][0]
        adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
        try:
            rows = adapter.validate_python(raw.rows)
        except ValidationError as err:
            bad: set[int] = set()
            shown = 0
            for e in err.errors():
                index = int(e["loc"][0])
                bad.add(index)
                if shown >= MAX_PROBLEMS_PER_FILE:
                    continue
                shown += 1
                column = e["loc"][1] if len(e["loc"]) > 1 else None
                msg = str(e["msg"]).removeprefix("Value error, ")
                if e["type"] == "missing":
                    msg = "no value; allowed: a value in every row"
                what = f"column {column!r}: {msg}" if column else msg
                self.add(raw.path, raw.where[index], what)
            if len(err.errors()) > shown:
                self.add(raw.path, None, f"... and {len(err.errors()) - shown} more problems")
            self.invalid[name] = {g for i in bad if (g := _gtin_of(raw.rows[i])) is not None}
            keep = [i for i in range(len(raw.rows)) if i not in bad]
            rows = [model.model_validate(raw.rows[i]) for i in keep]
            return [r.model_dump() for r in rows], [raw.where[i] for i in keep]
        return [r.model_dump() for r in rows], list(raw.where)

    def unique(self, path: Path, name: str, rows: list[dict[str, Any]], where: list[int]) -> None:
        keys = FILES[name][1]
        first: dict[tuple[Any, ...], int] = {}
        for row, line in zip(rows, where, strict=True):
            key = tuple(row.get(k) for k in keys)
            if key in first:
                shown = ", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=True) if v)
                self.add(path, line, f"duplicate row for {shown} (first at row {first[key]}); "
                         f"allowed: one row per {', '.join(keys)}")  # fmt: skip
            else:
                first[key] = line

    def known(
        self,
        path: Path,
        rows: list[dict[str, Any]],
        where: list[int],
        gtins: set[str] | None,
    ) -> None:
        """Retailers the brand sells through, and (when given) GTINs among its products: one
        problem per unknown value and file, at its first row, counting the other rows."""
        sold = list(self.brand.retailers)
        retailers: dict[str, list[int]] = {}
        unlisted: dict[str, list[int]] = {}
        for row, line in zip(rows, where, strict=True):
            r = row.get("retailer_id")
            if r is not None and r not in sold:
                retailers.setdefault(r, []).append(line)
            if gtins is not None and row.get("gtin") not in gtins:
                unlisted.setdefault(row["gtin"], []).append(line)
        for r, lines in retailers.items():
            allowed = f"{', '.join(sold)} (the retailers in {self.brand.id}'s brand.yaml)"
            self.add(path, lines[0], f"unknown retailer {r!r}{_also(lines)}; allowed: {allowed}")
        for g, lines in unlisted.items():
            self.add(path, lines[0], f"GTIN {g} is not in the products file{_also(lines)}; "
                     "allowed: a product listed there")  # fmt: skip

    def consistent_products(self, path: Path, rows: list[dict[str, Any]], where: list[int]) -> None:
        seen: dict[str, tuple[dict[str, Any], int]] = {}
        items: dict[tuple[str, str], tuple[str, int]] = {}
        for row, line in zip(rows, where, strict=True):
            g = row["gtin"]
            if g in seen:
                prev, at = seen[g]
                for k in ("name", "category", "price", "unit_cost"):
                    if row[k] != prev[k]:
                        self.add(path, line, f"{k} {row[k]!r} differs from {prev[k]!r} at row "
                                 f"{at} for GTIN {g}; allowed: one {k} per product")  # fmt: skip
                        break
            else:
                seen[g] = (row, line)
            if row["retailer_id"] is not None:
                key = (row["retailer_id"], row["item_id"])
                if key in items and items[key][0] != g:
                    self.add(path, line, f"item id {key[1]} at {key[0]} is GTIN "
                             f"{items[key][0]} at row {items[key][1]}; allowed: one product "
                             "per item id")  # fmt: skip
                items.setdefault(key, (g, line))


def _gtin_of(row: dict[str, Any]) -> str | None:
    """The row's GTIN as GTIN-14, or None where it is missing or not a GTIN."""
    try:
        return to_gtin14(row["gtin"]) if row.get("gtin") is not None else None
    except ValueError:
        return None


def _also(lines: list[int]) -> str:
    """The " (and N more rows)" suffix of a problem that repeats beyond the row it names."""
    return f" (and {len(lines) - 1} more rows)" if len(lines) > 1 else ""


_COLUMNS = {name: list(model.model_fields) for name, (model, _k, _r) in FILES.items()}


def check_brand_files(brand: Brand) -> tuple[BrandData | None, list[Problem]]:
    """Read and check every first-party file of `brand`: the tables, or the problems."""
    c = _Checker(brand)
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    gtins: set[str] | None = None
    for name in FILES:
        path, rows, where = c.read(name)
        if path is not None:
            files[name] = str(path)
            c.unique(path, name, rows, where)
            needs_gtin = name not in ("products", "geo_sales")
            c.known(path, rows, where, gtins if needs_gtin else None)
            if name == "products":
                c.consistent_products(path, rows, where)
                # A product whose row has a problem is listed all the same: the other files'
                # rows for it are not reported again.
                gtins = {r["gtin"] for r in rows} | c.invalid.get(name, set())
                if not rows and not c.problems:
                    c.add(path, None, "no products listed; allowed: one row per product")
        tables[name] = pd.DataFrame(rows, columns=_COLUMNS[name])
    if c.problems:
        return None, c.problems
    notes = [
        f"no {name} file: {why}"
        for name, why in (
            ("stock", "every product is taken as in stock"),
            ("promotions", "no promotions are known"),
            ("sellthrough", "no stock-out days are known from sales"),
        )
        if name not in files
    ]
    data = BrandData(
        brand.id,
        tables["products"],
        tables["stock"],
        tables["promotions"],
        tables["sellthrough"],
        tables["geo_sales"],
        files,
        notes,
    )
    return data, []


_CACHE: dict[tuple[Any, ...], BrandData] = {}
_LOCK = threading.Lock()


def _signature(brand: Brand) -> tuple[Any, ...]:
    out: list[Any] = [str(brand.folder), brand.retailers]
    for name in FILES:
        for path in find_file(brand.folder, name):
            st = path.stat()
            out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def load_brand_data(brand: Brand) -> BrandData:
    """The brand's validated first-party tables; `FirstPartyError` lists every problem.
    Read again only when a file changed."""
    sig = _signature(brand)
    with _LOCK:
        if sig in _CACHE:
            return _CACHE[sig]
    data, problems = check_brand_files(brand)
    if data is None:
        raise FirstPartyError(brand.id, problems)
    with _LOCK:
        _CACHE[sig] = data
    return data
