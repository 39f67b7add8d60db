"""Fused decoder layers for the int8 decode path: fewer, wider products and fewer small ops
per decoded token, the same arithmetic.

Decoding one token on a 2-core CPU spends much of its time outside the products. Measured on a
real AVX2-only AMD EPYC (no avx512, no native bfloat16; the composed SmolLM2-135M triple,
merged, int8 weight-only, one token per pass, median of 40): 32-39 ms a step, of which 12-20 ms
remained with every linear layer replaced by a free stand-in. Transformers' Llama layer runs
about 85 small ops per layer per token (norms in 7 ops, rotary embedding in 7 per tensor, one
int8 product with its two casts per projection), each costing a few microseconds whatever its
size.

`FusedLlamaLayer` computes what `LlamaDecoderLayer` computes with:

* the query, key and value projections as one int8 product, and the gate and up projections as
  another (`FusedInt8Linear`: the layers' int8 rows stacked, one cast in and one out; the rows
  and their per-row scales are the same numbers as before, so each output is unchanged);
* the rotary embedding applied to the query and key heads in one pass (they come out of one
  product), with `roll` and a sine negated once per forward pass (`_Rotary`);
* the norms as `torch.nn.functional.rms_norm` in float32 models (one op, same formula);
* the output and down projections' bfloat16 products added to the float32 residual as they
  are (the add promotes them: the same sum, one cast fewer);
* the attention itself through transformers' own attention function, with the mask and cache
  it is given, so padding, caching and grouped heads behave exactly as in the layer it replaces
  (for one query per row and no mask under "sdpa", the very call that function makes).

Measured there since: a decode step 30-32 ms -> 25-26 ms, the same greedy tokens; `rmn bench
llm` production path 1.16-1.38x the unfused int8 copy in the same run (33.3 against 28.7
tok/s in the last); `rmn bench e2e` p50 a median 0.5 s faster, within its run-to-run spread
(README, "Measured on a real AVX2 machine"). The logits are equal, not close
(tests/unit/test_fused_layers.py).

Wide passes (a prompt, a run of forced tokens) multiply each projection with its own float
weight, as `Int8WeightOnlyLinear` does, each product on its own (no stacked float copy, no
concatenation: those passes are bound by arithmetic, and side by side in one tensor a
300-token prompt took 700 ms against 600 ms unfused). Layers that are not Llama layers, or
have biases, are left as they are (`fuse_decoder_layers` counts them).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from adapters.quantize import WIDE_ROWS, Int8WeightOnlyLinear, quantize_int8_weight_only

__all__ = ["FusedInt8Linear", "FusedLlamaLayer", "fuse_decoder_layers", "int8_decode_copy"]


class FusedInt8Linear(torch.nn.Module):
    """Several `Int8WeightOnlyLinear` layers over the same input as one product: their int8
    rows and per-row scales stacked, so the output is the layers' outputs side by side. A wide
    pass (the layers' own `wide_numel` or more input values) multiplies each layer's float
    weight instead, as each layer would, and puts the products side by side."""

    def __init__(self, parts: list[Int8WeightOnlyLinear], act_out: bool = False) -> None:
        super().__init__()
        first = parts[0]
        if any(p.bias is not None for p in parts):
            raise ValueError("fusing needs linear layers without bias")
        if any(p.in_features != first.in_features or p.act_dtype != first.act_dtype
               or p.wide_numel != first.wide_numel for p in parts):  # fmt: skip
            raise ValueError("fused layers must share input size, activation dtype and width")
        self.in_features = first.in_features
        self.act_dtype = first.act_dtype
        self.sizes = [p.out_features for p in parts]
        self.wide_numel = first.wide_numel
        self.float_weights = [p.float_weight for p in parts]
        # a narrow pass's output left in the activation dtype (for a residual add, which
        # promotes it: the same sum as casting it first, one op fewer)
        self.act_out = act_out
        self.register_buffer("weight_int8", torch.cat([p.weight_int8 for p in parts]))
        self.register_buffer("scale", torch.cat([p.scale for p in parts]))

    def is_wide(self, x: torch.Tensor) -> bool:
        """Whether `x` is a pass for the float weights (as the fused layers would take it)."""
        return bool(self.wide_numel and self.float_weights[0] is not None
                    and x.numel() >= self.wide_numel)  # fmt: skip

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each layer's output on its own: for a wide pass each float product (contiguous,
        no copy into one tensor: copying and strided views cost there), else views of the
        one int8 product."""
        if self.is_wide(x):
            return tuple(F.linear(x.to(w.dtype), w).to(x.dtype) for w in self.float_weights)
        return tuple(self(x).split(self.sizes, dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_wide(x):
            parts = self.parts(x)  # one part (output, down): itself, not a copy of it
            return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        flat = x.reshape(-1, self.in_features).to(self.act_dtype)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        return (y if self.act_out else y.to(x.dtype)).reshape(*x.shape[:-1], -1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, parts={self.sizes}"


class _Rotary:
    """A forward pass's `cos` and `sin` shaped for the heads, with `sin`'s first half negated,
    worked out once per pass (all layers get the same `position_embeddings`): then the rotary
    embedding is `x * cos + x.roll(half) * sin`, the same numbers as transformers'
    `x * cos + rotate_half(x) * sin` in 3 ops, not 6."""

    def __init__(self) -> None:
        # (cos, sin, cos for the heads, signed sin for the heads), replaced whole. The runtime
        # never runs two passes at once (adapters.batching); a caller that does still never
        # gets a mix of two passes' tensors.
        self.entry: tuple[torch.Tensor, ...] | None = None

    def of(self, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = cos_sin
        entry = self.entry
        if entry is None or entry[0] is not cos or entry[1] is not sin:
            half = sin.shape[-1] // 2
            signed = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
            entry = (cos, sin, cos.unsqueeze(1), signed.unsqueeze(1))
            self.entry = entry
        return entry[2], entry[3]


class FusedLlamaLayer(torch.nn.Module):
    """A `LlamaDecoderLayer` whose projections are `Int8WeightOnlyLinear`, computed with fused
    products and fewer ops (module docstring); its call signature and result are the layer's."""

    def __init__(self, layer: Any, rotary: _Rotary | None = None) -> None:
        super().__init__()
        attn, mlp = layer.self_attn, layer.mlp
        self.layer_idx = attn.layer_idx
        self.head_dim = attn.head_dim
        self.n_q = attn.q_proj.out_features // self.head_dim
        self.qk_width = attn.q_proj.out_features + attn.k_proj.out_features
        self.qkv = FusedInt8Linear([attn.q_proj, attn.k_proj, attn.v_proj])
        self.o_proj = FusedInt8Linear([attn.o_proj], act_out=True)
        self.gate_up = FusedInt8Linear([mlp.gate_proj, mlp.up_proj])
        self.down_proj = FusedInt8Linear([mlp.down_proj], act_out=True)
        self.act_fn = mlp.act_fn
        self.input_layernorm = layer.input_layernorm
        self.post_attention_layernorm = layer.post_attention_layernorm
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            attn._modules.pop(name)  # now in `qkv` and `o_proj`, not kept twice
        self.attn = attn  # for transformers' attention function (groups, scaling, config)
        self.attn_impl = attn.config._attn_implementation  # read once: a config read is slow
        self.rotary = rotary or _Rotary()

    def _norm(self, norm: Any, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:  # transformers' norm computes in float32, then casts
            return norm(x)
        return F.rms_norm(x, norm.weight.shape, norm.weight, norm.variance_epsilon)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None, kwargs: dict[str, Any]) -> torch.Tensor:  # fmt: skip
        """transformers' own attention function, or, for one query per row and no mask
        under "sdpa", the very call that function makes (`enable_gqa`), without its checks."""
        attn, impl = self.attn, self.attn_impl
        if impl == "sdpa" and mask is None and query.shape[2] == 1 and not kwargs:
            gqa = attn.num_key_value_groups > 1
            out = F.scaled_dot_product_attention(
                query, key, value, scale=attn.scaling, enable_gqa=gqa
            )
            return out.transpose(1, 2)
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        attend = ALL_ATTENTION_FUNCTIONS.get_interface(impl, _eager)
        out, _ = attend(attn, query, key, value, mask, dropout=0.0, scaling=attn.scaling,
                        **kwargs)  # fmt: skip
        return out

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        cache = kwargs.pop("past_key_values", cache)
        b, t = hidden_states.shape[:2]
        query, key, value = self._qkv(self._norm(self.input_layernorm, hidden_states), b, t,
                                      position_embeddings)  # type: ignore[arg-type]  # fmt: skip
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)
        out = self._attend(query, key, value, attention_mask, kwargs)
        hidden = hidden_states + self.o_proj(out.reshape(b, t, -1))
        gate, up = self.gate_up.parts(self._norm(self.post_attention_layernorm, hidden))
        return hidden + self.down_proj(self.act_fn(gate) * up)

    def _qkv(self, h: torch.Tensor, b: int, t: int,
             cos_sin: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:  # fmt: skip
        """Query, key and value heads, the rotary embedding applied to query and key: one
        int8 product and one rotary pass for a narrow pass (the query and key heads come out
        side by side), three float products and a rotary pass each for a wide one."""
        cos, sin = self.rotary.of(cos_sin)
        half = self.head_dim // 2
        if self.qkv.is_wide(h):
            q, k, v = (p.view(b, t, -1, self.head_dim).transpose(1, 2) for p in self.qkv.parts(h))
            return q * cos + q.roll(half, -1) * sin, k * cos + k.roll(half, -1) * sin, v
        qkv = self.qkv(h)
        qk = qkv[..., : self.qk_width].view(b, t, -1, self.head_dim).transpose(1, 2)
        qk = qk * cos + qk.roll(half, -1) * sin
        value = qkv[..., self.qk_width :].view(b, t, -1, self.head_dim).transpose(1, 2)
        return qk[:, : self.n_q], qk[:, self.n_q :], value


def _eager(*args: Any, **kwargs: Any) -> Any:
    from transformers.models.llama.modeling_llama import eager_attention_forward

    return eager_attention_forward(*args, **kwargs)


def _fusable(layer: Any) -> bool:
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    if type(layer).__name__ != "LlamaDecoderLayer" or attn is None or mlp is None:
        return False
    projections = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj,
                   mlp.gate_proj, mlp.up_proj, mlp.down_proj)  # fmt: skip
    return all(isinstance(p, Int8WeightOnlyLinear) and p.bias is None for p in projections)


def fuse_decoder_layers(model: Any) -> dict[str, int]:
    """Replace, in place, every Llama decoder layer of an int8 weight-only `model`
    (`quantize_int8_weight_only`) by a `FusedLlamaLayer`; the counts of layers fused and left."""
    layers = model.get_decoder().layers
    fused = left = 0
    rotary = _Rotary()  # shared: worked out once per forward pass, not once per layer
    for i, layer in enumerate(layers):
        if _fusable(layer):
            layers[i] = FusedLlamaLayer(layer, rotary)
            fused += 1
        else:
            left += 1
    return {"fused": fused, "left": left}


def int8_decode_copy(model: Any, act_dtype: torch.dtype, fuse: bool = True) -> Any:
    """`model` made int8 weight-only as the runtime serves it (`quantize_int8_weight_only`,
    float weights for passes of `WIDE_ROWS` rows or more) and, with `fuse`, its decoder layers
    fused (`fuse_decoder_layers`); in place, the model returned."""
    quantize_int8_weight_only(model, act_dtype, wide_rows=WIDE_ROWS)
    if fuse:
        fuse_decoder_layers(model)
    return model
