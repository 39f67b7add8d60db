"""The governance tools' input error."""

from __future__ import annotations

from tools.errors import RMNError


class GovernanceInputError(RMNError):
    """Text or plan data the governance checks cannot read."""

    kind = "governance_input_error"
