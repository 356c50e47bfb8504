"""Fit indices of structural equation models, on lavaan's conventions.

Plain functions of test statistics and sample sizes, so that every estimator
(ML, MLR, WLSMV) reports fit the same way.

Examples
--------
>>> # lavaan 0.6-14, HolzingerSwineford1939 3-factor model: cfi 0.930560, rmsea 0.092121
>>> round(cfi(85.30552177, 24, 918.85158929, 36), 6)
0.93056
>>> round(rmsea(85.30552177, 24, 301), 6)
0.092121
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats

__all__ = ["cfi", "tli", "rmsea", "rmsea_ci", "rmsea_pvalue", "srmr_bentler", "information_criteria"]


def _any_missing(*values: float | None) -> bool:
    """True when any input is None or not finite (the index is then NaN)."""
    return any(v is None or not np.isfinite(v) for v in values)


def cfi(chi2: float, df: float, chi2_null: float, df_null: float,
        c_hat: float = 1.0, c_hat_null: float = 1.0) -> float:
    """Comparative fit index (Bentler, 1990).

    ``1 - max(chi2 - c df, 0) / max(chi2 - c df, chi2_0 - c0 df0, 0)``; ``c``, ``c0``
    are the scaling factors of the robust version (Brosseau-Liard & Savalei, 2014),
    1 for the standard CFI. Equals 1 when both terms vanish (lavaan's ``lav_fit_cfi``).

    Parameters
    ----------
    chi2, df : float
        Test statistic of the model and its degrees of freedom.
    chi2_null, df_null : float
        The same for the baseline (independence) model.
    c_hat, c_hat_null : float
        Scaling factors of the robust version (1: the standard index).

    Returns
    -------
    float
        The index (NaN when an input is missing).

    Examples
    --------
    >>> cfi(10.0, 10, 100.0, 15)
    1.0
    """
    if _any_missing(chi2, df, chi2_null, df_null, c_hat, c_hat_null):
        return float("nan")
    t1 = max(chi2 - c_hat * df, 0.0)
    t2 = max(chi2 - c_hat * df, chi2_null - c_hat_null * df_null, 0.0)
    if math.isclose(t1, 0.0, abs_tol=1.5e-8) and math.isclose(t2, 0.0, abs_tol=1.5e-8):
        return 1.0
    return 1.0 - t1 / t2


def tli(chi2: float, df: float, chi2_null: float, df_null: float,
        c_hat: float = 1.0, c_hat_null: float = 1.0) -> float:
    """Tucker-Lewis index (non-normed fit index).

    ``1 - ((chi2 - c df) df0) / ((chi2_0 - c0 df0) df)``, 1 when ``df == 0``.

    Parameters
    ----------
    chi2, df, chi2_null, df_null, c_hat, c_hat_null : float
        As in :func:`cfi`.

    Returns
    -------
    float
        The TLI, which may exceed 1 or fall below 0; 1 when ``df`` is 0, NaN when an input is missing.

    Examples
    --------
    >>> round(tli(85.30552177, 24, 918.85158929, 36), 6)  # lavaan: 0.895839
    0.895839
    """
    if _any_missing(chi2, df, chi2_null, df_null, c_hat, c_hat_null):
        return float("nan")
    t1 = (chi2 - c_hat * df) * df_null
    t2 = (chi2_null - c_hat_null * df_null) * df
    if df > 0 and abs(t2) > 0:
        return 1.0 - t1 / t2
    return 1.0


def rmsea(chi2: float, df: float, n: float, n_groups: int = 1, c_hat: float = 1.0) -> float:
    """Root mean square error of approximation with ``N`` (not ``N - 1``), as lavaan.

    ``sqrt(max(chi2 / (N df) - c / N, 0)) * sqrt(G)``.

    Parameters
    ----------
    chi2, df : float
        Test statistic and degrees of freedom.
    n : float
        Sample size (lavaan: N for ML, N - G for (D)WLS).
    n_groups : int
        Number of groups (Steiger's sqrt(G) factor).
    c_hat : float
        Scaling factor of the robust version (1: standard).

    Returns
    -------
    float
        The RMSEA (0 when ``df <= 0``).

    Examples
    --------
    >>> rmsea(20.0, 24, 301)
    0.0
    """
    if not (np.isfinite(chi2) and np.isfinite(df) and np.isfinite(c_hat)):
        return float("nan")
    if df <= 0:
        return 0.0
    return math.sqrt(max(chi2 / n / df - c_hat / n, 0.0)) * math.sqrt(n_groups)


def _ncp_root(chi2: float, df: float, target: float, upper: float) -> float:
    # special.chndtr is the noncentral chi-square CDF scipy.stats uses, without its per-call overhead (20x)
    f = lambda lam: special.chndtr(chi2, df, lam) - target if lam > 0 else stats.chi2.cdf(chi2, df) - target
    return optimize.brentq(f, 0.0, upper, xtol=1e-12, rtol=1e-12, maxiter=500)


def rmsea_ci(chi2: float, df: float, n: float, n_groups: int = 1, c_hat: float = 1.0,
             ci: float = 0.90) -> tuple[float, float]:
    """Confidence interval of the RMSEA by inverting the noncentral chi-square.

    The noncentrality ``lambda`` solving ``P(chi2; df, lambda) = (1 +- ci)/2`` gives
    ``sqrt(c lambda / (N df)) * sqrt(G)`` (Browne & Cudeck, 1993; lavaan's
    ``lav_fit_rmsea_ci``).

    Parameters
    ----------
    chi2, df, n, n_groups, c_hat : float
        As in :func:`rmsea`.
    ci : float
        Confidence level (lavaan's default 0.90).

    Returns
    -------
    tuple of float
        ``(ci_low, ci_high)``.

    Examples
    --------
    >>> lo, hi = rmsea_ci(85.30552177, 24, 301)  # lavaan: 0.071418, 0.113678
    >>> round(lo, 6), round(hi, 6)
    (0.071418, 0.113678)
    """
    if not (np.isfinite(chi2) and np.isfinite(df)) or df < 1:
        return (0.0, 0.0) if np.isfinite(chi2) else (float("nan"), float("nan"))
    hi_p, lo_p = 1 - (1 - ci) / 2, (1 - ci) / 2
    if stats.chi2.cdf(chi2, df) - hi_p < 0:
        lower = 0.0
    else:
        lam = _ncp_root(chi2, df, hi_p, max(chi2, 1.0))
        lower = math.sqrt(c_hat * lam / (n * df)) * math.sqrt(n_groups)
    n_up = max(n, 4 * chi2)
    if stats.ncx2.cdf(chi2, df, n_up) - lo_p > 0 or stats.chi2.cdf(chi2, df) - lo_p < 0:
        upper = 0.0
    else:
        lam = _ncp_root(chi2, df, lo_p, n_up)
        upper = math.sqrt(c_hat * lam / (n * df)) * math.sqrt(n_groups)
    return (lower, upper)


def rmsea_pvalue(chi2: float, df: float, n: float, n_groups: int = 1, c_hat: float = 1.0,
                 h0: float = 0.05) -> float:
    """p-value of the test of close fit, H0: RMSEA <= ``h0``.

    ``1 - F(chi2; df, ncp = N df h0^2 / (c G))``.

    Parameters
    ----------
    chi2, df, n, n_groups, c_hat : float
        As in :func:`rmsea`.
    h0 : float
        The RMSEA of close fit (lavaan's 0.05).

    Returns
    -------
    float
        The p-value.

    Examples
    --------
    >>> round(rmsea_pvalue(85.30552177, 24, 301), 6)  # lavaan: 0.000661
    0.000661
    """
    if not (np.isfinite(chi2) and np.isfinite(df)) or df <= 0:
        return float("nan")
    ncp = n * df * h0 ** 2 / c_hat / n_groups
    return float(stats.ncx2.sf(chi2, df, ncp))


def srmr_bentler(sample_cov: np.ndarray, implied_cov: np.ndarray,
                 sample_mean: np.ndarray | None = None, implied_mean: np.ndarray | None = None
                 ) -> tuple[float, float]:
    """Standardised root mean square residual (Bentler's), with and without means.

    Residuals ``(s_ij - sigma_ij) / sqrt(s_ii s_jj)`` over the lower triangle with
    diagonal; with means also ``(m_i - mu_i) / sqrt(s_ii)``. Returns
    ``(srmr_with_means, srmr_without_means)`` (equal without means), lavaan's
    ``srmr_bentler`` and ``srmr_bentler_nomean``; lavaan's default ``srmr`` is the
    first (means included when the model has a mean structure).

    Parameters
    ----------
    sample_cov, implied_cov : numpy.ndarray
        Sample and model-implied covariance matrices (p x p).
    sample_mean, implied_mean : numpy.ndarray, optional
        Sample and implied means (p), when the model has a mean structure.

    Returns
    -------
    tuple of float
        ``(srmr, srmr_bentler_nomean)``.

    Examples
    --------
    >>> s = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> srmr_bentler(s, np.eye(2))[1] > 0
    True
    """
    s = np.sqrt(np.diag(sample_cov))
    r = (sample_cov - implied_cov) / np.outer(s, s)
    il = np.tril_indices(len(s))
    cov_ss = float(np.sum(r[il] ** 2))
    nomean = math.sqrt(cov_ss / len(il[0]))
    if sample_mean is None or implied_mean is None:
        return nomean, nomean
    rm = (np.asarray(sample_mean) - np.asarray(implied_mean)) / s
    total = math.sqrt((cov_ss + float(np.sum(rm ** 2))) / (len(il[0]) + len(s)))
    return total, nomean


def information_criteria(loglik: float, npar: int, n: float) -> dict[str, float]:
    """AIC, BIC and sample-size-adjusted BIC (``N* = (N + 2) / 24``).

    Parameters
    ----------
    loglik : float
        Log-likelihood of the model.
    npar : int
        Number of free parameters.
    n : float
        Sample size.

    Returns
    -------
    dict
        ``aic``, ``bic``, ``bic2``.

    Examples
    --------
    >>> ic = information_criteria(-3737.745, 21, 301)
    >>> round(ic["aic"], 3)
    7517.49
    """
    return {
        "aic": -2 * loglik + 2 * npar,
        "bic": -2 * loglik + npar * math.log(n),
        "bic2": -2 * loglik + npar * math.log((n + 2) / 24),
    }
