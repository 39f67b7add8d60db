"""The clean room: aggregate-only, tenant-scoped, k-anonymous queries over harmonized RMIS
events, protected against differencing (secondary suppression; filters answer only with sums
of released cells), with blocked fields, optional differential privacy (charged once per
released answer, per budget period) and an audit log.

from tools.cleanroom import CleanRoom, CleanRoomQuery
room = CleanRoom(Path("data"))
room.query(CleanRoomQuery(tenant="acme", retailer="alpha", group_by=["placement"],
                          metrics=["spend", "avg:spend"]))
"""

from tools.cleanroom.audit import AuditLog
from tools.cleanroom.disclosure import DisclosureError
from tools.cleanroom.dp import MIN_EPSILON, DPReleaseError
from tools.cleanroom.ledger import BudgetStatus, PrivacyLedger
from tools.cleanroom.query import CleanRoomQuery, Filter, build_query, check_query
from tools.cleanroom.rules import RulesProvider, default_rules, policy_rules
from tools.cleanroom.service import CleanRoom, CleanRoomResult, DPInfo
from tools.policy.data_access import (
    DEFAULT_BLOCKED_FIELDS,
    DIMENSIONS,
    METRICS,
    DataAccessRules,
)

__all__ = [
    "DEFAULT_BLOCKED_FIELDS",
    "DIMENSIONS",
    "METRICS",
    "MIN_EPSILON",
    "AuditLog",
    "BudgetStatus",
    "CleanRoom",
    "CleanRoomQuery",
    "CleanRoomResult",
    "DPInfo",
    "DPReleaseError",
    "DataAccessRules",
    "DisclosureError",
    "Filter",
    "PrivacyLedger",
    "RulesProvider",
    "build_query",
    "check_query",
    "default_rules",
    "policy_rules",
]
