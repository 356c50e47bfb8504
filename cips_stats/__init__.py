"""cips_stats: validated, uncertainty-quantified statistics for the WCO Customs Integrity Perception Survey.

The public faces::

    import cips_stats as cs
    inst = cs.Instrument.default()
    sim = cs.simulate(seed=1)            # synthetic CIPS with known truth
    data = cs.load("survey.sav", instrument=inst)

Everything but the error classes is imported on first use (``cs.load``, ``cs.Instrument``,
and the modules ``reliability``, ``factor``, ``weighting``, ``scores``, ``estimate``,
``change``, ``claims``, ``power``, ``thresholds``, ``disclosure``, ``plotting``, ``report``,
``pipeline``, ``output``), so that ``import cips_stats`` — and ``cips-stats --help`` —
stays light: NumPy, pandas and SciPy load only when a computation needs them.

Examples
--------
>>> import cips_stats as cs
>>> len(cs.Instrument.default().key_factors)
10
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

from . import errors  # noqa: E402  (standard library only)
from .errors import CipsError, CipsWarning, DataError, ModelError  # noqa: E402

#: Submodules loaded on first attribute access.
_LAZY_MODULES = {
    "results", "reliability", "factor", "weighting", "scores", "estimate", "disclosure", "plotting",
    "report", "cli", "instrument", "data", "change", "claims", "power", "thresholds", "pipeline", "output",
}
#: Public names loaded from a submodule on first access: name -> (module, attribute).
_LAZY_NAMES = {
    "Instrument": ("instrument", "Instrument"), "Factor": ("instrument", "Factor"), "Item": ("instrument", "Item"),
    "SurveyData": ("data", "SurveyData"), "load": ("data", "load"), "simulate": ("simulate", "simulate"),
}
if importlib.util.find_spec(f"{__name__}.replicates") is not None:     # (folded into estimate by issue 12)
    _LAZY_MODULES.add("replicates")

__all__ = [
    "__version__", "errors", "CipsError", "CipsWarning", "DataError", "ModelError",
    *sorted(_LAZY_NAMES), *sorted(_LAZY_MODULES),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        module_name, attr = _LAZY_NAMES[name]
        value = getattr(importlib.import_module(f".{module_name}", __name__), attr)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'cips_stats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_NAMES))
