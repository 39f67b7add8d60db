"""Checkpoints and adapter folders on disk.

Checkpoints live in the cache (`<cache>/training/<kind>-<id>-<method>/`, or under
`RMN_CHECKPOINT_DIR`), so `--resume` picks up
an interrupted run. The finished adapter is written to a hidden staging folder next to its
target and added as a new version (`adapters.versions`) with renames, so a reader never sees a
half-written adapter.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.registry import (
    PEFT_CONFIG_FILE,
    AdapterMetadata,
    PeftSpec,
    TrainingCard,
)
from adapters.versions import VERSIONS_DIR, add_version
from tools.errors import RMNError
from tools.paths import cache_dir

if TYPE_CHECKING:
    from peft import PeftModel


class NoCheckpointError(RMNError):
    kind = "no_checkpoint"


def checkpoint_root(kind: str, adapter_id: str, method: str, root: Path | None = None) -> Path:
    """`root` / `<kind>-<id>-<method>`; root defaults to `RMN_CHECKPOINT_DIR`, else
    `<cache>/training`."""
    env = os.environ.get("RMN_CHECKPOINT_DIR")
    default = Path(env) if env else cache_dir() / "training"
    return (root or default) / f"{kind}-{adapter_id}-{method}"


def last_checkpoint(folder: Path) -> Path | None:
    """The newest `checkpoint-<step>` folder the Trainer finished writing, if any."""
    if not folder.is_dir():
        return None
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def prepare_checkpoints(
    kind: str, adapter_id: str, method: str, resume: bool, root: Path | None = None
) -> tuple[Path, Path | None]:
    """(checkpoint folder, checkpoint to resume from). A fresh run clears old checkpoints; a
    resumed one needs one to exist."""
    folder = checkpoint_root(kind, adapter_id, method, root)
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder, None
    found = last_checkpoint(folder)
    if found is None:
        raise NoCheckpointError(
            f"--resume: no checkpoint of {kind}/{adapter_id} ({method}) under {folder}; "
            "run again without --resume to start from scratch",
            folder=str(folder),
        )
    return folder, found


def peft_spec(model: PeftModel, adapter_name: str = "default") -> PeftSpec:
    config = model.peft_config[adapter_name]
    targets = config.target_modules
    targets = [targets] if isinstance(targets, str) else sorted(targets)
    return PeftSpec(r=config.r, alpha=float(config.lora_alpha), target_modules=targets)


def write_adapter(
    model: PeftModel,
    out_root: Path,
    kind: str,
    adapter_id: str,
    *,
    base_model: str,
    base_fingerprint: str,
    owner_tenant: str | None,
    training: dict[str, Any],
    adapter_name: str = "default",
) -> tuple[Path, AdapterMetadata]:
    """Save the adapter's PEFT files and metadata as a new version of
    `<out_root>/<kind>/<adapter_id>/` (`adapters.versions.add_version`): the current version
    when the folder has none, else a candidate under `versions/<vN>/` that
    `rmn adapters promote` makes current if it beats the current one on the held-out eval.
    Returns the folder the version's files are in, and its metadata."""
    target = Path(out_root) / kind / adapter_id
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{adapter_id}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    # The config names the base by its id rather than this machine's cache path.
    model.peft_config[adapter_name].base_model_name_or_path = base_model
    # The vocabulary is never changed here, so skip PEFT's embedding check (it asks a hub).
    model.save_pretrained(staging, selected_adapters=[adapter_name], save_embedding_layers=False)
    if adapter_name != "default":  # PEFT puts non-default adapters in a subfolder
        nested = staging / adapter_name
        for item in nested.iterdir():
            os.replace(item, staging / item.name)
        nested.rmdir()
    _sorted_targets(staging / PEFT_CONFIG_FILE)
    for extra in ("README.md",):  # PEFT's model-card stub says nothing about this adapter
        (staging / extra).unlink(missing_ok=True)
    metadata = AdapterMetadata(
        kind=kind,  # type: ignore[arg-type]
        id=adapter_id,
        owner_tenant=owner_tenant,
        base_model=base_model,
        base_fingerprint=base_fingerprint,
        peft=peft_spec(model, adapter_name),
        training=TrainingCard(**training),
        eval={},
        created_at=datetime.now(UTC).replace(microsecond=0),
    )
    metadata.write(staging)
    version, is_current = add_version(target, staging)
    folder = target if is_current else target / VERSIONS_DIR / version
    return folder, AdapterMetadata.read(folder)


def _sorted_targets(config_path: Path) -> None:
    # PEFT stores target_modules from a set, in arbitrary order; a stable order keeps diffs clean.
    config = json.loads(config_path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def update_eval(folder: Path, scores: dict[str, Any]) -> AdapterMetadata:
    """Record eval scores in an adapter's metadata.json."""
    metadata = AdapterMetadata.read(folder)
    updated = metadata.model_copy(update={"eval": scores})
    updated.write(folder)
    return updated
