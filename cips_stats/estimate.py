"""Design-based estimation: means, proportions, totals and ratios with design-correct standard errors.

:func:`survey_mean` is the kernel: it takes a plain DataFrame (or a
:class:`~cips_stats.SurveyData`) with the names of its weight, stratum, cluster
and fpc columns, and returns a :class:`SurveyEstimate` with the estimate, its
standard error by Taylor linearization, by replicate weights given by the user
(bootstrap, jackknife, BRR...) or by a fresh Rao–Wu bootstrap, the design
effect, the design degrees of freedom and a t confidence interval.  It matches
R ``survey`` (``svydesign`` + ``svymean``/``svytotal``/``svyratio``, domains by
``subset(design)``, ``svrepdesign``/``as.svrepdesign``, and designs calibrated
by ``postStratify``/``rake``/``calibrate``); see
``tests/reference/survey_*.json`` and ``methodology/weighting-and-estimation.md``.

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
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from .errors import DataError, Flag, Problem, SingletonPSUError
from .results import Provenance, Result

__all__ = ["SurveyEstimate", "Calibration", "survey_mean"]

_STATISTICS = ("mean", "total", "proportion", "ratio")
_SE = ("linearization", "bootstrap", "replicate")
_LONELY = ("fail", "certainty", "remove", "adjust", "average")
_LONELY_R = {
    "certainty": 'options(survey.lonely.psu = "certainty"): the stratum adds no variance (PSU taken with '
                 "certainty)",
    "remove": 'options(survey.lonely.psu = "remove"): the stratum adds no variance',
    "adjust": 'options(survey.lonely.psu = "adjust"): the PSU total is centred at zero (the grand mean of '
              "the influence values) instead of its stratum mean (conservative)",
    "average": 'options(survey.lonely.psu = "average"): the variance is scaled up by the number of strata '
               "over the number of strata with two or more PSUs",
}


# ---------------------------------------------------------------------------------------------
# Calibration description (written by cips_stats.weighting, read here for calibration-aware SEs)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """How the weights in a column were calibrated, so that SEs can account for it.

    :mod:`cips_stats.weighting` attaches one to the frame it returns
    (``frame.attrs["cips_calibration"]``); :func:`survey_mean` reads it when
    ``calibration="auto"`` and the weight column matches.

    Parameters
    ----------
    method : {"poststratify", "rake", "linear", "raking"}
        Post-stratification on the joint cells of ``variables``; raking (IPF)
        to the margins of ``variables``; GREG calibration with a linear or
        raking (exponential) distance on the model ``~ variables + numeric``.
    variables : tuple of str
        Categorical calibration variables (columns of the frame).
    weight : str
        Column holding the calibrated weights.
    base_weight : str
        Column holding the weights before calibration.
    numeric : tuple of str
        Numeric calibration variables (GREG only).
    by : tuple of str
        Cells calibrated separately (each to its own margins).
    scope : tuple of (str, tuple of tuple)
        ``(variable, cells)`` pairs for the categorical variables calibrated
        in some cells only (each cell a tuple of its ``by`` values); their
        other cells are neither calibrated nor residualised on them.  A
        variable not named here applies in every cell.
    """

    method: str
    variables: tuple = ()
    weight: str = "weight"
    base_weight: str = "weight_base"
    numeric: tuple = ()
    by: tuple = ()
    scope: tuple = ()


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------
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
    ci : tuple of float
        Confidence interval ``estimate -/+ t_{df, (1+ci_level)/2} * se``.
    ci_level : float
        Level of ``ci``.
    df : float
        Degrees of freedom of ``ci``: #PSUs - #strata of the (domain) design
        for linearization (R ``degf``); rank of the replicate weights - 1 for
        replicate weights.
    deff : float
        Design effect against simple random sampling without replacement from
        a population of ``sum(weights)`` units (R ``svymean(deff = TRUE)``).
    deff_replace : float
        Design effect against simple random sampling with replacement (R
        ``deff = "replace"``).
    n : int
        Rows used (in the domain, non-missing, positive weight).
    n_psu, n_strata : int
        PSUs and strata of the domain.
    sum_weights : float
        Sum of the weights in the domain (estimated population size).
    se_method : str
        ``"linearization"``, ``"bootstrap"`` or ``"replicate"``.
    """

    statistic: str = "mean"
    y: str = ""
    denominator: str | None = None
    estimate: float = math.nan
    se: float = math.nan
    var: float = math.nan
    ci: tuple = (math.nan, math.nan)
    ci_level: float = 0.95
    df: float = math.nan
    deff: float = math.nan
    deff_replace: float = math.nan
    n: int = 0
    n_psu: int = 0
    n_strata: int = 0
    sum_weights: float = math.nan
    se_method: str = "linearization"

    def confint(self, level: float = 0.95, df: float | None = None) -> tuple[float, float]:
        """Confidence interval at another level (t with ``df``; ``df=inf`` gives R's ``confint`` default)."""
        d = self.df if df is None else df
        return _t_interval(self.estimate, self.se, level, d)


def _t_interval(est: float, se: float, level: float, df: float) -> tuple[float, float]:
    if not (0 < level < 1):
        raise DataError(f"ci= must be between 0 and 1; got {level!r}.",
                        [Problem("ci_level", "Confidence level must be in (0, 1).", column="ci", value=level)])
    if not np.isfinite(se) or not (df > 0):
        return (math.nan, math.nan)
    q = _st.norm.ppf(0.5 + level / 2) if math.isinf(df) else _st.t.ppf(0.5 + level / 2, df)
    return (float(est - q * se), float(est + q * se))


# ---------------------------------------------------------------------------------------------
# Design preparation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Design:
    w: np.ndarray             # weights (n,)
    stratum: np.ndarray       # stratum code per row (n,)
    psu: np.ndarray           # PSU code per row (n,), PSUs numbered globally
    psu_stratum: np.ndarray   # stratum code per PSU (P,)
    n_h: np.ndarray           # PSUs per stratum in the full design (H,)
    f_h: np.ndarray           # 1 - sampling fraction per stratum (H,), 1 without fpc
    strata_labels: np.ndarray
    has_fpc: bool


def _column(frame: pd.DataFrame, name: Any, what: str) -> pd.Series:
    if isinstance(name, str):
        if name not in frame.columns:
            raise DataError(f"{what}={name!r} is not a column of the frame.",
                            [Problem("column_missing", f"Column {name!r} not found.", column=name)])
        return frame[name]
    arr = np.asarray(name)
    if arr.shape != (len(frame),):
        raise DataError(f"{what}= must be a column name or have one value per row ({len(frame)}); got "
                        f"shape {arr.shape}.", [Problem("length_mismatch", "Wrong length.", column=what)])
    return pd.Series(arr, index=frame.index)


def _missing_problems(s: pd.Series, what: str) -> list[Problem]:
    bad = np.flatnonzero(s.isna().to_numpy())
    return [Problem("design_missing", f"Missing {what} value.", row=int(r), column=str(s.name or what))
            for r in bad[:50]]


def _prepare_design(frame: pd.DataFrame, weight: Any, strata: Any, cluster: Any, fpc: Any,
                    allow_negative: bool = False) -> _Design:
    n = len(frame)
    if weight is None:
        w = np.ones(n)
    else:
        ws = _column(frame, weight, "weight")
        w = pd.to_numeric(ws, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(w) | ((w < 0) & (not allow_negative)))
        if bad.size:
            raise DataError(
                f"weight={weight!r} has {bad.size} negative, missing or non-finite values; survey weights "
                "must be finite and >= 0.",
                [Problem("weight_nonnegative", "Weight must be finite and >= 0.", row=int(r),
                         column=str(weight), value=ws.iloc[r]) for r in bad[:50]])
    if strata is None:
        s_codes = np.zeros(n, dtype=np.intp)
        s_labels = np.array([1])
    else:
        ss = _column(frame, strata, "strata")
        probs = _missing_problems(ss, "strata")
        if probs:
            raise DataError(f"strata={strata!r} has missing values.", probs)
        s_codes, s_labels = pd.factorize(ss, sort=True)
        s_labels = np.asarray(s_labels)
    if cluster is None:
        psu_key = np.arange(n)
    else:
        cs_ = _column(frame, cluster, "cluster")
        probs = _missing_problems(cs_, "cluster")
        if probs:
            raise DataError(f"cluster={cluster!r} has missing values.", probs)
        psu_key = pd.factorize(cs_, sort=True)[0]
    # PSUs are nested in strata (R: svydesign(nest = TRUE))
    pair = s_codes.astype(np.int64) * (int(psu_key.max()) + 1 if n else 1) + psu_key
    psu, uniq = pd.factorize(pair, sort=True)
    psu = psu.astype(np.intp)
    H = len(s_labels)
    psu_stratum = np.zeros(len(uniq), dtype=np.intp)
    psu_stratum[psu] = s_codes
    n_h = np.bincount(psu_stratum, minlength=H).astype(np.float64)
    f_h = np.ones(H)
    has_fpc = fpc is not None
    if has_fpc:
        fs = pd.to_numeric(_column(frame, fpc, "fpc"), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(fs) | (fs <= 0))
        if bad.size:
            raise DataError(f"fpc={fpc!r} has {bad.size} missing or non-positive values.",
                            [Problem("fpc_positive", "fpc must be a positive population size or fraction.",
                                     row=int(r), column=str(fpc), value=float(fs[r])) for r in bad[:50]])
        lo = np.full(H, np.inf)
        hi = np.full(H, -np.inf)
        np.minimum.at(lo, s_codes, fs)
        np.maximum.at(hi, s_codes, fs)
        varying = np.flatnonzero(hi - lo > 1e-9 * np.maximum(1.0, hi))
        if varying.size:
            raise DataError("fpc= varies within a stratum; it must be constant per stratum.",
                            [Problem("fpc_constant", "fpc differs within the stratum.", column=str(fpc),
                                     value=str(s_labels[h])) for h in varying])
        if np.all(fs <= 1):            # sampling fractions (R: popsize = n_h / fraction)
            pop = n_h / lo
        else:
            pop = lo
        small = np.flatnonzero(pop < n_h - 1e-9)
        if small.size:
            raise DataError("fpc= gives a population smaller than the number of sampled PSUs.",
                            [Problem("fpc_too_small", f"Population {pop[h]:g} < {n_h[h]:g} sampled PSUs.",
                                     column=str(fpc), value=str(s_labels[h])) for h in small])
        f_h = (pop - n_h) / pop
    return _Design(w, s_codes.astype(np.intp), psu, psu_stratum, n_h, f_h, s_labels, has_fpc)


def _linearization_variance(z: np.ndarray, design: _Design, lonely_psu: str = "fail",
                           in_domain: np.ndarray | None = None) -> tuple[np.ndarray, list[Flag]]:
    """Stratified with-replacement (first-stage) variance of totals of the columns of ``z``.

    ``V = sum_h (1 - f_h) n_h/(n_h - 1) sum_j (t_hj - tbar_h)(t_hj - tbar_h)'`` with ``t_hj`` the PSU
    totals of ``z`` (R ``survey:::onestrat``); ``z`` has shape (n,) or (n, k).  Returns the
    ``k x k`` variance and the flags raised (lonely PSUs).
    """
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim == 1:
        zz = zz[:, None]
    P = design.psu_stratum.size
    H = design.n_h.size
    k = zz.shape[1]
    T = np.empty((P, k))
    for j in range(k):
        T[:, j] = np.bincount(design.psu, weights=zz[:, j], minlength=P)
    n_h = design.n_h
    f_h = design.f_h
    flags: list[Flag] = []
    lonely = np.flatnonzero(n_h == 1)
    exhaust = f_h < 1e-7
    lonely_live = lonely[~exhaust[lonely]]
    if lonely_live.size and lonely_psu == "fail":
        labels = [design.strata_labels[h] for h in lonely_live]
        problems = [Problem("lonely_psu", "Stratum has only one PSU, so its variance cannot be estimated.",
                            column="strata", value=_py(lab)) for lab in labels]
        remedies = "; ".join(f'lonely_psu="{k_}" (R: {v})' for k_, v in _LONELY_R.items())
        raise SingletonPSUError(
            f"{len(labels)} stratum(s) have a single PSU: {', '.join(map(str, labels))}. Choose a remedy for "
            f"this call: collapse the strata in the data, or {remedies}.", problems)
    means = np.zeros((H, k))
    sums = np.zeros((H, k))
    for j in range(k):
        sums[:, j] = np.bincount(design.psu_stratum, weights=T[:, j], minlength=H)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / n_h[:, None]
    dev = T - means[design.psu_stratum]
    scale_h = np.where(n_h > 1, f_h * n_h / np.maximum(n_h - 1, 1), f_h)
    scale_h = np.where(exhaust, 0.0, scale_h)
    ok_h = np.ones(H, dtype=bool)
    if lonely_live.size:
        if lonely_psu in ("certainty", "remove"):
            scale_h[lonely_live] = 0.0
        elif lonely_psu == "adjust":
            is_l = np.zeros(H, dtype=bool)
            is_l[lonely_live] = True
            dev = np.where(is_l[design.psu_stratum][:, None], T, dev)
        elif lonely_psu == "average":
            scale_h[lonely_live] = 0.0
            ok_h[lonely_live] = False
        flags.append(Flag("lonely_psu", f"{lonely_live.size} stratum(s) with a single PSU handled by "
                          f'lonely_psu="{lonely_psu}".', "caution",
                          {"strata": [_py(design.strata_labels[h]) for h in lonely_live]}))
    sc = scale_h[design.psu_stratum]
    V = (dev * sc[:, None]).T @ dev
    if not ok_h.all():
        V = V * H / ok_h.sum()
    if in_domain is not None:
        # strata where the domain holds a single PSU although the design has more (R warns only
        # with options(survey.adjust.domain.lonely = TRUE); the variance is computed as usual)
        dom_psu = np.zeros(P, dtype=bool)
        dom_psu[design.psu[in_domain]] = True
        per_h = np.bincount(design.psu_stratum, weights=dom_psu.astype(float), minlength=H)
        single = np.flatnonzero((per_h == 1) & (n_h > 1))
        if single.size:
            flags.append(Flag("domain_single_psu", f"The domain has a single PSU in {single.size} stratum(s); "
                              "their variance contribution rests on zero totals of the other PSUs.", "info",
                              {"strata": [_py(design.strata_labels[h]) for h in single]}))
    return V, flags


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ---------------------------------------------------------------------------------------------
# Calibration-aware residuals (R survey:::svyrecvar, postStrata branch)
# ---------------------------------------------------------------------------------------------
def _codes_of(frame: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    if not cols:
        return np.zeros(len(frame), dtype=np.intp)
    return pd.MultiIndex.from_frame(frame[list(cols)].astype("object")).factorize()[0].astype(np.intp) \
        if len(cols) > 1 else pd.factorize(frame[cols[0]])[0].astype(np.intp)


def _group_mean(x: np.ndarray, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    G = int(codes.max()) + 1 if codes.size else 0
    den = np.bincount(codes, weights=weights, minlength=G).astype(np.float64)
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        num = np.bincount(codes, weights=x[:, j] if weights is None else x[:, j] * weights, minlength=G)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        out[:, j] = m[codes]
    return out


def _scope_rows(frame: pd.DataFrame, cal: Calibration) -> dict:
    """Rows (bool mask) in scope of each variable that ``cal.scope`` limits to some cells."""
    out = {}
    if not cal.scope:
        return out
    by = list(cal.by)
    if not by:
        raise DataError("A Calibration with scope= needs by= (the cells the scope names).",
                        [Problem("calibration_scope", "scope without by.")])
    rows = pd.MultiIndex.from_frame(frame[by].astype("object"))
    for v, cells in cal.scope:
        out[v] = np.asarray(rows.isin(pd.MultiIndex.from_tuples([tuple(c) for c in cells], names=by))
                            if len(cells) else np.zeros(len(frame), dtype=bool))
    return out


def _calibration_residuals(z: np.ndarray, frame: pd.DataFrame, cal: Calibration, w: np.ndarray) -> np.ndarray:
    """Replace influence values by their residuals from the calibration model (R ``svyrecvar``).

    A variable that ``cal.scope`` limits to some cells enters the residual
    model of those cells only (each cell's model uses the cell's variables).
    """
    x = z.reshape(len(z), -1).astype(np.float64)
    by = list(cal.by)
    scope = _scope_rows(frame, cal)
    w0 = pd.to_numeric(frame[cal.base_weight], errors="coerce").to_numpy(dtype=np.float64)
    safe_w = np.where(w > 0, w, 1.0)
    if cal.method == "poststratify":
        codes = _codes_of(frame, by + list(cal.variables))
        psw = np.where((w == 0) & (w0 == 0), 1.0, w)
        psw_safe = np.where(psw > 0, psw, 1.0)
        m = _group_mean(x / psw_safe[:, None], codes, weights=w0)
        return x - m * psw[:, None]
    if cal.method == "rake":
        sweeps = []
        for v in cal.variables:
            if v in scope:
                rows = np.flatnonzero(scope[v])
                sweeps.append((rows, _codes_of(frame.iloc[rows], by + [v])))
            else:
                sweeps.append((None, _codes_of(frame, by + [v])))
        for _ in range(10):          # R: ten backfitting sweeps over the margins
            for rows, c in sweeps:
                if rows is None:
                    x = x - w[:, None] * _group_mean(x / safe_w[:, None], c)
                elif rows.size:      # rows of cells without this margin are left as they are
                    x[rows] = x[rows] - w[rows, None] * _group_mean(x[rows] / safe_w[rows, None], c)
        return x
    if cal.method in ("linear", "raking"):
        cells = _codes_of(frame, by)
        out = np.empty_like(x)
        g = np.where(w0 > 0, w / np.where(w0 > 0, w0, 1.0), 0.0)
        for c in range(int(cells.max()) + 1):
            idx = np.flatnonzero(cells == c)
            sub = frame.iloc[idx]
            vars_c = [v for v in cal.variables if v not in scope or scope[v][idx[0]]]
            mm = _model_matrix(sub, vars_c, cal.numeric)
            sw = np.sqrt(w0[idx])
            gw = g[idx] * sw
            A = mm * sw[:, None]
            b = x[idx] / np.where(gw > 0, gw, 1.0)[:, None]
            beta, *_ = np.linalg.lstsq(A, b, rcond=None)
            out[idx] = (b - A @ beta) * gw[:, None]
        return out
    raise DataError(f"Unknown calibration method {cal.method!r}.",
                    [Problem("calibration_method", "Unknown calibration method.", value=cal.method)])


def _model_matrix(frame: pd.DataFrame, variables: Sequence[str], numeric: Sequence[str]) -> np.ndarray:
    """Intercept + treatment-coded dummies (levels sorted, first dropped) + numeric columns (R model.matrix)."""
    cols = [np.ones(len(frame))]
    for v in variables:
        codes, levels = pd.factorize(frame[v], sort=True)
        for k in range(1, len(levels)):
            cols.append((codes == k).astype(np.float64))
    for v in numeric:
        cols.append(pd.to_numeric(frame[v], errors="coerce").to_numpy(dtype=np.float64))
    return np.column_stack(cols)


# ---------------------------------------------------------------------------------------------
# The public estimator
# ---------------------------------------------------------------------------------------------
def _domain_mask(frame: pd.DataFrame, domain: Any) -> np.ndarray:
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


def _replicate_matrix(frame: pd.DataFrame, replicate_weights: Any) -> np.ndarray:
    if isinstance(replicate_weights, str):
        cols = [c for c in frame.columns if str(c).startswith(replicate_weights)]
        if not cols:
            raise DataError(f"No column starts with replicate_weights={replicate_weights!r}.",
                            [Problem("replicate_columns", "No replicate-weight columns.", column=replicate_weights)])
        m = frame[cols].to_numpy(dtype=np.float64)
    elif isinstance(replicate_weights, (list, tuple)) and replicate_weights and all(
            isinstance(c, str) for c in replicate_weights):
        m = frame[list(replicate_weights)].to_numpy(dtype=np.float64)
    else:
        m = np.asarray(replicate_weights, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != len(frame):
        raise DataError(f"replicate_weights= must have one row per respondent ({len(frame)}) and one column per "
                        f"replicate; got shape {m.shape}.",
                        [Problem("replicate_shape", "Wrong shape of replicate weights.", column="replicate_weights")])
    bad = np.argwhere(~np.isfinite(m) | (m < 0))
    if bad.size:
        raise DataError(f"replicate_weights= has {len(bad)} negative or non-finite values.",
                        [Problem("replicate_nonnegative", "Replicate weight must be finite and >= 0.",
                                 row=int(r), column=f"replicate {int(c)}", value=float(m[r, c]))
                         for r, c in bad[:50]])
    return m


def _statistic_from_weights(W: np.ndarray, y: np.ndarray, x: np.ndarray | None, statistic: str) -> np.ndarray:
    """Estimates for each column of the (n, R) weight matrix ``W`` (rows outside the domain have y = 0, d = 0)."""
    ty = y @ W
    if statistic == "total":
        return ty
    if statistic == "ratio":
        return ty / (x @ W)
    return ty / W.sum(axis=0)


def survey_mean(frame: Any, y: str, *, weight: Any = None, strata: Any = None, cluster: Any = None,
                fpc: Any = None, se: str = "linearization", replicate_weights: Any = None,
                replicate_type: str | None = None, replicate_scale: float | None = None,
                replicate_rscales: Any = None, replicate_mse: bool = False, replicate_df: float | None = None,
                statistic: str = "mean", denominator: str | None = None, domain: Any = None,
                ci: float = 0.95, lonely_psu: str = "fail", calibration: Any = "auto",
                n_boot: int = 1000, seed: int | None = None, bootstrap_type: str = "subbootstrap"
                ) -> SurveyEstimate:
    """Design-based mean, proportion, total or ratio with its standard error, CI and design effect.

    Parameters
    ----------
    frame : pandas.DataFrame or SurveyData
        Respondent table.  For a SurveyData, ``weight``, ``strata`` and
        ``cluster`` left at None default to its ``weight``, ``stratum`` and
        ``cluster`` columns (when present).
    y : str
        Variable to estimate (numerator of a ratio).  Missing values are
        dropped as a domain (R ``na.rm = TRUE``): the design's PSU counts
        are kept.
    weight : str or array-like, optional
        Sampling (or calibrated) weights; 1 when absent.  Weights must be
        finite and >= 0 (negative weights only from a linear calibration,
        flagged); zero-weight rows are out of every domain.
    strata, cluster, fpc : str or array-like, optional
        Stratum labels, first-stage cluster (PSU) labels (nested in strata),
        and the first-stage finite population correction: the number of PSUs
        in the stratum's population (> 1) or the sampling fraction (<= 1).
    se : {"linearization", "bootstrap", "replicate"}
        Taylor linearization (first-stage, with-replacement "ultimate
        cluster" variance with fpc), a fresh Rao–Wu bootstrap
        (:mod:`cips_stats.replicates`; ``n_boot``, ``seed``), or the
        ``replicate_weights`` given.
    replicate_weights : array-like (n, R), list of columns or column prefix
        Analysis replicate weights (R ``svrepdesign(combined.weights = TRUE)``).
    replicate_type : {"bootstrap", "subbootstrap", "JK1", "JKn", "BRR", "other"}, optional
        Only to pick R ``svrepdesign``'s default ``scale`` when
        ``replicate_scale`` is not given: bootstrap/subbootstrap
        ``1/(R - 1)``, JK1 ``(R - 1)/R``, BRR ``1/R``; JKn needs
        ``replicate_rscales``.
    replicate_scale, replicate_rscales : float, array-like
        ``v = scale * sum_r rscales_r (theta_r - c)^2``.
    replicate_mse : bool
        Centre ``c`` at the full-sample estimate (True) or at the mean of the
        replicates (False, R's default).
    replicate_df : float, optional
        Degrees of freedom of the CI; default rank(replicate weights) - 1 (R ``degf``).
    statistic : {"mean", "proportion", "total", "ratio"}
        ``"proportion"`` is the mean of a 0/1 variable (checked).
    denominator : str
        Denominator variable of a ratio.
    domain : bool mask, boolean column name or dict {column: value(s)}, optional
        Sub-population (R ``subset(design, ...)``): rows outside keep their
        PSUs and strata in the variance.
    ci : float
        Confidence level; the interval is t with ``df`` degrees of freedom.
    lonely_psu : {"fail", "certainty", "remove", "adjust", "average"}
        What to do with strata holding a single PSU; "fail" (default) raises
        :class:`~cips_stats.errors.SingletonPSUError` listing them and the
        remedies.  Chosen per call, never globally.
    calibration : "auto", Calibration or None
        Account for calibrated weights in linearization SEs.  "auto" reads
        ``frame.attrs["cips_calibration"]`` (set by :mod:`cips_stats.weighting`)
        when its weight column is ``weight``.
    n_boot, seed, bootstrap_type : int, int, str
        Fresh bootstrap: replicates, seed (required) and type
        ("subbootstrap" = Rao–Wu, "bootstrap" = Canty–Davison).

    Returns
    -------
    SurveyEstimate

    Notes
    -----
    With influence values ``z_i`` (mean: ``w_i (y_i - ybar)/sum w``; total:
    ``w_i y_i``; ratio: ``w_i (y_i - R x_i)/X``; zero outside the domain),
    the linearization variance is
    ``sum_h (1 - f_h) n_h/(n_h - 1) sum_j (z_hj - zbar_h)^2`` over PSU totals
    ``z_hj`` (R ``svyrecvar``).  After calibration ``z`` is first replaced by
    its residual from the calibration model.  Replicate variances are
    ``scale * sum_r rscales_r (theta_r - c)^2`` (R ``svrVar``).  Checked
    against R survey 4.1.1 on the api data (``validation/r/survey.R``):
    linearization and calibration to 1e-8 relative, replicate variances to
    1e-10 given R's replicate weights.

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
    if hasattr(frame, "frame") and hasattr(frame, "with_frame"):
        frame = frame.frame
        # a SurveyData follows the data model: its weight, stratum and cluster columns are the design
        if weight is None:
            weight = "weight"
        if strata is None and "stratum" in frame.columns:
            strata = "stratum"
        if cluster is None and "cluster" in frame.columns:
            cluster = "cluster"
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"frame must be a DataFrame or SurveyData; got {type(frame).__name__}.",
                        [Problem("frame_type", "Not a DataFrame.")])
    if statistic not in _STATISTICS:
        raise DataError(f"statistic= must be one of {_STATISTICS}; got {statistic!r}.",
                        [Problem("statistic", "Unknown statistic.", value=statistic)])
    if se not in _SE:
        raise DataError(f"se= must be one of {_SE}; got {se!r}.", [Problem("se", "Unknown SE method.", value=se)])
    if lonely_psu not in _LONELY:
        raise DataError(f"lonely_psu= must be one of {_LONELY}; got {lonely_psu!r}.",
                        [Problem("lonely_psu", "Unknown lonely-PSU remedy.", value=lonely_psu)])
    if statistic == "ratio" and denominator is None:
        raise DataError("statistic='ratio' needs denominator=.", [Problem("denominator", "Missing denominator.")])
    cal = None
    if se == "linearization" and calibration is not None:
        if isinstance(calibration, Calibration):
            cal = calibration
        elif calibration == "auto":
            c = frame.attrs.get("cips_calibration")
            if isinstance(c, Calibration) and isinstance(weight, str) and c.weight == weight \
                    and c.base_weight in frame.columns:
                cal = c
        else:
            raise DataError("calibration= must be 'auto', None or a Calibration.",
                            [Problem("calibration", "Bad calibration argument.")])
    design = _prepare_design(frame, weight, strata, cluster, fpc,
                             allow_negative=cal is not None and cal.method == "linear")
    w = design.w
    yv = pd.to_numeric(_column(frame, y, "y"), errors="coerce").to_numpy(dtype=np.float64)
    dom = _domain_mask(frame, domain)
    ok = dom & ~np.isnan(yv)
    xv = None
    if statistic == "ratio":
        xv = pd.to_numeric(_column(frame, denominator, "denominator"), errors="coerce").to_numpy(dtype=np.float64)
        ok &= ~np.isnan(xv)
    flags: list[Flag] = []
    n_missing = int((dom & ~ok).sum())
    if n_missing:
        flags.append(Flag("missing_dropped", f"{n_missing} row(s) of the domain have a missing value and were "
                          "dropped (as a domain: the design's PSUs are kept).", "info", {"n": n_missing}))
    if statistic == "proportion":
        vals = yv[ok]
        badv = ~np.isin(vals, (0.0, 1.0))
        if badv.any():
            rows = np.flatnonzero(ok)[badv]
            raise DataError(f"statistic='proportion' needs a 0/1 variable; {y!r} has other values.",
                            [Problem("proportion_binary", "Value is not 0 or 1.", row=int(r), column=y,
                                     value=float(yv[r])) for r in rows[:50]])
    d = ok & (w != 0)
    n_used = int(d.sum())
    if n_used == 0:
        raise DataError(f"The domain is empty: no row with positive weight and a non-missing {y!r}.",
                        [Problem("empty_domain", "Empty domain (or all weights zero).", column=y)])
    wd = np.where(d, w, 0.0)
    y0 = np.where(d, yv, 0.0)
    W = wd.sum()
    if (w < 0).any():
        flags.append(Flag("negative_weights", f"{int((w < 0).sum())} calibrated weight(s) are negative "
                          "(linear calibration); estimates remain unbiased but can fall outside the "
                          "range of the data.", "caution", {"n": int((w < 0).sum())}))
    if statistic in ("mean", "proportion") and not W > 0:
        raise DataError("The weights of the domain sum to zero or less; no mean can be formed.",
                        [Problem("weight_sum", "Non-positive weight total in the domain.", value=float(W))])
    if statistic in ("mean", "proportion"):
        est = float(wd @ y0 / W)
        z = wd * (y0 - est) / W
    elif statistic == "total":
        est = float(wd @ y0)
        z = wd * y0
    else:
        x0 = np.where(d, xv, 0.0)
        X = float(wd @ x0)
        if X == 0:
            raise DataError(f"The weighted total of denominator {denominator!r} is zero in the domain.",
                            [Problem("ratio_zero_denominator", "Zero denominator total.", column=denominator)])
        est = float(wd @ y0 / X)
        z = wd * (y0 - est * x0) / X
    # design df and counts on the domain (R degf: PSUs - strata with non-zero weight in the domain)
    in_dom = dom & (w != 0)
    n_psu = int(np.unique(design.psu[in_dom]).size)
    n_strata = int(np.unique(design.stratum[in_dom]).size)
    df_design = float(n_psu - n_strata)

    if se == "linearization":
        zz = _calibration_residuals(z, frame, cal, w) if cal is not None else z
        V, vflags = _linearization_variance(zz, design, lonely_psu, in_domain=d)
        flags.extend(vflags)
        var = float(V[0, 0])
        df = df_design
        if cal is not None:
            flags.append(Flag("calibration_se", f"SE accounts for calibration ({cal.method} on "
                              f"{', '.join(cal.variables + cal.numeric)}).", "info", {"method": cal.method}))
    else:
        if se == "replicate":
            if replicate_weights is None:
                raise DataError("se='replicate' needs replicate_weights=.",
                                [Problem("replicate_weights", "No replicate weights given.")])
            RW = _replicate_matrix(frame, replicate_weights)
            R = RW.shape[1]
            scale = replicate_scale
            rscales = np.ones(R) if replicate_rscales is None else np.broadcast_to(
                np.asarray(replicate_rscales, dtype=np.float64), (R,)).copy()
            if scale is None:
                defaults = {"bootstrap": 1.0 / (R - 1), "subbootstrap": 1.0 / (R - 1), "JK1": (R - 1) / R,
                            "BRR": 1.0 / R}
                if replicate_type in defaults:
                    scale = defaults[replicate_type]
                elif replicate_type in ("JKn", "other") and replicate_rscales is not None:
                    scale = 1.0
                else:
                    raise DataError("Replicate weights need replicate_scale= (and replicate_rscales= for JKn), or "
                                    "replicate_type= to use R svrepdesign's default scale.",
                                    [Problem("replicate_scale", "Scale of the replicate variance unknown.")])
            Wd = RW * d[:, None]
            x0 = np.where(d, xv, 0.0) if xv is not None else None
            thetas = _statistic_from_weights(Wd, y0, x0, statistic)
            df = float(replicate_df) if replicate_df is not None else float(np.linalg.matrix_rank(RW) - 1)
            method_scale = float(scale)
        else:
            from . import replicates as _rep
            if seed is None:
                raise DataError("se='bootstrap' needs seed= so that the result can be reproduced.",
                                [Problem("seed", "No seed given.")])
            if lonely_psu not in ("fail", "certainty"):
                raise DataError(f'se="bootstrap" supports lonely_psu "fail" or "certainty"; got {lonely_psu!r}.',
                                [Problem("lonely_psu", "Unsupported with the bootstrap.", value=lonely_psu)])
            if design.has_fpc:
                flags.append(Flag("bootstrap_no_fpc", "The bootstrap ignores the finite population correction "
                                  "(conservative).", "info"))
            if cal is not None or frame.attrs.get("cips_calibration") is not None:
                flags.append(Flag("bootstrap_calibration", "Replicates reuse the calibrated weights without "
                                  "re-calibrating each replicate; the SE ignores the calibration.", "caution"))
            x0 = np.where(d, xv, 0.0) if xv is not None else None
            theta_list = []
            st = design.stratum
            for chunk in _rep.rao_wu_weights(w, strata=st, cluster=design.psu, n_boot=int(n_boot), seed=seed,
                                             chunk_size=max(1, min(int(n_boot), 2_000_000 // max(1, len(w)))),
                                             type=bootstrap_type, lonely_psu=lonely_psu):
                theta_list.append(_statistic_from_weights((chunk * d[None, :]).T, y0, x0, statistic))
            thetas = np.concatenate(theta_list)
            R = thetas.size
            rscales = np.ones(R)
            method_scale = _rep.rao_wu_scale(R, type=bootstrap_type, n_h=design.n_h[design.n_h > 0])
            df = df_design
        if replicate_mse:
            center = est
        else:
            center = float(np.mean(thetas[rscales > 0]))
        bad = ~np.isfinite(thetas)
        if bad.any():
            flags.append(Flag("replicate_nan", f"{int(bad.sum())} replicate(s) gave no estimate (empty domain in "
                              "the replicate) and were discarded, as R does.", "warning", {"n": int(bad.sum())}))
            keep = ~bad
            thetas, rscales = thetas[keep], rscales[keep]
            center = est if replicate_mse else float(np.mean(thetas[rscales > 0]))
        var = float(method_scale * np.sum(rscales * (thetas - center) ** 2))
    # design effects (R: svyvar of the variable in the domain, n = rows with non-zero weight)
    deff, deff_r = _design_effects(statistic, var, wd, y0, np.where(d, xv, 0.0) if xv is not None else None,
                                   est, d, n_used)
    if n_used < 2 or df <= 0:
        flags.append(Flag("no_df", f"Design degrees of freedom are {df:g}: no confidence interval.", "warning",
                          {"df": df}))
    sev = math.sqrt(var) if var >= 0 else math.nan
    ci_t = _t_interval(est, sev, ci, df)
    prov = Provenance.build("survey_mean", data=frame, seed=seed if se == "bootstrap" else None, options={
        "statistic": statistic, "y": y, "denominator": denominator, "weight": _name(weight),
        "strata": _name(strata), "cluster": _name(cluster), "fpc": _name(fpc), "se": se,
        "lonely_psu": lonely_psu, "ci": ci, "replicate_mse": replicate_mse, "n_boot": n_boot if se == "bootstrap"
        else None, "bootstrap_type": bootstrap_type if se == "bootstrap" else None,
        "calibration": cal.method if cal is not None else None})
    return SurveyEstimate(statistic=statistic, y=y, denominator=denominator, estimate=est, se=sev, var=var,
                          ci=ci_t, ci_level=ci, df=df, deff=deff, deff_replace=deff_r, n=n_used, n_psu=n_psu,
                          n_strata=n_strata, sum_weights=float(W), se_method=se, provenance=prov,
                          flags=tuple(flags))


def _name(v: Any) -> Any:
    return v if (v is None or isinstance(v, str)) else "<array>"


def _design_effects(statistic: str, var: float, wd: np.ndarray, y0: np.ndarray, x0: np.ndarray | None,
                    est: float, d: np.ndarray, n: int) -> tuple[float, float]:
    if n < 2:
        return math.nan, math.nan
    W = wd.sum()
    if statistic == "ratio":
        X = float(wd @ x0)
        u = np.where(d, (y0 - est * x0) / X, 0.0)
    else:
        u = y0
    ubar = float(wd @ u / W)
    vy = float(wd @ (u - ubar) ** 2 / W) * n / (n - 1)
    if statistic in ("mean", "proportion"):
        v_rep = vy / n
        v_wor = vy * (W - n) / (W * n) if W >= n else math.nan
    else:
        v_rep = vy * W * W / n
        v_wor = vy * W * W * (W - n) / (W * n)
    deff = var / v_wor if (np.isfinite(v_wor) and v_wor > 0) else math.nan
    deff_r = var / v_rep if v_rep > 0 else math.nan
    return deff, deff_r
from ._indicators import indicators, perception_gap  # noqa: E402,F401
