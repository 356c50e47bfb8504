"""Design-based estimation: the survey design, means and quantiles with design-correct SEs, cell indicators.

One subpackage, one file per part, every arrow pointing down:

* :mod:`~cips_stats.estimate.design` — the frozen :class:`Design` (weight, strata,
  clusters of every stage, fpc, calibration) that a :class:`~cips_stats.SurveyData`
  carries and every estimator takes through ``weight=``;
* :mod:`~cips_stats.estimate.linearization` — Taylor-linearization variances
  (stratified multistage, calibration residuals);
* :mod:`~cips_stats.estimate.replicates` — Rao–Wu bootstrap and jackknife replicate
  weights;
* :mod:`~cips_stats.estimate.intervals` — t and bootstrap confidence intervals;
* :mod:`~cips_stats.estimate.mean` — :func:`survey_mean` (R ``svymean``/``svytotal``/
  ``svyratio``);
* :mod:`~cips_stats.estimate.quantile` — :func:`survey_quantile` (R ``svyquantile``);
* :mod:`~cips_stats.estimate.indicators` — :func:`indicators` of every cell with the
  joint bootstrap, :func:`perception_gap`.

Examples
--------
>>> import pandas as pd
>>> import cips_stats as cs
>>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "w": [1.0, 1.0, 2.0, 2.0], "s": [1, 1, 2, 2]})
>>> design = cs.estimate.Design(weight="w", strata="s")
>>> r = cs.estimate.survey_mean(df, "y", weight=design)   # R: svymean(~y, svydesign(id=~1, strata=~s, weights=~w))
>>> round(r.estimate, 4), round(r.se, 4), r.df
(2.8333, 0.3727, 2.0)
"""

from __future__ import annotations

from .design import Calibration, Design
from .indicators import Contrast, Indicators, indicators, perception_gap
from .mean import SurveyEstimate, survey_mean
from .quantile import SurveyQuantile, survey_quantile

__all__ = ["Design", "Calibration", "SurveyEstimate", "survey_mean", "SurveyQuantile", "survey_quantile",
           "Indicators", "Contrast", "indicators", "perception_gap"]
