"""Supervised fine-tuning of one LoRA adapter with TRL's SFTTrainer.

Loss is on the completion only (prompt/completion rows). On CPU the base runs in bf16 with fp32
LoRA weights: on this project's reference CPU (AVX-512 BF16) a step takes about half the fp32
time. With `qlora` the base is loaded in 4-bit (CUDA only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.registry import AdapterMetadata
from adapters.stacking import weights_digest
from adapters.training.datasets import AdapterDataset, build_dataset
from adapters.training.evaluate import resolve_adapter
from adapters.training.models import BaseModelSpec, get_base, require_cuda_for_qlora
from adapters.training.trainer import Run, TrainOptions, TrainResult
from tools.errors import RMNError

if TYPE_CHECKING:
    from peft import PeftModel

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = (*ATTENTION, "gate_proj", "up_proj", "down_proj")
TARGETS = {"attention": ATTENTION, "all-linear": ALL_LINEAR}


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
    run = Run.start(kind, adapter_id, "sft", options, progress)

    from trl import SFTConfig, SFTTrainer

    model, tokenizer = run.load(base)
    stacked = None
    if options.stack_on:
        stacked = resolve_adapter(options.stack_on, options.out)
        check_stack(stacked, base)
        model = stack_model(model, stacked, lora_config(options))
    train_rows = dataset.hf("train")
    require_room_for_answers(dataset.rows("train"), tokenizer, options.max_length)
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**run.trainer_args()),
        train_dataset=train_rows,
        processing_class=tokenizer,
        peft_config=None if stacked else lora_config(options),
        callbacks=run.callbacks(),
    )
    run.train(trainer)
    final_loss = run.last_loss if run.last_loss is not None else _last_loss(trainer)

    card: dict[str, Any] = {
        "resumed_from": run.resumed_from,
        "lora": {"targets": options.targets, "dropout": 0.05},
    }
    if stacked is not None:
        card["stacked_on"] = {
            "adapter": options.stack_on,
            "weights_sha256": weights_digest(stacked),
        }
    return run.finish(trainer.model, base, dataset, len(train_rows), final_loss, card)


STACK_ADAPTER = "stack"


class TrainingDataError(RMNError):
    """Training rows the run cannot learn from as configured."""

    kind = "training_data"


def require_room_for_answers(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> None:
    """TRL cuts each row to `max_length` tokens and silently drops rows whose prompt alone fills
    it (no answer token left to learn); when every row drops, the run fails deep in torch
    (`num_samples=0`), and when some do, the card's row count is wrong. Refuse such a run with
    the figures instead. The served creative prompt (system turn, benefits, claims, voice
    passage, schema) measured 241-303 SmolLM2 tokens over the creative, brand/acme and
    brand/globex datasets, so the default `--max-length 512` fits it; 256 did not."""
    lengths = []
    for row in rows:
        text = tokenizer.apply_chat_template(
            row["prompt"], tokenize=False, add_generation_prompt=True
        )
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    dropped = sum(n >= max_length for n in lengths)
    if dropped:
        raise TrainingDataError(
            f"{dropped} of {len(rows)} training prompts are {max_length} tokens or longer (the "
            f"longest {max(lengths)}), leaving no room for the answer: raise --max-length",
            max_length=max_length,
            longest_prompt=max(lengths),
        )


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


def _last_loss(trainer: Any) -> float | None:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return float(losses[-1]) if losses else None
