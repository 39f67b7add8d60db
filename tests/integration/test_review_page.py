"""The review pages (`/review`, graph/serving/web) on the planning graph without a model:
sign-in with an API key and a signed HttpOnly SameSite=Strict session cookie, CSRF on every
form, decisions through the API's own resume path (the stale-decision 409, separation of
duties, an edit's bad value asked again with the graph's own words), another tenant's plans
unseen and untouchable (as unknown ids), `/docs` with no external URL and its assets served;
and, in a real headless Chromium (Debian's, driven by Playwright), a manager's whole pass:
sign in, open the pending plan, edit the ROAS floor, see the re-planned plan, rate a copy
variant, approve, download the report, open the feedback dashboard, with screenshots of each
page."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langgraph_sdk import get_sync_client
from serving_support import BRIEF, build_small_world, serve_process

from graph.serving.auth import KeyRing, add_key
from server import create_rmn_app, rmn_settings

PLANNER = "test-key-acme-planner-0123456789"
APPROVER = "test-key-acme-approver-0123456789"
GLOBEX = "test-key-globex-admin-0123456789"
KEYS = {PLANNER: "acme:planner", APPROVER: "acme:approver", GLOBEX: "globex"}
CHROMIUM = Path("/usr/bin/chromium")
ALERT = re.compile(r'role="alert"[^>]*>([^<]*)')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory)


@pytest.fixture(scope="module")
def app_client(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = rmn_settings(
        tmp_path_factory.mktemp("review-page"),
        server_context={"model": "none", "data_dir": str(world)},
    )
    with TestClient(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as client:
        yield client


def _plan_to_approval(client: TestClient, brief: str = BRIEF) -> str:
    """A plan the planner key starts over the API, at its approval question: its thread id."""
    head = {"x-api-key": PLANNER}
    tid = client.post("/threads", json={}, headers=head).json()["thread_id"]
    body: dict[str, Any] = {"assistant_id": "rmn", "input": {"brief": brief, "brand_id": None}}
    out = client.post(f"/threads/{tid}/runs/wait", json=body, headers=head).json()
    kind = out["__interrupt__"][0]["value"]["action_requests"][0]["args"]["kind"]
    if kind == "confirm_brief":
        resume = {"assistant_id": "rmn", "command": {"resume": {"action": "approve"}}}
        out = client.post(f"/threads/{tid}/runs/wait", json=resume, headers=head).json()
    assert out["__interrupt__"][0]["value"]["action_requests"][0]["args"]["kind"] == "approval"
    return tid


def _signed_in(app_client: TestClient, key: str) -> TestClient:
    client = TestClient(app_client.app)  # the app the module's client runs
    out = client.post("/review/signin", data={"api_key": key}, follow_redirects=False)
    assert out.status_code == 303, out.text
    return client


def _field(html: str, name: str) -> str:
    """An edit form input's value as the page shows it."""
    found = re.search(rf'<input[^>]* name="{name}"[^>]* value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


def _form(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def test_sign_in_sets_a_signed_strict_cookie_and_pages_need_it(app_client: TestClient) -> None:
    client = TestClient(app_client.app)
    assert client.get("/review", follow_redirects=False).headers["location"] == "/review/signin"
    wrong = client.post("/review/signin", data={"api_key": "not-a-key-0123456789"})
    assert wrong.status_code == 401 and "unknown API key" in wrong.text
    ok = client.post("/review/signin", data={"api_key": APPROVER}, follow_redirects=False)
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/review" in cookie
    # The cookie holds a signed session id, not the key.
    assert APPROVER not in cookie
    assert client.get("/review").status_code == 200
    forged = TestClient(app_client.app, cookies={"rmn_review": cookie.split(";")[0][11:] + "x"})
    assert forged.get("/review", follow_redirects=False).status_code == 303


def test_decisions_take_the_apis_path(app_client: TestClient) -> None:
    tid = _plan_to_approval(app_client)
    approver = _signed_in(app_client, APPROVER)
    page = approver.get(f"/review/threads/{tid}").text
    csrf, version = _form(page, "csrf"), _form(page, "plan_version")
    # Product names, plain words, intervals, charts, the report before deciding.
    shown = re.sub(r"<[^>]+>", " ", page)
    assert "Acme" in shown and "likely between" in shown and "00019803" not in shown
    for part in ("charts/allocation.png", "charts/curves.png", "report.md"):
        got = approver.get(f"/review/threads/{tid}/{part}")
        assert got.status_code == 200 and len(got.content) > 1000, part
    base = {"csrf": csrf, "plan_version": version}
    # No CSRF token: refused, nothing applied.
    decide = f"/review/threads/{tid}/decide"
    out = approver.post(decide, data={**base, "csrf": "x", "action": "approve"})
    assert out.status_code == 422 and "security token" in out.text
    # A decision for another plan version: the API's 409 stale_decision, in the same words.
    out = approver.post(decide, data={**base, "plan_version": "0" * 16, "action": "approve"})
    assert out.status_code == 409 and "stale decision" in ALERT.findall(out.text)[0]
    # A bad edit value: the graph asks again with its own error, the plan kept.
    form = {**base, "action": "edit", "roas_floor": "-2"}
    out = approver.post(f"/review/threads/{tid}/decide", data=form, follow_redirects=True)
    assert "roas_floor" in ALERT.findall(out.text)[0] and "awaiting approval" in out.text
    # The planner's key sees no approve button and cannot approve by posting.
    planner = _signed_in(app_client, PLANNER)
    page = planner.get(f"/review/threads/{tid}").text
    assert 'id="approve"' not in page and 'id="edit"' in page
    out = planner.post(
        f"/review/threads/{tid}/decide",
        data={"csrf": _form(page, "csrf"), "plan_version": _form(page, "plan_version"),
              "action": "approve"},
    )  # fmt: skip
    assert out.status_code == 403 and "role planner may not" in out.text
    # The approver approves: the thread ends approved, decided by that key.
    page = approver.get(f"/review/threads/{tid}").text
    out = approver.post(
        f"/review/threads/{tid}/decide",
        data={"csrf": csrf, "plan_version": _form(page, "plan_version"), "action": "approve"},
    )
    assert out.status_code == 200 and "approved by key-" in out.text
    state = app_client.get(f"/threads/{tid}/state", headers={"x-api-key": APPROVER}).json()
    assert state["values"]["status"] == "approved"


def test_the_page_shows_and_edits_the_brief_split(app_client: TestClient) -> None:
    """A brief that splits its budget by retailer: the page says the split, and its edit form
    changes it (the plan follows the new split) or clears it (the optimizer splits)."""
    tid = _plan_to_approval(app_client, "Acme: $200k on Alpha Mart and $100k on Beta Grocers, "
                                        "maximize margin, 10% for tests.")  # fmt: skip
    approver = _signed_in(app_client, APPROVER)
    page = approver.get(f"/review/threads/{tid}").text
    assert "Alpha Mart $200k, Beta Grocers $100k" in re.sub(r"<[^>]+>", " ", page)
    assert _field(page, "split_alpha") == "200000" and _field(page, "split_beta") == "100000"
    edit = {"csrf": _form(page, "csrf"), "plan_version": _form(page, "plan_version"),
            "action": "edit", "split_alpha": "150000", "split_beta": "150000"}  # fmt: skip
    # the form sends every field as shown; only the split changes
    edit |= {name: _field(page, name) for name in ("total_budget", "roas_floor",
                                                    "experiment_reserve")}  # fmt: skip
    out = approver.post(f"/review/threads/{tid}/decide", data=edit, follow_redirects=True)
    assert out.status_code == 200, out.text
    state = app_client.get(f"/threads/{tid}/state", headers={"x-api-key": APPROVER}).json()
    values = state["values"]
    assert values["parsed"]["retailer_split"] == {"alpha": 150_000, "beta": 150_000}
    spend = {r: sum(x["spend"] for x in values["plan"]["allocation"] if x["retailer_id"] == r)
             for r in ("alpha", "beta")}  # fmt: skip
    assert spend == pytest.approx({"alpha": 135_000, "beta": 135_000}, rel=1e-4)


def test_the_page_shows_and_lifts_a_minimum_at_a_retailer(app_client: TestClient) -> None:
    """A brief's JBP minimum: the page says it, and its edit form's "Minimum at" field, cleared,
    lifts it (the plan replans without it)."""
    tid = _plan_to_approval(app_client, "Acme: $600k across Alpha Mart and Beta Grocers. Per our "
                                        "JBP, at least $250k must go to Beta. Maximize margin.")
    approver = _signed_in(app_client, APPROVER)
    page = approver.get(f"/review/threads/{tid}").text
    assert "Beta Grocers at least $250k" in re.sub(r"<[^>]+>", " ", page)
    assert _field(page, "min_beta") == "250000" and _field(page, "min_alpha") == ""
    edit = {"csrf": _form(page, "csrf"), "plan_version": _form(page, "plan_version"),
            "action": "edit", "min_beta": ""}  # fmt: skip
    edit |= {name: _field(page, name) for name in ("total_budget", "roas_floor",
                                                    "experiment_reserve")}  # fmt: skip
    out = approver.post(f"/review/threads/{tid}/decide", data=edit, follow_redirects=True)
    assert out.status_code == 200, out.text
    state = app_client.get(f"/threads/{tid}/state", headers={"x-api-key": APPROVER}).json()
    assert state["values"]["constraints"]["retailer_mins"] == {}


def test_another_tenant_sees_and_touches_nothing(app_client: TestClient) -> None:
    tid = _plan_to_approval(app_client)
    globex = _signed_in(app_client, GLOBEX)
    assert tid not in globex.get("/review").text
    unknown = "00000000-0000-4000-8000-000000000000"
    page = globex.get("/review").text
    for thread in (tid, unknown):
        for part in ("", "/charts/allocation.png", "/report.md"):
            assert globex.get(f"/review/threads/{thread}{part}").status_code == 404
        out = globex.post(
            f"/review/threads/{thread}/decide",
            data={"csrf": _form(page, "csrf"), "action": "approve"},
        )
        assert out.status_code == 404
    state = app_client.get(f"/threads/{tid}/state", headers={"x-api-key": PLANNER}).json()
    assert state["values"]["status"] == "awaiting_approval"


def test_docs_are_served_offline(app_client: TestClient) -> None:
    docs = app_client.get("/docs")
    assert docs.status_code == 200
    urls = re.findall(r'(?:src|href|url)\s*[:=]\s*["\']([^"\']+)', docs.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    for url in urls:
        assert app_client.get(url).status_code == 200, url


# --- ratings on the page and the feedback dashboard --------------------------------------------


def test_reviewers_rate_copy_and_rationale_and_say_why(world: Path, tmp_path: Path) -> None:
    """Ratings from the plan page (issue #14): stored through the API's own path with the key's
    label as the reviewer, an incomplete one refused with its reason, an edit's and a
    rejection's reason kept as feedback on the plan as shown, the dashboard's figures, and
    nothing of it reachable by another tenant."""
    # Its own copy of the market: the ratings it stores stay out of the shared world's store.
    world = Path(shutil.copytree(world, tmp_path / "world"))
    keys_file = tmp_path / "keys.json"
    add_key(keys_file, "acme", PLANNER, role="planner", label="Sam, planner")
    add_key(keys_file, "acme", APPROVER, role="approver", label="Dana, brand lead")
    add_key(keys_file, "globex", GLOBEX, role="admin")
    settings = rmn_settings(tmp_path / "server",
                            server_context={"model": "none", "data_dir": str(world)})  # fmt: skip
    app = create_rmn_app(KeyRing.load(path=keys_file), settings)
    with TestClient(app) as api:
        tid = _plan_to_approval(api)
        dana = _signed_in(api, APPROVER)
        page = dana.get(f"/review/threads/{tid}").text
        assert 'id="copy-1-save"' in page and 'id="rationale-allocation-save"' in page
        assert "Dana, brand lead (key-" in page  # who is signed in, by the key's label
        csrf, url = _form(page, "csrf"), f"/review/threads/{tid}/feedback"
        # An incomplete rating or a missing token: refused with the reason, nothing stored.
        out = dana.post(url, data={"csrf": csrf, "target": "copy", "index": "0"})
        assert out.status_code == 422 and "needs thumbs" in ALERT.findall(out.text)[0]
        out = dana.post(url, data={"csrf": "x", "target": "copy", "index": "0", "thumbs": "up"})
        assert out.status_code == 422 and "security token" in out.text
        copy = {"csrf": csrf, "target": "copy", "index": "0", "thumbs": "down", "score": "2",
                "corrected": "Crunchy honey oats\nA granola bar for the walk to work."}
        out = dana.post(url, data=copy, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"].endswith("#rate-copy-1")
        shown = dana.get(out.headers["location"]).text
        assert "Your rating of copy 1 is saved" in shown
        assert re.search(r"copy 1</td><td>[^<]+</td><td>not good, 2/5, corrected</td>"
                         r"<td>Dana, brand lead \(key-", shown)  # fmt: skip
        out = dana.post(url, data={"csrf": csrf, "target": "rationale", "kind": "allocation",
                                   "thumbs": "up", "score": "4"})  # fmt: skip
        assert out.status_code == 200 and "Your rating of this explanation is saved" in out.text
        # Why the plan was edited, then rejected: kept with the plan each reason was about.
        page = dana.get(f"/review/threads/{tid}").text
        edit = {"csrf": csrf, "plan_version": _form(page, "plan_version"), "action": "edit",
                "roas_floor": "2.4", "edit_reason": "Finance wants a higher floor"}
        assert dana.post(f"/review/threads/{tid}/decide", data=edit).status_code == 200
        page = dana.get(f"/review/threads/{tid}").text
        reject = {"csrf": csrf, "plan_version": _form(page, "plan_version"), "action": "reject",
                  "reason": "Beta's share is too high this quarter"}
        assert dana.post(f"/review/threads/{tid}/decide", data=reject).status_code == 200
        rows = api.get(f"/threads/{tid}/feedback", headers={"x-api-key": APPROVER}).json()
        assert [(r["item"], r["thumbs"], r["decision"]) for r in rows] == [
            ("copy 1", "down", None), ("rationale allocation", "up", None),
            ("plan", None, "edited"), ("plan", None, "rejected")]  # fmt: skip
        assert {r["reviewer"] for r in rows} == {rows[0]["reviewer"]}
        assert rows[0]["reviewer"].startswith("Dana, brand lead (key-")
        assert rows[0]["corrected"] == (
            '{"headline": "Crunchy honey oats", "body": "A granola bar for the walk to work."}'
        )
        assert rows[2]["reason"] == "Finance wants a higher floor"
        assert f'"brief": "{BRIEF}"' in rows[2]["output"]
        # The dashboard, on the page and over the API.
        board = dana.get("/review/feedback").text
        counts = " ".join(re.sub(r"<[^>]+>", " ", board).split())
        assert "Ratings 4 (1 of copy, 1 of explanations, 2 reasons" in counts, counts
        assert "Good / not good 1 / 1" in counts and 'id="worst-tasks"' in board
        stats = api.get("/feedback/stats", headers={"x-api-key": APPROVER}).json()
        assert stats["ratings"] == 4 and stats["worst_tasks"][0]["name"] == "copy"
        # Another tenant: no ratings shown, none made on acme's plan.
        globex = _signed_in(api, GLOBEX)
        assert "No ratings yet for globex" in globex.get("/review/feedback").text
        g_csrf = _form(globex.get("/review").text, "csrf")
        out = globex.post(url, data={"csrf": g_csrf, "target": "copy", "index": "0",
                                     "thumbs": "up"})  # fmt: skip
        assert out.status_code == 404
        assert api.get("/feedback/stats", headers={"x-api-key": GLOBEX}).json()["ratings"] == 0


# --- a real browser ---------------------------------------------------------------------------


def _chromium() -> Any:
    """Playwright's sync API, or a skip with the reason."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e .)")
    return sync_playwright


LAUNCH = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.mark.slow
def test_a_manager_reviews_in_a_real_browser(world: Path, tmp_path: Path) -> None:
    sync_playwright = _chromium()
    world = Path(shutil.copytree(world, tmp_path / "world"))  # its ratings stay its own
    env = {"RMN_API_KEYS": ",".join(f"{k}:{v}" for k, v in KEYS.items())}
    args = ["--data-dir", str(world), "--model", "none", "--state-dir", str(tmp_path / "state")]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve_process(args, tmp_path / "serve.log", env) as served:
        client = get_sync_client(url=served.url, api_key=PLANNER, timeout=300)
        tid = client.threads.create()["thread_id"]
        out = client.runs.wait(tid, "rmn", input={"brief": BRIEF, "brand_id": None})
        args_ = out["__interrupt__"][0]["value"]["action_requests"][0]["args"]
        if args_["kind"] == "confirm_brief":
            client.runs.wait(tid, "rmn", command={"resume": {"action": "approve"}})
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH)
            try:
                _manager_pass(browser, served.url, tid, shots)
                _other_tenant(browser, served.url, tid)
            finally:
                browser.close()
    final = shots.glob("*.jpg")
    assert sorted(p.name for p in final) == ["1-list.jpg", "2-plan.jpg", "3-whatif.jpg",
                                             "4-replanned.jpg", "5-approved.jpg",
                                             "6-feedback.jpg"]  # fmt: skip
    keep = os.environ.get("RMN_SCREENSHOTS_DIR")
    if keep:  # the closing note's copies (docs/screenshots)
        for shot in shots.glob("*.jpg"):
            shutil.copy(shot, Path(keep) / shot.name)


def _manager_pass(browser: Any, url: str, tid: str, shots: Path) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page.goto(f"{url}/review")
    assert page.url.endswith("/review/signin")
    page.get_by_label("API key").fill(APPROVER)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Waiting for a decision").wait_for()
    _shot(page, shots / "1-list.jpg")
    page.get_by_role("link", name=re.compile(f"Review.*{tid}")).click()
    page.get_by_role("heading", name="Your decision").wait_for()
    assert page.get_by_text("likely between").first.is_visible()
    page.wait_for_load_state("load")  # the charts are drawn on demand
    assert page.locator("img[src$='allocation.png']").evaluate("i => i.naturalWidth") > 0
    _shot(page, shots / "2-plan.jpg")
    page.get_by_role("button", name="Compare budgets").click()
    page.locator("#pays-back").wait_for()
    assert page.locator("#whatif tbody tr").count() == 5
    _shot(page, shots / "3-whatif.jpg")
    page.get_by_role("link", name="Back to the plan").click()
    page.get_by_role("heading", name="Your decision").wait_for()
    page.get_by_label("Minimum return per ad dollar").fill("3.6")
    page.get_by_role("button", name="Re-plan with these changes").click()
    page.get_by_text("minimum return per ad dollar: $3.60").wait_for()
    assert "$3.60" in page.locator("dl.grid").inner_text()
    diff = page.locator("#diff").inner_text()
    assert "Expected extra margin" in diff and "What binds now" in diff, diff
    _shot(page, shots / "4-replanned.jpg")
    with page.expect_download() as download:
        page.locator("#report-link").click()
    report = Path(download.value.path()).read_text()
    assert "ROAS floor" in report or "floor" in report.lower()
    rating = page.locator("#rate-copy-1")
    rating.locator("summary").click()
    rating.get_by_label("Not good").check()
    rating.get_by_label("How it should read").fill("Honey oats, crunchy\nFor the walk to work.")
    rating.get_by_role("button", name="Save rating").click()
    page.get_by_text("Your rating of copy 1 is saved").wait_for()
    page.get_by_role("button", name="Approve this plan").click()
    page.get_by_text("approved by key-").wait_for()
    assert "not good, corrected" in page.locator("#h-ratings + table").inner_text()
    _shot(page, shots / "5-approved.jpg")
    page.get_by_role("link", name="Feedback", exact=True).click()
    page.get_by_role("heading", name="Reviewers' feedback").wait_for()
    counts = " ".join(page.locator("#counts").inner_text().split())
    assert counts.startswith("Ratings 1 (1 of copy"), counts
    newest = page.locator("#h-latest ~ table tbody tr").first.inner_text()
    assert "copy 1" in newest and "not good, corrected" in newest, newest
    _shot(page, shots / "6-feedback.jpg")
    page.close()


def _other_tenant(browser: Any, url: str, tid: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/review/signin")
    page.get_by_label("API key").fill(GLOBEX)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Waiting for a decision").wait_for()
    assert tid not in page.content()
    assert page.goto(f"{url}/review/threads/{tid}").status == 404
    page.goto(f"{url}/review")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    posted = context.request.post(
        f"{url}/review/threads/{tid}/decide", form={"csrf": csrf or "", "action": "approve"}
    )
    assert posted.status == 404
    context.close()


def _shot(page: Any, path: Path) -> None:
    # The top of the page, up to 2,000 px: the whole of a long plan page is over 300 KB.
    height = min(2000, int(page.evaluate("document.documentElement.scrollHeight")))
    clip = {"x": 0, "y": 0, "width": 1366, "height": height}
    page.screenshot(path=str(path), full_page=True, clip=clip, type="jpeg", quality=60)
    assert path.stat().st_size < 300_000, (path.name, path.stat().st_size)
