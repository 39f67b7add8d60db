"""The catalog as data: retailers and brands are folders of files, never code.

    <root>/retailers/<id>/mapping.yaml   display name, aliases, time zone, placements (+ the
                                         harmonizer mapping of its reports)
    <root>/retailers/<id>/*.md           its policy documents (`tools.policy`)
    <root>/brands/<id>/brand.yaml        display name, aliases, owner tenant, categories,
                                         the retailers it sells through
    <root>/brands/<id>/products.csv ...  its first-party files (`tools.firstparty`)

A data directory that holds `retailers/` or `brands/` is its own catalog; otherwise the bundled
one (`rag_corpus/`, the simulated market's cast) is used. Brief parsing, retrieval scoping,
tenant ownership, the harmonizer and the clean room all read it from here.

    from tools.catalog import current, catalog_root
    current().brand_retailers("acme")
"""

from tools.catalog.load import (
    Catalog,
    catalog_root,
    current,
    has_catalog,
    load_catalog,
    read_catalog,
)
from tools.catalog.models import (
    BRAND_FILE,
    CATEGORIES,
    MAPPING_FILE,
    NETWORKS,
    Brand,
    BrandFile,
    Retailer,
    RetailerHeader,
)
from tools.catalog.yamlfile import CatalogError

__all__ = [
    "BRAND_FILE",
    "CATEGORIES",
    "MAPPING_FILE",
    "NETWORKS",
    "Brand",
    "BrandFile",
    "Catalog",
    "CatalogError",
    "Retailer",
    "RetailerHeader",
    "catalog_root",
    "current",
    "has_catalog",
    "load_catalog",
    "read_catalog",
]
