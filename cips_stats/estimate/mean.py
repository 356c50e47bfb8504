"""Design-based means, proportions, totals and ratios with design-correct standard errors.

:func:`survey_mean` takes a plain DataFrame (or a :class:`~cips_stats.SurveyData`)
and the design — a :class:`~cips_stats.estimate.Design` or its columns — and
returns a :class:`SurveyEstimate` with the estimate, its standard error by Taylor
linearization (multistage, with calibration), by replicate weights given by the
user (bootstrap, jackknife, BRR...) or by a fresh Rao–Wu bootstrap, the design
effect, the design degrees of freedom and a t confidence interval.  It matches R
``survey`` (``svydesign`` + ``svymean``/``svytotal``/``svyratio``, domains by
``subset(design)``, ``svrepdesign``/``as.svrepdesign``, designs calibrated by
``postStratify``/``rake``/``calibrate``); see ``tests/reference/survey_*.json``.

Examples
--------
>>> import pandas as pd
>>> import cips_stats as cs
>>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "w": [1.0, 1.0, 2.0, 2.0], "s": [1, 1, 2, 2]})
>>> # R: svymean(~y, svydesign(id = ~1, strata = ~s, weights = ~w, data = df))
>>> r = cs.estimate.survey_mean(df, "y", weight="w", strata="s")
>>> round(r.estimate, 4), round(r.se, 4), r.df
(2.8333, 0.3727, 2.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import CipsError, DataError, Flag, NumericalWarning, Problem, emit
from ..results import Provenance, Result, resolve_seed
from . import replicates as _rep
from .design import Design, PreparedDesign, _column, prepare, resolve
from .intervals import check_level, t_interval
from .linearization import LONELY_PSU, VARIANCE_KINDS, calibration_residuals, design_variance

__all__ = ["SurveyEstimate", "survey_mean"]

_STATISTICS = ("mean", "total", "proportion", "ratio")
_SE = ("linearization", "bootstrap", "replicate")


@dataclass(frozen=True)
class SurveyEstimate(Result):
    """A design-based estimate (as R ``survey``'s ``svystat``).

    Attributes
    ----------
    statistic : str
        ``"mean"``, ``"proportion"``, ``"total"`` or ``"ratio"``.
    y, denominator : str
        Variable(s) estimated.
    estimate, se, var : float
        Point estimate, standard error and variance.
    ci : float
        Confidence level of ``ci_low``/``ci_high``.
    ci_low, ci_high : float
        ``estimate -/+ t_{df, (1+ci)/2} * se``.
    df : float
        Degrees of freedom of the interval: #PSUs - #strata of the (domain)
        design (R ``degf``); rank of the replicate weights - 1 for replicate
        weights.
    deff, deff_replace : float
        Design effect against simple random sampling without / with
        replacement (R ``svymean(deff = TRUE)`` / ``deff = "replace"``).
    n : int
        Rows used (in the domain, non-missing, non-zero weight).
    n_psu, n_strata : int
        PSUs and strata of the domain.
    sum_weights : float
        Sum of the weights in the domain (estimated population size).
    se_method : str
        ``"linearization"``, ``"bootstrap"`` or ``"replicate"``.
    variance : str
        ``"multistage"`` or ``"ultimate"`` (linearization).
    """

    statistic: str = "mean"
    y: str = ""
    denominator: str | None = None
    estimate: float = math.nan
    se: float = math.nan
    var: float = math.nan
    ci: float = 0.95
    ci_low: float = math.nan
    ci_high: float = math.nan
    df: float = math.nan
    deff: float = math.nan
    deff_replace: float = math.nan
    n: int = 0
    n_psu: int = 0
    n_strata: int = 0
    sum_weights: float = math.nan
    se_method: str = "linearization"
    variance: str = "multistage"

    def confint(self, ci: float = 0.95, df: float | None = None) -> tuple[float, float]:
        """Interval at another level (t with ``df``; ``df=math.inf`` gives R's ``confint`` default)."""
        return t_interval(self.estimate, self.se, ci, self.df if df is None else df)


# ---------------------------------------------------------------------------------------------
# argument checks and the values of the domain
# ---------------------------------------------------------------------------------------------
def _choice(value: Any, options: tuple, what: str) -> str:
    if value not in options:
        raise CipsError(f"{what}= must be one of {options}; got {value!r}.")
    return value


def _check_args(statistic, se, lonely_psu, variance, denominator, ci) -> float:
    _choice(statistic, _STATISTICS, "statistic")
    _choice(se, _SE, "se")
    _choice(lonely_psu, LONELY_PSU, "lonely_psu")
    _choice(variance, VARIANCE_KINDS, "variance")
    if statistic == "ratio" and denominator is None:
        raise CipsError("statistic='ratio' needs denominator=.")
    return check_level(ci)


def domain_mask(frame: pd.DataFrame, domain: Any) -> np.ndarray:
    """Rows of a domain: None (all), a boolean column name, a dict {column: value(s)} or a boolean mask."""
    n = len(frame)
    if domain is None:
        return np.ones(n, dtype=bool)
    if isinstance(domain, str):
        s = _column(frame, domain, "domain")
        if s.dtype != bool:
            raise DataError(f"domain={domain!r} must name a boolean column.",
                            [Problem("domain_boolean", "Domain column must be boolean.", column=domain)])
        return s.to_numpy(dtype=bool)
    if isinstance(domain, Mapping):
        keep = np.ones(n, dtype=bool)
        for col, val in domain.items():
            vals = val if isinstance(val, (list, tuple, set)) else [val]
            keep &= _column(frame, col, "domain").isin(list(vals)).to_numpy()
        return keep
    arr = np.asarray(domain)
    if arr.shape != (n,) or arr.dtype != bool:
        raise DataError("domain= must be a boolean mask with one value per row, a boolean column name or "
                        "a dict {column: value(s)}.", [Problem("domain_mask", "Bad domain.", column="domain")])
    return arr


@dataclass
class _Values:
    """The domain's values: ``y0``/``x0`` zero outside ``d`` (in domain, non-missing, non-zero weight)."""

    dom: np.ndarray
    d: np.ndarray
    wd: np.ndarray
    y0: np.ndarray
    x0: np.ndarray | None
    W: float
    n_used: int


def _values(frame, y, denominator, statistic, domain, w, flags) -> _Values:
    yv = pd.to_numeric(_column(frame, y, "y"), errors="coerce").to_numpy(dtype=np.float64)
    dom = domain_mask(frame, domain)
    ok = dom & ~np.isnan(yv)
    xv = None
    if statistic == "ratio":
        xv = pd.to_numeric(_column(frame, denominator, "denominator"), errors="coerce").to_numpy(dtype=np.float64)
        ok &= ~np.isnan(xv)
    n_missing = int((dom & ~ok).sum())
    if n_missing:
        flags.append(Flag("missing_dropped", f"{n_missing} row(s) of the domain have a missing value and were "
                          "dropped (as a domain: the design's PSUs are kept).", "info", {"n": n_missing}))
    if statistic == "proportion":
        badv = ok & ~np.isin(yv, (0.0, 1.0))
        if badv.any():
            rows = np.flatnonzero(badv)
            raise DataError(f"statistic='proportion' needs a 0/1 variable; {y!r} has other values.",
                            [Problem("proportion_binary", "Value is not 0 or 1.", row=int(r) + 1, column=y,
                                     value=float(yv[r])) for r in rows[:50]])
    d = ok & (w != 0)
    n_used = int(d.sum())
    if n_used == 0:
        raise DataError(f"The domain is empty: no row with non-zero weight and a non-missing {y!r}.",
                        [Problem("empty_domain", "Empty domain (or all weights zero).", column=y)])
    wd = np.where(d, w, 0.0)
    return _Values(dom, d, wd, np.where(d, yv, 0.0), None if xv is None else np.where(d, xv, 0.0),
                   float(wd.sum()), n_used)


def _point_and_influence(v: _Values, statistic: str, denominator: Any) -> tuple[float, np.ndarray]:
    if statistic in ("mean", "proportion"):
        if not v.W > 0:
            raise DataError("The weights of the domain sum to zero or less; no mean can be formed.",
                            [Problem("weight_sum", "Non-positive weight total in the domain.", value=v.W)])
        est = float(v.wd @ v.y0 / v.W)
        return est, v.wd * (v.y0 - est) / v.W
    if statistic == "total":
        return float(v.wd @ v.y0), v.wd * v.y0
    X = float(v.wd @ v.x0)
    if X == 0:
        raise DataError(f"The weighted total of denominator {denominator!r} is zero in the domain.",
                        [Problem("ratio_zero_denominator", "Zero denominator total.", column=denominator)])
    est = float(v.wd @ v.y0 / X)
    return est, v.wd * (v.y0 - est * v.x0) / X


def statistic_from_weights(W: np.ndarray, y: np.ndarray, x: np.ndarray | None, statistic: str) -> np.ndarray:
    """Estimates for each column of the ``(n, R)`` weight matrix ``W`` (rows outside the domain zero)."""
    ty = y @ W
    if statistic == "total":
        return ty
    if statistic == "ratio":
        return ty / (x @ W)
    return ty / W.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# the three variance methods
# ---------------------------------------------------------------------------------------------
def _linearization(z, v, frame, design, cal, prep, lonely_psu, variance, flags, df_design):
    zz = calibration_residuals(z, frame, cal, prep.w) if cal is not None else z
    V, vflags = design_variance(zz, prep, lonely_psu, in_domain=v.d, variance=variance)
    flags.extend(vflags)
    if cal is not None:
        flags.append(Flag("calibration_se", f"SE accounts for calibration ({cal.method} on "
                          f"{', '.join(cal.variables + cal.numeric)}).", "info", {"method": cal.method}))
    if variance == "multistage" and len(prep.stages) > 1 and not all(s.has_fpc for s in prep.stages):
        flags.append(Flag("ultimate_cluster", "Not every stage has an fpc, so the variance is the first-stage "
                          "(ultimate-cluster) one, as R's.", "info"))
    return float(V[0, 0]), df_design


def _replicate_thetas(frame, v, statistic, rw, rtype, rscale, rrscales, rdf):
    if rw is None:
        raise CipsError("se='replicate' needs replicate_weights=.")
    RW = _rep.replicate_matrix(frame, rw)
    R = RW.shape[1]
    scale, rscales = _rep.replicate_scale(rtype, R, rscale, rrscales)
    thetas = statistic_from_weights(RW * v.d[:, None], v.y0, v.x0, statistic)
    df = float(rdf) if rdf is not None else float(np.linalg.matrix_rank(RW) - 1)
    return thetas, scale, rscales, df


def _bootstrap_thetas(v, statistic, prep, cal_present, n_boot, seed, bootstrap_type, lonely_psu, flags):
    if lonely_psu not in ("fail", "certainty"):
        raise CipsError(f'se="bootstrap" supports lonely_psu "fail" or "certainty"; got {lonely_psu!r}.')
    if prep.has_fpc:
        flags.append(Flag("bootstrap_no_fpc", "The bootstrap ignores the finite population correction "
                          "(conservative).", "info"))
    if cal_present:
        flags.append(Flag("bootstrap_calibration", "Replicates reuse the calibrated weights without "
                          "re-calibrating each replicate; the SE ignores the calibration.", "caution"))
    chunk = max(1, min(int(n_boot), 2_000_000 // max(1, len(prep.w))))
    parts = [statistic_from_weights((c * v.d[None, :]).T, v.y0, v.x0, statistic)
             for c in _rep.rao_wu_weights(weight=prep.w, strata=prep.stratum, cluster=prep.psu, n_boot=int(n_boot),
                                          seed=seed, chunk_size=chunk, bootstrap_type=bootstrap_type,
                                          lonely_psu=lonely_psu)]
    thetas = np.concatenate(parts)
    scale = _rep.rao_wu_scale(thetas.size, bootstrap_type=bootstrap_type, n_h=prep.n_h[prep.n_h > 0])
    return thetas, scale, np.ones(thetas.size)


def _replicate_var(thetas, scale, rscales, est, mse, flags) -> float:
    bad = ~np.isfinite(thetas)
    if bad.any():
        flags.append(emit(Flag("replicate_nan", f"{int(bad.sum())} replicate(s) gave no estimate (empty domain "
                               "in the replicate) and were discarded, as R does.", "warning", {"n": int(bad.sum())}),
                          NumericalWarning, stacklevel=5))
        thetas, rscales = thetas[~bad], rscales[~bad]
    center = est if mse else float(np.mean(thetas[rscales > 0]))
    return float(scale * np.sum(rscales * (thetas - center) ** 2))


def design_effects(statistic: str, var: float, v: _Values, est: float) -> tuple[float, float]:
    """Design effects without / with replacement (R: svyvar of the domain's values, n rows of non-zero weight)."""
    n = v.n_used
    if n < 2:
        return math.nan, math.nan
    W = v.W
    if statistic == "ratio":
        X = float(v.wd @ v.x0)
        u = np.where(v.d, (v.y0 - est * v.x0) / X, 0.0)
    else:
        u = v.y0
    ubar = float(v.wd @ u / W)
    vy = float(v.wd @ (u - ubar) ** 2 / W) * n / (n - 1)
    if statistic in ("mean", "proportion"):
        v_rep = vy / n
        v_wor = vy * (W - n) / (W * n) if W >= n else math.nan
    else:
        v_rep = vy * W * W / n
        v_wor = vy * W * W * (W - n) / (W * n)
    deff = var / v_wor if (np.isfinite(v_wor) and v_wor > 0) else math.nan
    return deff, (var / v_rep if v_rep > 0 else math.nan)


def _domain_counts(v: _Values, prep: PreparedDesign) -> tuple[int, int]:
    in_dom = v.dom & (prep.w != 0)
    return int(np.unique(prep.psu[in_dom]).size), int(np.unique(prep.stratum[in_dom]).size)


def _name(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(c, str) for c in v):
        return list(v)
    return "<array>"


def _design_options(design: Design | None, arrays: dict) -> dict:
    if design is not None:
        return {"weight": design.weight, "strata": design.strata, "cluster": _name(design.cluster),
                "fpc": _name(design.fpc)}
    return {k: _name(arrays.get(k)) for k in ("weight", "strata", "cluster", "fpc")}


def _variance(se, z, v, est, frame, design, cal, prep, df_design, flags, statistic, lonely_psu, variance,
              replicate_weights, replicate_type, replicate_scale, replicate_rscales, replicate_df, replicate_mse,
              n_boot, seed, bootstrap_type) -> tuple[float, float]:
    """Variance and degrees of freedom by linearization, the given replicate weights or a fresh bootstrap."""
    if se == "linearization":
        return _linearization(z, v, frame, design, cal, prep, lonely_psu, variance, flags, df_design)
    if se == "replicate":
        thetas, scale, rscales, df = _replicate_thetas(frame, v, statistic, replicate_weights, replicate_type,
                                                       replicate_scale, replicate_rscales, replicate_df)
    else:
        thetas, scale, rscales = _bootstrap_thetas(v, statistic, prep, cal is not None, n_boot, seed,
                                                   bootstrap_type, lonely_psu, flags)
        df = df_design
    return _replicate_var(thetas, scale, rscales, est, replicate_mse, flags), df


def survey_mean(data: Any, y: str, *, weight: Any = None, strata: Any = None, cluster: Any = None,
                fpc: Any = None, statistic: str = "mean", denominator: str | None = None, domain: Any = None,
                se: str = "linearization", variance: str = "multistage", ci: float = 0.95,
                lonely_psu: str = "fail", replicate_weights: Any = None, replicate_type: str | None = None,
                replicate_scale: float | None = None, replicate_rscales: Any = None, replicate_mse: bool = False,
                replicate_df: float | None = None, n_boot: int = 1000, seed: int | None = None,
                bootstrap_type: str = "subbootstrap") -> SurveyEstimate:
    """Design-based mean, proportion, total or ratio with its standard error, CI and design effect.

    Parameters
    ----------
    data : pandas.DataFrame or SurveyData
        Respondent table.  A SurveyData brings its own design
        (``data.design``) unless ``weight=`` says otherwise.
    y : str
        Variable to estimate (numerator of a ratio).  Missing values are
        dropped as a domain (R ``na.rm = TRUE``): the design's PSU counts
        are kept.
    weight : Design, str, array-like or None
        The design (:class:`~cips_stats.estimate.Design`, with its calibration),
        or the weight column (then ``strata``, ``cluster``, ``fpc`` give the
        rest of the design); ``None``: unit weights for a DataFrame, the
        data's design for a SurveyData.  Weights must be finite and >= 0
        (negative only after a linear calibration); zero-weight rows are out
        of every domain.
    strata, cluster, fpc : str, sequence of str or array-like, optional
        Stratum labels; cluster labels of each stage (``("dnum", "snum")``
        for two stages), nested in strata; fpc of each stage: the population
        number of units (> 1) or the sampling fraction (<= 1).
    statistic : {"mean", "proportion", "total", "ratio"}
        ``"proportion"`` is the mean of a 0/1 variable (checked).
    denominator : str
        Denominator variable of a ratio.
    domain : bool mask, boolean column name or dict {column: value(s)}, optional
        Sub-population (R ``subset(design, ...)``): rows outside keep their
        PSUs and strata in the variance.
    se : {"linearization", "bootstrap", "replicate"}
        Taylor linearization, a fresh Rao–Wu bootstrap of the first-stage
        units (``n_boot``, ``seed``, ``bootstrap_type``), or the
        ``replicate_weights`` given.
    variance : {"multistage", "ultimate"}
        Linearization of a multistage design with an fpc at every stage:
        add the later stages' variance (R's default) or keep only the
        first-stage, ultimate-cluster variance (R
        ``options(survey.ultimate.cluster = TRUE)``).
    ci : float
        Confidence level; the interval is t with ``df`` degrees of freedom.
    lonely_psu : {"fail", "certainty", "remove", "adjust", "average"}
        Strata holding a single PSU; "fail" (default) raises
        :class:`~cips_stats.errors.SingletonPSUError` listing them and the
        remedies.  Chosen per call, never globally.
    replicate_weights, replicate_type, replicate_scale, replicate_rscales, replicate_mse, replicate_df
        Analysis replicate weights (array (n, R), list of columns or column
        prefix; R ``svrepdesign(combined.weights = TRUE)``) and
        ``v = scale * sum_r rscales_r (theta_r - c)^2`` with ``c`` the mean of
        the replicates (``mse=False``, R's default) or the estimate; the type
        ("bootstrap", "subbootstrap", "JK1", "JKn", "BRR") gives R's default
        scale; ``df`` defaults to rank(replicate weights) - 1.
    n_boot, seed, bootstrap_type : int, int or None, str
        Fresh bootstrap: replicates, seed (``None`` draws one, recorded in
        ``provenance.seed``) and type ("subbootstrap" = Rao–Wu,
        "bootstrap" = Canty–Davison).

    Returns
    -------
    SurveyEstimate

    Notes
    -----
    With influence values ``z_i`` (mean: ``w_i (y_i - ybar)/sum w``; total:
    ``w_i y_i``; ratio: ``w_i (y_i - R x_i)/X``; zero outside the domain,
    residuals from the calibration model after calibration), the variance is
    ``sum_h (1 - f_h) n_h/(n_h - 1) sum_j (z_hj - zbar_h)^2`` over PSU totals
    (R ``svyrecvar``), plus each later stage's within-unit variance times the
    sampling fractions above it (multistage).  Matches R survey 4.1.1 to
    1e-8 (``validation/r/survey*.R``; replicate variances 1e-10).

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"y": [3.0, 5.0, 4.0, 8.0, 6.0, 7.0], "w": [10.0, 10, 20, 20, 15, 15],
    ...                    "psu": [1, 1, 2, 2, 3, 3]})
    >>> r = cs.estimate.survey_mean(df, "y", weight="w", cluster="psu")
    >>> round(r.estimate, 4), round(r.se, 4), r.df   # R: svymean(~y, svydesign(id=~psu, weights=~w)): 5.7222, 0.586
    (5.7222, 0.586, 2.0)
    """
    level = _check_args(statistic, se, lonely_psu, variance, denominator, ci)
    frame, design, arrays = resolve(data, weight, strata, cluster, fpc)
    cal = design.calibration if design is not None else None
    prep = prepare(frame, design, arrays=arrays, allow_negative=cal is not None and cal.method == "linear")
    flags: list[Flag] = []
    v = _values(frame, y, denominator, statistic, domain, prep.w, flags)
    if (prep.w < 0).any():
        flags.append(emit(Flag("negative_weights", f"{int((prep.w < 0).sum())} calibrated weight(s) are negative "
                               "(linear calibration); estimates remain unbiased but can fall outside the range of "
                               "the data.", "caution", {"n": int((prep.w < 0).sum())}), NumericalWarning))
    est, z = _point_and_influence(v, statistic, denominator)
    n_psu, n_strata = _domain_counts(v, prep)
    used_seed = resolve_seed(seed) if se == "bootstrap" else None
    var, df = _variance(se, z, v, est, frame, design, cal, prep, float(n_psu - n_strata), flags, statistic,
                        lonely_psu, variance, replicate_weights, replicate_type, replicate_scale, replicate_rscales,
                        replicate_df, replicate_mse, n_boot, used_seed, bootstrap_type)
    deff, deff_r = design_effects(statistic, var, v, est)
    if v.n_used < 2 or df <= 0:
        flags.append(Flag("no_df", f"Design degrees of freedom are {df:g}: no confidence interval.", "warning",
                          {"df": df}))
    sev = math.sqrt(var) if var >= 0 else math.nan
    lo, hi = t_interval(est, sev, level, df)
    prov = Provenance.build("survey_mean", data=frame, seed=used_seed, options={
        "statistic": statistic, "y": y, "denominator": denominator, **_design_options(design, arrays),
        "se": se, "variance": variance, "lonely_psu": lonely_psu, "ci": level, "replicate_mse": replicate_mse,
        "n_boot": n_boot if se == "bootstrap" else None,
        "bootstrap_type": bootstrap_type if se == "bootstrap" else None,
        "calibration": cal.method if cal is not None else None})
    return SurveyEstimate(statistic=statistic, y=y, denominator=denominator, estimate=est, se=sev, var=var,
                          ci=level, ci_low=lo, ci_high=hi, df=df, deff=deff, deff_replace=deff_r, n=v.n_used,
                          n_psu=n_psu, n_strata=n_strata, sum_weights=v.W, se_method=se, variance=variance,
                          provenance=prov, flags=tuple(flags))
