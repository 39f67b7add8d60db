"""The process's one runtime, loaded on first use and shared by every caller (the brief parser,
the graph's chat model, the CLI): the model weights and the merged adapter caches are held once
per process, not once per caller.

This is the one place the backend is chosen: the in-process model (the default), or, when
`RMN_LLM_ENDPOINT` names an OpenAI-compatible server, `adapters.endpoint.EndpointRuntime`,
imported only then."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.endpoint import EndpointRuntime
    from adapters.runtime import Runtime


@lru_cache(maxsize=1)
def shared_runtime() -> Runtime | EndpointRuntime:
    """The process's runtime: on the endpoint `RMN_LLM_ENDPOINT` names, else on the real base
    model in this process (loaded on first use)."""
    from adapters.endpoint import EndpointConfig

    config = EndpointConfig.from_env()
    if config is not None:
        from adapters.endpoint import EndpointRuntime

        return EndpointRuntime(config)
    from adapters.runtime import Runtime

    return Runtime.load()
