"""Which tenant owns which brand: a tenant plans, reads first-party data and retrieves brand
guides for the brands whose brand.yaml names it as `owner_tenant` (`tools.catalog`), and for
no other. A brand guide that names another owner than its brand.yaml is a catalog error
(`rmn check`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tools.errors import AccessDeniedError

__all__ = ["check_brand_access", "tenant_brands"]


def tenant_brands(tenant: str, owners: Mapping[str, str] | None = None) -> list[str]:
    """The brands a tenant may plan for: those whose brand.yaml names it `owner_tenant` (or,
    given `owners`, brand -> owner), in catalog order."""
    from tools.catalog import current

    catalog = current()
    owners = catalog.owners() if owners is None else owners
    return [b for b in catalog.brands if owners.get(b) == tenant]


def check_brand_access(tenant: str, brand_id: str | None, brands: Iterable[str]) -> str:
    """The brand a request plans for: `brand_id` when the tenant owns it, the tenant's only
    brand when none is given. Another tenant's brand is refused."""
    from tools.brief.schema import check_brand

    owned = list(brands)
    if brand_id is None:
        if len(owned) == 1:
            return owned[0]
        if not owned:
            raise AccessDeniedError(f"tenant {tenant!r} owns no brand", tenant=tenant)
        raise AccessDeniedError(
            f"tenant {tenant!r} owns several brands ({', '.join(owned)}); say which in brand_id",
            tenant=tenant,
            brands=owned,
        )
    check_brand(brand_id)
    if brand_id not in owned:
        raise AccessDeniedError(
            f"brand {brand_id!r} does not belong to tenant {tenant!r}",
            tenant=tenant,
            brand=brand_id,
        )
    return brand_id
