"""The plan: its schema (`plan.py`), the reflection that scores it (`reflection.py`), the
decisions reviewers make on it (`decisions.py`) and the report it is written to (`report.py`).

The schema is re-exported here (`from tools.plan import Plan`); the other modules pull in
heavier libraries (matplotlib, SQLite) and are imported by name.
"""

from tools.plan.plan import (
    AllocationRow,
    Confidence,
    CopyVariant,
    Decision,
    DecisionAction,
    ExpectedOutcome,
    Finding,
    FindingType,
    Interval,
    Plan,
    Reflection,
    Risk,
    RiskAssessment,
)

__all__ = [
    "AllocationRow",
    "Confidence",
    "CopyVariant",
    "Decision",
    "DecisionAction",
    "ExpectedOutcome",
    "Finding",
    "FindingType",
    "Interval",
    "Plan",
    "Reflection",
    "Risk",
    "RiskAssessment",
]
