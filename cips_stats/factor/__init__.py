"""Confirmatory and exploratory factor analysis.

Faces: :func:`cfa` (``cs.factor.cfa``, alias ``cs.factor.sem``; ML, MLR, FIML; WLSMV through
:mod:`cips_stats.factor.wls`; latent regressions ``~`` and defined parameters ``:=``) and ``invariance`` (:mod:`cips_stats.factor.invariance`).

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
from .cfa import cfa, sem  # noqa: F401,E402  (binds the function over the module name)
from .invariance import InvarianceResult, invariance  # noqa: F401,E402  (function over module name)
from .efa import (  # noqa: F401,E402
    BartlettResult,
    EFAResult,
    KMOResult,
    ParallelAnalysisResult,
    bartlett_sphericity,
    efa,
    kmo,
    pairwise_correlation,
    parallel_analysis,
)

__all__ = [
    "cfa", "sem", "invariance", "InvarianceResult", "build_partable", "parse_syntax", "CFAModel", "CFAResult",
    "CFAResults", "kmo", "bartlett_sphericity", "parallel_analysis", "efa", "pairwise_correlation",
    "KMOResult", "BartlettResult", "ParallelAnalysisResult", "EFAResult",
]
