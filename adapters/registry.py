"""LoRA adapters on disk: discovery, metadata, base-model check and tenant access.

Layout (the contract between adapter training and serving):

    <root>/<kind>/<id>/adapter_config.json        PEFT files of the current version
    <root>/<kind>/<id>/adapter_model.safetensors
    <root>/<kind>/<id>/metadata.json              `AdapterMetadata`
    <root>/<kind>/<id>/versions.json              versions (`adapters.versions`): current,
    <root>/<kind>/<id>/versions/<vN>/             candidates and the ones it replaced

`kind` is one of retailer | brand | task. `<root>` is the repository's `adapters/` folder unless
`RMN_ADAPTERS_DIR` (or the `root` argument) says otherwise. A brand adapter carries its owner
tenant and is served to that tenant only; retailer and task adapters are shared. Every adapter
records the fingerprint of the base model it was trained on, and one trained on another base is
refused: its low-rank update is meaningless on different weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.versions import FIRST, current_version
from tools.errors import AccessDeniedError, RMNError
from tools.paths import PROJECT_ROOT

Kind = Literal["retailer", "brand", "task"]
KINDS: tuple[Kind, ...] = ("retailer", "brand", "task")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
METADATA_FILE = "metadata.json"
PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"


class AdapterNotFoundError(RMNError):
    kind = "adapter_not_found"


class AdapterMetadataError(RMNError):
    """An adapter folder whose files break the layout contract."""

    kind = "adapter_metadata_invalid"


class AdapterFingerprintError(RMNError):
    """An adapter trained on a different base model."""

    kind = "adapter_base_mismatch"


class AdapterAccessError(AccessDeniedError):
    """A tenant asking for another tenant's brand adapter."""

    kind = "adapter_access_denied"


class PeftSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(gt=0)
    alpha: float = Field(gt=0)
    target_modules: list[str] = Field(min_length=1)


class TrainingCard(BaseModel):
    """Where the adapter came from; extra keys (learning rate, seed, ...) are kept."""

    model_config = ConfigDict(extra="allow")

    dataset: str
    rows: int = Field(ge=0)
    splits: dict[str, int]
    steps: int = Field(ge=0)
    command: str


class AdapterMetadata(BaseModel):
    """`metadata.json` of one adapter folder."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    id: str = Field(pattern=ID_PATTERN)
    owner_tenant: str | None = None
    base_model: str
    base_fingerprint: str = Field(min_length=1)
    peft: PeftSpec
    training: TrainingCard
    eval: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    version: str | None = Field(None, description="v1, v2, ...: see adapters.versions")

    @model_validator(mode="after")
    def _owner_matches_kind(self) -> AdapterMetadata:
        if self.kind == "brand" and not self.owner_tenant:
            raise ValueError("a brand adapter needs owner_tenant")
        if self.kind != "brand" and self.owner_tenant is not None:
            raise ValueError(f"owner_tenant is for brand adapters only, not {self.kind}")
        return self

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.id}"

    @classmethod
    def read(cls, folder: Path) -> AdapterMetadata:
        path = Path(folder) / METADATA_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise AdapterMetadataError(f"{path} is missing", path=str(path)) from None
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
            )
            raise AdapterMetadataError(f"{path} is invalid: {problems}", path=str(path)) from None

    def write(self, folder: Path) -> Path:
        path = Path(folder) / METADATA_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        os.replace(tmp, path)
        return path


@dataclass(frozen=True)
class AdapterSet:
    """The adapters one call asks for, at most one per kind."""

    retailer: str | None = None
    brand: str | None = None
    task: str | None = None

    def items(self) -> list[tuple[Kind, str]]:
        """(kind, id) of the requested adapters, in composition order."""
        pairs: list[tuple[Kind, str | None]] = [
            ("retailer", self.retailer),
            ("brand", self.brand),
            ("task", self.task),
        ]
        return [(k, i) for k, i in pairs if i is not None]

    @property
    def names(self) -> list[str]:
        return [f"{k}/{i}" for k, i in self.items()]

    def __str__(self) -> str:
        return "+".join(self.names) or "base"


@dataclass(frozen=True)
class AdapterEntry:
    """One discovered adapter: its validated metadata and folder."""

    metadata: AdapterMetadata
    path: Path

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def peft_name(self) -> str:
        # PEFT keeps adapters in torch ModuleDicts, whose keys may not contain dots or slashes.
        return f"{self.metadata.kind}-{self.metadata.id}"

    @property
    def version(self) -> str:
        """The version these files are (an adapter written before versions is "v1")."""
        return self.metadata.version or current_version(self.path) or FIRST

    @property
    def versioned_name(self) -> str:
        return f"{self.name}@{self.version}"


def adapters_root() -> Path:
    """`RMN_ADAPTERS_DIR`, else the repository's `adapters/` folder."""
    return Path(os.environ.get("RMN_ADAPTERS_DIR", PROJECT_ROOT / "adapters"))


class AdapterRegistry:
    """The adapters under one root, scanned once (call `discover()` again to rescan)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else adapters_root()
        self._entries: dict[tuple[str, str], AdapterEntry] = {}
        self._invalid: dict[tuple[str, str], str] = {}
        self.discover()

    def discover(self) -> None:
        """Scan `<root>/<kind>/<id>/`. A broken folder does not hide the others: it is listed in
        `invalid` and refused, with its reason, when asked for."""
        entries: dict[tuple[str, str], AdapterEntry] = {}
        invalid: dict[tuple[str, str], str] = {}
        for kind in KINDS:
            folder = self.root / kind
            if not folder.is_dir():
                continue
            for path in sorted(p for p in folder.iterdir() if p.is_dir()):
                if path.name.startswith((".", "_")):
                    continue
                try:
                    entries[(kind, path.name)] = AdapterEntry(_validate(path, kind), path)
                except AdapterMetadataError as err:
                    invalid[(kind, path.name)] = err.message
        self._entries, self._invalid = entries, invalid

    def entries(self, kind: Kind | None = None) -> list[AdapterEntry]:
        return [e for (k, _), e in self._entries.items() if kind is None or k == kind]

    @property
    def invalid(self) -> dict[str, str]:
        """`kind/id` -> why the folder was rejected."""
        return {f"{k}/{i}": why for (k, i), why in self._invalid.items()}

    def versioned_name(self, name: str) -> str:
        """`kind/id` with the version being served (`kind/id@vN`); a name the registry does
        not have comes back as it is."""
        kind, _, adapter_id = name.partition("/")
        entry = self._entries.get((kind, adapter_id))
        return entry.versioned_name if entry is not None else name

    def get(self, kind: Kind, adapter_id: str) -> AdapterEntry:
        key = (kind, adapter_id)
        if key in self._entries:
            return self._entries[key]
        if key in self._invalid:
            raise AdapterMetadataError(
                f"{kind} adapter {adapter_id!r} cannot be used: {self._invalid[key]}",
                adapter=f"{kind}/{adapter_id}",
            )
        known = sorted(i for k, i in self._entries if k == kind)
        raise AdapterNotFoundError(
            f"no {kind} adapter {adapter_id!r} under {self.root / kind}: "
            + (f"available: {', '.join(known)}" if known else f"no {kind} adapters are installed"),
            adapter=f"{kind}/{adapter_id}",
            available=known,
        )

    def resolve(
        self, adapters: AdapterSet, tenant: str | None, base_fingerprint: str
    ) -> list[AdapterEntry]:
        """The entries for one call, each checked against the base model and the tenant."""
        resolved = []
        for kind, adapter_id in adapters.items():
            entry = self.get(kind, adapter_id)
            check_base(entry, base_fingerprint)
            authorize(entry, tenant)
            resolved.append(entry)
        return resolved


def check_base(entry: AdapterEntry, base_fingerprint: str) -> None:
    trained_on = entry.metadata.base_fingerprint
    if trained_on != base_fingerprint:
        raise AdapterFingerprintError(
            f"{entry.name} was trained on base model {trained_on} but the loaded base model is "
            f"{base_fingerprint}: retrain the adapter on this base, or load the base it was "
            "trained on",
            adapter=entry.name,
            adapter_fingerprint=trained_on,
            base_fingerprint=base_fingerprint,
        )


def authorize(entry: AdapterEntry, tenant: str | None) -> None:
    owner = entry.metadata.owner_tenant
    if owner is None or owner == tenant:
        return
    who = f"tenant {tenant!r}" if tenant else "a call without a tenant"
    raise AdapterAccessError(
        f"{entry.name} belongs to tenant {owner!r}; {who} may not use it "
        "(brand adapters are served to their owner only)",
        adapter=entry.name,
        tenant=tenant,
    )


def _validate(path: Path, kind: str) -> AdapterMetadata:
    """The folder's metadata, checked against its location and its PEFT config."""
    meta = AdapterMetadata.read(path)
    if (meta.kind, meta.id) != (kind, path.name):
        raise AdapterMetadataError(
            f"{path / METADATA_FILE} says {meta.kind}/{meta.id} "
            f"but the folder is {kind}/{path.name}",
            path=str(path),
        )
    config_path = path / PEFT_CONFIG_FILE
    if not (path / PEFT_WEIGHTS_FILE).is_file():
        raise AdapterMetadataError(f"{path / PEFT_WEIGHTS_FILE} is missing", path=str(path))
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise AdapterMetadataError(f"{config_path} is missing", path=str(path)) from None
    except json.JSONDecodeError as err:
        raise AdapterMetadataError(f"{config_path} is not JSON: {err}", path=str(path)) from None
    targets = config.get("target_modules")
    targets = sorted([targets] if isinstance(targets, str) else targets or [])
    recorded = (meta.peft.r, float(meta.peft.alpha), sorted(meta.peft.target_modules))
    actual = (config.get("r"), float(config.get("lora_alpha") or 0), targets)
    if recorded != actual:
        raise AdapterMetadataError(
            f"{path / METADATA_FILE} peft (r, alpha, target_modules) = {recorded} disagrees with "
            f"{config_path} = {actual}",
            path=str(path),
        )
    return meta
