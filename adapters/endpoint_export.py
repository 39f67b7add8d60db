"""Export a retailer+brand+task adapter set once, as ONE LoRA, for a serving endpoint.

    rmn adapters export-gguf --retailer alpha --brand acme --task creative --out exports/

writes, under `exports/`:

* `alpha+acme+creative/`: a PEFT adapter folder (the `cat` composition of the three, built by
  `adapters.composition.LoraBank` exactly as the in-process runtime builds it), which vLLM
  serves with `--lora-modules alpha+acme+creative=exports/alpha+acme+creative`;
* `alpha+acme+creative.gguf`: the same LoRA as a GGUF adapter for llama.cpp;
* `llama_cpp_server.json`: a `python -m llama_cpp.server --config_file` file listing the base
  model (name `base`) and every exported set in the folder, each under its served name.

The served name (`served_name`) is the set's ids in retailer, brand, task order joined by `+`,
with `_` for a kind left out (`_+acme+planning`); ids never are `_`, so names cannot collide.

The GGUF is written here with the `gguf` package (already a dependency) rather than llama.cpp's
`convert_lora_to_gguf.py`, which ships only inside the llama.cpp sources: it does what that
script does for a Llama LoRA on q/k/v/o, i.e. the tensor names `blk.N.attn_q.weight.lora_a`,
the rows of q's and k's B permuted as llama.cpp's converter permutes the base's q and k weights
(rotary layout), and `adapter.lora.alpha`. PEFT's `cat` folds each adapter's alpha/r into A
and sets alpha = rank, so llama.cpp's scale alpha/rank is exactly 1.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.registry import AdapterEntry, AdapterRegistry, AdapterSet
from tools.errors import RMNError

SERVER_CONFIG = "llama_cpp_server.json"
BASE_NAME = "base"
EXPORT_FILE = "rmn_export.json"
BASE_F32 = "base-f32.gguf"
# Keys GGUFWriter writes itself; copying them from the source would repeat them.
_WRITER_KEYS = frozenset({"general.architecture", "general.file_type"})
# PEFT module name -> llama.cpp tensor; q and k are stored permuted for rotary (see module doc).
_LLAMA_TENSORS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
                  "o_proj": "attn_output"}  # fmt: skip


class ExportError(RMNError):
    kind = "adapter_export_failed"


def served_name(adapters: AdapterSet, base: str = BASE_NAME) -> str:
    """The model name a request for this adapter set asks the endpoint for."""
    ids = (adapters.retailer, adapters.brand, adapters.task)
    if not any(ids):
        return base
    return "+".join(i or "_" for i in ids)


@dataclass(frozen=True)
class ExportResult:
    name: str
    peft_dir: Path
    gguf: Path
    server_config: Path
    adapters: list[str]
    rank: int
    tensors: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "peft_dir": str(self.peft_dir), "gguf": str(self.gguf),
            "server_config": str(self.server_config), "adapters": self.adapters,
            "rank": self.rank, "tensors": self.tensors,
        }  # fmt: skip


def export_set(
    adapters: AdapterSet,
    out: Path,
    registry: AdapterRegistry | None = None,
    base_f32: bool = False,
) -> ExportResult:
    """Compose the set into one LoRA (PEFT `cat`), save it as a PEFT folder and a GGUF adapter
    under `out`, and list it in `out/llama_cpp_server.json`. `base_f32`: also write the base
    as float32 GGUF (`write_base_f32`), which the server config then serves."""
    from adapters.base import base_fingerprint

    if not adapters.items():
        raise ExportError("name at least one adapter (--retailer, --brand or --task)")
    registry = registry if registry is not None else AdapterRegistry()
    entries = _entries(registry, adapters, base_fingerprint())
    name = served_name(adapters)
    out.mkdir(parents=True, exist_ok=True)
    peft_dir = out / name
    config = _save_composed(entries, peft_dir)
    gguf_path = out / f"{name}.gguf"
    tensors = write_lora_gguf(peft_dir, gguf_path, config)
    (peft_dir / EXPORT_FILE).write_text(json.dumps({
        "name": name, "adapters": [e.versioned_name for e in entries],
        "base_fingerprint": base_fingerprint(),
    }, indent=1))  # fmt: skip
    if base_f32 and not (out / BASE_F32).is_file():
        write_base_f32(out)
    server_config = write_server_config(out)
    return ExportResult(
        name, peft_dir, gguf_path, server_config, [e.versioned_name for e in entries],
        int(config["r"]), tensors,
    )  # fmt: skip


def _entries(
    registry: AdapterRegistry, adapters: AdapterSet, fingerprint: str
) -> list[AdapterEntry]:
    """The set's adapters, checked against the base; a brand adapter is exported for its owner
    (the runtime checks the tenant before it names the export in a request)."""
    owner = None
    if adapters.brand:
        owner = registry.get("brand", adapters.brand).metadata.owner_tenant
    return registry.resolve(adapters, owner, fingerprint)


def _save_composed(entries: list[AdapterEntry], folder: Path) -> dict[str, Any]:
    """The `cat` composition (or the one adapter) saved as a plain PEFT adapter folder."""
    from adapters.base import load_base_model, quiet_progress
    from adapters.composition import LoraBank, quiet_libraries

    with quiet_progress():
        model, _ = load_base_model(progress=False)
    bank = LoraBank(model, cache_size=1)
    adapter, _ = bank.adapter_name(entries, set())
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    with quiet_libraries():
        bank.model.save_pretrained(str(staging), selected_adapters=[adapter])
    saved = staging / adapter if (staging / adapter).is_dir() else staging  # PEFT nests non-default
    shutil.rmtree(folder, ignore_errors=True)
    shutil.move(str(saved), folder)
    shutil.rmtree(staging, ignore_errors=True)
    config = json.loads((folder / "adapter_config.json").read_text())
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ExportError("per-module ranks or alphas are not exported to GGUF yet")
    return config


def write_lora_gguf(peft_dir: Path, path: Path, config: dict[str, Any]) -> int:
    """The PEFT LoRA in `peft_dir` as a llama.cpp GGUF adapter; returns the tensor count."""
    import gguf
    from safetensors.torch import load_file

    base = json.loads((_base_config_dir() / "config.json").read_text())
    weights = load_file(str(peft_dir / "adapter_model.safetensors"))
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    count = 0
    for key, tensor in sorted(weights.items()):
        target, part = _tensor_name(key)
        data = tensor.float()
        if part == "lora_b" and target.split(".")[2] in ("attn_q", "attn_k"):
            heads = base["num_attention_heads"]
            if target.split(".")[2] == "attn_k":
                heads = base.get("num_key_value_heads") or heads
            data = _permute_rows(data, heads)
        writer.add_tensor(f"{target}.{part}", data.numpy())
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return count


def _tensor_name(key: str) -> tuple[str, str]:
    """`base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` ->
    (`blk.3.attn_q.weight`, `lora_a`)."""
    parts = key.split(".")
    try:
        layer = int(parts[parts.index("layers") + 1])
        module = parts[-3]
        part = {"lora_A": "lora_a", "lora_B": "lora_b"}[parts[-2]]
        return f"blk.{layer}.{_LLAMA_TENSORS[module]}.weight", part
    except (ValueError, KeyError, IndexError):
        raise ExportError(f"cannot map LoRA tensor {key} to llama.cpp (q/k/v/o only)") from None


def _permute_rows(weight: Any, heads: int) -> Any:
    """llama.cpp's converter's `permute` (rotary halves interleaved), on output rows."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _base_config_dir() -> Path:
    from adapters.base import ensure_base_weights

    return ensure_base_weights(progress=False)


def write_base_f32(out: Path) -> Path:
    """`out/base-f32.gguf`: the shipped Q4_1 GGUF dequantized to float32, i.e. the very weights
    the in-process model computes with (540 MB instead of 98 MB). Measured: with it, llama.cpp's
    log-probabilities for the composed triple match the in-process model's to ~1e-3; on the
    Q4_1 file llama.cpp multiplies by 8-bit-quantized activations and they differ by up to 0.3,
    enough for greedy answers to part (README, 'Scaling out')."""
    import gguf
    from gguf.quants import dequantize

    from adapters.base import gguf_path

    reader = gguf.GGUFReader(str(gguf_path()))
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    path = out / BASE_F32
    writer = gguf.GGUFWriter(str(path), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in _WRITER_KEYS:
            continue
        writer.add_key_value(field.name, *_field_value(field))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        data = dequantize(tensor.data, tensor.tensor_type).astype("float32")
        writer.add_tensor(tensor.name, data.reshape([int(d) for d in reversed(tensor.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _field_value(field: Any) -> tuple[Any, ...]:
    """(value, type) of a GGUF metadata field, or (values, ARRAY, item type)."""
    import gguf

    kind = field.types[0]
    if kind == gguf.GGUFValueType.ARRAY:
        item = field.types[-1]
        if item == gguf.GGUFValueType.STRING:
            values = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
        else:
            values = [field.parts[i].tolist()[0] for i in field.data]
        return values, kind, item
    if kind == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace"), kind
    return field.parts[field.data[0]].tolist()[0], kind


def write_server_config(
    out: Path, host: str = "127.0.0.1", port: int = 8080, base: Path | None = None
) -> Path:
    """`out/llama_cpp_server.json`: the base GGUF as `base` and each exported LoRA `*.gguf`
    under its name, for `python -m llama_cpp.server --config_file`. The base is `out`'s
    `base-f32.gguf` where `--base-f32` wrote one, else the shipped Q4_1 file. The server keeps
    one model loaded and swaps when a request names another (a 135M base reloads in well under
    a second)."""
    from adapters.base import gguf_path

    if base is None:
        base = out / BASE_F32 if (out / BASE_F32).is_file() else gguf_path()
    common = {"model": str(base), "n_ctx": 2048, "n_threads": 2, "seed": 0, "verbose": False}
    models = [{**common, "model_alias": BASE_NAME}]
    for lora in sorted(out.glob("*.gguf")):
        if lora.name == BASE_F32:
            continue
        models.append({**common, "model_alias": lora.stem, "lora_path": str(lora.resolve())})
    path = out / SERVER_CONFIG
    path.write_text(json.dumps({"host": host, "port": port, "models": models}, indent=1))
    return path
