"""Rank-normalised split R-hat and bulk/tail effective sample sizes, vectorised over many variables.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter & Buerkner
(2021), "Rank-normalization, folding, and localization: an improved R-hat for
assessing convergence of MCMC", Bayesian Analysis 16(2), as ArviZ computes
them (``az.rhat(method="rank")``, ``az.ess(method="bulk")``,
``az.ess(method="tail")``).  ArviZ evaluates them one scalar at a time in
Python, which takes seconds for the few hundred cell changes of a CIPS fit;
here every step is an array operation over all variables at once (ranks,
normal scores, FFT autocovariances), and only Geyer's truncation of the
autocorrelation sum — a short sequential scan per variable — runs in a
compiled loop.  The test suite checks every value against ArviZ.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.fft import next_fast_len
from scipy.special import ndtri

__all__ = ["rhat_rank", "ess_bulk", "ess_tail", "summary"]

#: Variables per block in :func:`summary` (about 10 MB of FFT buffers per block for 4 x 1000 draws).
_BLOCK = 128


def _split(x: np.ndarray) -> np.ndarray:
    """(chain, draw, V) -> (V, 2 chain, draw // 2): first and last halves of every chain."""
    half = x.shape[1] // 2
    out = np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)
    return np.moveaxis(out, -1, 0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (Blom's offset 3/8) of every variable (rows of (V, M, N))."""
    V = x.shape[0]
    flat = x.reshape(V, -1)
    size = flat.shape[1]
    # one quicksort per row gives the ranks of rows without ties (continuous draws: 3x faster than
    # scipy's rankdata); rows with ties get scipy's average ranks, as ArviZ
    order = np.argsort(flat, axis=1)
    rank = np.empty(flat.shape)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(1.0, size + 1.0), flat.shape), axis=1)
    tied = (np.diff(np.take_along_axis(flat, order, axis=1), axis=1) == 0).any(axis=1)
    if tied.any():
        rank[tied] = stats.rankdata(flat[tied], method="average", axis=1)
    return ndtri((rank - 0.375) / (size - 0.75 + 1.0)).reshape(x.shape)


def _rhat_plain(x: np.ndarray) -> np.ndarray:
    """Split R-hat of (V, M, N) (no rank normalisation)."""
    n = x.shape[2]
    chain_mean = x.mean(axis=2)
    within = x.var(axis=2, ddof=1).mean(axis=1)
    between = n * chain_mean.var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def rhat_rank(samples: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat (the larger of bulk and folded tail) of every variable.

    Parameters
    ----------
    samples : ndarray, shape (chain, draw, V)

    Returns
    -------
    ndarray, shape (V,)
        NaN where ArviZ gives NaN (a NaN draw, fewer than 2 chains or 4 draws).
    """
    return _bulk(np.asarray(samples, dtype=float), rhat=True, ess=False)[0]


def _geyer_loops(rho: np.ndarray, n_chain: int, n_draw: int) -> np.ndarray:
    """ESS from the autocorrelations ``rho`` (V, n_draw) by Geyer's initial positive and monotone sequences."""
    V = rho.shape[0]
    out = np.empty(V)
    total = n_chain * n_draw
    floor = 1.0 / math.log10(total)
    for v in range(V):
        r = np.zeros(n_draw)
        r[0] = 1.0
        even = 1.0
        odd = rho[v, 1]
        r[1] = odd
        t = 1
        while t < n_draw - 3 and even + odd > 0.0:
            even = rho[v, t + 1]
            odd = rho[v, t + 2]
            if even + odd >= 0:
                r[t + 1] = even
                r[t + 2] = odd
            t += 2
        max_t = t - 2
        if even > 0:
            r[max_t + 1] = even
        t = 1
        while t <= max_t - 2:
            if r[t + 1] + r[t + 2] > r[t - 1] + r[t]:
                r[t + 1] = (r[t - 1] + r[t]) / 2.0
                r[t + 2] = r[t + 1]
            t += 2
        tau = -1.0 + 2.0 * r[:max_t + 1].sum() + r[max_t + 1:max_t + 2].sum()
        tau = max(tau, floor)
        out[v] = total / tau
        if np.isnan(r).any():
            out[v] = np.nan
    return out


_GEYER: list = []


def _geyer(rho: np.ndarray, n_chain: int, n_draw: int) -> np.ndarray:
    if not _GEYER:
        try:
            import numba

            _GEYER.append(numba.njit(cache=True)(_geyer_loops))
        except Exception:  # pragma: no cover - numba ships with PyTensor
            _GEYER.append(_geyer_loops)
    return _GEYER[0](np.ascontiguousarray(rho), n_chain, n_draw)


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of every row of (V, M, N) (chains already split), as ArviZ's ``_ess``."""
    V, M, N = x.shape
    out = np.full(V, np.nan)
    flat = x.reshape(V, -1)
    finite = ~np.isnan(flat).any(axis=1)
    const = finite & ((flat.max(axis=1) - flat.min(axis=1)) < np.finfo(float).resolution)
    out[const] = flat.shape[1]
    run = finite & ~const
    if not run.any():
        return out
    y = x[run]
    y = y - y.mean(axis=2, keepdims=True)
    m = next_fast_len(2 * N)
    f = np.fft.rfft(y, n=m, axis=2)
    acov = np.fft.irfft(f * np.conjugate(f), n=m, axis=2)[:, :, :N] / N          # (V, M, N)
    chain_mean = x[run].mean(axis=2)
    mean_acov = acov.mean(axis=1)                                                 # (V, N)
    mean_var = mean_acov[:, 0] * N / (N - 1.0)
    var_plus = mean_var * (N - 1.0) / N
    if M > 1:
        var_plus = var_plus + chain_mean.var(axis=1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    out[run] = _geyer(rho, M, N)
    return out


def ess_bulk(samples: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (rank-normalised split chains) of every variable.

    Parameters
    ----------
    samples : ndarray, shape (chain, draw, V)

    Returns
    -------
    ndarray, shape (V,)
    """
    return _bulk(np.asarray(samples, dtype=float), rhat=False, ess=True)[1]


def ess_tail(samples: np.ndarray, prob: tuple[float, float] = (0.05, 0.95)) -> np.ndarray:
    """Tail effective sample size: the smaller ESS of the indicators of the 5% and 95% quantiles.

    Parameters
    ----------
    samples : ndarray, shape (chain, draw, V)
    prob : (float, float)
        The two quantiles.

    Returns
    -------
    ndarray, shape (V,)
    """
    x = np.asarray(samples, dtype=float)
    V = x.shape[2]
    if x.shape[1] < 4:
        return np.full(V, np.nan)
    out = np.full(V, np.nan)
    ok = ~np.isnan(x).reshape(-1, V).any(axis=0)
    if not ok.any():
        return out
    xo = x[:, :, ok]
    flat = xo.reshape(-1, xo.shape[2])
    res = []
    for p in prob:                                                   # two quantiles
        q = np.quantile(flat, p, axis=0)                             # R type 7, as ArviZ
        res.append(_ess(_split((xo <= q).astype(float))))
    out[ok] = np.minimum(res[0], res[1])
    return out


def _bulk(x: np.ndarray, rhat: bool, ess: bool) -> tuple[np.ndarray, np.ndarray]:
    """R-hat and bulk ESS of (chain, draw, V), sharing the split chains and their normal scores."""
    V = x.shape[2]
    r, bulk = np.full(V, np.nan), np.full(V, np.nan)
    if x.shape[1] < 4:
        return r, bulk
    s = _split(x)
    ok = ~np.isnan(s).reshape(V, -1).any(axis=1)
    if ok.any():
        so = s[ok]
        z = _z_scale(so)
        if ess:
            bulk[ok] = _ess(z)
        if rhat and x.shape[0] >= 2:
            med = np.median(so.reshape(so.shape[0], -1), axis=1)[:, None, None]
            r[ok] = np.maximum(_rhat_plain(z), _rhat_plain(_z_scale(np.abs(so - med))))
    return r, bulk


def summary(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every variable, sharing the ranks of the bulk statistics.

    Parameters
    ----------
    samples : ndarray, shape (chain, draw, V)

    Returns
    -------
    (rhat, ess_bulk, ess_tail) : three ndarrays of shape (V,)
        Equal to :func:`rhat_rank`, :func:`ess_bulk` and :func:`ess_tail`.
    """
    x = np.asarray(samples, dtype=float)
    V = x.shape[2]
    rhat, bulk, tail = np.empty(V), np.empty(V), np.empty(V)
    for a in range(0, V, _BLOCK):     # blocks of variables: the FFT and rank buffers stay small (memory, cache)
        xb = np.ascontiguousarray(x[:, :, a:a + _BLOCK])
        rhat[a:a + _BLOCK], bulk[a:a + _BLOCK] = _bulk(xb, rhat=True, ess=True)
        tail[a:a + _BLOCK] = ess_tail(xb)
    return rhat, bulk, tail
