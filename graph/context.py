"""The run's context: who the plan is for and how the graph runs. Given per run
(`graph.invoke(..., context=Context(tenant="acme"))`, or a dict of these fields), never
stored in the thread's state, and read in nodes through `runtime.context`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import paths
from tools.errors import RMNError

MODELS: tuple[str, ...] = ("smollm2", "tiny", "none")
# Where a LangGraph server (langgraph-api, Aegra) puts the user its auth hook admitted, and the
# field our hook (graph/platform_auth.py) fills with the run context that user's key allows.
AUTH_USER_KEY = "langgraph_auth_user"
SERVED_CONTEXT_FIELD = "rmn_context"


class ContextError(RMNError):
    """A run context that cannot be used (unknown model, threshold out of range, ...)."""

    kind = "context_error"


@dataclass(kw_only=True)
class Context:
    """Runtime settings of one planning run."""

    tenant: str = field(
        default="acme",
        metadata={"description": "The brand the caller acts for; a brief for another is refused."},
    )
    confidence_threshold: float = field(
        default=0.8,
        metadata={"description": "Confidence at or above which auto-approval may apply."},
    )
    auto_approve: bool = field(
        default=False,
        metadata={
            "description": "Approve without a human when confidence reaches the threshold and "
            "nothing is flagged."
        },
    )
    actor: str | None = field(
        default=None,
        metadata={
            "description": "Who sends this run (the HTTP API puts the API key's id here, never "
            "the key); recorded as `by` on the decisions it makes. None: a person at a terminal."
        },
    )
    model: str = field(
        default="smollm2",
        metadata={
            "description": "smollm2: the bundled SmolLM2-135M with its adapters; tiny: a tiny "
            "random model (tests); none: no model (template copy and words)."
        },
    )
    use_adapters: bool = field(
        default=True,
        metadata={"description": "Bind each node's retailer, brand and task adapters."},
    )
    data_dir: str | None = field(
        default=None,
        metadata={"description": "Market data, curves, checkpoints; default RMN_DATA_DIR."},
    )
    reports_dir: str | None = field(
        default=None,
        metadata={"description": "Where finalized plans are written; default <data>/reports."},
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"description": "Policy index and model caches; default RMN_CACHE_DIR."},
    )
    max_creative_attempts: int = field(
        default=3,
        metadata={"description": "Generations per ad copy before the template fallback."},
    )
    max_governance_loops: int = field(
        default=2,
        metadata={"description": "Times governance may send copy back to creative."},
    )
    copy_variants: int = field(
        default=2, metadata={"description": "Ad copy variants per retailer."}
    )
    retrieval_k: int = field(
        default=6, metadata={"description": "Policy passages retrieved per question."}
    )
    rationale_with_model: bool = field(
        default=True,
        metadata={
            "description": "Let the model write the rationale's sentences after the code's "
            "openings, shown a worked example of the same kinds of sentence "
            "(`tools.plan.prompts.worked_example`); the template writes a text the checks "
            "refuse. Without the example, 47 of 47 texts on 26 held-out plans were garbled; "
            "with it, 90 of 91 on 51 plans of briefs it was never tuned on read well (8 "
            "more went to the template)."
        },
    )
    reflect_with_model: bool = field(
        default=False,
        metadata={
            "description": "Let the model write the reflection's words, each sentence after a "
            "worked example of its kind (`tools.plan.prompts.reflection_examples`). Off by "
            "default: on 78 held-out plans all read well, but 232 of 234 sentences were the "
            "example's ending word for word, which the template writes too; about 0.7 s a "
            "plan on bf16, 1.3 s under the AVX2 emulation."
        },
    )
    seed: int = field(
        default=0, metadata={"description": "Seed for curve draws, experiment assignment, model."}
    )

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ContextError(
                f"unknown model {self.model!r}; use one of {', '.join(MODELS)}", model=self.model
            )
        if not 0.0 <= float(self.confidence_threshold) <= 1.0:
            raise ContextError(
                f"confidence_threshold must be between 0 and 1, got {self.confidence_threshold}"
            )
        for name in ("max_creative_attempts", "copy_variants", "retrieval_k"):
            if int(getattr(self, name)) < 1:
                raise ContextError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.max_governance_loops) < 0:
            raise ContextError(
                f"max_governance_loops must be 0 or more, got {self.max_governance_loops}"
            )
        if int(self.seed) < 0:
            raise ContextError(f"seed must be 0 or more, got {self.seed}")

    @classmethod
    def of(cls, value: Context | dict[str, Any] | None) -> Context:
        """The context a node runs under: the one given, or the defaults when none was."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = set(cls.__dataclass_fields__)
            unknown = sorted(set(value) - known)
            if unknown:
                raise ContextError(
                    f"unknown context field(s) {', '.join(unknown)}; fields: "
                    f"{', '.join(sorted(known))}"
                )
            return cls(**value)
        raise ContextError(f"a context is a Context or a dict, not {type(value).__name__}")

    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else paths.data_dir()

    def reports_path(self) -> Path:
        return Path(self.reports_dir) if self.reports_dir else self.data_path() / "reports"

    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else paths.cache_dir()


def served_context(ctx: Context, configurable: Mapping[str, Any] | None) -> Context:
    """The context a run on a LangGraph server really has: when our auth hook admitted the
    run's user with an API key, the context that key allows (its tenant, its key id, its
    tenant's approval policy, the server's model and data) replaces the client's. Done here,
    in the graph, because Aegra calls the hook's run handler on one run endpoint only (not
    /runs/wait nor /runs/stream): the hook alone could not keep a client from naming another
    tenant. Without such a user (our own server, `langgraph dev` without keys, the CLI) the
    context is the one given."""
    user = (configurable or {}).get(AUTH_USER_KEY)
    served = _user_field(user, SERVED_CONTEXT_FIELD)
    if not served:
        return ctx
    if not isinstance(served, Mapping):
        raise ContextError("the authenticated user's run context is not a mapping")
    return Context.of(dict(served))


def _user_field(user: Any, name: str) -> Any:
    # langgraph-api hands the user over as an object, Aegra as a dict.
    if isinstance(user, Mapping):
        return user.get(name)
    return getattr(user, name, None) if user is not None else None
