"""Normal-theory maximum likelihood for CFA: complete data and FIML.

The workhorse behind ``cs.factor.cfa(..., estimator="ML"|"MLR")``.  Everything is
written as the log-likelihood of multivariate normal data, so that complete data
and full-information ML (FIML, missing at random) share one code path:

* complete data: ``-loglik_g = n_g/2 [p log(2 pi) + log|Sigma| + tr(S Sigma^-1)
  + (m - mu)' Sigma^-1 (m - mu)]`` with ``S`` the covariance with divisor ``n_g``;
* FIML: the casewise likelihood over the observed part of each row.  With
  ``W = Sigma^-1`` and a row's missing set ``m``, ``Sigma_oo^-1`` embedded in p × p
  is ``W - W[:, m] W_mm^-1 W[m, :]`` and ``log|Sigma_oo| = log|Sigma| + log|W_mm|``,
  so each row costs ``O(p k + k^3)`` for ``k`` missing values — no inversion per
  missing-data pattern.  The rows are processed in batches of equal ``k``.

The gradient is analytic (chain rule through
:meth:`~cips_stats.factor.model.CFAModel.dsigma_full`); the optimiser is Fisher
scoring (Gauss-Newton on the expected information) with step halving, which for
CFA converges in a handful of iterations.  The saturated (H1) model under FIML is
fitted by EM; its observed and first-order information (needed by MLR's scaled test
and the FIML-corrected robust indices) are analytic (:func:`h1_fiml_information`).
Both depend only on the data, so they are cached per data block (a hash of the rows):
the fits of an invariance ladder, which share the rows of each group, compute them once.

Examples
--------
>>> import numpy as np
>>> from cips_stats.factor.syntax import build_partable
>>> from cips_stats.factor.model import CFAModel
>>> rng = np.random.default_rng(0)
>>> y = rng.normal(size=(200, 1)) @ [[1.0, 0.8, 0.6]] + rng.normal(size=(200, 3)) * 0.5
>>> prob = MLProblem(CFAModel(build_partable("f =~ a + b + c")), [y])
>>> fit = prob.fit()
>>> fit.converged, round(fit.chi2, 6)
(True, 0.0)
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .model import CFAModel, vech_indices

__all__ = ["GroupData", "MLProblem", "MLFit", "em_saturated", "h1_fiml_information", "clear_h1_cache"]

_LOG2PI = math.log(2 * math.pi)

#: Per-data-block results that do not depend on the structured model (EM estimates of the
#: saturated model, its observed and first-order information under FIML), keyed by a hash of
#: the data, so that the fits of an invariance ladder (same rows, other constraints) compute
#: them once. Bounded in bytes (least recently used entries are dropped first).
_H1_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_H1_CACHE_BYTES = 256 * 2 ** 20


def _data_key(y: np.ndarray) -> tuple:
    a = np.ascontiguousarray(y, dtype=float)
    return (a.shape, hashlib.blake2b(a.tobytes(), digest_size=20).hexdigest())


def _cache_get(key: tuple):
    hit = _H1_CACHE.get(key)
    if hit is not None:
        _H1_CACHE.move_to_end(key)
    return hit


def _cache_put(key: tuple, value: tuple) -> None:
    size = sum(v.nbytes for v in value if isinstance(v, np.ndarray))
    if size > _H1_CACHE_BYTES:
        return
    _H1_CACHE[key] = value
    _H1_CACHE.move_to_end(key)
    total = sum(sum(v.nbytes for v in val if isinstance(v, np.ndarray)) for val in _H1_CACHE.values())
    while total > _H1_CACHE_BYTES and len(_H1_CACHE) > 1:
        _, old = _H1_CACHE.popitem(last=False)
        total -= sum(v.nbytes for v in old if isinstance(v, np.ndarray))


def clear_h1_cache() -> None:
    """Forget the cached saturated-model results (EM estimates, h1 information, polychoric samples).

    Parameters
    ----------
    None

    Returns
    -------
    None

    Examples
    --------
    >>> from cips_stats.factor.ml import clear_h1_cache
    >>> clear_h1_cache()
    """
    _H1_CACHE.clear()


@dataclass
class GroupData:
    """Data of one group: raw rows (NaN = missing) and the sample moments.

    ``cov`` has divisor ``n`` (lavaan's ``likelihood="normal"``). Under FIML
    ``mean``/``cov`` are the EM estimates of the saturated model.
    """

    y: np.ndarray
    n: int
    mean: np.ndarray
    cov: np.ndarray
    fiml: bool = False
    y0: np.ndarray | None = None          # NaN → 0
    obs: np.ndarray | None = None         # observed mask
    kgroups: list | None = None           # [(k, rows, missing-cols (n_k, k))]
    n_obs_var: np.ndarray | None = None   # observed count per row
    key: tuple | None = None              # hash of y (cache key of saturated-model results)
    patterns: list | None = None          # per kgroup: (unique missing-cols (u, k), row -> pattern, counts)


def _prepare_fiml(y: np.ndarray) -> GroupData:
    obs = ~np.isnan(y)
    y0 = np.where(obs, y, 0.0)
    k = (~obs).sum(1)
    kgroups = []
    for kk in np.unique(k):
        if kk == 0:
            continue
        rows = np.flatnonzero(k == kk)
        mis = np.nonzero(~obs[rows])[1].reshape(len(rows), kk)
        kgroups.append((int(kk), rows, mis))
    gd = GroupData(y=y, n=len(y), mean=np.zeros(y.shape[1]), cov=np.eye(y.shape[1]), fiml=True, y0=y0,
                   obs=obs, kgroups=kgroups, n_obs_var=obs.sum(1))
    gd.patterns = _missing_patterns(kgroups)
    return gd


def _missing_patterns(kgroups) -> list:
    """Per group of rows with k missing items: the distinct missing patterns, each row's pattern and
    the rows per pattern.  Everything that depends on the pattern alone (the inverse of ``W_mm``, its
    log-determinant, the pattern's part of the observed information) is computed once per pattern."""
    out = []
    for _k, _rows, mis in kgroups:
        umis, inv, cnt = np.unique(mis, axis=0, return_inverse=True, return_counts=True)
        out.append((umis, inv.reshape(-1), cnt))
    return out


def _patterns_of(gd: GroupData) -> list:
    if gd.patterns is None:
        gd.patterns = _missing_patterns(gd.kgroups or [])
    return gd.patterns


def _pattern_inverses(W: np.ndarray, umis: np.ndarray, logdet: bool = False):
    """``(W_mm)^-1`` of every distinct missing pattern (and ``log det W_mm``)."""
    Wmm = W[umis[:, :, None], umis[:, None, :]]
    inv = np.linalg.inv(Wmm)
    if not logdet:
        return inv
    cm = np.linalg.cholesky(Wmm)
    return inv, 2.0 * np.log(np.diagonal(cm, axis1=1, axis2=2)).sum(1)


def _active(dS: np.ndarray, dmu: np.ndarray) -> np.ndarray:
    """Indices of the parameters whose derivative of one group's (Sigma, mu) is not zero (the
    other groups' own parameters drop out of that group's information and scores)."""
    nz = np.any(dS != 0, axis=(1, 2))
    if dmu is not None and dmu.size:
        nz |= np.any(dmu != 0, axis=1)
    return np.flatnonzero(nz)


def _chol_inv(sigma: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse and log-determinant of a PD matrix; raises LinAlgError when not PD."""
    c = np.linalg.cholesky(sigma)
    ci = np.linalg.inv(c)
    return ci.T @ ci, 2.0 * float(np.sum(np.log(np.diag(c))))


def fiml_parts(gd: GroupData, sigma: np.ndarray, mu: np.ndarray, *, need_grad: bool = True,
               need_rows: bool = False) -> dict:
    """Casewise normal log-likelihood of one group with missing values, and its pieces.

    Returns a dict with ``loglik`` (sum over rows), and when ``need_grad``: ``M``
    (p × p, the sum over rows of ``Sigma_oo^-1 - z z'`` embedded) and ``zsum``
    (sum over rows of ``z = Sigma_oo^-1 (y_o - mu_o)`` embedded), so that
    ``d(-loglik) = 1/2 tr(M dSigma) - zsum' dmu``. With ``need_rows`` also ``Z``
    (n × p), ``W`` and per-``k`` inverse blocks for casewise scores.
    """
    W, logdet = _chol_inv(sigma)
    D = (gd.y0 - mu) * gd.obs
    U = D @ W
    q = np.einsum("ij,ij->i", D, U)
    ld = np.full(gd.n, logdet)
    Z = U.copy()
    K = np.zeros_like(W)
    inv_blocks, pattern_blocks = [], []
    for (k, rows, mis), (umis, pat, cnt) in zip(gd.kgroups, _patterns_of(gd)):
        inv_u, ld_u = _pattern_inverses(W, umis, logdet=True)       # once per distinct pattern
        ld[rows] += ld_u[pat]
        Wmm_inv = inv_u[pat]
        um = np.take_along_axis(U[rows], mis, axis=1)
        r = np.einsum("nij,nj->ni", Wmm_inv, um)
        q[rows] -= np.einsum("ni,ni->n", um, r)
        if need_grad or need_rows:
            Wc = W[:, mis]  # (p, n_k, k)
            Z[rows] -= np.einsum("pnk,nk->np", Wc, r)
            np.add.at(K, (umis[:, :, None], umis[:, None, :]), inv_u * cnt[:, None, None])
        if need_rows:
            inv_blocks.append(Wmm_inv)
            pattern_blocks.append(inv_u)
    loglik = -0.5 * float(np.sum(gd.n_obs_var * _LOG2PI + ld + q))
    out = {"loglik": loglik}
    if need_grad:
        M = gd.n * W - W @ K @ W - Z.T @ Z
        out["M"] = M
        out["zsum"] = Z.sum(0)
    if need_rows:
        out.update(Z=Z, W=W, inv_blocks=inv_blocks, pattern_blocks=pattern_blocks, K=K)
    return out


def em_saturated(gd: GroupData, *, tol: float = 1e-10, max_iter: int = 2000) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """EM estimates of the unrestricted mean and covariance under missing values.

    Parameters
    ----------
    gd : GroupData
        One group's rows (NaN = missing), prepared for FIML.
    tol : float
        Largest change of a moment at convergence.
    max_iter : int
        Most EM iterations.

    Returns
    -------
    tuple
        ``(mean, cov, iterations, converged)``.

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.factor.ml import _prepare_fiml, em_saturated
    >>> y = np.random.default_rng(1).normal(size=(200, 3)); y[::7, 2] = np.nan
    >>> mean, cov, it, ok = em_saturated(_prepare_fiml(y))
    >>> ok, cov.shape
    (True, (3, 3))

    Notes
    -----
    E-step: with ``W = Sigma^-1``,
    the conditional mean of the missing part is ``mu_m - W_mm^-1 W_mo (y_o - mu_o)``
    and its conditional covariance ``W_mm^-1``.
    """
    y, obs = gd.y, gd.obs
    mu = np.nanmean(y, axis=0)
    var = np.nanvar(y, axis=0)
    sigma = np.diag(np.where(var > 0, var, 1.0))
    # pairwise start, shrunk to PD
    yc = np.where(obs, y - mu, 0.0)
    cnt = obs.T.astype(float) @ obs.astype(float)
    pw = (yc.T @ yc) / np.maximum(cnt, 1)
    for lam in (1.0, 0.8, 0.5, 0.0):
        cand = lam * pw + (1 - lam) * np.diag(np.diag(pw))
        try:
            np.linalg.cholesky(cand)
            sigma = cand
            break
        except np.linalg.LinAlgError:
            continue
    n = gd.n
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        W, _ = _chol_inv(sigma)
        D = (gd.y0 - mu) * obs
        U = D @ W
        Yhat = np.where(obs, y, 0.0).copy()
        K = np.zeros_like(W)
        for (k, rows, mis), (umis, pat, cnt) in zip(gd.kgroups, _patterns_of(gd)):
            inv_u = _pattern_inverses(W, umis)                     # once per distinct pattern
            Wmm_inv = inv_u[pat]
            um = np.take_along_axis(U[rows], mis, axis=1)
            r = np.einsum("nij,nj->ni", Wmm_inv, um)
            fill = mu[mis] - r
            sub = Yhat[rows]
            np.put_along_axis(sub, mis, fill, axis=1)
            Yhat[rows] = sub
            np.add.at(K, (umis[:, :, None], umis[:, None, :]), inv_u * cnt[:, None, None])
        mu_new = Yhat.mean(0)
        Yc = Yhat - mu_new
        sigma_new = (Yc.T @ Yc + K) / n
        delta = max(np.max(np.abs(mu_new - mu)), np.max(np.abs(sigma_new - sigma)))
        mu, sigma = mu_new, sigma_new
        if delta < tol:
            converged = True
            break
    return mu, sigma, it, converged


@dataclass
class MLFit:
    """Raw output of :meth:`MLProblem.fit`."""

    theta: np.ndarray
    converged: bool
    iterations: int
    loglik: float
    loglik_h1: float
    loglik_baseline: float
    chi2: float
    df: int
    baseline_chi2: float
    baseline_df: int
    fmin: float
    message: str = ""


class MLProblem:
    """ML (or FIML) estimation of a :class:`~cips_stats.factor.model.CFAModel`.

    Parameters
    ----------
    model : CFAModel
    data : list of (n_g, p) arrays
        One array per group, columns in ``model.ov_names`` order; NaN = missing.
    fiml : bool
        Casewise (full-information) likelihood; else the rows must be complete.
    """

    #: Largest ``n (p + p(p+1)/2)^2`` for which the FIML scaled test is computed (see ``h1_trace``):
    #: the cost of the products over rows in :func:`h1_fiml_information`.
    h1_budget = 5e10

    def __init__(self, model: CFAModel, data: list[np.ndarray], *, fiml: bool = False):
        if len(data) != model.n_groups:
            raise ModelError(f"The model has {model.n_groups} groups but {len(data)} data blocks were given.")
        self.model = model
        self.fiml = fiml
        self.meanstructure = model.meanstructure
        self.groups: list[GroupData] = []
        self._setup_groups(data, fiml)

    @classmethod
    def _from_groups(cls, model: CFAModel, groups: list[GroupData], *, fiml: bool) -> "MLProblem":
        """The problem of ``model`` on groups already prepared (another model fitted to the same rows:
        an invariance ladder); the groups' data and EM moments depend on the rows alone."""
        if len(groups) != model.n_groups:
            raise ModelError(f"The model has {model.n_groups} groups but {len(groups)} data blocks were given.")
        self = cls.__new__(cls)
        self.model, self.fiml, self.meanstructure = model, fiml, model.meanstructure
        self.groups = list(groups)
        self.n_total = sum(g.n for g in self.groups)
        self.p = model.p
        self._vr, self._vc = vech_indices(self.p)
        return self

    def _setup_groups(self, data: list[np.ndarray], fiml: bool) -> None:
        model = self.model
        for y in data:
            y = np.asarray(y, dtype=float)
            if fiml:
                gd = _prepare_fiml(y)
                gd.key = _data_key(y)
                try:
                    hit = _cache_get(("em", gd.key))
                    if hit is None:
                        hit = em_saturated(gd)
                        _cache_put(("em", gd.key), hit)
                    mu, sig, it, ok = hit
                    mu, sig = mu.copy(), sig.copy()
                except np.linalg.LinAlgError:
                    n_obs, p_obs = y.shape
                    complete = int((~np.isnan(y)).all(axis=1).sum())
                    raise ModelError(
                        f"The unrestricted (saturated) model needed for FIML could not be estimated: its "
                        f"covariance matrix became non-positive-definite during EM ({n_obs} respondents, "
                        f"{p_obs} items, {complete} complete rows). The group is too small for this many "
                        f"items; fit fewer factors at a time, pool cells, or use estimator='WLSMV' "
                        f"(pairwise polychorics).",
                        {"n": n_obs, "p": p_obs, "complete_rows": complete, "cause": "saturated_not_pd"},
                    ) from None
                gd.mean, gd.cov = mu, sig
                gd.em_iterations, gd.em_converged = it, ok
            else:
                if np.isnan(y).any():
                    raise ModelError("Complete-data ML got missing values; use missing='fiml' or listwise deletion.")
                mu = y.mean(0)
                yc = y - mu
                gd = GroupData(y=y, n=len(y), mean=mu, cov=yc.T @ yc / len(y))
            self.groups.append(gd)
        self.n_total = sum(g.n for g in self.groups)
        self.p = model.p
        self._vr, self._vc = vech_indices(self.p)

    # ------------------------------------------------------------------ likelihood
    def _group_loglik(self, gd: GroupData, sigma, mu, need_grad=True):
        """Log-likelihood of one group and (M, zsum) with d(-ll) = tr(M dS)/2 - zsum'dmu."""
        if gd.fiml:
            return fiml_parts(gd, sigma, mu, need_grad=need_grad)
        W, logdet = _chol_inv(sigma)
        d = gd.mean - mu if self.meanstructure else np.zeros(self.p)
        C = gd.cov + np.outer(d, d)
        ll = -0.5 * gd.n * (self.p * _LOG2PI + logdet + float(np.sum(W * C)))
        out = {"loglik": ll}
        if need_grad:
            out["M"] = gd.n * (W - W @ C @ W)
            out["zsum"] = gd.n * (W @ d)
        return out

    def loglik(self, theta: np.ndarray) -> float:
        """Total log-likelihood at ``theta`` (``-inf`` where Sigma is not PD)."""
        try:
            return sum(self._group_loglik(gd, imp["sigma"], imp["mu"], need_grad=False)["loglik"]
                       for gd, imp in zip(self.groups, self.model.implied(theta)))
        except np.linalg.LinAlgError:
            return -np.inf

    def objective_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``-loglik / N`` and its analytic gradient."""
        imps = self.model.implied(theta)
        ders = self.model.dsigma_full(theta)
        f = 0.0
        g = np.zeros(self.model.npar)
        for gd, imp, (dS, dmu, _) in zip(self.groups, imps, ders):
            out = self._group_loglik(gd, imp["sigma"], imp["mu"])
            f -= out["loglik"]
            g += 0.5 * dS.reshape(len(g), -1) @ out["M"].ravel()
            if self.meanstructure:
                g -= dmu @ out["zsum"]
        return f / self.n_total, g / self.n_total

    def expected_information(self, theta: np.ndarray, *, unit: bool = True) -> np.ndarray:
        """Expected (Fisher) information of the structured model.

        ``sum_g n_g [1/2 tr(W dS_k W dS_l) + dmu_k' W dmu_l]`` (divided by N when ``unit``);
        complete-data expected information, also used as the FIML metric.
        """
        npar = self.model.npar
        info = np.zeros((npar, npar))
        for gd, imp, (dS, dmu, _) in zip(self.groups, self.model.implied(theta), self.model.dsigma_full(theta)):
            act = _active(dS, dmu)
            dS, dmu = dS[act], dmu[act]
            na = len(act)
            W, _ = _chol_inv(imp["sigma"])
            A = np.matmul(W, dS)  # W dS_k
            Af = A.reshape(na, -1)
            At = np.transpose(A, (0, 2, 1)).reshape(na, -1)
            I = 0.5 * Af @ At.T
            if self.meanstructure:
                I = I + dmu @ W @ dmu.T
            info[np.ix_(act, act)] += gd.n * I
        return info / self.n_total if unit else info

    def observed_information(self, theta: np.ndarray, *, unit: bool = True, chunk: int = 500,
                             chunk_elems: float = 2e6, expected: bool = False) -> np.ndarray:
        """Observed information: the analytic Hessian of ``-loglik`` (complete data and FIML).

        Per row, with ``P = Sigma_oo^-1`` embedded, ``z = P (y - mu)``, ``Sigma_k = dSigma/dtheta_k``
        and ``a_k = Sigma_k z + mu_k``::

            H_kl = sum_i [-1/2 tr(P Sigma_k P Sigma_l) + a_k' P a_l]
                   + 1/2 tr(M Sigma_kl) - zsum' mu_kl

        with ``M = sum_i (P - z z')``. ``P = W - W[:, m] W_mm^-1 W[m, :]`` splits every
        sum into a complete-data part (sufficient statistics) and a rank-k part per
        row; the last (second-derivative) term needs no pass over the data. With
        ``expected=True`` the expectation of each row's Hessian given its observed items is
        returned instead, ``sum_i [1/2 tr(P Sigma_k P Sigma_l) + mu_k' P mu_l]`` (lavaan's
        expected information under missing data, used for modification indices).
        """
        model = self.model
        if model.has_regressions and not expected:
            # second derivatives through (I - B)^-1 are not written out: differentiate the analytic gradient
            return self.numerical_information(theta, unit=unit)
        npar = model.npar
        H = np.zeros((npar, npar))
        imps = model.implied(theta)
        ders = model.dsigma_full(theta)
        Ms, zs = [], []
        for gd, imp, (dS, dmu, _) in zip(self.groups, imps, ders):
            act = _active(dS, dmu)          # parameters that move this group's moments
            dS, dmu = dS[act], dmu[act]
            npar = len(act)
            sigma = imp["sigma"]
            mu = imp["mu"] if self.meanstructure else gd.mean
            n = gd.n
            if gd.fiml:
                parts = fiml_parts(gd, sigma, mu, need_grad=True, need_rows=True)
                W, Z, K = parts["W"], parts["Z"], parts["K"]
                Szz = Z.T @ Z
                zsum = Z.sum(0)
                M = parts["M"]
            else:
                W, _ = _chol_inv(sigma)
                d = gd.mean - mu
                C = gd.cov + np.outer(d, d)
                Szz = n * W @ C @ W
                zsum = n * (W @ d)
                K = None
                M = n * W - Szz
            Ms.append(M)
            zs.append(zsum)
            WS = np.matmul(W, dS)                      # W Sigma_k
            WSt = np.transpose(WS, (0, 2, 1))
            T1 = n * (WS.reshape(npar, -1) @ WSt.reshape(npar, -1).T)
            if expected:
                T2 = n * (dmu @ W @ dmu.T) if self.meanstructure else np.zeros((npar, npar))
            else:
                SW = np.transpose(WS, (0, 2, 1))        # Sigma_k W (Sigma_k, W symmetric)
                SS = np.matmul(dS, Szz)                 # Sigma_l Szz
                T2 = SW.reshape(npar, -1) @ np.transpose(SS, (0, 2, 1)).reshape(npar, -1).T
                if self.meanstructure:
                    Wm = dmu @ W                        # (npar, p): W mu_k
                    Pz = dS @ zsum                      # (npar, p): Sigma_k zsum
                    X = Pz @ Wm.T
                    T2 += X + X.T + n * (dmu @ Wm.T)
            if K is not None and K.any():
                Rbar = W @ K @ W
                RS = np.matmul(Rbar, dS)
                X = RS.reshape(npar, -1) @ WSt.reshape(npar, -1).T   # tr(Rbar S_k W S_l)
                T1 -= X + X.T
                Wm = dmu @ W if self.meanstructure else None
                T1c, T2c = _missing_corrections(gd, parts["pattern_blocks"], WS, W, Wm, Z, expected=expected,
                                                chunk=chunk, chunk_elems=chunk_elems)
                T1 += T1c
                T2 -= T2c
            H[np.ix_(act, act)] += (0.5 * T1 + T2) if expected else (-0.5 * T1 + T2)
        # second-derivative term 1/2 tr(M Sigma_kl) - zsum' mu_kl, analytic per model-matrix entry
        if not expected:
            for blk, M_, z_, Mt in zip(model.blocks, Ms, zs, model.matrices(theta)):
                H += self._second_order(blk, M_, z_, Mt)
        H = 0.5 * (H + H.T)
        return H / self.n_total if unit else H

    def _second_order(self, blk, M, zsum, mats) -> np.ndarray:
        """``1/2 tr(M d2Sigma) - zsum' d2mu`` over pairs of parameters (loadings with loadings,
        factor (co)variances and latent means); other pairs have zero second derivatives."""
        npar = self.model.npar
        fr = blk.free >= 0
        kind, r, c, f = blk.kind[fr], blk.r[fr], blk.c[fr], blk.free[fr]
        if (kind == "D").any():
            raise ModelError("The observed information of scale (~*~) parameters is not available under ML.")
        L, P = mats["lambda_"], mats["psi"]
        iL = np.flatnonzero(kind == "L")
        iP = np.flatnonzero(kind == "P")
        iA = np.flatnonzero(kind == "A")
        E = len(kind)
        HE = np.zeros((E, E))
        if len(iL):
            oi, lj = r[iL], c[iL]
            HE[np.ix_(iL, iL)] = P[np.ix_(lj, lj)] * M[np.ix_(oi, oi)]
            if len(iP):
                ML = M @ L
                a, b = r[iP], c[iP]
                blk_lp = (lj[:, None] == a[None, :]) * ML[oi][:, b]
                off = a != b
                blk_lp = blk_lp + ((lj[:, None] == b[None, :]) * ML[oi][:, a]) * off[None, :]
                HE[np.ix_(iL, iP)] = blk_lp
                HE[np.ix_(iP, iL)] = blk_lp.T
            if len(iA) and self.meanstructure:
                la = r[iA]
                blk_la = -(lj[:, None] == la[None, :]).astype(float) * zsum[oi][:, None]
                HE[np.ix_(iL, iA)] = blk_la
                HE[np.ix_(iA, iL)] = blk_la.T
        G = np.zeros((npar, E))
        G[f, np.arange(E)] = 1.0
        return G @ HE @ G.T

    def numerical_information(self, theta: np.ndarray, *, unit: bool = True, h: float = 1e-5) -> np.ndarray:
        """Observed information by central differences of the analytic gradient (a check of
        :meth:`observed_information`)."""
        npar = self.model.npar
        H = np.zeros((npar, npar))
        for k in range(npar):
            step = h * max(1.0, abs(theta[k]))
            e = np.zeros(npar)
            e[k] = step
            gp = self.objective_gradient(theta + e)[1]
            gm = self.objective_gradient(theta - e)[1]
            H[:, k] = (gp - gm) / (2 * step)
        H = 0.5 * (H + H.T)
        return H if unit else H * self.n_total

    # ------------------------------------------------------------------ casewise scores
    def casewise_scores(self, theta: np.ndarray, *, chunk: int = 2000) -> list[np.ndarray]:
        """Casewise gradients of the log-likelihood (n_g × npar per group), structured model.

        Without a mean structure the means are the sample means (lavaan's convention).
        """
        model = self.model
        out = []
        w = np.where(self._vr == self._vc, 0.5, 1.0)
        dS_full = model.dsigma_full(theta) if any(gd.fiml for gd in self.groups) else None
        for gi, (gd, imp, J) in enumerate(zip(self.groups, model.implied(theta), model.jacobian(theta))):
            Js, Jm = J["sigma"], J["mu"]
            act = np.flatnonzero(np.any(Js != 0, axis=0) | np.any(Jm != 0, axis=0))
            Js, Jm = Js[:, act], Jm[:, act]
            mu = imp["mu"] if self.meanstructure else gd.mean
            if gd.fiml:
                parts = fiml_parts(gd, imp["sigma"], mu, need_grad=False, need_rows=True)
                Z, W = parts["Z"], parts["W"]
            else:
                W, _ = _chol_inv(imp["sigma"])
                Z = (gd.y - mu) @ W
            sc = np.empty((gd.n, len(act)))
            base = (W[self._vr, self._vc] * w) @ Js
            for s in range(0, gd.n, chunk):
                z = Z[s:s + chunk]
                zz = z[:, self._vr] * z[:, self._vc] * w
                sc[s:s + chunk] = zz @ Js - base[None, :]
            if gd.fiml and gd.kgroups:
                # + 1/2 tr(W[:, m] C W[m, :] Sigma_q) = 1/2 <C, (W Sigma_q W)[m, m]> per row with missing
                # values (C = W_mm^-1): k x k per row and parameter, never p x p
                dS = dS_full[gi][0][act]
                WSWt = np.ascontiguousarray(np.transpose(np.matmul(np.matmul(W, dS), W), (1, 2, 0)))
                for (k, rows, mis), Wmm_inv in zip(gd.kgroups, parts["inv_blocks"]):
                    for s in range(0, len(rows), chunk):
                        rr, mm, Bi = rows[s:s + chunk], mis[s:s + chunk], Wmm_inv[s:s + chunk]
                        X = WSWt[mm[:, :, None], mm[:, None, :]].reshape(len(rr), k * k, len(act))
                        sc[rr] += 0.5 * (Bi.reshape(len(rr), 1, k * k) @ X)[:, 0, :]
            if self.meanstructure:
                sc += Z @ Jm
            full = np.zeros((gd.n, model.npar))
            full[:, act] = sc
            out.append(full)
        return out

    # ------------------------------------------------------------------ fitting
    def start(self) -> np.ndarray:
        """Start values from the (EM) sample moments."""
        return self.model.start_values([g.cov for g in self.groups], [g.mean for g in self.groups])

    def fit(self, theta0: np.ndarray | None = None, *, max_iter: int = 500, tol: float = 1e-12) -> MLFit:
        """Maximise the likelihood by Fisher scoring with step halving.

        Converged when the Newton decrement ``g' I^-1 g`` of ``-loglik/N`` falls
        below ``tol``.
        """
        theta = self.start() if theta0 is None else np.asarray(theta0, dtype=float).copy()
        try:
            f, g = self.objective_gradient(theta)
        except np.linalg.LinAlgError:
            raise ModelError("The start values give a non-positive-definite implied covariance matrix.") from None
        converged = False
        message = "maximum number of iterations reached"
        it = 0
        stall = 0
        for it in range(1, max_iter + 1):
            try:
                info = self.expected_information(theta)
            except np.linalg.LinAlgError:
                message = "implied covariance matrix not positive definite"
                break
            ridge = 1e-10 * np.trace(info) / len(info)
            try:
                step = np.linalg.solve(info + ridge * np.eye(len(info)), -g)
            except np.linalg.LinAlgError:
                message = "information matrix singular (model not identified?)"
                break
            dec = float(-g @ step)
            if dec < tol:
                converged = True
                message = "converged"
                break
            t = 1.0
            accepted = False
            while t > 1e-8:
                cand = theta + t * step
                try:
                    fc, gc = self.objective_gradient(cand)
                except np.linalg.LinAlgError:
                    t *= 0.5
                    continue
                if np.isfinite(fc) and fc <= f - 1e-4 * t * dec:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                # no decrease possible at this precision: stationary if the decrement is tiny
                if dec < 1e-8:
                    converged = True
                    message = "converged (objective flat at machine precision)"
                else:
                    message = "line search failed"
                break
            if abs(f - fc) < 1e-15 * max(1.0, abs(f)):
                stall += 1
            theta, f, g = cand, fc, gc
            if stall >= 3 and dec < 1e-9:
                converged = True
                message = "converged (no further decrease)"
                break
        ll = -f * self.n_total
        ll1 = sum(self._h1_loglik(gd) for gd in self.groups)
        llb = sum(self._baseline_loglik(gd) for gd in self.groups)
        p = self.p
        G = self.model.n_groups
        moments = G * (p * (p + 1) // 2 + (p if self.meanstructure else 0))
        df = moments - self.model.npar
        base_df = G * (p * (p - 1) // 2)
        chi2 = max(2 * (ll1 - ll), 0.0) if df > 0 else 2 * (ll1 - ll)
        return MLFit(theta=theta, converged=converged, iterations=it, loglik=ll, loglik_h1=ll1,
                     loglik_baseline=llb, chi2=chi2, df=df, baseline_chi2=2 * (ll1 - llb), baseline_df=base_df,
                     fmin=0.5 * chi2 / self.n_total, message=message)

    def _h1_loglik(self, gd: GroupData) -> float:
        if gd.fiml:
            return fiml_parts(gd, gd.cov, gd.mean, need_grad=False)["loglik"]
        _, logdet = _chol_inv(gd.cov)
        return -0.5 * gd.n * (self.p * _LOG2PI + logdet + self.p)

    def _baseline_loglik(self, gd: GroupData) -> float:
        if gd.fiml:
            nj = gd.obs.sum(0)
            v = np.nanvar(gd.y, axis=0)
            return float(-0.5 * np.sum(nj * (_LOG2PI + np.log(v) + 1.0)))
        v = np.diag(gd.cov)
        return float(-0.5 * gd.n * np.sum(_LOG2PI + np.log(v) + 1.0))

    # ------------------------------------------------------------------ robust pieces
    def h1_trace(self) -> float:
        """``sum_g tr(B1_g A1_g^-1)`` of the unrestricted model (complete data).

        With Mahalanobis distances ``m_i = d_i' S^-1 d_i`` of the rows from the sample
        mean, ``tr(B1 A1^-1) = mean(m^2)/2 + p/2`` with a mean structure and
        ``mean(m^2)/2 - p/2`` without (the A1^-1-weighted norm of the casewise scores
        equals the A1-weighted norm of the moments' influence functions).
        """
        tot = 0.0
        for gd in self.groups:
            if gd.fiml:
                tot += self._h1_trace_fiml(gd)
                continue
            W, _ = _chol_inv(gd.cov)
            d = gd.y - gd.mean
            m = np.einsum("ij,jk,ik->i", d, W, d)
            tot += 0.5 * np.mean(m ** 2) + (0.5 if self.meanstructure else -0.5) * self.p
        return tot


    def _h1_budget_check(self, gd: GroupData) -> None:
        p = self.p
        dim = p + p * (p + 1) // 2
        cost = float(gd.n) * dim * dim
        if cost > self.h1_budget:
            raise ModelError("The FIML scaled test needs the observed information of the unrestricted model "
                             f"(a {dim}-square matrix summed over {gd.n} rows, about {cost:.1e} operations), above "
                             f"the budget of {self.h1_budget:.0e}; chi2_scaled and the scaled indices are not "
                             "computed. Robust standard errors are unaffected.")

    def h1_information_fiml(self, gd: GroupData) -> tuple[np.ndarray, np.ndarray]:
        """Observed information (total, Hessian of ``-loglik``) of the unrestricted FIML model at
        the EM estimates, and the first-order information ``J = sum_i s_i s_i'`` of its casewise
        scores; moments ordered ``(mu, vech Sigma)``.

        Analytic (see :func:`h1_fiml_information`), within the budget ``h1_budget`` (else
        ModelError), cached per data block (the same rows in another fit reuse it).
        """
        self._h1_budget_check(gd)
        key = ("h1", gd.key) if gd.key is not None else None
        hit = _cache_get(key) if key is not None else None
        if hit is None:
            A, J = h1_fiml_information(gd)
            hit = (A, J, np.linalg.inv(A))
            if key is not None:
                _cache_put(key, hit)
        return hit[0], hit[1]

    def _h1_inverse(self, gd: GroupData) -> np.ndarray:
        A, J = self.h1_information_fiml(gd)
        hit = _cache_get(("h1", gd.key)) if gd.key is not None else None
        return hit[2] if hit is not None else np.linalg.inv(A)

    def _h1_information_numerical(self, gd: GroupData) -> np.ndarray:
        """The same observed information by central differences of the analytic gradient
        (``2 (p + p(p+1)/2)`` passes over the data; a check of :func:`h1_fiml_information`)."""
        p = self.p
        vr, vc = self._vr, self._vc

        def grad(x):
            mu = x[:p]
            S = np.zeros((p, p))
            S[vr, vc] = x[p:]
            S[vc, vr] = x[p:]
            out = fiml_parts(gd, S, mu)
            gs = 0.5 * out["M"][vr, vc] * np.where(vr == vc, 1.0, 2.0)
            return np.concatenate([-out["zsum"], gs])

        x0 = np.concatenate([gd.mean, gd.cov[vr, vc]])
        dim = len(x0)
        A = np.zeros((dim, dim))
        for k in range(dim):
            step = 1e-5 * max(1.0, abs(x0[k]))
            e = np.zeros(dim)
            e[k] = step
            A[:, k] = (grad(x0 + e) - grad(x0 - e)) / (2 * step)
        return 0.5 * (A + A.T)

    def _h1_trace_fiml(self, gd: GroupData) -> float:
        """``tr(B1 A1^-1)`` of the saturated FIML model (lavaan's h1 information for MLR with
        missing="ml": observed information at the EM estimates, first-order from the casewise
        scores): ``sum_i s_i' A^-1 s_i = tr(A^-1 J)``."""
        A, J = self.h1_information_fiml(gd)
        return float(np.sum(self._h1_inverse(gd) * J))

    def fiml_corrected(self, theta: np.ndarray, version: str = "V3") -> dict:
        """Robust-fit ingredients under FIML as lavaan's ``lav_fit_fiml_corrected`` (V3 or V6).

        lavaan uses V3 with a scaled test (MLR) and V6 without (ML with FIML); V6's
        trace is ``tr(Wc Wm^-1 U Wm^-1) = tr(Wc Wm^-1) - tr(E Delta' Wc Delta)``.

        The model (and the independence model) evaluated against the EM moments as if they
        were complete-data moments gives ``XX3`` (and ``XX3_null``); the scaling factors
        ``c3 = tr(U Wm^-1 Wc Wm^-1 U Gamma) / df`` use ``Wm`` (observed h1 information under
        missing data), ``Wc`` (complete-data h1 information at the EM moments),
        ``Gamma = Wm^-1 Jm Wm^-1`` (``Jm`` first-order h1 information) and
        ``U = Wm - Wm Delta (Delta' Wm Delta)^-1 Delta' Wm`` (Savalei, 2010; Zhang & Savalei, 2023).

        With ``E = (Delta' Wm Delta)^-1`` the trace is expanded as
        ``tr(Wc Wm^-1 Jm Wm^-1) - 2 tr(E Delta' Wc Wm^-1 Jm Delta) + tr(E Delta' Wc Delta E Delta' Jm Delta)``
        (using ``Wm X Wm = Wc`` and ``Wm Gamma Wm = Jm``), so that only group blocks of the
        moment matrices are multiplied, never the block-diagonal matrix over all groups.
        """
        model = self.model
        p, ns = self.p, len(self._vr)
        vr, vc = self._vr, self._vc
        N = self.n_total
        G = model.n_groups
        dim = p + ns
        blocks = []
        xx3 = xx3_null = 0.0
        imps = model.implied(theta)
        jac = model.jacobian(theta)
        cw = np.where(vr == vc, 0.5, 1.0)
        A_, B_, C_, D_ = vr[:, None], vc[:, None], vr[None, :], vc[None, :]
        diag_pos = np.flatnonzero(vr == vc)
        tr0 = 0.0
        for gd, imp, J in zip(self.groups, imps, jac):
            fg = gd.n / N
            A_h1, Jsum = self.h1_information_fiml(gd)
            Jm = Jsum / gd.n
            Wt, logdet_t = _chol_inv(gd.cov)
            hit = _cache_get(("fc", gd.key)) if gd.key is not None else None
            if hit is None:
                # the model-free pieces of the trace, computed once per data block
                Wmi = gd.n * self._h1_inverse(gd)          # (A / n)^-1
                Wc = np.zeros((dim, dim))
                Wc[:p, :p] = Wt
                # 1/2 tr(W E_k W E_l) for elementary symmetric E of vech
                Wc[p:, p:] = (cw[:, None] * cw[None, :]) * (Wt[A_, C_] * Wt[B_, D_] + Wt[A_, D_] * Wt[B_, C_])
                WcWmi = Wc @ Wmi
                JmWmi = Jm @ Wmi
                hit = (Wc, WcWmi @ Jm, np.array(float(np.sum(WcWmi * JmWmi.T))), np.array(float(np.trace(WcWmi))))
                if gd.key is not None:
                    _cache_put(("fc", gd.key), hit)
            Wc, WcWmiJm, tr_g, tr_v6 = hit
            tr0 += float(tr_g if version == "V3" else tr_v6)
            # independence model: derivative of (mu, vech Sigma) w.r.t. (means, variances)
            DB = np.zeros((dim, 2 * p))
            DB[np.arange(p), np.arange(p)] = 1.0
            DB[p + diag_pos, p + vr[diag_pos]] = 1.0
            blocks.append(dict(fg=fg, A=A_h1 / gd.n, Wc=Wc, Jm=Jm, WcWmiJm=WcWmiJm,
                               D=np.vstack([J["mu"], J["sigma"]]), DB=DB))
            # complete-data ML chi-square against the EM moments
            S_t, m_t = gd.cov, gd.mean
            Wi, logdet = _chol_inv(imp["sigma"])
            d = m_t - imp["mu"]
            xx3 += gd.n * (logdet + np.sum(Wi * S_t) - logdet_t - p + d @ Wi @ d)
            mu_b = np.nanmean(gd.y, axis=0)
            v_b = np.nanvar(gd.y, axis=0)
            db = m_t - mu_b
            xx3_null += gd.n * (np.sum(np.log(v_b)) + np.sum(np.diag(S_t) / v_b) - logdet_t - p
                                + np.sum(db ** 2 / v_b))

        def k_of(name: str, per_group: bool) -> float:
            # Delta over groups: model Jacobians stacked (shared columns), or block-diagonal
            # independence-model Jacobians (own columns per group); each group's products are
            # taken over the columns that are not zero in that group only
            Ds = [b[name] for b in blocks]
            if per_group:
                off = np.cumsum([0] + [D.shape[1] for D in Ds])
                cols = [np.arange(off[g], off[g + 1]) for g in range(len(Ds))]
            else:
                cols = [np.flatnonzero(np.any(D != 0, axis=0)) for D in Ds]
                Ds = [D[:, c] for D, c in zip(Ds, cols)]
            ncol = int(max(c.max() for c in cols if len(c)) + 1)
            mats = {k: np.zeros((ncol, ncol)) for k in ("A", "Wc", "Jm", "WcWmiJm")}
            for b, D, c in zip(blocks, Ds, cols):
                ix = np.ix_(c, c)
                for k, M in mats.items():
                    M[ix] += b["fg"] * (D.T @ (b[k] @ D))
            used = np.flatnonzero(np.any(mats["A"] != 0, axis=0))
            DWmD, DWcD, DJD, DWJD = (mats[k][np.ix_(used, used)] for k in ("A", "Wc", "Jm", "WcWmiJm"))
            E = np.linalg.inv(DWmD)
            if version == "V6":
                return float(tr0 - np.trace(E @ DWcD))
            return float(tr0 - 2.0 * np.trace(E @ DWJD) + np.trace(E @ DWcD @ E @ DJD))

        df = G * dim - model.npar
        df_null = G * dim - G * 2 * p
        if df <= 0:              # a saturated model: no scaling factor (lavaan: NA)
            raise ModelError("The model has no degrees of freedom: robust fit measures are not defined.")
        c3 = k_of("D", False) / df
        c3_null = k_of("DB", True) / df_null
        return dict(XX3=xx3, df3=df, c_hat3=c3, XX3_scaled=xx3 / c3, XX3_null=xx3_null, df3_null=df_null,
                    c_hat3_null=c3_null)


def _syrk(X: np.ndarray, out: np.ndarray) -> None:
    """``out += X X'`` (upper triangle from BLAS syrk; symmetrised by the caller)."""
    from scipy.linalg.blas import dsyrk

    if X.shape[1]:
        out += dsyrk(1.0, np.asfortranarray(X))


def _missing_rows_of_products(Z: np.ndarray, mis: np.ndarray, WSr: np.ndarray) -> np.ndarray:
    """``(W Sigma_q z_i)[m_i]`` for rows ``i`` with missing items ``m_i`` (``mis``: (n, k)): only the k
    missing rows of each ``W Sigma_q``, as one GEMM per (position, item) over the rows missing that item
    (k of p rows: about p / k times less work than forming all of ``W Sigma_q z``)."""
    n, k = mis.shape
    p, npar = WSr.shape[0], WSr.shape[2]
    out = np.empty((n, k, npar))
    for a in range(k):
        col = mis[:, a]
        order = np.argsort(col, kind="stable")
        bounds = np.searchsorted(col[order], np.arange(p + 1))
        for i in np.flatnonzero(np.diff(bounds)):
            r = order[bounds[i]:bounds[i + 1]]
            out[r, a, :] = Z[r] @ WSr[i]
    return out


def _missing_corrections(gd: GroupData, pattern_blocks, WS, W, Wm, Z, *, expected: bool, chunk: int,
                         chunk_elems: float) -> tuple[np.ndarray, np.ndarray]:
    """The rank-k parts of the FIML information over rows with k missing items.

    With ``C_i = (W_mm)^-1 = L L'`` (Cholesky) and ``X_q = (W Sigma_q W)[m, m]``,
    ``sum_i tr(C X_q C X_r) = <L' X_q L, L' X_r L>``: the matrices ``L' X L`` are symmetric,
    so each row contributes the ``k(k+1)/2`` weighted entries of its upper triangle and the
    sum over rows is one symmetric rank-update (``syrk``, half a GEMM) over the parameters
    that move Sigma only (mean parameters have ``X = 0``). Likewise
    ``sum_i b_q' C b_r = (L' b_q) . (L' b_r)``. The products are batched over rows with the
    parameters inside each matrix (``k x k`` times ``k x (k npar)``), never one tiny product
    per row and parameter. ``C`` and ``X_q`` depend on the row's missing pattern alone, so the
    ``T1`` part is computed once per distinct pattern (``pattern_blocks``: ``C`` of each, from
    :func:`fiml_parts`), weighted by its number of rows; ``T2`` needs each row's ``z``.
    Returns ``(T1, T2)`` (symmetric).
    """
    npar, p = WS.shape[0], W.shape[0]
    cov_par = np.flatnonzero(np.any(WS != 0, axis=(1, 2)))
    ns = len(cov_par)
    WSWt = np.ascontiguousarray(np.transpose(np.matmul(WS[cov_par], W), (1, 2, 0)))   # [i, j, q]
    WSr = None if expected else np.ascontiguousarray(np.transpose(WS, (1, 2, 0)))  # [i, j, q]: row i of W Sigma_q
    Wmt = None if Wm is None else np.ascontiguousarray(Wm.T)                          # [i, q]
    T1s = np.zeros((ns, ns))
    T2 = np.zeros((npar, npar))
    for (k, rows, mis), (umis, pat, cnt), Cu in zip(gd.kgroups, _patterns_of(gd), pattern_blocks):
        iu, ju = np.triu_indices(k)
        wt = np.where(iu == ju, 1.0, np.sqrt(2.0))
        step = max(1, min(chunk, int(chunk_elems // (npar * k * max(k, p)))))
        Lu = np.linalg.cholesky(Cu)                                       # (u, k, k): per pattern
        if ns:
            for s0 in range(0, len(umis), step):
                mm, Lc, c = umis[s0:s0 + step], Lu[s0:s0 + step], cnt[s0:s0 + step]
                nn = len(mm)
                X = WSWt[mm[:, :, None], mm[:, None, :]]                  # (n, i, j, q)
                Y1 = (np.transpose(Lc, (0, 2, 1)) @ X.reshape(nn, k, k * ns)).reshape(nn, k, k, ns)  # [n, a, j, q]
                Y = (np.transpose(Y1, (0, 1, 3, 2)).reshape(nn, k * ns, k) @ Lc).reshape(nn, k, ns, k)
                # each pattern counts once per row that has it
                V = np.transpose(Y, (0, 1, 3, 2))[:, iu, ju, :] * (wt[None, :, None] * np.sqrt(c)[:, None, None])
                _syrk(V.reshape(nn * len(iu), ns).T, T1s)
        step2 = max(1, int(2 * chunk_elems // (k * npar)))              # rows per block of b (n, k, npar)
        for s0 in range(0, len(rows), step2):
            rr, mm = rows[s0:s0 + step2], mis[s0:s0 + step2]
            nn = len(rr)
            LcT = np.transpose(Lu[pat[s0:s0 + step2]], (0, 2, 1))
            if expected:
                if Wmt is None:
                    continue
                b = Wmt[mm]                                               # (n, k, npar)
            else:
                b = _missing_rows_of_products(Z[rr], mm, WSr)            # (W Sigma_q z)[m]: (n, k, npar)
                if Wmt is not None:
                    b = b + Wmt[mm]
            bt = LcT @ b                                                  # L' b: (n, k, npar)
            _syrk(bt.reshape(nn * k, npar).T, T2)
    T1 = np.zeros((npar, npar))
    T1s = np.triu(T1s) + np.triu(T1s, 1).T
    T1[np.ix_(cov_par, cov_par)] = T1s
    T2 = np.triu(T2) + np.triu(T2, 1).T
    return T1, T2


def h1_fiml_information(gd: GroupData, *, chunk_elems: float = 4e6) -> tuple[np.ndarray, np.ndarray]:
    """Observed information ``A`` (Hessian of ``-loglik``) and first-order information ``J``
    (``sum_i s_i s_i'``) of the saturated normal model under missing values, at ``gd.mean``,
    ``gd.cov`` (the EM estimates); parameters ``(mu, vech Sigma)``.

    Per row, with ``P = Sigma_oo^-1`` embedded in p × p, ``z = P (y - mu)`` and elementary
    symmetric ``E_k`` of ``vech`` (``c_k = 1/2`` on the diagonal, else 1)::

        A_mu,mu = sum_i P,    A_mu,ab = sum_i c_ab (P[:, a] z_b + P[:, b] z_a)
        A_ab,cd = sum_i c_ab c_cd [-(P_ac P_bd + P_ad P_bc)
                                   + z_b z_d P_ac + z_b z_c P_ad + z_a z_d P_bc + z_a z_c P_bd]
        s_i = (z, c (z z' - P)_vech)

    i.e. ``-1/2 tr(P E_k P E_l) + z' E_k P E_l z`` (Savalei 2010; lavaan's
    ``lav_mvnorm_missing_information_observed_samplestats``). Every sum is one of the
    matrix products ``sum_i vech(P_i) vech(P_i)'``, ``sum_i vech(P_i) vech(z_i z_i')'``,
    ``sum_i vech(z_i z_i') vech(z_i z_i')'`` and cross products with ``z``, accumulated over
    row chunks (rows without missing values share ``P = Sigma^-1``).

    Parameters
    ----------
    gd : GroupData
        One group's rows with its EM moments (``gd.mean``, ``gd.cov``).
    chunk_elems : float
        Work per chunk of rows (memory bound).

    Returns
    -------
    tuple of numpy.ndarray
        ``(A, J)``, each ``(p + p(p+1)/2)`` square.

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.factor.ml import _prepare_fiml, em_saturated, h1_fiml_information
    >>> y = np.random.default_rng(1).normal(size=(200, 3)); y[::7, 2] = np.nan
    >>> gd = _prepare_fiml(y); gd.mean, gd.cov = em_saturated(gd)[:2]
    >>> A, J = h1_fiml_information(gd)
    >>> A.shape
    (9, 9)
    """
    p = gd.y.shape[1]
    vr, vc = vech_indices(p)
    ns = len(vr)
    idx = np.empty((p, p), dtype=np.intp)
    idx[vr, vc] = np.arange(ns)
    idx[vc, vr] = np.arange(ns)
    parts = fiml_parts(gd, gd.cov, gd.mean, need_grad=False, need_rows=True)
    W, Z = parts["W"], parts["Z"]
    vW = W[vr, vc]
    XPP = np.zeros((ns, ns))
    XPZ = np.zeros((ns, ns))
    XZZ = np.zeros((ns, ns))
    PZ = np.zeros((ns, p))
    ZvZ = np.zeros((ns, p))
    Psum = np.zeros(ns)
    step = max(16, int(chunk_elems // max(ns, p * p)))
    complete = np.flatnonzero(gd.n_obs_var == p)
    n0 = len(complete)
    if n0:
        Psum += n0 * vW
        zs0 = np.zeros(ns)
        z0sum = np.zeros(p)
        for s in range(0, n0, step):
            z = Z[complete[s:s + step]]
            zv = z[:, vr] * z[:, vc]
            XZZ += zv.T @ zv
            ZvZ += zv.T @ z
            zs0 += zv.sum(0)
            z0sum += z.sum(0)
        XPP += n0 * np.outer(vW, vW)
        XPZ += np.outer(vW, zs0)
        PZ += np.outer(vW, z0sum)
    from scipy import sparse

    for (k, rows, mis), (umis, pat, cnt), Cu in zip(gd.kgroups, _patterns_of(gd), parts["pattern_blocks"]):
        # P_i depends on the row's missing pattern only: the sums with z are taken per pattern first
        u = len(umis)
        zv_sum, z_sum = np.zeros((u, ns)), np.zeros((u, p))
        for s in range(0, len(rows), step):
            rr, pp = rows[s:s + step], pat[s:s + step]
            z = Z[rr]
            zv = z[:, vr] * z[:, vc]
            XZZ += zv.T @ zv
            ZvZ += zv.T @ z
            by = sparse.csr_matrix((np.ones(len(rr)), (pp, np.arange(len(rr)))), shape=(u, len(rr)))
            zv_sum += by @ zv
            z_sum += by @ z
        for s in range(0, u, step):
            mm, C, c = umis[s:s + step], Cu[s:s + step], cnt[s:s + step].astype(float)
            Wc = np.transpose(W[:, mm], (1, 0, 2))              # (u, p, k)
            R = Wc @ C @ np.transpose(Wc, (0, 2, 1))             # (u, p, p)
            pv = vW[None, :] - R[:, vr, vc]
            XPP += pv.T @ (pv * c[:, None])
            XPZ += pv.T @ zv_sum[s:s + step]
            PZ += pv.T @ z_sum[s:s + step]
            Psum += c @ pv
    cw = np.where(vr == vc, 0.5, 1.0)
    A_, B_, C_, D_ = vr[:, None], vc[:, None], vr[None, :], vc[None, :]
    ac, bd, ad, bc = idx[A_, C_], idx[B_, D_], idx[A_, D_], idx[B_, C_]
    cc = cw[:, None] * cw[None, :]
    Hss = cc * (-(XPP[ac, bd] + XPP[ad, bc]) + XPZ[ac, bd] + XPZ[ad, bc] + XPZ[bc, ad] + XPZ[bd, ac])
    Hmm = Psum[idx]
    j = np.arange(p)[:, None]
    Hms = cw[None, :] * (PZ[idx[j, vr[None, :]], vc[None, :]] + PZ[idx[j, vc[None, :]], vr[None, :]])
    A = np.block([[Hmm, Hms], [Hms.T, Hss]])
    A = 0.5 * (A + A.T)
    Jmm = Z.T @ Z
    Jms = (ZvZ.T - PZ.T) * cw[None, :]
    Jss = cc * (XZZ - XPZ - XPZ.T + XPP)
    J = np.block([[Jmm, Jms], [Jms.T, Jss]])
    J = 0.5 * (J + J.T)
    return A, J
