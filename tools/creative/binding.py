"""Which adapters copy for a retailer and brand is written with, in one place: the writer binds
them (`bound_model`) and the language bench reads their data cards (`composed_adapters`).

Copy is written with the retailer's, the brand's and the creative task's adapters, those the
registry has. A brand adapter is composed only on top of the task adapter it was trained on
(`rmn train sft --stack-on task/creative` records it, with that adapter's weights digest, under
`training.stacked_on`): one trained alone was measured to break the copy when summed with
task/creative. Bundled brand/acme (trained alone) on the held-out "Acme Honey Granola Bars" at
Beta, one round, two variants: retailer+brand+task wrote loops for both ("Now your kids'n. Now
it. Now it. ..."), 0 of 2 usable; retailer+task wrote 1 of 2 usable (the same 0-of-6 vs
6-of-8 gap measured on main). Such a brand adapter is left out and the variant's `adapters`
say what ran; its brand's voice and claims still reach the prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.registry import KINDS, AdapterEntry, AdapterRegistry, Kind, authorize
from adapters.stacking import stacked_as_trained

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel

DEFAULT_KINDS: tuple[Kind, ...] = ("retailer", "brand", "task")
CREATIVE_TASK = "creative"


def bound_model(
    llm: RMNChatModel, retailer_id: str, brand_id: str, tenant: str | None,
    kinds: tuple[Kind, ...],
) -> RMNChatModel:  # fmt: skip
    """The chat model bound to the adapters of `kinds` the registry has for this retailer and
    brand, checked for the tenant by binding them (a brand adapter of another tenant is
    refused, not skipped)."""
    found = _found(llm.runtime.registry, retailer_id, brand_id, kinds)
    if found["brand"] is not None:
        authorize(found["brand"], tenant)  # another tenant's adapter is refused before skipping
    picked = _stacked_only(found)
    ids = {k: e.metadata.id if e is not None else None for k, e in picked.items()}
    return llm.bind_adapters(**ids, tenant=tenant)


def composed_adapters(
    registry: AdapterRegistry | None, retailer_id: str, brand_id: str, kinds: tuple[Kind, ...]
) -> list[AdapterEntry]:
    """The adapters `bound_model` composes for this retailer and brand; none without a registry
    (template copy)."""
    if registry is None:
        return []
    picked = _stacked_only(_found(registry, retailer_id, brand_id, kinds))
    return [e for e in picked.values() if e is not None]


def stacked_on(adapter: AdapterEntry, under: AdapterEntry) -> bool:
    """Whether `adapter` was trained on top of `under` as installed (`adapters.stacking`): a
    brand adapter stacked on an older task/creative is not composed with a newer one."""
    card = adapter.metadata.training.model_dump()
    return stacked_as_trained(card, under.name, under.path)


def _found(
    registry: AdapterRegistry, retailer_id: str, brand_id: str, kinds: tuple[Kind, ...]
) -> dict[Kind, AdapterEntry | None]:
    """Each kind's adapter for this retailer and brand, where `kinds` asks for it and the
    registry has it."""
    have = {(e.metadata.kind, e.metadata.id): e for e in registry.entries()}
    wanted = {"retailer": retailer_id, "brand": brand_id, "task": CREATIVE_TASK}
    return {k: have.get((k, wanted[k])) if k in kinds else None for k in KINDS}


def _stacked_only(found: dict[Kind, AdapterEntry | None]) -> dict[Kind, AdapterEntry | None]:
    """`found` without its brand adapter unless that was trained on the task adapter found."""
    brand, task = found["brand"], found["task"]
    if brand is not None and (task is None or not stacked_on(brand, task)):
        return {**found, "brand": None}
    return found
