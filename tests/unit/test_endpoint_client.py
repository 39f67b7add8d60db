"""The endpoint backend against a stand-in OpenAI-compatible server on loopback (stdlib
`http.server`, no model): what it sends, how it names adapter sets, its repair turn, and its
errors. The real llama.cpp server is exercised by tests/integration/test_endpoint.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from adapters.endpoint import (
    EndpointConfig,
    EndpointConfigError,
    EndpointModelMissingError,
    EndpointRuntime,
    EndpointUnavailableError,
)
from adapters.endpoint_export import served_name
from adapters.registry import AdapterAccessError, AdapterRegistry, AdapterSet
from adapters.structured import StructuredOutputError


class Brief(BaseModel):
    budget: int
    retailer: str


class FakeEndpoint:
    """Serves `/v1/models` and answers `/v1/chat/completions` from a queue of texts."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.answers: list[str] = []
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self._send({"object": "list", "data": [{"id": m} for m in fake.models]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                text = fake.answers.pop(0) if fake.answers else "ok"
                self._send(
                    {
                        "choices": [
                            {
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
                    }
                )

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def fake() -> Iterator[FakeEndpoint]:
    server = FakeEndpoint(["base", "alpha+acme+creative", "_+acme+planning"])
    yield server
    server.server.shutdown()


def _runtime(url: str, mode: str = "json_object") -> EndpointRuntime:
    registry = AdapterRegistry()
    fingerprint = registry.entries()[0].metadata.base_fingerprint  # no model load
    config = EndpointConfig(url, mode)  # type: ignore[arg-type]
    return EndpointRuntime(config, registry, base_fingerprint=fingerprint)


def test_served_names_are_one_per_set_and_cannot_collide() -> None:
    assert served_name(AdapterSet("alpha", "acme", "creative")) == "alpha+acme+creative"
    assert served_name(AdapterSet(brand="acme", task="planning")) == "_+acme+planning"
    assert served_name(AdapterSet(retailer="acme")) != served_name(AdapterSet(brand="acme"))
    assert served_name(AdapterSet()) == "base"


def test_config_comes_from_the_environment() -> None:
    assert EndpointConfig.from_env({}) is None  # unset: the in-process model
    config = EndpointConfig.from_env({"RMN_LLM_ENDPOINT": "http://h:1/v1/"})
    assert config is not None and config.url == "http://h:1/v1"
    assert config.schema_mode == "json_object"
    with pytest.raises(EndpointConfigError):
        EndpointConfig.from_env({"RMN_LLM_ENDPOINT": "x", "RMN_LLM_ENDPOINT_SCHEMA": "gbnf"})


def test_a_call_names_its_export_greedily_and_records_the_endpoint(fake: FakeEndpoint) -> None:
    rt = _runtime(fake.url)
    gen = rt.generate(
        [{"role": "user", "content": "Headline?"}],
        AdapterSet("alpha", "acme", "creative"),
        "acme",
        max_new_tokens=20,
    )
    sent = fake.requests[-1]
    assert sent["model"] == "alpha+acme+creative" and sent["max_tokens"] == 20
    assert sent["temperature"] == 0.0 and sent["repeat_penalty"] == 1.0
    assert sent["messages"][0]["role"] == "system"  # the task's system message, as in-process
    assert gen.backend == "endpoint" and gen.metadata()["backend"] == "endpoint"
    assert gen.decode == "endpoint/alpha+acme+creative" and gen.composition == "exported"
    assert gen.adapters_active == ["retailer/alpha", "brand/acme", "task/creative"]
    assert (gen.text, gen.prompt_tokens, gen.tokens) == ("ok", 11, 3)


def test_json_answers_use_the_endpoint_schema_and_one_repair_turn(fake: FakeEndpoint) -> None:
    rt = _runtime(fake.url)
    fake.answers = ['{"budget": "lots"}', '{"budget": 5000, "retailer": "alpha"}']
    gen = rt.generate(
        [{"role": "user", "content": "Parse: $5000 on alpha"}],
        AdapterSet(brand="acme", task="planning"),
        "acme",
        json_schema=Brief,
    )
    first, second = fake.requests
    assert first["response_format"]["type"] == "json_object"
    assert first["response_format"]["schema"]["additionalProperties"] is False  # closed
    assert "JSON object matching this schema" in first["messages"][-1]["content"]
    assert second["messages"][-1]["content"].startswith("That JSON was not valid")
    assert gen.repaired and gen.parsed == Brief(budget=5000, retailer="alpha")


def test_openai_style_schema_and_a_failed_repair(fake: FakeEndpoint) -> None:
    rt = _runtime(fake.url, "json_schema")
    fake.answers = ["nope", "still not"]
    messages = [{"role": "user", "content": "Parse"}]
    gen = rt.generate(messages, json_schema=Brief)
    assert fake.requests[0]["response_format"]["type"] == "json_schema"
    assert gen.fallback and gen.error and gen.parsed is None
    fake.answers = ["nope", "still not"]
    with pytest.raises(StructuredOutputError):
        rt.generate(messages, json_schema=Brief, on_invalid="raise")


def test_an_export_the_endpoint_lacks_is_refused_not_served_as_base(fake: FakeEndpoint) -> None:
    rt = _runtime(fake.url)
    with pytest.raises(EndpointModelMissingError) as err:
        rt.generate(
            [{"role": "user", "content": "x"}], AdapterSet("beta", "acme", "creative"), "acme"
        )
    assert "export-gguf" in err.value.message and not fake.requests


def test_tenant_rules_hold_before_anything_is_sent(fake: FakeEndpoint) -> None:
    rt = _runtime(fake.url)
    with pytest.raises(AdapterAccessError):
        rt.generate([{"role": "user", "content": "x"}], AdapterSet(brand="acme"), "globex")
    assert not fake.requests


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    rt = _runtime("http://127.0.0.1:9/v1")  # the discard port: nothing listens
    with pytest.raises(EndpointUnavailableError) as err:
        rt.generate([{"role": "user", "content": "x"}])
    assert err.value.kind == "llm_endpoint_unavailable"
    assert "unreachable" in err.value.message and "RMN_LLM_ENDPOINT" in err.value.message


def test_the_shared_runtime_follows_the_setting(
    fake: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.shared import shared_runtime

    monkeypatch.setenv("RMN_LLM_ENDPOINT", fake.url)
    shared_runtime.cache_clear()
    try:
        assert isinstance(shared_runtime(), EndpointRuntime)
    finally:
        shared_runtime.cache_clear()
