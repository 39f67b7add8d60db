"""`rmn plan`, `rmn resume`, `rmn threads`, `rmn show`: the planning graph from a terminal.

A plan runs until the graph asks a human (confirm a doubtful brief, relax an infeasible one,
approve the plan). In a terminal the question is asked there; `--approve` answers it for
scripts; otherwise the thread waits in the checkpoint store and `rmn resume` answers later.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError

BrandOption = typer.Option("acme", "--brand", help="The brand (tenant) the plan is for.")
ModelOption = typer.Option(
    "smollm2",
    "--model",
    help="smollm2: the bundled model and adapters; tiny: a tiny random model (tests); "
    "none: no model (template copy and words).",
)
DataOption = typer.Option(
    None, "--data-dir", help="Market data, checkpoints, reports (default: RMN_DATA_DIR or data/)."
)
EditOption = typer.Option(
    [], "--edit", help="key=value to change and re-plan (repeatable), e.g. roas_floor=2.5"
)
# Review fields whose value is a list when given as `a,b,c`.
LIST_FIELDS = {"excluded_skus", "retailers"}


class ResumeArgsError(RMNError):
    kind = "bad_resume_arguments"


def parse_edits(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs as a changes object: values are JSON when they parse (numbers, lists,
    objects), `a.b=v` nests, and list fields take comma-separated values."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ResumeArgsError(f"--edit takes key=value, e.g. roas_floor=2.5; got {pair!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw.strip()
        head, _, tail = key.partition(".")
        if head in LIST_FIELDS and isinstance(value, str | int):
            value = [v.strip() for v in str(value).split(",") if v.strip()]
        if tail:
            changes.setdefault(head, {})
            if not isinstance(changes[head], dict):
                raise ResumeArgsError(f"--edit {head} given both as a value and as {key}")
            changes[head][tail] = value
        else:
            changes[head] = value
    return changes


def review_payload(approve: bool, reject: str | None, edit: list[str]) -> dict[str, Any]:
    chosen = [name for name, on in (("--approve", approve), ("--reject", reject), ("--edit", edit))
              if on]  # fmt: skip
    if len(chosen) != 1:
        raise ResumeArgsError("give exactly one of --approve, --reject REASON or --edit key=value")
    if approve:
        return {"action": "approve"}
    if reject is not None:
        return {"action": "reject", "reason": reject}
    return {"action": "edit", "changes": parse_edits(edit)}


class Session:
    """One tenant's view of the graph with its durable checkpoints."""

    def __init__(self, brand: str, model: str, data_dir: Path | None) -> None:
        from graph import Context, build_graph

        self.context = Context(
            tenant=brand, model=model, data_dir=str(data_dir) if data_dir else None
        )
        self.app = build_graph(data_dir=data_dir)

    def config(self, thread_id: str) -> dict[str, Any]:
        from graph import run_config

        return run_config(thread_id, tenant=self.context.tenant)

    def run(self, value: Any, thread_id: str, quiet: bool) -> dict[str, Any]:
        """Stream the graph until it ends or asks; node progress goes to stderr."""
        for mode, chunk in self.app.stream(
            value,
            self.config(thread_id),
            context=self.context,
            stream_mode=["updates", "custom"],
        ):
            if quiet:
                continue
            if mode == "custom" and isinstance(chunk, dict):
                typer.echo(f"  {chunk.get('node', '')}: {chunk.get('message', '')}", err=True)
            elif mode == "updates" and isinstance(chunk, dict):
                for node, update in chunk.items():
                    if node == "__interrupt__":
                        continue
                    seconds = (update or {}).get("timings", {}).get(node)
                    took = f" ({seconds:.1f} s)" if seconds is not None else ""
                    typer.echo(f"✓ {node}{took}", err=True)
        return self.state(thread_id)

    def state(self, thread_id: str) -> dict[str, Any]:
        from graph import thread_status

        snapshot = self.app.get_state(self.config(thread_id))
        values = dict(snapshot.values) if isinstance(snapshot.values, dict) else {}
        if not values:
            raise RMNError(f"no thread {thread_id!r} in this data directory", thread=thread_id)
        owner = values.get("tenant")
        if owner is not None and owner != self.context.tenant:
            raise RMNError(
                f"thread {thread_id!r} belongs to another tenant",
                thread=thread_id,
            )
        asking = [i.value for i in snapshot.interrupts]
        return {
            "thread_id": thread_id,
            "status": thread_status(snapshot),
            "question": asking[0] if asking else None,
            "values": values,
        }


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


def render_question(q: dict[str, Any]) -> str:
    kind = q.get("kind")
    lines: list[str] = []
    if q.get("error"):
        lines.append(f"! {q['error']}")
    if kind == "approval":
        alloc = q.get("allocation") or {}
        lines.append(f"Plan for review ({alloc.get('lines', 0)} line items):")
        for name, spend in (alloc.get("by_retailer") or {}).items():
            lines.append(f"  {name:<10}{_money(spend):>14}")
        out = q.get("expected_outcome") or {}
        for key in ("incremental_margin", "incremental_revenue", "iroas"):
            iv = out.get(key)
            if iv:
                fmt = "{:.2f}" if key == "iroas" else "${:,.0f}"
                lines.append(
                    f"  {key}: {fmt.format(iv['mean'])} "
                    f"[{fmt.format(iv['low'])}, {fmt.format(iv['high'])}]"
                )
        exp = q.get("experiment")
        if exp:
            lines.append(
                f"  experiment: {exp.get('experiment_type')} at {exp.get('retailer')}, "
                f"{exp.get('duration_days')} days, power {exp.get('power')}"
            )
        for c in q.get("copy") or []:
            lines.append(f"  copy [{c['retailer_id']}] {c['headline']} | {c['body']}")
        conf = q.get("confidence")
        if conf:
            lines.append(f"  confidence {conf['value']:.2f}: {conf['rationale']}")
        for flag in q.get("flags") or []:
            lines.append(f"  flag: {flag}")
    elif kind == "confirm_brief":
        lines.append("The brief needs confirmation:")
        lines.append(json.dumps(q.get("brief") or q, indent=2, default=str))
    elif kind == "infeasible":
        diag = q.get("diagnosis") or {}
        lines.append(f"The brief cannot be met: {diag.get('message', '')}")
        for s in diag.get("suggestions") or []:
            lines.append(f"  - {s}")
    else:
        lines.append(json.dumps(q, indent=2, default=str))
    return "\n".join(lines)


def render_result(r: dict[str, Any]) -> str:
    if r.get("question"):
        return (
            f"{render_question(r['question'])}\n\nthread {r['thread_id']} is waiting "
            f"({r['status']}); answer with: rmn resume {r['thread_id']} --approve | "
            "--edit key=value | --reject REASON"
        )
    plan = r.get("plan") or {}
    lines = [f"thread {r['thread_id']}: {r['status']}"]
    if r.get("error"):
        lines.append(f"error: {r['error'].get('message')}")
    decision = plan.get("decision")
    if decision:
        lines.append(f"decision: {decision['action']} {decision.get('reason') or ''}".rstrip())
    if r.get("report"):
        lines.append(f"report: {r['report'].get('markdown')}")
    return "\n".join(lines)


def result(state: dict[str, Any]) -> dict[str, Any]:
    values = state["values"]
    return {
        "thread_id": state["thread_id"],
        "status": state["status"],
        "question": state["question"],
        "error": values.get("error"),
        "report": values.get("report"),
        "timings": values.get("timings"),
        "plan": values.get("plan"),
    }


def ask(question: dict[str, Any]) -> dict[str, Any]:
    """The reviewer's answer, asked in the terminal."""
    typer.echo(render_question(question), err=True)
    allowed = list((question.get("actions") or {"approve": 1, "edit": 1, "reject": 1}).keys())
    while True:
        choice = typer.prompt(f"{' / '.join(allowed)}", err=True).strip().lower()
        match = [a for a in allowed if a.startswith(choice)] if choice else []
        if len(match) == 1:
            break
    if match[0] == "approve":
        return {"action": "approve"}
    if match[0] == "reject":
        return {"action": "reject", "reason": typer.prompt("reason", err=True)}
    pairs = typer.prompt("changes (key=value, space-separated)", err=True).split()
    return {"action": "edit", "changes": parse_edits(pairs)}


def drive(session: Session, state: dict[str, Any], approve: bool, quiet: bool) -> dict[str, Any]:
    """Answer questions until the plan ends: `--approve` approves what can be approved, a
    terminal asks the person, anything else leaves the thread waiting."""
    from langgraph.types import Command

    answered: set[str] = set()
    while state["question"] is not None:
        q = state["question"]
        kind = q.get("kind", "")
        if approve and "approve" in (q.get("actions") or {"approve": 1}) and kind not in answered:
            answer: dict[str, Any] = {"action": "approve"}
            answered.add(kind)
        elif not approve and sys.stdin.isatty() and sys.stderr.isatty():
            answer = ask(q)
        else:
            return state
        state = session.run(Command(resume=answer), state["thread_id"], quiet)
    return state


def plan(
    brief: str = typer.Argument(..., help="The brief in plain words."),
    brand: str = BrandOption,
    approve: bool = typer.Option(False, "--approve", help="Approve without asking (scripts)."),
    thread: str | None = typer.Option(None, "--thread", help="Thread id (default: a new one)."),
    model: str = ModelOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Plan a brief: stream the graph's progress, answer its questions, print the plan."""
    with user_errors(json_out):
        session = Session(brand, model, data_dir)
        thread_id = thread or f"plan-{uuid.uuid4().hex[:12]}"
        state = session.run({"brief": brief, "brand_id": brand}, thread_id, json_out)
        state = drive(session, state, approve, json_out)
        emit(result(state), json_out, render_result)


def resume(
    thread_id: str = typer.Argument(..., help="The waiting thread."),
    approve: bool = typer.Option(False, "--approve", help="Approve the plan or the brief."),
    reject: str | None = typer.Option(None, "--reject", help="Reject, with this reason."),
    edit: list[str] = EditOption,
    brand: str = BrandOption,
    model: str = ModelOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Answer a waiting thread's question and run it on."""
    from langgraph.types import Command

    with user_errors(json_out):
        payload = review_payload(approve, reject, edit)
        session = Session(brand, model, data_dir)
        state = session.state(thread_id)
        if state["question"] is None and state["status"] != "resumable":
            raise RMNError(
                f"thread {thread_id} is not waiting for an answer (status {state['status']})",
                thread=thread_id,
            )
        value: Any = None if state["status"] == "resumable" else Command(resume=payload)
        state = session.run(value, thread_id, json_out)
        emit(result(state), json_out, render_result)


def threads(
    brand: str | None = typer.Option(None, "--brand", help="Only this tenant's threads."),
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """List planning threads with their status."""
    from graph import build_graph, thread_summaries

    with user_errors(json_out):
        rows = thread_summaries(build_graph(data_dir=data_dir), tenant=brand)

        def human(rows: list[dict[str, Any]]) -> str:
            if not rows:
                return "no threads"
            return "\n".join(
                f"{r['thread_id']:<20}{r['tenant'] or '-':<10}{r['status']:<28}"
                f"{_money(r.get('total_budget')):>14}  {(r.get('brief') or '')[:50]}"
                for r in rows
            )

        emit(rows, json_out, human)


def show(
    thread_id: str = typer.Argument(..., help="The thread."),
    brand: str = BrandOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Print a thread's plan (or the question it waits on)."""
    with user_errors(json_out):
        session = Session(brand, "none", data_dir)
        emit(result(session.state(thread_id)), json_out, render_result)
