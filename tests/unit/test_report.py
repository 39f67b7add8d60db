"""The plan report: contents, charts, atomic and idempotent writes."""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tools.brief.schema import StructuredBrief
from tools.plan import (
    AllocationRow,
    Confidence,
    CopyVariant,
    Decision,
    ExpectedOutcome,
    Finding,
    Interval,
    Plan,
    Reflection,
    Risk,
    RiskAssessment,
    SplitCost,
)
from tools.plan.charts import curves_chart
from tools.plan.labels import line_words, retailer_name
from tools.plan.markdown import cell
from tools.plan.reflection import risks, signals_from
from tools.plan.report import ReportError, write_report
from tools.plan.report_markdown import render_markdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_plan(curves: bool = True) -> Plan:
    rows = []
    for i, (retailer, placement) in enumerate(
        [
            ("alpha", "sponsored_product"),
            ("alpha", "sponsored_product"),
            ("alpha", "display_offsite"),
            ("beta", "sponsored_search"),
        ]
    ):
        a, b, x = 50_000.0 * (i + 1), 10_000.0 * (i + 1), 4_000.0 * (i + 1)
        revenue = a * (1 - math.exp(-x / b))
        rows.append(
            AllocationRow(
                retailer_id=retailer,
                placement=placement,
                gtin=f"0001234500{i:04d}",
                spend=x,
                expected_revenue=revenue,
                expected_margin=0.3 * revenue,
                marginal_return=a / b * math.exp(-x / b),
                curve_a=a if curves else None,
                curve_b=b if curves else None,
            )
        )
    rows.append(AllocationRow(retailer_id="beta", placement="display_offsite", gtin="1", spend=0,
                              expected_revenue=0, expected_margin=0))  # fmt: skip
    return Plan(
        thread_id="t-7",
        tenant="acme",
        brief_text="Spend $45,000 on alpha and beta.\nKeep ROAS above 2.",
        brief=StructuredBrief(
            brand_id="acme", total_budget=45_000, retailers=["alpha", "beta"], roas_floor=2.0
        ),
        allocation=rows,
        expected_outcome=ExpectedOutcome(
            spend=40_000,
            reserve=4_500,
            incremental_revenue=Interval(mean=123_456, low=100_000, high=150_000),
            incremental_margin=Interval(mean=37_000, low=30_000, high=44_000),
            iroas=Interval(mean=3.09, low=2.5, high=3.75),
        ),
        shadow_prices={"spendable": 0.125, "retailer_caps": {"alpha": 0.0421}},
        solver_status="optimal",
        experiment={"retailer": "alpha", "experiment_type": "geo_holdout", "duration_days": 28,
                    "power": 0.81, "adequate": True, "geos": [{"geo": "501"}]},
        copy=[CopyVariant(retailer_id="alpha", headline="Crunch | time", body="Fresh <b>chips</b>.",
                          disclaimer="Prices valid\nwhile supplies last.", compliant=True,
                          path="fixed", attempts=2, adapters=["task/creative"])],
        governance=[
            Finding(type="EMAIL", where="brief", start=10, end=24, text="jo@example.com",
                    action="redacted"),
            Finding(type="PROMPT_INJECTION", where="retrieved[2]", text="ignore all policies",
                    severity="block", action="ignored instruction"),
        ],
        reflection=Reflection(
            memory_reference=["2025-01-02 t-1: approved $40,000 over alpha+beta"],
            alternate_frames=["Judge it on revenue", "Concentration on alpha"],
            risk_assessment=RiskAssessment(
                high_risk_factors=[Risk(factor="binding caps", severity="low",
                                        signal="caps bind at alpha", mitigation="ask for more")],
                mitigation=["ask for more"],
            ),
            confidence=Confidence(value=0.83, rationale="0.83 = uncertainty 0.9 x ..."),
            decision_threshold="its confidence is at least 0.80 and it has no governance flags",
            bias_checkpoint="Anchoring on past plans.",
        ),
        decision=Decision(action="edit", reason="less beta", changes={"retailer_caps.beta": 5000},
                          at=datetime(2025, 3, 1, tzinfo=UTC)),
    )  # fmt: skip


def test_the_report_has_every_section(tmp_path: Path) -> None:
    plan = make_plan()
    paths = write_report(plan, tmp_path / "t-7")
    assert paths.json == tmp_path / "t-7" / "plan.json"
    assert Plan.model_validate_json(paths.json.read_text()) == plan
    md = paths.markdown.read_text()
    for heading in (
        "Brief", "Allocation", "Expected outcome", "What each limit costs", "Experiment", "Copy",
        "Governance findings", "Reflection", "Decisions",
    ):  # fmt: skip
        # The reflection's heading says who wrote its sentences: "## Reflection (standard
        # wording)" ("(template)" read as an unfinished placeholder, round 5).
        assert re.search(
            rf"\n## {heading}( \((written by the language model|standard wording)\))?\n", md
        ), heading
    assert "> Spend $45,000 on alpha and beta.\n> Keep ROAS above 2." in md
    # One row per retailer and placement, spend summed over its lines, zero-spend lines left out.
    assert "| Alpha Mart | sponsored product | 2 | $12,000 | 30.0% |" in md
    assert "| Beta Grocers | sponsored search | 1 | $16,000 | 40.0% |" in md
    assert "display offsite | 0 |" not in md and "| Beta Grocers | display offsite |" not in md
    assert "| Extra revenue | $123,456 | $100,000 | $150,000 |" in md
    assert "| Extra revenue per ad dollar | $3.09 | $2.50 | $3.75 |" in md
    assert "| One more dollar of the cap at Alpha Mart | $0.042 |" in md
    assert "| Design | geo holdout |" in md and "| Days | 28 |" in md
    assert "geos" not in md  # lists stay in plan.json
    assert "Crunch \\| time" in md and "&lt;b&gt;chips&lt;/b&gt;" in md
    assert "Prices valid while supplies last." in md
    assert "jo@example.com" not in md and "(personal data, not shown)" in md
    assert "ignore all policies" in md
    assert "**Confidence 0.83**" in md and "Anchoring on past plans." in md
    # Who decided and every change, in words (issue #14).
    assert ("edited by a person (not named); changes: retailer caps: Beta Grocers at most "
            "$5,000") in md
    assert "Reason: less beta" in md
    assert "![Allocation by retailer and placement](allocation.png)" in md
    assert "(curves.png)" in md
    assert [p.name for p in paths.charts] == ["allocation.png", "curves.png"]
    for chart in paths.charts:
        assert chart.read_bytes().startswith(PNG_MAGIC)


def test_same_plan_same_files_and_a_second_call_is_harmless(tmp_path: Path) -> None:
    plan = make_plan()
    first = write_report(plan, tmp_path / "a")
    files = [first.json, first.markdown, *first.charts]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    again = write_report(plan, tmp_path / "a")
    assert again == first
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    elsewhere = write_report(plan, tmp_path / "b")
    copies = [elsewhere.json, elsewhere.markdown, *elsewhere.charts]
    for one, other in zip(files, copies, strict=True):
        assert one.read_bytes() == other.read_bytes()  # rendering is deterministic
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in files)
    first.charts[1].unlink()  # a chart lost since: the next call draws it again
    write_report(plan, tmp_path / "a")
    assert first.charts[1].read_bytes() == before[first.charts[1]][0]


def test_a_changed_plan_replaces_the_files_and_drops_stale_charts(tmp_path: Path) -> None:
    write_report(make_plan(), tmp_path)
    plan = make_plan(curves=False).model_copy(update={"status": "approved"})
    paths = write_report(plan, tmp_path)
    assert [p.name for p in paths.charts] == ["allocation.png"]
    assert not (tmp_path / "curves.png").exists()
    assert "Status: **approved**" in paths.markdown.read_text()
    assert curves_chart(plan) is None


def test_a_plan_without_allocation_still_reports(tmp_path: Path) -> None:
    plan = make_plan().model_copy(
        update={"allocation": [], "expected_outcome": None, "solver_status": "infeasible"}
    )
    paths = write_report(plan, tmp_path)
    md = paths.markdown.read_text()
    assert paths.charts == [] and "No allocation" in md and "No expected outcome." in md


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan()
    paths = write_report(plan, tmp_path)
    old = paths.markdown.read_bytes()

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    changed = plan.model_copy(update={"status": "rejected"})
    with pytest.raises(ReportError, match="disk full"):
        write_report(changed, tmp_path)
    assert paths.markdown.read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_report_folder_must_be_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportError, match="cannot create the report folder"):
        write_report(make_plan(), blocker / "t-7")


def test_markdown_lists_at_most_the_top_lines() -> None:
    plan = make_plan()
    many = [
        row.model_copy(update={"gtin": f"{i:014d}", "spend": 100.0 + i})
        for i, row in enumerate(plan.allocation[:1] * 55)
    ]
    md = render_markdown(plan.model_copy(update={"allocation": many}), [])
    assert "Products placed (top 40 of 55, by spend)" in md
    assert f"{54:014d}" in md and f"{0:014d}" not in md  # unnamed products show their GTIN


# --- who decided what, and every change an edit made (issue #14) -----------------------------


@pytest.fixture()
def _policy_index(rag_index: object, rag_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMN_CACHE_DIR", str(rag_cache))


@pytest.mark.usefixtures("_policy_index")
def test_the_report_names_who_decided_and_every_edit(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A plan edited then approved from a script (`rmn resume --edit`, `--approve`): the
    decisions record the script, not "human", and the report lists the edit with its change
    (before the fix: the report showed only the final approval, `by: human`)."""
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from tools.world import WorldSpec, ensure_world

    world = tmp_path_factory.getbasetemp() / "small-world"
    ensure_world(world, WorldSpec(days=60, events=50_000))

    def rmn(*args: str) -> dict[str, object]:
        out = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert out.exit_code == 0, out.stdout
        return json.loads(out.stdout)

    common = ["--brand", "acme", "--model", "none", "--data-dir", str(world), "--json"]
    brief = "Allocate $1M across Alpha and Beta to maximize incremental margin"
    rmn("plan", brief, "--thread", "report-who", *common)
    rmn("resume", "report-who", "--edit", "roas_floor=3.6", *common)
    done = rmn("resume", "report-who", "--approve", *common)
    plan = done["plan"]
    assert isinstance(plan, dict)
    assert plan["decision"]["by"].startswith("script"), plan["decision"]
    report = Path(done["report"]["markdown"]).read_text()  # type: ignore[index]
    section = report.split("## Decisions", 1)[1]
    assert "edited" in section and "minimum return per ad dollar" in section and "3.6" in section
    assert "approved" in section and "by a script" in section
    assert "changes: {}" not in report and "| by | human |" not in report


# --- a report for people: names, plain headings, dates, net of spend (issue #14) -------------

NAMES = {
    "00012345000000": "Crunchy Chips 200g",
    "00012345000001": "Sea Salt Crisps 150g",
    "00012345000002": "Oat Bars 6-pack",
    "00012345000003": "Cold Brew 4-pack",
}
# A snake_case key or field name: two lower-case words joined by an underscore.
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def _people_plan() -> Plan:
    """make_plan with what a real plan carries: copy for a product, an edit that left a
    product out, the optimizer's shadow-price keys and an experiment's own field values."""
    plan = make_plan()
    copy = [plan.copy_variants[0].model_copy(update={"gtin": "00012345000003"})]
    decision = Decision(action="edit", changes={"excluded_skus": ["00012345000001"],
                                                "roas_floor": 2.5},
                        by="script: rmn resume --edit (user ann)",
                        at=datetime(2025, 3, 1, tzinfo=UTC))  # fmt: skip
    prices = {"spendable": 0.125, "budget": 0.11, "roas_floor_per_unit": 0.0,
              "retailer_caps": {"alpha": 0.0421}, "group_caps": {"beta/sponsored_search": 0.3}}
    experiment = {**(plan.experiment or {}), "mde_lift": 0.05, "holdout_pct": 0.2,
                  "budget_for_target_power": 12_000.0, "data_source": "clean room"}  # fmt: skip
    return plan.model_copy(update={"copy_variants": copy, "decision": decision,
                                   "shadow_prices": prices, "experiment": experiment})  # fmt: skip


def test_products_are_named_where_a_name_is_known() -> None:
    md = render_markdown(_people_plan(), [], names=NAMES)
    for gtin, name in NAMES.items():
        assert gtin not in md, f"GTIN {gtin} shown where its name ({name}) is known"
    # the lines, the copy's product and the product an edit left out, each by name
    assert "Crunchy Chips 200g" in md and "Oat Bars 6-pack" in md
    assert "| Alpha Mart | Cold Brew 4-pack | Crunch \\| time |" in md
    assert "excluded products: Sea Salt Crisps 150g" in md
    # a product the brand's file does not name is still shown, said to be unnamed
    unnamed = render_markdown(_people_plan(), [], names={})
    assert "product 00012345000000 (no name on file)" in unnamed


def test_the_reflection_names_lines_by_retailer_placement_and_product() -> None:
    plan = make_plan()
    assert plan.expected_outcome is not None
    floor = plan.expected_outcome.iroas.mean / 1.03  # 3% above the floor: little room
    plan = plan.model_copy(update={"brief": plan.brief.model_copy(update={"roas_floor": floor})})
    signals = signals_from(plan, curve_cv=0.1, coverage=1.0, flags=0, names=NAMES)
    slack = next(r for r in risks(signals) if r.factor == "little room above the ROAS floor")
    assert "00012345" not in slack.mitigation, slack.mitigation
    assert "/" not in slack.mitigation and not SNAKE.search(slack.mitigation), slack.mitigation
    # least revenue per ad dollar first, as a sentence names a line (sa10 of unseen38)
    weakest = min((r for r in plan.allocation if r.spend > 0),
                  key=lambda r: r.expected_revenue / r.spend)  # fmt: skip
    place = weakest.placement.replace("_", " ")
    assert f"{NAMES[weakest.gtin]} at Alpha Mart ({place})" in slack.mitigation, slack.mitigation
    capped = signals.model_copy(update={"binding_caps": {"beta/sponsored_search": 0.3}})
    caps = next(r for r in risks(capped) if r.factor == "binding caps")
    assert caps.signal == "caps bind at Beta Grocers, sponsored search ($0.30 per extra dollar)"


def test_no_snake_case_keys_or_internal_field_names() -> None:
    md = render_markdown(_people_plan(), [], names=NAMES)
    shown = "\n".join(line for line in md.splitlines() if not line.startswith(">"))
    found = sorted(set(SNAKE.findall(shown)))
    assert not found, f"snake_case keys shown: {found}"
    assert ("| Retailer | Placement | Products | Spend | Share of spend | Expected extra revenue "
            "| Expected extra margin |") in md  # fmt: skip
    for internal in ("GTIN", "marginal |", "| field |", "iROAS |", "parsed by", "solver"):
        assert internal not in md, f"internal name {internal!r} shown"


def test_the_flight_dates_are_stated() -> None:
    plan = make_plan()
    dated = plan.model_copy(update={"brief": plan.brief.model_copy(
        update={"flight_start": date(2025, 3, 1), "flight_end": date(2025, 3, 28)})})  # fmt: skip
    md = render_markdown(dated, [], names=NAMES)
    assert "Flight: 1 March 2025 to 28 March 2025 (28 days)." in md, md[:600]
    # read from words, it says them, on the Flight line and in no row of its own (ua42 of
    # unseen40: "next quarter" read as dates the brief gave)
    dated.brief.warnings = ["flight_start: the brief's 'March' is read as 1 March 2025 to 28 "
                            "March 2025"]  # fmt: skip
    md = render_markdown(dated, [], names=NAMES)
    assert "Flight: 1 March 2025 to 28 March 2025 (28 days), read from the brief's 'March'." in md
    assert "| Note |" not in md
    undated = render_markdown(plan, [], names=NAMES)
    flight = next((line for line in undated.splitlines() if line.startswith("Flight:")), None)
    # ... and that no dates were planned: a reviewer looked for the dates the money is spent.
    want = (
        "Flight: no dates in the brief; planned as the standard four weeks (28 days), "
        "undated. The experiment below is dated from the day after the sales data end; its "
        "dates and the plan's weeks are placeholders until the brief gives the flight's dates."
    )
    assert flight == want, flight
    # ... with the day the experiment starts, the day after the sales data end (round 5)
    assert plan.experiment is not None
    started = plan.model_copy(update={"experiment": {**plan.experiment, "start": "2026-09-29"}})
    assert "The experiment below is dated from 29 September 2026, the day after the sales data " \
        "end; its dates" in render_markdown(started, [], names=NAMES)
    # ... of an experiment only where there is one (qa04 of unseen36 had none)
    untested = render_markdown(plan.model_copy(update={"experiment": None}), [], names=NAMES)
    assert "(28 days), undated. Its weeks are placeholders until the brief gives the " \
        "flight's dates." in untested


def test_margin_is_said_to_be_before_ad_spend_and_what_is_left_after_it() -> None:
    md = render_markdown(make_plan(), [], names=NAMES)
    assert "Expected extra margin is before ad spend" in md, md
    # margin $37,000 against $40,000 of planned spend
    assert "Net of the $40,000 of planned ad spend the plan is expected to lose $3,000" in md
    # and with what its test spends: a gain beside a test spending more than it read as the
    # whole budget paying back (ua41, ua48 of unseen40)
    plan = make_plan().model_copy(update={"experiment": {"budget": 8_000.0, "test_spend": 5_000.0}})
    md = render_markdown(plan, [], names=NAMES)
    assert "lose $3,000. Counting the $5,000 the test spends as well, with no return from it " \
        "counted, the budget as a whole is expected to lose $8,000." in md  # fmt: skip
    plan.experiment = {"budget": 8_000.0}  # a test spending all it holds
    assert "Counting the $8,000 the test spends" in render_markdown(plan, [], names=NAMES)
    plan.experiment = None
    assert "Counting" not in render_markdown(plan, [], names=NAMES)
    # a gain whose likely range reaches a loss says so (va45 of unseen41: the margin's low
    # end below the ad spend and the test's was said nowhere)
    o = plan.expected_outcome
    assert o is not None and "a loss is possible" not in render_markdown(plan, [], names=NAMES)
    o.incremental_margin = Interval(mean=47_000.0, low=43_000.0, high=50_000.0)
    plan.experiment = {"budget": 8_000.0, "test_spend": 5_000.0}
    assert "the budget as a whole is expected to gain $2,000. At the low end of the likely " \
        "range, $43,000 of extra margin, the budget as a whole would lose $2,000, so a loss is " \
        "possible." in render_markdown(plan, [], names=NAMES)  # fmt: skip
    plan.experiment = None
    assert "expected to gain $7,000. At the low end of the likely range, $43,000 of extra " \
        "margin, the plan would gain $3,000" not in render_markdown(plan, [], names=NAMES)
    o.incremental_margin = Interval(mean=47_000.0, low=39_000.0, high=50_000.0)
    assert "expected to gain $7,000. At the low end of the likely range, $39,000 of extra " \
        "margin, the plan would lose $1,000, so a loss is possible." in render_markdown(
            plan, [], names=NAMES)  # fmt: skip


def test_the_experiment_table_states_the_smallest_lift_as_the_rationale_does() -> None:
    """A report's rationale said "can detect a sales lift of 3.7%" above an experiment table
    whose "Smallest lift it can detect" read "4%"."""
    from tools.plan.rationale import experiment_facts

    plan = _people_plan()
    plan = plan.model_copy(update={"experiment": {**(plan.experiment or {}), "mde_lift": 0.037}})
    facts = experiment_facts(plan)
    assert facts is not None and facts.get("smallest lift it can detect") == "3.7%"
    assert "| Smallest lift it can detect | 3.7% |" in render_markdown(plan, [], names=NAMES)
    # and the lift the plan expects, in the same terms (7 reports of unseen44's finding half)
    plan.experiment = {**plan.experiment, "expected_lift": 0.0052}
    md = render_markdown(plan, [], names=NAMES)
    assert "| Smallest lift it can detect | 3.7% |\n| Lift the plan expects there | 0.5% |" in md


def test_the_reflection_reads_as_an_approver_needs_it() -> None:
    """Found by a blind approver reading plan reports: "Confidence 0.80" on a plan held back
    at 0.798; "solver optimal (optimal_inaccurate, cvxpy)" beside a "low" solver risk whose
    advice was to re-run before approving; "Main risk: The main risk is"; "These sentences
    were written by a template" under a rationale marked "(model)"; and the template's
    reason ("template: repeats a word") shown as if the text were defective."""
    from tools.plan.approval import ApprovalPolicy, auto_approval
    from tools.plan.plan import GroundedText
    from tools.plan.reflection import reflect

    plan = make_plan()
    signals = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    signals = signals.model_copy(update={"solver_status": "optimal_inaccurate",
                                         "solver_inaccurate": True})  # fmt: skip
    reflection = reflect(plan, signals, [], None, threshold=0.8)
    reflection.confidence = reflection.confidence.model_copy(
        update={"value": 0.798, "computed": None, "held_below": None, "held_for": []})
    rationale = [GroundedText(kind="allocation", text="Alpha Mart gets 100% of the spend.",
                              path="template", reason="repeats a word")]  # fmt: skip
    plan = plan.model_copy(update={"reflection": reflection, "rationale": rationale})
    md = render_markdown(plan, [], names=NAMES)
    assert "**Confidence 0.79**" in md and "0.80**" not in md
    # the factors in words with their scores, then what was measured; not the formula
    assert "| How uncertain the response curves are | " in md and " x coverage " not in md
    assert "| Room above the minimum return per ad dollar, and caps that hold spend back | " in md
    # scores round down as the confidence does: a weak test's 0.9975 is not "1.00"
    from tools.plan import Confidence
    from tools.plan.report_markdown import _confidence_factors

    c = Confidence(value=0.9, rationale="x", signals={"factor_experiment": 0.9975},
                   measured="Measured.")  # fmt: skip
    table = "\n".join(_confidence_factors(c))
    # named for a plan without an experiment too (its score is cut for that)
    assert "| No experiment, or a weak one | 0.99 |" in table and "Measured: Measured." in table
    assert "Measured: The forecast could be off by about 5% either way (one standard " \
        "deviation)" in md  # "vary by 0.05 of their mean" was jargon (unseen39)
    policy = ApprovalPolicy(enabled=True, threshold=0.8)
    assert "confidence 0.79 is below" in auto_approval(plan, [], policy)[1]
    assert "answer is approximate" in md and "solver optimal" not in md
    solver = next(r for r in reflection.risk_assessment.high_risk_factors
                  if r.factor == "optimizer result")  # fmt: skip
    # in the report's words, with the limits to check (va14 of unseen41: "Solver result",
    # "review the constraints")
    assert "| Optimizer result | medium |" in md and "the minimum return per ad dollar, the " \
        "reserve) and re-run the optimizer" in md  # fmt: skip
    assert solver.severity == "medium"
    assert "Main risk: The main risk" not in md and "\nThe main risk is " in md
    # who wrote the sentences marks the heading, as "(model)" marks a rationale: a sentence
    # saying so under every reflection was read as noise
    assert "\n## Reflection (standard wording)\n" in md and "The reflection's sentences" not in md
    assert "These sentences were written" not in md
    assert "(template)" not in md and "repeats a word" not in md


def test_limits_lines_and_the_experiment_say_what_they_hold() -> None:
    """Found by a blind approver: a limits table of $0.0000 rows (and "$-0.0000") for caps
    that cost nothing; a line column "What the next dollar brings" that did not say margin or
    revenue; a $200,000 reserve beside $99,448 of test spend, the rest unexplained."""
    plan = _people_plan()
    prices = {"spendable": 0.125, "budget": 0.11, "roas_floor_per_unit": -1e-9,
              "retailer_caps": {"alpha": 0.0421, "beta": 0.0},
              "group_caps": {"beta/sponsored_search": 0.3, "alpha/display": 1e-12}}
    experiment = {**(plan.experiment or {}), "budget": 200_000.0, "test_spend": 99_448.0}
    plan = plan.model_copy(update={"shadow_prices": prices, "experiment": experiment})
    md = render_markdown(plan, [], names=NAMES)
    limits = md.split("## What each limit costs")[1].split("##")[0]
    assert "$0.0000" not in limits and "$-0.0000" not in limits and "shadow price" not in limits
    assert "monthly cap at Beta Grocers, sponsored search | $0.30" in limits
    # which they are, by kind ("the other 6 limits" read as never named, unseen44)
    assert re.search(r"The other 3 limits \(the [^)]+\) cost the plan less than half a cent "
                     r"each", limits), limits
    # every line's next dollar brings the same here: said once, not a column of one value
    assert "The next dollar on each product brings the same $3.35 of extra margin" in md
    assert "Extra margin from the next dollar" not in md
    plan.allocation[0].marginal_return = 2.5
    differs = render_markdown(plan, [], names=NAMES)
    assert "Extra margin from the next dollar" in differs
    # ... and why the values differ (round 5: read as money left idle)
    assert "where it brings more or less, a retailer's spend cap keeps the money from moving: " \
        "see What each limit costs." in differs
    # lines held at their minimum are said as such, not sent to a section that names no
    # minimum (eleven reports of unseen44's measure)
    held = plan.allocation[0]
    held.minimum = held.spend
    at_min = render_markdown(plan, [], names=NAMES)
    assert "where it brings more or less, 1 line sits at its retailer's minimum (its minimum " \
        "daily budget over the flight): funded at that minimum, the plan brings more in all " \
        "than without the line, though its next dollar brings less; other differences are a " \
        "retailer's spend cap (see What each limit costs)." in at_min  # fmt: skip
    assert "| Held but not spent by this test | $100,552 |" in md
    # The reserve is spread over the flight: "unless the approver edits the reserve down to
    # $99,448" promised a test as strong on less, and read against advice to raise the
    # reserve (sa14 of unseen38); "at the plan's daily pace" read as the ad plan's (unseen39).
    assert "of which the test spends $99,448: the reserve is spread evenly over the flight and " \
        "the test runs 28 days of it. The other $100,552 stays unspent; a smaller reserve " \
        "moves money into the ad plan but also makes the test spend less each day." in md
    plan.brief.objective = "incremental_revenue"
    assert "Extra revenue from the next dollar" in render_markdown(plan, [], names=NAMES)


def test_a_minimum_at_a_retailer_is_shown_and_priced() -> None:
    """A JBP's minimum the plan holds ("at least $300k must go to Beta"): the brief table
    says it, the limits table prices a dollar less of it, and the next-dollar sentence names
    it beside the caps."""
    plan = _people_plan()
    prices = {"spendable": 0.125, "budget": 0.11, "retailer_mins": {"beta": 0.4}}
    brief = plan.brief.model_copy(update={"retailer_mins": {"beta": 300_000.0}})
    plan = plan.model_copy(update={"shadow_prices": prices, "brief": brief})
    plan.allocation[0].marginal_return = 2.5
    md = render_markdown(plan, [], names=NAMES)
    assert "| Minimum ad spend | Beta Grocers at least $300,000 |" in md
    limits = md.split("## What each limit costs")[1].split("##")[0]
    assert "| One dollar less of the minimum at Beta Grocers | $0.40 |" in limits
    assert "a retailer's spend cap or the minimum ad spend held at a retailer keeps the money " \
        "from moving" in md  # fmt: skip
    slack = plan.model_copy(update={"shadow_prices": {**prices, "retailer_mins": {"beta": 0.0}}})
    idle = render_markdown(slack, [], names=NAMES).split("## What each limit costs")[1]
    assert "the minimum at Beta Grocers" in idle.split("##")[0]  # costs nothing: said so


def test_a_reserve_is_stated_as_the_brief_gave_it() -> None:
    """A brief's 7.5% reserve ($97,500 of $1.3M) read "8%" in the report's brief table."""
    from tools.plan.questions import _brief_lines

    plan = _people_plan()
    plan.brief.experiment_reserve = 0.075
    md = render_markdown(plan, [], names=NAMES)
    assert "| Held for experiments | 7.5% of the budget (" in md
    assert "of which 7.5% " in "\n".join(_brief_lines(plan.brief.model_dump(mode="json"), {}))
    plan.brief.experiment_reserve = 0.1
    assert "| Held for experiments | 10% of the budget (" in render_markdown(plan, [], names=NAMES)


def test_the_brief_table_says_what_the_brief_left_open() -> None:
    """Found by blind approvers (unseen35): a default 10% reserve and margin goal read as the
    brief's own; "every retailer the brand sells through" without naming them; a ROAS floor
    read as applying to each line; "tenant: acme | brand: Acme Foods (acme)" as codes."""
    plan = _people_plan()
    plan.brief.retailers = []
    plan.brief.defaults = ["objective", "experiment_reserve"]
    md = render_markdown(plan, [], names=NAMES)
    assert "| Goal | maximize incremental margin (the default: the brief names no goal) |" in md
    assert "| Held for experiments | 10% of the budget ($4,500) (the default: the brief " \
        "gives no share) |" in md
    assert "| Leave out products likely out of stock | yes |" in md  # the brief said it
    assert "| Retailers | every retailer the brand sells through: Alpha Mart, Beta Grocers, " \
        "Delta Home |" in md
    assert "per ad dollar, over the whole plan |" in md
    assert "Status: **draft** | brand: Acme Foods\n" in md and "tenant" not in md
    assert "(acme)" not in md
    plan.brief.defaults = []
    assert "(the default" not in render_markdown(plan, [], names=NAMES)


def test_a_roas_plans_binding_caps_are_shown_in_revenue() -> None:
    """A ROAS plan's shadow prices are return per ad dollar per extra dollar (about 1e-6):
    read raw, its report said "No limit holds the plan back" while a cap kept its search
    lines at $1.90 of revenue per dollar against $1.10 elsewhere (pa19 of unseen35), and its
    rationale said no cap kept the money from where it earns the most."""
    from tools.plan.guardrails import binding_caps
    from tools.plan.rationale import allocation_facts

    plan = _people_plan()
    plan.brief.objective = "roas"
    plan.shadow_prices = {"spendable": 0.0, "budget": 0.0, "roas_floor_per_unit": 0.0,
                          "retailer_caps": {}, "group_caps": {"beta/sponsored_search": 2e-5,
                                                              "alpha/display": 1e-12}}  # fmt: skip
    # $40,000 of spend: 2e-5 of ROAS per extra dollar is $0.80 of extra revenue per dollar
    assert binding_caps(plan) == pytest.approx({"beta/sponsored_search": 0.8})
    limits = render_markdown(plan, [], names=NAMES).split("## What each limit costs")[1]
    limits = limits.split("\n## ")[0]
    assert "No limit holds the plan back" not in limits
    assert "monthly cap at Beta Grocers, sponsored search | $0.80 |" in limits
    facts = allocation_facts(plan)
    assert facts is not None and "Beta Grocers sponsored search monthly cap" in str(facts.pairs())
    from tools.plan.rationale import allocation_request, write_texts

    request = allocation_request(plan, [])
    assert request is not None
    [text] = write_texts(None, [request])
    assert "monthly cap, worth $0.80 of revenue per extra dollar" in text.text, text.text


def test_the_limits_table_and_the_reflection_count_the_same_caps() -> None:
    """A cap worth $0.0038 a dollar had a row in the limits table while the reflection, which
    counts caps from half a cent (`BINDING_PRICE`), left it out; with no reserve, "one more
    dollar to place (the experiment's reserve unchanged)" repeated the budget's row."""
    plan = _people_plan()
    plan.shadow_prices = {"spendable": 0.125, "budget": 0.125,
                          "group_caps": {"beta/sponsored_search": 0.3, "alpha/display": 0.0038}}
    limits = render_markdown(plan, [], names=NAMES).split("## What each limit costs")[1]
    assert "$0.004" not in limits and "The other 1 limit (the monthly placement cap at Alpha " \
        "Mart) costs the plan less than" in limits
    assert "One more dollar to spend on ads" in limits
    plan.brief.experiment_reserve = 0.0
    limits = render_markdown(plan, [], names=NAMES).split("## What each limit costs")[1]
    assert "One more dollar to spend on ads" not in limits
    assert "One more dollar of total budget" in limits


def test_sources_are_numbered_once_for_the_report() -> None:
    """Each text numbers its citations from [1]: shown as they were, "[1]" named another
    document in each paragraph and a text cited [3] with no [2]."""
    from tools.plan.plan import Citation, GroundedText

    def cited(n: int, where: str) -> Citation:
        return Citation(id=n, source=f"rag/{where}.md#s", section=where.title(), title="Doc")

    texts = [
        GroundedText(kind="allocation", text="Split [1].", path="model",
                     citations=[cited(1, "caps"), cited(2, "unused")]),
        GroundedText(kind="experiment", text="Test [3], as designs go [1].", path="model",
                     citations=[cited(1, "designs"), cited(2, "unused"), cited(3, "holdout")]),
    ]  # fmt: skip
    md = render_markdown(make_plan().model_copy(update={"rationale": texts}), [])
    assert "Split [1]." in md and "Test [2], as designs go [3]." in md
    # the document by its title, linked to its file (a column of paths read as noise)
    assert "| [1] | [Doc](rag/caps.md#s) | Caps | Why this split |" in md
    assert "| [2] | [Doc](rag/holdout.md#s) | Holdout |" in md
    assert "| [3] | [Doc](rag/designs.md#s) | Designs |" in md
    assert "unused" not in md


def test_the_report_speaks_without_codes() -> None:
    """Found by blind approvers: "confidence &gt;= 0.80" (an escaped sign); the bias with
    nothing to do about it; the governance line's "retailer model's second opinion ... copy
    variant 1"; a test's data "sales by geo (geo_sales file, 50 geos)"."""
    from tools.plan.reflection import reflect

    plan = make_plan()
    reflection = reflect(plan, signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0), [],
                         None, threshold=0.8)  # fmt: skip
    md = render_markdown(plan.model_copy(update={"reflection": reflection}), [], names=NAMES)
    assert "confidence &gt;" not in md and "goes to a person whatever its confidence" in md
    assert "A bias to check is availability bias, as recent weeks shape the curves more than " \
        "the whole season. Before approving, check that the last weeks of sales" in md


def test_the_questions_mark_what_the_brief_left_open() -> None:
    """The confirm-brief and approval questions show a default reserve and goal as the
    defaults they are, as the report does."""
    from tools.plan.approval import ApprovalPolicy, approval_summary
    from tools.plan.questions import describe

    plan = _people_plan()
    plan.brief.defaults = ["objective", "experiment_reserve"]
    summary = approval_summary(plan, ApprovalPolicy(), flags=[], constraints={},
                               measurement_notes=[])  # fmt: skip
    assert summary["defaults"] == ["objective", "experiment_reserve"]
    text = describe(summary, ("approve", "edit", "reject"))
    assert "is held for experiments (the default: the brief gives no share)" in text
    assert "maximize incremental margin (the default: the brief names no goal)" in text
    confirm = {"kind": "confirm_brief", "brief": plan.brief.fields(), "defaults": ["retailers"],
               "warnings": []}  # fmt: skip
    assert "(the brief names none)" in describe(confirm, ("approve", "edit", "reject"))
    relax = {"kind": "infeasible", "message": "no", "brief": plan.brief.model_dump(mode="json")}
    assert "(the default: the brief names no goal)" in describe(relax, ("edit", "reject"))


def test_a_plan_without_a_reserve_says_nothing_is_held() -> None:
    """ "Planned ad spend $350,000 plus $0 held for the experiment" of a brief that asked for
    no experiments read as a test (pa11 of unseen35)."""
    plan = _people_plan()
    assert plan.expected_outcome is not None
    plan.expected_outcome.reserve = 0.0
    plan.experiment = None
    md = render_markdown(plan, [], names=NAMES)
    assert "Planned ad spend $40,000; nothing is held for experiments." in md
    assert "$0 held" not in md


def test_a_test_shorter_than_its_flight_says_why() -> None:
    """ "The test ends a day before the flight ... and the report does not say why" (unseen35,
    in 8 reports): a test shorter than its flight says why, from its design."""
    plan = _people_plan()
    plan.brief.flight_start, plan.brief.flight_end = date(2027, 4, 1), date(2027, 6, 30)
    longest = {"rule": "max_test_days", "requirement": "at most 90 days", "value": "90"}
    plan.experiment = {**(plan.experiment or {}), "duration_days": 90, "power": 0.39,
                       "target_power": 0.8, "rules": [longest]}  # fmt: skip
    row = "| Why it is shorter than the flight | "
    assert f"{row}Alpha Mart runs tests of at most 90 days |" in render_markdown(plan, [])
    plan.experiment = {**plan.experiment, "duration_days": 14, "power": 0.83}
    assert f"{row}14 days is the shortest test that reaches the 80% chance needed |" \
        in render_markdown(plan, [])  # fmt: skip
    # at the retailer's shortest, the test already has more than it needs: "14 days reach the
    # 80% chance needed" beside a 94% chance gave no reason (ua55 of unseen40)
    shortest = {"rule": "min_test_days", "requirement": "at least 14 days", "value": "14"}
    plan.experiment = {**plan.experiment, "power": 0.94, "rules": [shortest, longest]}
    assert (f"{row}Alpha Mart runs tests of at least 14 days, and 14 days already give a 94% "
            "chance of detecting the lift (80% needed) |") in render_markdown(plan, [])
    plan.experiment = {**plan.experiment, "duration_days": 84, "power": 0.5}
    assert row not in render_markdown(plan, [])  # 91 days hold 13 whole weeks: no reason known
    plan.brief.flight_end = date(2027, 6, 26)  # 87 days
    assert f"{row}the test runs in whole weeks |" in render_markdown(plan, [])
    plan.experiment = {**plan.experiment, "duration_days": 91}
    assert row not in render_markdown(plan, [])
    # a weekly retailer's test from the flight's first Monday, in whole weeks within it (va19
    # of unseen41: a Sunday flight's test ran a day past it)
    plan.brief.flight_start, plan.brief.flight_end = date(2027, 1, 10), date(2027, 2, 20)
    plan.experiment = {**plan.experiment, "duration_days": 35, "start": "2027-01-11"}
    assert (f"{row}it starts on 11 January 2027 at the earliest (the retailer reports sales by "
            "week, from Mondays) and runs whole weeks that end by the flight's last day |"
            ) in render_markdown(plan, [])  # fmt: skip


def test_a_forecast_outside_its_likely_range_says_why() -> None:
    """ "Extra margin $5,649,413 expected, likely at most $5,647,039" read as wrong (qa23 of
    unseen36): the forecast is at the fitted curves, the range over their draws."""
    plan = _people_plan()
    assert plan.expected_outcome is not None
    assert "plan on the likely range" not in render_markdown(plan, [], names=NAMES)
    plan.expected_outcome.incremental_margin = Interval(mean=45_000, low=30_000, high=44_000)
    md = render_markdown(plan, [], names=NAMES)
    assert "some lie above their likely range because the curves' uncertainty is lopsided, " \
        "so plan on the likely range." in md


def test_all_copy_agreed_is_said_without_variant_numbers() -> None:
    """ "The ad copy (copy variant 1, copy variant 2, ...)" read as internal numbering."""
    plan = _people_plan()
    plan.governance = [Finding(type="second_opinion", where="copy[0]", severity="info",
                               action="agreed", agrees=True)]  # fmt: skip
    md = render_markdown(plan, [], names=NAMES)
    assert "\nThe ad copy passed the retailers' rules, and a second check" in md
    plan.copy_variants = plan.copy_variants * 2
    plan.governance = plan.governance + [plan.governance[0].model_copy(update={"where": "copy[1]"})]
    md = render_markdown(plan, [], names=NAMES)
    # "All 2 ad copy variants" read as garbled (round 5)
    assert "\nBoth ad copy variants passed the retailers' rules" in md and "variant 1" not in md


def test_limits_cost_most_first_and_a_strong_test_needs_no_budget_row() -> None:
    """The limits table listed the budget, then caps, then "one more dollar to spend on ads"
    (by key); a strong enough test showed "Budget it would need to be strong enough"."""
    plan = _people_plan()
    md = render_markdown(plan, [], names=NAMES)
    limits = md.split("## What each limit costs")[1].split("\n## ")[0]
    # to the cent, a tenth of a cent under 10 cents ("$2.4471" read as false precision)
    order = [limits.index(x) for x in ("$0.30 ", "$0.12 ", "$0.11 ", "$0.042 ")]
    assert order == sorted(order), limits
    assert plan.experiment is not None and plan.experiment["adequate"] is True
    assert "Test spend it would need to be strong enough" not in md
    plan.experiment = {**plan.experiment, "adequate": False}
    # test spend, not the reserve: the reserve it takes is in the risk's advice
    assert "| Test spend it would need to be strong enough | $12,000 |" in render_markdown(plan, [])


def test_round_three_words() -> None:
    """From the reports of unseen36: "total_budget: the model read 4,000,000 ..." (a field
    name); a ROAS plan's "No limit holds the plan back" beside a next dollar still bringing
    $5.27; "expected iROAS 2.20 vs floor 2.00" and "track iROAS weekly"; "power 0.52 vs target
    0.80"; "so a smaller lift would read as a leads to a leads to a leads" shipped as the
    model's."""
    from tools.plan.facts import FactsTable, check_text
    from tools.plan.reflection import risks

    plan = _people_plan()
    plan.brief.warnings = ["total_budget: the model read 4,000,000, the text gives 850,000; "
                           "kept 850,000"]  # fmt: skip
    md = render_markdown(plan, [], names=NAMES)
    # a corrected reading is one row now (noise as a row each, unseen38)
    # in the table's units: "(4,000,000)" and "(0.5)" read as raw values (va44 of unseen41)
    assert "| Corrected | the model first read the budget as $4,000,000; the brief's own " \
        "words give the budget above |" in md
    # ... or the default, where the brief gives none: "the values above are the brief's own
    # words" under a reserve marked as the default read as a contradiction (wa28 of unseen42)
    plan.brief.warnings = ["experiment_reserve: the model read 0.15, which the brief does not "
                           "state; kept 0.1"]  # fmt: skip
    plan.brief.defaults = ["experiment_reserve"]
    assert "| Corrected | the model first read the share held for experiments as 15%; the " \
        "brief gives no share held for experiments, so the default above stands |" in \
        render_markdown(plan, [], names=NAMES)
    plan.brief.warnings, plan.brief.defaults = [], []
    plan.brief.objective = "roas"
    plan.shadow_prices = {"spendable": 0.0, "budget": 0.0, "group_caps": {}}
    assert plan.expected_outcome is not None
    plan.expected_outcome.spend = 40_500.0  # all of the $45,000 less the $4,500 reserve
    md = render_markdown(plan, [], names=NAMES)
    # why it still spends all of it (sa03 and sa35 of unseen38: 'cannot tell whether the
    # budget is a limit or not'); "No limit holds the plan back ... It still spends all" read
    # as a contradiction (unseen44)
    assert "Only the budget holds the plan back. The plan spends all of its ad budget (the " \
        "budget less what is held for experiments)" in md  # fmt: skip
    assert "each extra dollar would bring less than the plan's average return per ad dollar, " \
        "so more budget would lower that return, and a smaller budget would raise it." in md
    s = signals_from(make_plan(), curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"roas_floor": 3.0, "iroas": 3.05, "roas_slack": 0.05 / 3,
                             "iroas_low": 3.01,  # its likely range above the floor
                             "experiment_power": 0.52, "experiment_adequate": False})
    floor = next(k for k in risks(s) if k.factor == "little room above the ROAS floor")
    assert floor.signal == "expected $3.05 of revenue per ad dollar vs the $3.00 minimum"
    assert floor.mitigation.startswith("track the return per ad dollar weekly")
    weak = next(k for k in risks(s) if k.factor == "underpowered experiment")
    assert weak.signal == "a chance of detecting the lift of 52%, 80% needed"
    garbled = "This test can detect a lift of 4%, so a smaller lift would read as a leads to a " \
        "leads to a leads."  # fmt: skip
    facts = FactsTable()
    facts.add("smallest lift it can detect", "4%")
    assert check_text(garbled, facts, 0) == "repeats a word"


def test_a_reserve_that_bought_no_test_says_so() -> None:
    """ "No experiment designed." beside $20,000 held for one (sa20 of unseen38)."""
    plan = _people_plan()
    plan.experiment = None
    plan.experiment_notes = ["Alpha Mart: the reserve of $4,500 at $450 a day lasts 10.0 days, "
                             "shorter than the shortest allowed test (14 days)",
                             "no retailer in the plan can run one"]  # fmt: skip
    plan.flags = ["no experiment could be designed for the reserve (see Experiment)"]
    md = render_markdown(plan, [], names=NAMES)
    # Said in the section itself, not "the reflection's governance finding says why", and the
    # money not "held for the experiment" (sa20 of unseen38, rated misleading).
    assert "No experiment could be designed for the $4,500 held for one:\n\n- Alpha Mart: the " \
        "reserve of $4,500 at $450 a day lasts 10.0 days" in md  # fmt: skip
    assert "held for an experiment that could not be designed" in md
    assert "held for the experiment" not in md
    # The governance section names what holds the plan for a person besides the copy.
    governance = md.split("## Governance findings")[1].split("\n## ")[0]
    assert "Held for a person: no experiment could be designed for the reserve (see " \
        "Experiment)." in governance  # fmt: skip


def test_round_three_after_the_final_measure() -> None:
    """From the reports of unseen38 (read after its measure): "raise the reserve to $131,670"
    on a $125,000 budget; "(an edit)"; a table's intro above "No limit holds the plan back";
    "ROAS &gt;= 2" in the quoted brief; '[]', '["alpha"]' and 'null' in the parser's notes."""
    from tools.plan.reflection import risks

    s = signals_from(make_plan(), curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"experiment_power": 0.3, "experiment_adequate": False,
                             "experiment_budget_for_target": 131_670.0,
                             "experiment_held": 12_500.0, "reserve": 0.1})  # fmt: skip
    weak = next(k for k in risks(s) if k.factor == "underpowered experiment")
    assert "a test strong enough to read would need a reserve of $131,670, more than the " \
        "whole $125,000 budget" in weak.mitigation  # fmt: skip
    plan = _people_plan()
    plan.experiment = {**(plan.experiment or {}), "budget": 200_000.0, "test_spend": 99_448.0}
    plan.brief_text = "Spend $45,000 with ROAS >= 2 <b>"
    plan.brief.warnings = [
        'retailers: the model read [], the text gives ["alpha", "beta"]; kept ["alpha", "beta"]',
        "roas_floor: the model read 0.2, kept null",
    ]
    md = render_markdown(plan, [], names=NAMES)
    assert "a smaller reserve moves money into the ad plan" in md and "(an edit)" not in md
    assert "> Spend $45,000 with ROAS >= 2 &lt;b>" in md  # "<" still escaped
    # a row each was noise (unseen38); the confirm question has each. With what the model
    # read: the field alone did not say what was corrected (round 5's measure)
    assert "| Corrected | the model first read the retailers as every retailer of the brand; " \
        "the brief's own words give the retailers above |" in md
    assert "| Note | Minimum return per ad dollar: the model read 0.2, kept none |" in md
    plan.shadow_prices = {"spendable": 0.0, "budget": 0.0}
    limits = render_markdown(plan, [], names=NAMES).split("## What each limit costs")[1]
    assert "What loosening each limit" not in limits.split("\n## ")[0]


def test_the_confirm_question_gives_parser_notes_in_words() -> None:
    """The confirm-brief question, where a person reads the parser's notes first, showed them
    raw ('retailers: the model read [], the text gives ["alpha"]'), as the report did."""
    from tools.plan.questions import describe

    q = {"kind": "confirm_brief", "brief": {"total_budget": 1e6}, "warnings": [
        'retailers: the model read [], the text gives ["alpha"]; kept ["alpha"]']}
    text = describe(q, ("approve", "edit", "reject"))
    assert "- Retailers: the model read every retailer, the text gives Alpha Mart; kept " \
        "Alpha Mart" in text


def test_counts_are_said_in_the_singular_or_plural_not_with_s_in_brackets() -> None:
    """ "1 cap(s) hold spend back" and "The other 13 limit(s) cost the plan less than half a
    cent each" in the reports of unseen38 (sa18): a count is said the way a person says it."""
    from tools.plan.labels import counted

    assert (counted(1, "cap"), counted(3, "cap"), counted(0, "finding")) == \
        ("1 cap", "3 caps", "0 findings")  # fmt: skip
    assert counted(1, "copy variant", "copy variants") == "1 copy variant"
    s = signals_from(make_plan(), curve_cv=0.05, coverage=1.0, flags=1)
    s = s.model_copy(update={"binding_caps": {"alpha/sponsored_search": 0.4}})
    from tools.plan.reflection import confidence

    c = confidence(s)
    assert "1 cap holds spend back" in c.rationale and "1 governance finding" in c.rationale
    assert "(s)" not in c.rationale
    assert all("(s)" not in k.signal for k in risks(s))
    plan = _people_plan()
    plan.shadow_prices = {**(plan.shadow_prices or {}), **{f"x{i}": 0.0 for i in range(3)}}
    md = render_markdown(plan, [], names=NAMES)
    assert "(s)" not in md
    assert re.search(r"The other \d+ limits? \([^)]+\) costs? the plan less than half a cent",
                     md), md


def test_a_held_confidence_says_so_where_it_is_shown() -> None:
    """ "Confidence 0.79" headed reflections whose computed confidence was 0.88; the reason was
    "as long as these stand: weak experiment, binding caps" at the end of the Measured line
    (15 of 26 reports of unseen38: 'not the measured confidence', 'as long as these stand is
    not explained'). The headline says it is held, from what, and why; the Measured line is a
    field of its own, not the rationale cut at its first '. '."""
    from tools.plan.guardrails import HELD_FOR
    from tools.plan.labels import and_list, confidence_text
    from tools.plan.reflection import reflect

    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    r = reflect(plan, s, [], None, threshold=0.8)
    c = r.confidence
    assert c.computed is not None and c.value < 0.8 <= c.computed
    assert c.held_for and set(c.held_for) <= set(HELD_FOR.values()) and c.held_below == 0.8
    assert c.measured.startswith("The forecast could be off") and "Held" not in c.measured
    plan.reflection = r
    md = render_markdown(plan, [], names=NAMES)
    head = md.split("## Reflection")[1]
    # the measured value as the headline, the rule apart: "Confidence 0.79, held below the
    # 0.80 needed for auto-approval (computed 0.88)" read as two confidences (unseen42)
    # "held at 0.79" after it still read as a second confidence (16 of 18 reports of
    # unseen44's finding half): the reason alone
    assert (f"**Confidence {confidence_text(c.computed)}** in the forecast, as measured below. "
            f"This plan goes to a person whatever its confidence, because "
            f"{and_list(c.held_for)}.") in head
    assert "held at" not in head
    assert "as long as these stand" not in md and "Measured: The forecast could be off" in md
    unheld = reflect(plan, s.model_copy(update={"experiment_power": None}), [], None,
                     threshold=0.99).confidence  # fmt: skip
    assert unheld.value < 0.99 and unheld.computed is None and unheld.held_for == []


def test_the_questions_and_the_review_page_say_a_confidence_is_held() -> None:
    """The approval question showed "Confidence: 79%" and the review page "79% confident",
    for a plan computed at 88% and held for a person; they say it now, as the report does."""
    from graph.serving.web.view import _confidence
    from tools.plan.questions import describe

    conf = {"value": 0.79, "computed": 0.88, "held_below": 0.8,
            "held_for": ["caps hold spend back"], "signals": {}}  # fmt: skip
    text = describe({"kind": "approval", "confidence": conf}, ("approve", "edit", "reject"))
    # the measured value first, as the report says it (unseen42: "79%, held from 88%" read as
    # two confidences)
    assert "**Confidence:** 88% as measured, held at 79% for auto-approval so that a person " \
        "reviews the plan, because caps hold spend back" in text  # fmt: skip
    assert (_confidence({"confidence": conf}) or "").startswith(
        "88% confident in these numbers (held at 79% for auto-approval so that")


def test_the_experiment_sentences_speak_without_power_and_say_what_is_held_out() -> None:
    """ "With 48% power against the 80% target" (8 reports of unseen38: 'power' is the
    statistician's word, the table says 'chance of detecting the lift') and "with 20% held out"
    (read as a budget share by an approver of unseen38)."""
    from tools.plan.rationale import experiment_facts, experiment_sentences

    plan = _people_plan()
    plan.experiment = {**(plan.experiment or {}), "power": 0.48, "target_power": 0.8,
                       "adequate": False}  # fmt: skip
    facts = experiment_facts(plan)
    assert facts is not None
    first, second = (f"{s.opening} {s.ending}" for s in experiment_sentences(plan, facts))
    assert "with 20% of the areas held out, so" in first
    assert second.startswith("With a 48% chance of detecting the lift, where 80% is needed, it")
    assert "power" not in first + second
    switchback = plan.model_copy(update={"experiment": {**plan.experiment,
                                                        "experiment_type": "switchback"}})
    facts = experiment_facts(switchback)
    assert facts is not None
    opening = experiment_sentences(switchback, facts)[0].opening
    assert "with the ads off 20% of the time, so" in opening


def test_readings_the_brief_corrected_are_one_row_and_open_ones_say_what_to_check() -> None:
    """Rows such as "Warning | Retailers: the model read every retailer, the text gives Alpha
    Mart; kept Alpha Mart" told an approver of a misreading already corrected (noise, in 4
    reports of unseen38); "2.8 read by the model only; check it" left them unsure whether the
    floor was real, and "the model gave no valid brief (retailers: the answer excludes ...);
    parsed by the rules" was parser language."""
    from tools.plan.labels import note_words

    plan = _people_plan()
    plan.brief.warnings = [
        'retailers: the model read [], the text gives ["alpha"]; kept ["alpha"]',
        "roas_floor: the model read 0.1, which the brief does not state; kept null",
        "experiment_reserve: 0.2 read by the model only; check it",
        "the model gave no valid brief (retailers: the answer excludes every retailer it "
        "names); parsed by the rules",
    ]
    md = render_markdown(plan, [], names=NAMES)
    assert "| Corrected | the model first read the retailers as every retailer of the brand " \
        "and the minimum return per ad dollar as $0.10; the brief's own words give the " \
        "retailers and minimum return per ad dollar above |" in md  # fmt: skip
    assert "| Check | Share held for experiments: the language model read 0.2, and a second " \
        "reading of the brief's words could not confirm it; check it against the brief |" \
        in md  # fmt: skip
    assert "| Note | Read by rules alone: the model's reading could not be used |" in md
    assert "Warning" not in md and "parsed by the rules" not in md
    # the confirm question keeps each note, in words
    assert note_words(plan.brief.warnings[0]).startswith("Retailers: the model read every")


def test_risk_rows_keep_roas_in_capitals_and_list_costly_caps_first() -> None:
    """ "Little room above the roas floor" (the factor capitalized with str.capitalize) and a
    binding-caps row listing six caps alphabetically, $0.04 before $0.73 (sa10 and sa21 of
    unseen38, read after the round's fixes)."""
    plan = make_plan()
    assert plan.expected_outcome is not None
    floor = plan.expected_outcome.iroas.mean / 1.03
    plan = plan.model_copy(update={"brief": plan.brief.model_copy(update={"roas_floor": floor})})
    s = signals_from(plan, curve_cv=0.1, coverage=1.0, flags=0, names=NAMES)
    s = s.model_copy(update={"binding_caps": {"alpha/display_onsite": 0.04,
                                              "beta/sponsored_search": 0.73}})  # fmt: skip
    caps = next(r for r in risks(s) if r.factor == "binding caps")
    assert caps.signal.startswith("caps bind at Beta Grocers, sponsored search ($0.73")
    from tools.plan.reflection import reflect

    plan.reflection = reflect(plan, s, [], None, threshold=0.8)
    assert "| Little room above the ROAS floor |" in render_markdown(plan, [], names=NAMES)


def test_round_four_words_after_the_measure() -> None:
    """From the reports of unseen39 (read after its measure): "the model read 4 where the
    brief's words alone give none" of a brief saying "don't let it go below 4x" (ta07: false,
    the rule reader missed it); "the brief corrects its objective; used incremental_revenue"
    (ta15: a field value); "It still places the whole budget, as a plan does unless the
    approver edits the minimum share of the budget placed" beside a reserve left unspent
    (read as a contradiction in 3 reports)."""
    from tools.plan.labels import note_words

    assert note_words("roas_floor: 4 read by the model only; check it") == (
        "Minimum return per ad dollar: the language model read 4, and a second reading of the "
        "brief's words could not confirm it; check it against the brief")  # fmt: skip
    # ("which the rule-based reader could not confirm" was jargon: va12, va31 of unseen41)
    assert note_words("the brief corrects its objective; used incremental_revenue") == (
        "Goal: maximize incremental revenue, the brief's last word on it")
    plan = _people_plan()
    plan.brief.objective = "roas"
    plan.shadow_prices = {"spendable": 0.0, "budget": 0.0, "group_caps": {}}
    assert plan.expected_outcome is not None
    plan.expected_outcome.spend = 40_500.0
    md = render_markdown(plan, [], names=NAMES)
    # ... and what that means for its goal (wa08, wa21 of unseen42: "at odds")
    # (and unseen44: "it maximizes revenue, not its return") at that spend the most revenue
    # is the highest return
    assert "as a plan spends what the brief gives it; at that spend, the split with the most " \
        "extra revenue is the one with the highest return per ad dollar" in md  # fmt: skip


def test_the_brief_table_says_what_kept_out_of_stock_products_get_and_a_holdout_read() -> None:
    """Round 5 of what the approver reads: "keep OOS items in" left the spend on them unsaid,
    and "hold out 20%" was read as budget without saying so (reviewers of unseen38/39)."""
    plan = _people_plan()
    plan.brief.exclude_oos = False
    plan.allocation[0].likely_out_of_stock = True
    row = plan.allocation[0]
    share = f"{row.spend / sum(r.spend for r in plan.allocation):.1%}".replace(".0%", "%")
    md = render_markdown(plan, [], names=NAMES)
    assert (f"| Leave out products likely out of stock | no: 1 product likely out of stock "
            f"({NAMES[row.gtin]}) gets ${row.spend:,.0f} of the planned spend ({share}); an ad "
            "for a product out of stock sells nothing, so check their stock before approving |"
            ) in md  # fmt: skip
    # four are named, not "three and 1 more" (ua04 of round 5's measure); five say how many
    from tools.plan.labels import and_some

    assert and_some(list("abcd")) == "a, b, c and d"
    assert and_some(list("abcde")) == "a, b, c and 2 more"
    plan.allocation[0].likely_out_of_stock = False
    md = render_markdown(plan, [], names=NAMES)
    assert "| no; none of the products the plan funds is likely out of stock |" in md
    plan.brief.warnings = ["experiment_reserve: the brief's 20% holdout is read as 20% of the "
                           "budget held for the test, not 20% of the market held out"]  # fmt: skip
    assert ("| Note | Share held for experiments: the brief's 20% holdout is read as 20% of the "
            "budget held for the test, not 20% of the market held out |"
            ) in render_markdown(plan, [], names=NAMES)  # fmt: skip
    # a note to check reads as a sentence under its row's name, not "...; check it"
    plan.brief.warnings = ["the budget is given for a year ('this yr') but the brief gives "
                           "no dates: it is planned over the standard four weeks; check it"]
    assert ("| Check | The budget is given for a year ('this yr') but the brief gives no dates: it "
            "is planned over the standard four weeks |") in render_markdown(plan, [], names=NAMES)


def test_products_with_revenue_but_no_margin_are_explained() -> None:
    """ "$31,374 of extra revenue with $0 extra margin is not explained" (ua06 and ua38 of
    round 5's measure): the products are named, with why."""
    plan = _people_plan()
    assert "No extra margin on" not in render_markdown(plan, [], names=NAMES)
    row = plan.allocation[0]
    row.expected_margin = 0.0
    md = render_markdown(plan, [], names=NAMES)
    # one reason, the one that can happen, and what the product gets (ua48, ua53 of unseen40)
    assert (f"No extra margin on {NAMES[row.gtin]} (${row.spend:,.0f} of spend, "
            f"${row.expected_revenue:,.0f} of extra revenue): its unit cost is at or near its "
            "list price, so over the flight, promotions included, it sells at or below cost, "
            "and its extra sales bring revenue but no margin.") in md  # fmt: skip
    other = plan.allocation[1]
    other.expected_margin = 0.0
    both = (row.spend + other.spend, row.expected_revenue + other.expected_revenue)
    assert (f"(${both[0]:,.0f} of spend, ${both[1]:,.0f} of extra revenue in all): their unit "
            "costs are at or near their list prices") in render_markdown(plan, [], names=NAMES)


def test_the_experiment_says_whose_return_it_is_judged_at() -> None:
    """The experiment's "Expected return per ad dollar" was read as the test retailer's while
    it was the whole plan's (ua25, ua30 of round 5's measure): it is the retailer's now, and
    says so."""
    plan = _people_plan()
    assert plan.experiment is not None
    plan.experiment = {**plan.experiment, "expected_iroas": 3.8}
    md = render_markdown(plan, [], names=NAMES)
    assert "| Extra revenue per ad dollar the plan expects at that retailer | $3.80 |" in md


def test_a_governance_finding_names_the_variants_retailer_and_product() -> None:
    """ "copy variant 1, body" sent approvers to a copy table a printed summary may leave out
    (round 5): the variant says its retailer and product where a finding names it."""
    plan = _people_plan()
    v = plan.copy_variants[0]
    plan.governance = [Finding(type="prohibited_claim", where="copy[0].body", severity="block",
                               action="blocked", text="cures colds")]  # fmt: skip
    md = render_markdown(plan, [], names=NAMES)
    where = f"copy variant 1 ({retailer_name(v.retailer_id)}, {NAMES[v.gtin]}), body"
    assert f"| prohibited claim | {where} |" in md, md.split("## Governance")[1]
    # two variants of one product at one retailer: told apart by their headlines (sa50)
    plan.copy_variants = [v, v.model_copy(update={"headline": "Crunch time"})]
    md = render_markdown(plan, [], names=NAMES)
    assert f'{where.removesuffix("), body")}, "{cell(v.headline)}"), body |' in md


def test_a_next_budget_dollar_under_a_dollar_of_margin_says_it_loses() -> None:
    """ "One more dollar of total budget (the same share held for experiments) | $0.54" on a
    margin plan holding nothing for experiments: the share meant nothing there, and the row
    did not say the last dollars lose money after their own cost (va50 of unseen41); nor did
    "$1.2599" say more budget would add margin (va39). The ad dollar's price where there is
    one: "$0.92 ... a smaller budget would keep more" beside an ad dollar's $1.03 read as wrong
    (va14)."""
    plan = _people_plan()
    plan.shadow_prices = {"spendable": 0.6, "budget": 0.5358, "retailer_caps": {}}
    assert plan.brief.objective == "incremental_margin"
    loses = ("brings $0.60 of extra margin, less than the dollar it costs: a smaller budget "
             "would keep more margin after ad spend.")  # fmt: skip
    md = render_markdown(plan, [], names=NAMES)
    assert f"The next ad dollar {loses}" in md
    # not "slightly", beside a risk advising a budget 80% smaller (wa36 of unseen42), and
    # pointing to it where the risks give it
    from tools.plan.reflection import reflect

    plan.reflection = reflect(plan, signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0), [],
                              None, threshold=0.8)  # fmt: skip
    assert "keeps the most margin" not in str(plan.reflection)
    plan.reflection.risk_assessment.high_risk_factors.append(Risk(
        factor="a net loss after ad spend", severity="high", signal="",
        mitigation="a budget of about $9k keeps the most margin after ad spend: ..."))
    assert "would keep more margin after ad spend; the risks below give the budget that keeps " \
        "the most." in render_markdown(plan, [], names=NAMES)  # fmt: skip
    plan.reflection = None
    assert "(the same share held for experiments) | $0.54" in md
    plan.brief.experiment_reserve = 0.0
    md = render_markdown(plan, [], names=NAMES)
    assert "| One more dollar of total budget | $0.54 |" in md
    assert "The next dollar of budget brings $0.54 of extra margin, less than" in md
    plan.shadow_prices = {"budget": 1.2599, "retailer_caps": {}}
    assert "The next dollar of budget brings $1.26 of extra margin, more than the dollar it " \
        "costs: a larger budget would add margin after ad spend." in render_markdown(
            plan, [], names=NAMES)  # fmt: skip
    plan.brief.experiment_reserve = 0.1
    plan.shadow_prices = {"spendable": 1.03, "budget": 0.92, "retailer_caps": {}}
    assert "The next ad dollar brings $1.03 of extra margin, more than" in render_markdown(
        plan, [], names=NAMES)
    plan.brief.objective = "incremental_revenue"  # revenue per dollar: no loss to say
    plan.shadow_prices = {"budget": 0.5358, "retailer_caps": {}}
    assert "the dollar it costs" not in render_markdown(plan, [], names=NAMES)


def test_a_reserve_held_to_test_ad_formats_says_the_design_does_not_compare_them() -> None:
    """ "Keep 25% for experiments since we're testing new ad formats" above a geo holdout that
    measures the plan's lift: the report never said the formats go untested (wa19 of
    unseen42)."""
    plan = make_plan()
    assert plan.experiment is not None and "What it does not test" not in render_markdown(
        plan, [], names=NAMES)
    plan.brief_text += " Keep 25% for experiments since we're testing new ad formats."
    md = render_markdown(plan, [], names=NAMES)
    retailer = retailer_name(plan.experiment["retailer"])
    assert "| What it does not test | the brief's 'testing new ad formats': this design measures " \
        f"the lift of the plan's ads at {retailer}, not one format, creative or placement " \
        "against another |" in md  # fmt: skip


def test_a_plan_that_qualifies_but_awaits_a_person_says_auto_approval_is_off() -> None:
    """ "with auto-approval on, ...; this plan meets both" on a report awaiting a decision:
    "It does not say whether auto-approval is on" (wa08, wa21 of unseen42). A plan that meets
    the rule and is undecided was not auto-approved, so the run's auto-approval is off."""
    from datetime import UTC, datetime

    from tools.plan.reflection import reflect

    plan = make_plan()
    plan.decision = None
    r = reflect(plan, signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0), [], None,
                threshold=0.8)  # fmt: skip
    plan.reflection = r.model_copy(update={
        "confidence": r.confidence.model_copy(update={
            "value": 0.83, "computed": None, "held_below": None, "held_for": []}),
        "decision_threshold": "its confidence is at least 0.80 and it has no governance flags; "
        "this plan meets both"})  # fmt: skip
    said = "this plan meets both, yet it awaits a person's decision: auto-approval is off for " \
        "this run)."
    assert said in render_markdown(plan, [], names=NAMES)
    plan.decision = Decision(action="approve", by="human", at=datetime(2026, 12, 6, tzinfo=UTC))
    assert "auto-approval is off" not in render_markdown(plan, [], names=NAMES)
    plan.decision = None
    plan.reflection.decision_threshold = (
        "its confidence is at least 0.80 and it has no governance flags; this plan does not, as "
        "its confidence is below 0.80")
    assert "auto-approval is off" not in render_markdown(plan, [], names=NAMES)


def test_a_named_retailer_the_plan_gives_nothing_is_said() -> None:
    """ "Alpha Mart and Delta Home" was planned on Alpha Mart alone and no table said a word of
    Delta Home (ya48 of unseen44, rated misleading): the allocation says it gets nothing, and
    why, in the goal's units."""
    from tools.plan import Unfunded

    plan = make_plan()
    plan.unfunded = {"delta": Unfunded(minimum=1_240.0, best_return=0.05),
                     "gamma": Unfunded()}  # fmt: skip
    least = min(r.marginal_return for r in plan.allocation if r.marginal_return is not None)
    section = render_markdown(plan, [], names=NAMES).split("## Allocation")[1].split("\n## ")[0]
    assert ("Delta Home, which the brief names, gets nothing: a line there must get at least "
            "$1,240 (its minimum daily budget over the flight), and at that spend its best line "
            "brings $0.05 of extra margin per dollar, less than the next dollar brings on every "
            f"line the plan funds (${least:,.2f} or more).") in section  # fmt: skip
    assert "Gamma Pharmacy, which the brief names, gets nothing: it has no line the plan could " \
        "fund." in section  # fmt: skip
    plan.unfunded = {}
    assert "gets nothing" not in render_markdown(plan, [], names=NAMES)


def test_lines_that_lose_money_after_ad_spend_are_said() -> None:
    """ "Sport Shampoo gets $11,026 for $7,439 of margin, a loss after ad cost, and isn't
    flagged" (ten reports of unseen44's finding half): the allocation says how many lines
    lose money after their spend, what they spend and bring, and the worst of them."""
    plan = make_plan()
    plan.brief.objective = "incremental_revenue"
    low, lower = plan.allocation[0], plan.allocation[1]
    low.expected_margin, lower.expected_margin = low.spend - 100.0, lower.spend - 5_000.0
    md = render_markdown(plan, [], names=NAMES)
    said = next(line for line in md.splitlines() if line.startswith("After ad spend"))
    spend = low.spend + lower.spend
    worst = line_words(lower.retailer_id, lower.placement, lower.gtin, NAMES)
    assert said == (
        f"After ad spend, 2 lines of the {sum(r.spend > 0 for r in plan.allocation)} placed lose "
        "money, as the goal "
        f"is revenue, not margin: ${spend:,.0f} of spend for ${spend - 5_100:,.0f} of extra "
        f"margin; the most on {worst}: ${lower.spend:,.0f} of spend for "
        f"${lower.spend - 5_000:,.0f} of margin.")  # fmt: skip
    # a line with no margin counts too: left out, reviewers counted it and read the figures
    # as wrong (5 reports of unseen44's measure)
    bare = next(r for r in plan.allocation[2:] if r.spend > 0)
    bare.expected_margin = 0.0
    said = next(line for line in render_markdown(plan, [], names=NAMES).splitlines()
                if line.startswith("After ad spend"))  # fmt: skip
    assert said.startswith("After ad spend, 3 lines of the")
    low.expected_margin = lower.expected_margin = bare.expected_margin = 10 * low.spend
    assert "After ad spend" not in render_markdown(plan, [], names=NAMES)


def test_no_floor_is_named_among_the_limits_of_a_brief_without_one() -> None:
    """ "The other 10 limits (...; the minimum return per ad dollar)" of a brief with no
    minimum read as wrong (4 reports of unseen44's measure); lines at their minimum are named
    beside the budget where it alone held the plan back."""
    plan = _people_plan()
    plan.brief.roas_floor = None
    plan.shadow_prices = {"budget": 0.3, "roas_floor_per_unit": 0.0, "group_caps": {"alpha": 0.0}}
    limits = render_markdown(plan, [], names=NAMES).split("## What each limit costs")[1]
    limits = limits.split("\n## ")[0]
    assert "The other 1 limit (the monthly placement cap at Alpha Mart) costs" in limits
    assert "minimum return" not in limits
    plan.brief.objective = "roas"
    plan.shadow_prices = {"spendable": 0.0, "budget": 0.0, "group_caps": {}}
    assert plan.expected_outcome is not None
    plan.expected_outcome.spend = plan.brief.total_budget * (1 - plan.brief.experiment_reserve)
    plan.allocation[0].minimum = plan.allocation[0].spend
    md = render_markdown(plan, [], names=NAMES)
    assert "Only the budget and the minimums the allocation names hold the plan back." in md


def test_the_optimizer_node_keeps_the_retailers_it_gives_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The allocation's `unfunded` reaches the plan the report reads: the node dropped it, so
    "Gamma Pharmacy gets nothing, and the report doesn't say why" (ya22, ya38 of unseen44)."""
    import nodes.optimizer as node
    from graph.state import State
    from tools.pipeline.allocation import AllocationPlan
    from tools.plan import Unfunded

    plan = make_plan()
    assert plan.expected_outcome is not None
    plan.expected_outcome.incremental_margin = Interval(mean=9e9, low=9e9, high=9e9)
    gamma = {"gamma": Unfunded(minimum=2_500.0, best_return=0.05)}
    result = AllocationPlan(status="optimal", solver_status="optimal", rows=plan.allocation,
                            expected=plan.expected_outcome, unfunded=gamma)  # fmt: skip
    monkeypatch.setattr(node, "plan_allocation", lambda curves, req: result)
    monkeypatch.setattr(node, "curves_of", lambda state, runtime: None)
    state = State(brief=plan.brief_text, parsed=plan.brief.model_dump(mode="json"),
                  plan=plan.model_dump(mode="json", by_alias=True))  # fmt: skip
    out = node.optimizer.__wrapped__(state, None)  # type: ignore[attr-defined]
    assert Plan.model_validate(out["plan"]).unfunded == gamma


def test_a_brief_split_is_said_with_what_it_costs() -> None:
    """ "Alpha $200k / Beta $150k" was planned freely and the report said "the split itself is
    not part of the brief" (3 of the 9 misleading reports of unseen45's measure): the brief
    table gives the split, the allocation what each retailer gets under it, its next dollar
    there, and what the optimizer's own split would bring; the limits are priced as the split
    divides a dollar."""
    plan = make_plan()
    plan = plan.model_copy(update={
        "brief": plan.brief.model_copy(update={"roas_floor": None, "experiment_reserve": 0.1,
                                               "retailer_split": {"alpha": 36_000, "beta": 9_000}}),
        "shadow_prices": {"spendable": 1.9, "budget": 1.71, "retailer_caps": {}},
        "split_cost": SplitCost(next_dollar={"alpha": 2.1, "beta": 1.1},
                                free_spend={"alpha": 30_000, "beta": 10_000},
                                free_revenue=130_000, free_margin=39_500),
    })  # fmt: skip
    md = render_markdown(plan, [])
    assert "| Split by retailer | Alpha Mart $36,000, Beta Grocers $9,000; the ads follow it " \
        "after the reserve |" in md
    assert "The brief splits the budget: Alpha Mart $36,000 and Beta Grocers $9,000. The ads " \
        "follow that split, less the 10% held for experiments: Alpha Mart gets $24,000 of its " \
        "$32,400 and Beta Grocers gets $16,000." in md
    assert "Under it, the next ad dollar brings $2.10 of extra margin at Alpha Mart and $1.10 " \
        "at Beta Grocers." in md
    assert "Left to the optimizer, the same ad budget would go Alpha Mart $30,000 and Beta " \
        "Grocers $10,000 and bring $2,500 more expected extra margin ($39,500 against " \
        "$37,000): to plan that instead, edit the plan and set retailer_split to null." in md
    assert "| One more ad dollar, divided as the brief splits the budget | $1.90 |" in md
    assert "cap at Alpha Mart" not in md
    # the default reserve said as such, and the retailers the optimizer's own split leaves out
    # (unseen48's measure)
    default = plan.model_copy(update={
        "brief": plan.brief.model_copy(update={"defaults": ["experiment_reserve"]}),
        "split_cost": plan.split_cost.model_copy(update={"free_spend": {"alpha": 40_000}}),
    })  # fmt: skip
    md = render_markdown(default, [])
    assert "less the 10% held for experiments (the default: the brief gives no share; a " \
        "reserve of 0% gives each retailer its whole amount):" in md
    assert "would go Alpha Mart $40,000 (nothing at Beta Grocers) and bring" in md
    # a ROAS plan that spends its ad budget: the split holds it back too, not the budget alone
    roas = plan.model_copy(update={
        "brief": plan.brief.model_copy(update={"objective": "roas", "total_budget": 40_000 / 0.9}),
        "shadow_prices": {"spendable": 0.0, "budget": 0.0, "retailer_caps": {}},
    })  # fmt: skip
    assert "Only the budget and the brief's split by retailer (see Allocation) hold the plan " \
        "back." in render_markdown(roas, [])
    capped = plan.model_copy(update={"brief": plan.brief.model_copy(
        update={"retailer_split": {}, "retailer_caps": {"beta": 20_000}})})  # fmt: skip
    md = render_markdown(capped, [])
    assert "| Caps on ad spend | Beta Grocers at most $20,000 |" in md
    assert "Split by retailer" not in md and "The brief splits" not in md
