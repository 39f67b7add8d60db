"""`rmn adapters`: the installed adapters and their versions; promote a candidate version (only if
it beats the current one on the held-out eval), roll back to the version it replaced, or prune
the files of older versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors
from tools.errors import RMNError

app = typer.Typer(
    help="Adapter versions: list, promote (gated on the held-out eval), rollback, prune.",
    no_args_is_help=True,
)

AdapterArg = Annotated[str, typer.Argument(help="kind/id, e.g. task/creative or brand/acme.")]
RootOption = Annotated[
    Path | None, typer.Option("--root", help="Adapters root (default: adapters/).")
]


def _split(adapter: str) -> tuple[str, str]:
    kind, _, adapter_id = adapter.partition("/")
    if kind not in ("retailer", "brand", "task") or not adapter_id:
        raise RMNError(f"give the adapter as kind/id (e.g. task/creative), not {adapter!r}")
    return kind, adapter_id


def _root(root: Path | None) -> Path:
    from adapters.registry import adapters_root

    return root or adapters_root()


def list_adapters(root: Path) -> list[dict[str, Any]]:
    """Every adapter folder with its current version, its versions and their held-out scores,
    and a warning where an adapter was trained on top of another version than the one served."""
    from adapters.registry import KINDS, AdapterMetadata, AdapterRegistry
    from adapters.stacking import stacked_as_trained, stacked_under
    from adapters.versions import read_manifest, version_folder

    registry = AdapterRegistry(root)
    out = []
    for kind in KINDS:
        for entry in registry.entries(kind):
            manifest = read_manifest(entry.path)
            refusals = {h.to_version: h.scores for h in manifest.history if h.action == "refuse"}
            served = {h.to_version: _served_gate(h.scores) for h in manifest.history
                      if h.action == "promote" and "served" in h.scores}  # fmt: skip
            versions = []
            for record in manifest.versions:
                gate = {"refused": _refusal(refusals[record.version])} if (
                    record.version in refusals) else {}  # fmt: skip
                if record.version in served:
                    gate["as_served"] = served[record.version]
                if record.status == "pruned":  # its files are gone; its record stays
                    versions.append({**record.model_dump(), "held_out": {}, **gate})
                    continue
                folder = version_folder(entry.path, record.version)
                meta = AdapterMetadata.read(folder)
                primary = meta.eval.get("primary_metric")
                score = (meta.eval.get("adapter") or {}).get(primary) if primary else None
                versions.append(
                    {**record.model_dump(), "held_out": {primary: score} if primary else {},
                     **gate}
                )  # fmt: skip
            row: dict[str, Any] = {
                "adapter": entry.name,
                "current": entry.version,
                "owner_tenant": entry.metadata.owner_tenant,
                "versions": versions,
            }
            card = entry.metadata.training.model_dump()
            under_name = stacked_under(card)
            if under_name and (root / under_name / "adapter_model.safetensors").is_file():
                same = stacked_as_trained(card, under_name, root / under_name)
                row["stacked_on"] = {"adapter": under_name, "as_trained": same}
            out.append(row)
    for name, why in registry.invalid.items():
        out.append({"adapter": name, "invalid": why})
    return out


def _refusal(scores: dict[str, Any]) -> dict[str, Any]:
    """The gate's last refusal of a version, from the manifest's history: it outlives the
    version's files."""
    current, candidate = scores.get("current") or {}, scores.get("candidate") or {}
    return {"metric": scores.get("primary_metric"), "score": candidate.get("score"),
            "current": current.get("version"), "current_score": current.get("score"),
            "items": scores.get("items")}  # fmt: skip


def _served_gate(scores: dict[str, Any]) -> dict[str, Any]:
    """The score a version was promoted on by a gate that scored it as served (the model
    alone on clean hand-written briefs, or the copy as served): it has no free-eval score."""
    return {"metric": scores.get("primary_metric"),
            "score": (scores.get("candidate") or {}).get("score"),
            "items": scores.get("items"), "unit": scores.get("unit")}  # fmt: skip


def _installed(adapter: str, root: Path | None) -> Path:
    """The folder of an installed adapter (`kind/id`), or a user error naming the root."""
    kind, adapter_id = _split(adapter)
    folder = _root(root) / kind / adapter_id
    if not (folder / "metadata.json").is_file():
        raise RMNError(f"no adapter {adapter} under {_root(root)}")
    return folder


def _render_list(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        if "invalid" in r:
            lines.append(f"{r['adapter']:<20} INVALID: {r['invalid']}")
            continue
        parts = []
        for v in r["versions"]:
            score = ", ".join(f"{k} {s:.3f}" for k, s in v["held_out"].items() if s is not None)
            if v.get("refused") and v["refused"]["score"] is not None:
                g = v["refused"]
                score = (f"{score}; " if score else "") + (
                    f"refused: {g['metric']} {g['score']:.3f} vs {g['current']} "
                    f"{g['current_score']:.3f}")  # fmt: skip
            if v.get("as_served") and v["as_served"]["score"] is not None:
                g = v["as_served"]
                score = (f"{score}; " if score else "") + (
                    f"as served: {g['metric']} {g['score']:.3f} on {g['items']} {g['unit']}")
            parts.append(f"{v['version']} {v['status']}" + (f" ({score})" if score else ""))
        note = ""
        if r.get("stacked_on") and not r["stacked_on"]["as_trained"]:
            note = f"  [trained on another {r['stacked_on']['adapter']} than the current one]"
        lines.append(f"{r['adapter']:<20} current {r['current']}: {'; '.join(parts)}{note}")
    return "\n".join(lines)


@app.command("list")
def list_cmd(root: RootOption = None, json: bool = JsonOption) -> None:
    """Each adapter: its current version, every version with its held-out score."""
    with user_errors(json):
        emit(list_adapters(_root(root)), json, _render_list)


def _render_gate(r: dict[str, Any]) -> str:
    cur, cand = r["current"], r["candidate"]
    cur_score = "n/a" if cur["score"] is None else f"{cur['score']:.3f}"
    return (
        f"{r['adapter']}: {cand['version']} {r['primary_metric']} {cand['score']:.3f} vs current "
        f"{cur['version']} {cur_score}"
        + (f" (served as {cur['served_as']})" if cur.get("served_as") else "")
        + f" on {r['items']} {r.get('unit', 'held-out items')} -> "
        f"{'promoted' if r.get('promoted') else 'not promoted'}"
    )


@app.command("promote")
def promote_cmd(
    adapter: AdapterArg,
    version: Annotated[
        str | None, typer.Option("--version", help="The candidate (default: the newest).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Held-out items scored.")] = 30,
    served: Annotated[
        bool | None,
        typer.Option(
            "--served/--free",
            help="Score both versions as the product serves them (the creative tool's copy of "
            "the brand's held-out products; the default for brand adapters) or on the "
            "free-decoding held-out eval (the default for the others).",
        ),
    ] = None,
    root: RootOption = None,
    json: bool = JsonOption,
) -> None:
    """Make a candidate version current if it beats the current one on the held-out eval
    (both scores are printed, and recorded); otherwise refuse (exit 2). Brand adapters are
    scored as served."""
    with user_errors(json):
        from adapters.training.gate import GateRefusedError, run_gate

        kind, adapter_id = _split(adapter)
        try:
            result = run_gate(
                kind, adapter_id, version, limit=limit, root=_root(root),
                progress=progress_enabled(), served=served,
            )  # fmt: skip
        except GateRefusedError as err:
            if not json:
                typer.echo(_render_gate(err.detail["gate"]), err=True)
            raise
        emit(result, json, _render_gate)


@app.command("rollback")
def rollback_cmd(adapter: AdapterArg, root: RootOption = None, json: bool = JsonOption) -> None:
    """Make the version the current one replaced current again."""
    with user_errors(json):
        from adapters.versions import rollback

        folder = _installed(adapter, root)
        manifest = rollback(folder)
        last = manifest.history[-1]
        emit(
            {"adapter": adapter, "current": manifest.current, "from": last.from_version},
            json,
            lambda r: f"{r['adapter']}: {r['from']} -> {r['current']} (rolled back)",
        )


@app.command("prune")
def prune_cmd(adapter: AdapterArg, root: RootOption = None, json: bool = JsonOption) -> None:
    """Delete the files of every version but the current one and the one a rollback restores."""
    with user_errors(json):
        from adapters.versions import current_version, prune

        folder = _installed(adapter, root)
        pruned = prune(folder)
        emit(
            {"adapter": adapter, "current": current_version(folder), "pruned": pruned},
            json,
            lambda r: f"{r['adapter']}: pruned {', '.join(r['pruned']) or 'nothing'}",
        )


def _render_export(r: dict[str, Any]) -> str:
    return (
        f"{r['name']}: {' + '.join(r['adapters'])} composed (cat, rank {r['rank']})\n"
        f"  PEFT (vLLM --lora-modules {r['name']}={r['peft_dir']})\n"
        f"  GGUF {r['gguf']} ({r['tensors']} tensors)\n"
        f"  llama.cpp server config: {r['server_config']}\n"
        f"  serve: python -m llama_cpp.server --config_file {r['server_config']}\n"
        "  then: RMN_LLM_ENDPOINT=http://127.0.0.1:8080/v1 rmn ..."
    )


@app.command("export-gguf")
def export_gguf_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder for the exports.")],
    retailer: Annotated[str | None, typer.Option("--retailer", help="Retailer adapter id.")] = None,
    brand: Annotated[str | None, typer.Option("--brand", help="Brand adapter id.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Task adapter id.")] = None,
    base_f32: Annotated[
        bool,
        typer.Option(
            "--base-f32",
            help="Also write the base as float32 GGUF (540 MB): llama.cpp then computes with "
            "the in-process model's exact weights (the shipped Q4_1 file is 98 MB).",
        ),
    ] = False,
    root: RootOption = None,
    json: bool = JsonOption,
) -> None:
    """Compose a retailer+brand+task set into ONE LoRA (PEFT `cat`) and export it for a serving
    endpoint: a PEFT folder (vLLM) and a GGUF adapter (llama.cpp), named per set
    (`alpha+acme+creative`), plus a llama.cpp server config listing every export in --out."""
    with user_errors(json):
        from adapters.endpoint_export import export_set
        from adapters.registry import AdapterRegistry, AdapterSet

        adapters = AdapterSet(retailer=retailer, brand=brand, task=task)
        result = export_set(adapters, out, AdapterRegistry(_root(root)), base_f32=base_f32)
        emit(result.to_dict(), json, _render_export)
