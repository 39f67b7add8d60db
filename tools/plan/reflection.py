"""The reflection record on a plan: how sure the plan is, computed from measured signals, the
risks those signals point at, and words on other ways to read the plan.

    signals = signals_from(plan, curve_cv=0.18, coverage=0.92, flags=0)
    plan.reflection = reflect(plan, signals, memory=store.similar(...), llm=llm, threshold=0.8)

The numbers (confidence, its factors, the risks and their mitigations) are computed here; the
chat model only writes the alternate frames and the bias checkpoint, and when its words are not
usable a template writes them (`written_by="template"`).

Confidence is a product of six factors, each in (0, 1] and each monotone in its signal:

| factor      | signal                                      | formula                              |
|-------------|---------------------------------------------|--------------------------------------|
| uncertainty | u: curve CV, else margin width/mean/3.29    | 1/(1 + (u/0.5)^2); 0.85 unknown      |
| coverage    | c: share of spend on lines with enough data | 0.5 + 0.5 c; 0.85 unknown            |
| slack       | s: (iROAS - floor)/floor; n binding caps    | (0.8 + 0.2 clip(s/0.2,-1,1)) 0.97^n  |
| governance  | f: governance flags                         | 0.75^f                               |
| solver      | solver status                               | 1 ok, 0.9 inaccurate, 0.3 failed     |
| experiment  | p: power at the expected iROAS; t: target   | 0.9 + 0.1 min(p/t, 1); 0.95 none     |

So a plan with curve CV 0.5 halves its confidence, a plan with no covered spend halves it, a
plan sitting exactly on its ROAS floor loses a fifth, and each governance flag costs a quarter.

With SmolLM2-135M the words rarely pass `usable_words` (its answers are loops or copies of the
prompt), so callers that want speed pass `llm=None` and get the template at once.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from tools.errors import RMNError
from tools.plan import Confidence, Plan, Reflection, Risk, RiskAssessment

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel

# The width of a 90% normal interval in standard deviations (2 x 1.645): turns an interval's
# relative width into a coefficient of variation.
Z90_WIDTH = 3.29
U_HALF = 0.5  # uncertainty at which the uncertainty factor is 1/2
COVERAGE_UNKNOWN = 0.85
UNCERTAINTY_UNKNOWN = 0.85
SLACK_FULL = 0.2  # ROAS slack at which the floor costs nothing
FLOOR_COST = 0.2  # what sitting exactly on the floor costs
CAP_COST = 0.97  # per binding retailer cap
FLAG_COST = 0.75  # per governance flag
SOLVER_INACCURATE = 0.9
SOLVER_FAILED = 0.3
EXPERIMENT_NONE = 0.95
DEFAULT_TARGET_POWER = 0.8
REFLECTION_TASK: str | None = None  # the adapter task the reflection words are written under
MAX_WORD_TOKENS = 80

_LETTERS = re.compile(r"[A-Za-z]")
_MARKUP = re.compile(r"[<>{}\[\]|\\]|https?://")


class ReflectionError(RMNError):
    kind = "reflection_error"


class ReflectionSignals(BaseModel):
    """The measured inputs of a plan's confidence."""

    curve_uncertainty: float | None = Field(
        None, ge=0, description="curve CV, else the margin interval's relative width / 3.29"
    )
    uncertainty_source: str = Field("none", description="curve_cv | margin_interval | none")
    coverage: float | None = Field(
        None, ge=0, le=1, description="share of spend on lines with enough data"
    )
    roas_floor: float | None = None
    iroas: float | None = Field(None, description="expected iROAS of the plan (mean)")
    roas_slack: float | None = Field(None, description="(iROAS - floor) / floor; None: no floor")
    binding_caps: dict[str, float] = Field(
        default_factory=dict, description="retailer -> shadow price of its binding cap"
    )
    governance_flags: int = Field(0, ge=0)
    solver_status: str | None = None
    solver_ok: bool = False
    solver_inaccurate: bool = False
    experiment_power: float | None = Field(None, ge=0, le=1)
    experiment_target_power: float = DEFAULT_TARGET_POWER
    experiment_adequate: bool | None = None
    experiment_budget_for_target: float | None = None
    spend: float = 0.0
    lines: int = 0
    top_retailer: str | None = None
    top_retailer_share: float | None = None
    weakest_lines: list[str] = Field(
        default_factory=list, description="lines with the lowest marginal return, weakest first"
    )


class ReflectionWords(BaseModel):
    """What the chat model writes: two other ways to read the plan and a bias to check."""

    alternate_frames: list[str] = Field(min_length=2, max_length=2)
    bias_checkpoint: str


# Decoded under this schema: the grammar admits only plain sentences (a capital, then words;
# no digits, markup or symbols), so the model cannot put a number into the record, and the
# bounded word counts and lengths keep the answer within MAX_WORD_TOKENS. (The lengths live in
# the pattern: the grammar compiler cannot intersect a pattern with maxLength.)
SENTENCE_PATTERN = r"^[A-Z][a-z']{1,13}(,? [A-Za-z'-]{1,13}){3,9}[.?]?$"
WORDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "alternate_frames": {
            "type": "array",
            "items": {"type": "string", "pattern": SENTENCE_PATTERN},
            "minItems": 2,
            "maxItems": 2,
        },
        "bias_checkpoint": {"type": "string", "pattern": SENTENCE_PATTERN},
    },
    "required": ["alternate_frames", "bias_checkpoint"],
}


# --- signals --------------------------------------------------------------------------------


def signals_from(
    plan: Plan, curve_cv: float | None, coverage: float | None, flags: int
) -> ReflectionSignals:
    """The plan's measured signals. `curve_cv`: the fitted curves' coefficient of variation
    (None: read the margin interval instead); `coverage`: share of spend on lines with enough
    data (None: not measured); `flags`: governance findings that block or warn."""
    outcome = plan.expected_outcome
    uncertainty, source = None, "none"
    if curve_cv is not None and math.isfinite(curve_cv):
        uncertainty, source = max(float(curve_cv), 0.0), "curve_cv"
    elif outcome is not None and outcome.incremental_margin.mean:
        m = outcome.incremental_margin
        width = abs(m.high - m.low) / abs(m.mean)
        uncertainty, source = width / Z90_WIDTH, "margin_interval"
    floor = plan.brief.roas_floor
    iroas = outcome.iroas.mean if outcome is not None else None
    slack = (iroas - floor) / floor if floor and iroas is not None else None
    caps = plan.shadow_prices.get("retailer_caps") or {}
    binding = {str(k): float(v) for k, v in caps.items() if _number(v) and float(v) > 1e-9}
    status = (plan.solver_status or "").lower()
    failed = any(w in status for w in ("infeasible", "unbounded", "error", "fail"))
    solver_ok = bool(plan.allocation) and bool(status) and not failed
    spend = sum(r.spend for r in plan.allocation)
    by_retailer: dict[str, float] = {}
    for row in plan.allocation:
        by_retailer[row.retailer_id] = by_retailer.get(row.retailer_id, 0.0) + row.spend
    top = max(by_retailer, key=lambda r: by_retailer[r]) if by_retailer and spend > 0 else None
    funded = [r for r in plan.allocation if r.spend > 0 and r.marginal_return is not None]
    weakest = sorted(funded, key=lambda r: (r.marginal_return, r.retailer_id, r.placement))
    experiment = plan.experiment or {}
    power = experiment.get("power")
    target = experiment.get("target_power") or DEFAULT_TARGET_POWER
    need = experiment.get("budget_for_target_power")
    return ReflectionSignals(
        curve_uncertainty=uncertainty,
        uncertainty_source=source,
        coverage=None if coverage is None else min(max(float(coverage), 0.0), 1.0),
        roas_floor=floor,
        iroas=iroas,
        roas_slack=slack,
        binding_caps=binding,
        governance_flags=max(int(flags), 0),
        solver_status=plan.solver_status,
        solver_ok=solver_ok,
        solver_inaccurate=solver_ok and "inaccurate" in status,
        experiment_power=float(power) if _number(power) else None,
        experiment_target_power=float(target),
        experiment_adequate=experiment.get("adequate") if experiment else None,
        experiment_budget_for_target=float(need) if _number(need) else None,
        spend=spend,
        lines=sum(1 for r in plan.allocation if r.spend > 0),
        top_retailer=top,
        top_retailer_share=by_retailer[top] / spend if top else None,
        weakest_lines=[f"{r.retailer_id}/{r.placement}/{r.gtin}" for r in weakest[:3]],
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- confidence -----------------------------------------------------------------------------


def factors(signals: ReflectionSignals) -> dict[str, float]:
    """The six confidence factors (see the module docstring), each in (0, 1]."""
    u = signals.curve_uncertainty
    f_unc = 1.0 / (1.0 + (u / U_HALF) ** 2) if u is not None else UNCERTAINTY_UNKNOWN
    c = signals.coverage
    f_cov = 0.5 + 0.5 * c if c is not None else COVERAGE_UNKNOWN
    f_slack = CAP_COST ** len(signals.binding_caps)
    if signals.roas_slack is not None:
        s = min(max(signals.roas_slack / SLACK_FULL, -1.0), 1.0)
        f_slack *= 1.0 - FLOOR_COST + FLOOR_COST * s
    f_flags = FLAG_COST**signals.governance_flags
    if not signals.solver_ok:
        f_solver = SOLVER_FAILED
    else:
        f_solver = SOLVER_INACCURATE if signals.solver_inaccurate else 1.0
    p = signals.experiment_power
    if p is not None:
        f_exp = 0.9 + 0.1 * min(p / signals.experiment_target_power, 1.0)
    elif signals.experiment_adequate is not None:
        f_exp = 1.0 if signals.experiment_adequate else 0.9
    else:
        f_exp = EXPERIMENT_NONE
    return {
        "uncertainty": f_unc,
        "coverage": f_cov,
        "slack": f_slack,
        "governance": f_flags,
        "solver": f_solver,
        "experiment": f_exp,
    }


def confidence(signals: ReflectionSignals) -> Confidence:
    """The plan's confidence: the product of `factors`, with a rationale written from the
    numbers and the signals it was computed from."""
    f = factors(signals)
    value = round(min(max(math.prod(f.values()), 0.0), 1.0), 3)
    product = " x ".join(f"{name} {v:.2f}" for name, v in f.items())
    rationale = f"{value:.2f} = {product}. " + " ".join(_signal_sentences(signals)) + "."
    measured: dict[str, float] = {f"factor_{k}": round(v, 4) for k, v in f.items()}
    raw = {
        "curve_uncertainty": signals.curve_uncertainty,
        "coverage": signals.coverage,
        "roas_slack": signals.roas_slack,
        "binding_caps": float(len(signals.binding_caps)),
        "governance_flags": float(signals.governance_flags),
        "solver_ok": 1.0 if signals.solver_ok else 0.0,
        "experiment_power": signals.experiment_power,
    }
    measured.update({k: round(float(v), 4) for k, v in raw.items() if v is not None})
    return Confidence(value=value, rationale=rationale, signals=measured)


def _signal_sentences(s: ReflectionSignals) -> list[str]:
    out = []
    if s.curve_uncertainty is None:
        out.append("Curve uncertainty not measured")
    elif s.uncertainty_source == "curve_cv":
        out.append(f"Curve CV {s.curve_uncertainty:.2f}")
    else:
        out.append(f"Margin interval implies a CV of {s.curve_uncertainty:.2f}")
    out.append(
        "data coverage not measured"
        if s.coverage is None
        else f"{s.coverage:.0%} of spend on lines with enough data"
    )
    if s.roas_slack is not None and s.iroas is not None and s.roas_floor is not None:
        side = "above" if s.roas_slack >= 0 else "below"
        out.append(
            f"iROAS {s.iroas:.2f} is {abs(s.roas_slack):.0%} {side} the {s.roas_floor:.2f} floor"
        )
    else:
        out.append("no ROAS floor")
    out.append(
        f"{len(s.binding_caps)} binding retailer cap(s) ({', '.join(sorted(s.binding_caps))})"
        if s.binding_caps
        else "no binding retailer caps"
    )
    out.append(
        f"{s.governance_flags} governance flag(s)" if s.governance_flags else "no governance flags"
    )
    out.append(f"solver {s.solver_status or 'did not run'}")
    if s.experiment_power is not None:
        out.append(
            f"experiment power {s.experiment_power:.2f} (target {s.experiment_target_power:.2f})"
        )
    elif s.experiment_adequate is None:
        out.append("no experiment designed")
    return ["; ".join(out)]


# --- risks ----------------------------------------------------------------------------------


def risks(signals: ReflectionSignals) -> list[Risk]:
    """A risk for every factor that costs confidence, with a mitigation drawn from the plan."""
    f = factors(signals)
    out: list[Risk] = []

    def severity(v: float) -> str:
        return "high" if v < 0.7 else "medium" if v < 0.9 else "low"

    s = signals
    if f["uncertainty"] < 0.95 and s.curve_uncertainty is not None:
        out.append(
            Risk(
                factor="response curve uncertainty",
                severity=severity(f["uncertainty"]),
                signal=f"{s.uncertainty_source.replace('_', ' ')} {s.curve_uncertainty:.2f}",
                mitigation="keep the experiment reserve and re-fit the curves on its readout "
                "before scaling; hold lines near the spend levels seen in history",
            )
        )
    if s.coverage is not None and f["coverage"] < 0.95:
        out.append(
            Risk(
                factor="thin data coverage",
                severity=severity(f["coverage"]),
                signal=f"{1 - s.coverage:.0%} of spend on lines without enough data",
                mitigation="treat the thin lines as test cells, or move their spend to lines "
                "with history",
            )
        )
    if s.roas_slack is not None and s.roas_slack < SLACK_FULL and s.roas_floor is not None:
        weakest = ", ".join(s.weakest_lines[:2]) or "the lowest-return lines"
        out.append(
            Risk(
                factor="little room above the ROAS floor",
                severity=severity(f["slack"]),
                signal=f"expected iROAS {s.iroas:.2f} vs floor {s.roas_floor:.2f}",
                mitigation=f"track iROAS weekly and cut {weakest} first if it slips toward the "
                "floor",
            )
        )
    if s.binding_caps:
        caps = ", ".join(f"{r} ({v:.2f} per $)" for r, v in sorted(s.binding_caps.items()))
        out.append(
            Risk(
                factor="binding retailer caps",
                severity="low" if len(s.binding_caps) == 1 else "medium",
                signal=f"caps bind at {caps}",
                mitigation="ask those retailers for a higher cap, or accept the return forgone "
                "(the shadow price per extra dollar)",
            )
        )
    if s.governance_flags:
        out.append(
            Risk(
                factor="governance findings",
                severity=severity(f["governance"]),
                signal=f"{s.governance_flags} finding(s)",
                mitigation="resolve every finding before launch; the plan cannot auto-approve",
            )
        )
    if not s.solver_ok or s.solver_inaccurate:
        out.append(
            Risk(
                factor="solver result",
                severity=severity(f["solver"]),
                signal=f"solver {s.solver_status or 'did not run'}",
                mitigation="review the constraints and re-run the optimizer before approving",
            )
        )
    p, target = s.experiment_power, s.experiment_target_power
    if s.experiment_adequate is False or (p is not None and p < target):
        need = s.experiment_budget_for_target
        more = f"raise the reserve to ${need:,.0f}" if need else "raise the reserve"
        ratio = p / target if p is not None else 0.5
        out.append(
            Risk(
                factor="underpowered experiment",
                severity="high" if ratio < 0.5 else "medium",
                signal=f"power {p:.2f} vs target {target:.2f}"
                if p is not None
                else "the reserve does not reach the target power",
                mitigation=f"{more} or extend the test, or read it as directional only",
            )
        )
    return out


# --- the record -----------------------------------------------------------------------------


def reflect(
    plan: Plan,
    signals: ReflectionSignals,
    memory: list[str],
    llm: RMNChatModel | None,
    threshold: float,
    *,
    task: str | None = REFLECTION_TASK,
) -> Reflection:
    """The reflection record: memory references, alternate frames, risks with mitigations,
    computed confidence, the decision threshold and a bias checkpoint. `llm` (bound to `task`,
    no task adapter by default) writes the frames and the bias note; without it, or when its
    words are unusable, the template writes them."""
    if not 0 <= threshold <= 1:
        raise ReflectionError(
            f"the confidence threshold must be in [0, 1], not {threshold}", threshold=threshold
        )
    found = risks(signals)
    words, written_by = None, "template"
    if llm is not None:
        words = _llm_words(plan, signals, found, memory, llm, task)
        if words is not None:
            written_by = "llm"
    if words is None:
        words = template_words(plan, signals, memory)
    return Reflection(
        phase="reflection",
        memory_reference=list(memory[:3]),
        alternate_frames=words.alternate_frames,
        risk_assessment=RiskAssessment(
            high_risk_factors=found,
            mitigation=list(dict.fromkeys(r.mitigation for r in found)),
        ),
        confidence=confidence(signals),
        decision_threshold=f"confidence >= {threshold:.2f} and no governance flags",
        bias_checkpoint=words.bias_checkpoint,
        written_by=written_by,
    )


def template_words(plan: Plan, signals: ReflectionSignals, memory: list[str]) -> ReflectionWords:
    """Frames and a bias note written from the plan's own numbers."""
    objective = plan.brief.objective
    other = "incremental revenue" if objective != "incremental_revenue" else "incremental margin"
    frames = [
        f"Judge the split on {other} instead of {objective.replace('_', ' ')}: would the "
        "ranking of lines change?"
    ]
    if signals.top_retailer and signals.top_retailer_share is not None:
        frames.append(
            f"Concentration: {signals.top_retailer_share:.0%} of spend goes to "
            f"{signals.top_retailer}; is one network's curve worth that much of the flight?"
        )
    else:
        frames.append("Short term versus long term: does this flight build or borrow demand?")
    if memory:
        bias = (
            f"Anchoring on past plans: {len(memory[:3])} similar decided plan(s) of this tenant "
            "may pull the split toward what was approved before; check the briefs really match."
        )
    elif signals.curve_uncertainty is not None and signals.curve_uncertainty > 0.2:
        bias = (
            "Overconfidence in fitted curves: the response curves are uncertain, so a tidy "
            "optimum can hide a wide range of outcomes."
        )
    else:
        bias = (
            "Availability bias: recent history shapes the curves; check the flight's season and "
            "promotions resemble it."
        )
    return ReflectionWords(alternate_frames=frames, bias_checkpoint=bias)


def usable_words(words: ReflectionWords) -> bool:
    """Whether the model's words can be shown: each text reads as words (mostly letters, at
    least four words, no markup), carries no digits (numbers come from the tools, never from
    the model), and the two frames differ."""
    texts = [*words.alternate_frames, words.bias_checkpoint]
    for text in texts:
        stripped = text.strip()
        if len(stripped.split()) < 4 or re.search(r"\d", stripped) or _MARKUP.search(stripped):
            return False
        letters = len(_LETTERS.findall(stripped))
        if letters < 0.75 * len(stripped.replace(" ", "")):
            return False
        if len(set(stripped.lower().split())) < 0.6 * len(stripped.split()):
            return False  # a repetition loop
    frames = [f.strip().lower() for f in words.alternate_frames]
    return len(set(frames)) == len(frames)


def _prompt(plan: Plan, signals: ReflectionSignals, found: list[Risk], memory: list[str]) -> str:
    retailers = ", ".join(sorted({r.retailer_id for r in plan.allocation})) or "no retailers"
    lines = [
        f"Plan for {plan.brief.brand_id}: ${signals.spend:,.0f} over {retailers}; objective "
        f"{plan.brief.objective.replace('_', ' ')}.",
    ]
    if found:
        lines.append("Risks: " + "; ".join(r.factor for r in found[:3]) + ".")
    if memory:
        lines.append(f"A similar past plan: {memory[0]}")
    lines.append(
        "Name two other ways to look at this plan and one cognitive bias the planner should "
        "check. Use words, no numbers."
    )
    return "\n".join(lines)


def _llm_words(
    plan: Plan,
    signals: ReflectionSignals,
    found: list[Risk],
    memory: list[str],
    llm: RMNChatModel,
    task: str | None,
) -> ReflectionWords | None:
    from adapters.structured import StructuredOutputError

    writer = llm.bind_adapters(task=task, tenant=plan.tenant, max_new_tokens=MAX_WORD_TOKENS)
    try:
        out = writer.with_structured_output(WORDS_SCHEMA, include_raw=True).invoke(
            _prompt(plan, signals, found, memory)
        )
    except StructuredOutputError:
        return None
    if out.get("parsed") is None:
        return None
    try:
        words = ReflectionWords.model_validate(out["parsed"])
    except ValidationError:
        return None
    return words if usable_words(words) else None
