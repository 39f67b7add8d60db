"""The plan a brief becomes: the one schema the graph's nodes, the report, the decision store,
the CLI and the HTTP API share. Numbers in it come from tools; the LLM only writes its words."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.brief.schema import StructuredBrief

DecisionAction = Literal["approve", "edit", "reject", "auto_approve"]
FindingType = str  # EMAIL, PHONE, SSN, CREDIT_CARD, IP_ADDRESS, PROMPT_INJECTION, CAP, ...


class Interval(BaseModel):
    """A point estimate with its 90% interval."""

    mean: float
    low: float
    high: float


class Unfunded(BaseModel):
    """A retailer of the brief the allocation gives nothing: its best line's return per dollar
    (in the goal's units) at the least a line there may get."""

    minimum: float = Field(0.0, ge=0, description="the least a line may get (0: no minimum)")
    best_return: float | None = Field(
        None, description="the best line's return per dollar at that minimum (at the first "
        "dollar without one); None: no line to fund",
    )


class SplitCost(BaseModel):
    """Beside a brief that fixes the split by retailer: what its next ad dollar brings at each
    retailer, and what the optimizer's own split of the same ad budget would bring, so an
    approver sees what the brief's split costs."""

    next_dollar: dict[str, float] = Field(
        default_factory=dict, description="what the next ad dollar at each retailer of the "
        "split brings: extra margin on a margin goal, extra revenue on the others",
    )
    free_spend: dict[str, float] | None = Field(
        None, description="the optimizer's own split: ad spend by retailer, USD (None: no plan)"
    )
    free_revenue: float | None = Field(None, description="its expected extra revenue, USD")
    free_margin: float | None = Field(None, description="its expected extra margin, USD")


class AllocationRow(BaseModel):
    retailer_id: str
    placement: str
    gtin: str
    spend: float = Field(ge=0, description="flight spend, USD")
    expected_revenue: float = Field(description="expected incremental revenue, USD")
    expected_margin: float = Field(description="expected incremental margin, USD")
    marginal_return: float | None = Field(
        None, description="objective gained by the next dollar on this line"
    )
    # The fitted curve the spend was chosen on: revenue(x) = curve_a * (1 - exp(-x / curve_b)).
    curve_a: float | None = None
    curve_b: float | None = None
    likely_out_of_stock: bool = Field(
        False, description="kept in though likely out of stock (a brief that keeps such lines)"
    )
    little_history: bool = Field(
        False, description="its curve is the brand's prior: too little sales history of its own"
    )
    minimum: float = Field(
        0.0, ge=0, description="the least it may get when funded: its retailer's minimum daily "
        "budget over the flight (0: none)",
    )


class ExpectedOutcome(BaseModel):
    spend: float = Field(description="planned spend excluding the experiment reserve, USD")
    reserve: float = Field(description="experiment reserve, USD")
    incremental_revenue: Interval
    incremental_margin: Interval
    iroas: Interval


class CopyVariant(BaseModel):
    retailer_id: str
    gtin: str | None = None
    headline: str
    body: str
    disclaimer: str | None = None
    compliant: bool
    violations: list[str] = Field(default_factory=list)
    attempts: int = Field(1, ge=1, description="generations it took, repairs included")
    adapters: list[str] = Field(default_factory=list, description="adapters active when written")
    path: Literal["llm", "repaired", "fixed", "fallback"] = Field(
        "llm",
        description="llm: as generated; repaired: JSON repair; fixed: rule auto-fix; "
        "fallback: template copy after the retries ran out",
    )
    prompt: list[dict[str, str]] | None = Field(
        None,
        description="the messages the model wrote this variant from (feedback and training); "
        "None for template copy",
    )


class Citation(BaseModel):
    """A retrieved policy passage a text rests on: `[id]` in the text."""

    id: int = Field(ge=1, description="the marker's number in the text: [1], [2], ...")
    source: str = Field(description="corpus path and section anchor: rag_corpus/...md#anchor")
    section: str = Field("", description="the section's heading")
    title: str = Field("", description="the document's title: Alpha Mart measurement and ...")
    doc_type: str | None = None
    retailer: str | None = None


class Finding(BaseModel):
    """A governance finding in one of the plan's texts or numbers."""

    type: FindingType
    where: str = Field(description="which text or check: brief, copy[0].body, retrieved[2], ...")
    start: int | None = None
    end: int | None = None
    text: str = ""
    severity: Literal["info", "warn", "block"] = "warn"
    action: str = Field("", description="what was done: redacted, ignored instruction, ...")
    citation: Citation | None = Field(None, description="the policy passage it rests on")
    agrees: bool | None = Field(
        None, description="a second opinion: whether it agreed with the rule checks"
    )


class GroundedText(BaseModel):
    """Sentences a manager reads (why this split, what the experiment can tell), written from a
    facts table the tools produced and the passages cited. Every number in `text` is one of
    `facts`' values, as formatted there."""

    kind: Literal["allocation", "experiment"]
    text: str
    path: Literal["model", "template"] = Field(
        description="model: the chat model wrote it and it passed every check; template: "
        "written from the facts by code (no model, or the model's text failed `reason`)"
    )
    reason: str | None = Field(None, description="why the model's text was not used")
    facts: dict[str, str] = Field(default_factory=dict, description="name -> value as written")
    citations: list[Citation] = Field(default_factory=list)
    adapters: list[str] = Field(default_factory=list, description="adapters the model ran with")
    prompt: list[dict[str, str]] | None = Field(
        None, description="the messages the model wrote `text` from; None for template text"
    )
    chosen_logprob: float | None = Field(
        None,
        description="the model's answer (used or not): mean log-probability of the tokens it "
        "chose, under its own scores before the grammar's mask; None without a model answer",
    )


class Risk(BaseModel):
    factor: str
    severity: Literal["low", "medium", "high"]
    signal: str = Field(description="the measured signal behind it")
    mitigation: str


class Confidence(BaseModel):
    value: float = Field(ge=0, le=1)
    rationale: str
    signals: dict[str, float] = Field(
        default_factory=dict, description="the measured inputs the value is computed from"
    )
    measured: str = Field("", description="what was measured, in words (the report shows it)")
    computed: float | None = Field(
        None, ge=0, le=1, description="the value before a guardrail held it below auto-approval"
    )
    held_below: float | None = Field(None, ge=0, le=1, description="the auto-approval line")
    held_for: list[str] = Field(
        default_factory=list, description="why it is held, in words: the guardrails standing"
    )


class RiskAssessment(BaseModel):
    high_risk_factors: list[Risk] = Field(default_factory=list)
    mitigation: list[str] = Field(default_factory=list)
    summary: str = Field("", description="the main risk in one sentence, from the signals")


class Reflection(BaseModel):
    """The reflection record (phase, memory, frames, risks, confidence, threshold, bias)."""

    phase: str = "reflection"
    memory_reference: list[str] = Field(default_factory=list)
    alternate_frames: list[str] = Field(default_factory=list)
    risk_assessment: RiskAssessment = Field(default_factory=RiskAssessment)
    confidence: Confidence
    decision_threshold: str
    bias_checkpoint: str
    written_by: Literal["llm", "template"] = Field(
        "template", description="who wrote the words; the numbers are always computed"
    )
    words_reason: str | None = Field(None, description="why the model's words were not used")


class Decision(BaseModel):
    action: DecisionAction
    reason: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)
    by: str = Field("human", description="human, or the auto-approve policy")
    at: datetime


class Plan(BaseModel):
    # `copy` in JSON; a different attribute name because BaseModel.copy exists.
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    thread_id: str
    tenant: str
    brief_text: str
    brief: StructuredBrief
    allocation: list[AllocationRow] = Field(default_factory=list)
    unfunded: dict[str, Unfunded] = Field(
        default_factory=dict, description="retailers of the brief the allocation gives nothing"
    )
    split_cost: SplitCost | None = Field(
        None, description="what the brief's own split costs, where it fixes one"
    )
    expected_outcome: ExpectedOutcome | None = None
    shadow_prices: dict[str, Any] = Field(default_factory=dict)
    solver_status: str | None = None
    experiment: dict[str, Any] | None = Field(None, description="ExperimentDesign as JSON")
    experiment_notes: list[str] = Field(
        default_factory=list, description="why no experiment was designed, in words"
    )
    rationale: list[GroundedText] = Field(
        default_factory=list, description="why this split, what the experiment can tell"
    )
    copy_variants: list[CopyVariant] = Field(default_factory=list, alias="copy")
    governance: list[Finding] = Field(default_factory=list)
    flags: list[str] = Field(
        default_factory=list, description="what holds the plan for a person besides its copy"
    )
    reflection: Reflection | None = None
    decision: Decision | None = None
    status: Literal["draft", "approved", "rejected"] = "draft"

    @property
    def solver_inaccurate(self) -> bool:
        """Whether the optimizer stopped before proving its split the best ("optimal_inaccurate"):
        the reflection weighs it, the rationale says it."""
        return "inaccurate" in (self.solver_status or "").lower()

    def with_allocation(
        self,
        *,
        brief: StructuredBrief,
        allocation: list[AllocationRow],
        expected_outcome: ExpectedOutcome | None,
        shadow_prices: dict[str, Any],
        solver_status: str | None,
        unfunded: dict[str, Unfunded] | None = None,
        split_cost: SplitCost | None = None,
    ) -> Plan:
        """This plan with a new allocation, and everything decided on the old one (the fields
        in `STALE_AFTER_ALLOCATION`) back at its defaults."""
        stale = {
            name: type(self).model_fields[name].get_default(call_default_factory=True)
            for name in STALE_AFTER_ALLOCATION
        }
        return self.model_copy(
            update={
                "brief": brief,
                "allocation": allocation,
                "expected_outcome": expected_outcome,
                "shadow_prices": shadow_prices,
                "solver_status": solver_status,
                "unfunded": dict(unfunded or {}),
                "split_cost": split_cost,
                **stale,
            }
        )

    def with_text(self, text: GroundedText) -> Plan:
        """This plan with `text` in place of any rationale of the same kind."""
        kept = [t for t in self.rationale if t.kind != text.kind]
        return self.model_copy(update={"rationale": [*kept, text]})

    def text(self, kind: str) -> GroundedText | None:
        return next((t for t in self.rationale if t.kind == kind), None)


# What a new allocation makes stale: the experiment designed for it, the rationale written on
# both, the copy written for its lines, the findings on that copy, the reflection and the
# decision on it.
STALE_AFTER_ALLOCATION: tuple[str, ...] = (
    "experiment",
    "rationale",
    "copy_variants",
    "governance",
    "reflection",
    "decision",
    "status",
)
