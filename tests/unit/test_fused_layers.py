"""The int8 decode path's fused decoder layers (`adapters.fused`): the same numbers as the
transformers layer they replace, on a small random Llama, for prompts (wide passes on the float
weights), decode steps (int8), left-padded batches (an attention mask) and both attention
implementations; layers that cannot be fused are left as they are."""

from __future__ import annotations

import copy

import pytest
import torch

from adapters.fused import FusedInt8Linear, FusedLlamaLayer, fuse_decoder_layers, int8_decode_copy
from adapters.quantize import WIDE_ROWS, Int8WeightOnlyLinear, int8_weight_only_available

pytestmark = pytest.mark.skipif(
    not int8_weight_only_available(torch.bfloat16), reason="torch lacks _weight_int8pack_mm"
)


def _tiny_llama(attn: str = "sdpa", bias: bool = False) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=2,
        vocab_size=120,
        attention_bias=bias,
        tie_word_embeddings=True,
        attn_implementation=attn,
    )
    return LlamaForCausalLM(config).eval()


def _pair(attn: str = "sdpa") -> tuple[torch.nn.Module, torch.nn.Module]:
    """The int8 copy as served before fusing, and the same copy fused."""
    plain = int8_decode_copy(_tiny_llama(attn), torch.bfloat16, fuse=False)
    return plain, _fused_copy(plain)


def _fused_copy(model: torch.nn.Module) -> torch.nn.Module:
    fused = copy.deepcopy(model)
    assert fuse_decoder_layers(fused) == {"fused": 2, "left": 0}
    return fused


def test_fused_products_are_the_parts_side_by_side_narrow_and_wide() -> None:
    torch.manual_seed(1)
    parts = [
        Int8WeightOnlyLinear(torch.nn.Linear(32, n, bias=False), torch.bfloat16, WIDE_ROWS)
        for n in (16, 8, 8)
    ]
    fused = FusedInt8Linear(parts)
    for rows in (1, 3, WIDE_ROWS, 20):  # decode steps (int8) and wide passes (float weights)
        x = torch.randn(1, rows, 32)
        want = torch.cat([p(x) for p in parts], dim=-1)
        assert torch.equal(fused(x), want), rows


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_a_fused_model_gives_the_same_logits_prompt_and_steps(attn: str) -> None:
    from transformers import DynamicCache

    plain, fused = _pair(attn)
    ids = torch.randint(0, 120, (1, 12))
    with torch.inference_mode():
        a = plain(input_ids=ids, cache=DynamicCache(), use_cache=True)
        b = fused(input_ids=ids, cache=DynamicCache(), use_cache=True)
        assert torch.equal(a.logits, b.logits)  # the prompt: float weights, same ops' numbers
        for token in (5, 77, 3):
            step = torch.tensor([[token]])
            a = plain(input_ids=step, cache=a.cache, use_cache=True)
            b = fused(input_ids=step, cache=b.cache, use_cache=True)
            assert torch.equal(b.logits, a.logits)  # int8 steps: the very same products


def test_a_left_padded_batch_decodes_the_same_tokens() -> None:
    plain, fused = _pair()
    ids = torch.randint(3, 120, (2, 10))
    mask = torch.ones_like(ids)
    ids[1, :4], mask[1, :4] = 0, 0  # the second row is shorter: left padding
    kw = {"attention_mask": mask, "max_new_tokens": 12, "min_new_tokens": 12,
          "do_sample": False, "pad_token_id": 0}  # fmt: skip
    with torch.inference_mode():
        want = plain.generate(input_ids=ids, **kw)
        got = fused.generate(input_ids=ids, **kw)
    assert torch.equal(got, want)


def test_fusing_leaves_two_products_where_there_were_five_and_drops_the_old_ones() -> None:
    _, fused = _pair()
    layer = fused.model.layers[0]
    assert isinstance(layer, FusedLlamaLayer)
    assert layer.qkv.sizes == [64, 32, 32] and layer.gate_up.sizes == [128, 128]
    # the five projections now in `qkv` and `gate_up` are not kept a second time
    names = {n for n, _ in layer.named_modules()}
    assert not {"attn.q_proj", "attn.k_proj", "attn.v_proj", "mlp"} & names


def test_layers_with_biases_or_float_projections_are_left_as_they_are() -> None:
    with_bias = int8_decode_copy(_tiny_llama(bias=True), torch.bfloat16, fuse=False)
    assert fuse_decoder_layers(with_bias) == {"fused": 0, "left": 2}
    float_model = _tiny_llama()  # not made int8: nothing to fuse
    assert fuse_decoder_layers(float_model) == {"fused": 0, "left": 2}


def test_the_rotary_tables_follow_each_forward_pass() -> None:
    """One `_Rotary` serves every layer: a pass with other positions gets its own tables, and a
    pass that comes back gets its own again (never the last pass's)."""
    from adapters.fused import _Rotary

    rotary = _Rotary()
    a = (torch.rand(1, 3, 8), torch.rand(1, 3, 8))
    b = (torch.rand(1, 1, 8), torch.rand(1, 1, 8))
    for pass_ in (a, b, a):
        cos, sin = rotary.of(pass_)
        assert torch.equal(cos, pass_[0].unsqueeze(1))
        assert torch.equal(sin, torch.cat((-pass_[1][..., :4], pass_[1][..., 4:]), -1).unsqueeze(1))
