"""int8 weight-only linear layers for CPU decoding where bfloat16 is not native.

Decoding one token at a time on CPU is bound by the bytes of weight read per token: float32
reads 4 bytes per weight, int8 one. `Int8WeightOnlyLinear` keeps each weight as int8 with one
scale per output channel (symmetric, absmax / 127) and multiplies with
`torch.ops.aten._weight_int8pack_mm`, which dequantizes inside the kernel; activations stay
floating point (float32, or bfloat16 where the CPU has it natively), so the activation outliers
that sink int8 *dynamic* quantization on SmolLM2 (top-1 agreement with float32 0.39) are not
rounded. Measured on the composed SmolLM2-135M triple: top-1 agreement with float32 0.92 with
bfloat16 activations (README, "Composition: what was measured and chosen").

The kernel follows ATen's CPU dispatch (`ATEN_CPU_CAPABILITY`), AVX2 as well as AVX-512. It
accepts float32, bfloat16 and float16 activations (torch 2.13) but is fast for bfloat16 only:
one 1536x576 product measured 0.2 ms with bfloat16 inputs, 2.7-3.6 ms with float32 or float16,
against 0.3 ms for the float32 linear (1 thread, AVX-512 and emulated AVX2 alike). So a float32
model keeps `act_dtype=torch.bfloat16`: the layer casts its input in and its output back.

Wide passes (a prompt, a run of forced tokens) are another matter: there the product is bound
by arithmetic, not by weight bytes, and the int8 kernel loses to the float GEMM. Under the AVX2
emulation (the 7 linears of one SmolLM2 layer, 2 threads, median of 7) int8 with bfloat16
inputs took 0.26 / 0.46 / 0.69 / 1.32 / 2.49 ms for 1 / 4 / 8 / 16 / 32 rows against
0.32 / 0.71 / 0.65 / 0.88 / 1.43 ms for float32: even at 8 rows, twice as slow from 24. So a
layer built with `wide_rows` keeps its float weight (a reference to the merged copy's tensor,
no copy) and multiplies a pass of `wide_rows` rows or more with it (`WIDE_ROWS`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

__all__ = [
    "WIDE_ROWS",
    "Int8WeightOnlyLinear",
    "int8_weight_only_available",
    "quantize_int8_weight_only",
]

# Passes of this many rows (batch x tokens) or more use the float weight (see above: the
# crossover under AVX2 emulation was 8 rows).
WIDE_ROWS = 8


@lru_cache(maxsize=8)
def int8_weight_only_available(act_dtype: torch.dtype = torch.float32) -> bool:
    """Whether this torch has `_weight_int8pack_mm` and it runs for `act_dtype` on CPU (one
    tiny call: an op can exist and still lack a kernel for a dtype)."""
    if not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        return False
    try:
        x = torch.ones(1, 32, dtype=act_dtype)
        w = torch.ones(8, 32, dtype=torch.int8)
        y = torch.ops.aten._weight_int8pack_mm(x, w, torch.ones(8, dtype=act_dtype))
    except (RuntimeError, NotImplementedError):
        return False
    return bool(y.shape == (1, 8) and torch.allclose(y.float(), torch.full((1, 8), 32.0)))


class Int8WeightOnlyLinear(torch.nn.Module):
    """A `torch.nn.Linear` with int8 weights (one scale per output channel) and floating point
    activations in `act_dtype`; inputs of another dtype are cast in and the output cast back.
    With `wide_rows`, the float weight is kept too and a pass of that many rows or more is
    multiplied with it instead (as the float linear would, in its own dtype)."""

    def __init__(
        self,
        linear: torch.nn.Linear,
        act_dtype: torch.dtype = torch.float32,
        wide_rows: int | None = None,
    ) -> None:
        super().__init__()
        if wide_rows is not None and wide_rows < 1:
            raise ValueError(f"wide_rows must be at least 1, not {wide_rows}")
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.act_dtype = act_dtype
        # A pass of this many input values or more takes the float weight: a reference to the
        # merged copy's tensor, no copy (and no buffer: the module's state stays int8).
        self.wide_numel = None if wide_rows is None else wide_rows * linear.in_features
        self.float_weight = None if wide_rows is None else linear.weight.detach()
        self.float_bias = None if wide_rows is None or linear.bias is None else linear.bias.detach()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale.to(act_dtype))
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().to(act_dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.float_weight is not None and self.wide_numel and x.numel() >= self.wide_numel:
            weight = self.float_weight
            y = torch.nn.functional.linear(x.to(weight.dtype), weight, self.float_bias)
            return y.to(x.dtype)
        flat = x.reshape(-1, self.in_features).to(self.act_dtype)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        dtype = str(self.act_dtype).removeprefix("torch.")
        rows = self.wide_numel // self.in_features if self.wide_numel else None
        wide = f", float from {rows} rows" if rows else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, act={dtype}{wide}"
        )


def quantize_int8_weight_only(
    model: Any,
    act_dtype: torch.dtype = torch.float32,
    skip: tuple[str, ...] = (),
    wide_rows: int | None = None,
) -> Any:
    """`model` with every `torch.nn.Linear` (except those whose name ends with one in `skip`)
    replaced in place by an `Int8WeightOnlyLinear` (keeping the float weight for passes of
    `wide_rows` rows or more, when given). The replaced float weights are not modified (a
    merged copy may share tensors with its base); the model object is returned."""
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear) and not any(name.endswith(s) for s in skip):
            owner, _, attr = name.rpartition(".")
            parent = model.get_submodule(owner) if owner else model
            setattr(parent, attr, Int8WeightOnlyLinear(module, act_dtype, wide_rows))
    return model
