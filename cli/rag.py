"""`rmn rag` commands: build the policy index, ask it scoped questions, measure retrieval, and
show a retailer's or brand's rules as typed by the policy loader."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors
from tools.errors import AccessDeniedError, RMNError

if TYPE_CHECKING:
    from tools.rag import RetrievalMode

app = typer.Typer(
    help="Retailer policies and brand guides: typed rules and scoped retrieval.",
    no_args_is_help=True,
)

RetailersOption = typer.Option(
    None, "--retailer", "-r", help="Retailer(s) whose policies to search; repeat or a,b."
)
BrandsOption = typer.Option(
    None, "--brand", help="Brand guide(s) to search; only the owning tenant may."
)
DocTypesOption = typer.Option(
    None, "--doc-type", help="Only these document types (e.g. disclaimers, data_access)."
)
QuestionsOption = typer.Option(
    None,
    "--questions",
    help="JSONL question set; repeat for several (default: the bundled curated and users sets).",
)


def _split(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated lists both work: -r alpha -r beta, -r alpha,beta."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


@app.command()
def build(
    force: bool = typer.Option(False, "--force", help="Rebuild even if the corpus is unchanged."),
    json: bool = JsonOption,
) -> None:
    """Build the policy index (it also builds on first use, and again when the corpus changes)."""
    with user_errors(json):
        from tools.rag import get_index

        info = get_index(progress=progress_enabled()).ensure(force=force)
        emit(
            info.model_dump(),
            json,
            lambda i: (
                f"{'built' if i['built'] else 'up to date'}: {i['chunks']} chunks from "
                f"{i['corpus']} in {i['seconds']:.1f}s ({i['path']})"
            ),
        )


def _render_search(result: dict[str, Any]) -> str:
    lines = [f"{len(result['chunks'])} chunk(s) in {result['elapsed_ms']:.0f} ms"]
    lines += [f"note: {n}" for n in result["notes"]]
    for c in result["chunks"]:
        body = c["text"].split("\n", 1)[-1]
        lines += ["", f"{c['rank']}. [{c['score']:.3f}] {c['source']}", f"   {body}"]
    return "\n".join(lines)


@app.command()
def query(
    question: str = typer.Argument(..., help="The question, in plain words."),
    retailer: list[str] | None = RetailersOption,
    tenant: str | None = typer.Option(
        None, "--tenant", help="Who is asking; its own brand guides are searched too."
    ),
    brand: list[str] | None = BrandsOption,
    doc_type: list[str] | None = DocTypesOption,
    k: int = typer.Option(4, "--k", min=1, max=50, help="How many chunks to return."),
    json: bool = JsonOption,
) -> None:
    """Search the policy corpus within a scope; prints chunks with scores and sources. A scope
    the tenant may not search (another tenant's brand guide, an unknown retailer) exits 2."""
    with user_errors(json):
        from tools.rag import get_index

        result = get_index(progress=progress_enabled()).search(
            question,
            retailers=_split(retailer),
            tenant=tenant,
            brands=_split(brand) or None,
            doc_types=_split(doc_type) or None,
            k=k,
        )
        if result.refused:
            # A refused scope (another tenant's brand guide) is an error like any other: one
            # line, exit status 2, nothing searched.
            raise AccessDeniedError(
                "query refused: " + "; ".join(result.notes),
                tenant=tenant,
                brands=_split(brand),
            )
        emit(result.model_dump(), json, _render_search)


def _render_eval(suite: dict[str, Any]) -> str:
    lines = [f"mode {suite['mode']}"]
    for r in suite["sets"]:
        lines.append(
            f"{r['name']}: {r['questions']} questions: recall@1 {r['recall_at_1']:.3f}, "
            f"recall@3 {r['recall_at_3']:.3f}, MRR {r['mrr']:.3f}; latency p50 "
            f"{r['latency_ms_p50']:.1f} ms, p95 {r['latency_ms_p95']:.1f} ms "
            f"(embedding {r['embed_ms_p50']:.1f} ms; CPU time {r['cpu_ms_p50']:.1f} ms)"
        )
        lines += [f"  miss: {m['id']}: {m['question']}" for m in r["misses_at_3"]]
    met = "met" if suite["targets_met"] else "not met"
    lines.append(
        f"targets (recall@3 >= {suite['target_recall_at_3']}, p50 < "
        f"{suite['target_latency_ms_p50']:.0f} ms on every set): {met}"
    )
    return "\n".join(lines)


@app.command("eval")
def evaluate_command(
    questions: list[Path] | None = QuestionsOption,
    mode: str = typer.Option(
        "hybrid", "--mode", help="Retrieval to measure: hybrid (dense + BM25), dense or bm25."
    ),
    json: bool = JsonOption,
) -> None:
    """Recall@1, recall@3, MRR and warm query latency on each question set."""
    with user_errors(json):
        from tools.rag import MODES, get_index
        from tools.rag.evaluate import evaluate_sets

        if mode not in MODES:
            raise RMNError(f"unknown retrieval mode {mode!r}; known: {', '.join(MODES)}")
        suite = evaluate_sets(
            get_index(progress=progress_enabled()),
            questions or None,
            mode=cast("RetrievalMode", mode),  # checked against MODES above
        )
        emit(suite.model_dump(), json, _render_eval)


@app.command()
def policy(
    retailer: str | None = typer.Option(None, "--retailer", "-r", help="A retailer id."),
    brand: str | None = typer.Option(None, "--brand", help="A brand id (needs --tenant)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Who is asking, for brand guides."),
    json: bool = JsonOption,
) -> None:
    """Show one retailer's rules or one brand's guide, as typed from the front matter."""
    with user_errors(json):
        from tools.policy import load_brand_guide, load_retailer_policy

        if (retailer is None) == (brand is None):
            raise RMNError("give exactly one of --retailer or --brand")
        if retailer is not None:
            emit(load_retailer_policy(retailer).model_dump(mode="json"), json)
            return
        assert brand is not None
        guide = load_brand_guide(brand)
        if guide.owner_tenant != tenant:
            raise AccessDeniedError(
                f"the brand guide of {brand!r} is visible only to tenant {guide.owner_tenant!r}",
                brand=brand,
                tenant=tenant,
            )
        emit(guide.model_dump(mode="json"), json)
