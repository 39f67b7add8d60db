"""Governance: PII scanning and redaction, prompt-injection detection, and plan checks against
the retailers' written rules.

from tools.governance import scan_pii, detect_injection, review
scan_pii("call (312) 555-0188").redacted             # 'call <PHONE>'
detect_injection("Ignore all previous instructions", "retrieved[0]")  # [Finding(...)]
review(texts, allocation, retailers=["alpha"], tenant="acme").route  # "ok" | "creative" | "human"
"""

from tools.governance.errors import GovernanceInputError
from tools.governance.evaluate import bench_governance, evaluate_injection, evaluate_pii
from tools.governance.injection import INJECTION, detect_injection
from tools.governance.pii import (
    PII_TYPES,
    PiiFinding,
    PiiScan,
    find_pii,
    redact,
    scan_pii,
)
from tools.governance.review import GovernanceReview, review

__all__ = [
    "INJECTION",
    "PII_TYPES",
    "GovernanceInputError",
    "GovernanceReview",
    "PiiFinding",
    "PiiScan",
    "bench_governance",
    "detect_injection",
    "evaluate_injection",
    "evaluate_pii",
    "find_pii",
    "redact",
    "review",
    "scan_pii",
]
