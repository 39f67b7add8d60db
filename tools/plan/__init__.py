"""The plan: its schema (`plan.py`), the reflection that scores it (`reflection.py`, its
prompt in `prompts.py`), the questions a reviewer is asked as LangChain HITL requests
(`questions.py`), a reviewer's answers and edits (`review.py`), the auto-approve policy
and the summary a reviewer sees (`approval.py`), the decisions reviewers make on it
(`decisions.py`) and the report it is written to (`report.py`).

The schema is re-exported here (`from tools.plan import Plan`); the other modules are
imported by name (`from tools.plan.review import read_review`).
"""

from tools.plan.plan import (
    STALE_AFTER_ALLOCATION,
    AllocationRow,
    Citation,
    Confidence,
    CopyVariant,
    Decision,
    DecisionAction,
    ExpectedOutcome,
    Finding,
    FindingType,
    GroundedText,
    Interval,
    Plan,
    Reflection,
    Risk,
    RiskAssessment,
    SplitCost,
    Unfunded,
)

__all__ = [
    "STALE_AFTER_ALLOCATION",
    "AllocationRow",
    "Unfunded",
    "Citation",
    "Confidence",
    "CopyVariant",
    "Decision",
    "DecisionAction",
    "ExpectedOutcome",
    "Finding",
    "FindingType",
    "GroundedText",
    "Interval",
    "Plan",
    "Reflection",
    "Risk",
    "RiskAssessment",
    "SplitCost",
]
