"""Cronbach's alpha: the closed-form kernel over a stack of covariance matrices, and one scale.

The kernel (:func:`_alpha_kernel`) works on a (cells, p, p) stack of covariance
matrices and knows nothing about surveys; :func:`cronbach_alpha` applies it to one
scale, :func:`cips_stats.reliability.by_cell` to every cell at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special as _sp
from scipy import stats as _st

from .. import thresholds as _th
from ..errors import (Flag, LowReliabilityWarning, NumericalWarning, SmallCellWarning, check_choice, check_count,
                      check_level, emit)
from ..results import Provenance, Result, resolve_seed
from ._checks import _prepare_scale
from ._moments import _bootstrap_statistic, _covariances, _item_total, _percentile_interval, _scale_moments

CI_METHODS = ("feldt", "duhachek", "bootstrap")
MISSING = ("pairwise", "listwise")

#: Warning class of each flag code that is emitted (the others are attached only).
WARNING_OF = {
    "alpha_poor": LowReliabilityWarning, "alpha_questionable": LowReliabilityWarning,
    "omega_poor": LowReliabilityWarning, "omega_questionable": LowReliabilityWarning,
    "small_n": SmallCellWarning, "n_below_items": SmallCellWarning,
    "non_psd": NumericalWarning, "identical_items": NumericalWarning, "heywood": NumericalWarning,
}


def _emit_all(flags: list[Flag]) -> tuple[Flag, ...]:
    """Emit the matching CipsWarning for every flag that has one; return the flags."""
    for f in flags:
        if f.code in WARNING_OF:
            emit(f, WARNING_OF[f.code], stacklevel=4)
    return tuple(flags)


def _feldt(alpha: np.ndarray, n: np.ndarray, p: np.ndarray | int, level: float) -> tuple[np.ndarray, np.ndarray]:
    a = 1.0 - level
    df1 = n - 1.0
    df2 = (n - 1.0) * (np.asarray(p, dtype=float) - 1.0)
    with np.errstate(invalid="ignore"):
        ok = (df1 > 0) & (df2 > 0) & np.isfinite(alpha)
        df1s, df2s = np.where(ok, df1, 1.0), np.where(ok, df2, 1.0)
        # F quantiles through the special function (scipy.stats.f.ppf(q, d1, d2) == fdtri(d1, d2, q)),
        # once per distinct pair of degrees of freedom (cells share their n)
        d1f, d2f = np.broadcast_arrays(df1s, df2s)
        key = d1f + 1j * d2f                                  # one sortable key per pair
        uq, inv = np.unique(key.reshape(-1), return_inverse=True)
        inv = inv.reshape(np.shape(key))
        qs = _sp.fdtri(uq.real[:, None], uq.imag[:, None], np.array([1.0 - a / 2.0, a / 2.0]))
        lo = 1.0 - (1.0 - alpha) * qs[inv, 0]
        hi = 1.0 - (1.0 - alpha) * qs[inv, 1]
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def _pivots_prove_pd(cov: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """True where the LDL' pivots of a (C, p, p) stack are all positive (the matrix is positive definite).

    Gaussian elimination without pivoting, vectorised over the stack (a loop over the p
    columns only).  When every computed pivot is positive the computed factors are those of
    ``A + E`` with ``|E| <= c p eps max(diag A)`` (Higham 2002, Thm 10.5: with D > 0,
    ``|L||D||L'|`` is bounded by the diagonal), so the smallest eigenvalue of A is at least
    about ``-p eps`` relative to the largest: such a matrix can never be flagged ``non_psd``
    (threshold -1e-10), and only the others need an eigen-decomposition.  Cells where ``ok``
    is False are reported False.
    """
    C, p, _ = cov.shape
    A = np.where(ok[:, None, None], cov, np.eye(p))
    good = ok.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(p):
            piv = A[:, j, j].copy()
            good &= piv > 0.0
            if j + 1 < p:
                pj = np.where(piv > 0.0, piv, 1.0)
                L = A[:, j + 1:, j] / pj[:, None]
                A[:, j + 1:, j + 1:] -= L[:, :, None] * A[:, j, j + 1:][:, None, :]
    return good


def _alpha_kernel(cov: np.ndarray, n: np.ndarray, level: float, ci_method: str) -> dict[str, np.ndarray]:
    """Alpha, standardised alpha, mean r, Duhachek SE, CI and item statistics over a (C, p, p) stack."""
    C, p, _ = cov.shape
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.diagonal(cov, axis1=1, axis2=2)
        tr = d.sum(axis=1)
        rows = cov.sum(axis=2)
        tot = rows.sum(axis=1)
        k = p / (p - 1.0) if p > 1 else np.nan
        out["alpha"] = k * (1.0 - tr / tot)
        sd = np.sqrt(d)
        R = cov / (sd[:, :, None] * sd[:, None, :])
        sumR = R.sum(axis=(1, 2))
        out["std_alpha"] = k * (1.0 - p / sumR)
        out["mean_r"] = (sumR - p) / (p * (p - 1.0)) if p > 1 else np.full(C, np.nan)
        # Duhachek & Iacobucci (2004) asymptotic variance, as psych::alpha's "ase"
        trCC = (cov * cov).sum(axis=(1, 2))
        sumCC = (rows * rows).sum(axis=1)
        Q = (2.0 * p * p / ((p - 1.0) ** 2 * tot**3)) * (tot * (trCC + tr**2) - 2.0 * tr * sumCC)
        out["ase"] = np.sqrt(Q / n)
        # item table
        sum_drop = tot[:, None] - 2.0 * rows + d
        tr_drop = tr[:, None] - d
        out["r_drop"] = (rows - d) / np.sqrt(d * sum_drop)
        if p > 2:
            kd = (p - 1.0) / (p - 2.0)
            out["alpha_if_dropped"] = kd * (1.0 - tr_drop / sum_drop)
            Rrows = R.sum(axis=2)
            sumR_drop = sumR[:, None] - 2.0 * Rrows + 1.0
            out["std_alpha_if_dropped"] = kd * (1.0 - (p - 1.0) / sumR_drop)
        else:
            out["alpha_if_dropped"] = np.full((C, p), np.nan)
            out["std_alpha_if_dropped"] = np.full((C, p), np.nan)
        # non-positive-semidefinite pairwise matrices: eigenvalues of the matrices whose
        # LDL' pivots do not prove them positive definite (see _pivots_prove_pd)
        okc = np.isfinite(cov).all(axis=(1, 2))
        mineig = np.full(C, np.nan)
        cand = okc & ~_pivots_prove_pd(cov, okc)
        if cand.any():
            ev = np.linalg.eigvalsh(cov[cand])
            mineig[cand] = ev[:, 0] / np.maximum(np.abs(ev[:, -1]), 1e-300)
        out["min_eig_rel"] = mineig                   # NaN: not finite, or proven positive definite
        out["non_psd"] = np.isfinite(mineig) & (mineig < -1e-10)
    if ci_method == "feldt":
        out["ci_low"], out["ci_high"] = _feldt(out["alpha"], n, p, level)
    elif ci_method == "duhachek":
        z = _st.norm.ppf(0.5 + level / 2.0)
        out["ci_low"] = out["alpha"] - z * out["ase"]
        out["ci_high"] = out["alpha"] + z * out["ase"]
    return out



# ============================================================================ result
class _OneScale:
    """What the one-scale results of alpha and omega share: ``estimate`` and the old ``ci`` pair."""

    main: ClassVar[str] = ""

    @property
    def estimate(self) -> float:
        """The reliability coefficient itself (``alpha`` or ``omega``)."""
        return getattr(self, self.main)

    @property
    def ci(self) -> tuple[float, float]:
        """Deprecated: ``(ci_low, ci_high)``; use the two attributes."""
        warnings.warn(f"{type(self).__name__}.ci is deprecated; use .ci_low and .ci_high (ci= is the level).",
                      DeprecationWarning, stacklevel=2)
        return (self.ci_low, self.ci_high)        # type: ignore[attr-defined]


@dataclass(frozen=True)
class AlphaResult(_OneScale, Result):
    """Cronbach's alpha of one scale.

    Attributes
    ----------
    alpha : float
        Raw alpha, from the item covariance matrix.
    std_alpha : float
        Standardised alpha, from the item correlation matrix.
    ci_low, ci_high : float
        Confidence limits for ``alpha`` at level ``ci_level``.
    ci_level : float
        The confidence level (the ``ci=`` argument).
    ci_method : str
        ``"feldt"``, ``"duhachek"`` or ``"bootstrap"``.
    se : float
        Duhachek & Iacobucci (2004) asymptotic standard error of ``alpha``.
    n : int
        Respondents used (answering at least one item; listwise: all items).
    n_eff : float
        Kish effective sample size (equal to ``n`` without weights); CIs use it.
    n_items : int
        Number of items.
    mean_r : float
        Average inter-item correlation.
    total_mean, total_sd : float
        Mean and standard deviation of the respondents' scale scores (mean of answered items).
    missing : str
        ``"pairwise"`` or ``"listwise"``.
    weighted : bool
        Whether design weights were used.
    items : pandas.DataFrame
        One row per item: ``item``, ``n``, ``mean``, ``sd``, ``missing_share``, ``raw_r``
        (item-total r), ``r_drop`` (corrected item-total r), ``alpha_if_dropped``,
        ``std_alpha_if_dropped``, ``reversed``.
    ordinal_alpha : float or None
        Ordinal alpha from the polychoric correlations (``ordinal=True``).
    reversed : tuple of str
        Items reverse-coded by ``check_keys=True`` (empty otherwise).
    """

    alpha: float
    std_alpha: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    se: float
    n: int
    n_eff: float
    n_items: int
    mean_r: float
    total_mean: float
    total_sd: float
    missing: str
    weighted: bool
    items: pd.DataFrame
    ordinal_alpha: float | None = None
    reversed: tuple[str, ...] = ()

    main: ClassVar[str] = "alpha"


# ============================================================================ one scale
def _reverse_keys(X: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """psych's ``check.keys``: items loading negatively on the first principal component.

    The component is the leading eigenvector of the (pairwise) correlation matrix,
    signed so that its loadings sum to a positive number (as ``psych::principal``).
    Returns a boolean mask of the items to reverse.
    """
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        R = cov / np.outer(sd, sd)
    if not np.isfinite(R).all():
        return np.zeros(X.shape[1], dtype=bool)
    _, vec = np.linalg.eigh(R)
    v = vec[:, -1]
    if v.sum() < 0:
        v = -v
    return v < 0


def _identical_pairs(cov: np.ndarray, names: list[str]) -> list[tuple[str, str]]:
    """Pairs of items whose correlation is 1 (duplicated or affinely identical items)."""
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        R = cov / np.outer(sd, sd)
    j, k = np.nonzero(np.triu(np.abs(R) >= 1.0 - 1e-10, 1))
    return [(names[a], names[b]) for a, b in zip(j, k)]


def _apply_check_keys(X: np.ndarray, df: pd.DataFrame, w: np.ndarray | None, mom: dict, cov: np.ndarray,
                      names: list[str]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict, np.ndarray, list[Flag]]:
    """Reverse the items that load negatively on the first component (``max + min - x``); recompute."""
    rev = _reverse_keys(X, cov[0])
    if not rev.any():
        return rev, X, df, mom, cov, []
    lo, hi = float(np.nanmin(X)), float(np.nanmax(X))
    X = X.copy()
    X[:, rev] = hi + lo - X[:, rev]
    df = df.copy()
    for j in np.flatnonzero(rev):
        df[df.columns[j]] = hi + lo - pd.to_numeric(df.iloc[:, j], errors="coerce")
    mom = _scale_moments(X, w)
    which = [names[j] for j in np.flatnonzero(rev)]
    flag = Flag("keys_reversed", f"Items {which} loaded negatively on the first principal component and were "
                f"reversed ({hi + lo:g} - x).", "caution", {"items": which})
    return rev, X, df, mom, _covariances(mom), [flag]


def _bootstrap_alpha(X: np.ndarray, w: np.ndarray | None, n: int, level: float, n_boot: Any,
                     seed: int) -> tuple[tuple[float, float], list[Flag]]:
    """Percentile bootstrap interval of alpha over respondents (resampling counts, chunked)."""
    B = check_count(n_boot, "n_boot", 100)
    reps = _bootstrap_statistic(
        X, w, B, seed, lambda cb: _alpha_kernel(cb, np.full(cb.shape[0], float(n)), level, "none")["alpha"])
    bad = ~np.isfinite(reps)
    flags = []
    if bad.any():
        flags.append(Flag("bootstrap_undefined", f"{int(bad.sum())} of {B} bootstrap resamples gave no "
                          "alpha (an item without variance in the resample); they were left out.", "caution"))
    return _percentile_interval(reps[~bad], level), flags


def _alpha_flags(alpha: float, n: int, p: int, non_psd: bool, identical: list[tuple[str, str]]) -> list[Flag]:
    flags: list[Flag] = []
    if p == 2:
        flags.append(Flag("two_items", "With two items, alpha if item dropped is undefined (a single item).",
                          "info"))
    if n <= p:
        flags.append(Flag("n_below_items", f"Only {n} respondents for {p} items: the covariance matrix is "
                          "singular and alpha is unstable.", "warning"))
    elif n < _th.MIN_N_RELIABILITY:
        flags.append(Flag("small_n", f"Only {n} respondents (< {_th.MIN_N_RELIABILITY}): alpha is unstable.",
                          "caution"))
    if non_psd:
        flags.append(Flag("non_psd", "The pairwise covariance matrix is not positive semi-definite.", "caution"))
    if identical:
        flags.append(Flag("identical_items", f"Items correlate perfectly ({identical}): they are copies of one "
                          "another, so alpha (and its interval) reflect duplication, not reliability.",
                          "warning", {"pairs": [list(pq) for pq in identical]}))
    flags.extend(_th.judge_reliability(alpha, statistic="alpha"))
    return flags


def _ordinal_part(df: pd.DataFrame, missing: str, weighted: bool) -> tuple[float, list[Flag]]:
    from ._omega import _ordinal_alpha, _polychoric

    rho, flags = _polychoric(df, missing)
    value = _ordinal_alpha(rho)
    if weighted:
        flags.append(Flag("ordinal_unweighted", "Ordinal alpha ignores the weights (polychoric "
                          "correlations are unweighted).", "info"))
    if not np.isfinite(value):
        flags.append(Flag("ordinal_undefined", "Ordinal alpha is undefined: some polychoric correlations "
                          "could not be estimated (see the polychoric flags).", "warning"))
    return value, flags


def cronbach_alpha(items: Any, *, ci: float = 0.95, ci_method: str = "feldt", missing: str = "pairwise",
                   weight: Any = None, n_boot: int = 2000, seed: int | None = None,
                   ordinal: bool = False, check_keys: bool = False) -> AlphaResult:
    """Cronbach's alpha of one scale, with a confidence interval and the item table.

    Parameters
    ----------
    items : pandas.DataFrame or 2-D array
        Respondents in rows, items in columns (numeric codes; NaN = missing).
        Reverse-keyed items must already be recoded (or use ``check_keys=True``).
    ci : float, default 0.95
        Confidence level.
    ci_method : {"feldt", "duhachek", "bootstrap"}, default "feldt"
        Feldt (1965) F-distribution interval; Duhachek & Iacobucci (2004)
        normal interval ``alpha -/+ z * ase``; or a percentile bootstrap over
        respondents (``n_boot`` resamples).
    missing : {"pairwise", "listwise"}, default "pairwise"
        Pairwise: each covariance from the respondents answering both items (as
        ``psych::alpha``); listwise: only respondents answering every item (as
        ``survey::svycralpha``).  The default stays pairwise with weights too.
    weight : str, array-like, Design or None
        Sampling (design) weights: a column of ``items``, one value per row, or a
        design whose weight column is in ``items``.  Weighted covariances give
        design-weighted alpha; CIs then use the Kish effective sample size.
    n_boot : int, default 2000
        Bootstrap resamples (``ci_method="bootstrap"``).
    seed : int, optional
        Seed of the bootstrap; ``None`` draws one, recorded in ``provenance.seed``.
    ordinal : bool, default False
        Also compute ordinal alpha (Zumbo, Gadermann & Zeisser 2007) from the polychoric
        correlation matrix (stored in ``ordinal_alpha``).
    check_keys : bool, default False
        As ``psych::alpha(check.keys = TRUE)``: items that load negatively on the first
        principal component are reversed (``max + min - x``, with the smallest and
        largest answer over all items) before alpha is computed; their names are in
        ``reversed`` and a ``keys_reversed`` flag.

    Returns
    -------
    AlphaResult
        ``alpha``, ``ci_low``/``ci_high``, ``items`` and the flags (low alpha, small n,
        identical items...), each flag also emitted as its :class:`~cips_stats.CipsWarning`.

    Raises
    ------
    DataError
        Fewer than two items, an item without answers or without variance, fewer
        than two respondents, non-numeric or infinite answers, bad weights.
    CipsError
        Bad arguments (``ci`` outside (0, 1), an unknown method, ``n_boot`` < 100).

    Notes
    -----
    With ``C`` the item covariance matrix, ``R`` the correlation matrix and ``p``
    items: ``alpha = p/(p-1) (1 - tr C / 1'C1)``, ``std_alpha = p/(p-1) (1 - p / 1'R1)``,
    ``mean_r = (1'R1 - p) / (p(p-1))``; corrected item-total correlation
    ``r_drop_i = (C1 - C_ii)_i / sqrt(C_ii 1'C_{-i}1)``; item-total ``raw_r`` is the
    correlation of the item with the respondent's mean of answered items. Feldt:
    ``1 - (1 - alpha) F_{1-a/2}(n-1, (n-1)(p-1))`` (lower); Duhachek's ``ase =
    sqrt(Q/n)``. All match ``psych::alpha`` 2.2.9 on ``psych::bfi`` to 1e-8 (pairwise and
    listwise, and with ``check.keys = TRUE``), and weighted listwise alpha matches
    ``survey::svycralpha``, which always deletes listwise; our weighted default is
    pairwise, like the unweighted one. Below 3 items ``alpha_if_dropped`` is undefined
    (NaN, flagged). Items that correlate perfectly are flagged ``identical_items``:
    alpha then approaches 1 with a degenerate interval.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(7)
    >>> x = pd.DataFrame(rng.integers(1, 6, size=(50, 1)) + rng.integers(0, 2, size=(50, 3)),
    ...                  columns=["a", "b", "c"])
    >>> res = cs.reliability.cronbach_alpha(x, ci_method="duhachek")
    >>> round(res.alpha, 4), res.n, res.items["item"].tolist()
    (0.963, 50, ['a', 'b', 'c'])
    >>> # psych::alpha(x, check.keys = TRUE): the reversed item is named
    >>> cs.reliability.cronbach_alpha(x.assign(c=6 - x["c"]), check_keys=True).reversed
    ('c',)
    """
    level = check_level(ci, "ci")
    check_choice(ci_method, CI_METHODS, "ci_method")
    check_choice(missing, MISSING, "missing")
    seed_used = resolve_seed(seed) if ci_method == "bootstrap" else seed
    df, X, w, nrows = _prepare_scale(items, weight, missing)
    names = [str(c) for c in df.columns]
    p = X.shape[1]
    mom = _scale_moments(X, w)
    cov = _covariances(mom)
    flags: list[Flag] = []
    rev = np.zeros(p, dtype=bool)
    if check_keys:
        rev, X, df, mom, cov, kflags = _apply_check_keys(X, df, w, mom, cov, names)
        flags.extend(kflags)
    it = _item_total(mom)
    n = int(mom["any_n"][0])
    n_eff = float(it["n_eff"][0]) if w is not None else float(n)
    k = _alpha_kernel(cov, np.array([n_eff]), level, ci_method if ci_method != "bootstrap" else "none")
    if ci_method == "bootstrap":
        (lo_ci, hi_ci), bflags = _bootstrap_alpha(X, w, n, level, n_boot, seed_used)
        flags.extend(bflags)
    else:
        lo_ci, hi_ci = float(k["ci_low"][0]), float(k["ci_high"][0])
    alpha = float(k["alpha"][0])
    flags.extend(_alpha_flags(alpha, n, p, bool(k["non_psd"][0]), _identical_pairs(cov[0], names)))
    ord_alpha = None
    if ordinal:
        ord_alpha, oflags = _ordinal_part(df, missing, w is not None)
        flags.extend(oflags)
    table = _item_table(names, it, k, nrows, rev)
    prov = Provenance.build("cronbach_alpha", data=df, seed=seed_used,
                            options={"ci": level, "ci_method": ci_method, "missing": missing,
                                     "weight": _weight_label(weight),
                                     "n_boot": n_boot if ci_method == "bootstrap" else None, "ordinal": ordinal,
                                     "check_keys": check_keys})
    return AlphaResult(alpha=alpha, std_alpha=float(k["std_alpha"][0]), ci_low=float(lo_ci), ci_high=float(hi_ci),
                       ci_level=level, ci_method=ci_method, se=float(k["ase"][0]), n=n, n_eff=n_eff, n_items=p,
                       mean_r=float(k["mean_r"][0]), total_mean=float(it["total_mean"][0]),
                       total_sd=float(it["total_sd"][0]), missing=missing, weighted=w is not None,
                       items=table, ordinal_alpha=ord_alpha, reversed=tuple(names[j] for j in np.flatnonzero(rev)),
                       provenance=prov, flags=_emit_all(flags))


def _item_table(names: list[str], it: dict, k: dict, nrows: int, rev: np.ndarray) -> pd.DataFrame:
    """The item table of one scale (first and only cell of the kernels' output)."""
    return pd.DataFrame({
        "item": names, "n": it["n_item"][0].astype(int), "mean": it["mean"][0], "sd": it["sd"][0],
        "missing_share": 1.0 - it["n_item"][0] / nrows if nrows else np.nan, "raw_r": it["raw_r"][0],
        "r_drop": k["r_drop"][0], "alpha_if_dropped": k["alpha_if_dropped"][0],
        "std_alpha_if_dropped": k["std_alpha_if_dropped"][0], "reversed": rev,
    })


def _weight_label(weight: Any) -> Any:
    """How the weight is recorded in provenance: its column name, ``"array"`` or None."""
    if isinstance(weight, str) or weight is None or weight is False:
        return weight or None
    if hasattr(weight, "weight") and not isinstance(weight, np.ndarray):
        return weight.weight
    return "array"
