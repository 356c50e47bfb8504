"""Every statistical cut-off the package judges results by, each with its reference.

Results flag themselves with these constants (a CFA result its fit, a reliability
result its alpha, an indicator cell its CV); reports only render the flags.  No
module writes one of these numbers inline: it imports the constant, so that a
changed convention changes everywhere at once and the report can cite its source
(:data:`REGISTRY` maps each constant's name to a :class:`Threshold` with its
value, direction and reference).

Examples
--------
>>> from cips_stats import thresholds as th
>>> th.CFI_GOOD, th.RMSEA_GOOD
(0.95, 0.06)
>>> th.REGISTRY["CFI_GOOD"].reference
'Hu, L., & Bentler, P. M. (1999). Cutoff criteria for fit indexes in covariance structure analysis: Conventional criteria versus new alternatives. Structural Equation Modeling, 6(1), 1-55.'
>>> [f.code for f in th.judge_fit({"cfi": 0.93, "tli": 0.96, "rmsea": 0.05, "srmr": 0.04})]
['fit_cfi']
>>> th.cv_category(0.2)
'caution'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import Flag

__all__ = [
    "Threshold", "REGISTRY", "REFERENCES",
    "CFI_GOOD", "TLI_GOOD", "RMSEA_GOOD", "SRMR_GOOD", "CFI_ACCEPTABLE", "TLI_ACCEPTABLE",
    "RMSEA_ACCEPTABLE", "CONFIGURAL_FIT", "HU_BENTLER",
    "CHEN2007_SMALL_N", "CHEN2007_LOADINGS", "CHEN2007_INTERCEPTS", "CHEN2007_LOADINGS_SMALL",
    "CHEN2007_INTERCEPTS_SMALL", "CHEUNG_RENSVOLD_DCFI", "chen2007",
    "RELIABILITY_GOOD", "RELIABILITY_ACCEPTABLE", "RELIABILITY_POOR",
    "CV_CAUTION", "CV_SUPPRESS", "MIN_CELL", "MIN_N_RELIABILITY", "DISCLOSURE_MIN", "DISCLOSURE_FLOOR",
    "RHAT_MAX", "ESS_MIN", "WEIGHT_RATIO_MAX", "SIGNIFICANCE", "DRIFT_SHARE_CHANGE", "DRIFT_SIGNIFICANCE",
    "judge_fit", "judge_reliability", "cv_category", "judge_convergence", "judge_weights",
    "check_disclosure_min", "as_table",
]

# --------------------------------------------------------------------------------------- references
_HU_BENTLER = ("Hu, L., & Bentler, P. M. (1999). Cutoff criteria for fit indexes in covariance structure "
               "analysis: Conventional criteria versus new alternatives. Structural Equation Modeling, "
               "6(1), 1-55.")
_BENTLER_BONETT = ("Bentler, P. M., & Bonett, D. G. (1980). Significance tests and goodness of fit in the "
                   "analysis of covariance structures. Psychological Bulletin, 88(3), 588-606.")
_BROWNE_CUDECK = ("Browne, M. W., & Cudeck, R. (1993). Alternative ways of assessing model fit. In K. A. "
                  "Bollen & J. S. Long (Eds.), Testing structural equation models (pp. 136-162). Sage.")
_CHEN = ("Chen, F. F. (2007). Sensitivity of goodness of fit indexes to lack of measurement invariance. "
         "Structural Equation Modeling, 14(3), 464-504 (cut-offs p. 501).")
_CHEUNG_RENSVOLD = ("Cheung, G. W., & Rensvold, R. B. (2002). Evaluating goodness-of-fit indexes for testing "
                    "measurement invariance. Structural Equation Modeling, 9(2), 233-255.")
_NUNNALLY = "Nunnally, J. C. (1978). Psychometric theory (2nd ed.). McGraw-Hill."
_GEORGE_MALLERY = ("George, D., & Mallery, P. (2003). SPSS for Windows step by step: A simple guide and "
                   "reference (4th ed.). Allyn & Bacon.")
_STATCAN = ("Statistics Canada, data-quality release guidelines for sample surveys (e.g. Canadian Community "
            "Health Survey user guide): CV 16.6%-33.3% use with caution, above 33.3% too unreliable to "
            "be published.")
_MIN_CELL = ("Precision minimum of the CIPS indicators: fewer than 30 scored respondents are not published "
             "(methodology/indicators-and-bootstrap.md; the usual large-sample rule for a mean's "
             "normal-theory interval).")
_DISCLOSURE = ("Disclosure minimum of published cells (methodology/disclosure.md); the floor of 5 follows "
               "common statistical-office practice (e.g. Eurostat/ONS threshold rules), below which no "
               "configuration may go.")
_VEHTARI = ("Vehtari, A., Gelman, A., Simpson, D., Carpenter, B., & Buerkner, P.-C. (2021). Rank-"
            "normalization, folding, and localization: An improved R-hat for assessing convergence of "
            "MCMC. Bayesian Analysis, 16(2), 667-718.")
_POTTER = ("Potter, F. J. (1990). A study of procedures to identify and trim extreme sampling weights. "
           "Proceedings of the Survey Research Methods Section, American Statistical Association, 225-230 "
           "(the NAEP rule: weights above 3.5 times the median are extreme).")
_STEVENS = ("Stevens, J. P. (2002). Applied multivariate statistics for the social sciences (4th ed.). "
            "Erlbaum (loadings of .40 and above are interpretable).")
_DONT_KNOW = ("House rule of the report's instrument-review view (cips_stats.report): one respondent in ten unable to "
              "answer says the question is unclear or out of their reach.")
_GELMAN = ("Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A., & Rubin, D. B. (2013). Bayesian "
           "data analysis (3rd ed.), ch. 4: a 95% posterior probability, the one-sided analogue of a 5% test.")
_CAMERON_MILLER = ("Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference. "
                   "Journal of Human Resources, 50(2), section VI: few clusters below roughly 20-50.")
_FISHER = "Fisher, R. A. (1925). Statistical methods for research workers. Oliver & Boyd (the 5% level)."
_DRIFT = ("House rule of cips_stats.weighting.composition_drift (methodology/weighting-and-estimation.md, "
          "section 9): a category share moving by more than 15 percentage points between iterations, at "
          "the 1% level, is a composition shift worth reweighting for.")


@dataclass(frozen=True)
class Threshold:
    """One cut-off: its value, which side is acceptable, what it judges and its reference.

    Parameters
    ----------
    name : str
        The constant's name in this module.
    value : float
        The cut-off.
    direction : {">=", "<=", ">", "<"}
        A value passes when ``value_observed <direction> cut-off`` holds.
    applies_to : str
        The statistic judged (``"cfi"``, ``"alpha"``, ``"cv"``...).
    reference : str
        The source to cite.

    Examples
    --------
    >>> from cips_stats.thresholds import REGISTRY
    >>> REGISTRY["RMSEA_GOOD"].passes(0.05), REGISTRY["RMSEA_GOOD"].passes(0.07)
    (True, False)
    """

    name: str
    value: float
    direction: str
    applies_to: str
    reference: str

    def passes(self, observed: float) -> bool:
        """Whether ``observed`` lies on the acceptable side (NaN never passes)."""
        if observed is None or not math.isfinite(float(observed)):
            return False
        x = float(observed)
        return {">=": x >= self.value, "<=": x <= self.value, ">": x > self.value,
                "<": x < self.value}[self.direction]

    def describe(self) -> str:
        """``"cfi >= 0.95 (Hu & Bentler ...)"`` style one-liner."""
        return f"{self.applies_to} {self.direction} {self.value:g} ({self.reference})"


_REG: dict[str, Threshold] = {}


def _t(name: str, value: float, direction: str, applies_to: str, reference: str) -> float:
    _REG[name] = Threshold(name, value, direction, applies_to, reference)
    return value


# ---------------------------------------------------------------------------------------- model fit
#: Good fit (Hu & Bentler 1999): CFI and TLI at least .95, RMSEA at most .06, SRMR at most .08.
CFI_GOOD = _t("CFI_GOOD", 0.95, ">=", "cfi", _HU_BENTLER)
TLI_GOOD = _t("TLI_GOOD", 0.95, ">=", "tli", _HU_BENTLER)
RMSEA_GOOD = _t("RMSEA_GOOD", 0.06, "<=", "rmsea", _HU_BENTLER)
SRMR_GOOD = _t("SRMR_GOOD", 0.08, "<=", "srmr", _HU_BENTLER)
#: Acceptable fit: CFI/TLI at least .90 (Bentler & Bonett 1980), RMSEA at most .08 (Browne & Cudeck 1993).
CFI_ACCEPTABLE = _t("CFI_ACCEPTABLE", 0.90, ">=", "cfi", _BENTLER_BONETT)
TLI_ACCEPTABLE = _t("TLI_ACCEPTABLE", 0.90, ">=", "tli", _BENTLER_BONETT)
RMSEA_ACCEPTABLE = _t("RMSEA_ACCEPTABLE", 0.08, "<=", "rmsea", _BROWNE_CUDECK)

#: Hu & Bentler's cut-offs as (measure, direction, value), the order reports show them in.
HU_BENTLER: tuple[tuple[str, str, float], ...] = (
    ("cfi", ">=", CFI_GOOD), ("tli", ">=", TLI_GOOD), ("rmsea", "<=", RMSEA_GOOD), ("srmr", "<=", SRMR_GOOD))

#: Acceptable configural fit before invariance steps are judged (``cs.factor.invariance``'s default):
#: CFI at least .90 and RMSEA at most .08.
CONFIGURAL_FIT: Mapping[str, float] = {"cfi": CFI_ACCEPTABLE, "rmsea": RMSEA_ACCEPTABLE}

# ------------------------------------------------------------------------------------ invariance
#: Total N at or below which Chen's (2007) small-sample cut-offs apply.
CHEN2007_SMALL_N = _t("CHEN2007_SMALL_N", 300, "<=", "n_total", _CHEN)
#: Chen (2007), N > 300, loadings (metric): CFI drop .010, RMSEA rise .015, SRMR rise .030.
CHEN2007_LOADINGS: Mapping[str, float] = {"cfi": 0.010, "rmsea": 0.015, "srmr": 0.030}
#: Chen (2007), N > 300, intercepts/thresholds or residuals (scalar, strict): .010, .015, .010.
CHEN2007_INTERCEPTS: Mapping[str, float] = {"cfi": 0.010, "rmsea": 0.015, "srmr": 0.010}
#: Chen (2007), N <= 300, loadings: .005, .010, .025.
CHEN2007_LOADINGS_SMALL: Mapping[str, float] = {"cfi": 0.005, "rmsea": 0.010, "srmr": 0.025}
#: Chen (2007), N <= 300, intercepts or residuals: .005, .010, .005.
CHEN2007_INTERCEPTS_SMALL: Mapping[str, float] = {"cfi": 0.005, "rmsea": 0.010, "srmr": 0.005}
for _lvl, _d in (("LOADINGS", CHEN2007_LOADINGS), ("INTERCEPTS", CHEN2007_INTERCEPTS),
                 ("LOADINGS_SMALL", CHEN2007_LOADINGS_SMALL), ("INTERCEPTS_SMALL", CHEN2007_INTERCEPTS_SMALL)):
    for _m, _v in _d.items():
        _t(f"CHEN2007_{_lvl}_{_m.upper()}", _v, "<=", f"delta_{_m}" if _m != "cfi" else "-delta_cfi", _CHEN)
#: Cheung & Rensvold (2002): a CFI drop of more than .01 indicates non-invariance.
CHEUNG_RENSVOLD_DCFI = _t("CHEUNG_RENSVOLD_DCFI", 0.010, "<=", "-delta_cfi", _CHEUNG_RENSVOLD)


def chen2007(step: str, n_total: int) -> dict[str, float]:
    """Chen's (2007) cut-offs for one invariance step.

    Parameters
    ----------
    step : {"metric", "scalar", "strict"}
        The invariance step judged (loadings; intercepts/thresholds; residuals).
    n_total : int
        Total sample size over the groups.

    Returns
    -------
    dict
        ``cfi`` (largest acceptable drop), ``rmsea`` and ``srmr`` (largest acceptable rises).

    Examples
    --------
    >>> chen2007("metric", 500)
    {'cfi': 0.01, 'rmsea': 0.015, 'srmr': 0.03}
    >>> chen2007("scalar", 200)
    {'cfi': 0.005, 'rmsea': 0.01, 'srmr': 0.005}
    """
    from .errors import CipsError

    small = n_total <= CHEN2007_SMALL_N
    if step == "metric":
        return dict(CHEN2007_LOADINGS_SMALL if small else CHEN2007_LOADINGS)
    if step in ("scalar", "strict"):
        return dict(CHEN2007_INTERCEPTS_SMALL if small else CHEN2007_INTERCEPTS)
    raise CipsError(f"step must be 'metric', 'scalar' or 'strict', got {step!r}.")


# ------------------------------------------------------------------------------------ reliability
#: Alpha/omega of at least .80: good internal consistency (Nunnally 1978).
RELIABILITY_GOOD = _t("RELIABILITY_GOOD", 0.80, ">=", "alpha/omega", _NUNNALLY)
#: Below .70 a scale is "questionable" (Nunnally 1978's minimum for research use).
RELIABILITY_ACCEPTABLE = _t("RELIABILITY_ACCEPTABLE", 0.70, ">=", "alpha/omega", _NUNNALLY)
#: Below .60 a scale is "poor" (George & Mallery 2003).
RELIABILITY_POOR = _t("RELIABILITY_POOR", 0.60, ">=", "alpha/omega", _GEORGE_MALLERY)

# ------------------------------------------------------------------------------- precision, cells
#: Coefficient of variation above which an estimate is marked "use with caution" (16.6%).
CV_CAUTION = _t("CV_CAUTION", 0.166, "<=", "cv", _STATCAN)
#: Coefficient of variation above which an estimate is suppressed as too unreliable (33.3%).
CV_SUPPRESS = _t("CV_SUPPRESS", 0.333, "<=", "cv", _STATCAN)
#: Minimum scored respondents for a published indicator (precision rule).
MIN_CELL = _t("MIN_CELL", 30, ">=", "n", _MIN_CELL)
#: Minimum respondents for a stable reliability estimate in a cell (flag ``small_n`` below).
MIN_N_RELIABILITY = _t("MIN_N_RELIABILITY", 30, ">=", "n", _MIN_CELL)
#: Disclosure minimum: cells with fewer respondents are blanked on the way out.
DISCLOSURE_MIN = _t("DISCLOSURE_MIN", 10, ">=", "n", _DISCLOSURE)
#: The lowest disclosure minimum any option may set.
DISCLOSURE_FLOOR = _t("DISCLOSURE_FLOOR", 5, ">=", "min_n", _DISCLOSURE)

# ------------------------------------------------------------------------------------ Bayesian
#: Largest acceptable rank-normalised split R-hat (Vehtari et al. 2021).
RHAT_MAX = _t("RHAT_MAX", 1.01, "<=", "r_hat", _VEHTARI)
#: Smallest acceptable bulk and tail effective sample size (Vehtari et al. 2021: 100 per chain, 4 chains).
ESS_MIN = _t("ESS_MIN", 400, ">=", "ess", _VEHTARI)

# ------------------------------------------------------------------------------------ weights
#: A weight above this multiple of the median weight (of its cell) is extreme (Potter 1990, NAEP).
WEIGHT_RATIO_MAX = _t("WEIGHT_RATIO_MAX", 3.5, "<=", "weight/median weight", _POTTER)

# ------------------------------------------------------------------------------------ tests
#: Default level of tests (``significance=``).
SIGNIFICANCE = _t("SIGNIFICANCE", 0.05, ">", "p_value", _FISHER)
#: Composition drift: a share change above this (15 percentage points) is large.
DRIFT_SHARE_CHANGE = _t("DRIFT_SHARE_CHANGE", 0.15, "<=", "|share difference|", _DRIFT)
#: Composition drift: the level of its z test (1%).
DRIFT_SIGNIFICANCE = _t("DRIFT_SIGNIFICANCE", 0.01, ">", "p_value", _DRIFT)

# ------------------------------------------------------------------------------------ claims
#: The posterior rule calls a cell improved when P(change > 0) exceeds this (Gelman et al. 2013).
POSTERIOR_IMPROVED = _t("POSTERIOR_IMPROVED", 0.95, ">", "P(change > 0)", _GELMAN)
#: Fewer country clusters than this make cluster-robust standard errors optimistic (Cameron & Miller 2015).
FEW_CLUSTERS = _t("FEW_CLUSTERS", 30, ">=", "clusters", _CAMERON_MILLER)

# ------------------------------------------------------------------------------------ instrument review
#: A standardised loading below this makes an item a candidate for review (Stevens 2002).
LOADING_REVIEW = _t("LOADING_REVIEW", 0.40, ">=", "standardised loading", _STEVENS)
#: A "don't know" share above this makes an item a candidate for review (house rule).
DONT_KNOW_REVIEW = _t("DONT_KNOW_REVIEW", 0.10, "<=", "don't-know share", _DONT_KNOW)

#: Every named cut-off with its value, direction and reference.
REGISTRY: Mapping[str, Threshold] = dict(_REG)
#: Every distinct reference cited, in order of first use.
REFERENCES: tuple[str, ...] = tuple(dict.fromkeys(t.reference for t in _REG.values()))


# ====================================================================================== judges
def _fin(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def judge_fit(fit: Mapping[str, Any], *, kind: str | None = None,
              where: Mapping[str, Any] | None = None) -> tuple[Flag, ...]:
    """Flags for the fit measures that miss Hu & Bentler's (1999) cut-offs.

    Parameters
    ----------
    fit : mapping
        Fit measures under lavaan's names (``cfi``, ``tli``, ``rmsea``, ``srmr``);
        absent or NaN measures are not judged.
    kind : {None, "scaled", "robust"}
        Judge ``cfi_scaled`` (WLSMV) or ``cfi_robust`` (MLR) and so on where present,
        falling back to the plain measure.
    where : mapping, optional
        What the flags concern (model, group...).

    Returns
    -------
    tuple of Flag
        One flag per measure that misses the good-fit cut-off, code ``fit_<measure>``:
        severity ``"caution"`` when it still meets the acceptable level (CFI/TLI ≥ .90,
        RMSEA ≤ .08), ``"warning"`` otherwise (SRMR has one cut-off, .08).

    Examples
    --------
    >>> from cips_stats.thresholds import judge_fit
    >>> [(f.code, f.severity) for f in judge_fit({"cfi": 0.85, "rmsea": 0.07, "srmr": 0.05})]
    [('fit_cfi', 'warning'), ('fit_rmsea', 'caution')]
    """
    acceptable = {"cfi": _REG["CFI_ACCEPTABLE"], "tli": _REG["TLI_ACCEPTABLE"],
                  "rmsea": _REG["RMSEA_ACCEPTABLE"], "srmr": _REG["SRMR_GOOD"]}
    flags = []
    for measure, _, _ in HU_BENTLER:
        key = measure
        if kind is not None and _fin(fit.get(f"{measure}_{kind}")) == _fin(fit.get(f"{measure}_{kind}")):
            key = f"{measure}_{kind}"
        value = _fin(fit.get(key))
        if not math.isfinite(value):
            continue
        good = _REG[f"{measure.upper()}_GOOD"]
        if good.passes(value):
            continue
        ok = acceptable[measure].passes(value)
        sev = "caution" if ok else "warning"
        word = "acceptable but not good" if ok else "poor"
        flags.append(Flag(f"fit_{measure}", f"{key} = {value:.3f} misses the good-fit cut-off "
                          f"{good.direction} {good.value:g} (Hu & Bentler 1999): {word} fit.", sev,
                          {**dict(where or {}), "measure": key, "value": value, "cutoff": good.value}))
    return tuple(flags)


def judge_reliability(value: float, *, statistic: str = "alpha",
                      where: Mapping[str, Any] | None = None) -> tuple[Flag, ...]:
    """A flag when a reliability coefficient is below .70 (questionable) or .60 (poor).

    Parameters
    ----------
    value : float
        The coefficient (NaN is not judged).
    statistic : str
        Its name (``"alpha"``, ``"omega"``...), used in the flag code ``<statistic>_poor`` or
        ``<statistic>_questionable``.
    where : mapping, optional
        What it concerns.

    Returns
    -------
    tuple of Flag
        Empty, or one flag (severity ``"warning"`` when poor, ``"caution"`` when questionable).

    Examples
    --------
    >>> from cips_stats.thresholds import judge_reliability
    >>> [f.code for f in judge_reliability(0.65)]
    ['alpha_questionable']
    """
    v = _fin(value)
    if not math.isfinite(v):
        return ()
    if v < RELIABILITY_POOR:
        return (Flag(f"{statistic}_poor", f"{statistic} = {v:.3f} is below {RELIABILITY_POOR:.2f} (poor; "
                     "George & Mallery 2003).", "warning", dict(where or {})),)
    if v < RELIABILITY_ACCEPTABLE:
        return (Flag(f"{statistic}_questionable", f"{statistic} = {v:.3f} is below "
                     f"{RELIABILITY_ACCEPTABLE:.2f} (questionable; Nunnally 1978).", "caution", dict(where or {})),)
    return ()


def cv_category(cv: float) -> str:
    """``"ok"``, ``"caution"`` (CV above 16.6%), ``"suppress"`` (above 33.3%) or ``"undefined"`` (NaN).

    Parameters
    ----------
    cv : float
        Coefficient of variation ``se / |estimate|``.

    Returns
    -------
    str
        The category.

    Examples
    --------
    >>> from cips_stats.thresholds import cv_category
    >>> cv_category(0.1), cv_category(0.2), cv_category(0.5)
    ('ok', 'caution', 'suppress')
    """
    v = _fin(cv)
    if not math.isfinite(v):
        return "undefined"
    if v > CV_SUPPRESS:
        return "suppress"
    if v > CV_CAUTION:
        return "caution"
    return "ok"


def judge_convergence(r_hat: float, ess_bulk: float, ess_tail: float | None = None, *,
                      where: Mapping[str, Any] | None = None) -> tuple[Flag, ...]:
    """Flags for MCMC convergence: R-hat above 1.01 or ESS below 400 (Vehtari et al. 2021).

    Parameters
    ----------
    r_hat : float
        The largest rank-normalised split R-hat over the parameters.
    ess_bulk : float
        The smallest bulk effective sample size.
    ess_tail : float, optional
        The smallest tail effective sample size.
    where : mapping, optional
        What it concerns.

    Returns
    -------
    tuple of Flag
        Codes ``r_hat`` and ``low_ess`` (severity ``"warning"``).

    Examples
    --------
    >>> from cips_stats.thresholds import judge_convergence
    >>> [f.code for f in judge_convergence(1.02, 1000)]
    ['r_hat']
    """
    flags = []
    rh = _fin(r_hat)
    if not math.isfinite(rh) or rh > RHAT_MAX:
        flags.append(Flag("r_hat", f"R-hat = {rh:.3f} exceeds {RHAT_MAX} (Vehtari et al. 2021): the chains "
                          "have not mixed.", "warning", dict(where or {})))
    ess = [_fin(ess_bulk)] + ([_fin(ess_tail)] if ess_tail is not None else [])
    low = min(ess) if all(math.isfinite(e) for e in ess) else math.nan
    if not math.isfinite(low) or low < ESS_MIN:
        flags.append(Flag("low_ess", f"Effective sample size {low:.0f} is below {ESS_MIN} (Vehtari et al. "
                          "2021).", "warning", dict(where or {})))
    return tuple(flags)


def judge_weights(max_weight: float, median_weight: float, *,
                  where: Mapping[str, Any] | None = None) -> tuple[Flag, ...]:
    """A flag when the largest weight exceeds 3.5 times the median weight (Potter 1990).

    Parameters
    ----------
    max_weight, median_weight : float
        Largest and median weight of a cell (or the whole survey).
    where : mapping, optional
        What it concerns.

    Returns
    -------
    tuple of Flag
        Empty, or one ``extreme_weights`` flag (severity ``"caution"``).

    Examples
    --------
    >>> from cips_stats.thresholds import judge_weights
    >>> [f.code for f in judge_weights(8.0, 1.0)]
    ['extreme_weights']
    """
    mx, md = _fin(max_weight), _fin(median_weight)
    if not (math.isfinite(mx) and math.isfinite(md)) or md <= 0 or mx / md <= WEIGHT_RATIO_MAX:
        return ()
    return (Flag("extreme_weights", f"The largest weight is {mx / md:.1f} times the median (above "
                 f"{WEIGHT_RATIO_MAX}, Potter 1990): consider trimming.", "caution",
                 {**dict(where or {}), "ratio": mx / md}),)


def check_disclosure_min(min_n: Any) -> int:
    """Validate a disclosure minimum: an integer not below :data:`DISCLOSURE_FLOOR` (5).

    Parameters
    ----------
    min_n : int
        The requested minimum.

    Returns
    -------
    int
        ``min_n`` as an int.

    Raises
    ------
    CipsError
        If ``min_n`` is not an integer or is below 5.

    Examples
    --------
    >>> from cips_stats.thresholds import check_disclosure_min
    >>> check_disclosure_min(10)
    10
    """
    from .errors import CipsError

    if isinstance(min_n, bool) or not isinstance(min_n, int) and not hasattr(min_n, "__index__"):
        raise CipsError(f"The disclosure minimum must be an integer; got {min_n!r}.")
    v = int(min_n)
    if v < DISCLOSURE_FLOOR:
        raise CipsError(f"The disclosure minimum must be at least {DISCLOSURE_FLOOR} respondents; got {v}.")
    return v


def as_table():
    """Every registered cut-off as a table, for a report's methods section.

    Returns
    -------
    pandas.DataFrame
        One row per constant: ``name``, ``applies_to``, ``direction``, ``value``, ``reference``.

    Examples
    --------
    >>> from cips_stats.thresholds import as_table
    >>> t = as_table()
    >>> row = t.set_index("name").loc["SRMR_GOOD"]
    >>> row["direction"], float(row["value"])
    ('<=', 0.08)
    """
    import pandas as pd

    return pd.DataFrame([{"name": t.name, "applies_to": t.applies_to, "direction": t.direction,
                          "value": t.value, "reference": t.reference} for t in REGISTRY.values()])
