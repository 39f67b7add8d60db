"""The LangChain chat model: per-node adapter binding, response metadata, structured output
through the constrained decoder, refusals, and LangChain batching over the shared runtime."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field, field_validator

from adapters.chat_model import RMNChatModel, UnsupportedMessageError
from adapters.prompts import system_message
from adapters.registry import AdapterAccessError, AdapterNotFoundError, AdapterSet
from adapters.structured import StructuredOutputError
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_standard_adapters

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> RMNChatModel:
    model, _ = tiny_llama()
    root = write_standard_adapters(
        tmp_path_factory.mktemp("adapters"), model, base_fingerprint=tiny_fingerprint()
    )
    return RMNChatModel(runtime=tiny_runtime(root, decode="lora"), max_new_tokens=12)


class Headline(BaseModel):
    retailer: Literal["alpha", "beta", "gamma", "delta"]
    headline: str = Field(max_length=30)


def test_bind_adapters_returns_a_bound_copy(llm: RMNChatModel) -> None:
    writer = llm.bind_adapters(retailer="alpha", brand="acme", task="creative", tenant="acme")
    assert writer.adapters == AdapterSet("alpha", "acme", "creative") and writer.tenant == "acme"
    assert llm.adapters == AdapterSet() and llm.tenant is None  # the original is untouched
    assert writer.runtime is llm.runtime  # one base model, one adapter cache


def test_invoke_records_how_the_answer_was_made(llm: RMNChatModel) -> None:
    writer = llm.bind_adapters(retailer="alpha", brand="acme", task="creative", tenant="acme")
    msg = writer.invoke([SystemMessage("Write ad copy."), HumanMessage("Acme coffee, spring")])
    assert isinstance(msg, AIMessage) and isinstance(msg.content, str)
    meta = msg.response_metadata
    assert meta["adapters_active"] == ["retailer/alpha", "brand/acme", "task/creative"]
    assert meta["composition"] == "cat" and meta["decode"] == "lora/float32"
    assert meta["repaired"] is False and meta["fallback"] is False
    assert meta["tokens"] == 12 and meta["seconds"] > 0 and meta["tenant"] == "acme"
    assert msg.usage_metadata is not None and msg.usage_metadata["output_tokens"] == 12
    direct = llm.runtime.generate(
        [
            {"role": "system", "content": "Write ad copy."},
            {"role": "user", "content": "Acme coffee, spring"},
        ],
        AdapterSet("alpha", "acme", "creative"),
        "acme",
        max_new_tokens=12,
    )
    assert msg.content == direct.text
    base = llm.invoke("Acme coffee, spring")
    assert base.response_metadata["composition"] == "base"
    assert base.response_metadata["adapters_active"] == []
    # The conversation as decoded, what a reviewer's rating rates: the caller's system
    # message kept, and the task's own put first where the caller sent none.
    assert meta["messages"][0] == {"role": "system", "content": "Write ad copy."}
    planner = llm.bind_adapters(task="planning")
    told = planner.invoke("Acme coffee, spring").response_metadata["messages"]
    assert told == [
        {"role": "system", "content": system_message("planning")},
        {"role": "user", "content": "Acme coffee, spring"},
    ]
    assert base.response_metadata["messages"][0]["content"] == system_message(None)


def test_with_structured_output_returns_the_model(llm: RMNChatModel) -> None:
    planner = llm.bind_adapters(retailer="beta", task="planning", max_new_tokens=60)
    result = planner.with_structured_output(Headline).invoke("Pick a retailer and a headline.")
    assert isinstance(result, Headline)
    raw = planner.with_structured_output(Headline, include_raw=True).invoke("Same again.")
    assert isinstance(raw["parsed"], Headline) and raw["parsing_error"] is None
    assert raw["raw"].response_metadata["adapters_active"] == ["retailer/beta", "task/planning"]
    as_dict = planner.with_structured_output(Headline.model_json_schema()).invoke("Again.")
    assert set(as_dict) == {"retailer", "headline"}


def test_structured_fallback_raises_or_reports(llm: RMNChatModel) -> None:
    class Never(Headline):
        @field_validator("headline")
        @classmethod
        def refuse(cls, value: str) -> str:
            raise ValueError("headline must name the brand")

    planner = llm.bind_adapters(task="planning", max_new_tokens=60)
    with pytest.raises(StructuredOutputError, match="headline must name the brand"):
        planner.with_structured_output(Never).invoke("Pick one.")
    raw = planner.with_structured_output(Never, include_raw=True).invoke("Pick one.")
    assert raw["parsed"] is None and isinstance(raw["parsing_error"], StructuredOutputError)
    assert raw["raw"].response_metadata["fallback"] is True


def test_refusals_say_why(llm: RMNChatModel) -> None:
    with pytest.raises(AdapterAccessError, match="belongs to tenant 'acme'"):
        llm.bind_adapters(brand="acme", tenant="globex")
    with pytest.raises(AdapterNotFoundError, match="no retailer adapter 'omega'"):
        llm.bind_adapters(retailer="omega")
    with pytest.raises(UnsupportedMessageError, match="ToolMessage is not supported"):
        llm.invoke([ToolMessage("x", tool_call_id="1")])


def test_langchain_batch_runs_bound_nodes_concurrently(llm: RMNChatModel) -> None:
    nodes = [
        llm.bind_adapters(retailer="alpha", brand="acme", task="planning", tenant="acme"),
        llm.bind_adapters(retailer="beta", brand="globex", task="creative", tenant="globex"),
    ]
    one_by_one = [n.invoke("Plan it.").content for n in nodes for _ in range(2)]
    together = [
        msg.content
        for n in nodes
        for msg in n.batch(["Plan it.", "Plan it."], config={"max_concurrency": 2})
    ]
    assert together == one_by_one


def test_stop_sequences_cut_the_text(llm: RMNChatModel) -> None:
    full = llm.invoke("Say something.").content
    assert isinstance(full, str) and len(full) > 2
    cut = llm.invoke("Say something.", stop=[full[2:4]]).content
    assert full.startswith(cut) and len(cut) <= 2
