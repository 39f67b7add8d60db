"""The merged decode path chosen from the CPU (`adapters.decoding.choose_decode_path`), its
`RMN_DECODE_PATH` override, and the int8 weight-only linears it serves with where bfloat16 is
not native (`adapters.quantize`). CPU flags are injected, so the choices do not depend on the
machine the tests run on; the runtime tests use the tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adapters.bench import stepwise_logits
from adapters.decoding import (
    DECODE_PATH_ENV,
    FUSED_LAYERS_ENV,
    CpuInfo,
    DecodePathError,
    choose_decode_path,
    cpu_has_fast_bf16,
    cpu_info,
)
from adapters.fused import FusedLlamaLayer
from adapters.quantize import (
    Int8WeightOnlyLinear,
    int8_weight_only_available,
    quantize_int8_weight_only,
)
from adapters.registry import AdapterSet
from adapters.runtime import Runtime
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_standard_adapters

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AVX2 = CpuInfo(frozenset({"avx2", "fma", "f16c"}), "AVX2")
AVX512_BF16 = CpuInfo(frozenset({"avx2", "avx512f", "avx512bw", "avx512_bf16"}), "AVX512")
# An AVX-512 EPYC told to act as AVX2 (ATEN_CPU_CAPABILITY=avx2): the flag is there, the
# kernels are not.
EMULATED_AVX2 = CpuInfo(AVX512_BF16.flags, "AVX2", "AVX2")
ONEDNN_CAPPED = CpuInfo(AVX512_BF16.flags, "AVX512", "AVX2")


def _has_int8(dtype: torch.dtype) -> bool:
    return True


def _no_int8(dtype: torch.dtype) -> bool:
    return False


# -- the chooser ----------------------------------------------------------------------------


def test_native_bf16_needs_the_flag_the_dispatch_and_onednn() -> None:
    assert AVX512_BF16.native_bf16
    assert not AVX2.native_bf16
    assert not EMULATED_AVX2.native_bf16  # the flag alone is not enough under emulation
    assert not ONEDNN_CAPPED.native_bf16
    assert CpuInfo(AVX512_BF16.flags, "AVX512", "AVX512_CORE_BF16").native_bf16
    assert CpuInfo(frozenset({"amx_bf16"}), "AVX512").native_bf16
    assert cpu_has_fast_bf16(AVX2) is False


def test_a_cpu_without_native_bf16_gets_int8_in_a_float32_model() -> None:
    for cpu in (AVX2, EMULATED_AVX2, ONEDNN_CAPPED):
        choice = choose_decode_path("cpu", cpu, env={}, int8_available=_has_int8)
        assert (choice.path, choice.dtype, choice.act_dtype) == (
            "int8",
            torch.float32,
            torch.bfloat16,  # the one activation dtype torch's int8 kernel vectorises
        )
        assert choice.label == "int8+bfloat16" and choice.to_dict()["model_dtype"] == "float32"
        assert "no native bf16" in choice.reason


def test_native_bf16_and_cuda_get_bf16() -> None:
    choice = choose_decode_path("cpu", AVX512_BF16, env={}, int8_available=_has_int8)
    assert (choice.path, choice.dtype) == ("bf16", torch.bfloat16)
    assert choose_decode_path("cuda", AVX2, env={}).path == "bf16"


def test_without_the_int8_kernel_the_path_falls_back_to_float32() -> None:
    choice = choose_decode_path("cpu", AVX2, env={}, int8_available=_no_int8)
    assert (choice.path, choice.dtype) == ("fp32", torch.float32)
    assert "_weight_int8pack_mm" in choice.reason


@pytest.mark.parametrize(
    ("value", "cpu", "path", "dtype"),
    [
        ("fp32", AVX512_BF16, "fp32", torch.float32),
        (" BF16 ", AVX2, "bf16", torch.bfloat16),
        ("int8", AVX2, "int8", torch.float32),
        ("int8", AVX512_BF16, "int8", torch.bfloat16),  # the whole copy in bf16 where native
        ("auto", AVX2, "int8", torch.float32),
        ("", AVX512_BF16, "bf16", torch.bfloat16),
    ],
)
def test_the_environment_override_is_honoured(
    value: str, cpu: CpuInfo, path: str, dtype: torch.dtype
) -> None:
    choice = choose_decode_path("cpu", cpu, env={DECODE_PATH_ENV: value}, int8_available=_has_int8)
    assert (choice.path, choice.dtype) == (path, dtype)
    if value.strip() not in ("", "auto"):
        assert DECODE_PATH_ENV in choice.reason


@pytest.mark.parametrize("value", ["int4", "float32", "yes", "int8,bf16"])
def test_a_bad_override_is_refused_naming_the_choices(value: str) -> None:
    with pytest.raises(DecodePathError) as err:
        choose_decode_path("cpu", AVX2, env={DECODE_PATH_ENV: value})
    message = str(err.value)
    assert DECODE_PATH_ENV in message and repr(value) in message
    assert all(p in message for p in ("fp32", "bf16", "int8"))
    assert err.value.to_dict()["type"] == "decode_path"


@pytest.mark.parametrize(
    ("value", "fused"), [("", True), ("1", True), (" off", False), ("0", False)]
)
def test_the_int8_paths_fused_layers_can_be_turned_off(value: str, fused: bool) -> None:
    env = {FUSED_LAYERS_ENV: value}
    choice = choose_decode_path("cpu", AVX2, env=env, int8_available=_has_int8)
    assert choice.fused is fused and choice.to_dict()["fused_layers"] is fused


def test_a_bad_fused_layers_value_is_refused() -> None:
    with pytest.raises(DecodePathError, match="RMN_FUSED_LAYERS must be 1 or 0"):
        choose_decode_path("cpu", AVX2, env={FUSED_LAYERS_ENV: "yes"}, int8_available=_has_int8)


def test_int8_is_refused_on_cuda() -> None:
    with pytest.raises(DecodePathError, match="CPU path"):
        choose_decode_path("cuda", None, env={DECODE_PATH_ENV: "int8"})


def test_this_machines_detection_follows_torch_dispatch() -> None:
    info = cpu_info()
    assert info.capability == torch.backends.cpu.get_cpu_capability()
    if not info.bf16_flag or not info.capability.startswith("AVX512"):
        assert not info.native_bf16  # e.g. ATEN_CPU_CAPABILITY=avx2 on an AVX-512 machine
    assert set(info.to_dict()) >= {"flags", "torch_capability", "native_bf16"}


# -- the int8 weight-only linear ------------------------------------------------------------


needs_int8 = pytest.mark.skipif(
    not int8_weight_only_available(torch.float32), reason="torch lacks _weight_int8pack_mm"
)


@needs_int8
@pytest.mark.parametrize("act", [torch.float32, torch.bfloat16])
def test_int8_linear_is_close_to_the_float_linear(act: torch.dtype) -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 40, bias=True)
    x = torch.randn(3, 5, 96)
    want = linear(x)
    q = Int8WeightOnlyLinear(linear, act)
    got = q(x)
    assert got.shape == want.shape and got.dtype == x.dtype
    rel = ((got - want).norm() / want.norm()).item()
    # Per-channel absmax int8 rounds each weight by at most scale/2 (~0.4 % of the row's
    # largest); with float32 activations the output error measured 0.3 %, bfloat16 ~0.6 %.
    assert rel < (0.01 if act == torch.float32 else 0.02), rel
    assert q.weight_int8.dtype == torch.int8 and q.weight_int8.shape == (40, 96)


@needs_int8
def test_wide_passes_multiply_with_the_float_weight_and_narrow_ones_with_int8() -> None:
    """Prompts and runs of forced tokens (8 rows or more) are faster on the float GEMM than on
    the int8 kernel under AVX2 (`adapters.quantize`): such a pass gives the float linear's
    output exactly; a decode step (fewer rows) is the int8 product."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 40, bias=True)
    q = Int8WeightOnlyLinear(linear, torch.bfloat16, wide_rows=8)
    assert q.float_weight is not None
    assert q.float_weight.data_ptr() == linear.weight.data_ptr()  # a reference, not a copy
    wide = torch.randn(2, 4, 96)  # 8 rows
    with torch.no_grad():
        assert torch.equal(q(wide), linear(wide))
        narrow = torch.randn(1, 7, 96)  # 7 rows
        got, want = q(narrow), linear(narrow)
    assert not torch.equal(got, want)  # int8 weights, bfloat16 inputs
    assert ((got - want).norm() / want.norm()).item() < 0.02
    assert "float from 8 rows" in repr(q)
    with pytest.raises(ValueError, match="wide_rows"):
        Int8WeightOnlyLinear(linear, torch.bfloat16, wide_rows=0)


@needs_int8
def test_quantize_replaces_every_linear_and_leaves_the_float_weights_alone() -> None:
    model, _ = tiny_llama()
    q_proj = model.model.layers[0].self_attn.q_proj
    before = q_proj.weight.clone()
    quantize_int8_weight_only(model, torch.float32)
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert isinstance(model.model.layers[0].self_attn.q_proj, Int8WeightOnlyLinear)
    assert torch.equal(q_proj.weight, before)  # a merged copy may share it with its base


# -- the runtime on the int8 path -----------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = tiny_llama()
    return write_standard_adapters(
        tmp_path_factory.mktemp("adapters"), model, base_fingerprint=tiny_fingerprint()
    )


def test_a_bad_override_stops_the_runtime(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DECODE_PATH_ENV, "int4")
    with pytest.raises(DecodePathError, match="RMN_DECODE_PATH"):
        tiny_runtime(root, decode="merged")


PROMPTS = [
    "Plan a March campaign for Acme coffee on alpha with $10,000.",
    "Write a headline for Globex shoes.",
    "Split $2,500 between gamma search and display.",
    "Summarise the brief in one line.",
]
TRIPLES = [
    (AdapterSet("alpha", "acme", "planning"), "acme"),
    (AdapterSet("beta", "globex", "creative"), "globex"),
]


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@needs_int8
def test_an_avx2_runtime_serves_int8_with_float32s_greedy_tokens(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DECODE_PATH_ENV, "fp32")
    fp32 = tiny_runtime(root, decode="merged")
    monkeypatch.delenv(DECODE_PATH_ENV)
    monkeypatch.setattr("adapters.runtime.cpu_info", lambda: AVX2)  # whatever this CPU is
    int8 = tiny_runtime(root, decode="merged")
    assert fp32.decode_choice.path == "fp32"
    assert (int8.decode_choice.path, int8.merged_dtype) == ("int8", torch.float32)
    stats = int8.stats()
    assert stats["decode_path"]["path"] == "int8"
    assert stats["decode_path"]["float_passes_from_rows"] == 8
    assert stats["decode"] == "merged/int8+bfloat16"
    assert stats["cpu"]["torch_capability"] == "AVX2" and not stats["cpu"]["native_bf16"]
    # On the tiny model the float32 copy with int8 linears (bfloat16 matmul inputs) gave
    # fp32's greedy tokens for all 8 (prompt, triple) pairs, 16 tokens each.
    for triple, tenant in TRIPLES:
        for text in PROMPTS:
            a = fp32.generate(_user(text), triple, tenant, max_new_tokens=16)
            b = int8.generate(_user(text), triple, tenant, max_new_tokens=16)
            assert (b.decode, b.composition) == ("merged/int8+bfloat16", "merged")
            assert b.text == a.text
    model = int8._merged.get(int8.registry.resolve(TRIPLES[0][0], "acme", int8.base_fingerprint))
    assert any(isinstance(m, Int8WeightOnlyLinear) for m in model.modules())
    # served with its decoder layers fused (adapters.fused): the greedy texts above are theirs
    assert all(isinstance(layer, FusedLlamaLayer) for layer in model.model.layers)
    assert int8.stats()["merged_builds"] == 2  # quantized once per copy, then cached


@needs_int8
def test_the_int8_override_keeps_top1_agreement_with_float32(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`RMN_DECODE_PATH=int8` on this CPU (bfloat16 activations where bfloat16 is native, and
    there one of 4 tiny-model answers differs from fp32 after a few tokens): the agreement
    along fp32's own answers, the figure the bench reports, stays >= 0.9."""
    monkeypatch.setenv(DECODE_PATH_ENV, "fp32")
    fp32 = tiny_runtime(root, decode="merged")
    monkeypatch.setenv(DECODE_PATH_ENV, "int8")
    int8 = tiny_runtime(root, decode="merged")
    assert int8.decode_choice.path == "int8" and "RMN_DECODE_PATH" in int8.decode_choice.reason
    triple = TRIPLES[0][0]
    agreement = []
    for text in PROMPTS:
        answer = fp32.generate(_user(text), triple, "acme", max_new_tokens=16).text
        agreement.append(_served_agreement(fp32, int8, triple, text, answer))
    assert sum(agreement) / len(agreement) >= 0.9, agreement


def _served_agreement(
    fp32: Runtime, int8: Runtime, triple: AdapterSet, text: str, answer: str
) -> float:
    """Top-1 agreement of the two merged models along fp32's own greedy answer, each read as
    it is served (the prompt in one pass, then one token a pass)."""
    prompt = fp32.render_prompt([{"role": "user", "content": text}], triple)
    ids = fp32.tokenizer(prompt + answer, return_tensors="pt", add_special_tokens=False)
    start = len(fp32.tokenizer(prompt, add_special_tokens=False)["input_ids"]) - 1
    models = []
    for rt in (fp32, int8):
        models.append(rt._merged.get(rt.registry.resolve(triple, "acme", rt.base_fingerprint)))
    with torch.inference_mode():  # read as served: a wide pass would take the float path
        a, b = (stepwise_logits(m, ids["input_ids"], start + 1) for m in models)
    return (a.argmax(-1) == b.argmax(-1)).float().mean().item()


class _Reference:
    """The float32 reference as the bench calls it (a PEFT model named by adapter)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __call__(self, input_ids: torch.Tensor, adapter_names: list[str]) -> object:
        return self.model(input_ids=input_ids)


@needs_int8
def test_the_bench_reads_an_int8_copy_one_token_a_pass_as_it_is_served() -> None:
    """With wide passes on the float weights, a teacher-forced pass over the whole answer
    measured the float path (max logit difference 7e-05, agreement 1.000 in `rmn bench llm`),
    not the int8 one each decoded token takes. Read one token a pass, the int8 copy's error
    shows, and the float32 copy still matches the reference."""
    import copy

    from adapters.bench import _agreement

    model, tokenizer = tiny_llama()
    ids = tokenizer("Plan a March campaign for Acme coffee on alpha with", return_tensors="pt")
    ids = ids["input_ids"]
    int8 = quantize_int8_weight_only(copy.deepcopy(model), torch.bfloat16, wide_rows=8)
    got = _agreement(_Reference(model), "cat", ids, 4, {"fp32": model, "int8": int8}, [])
    assert got["fp32"]["max_logit_diff"] < 1e-4
    assert got["int8"]["max_logit_diff"] > 1e-3, got
    with torch.inference_mode():
        wide = int8(input_ids=ids).logits[0, 3:-1]
        assert torch.allclose(wide, model(input_ids=ids).logits[0, 3:-1], atol=1e-4)
