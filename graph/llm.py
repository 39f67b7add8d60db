"""The chat model the graph's LLM nodes share: one per process and model choice.

`chat_model(ctx)` gives the `RMNChatModel` the context asks for: the bundled SmolLM2-135M
(`"smollm2"`, loaded once and shared with the brief parser's runtime), a tiny randomly
initialised Llama for tests (`"tiny"`: milliseconds per token, with random adapters that mirror
the installed catalogue so adapter selection behaves as in production) or none (`"none"`:
nodes fall back to their templates). `bind_for_node` binds one node's adapters: only those
installed, and a brand adapter only for the tenant that owns it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from filelock import FileLock

from adapters.chat_model import RMNChatModel
from adapters.registry import METADATA_FILE, AdapterRegistry, check_base
from adapters.shared import shared_runtime
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_random_adapter
from graph.context import Context
from tools.errors import RMNError

TINY_SEED = 0
# Copy and reflection fit in this many tokens; the schema-constrained brief needs fewer.
DEFAULT_MAX_NEW_TOKENS = 160

_lock = threading.Lock()
_models: dict[tuple[str, str], Any] = {}


def chat_model(ctx: Context) -> RMNChatModel | None:
    """The process's chat model for `ctx.model` (built on first use), or None for "none"."""
    if ctx.model == "none":
        return None
    key = (ctx.model, str(ctx.cache_path().resolve()) if ctx.model == "tiny" else "")
    with _lock:
        if key not in _models:
            _models[key] = _build(ctx)
        return _models[key]


def _build(ctx: Context) -> RMNChatModel:
    if ctx.model == "smollm2":
        runtime = shared_runtime()
    else:
        runtime = tiny_runtime(tiny_adapters(ctx.cache_path() / "tiny-adapters"), seed=TINY_SEED)
    return RMNChatModel(runtime=runtime, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)


def tiny_adapters(root: Path) -> Path:
    """Random adapters for the tiny model under `root`, one for each adapter installed for
    the real model (same kind, id and owner), written once and reused."""
    installed = AdapterRegistry().entries()
    missing = [e for e in installed if not (root / e.metadata.kind / e.metadata.id).is_dir()]
    if not missing:
        return root
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        model, _ = tiny_llama(TINY_SEED)
        for seed, entry in enumerate(installed, start=1):
            meta = entry.metadata
            if (root / meta.kind / meta.id / METADATA_FILE).is_file():
                continue
            write_random_adapter(
                root,
                meta.kind,
                meta.id,
                model,
                base_fingerprint=tiny_fingerprint(TINY_SEED),
                owner_tenant=meta.owner_tenant,
                seed=seed,
            )
    return root


def available_adapters(
    llm: RMNChatModel,
    *,
    tenant: str,
    retailer: str | None = None,
    brand: str | None = None,
    task: str | None = None,
) -> dict[str, str | None]:
    """The node's wished-for adapters cut down to those installed for this model and usable
    by the tenant (a brand adapter is its owner's only)."""
    registry = llm.runtime.registry
    chosen: dict[str, str | None] = {"retailer": None, "brand": None, "task": None}
    for kind, adapter_id in (("retailer", retailer), ("brand", brand), ("task", task)):
        if adapter_id is None:
            continue
        try:
            entry = registry.get(kind, adapter_id)  # type: ignore[arg-type]
            check_base(entry, llm.runtime.base_fingerprint)
        except RMNError:  # not installed, or trained for another base: run without it
            continue
        owner = entry.metadata.owner_tenant
        if owner is None or owner == tenant:
            chosen[kind] = adapter_id
    return chosen


def bind_for_node(
    llm: RMNChatModel | None,
    *,
    node: str,
    tenant: str,
    use_adapters: bool = True,
    retailer: str | None = None,
    brand: str | None = None,
    task: str | None = None,
    max_new_tokens: int | None = None,
) -> tuple[RMNChatModel | None, list[str]]:
    """(the model bound to this node's adapters and tenant, the adapters active). The bound
    copy carries tags and metadata (tenant, node, adapters) for tracing."""
    if llm is None:
        return None, []
    chosen = (
        available_adapters(llm, tenant=tenant, retailer=retailer, brand=brand, task=task)
        if use_adapters
        else {"retailer": None, "brand": None, "task": None}
    )
    bound = llm.bind_adapters(tenant=tenant, max_new_tokens=max_new_tokens, **chosen)
    names = bound.adapters.names
    tags = [f"tenant:{tenant}", f"node:{node}", *(f"adapter:{n}" for n in names)]
    metadata = {"tenant": tenant, "node": node, "adapters": names}
    return bound.model_copy(update={"tags": tags, "metadata": metadata}), names


def node_model(ctx: Context, node: str) -> RMNChatModel | None:
    """The run's chat model tagged for one node (tenant, node), or None without a model. The
    tool it is handed to binds the adapters each call writes with (`bind_adapters` adds their
    `adapter:` tags), so every generation is a traced run tagged tenant, node and adapters."""
    llm = chat_model(ctx)
    if llm is None:
        return None
    tags = [f"tenant:{ctx.tenant}", f"node:{node}"]
    return llm.model_copy(update={"tags": tags, "metadata": {"tenant": ctx.tenant, "node": node}})
