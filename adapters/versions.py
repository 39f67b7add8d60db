"""Adapter versions: every adapter folder keeps its current version where the registry reads it,
and its other versions (the ones it replaced, candidates not yet promoted) beside it.

    <root>/<kind>/<id>/adapter_config.json, adapter_model.safetensors, metadata.json
                                              the current version (what the runtime serves)
    <root>/<kind>/<id>/versions.json          the manifest: current, every version, history
    <root>/<kind>/<id>/versions/<vN>/         every other version's files

A folder without a manifest (written before versions existed) holds one version, "v1". A newly
trained adapter is the current version when the folder has none, else a candidate
(`add_version`). `promote` makes a candidate current only if it beats the current version on
the held-out eval (the caller's scores; the gate says both); `rollback` makes the version the
current one replaced current again. Each version's `metadata.json` records its version, and
promotions and rollbacks are appended to the manifest's history. `prune` deletes the files of
every version but the current one and the one a rollback would restore (each a few MB, and the
repository ships its adapters); their records stay in the manifest, marked "pruned".

Files are moved with renames only, under a lock per adapter folder; readers see the old or the
new version's files.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, Field

from tools.errors import RMNError

MANIFEST = "versions.json"
VERSIONS_DIR = "versions"
FILES = ("adapter_config.json", "adapter_model.safetensors", "metadata.json")
FIRST = "v1"


class AdapterVersionError(RMNError):
    kind = "adapter_version"


class VersionRecord(BaseModel):
    version: str
    created_at: str
    method: str = ""
    command: str = ""
    status: str = Field(
        "candidate",
        description="current | previous | candidate | refused | replaced | pruned",
    )


class HistoryEntry(BaseModel):
    action: str  # promote | refuse | rollback
    at: str
    from_version: str | None
    to_version: str
    scores: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    current: str | None = None
    versions: list[VersionRecord] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)

    def get(self, version: str) -> VersionRecord | None:
        return next((v for v in self.versions if v.version == version), None)

    def next_version(self) -> str:
        numbers = [int(v.version[1:]) for v in self.versions if v.version[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest; for a folder written before versions, one current "v1"."""
    path = folder / MANIFEST
    if path.is_file():
        return Manifest.model_validate_json(path.read_text())
    if (folder / "metadata.json").is_file():
        meta = json.loads((folder / "metadata.json").read_text())
        record = VersionRecord(
            version=meta.get("version") or FIRST,
            created_at=str(meta.get("created_at", "")),
            method=str(meta.get("training", {}).get("method", "")),
            command=str(meta.get("training", {}).get("command", "")),
            status="current",
        )
        return Manifest(current=record.version, versions=[record])
    return Manifest()


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    tmp = folder / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)


def current_version(folder: Path) -> str | None:
    return read_manifest(folder).current


def version_folder(folder: Path, version: str) -> Path:
    """Where a version's files are: the adapter folder for the current one."""
    manifest = read_manifest(folder)
    if manifest.get(version) is None:
        known = ", ".join(v.version for v in manifest.versions) or "none"
        raise AdapterVersionError(
            f"{folder.parent.name}/{folder.name} has no version {version!r} (versions: {known})",
            version=version,
        )
    return folder if version == manifest.current else folder / VERSIONS_DIR / version


def _lock(folder: Path) -> FileLock:
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder.parent / f".{folder.name}.versions.lock"))


def _set_version(files: Path, version: str) -> None:
    path = files / "metadata.json"
    meta = json.loads(path.read_text())
    meta["version"] = version
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path)


def _move_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (source / name).is_file():
            os.replace(source / name, target / name)


def add_version(folder: Path, staged: Path) -> tuple[str, bool]:
    """Take the adapter files in `staged` (a finished folder, consumed) as a new version of the
    adapter at `folder`: the current version when there is none, else a candidate. Returns
    (version, whether it is current)."""
    with _lock(folder):
        manifest = read_manifest(folder)
        version = manifest.next_version()
        meta = json.loads((staged / "metadata.json").read_text())
        record = VersionRecord(
            version=version,
            created_at=str(meta.get("created_at", now())),
            method=str(meta.get("training", {}).get("method", "")),
            command=str(meta.get("training", {}).get("command", "")),
        )
        _set_version(staged, version)
        is_current = manifest.current is None
        if is_current:
            _move_files(staged, folder)
            record.status = "current"
            manifest.current = version
        else:
            _move_files(staged, folder / VERSIONS_DIR / version)
        shutil.rmtree(staged, ignore_errors=True)
        manifest.versions.append(record)
        _write_manifest(folder, manifest)
        return version, is_current


def _swap(folder: Path, manifest: Manifest, to: str) -> str | None:
    """Make `to` current: the current files go to versions/<current>/, `to`'s come up."""
    old = manifest.current
    if old is not None:
        if not (folder / VERSIONS_DIR / old).exists():
            (folder / VERSIONS_DIR / old).mkdir(parents=True)
        staging = folder / VERSIONS_DIR / f".{to}.staging"
        _move_files(folder / VERSIONS_DIR / to, staging)
        _move_files(folder, folder / VERSIONS_DIR / old)
        _move_files(staging, folder)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(folder / VERSIONS_DIR / to, ignore_errors=True)
    for record in manifest.versions:
        if record.version == to:
            record.status = "current"
        elif record.version == old:
            record.status = "previous"
        elif record.status == "previous":
            record.status = "replaced"
    manifest.current = to
    return old


def promote(folder: Path, version: str, scores: dict[str, Any]) -> Manifest:
    """Make candidate `version` current. The caller has run the gate (`scores`: both versions'
    held-out scores); they are recorded in the history."""
    with _lock(folder):
        manifest = read_manifest(folder)
        if manifest.get(version) is None:
            raise AdapterVersionError(f"no version {version!r}", version=version)
        if manifest.current == version:
            raise AdapterVersionError(f"{version} is already the current version")
        old = _swap(folder, manifest, version)
        manifest.history.append(
            HistoryEntry(action="promote", at=now(), from_version=old, to_version=version,
                         scores=scores)
        )  # fmt: skip
        _write_manifest(folder, manifest)
        return manifest


def refuse(folder: Path, version: str, scores: dict[str, Any]) -> Manifest:
    """Record that the gate refused `version` (`scores`: both versions' held-out scores): a
    history entry, and the version marked "refused" so that no rollback restores it.

    Why: the decision used to be written only into the refused version's own metadata, which
    `prune` deletes with its files, so a refused DPO candidate left no score behind; and a
    refused version that had once been current stayed the rollback target."""
    with _lock(folder):
        manifest = read_manifest(folder)
        record = manifest.get(version)
        if record is None:
            raise AdapterVersionError(f"no version {version!r}", version=version)
        if manifest.current == version:
            raise AdapterVersionError(f"{version} is the current version; it cannot be refused")
        if record.status != "pruned":
            record.status = "refused"
        manifest.history.append(
            HistoryEntry(action="refuse", at=now(), from_version=manifest.current,
                         to_version=version, scores=scores)
        )  # fmt: skip
        _write_manifest(folder, manifest)
        return manifest


def rollback(folder: Path) -> Manifest:
    """Make the version the current one replaced current again."""
    with _lock(folder):
        manifest = read_manifest(folder)
        to = _rollback_target(manifest)
        if to is None:
            refused = _refused_target(manifest)
            why = (
                f"{refused} was refused by the gate since it was current"
                if refused
                else "no earlier version was current"
            )
            raise AdapterVersionError(
                f"{folder.parent.name}/{folder.name} {manifest.current}: nothing to roll back to "
                f"({why})"
            )
        if not (folder / VERSIONS_DIR / to / "metadata.json").is_file():
            raise AdapterVersionError(
                f"{to}'s files are not here (pruned, or left out of this copy)"
            )
        old = _swap(folder, manifest, to)
        manifest.history.append(
            HistoryEntry(action="rollback", at=now(), from_version=old, to_version=to)
        )
        _write_manifest(folder, manifest)
        return manifest


def prune(folder: Path) -> list[str]:
    """Delete the files of every version but the current one and the one `rollback` would
    restore; returns the versions pruned. Their records stay, marked "pruned"."""
    with _lock(folder):
        manifest = read_manifest(folder)
        keep = {manifest.current, _rollback_target(manifest)}
        pruned = []
        for record in manifest.versions:
            if record.version in keep or record.status == "pruned":
                continue
            shutil.rmtree(folder / VERSIONS_DIR / record.version, ignore_errors=True)
            record.status = "pruned"
            pruned.append(record.version)
        if pruned:
            _write_manifest(folder, manifest)
        return pruned


def _replaced(manifest: Manifest) -> str | None:
    """The version the current one replaced (by promotion or rollback)."""
    made_current = [
        h for h in manifest.history if h.to_version == manifest.current and h.action != "refuse"
    ]
    return made_current[-1].from_version if made_current else None


def _refused_since(manifest: Manifest, version: str) -> bool:
    """Whether the gate refused `version` after it was last current."""
    last = None
    for i, h in enumerate(manifest.history):
        if h.action != "refuse" and (h.to_version == version or h.from_version == version):
            last = i
    return any(
        h.action == "refuse" and h.to_version == version
        for h in manifest.history[(last if last is not None else -1) + 1 :]
    )


def _refused_target(manifest: Manifest) -> str | None:
    target = _replaced(manifest)
    return target if target is not None and _refused_since(manifest, target) else None


def _rollback_target(manifest: Manifest) -> str | None:
    target = _replaced(manifest)
    return None if target is None or _refused_since(manifest, target) else target


def adapters_root_of(folder: Path) -> Path:
    """The adapters root a version's folder lives under (`<root>/<kind>/<id>[/versions/<v>]`)."""
    folder = Path(folder)
    if folder.parent.name == VERSIONS_DIR:
        return folder.parent.parent.parent.parent
    return folder.parent.parent
