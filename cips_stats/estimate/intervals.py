"""Confidence intervals: t intervals of design-based estimates and bootstrap intervals of replicates.

:func:`t_interval` gives ``estimate -/+ t_{df, (1+ci)/2} se`` (normal when
``df`` is infinite, as R's ``confint`` default).  :func:`bootstrap_intervals`
gives, for every row of a replicate matrix at once, the bootstrap SE and a
percentile, BCa or normal interval.

Examples
--------
>>> from cips_stats.estimate.intervals import t_interval
>>> [round(x, 4) for x in t_interval(10.0, 1.0, 0.95, 2.0)]
[5.6973, 14.3027]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as _st
from scipy.special import ndtr, ndtri

from ..errors import CipsError

__all__ = ["check_level", "t_interval", "bootstrap_intervals", "CI_METHODS"]

#: Bootstrap interval methods.
CI_METHODS = ("percentile", "bca", "normal")
#: Elements of one chunk of replicate rows processed at once (memory bound).
_CHUNK_ELEMS = 2**21


def check_level(ci: Any, what: str = "ci") -> float:
    """Return ``ci`` as a float in (0, 1) or raise :class:`~cips_stats.errors.CipsError`.

    Parameters
    ----------
    ci : float
        A confidence level.
    what : str
        The argument's name, for the message.

    Returns
    -------
    float

    Examples
    --------
    >>> from cips_stats.estimate.intervals import check_level
    >>> check_level(0.9)
    0.9
    """
    if isinstance(ci, (bool, np.bool_)) or not isinstance(ci, (float, int, np.floating, np.integer)) \
            or not 0.0 < float(ci) < 1.0:
        raise CipsError(f"{what}= must be a confidence level in (0, 1); got {ci!r}.")
    return float(ci)


def check_ci_method(ci_method: Any) -> str:
    """Return ``ci_method`` if it is one of :data:`CI_METHODS`, else raise CipsError."""
    if ci_method not in CI_METHODS:
        raise CipsError(f"ci_method= must be one of {CI_METHODS}; got {ci_method!r}.")
    return str(ci_method)


def t_quantile(ci: float, df: float) -> float:
    """The two-sided critical value of a level-``ci`` interval: t with ``df``, normal when ``df`` is infinite."""
    return float(_st.norm.ppf(0.5 + ci / 2) if math.isinf(df) else _st.t.ppf(0.5 + ci / 2, df))


def t_interval(est: float, se: float, ci: float, df: float) -> tuple[float, float]:
    """``est -/+ t_{df} se`` at level ``ci`` (NaN bounds without a finite SE or positive df).

    Parameters
    ----------
    est, se : float
        Estimate and standard error.
    ci : float
        Confidence level.
    df : float
        Degrees of freedom (``math.inf``: the normal interval).

    Returns
    -------
    (float, float)
        ``ci_low, ci_high``.

    Examples
    --------
    >>> import math
    >>> from cips_stats.estimate.intervals import t_interval
    >>> [round(x, 3) for x in t_interval(0.0, 1.0, 0.95, math.inf)]     # the normal interval
    [-1.96, 1.96]
    """
    level = check_level(ci)
    if not np.isfinite(se) or not (df > 0):
        return (math.nan, math.nan)
    q = t_quantile(level, df)
    return (float(est - q * se), float(est + q * se))


def row_quantiles(srt: np.ndarray, nvalid: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (R type 7) of rows sorted with NaN last; ``q`` one per row."""
    nv = nvalid.astype(np.float64)
    h = np.clip(q, 0.0, 1.0) * np.maximum(nv - 1.0, 0.0)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(nvalid - 1, 0)).astype(np.intp)
    frac = h - lo
    a = np.take_along_axis(srt, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(srt, hi[:, None], axis=1)[:, 0]
    out = a + frac * (b - a)
    return np.where(nvalid > 0, out, np.nan)


def _order_statistics(t: np.ndarray, nvalid: np.ndarray, qs: tuple) -> np.ndarray:
    """``t`` with every order statistic that :func:`row_quantiles` reads for the ``qs`` in its sorted
    place (NaN last): a partial sort when the rows share a few positions (as percentile intervals with
    no missing replicate do), else a full sort; either way the values read are those of ``np.sort``."""
    nv = nvalid.astype(np.float64)
    need = []
    for q in qs:
        h = np.clip(q, 0.0, 1.0) * np.maximum(nv - 1.0, 0.0)
        lo = np.floor(h).astype(np.intp)
        need += [lo, np.minimum(lo + 1, np.maximum(nvalid - 1, 0)).astype(np.intp)]
    kth = np.unique(np.concatenate(need)) if need else np.zeros(0, dtype=np.intp)
    if t.shape[1] == 0 or kth.size > 8:
        return np.sort(t, axis=1)
    return np.partition(t, kth, axis=1)


def _bca_quantiles(t, ok, nv, e, accel, alpha):
    below = (np.where(ok, t < e[:, None], False).sum(axis=1)
             + 0.5 * np.where(ok, t == e[:, None], False).sum(axis=1))
    p0 = below / np.maximum(nv, 1)
    undefined = (p0 <= 0.0) | (p0 >= 1.0) | (nv < 2)
    z0 = ndtri(np.clip(p0, 1e-12, 1 - 1e-12))
    a = np.zeros_like(z0) if accel is None else np.nan_to_num(accel)
    za, zb = ndtri(alpha / 2.0), ndtri(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ql = ndtr(z0 + (z0 + za) / (1.0 - a * (z0 + za)))
        qh = ndtr(z0 + (z0 + zb) / (1.0 - a * (z0 + zb)))
    return np.where(undefined, np.nan, ql), np.where(undefined, np.nan, qh), undefined


def bootstrap_intervals(est: np.ndarray, replicates: np.ndarray, ci: float, method: str,
                        accel: np.ndarray | None) -> dict[str, np.ndarray]:
    """SE and CI of each row of a replicate matrix, centred on ``est``.

    Parameters
    ----------
    est : ndarray, shape (rows,)
        Full-sample estimates.
    replicates : ndarray, shape (rows, B)
        Replicate estimates (NaN: no estimate in that replicate).
    ci : float
        Confidence level.
    method : {"percentile", "bca", "normal"}
        Interval.
    accel : ndarray, shape (rows,), optional
        BCa acceleration (0 when None).

    Returns
    -------
    dict
        ``se``, ``ci_low``, ``ci_high``, ``n_nan`` (replicates without an
        estimate) and ``bca_undefined`` (all replicates on one side of the
        estimate).  The SE is the standard deviation of the replicates
        (divisor ``B - 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.estimate.intervals import bootstrap_intervals
    >>> reps = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    >>> iv = bootstrap_intervals(np.array([3.0]), reps, 0.9, "percentile", None)
    >>> round(float(iv["se"][0]), 4), float(iv["ci_low"][0]), float(iv["ci_high"][0])
    (1.5811, 1.2, 4.8)
    """
    reps, level = replicates, ci
    R = reps.shape[0]
    out = {k: np.full(R, np.nan) for k in ("se", "ci_low", "ci_high")}
    out["n_nan"] = np.zeros(R, dtype=np.int64)
    out["bca_undefined"] = np.zeros(R, dtype=bool)
    step = max(1, _CHUNK_ELEMS // max(1, reps.shape[1]))
    alpha = 1.0 - level
    for s in range(0, R, step):
        sl = slice(s, min(R, s + step))
        t = np.asarray(reps[sl], dtype=np.float64)
        ok = ~np.isnan(t)
        nv = ok.sum(axis=1)
        out["n_nan"][sl] = t.shape[1] - nv
        mean = np.nansum(t, axis=1) / np.maximum(nv, 1)
        dev = np.where(ok, t - mean[:, None], 0.0)
        se = np.where(nv >= 2, np.sqrt((dev * dev).sum(axis=1) / np.maximum(nv - 1, 1)), np.nan)
        out["se"][sl] = se
        e = est[sl]
        if method == "normal":
            z = ndtri(1.0 - alpha / 2.0)
            out["ci_low"][sl], out["ci_high"][sl] = e - z * se, e + z * se
            continue
        if method == "percentile":
            ql = np.full(t.shape[0], alpha / 2.0)
            qh = np.full(t.shape[0], 1.0 - alpha / 2.0)
        else:
            ql, qh, undefined = _bca_quantiles(t, ok, nv, e, None if accel is None else accel[sl], alpha)
            out["bca_undefined"][sl] = undefined & ~np.isnan(e)
        srt = _order_statistics(t, nv, (np.nan_to_num(ql, nan=0.0), np.nan_to_num(qh, nan=1.0)))
        lo = row_quantiles(srt, nv, np.nan_to_num(ql, nan=0.0))
        hi = row_quantiles(srt, nv, np.nan_to_num(qh, nan=1.0))
        out["ci_low"][sl] = np.where(np.isnan(ql), np.nan, lo)
        out["ci_high"][sl] = np.where(np.isnan(qh), np.nan, hi)
    return out
