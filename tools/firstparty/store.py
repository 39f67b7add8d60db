"""A brand's first-party data, for that brand's tenant only.

The files live in the brand's catalog folder (`<catalog>/brands/<brand>/`: products, stock,
promotions, sellthrough; CSV, Parquet or Excel) and never enter the clean room (their fields
are blocked there). The store validates them all before it answers (`load_brand_data`).

    store = FirstPartyStore(Path("data"), tenant="acme", brand="acme")
    store.skus()                      # pyarrow.Table, one row per product
    store.sellthrough(retailer="alpha")
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from tools.catalog import Brand, catalog_root, load_catalog
from tools.errors import AccessDeniedError, RMNError
from tools.firstparty.validate import BrandData, load_brand_data

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

SKU_COLUMNS = (
    "gtin",
    "name",
    "category",
    "list_price",
    "unit_cost",
    "unit_margin",
    "stock_units",
    "oos_prob",
    "retailers",
)


class FirstPartyStore:
    """Read-only access to one brand's first-party tables, for its owning tenant only."""

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
        self.data_dir = Path(data_dir)
        self._entry: Brand | None = None

    @property
    def entry(self) -> Brand:
        """The brand's catalog entry (its folder holds the files)."""
        if self._entry is None:
            entry = load_catalog(catalog_root(self.data_dir)).brand(self.brand)
            if entry.owner_tenant != self.tenant:
                raise AccessDeniedError(
                    f"tenant '{self.tenant}' may not read first-party data of brand "
                    f"'{self.brand}' (owned by '{entry.owner_tenant}')",
                    tenant=self.tenant,
                    brand=self.brand,
                )
            self._entry = entry
        return self._entry

    @property
    def root(self) -> Path:
        return self.entry.folder

    def data(self) -> BrandData:
        return load_brand_data(self.entry)

    def skus(self) -> pa.Table:
        """One row per product: gtin, name, category, list_price, unit_cost, unit_margin,
        stock_units, oos_prob (0 without a stock file), retailers (where it is listed; all the
        brand's retailers for a product without listings)."""
        d = self.data()
        p = d.products
        first = p.drop_duplicates("gtin")
        listed = p.dropna(subset=["retailer_id"]).groupby("gtin", sort=False)["retailer_id"]
        where = listed.agg(lambda s: list(dict.fromkeys(s))).to_dict()
        stock = d.stock.groupby("gtin").agg(units=("stock_units", "sum"), oos=("oos_prob", "max"))
        everywhere = list(self.entry.retailers)
        gtins = first["gtin"].tolist()
        return pa.table(
            {
                "gtin": gtins,
                "name": first["name"].tolist(),
                "category": first["category"].tolist(),
                "list_price": first["price"].astype(float).tolist(),
                "unit_cost": first["unit_cost"].astype(float).tolist(),
                "unit_margin": (first["price"] - first["unit_cost"])
                .astype(float)
                .round(6)
                .tolist(),
                "stock_units": pa.array(
                    [int(stock["units"].get(g, 0)) if g in stock.index else None for g in gtins],
                    pa.int64(),
                ),
                "oos_prob": [float(stock["oos"].get(g, 0.0)) for g in gtins],
                "retailers": [where.get(g, everywhere) for g in gtins],
            }
        )

    def items(self, retailer: str) -> dict[str, str]:
        """The retailer's item id -> GTIN, from the products file's listings."""
        p = self.data().products
        at = p[p["retailer_id"] == retailer]
        return dict(zip(at["item_id"], at["gtin"], strict=True))

    def promotions(self, retailer: str | None = None) -> pa.Table:
        """retailer_id, gtin, date, discount_pct (percent): one row per promotion day."""
        promos = self.data().promotions
        if retailer is not None:
            promos = promos[promos["retailer_id"] == retailer]
        rows: dict[str, list[object]] = {"retailer_id": [], "gtin": [], "date": [],
                                         "discount_pct": []}  # fmt: skip
        for r in promos.itertuples(index=False):
            days = (r.end_date - r.start_date).days + 1
            for i in range(days):
                rows["retailer_id"].append(r.retailer_id)
                rows["gtin"].append(r.gtin)
                rows["date"].append(r.start_date + timedelta(days=i))
                rows["discount_pct"].append(float(r.discount_pct))
        return pa.table(
            rows,
            schema=pa.schema([("retailer_id", pa.string()), ("gtin", pa.string()),
                              ("date", pa.date32()), ("discount_pct", pa.float64())]),
        )  # fmt: skip

    def sellthrough(self, retailer: str | None = None) -> pa.Table:
        """date, retailer_id, gtin, units, revenue: one row per day, retailer and product
        (rows by geo are summed; `geo_sales` keeps the markets apart)."""
        sell = self.data().sellthrough
        if retailer is not None:
            sell = sell[sell["retailer_id"] == retailer]
        if sell["geo"].notna().any():
            keys = ["date", "retailer_id", "gtin"]
            sell = sell.groupby(keys, as_index=False, sort=False)[["units", "revenue"]].sum()
        return pa.table(
            {
                "date": pa.array(list(sell["date"]), pa.date32()),
                "retailer_id": pa.array(list(sell["retailer_id"]), pa.string()),
                "gtin": pa.array(list(sell["gtin"]), pa.string()),
                "units": pa.array(sell["units"].astype(float).tolist(), pa.float64()),
                "revenue": pa.array(sell["revenue"].astype(float).tolist(), pa.float64()),
            }
        )

    def geo_sales(self, retailer: str | None = None) -> pd.DataFrame:
        """date, retailer_id, geo, revenue: the brand's sales by market — its geo_sales file,
        else its sell-through where every row carries a geo (summed over products)."""
        d = self.data()
        geo = d.geo_sales
        if retailer is not None:
            geo = geo[geo["retailer_id"] == retailer]
        if len(geo):
            return geo[["date", "retailer_id", "geo", "revenue"]].reset_index(drop=True)
        sell = d.sellthrough
        if retailer is not None:
            sell = sell[sell["retailer_id"] == retailer]
        if len(sell) and bool(pd.notna(sell["geo"]).all()):
            return (
                sell.groupby(["date", "retailer_id", "geo"], as_index=False)["revenue"]
                .sum()
                .reset_index(drop=True)
            )
        return pd.DataFrame(columns=["date", "retailer_id", "geo", "revenue"])
