"""Polychoric correlations, thresholds and their asymptotic covariance (Gamma).

All item pairs are handled at once: the pairwise contingency tables come from
one product of one-hot indicator matrices, and the two-step maximum likelihood
estimate of every pair's correlation is found by one vectorised Fisher-scoring
iteration over the vector of correlations, with a vectorised bivariate normal
CDF (Gauss-Legendre quadrature of the Plackett/Drezner-Wesolowsky integral).

Examples
--------
>>> import numpy as np
>>> from cips_stats.factor.polychoric import polychoric
>>> rng = np.random.default_rng(1)
>>> z = rng.multivariate_normal([0, 0], [[1, .5], [.5, 1]], size=2000)
>>> x = np.digitize(z, [-1.0, 0.0, 1.0]) + 1
>>> res = polychoric(x)
>>> bool(abs(res.corr.iloc[0, 1] - 0.5) < 0.05)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ..errors import DataError, Flag, Problem
from ..results import Provenance, Result, to_jsonable

__all__ = ["PolychoricResult", "polychoric", "thresholds", "bvn_cdf"]

#: Bounds of a polychoric correlation, as lavaan's optimiser (nlminb, [-0.999, 0.999]).
RHO_BOUND = 0.999
#: Infinite thresholds are replaced by +-this value inside the bivariate CDF
#: (Phi(-12) ~ 1.8e-33: far below double precision relative to 1).
_BIG = 12.0

# Gauss-Legendre nodes on [-1, 1], 20 points (Genz 2004 uses 20 for |r| >= 0.75).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)

# Composite rule on [0, 1] for the high-correlation branch: panels graded towards 0
# (the integrand holds exp(-c / s^2), which turns on at s ~ sqrt(c)), 20 nodes each.
_HI_EDGES = np.concatenate([[0.0], 4.0 ** -np.arange(7, -1, -1)])
_HI_X = np.concatenate([a + (b - a) * 0.5 * (_GL_X + 1.0) for a, b in zip(_HI_EDGES[:-1], _HI_EDGES[1:])])
_HI_W = np.concatenate([(b - a) * 0.5 * _GL_W for a, b in zip(_HI_EDGES[:-1], _HI_EDGES[1:])])


def _ncdf(x: np.ndarray) -> np.ndarray:
    return special.ndtr(x)


def _npdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(x)) / np.sqrt(2.0 * np.pi)


def bvn_cdf(h: Any, k: Any, rho: Any) -> np.ndarray:
    """Standard bivariate normal CDF ``P(X <= h, Y <= k)`` with correlation ``rho``, vectorised.

    Parameters
    ----------
    h, k : array_like
        Upper integration limits (may be infinite); broadcast together with ``rho``.
    rho : array_like
        Correlations in ``(-1, 1)``.

    Returns
    -------
    numpy.ndarray
        The probabilities, broadcast shape of the inputs.

    Notes
    -----
    For ``|rho| < 0.925``: Plackett's identity in the angular form of Drezner and
    Wesolowsky (1990) and Genz (2004),
    ``Phi2(h, k; r) = Phi(h) Phi(k) + (1/2pi) int_0^{asin r} exp(-(h^2 + k^2 - 2hk sin t)
    / (2 cos^2 t)) dt``, integrated with 20-point Gauss-Legendre quadrature.
    For ``|rho| >= 0.925``: ``Phi2(h, k; r) = Phi(min(h, k)) - int_r^1 phi2(h, k; u) du``
    with the substitution ``u = 1 - s^2``, which removes the square-root singularity
    at ``u = 1``; negative ``r`` by ``Phi2(h, k; r) = Phi(h) - Phi2(h, -k; -r)``.
    Checked against adaptive quadrature (scipy.integrate.quad) to 1e-12 in the tests.

    Examples
    --------
    >>> from cips_stats.factor.polychoric import bvn_cdf
    >>> float(bvn_cdf(0.0, 0.0, 0.5))  # 1/4 + asin(0.5)/(2 pi) = 1/3
    0.3333333333333333
    """
    h, k, r = np.broadcast_arrays(np.asarray(h, float), np.asarray(k, float), np.asarray(rho, float))
    h = np.clip(h, -_BIG, _BIG)
    k = np.clip(k, -_BIG, _BIG)
    out = np.empty(h.shape)
    low = np.abs(r) < 0.925
    if low.any():
        hl, kl, rl = h[low], k[low], r[low]
        a = np.arcsin(rl)
        t = 0.5 * a[..., None] * (_GL_X + 1.0)
        st = np.sin(t)
        c2 = 1.0 - st * st
        hh = (hl * hl + kl * kl)[..., None]
        hk = (hl * kl)[..., None]
        integ = np.exp(-(hh - 2.0 * hk * st) / (2.0 * c2)) @ _GL_W
        out[low] = _ncdf(hl) * _ncdf(kl) + integ * a / (4.0 * np.pi)
    high = ~low
    if high.any():
        hh_, kh_, rh_ = h[high], k[high], r[high]
        neg = rh_ < 0
        kk = np.where(neg, -kh_, kh_)
        ra = np.abs(rh_)
        smax = np.sqrt(np.maximum(1.0 - ra, 0.0))
        s = smax[..., None] * _HI_X
        s2 = s * s
        d = 2.0 - s2
        dh = (hh_ - kk)[..., None]
        hk = (hh_ * kk)[..., None]
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            expo = -(dh * dh) / (2.0 * s2 * d) - hk / d
            integ = (np.exp(expo) / (np.pi * np.sqrt(d))) @ _HI_W
        tail = smax * integ
        pos_val = _ncdf(np.minimum(hh_, kk)) - tail
        out[high] = np.where(neg, _ncdf(hh_) - pos_val, pos_val)
    return np.clip(out, 0.0, 1.0) if out.ndim else float(np.clip(out, 0.0, 1.0))


def _bvn_pdf(h: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Bivariate standard normal density (0 at clipped infinite limits)."""
    h = np.clip(h, -_BIG, _BIG)
    k = np.clip(k, -_BIG, _BIG)
    om = 1.0 - r * r
    return np.exp(-(h * h - 2.0 * r * h * k + k * k) / (2.0 * om)) / (2.0 * np.pi * np.sqrt(om))


def _dcdf_dh(h: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """d Phi2(h, k; r) / dh = phi(h) Phi((k - r h) / sqrt(1 - r^2))."""
    h = np.clip(h, -_BIG, _BIG)
    k = np.clip(k, -_BIG, _BIG)
    return _npdf(h) * _ncdf((k - r * h) / np.sqrt(1.0 - r * r))


# --------------------------------------------------------------------------- coding
def _as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise DataError(f"data= argument must be a 2-D array or DataFrame; got an array of ndim {arr.ndim}.")
    return pd.DataFrame(arr, columns=[f"x{i + 1}" for i in range(arr.shape[1])])


def _levels(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(v, return_inverse=True)`` of finite values; answer codes (whole numbers in a short
    range) by counting instead of sorting."""
    if v.size:
        lo, hi = float(v.min()), float(v.max())
        if hi - lo <= 4096:
            k = v - lo
            if np.array_equal(k, np.floor(k)):
                ki = k.astype(np.intp)
                present = np.bincount(ki) > 0
                return np.flatnonzero(present) + lo, (np.cumsum(present) - 1)[ki]
    return np.unique(v, return_inverse=True)


def _code_items(frame: pd.DataFrame, max_categories: int) -> tuple[np.ndarray, list[np.ndarray], list[Flag]]:
    """Map each item's observed values to 0..K-1 (missing -> -1); return codes, levels, flags."""
    problems: list[Problem] = []
    flags: list[Flag] = []
    n, p = frame.shape
    # small integers: the codes are kept with the result (for Gamma), one byte per answer
    codes = np.full((n, p), -1, dtype=np.int8 if max_categories <= 127 else np.int64)
    levels: list[np.ndarray] = []
    for j, col in enumerate(frame.columns):
        try:
            x = pd.to_numeric(frame[col], errors="raise").to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            bad = frame[col][pd.to_numeric(frame[col], errors="coerce").isna() & frame[col].notna()]
            r = int(np.flatnonzero(frame.index == bad.index[0])[0]) + 1 if len(bad) else None
            problems.append(Problem("numeric_codes", "Ordinal items must hold numeric answer codes.",
                                    file="<DataFrame>", row=r, column=str(col),
                                    value=bad.iloc[0] if len(bad) else None))
            levels.append(np.array([]))
            continue
        obs = np.isfinite(x)
        inf_rows = np.flatnonzero(np.isinf(x))
        if inf_rows.size:
            problems.append(Problem("finite_codes", "Answer codes must be finite (NaN marks missing).",
                                    file="<DataFrame>", row=int(inf_rows[0]) + 1, column=str(col),
                                    value=float(x[inf_rows[0]])))
        nonint = np.flatnonzero(obs & (x != np.round(x)))
        if nonint.size:
            problems.append(Problem("integer_codes", "Ordinal answer codes must be whole numbers.",
                                    file="<DataFrame>", row=int(nonint[0]) + 1, column=str(col),
                                    value=float(x[nonint[0]])))
        lev, inv = _levels(x[obs])
        if lev.size > max_categories:
            problems.append(Problem("max_categories",
                                    f"Item has {lev.size} distinct values, more than max_categories="
                                    f"{max_categories}; is it really ordinal?",
                                    file="<DataFrame>", column=str(col), value=int(lev.size)))
        codes[obs, j] = inv
        levels.append(lev)
        if lev.size == 1:
            flags.append(Flag("one_category", f"Item {col!r} has a single observed category "
                              f"({lev[0]:g}); its thresholds and polychorics are undefined (NaN).",
                              severity="error", where={"item": str(col)}))
        elif lev.size == 0:
            flags.append(Flag("no_observations", f"Item {col!r} has no observed answers; its "
                              "polychorics are undefined (NaN).", severity="error",
                              where={"item": str(col)}))
        elif lev.size >= 2 and np.any(np.diff(lev) != 1):
            missing = sorted(set(np.arange(lev[0], lev[-1] + 1)) - set(lev))
            flags.append(Flag("empty_category", f"Item {col!r} has no answers in categor"
                              f"{'y' if len(missing) == 1 else 'ies'} {', '.join(f'{m:g}' for m in missing)}; "
                              "adjacent observed categories are used as consecutive (as lavaan and psych do).",
                              severity="caution", where={"item": str(col), "categories": missing}))
    if problems:
        raise DataError("The ordinal items cannot be used for polychoric correlations.", problems)
    return codes, levels, flags


def _thresholds_from_codes(codes: np.ndarray, ncat: np.ndarray, kmax: int, weights: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded threshold matrix (p, kmax+1) with -inf/+inf ends, counts (p, kmax), n per item."""
    n, p = codes.shape
    flat = codes + (np.arange(p) * kmax)[None, :]
    obs = codes >= 0
    wts = None if weights is None else np.broadcast_to(weights[:, None], codes.shape)[obs]
    counts = np.bincount(flat[obs], weights=wts, minlength=p * kmax).reshape(p, kmax).astype(float)
    nobs = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cum = np.cumsum(counts, axis=1) / nobs[:, None]
    tau = np.full((p, kmax + 1), np.inf)
    tau[:, 0] = -np.inf
    for_mask = np.arange(1, kmax)[None, :] < ncat[:, None]          # finite thresholds 1..K-1
    inner = special.ndtri(np.clip(cum[:, :-1], 0.0, 1.0))
    tau[:, 1:kmax][for_mask] = inner[for_mask]
    return tau, counts, nobs


def _check_weights(weights: Any, n: int) -> np.ndarray:
    w = pd.to_numeric(pd.Series(np.asarray(weights).ravel()), errors="coerce").to_numpy(dtype=float)
    if w.shape[0] != n:
        raise DataError(f"weight= has {w.shape[0]} values but the data have {n} rows.")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise DataError("weight= must be finite and non-negative.",
                        [Problem("weight_nonnegative", "Weight must be a finite number >= 0.", file="<DataFrame>",
                                 row=int(r) + 1, column="weight", value=float(w[r])) for r in bad[:50]])
    if w.sum() <= 0:
        raise DataError("The weights of weight= sum to zero.")
    return w * (n / w.sum())


# --------------------------------------------------------------------------- tables
def _pair_index(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs in lavaan's order of the off-diagonal vech: (2,1), (3,1), ..., (p,1), (3,2), ..."""
    jj, ii = np.triu_indices(p, k=1)   # row-major upper triangle == column-major lower triangle
    return ii, jj                       # ii > jj: row index ii, column index jj


def _pair_tables(codes: np.ndarray, kmax: int, ii: np.ndarray, jj: np.ndarray,
                 chunk: int = 8192, weights: np.ndarray | None = None) -> np.ndarray:
    """All pairwise (weighted) contingency tables at once, shape (npairs, kmax, kmax), rows = item ii."""
    n, p = codes.shape
    acc = np.zeros((p * kmax, p * kmax))
    cols = np.arange(p) * kmax
    for s in range(0, n, chunk):
        c = codes[s:s + chunk]
        onehot = np.zeros((c.shape[0], p * kmax))
        rr, cc = np.nonzero(c >= 0)
        onehot[rr, cols[cc] + c[rr, cc]] = 1.0
        acc += onehot.T @ (onehot if weights is None else onehot * weights[s:s + chunk, None])
    acc4 = acc.reshape(p, kmax, p, kmax)
    return acc4[ii, :, jj, :]


# --------------------------------------------------------------------------- likelihood pieces
def _cell_probs(t1: np.ndarray, t2: np.ndarray, rho: np.ndarray, want_deriv: bool = True,
                second: bool = False):
    """Cell probabilities of all pairs' tables and their first (and second) derivative in rho.

    t1, t2: (P, K+1) padded thresholds; rho: (P,). Returns P (P,K,K), dP (P,K,K)[, d2P].
    """
    H = t1[:, :, None]
    Kk = t2[:, None, :]
    R = rho[:, None, None]
    F = bvn_cdf(H, Kk, R)
    prob = F[:, 1:, 1:] - F[:, :-1, 1:] - F[:, 1:, :-1] + F[:, :-1, :-1]
    if not want_deriv:
        return prob, None
    f = _bvn_pdf(H, Kk, R)
    dprob = f[:, 1:, 1:] - f[:, :-1, 1:] - f[:, 1:, :-1] + f[:, :-1, :-1]
    if not second:
        return prob, dprob
    # d phi2 / d rho = phi2 [r/(1-r^2) - (r(h^2+k^2) - hk(1+r^2)) / (1-r^2)^2]
    hc = np.clip(H, -_BIG, _BIG)
    kc = np.clip(Kk, -_BIG, _BIG)
    om = 1.0 - R * R
    g = f * (R / om - (R * (hc * hc + kc * kc) - hc * kc * (1.0 + R * R)) / (om * om))
    d2prob = g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]
    return prob, dprob, d2prob


def _fit_rhos(tables: np.ndarray, t1: np.ndarray, t2: np.ndarray, *, tol: float = 1e-10,
              max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectorised Fisher scoring with step halving for the two-step ML polychorics."""
    npair = tables.shape[0]
    ntot = tables.sum(axis=(1, 2))
    # start: Pearson-like correlation of the category midpoints' normal scores is overkill;
    # start at 0 (the log-likelihood in rho is well behaved for ordinal tables).
    rho = np.zeros(npair)

    def loglik(r):
        pr, _ = _cell_probs(t1, t2, r, want_deriv=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.where(tables > 0, np.log(np.maximum(pr, 1e-300)), 0.0)
        return (tables * lp).sum(axis=(1, 2))

    active = ntot > 0
    ll = loglik(rho)
    converged = np.zeros(npair, dtype=bool)
    converged[~active] = True
    it = 0
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(~converged)
        if idx.size == 0:
            break
        pr, dpr, d2pr = _cell_probs(t1[idx], t2[idx], rho[idx], second=True)
        # cells below 1e-10 are dropped from the expected information: their
        # probabilities are differences of CDF values and lose all precision there
        valid = pr > 1e-10
        obs_cell = tables[idx] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(obs_cell, dpr / pr, 0.0)
            score = (tables[idx] * u).sum(axis=(1, 2))
            info_exp = ntot[idx] * np.where(valid, dpr * dpr / pr, 0.0).sum(axis=(1, 2))
            info_obs = (tables[idx] * (u * u - np.where(obs_cell, d2pr / pr, 0.0))).sum(axis=(1, 2))
        # Newton (observed information) where the log-likelihood is locally concave,
        # Fisher scoring elsewhere
        info = np.where(info_obs > 0, info_obs, info_exp)
        step = np.where(info > 0, score / np.maximum(info, 1e-300), 0.0)
        step = np.clip(step, -0.5, 0.5)
        base = rho[idx]
        ll0 = ll[idx]
        new = np.clip(base + step, -RHO_BOUND, RHO_BOUND)
        llnew = _sub_loglik(tables[idx], t1[idx], t2[idx], new)
        bad = llnew < ll0 - 1e-12 * np.abs(ll0)
        halv = 0
        while bad.any() and halv < 40:
            halv += 1
            step[bad] *= 0.5
            new[bad] = np.clip(base[bad] + step[bad], -RHO_BOUND, RHO_BOUND)
            llnew[bad] = _sub_loglik(tables[idx][bad], t1[idx][bad], t2[idx][bad], new[bad])
            bad = llnew < ll0 - 1e-12 * np.abs(ll0)
        moved = np.abs(new - base)
        rho[idx] = new
        ll[idx] = np.where(bad, ll0, llnew)
        at_bound = (np.abs(new) >= RHO_BOUND) & (np.sign(step) == np.sign(new))
        converged[idx] = (moved < tol) | at_bound | bad
    not_conv = ~converged
    return rho, not_conv, it


def _sub_loglik(tables: np.ndarray, t1: np.ndarray, t2: np.ndarray, r: np.ndarray) -> np.ndarray:
    pr, _ = _cell_probs(t1, t2, r, want_deriv=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.where(tables > 0, np.log(np.maximum(pr, 1e-300)), 0.0)
    return (tables * lp).sum(axis=(1, 2))


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class PolychoricResult(Result):
    """Polychoric correlation matrix with thresholds, pairwise n and diagnostics.

    Attributes
    ----------
    corr : pandas.DataFrame
        p x p polychoric correlations (two-step ML), unit diagonal. Entries that
        cannot be estimated are NaN and explained in ``flags``.
    thresholds : dict of str to numpy.ndarray
        Per item, the K-1 probit thresholds of its observed categories.
    levels : dict of str to numpy.ndarray
        Per item, the observed answer codes in order (category k of the
        thresholds is ``levels[item][k]``).
    n_pairs : pandas.DataFrame
        Number of respondents who answered both items (diagonal: the item's n).
    n : int
        Number of rows of the input.
    min_eigenvalue : float
        Smallest eigenvalue of ``corr`` (negative: not positive definite, flagged).
    iterations : int
        Fisher-scoring iterations used.
    """

    corr: pd.DataFrame = None
    thresholds: dict = None
    levels: dict = None
    n_pairs: pd.DataFrame = None
    n: int = 0
    min_eigenvalue: float = float("nan")
    iterations: int = 0
    _codes: np.ndarray = field(default=None, repr=False, compare=False)
    _weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    _tables: np.ndarray | None = field(default=None, repr=False, compare=False)   # (weighted) pair tables

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dictionary (without the internal codes)."""
        out: dict[str, Any] = {"kind": type(self).__name__}
        for name in ("corr", "thresholds", "levels", "n_pairs", "n", "min_eigenvalue",
                     "iterations", "provenance", "flags"):
            out[name] = to_jsonable(getattr(self, name))
        return out

    def to_frame(self) -> pd.DataFrame:
        """Return the pairs as a tidy table: item1, item2, rho, n."""
        names = list(self.corr.columns)
        ii, jj = _pair_index(len(names))
        c = self.corr.to_numpy()
        npairs = self.n_pairs.to_numpy()
        return pd.DataFrame({"item1": [names[j] for j in jj], "item2": [names[i] for i in ii],
                             "rho": c[ii, jj], "n": npairs[ii, jj].astype(int)})

    @property
    def threshold_vector(self) -> np.ndarray:
        """All thresholds stacked item by item (lavaan's order of sample statistics)."""
        return np.concatenate([np.asarray(self.thresholds[c], float) for c in self.corr.columns])

    @property
    def threshold_labels(self) -> list[str]:
        """Labels ``item|t1``, ``item|t2``, ... of :attr:`threshold_vector` (lavaan's names)."""
        return [f"{c}|t{m + 1}" for c in self.corr.columns for m in range(len(self.thresholds[c]))]

    @property
    def corr_vector(self) -> np.ndarray:
        """Off-diagonal correlations in lavaan's order: (2,1), (3,1), ..., (p,1), (3,2), ..."""
        ii, jj = _pair_index(self.corr.shape[0])
        return self.corr.to_numpy()[ii, jj]

    def smoothed(self, eps: float = 1e-8) -> pd.DataFrame:
        """Return a positive definite version of ``corr`` by eigenvalue smoothing.

        Eigenvalues below ``eps`` are set to ``eps`` and the matrix is rescaled to a
        unit diagonal (as ``psych::cor.smooth``). ``corr`` itself is never altered.
        """
        c = self.corr.to_numpy()
        w, v = np.linalg.eigh(c)
        if w.min() >= eps:
            return self.corr.copy()
        w = np.maximum(w, eps)
        s = (v * w) @ v.T
        d = np.sqrt(np.diag(s))
        s = s / d[:, None] / d[None, :]
        return pd.DataFrame(s, index=self.corr.index, columns=self.corr.columns)

    def gamma(self, *, chunk: int = 2000) -> np.ndarray:
        """Asymptotic covariance of (thresholds, polychorics), N-scaled (lavaan's NACOV).

        Returns the ``(T + P) x (T + P)`` matrix Gamma such that
        ``cov(thresholds, rho) ~= Gamma / n``, in the order of
        :attr:`threshold_vector` followed by :attr:`corr_vector`.

        Notes
        -----
        Muthen (1984), Muthen, du Toit and Spisic (1997), as lavaan 0.6 (``muthen1984``):
        with casewise scores ``s_i`` of the univariate threshold log-likelihoods and of
        each pair's bivariate log-likelihood in rho (missing answers contribute 0),
        ``B = sum_i s_i s_i'`` and the block-triangular ``A`` with ``A11`` the per-item
        blocks of ``B``, ``A22 = diag(B_rho)``, ``A21[r, tau] = sum_i s_i,rho * d log L_i^biv
        / d tau``; ``Gamma = n A^{-1} B A^{-T}``.
        """
        cache = self.__dict__.get("_gamma_cache")
        if cache is None:
            cache = _gamma(self, chunk=chunk)
            object.__setattr__(self, "_gamma_cache", cache)
        return cache.copy()


def thresholds(data: Any, *, max_categories: int = 20) -> dict[str, np.ndarray]:
    """Probit thresholds of each ordinal item from its univariate marginal proportions.

    Parameters
    ----------
    data : array_like or pandas.DataFrame
        (n, p) integer answer codes, NaN = missing (each item uses its available answers).
    max_categories : int, default 20
        More distinct values than this in an item raises :class:`cips_stats.DataError`.

    Returns
    -------
    dict of str to numpy.ndarray
        Per item, ``tau_k = Phi^{-1}(P(X <= k))`` for its observed categories but the last.

    Notes
    -----
    Identical to lavaan's thresholds without exogenous covariates (``lavCor(..., ordered=)``).

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.factor.polychoric import thresholds
    >>> thresholds(np.array([[1], [2], [2], [3]]))["x1"].round(4).tolist()
    [-0.6745, 0.6745]
    """
    frame = _as_frame(data)
    codes, levels, _ = _code_items(frame, max_categories)
    ncat = np.array([len(lv) for lv in levels])
    kmax = max(int(ncat.max(initial=1)), 1)
    tau, _, _ = _thresholds_from_codes(codes, ncat, kmax)
    return {str(c): tau[j, 1:ncat[j]].copy() for j, c in enumerate(frame.columns)}


def polychoric(data: Any, *, missing: str = "pairwise", max_categories: int = 20,
               correct: float = 0.0, weight: Any = None, tol: float = 1e-10,
               max_iter: int = 100) -> PolychoricResult:
    """Polychoric correlations of ordinal items, all pairs at once (two-step ML).

    Parameters
    ----------
    data : array_like or pandas.DataFrame
        (n, p) integer answer codes; NaN = missing.
    missing : {"pairwise", "listwise"}, default "pairwise"
        ``"pairwise"``: thresholds from each item's available answers, each pair's
        correlation from the respondents who answered both (lavaan ``missing="pairwise"``).
        ``"listwise"``: only respondents who answered every item.
    max_categories : int, default 20
        An item with more distinct values raises :class:`cips_stats.DataError`.
    correct : float, default 0.0
        Added to empty cells of each bivariate table before estimation (psych's
        ``correct=``; 0 = none, as lavaan for tables larger than 2 x 2).
    weight : array_like or str, optional
        Survey weights, one per row (or the name of a column of ``data``, which is then
        not an item). Normalised to sum to the number of rows, as lavaan's
        ``sampling.weights`` (``sampling.weights.normalization="total"``): thresholds and
        tables are weighted, and Gamma is the weighted sandwich. ``n_pairs`` stays unweighted.
    tol : float, default 1e-10
        Convergence tolerance on the change in rho.
    max_iter : int, default 100
        Maximum Fisher-scoring iterations.

    Returns
    -------
    PolychoricResult
        ``.corr``, ``.thresholds``, ``.n_pairs``, ``.flags``, and ``.gamma()`` for WLSMV.

    Notes
    -----
    Olsson (1979) two-step ML: thresholds ``tau_k = Phi^{-1}(cumulative proportion)`` per
    item; then for each pair the log-likelihood ``sum_ab n_ab log pi_ab(rho)`` with
    ``pi_ab = Phi2(tau_a, tau_b; rho) - Phi2(tau_{a-1}, tau_b; rho) - Phi2(tau_a, tau_{b-1}; rho)
    + Phi2(tau_{a-1}, tau_{b-1}; rho)`` is maximised in rho by Fisher scoring with step
    halving, within [-0.999, 0.999] as lavaan. Checked against
    ``lavaan::lavCor(ordered=TRUE, missing="pairwise")`` 0.6-14 and
    ``psych::polychoric(correct=0)`` 2.2.9 on psych's bfi items (tests/reference).

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.factor.polychoric import polychoric
    >>> x = np.array([[1, 1], [1, 2], [2, 2], [2, 3], [3, 3], [3, 2], [1, 1], [2, 1]])
    >>> res = polychoric(x)
    >>> res.n_pairs.iloc[0, 1]
    np.int64(8)
    >>> bool(res.corr.iloc[0, 1] > 0.5)
    True
    """
    if missing not in ("pairwise", "listwise"):
        raise DataError(f"missing= argument must be 'pairwise' or 'listwise'; got {missing!r}.")
    if not (np.isfinite(correct) and correct >= 0):
        raise DataError(f"correct= argument must be a non-negative number; got {correct!r}.")
    frame = _as_frame(data)
    weights = None
    if weight is not None:
        if isinstance(weight, str):
            if weight not in frame.columns:
                raise DataError(f"weight= names {weight!r}, which is not a column of the data.")
            weights = frame[weight]
            frame = frame.drop(columns=weight)
        else:
            weights = weight
        weights = _check_weights(weights, len(frame))
    if frame.shape[1] < 2:
        raise DataError(f"Polychoric correlations need at least 2 items; got {frame.shape[1]}.")
    names = [str(c) for c in frame.columns]
    codes, levels, flags = _code_items(frame, max_categories)
    if missing == "listwise":
        keep = (codes >= 0).all(axis=1)
        codes = codes[keep]
        if weights is not None:
            weights = weights[keep] * (keep.sum() / weights[keep].sum())
        if keep.sum() < len(keep):
            flags.append(Flag("listwise", f"Listwise deletion kept {int(keep.sum())} of {len(keep)} rows.",
                              severity="info", where={"kept": int(keep.sum()), "n": int(len(keep))}))
        # re-code against the retained rows (categories may vanish)
        frame2 = pd.DataFrame(np.where(codes >= 0, codes, np.nan), columns=names)
        codes, levels2, flags2 = _code_items(frame2, max_categories)
        levels = [lv[lv2.astype(int)] if lv2.size else lv2 for lv, lv2 in zip(levels, levels2)]
        flags += [f for f in flags2 if f.code != "empty_category"]
    n, p = codes.shape
    ncat = np.array([len(lv) for lv in levels])
    kmax = max(int(ncat.max(initial=2)), 2)
    tau, counts, nobs = _thresholds_from_codes(codes, ncat, kmax, weights)
    nobs = (codes >= 0).sum(axis=0)
    ii, jj = _pair_index(p)
    tables = _pair_tables(codes, kmax, ii, jj, weights=weights)
    raw_tables = tables                  # kept for Gamma (before any correction of empty cells)
    if weights is None:
        npair_n = tables.sum(axis=(1, 2))
    else:                                # respondents answering both items of each pair
        answered = (codes >= 0).astype(float)
        npair_n = (answered.T @ answered)[ii, jj]
    usable_item = ncat >= 2
    usable = usable_item[ii] & usable_item[jj] & (npair_n > 0)
    if correct > 0:
        valid_cell = (np.arange(kmax)[None, :, None] < ncat[ii][:, None, None]) & \
                     (np.arange(kmax)[None, None, :] < ncat[jj][:, None, None])
        tables = np.where(valid_cell & (tables == 0), correct, tables)
    rho = np.full(len(ii), np.nan)
    iters = 0
    if usable.any():
        r_u, not_conv, iters = _fit_rhos(tables[usable], tau[ii[usable]], tau[jj[usable]],
                                         tol=tol, max_iter=max_iter)
        rho[usable] = r_u
        if not_conv.any():
            bad = np.flatnonzero(usable)[not_conv]
            flags.append(Flag("not_converged", f"{bad.size} polychoric correlation(s) did not converge "
                              f"in {max_iter} iterations.", severity="warning",
                              where={"pairs": [(names[jj[b]], names[ii[b]]) for b in bad[:50]]}))
    zero_pairs = np.flatnonzero(usable_item[ii] & usable_item[jj] & (npair_n == 0))
    if zero_pairs.size:
        flags.append(Flag("no_pairwise_data", f"{zero_pairs.size} item pair(s) have no respondent "
                          "answering both; their correlation is undefined (NaN).", severity="error",
                          where={"pairs": [(names[jj[b]], names[ii[b]]) for b in zero_pairs[:50]]}))
    at_bound = np.flatnonzero(np.abs(rho) >= RHO_BOUND - 1e-12)
    if at_bound.size:
        flags.append(Flag("boundary", f"{at_bound.size} polychoric correlation(s) reached the bound "
                          f"+-{RHO_BOUND} (nearly 1 in absolute value).", severity="warning",
                          where={"pairs": [(names[jj[b]], names[ii[b]]) for b in at_bound[:50]]}))
    if correct == 0:
        valid_cell = (np.arange(kmax)[None, :, None] < ncat[ii][:, None, None]) & \
                     (np.arange(kmax)[None, None, :] < ncat[jj][:, None, None])
        nzero = ((tables == 0) & valid_cell & usable[:, None, None]).any(axis=(1, 2))
        if nzero.any():
            flags.append(Flag("zero_cells", f"{int(nzero.sum())} of {len(ii)} bivariate tables have "
                              "empty cells (no correction applied, as lavaan).", severity="info",
                              where={"n_tables": int(nzero.sum())}))
    corr = np.eye(p)
    corr[ii, jj] = rho
    corr[jj, ii] = rho
    for j in np.flatnonzero(~usable_item):
        corr[j, j] = np.nan
    npairs_mat = np.diag(nobs.astype(np.int64))
    npairs_mat[ii, jj] = npair_n.astype(np.int64)
    npairs_mat[jj, ii] = npair_n.astype(np.int64)
    min_eig = float("nan")
    if np.isfinite(corr).all():
        min_eig = float(np.linalg.eigvalsh(corr)[0])
        if min_eig <= 0:
            flags.append(Flag("not_positive_definite", "The polychoric matrix is not positive definite "
                              f"(smallest eigenvalue {min_eig:.3g}); it is returned as estimated. "
                              "Use .smoothed() for a smoothed version.", severity="warning",
                              where={"min_eigenvalue": min_eig}))
    small = np.flatnonzero(usable & (npair_n < 50))
    if small.size:
        flags.append(Flag("small_pairwise_n", f"{small.size} pair(s) rest on fewer than 50 respondents.",
                          severity="caution", where={"min_n": int(npair_n[small].min())}))
    th = {nm: tau[j, 1:ncat[j]].copy() if ncat[j] >= 2 else np.array([]) for j, nm in enumerate(names)}
    lv = {nm: levels[j] for j, nm in enumerate(names)}
    prov = Provenance.build("polychoric", data=frame,
                            options={"missing": missing, "max_categories": max_categories,
                                     "correct": correct, "tol": tol, "max_iter": max_iter,
                                     "weighted": weights is not None})
    return PolychoricResult(
        corr=pd.DataFrame(corr, index=names, columns=names), thresholds=th, levels=lv,
        n_pairs=pd.DataFrame(npairs_mat, index=names, columns=names), n=int(n),
        min_eigenvalue=min_eig, iterations=int(iters), _codes=codes, _weights=weights, _tables=raw_tables,
        provenance=prov, flags=tuple(flags))


# --------------------------------------------------------------------------- Gamma
#: Floats in one block of transformed scores accumulated into Gamma (16 MiB): the blocks are big enough
#: for the symmetric rank-k update to run at full speed and small enough to keep memory flat in n.
_GAMMA_BLOCK_FLOATS = 1 << 21


def _gamma(res: PolychoricResult, chunk: int | None = None) -> np.ndarray:
    """N-scaled ``A^-1 B A^-T`` (see :meth:`PolychoricResult.gamma`), in one pass over the rows.

    ``A`` is block-triangular and cheap to invert before the pass: its per-item blocks
    ``A11`` are sums over answer categories of the univariate scores (weighted counts),
    ``A22`` and ``A21`` sums over the cells of the pairwise tables.  So each row's score
    vector is mapped to ``u_i = A^-1 s_i`` by table look-ups (a threshold block depends
    on the item's answer, a correlation entry on the pair's two answers), and
    ``Gamma = n sum_i w_i^2 u_i u_i'`` is one symmetric rank-k update per block of rows:
    about half the work of ``S'S`` and no ``(T + P)^3`` products afterwards.
    """
    from scipy.linalg import blas

    codes = res._codes
    wts = res._weights
    names = list(res.corr.columns)
    n, p = codes.shape
    corr = res.corr.to_numpy()
    if not np.isfinite(corr).all():
        from ..errors import ModelError
        raise ModelError("Gamma needs every polychoric correlation; some are undefined (see flags).")
    ncat = np.array([len(res.thresholds[c]) + 1 for c in names])
    kmax = int(ncat.max())
    tau = np.full((p, kmax + 1), np.inf)
    tau[:, 0] = -np.inf
    for j, c in enumerate(names):
        tau[j, 1:ncat[j]] = res.thresholds[c]
    ii, jj = _pair_index(p)
    npair = len(ii)
    rho = corr[ii, jj]
    # --- univariate threshold scores, per item and category: d log P_c / d tau_m
    th_start = np.concatenate([[0], np.cumsum(ncat - 1)])
    T = int(th_start[-1])
    # uni_sc[j, c, m] (m = 0..kmax-2 -> threshold m+1)
    pc = _ncdf(np.clip(tau[:, 1:], -_BIG, _BIG)) - _ncdf(np.clip(tau[:, :-1], -_BIG, _BIG))   # (p, kmax)
    dens = _npdf(np.clip(tau, -_BIG, _BIG))                                                      # (p, kmax+1)
    uni_sc = np.zeros((p, kmax, kmax - 1))
    for m in range(kmax - 1):          # threshold m+1 bounds category m (above) and m+1 (below)
        with np.errstate(divide="ignore", invalid="ignore"):
            uni_sc[:, m, m] = np.where(pc[:, m] > 0, dens[:, m + 1] / pc[:, m], 0.0)
            uni_sc[:, m + 1, m] = np.where(pc[:, m + 1] > 0, -dens[:, m + 1] / pc[:, m + 1], 0.0)
    valid_th = np.arange(kmax - 1)[None, :] < (ncat - 1)[:, None]
    uni_sc *= valid_th[:, None, :]
    # --- bivariate scores in rho and in thresholds (per cell)
    t1, t2 = tau[ii], tau[jj]
    H = t1[:, :, None]
    Kk = t2[:, None, :]
    R = rho[:, None, None]
    F = bvn_cdf(H, Kk, R)
    prob = F[:, 1:, 1:] - F[:, :-1, 1:] - F[:, 1:, :-1] + F[:, :-1, :-1]
    f = _bvn_pdf(H, Kk, R)
    dprob = f[:, 1:, 1:] - f[:, :-1, 1:] - f[:, 1:, :-1] + f[:, :-1, :-1]
    ok = prob > 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        sc_rho = np.where(ok, dprob / prob, 0.0)                   # (P, K, K)
        # d F(t1_a, t2_b)/d t1_a = phi(t1_a) Phi((t2_b - r t1_a)/s)  -> G1 (P, K+1, K+1)
        G1 = _dcdf_dh(H, Kk, R)
        G2 = _dcdf_dh(Kk, H, R)
    # dP_ab/d t1_m  (m = 1..K-1): cell a == m gets +(G1[m, b+1] - G1[m, b]); a == m+1 gets -(...)
    d1 = G1[:, :, 1:] - G1[:, :, :-1]        # (P, K+1, K): for threshold index m (0..K), column b
    d2 = G2[:, 1:, :] - G2[:, :-1, :]        # (P, K, K+1)
    # A21 (per pair: its two items' thresholds) and A22 via cell sums
    tables = res._tables
    if tables is None or tables.shape != (npair, kmax, kmax):
        tables = _pair_tables(codes, kmax, ii, jj, weights=wts)
    A22 = (tables * sc_rho * sc_rho).sum(axis=(1, 2))
    A21_1 = np.zeros((npair, kmax - 1))      # d/d thresholds of item ii (rows of the tables)
    A21_2 = np.zeros((npair, kmax - 1))      # d/d thresholds of item jj (columns)
    w = tables * sc_rho
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in range(1, kmax):
            # thresholds of item ii (rows): cells a=m-1 (upper bound) and a=m (lower bound)
            s_up = np.where(ok[:, m - 1, :], d1[:, m, :] / prob[:, m - 1, :], 0.0)    # (P, K)
            s_lo = np.where(ok[:, m, :], -d1[:, m, :] / prob[:, m, :], 0.0) if m < kmax else 0.0
            A21_1[:, m - 1] = (w[:, m - 1, :] * s_up).sum(axis=1) + (w[:, m, :] * s_lo).sum(axis=1)
            s_up2 = np.where(ok[:, :, m - 1], d2[:, :, m] / prob[:, :, m - 1], 0.0)
            s_lo2 = np.where(ok[:, :, m], -d2[:, :, m] / prob[:, :, m], 0.0)
            A21_2[:, m - 1] = (w[:, :, m - 1] * s_up2).sum(axis=1) + (w[:, :, m] * s_lo2).sum(axis=1)
    A21_1 *= valid_th[ii]
    A21_2 *= valid_th[jj]
    # A11: per item sum_i w_i s_ij s_ij' = sum over categories of the (weighted) counts times the scores
    obs = codes >= 0
    flat = (codes + (np.arange(p) * kmax)[None, :])[obs]
    cnt = np.bincount(flat, weights=None if wts is None else np.broadcast_to(wts[:, None], codes.shape)[obs],
                      minlength=p * kmax).reshape(p, kmax).astype(float)
    A11 = np.einsum("jc,jcm,jcl->jml", cnt, uni_sc, uni_sc)
    L = np.zeros_like(A11)                   # the per-item blocks of A^-1
    for j in range(p):
        k = int(ncat[j]) - 1
        L[j, :k, :k] = np.linalg.inv(A11[j, :k, :k])
    d22 = 1.0 / A22
    # A^-1 = [[L, 0], [C, D]], D = diag(1 / A22), C = -D A21 L: row k of C touches the pair's two items only
    C1 = -d22[:, None] * np.einsum("km,kml->kl", A21_1, L[ii])
    C2 = -d22[:, None] * np.einsum("km,kml->kl", A21_2, L[jj])
    # look-up tables of u = A^-1 s; answer code kmax = missing (contributes nothing of its own)
    K1 = kmax + 1
    lt_th = np.zeros((p, K1, kmax - 1))
    lt_th[:, :kmax, :] = np.einsum("jml,jcl->jcm", L, uni_sc)
    E1 = np.einsum("kl,kcl->kc", C1, uni_sc[ii])                     # (P, K): C's part through item ii
    E2 = np.einsum("kl,kcl->kc", C2, uni_sc[jj])
    lt_rho = np.zeros((npair, K1, K1))
    lt_rho[:, :kmax, :kmax] = d22[:, None, None] * sc_rho + E1[:, :, None] + E2[:, None, :]
    lt_rho[:, :kmax, kmax] = E1
    lt_rho[:, kmax, :kmax] = E2
    lt_th = lt_th.reshape(p * K1, kmax - 1)
    lt_rho = lt_rho.ravel()
    th_sel = np.flatnonzero(valid_th.ravel())                        # (item, m) in threshold order
    all_th = th_sel.size == p * (kmax - 1)
    item_off = (np.arange(p) * K1)[None, :]
    pair_off = (np.arange(npair) * (K1 * K1))[None, :]
    dim = T + npair
    rows = int(chunk) if chunk else max(256, _GAMMA_BLOCK_FLOATS // max(dim, 1))
    acc = np.zeros((dim, dim), order="F")
    for s in range(0, n, rows):
        c = np.where(codes[s:s + rows] >= 0, codes[s:s + rows], kmax).astype(np.intp)
        u = np.empty((c.shape[0], dim))
        th = lt_th[c + item_off].reshape(c.shape[0], -1)
        u[:, :T] = th if all_th else th[:, th_sel]
        idx = np.take(c * K1, ii, axis=1)               # the cell of each pair: (a K1 + b) + the pair's offset
        idx += np.take(c, jj, axis=1)
        idx += pair_off
        u[:, T:] = np.take(lt_rho, idx)
        if wts is not None:
            u *= wts[s:s + rows, None]
        # acc += u'u (upper triangle): u.T is Fortran-ordered, so nothing is copied
        acc = blas.dsyrk(1.0, u.T, beta=1.0, c=acc, trans=0, lower=0, overwrite_c=1)
    G = np.triu(acc)
    G += np.triu(acc, 1).T
    return n * G
