"""The runtime on an OpenAI-compatible endpoint instead of the in-process model.

Set `RMN_LLM_ENDPOINT=http://127.0.0.1:8080/v1` and `adapters.shared.shared_runtime()` (the one
seam every caller goes through) returns an `EndpointRuntime`: same `generate`/`generate_many`,
same registry checks (base fingerprint, a brand adapter for its owner only), same prompts, the
same one repair turn; `Generation.backend` says "endpoint". Unset, nothing here is imported and
the in-process runtime is unchanged.

Each call names its adapter set's export as the model (`served_name`: `alpha+acme+creative`):
llama.cpp's Python server takes it as a `model_alias` from its config file (see
`adapters.endpoint_export`), vLLM as a `--lora-modules` name. Names are checked against the
endpoint's `/models` first, because llama-cpp-python's server answers an unknown name with its
default model rather than an error: without the check a missing export would silently serve
the bare base.

Structured output: a JSON answer is asked for with the endpoint's own schema constraint
(`RMN_LLM_ENDPOINT_SCHEMA`: `json_object` = llama.cpp's `{"type": "json_object", "schema"}`,
the default; `json_schema` = OpenAI/vLLM's `{"type": "json_schema", ...}`; `none`) and always
validated by our own validator, with the one repair turn the in-process path gives. Sentence
grammars (llguidance Lark) have no endpoint equivalent: those answers are decoded freely and
validated, falling back as a grammar miss does in-process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from adapters import prompts
from adapters.endpoint_export import BASE_NAME, served_name
from adapters.generation import Generation
from adapters.registry import AdapterRegistry, AdapterSet
from adapters.structured import OutputInvalid, OutputSchema, SchemaLike, StructuredOutputError
from tools.errors import RMNError

ENDPOINT_ENV = "RMN_LLM_ENDPOINT"
SCHEMA_ENV = "RMN_LLM_ENDPOINT_SCHEMA"
TIMEOUT_ENV = "RMN_LLM_ENDPOINT_TIMEOUT"
KEY_ENV = "RMN_LLM_ENDPOINT_KEY"
SchemaMode = Literal["json_object", "json_schema", "none"]
SCHEMA_MODES: tuple[SchemaMode, ...] = ("json_object", "json_schema", "none")
HINT = "start it (README, 'Scaling out') or unset RMN_LLM_ENDPOINT to use the in-process model"


class EndpointUnavailableError(RMNError):
    """The endpoint cannot be reached (refused, timed out) or answered with a server error."""

    kind = "llm_endpoint_unavailable"


class EndpointModelMissingError(RMNError):
    """The endpoint does not serve the export an adapter set needs."""

    kind = "llm_endpoint_model_missing"


class EndpointConfigError(RMNError):
    kind = "llm_endpoint_config"


@dataclass(frozen=True)
class EndpointConfig:
    """Where the endpoint is and how it takes a schema."""

    url: str
    schema_mode: SchemaMode = "json_object"
    timeout_s: float = 120.0
    api_key: str | None = None
    concurrency: int = 4  # requests in flight from one generate_many (vLLM batches them)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EndpointConfig | None:
        """The endpoint `RMN_LLM_ENDPOINT` names, or None (the in-process model)."""
        env = os.environ if env is None else env
        url = env.get(ENDPOINT_ENV, "").strip()
        if not url:
            return None
        mode = env.get(SCHEMA_ENV, "json_object").strip() or "json_object"
        if mode not in SCHEMA_MODES:
            raise EndpointConfigError(f"{SCHEMA_ENV} is one of {', '.join(SCHEMA_MODES)}")
        try:
            timeout = float(env.get(TIMEOUT_ENV, "120"))
        except ValueError:
            raise EndpointConfigError(f"{TIMEOUT_ENV} is a number of seconds") from None
        return cls(url.rstrip("/"), mode, timeout, env.get(KEY_ENV) or None)  # type: ignore[arg-type]


@dataclass
class _Reply:
    text: str
    finish_reason: str
    prompt_tokens: int
    tokens: int


class EndpointRuntime:
    """`adapters.runtime.Runtime`'s calling surface, answered by an OpenAI-compatible server."""

    fast_forward = False  # no local decoding loop to tune

    def __init__(
        self,
        config: EndpointConfig,
        registry: AdapterRegistry | None = None,
        base_fingerprint: str | None = None,
    ) -> None:
        import httpx

        from adapters.base import BASE_MODEL_ID
        from adapters.base import base_fingerprint as local_fingerprint

        self.config = config
        self.registry = registry if registry is not None else AdapterRegistry()
        # The endpoint serves the GGUF this machine has installed (the exports are built on it).
        self.base_fingerprint = base_fingerprint or local_fingerprint()
        self.model_name = f"{BASE_MODEL_ID}@{config.url}"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(base_url=config.url, timeout=config.timeout_s, headers=headers)
        self._served: set[str] | None = None
        self.calls = 0

    def decode_label(self) -> str:
        return "endpoint"

    def stats(self) -> dict[str, Any]:
        return {"decode": "endpoint", "url": self.config.url, "calls": self.calls,
                "served": sorted(self._served or ())}  # fmt: skip

    def generate(
        self,
        messages: Sequence[dict[str, str]],
        adapters: AdapterSet | None = None,
        tenant: str | None = None,
        *,
        max_new_tokens: int = 256,
        json_schema: SchemaLike | None = None,
        on_invalid: Literal["return", "raise"] = "return",
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        """As `Runtime.generate`, through the endpoint."""
        from adapters.runtime import Request

        request = Request(messages, adapters or AdapterSet(), tenant, max_new_tokens,
                          json_schema, temperature=temperature, seed=seed)  # fmt: skip
        return self.generate_many([request], on_invalid=on_invalid)[0]

    def generate_many(
        self, requests: Sequence[Any], *, on_invalid: Literal["return", "raise"] = "return"
    ) -> list[Generation]:
        """Each request's answer, in order; sent concurrently (the server batches or queues)."""
        from adapters.runtime import check_request

        for request in requests:  # every call checked before any is sent, as in-process
            check_request(request)
            self.registry.resolve(request.adapters, request.tenant, self.base_fingerprint)
        workers = max(1, min(self.config.concurrency, len(requests)))
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(self._one, requests))
        for gen in results:
            if gen.fallback and on_invalid == "raise":
                raise StructuredOutputError(
                    f"no valid answer from the endpoint after a repair turn: {gen.error}",
                    generation=gen,
                )
        return results

    # -- one call -----------------------------------------------------------------------------

    def _one(self, request: Any) -> Generation:
        started = time.perf_counter()
        entries = self.registry.resolve(request.adapters, request.tenant, self.base_fingerprint)
        model = self._model_for(request.adapters)
        schema = OutputSchema.of(request.json_schema) if request.json_schema is not None else None
        json_schema = schema.json_schema if schema is not None and schema.is_json else None
        messages = prompts.call_messages(request.messages, request.adapters.task, json_schema)
        reply = self._chat(model, messages, request, schema)
        gen = self._generation(reply, messages, [e.name for e in entries], model)
        if schema is not None:
            self._validate(gen, schema, reply)
            if gen.error and schema.repairable:
                repair = prompts.repair_instruction(gen.error)
                retry = [*messages, {"role": "assistant", "content": reply.text},
                         {"role": "user", "content": repair}]  # fmt: skip
                second = self._chat(model, retry, request, schema)
                gen.tokens += second.tokens
                gen.text, gen.finish_reason, gen.error = second.text, second.finish_reason, None
                self._validate(gen, schema, second, repaired=True)
        gen.seconds = time.perf_counter() - started
        return gen

    @staticmethod
    def _validate(gen: Generation, schema: OutputSchema, reply: _Reply,
                  repaired: bool = False) -> None:  # fmt: skip
        try:
            gen.parsed = schema.validate(reply.text)
            gen.repaired = repaired
        except OutputInvalid as err:
            gen.error = str(err)
            gen.fallback = repaired or not schema.repairable

    def _generation(self, reply: _Reply, messages: list[dict[str, str]], names: list[str],
                    model: str) -> Generation:  # fmt: skip
        return Generation(
            text=reply.text, adapters_active=names,
            composition="base" if model == BASE_NAME else "exported",
            decode=f"endpoint/{model}", backend="endpoint", tokens=reply.tokens,
            prompt_tokens=reply.prompt_tokens, finish_reason=reply.finish_reason,
            messages=[dict(m) for m in messages],
        )  # fmt: skip

    # -- the wire -----------------------------------------------------------------------------

    def _model_for(self, adapters: AdapterSet) -> str:
        """The served name for this set, refused unless the endpoint lists it."""
        name = served_name(adapters)
        if self._served is None or name not in self._served:
            self._served = self.served_models()
        if name not in self._served:
            raise EndpointModelMissingError(
                f"the endpoint at {self.config.url} does not serve {name!r} (serves: "
                f"{', '.join(sorted(self._served)) or 'nothing'}): export it with `rmn adapters "
                "export-gguf` and list it in the server's config",
                model=name,
            )
        return name

    def served_models(self) -> set[str]:
        """The model names the endpoint's `/models` lists."""
        body = self._request("GET", "/models")
        return {str(m.get("id")) for m in body.get("data", [])}

    def _chat(self, model: str, messages: list[dict[str, str]], request: Any,
              schema: OutputSchema | None) -> _Reply:  # fmt: skip
        payload: dict[str, Any] = {
            "model": model, "messages": messages, "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            # llama.cpp's server defaults to a 1.1 repeat penalty and top-k 40; the in-process
            # runtime decodes greedily (or samples from the full distribution) without either.
            "repeat_penalty": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
        }  # fmt: skip
        if request.seed is not None:
            payload["seed"] = request.seed
        if schema is not None and schema.is_json:
            payload.update(self._response_format(schema))
        self.calls += 1
        body = self._request("POST", "/chat/completions", payload)
        try:
            choice = body["choices"][0]
            usage = body.get("usage") or {}
            return _Reply(
                str(choice["message"].get("content") or ""),
                "length" if choice.get("finish_reason") == "length" else "stop",
                int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
            )  # fmt: skip
        except (KeyError, IndexError, TypeError) as err:
            raise EndpointUnavailableError(
                f"the endpoint at {self.config.url} answered without a chat completion ({err})"
            ) from None

    def _response_format(self, schema: OutputSchema) -> dict[str, Any]:
        closed = schema.grammar_schema
        if self.config.schema_mode == "json_object":
            return {"response_format": {"type": "json_object", "schema": llama_schema(closed)}}
        if self.config.schema_mode == "json_schema":
            spec = {"name": schema.name[:64] or "answer", "schema": closed, "strict": True}
            return {"response_format": {"type": "json_schema", "json_schema": spec}}
        return {}

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, json=payload)
        except httpx.TransportError as err:
            raise EndpointUnavailableError(
                f"the LLM endpoint at {self.config.url} is unreachable "
                f"({type(err).__name__}: {err}): {HINT}",
                url=self.config.url,
            ) from None
        if response.status_code >= 400:
            raise EndpointUnavailableError(
                f"the LLM endpoint at {self.config.url} answered {method} {path} with "
                f"HTTP {response.status_code}: {response.text[:300]}",
                url=self.config.url, status=response.status_code,
            )  # fmt: skip
        try:
            return response.json()
        except ValueError:
            raise EndpointUnavailableError(
                f"the LLM endpoint at {self.config.url} answered {path} with non-JSON"
            ) from None

    def close(self) -> None:
        self._http.close()


# A plain JSON string without control characters, quotes or escapes (see `llama_schema`).
_PLAIN_CHARS = '[^\\x00-\\x1F"\\\\]'


def llama_schema(schema: Any) -> Any:
    """The schema as llama-cpp-python's JSON-schema-to-grammar converter needs it to constrain
    what our validator checks. Measured on 0.3.36: its string rule admits control characters
    (a headline ended in a raw vertical tab, invalid JSON), and a type list such as
    `["string", "null"]` loses `format: date` (a brief's dates came back as date-times). So a
    type list becomes `anyOf` of single types, and a free string gets a pattern without control
    characters (its min/max length kept). Only ever stricter than the schema itself."""
    if isinstance(schema, list):
        return [llama_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: llama_schema(v) for k, v in schema.items()}
    kind = out.get("type")
    if isinstance(kind, list):
        rest = {k: v for k, v in out.items() if k != "type"}
        return {"anyOf": [llama_schema(_for_type(rest, t)) for t in kind]}
    free = not any(k in out for k in ("enum", "const", "pattern", "format"))
    if kind == "string" and free:
        low, high = out.pop("minLength", None), out.pop("maxLength", None)
        count = "*"
        if low is not None or high is not None:
            count = f"{{{low or 0},{'' if high is None else high}}}"
        out["pattern"] = f"^{_PLAIN_CHARS}{count}$"
    return out


def _for_type(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """One branch of a type list: the string keywords stay on the string branch only."""
    strings = ("format", "pattern", "minLength", "maxLength")
    keep = {k: v for k, v in schema.items() if kind == "string" or k not in strings}
    return {**keep, "type": kind}
