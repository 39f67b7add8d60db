"""A brand's first-party data: products (unit economics, the networks' item ids), stock and
the stock-out forecast, the promotions calendar, and daily sell-through (by geo when known).

Each file has a pydantic model (`tools.firstparty.schema`) and is checked row by row before
anything is used (`tools.firstparty.validate`); only the brand's owning tenant may read it
(`FirstPartyStore`).
"""

from tools.firstparty.schema import (
    FILES,
    GeoSalesRow,
    ProductRow,
    PromotionRow,
    SellthroughRow,
    StockRow,
    to_gtin14,
)
from tools.firstparty.store import SKU_COLUMNS, FirstPartyStore
from tools.firstparty.validate import (
    BrandData,
    FirstPartyError,
    Problem,
    check_brand_files,
    load_brand_data,
)

__all__ = [
    "FILES",
    "SKU_COLUMNS",
    "BrandData",
    "FirstPartyError",
    "FirstPartyStore",
    "GeoSalesRow",
    "Problem",
    "ProductRow",
    "PromotionRow",
    "SellthroughRow",
    "StockRow",
    "check_brand_files",
    "load_brand_data",
    "to_gtin14",
]
