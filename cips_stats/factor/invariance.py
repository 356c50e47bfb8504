"""Measurement invariance across groups: the configural → metric → scalar → strict ladder.

:func:`invariance` fits the ladder of multi-group CFA models with
:func:`cips_stats.factor.cfa` (equal loadings; then equal intercepts, or thresholds
for ordinal items; then equal residual variances), tests each step with the
chi-square difference test appropriate to the estimator (plain for ML,
Satorra-Bentler 2001 scaled for MLR), computes the changes in CFI, RMSEA and SRMR
and judges each step by Chen's (2007) criteria.  When a step fails and
``partial=True``, it frees, one at a time, the equality constraint with the largest
score (Lagrange multiplier) test — as ``lavaan::lavTestScore`` — until the step is
acceptable (partial invariance; Byrne, Shavelson & Muthén 1989).  The result says
which comparisons the supported level licenses (:meth:`InvarianceResult.supports`).

See ``methodology/invariance.md``; reference values come from
``validation/r/invariance.R`` (lavaan 0.6-14).

Examples
--------
>>> import numpy as np, pandas as pd
>>> import cips_stats as cs
>>> rng = np.random.default_rng(1)
>>> n = 300
>>> f = rng.normal(size=(2 * n, 1))
>>> y = f @ [[1.0, 0.8, 0.7, 0.6]] + rng.normal(scale=0.6, size=(2 * n, 4))
>>> frame = pd.DataFrame(y, columns=["a", "b", "c", "d"]).assign(g=["x"] * n + ["y"] * n)
>>> from cips_stats.factor.invariance import invariance
>>> res = invariance(frame, group="g", model="f =~ a + b + c + d")
>>> list(res.table.index)
['configural', 'metric', 'scalar', 'strict']
>>> res.level_supported, res.supports("means")
('strict', True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import thresholds
from ..errors import DataError, Flag, ModelError, NonInvarianceWarning, PoorFitWarning, Problem, emit
from ..results import Provenance, Result, Summary
from . import _survey

__all__ = ["InvarianceResult", "invariance", "chen2007_thresholds", "difference_test", "LEVELS"]

LEVELS = ("configural", "metric", "scalar", "strict")
CRITERIA = ("chen2007", "chen2007_literal", "chen2007_strict", "cheung_rensvold2002", "chi2")
_LEVEL_RANK = {"none": 0, "configural": 1, "metric": 2, "scalar": 3, "strict": 4}
#: Equality types added at each level (continuous items; ordinal: thresholds for intercepts).
_EQUAL = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "intercepts"),
          "strict": ("loadings", "intercepts", "residuals")}
_TYPE_OF_LEVEL = {"metric": "loadings", "scalar": "intercepts", "strict": "residuals"}
#: Comparisons and the lowest invariance level that licenses them.
_COMPARISONS = {
    "loadings": "metric", "correlations": "metric", "regressions": "metric", "variances": "metric",
    "means": "scalar", "observed_means": "scalar", "observed_variances": "strict",
}
#: Minimum group size below which a flag is raised (see methodology/invariance.md).
MIN_GROUP_N = 100
TABLE_COLUMNS = ["chi2", "df", "chi2_scaled", "cfi", "tli", "rmsea", "srmr", "compared_to",
                 "delta_chi2", "delta_df", "p_value", "delta_cfi", "delta_rmsea", "delta_srmr",
                 "n_freed", "verdict"]


# --------------------------------------------------------------------------- criteria
def chen2007_thresholds(step: str, n_total: int) -> dict[str, float]:
    """Chen's (2007) cut-offs for one step of the ladder.

    Parameters
    ----------
    step : {"metric", "scalar", "strict"}
        The more constrained model of the comparison (the step of the ladder).
    n_total : int
        Total sample size over groups.

    Returns
    -------
    dict
        ``cfi`` (a drop of at least this much in CFI), ``rmsea`` and ``srmr`` (a rise of
        at least this much) that, CFI together with either of the other two, indicate
        non-invariance.

    Notes
    -----
    Chen (2007, p. 501): with total N > 300, a change of ≥ −.010 in CFI supplemented by
    a change of ≥ .015 in RMSEA or ≥ .030 in SRMR indicates non-invariance of loadings,
    and −.010 / .015 / .010 of intercepts or residuals; with N ≤ 300 the cut-offs are
    −.005 / .010 / .025 (loadings) and −.005 / .010 / .005 (intercepts, residuals).

    Examples
    --------
    >>> chen2007_thresholds("metric", 500)
    {'cfi': 0.01, 'rmsea': 0.015, 'srmr': 0.03}
    >>> chen2007_thresholds("scalar", 200)
    {'cfi': 0.005, 'rmsea': 0.01, 'srmr': 0.005}
    """
    if step not in ("metric", "scalar", "strict"):
        raise DataError(f"step= must be 'metric', 'scalar' or 'strict', got {step!r}.")
    return thresholds.chen2007(step, n_total)


def _verdict(level: str, d_cfi: float, d_rmsea: float, d_srmr: float, p_value: float, criteria: str,
             n_total: int, significance: float = thresholds.SIGNIFICANCE) -> bool:
    """True when the step ``level`` is supported."""
    if criteria == "chi2":
        return bool(np.isfinite(p_value) and p_value >= significance)
    if criteria == "cheung_rensvold2002":
        return bool(d_cfi > -thresholds.CHEUNG_RENSVOLD_DCFI)
    t = chen2007_thresholds(level, n_total)
    eps = 1e-12
    cfi_ok = d_cfi >= -t["cfi"] - eps
    rmsea_ok = d_rmsea <= t["rmsea"] + eps
    srmr_ok = d_srmr <= t["srmr"] + eps
    if criteria == "chen2007":
        return bool(cfi_ok and (rmsea_ok or srmr_ok))
    if criteria == "chen2007_literal":
        return bool(cfi_ok or (rmsea_ok and srmr_ok))
    if criteria == "chen2007_strict":
        return bool(cfi_ok and rmsea_ok and srmr_ok)
    raise DataError(f"criteria= must be one of {', '.join(CRITERIA)}; got {criteria!r}.")


# --------------------------------------------------------------------------- difference tests
def difference_test(restricted: Mapping[str, float], free: Mapping[str, float], *,
                    estimator: str = "ML") -> dict[str, Any]:
    """Chi-square difference test of two nested models from their fit measures.

    Parameters
    ----------
    restricted, free : mapping
        ``.fit`` dictionaries of the more and the less constrained model (``chi2``,
        ``df`` and, for MLR, ``scaling_factor``).
    estimator : {"ML", "MLR", "WLSMV", ...}
        ``"ML"``: plain difference.  ``"MLR"``: Satorra & Bentler (2001) scaled
        difference.  Others: the plain difference of the unscaled statistics is returned
        with ``p_value`` NaN and ``method="unavailable"`` — :func:`invariance` then uses
        Satorra's (2000) test from the fitted WLSMV models (see Notes).

    Returns
    -------
    dict
        ``delta_chi2``, ``delta_df``, ``p_value``, ``method`` and, for MLR, ``cd``
        (the scaling correction of the difference).

    Notes
    -----
    Satorra-Bentler 2001: with unscaled statistics T0 (restricted, df d0) and T1 (df d1)
    and scaling factors c0, c1, :math:`c_d = (d_0 c_0 - d_1 c_1)/(d_0 - d_1)` and
    :math:`T_d = (T_0 - T_1)/c_d` on :math:`d_0 - d_1` df, as ``lavaan::lavTestLRT(...,
    method="satorra.bentler.2001")``.  A negative :math:`c_d` makes the test undefined
    (p NaN).  For WLSMV, lavaan's Satorra (2000) scaled-shifted difference needs the
    weight and asymptotic covariance matrices of the fitted models, not only their fit
    measures; :func:`invariance` computes it from the fitted models (via
    :func:`cips_stats.factor.wls.difference_test`, as ``lavTestLRT(method="satorra.2000")``).

    Examples
    --------
    >>> difference_test({"chi2": 124.04, "df": 54}, {"chi2": 115.85, "df": 48})["delta_df"]
    6
    """
    t0, t1 = float(restricted["chi2"]), float(free["chi2"])
    d0, d1 = int(round(restricted["df"])), int(round(free["df"]))
    dd = d0 - d1
    out: dict[str, Any] = {"delta_chi2": t0 - t1, "delta_df": dd, "p_value": float("nan"), "method": "standard"}
    if dd <= 0:
        out["method"] = "not_nested"
        return out
    est = estimator.upper()
    if est == "ML":
        out["p_value"] = float(stats.chi2.sf(max(t0 - t1, 0.0), dd))
    elif est == "MLR":
        c0 = float(restricted.get("scaling_factor", float("nan")))
        c1 = float(free.get("scaling_factor", float("nan")))
        if d1 == 0:
            c1 = 1.0 if not np.isfinite(c1) else c1
        cd = (d0 * c0 - d1 * c1) / dd
        out["method"] = "satorra.bentler.2001"
        out["cd"] = cd
        if np.isfinite(cd) and cd > 0:
            out["delta_chi2"] = (t0 - t1) / cd
            out["p_value"] = float(stats.chi2.sf(max(out["delta_chi2"], 0.0), dd))
        else:
            out["delta_chi2"] = float("nan")
    else:
        out["method"] = "unavailable"
    return out


def _satorra2000(restricted_fit, free_fit) -> dict[str, Any] | None:
    """Satorra's (2000) scaled-shifted difference test of two nested WLSMV fits.

    Delegates to :func:`cips_stats.factor.wls.difference_test` (as
    ``lavaan::lavTestLRT(method="satorra.2000")``); returns None when the fits do not
    carry the WLS internals or the test is not defined for them.
    """
    from .wls import difference_test as _wls_difference

    try:
        out = _wls_difference(restricted_fit, free_fit)
    except ModelError:
        return None
    keys = ("delta_chi2", "delta_df", "p_value", "method", "a", "b")
    return {k: out[k] for k in keys if k in out}


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class InvarianceResult(Result):
    """The invariance ladder.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per fitted level (index ``configural``, ``metric``, ``scalar``,
        ``strict``, and ``partial_<level>`` rows), columns ``chi2, df, chi2_scaled, cfi,
        tli, rmsea, srmr, compared_to, delta_chi2, delta_df, p_value, delta_cfi,
        delta_rmsea, delta_srmr, n_freed, verdict``.  ``cfi``/``tli``/``rmsea`` are the
        versions the verdict used (``fit_measures``).
    freed : tuple of str
        Constraints released for partial invariance, in the order released
        (``"f=~x2"``, ``"x3~1"``, ``"x3|t"`` for all thresholds of x3, ``"x3~~x3"``).
    level_supported : str
        ``"none"``, ``"configural"``, ``"metric"``, ``"scalar"``, ``"strict"``, or
        ``"partial_<level>"``.
    level_full : str
        The highest level supported with no constraint released (full invariance).
    score_tests : pandas.DataFrame
        Every score test (or refit) used to pick a constraint: step, parameter,
        statistic, df, p_value, method.
    group, group_labels, n_per_group, estimator, criteria, fit_measures, model
        What was compared and how (``n_per_group``: respondents used by the fitted models).
    fits : dict
        The fitted :class:`~cips_stats.factor.results.CFAResult` per table row.
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    freed: tuple = ()
    level_supported: str = "none"
    level_full: str = "none"
    score_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    group: str = ""
    group_labels: tuple = ()
    n_per_group: tuple = ()
    estimator: str = "ML"
    criteria: str = "chen2007"
    fit_measures: str = "standard"
    model: str = ""
    fits: dict = field(default_factory=dict, repr=False, compare=False)

    def supports(self, comparison: str, *, allow_partial: bool = True) -> bool:
        """Whether the supported invariance level licenses a comparison across groups.

        Parameters
        ----------
        comparison : {"loadings", "correlations", "regressions", "variances", "means",
                      "observed_means", "observed_variances"}
            ``"loadings"``/``"correlations"``/``"regressions"``/``"variances"`` of latent
            variables need metric invariance; latent ``"means"`` need scalar invariance;
            ``"observed_means"`` (sum or mean scores) need full scalar invariance;
            ``"observed_variances"`` need full strict invariance.
        allow_partial : bool
            Accept partial invariance for latent comparisons (Byrne et al. 1989).  Never
            accepted for observed-score comparisons, whose items all carry the bias.

        Returns
        -------
        bool
        """
        if comparison not in _COMPARISONS:
            raise DataError(f"comparison= must be one of {', '.join(_COMPARISONS)}; got {comparison!r}.")
        need = _LEVEL_RANK[_COMPARISONS[comparison]]
        if comparison.startswith("observed") or not allow_partial:
            return _LEVEL_RANK[self.level_full] >= need
        return _LEVEL_RANK[self.level_supported.replace("partial_", "")] >= need

    def to_frame(self) -> pd.DataFrame:
        """The ladder table (one row per level)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary without the fitted models."""
        out = super().to_dict()
        out.pop("fits", None)
        return out

    def summary(self) -> Summary:
        """Renderable summary: the ladder, the freed constraints and the verdict."""
        header = {"group": self.group, "groups": ", ".join(map(str, self.group_labels)),
                  "n per group": ", ".join(map(str, self.n_per_group)), "estimator": self.estimator,
                  "criteria": self.criteria, "fit measures": self.fit_measures,
                  "level supported": self.level_supported,
                  "freed": ", ".join(self.freed) if self.freed else "none",
                  "latent means comparable": self.supports("means")}
        return Summary("Measurement invariance", header=header, tables={"ladder": self.table},
                       notes=[f.message for f in self.flags])


# --------------------------------------------------------------------------- helpers
def _fit_value(fit: Mapping[str, Any], key: str) -> float:
    v = fit.get(key, float("nan"))
    try:
        v = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _indices(fit: Mapping[str, Any], kind: str) -> dict[str, float]:
    """cfi, tli, rmsea of the requested kind, falling back to the standard ones."""
    out = {}
    for k in ("cfi", "tli", "rmsea"):
        v = float("nan")
        if kind == "robust":
            v = _fit_value(fit, f"{k}_robust")
            if not np.isfinite(v):
                v = _fit_value(fit, f"{k}_scaled")
        elif kind == "scaled":
            v = _fit_value(fit, f"{k}_scaled")
        if not np.isfinite(v):
            v = _fit_value(fit, k)
        out[k] = v
    out["srmr"] = _fit_value(fit, "srmr")
    return out


def _param_name(lhs: str, op: str, rhs: str) -> str:
    if op == "~1":
        return f"{lhs}~1"
    if op == "|":
        return f"{lhs}|{rhs}"
    return f"{lhs}{op}{rhs}"


def _restrict_syntax(model: str, keep: set[str]) -> tuple[str, list[str]]:
    """Drop indicators not in ``keep`` from ``=~`` lines; drop factors left with < 2 items."""
    lines, dropped = [], []
    other, dropped_lv = [], []
    for line in model.splitlines():
        if "=~" not in line:
            if line.strip():
                other.append(line)
            continue
        lhs, rhs = line.split("=~", 1)
        items = [t.strip() for t in rhs.split("+") if t.strip()]
        kept = [t for t in items if re.sub(r"^.*\*", "", t) in keep]
        dropped += [re.sub(r"^.*\*", "", t) for t in items if t not in kept]
        if len(kept) >= 2:
            lines.append(f"{lhs.strip()} =~ " + " + ".join(kept))
        else:
            dropped += [re.sub(r"^.*\*", "", t) for t in kept]
            dropped_lv.append(lhs.strip())
    gone = set(dropped) | set(dropped_lv)
    lines += [ln for ln in other if not (set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", ln)) & gone)]
    return "\n".join(lines), dropped


def _model_items(model: str) -> list[str]:
    """Observed variables of a lavaan-style model, in order of appearance."""
    from .syntax import parse_syntax

    statements, _ = parse_syntax(model)
    lv = {s.lhs for s in statements if s.op == "=~"}
    items: list[str] = []
    for s in statements:
        for nm in ((s.rhs,) if s.op == "=~" else (s.lhs, s.rhs)):
            if nm and nm not in lv and nm not in items and nm != "1" and not (s.op == "|" and nm == s.rhs):
                items.append(nm)
    return items


# --------------------------------------------------------------------------- score tests
def _expansion(keys: Any, free_e: np.ndarray, free_c: np.ndarray, npar: int
               ) -> tuple[np.ndarray, dict[str, list[int]]]:
    """``K`` (expanded free index -> constrained free index) and the expanded rows of each equated parameter.

    ``keys`` are the (lhs, op, rhs, group) rows of the parameter table, ``free_e`` and
    ``free_c`` their free indices (1-based, 0 = fixed) in the model without and with the
    equality constraints; ``rows_of`` lists, per parameter name (thresholds as
    ``item|t``), its rows beyond the first group.
    """
    K = np.zeros((npar, int(free_c.max())))
    rows_of: dict[str, list[int]] = {}
    for (lhs, op, rhs, g), f_e, f_c in zip(keys, free_e, free_c):
        if f_e > 0 and f_c > 0:
            K[f_e - 1, f_c - 1] = 1.0
            name = f"{lhs}|t" if op == "|" else _param_name(lhs, op, rhs)
            if g > 1:
                rows_of.setdefault(name, []).append(f_e - 1)
    return K, rows_of


class _ScoreTester:
    """Score (Lagrange multiplier) tests for releasing group-equality constraints (ML).

    For a parameter constrained equal across G groups, the test of releasing it in all
    groups has G − 1 df:  ``T = N g' I^{-1} g`` with g the gradient of −loglik/N and I
    the expected information per observation, both in the parameterisation where the
    parameter has its own value in groups 2..G and evaluated at the constrained
    estimates (lavaan's ``lavTestScore(univariate=TRUE)`` for two groups).
    """

    def __init__(self, fit, frame: pd.DataFrame, *, model: str, group: str, group_equal, group_partial,
                 candidates: list[str], fiml: bool):
        from .ml import MLProblem
        from .model import CFAModel
        from .syntax import build_partable

        labels = [str(x) for x in fit.group_labels]
        G = len(labels)
        self.G = G
        pt_e = build_partable(model, n_groups=G, meanstructure=True, group_equal=tuple(group_equal),
                              group_partial=tuple(group_partial) + tuple(candidates))
        pt_c = build_partable(model, n_groups=G, meanstructure=True, group_equal=tuple(group_equal),
                              group_partial=tuple(group_partial))
        m_e = CFAModel(pt_e)
        par = fit.parameters
        key = lambda df: list(zip(df["lhs"], df["op"], df["rhs"].astype(str), df["group"].astype(int)))
        est = dict(zip(key(par), par["est"].to_numpy(dtype=float)))
        ke, kc = key(pt_e), key(pt_c)
        if len(pt_e) != len(pt_c) or ke != kc or any(k not in est for k in ke):
            raise ModelError("The fitted parameter table does not match the rebuilt one.")
        fe = pt_e["free"].to_numpy(int)
        fc = pt_c["free"].to_numpy(int)
        theta_e = np.zeros(m_e.npar)
        for k, f in zip(ke, fe):
            if f > 0:
                theta_e[f - 1] = est[k]
        # data per group, in the fit's group order and the model's variable order
        gcol = frame[group].astype(str)
        data = []
        for lab in labels:
            y = frame.loc[gcol == lab, m_e.ov_names].to_numpy(dtype=float)
            y = y[~np.isnan(y).all(axis=1)] if fiml else y[~np.isnan(y).any(axis=1)]
            data.append(y)
        if tuple(len(y) for y in data) != tuple(int(n) for n in fit.n_obs):
            raise ModelError("Group sizes differ from the fitted model's.")
        prob = MLProblem(m_e, data, fiml=fiml)
        self.n_total = prob.n_total
        self.grad = prob.objective_gradient(theta_e)[1]
        self.info = prob.expected_information(theta_e)
        self.K, self.rows_of = _expansion(ke, fe, fc, m_e.npar)

    def test(self, name: str) -> tuple[float, int]:
        cols = sorted(set(self.rows_of.get(name, [])))
        if not cols:
            return float("nan"), 0
        K = self.K.copy()
        extra = np.zeros((K.shape[0], len(cols)))
        for j, e in enumerate(cols):
            K[e, :] = 0.0
            extra[e, j] = 1.0
        K1 = np.hstack([K, extra])
        g1 = K1.T @ self.grad
        I1 = K1.T @ self.info @ K1
        try:
            stat = float(self.n_total * g1 @ np.linalg.solve(I1, g1))
        except np.linalg.LinAlgError:
            stat = float(self.n_total * g1 @ np.linalg.pinv(I1) @ g1)
        return stat, len(cols)


class _WLSScoreTester(_ScoreTester):
    """Score tests for releasing constraints of a (D)WLS fit, without refitting.

    At the constrained estimates, in the parameterisation where the candidate has its own
    value in groups 2..G: ``g = sum_g f_g Delta_g' W_g (s_g - sigma_g)`` and
    ``I = sum_g f_g Delta_g' W_g Delta_g`` (the objective's weights); ``T = N g' I^-1 g``
    is the Gauss-Newton (one-step) prediction of the drop in the unscaled chi-square when
    the constraint is released, the quantity the refit search ranked candidates by.  It
    is not chi-square distributed under WLSMV (no robust correction): used to rank.
    """

    def __init__(self, fit, *, model: str, group_equal, group_partial, candidates: list[str],
                 thresholds: Mapping[str, int]):
        from .model import CFAModel
        from .syntax import build_partable
        from .wls import _delta_and_implied, _threshold_order

        st = fit._state
        m_c = st.model
        G = m_c.n_groups
        self.G = G
        ordered = {v: thresholds[v] + 1 for v in m_c.ordered}
        std_lv = bool(fit.options.get("std_lv", False))
        common = dict(ordered=ordered, n_groups=G, std_lv=std_lv, meanstructure=True,
                      group_equal=tuple(group_equal))
        pt_e = build_partable(model, group_partial=tuple(group_partial) + tuple(candidates), **common)
        pt_c = m_c.partable
        m_e = CFAModel(pt_e)
        key = lambda df: list(zip(df["lhs"], df["op"], df["rhs"].astype(str), df["group"].astype(int)))
        ke, kc = key(pt_e), key(pt_c)
        if ke != kc or m_e.ov_names != m_c.ov_names:
            raise ModelError("The fitted parameter table does not match the rebuilt one.")
        est_c = m_c.est(st.theta)
        fe = pt_e["free"].to_numpy(int)
        fc = pt_c["free"].to_numpy(int)
        theta_e = np.zeros(m_e.npar)
        theta_e[fe[fe > 0] - 1] = est_c[fe > 0]
        sig, dlt, _ = _delta_and_implied(m_e, theta_e, _threshold_order(m_e, st.sample), st.od)
        W = st.objective_weights
        fg = st.group_fraction
        wmul = (lambda w, x: w[:, None] * x) if W[0].ndim == 1 else (lambda w, x: w @ x)
        self.n_total = float(sum(st.sample.n))
        self.grad = sum(f * wmul(w, D).T @ (s - sg) for f, w, D, s, sg in zip(fg, W, dlt, st.sample.s, sig))
        self.info = sum(f * D.T @ wmul(w, D) for f, w, D in zip(fg, W, dlt))
        self.K, self.rows_of = _expansion(ke, fe, fc, m_e.npar)


# --------------------------------------------------------------------------- main
def _candidates(fit, level_type: str, ordered: list[str], freed: Sequence[str],
                lv_names: list[str], items_of: dict[str, list[str]]) -> list[str]:
    """Constraints of one type that may still be released (at least 2 equal per factor kept)."""
    par = fit.parameters
    g1 = par[par["group"].astype(int) == 1]
    out = []
    if level_type == "loadings":
        rows = g1[g1["op"] == "=~"]
        for lhs, rhs, free in zip(rows["lhs"], rows["rhs"], rows["free"]):
            if int(free) > 0:
                out.append(f"{lhs}=~{rhs}")
    elif level_type == "intercepts":
        if ordered:
            for it in dict.fromkeys(g1.loc[g1["op"] == "|", "lhs"]):
                out.append(f"{it}|t")
        rows = g1[(g1["op"] == "~1") & (~g1["lhs"].isin(lv_names))]
        out += [f"{lhs}~1" for lhs in rows["lhs"] if lhs not in ordered]
    elif level_type == "residuals":
        rows = g1[(g1["op"] == "~~") & (g1["lhs"] == g1["rhs"]) & (~g1["lhs"].isin(lv_names))]
        out += [f"{lhs}~~{lhs}" for lhs in rows["lhs"] if lhs not in ordered]
    out = [c for c in out if c not in freed]
    # keep at least two constrained indicators per factor (the marker loading counts)
    keep = []
    for c in out:
        item = _item_of(c)
        ok = True
        for its in items_of.values():
            if item not in its:
                continue
            still = [i for i in its if not any(_item_of(x) == i and _type_of(x) == _type_of(c) for x in freed)]
            if len(still) <= 2:
                ok = False
        if ok:
            keep.append(c)
    return keep


def _type_of(c: str) -> str:
    if "=~" in c:
        return "loadings"
    if c.endswith("~1") or c.endswith("|t"):
        return "intercepts"
    return "residuals"


def _item_of(c: str) -> str:
    if "=~" in c:
        return c.split("=~", 1)[1]
    return re.split(r"~~|~1|\|", c)[0]


def _expand_partial(freed: Sequence[str], thresholds: Mapping[str, int]) -> list[str]:
    """Translate freed names into lavaan group_partial entries (``x|t`` → ``x|t1``, ``x|t2``...)."""
    out = []
    for c in freed:
        if c.endswith("|t"):
            it = c[:-2]
            out += [f"{it}|t{k + 1}" for k in range(thresholds.get(it, 0))]
        else:
            out.append(c)
    return out


@dataclass
class _Setup:
    """What the ladder fits: the working frame (group column as text), model and options."""

    work: pd.DataFrame
    model: str
    labels: list
    items: list
    ordered: list
    thresholds_per_item: dict
    estimator: str
    missing: str | None
    n_per_group: list
    provenance_data: Any
    respondent_group: Any


def _survey_frame(sd, group, groups, respondent_group, missing, estimator, ordered, model):
    """The frame, model and shared items of a SurveyData (no copy of the whole table)."""
    frame = sd.frame
    inst = sd.instrument
    if group not in frame.columns:
        raise DataError(f"group= {group!r} is not a column of the survey data.")
    present = _survey.present_groups(sd)
    if group == "group":
        rgroups = [g for g in present if g in inst.group_ids]
        if groups is not None:
            rgroups = [g for g in rgroups if g in set(map(str, groups))]
        shared = _survey.shared_items(sd, rgroups)
        base_group = rgroups[0] if rgroups else None
    else:
        if respondent_group is None:
            if len(present) != 1:
                raise DataError(f"The survey data hold several respondent groups ({', '.join(present)}); "
                                "choose one with respondent_group=.")
            respondent_group = present[0]
        if str(respondent_group) not in present:
            raise DataError(f"respondent_group={respondent_group!r} has no respondents; present: "
                            f"{', '.join(present)}.")
        base_group = str(respondent_group)
        shared = set(inst.items_for(base_group))
    if base_group is None:
        raise DataError("No respondent group of the instrument is present in the data.")
    if model is None:
        model = inst.model_syntax(base_group)
    if missing is None:   # as cs.factor.cfa does for survey data
        missing = "fiml" if estimator.upper() in ("ML", "MLR") and not ordered else "pairwise"
    cols = list(dict.fromkeys([group, "group"] + [i for i in _model_items(model) if i in frame.columns]))
    if group != "group":
        frame = _survey.group_frame(frame, "group", base_group, cols)
    else:
        frame = frame[cols]
    return frame, model, shared, missing, respondent_group


def _setup(data_or_frame, *, group, model, estimator, ordered, missing, respondent_group, groups,
           flags: list[Flag]) -> _Setup:
    """Validate the input and build the working frame restricted to the shared items."""
    if _survey.is_survey(data_or_frame):
        frame, model, shared, missing, respondent_group = _survey_frame(
            data_or_frame, group, groups, respondent_group, missing, estimator, ordered, model)
    elif isinstance(data_or_frame, pd.DataFrame):
        frame, shared = data_or_frame, None
        if model is None:
            raise DataError("model= is required when data_or_frame is a DataFrame.")
    else:
        raise DataError("data_or_frame= must be a SurveyData or a pandas DataFrame, got "
                        f"{type(data_or_frame).__name__}.")
    if group not in frame.columns:
        raise DataError(f"group= {group!r} is not a column of the data.", [Problem(
            rule="group_column", message="Missing group column.", column=str(group))])
    codes, labels = _group_codes(frame[group], groups)
    keep = codes >= 0
    if not keep.all():
        frame, codes = frame[keep], codes[keep]
    if len(labels) < 2:
        raise DataError(f"Invariance needs at least two groups in {group!r}; found {labels}.")
    items = _model_items(model)
    missing_cols = [c for c in items if c not in frame.columns]
    if missing_cols:
        raise DataError("Model items are not columns of the data.", [Problem(
            rule="model_items", message="Item of the model missing from the data.", column=c)
            for c in missing_cols])
    # items answered in every compared group (shared items): one pass, no per-group copies
    answered_by = np.column_stack([np.bincount(codes, weights=frame[c].notna().to_numpy(), minlength=len(labels))
                                   for c in items])
    answered = {c for j, c in enumerate(items) if (answered_by[:, j] > 0).all()}
    if shared is not None:
        answered &= shared
    if set(items) - answered:
        model, _ = _restrict_syntax(model, answered)
        flags.append(Flag("items_not_shared", "Items not answered in every compared group were left out: "
                          f"{', '.join(sorted(set(items) - answered))}.", severity="caution",
                          where={"items": sorted(set(items) - answered)}))
        items = _model_items(model)
        if not items:
            raise DataError("No factor keeps two items answered in every compared group.")
    n_per_group = np.bincount(codes, minlength=len(labels)).astype(int).tolist()
    small = [(g, n) for g, n in zip(labels, n_per_group) if n < MIN_GROUP_N]
    if small:
        flags.append(Flag("small_group", "Groups below the minimum size of "
                          f"{MIN_GROUP_N}: " + ", ".join(f"{g} (n = {n})" for g, n in small)
                          + "; invariance tests have little power and fit indices are unstable.",
                          severity="warning", where={"groups": [g for g, _ in small]}))
    ordered_list = list(items) if ordered is True else [c for c in (ordered or []) if c in items]
    if ordered_list and estimator.upper() in ("ML", "MLR"):
        estimator = "WLSMV"
    thresholds_per_item = _ordinal_categories(frame, codes, labels, ordered_list, flags)
    work = frame[list(dict.fromkeys([group] + items))].copy()
    # the groups as text (values that print alike are one group), held as codes: no string per row
    work[group] = pd.Categorical.from_codes(codes, categories=labels)
    return _Setup(work=work, model=model, labels=labels, items=items, ordered=ordered_list,
                  thresholds_per_item=thresholds_per_item, estimator=estimator, missing=missing,
                  n_per_group=n_per_group, provenance_data=data_or_frame, respondent_group=respondent_group)


def _group_codes(col: pd.Series, groups: Sequence[Any] | None) -> tuple[np.ndarray, list[str]]:
    """Each row's group as a code into the labels (the values as text, in order of appearance); -1 for a
    missing value or a group not in ``groups``.  One hash pass over the column, then work on its few
    distinct values (``astype(str)`` over millions of rows would dominate a ladder)."""
    raw, uniques = pd.factorize(col)
    text = np.asarray([str(u) for u in uniques], dtype=object)
    merged, labels = pd.factorize(text)                  # values that print alike are one group
    labels = [str(x) for x in labels]
    if groups is not None:
        wanted = set(map(str, groups))
        kept = [lab for lab in labels if lab in wanted]
        recode = np.array([kept.index(lab) if lab in wanted else -1 for lab in labels], dtype=np.int64)
        merged, labels = recode[merged], kept
    lut = np.append(np.asarray(merged, dtype=np.int64), -1)      # raw code -1 (missing) -> -1
    return lut[raw], labels


def _ordinal_categories(frame, codes, labels, ordered_list, flags: list[Flag]) -> dict[str, int]:
    """Thresholds per ordinal item; flags categories empty in some group."""
    out: dict[str, int] = {}
    for c in ordered_list:
        x = frame[c].to_numpy(dtype=float)
        ok = np.isfinite(x)
        cats = np.unique(x[ok])
        out[c] = max(len(cats) - 1, 0)
        pos = np.searchsorted(cats, x[ok])
        table = np.bincount(codes[ok] * len(cats) + pos, minlength=len(labels) * len(cats)).reshape(
            len(labels), len(cats))
        for gi, g in enumerate(labels):
            empty = [float(k) for k, n in zip(cats, table[gi]) if n == 0]
            if empty:
                flags.append(Flag("empty_category", f"Item {c} has no answers in categor"
                                  f"{'y' if len(empty) == 1 else 'ies'} {', '.join(f'{e:g}' for e in empty)} in "
                                  f"group {g}; equal thresholds cannot be estimated for it there (collapse "
                                  "categories).", severity="warning",
                                  where={"item": c, "group": g, "categories": empty}))
    return out


class _Ladder:
    """State of one ladder: fitted models, table rows, score tests and flags."""

    def __init__(self, s: _Setup, *, group: str, criteria: str, significance: float, flags: list[Flag]):
        self.s, self.group, self.criteria, self.significance, self.flags = s, group, criteria, significance, flags
        self.est = s.estimator.upper()
        self.kind = "standard" if self.est == "ML" else ("robust" if self.est == "MLR" else "scaled")
        self.rows: dict[str, dict[str, Any]] = {}
        self.fits: dict[str, Any] = {}
        self.score_rows: list[dict[str, Any]] = []
        # every fit of the ladder uses the same frame: its model-free pieces are computed once
        self.cache: dict[Any, Any] = {}

    def equal_types(self, level: str) -> list[str]:
        eq = list(_EQUAL[level])
        if self.s.ordered:
            eq = [("thresholds" if e == "intercepts" else e) for e in eq]
            if level == "strict":
                eq = [e for e in eq if e != "residuals"]
            if len(self.s.ordered) < len(self.s.items) and "thresholds" in eq:
                eq.append("intercepts")
        return eq

    def fit(self, level: str, partial_list: Sequence[str]):
        """Fit one level with ``partial_list`` released; None (and a flag) when it cannot be fitted."""
        from .cfa import _cfa_frame

        s = self.s
        try:
            return _cfa_frame(s.work, model=s.model, estimator=s.estimator, ordered=s.ordered or None,
                              group=self.group, group_equal=tuple(self.equal_types(level)),
                              group_partial=tuple(_expand_partial(partial_list, s.thresholds_per_item)),
                              missing=s.missing or "listwise", std_lv=False, meanstructure=None,
                              cache=self.cache)
        except ModelError as exc:
            self.flags.append(Flag("not_fitted", f"The {level} model could not be fitted: {exc}",
                                   severity="error", where={"level": level}))
            return None

    def record(self, name: str, fit, ref_name: str | None, level: str | None, n_freed: int,
               test: bool = True) -> dict[str, Any]:
        """Add a fitted model's row; with ``test=False`` its difference test waits for :meth:`test`
        (the intermediate steps of a partial search are judged by the fit indices alone)."""
        ind = _indices(fit.fit, self.kind)
        row = {"chi2": _fit_value(fit.fit, "chi2"), "df": _fit_value(fit.fit, "df"),
               "chi2_scaled": _fit_value(fit.fit, "chi2_scaled"),
               **{k: ind[k] for k in ("cfi", "tli", "rmsea", "srmr")},
               "compared_to": ref_name or "", "delta_chi2": np.nan, "delta_df": np.nan, "p_value": np.nan,
               "delta_cfi": np.nan, "delta_rmsea": np.nan, "delta_srmr": np.nan, "n_freed": n_freed,
               "verdict": ""}
        if not fit.converged:
            self.flags.append(Flag("not_converged", f"The {name} model did not converge.", severity="warning",
                                   where={"level": name}))
        self.rows[name] = row
        self.fits[name] = fit
        if ref_name is None:
            return row
        r_ind = _indices(self.fits[ref_name].fit, self.kind)
        row.update(delta_cfi=ind["cfi"] - r_ind["cfi"], delta_rmsea=ind["rmsea"] - r_ind["rmsea"],
                   delta_srmr=ind["srmr"] - r_ind["srmr"], delta_df=row["df"] - _fit_value(
                       self.fits[ref_name].fit, "df"))
        negative = self.test(name) if (test or self.criteria == "chi2") else False
        ok = _verdict(level, row["delta_cfi"], row["delta_rmsea"], row["delta_srmr"], row["p_value"],
                      self.criteria, int(sum(self.fits["configural"].n_obs)), self.significance)
        if negative and self.criteria == "chi2":
            ok = True       # no evidence against the constraints: never a rejection
        row["verdict"] = "supported" if ok else "rejected"
        return row

    def test(self, name: str) -> bool:
        """The difference test of row ``name`` against its reference; True when it is negative (flagged)."""
        row, fit = self.rows[name], self.fits[name]
        ref_name = row["compared_to"]
        ref_fit = self.fits[ref_name]
        dt = difference_test(fit.fit, ref_fit.fit, estimator=self.est)
        if dt["method"] == "unavailable":
            dt = _satorra2000(fit, ref_fit) or dt
        row.update(delta_chi2=dt["delta_chi2"], delta_df=float(dt["delta_df"]), p_value=dt["p_value"])
        negative = bool(np.isfinite(row["delta_chi2"]) and row["delta_chi2"] < 0)
        if negative:
            row["p_value"] = np.nan
            self.flags.append(_negative_difference_flag(name, ref_name, row["delta_chi2"], dt["method"]))
        return negative

    def empty_row(self, level: str, verdict: str, compared_to: str = "", n_freed: int = 0) -> None:
        self.rows[level] = {c: np.nan for c in TABLE_COLUMNS}
        self.rows[level].update(verdict=verdict, compared_to=compared_to, n_freed=n_freed)

    def score_candidates(self, current, level: str, cands: list[str], freed: list[str]):
        """(statistic, df, name, method) per candidate: score tests (ML/MLR), else refits."""
        s = self.s
        tester, method = None, "score"
        partial_now = _expand_partial(freed, s.thresholds_per_item)
        try:
            if self.est in ("ML", "MLR"):
                tester = _ScoreTester(current, s.work, model=s.model, group=self.group,
                                      group_equal=list(_EQUAL[level]), group_partial=partial_now,
                                      candidates=cands, fiml=str(current.missing).lower() in ("fiml", "ml"))
            elif getattr(current, "_state", None) is not None and hasattr(current._state, "objective_weights"):
                tester = _WLSScoreTester(current, model=s.model, group_equal=self.equal_types(level),
                                         group_partial=partial_now,
                                         candidates=_expand_partial(cands, s.thresholds_per_item),
                                         thresholds=s.thresholds_per_item)
                method = "score_dwls"
        except (ModelError, np.linalg.LinAlgError, KeyError, ValueError):
            tester = None
        scored = []
        for c in cands:
            if tester is not None:
                stat, df = tester.test(c)
                scored.append((stat, df, c, method))
                continue
            trial = self.fit(level, freed + [c])
            if trial is None:
                continue
            drop = _fit_value(current.fit, "chi2") - _fit_value(trial.fit, "chi2")
            scored.append((drop, int(_fit_value(current.fit, "df") - _fit_value(trial.fit, "df")), c, "refit"))
        return scored

    def partial_search(self, level: str, fit, ref: str, freed: list[str], max_free: int | None,
                       lv_names, items_of) -> bool:
        """Release the constraint with the largest score test, one at a time, until ``level`` passes."""
        ltype = _TYPE_OF_LEVEL[level]
        current, step = fit, 0
        limit = max_free if max_free is not None else 10**6
        while step < limit:
            cands = _candidates(current, ltype, self.s.ordered, freed, lv_names, items_of)
            if not cands:
                return False
            scored = self.score_candidates(current, level, cands, freed)
            if not scored:
                return False
            for stat, df, c, meth in scored:
                self.score_rows.append({"level": level, "step": step + 1, "parameter": c, "statistic": stat,
                                        "df": df, "p_value": (float(stats.chi2.sf(stat, df)) if meth == "score"
                                                              and df > 0 and np.isfinite(stat) else np.nan),
                                        "method": meth})
            best = max(scored, key=lambda t: (t[0] if np.isfinite(t[0]) else -np.inf))
            freed.append(best[2])
            step += 1
            trial = self.fit(level, freed)
            if trial is None:
                return False
            current = trial
            if self.record(f"partial_{level}", trial, ref, level, len(freed), test=False)["verdict"] == "supported":
                self._finish(f"partial_{level}")
                return True
        self._finish(f"partial_{level}")
        return False

    def _finish(self, name: str) -> None:
        """The difference test of the last partial model (deferred during the search)."""
        if name in self.rows and not np.isfinite(self.rows[name]["p_value"]) \
                and not np.isfinite(self.rows[name]["delta_chi2"]):
            self.test(name)


def _negative_difference_flag(name: str, ref: str, delta: float, method: str) -> Flag:
    return Flag("negative_delta_chi2", f"The chi-square difference of {name} against {ref} is negative "
                f"({delta:.3f}, {method}). The more constrained model cannot fit better than the one it is nested "
                "in, so the models are not nested as compared (e.g. a partial model against a differently "
                "identified one), or the scaled difference statistic broke down (scaled and shifted "
                "statistics need not be monotone; lavaan warns likewise). The test is undefined (p NaN) and "
                "not counted as a rejection; the verdict rests on the changes in fit indices.", "caution",
                {"level": name, "compared_to": ref, "delta_chi2": float(delta)})


def _one_blas_thread(func):
    """Run ``func`` with one BLAS thread: the ladder's products are small and many, and threads only
    contend on a shared machine (parallelism belongs to independent ladders; see methodology/invariance.md)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .._blas import one_thread

        with one_thread():
            return func(*args, **kwargs)

    return wrapper


@_one_blas_thread
def invariance(data_or_frame: Any, *, group: str, model: str | None = None, estimator: str = "ML",
               levels: Sequence[str] = LEVELS, partial: bool = True, criteria: str = "chen2007",
               ordered: Sequence[str] | bool | None = None, missing: str | None = None,
               respondent_group: str | None = None, groups: Sequence[Any] | None = None,
               significance: float = thresholds.SIGNIFICANCE, configural_fit: Mapping[str, float] | None = None,
               max_free: int | None = None) -> InvarianceResult:
    """Test measurement invariance across groups (configural, metric, scalar, strict, partial).

    Parameters
    ----------
    data_or_frame : SurveyData or pandas.DataFrame
        With a SurveyData the model is the instrument's (``instrument.model_syntax``) for
        ``respondent_group``, restricted to the items every compared group answered; with
        a DataFrame give ``model``.
    group : str
        Column whose values define the groups (``"iteration"``, ``"country"``,
        ``"group"`` for respondent groups, ``"gender"`` …).
    model : str, optional
        lavaan-style syntax; required for a DataFrame.
    estimator : {"ML", "MLR", "WLSMV"}
        Passed to :func:`cips_stats.factor.cfa`.  WLSMV when ``ordered`` is given.
    levels : sequence of str
        Levels to test, in ladder order (subset of configural, metric, scalar, strict).
    partial : bool
        Search for partial invariance when a level fails.
    criteria : {"chen2007", "chen2007_literal", "chen2007_strict", "cheung_rensvold2002", "chi2"}
        How a step is judged (see Notes); ``"cheung_rensvold2002"``: CFI drop < .010
        only; ``"chi2"``: difference test p ≥ ``significance``.
    ordered : sequence of str or bool, optional
        Ordinal items (True: all model items); their thresholds take the place of
        intercepts.
    missing : str, optional
        Passed to ``cfa`` (``"fiml"``, ``"listwise"``, ``"pairwise"`` for WLSMV).  Default:
        ``cfa``'s for a DataFrame (listwise); for a SurveyData ``"fiml"`` (ML/MLR) or
        ``"pairwise"`` (WLSMV), as ``cs.factor.cfa`` does for survey data.
    respondent_group : str, optional
        For a SurveyData, the respondent group whose model to use when ``group`` is not
        ``"group"``; required when the data hold several respondent groups.
    groups : sequence, optional
        Only these values of ``group`` (default: all).
    significance : float
        Level of the difference tests (``criteria="chi2"``), default 0.05.
    configural_fit : mapping, optional
        Acceptable configural fit, default :data:`cips_stats.thresholds.CONFIGURAL_FIT`
        (CFI ≥ .90, Bentler & Bonett 1980; RMSEA ≤ .08, Browne & Cudeck 1993).
    max_free : int, optional
        Most constraints to release per level (default: no limit beyond keeping two
        equal indicators per factor).

    Returns
    -------
    InvarianceResult
        ``.table``, ``.freed``, ``.level_supported``, ``.supports(...)``, ``.score_tests``,
        flags (small groups, empty categories, non-convergence, poor configural fit, a
        negative chi-square difference); a poor configural fit emits
        :class:`~cips_stats.errors.PoorFitWarning`, latent means that are not comparable
        :class:`~cips_stats.errors.NonInvarianceWarning`.

    Notes
    -----
    Levels: configural (same pattern), metric (equal loadings), scalar (plus equal
    intercepts, or thresholds of ordinal items), strict (plus equal residual
    variances), identified as lavaan (marker loadings; latent means freed in groups
    2+ once intercepts are equal).  Each level is compared with the last supported
    one (with ``partial=False``, with the level below it).  Cut-offs (Chen 2007): total
    N > 300: CFI drop .010, RMSEA rise .015, SRMR rise .030 (metric) / .010 (scalar,
    strict); N ≤ 300: .005, .010, .025 / .005.  ``"chen2007"`` (default): a step is
    supported when CFI does not drop by more than its cut-off *and* at least one of
    RMSEA and SRMR stays within its cut-off (CFI decisive, one supplementary index
    agreeing).  ``"chen2007_literal"``: fails only when CFI *and* RMSEA or SRMR cross
    (Chen's sentence read literally, more lenient).
    ``"chen2007_strict"`` fails a step when any one cut-off is crossed.  For MLR the
    robust CFI/TLI/RMSEA are used (lavaan's ``cfi.robust``…), for WLSMV the scaled ones.
    Difference tests: plain for ML, Satorra-Bentler (2001) for MLR, Satorra (2000)
    scaled-shifted for WLSMV (as ``lavaan::lavTestLRT``).  Partial
    invariance: the constraint of the failing type with the largest score test
    (ML-based, expected information, as ``lavaan::lavTestScore``; for WLSMV, the
    largest drop in chi-square over refits) is released, and the step re-judged, until
    it passes or fewer than two equal indicators per factor would remain.  Checked
    against lavaan 0.6-14 on HolzingerSwineford1939 by school
    (``validation/r/invariance.R``).

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(2)
    >>> y = rng.normal(size=(400, 1)) @ [[1, .8, .7]] + rng.normal(scale=.6, size=(400, 3))
    >>> df = pd.DataFrame(y, columns=list("abc")).assign(g=np.repeat(["a", "b"], 200))
    >>> from cips_stats.factor.invariance import invariance
    >>> res = invariance(df, group="g", model="f =~ a + b + c", levels=("configural", "metric"))
    >>> float(res.table.loc["metric", "delta_df"]), res.table.loc["metric", "verdict"]
    (2.0, 'supported')
    """
    flags: list[Flag] = []
    levels = tuple(levels)
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise DataError(f"levels= must be a non-empty subset of {LEVELS}; got {levels!r}.")
    levels = tuple(lv for lv in LEVELS if lv in levels)
    if levels[0] != "configural":
        levels = ("configural",) + levels
    if criteria not in CRITERIA:
        raise DataError(f"criteria= must be one of {', '.join(CRITERIA)}; got {criteria!r}.")
    if not (isinstance(significance, (int, float)) and 0 < significance < 1):
        raise DataError(f"significance= must be in (0, 1); got {significance!r}.")
    cf = {**dict(thresholds.CONFIGURAL_FIT), **dict(configural_fit or {})}
    s = _setup(data_or_frame, group=group, model=model, estimator=estimator, ordered=ordered, missing=missing,
               respondent_group=respondent_group, groups=groups, flags=flags)
    lad = _Ladder(s, group=group, criteria=criteria, significance=significance, flags=flags)
    conf = lad.fit("configural", [])
    if conf is None:
        raise ModelError("The configural model could not be fitted; invariance cannot be assessed. "
                         + " ".join(f.message for f in flags), diagnostics={"flags": [f.to_dict() for f in flags]})
    row = lad.record("configural", conf, None, None, 0)
    conf_ok = conf.converged and row["cfi"] >= cf["cfi"] and row["rmsea"] <= cf["rmsea"]
    row["verdict"] = "acceptable fit" if conf_ok else "poor fit"
    if not conf_ok:
        flags.append(emit(Flag(
            "configural_poor_fit", f"The configural model fits poorly (CFI {row['cfi']:.3f}, RMSEA "
            f"{row['rmsea']:.3f}; needed CFI ≥ {cf['cfi']}, RMSEA ≤ {cf['rmsea']}): the factor structure itself "
            "differs or is misspecified, so no invariance level is supported (the other levels are still tested "
            "and reported).", severity="warning"), PoorFitWarning))
    supported, freed, freed_before = _climb(lad, levels, partial=partial, max_free=max_free)
    table = pd.DataFrame.from_dict(lad.rows, orient="index")[TABLE_COLUMNS]
    for c in TABLE_COLUMNS:
        if c not in ("compared_to", "verdict"):
            table[c] = table[c].astype(float)
    score_tests = pd.DataFrame(lad.score_rows, columns=["level", "step", "parameter", "statistic", "df",
                                                        "p_value", "method"])
    if supported.startswith("rejected:"):
        supported = supported.split(":", 1)[1]
    if not conf_ok:
        supported = "none"
    full = "none" if not conf_ok else "configural"
    for level in levels[1:]:
        if conf_ok and lad.rows.get(level, {}).get("verdict") == "supported" and not freed_before[level] \
                and full == levels[levels.index(level) - 1]:
            full = level
    if _LEVEL_RANK[supported.replace("partial_", "")] < _LEVEL_RANK["scalar"]:
        flag = Flag("latent_means_not_comparable", f"Invariance supported up to '{supported}' only: latent means "
                    f"are not comparable across {group}" + ("." if "scalar" in levels else
                                                            " (scalar invariance was not tested)."),
                    severity="warning" if "scalar" in levels else "info",
                    where={"group": group, "level_supported": supported})
        # a finding of non-invariance warns; a level that was not asked for is only noted
        flags.append(emit(flag, NonInvarianceWarning) if "scalar" in levels else flag)
    return InvarianceResult(
        table=table, freed=tuple(freed), level_supported=supported, level_full=full, score_tests=score_tests,
        group=group, group_labels=tuple(s.labels),
        n_per_group=tuple(int(x) for x in lad.fits["configural"].n_obs),
        estimator=s.estimator, criteria=criteria, fit_measures=lad.kind, model=s.model, fits=lad.fits,
        provenance=Provenance.build("invariance", data=s.provenance_data, options={
            "group": group, "estimator": s.estimator, "levels": list(levels), "partial": partial,
            "criteria": criteria, "ordered": s.ordered, "missing": s.missing,
            "respondent_group": s.respondent_group, "configural_fit": cf, "significance": significance}),
        flags=tuple(flags))


def _climb(lad: _Ladder, levels: tuple, *, partial: bool, max_free: int | None):
    """Fit each level above configural against the last supported one; search partial invariance."""
    conf = lad.fits["configural"]
    supported, ref = "configural", "configural"
    freed: list[str] = []
    lv_names = list(dict.fromkeys(conf.loadings["factor"])) if "factor" in conf.loadings else []
    items_of = {f: list(conf.loadings.loc[conf.loadings["factor"] == f, "item"].drop_duplicates())
                for f in lv_names}
    stop = False
    freed_before: dict[str, int] = {lv: 0 for lv in levels}
    for level in levels[1:]:
        if stop:
            lad.empty_row(level, "not tested")
            continue
        if lad.s.ordered and level == "strict":
            lad.empty_row(level, "not tested (ordinal items: no residual variances in the delta parameterisation)")
            continue
        freed_before[level] = len(freed)
        fit = lad.fit(level, freed)
        if fit is None:
            lad.empty_row(level, "not fitted", ref, len(freed))
            stop = True
            continue
        if lad.record(level, fit, ref, level, len(freed))["verdict"] == "supported":
            if not supported.startswith("rejected"):
                supported = level if not supported.startswith("partial_") else f"partial_{level}"
            ref = level
            continue
        if not partial:
            # no search: keep testing each level against the previous one (a chain of lavTestLRT
            # comparisons); support ends at the first rejected step
            if not supported.startswith("rejected"):
                supported = "rejected:" + supported
            ref = level
            continue
        if lad.partial_search(level, fit, ref, freed, max_free, lv_names, items_of):
            supported = ref = f"partial_{level}"
        else:
            stop = True
    return supported, freed, freed_before
