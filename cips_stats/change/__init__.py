"""Change across iterations: per-cell change tests and the Bayesian hierarchical change model.

``cell_changes`` differences every cell between two iterations with the shared
bootstrap replicates of :func:`cips_stats.estimate.indicators` and controls the
false discovery rate across the table.  ``fit`` is the Bayesian hierarchical change
model of every cell at once (drift, factor and country effects, the programme-support
effect, partially pooled cell deviations integrated out analytically);
``partial_pooling`` is its kernel for any table of estimates with known standard
errors.  See ``methodology/change-model.md``.

Examples
--------
>>> import cips_stats as cs
>>> sim = cs.simulate(seed=1, n_countries=3, n_repeat=2, n_officials=200, n_private=150)
>>> ind = cs.estimate.indicators(sim.data, n_boot=200, seed=1)
>>> bool(cs.change.cell_changes(ind, fdr="by").table["p_adjusted"].between(0, 1).all())
True
"""

from __future__ import annotations

from ._cells import CellChanges, cell_changes
from ._model import ChangeResult, fit
from ._ordinal import OrdinalChangeResult, fit_ordinal
from ._pooling import PartialPooling, partial_pooling

__all__ = ["CellChanges", "cell_changes", "ChangeResult", "fit", "PartialPooling", "partial_pooling",
           "OrdinalChangeResult", "fit_ordinal"]
