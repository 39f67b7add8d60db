"""The tool chain behind the planning graph's data nodes: the brand's market data
(`market.py`), its response curves from the clean room and its first-party data
(`curves.py`), the allocation with intervals (`allocation.py`), the experiment for the reserve
(`measurement.py`), and what the planner asks of them (`query.py`).

    status = prepare_market(data_dir)                     # checks it; harmonizes new reports
    curves = prepare_curves(CurveRequest(data_dir=data_dir, tenant="acme", brand="acme",
                                         retailers=["alpha", "beta"]))
    alloc = plan_allocation(curves, AllocationRequest(brief=structured_brief))
    exp = design_measurement(MeasurementRequest(data_dir=data_dir, tenant="acme", brand="acme",
                                                allocation=alloc.rows, reserve=250_000))
"""

from tools.pipeline.allocation import AllocationPlan, AllocationRequest, plan_allocation
from tools.pipeline.common import PipelineError, Progress
from tools.pipeline.curves import (
    CurveRequest,
    CurveSummary,
    RetailerAccessSummary,
    known_gtins,
    load_curves,
    prepare_curves,
    sku_categories,
)
from tools.pipeline.market import (
    MarketStatus,
    NoMarketDataError,
    check_data_dir,
    harmonized_retailers,
    prepare_market,
    product_categories,
    product_names,
)
from tools.pipeline.measurement import (
    MeasurementPlan,
    MeasurementRequest,
    design_measurement,
    geo_panel,
)
from tools.pipeline.query import (
    flight_days,
    query_plan,
    replan_target,
    replanned_query,
    retrieve_rules,
)

__all__ = [
    "AllocationPlan",
    "AllocationRequest",
    "CurveRequest",
    "CurveSummary",
    "MeasurementPlan",
    "MeasurementRequest",
    "PipelineError",
    "Progress",
    "RetailerAccessSummary",
    "MarketStatus",
    "NoMarketDataError",
    "check_data_dir",
    "design_measurement",
    "flight_days",
    "geo_panel",
    "harmonized_retailers",
    "known_gtins",
    "load_curves",
    "plan_allocation",
    "prepare_curves",
    "prepare_market",
    "product_categories",
    "product_names",
    "query_plan",
    "replan_target",
    "replanned_query",
    "retrieve_rules",
    "sku_categories",
]
