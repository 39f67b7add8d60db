"""What an SFT run and a DPO run share: the options that decide what a run produces, the
Trainer arguments, the loss log, the run's skeleton (checkpoints, seed, timing, training) and
the training card and adapter folder it ends with. `sft` and `dpo` add their trainers.
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
from adapters.training.datasets import AdapterDataset
from adapters.training.models import (
    SMOLLM2,
    BaseModelSpec,
    cuda_available,
    quiet_libraries,
)
from tools.policy import load_brand_guide

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

Precision = Literal["bf16", "fp32"]


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


class LossLog:
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


def quiet_trainer(trainer: Any, progress: bool) -> None:
    """Keep stdout for the command's result: the Trainer prints its log dicts there when
    progress bars are off; the loss log on stderr replaces them."""
    from transformers.trainer_callback import PrinterCallback

    if not progress:
        trainer.remove_callback(PrinterCallback)


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


# --- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    """One training run of `<kind>/<adapter_id>` by `method` ("sft", "dpo"): where it writes
    checkpoints, the checkpoint it resumes, its loss log and its clock."""

    kind: str
    adapter_id: str
    method: str
    options: TrainOptions
    progress: bool
    output_dir: Path
    resume_from: Path | None
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    log: LossLog | None = None

    @classmethod
    def start(
        cls, kind: str, adapter_id: str, method: str, options: TrainOptions, progress: bool
    ) -> Run:
        """Checkpoints prepared (old ones cleared, or the one to resume found), the libraries
        quieted, the seed set and the clock started."""
        output_dir, resume_from = prepare_checkpoints(
            kind, adapter_id, method, options.resume, options.checkpoints
        )
        from transformers import set_seed

        quiet_libraries(progress)
        set_seed(options.seed)
        return cls(kind, adapter_id, method, options, progress, output_dir, resume_from)

    def load(self, base: BaseModelSpec) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The base model in the run's precision (4-bit with `qlora`)."""
        qlora = self.options.qlora
        return base.load(torch_dtype(self.options.precision, qlora), qlora)

    def trainer_args(self) -> dict[str, Any]:
        return trainer_args(self.options, self.output_dir, self.progress)

    def callbacks(self) -> list[TrainerCallback]:
        """The Trainer's callbacks: the loss log on stderr, unless progress bars show it."""
        self.log = LossLog(self.options.steps)
        return [] if self.progress else [self.log.callback()]

    @property
    def last_loss(self) -> float | None:
        return self.log.last_loss if self.log is not None else None

    def train(self, trainer: Any) -> None:
        """Train (from the checkpoint to resume, if any) and stop the clock."""
        quiet_trainer(trainer, self.progress)
        resume = str(self.resume_from) if self.resume_from else None
        trainer.train(resume_from_checkpoint=resume)
        self.seconds = time.perf_counter() - self.started

    @property
    def resumed_from(self) -> str | None:
        return self.resume_from.name if self.resume_from else None

    def finish(
        self,
        model: PeftModel,
        base: BaseModelSpec,
        dataset: AdapterDataset,
        rows_used: int,
        final_loss: float | None,
        card_extra: dict[str, Any],
        command_extra: tuple[str, ...] = (),
    ) -> TrainResult:
        """The trained adapter in bf16, written with its training card (`training_card` plus
        `card_extra`) as `<out>/<kind>/<adapter_id>/`."""
        options = self.options
        lora_weights_to_bf16(model)
        command = options.command(self.method, self.kind, self.adapter_id, command_extra)
        card = training_card(
            dataset, options, self.method, command, self.seconds, final_loss, rows_used
        )
        card.update(card_extra)
        path, metadata = write_adapter(
            model,
            options.out,
            self.kind,
            self.adapter_id,
            base_model=base.name,
            base_fingerprint=base.fingerprint,
            owner_tenant=owner_for(self.kind, self.adapter_id),
            training=card,
        )
        return TrainResult(path, metadata, self.seconds, final_loss)
