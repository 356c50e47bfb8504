"""Confirmatory and exploratory factor analysis.

Faces: :func:`cfa` (``cs.factor.cfa``; ML, MLR, FIML; WLSMV through
:mod:`cips_stats.factor.wls`) and ``invariance`` (:mod:`cips_stats.factor.invariance`).

Parts, one file each: :mod:`~cips_stats.factor.syntax` (lavaan-style syntax →
parameter table), :mod:`~cips_stats.factor.model` (model matrices, implied moments
and their analytic Jacobian), :mod:`~cips_stats.factor.ml` (ML/FIML estimation),
:mod:`~cips_stats.factor.fit_indices`, :mod:`~cips_stats.factor.results`,
:mod:`~cips_stats.factor.polychoric`, :mod:`~cips_stats.factor.efa`.

Examples
--------
>>> import cips_stats as cs
>>> pt = cs.factor.build_partable("f =~ a + b + c")
>>> int(pt["free"].max())
6
"""

from __future__ import annotations

import importlib
from typing import Any

from .syntax import build_partable, parse_syntax  # noqa: F401
from .model import CFAModel  # noqa: F401
from .results import CFAResult, CFAResults  # noqa: F401
from .cfa import cfa  # noqa: F401,E402  (binds the function over the module name)

__all__ = ["cfa", "invariance", "build_partable", "parse_syntax", "CFAModel", "CFAResult", "CFAResults"]

# Faces whose module has the same name as the function: resolved on first use so that
# ``cs.factor.cfa(...)`` is the function while ``cips_stats.factor.cfa`` stays importable.
_FACES = {"invariance": "invariance"}


def __getattr__(name: str) -> Any:
    if name in _FACES:
        module = importlib.import_module(f".{name}", __name__)
        func = getattr(module, _FACES[name])
        globals()[name] = func
        return func
    raise AttributeError(f"module 'cips_stats.factor' has no attribute {name!r}")
