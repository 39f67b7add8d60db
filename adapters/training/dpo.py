"""Preference tuning (DPO) of a trained SFT adapter with TRL's DPOTrainer.

With `mine` > 0, pairs are also mined on-policy: the SFT adapter answers that many training
prompts (greedy), and each answer the eval would mark wrong becomes the rejected side against
the reference answer. These target the mistakes the adapter actually makes (a product name left
in title case on a sentence-case retailer, a headline a few characters over) where synthetic
flaws only approximate them.

The SFT adapter is loaded trainable and passed as a PeftModel without a peft_config; TRL keeps a
frozen copy of it as the reference policy, so DPO moves the adapter away from its own SFT
behaviour rather than from the bare base. Pairs (`AdapterDataset.preference_pairs`) contrast
the reference answer with a flawed one: invalid JSON, a headline over the limit, a missing
disclaimer, a prohibited or banned word.

An SFT adapter trained on top of another (`--stack-on task/creative`, every brand adapter) is
preference-tuned on top of that same adapter, merged into the base first, so both the policy
and TRL's frozen reference copy are served as the runtime composes them (creative + brand), and
the card records the stack so the runtime composes the result only on it. One trained on
another `task/creative` than the installed one is refused, as the gate refuses it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from adapters.registry import AdapterMetadata
from adapters.stacking import stacked_as_trained, stacked_under, weights_digest
from adapters.training.datasets import AdapterDataset, PreferencePair, build_dataset
from adapters.training.evaluate import MAX_NEW_TOKENS, answer_is_right, resolve_adapter, role_of
from adapters.training.models import (
    BaseModelSpec,
    base_for_adapter,
    generate,
    require_cuda_for_qlora,
)
from adapters.training.trainer import Run, TrainOptions, TrainResult
from tools.errors import RMNError


def train_dpo(
    kind: str,
    adapter_id: str,
    from_adapter: str | Path,
    options: TrainOptions | None = None,
    *,
    base: BaseModelSpec | None = None,
    progress: bool = False,
    dataset: AdapterDataset | None = None,
) -> TrainResult:
    """DPO on top of the adapter at `from_adapter`; writes `<out>/<kind>/<adapter_id>/`."""
    options = options or TrainOptions(steps=40, lr=5e-5)
    if options.qlora:
        require_cuda_for_qlora()
    source = resolve_adapter(from_adapter, options.out)
    prior = AdapterMetadata.read(source)
    # The base is the one the SFT adapter was trained on, whatever `options.base` says.
    base = base or base_for_adapter(prior.base_model, prior.base_fingerprint)
    stack = stack_of(prior, options)
    dataset = dataset or build_dataset(kind, adapter_id, options.seed)
    run = Run.start(kind, adapter_id, "dpo", options, progress)

    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = run.load(base)
    if stack is not None:
        model = PeftModel.from_pretrained(model, str(stack[1])).merge_and_unload()
    model = PeftModel.from_pretrained(model, str(source), is_trainable=True)
    _lora_to_fp32(model)
    synthetic = dataset.preference_pairs("train")
    mined = mine_pairs(model, tokenizer, dataset, options.mine) if options.mine else []
    if mined:  # as many synthetic pairs as mined ones, so the real mistakes are not drowned out
        keep = min(len(synthetic), max(16, len(mined)))
        synthetic = random.Random(f"{options.seed}:dpo-mix").sample(synthetic, keep)
    pairs = Dataset.from_list([p.row() for p in synthetic + mined])
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(**run.trainer_args(), beta=options.beta),
        train_dataset=pairs,
        processing_class=tokenizer,
        callbacks=run.callbacks(),
    )
    run.train(trainer)

    card: dict[str, Any] = {
        "preference_pairs": len(pairs),
        "mined_pairs": len(mined),
        "beta": options.beta,
        "from_adapter": prior.training.model_dump(),
        "resumed_from": run.resumed_from,
    }
    if stack is not None:
        card["stacked_on"] = {"adapter": stack[0], "weights_sha256": weights_digest(stack[1])}
    extra = ("--from-adapter", _display(source))
    return run.finish(trainer.model, base, dataset, len(pairs), run.last_loss, card, extra)


class StackChangedError(RMNError):
    """The adapter to tune was trained on top of another version than the installed one."""

    kind = "stack_changed"


def stack_of(prior: AdapterMetadata, options: TrainOptions) -> tuple[str, Path] | None:
    """(name, folder) of the adapter the SFT adapter was trained on top of, as installed; None
    for an adapter trained alone. `StackChangedError` when the installed one is not the one it was
    trained on: tuned on another, the result would be composed on neither."""
    card = prior.training.model_dump()
    name = stacked_under(card)
    if name is None:
        return None
    folder = resolve_adapter(name, options.out)
    if not stacked_as_trained(card, name, folder):
        raise StackChangedError(
            f"the adapter was trained on top of another {name} than the installed one; "
            f"train it again with --stack-on {name} first",
            stacked_on=name,
        )
    return name, folder


def mine_pairs(
    model: Any,
    tokenizer: Any,
    dataset: AdapterDataset,
    count: int,
    max_new_tokens: int | None = None,
) -> list[PreferencePair]:
    """(reference, the model's own wrong answer) pairs from the first `count` training rows."""
    examples = dataset.train[:count]
    role = role_of(dataset.kind, dataset.adapter_id)
    was_training = model.training
    model.eval()
    outputs = generate(
        model,
        tokenizer,
        [e.prompt() for e in examples],
        max_new_tokens or MAX_NEW_TOKENS[role],
    )
    model.train(was_training)
    return [
        PreferencePair(e.source, e.user, e.answer, out, e.task, "own_mistake")
        for e, out in zip(examples, outputs, strict=True)
        if out.strip() and not answer_is_right(role, out, e)
    ]


def _lora_to_fp32(model: Any) -> None:
    # Shipped adapters are stored in bf16; train their weights in fp32 like fresh ones.
    import torch

    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = param.data.to(torch.float32)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
