"""The review pages (`/review`): sign in with an API key, the tenant's pending questions, a
page per plan (charts, the report before deciding, the corpus sections its copy was checked
against), and approve / edit / reject from forms.

A decision from a form is a resume run made exactly as `POST /threads/{id}/runs/wait` makes
it (`GraphServer.new_run` and `admit`): the same schema check, the same roles and separation
of duties, the same stale-decision 409, the same re-asked question when an edit's values do
not apply. Every page is the signed-in tenant's only: another tenant's thread answers as an
unknown one (404)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from graph.serving.errors import InvalidRequestError, NotFoundError, status_of
from graph.serving.policy import ALLOWED
from graph.serving.routes.feedback import feedback_store, rate, thread_ratings
from graph.serving.runs import GraphServer
from graph.serving.schemas import CommandBody, RunCreate, ThreadSearch, problems
from graph.serving.web.corpus import policy_page
from graph.serving.web.session import COOKIE, Session, Sessions
from graph.serving.web.view import PlanView, known_product_names, plan_view, retailer_name
from tools.brief.schema import StructuredBrief
from tools.catalog import catalog_root
from tools.errors import RMNError
from tools.paths import data_dir as default_data_dir
from tools.paths import use_catalog
from tools.pipeline.curves import CurveSummary
from tools.plan import Decision, Plan
from tools.plan.charts import allocation_chart, curves_chart
from tools.plan.feedback import FeedbackIn, FeedbackRecord, feedback_stats
from tools.plan.labels import change_words
from tools.plan.questions import question_of, usd
from tools.plan.report_markdown import render_markdown
from tools.plan.whatif import parse_budgets, what_if

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(prefix="/review", include_in_schema=False)

__all__ = ["TEMPLATES", "router"]


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.review_sessions
    return sessions


def _host(request: Request) -> str | None:
    return request.client.host if request.client else None


def session_of(request: Request) -> Session:
    found = sessions_of(request).lookup(request.cookies.get(COOKIE), _host(request))
    if found is None:
        raise SignInRequired
    return found


Signed = Annotated[Session, Depends(session_of)]


def _server(request: Request) -> GraphServer:
    server: GraphServer = request.app.state.server
    return server


def data_dir_of(server: GraphServer) -> Path:
    given = server.settings.server_context.get("data_dir")
    return Path(given) if given else default_data_dir()


def page(request: Request, name: str, session: Session | None, status: int = 200,
         **values: Any) -> HTMLResponse:  # fmt: skip
    context = {"session": session, "csrf": session.csrf if session else "", **values}
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


# --- sign in and out --------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> HTMLResponse:
    open_serving = not request.app.state.gate.keys
    return page(request, "signin.html", None, open_serving=open_serving, error=None)


@router.post("/signin")
def signin(request: Request, api_key: Annotated[str, Form()] = "") -> Response:
    try:
        cookie, _ = sessions_of(request).sign_in(_host(request), api_key.strip())
    except RMNError as err:
        return page(request, "signin.html", None, status_of(err),
                    open_serving=not request.app.state.gate.keys, error=err.message)  # fmt: skip
    out = RedirectResponse("/review", status_code=303)
    secure = request.url.scheme == "https"
    out.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", secure=secure,
                   path="/review")  # fmt: skip
    return out


@router.post("/signout")
def signout(request: Request, session: Signed, csrf: Annotated[str, Form()] = "") -> Response:
    _check_csrf(session, csrf)
    sessions_of(request).sign_out(request.cookies.get(COOKIE))
    out = RedirectResponse("/review/signin", status_code=303)
    out.delete_cookie(COOKIE, path="/review")
    return out


def _check_csrf(session: Session, token: str) -> None:
    if not session.csrf_ok(token):
        raise CsrfError("the form's security token is missing or out of date; reload the page")


class CsrfError(RMNError):
    kind = "csrf"


# --- pages ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def pending_list(request: Request, session: Signed) -> HTMLResponse:
    server = _server(request)
    threads = server.search_threads(session.caller.tenant, ThreadSearch(limit=1000))
    rows = []
    with use_catalog(catalog_root(data_dir_of(server))):
        for t in threads:
            rows.append(_list_row(t))
    waiting = [r for r in rows if r["waiting"]]
    done = [r for r in rows if not r["waiting"]]
    return page(request, "list.html", session, waiting=waiting, done=done)


def _list_row(thread: dict[str, Any]) -> dict[str, Any]:
    values = thread.get("values") or {}
    pending = [i for items in (thread.get("interrupts") or {}).values() for i in items]
    q = question_of(pending[0]["value"]) if pending else None
    brief = (q or {}).get("brief") or (values.get("plan") or {}).get("brief") or {}
    kinds = {"approval": "Approve a plan", "confirm_brief": "Confirm a brief",
             "infeasible": "Relax an infeasible brief"}  # fmt: skip
    return {
        "thread_id": thread["thread_id"],
        "waiting": q is not None,
        "question": kinds.get((q or {}).get("kind", ""), "No question"),
        "budget": usd(brief.get("total_budget")) if brief.get("total_budget") else "-",
        "retailers": ", ".join(retailer_name(r) for r in brief.get("retailers") or []) or "-",
        "status": str(values.get("status") or thread.get("status")).replace("_", " "),
        "updated": str(thread.get("updated_at") or "")[:16].replace("T", " "),
    }


def _thread(server: GraphServer, session: Session, thread_id: str) -> dict[str, Any]:
    return server.thread_json(server.own_thread(session.caller.tenant, thread_id))


def _pending(thread: dict[str, Any]) -> Any:
    items = [i for group in (thread.get("interrupts") or {}).values() for i in group]
    return items[0]["value"] if items else None


def _view(server: GraphServer, thread_id: str, thread: dict[str, Any]) -> PlanView:
    values = thread.get("values") or {}
    data_dir = data_dir_of(server)
    with use_catalog(catalog_root(data_dir)):
        names = known_product_names(data_dir, str(values.get("tenant") or ""),
                                    values.get("brand_id"))  # fmt: skip
        decisions = [_decision_line(d.get("decision") or {}, names)
                     for d in values.get("decisions") or []]  # fmt: skip
        return plan_view(thread_id, values, _pending(thread), data_dir, decisions)


def _decision_line(d: dict[str, Any], names: dict[str, str]) -> str:
    who = d.get("by") or "unknown"
    words = {"approve": "approved", "edit": "edited", "reject": "rejected",
             "auto_approve": "auto-approved"}.get(d.get("action", ""), d.get("action"))  # fmt: skip
    text = f"{str(d.get('at', ''))[:16].replace('T', ' ')}: {words} by {who}"
    if d.get("changes"):
        text += " (" + "; ".join(change_words(k, v, names) for k, v in
                                 sorted(d["changes"].items())) + ")"  # fmt: skip
    return text + (f": {d['reason']}" if d.get("reason") else "")


@router.get("/threads/{thread_id}", response_class=HTMLResponse)
def plan_page(request: Request, thread_id: str, session: Signed, rated: str = "") -> HTMLResponse:
    server = _server(request)
    view = _view(server, thread_id, _thread(server, session, thread_id))
    return _plan_page(request, session, view, rated=rated)


def _plan_page(request: Request, session: Session, view: PlanView, status: int = 200,
               problem: str | None = None, rated: str = "") -> HTMLResponse:  # fmt: skip
    ratings = thread_ratings(_server(request), session.caller.tenant, view.thread_id)
    return page(request, "plan.html", session, status, view=view, may=_may(session),
                problem=problem, ratings=[rating_row(r) for r in ratings],
                rated=rated[:40])  # fmt: skip


def _may(session: Session) -> dict[str, bool]:
    role = session.caller.role
    return {"approve": role in ALLOWED["approve"], "answer": role in ALLOWED["answer"]}


@router.get("/threads/{thread_id}/charts/{name}.png")
def chart(request: Request, thread_id: str, name: str, session: Signed) -> Response:
    """A chart of the thread's plan as it stands, drawn on demand (a pending plan has no
    report folder yet)."""
    server = _server(request)
    plan = _plan(server, session, thread_id)
    with use_catalog(catalog_root(data_dir_of(server))):
        names = _plan_names(server, plan)
        data = allocation_chart(plan) if name == "allocation" else (
            curves_chart(plan, names=names) if name == "curves" else None)  # fmt: skip
    if data is None:
        raise NotFoundError(f"no chart {name} for this plan")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private"})


def _plan(server: GraphServer, session: Session, thread_id: str) -> Plan:
    return _plan_of(_thread(server, session, thread_id).get("values") or {}, thread_id)


def _plan_of(values: dict[str, Any], thread_id: str) -> Plan:
    if not values.get("plan"):
        raise NotFoundError(f"thread {thread_id} has no plan yet", thread_id=thread_id)
    return Plan.model_validate(values["plan"])


def _plan_names(server: GraphServer, plan: Plan) -> dict[str, str]:
    """The plan's products by name (the brand's products file in the server's data)."""
    return known_product_names(data_dir_of(server), plan.tenant, plan.brief.brand_id)


@router.get("/threads/{thread_id}/report.md")
def report(request: Request, thread_id: str, session: Signed) -> Response:
    """The Markdown report of the plan as it stands: pending plans too, before deciding."""
    server = _server(request)
    values = _thread(server, session, thread_id).get("values") or {}
    plan = _plan_of(values, thread_id)
    # Every decision so far (edits included), as the final report lists them.
    history = [Decision.model_validate(d["decision"])
               for d in values.get("decisions") or [] if d.get("decision")]  # fmt: skip
    with use_catalog(catalog_root(data_dir_of(server))):
        text = render_markdown(plan, [], history or None, _plan_names(server, plan))
    name = f"plan-{thread_id[:8]}.md"
    return Response(text, media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/policy/{kind}/{owner}/{doc}", response_class=HTMLResponse)
def policy(request: Request, kind: str, owner: str, doc: str, session: Signed) -> HTMLResponse:
    with use_catalog(catalog_root(data_dir_of(_server(request)))):
        sections = policy_page(kind, owner, doc, session.caller.tenant)
    return page(request, "policy.html", session, doc=sections)


# --- decisions --------------------------------------------------------------------------------

EDIT_NUMBERS = ("total_budget", "roas_floor", "experiment_reserve")
EDIT_DATES = ("flight_start", "flight_end")


def _number(name: str, raw: str) -> Any:
    """A form's number as the API would get it in JSON: a finite float, else the text as
    typed (the same schema check refuses it with the same words); NaN and infinities are
    refused as the API refuses them in a body."""
    try:
        value = float(raw)
    except ValueError:
        return raw
    if not math.isfinite(value):
        raise InvalidRequestError(
            "request body has a non-finite number (NaN, Infinity or beyond a float); "
            "send finite numbers only",
            field=name,
        )
    return value


async def _changes(request: Request, view: PlanView) -> dict[str, Any]:
    """What the edit form changed, against the plan's values as shown."""
    form = await request.form()
    changes: dict[str, Any] = {}
    for name in (*EDIT_NUMBERS, *EDIT_DATES):
        raw = str(form.get(name) or "").strip()
        if raw == view.form.get(name, ""):
            continue
        if not raw:
            changes[name] = None  # cleared: lifts an optional limit
        else:
            changes[name] = _number(name, raw) if name in EDIT_NUMBERS else raw
    for key, prefix in (("retailer_caps", "cap"), ("retailer_mins", "min")):
        limits: dict[str, Any] = {}
        for rid in view.retailer_ids:
            raw = str(form.get(f"{prefix}_{rid}") or "").strip()
            if raw != view.form.get(f"{prefix}_{rid}", ""):
                limits[rid] = _number(f"{prefix}_{rid}", raw) if raw else None
        if limits:
            changes[key] = limits
    split = {rid: str(form.get(f"split_{rid}") or "").strip() for rid in view.retailer_ids}
    if any(raw != view.form.get(f"split_{rid}", "") for rid, raw in split.items()):
        # the brief's split as the form now gives it; every amount cleared drops it
        changes["retailer_split"] = {rid: _number(f"split_{rid}", raw)
                                     for rid, raw in split.items() if raw} or None  # fmt: skip
    excluded = sorted(str(g) for g in form.getlist("excluded_skus"))
    if excluded != sorted(view.excluded):
        changes["excluded_skus"] = excluded
    return changes


@router.post("/threads/{thread_id}/decide", response_class=HTMLResponse)
async def decide(request: Request, thread_id: str, session: Signed) -> Response:
    """Approve, edit or reject from the plan page, through the API's own resume path."""
    server = _server(request)
    form = await request.form()
    try:
        _check_csrf(session, str(form.get("csrf") or ""))
        thread = await run_in_threadpool(_thread, server, session, thread_id)
        view = await run_in_threadpool(_view, server, thread_id, thread)
        answer = await _answer(request, str(form.get("action") or ""), view)
        why = _why(answer, str(form.get("edit_reason") or ""))
        await _resume(server, session, thread_id, answer)
        if why is not None:  # the plan as it was shown is what the reason is about
            await run_in_threadpool(rate, server, session.caller, thread_id, why,
                                    thread.get("values") or {})  # fmt: skip
    except RMNError as err:
        return await _plan_with_problem(request, session, thread_id, err)
    return RedirectResponse(f"/review/threads/{thread_id}", status_code=303)


async def _plan_with_problem(request: Request, session: Session, thread_id: str,
                             err: RMNError) -> HTMLResponse:  # fmt: skip
    """The plan page again, with what went wrong said at its top (an unknown thread stays a
    404 page)."""
    if isinstance(err, NotFoundError):
        raise err
    server = _server(request)
    thread = await run_in_threadpool(_thread, server, session, thread_id)
    view = await run_in_threadpool(_view, server, thread_id, thread)
    return await run_in_threadpool(_plan_page, request, session, view, status_of(err),
                                   err.message)  # fmt: skip


def _why(answer: dict[str, Any], edit_reason: str) -> FeedbackIn | None:
    """The reviewer's reason for an edit or a rejection, kept as feedback on the plan."""
    action = answer.get("action")
    reason = (answer.get("reason") if action == "reject" else edit_reason) or ""
    if action not in ("edit", "reject") or not reason.strip():
        return None
    decision = "edited" if action == "edit" else "rejected"
    return FeedbackIn(target="plan", decision=decision, reason=reason.strip()[:4000])


async def _answer(request: Request, action: str, view: PlanView) -> dict[str, Any]:
    form = await request.form()
    answer: dict[str, Any] = {"action": action}
    if view.plan_version:
        answer["plan_version"] = str(form.get("plan_version") or view.plan_version)
    if action == "edit":
        answer["changes"] = await _changes(request, view)
    elif action == "reject":
        answer["reason"] = str(form.get("reason") or "").strip() or None
    return answer


async def _resume(server: GraphServer, session: Session, thread_id: str,
                  answer: dict[str, Any]) -> None:  # fmt: skip
    """The run `POST /threads/{id}/runs/wait` with `command.resume` would make, waited on."""
    body = RunCreate(assistant_id=server.settings.graph_id, command=CommandBody(resume=answer))
    loop = asyncio.get_running_loop()
    run = await run_in_threadpool(server.new_run, session.caller, thread_id, body, loop)
    await run_in_threadpool(server.admit, run)
    await run.done.wait()
    result = run.result or {}
    error = result.get("__error__") if isinstance(result, dict) else None
    if run.status == "error" and error:
        raise RunFailedError(str(error.get("message") or "the run failed"))


class RunFailedError(RMNError):
    kind = "run_failed"


# --- ratings ----------------------------------------------------------------------------------


@router.post("/threads/{thread_id}/feedback", response_class=HTMLResponse)
async def feedback(request: Request, thread_id: str, session: Signed) -> Response:
    """Rate a copy variant or a rationale text from the plan page (`POST
    /threads/{id}/feedback`'s `rate`, with the same checks)."""
    server = _server(request)
    form = await request.form()
    try:
        _check_csrf(session, str(form.get("csrf") or ""))
        body = _rating(form)
        record = await run_in_threadpool(rate, server, session.caller, thread_id, body)
    except RMNError as err:
        return await _plan_with_problem(request, session, thread_id, err)
    anchor = record.item.replace(" ", "-")
    return RedirectResponse(f"/review/threads/{thread_id}?rated={anchor}#rate-{anchor}",
                            status_code=303)  # fmt: skip


def _rating(form: Any) -> FeedbackIn:
    """A rating form as `FeedbackIn` (422 in the API's words when it is incomplete)."""
    fields = {k: str(form.get(k) or "").strip() or None
              for k in ("target", "index", "kind", "thumbs", "score", "corrected")}  # fmt: skip
    try:
        return FeedbackIn.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as err:
        raise InvalidRequestError(f"invalid rating: {problems(err.errors())}") from None


def rating_row(r: FeedbackRecord) -> dict[str, str]:
    """One rating as the pages list it."""
    thumbs = {"up": "good", "down": "not good"}.get(r.thumbs or "", "")
    parts = [p for p in (thumbs, f"{r.score}/5" if r.score else "",
                         "corrected" if r.corrected else "",
                         f"{r.decision}: {r.reason}" if r.decision else "") if p]  # fmt: skip
    return {"item": r.item, "retailer": retailer_name(r.retailer) if r.retailer else "",
            "rating": ", ".join(parts), "reviewer": r.reviewer,
            "at": r.at.strftime("%Y-%m-%d %H:%M"), "thread_id": r.thread_id}  # fmt: skip


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(request: Request, session: Signed) -> HTMLResponse:
    """The tenant's ratings at a glance: counts, agreement, the worst-rated retailers and
    tasks, and the latest ratings."""
    rows = feedback_store(_server(request)).list(session.caller.tenant)
    stats = feedback_stats(rows)
    worst = [b.model_copy(update={"name": retailer_name(b.name)}) for b in stats.worst_retailers]
    return page(request, "feedback.html", session, stats=stats, worst_retailers=worst,
                latest=[rating_row(r) for r in reversed(rows[-50:])])  # fmt: skip



# --- what-if ----------------------------------------------------------------------------------


@router.get("/threads/{thread_id}/whatif", response_class=HTMLResponse)
def whatif_page(request: Request, thread_id: str, session: Signed, budgets: str = "") -> Response:
    """The plan re-solved at other budgets on its own curves (`tools.plan.whatif`)."""
    server = _server(request)
    values = _thread(server, session, thread_id).get("values") or {}
    if not values.get("curves") or not values.get("parsed"):
        raise NotFoundError(f"thread {thread_id} has no fitted curves yet", thread_id=thread_id)
    brief = StructuredBrief.model_validate(values["parsed"])
    given = budgets.strip() or _default_budgets(brief.total_budget)
    sweep, problem = None, None
    data = data_dir_of(server)
    with use_catalog(catalog_root(data)):
        try:
            amounts = parse_budgets(given)
            curves = CurveSummary.model_validate(values["curves"]).located(data)
            sweep = what_if(curves, brief, values.get("constraints") or {}, amounts)
        except RMNError as err:
            problem = err.message
    return page(request, "whatif.html", session, 200 if sweep else 422, thread_id=thread_id,
                budgets=given, sweep=sweep, problem=problem, usd=usd,
                current=brief.total_budget)  # fmt: skip


def _default_budgets(budget: float) -> str:
    return ",".join(f"{budget * f / 1e3:.0f}k" for f in (0.5, 0.8, 1.0, 1.2, 1.5))
