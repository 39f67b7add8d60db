"""Which product lines a composed adapter saw in training, for `rmn bench language`
(`tools.creative.bench`): what the data card of each adapter copy is written with
(`binding.composed_adapters`) says about the lines in its training data (`AdapterLines`), and
whether a product's line was seen (`line_status`, `SeenLines`; `subset_of` names the bench
subset of the answer). Its own module so the bench and the re-summarizing of a saved run
(`tools.creative.resummarize`) read cards the same way; nothing here imports either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tools.creative.binding import CREATIVE_TASK, composed_adapters
from tools.creative.products import HELD_OUT_RULE, held_out_lines, product_line
from tools.creative.quality import SUBSETS

if TYPE_CHECKING:
    from adapters.registry import AdapterEntry, AdapterRegistry, Kind

Seen = bool | None


class Product(Protocol):
    """A bench product as `SeenLines.of_product` reads it (`tools.creative.bench.BenchProduct`)."""

    @property
    def brand_id(self) -> str: ...
    @property
    def retailer_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def catalog_category(self) -> str: ...


def line_id(brand_id: str, catalog_category: str, noun: str) -> str:
    """A product line as adapter data cards record it: "brand:catalog category:noun"."""
    return f"{brand_id}:{catalog_category}:{noun}"


@dataclass(frozen=True)
class AdapterLines:
    """What one adapter's data card says about the product lines in its training data.

    `basis`: "recorded" (`training.product_lines.train`: exactly these lines), "rule"
    (`training.held_out_rule` is today's `HELD_OUT_RULE`: every line but the held-out ones, a
    superset where the catalog grew since), "no_copy" (its data is not copy: no product line)
    or "unknown" (the card says none of these)."""

    adapter: str
    basis: str
    train: frozenset[str] = frozenset()

    @classmethod
    def from_card(cls, adapter: str, card: dict[str, Any]) -> AdapterLines:
        lines = card.get("product_lines")
        if isinstance(lines, dict) and isinstance(lines.get("train"), list):
            return cls(adapter, "recorded", frozenset(lines["train"]))
        if card.get("held_out_rule") == HELD_OUT_RULE:
            return cls(adapter, "rule")
        if card.get("system_task") != CREATIVE_TASK and card.get("split_by") != "product line":
            return cls(adapter, "no_copy")
        return cls(adapter, "unknown")

    @classmethod
    def of(cls, entry: AdapterEntry) -> AdapterLines:
        return cls.from_card(entry.name, entry.metadata.training.model_dump())

    def saw(self, brand_id: str, catalog_category: str, noun: str) -> Seen:
        if self.basis == "recorded":
            return line_id(brand_id, catalog_category, noun) in self.train
        if self.basis == "rule":
            return (catalog_category, noun) not in held_out_lines(brand_id)
        return False if self.basis == "no_copy" else None


@dataclass(frozen=True)
class LineStatus:
    """Whether an adapter composed for a product was trained on its line: `seen` True if one
    was, None if none was but a card does not say, False if every card says it was not."""

    line: str
    seen: Seen
    seen_by: tuple[str, ...]
    unknown_for: tuple[str, ...]

    def report(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "seen": self.seen,
            "seen_by": list(self.seen_by),
            "unknown_for": list(self.unknown_for),
        }


def line_status(
    brand_id: str, catalog_category: str, noun: str | None, adapters: list[AdapterLines]
) -> LineStatus:
    if noun is None:  # a product outside the catalog's lines: no card can say, if any is read
        names = tuple(a.adapter for a in adapters)
        return LineStatus(f"{brand_id}:{catalog_category}:?", None if names else False, (), names)
    said = {a.adapter: a.saw(brand_id, catalog_category, noun) for a in adapters}
    seen_by = tuple(a for a, v in said.items() if v)
    unknown = tuple(a for a, v in said.items() if v is None)
    seen: Seen = True if seen_by else (None if unknown else False)
    return LineStatus(line_id(brand_id, catalog_category, noun), seen, seen_by, unknown)


class SeenLines:
    """`line_status` for bench products, from the data cards of the adapters composed for each
    retailer and brand (read once)."""

    def __init__(self, registry: AdapterRegistry | None, kinds: tuple[Kind, ...]) -> None:
        self.registry, self.kinds = registry, kinds
        self._cards: dict[str, AdapterLines] = {}

    def adapters(self, retailer_id: str, brand_id: str) -> list[AdapterLines]:
        out = []
        for entry in composed_adapters(self.registry, retailer_id, brand_id, self.kinds):
            if entry.name not in self._cards:
                self._cards[entry.name] = AdapterLines.of(entry)
            out.append(self._cards[entry.name])
        return out

    def status(
        self, retailer_id: str, brand_id: str, category: str, noun: str | None
    ) -> LineStatus:
        return line_status(brand_id, category, noun, self.adapters(retailer_id, brand_id))

    def of_product(self, p: Product) -> LineStatus:
        return self.status(p.retailer_id, p.brand_id, p.catalog_category, product_line(p.name))

    def never_seen(self, retailer_id: str, brand_id: str, line: tuple[str, str]) -> bool:
        return self.status(retailer_id, brand_id, *line).seen is False

    def cards(self) -> dict[str, str]:
        """Each composed adapter's basis (`AdapterLines.basis`), by name."""
        return {name: a.basis for name, a in sorted(self._cards.items())}


def subset_of(seen: Seen) -> str:
    """The bench subset (`tools.creative.quality.SUBSETS`) a line's `seen` falls in."""
    return next(k for k, v in SUBSETS.items() if v is seen)
