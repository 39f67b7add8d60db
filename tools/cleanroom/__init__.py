"""The clean room: aggregate-only, tenant-scoped, k-anonymous queries over harmonized RMIS
events, with blocked fields, optional differential privacy and an audit log.

from tools.cleanroom import CleanRoom, CleanRoomQuery
room = CleanRoom(Path("data"))
room.query(CleanRoomQuery(tenant="acme", retailer="alpha", group_by=["placement"],
                          metrics=["spend", "avg:spend"]))
"""

from tools.cleanroom.audit import AuditLog
from tools.cleanroom.dp import BudgetStatus, PrivacyLedger
from tools.cleanroom.query import CleanRoomQuery, Filter, build_query, check_query
from tools.cleanroom.rules import (
    DEFAULT_BLOCKED_FIELDS,
    DIMENSIONS,
    METRICS,
    DataAccessRules,
    RulesProvider,
    default_rules,
    policy_rules,
)
from tools.cleanroom.service import CleanRoom, CleanRoomResult, DPInfo

__all__ = [
    "DEFAULT_BLOCKED_FIELDS",
    "DIMENSIONS",
    "METRICS",
    "AuditLog",
    "BudgetStatus",
    "CleanRoom",
    "CleanRoomQuery",
    "CleanRoomResult",
    "DPInfo",
    "DataAccessRules",
    "Filter",
    "PrivacyLedger",
    "RulesProvider",
    "build_query",
    "check_query",
    "default_rules",
    "policy_rules",
]
