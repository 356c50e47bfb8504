"""Reliability of multi-item scales: Cronbach's alpha, McDonald's omega, ordinal variants, item tables.

Faces:

* :func:`cronbach_alpha` — one scale: raw and standardised alpha, a confidence
  interval (Feldt, Duhachek or bootstrap), and the item table (alpha if item
  dropped, corrected item-total correlation, item-total correlation, mean, sd,
  share missing), with pairwise or listwise deletion, design weights and psych's
  ``check.keys``.
* :func:`omega` — one scale: McDonald's omega total from a one-factor model
  fitted by maximum likelihood, with the model-implied or the observed total
  variance in the denominator, and a bootstrap or Wald (delta-method) interval;
  ``ordinal=True`` fits the polychoric correlations ("ordinal omega").
* :func:`categorical_omega` — Green & Yang's (2009) omega of the sum of ordinal
  item scores (``semTools::compRelSEM(ord.scale = TRUE)``).
* :func:`by_cell` — every statistic above for every factor in every country ×
  iteration × group cell in one vectorised pass, weighted by the design weight.

The kernels (``_moments``: pairwise sums by cell; ``_alpha``: the closed-form alpha
kernel; ``_omega``: the batched one-factor ML fit) work on plain arrays; ``_by_cell``
is the survey layer.  Definitions follow R's ``psych::alpha`` (psych 2.2.9) and
``semTools::compRelSEM`` (0.5-6); the tests check them against values those programs
computed on ``psych::bfi`` (``tests/reference/reliability_bfi.json``, made by
``validation/r/reliability.R``).  Cut-offs come from :mod:`cips_stats.thresholds`.
See ``methodology/reliability.md``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import cips_stats as cs
>>> rng = np.random.default_rng(1)
>>> f = rng.normal(size=(300, 1))
>>> items = pd.DataFrame(np.clip(np.round(3 + f + rng.normal(size=(300, 4))), 1, 5),
...                      columns=["q1", "q2", "q3", "q4"])
>>> res = cs.reliability.cronbach_alpha(items)
>>> round(res.alpha, 3), round(res.ci_low, 3), round(res.ci_high, 3)
(0.755, 0.707, 0.798)
>>> round(cs.reliability.omega(items, ci_method="wald").omega, 3)
0.757
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from .. import thresholds as _th
from ._alpha import AlphaResult, cronbach_alpha
from ._by_cell import ByCellResult, by_cell
from ._omega import CategoricalOmegaResult, OmegaResult, categorical_omega, omega

__all__ = [
    "AlphaResult",
    "OmegaResult",
    "CategoricalOmegaResult",
    "ByCellResult",
    "cronbach_alpha",
    "omega",
    "categorical_omega",
    "by_cell",
    "THRESHOLDS",
    "MIN_N",
]

#: The reliability cut-offs (from :mod:`cips_stats.thresholds`): below ``questionable`` a scale
#: is "questionable" (Nunnally 1978), below ``poor`` "poor" (George & Mallery 2003).
THRESHOLDS: Mapping[str, float] = MappingProxyType({"questionable": _th.RELIABILITY_ACCEPTABLE,
                                                    "poor": _th.RELIABILITY_POOR})

#: Default minimum number of respondents for a stable estimate (``thresholds.MIN_N_RELIABILITY``).
MIN_N: int = _th.MIN_N_RELIABILITY
