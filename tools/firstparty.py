"""A brand's first-party data: its SKUs' unit economics, its promotions and its sell-through.

This data never enters the clean room (its fields are blocked there) and only the brand that
owns it may read it. Files live in `<data>/firstparty/<brand>/`, written by `rmn world generate`.

store = FirstPartyStore(Path("data"), tenant="acme", brand="acme")
store.skus()                      # pyarrow.Table
store.sellthrough(retailer="alpha")
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tools.errors import AccessDeniedError, InputDataError, RMNError, UnknownBrandError

if TYPE_CHECKING:
    import pyarrow as pa

# File -> the columns the store relies on.
FILES: dict[str, tuple[str, ...]] = {
    "skus": (
        "gtin",
        "name",
        "category",
        "list_price",
        "unit_cost",
        "unit_margin",
        "stock_units",
        "oos_prob",
        "retailers",
    ),
    "promotions": ("retailer_id", "gtin", "date", "discount_pct"),
    "sellthrough": ("date", "retailer_id", "gtin", "units", "revenue"),
}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class FirstPartyStore:
    """Read-only access to one brand's first-party tables, for that brand only."""

    def __init__(self, data_dir: Path, tenant: str, brand: str) -> None:
        for kind, value in (("tenant", tenant), ("brand", brand)):
            if not _ID.match(value):
                raise RMNError(f"malformed {kind} id {value!r}: use lower-case letters, digits, _")
        if tenant != brand:
            raise AccessDeniedError(
                f"tenant '{tenant}' may not read first-party data of brand '{brand}'",
                tenant=tenant,
                brand=brand,
            )
        self.tenant = tenant
        self.brand = brand
        self.root = Path(data_dir) / "firstparty" / brand
        self._hint = f"`rmn world generate --out {data_dir}` writes it"

    def skus(self) -> pa.Table:
        """One row per SKU: gtin, name, category, list_price, unit_cost, unit_margin,
        stock_units, oos_prob, retailers (list of retailer ids)."""
        return self._read("skus")

    def promotions(self, retailer: str | None = None) -> pa.Table:
        """retailer_id, gtin, date, discount_pct; optionally one retailer's only."""
        return self._only(self._read("promotions"), retailer)

    def sellthrough(self, retailer: str | None = None) -> pa.Table:
        """date, retailer_id, gtin, units, revenue; optionally one retailer's only."""
        return self._only(self._read("sellthrough"), retailer)

    def _read(self, name: str) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.root.is_dir():
            raise UnknownBrandError(
                f"no first-party data for brand '{self.brand}' ({self.root} not found); "
                f"{self._hint}",
                brand=self.brand,
            )
        path = self.root / f"{name}.parquet"
        if not path.is_file():
            raise InputDataError(
                f"first-party file {path} is missing; {self._hint}", brand=self.brand, file=name
            )
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            raise InputDataError(f"cannot read {path}: {err}; {self._hint}") from None
        missing = [c for c in FILES[name] if c not in table.column_names]
        if missing:
            raise InputDataError(
                f"{path} lacks column(s) {', '.join(missing)}; {self._hint}", missing=missing
            )
        return table

    @staticmethod
    def _only(table: pa.Table, retailer: str | None) -> pa.Table:
        if retailer is None:
            return table
        import pyarrow.compute as pc

        return table.filter(pc.equal(table["retailer_id"], retailer))
