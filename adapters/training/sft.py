"""Supervised fine-tuning of one LoRA adapter with TRL's SFTTrainer.

Loss is on the completion only (prompt/completion rows). On CPU the base runs in bf16 with fp32
LoRA weights: on this project's reference CPU (AVX-512 BF16) a step takes about half the fp32
time. With `qlora` the base is loaded in 4-bit (CUDA only).
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adapters.registry import AdapterMetadata, adapters_root
from adapters.training.artifacts import prepare_checkpoints, write_adapter
from adapters.training.datasets import AdapterDataset, build_dataset
from adapters.training.evaluate import resolve_adapter
from adapters.training.models import (
    SMOLLM2,
    BaseModelSpec,
    cuda_available,
    get_base,
    quiet_libraries,
    require_cuda_for_qlora,
)
from tools.errors import RMNError

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase, TrainerCallback

Precision = Literal["bf16", "fp32"]
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = (*ATTENTION, "gate_proj", "up_proj", "down_proj")
TARGETS = {"attention": ATTENTION, "all-linear": ALL_LINEAR}


@dataclass
class TrainOptions:
    """Everything that decides what a training run produces; `command()` reproduces it."""

    steps: int = 120
    rank: int = 16
    alpha: float | None = None  # default: 2 x rank
    lr: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512
    targets: str = "attention"
    precision: Precision = "bf16"
    seed: int = 0
    qlora: bool = False
    resume: bool = False
    save_every: int = 20
    out: Path = field(default_factory=adapters_root)
    checkpoints: Path | None = None  # default: <cache>/training
    base: str = SMOLLM2
    beta: float = 0.1  # DPO only
    mine: int = 0  # DPO only: training prompts to mine on-policy pairs from
    stack_on: str | None = None  # train on top of this frozen adapter (kind/id), as served

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha if self.alpha is not None else 2 * self.rank)

    def command(self, method: str, kind: str, adapter_id: str, extra: tuple[str, ...] = ()) -> str:
        args = ["rmn", "train", method, "--kind", kind, "--name", adapter_id, *extra]
        args += ["--steps", str(self.steps)]
        if method == "sft":  # DPO keeps the shape of the adapter it starts from
            args += ["--rank", str(self.rank)]
            if self.alpha is not None:
                args += ["--alpha", f"{self.alpha:g}"]
            if self.targets != "attention":
                args += ["--targets", self.targets]
        args += ["--lr", f"{self.lr:g}", "--batch-size", str(self.batch_size)]
        args += ["--max-length", str(self.max_length)]
        if self.grad_accum != 1:
            args += ["--grad-accum", str(self.grad_accum)]
        if self.stack_on:
            args += ["--stack-on", self.stack_on]
        if self.precision != "bf16":
            args += ["--precision", self.precision]
        if method == "dpo":
            args += ["--beta", f"{self.beta:g}"]
            if self.mine:
                args += ["--mine", str(self.mine)]
        if self.seed != 0:
            args += ["--seed", str(self.seed)]
        if self.qlora:
            args.append("--qlora")
        if self.base != SMOLLM2:
            args += ["--base", self.base]
        return shlex.join(args)


@dataclass
class TrainResult:
    path: Path
    metadata: AdapterMetadata
    seconds: float
    final_loss: float | None


def torch_dtype(precision: Precision, qlora: bool) -> torch.dtype:
    import torch

    return torch.bfloat16 if precision == "bf16" or qlora else torch.float32


def owner_for(kind: str, adapter_id: str) -> str | None:
    if kind != "brand":
        return None
    from tools.policy import load_brand_guide

    return load_brand_guide(adapter_id).owner_tenant


def trainer_args(options: TrainOptions, output_dir: Path, progress: bool) -> dict[str, Any]:
    """Arguments shared by the SFT and DPO configs."""
    on_cuda = cuda_available()
    return {
        "output_dir": str(output_dir),
        "max_steps": options.steps,
        "per_device_train_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.grad_accum,
        "learning_rate": options.lr,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(1, options.steps // 20),
        "logging_steps": max(1, min(10, options.steps // 10)),
        "save_strategy": "steps",
        "save_steps": max(1, options.save_every),
        "save_total_limit": 2,
        "seed": options.seed,
        "data_seed": options.seed,
        "bf16": options.precision == "bf16" or options.qlora,
        "fp16": False,
        "gradient_checkpointing": False,
        "max_length": options.max_length,
        "report_to": [],
        "disable_tqdm": not progress,
        "dataloader_num_workers": 0,
        "use_cpu": not on_cuda,
        "dataset_num_proc": None,
    }


def lora_config(options: TrainOptions) -> Any:
    from peft import LoraConfig

    if options.targets not in TARGETS:
        raise RMNError(f"--targets must be one of {', '.join(TARGETS)}", targets=options.targets)
    return LoraConfig(
        r=options.rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=0.05,
        target_modules=list(TARGETS[options.targets]),
        bias="none",
        task_type="CAUSAL_LM",
    )


class _LossLog:
    """Loss lines on stderr when no progress bar is shown (background runs with a log file)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.perf_counter()
        self.last_loss: float | None = None

    def callback(self) -> TrainerCallback:
        from transformers import TrainerCallback

        log = self

        class Callback(TrainerCallback):
            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any
            ) -> None:
                if logs and "loss" in logs:
                    log.last_loss = float(logs["loss"])
                    elapsed = time.perf_counter() - log.started
                    print(
                        f"step {state.global_step}/{log.total} loss {log.last_loss:.4f} "
                        f"({elapsed:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )

        return Callback()


def lora_weights_to_bf16(model: PeftModel) -> None:
    # bf16 halves the shipped files; the update is a small delta, far above bf16 resolution.
    import torch

    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = param.data.to(torch.bfloat16)


def base_versions() -> dict[str, str]:
    import peft
    import torch
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
    }


def training_card(
    dataset: AdapterDataset,
    options: TrainOptions,
    method: str,
    command: str,
    seconds: float,
    final_loss: float | None,
    rows_used: int,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> dict[str, Any]:
    card = dataset.card()
    samples = options.steps * options.batch_size * options.grad_accum
    card.update(
        {
            "method": method,
            "steps": options.steps,
            "epochs": round(samples / max(1, rows_used), 2),
            "seconds": round(seconds, 1),
            "command": command,
            "learning_rate": options.lr,
            "batch_size": options.batch_size,
            "grad_accum": options.grad_accum,
            "max_length": options.max_length,
            "precision": "4-bit nf4 + bf16" if options.qlora else options.precision,
            "final_loss": None if final_loss is None else round(final_loss, 4),
            "device": _device_name(),
            "versions": base_versions(),
        }
    )
    return card


def _device_name() -> str:
    if cuda_available():
        import torch

        return f"cuda:{torch.cuda.get_device_name(0)}"
    return "cpu"


def train_sft(
    kind: str,
    adapter_id: str,
    options: TrainOptions | None = None,
    *,
    base: BaseModelSpec | None = None,
    progress: bool = False,
    dataset: AdapterDataset | None = None,
) -> TrainResult:
    """Train `<kind>/<adapter_id>` from the base model and write its adapter folder."""
    options = options or TrainOptions()
    if options.qlora:
        require_cuda_for_qlora()
    base = base or get_base(options.base)
    dataset = dataset or build_dataset(kind, adapter_id, options.seed)
    output_dir, resume_from = prepare_checkpoints(
        kind, adapter_id, "sft", options.resume, options.checkpoints
    )

    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    quiet_libraries(progress)
    set_seed(options.seed)
    started = time.perf_counter()
    model, tokenizer = base.load(torch_dtype(options.precision, options.qlora), options.qlora)
    stacked = None
    if options.stack_on:
        stacked = resolve_adapter(options.stack_on, options.out)
        check_stack(stacked, base)
        model = stack_model(model, stacked, lora_config(options))
    train_rows = dataset.hf("train")
    config = SFTConfig(**trainer_args(options, output_dir, progress))
    log = _LossLog(options.steps)
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_rows,
        processing_class=tokenizer,
        peft_config=None if stacked else lora_config(options),
        callbacks=[] if progress else [log.callback()],
    )
    quiet_trainer(trainer, progress)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - started
    final_loss = log.last_loss if log.last_loss is not None else _last_loss(trainer)

    peft_model = trainer.model
    lora_weights_to_bf16(peft_model)
    command = options.command("sft", kind, adapter_id)
    card = training_card(dataset, options, "sft", command, seconds, final_loss, len(train_rows))
    card["resumed_from"] = Path(resume_from).name if resume_from else None
    card["lora"] = {"targets": options.targets, "dropout": 0.05}
    if stacked is not None:
        card["stacked_on"] = {
            "adapter": options.stack_on,
            "weights_sha256": weights_digest(stacked),
        }
    path, metadata = write_adapter(
        peft_model,
        options.out,
        kind,
        adapter_id,
        base_model=base.name,
        base_fingerprint=base.fingerprint,
        owner_tenant=owner_for(kind, adapter_id),
        training=card,
    )
    return TrainResult(path, metadata, seconds, final_loss)


def quiet_trainer(trainer: Any, progress: bool) -> None:
    """Keep stdout for the command's result: the Trainer prints its log dicts there when
    progress bars are off; the loss log on stderr replaces them."""
    from transformers.trainer_callback import PrinterCallback

    if not progress:
        trainer.remove_callback(PrinterCallback)


STACK_ADAPTER = "stack"


def check_stack(folder: Path, base: BaseModelSpec) -> None:
    meta = AdapterMetadata.read(folder)
    if meta.base_fingerprint != base.fingerprint:
        raise RMNError(
            f"--stack-on {folder} was trained on another base ({meta.base_fingerprint})",
            adapter=str(folder),
        )


def stack_model(model: Any, stacked: Path, config: Any) -> PeftModel:
    """The base with `stacked` loaded frozen and a new trainable adapter ("default") on top,
    both active: the sum of their updates is what the runtime serves when it combines them."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(stacked), adapter_name=STACK_ADAPTER)
    peft_model.add_adapter("default", config)
    # "default" first: on resume the Trainer reloads the first active adapter.
    peft_model.base_model.set_adapter(["default", STACK_ADAPTER])
    for name, param in peft_model.named_parameters():
        param.requires_grad = "lora_" in name and ".default." in name
    return peft_model


def weights_digest(folder: Path) -> str:
    """sha256 of an adapter's weights: records exactly which adapter another was stacked on."""
    import hashlib

    return hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()


def _last_loss(trainer: Any) -> float | None:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return float(losses[-1]) if losses else None
