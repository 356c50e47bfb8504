"""WLSMV: diagonally weighted least squares CFA of ordinal items, with robust corrections.

The sample statistics are, per group, the thresholds and polychoric correlations of
the ordinal items (:func:`cips_stats.factor.polychoric.polychoric`, pairwise present)
and their asymptotic covariance Gamma. The model is fitted by DWLS (weights: the
inverse diagonal of Gamma, computed once), standard errors are the sandwich
(robust) ones and the test statistic is the mean-and-variance adjusted
("scaled-shifted") one, as ``lavaan::cfa(..., ordered=, estimator="WLSMV")``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cips_stats.factor.wls import fit_wlsmv
>>> rng = np.random.default_rng(1)
>>> f = rng.standard_normal((1000, 1))
>>> y = f @ [[0.8, 0.7, 0.6, 0.5]] + rng.standard_normal((1000, 4)) * [0.6, 0.71, 0.8, 0.87]
>>> df = pd.DataFrame(np.digitize(y, [-1, 0, 1]) + 1, columns=["a", "b", "c", "d"])
>>> res = fit_wlsmv(df, "f =~ a + b + c + d", std_lv=True)
>>> res.fit["df"], res.converged
(2, True)
>>> bool(abs(res.loadings["est"].iloc[0] - 0.8) < 0.1)
True
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from ..errors import DataError, Flag, ModelError, Problem
from ..results import Provenance, fingerprint_frame
from .polychoric import PolychoricResult, _levels, polychoric
from .results import CFAResult

__all__ = ["fit_wlsmv", "difference_test", "WLSSample", "wls_sample"]


# --------------------------------------------------------------------------- sample statistics
class WLSSample:
    """Per-group ordinal sample statistics: thresholds, polychorics, Gamma, weights.

    Attributes
    ----------
    poly : list of PolychoricResult
    s : list of numpy.ndarray
        Per group the vector (thresholds in table order, off-diagonal correlations).
    gamma : list of numpy.ndarray
        Per group the N_g-scaled asymptotic covariance of ``s``.
    n : list of int
        Per group the number of rows.
    """

    def __init__(self, poly: list[PolychoricResult], s: list[np.ndarray], gamma: list[np.ndarray],
                 n: list[int], th_labels: list[list[str]]):
        self.poly, self.s, self.gamma, self.n, self.th_labels = poly, s, gamma, n, th_labels
        # statistics that depend on the sample alone (the baseline's scaled-shifted test), computed once
        # for all the fits of one data set (an invariance ladder refits the same cached sample)
        self.memo: dict[Any, Any] = {}

    def corr(self, g: int, names: Sequence[str]) -> pd.DataFrame:
        """Polychoric matrix of group ``g`` in the order ``names`` (kept: do not modify)."""
        key = ("corr", g, tuple(names))
        if key not in self.memo:
            self.memo[key] = self.poly[g].corr.loc[list(names), list(names)]
        return self.memo[key]

    def corr_array(self, g: int, names: Sequence[str]) -> np.ndarray:
        """:meth:`corr` as an array (kept: do not modify)."""
        key = ("corr_array", g, tuple(names))
        if key not in self.memo:
            self.memo[key] = self.corr(g, names).to_numpy()
        return self.memo[key]


def wls_sample(frames: Sequence[pd.DataFrame], ov_names: Sequence[str], *, missing: str = "pairwise",
               levels: dict | None = None, weight: str | None = None) -> WLSSample:
    """Thresholds, polychorics and Gamma of each group (frames restricted to ``ov_names``).

    ``levels`` (item -> observed codes over all groups) checks that every group uses
    every category (lavaan needs the same thresholds in every group).  The statistics
    depend on the data only, so they are cached by a hash of the data: the fits of an
    invariance ladder (same rows, other constraints) compute them once.

    Parameters
    ----------
    frames : sequence of pandas.DataFrame
        One frame per group.
    ov_names : sequence of str
        The ordinal items.
    missing : {"pairwise", "listwise"}
        How polychorics treat missing answers.
    levels : dict, optional
        Item -> answer codes over all groups.
    weight : str, optional
        Column of survey weights.

    Returns
    -------
    WLSSample

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cips_stats.factor.wls import wls_sample
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame(rng.integers(1, 4, size=(300, 3)), columns=list("abc"))
    >>> s = wls_sample([df], ["a", "b", "c"])
    >>> s.n, len(s.s[0])          # 2 thresholds x 3 items + 3 correlations
    ([300], 9)
    """
    from .ml import _cache_get, _cache_put, _data_key

    cols = list(ov_names) + ([weight] if weight is not None else [])
    key = ("wls_sample", tuple(ov_names), missing, weight,
           tuple(_data_key(fr[cols].to_numpy(dtype=float, na_value=np.nan)) for fr in frames),
           None if levels is None else tuple((k, tuple(np.asarray(levels[k], float))) for k in ov_names))
    hit = _cache_get(key)
    if hit is not None:
        return hit[0]
    sample = _wls_sample(frames, ov_names, missing=missing, levels=levels, weight=weight)
    _cache_put(key, (sample, *sample.gamma))
    return sample


def _wls_sample(frames, ov_names, *, missing, levels, weight) -> WLSSample:
    polys, ss, gams, ns, labels = [], [], [], [], []
    for g, fr in enumerate(frames):
        wts = None if weight is None else fr[weight].to_numpy(dtype=float)
        pr = polychoric(fr[list(ov_names)], missing=missing, weight=wts)
        bad = [f for f in pr.flags if f.severity == "error"]
        if bad:
            raise ModelError(f"Polychoric correlations of group {g + 1} cannot be computed: "
                             + " ".join(f.message for f in bad), diagnostics={"flags": bad})
        if levels is not None:
            for item in ov_names:
                if not np.array_equal(np.asarray(pr.levels[item], float), np.asarray(levels[item], float)):
                    miss = sorted(set(np.asarray(levels[item], float)) - set(np.asarray(pr.levels[item], float)))
                    raise ModelError(f"Item {item!r} has no answers in categor{'y' if len(miss) == 1 else 'ies'} "
                                     f"{', '.join(f'{m:g}' for m in miss)} in group {g + 1}; ordinal CFA needs "
                                     "every category in every group (collapse categories first).",
                                     diagnostics={"item": item, "group": g + 1, "categories": miss})
        polys.append(pr)
        ss.append(np.concatenate([pr.threshold_vector, pr.corr_vector]))
        # lavaan's cfa() rescales the Gamma of lavCor() by N/(N-1) (measured against
        # lavaan 0.6-14: chi2 and robust SEs agree only with this factor)
        gams.append(pr.gamma() * (pr.n / (pr.n - 1.0)))
        ns.append(int(pr.n))
        labels.append(pr.threshold_labels)
    return WLSSample(polys, ss, gams, ns, labels)


class WLSState:
    """Internals of a WLS fit kept on the result (for difference tests and diagnostics).

    Attributes: ``model`` (CFAModel), ``sample`` (:class:`WLSSample`), ``theta`` (free
    parameters), per group ``delta`` (Jacobian of the model statistics), ``weights``
    (diagonal weights, or full matrices for WLS), ``gamma`` (Gamma used), ``residuals``,
    and ``group_fraction`` (N_g / N).
    """

    def __init__(self, **kw: Any):
        self.__dict__.update(kw)


# --------------------------------------------------------------------------- the estimator
@functools.lru_cache(maxsize=64)
def _model_observed(model: str, observed: tuple[str, ...]) -> tuple[str, ...]:
    """The observed variables of a syntax, in the model's order (``CFAModel(build_partable(...)).ov_names``)."""
    from .model import CFAModel
    from .syntax import build_partable

    return tuple(CFAModel(build_partable(model, observed=list(observed))).ov_names)


def _prepare_model(frame: pd.DataFrame, model: Any, *, ordered, group_labels, group_equal, group_partial,
                   std_lv: bool, levels: dict):
    from .model import CFAModel
    from .syntax import build_partable

    syntax = None
    pt = None
    if isinstance(model, CFAModel):
        m = model
    elif isinstance(model, pd.DataFrame):
        pt = model
    elif isinstance(model, str):
        syntax = model
        # first pass: which observed variables does the model use? (memoised: a ladder refits one syntax)
        ov = list(_model_observed(model, tuple(map(str, frame.columns))))
        if ordered is None or ordered is True:
            ord_items = ov
        else:
            ord_items = [str(o) for o in ordered]
            cont = [v for v in ov if v not in ord_items]
            if cont:
                raise ModelError(f"WLSMV here supports ordinal items only; {cont} are not in ordered=. "
                                 "Mixed continuous/ordinal models are not supported.")
        pt = build_partable(model, observed=list(map(str, frame.columns)),
                            ordered={v: len(levels[v]) for v in ov if v in ord_items},
                            n_groups=len(group_labels), std_lv=std_lv, meanstructure=True,
                            group_equal=tuple(group_equal), group_partial=tuple(group_partial))
    else:
        raise ModelError("model= must be lavaan-style syntax, a parameter table or a CFAModel.")
    if pt is not None:
        m = CFAModel(pt)
    not_ord = [v for v in m.ov_names if v not in m.ordered]
    if not_ord:
        raise ModelError(f"WLSMV here supports ordinal items only; {not_ord} have no thresholds.")
    if m.n_groups != len(group_labels):
        raise ModelError(f"The parameter table has {m.n_groups} groups but the data have {len(group_labels)}.")
    return m, syntax


def _implied_stats(model, theta: np.ndarray, th_perm: list[np.ndarray], od: tuple[np.ndarray, np.ndarray]):
    """Per group the implied statistics (thresholds in sample order, off-diagonal correlations)."""
    imp = model.implied(theta)
    r, c = od
    sig = [np.concatenate([imp[g]["tau"][th_perm[g]], imp[g]["sigma"][r, c]]) for g in range(model.n_groups)]
    return sig, imp


def _delta_and_implied(model, theta: np.ndarray, th_perm: list[np.ndarray], od: tuple[np.ndarray, np.ndarray]):
    """Per group the implied statistics (thresholds in sample order, off-diag correlations) and Jacobian."""
    from .model import vech_indices

    sig, imp = _implied_stats(model, theta, th_perm, od)
    jac = model.jacobian(theta)
    vr, vc = vech_indices(model.p)
    offd = np.flatnonzero(vr != vc)
    dlt = [np.vstack([jac[g]["tau"][th_perm[g]], jac[g]["sigma"][offd]]) for g in range(model.n_groups)]
    return sig, dlt, imp


def _std_columns(model, theta: np.ndarray, pt: pd.DataFrame, est: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates of the implied (fixed) ordinal residual variances, std.lv and std.all (vectorised over rows)."""
    mats = model.matrices(theta)
    est = np.asarray(est, dtype=float).copy()
    n = len(pt)
    nan = np.full(n, np.nan)
    op = pt["op"].to_numpy(dtype=object)
    grp = pt["group"].to_numpy().astype(int) - 1
    oi = {v: i for i, v in enumerate(model.ov_names)}
    li = {v: i for i, v in enumerate(model.lv_names)}
    lhs_o = np.array([oi.get(v, -1) for v in pt["lhs"]], dtype=int)
    rhs_o = np.array([oi.get(v, -1) for v in pt["rhs"]], dtype=int)
    lhs_l = np.array([li.get(v, -1) for v in pt["lhs"]], dtype=int)
    rhs_l = np.array([li.get(v, -1) for v in pt["rhs"]], dtype=int)
    # per row: the SDs of the latent variables and latent responses it involves (group by group)
    sd_ov_g, sd_lv_g, thd_g = [], [], []
    for M in mats:
        L, P, dl = M["lambda_"], M["psi_total"], M["delta"]
        common = np.einsum("ij,jk,ik->i", L, P, L)
        thd = 1.0 / dl ** 2 - common                 # delta parameterisation: var(y*) = 1/delta^2
        sd_ov_g.append(np.sqrt(common + thd))
        sd_lv_g.append(np.sqrt(np.maximum(np.diag(P), 0.0)))
        thd_g.append(thd)
    sd_ov = np.array(sd_ov_g)                          # (G, p)
    sd_lv = np.array(sd_lv_g)                          # (G, m)
    thd = np.array(thd_g)

    def pick(table, idx):
        return np.where(idx >= 0, table[grp, np.maximum(idx, 0)], np.nan)

    so_l, so_r = pick(sd_ov, lhs_o), pick(sd_ov, rhs_o)
    sl_l, sl_r = pick(sd_lv, lhs_l), pick(sd_lv, rhs_l)
    ov_var = (op == "~~") & (lhs_o >= 0) & (lhs_o == rhs_o)
    est = np.where(ov_var, pick(thd, lhs_o), est)     # the fixed residual variances, implied
    with np.errstate(divide="ignore", invalid="ignore"):
        load = op == "=~"
        lvcov = (op == "~~") & (lhs_l >= 0)
        ovcov = (op == "~~") & (lhs_l < 0)
        thr = op == "|"
        lvint = (op == "~1") & (lhs_l >= 0)
        ovint = (op == "~1") & (lhs_l < 0)
        scale = op == "~*~"
        reg = op == "~"
        std_lv = np.select([load, lvcov, ovcov | thr | ovint | scale,
                            lvint, reg],
                           [est * sl_l, est / (sl_l * sl_r), est,
                            np.where(sl_l > 0, est / sl_l, est), est * sl_r / sl_l], nan)
        std_all = np.select([load, lvcov, ovcov, thr | ovint, scale, lvint, reg],
                            [est * sl_l / so_r, est / (sl_l * sl_r), est / (so_l * so_r), est / so_l,
                             np.ones(n), np.where(sl_l > 0, est / sl_l, est), est * sl_r / sl_l], nan)
    return est, std_lv, std_all


def _reflect(model, theta: np.ndarray) -> np.ndarray:
    """Fix the sign of factors whose scale is set by their variance: first loading positive (as lavaan)."""
    pt = model.partable
    theta = theta.copy()
    est = model.est(theta)
    free = pt["free"].to_numpy().astype(int) - 1
    for f in model.lv_names:
        lam = np.flatnonzero((pt["op"].to_numpy() == "=~") & (pt["lhs"].to_numpy() == f)
                             & (pt["group"].to_numpy() == 1))
        if len(lam) == 0 or free[lam[0]] < 0 or est[lam[0]] >= 0:
            continue
        rows = np.flatnonzero(((pt["op"].to_numpy() == "=~") & (pt["lhs"].to_numpy() == f))
                              | (np.isin(pt["op"].to_numpy(), ["~~", "~"]) & ((pt["lhs"].to_numpy() == f)
                                                                             ^ (pt["rhs"].to_numpy() == f)))
                              | ((pt["op"].to_numpy() == "~1") & (pt["lhs"].to_numpy() == f)))
        idx = np.unique(free[rows][free[rows] >= 0])
        theta[idx] = -theta[idx]
    return theta


def _scaled_shifted(delta: list[np.ndarray], w: list[np.ndarray], gamma: list[np.ndarray],
                    ng: list[int], df: int, memo: dict | None = None) -> tuple[float, float, float, float]:
    """Traces of U Gamma and (U Gamma)^2 over all groups; a, shift (Asparouhov & Muthen 2010).

    Stacked over groups, ``W~ = diag(f_g W_g)``, ``Gamma~ = blockdiag(Gamma_g / f_g)``,
    ``A = Delta' W~ Delta`` and ``U Gamma~ = P - W~ Delta A^-1 Delta' W~ Gamma~`` with
    ``P = blockdiag(W_g Gamma_g)``. The traces are taken in parameter space (q x q), never
    forming the k x k blocks of ``U Gamma~``: with ``C_g = Gamma_g W_g Delta_g``,
    ``B = sum_g f_g (W_g Delta_g)' C_g`` and ``E = sum_g f_g C_g' W_g C_g``,
    ``tr(U Gamma~) = tr(P) - tr(A^-1 B)`` and
    ``tr((U Gamma~)^2) = tr(P^2) - 2 tr(A^-1 E) + tr((A^-1 B)^2)``. ``tr(P)`` and ``tr(P^2)``
    depend on the sample alone (``memo``).
    """
    N = float(sum(ng))
    fg = [n / N for n in ng]
    WD = [_wmul(wd, D) for D, wd in zip(delta, w)]                                # W_g Delta_g
    A = sum(f * D.T @ wdl for f, D, wdl in zip(fg, delta, WD))
    Ainv = np.linalg.inv(A)
    C = [Gm @ wdl for Gm, wdl in zip(gamma, WD)]                                  # Gamma_g W_g Delta_g
    B = sum(f * wdl.T @ c for f, wdl, c in zip(fg, WD, C))
    E = sum(f * c.T @ _wmul(wd, c) for f, c, wd in zip(fg, C, w))
    key = ("trace_wgamma", tuple(len(Gm) for Gm in gamma), tuple(np.ndim(wd) for wd in w))
    if memo is not None and key in memo:
        trP, trP2 = memo[key]
    else:
        WG = [_wmul(wd, Gm) for wd, Gm in zip(w, gamma)]                          # W_g Gamma_g
        trP = float(sum(np.trace(x) for x in WG))
        trP2 = float(sum(np.sum(x * x.T) for x in WG))
        if memo is not None:
            memo[key] = (trP, trP2)
    AB = Ainv @ B
    tr1 = trP - float(np.trace(AB))
    tr2 = trP2 - 2.0 * float(np.sum(Ainv * E.T)) + float(np.sum(AB * AB.T))
    a = math.sqrt(df / tr2) if tr2 > 0 else float("nan")
    shift = df - a * tr1
    return tr1, tr2, a, shift


def fit_wlsmv(
    frame: pd.DataFrame,
    model: Any,
    *,
    ordered: Sequence[str] | bool | None = None,
    group: str | None = None,
    group_equal: Sequence[str] = (),
    group_partial: Sequence[str] = (),
    parameterization: str = "delta",
    estimator: str = "WLSMV",
    missing: str = "pairwise",
    std_lv: bool = False,
    weight: str | None = None,
    ci: float = 0.95,
    max_iter: int = 200,
    tol: float = 1e-10,
) -> CFAResult:
    """Fit a CFA of ordinal items by DWLS with robust standard errors and a scaled-shifted test.

    Parameters
    ----------
    frame : pandas.DataFrame
        Respondents x items (integer answer codes, NaN = missing), plus the ``group`` column.
    model : str, pandas.DataFrame or CFAModel
        lavaan-style syntax, a parameter table from
        :func:`~cips_stats.factor.syntax.build_partable` (with thresholds), or a model.
    ordered : sequence of str or True, optional
        The ordinal items; None/True: every observed variable of the model (mixed
        continuous/ordinal models are not supported).
    group : str, optional
        Column defining groups (multiple-group CFA); groups in order of appearance, as lavaan.
    group_equal, group_partial : sequence of str
        Cross-group equality constraints (``"loadings"``, ``"thresholds"``, ...) and exceptions.
    parameterization : {"delta"}
        Only lavaan's default delta parameterisation is supported.
    estimator : {"WLSMV", "DWLS", "WLS"}
        ``"WLSMV"``: DWLS estimates, robust SEs, scaled-shifted test (lavaan's WLSMV).
        ``"DWLS"``: DWLS estimates with standard SEs and test. ``"WLS"``: full weight
        matrix Gamma^-1, standard SEs and test.
    missing : {"pairwise", "listwise"}
        Pairwise-present polychorics (default; lavaan ``missing="pairwise"``) or complete cases.
    std_lv : bool
        Identify factors by unit variances instead of first loadings fixed at 1.
    weight : str, optional
        Column of survey weights (lavaan ``sampling.weights=``): weighted thresholds,
        polychorics and Gamma (:func:`~cips_stats.factor.polychoric.polychoric`). Weights
        are normalised to sum to the number of rows of each group (lavaan's
        ``sampling.weights.normalization="group"``; the same as lavaan's default for one group).
    ci : float
        Level of the Wald intervals ``ci_low``/``ci_high`` (default 0.95).
    max_iter : int
        Maximum Gauss-Newton iterations.
    tol : float
        Convergence tolerance (largest absolute change of a parameter).

    Returns
    -------
    CFAResult
        ``.fit`` holds ``chi2, df, pvalue, chi2_scaled, pvalue_scaled, scaling_factor,
        shift, baseline_chi2, baseline_df, baseline_chi2_scaled, cfi, tli, rmsea,
        rmsea_ci, rmsea_pvalue, cfi_scaled, tli_scaled, rmsea_scaled, rmsea_ci_scaled,
        srmr, fmin, npar``; ``.parameters`` (est, robust se, std_lv, std_all),
        ``.loadings``, ``.thresholds``.

    Notes
    -----
    With sample statistics ``s_g`` (thresholds, polychorics) and their N_g-scaled
    asymptotic covariance ``Gamma_g`` (Muthen, 1984), DWLS minimises
    ``F = sum_g (N_g/N) (s_g - sigma_g(theta))' W_g (s_g - sigma_g(theta))`` with
    ``W_g = diag(Gamma_g)^-1``; ``chi2 = N F``. With ``Delta`` the Jacobian of the
    model statistics and block weights ``f_g = N_g/N``:
    ``V = (1/N) A^-1 B A^-1``, ``A = sum f_g Delta' W Delta``, ``B = sum f_g Delta' W Gamma W Delta``.
    Scaled-shifted test (Asparouhov & Muthen, 2010): ``U = W - W Delta A^-1 Delta' W``,
    ``a = sqrt(df / tr((U Gamma)^2))``, ``shift = df - a tr(U Gamma)``,
    ``chi2_scaled = a chi2 + shift``, ``scaling_factor = 1/a``. The baseline model
    has free thresholds and zero correlations. CFI/TLI/RMSEA use ``chi2`` and, for the
    ``_scaled`` versions, the scaled-shifted statistics of the model and baseline (lavaan
    0.6-14). SRMR: root mean square of the correlation residuals (thresholds excluded).
    Delta parameterisation: latent responses have unit variance in group 1; with
    ``group_equal`` including ``"thresholds"`` the latent means and the scale
    factors (``~*~``) are free in groups 2+. Checked against lavaan 0.6-14 on psych's
    bfi items (tests/reference/wlsmv_*.json).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> f = rng.standard_normal((800, 1))
    >>> y = np.digitize(f @ [[0.8, 0.7, 0.6]] + rng.standard_normal((800, 3)) * 0.6, [-0.5, 0.5]) + 1
    >>> res = fit_wlsmv(pd.DataFrame(y, columns=list("abc")), "f =~ a + b + c")
    >>> res.fit["df"], res.converged
    (0, True)
    """
    return _fit_wlsmv(frame, model, ordered=ordered, group=group, group_equal=group_equal,
                      group_partial=group_partial, parameterization=parameterization, estimator=estimator,
                      missing=missing, std_lv=std_lv, weight=weight, ci=ci, max_iter=max_iter, tol=tol)


def _fit_wlsmv(frame, model, *, ordered=None, group=None, group_equal=(), group_partial=(), parameterization="delta",
               estimator="WLSMV", missing="pairwise", std_lv=False, weight=None, ci=0.95, max_iter=200, tol=1e-10,
               data_cache: dict | None = None) -> CFAResult:
    """:func:`fit_wlsmv`; ``data_cache``: a dict owned by a caller that fits several models to the *same*
    ``frame`` (an invariance ladder): the group split, the answer categories, the sample statistics and the
    data fingerprint are computed on the first fit and reused by the others."""
    if parameterization != "delta":
        raise ModelError(f"parameterization={parameterization!r} is not supported; only 'delta' (lavaan's default).")
    est_name = str(estimator).upper()
    if est_name not in ("WLSMV", "DWLS", "WLS"):
        raise ModelError(f"estimator={estimator!r} is not a weighted least squares estimator; use 'WLSMV', "
                         "'DWLS' or 'WLS'.")
    if not isinstance(frame, pd.DataFrame):
        raise DataError("frame= must be a pandas DataFrame.")
    if missing not in ("pairwise", "listwise"):
        raise DataError(f"missing= must be 'pairwise' or 'listwise' for WLSMV; got {missing!r}.")
    data = _wls_data(frame, group, weight, data_cache)
    frame, group_labels, levels = data["frame"], data["labels"], data["levels"]
    m, syntax = _prepare_model(frame, model, ordered=ordered, group_labels=group_labels,
                               group_equal=group_equal, group_partial=group_partial, std_lv=std_lv,
                               levels=levels)
    ov = m.ov_names
    if weight in ov:
        raise ModelError(f"weight= column {weight!r} is also an item of the model.")
    skey = (tuple(ov), missing)
    sample = data["samples"].get(skey)
    if sample is None:
        frames = [f.rename(columns=str) for f in _frames_of(frame, data["codes"], len(group_labels))]
        lv = {v: levels[v] for v in ov}
        # a caller's cache holds the statistics of this one frame: no need to hash the data for the global one
        sample = (wls_sample(frames, ov, missing=missing, levels=lv, weight=weight) if data_cache is None
                  else _wls_sample(frames, ov, missing=missing, levels=lv, weight=weight))
        data["samples"][skey] = sample
    G = m.n_groups
    th_perm = _threshold_order(m, sample)
    od = tuple(reversed(np.triu_indices(m.p, k=1)))
    ng = sample.n
    N = float(sum(ng))
    fg = [n / N for n in ng]
    gam = sample.gamma
    Wfull = [np.linalg.inv(Gm) for Gm in gam] if est_name == "WLS" else None
    wdiag = [1.0 / np.diag(Gm) for Gm in gam]

    def weigh(g, x):
        return Wfull[g] @ x if Wfull is not None else wdiag[g][:, None] * x if x.ndim == 2 else wdiag[g] * x

    theta, converged, it = _gauss_newton(m, sample, th_perm, od, weigh, fg, max_iter=max_iter, tol=tol)
    theta = _reflect(m, theta)
    flags = _sample_flags(sample, group_labels)
    if not converged:
        flags.append(Flag("not_converged", f"DWLS did not converge in {max_iter} iterations.",
                          severity="error", where={"iterations": it}))
    sig, dlt, imp = _delta_and_implied(m, theta, th_perm, od)
    resid = [s - sg for s, sg in zip(sample.s, sig)]
    # lavaan's weights and Gamma for the sandwich, the scaled test and the robust measures: per group
    # W_g = k_g W, Gamma_g = Gamma / k_g with k_g = n_g / (n_g - 1) (the fit itself is unchanged:
    # its objective weighs group g by (n_g - 1) / N); the covariance divides by N - G.
    kg = [n / (n - 1.0) for n in ng]
    w_lav = [k * (W if Wfull is not None else w) for k, W, w in zip(kg, Wfull or wdiag, wdiag)]
    gam_lav = [Gm / k for Gm, k in zip(gam, kg)]
    vcov, Ainv = _wls_vcov(dlt, w_lav, gam_lav, fg, N - G, robust=est_name == "WLSMV")
    fit, base_d = _wls_fit(sample, resid, m.npar, th_perm, weigh, fg, N, G)
    if est_name == "WLSMV" and fit["df"] > 0:
        fit.update(_wls_scaled(fit, dlt, base_d, w_lav, gam_lav, ng, N, G, memo=sample.memo))
        fit.update(_catml_robust(m, theta, sample, imp, dlt, w_lav, gam_lav, Ainv, fg, fit, N, G, flags))
    fit["srmr"] = _wls_srmr(resid, th_perm, fg, m.p)
    fit["srmr_bentler_nomean"] = fit["srmr"]
    fit["wrmr"] = math.sqrt(fit["chi2"] / len(sample.s[0]))
    params = _wls_parameters(m, theta, vcov, ci)
    if syntax:
        from ._defined import defined_rows

        defined = defined_rows(syntax, params, theta, vcov, m.est, ci)
        if len(defined):
            params = pd.concat([params, defined], ignore_index=True)
    flags += _wls_heywood(params, ov, group_labels)
    loadings = params[params["op"] == "=~"].rename(columns={"lhs": "factor", "rhs": "item"}).reset_index(drop=True)
    thr = params[params["op"] == "|"].rename(columns={"lhs": "item", "rhs": "threshold"}).reset_index(drop=True)
    implied, samp = [], []
    ov_index = pd.Index(ov)
    for g in range(G):
        k = len(th_perm[g])
        th_index = sample.memo.get(("th_index", g))
        if th_index is None:
            th_index = sample.memo[("th_index", g)] = pd.Index(sample.th_labels[g])
        implied.append({"sigma": pd.DataFrame(imp[g]["sigma"], index=ov_index, columns=ov_index),
                        "tau": pd.Series(sig[g][:k], index=th_index)})
        samp.append({"cov": sample.corr(g, ov).copy(), "th": pd.Series(sample.s[g][:k], index=th_index)})
    options = {"estimator": est_name, "missing": missing, "parameterization": parameterization, "weight": weight,
               "group": group, "group_equal": list(group_equal), "group_partial": list(group_partial),
               "std_lv": std_lv, "ordered": list(ov), "se": "robust.sem" if est_name == "WLSMV" else "standard",
               "test": "scaled.shifted" if est_name == "WLSMV" else "standard", "ci": ci}
    if data.get("fingerprint") is None:
        data["fingerprint"] = fingerprint_frame(frame)
    prov = Provenance.build(f"cfa_{est_name.lower()}", data_fingerprint=data["fingerprint"], options=options)
    return CFAResult(
        model=syntax or "", estimator=est_name, missing=missing, converged=bool(converged), iterations=int(it),
        n_obs=tuple(int(n) for n in ng), n_groups=G, group_labels=tuple(str(x) for x in group_labels),
        fit=fit, parameters=params, loadings=loadings, thresholds=thr, implied=tuple(implied),
        sample=tuple(samp), vcov=vcov, options=options, provenance=prov, flags=tuple(flags),
        _state=WLSState(model=m, sample=sample, theta=theta, delta=dlt, weights=w_lav, gamma=gam_lav,
                        group_fraction=fg, residuals=resid, objective_weights=Wfull or wdiag, th_perm=th_perm,
                        od=od))


def _wls_data(frame: pd.DataFrame, group: str | None, weight: str | None, cache: dict | None) -> dict:
    """The pieces of ``frame`` that do not depend on the model: rows by group, categories, statistics.

    With ``cache`` (a dict a caller keeps for one frame) they are computed once per
    ``(group, weight)`` and reused.
    """
    key = ("wls_data", group, weight)
    if cache is not None and key in cache:
        return cache[key]
    frame = frame.reset_index(drop=True)
    if weight is not None and weight not in frame.columns:
        raise DataError(f"weight= names {weight!r}, which is not a column of the data.")
    codes, labels = _group_codes(frame, group)
    data = {"frame": frame, "labels": labels, "codes": codes,
            "levels": _observed_levels(frame, exclude=(group, weight)), "samples": {}, "fingerprint": None}
    if cache is not None:
        cache[key] = data
    return data


def _group_codes(frame: pd.DataFrame, group: str | None) -> tuple[np.ndarray | None, list]:
    """Group code of each row and the labels in order of appearance (as lavaan); None for one group."""
    if group is None:
        return None, [1]
    if group not in frame.columns:
        raise DataError(f"group= names {group!r}, which is not a column of the data.")
    gcol = frame[group]
    if gcol.isna().any():
        raise DataError(f"group= column {group!r} has missing values.",
                        [Problem("group_missing", "Group is missing.", file="<DataFrame>", row=int(r) + 1,
                                 column=group) for r in np.flatnonzero(gcol.isna().to_numpy())])
    codes, uniques = pd.factorize(gcol, sort=False)       # labels in order of appearance
    return codes, list(uniques)


def _frames_of(frame: pd.DataFrame, codes: np.ndarray | None, n_groups: int) -> list[pd.DataFrame]:
    if codes is None:
        return [frame]
    return [frame.iloc[np.flatnonzero(codes == k)] for k in range(n_groups)]


def _observed_levels(frame: pd.DataFrame, exclude) -> dict[str, np.ndarray]:
    """Observed answer codes of every column, over all groups."""
    cols = [c for c in frame.columns if c not in exclude]
    try:                                              # numeric columns: one conversion for all
        block = frame[cols].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        block = np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                                 for c in cols]) if cols else np.empty((len(frame), 0))
    levels = {}
    for j, c in enumerate(cols):
        x = block[:, j]
        levels[str(c)] = _levels(x[np.isfinite(x)])[0]       # answer codes counted, not sorted
    return levels


def _threshold_order(m, sample: WLSSample) -> list[np.ndarray]:
    """Per group, the position in the table's threshold order of each sample threshold."""
    pt = m.partable
    grp, op = pt["group"].to_numpy(), pt["op"].to_numpy(dtype=object)
    lhs, rhs = pt["lhs"].to_numpy(dtype=object), pt["rhs"].to_numpy(dtype=object)
    th_perm = []
    for g in range(m.n_groups):
        rows = np.flatnonzero((grp == g + 1) & (op == "|"))
        tl = [f"{lhs[i]}|{rhs[i]}" for i in rows]
        pos = {lab: k for k, lab in enumerate(tl)}
        missing_th = [lab for lab in sample.th_labels[g] if lab not in pos]
        if missing_th or len(tl) != len(sample.th_labels[g]):
            raise ModelError(f"The thresholds of the model do not match the data's categories in group {g + 1} "
                             f"(data: {len(sample.th_labels[g])}, model: {len(tl)}).",
                             diagnostics={"missing": missing_th})
        th_perm.append(np.array([pos[lab] for lab in sample.th_labels[g]]))
    return th_perm


def _gauss_newton(m, sample: WLSSample, th_perm, od, weigh, fg, *, max_iter: int, tol: float):
    """Minimise the (D)WLS discrepancy from the sample polychorics: Gauss-Newton with a structured
    quasi-Newton correction and step halving.

    With residuals ``r = s - sigma(theta)`` and Jacobian ``J``, the Hessian of
    ``F = sum_g f_g r' W r`` (halved) is ``J'WJ + S``, ``S = -sum_i (W r)_i d2 sigma_i``. Plain
    Gauss-Newton drops ``S`` and converges only linearly when the model misfits (large
    residuals: about 24 iterations to 1e-10 on bfi). ``S`` is built up from the secant condition
    ``S s_k = y#_k = -(J_{k+1} - J_k)' W r_{k+1}`` by the update of Dennis, Gay & Welsch (1981,
    NL2SOL), sized down when it overshoots; the step solves ``(J'WJ + S) p = J'W r`` when that
    matrix is positive definite and ``p`` descends, else the Gauss-Newton step is taken. The
    step halving keeps every iteration a descent step, so the minimum is the same.
    """
    G = m.n_groups

    def objective(theta):
        sig, _ = _implied_stats(m, theta, th_perm, od)          # the step search needs no Jacobian
        return sum(f * float(e @ weigh(g, e)) for g, (f, e) in
                   enumerate(zip(fg, [s - sg for s, sg in zip(sample.s, sig)])))

    covs = [sample.corr_array(g, m.ov_names) for g in range(G)]
    ths = []
    for g in range(G):
        t = np.empty(len(th_perm[g]))
        t[th_perm[g]] = sample.s[g][:len(th_perm[g])]
        ths.append(t)
    theta = m.start_values(covs, thresholds=ths)
    converged = False
    fval = objective(theta)
    S = np.zeros((m.npar, m.npar))
    prev = None                                   # (theta, Jacobians, J'W r) of the previous iterate
    last_change = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        sig, dlt, _ = _delta_and_implied(m, theta, th_perm, od)
        wr = [weigh(g, sample.s[g] - sig[g]) for g in range(G)]
        H = np.zeros((m.npar, m.npar))
        gvec = np.zeros(m.npar)
        for g in range(G):
            H += fg[g] * dlt[g].T @ weigh(g, dlt[g])
            gvec += fg[g] * dlt[g].T @ wr[g]
        if prev is not None and last_change < 0.1:      # secant information from near the minimum only
            sk = theta - prev[0]
            y = prev[2] - gvec                        # change of the (halved) gradient
            ys = float(y @ sk)
            if ys > 1e-12 * float(np.linalg.norm(y) * np.linalg.norm(sk)):
                ysharp = -sum(fg[g] * (dlt[g] - prev[1][g]).T @ wr[g] for g in range(G))
                sSs = float(sk @ S @ sk)
                if sSs != 0.0:
                    S *= min(1.0, abs(float(sk @ ysharp)) / abs(sSs))
                v = ysharp - S @ sk
                S += (np.outer(v, y) + np.outer(y, v)) / ys - float(v @ sk) * np.outer(y, y) / ys ** 2
        prev = (theta, dlt, gvec)
        step = None
        if S.any():
            try:
                qn = linalg.cho_solve(linalg.cho_factor(H + S), gvec)
                if np.isfinite(qn).all() and float(qn @ gvec) > 0:
                    step = qn
            except linalg.LinAlgError:
                S[:] = 0.0                            # not positive definite: the Gauss-Newton step, restart S
        if step is None:
            try:
                step = np.linalg.solve(H, gvec)
            except np.linalg.LinAlgError:
                raise ModelError("The model is not identified: the WLS information matrix is singular.",
                                 diagnostics={"iteration": it}) from None
        t = 1.0
        while True:
            cand = theta + t * step
            fc = objective(cand)
            if np.isfinite(fc) and fc <= fval + 1e-14 * abs(fval):
                break
            t *= 0.5
            if t < 1e-10:
                break
        change = last_change = np.max(np.abs(t * step))
        theta, fval = cand, fc if np.isfinite(fc) else fval
        if change < tol or t < 1e-10:
            converged = change < 1e-6
            break
    return theta, converged, it


def _sample_flags(sample: WLSSample, group_labels) -> list[Flag]:
    flags = []
    G = len(sample.poly)
    for i, pr in enumerate(sample.poly):
        for fl in pr.flags:
            if fl.code in ("not_positive_definite", "not_converged", "boundary", "small_pairwise_n", "empty_category"):
                flags.append(Flag(fl.code, (f"Group {group_labels[i]}: " if G > 1 else "") + fl.message,
                                  severity=fl.severity, where=dict(fl.where, group=str(group_labels[i]))))
    return flags


def _wmul(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Weight matrix (full, or its diagonal as a vector) times ``x``."""
    if w.ndim == 2:
        return w @ x
    return w[:, None] * x if x.ndim == 2 else w * x


def _wls_vcov(dlt, w, gam, fg, n_eff: float, *, robust: bool):
    """Covariance of the estimates as lavaan: ``E^-1 [sum_g f_g D' W Gamma W D] E^-1 / (N - G)`` (robust)
    or ``E^-1 / (N - G)``, ``E = sum_g f_g D' W D``, with lavaan's per-group W and Gamma."""
    A = sum(f * D.T @ _wmul(W, D) for f, D, W in zip(fg, dlt, w))
    try:
        Ainv = np.linalg.inv(A)
    except np.linalg.LinAlgError:
        raise ModelError("The model is not identified: the WLS information matrix is singular.") from None
    if not robust:
        return Ainv / n_eff, Ainv
    B = sum(f * _wmul(W, D).T @ Gm @ _wmul(W, D) for f, D, W, Gm in zip(fg, dlt, w, gam))
    return Ainv @ B @ Ainv / n_eff, Ainv


def _wls_fit(sample: WLSSample, resid, npar: int, th_perm, weigh, fg, N: float, G: int):
    """chi2, df, the baseline (free thresholds, zero correlations) and the unscaled indices."""
    from . import fit_indices as fi

    df = sum(len(s) for s in sample.s) - npar
    chi2 = N * sum(f * float(e @ weigh(g, e)) for g, (f, e) in enumerate(zip(fg, resid)))
    fit: dict[str, Any] = {"npar": int(npar), "fmin": chi2 / (2 * N), "chi2": chi2, "df": int(df),
                           "pvalue": float(stats.chi2.sf(chi2, df)) if df > 0 else float("nan")}
    nth = [len(tp) for tp in th_perm]
    off = np.concatenate([[0], np.cumsum(nth)])
    base_d = []
    for g, s in enumerate(sample.s):
        D = np.zeros((len(s), int(off[-1])))
        D[np.arange(nth[g]), off[g] + np.arange(nth[g])] = 1.0
        base_d.append(D)
    # weighted least squares fit of the thresholds-only model (exact for diagonal weights: tau = sample)
    Ab = sum(f * D.T @ weigh(g, D) for g, (f, D) in enumerate(zip(fg, base_d)))
    bb = sum(f * weigh(g, D).T @ s for g, (f, D, s) in enumerate(zip(fg, base_d, sample.s)))
    b_hat = np.linalg.solve(Ab, bb)
    base_resid = [s - D @ b_hat for D, s in zip(base_d, sample.s)]
    chi2_b = N * sum(f * float(e @ weigh(g, e)) for g, (f, e) in enumerate(zip(fg, base_resid)))
    df_b = int(sum(len(s) - len(tp) for tp, s in zip(th_perm, sample.s)))
    fit.update(baseline_chi2=chi2_b, baseline_df=df_b, baseline_pvalue=float(stats.chi2.sf(chi2_b, df_b)))
    fit["cfi"] = fi.cfi(chi2, df, chi2_b, df_b)
    fit["tli"] = fi.tli(chi2, df, chi2_b, df_b)
    # lavaan uses N - G in the RMSEA of (D)WLS fits
    fit["rmsea"] = fi.rmsea(chi2, df, N - G, G)
    fit["rmsea_ci"] = fi.rmsea_ci(chi2, df, N - G, G)
    fit["rmsea_pvalue"] = fi.rmsea_pvalue(chi2, df, N - G, G)
    return fit, base_d


def _wls_scaled(fit, dlt, base_d, w, gam, ng, N: float, G: int, memo: dict | None = None) -> dict:
    """Scaled-shifted statistics of the model and the baseline, and the indices built on them.

    The baseline's scale and shift depend on the sample only (``memo``: the sample's own store, so
    the fits of one data set compute them once)."""
    from . import fit_indices as fi

    df, df_b = fit["df"], fit["baseline_df"]
    _, _, a, shift = _scaled_shifted(dlt, w, gam, ng, df, memo=memo)
    chi2_s = a * fit["chi2"] + shift
    key = ("baseline_scaled", tuple(D.shape for D in base_d), tuple(W.ndim for W in w))
    if memo is not None and key in memo:
        ab, shift_b = memo[key]
    else:
        _, _, ab, shift_b = _scaled_shifted(base_d, w, gam, ng, df_b, memo=memo)
        if memo is not None:
            memo[key] = (ab, shift_b)
    chi2_bs = ab * fit["baseline_chi2"] + shift_b
    return dict(chi2_scaled=chi2_s, pvalue_scaled=float(stats.chi2.sf(chi2_s, df)), scaling_factor=1.0 / a,
                shift=shift, baseline_chi2_scaled=chi2_bs, baseline_scaling_factor=1.0 / ab, baseline_shift=shift_b,
                cfi_scaled=fi.cfi(chi2_s, df, chi2_bs, df_b), tli_scaled=fi.tli(chi2_s, df, chi2_bs, df_b),
                rmsea_scaled=fi.rmsea(chi2_s, df, N - G, G), rmsea_ci_scaled=fi.rmsea_ci(chi2_s, df, N - G, G),
                rmsea_pvalue_scaled=fi.rmsea_pvalue(chi2_s, df, N - G, G))


def _catml_robust(m, theta, sample: WLSSample, imp, dlt, w, gam, Ainv, fg, fit, N: float, G: int,
                  flags: list[Flag]) -> dict:
    """Robust CFI/TLI/RMSEA of a categorical fit: the cat-ML approach of Savalei (2021), as lavaan 0.6-14.

    The DWLS estimates are evaluated by the normal-theory ML discrepancy between the polychoric
    and the implied correlation matrices (``XX3``, on ``df3`` degrees of freedom: correlations
    minus the free parameters other than thresholds and means); its scaling factor is
    ``c3 = tr(U' V U Gamma) / df3`` with ``V`` the ML weight matrix of correlations at the
    implied matrix and ``U = I - Delta E^-1 Delta' W`` (DWLS projection). The baseline uses
    ``Sigma = I``: ``XX3_null = -sum_g N_g log|R_g|``, ``c3_null = sum_g tr(Gamma_g) / f_g / df3_null``.
    """
    from . import fit_indices as fi

    nan = float("nan")
    keys = ("cfi_robust", "tli_robust", "rmsea_robust", "rmsea_ci_robust", "rmsea_pvalue_robust")
    unavailable = {k: ((nan, nan) if k == "rmsea_ci_robust" else nan) for k in keys}
    pt = m.partable
    if ((pt["free"] > 0) & (pt["op"] == "~*~")).any():
        # free scale factors (thresholds equal across groups): lavaan 0.6-14 reports NA here too
        flags.append(Flag("robust_fit_unavailable", "cfi_robust, tli_robust and rmsea_robust (cat-ML) are not "
                          "defined with free scale factors (equal thresholds across groups); as lavaan, not "
                          "computed.", "info"))
        return unavailable
    p = m.p
    pstar = p * (p - 1) // 2
    a, b = np.triu_indices(p, k=1)                 # the order of the sample correlations
    xx3 = xx3_null = kbs = 0.0
    rows = []
    for g in range(G):
        R = sample.corr_array(g, m.ov_names)
        if np.linalg.eigvalsh(R).min() < np.sqrt(np.finfo(float).eps):
            flags.append(Flag("robust_fit_unavailable", "cfi_robust, tli_robust and rmsea_robust need positive "
                              "definite polychoric matrices (lavaan's cat-ML); not computed.", "info"))
            return unavailable
        S = imp[g]["sigma"]
        Si = np.linalg.inv(S)
        n_g = sample.n[g]
        xx3 += n_g * (np.linalg.slogdet(S)[1] - np.linalg.slogdet(R)[1] + np.sum(R * Si) - p)
        xx3_null += -n_g * np.linalg.slogdet(R)[1]
        k = len(sample.s[g]) - pstar
        V = Si[np.ix_(a, a)] * Si[np.ix_(b, b)] + Si[np.ix_(a, b)] * Si[np.ix_(b, a)]
        Wc = w[g][k:] if w[g].ndim == 1 else np.diag(w[g])[k:]
        Dc = dlt[g][k:]
        Gc = gam[g][k:, k:]
        rows.append((fg[g], V, Wc, Dc, Gc))
        kbs += np.trace(Gc) / fg[g]
    npar3 = len(np.unique(m.partable.loc[(m.partable["free"] > 0) & ~m.partable["op"].isin(["|", "~1"]), "free"]))
    df3 = G * pstar - npar3
    df3_null = G * pstar
    # ks = tr(U' V U Gamma) over the block-diagonal stack, U = I - Delta M, M = E^-1 Delta' W (f_g-weighted).
    # Expanded in parameter space (V, Gamma symmetric, no k x k product):
    # tr(V Gamma) - 2 tr(V Delta M Gamma) + tr((Delta' V Delta)(M Gamma M'))
    WD = [f * Wc[:, None] * Dc for f, _, Wc, Dc, _ in rows]
    Dall = np.vstack([Dc for _, _, _, Dc, _ in rows])
    M = Ainv @ np.vstack(WD).T                                      # (q, k)
    sizes = np.cumsum([0] + [Dc.shape[0] for _, _, _, Dc, _ in rows])
    VD = np.empty_like(Dall)
    MG = np.empty_like(M)
    tr_vg = 0.0
    for g, (f, V, _, Dc, Gc) in enumerate(rows):
        sl = slice(sizes[g], sizes[g + 1])
        tr_vg += float(np.sum(V * Gc))                             # (f V) . (Gamma / f)
        VD[sl] = f * (V @ Dc)
        MG[:, sl] = (M[:, sl] @ Gc) / f
    ks = tr_vg - 2.0 * float(np.sum(VD * MG.T)) + float(np.sum((Dall.T @ VD) * (MG @ M.T).T))
    c3 = ks / df3 if df3 > 0 else nan
    c3n = kbs / df3_null
    xx3s = xx3 / c3
    df, df_b = fit["df"], fit["baseline_df"]
    n_eff = N - G
    return dict(cfi_robust=fi.cfi(xx3, df, xx3_null, df_b, c3, c3n), tli_robust=fi.tli(xx3, df, xx3_null, df_b, c3, c3n),
                rmsea_robust=fi.rmsea(xx3, df3, n_eff, G, c_hat=c3),
                rmsea_ci_robust=fi.rmsea_ci(xx3s, df3, n_eff, G, c_hat=c3),
                rmsea_pvalue_robust=fi.rmsea_pvalue(xx3s, df3, n_eff, G, c_hat=c3))


def _wls_srmr(resid, th_perm, fg, p: int) -> float:
    """SRMR on correlations (lavaan's for categorical data: thresholds excluded)."""
    srmr_g = [math.sqrt(float(np.sum(e[len(tp):] ** 2)) / (p * (p + 1) / 2)) for e, tp in zip(resid, th_perm)]
    return float(np.dot(srmr_g, fg)) if len(srmr_g) > 1 else srmr_g[0]


def _wls_parameters(m, theta, vcov, ci: float) -> pd.DataFrame:
    pt = m.partable
    se_free = np.sqrt(np.maximum(np.diag(vcov), 0.0))
    est_rows = m.est(theta)
    free_idx = pt["free"].to_numpy().astype(int) - 1
    se_rows = np.where(free_idx >= 0, se_free[np.maximum(free_idx, 0)], 0.0)
    est_rows, std_lv_col, std_all_col = _std_columns(m, theta, pt, est_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(free_idx >= 0, est_rows / se_rows, np.nan)
    pval = 2 * stats.norm.sf(np.abs(z))
    q = stats.norm.ppf(0.5 + ci / 2)
    return pd.DataFrame({
        "lhs": pt["lhs"].to_numpy(), "op": pt["op"].to_numpy(), "rhs": pt["rhs"].to_numpy(),
        "group": pt["group"].to_numpy(), "label": pt["label"].to_numpy(), "free": pt["free"].to_numpy(),
        "est": est_rows, "se": se_rows, "z": z, "pvalue": pval,
        "ci_low": est_rows - q * se_rows, "ci_high": est_rows + q * se_rows,
        "std_lv": std_lv_col, "std_all": std_all_col,
    })


def _wls_heywood(params: pd.DataFrame, ov, group_labels) -> list[Flag]:
    """Implied residual variances of latent responses at or below zero."""
    flags = []
    G = len(group_labels)
    lhs = params["lhs"].to_numpy(dtype=object)
    var = ((params["op"].to_numpy(dtype=object) == "~~") & (lhs == params["rhs"].to_numpy(dtype=object))
           & np.isin(lhs, list(ov)) & (params["est"].to_numpy(dtype=float) <= 0))
    grp = params["group"].to_numpy()
    for g in range(G):
        bad = [str(v) for v in lhs[var & (grp == g + 1)]]
        if bad:
            flags.append(Flag("heywood", f"Negative implied residual variance of {bad}"
                              + (f" in group {group_labels[g]}" if G > 1 else "") + ".", severity="warning",
                              where={"items": bad, "group": str(group_labels[g])}))
    return flags


def difference_test(restricted: CFAResult, free: CFAResult) -> dict[str, Any]:
    """Scaled-shifted chi-square difference test of two nested WLSMV fits (Satorra, 2000).

    Parameters
    ----------
    restricted : CFAResult
        The more constrained model (e.g. equal thresholds and loadings), fitted by
        :func:`fit_wlsmv` on the same data and items.
    free : CFAResult
        The less constrained model (e.g. configural).

    Returns
    -------
    dict
        ``delta_chi2`` (scaled-shifted), ``delta_df``, ``p_value``, ``a``, ``b``
        (scale and shift), ``delta_chi2_unscaled``, ``method``.

    Notes
    -----
    As ``lavaan::lavTestLRT`` for WLSMV (``method="satorra.2000"``, scaled-shifted,
    ``A.method="delta"``): with ``Delta1``, ``Delta0`` the Jacobians of both models at
    their estimates, ``A`` spans the orthogonal complement of ``H = Delta1^+ Delta0``;
    with ``P = sum_g f_g Delta1' W Delta1`` and
    ``U = W Delta1 P^-1 A' (A P^-1 A')^- A P^-1 Delta1' W``,
    ``a = sqrt(m / tr((U Gamma)^2))``, ``b = m - a tr(U Gamma)``,
    ``delta_chi2 = a (T0 - T1) + b`` on ``m = df0 - df1`` degrees of freedom, where T
    are the unscaled statistics. Checked against lavaan 0.6-14 (two-group bfi models).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cips_stats.factor.wls import fit_wlsmv, difference_test
    >>> rng = np.random.default_rng(3)
    >>> f = rng.standard_normal((1200, 1))
    >>> y = np.digitize(f @ [[0.8, 0.7, 0.6, 0.7]] + rng.standard_normal((1200, 4)) * 0.65, [-1, 0, 1]) + 1
    >>> df = pd.DataFrame(y, columns=list("abcd")).assign(g=np.repeat([1, 2], 600))
    >>> m1 = fit_wlsmv(df, "f =~ a + b + c + d", group="g")
    >>> m0 = fit_wlsmv(df, "f =~ a + b + c + d", group="g", group_equal=("thresholds", "loadings"))
    >>> out = difference_test(m0, m1)
    >>> out["delta_df"], bool(out["p_value"] > 0.001)
    (10, True)
    """
    from scipy import linalg

    s0, s1 = getattr(restricted, "_state", None), getattr(free, "_state", None)
    if not isinstance(s0, WLSState) or not isinstance(s1, WLSState):
        raise ModelError("difference_test needs two results of fit_wlsmv (WLSMV).")
    if len(s0.delta) != len(s1.delta) or any(a.shape[0] != b.shape[0] for a, b in zip(s0.delta, s1.delta)):
        raise ModelError("The two models were not fitted to the same sample statistics.")
    m = int(restricted.fit["df"] - free.fit["df"])
    if m <= 0:
        raise ModelError(f"The restricted model must have more degrees of freedom than the free one "
                         f"(got {restricted.fit['df']} and {free.fit['df']}).")
    D1 = np.vstack(s1.delta)
    D0 = np.vstack(s0.delta)
    # H = D1^+ D0 by QR (D1 has full column rank in an identified model; the SVD of pinv is the slow part)
    Q, R = np.linalg.qr(D1)
    rd = np.abs(np.diag(R))
    if rd.min() > 1e-10 * rd.max():
        H = linalg.solve_triangular(R, Q.T @ D0)
    else:
        H = np.linalg.pinv(D1) @ D0
    A = linalg.null_space(H.T).T                        # rows: orthogonal complement of span(H)
    fg = s1.group_fraction
    w = s1.weights
    diag_w = w[0].ndim == 1

    def wmul(g, x):
        return w[g][:, None] * x if diag_w else w[g] @ x

    P = sum(f * D.T @ wmul(g, D) for g, (f, D) in enumerate(zip(fg, s1.delta)))
    Pinv = np.linalg.inv(P)
    APA = A @ Pinv @ A.T
    keep = ~((np.abs(APA.sum(axis=0)) < np.sqrt(np.finfo(float).eps))
             & (np.abs(APA.sum(axis=1)) < np.sqrt(np.finfo(float).eps)))
    A = A[keep]
    PAAPAAP = Pinv @ A.T @ np.linalg.pinv(A @ Pinv @ A.T) @ A @ Pinv
    tr1 = 0.0
    blocks = []
    for g, (f, D, G) in enumerate(zip(fg, s1.delta, s1.gamma)):
        WD = wmul(g, D)
        blocks.append(WD)
        # tr(W G W D PAAPAAP D') = tr(PAAPAAP D' W G W D)
        tr1 += f * float(np.sum(PAAPAAP * (WD.T @ G @ WD).T))
    # tr((U Gamma_f)^2) with U = V Pi PAAPAAP Pi' V, Gamma_f = blockdiag(f_g Gamma_g):
    # U Gamma_f = (V Pi) PAAPAAP (Pi' V Gamma_f);  tr((XY)^2) = tr((YX)^2) with YX = PAAPAAP (Pi' V Gamma_f V Pi)
    inner = sum(f * WD.T @ G @ WD for f, WD, G in zip(fg, blocks, s1.gamma))
    M = PAAPAAP @ inner
    tr2 = float(np.sum(M * M.T))
    a = math.sqrt(m / tr2)
    b = m - a * tr1
    t_diff = restricted.fit["chi2"] - free.fit["chi2"]
    stat = t_diff * a + b
    return {"delta_chi2": stat, "delta_df": m, "p_value": float(stats.chi2.sf(stat, m)), "a": a, "b": b,
            "delta_chi2_unscaled": t_diff, "method": "satorra.2000 (scaled-shifted)"}
