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
can switch to its rule-based path. Given a `SentenceGrammar` it returns plain sentences whose
numbers and citations the grammar allowed.

Several calls with different adapters, grammars and seeds in one batch (what ad copy needs):

    answers = generate_many([ChatCall(writer_alpha, msgs_1, schema, seed=1), ...])
    generation_of(answers[0]).parsed

Each call is its own LangChain run (a child of the node's run when called inside one), tagged
`adapter:<kind>/<id>` for each adapter it ran with, so LangSmith shows which adapters wrote
what; the calls still decode as one batch on the shared runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManager, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, ensure_config
from pydantic import ConfigDict, Field

from adapters.generation import Generation
from adapters.registry import AdapterSet
from adapters.structured import OutputSchema, SchemaLike, StructuredOutputError
from tools.errors import RMNError

ADAPTER_TAG = "adapter:"


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
    temperature: float = 0.0  # 0: greedy
    seed: int | None = None

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
            "temperature": self.temperature,
            "seed": self.seed,
        }

    def bind_adapters(
        self,
        retailer: str | None = None,
        brand: str | None = None,
        task: str | None = None,
        tenant: str | None = None,
        max_new_tokens: int | None = None,
    ) -> RMNChatModel:
        """A copy bound to these adapters and tenant (replacing any earlier binding), tagged
        `adapter:<kind>/<id>` for each (its runs carry the tags). The adapters are checked now
        (existence, base model, tenant access), so a node built with a forbidden or missing
        adapter fails when the graph is built, not mid-run."""
        adapters = AdapterSet(retailer=retailer, brand=brand, task=task)
        self.runtime.registry.resolve(adapters, tenant, self.runtime.base_fingerprint)
        tags = [t for t in self.tags or [] if not t.startswith(ADAPTER_TAG)]
        tags += [f"{ADAPTER_TAG}{name}" for name in adapters.names]
        update: dict[str, Any] = {"adapters": adapters, "tenant": tenant, "tags": tags}
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
        gen = self.runtime.generate_many([self._request(messages, kwargs)])[0]
        message = self._message(gen, kwargs.get("json_schema") is not None, stop)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _request(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        """The runtime request for one call of this bound model (kwargs override fields)."""
        from adapters.runtime import Request  # imports torch: only once a model runs

        return Request(
            [_to_dict(m) for m in messages],
            self.adapters,
            self.tenant,
            int(kwargs.get("max_new_tokens", self.max_new_tokens)),
            kwargs.get("json_schema"),
            temperature=float(kwargs.get("temperature", self.temperature)),
            seed=kwargs.get("seed", self.seed),
        )

    def _message(
        self, gen: Generation, structured: bool, stop: list[str] | None = None
    ) -> AIMessage:
        text = gen.text
        if stop and not structured:
            cuts = [text.find(s) for s in stop if s and s in text]
            text = text[: min(cuts)] if cuts else text
        metadata = {"model_name": self.runtime.model_name, "tenant": self.tenant, **gen.metadata()}
        extra: dict[str, Any] = {"parsed": gen.parsed} if structured else {}
        return AIMessage(
            content=text,
            additional_kwargs=extra,
            response_metadata=metadata,
            usage_metadata={
                "input_tokens": gen.prompt_tokens,
                "output_tokens": gen.tokens,
                "total_tokens": gen.prompt_tokens + gen.tokens,
            },
        )

    def with_structured_output(
        self,
        schema: SchemaLike,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """A runnable returning `schema` instances (a pydantic class), dicts (a JSON-schema
        dict) or text (a `SentenceGrammar`), decoded under the schema's grammar. Fallbacks
        raise `StructuredOutputError`; with `include_raw=True` the result is {"raw", "parsed",
        "parsing_error"} instead."""
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


@dataclass
class ChatCall:
    """One call of a `generate_many` batch: a bound model, its input, and what it decodes under
    (`schema`: a pydantic class, a JSON-schema dict or a `SentenceGrammar`; None: free text).
    `max_new_tokens`, `temperature` and `seed` override the model's own."""

    model: RMNChatModel
    input: LanguageModelInput
    schema: SchemaLike | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.schema is not None:
            out["json_schema"] = self.schema
        for name in ("max_new_tokens", "temperature", "seed"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def generate_many(
    calls: Sequence[ChatCall], config: RunnableConfig | None = None
) -> list[AIMessage]:
    """Every call's answer, in order, decoded as one batch on the models' shared runtime (rows
    of one adapter set share a decode). Each call is reported to LangChain's callbacks as its
    own chat-model run, with its bound model's tags (adapters, node, tenant) and the config's
    (inside a graph node, the node's run is the parent). A structured answer is in
    `additional_kwargs["parsed"]`; `generation_of` turns an answer back into a `Generation`."""
    if not calls:
        return []
    runtime = calls[0].model.runtime
    if any(c.model.runtime is not runtime for c in calls):
        raise UnsupportedMessageError("the calls of one batch must share one runtime")
    config = ensure_config(config)
    requests = []
    managers: list[CallbackManagerForLLMRun] = []
    for call in calls:
        model, kwargs = call.model, call.kwargs()
        messages = model._convert_input(call.input).to_messages()
        requests.append(model._request(messages, kwargs))  # checks the messages first
        manager = CallbackManager.configure(
            config.get("callbacks"),
            model.callbacks,
            model.verbose,
            config.get("tags"),
            model.tags,
            config.get("metadata"),
            model.metadata,
        )
        managers += manager.on_chat_model_start(
            model._serialized,
            [messages],
            invocation_params=model._get_invocation_params(**kwargs),
            options={"batch": len(calls)},
            batch_size=len(calls),
        )
    try:
        gens = runtime.generate_many(requests)
    except BaseException as err:
        for run in managers:
            run.on_llm_error(err)
        raise
    answers = []
    for call, run, gen in zip(calls, managers, gens, strict=True):
        message = call.model._message(gen, call.schema is not None)
        run.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))
        answers.append(message)
    return answers


def generation_of(message: AIMessage) -> Generation:
    """A chat answer as the runtime's `Generation` (text, parsed answer, adapters, repair and
    fallback flags, tokens, seconds)."""
    meta = message.response_metadata
    fields = Generation.__dataclass_fields__
    known = {k: v for k, v in meta.items() if k in fields and k not in ("text", "parsed")}
    return Generation(
        text=str(message.content),
        parsed=message.additional_kwargs.get("parsed"),
        **known,
    )


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
