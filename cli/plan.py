"""`rmn plan`, `rmn resume`, `rmn threads`, `rmn show`: the planning graph from a terminal.

A plan runs until the graph asks a human (confirm a doubtful brief, relax an infeasible one,
approve the plan). In a terminal the question is asked there; `--approve` answers it for
scripts; otherwise the thread waits in the checkpoint store and `rmn resume` answers later.
A brief that cannot be planned (empty, no budget or a negative one, an unknown retailer) is
refused before a thread is made: status 2 and a one-line error, like every other command.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import typer

from cli.catalog import data_dir_catalog
from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError
from tools.plan.approval import script_actor, terminal_actor
from tools.plan.questions import allowed_decisions, describe, description_of, question_of
from tools.plan.review import ReviewError, check_version

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
VersionOption = typer.Option(
    None,
    "--plan-version",
    help="The plan_version of the question you answer (rmn show prints it): refused if the "
    "question has changed since.",
)
# The option that gives each decision, for hints.
DECISION_OPTIONS = {"approve": "--approve", "edit": "--edit key=value", "reject": "--reject REASON"}
# Review fields whose value is a list when given as `a,b,c`.
LIST_FIELDS = {"excluded_skus", "retailers"}


class ResumeArgsError(RMNError):
    kind = "bad_resume_arguments"


class PlanFailedError(RMNError):
    """A thread that ended `failed`: the error a step recorded in it, raised again so the
    command exits 2 with its one-line message (the JSON error with `--json`)."""

    kind = "plan_failed"

    def __init__(self, error: dict[str, Any], thread_id: str) -> None:
        detail = {k: v for k, v in error.items() if k not in ("type", "message")}
        super().__init__(str(error.get("message") or "the plan failed"), **detail)
        self.kind = str(error.get("type") or "plan_failed")
        self.detail["thread_id"] = thread_id


def raise_if_failed(state: dict[str, Any]) -> None:
    """Bad input ends a thread `failed` (an unknown retailer, a brief without a budget, ...):
    the command then fails the way every `rmn` command does on bad input."""
    if state["status"] == "failed":
        raise PlanFailedError(state["values"].get("error") or {}, state["thread_id"])


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


def review_payload(
    approve: bool, reject: str | None, edit: list[str], plan_version: str | None = None
) -> dict[str, Any]:
    chosen = [name for name, on in (("--approve", approve), ("--reject", reject), ("--edit", edit))
              if on]  # fmt: skip
    if len(chosen) != 1:
        raise ResumeArgsError("give exactly one of --approve, --reject REASON or --edit key=value")
    version = {"plan_version": plan_version} if plan_version else {}
    if approve:
        return {"action": "approve", **version}
    if reject is not None:
        return {"action": "reject", "reason": reject, **version}
    return {"action": "edit", "changes": parse_edits(edit), **version}


def check_answer(question: dict[str, Any], payload: dict[str, Any]) -> None:
    """Refuse, before anything runs, an answer the pending question cannot take: one naming
    another plan version (stale), or a decision it does not offer."""
    check_version(payload.get("plan_version"), question)
    allowed = question.get("allowed_decisions") or []
    if payload["action"] not in allowed:
        raise ReviewError(
            f"'{payload['action']}' is not possible for the {question.get('kind')} question; "
            f"answer with {hint(allowed)}",
            allowed=allowed,
        )


def hint(allowed: list[str]) -> str:
    """The options that give the decisions a question allows, and why approve is missing."""
    options = " | ".join(DECISION_OPTIONS[d] for d in allowed if d in DECISION_OPTIONS)
    if "approve" not in allowed:
        options += " (approving is not possible: no plan meets the brief as written)"
    return options


class Session:
    """One tenant's view of the graph with its durable checkpoints."""

    def __init__(self, brand: str, model: str, data_dir: Path | None) -> None:
        from graph import Context, build_graph

        self.context = Context(
            tenant=brand, model=model, data_dir=str(data_dir) if data_dir else None
        )
        self.app = build_graph(data_dir=data_dir)

    def answered_by(self, actor: str) -> None:
        """Who gives the next answer: recorded as `by` on the decision (never "human")."""
        self.context = dataclasses.replace(self.context, actor=actor)

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
        asking = [question_view(i.value, i.id) for i in snapshot.interrupts]
        return {
            "thread_id": thread_id,
            "status": thread_status(snapshot),
            "question": asking[0] if asking else None,
            "values": values,
        }


def question_view(value: Any, interrupt_id: str) -> dict[str, Any]:
    """A pending question as commands print it: its summary (kind, plan_version, error, ...)
    with its interrupt id, the decisions it allows and its Markdown description."""
    return {
        **(question_of(value) or {}),
        "interrupt_id": interrupt_id,
        "allowed_decisions": allowed_decisions(value),
        "description": description_of(value),
    }


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


def render_question(q: dict[str, Any]) -> str:
    """A question in plain words: its description (why the last answer was not used first),
    and its version."""
    allowed = tuple(q.get("allowed_decisions") or ())
    text = q.get("description") or describe(q, allowed)
    return f"{text}\n\n(plan version {q.get('plan_version')})"


def render_result(r: dict[str, Any]) -> str:
    q = r.get("question")
    if q:
        return (
            f"{render_question(q)}\n\nthread {r['thread_id']} is waiting ({r['status']}); "
            f"answer with: rmn resume {r['thread_id']} {hint(q.get('allowed_decisions') or [])}"
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


def result(state: dict[str, Any], reports_dir: Path) -> dict[str, Any]:
    """What a command prints about a thread; the report's files as paths on this machine
    (the thread keeps them relative to the reports folder)."""
    from tools.plan.report import ReportPaths

    values = state["values"]
    report = values.get("report")
    if report:
        report = ReportPaths.model_validate(report).under(reports_dir).model_dump(mode="json")
    return {
        "thread_id": state["thread_id"],
        "status": state["status"],
        "question": state["question"],
        "error": values.get("error"),
        "report": report,
        "timings": values.get("timings"),
        "plan": values.get("plan"),
    }


def ask(question: dict[str, Any]) -> dict[str, Any]:
    """The reviewer's answer, asked in the terminal: only the decisions the question allows."""
    typer.echo(render_question(question), err=True)
    allowed = list(question.get("allowed_decisions") or ["approve", "edit", "reject"])
    if "approve" not in allowed:
        typer.echo("Approving is not possible here: no plan meets the brief as written.", err=True)
    version = {"plan_version": question["plan_version"]} if question.get("plan_version") else {}
    while True:
        choice = typer.prompt(f"{' / '.join(allowed)}", err=True).strip().lower()
        match = [a for a in allowed if a.startswith(choice)] if choice else []
        if len(match) == 1:
            break
    if match[0] == "approve":
        return {"action": "approve", **version}
    if match[0] == "reject":
        return {"action": "reject", "reason": typer.prompt("reason", err=True), **version}
    pairs = typer.prompt("changes (key=value, space-separated)", err=True).split()
    return {"action": "edit", "changes": parse_edits(pairs), **version}


def _user() -> str:
    """The OS user running the command (named on the decisions it gives)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown user"


def drive(session: Session, state: dict[str, Any], approve: bool, quiet: bool) -> dict[str, Any]:
    """Answer questions until the plan ends: `--approve` approves what can be approved, a
    terminal asks the person, anything else leaves the thread waiting."""
    from langgraph.types import Command

    answered: set[str] = set()
    while state["question"] is not None:
        q = state["question"]
        kind = q.get("kind", "")
        if approve and "approve" in (q.get("allowed_decisions") or []) and kind not in answered:
            answer: dict[str, Any] = {"action": "approve", "plan_version": q.get("plan_version")}
            answered.add(kind)
            session.answered_by(script_actor("rmn plan --approve", _user()))
        elif not approve and sys.stdin.isatty() and sys.stderr.isatty():
            answer = ask(q)
            session.answered_by(terminal_actor(_user()))
        else:
            return state
        state = session.run(Command(resume=answer), state["thread_id"], quiet)
    return state


def checked_brief(brief: str, brand: str) -> str:
    """The brief, its PII redacted, once the rules can plan it for a brand the tenant owns: a
    brief that cannot be planned (empty, no budget, a budget out of range, an unknown retailer)
    is refused here, before a thread exists, rather than left behind as a `failed` one."""
    from tools.brief import check_brief
    from tools.governance.pii import redact_pii
    from tools.policy.ownership import check_brand_access, tenant_brands

    text = redact_pii(brief) if isinstance(brief, str) else brief
    check_brief(text, check_brand_access(brand, brand, tenant_brands(brand)))
    return text


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
        # A missing data directory, or one without a catalog, is an error: never a simulation.
        with data_dir_catalog(data_dir) as folder:
            text = checked_brief(brief, brand)
            session = Session(brand, model, folder)
            thread_id = thread or f"plan-{uuid.uuid4().hex[:12]}"
            state = session.run({"brief": text, "brand_id": brand}, thread_id, json_out)
            state = drive(session, state, approve, json_out)
        raise_if_failed(state)
        emit(result(state, session.context.reports_path()), json_out, render_result)


def resume(
    thread_id: str = typer.Argument(..., help="The waiting thread."),
    approve: bool = typer.Option(False, "--approve", help="Approve the plan or the brief."),
    reject: str | None = typer.Option(None, "--reject", help="Reject, with this reason."),
    edit: list[str] = EditOption,
    plan_version: str | None = VersionOption,
    brand: str = BrandOption,
    model: str = ModelOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Answer a waiting thread's question and run it on. An answer the question cannot take
    (a stale --plan-version, a decision it does not offer, a bad edit) exits 2 and leaves the
    thread waiting at the same question."""
    from langgraph.types import Command

    with user_errors(json_out):
        payload = review_payload(approve, reject, edit, plan_version)
        session = Session(brand, model, data_dir)
        state = session.state(thread_id)
        question = state["question"]
        if question is None and state["status"] != "resumable":
            raise RMNError(
                f"thread {thread_id} is not waiting for an answer (status {state['status']})",
                thread=thread_id,
            )
        if question is not None:
            check_answer(question, payload)
        flag = {"approve": "--approve", "reject": "--reject", "edit": "--edit"}[payload["action"]]
        session.answered_by(script_actor(f"rmn resume {flag}", _user()))
        value: Any = None if question is None else Command(resume=payload)
        state = session.run(value, thread_id, json_out)
        raise_if_failed(state)
        asked = state["question"]
        if question is not None and asked is not None and asked.get("error"):
            # The graph asked the same question again: the answer could not be used.
            raise ReviewError(
                f"{asked['error']} (thread {thread_id} still waits at its "
                f"{asked.get('kind')} question)",
                thread_id=thread_id,
                question={k: asked.get(k) for k in ("kind", "plan_version", "interrupt_id")},
            )
        emit(result(state, session.context.reports_path()), json_out, render_result)


threads_app = typer.Typer(help="Planning threads: list them (default), or delete one.")


@threads_app.callback(invoke_without_command=True)
def threads(
    ctx: typer.Context,
    brand: str | None = typer.Option(None, "--brand", help="Only this tenant's threads."),
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """List planning threads with their status (`rmn threads delete THREAD` erases one)."""
    from graph import build_graph, thread_summaries

    if ctx.invoked_subcommand is not None:
        return
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


@threads_app.command("delete")
def delete_thread(
    thread_id: str = typer.Argument(..., help="The thread to erase."),
    brand: str = BrandOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Erase a thread everywhere: its checkpoints, report folder and decision records (later
    plans' memory stops citing it), and the server's rows for a thread made over HTTP."""
    from cli.serve import ensure_project_importable

    with user_errors(json_out):
        ensure_project_importable()
        from server import erase_planning_thread

        session = Session(brand, "none", data_dir)
        session.state(thread_id)  # the tenant's thread, or a one-line error
        erased = erase_planning_thread(
            session.app.checkpointer,
            thread_id,
            brand,
            data_dir=session.context.data_path(),
            reports_dir=session.context.reports_path(),
        )
        emit(
            erased,
            json_out,
            lambda r: (
                f"thread {r['thread_id']} erased: {r['checkpoints']} checkpoints, "
                f"{r['decisions']} decision records, report folder "
                f"{'removed' if r['report'] else 'none'}"
            ),
        )


def show(
    thread_id: str = typer.Argument(..., help="The thread."),
    brand: str = BrandOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Print a thread's plan (or the question it waits on)."""
    with user_errors(json_out):
        session = Session(brand, "none", data_dir)
        state = session.state(thread_id)
        emit(result(state, session.context.reports_path()), json_out, render_result)
