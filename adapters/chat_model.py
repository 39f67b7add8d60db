"""A LangChain chat model over the adapter runtime, bound per graph node.

    llm = RMNChatModel(runtime=Runtime.load())
    writer = llm.bind_adapters(retailer="alpha", brand="acme", task="creative", tenant="acme")
    msg = writer.invoke("Write a 10-word headline for Acme coffee.")
    msg.response_metadata  # adapters_active, composition, decode, repaired, fallback, tokens ...
    plan = llm.bind_adapters(task="planning").with_structured_output(PlanBrief).invoke(brief)

Every bound copy shares the one runtime (one base model, one adapter cache); binding is free.
`with_structured_output` decodes under the schema's grammar (see `adapters.structured`), so the
answer is schema-valid JSON; when validation still fails after the repair turn it raises
`StructuredOutputError` (or, with `include_raw=True`, returns it as `parsing_error`) so the node
can switch to its rule-based path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict, Field

from adapters.registry import AdapterSet
from adapters.structured import OutputSchema, SchemaLike, StructuredOutputError
from tools.errors import RMNError


class UnsupportedMessageError(RMNError):
    kind = "unsupported_message"


class RMNChatModel(BaseChatModel):
    """Chat model on a shared `adapters.runtime.Runtime`; `bind_adapters` picks the adapters
    and tenant for one node."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    runtime: Any = Field(exclude=True)
    adapters: AdapterSet = Field(default_factory=AdapterSet)
    tenant: str | None = None
    max_new_tokens: int = 256

    @property
    def _llm_type(self) -> str:
        return "rmn-lora-runtime"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.runtime.model_name,
            "adapters": str(self.adapters),
            "tenant": self.tenant,
            "max_new_tokens": self.max_new_tokens,
        }

    def bind_adapters(
        self,
        retailer: str | None = None,
        brand: str | None = None,
        task: str | None = None,
        tenant: str | None = None,
        max_new_tokens: int | None = None,
    ) -> RMNChatModel:
        """A copy bound to these adapters and tenant (replacing any earlier binding). The
        adapters are checked now (existence, base model, tenant access), so a node built with
        a forbidden or missing adapter fails when the graph is built, not mid-run."""
        adapters = AdapterSet(retailer=retailer, brand=brand, task=task)
        self.runtime.registry.resolve(adapters, tenant, self.runtime.base_fingerprint)
        update: dict[str, Any] = {"adapters": adapters, "tenant": tenant}
        if max_new_tokens is not None:
            update["max_new_tokens"] = max_new_tokens
        return self.model_copy(update=update)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        schema = kwargs.get("json_schema")
        gen = self.runtime.generate(
            [_to_dict(m) for m in messages],
            self.adapters,
            self.tenant,
            max_new_tokens=int(kwargs.get("max_new_tokens", self.max_new_tokens)),
            json_schema=schema,
        )
        text = gen.text
        if stop and schema is None:
            cuts = [text.find(s) for s in stop if s and s in text]
            text = text[: min(cuts)] if cuts else text
        metadata = {"model_name": self.runtime.model_name, "tenant": self.tenant, **gen.metadata()}
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["parsed"] = gen.parsed
        message = AIMessage(
            content=text,
            additional_kwargs=extra,
            response_metadata=metadata,
            usage_metadata={
                "input_tokens": gen.prompt_tokens,
                "output_tokens": gen.tokens,
                "total_tokens": gen.prompt_tokens + gen.tokens,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def with_structured_output(
        self,
        schema: SchemaLike,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """A runnable returning `schema` instances (a pydantic class) or dicts (a JSON-schema
        dict), decoded under the schema's grammar. Fallbacks raise `StructuredOutputError`;
        with `include_raw=True` the result is {"raw", "parsed", "parsing_error"} instead."""
        if kwargs:
            raise UnsupportedMessageError(
                f"with_structured_output takes no options besides include_raw: {sorted(kwargs)}"
            )
        target = OutputSchema.of(schema)
        bound = self.bind(json_schema=schema)

        def parse(message: AIMessage) -> Any:
            meta = message.response_metadata
            if meta.get("fallback") or meta.get("error"):
                raise StructuredOutputError(
                    f"no valid {target.name} answer after a repair turn: {meta.get('error')}",
                    text=message.content,
                )
            return message.additional_kwargs["parsed"]

        if not include_raw:
            return bound | RunnableLambda(parse)

        def parse_raw(message: AIMessage) -> dict[str, Any]:
            try:
                return {"raw": message, "parsed": parse(message), "parsing_error": None}
            except StructuredOutputError as err:
                return {"raw": message, "parsed": None, "parsing_error": err}

        return bound | RunnableLambda(parse_raw)


def _to_dict(message: BaseMessage) -> dict[str, str]:
    if isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ChatMessage) and message.role in ("system", "user", "assistant"):
        role = message.role
    else:
        raise UnsupportedMessageError(
            f"{type(message).__name__} is not supported: the model reads system, user and "
            "assistant turns only"
        )
    content = message.content
    if not isinstance(content, str):
        content = "".join(_text_parts(content))
    return {"role": role, "content": content}


def _text_parts(parts: Sequence[Any]) -> list[str]:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            out.append(str(part.get("text", "")))
        else:
            raise UnsupportedMessageError("only text content is supported")
    return out
