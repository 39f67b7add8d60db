"""The runtime on a real OpenAI-compatible endpoint: llama.cpp's server (`llama-cpp-python
[server]`) on loopback, serving the bundled GGUF base with adapter sets exported by `rmn
adapters export-gguf`. A planner and a creative call go through our runtime to it and come back
schema-valid; with the endpoint down the error says so; and on a few prompts the endpoint's
greedy answers are compared with the in-process model's (printed; see the README, 'Scaling
out', for the figures).

The server runs from the interpreter `RMN_LLAMA_SERVER_PYTHON` names, else `.venv-endpoint/`
(`make endpoint`), else this one; skipped, saying why, where none has `llama_cpp`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from adapters.endpoint import EndpointConfig, EndpointRuntime, EndpointUnavailableError
from adapters.endpoint_export import export_set, write_server_config
from adapters.registry import AdapterSet
from tools.paths import PROJECT_ROOT

TRIPLE = AdapterSet("alpha", "acme", "creative")
PLANNING = AdapterSet(task="planning")  # what the planner composes (nodes/planner.py)
PROMPTS = [
    "Write a 10-word headline for Acme coffee at Alpha.",
    "Write one sentence of ad copy for Acme cold brew.",
    "Suggest a short tagline for an Acme weekend sale.",
    "Describe Acme's new espresso blend in one line.",
]


def server_python() -> str | None:
    """An interpreter that has llama_cpp's server, or None."""
    candidates = [
        os.environ.get("RMN_LLAMA_SERVER_PYTHON", ""),
        str(PROJECT_ROOT / ".venv-endpoint" / "bin" / "python"),
        sys.executable,
    ]
    for python in filter(None, candidates):
        if not Path(python).is_file():
            continue
        probe = [python, "-c", "import llama_cpp.server"]
        if subprocess.run(probe, capture_output=True, timeout=120).returncode == 0:
            return python
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    runtime: EndpointRuntime


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two sets the tests call, exported once (`rmn adapters export-gguf --base-f32`)."""
    out = tmp_path_factory.mktemp("exports")
    for adapters in (TRIPLE, PLANNING):
        export_set(adapters, out, base_f32=True)
    return out


def require_llama_python() -> str:
    python = server_python()
    if python is None:
        pytest.skip(
            "llama_cpp is not importable (no RMN_LLAMA_SERVER_PYTHON, no "
            ".venv-endpoint: `make endpoint` builds it, ~16 min on 2 cores)"
        )
    return python


@pytest.fixture(scope="module")
def llama_python() -> str:
    """Checked before anything is exported, so a machine without it skips at once."""
    return require_llama_python()


@contextmanager
def llama_server(folder: Path, base: Path | None = None) -> Iterator[EndpointRuntime]:
    """llama.cpp's server on a free loopback port, serving `folder`'s exports."""
    python = require_llama_python()
    config = write_server_config(folder, port=free_port(), base=base)
    url = f"http://127.0.0.1:{json.loads(config.read_text())['port']}/v1"
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        cmd = [python, "-m", "llama_cpp.server", "--config_file", str(config)]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            runtime = EndpointRuntime(EndpointConfig(url, timeout_s=300))
            _wait_up(runtime, proc, log_path)
            yield runtime
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(llama_python: str, exports: Path) -> Iterator[Served]:
    """The server on the float32 base: the in-process model's exact weights."""
    with llama_server(exports) as runtime:
        yield Served(runtime.config.url, runtime)


def _wait_up(runtime: EndpointRuntime, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
        try:
            runtime.served_models()
            return
        except EndpointUnavailableError:
            time.sleep(0.5)
    pytest.fail("llama_cpp.server did not answer within 180 s")


def test_the_exported_lora_is_the_in_process_composition(exports: Path, local_model: Any) -> None:
    """What vLLM would load (the PEFT folder) gives the logits the in-process `cat`
    composition gives; the GGUF holds the same tensors (its q/k rows permuted for llama.cpp)."""
    import torch
    from peft import PeftModel

    from adapters.base import load_base_model

    local = local_model
    name = local.adapter_name(TRIPLE, "acme")
    ids = local.tokenizer(PROMPTS[0], return_tensors="pt")["input_ids"]
    base, _ = load_base_model()
    exported = PeftModel.from_pretrained(base, str(exports / "alpha+acme+creative")).eval()
    with torch.inference_mode():
        local.model.set_adapter(name)
        want = local.model(input_ids=ids).logits
        got = exported(input_ids=ids).logits
    assert torch.allclose(want, got, atol=1e-4), float((want - got).abs().max())
    assert (exports / "alpha+acme+creative.gguf").stat().st_size > 1_000_000


class Headline(BaseModel):
    headline: str = Field(max_length=120)


def test_a_creative_call_returns_valid_structured_output(served: Served) -> None:
    from adapters.chat_model import RMNChatModel

    llm = RMNChatModel(runtime=served.runtime, max_new_tokens=48)
    writer = llm.bind_adapters(retailer="alpha", brand="acme", task="creative", tenant="acme")
    raw = writer.with_structured_output(Headline, include_raw=True).invoke(PROMPTS[0])
    meta = raw["raw"].response_metadata
    print("creative via endpoint:", raw["raw"].content, meta["decode"])
    assert meta["backend"] == "endpoint" and meta["decode"] == "endpoint/alpha+acme+creative"
    assert raw["parsing_error"] is None and isinstance(raw["parsed"], Headline)


def test_a_planner_call_parses_a_brief_through_the_endpoint(served: Served) -> None:
    from tools.brief import parse_brief_llm, runtime_generate_json

    generate = runtime_generate_json("acme", tenant="acme", runtime=served.runtime)
    text = "Acme wants $40,000 across alpha and beta to maximise ROAS, flight March 2026."
    brief = parse_brief_llm(text, "acme", date(2026, 1, 15), generate)
    print("planner via endpoint:", brief.model_dump(mode="json"))
    assert brief.brand_id == "acme" and brief.total_budget > 0


def test_with_the_endpoint_down_the_error_is_clear() -> None:
    runtime = EndpointRuntime(EndpointConfig(f"http://127.0.0.1:{free_port()}/v1", timeout_s=5))
    with pytest.raises(EndpointUnavailableError) as err:
        runtime.generate([{"role": "user", "content": "hi"}], TRIPLE, "acme")
    assert err.value.kind == "llm_endpoint_unavailable" and "unreachable" in err.value.message


def greedy(runtime: Any) -> list[str]:
    """Greedy free text, 32 tokens, the triple composed, for each of PROMPTS."""
    return [
        runtime.generate([{"role": "user", "content": p}], TRIPLE, "acme", max_new_tokens=32).text
        for p in PROMPTS
    ]


def agreement(endpoint: list[str], local: list[str]) -> tuple[int, float]:
    """(identical answers, mean shared prefix as a share of the in-process answer)."""
    for a, b in zip(endpoint, local, strict=True):
        print(f"endpoint:   {a!r}\nin-process: {b!r}")
    same = sum(a == b for a, b in zip(endpoint, local, strict=True))
    shared = [
        len(os.path.commonprefix([a, b])) / max(1, len(b))
        for a, b in zip(endpoint, local, strict=True)
    ]
    return same, sum(shared) / len(shared)


@pytest.fixture(scope="module")
def local_model() -> Any:
    from adapters.runtime import Runtime

    return Runtime.load(decode="lora")  # float32, the reference path


@pytest.fixture(scope="module")
def local_answers(local_model: Any) -> list[str]:
    return greedy(local_model)


def test_greedy_answers_match_the_in_process_model_on_the_f32_base(
    served: Served, local_answers: list[str]
) -> None:
    """Same weights (the Q4_1 file dequantized), LoRA in f32: llama.cpp's greedy answers are
    the in-process model's (measured 4/4 identical)."""
    same, prefix = agreement(greedy(served.runtime), local_answers)
    print(f"f32 base agreement: {same}/{len(PROMPTS)} identical, prefix {prefix:.0%}")
    assert same >= len(PROMPTS) - 1


def test_greedy_agreement_on_the_shipped_q4_1_base(
    llama_python: str, exports: Path, local_answers: list[str], tmp_path: Path
) -> None:
    """The shipped Q4_1 file as llama.cpp computes it (8-bit activations): answers part after a
    near-tie (measured 1/4 identical, 29 % shared prefix). Printed, not asserted beyond the
    adapters being applied at all."""
    from adapters.base import gguf_path

    for lora in exports.glob("*+*.gguf"):
        (tmp_path / lora.name).symlink_to(lora)
    with llama_server(tmp_path, base=gguf_path()) as runtime:
        answers = greedy(runtime)
    same, prefix = agreement(answers, local_answers)
    print(f"Q4_1 base agreement: {same}/{len(PROMPTS)} identical, prefix {prefix:.0%}")
    assert prefix > 0.1
