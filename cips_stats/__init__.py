"""cips_stats: validated, uncertainty-quantified statistics for the WCO Customs Integrity Perception Survey.

The public faces::

    import cips_stats as cs
    inst = cs.Instrument.default()
    sim = cs.simulate(seed=1)            # synthetic CIPS with known truth
    data = cs.load("survey.sav", instrument=inst)

Statistical modules (``reliability``, ``factor``, ``weighting``, ``scores``,
``estimate``, ``replicates``, ``change``, ``claims``, ``power``, ``thresholds``,
``disclosure``, ``plotting``, ``report``) are
imported on first use, so that ``import cips_stats`` stays light.

Examples
--------
>>> import cips_stats as cs
>>> len(cs.Instrument.default().key_factors)
10
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from . import errors, results  # noqa: E402
from .errors import CipsError, CipsWarning, DataError, ModelError  # noqa: E402
from .instrument import Factor, Instrument, Item  # noqa: E402
from .data import SurveyData, load  # noqa: E402
from .simulate import simulate  # noqa: E402  (binds the function over the module name)

_LAZY_MODULES = {
    "reliability", "factor", "weighting", "scores", "estimate", "replicates", "disclosure", "plotting",
    "report", "cli", "instrument", "data", "change", "claims", "power", "thresholds",
}

__all__ = [
    "__version__", "errors", "results", "CipsError", "CipsWarning", "DataError", "ModelError",
    "Instrument", "Factor", "Item", "SurveyData", "load", "simulate", *sorted(_LAZY_MODULES),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'cips_stats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_MODULES)
