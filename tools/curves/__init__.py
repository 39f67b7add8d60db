"""Response curves per line item from what a brand can see: clean-room aggregates alone, or
with its first-party data; fitted with partial pooling and posterior draws for the optimizer.

view = cleanroom_view(data_dir, "acme")                     # aggregates only
full = full_view(view, FirstPartyStore(data_dir, "acme", "acme"))
fit = fit_curves(full)
curves = fit.curve_set()                                    # tools.optimize.CurveSet
"""

from tools.curves.cells import CurveFitError, select_cells, spend_cv
from tools.curves.cleanroom_view import cleanroom_view
from tools.curves.fit import OOS_THRESHOLD, CurveFit, fit_curves
from tools.curves.prior_only import prior_only_curves
from tools.curves.views import DataView, Economics, RetailerAccess, full_view

__all__ = [
    "OOS_THRESHOLD",
    "CurveFit",
    "CurveFitError",
    "DataView",
    "Economics",
    "RetailerAccess",
    "cleanroom_view",
    "fit_curves",
    "full_view",
    "prior_only_curves",
    "select_cells",
    "spend_cv",
]
