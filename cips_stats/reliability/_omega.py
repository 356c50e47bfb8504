"""McDonald's omega: a batched one-factor ML fit, one scale, and Green & Yang's categorical omega.

:func:`_fit_one_factor` fits ``Sigma = l l' + diag(psi)`` to a whole stack of
covariance (or polychoric correlation) matrices at once by Fisher scoring; it knows
nothing about surveys.  :func:`omega` applies it to one scale,
:func:`cips_stats.reliability.by_cell` to every cell; :func:`categorical_omega` gives
Green & Yang's (2009) omega of the sum of ordinal item scores.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
from scipy import stats as _st

from .. import thresholds as _th
from ..errors import (CipsError, CipsWarning, ConvergenceWarning, DataError, Flag, ModelError, PoorFitWarning,
                      Problem, check_choice, check_count, check_level, emit)
from ..results import Provenance, Result, resolve_seed
from ._alpha import MISSING, WARNING_OF, _OneScale, _weight_label
from ._checks import _prepare_scale
from ._moments import _bootstrap_statistic, _covariances, _item_total, _percentile_interval, _scale_moments

CI_METHODS = ("bootstrap", "wald", "none")
DENOMINATORS = ("model", "observed")


def _logdet_and_inv(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-determinant, inverse and positive-definiteness of a (C, p, p) stack."""
    C, p, _ = S.shape
    sign, ld = np.linalg.slogdet(S)
    pd_ = (sign > 0) & np.isfinite(ld)
    inv = np.linalg.inv(np.where(pd_[:, None, None], S, np.eye(p)))
    return ld, inv, pd_


def _information(Bs: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Expected information ``tr(Sigma^-1 D_a Sigma^-1 D_b)`` of (loadings, residual variances), batched.

    ``Bs`` is the (C, p, p) stack of ``Sigma^-1`` and ``L`` the (C, p) loadings.
    """
    C, p = L.shape
    u = np.einsum("cjk,ck->cj", Bs, L)
    c = np.einsum("cj,cj->c", u, L)
    H = np.empty((C, 2 * p, 2 * p))
    H[:, :p, :p] = 2.0 * u[:, :, None] * u[:, None, :] + 2.0 * c[:, None, None] * Bs
    H[:, :p, p:] = 2.0 * Bs * u[:, None, :]
    H[:, p:, :p] = np.swapaxes(H[:, :p, p:], 1, 2)
    H[:, p:, p:] = Bs * Bs
    return H


def _bilinear(X: np.ndarray, Y: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``T_ab = tr(X D_a Y D_b)`` over (loadings, residual variances), batched; X, Y symmetric (C, p, p).

    ``D`` of loading i is ``e_i l' + l e_i'``, of residual variance i ``e_i e_i'``.
    """
    C, p = L.shape
    xl = np.einsum("cjk,ck->cj", X, L)
    yl = np.einsum("cjk,ck->cj", Y, L)
    cx = np.einsum("cj,cj->c", xl, L)
    cy = np.einsum("cj,cj->c", yl, L)
    T = np.empty((C, 2 * p, 2 * p))
    T[:, :p, :p] = (xl[:, :, None] * yl[:, None, :] + yl[:, :, None] * xl[:, None, :]
                    + cy[:, None, None] * X + cx[:, None, None] * Y)
    T[:, :p, p:] = X * yl[:, None, :] + Y * xl[:, None, :]
    T[:, p:, :p] = np.swapaxes(Y * xl[:, None, :] + X * yl[:, None, :], 1, 2)
    T[:, p:, p:] = X * Y
    return T


try:  # the batched Cholesky gufunc behind numpy.linalg.cholesky, which leaves NaN where it fails
    from numpy.linalg._umath_linalg import cholesky_lo as _cholesky_stack
except ImportError:  # pragma: no cover - numpy moved it: the elimination below decides
    _cholesky_stack = None


def _pd_pivots(H: np.ndarray, rel: float) -> np.ndarray:
    """True where every LDL' pivot of a (C, m, m) stack exceeds ``rel`` times its largest |diagonal|.

    Gaussian elimination without pivoting, vectorised over the stack (a loop over the m
    columns only): a matrix passes only if it is positive definite with a margin, ten
    times cheaper than an eigen-decomposition of the stack.  Where numpy's batched Cholesky
    gufunc is importable, its squared diagonal gives the same pivots three times faster.
    """
    C, m, _ = H.shape
    floor = rel * np.abs(np.diagonal(H, axis1=1, axis2=2)).max(axis=1)
    if _cholesky_stack is not None:
        # LAPACK's Cholesky of the whole stack at once: its squared diagonal is the pivots; a matrix
        # whose factorisation breaks down (a pivot <= 0) comes back as NaN
        with np.errstate(invalid="ignore", over="ignore"):
            piv = np.diagonal(_cholesky_stack(H, signature="d->d"), axis1=1, axis2=2) ** 2
        return (piv > floor[:, None]).all(axis=1)
    A = H.copy()
    good = np.ones(C, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):      # (only matrices already failed can blow up)
        for j in range(m):
            piv = A[:, j, j].copy()
            good &= piv > floor
            if j + 1 < m:
                pj = np.where(good, piv, 1.0)
                Lj = A[:, j + 1:, j] / pj[:, None]
                A[:, j + 1:, j + 1:] -= Lj[:, :, None] * A[:, j, j + 1:][:, None, :]
    return good


def _hessian(Bs: np.ndarray, M: np.ndarray, A: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Newton's Hessian of F where it is positive definite, else the expected information (Fisher scoring).

    The observed Hessian is ``T(B, M) + T(M, B) - T(B, B) = 2 T(B, M) - T(B, B)`` plus ``2 A`` on the loadings block
    (``B = Sigma^-1``, ``M = B S B``, ``T`` of :func:`_bilinear`); Fisher scoring alone converges
    only linearly when the model misfits (up to 140 iterations on CIPS cells), Newton's step
    quadratically near the optimum.
    """
    p = L.shape[1]
    fisher = _information(Bs, L)
    obs = 2.0 * _bilinear(Bs, M, L) - fisher          # T(B, M) = T(M, B) for symmetric B and M
    obs[:, :p, :p] += 2.0 * A
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(obs).all(axis=(1, 2))
        if ok.sum() > 16:           # a large stack: elimination over the columns, batched
            ok[ok] = _pd_pivots(obs[ok], 1e-10)
        elif ok.any():              # a few matrices: one eigen-decomposition call costs less
            sub = obs[ok]
            ok[ok] = np.linalg.eigvalsh(sub)[:, 0] > 1e-10 * np.abs(np.diagonal(sub, axis1=1, axis2=2)).max(axis=1)
    return np.where(ok[:, None, None], obs, fisher)


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``-H^-1 g`` per matrix of the stack; NaN where H or g is not finite (the step is then refused)."""
    out = np.full(g.shape, np.nan)
    fin = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
    if fin.any():
        try:
            out[fin] = -np.linalg.solve(H[fin], g[fin][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:        # a singular information matrix: least-squares step
            out[fin] = -np.einsum("cab,cb->ca", np.linalg.pinv(H[fin]), g[fin])
    return out


def _one_factor_sigma(th: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``F = log|Sigma| + tr(S Sigma^-1)``, ``Sigma`` and ``Sigma^-1`` of ``Sigma = l l' + diag(psi)``, batched.

    Where every residual variance is clearly positive the inverse and determinant are in
    closed form (Woodbury: ``Psi^-1 - u u' / s`` with ``u = Psi^-1 l``, ``s = 1 + l' Psi^-1 l``,
    ``|Sigma| = s prod(psi)``), elementwise over the stack; elsewhere (Heywood cases)
    LAPACK's determinant and inverse.  ``F`` is infinite where Sigma is not positive definite.
    """
    C, p2 = th.shape
    p = p2 // 2
    L, P = th[:, :p], th[:, p:]
    Sig = L[:, :, None] * L[:, None, :]
    diag = np.arange(p)
    Sig[:, diag, diag] += P
    B = np.empty_like(Sig)
    ld = np.empty(C)
    good = np.ones(C, dtype=bool)
    with np.errstate(invalid="ignore"):
        wood = (P > 1e-2 * np.diagonal(Sig, axis1=1, axis2=2)).all(axis=1)
    if wood.all():
        Pi = 1.0 / P
        u = L * Pi
        s = 1.0 + np.einsum("cj,cj->c", u, L)
        ld[:] = np.log(P).sum(axis=1) + np.log(s)
        np.multiply(u[:, :, None], (u / -s[:, None])[:, None, :], out=B)
        B[:, diag, diag] += Pi
    else:
        if wood.any():
            Pi = 1.0 / P[wood]
            u = L[wood] * Pi
            s = 1.0 + np.einsum("cj,cj->c", u, L[wood])
            ld[wood] = np.log(P[wood]).sum(axis=1) + np.log(s)
            Bw = u[:, :, None] * (u / -s[:, None])[:, None, :]
            Bw[:, diag, diag] += Pi
            B[wood] = Bw
        rest = ~wood
        ld[rest], B[rest], good[rest] = _logdet_and_inv(Sig[rest])
    F = np.where(good, ld + np.einsum("cjk,ckj->c", S, B), np.inf)
    return F, Sig, B


def _fit_one_factor(S: np.ndarray, *, max_iter: int = 200, tol: float = 1e-10) -> dict[str, np.ndarray]:
    """Fit ``Sigma = lambda lambda' + diag(psi)`` (factor variance 1) by ML to every matrix of a stack.

    Minimises ``F = log|Sigma| + tr(S Sigma^-1)`` by Newton steps (Fisher scoring where the
    observed Hessian is not positive definite) with step halving, vectorised over the stack
    (closed-form gradient ``2 A lambda``, ``diag(A)`` with ``A = Sigma^-1 (Sigma - S) Sigma^-1``).
    Residual variances are not bounded (as lavaan): a negative one is a Heywood case,
    reported by the caller.
    """
    C, p, _ = S.shape
    lam = np.full((C, p), np.nan)
    psi = np.full((C, p), np.nan)
    conv = np.zeros(C, dtype=bool)
    iters = np.zeros(C, dtype=int)
    H_out = np.full((C, 2 * p, 2 * p), np.nan)
    ldS, Sinv, okS = _logdet_and_inv(S)
    ok = okS & np.isfinite(S).all(axis=(1, 2)) & (p >= 3)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # a nearly singular matrix (e.g. a bootstrap resample of a handful of rows) has no usable
        # inverse: not estimable, rather than a failed eigen-decomposition below
        dinv = np.diagonal(Sinv, axis1=1, axis2=2)
        ok &= np.isfinite(Sinv).all(axis=(1, 2)) & (dinv > 0).all(axis=1) & np.isfinite(1.0 / dinv).all(axis=1)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return {"lam": lam, "psi": psi, "converged": conv, "iterations": iters, "H": H_out,
                "estimable": ok}
    Sa = S[idx]
    d = np.diagonal(Sa, axis1=1, axis2=2)
    uniq = 1.0 / np.diagonal(Sinv[idx], axis1=1, axis2=2)          # residual variance given the others
    red = Sa - np.einsum("cj,jk->cjk", uniq, np.eye(p))
    ev, evec = np.linalg.eigh(red)
    l0 = evec[:, :, -1] * np.sqrt(np.maximum(ev[:, -1], 1e-3 * d.mean(axis=1)))[:, None]
    l0 *= np.where(l0.sum(axis=1) < 0, -1.0, 1.0)[:, None]
    p0 = np.maximum(d - l0**2, 0.05 * d)
    theta = np.concatenate([l0, p0], axis=1)
    nit = np.zeros(idx.size, dtype=int)
    done = np.zeros(idx.size, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        F, Sig, B = _one_factor_sigma(theta, Sa)
        _newton_iterations(theta, F, Sig, B, Sa, max_iter, tol, iters_out=nit, done_out=done)
    # final information at the solution
    L, P = theta[:, :p], theta[:, p:]
    H = _information(B, L)
    sgn = np.where(L.sum(axis=1) < 0, -1.0, 1.0)
    lam[idx] = L * sgn[:, None]
    psi[idx] = P
    conv[idx] = done
    iters[idx] = nit
    H_out[idx] = H
    return {"lam": lam, "psi": psi, "converged": conv, "iterations": iters, "H": H_out, "estimable": ok}


def _newton_iterations(theta: np.ndarray, F: np.ndarray, Sig: np.ndarray, B: np.ndarray, Sa: np.ndarray,
                       max_iter: int, tol: float, *, iters_out: np.ndarray, done_out: np.ndarray) -> None:
    """Damped Newton iterations of the one-factor fit, in place on ``theta``, ``F``, ``Sig``, ``B``.

    Each iteration works on the matrices not yet settled; a step is halved until the
    objective does not increase (up to 40 times), and the accepted point's ``Sigma`` and
    inverse are kept from the line search.
    """
    p = Sa.shape[1]
    active = np.arange(theta.shape[0])
    for _ in range(max_iter):
        if active.size == 0:
            break
        th, Ss, Bs, Sg = theta[active], Sa[active], B[active], Sig[active]
        L = th[:, :p]
        M = Bs @ Ss @ Bs
        A = Bs - M                                  # = B (Sigma - S) B, since B Sigma B = B
        g = np.concatenate([2.0 * np.einsum("cjk,ck->cj", A, L), np.diagonal(A, axis1=1, axis2=2)], axis=1)
        delta = _newton_step(_hessian(Bs, M, A, L), g)
        step = np.ones(active.size)
        accepted = np.zeros(active.size, dtype=bool)
        F_old = F[active]
        new_th, new_F, new_Sig, new_B = th.copy(), F_old.copy(), Sg.copy(), Bs.copy()
        todo = np.arange(active.size)
        for _ in range(40):
            cand = th[todo] + step[todo, None] * delta[todo]
            Fc, Sc, Bc = _one_factor_sigma(cand, Ss[todo])
            good = np.isfinite(Fc) & (Fc <= F_old[todo] + 1e-12 * np.abs(F_old[todo]))
            ti = todo[good]
            new_th[ti], new_F[ti], new_Sig[ti], new_B[ti] = cand[good], Fc[good], Sc[good], Bc[good]
            accepted[ti] = True
            todo = todo[~good]
            if todo.size == 0:
                break
            step[todo] *= 0.5
        theta[active], F[active], Sig[active], B[active] = new_th, new_F, new_Sig, new_B
        iters_out[active] += 1
        small = (np.max(np.abs(step[:, None] * delta), axis=1) < tol * (1.0 + np.max(np.abs(th), axis=1)))
        # flat likelihood (e.g. a loading near zero): the objective no longer moves and the
        # gradient vanishes although the parameters still creep; omega is settled then
        gmax = np.max(np.abs(g), axis=1)
        flat = (F_old - new_F < 1e-13 * (1.0 + np.abs(new_F))) & (gmax < 1e-8)
        stuck = ~accepted
        ok_now = small | flat | (stuck & (gmax < 1e-7))
        # no finite ML solution: a residual variance runs off to minus infinity (and a loading
        # to infinity); stop and report non-convergence
        dscale = np.max(np.diagonal(Ss, axis1=1, axis2=2), axis=1)
        diverged = np.max(np.abs(new_th), axis=1) > 10.0 * np.maximum(dscale, np.sqrt(dscale))
        done_out[active[ok_now]] = True
        active = active[~(ok_now | stuck | diverged)]


def _omega_from_fit(fit: Mapping[str, np.ndarray], S: np.ndarray, n: np.ndarray,
                    level: float | None = None) -> dict[str, np.ndarray]:
    """Omega (both denominators) and the normal-theory delta-method SE of the model-implied one."""
    lam, psi = fit["lam"], fit["psi"]
    p = lam.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        Ls = lam.sum(axis=1)
        Ps = psi.sum(axis=1)
        tot_model = Ls**2 + Ps
        om_model = Ls**2 / tot_model
        om_obs = Ls**2 / S.sum(axis=(1, 2))
        grad = np.concatenate([np.repeat((2.0 * Ls * Ps / tot_model**2)[:, None], p, axis=1),
                               np.repeat((-(Ls**2) / tot_model**2)[:, None], p, axis=1)], axis=1)
    se = np.full(lam.shape[0], np.nan)
    good = fit["estimable"] & np.isfinite(grad).all(axis=1) & np.isfinite(fit["H"]).all(axis=(1, 2))
    if good.any():
        Hg = fit["H"][good]
        sign, _ = np.linalg.slogdet(Hg)
        inv_ok = sign > 0
        V = np.full_like(Hg, np.nan)
        if inv_ok.any():
            V[inv_ok] = np.linalg.inv(Hg[inv_ok])
        gg = grad[good]
        q = 2.0 / n[good] * np.einsum("ca,cab,cb->c", gg, V, gg)
        # a negative quadratic form (information not positive definite) has no SE: NaN, flagged by the callers
        se[good] = np.where(q > 0, np.sqrt(np.where(q > 0, q, 1.0)), np.nan)
    return {"omega_model": om_model, "omega_observed": om_obs, "se_model": se}




# ============================================================================ results
@dataclass(frozen=True)
class OmegaResult(_OneScale, Result):
    """McDonald's omega total of one scale from a one-factor model fitted by ML.

    Attributes
    ----------
    omega : float
        Omega with the chosen ``denominator``.
    denominator : str
        ``"model"``: model-implied total variance ``(sum l)^2 + sum psi`` (semTools
        ``compRelSEM(obs.var = FALSE)``); ``"observed"``: observed total variance
        ``1' S 1`` (``compRelSEM(obs.var = TRUE)``, semTools' default).
    omega_model, omega_observed : float
        Both variants.
    ci_low, ci_high : float
        Confidence interval for ``omega`` (``ci_method``: ``"bootstrap"`` percentile,
        ``"wald"`` normal-theory delta method, model denominator only; ``"none"``: NaN).
    ci_level : float
        The confidence level (the ``ci=`` argument).
    se : float
        Standard error (bootstrap SD, or delta-method SE).
    loadings : pandas.DataFrame
        ``item``, ``loading``, ``residual_variance``, ``std_loading``.
    converged : bool
        Whether the ML fit converged.
    """

    omega: float
    denominator: str
    omega_model: float
    omega_observed: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    n: int
    n_items: int
    converged: bool
    iterations: int
    missing: str
    weighted: bool
    ordinal: bool
    loadings: pd.DataFrame

    main: ClassVar[str] = "omega"


@dataclass(frozen=True)
class CategoricalOmegaResult(Result):
    """Green & Yang's (2009) categorical omega of the sum of ordinal item scores.

    Attributes
    ----------
    omega : float
        Reliability of the sum of the item scores (categories counted 0, 1, ...).
    denominator : str
        ``"observed"``: variance of the sum from the sample polychoric correlations
        (semTools' default, ``obs.var = TRUE``); ``"model"``: from the model-implied ones.
    omega_model, omega_observed : float
        Both variants.
    n : int
        Respondents used.
    n_items : int
        Number of items.
    loadings : pandas.DataFrame
        ``item``, ``loading`` (standardised, from the one-factor WLSMV fit).

    No interval is offered (semTools gives none either); the flags carry the WLSMV
    fit's own (poor fit, non-convergence) and a low omega.
    """

    omega: float
    denominator: str
    omega_model: float
    omega_observed: float
    n: int
    n_items: int
    loadings: pd.DataFrame

    @property
    def estimate(self) -> float:
        """Alias of ``omega``."""
        return self.omega


# ============================================================================ one scale
def _omega_flags(fit: Mapping[str, np.ndarray], names: list[str], n: int, p: int, est: float) -> list[Flag]:
    flags: list[Flag] = []
    if not fit["converged"][0]:
        flags.append(Flag("not_converged", "The one-factor ML fit did not converge.", "warning",
                          {"iterations": int(fit["iterations"][0])}))
    if np.any(fit["psi"][0] < 0):
        bad = [names[j] for j in np.flatnonzero(fit["psi"][0] < 0)]
        flags.append(Flag("heywood", f"Negative residual variance (Heywood case) for {bad}.", "warning",
                          {"items": bad}))
    if n <= 2 * p:
        flags.append(Flag("small_n", f"Only {n} respondents for {p} items: the factor model is unstable.",
                          "caution"))
    flags.extend(_th.judge_reliability(est, statistic="omega"))
    return flags


def _bootstrap_omega(X: np.ndarray, w: np.ndarray | None, n_eff: float, key: str, level: float,
                     n_boot: Any, seed: int) -> tuple[float, float, float, list[Flag]]:
    """Percentile bootstrap of omega: refit the one-factor model to every resample, batched."""
    B = check_count(n_boot, "n_boot", 100)

    def refit(Sb: np.ndarray) -> np.ndarray:
        fb = _fit_one_factor(Sb)
        return np.where(fb["converged"], _omega_from_fit(fb, Sb, np.full(Sb.shape[0], n_eff))[key], np.nan)

    reps = _bootstrap_statistic(X, w, B, seed, refit)
    bad = ~np.isfinite(reps)
    flags: list[Flag] = []
    if bad.sum() > B / 2:
        flags.append(Flag("bootstrap_failed", f"{int(bad.sum())} of {B} bootstrap refits failed or did not "
                          "converge (too few respondents for the model): no interval.", "warning"))
        return math.nan, math.nan, math.nan, flags
    if bad.any():
        flags.append(Flag("bootstrap_failed", f"{int(bad.sum())} of {B} bootstrap refits failed or did not "
                          "converge; they were left out.", "caution"))
    lo, hi = _percentile_interval(reps[~bad], level)
    return lo, hi, float(np.std(reps[~bad], ddof=1)), flags


def _check_three_items(names: list[str]) -> int:
    if len(names) < 3:
        raise DataError(f"Omega needs at least three items (a one-factor model with {len(names)} items is not "
                        "identified).", [Problem("too_few_items", "Omega needs three or more items.",
                                                 "<DataFrame>", value=names)])
    return len(names)


def _check_omega_args(denominator: str, ci_method: str, missing: str, ordinal: bool) -> None:
    check_choice(denominator, DENOMINATORS, "denominator")
    check_choice(ci_method, CI_METHODS, "ci_method")
    check_choice(missing, MISSING, "missing")
    if ci_method == "wald" and denominator != "model":
        raise CipsError("The Wald (delta-method) interval is defined for denominator='model' only; "
                        "use ci_method='bootstrap' for the observed-variance omega.")
    if ci_method == "bootstrap" and ordinal:
        raise CipsError("A bootstrap interval for ordinal omega is not offered (it re-estimates every "
                        "polychoric correlation per resample); use ci_method='none'.")


def omega(items: Any, *, denominator: str = "model", ci: float = 0.95, ci_method: str = "bootstrap",
          missing: str = "pairwise", weight: Any = None, n_boot: int = 1000, seed: int | None = None,
          ordinal: bool = False) -> OmegaResult:
    """McDonald's omega total of one scale from a one-factor model fitted by maximum likelihood.

    Parameters
    ----------
    items : pandas.DataFrame or 2-D array
        Respondents in rows, items in columns (NaN = missing), reverse keys applied.
    denominator : {"model", "observed"}, default "model"
        Total variance in the denominator: model-implied ``(sum l)^2 + sum psi``
        (McDonald 1999; semTools ``compRelSEM(obs.var = FALSE)``) or the observed
        variance of the sum score ``1'S1`` (``compRelSEM(obs.var = TRUE)``).
    ci : float, default 0.95
        Confidence level.
    ci_method : {"bootstrap", "wald", "none"}, default "bootstrap"
        Percentile bootstrap over respondents (refits the model ``n_boot`` times,
        vectorised), or the normal-theory delta-method (Wald) interval of the
        model-implied omega (``denominator="model"`` only).
    missing : {"pairwise", "listwise"}, default "pairwise"
        How the covariance matrix the model is fitted to is formed.
    weight : str, array-like, Design or None
        Sampling weights (weighted covariance matrix; the Wald SE then uses the
        Kish effective sample size).
    n_boot : int, default 1000
        Bootstrap resamples.
    seed : int, optional
        Seed of the bootstrap; ``None`` draws one, recorded in ``provenance.seed`` so that
        ``omega(items, seed=res.provenance.seed)`` reproduces the interval.
    ordinal : bool, default False
        Fit the model to the polychoric correlation matrix ("ordinal omega", the
        polychoric one-factor omega; see :func:`categorical_omega` for Green & Yang's).

    Returns
    -------
    OmegaResult
        ``omega``, ``ci_low``/``ci_high``, ``loadings`` and flags (Heywood case, low
        omega, non-convergence, failed bootstrap), each flag also emitted as a warning.

    Raises
    ------
    DataError
        As :func:`cronbach_alpha`; also fewer than three items (a one-factor model
        with two indicators is not identified).
    ModelError
        The covariance matrix is not positive definite (e.g. fewer respondents than items).
    CipsError
        Bad arguments.

    Notes
    -----
    The model ``Sigma = l l' + diag(psi)`` (factor variance 1) is fitted by minimising
    ``F = log|Sigma| + tr(S Sigma^-1)`` with Fisher scoring; residual variances are
    not bounded (as lavaan) and a negative one is flagged (Heywood case).
    ``omega = (sum l)^2 / denominator``. Checked against ``semTools::compRelSEM`` on a
    ``lavaan::cfa(std.lv = TRUE)`` fit to the five ``psych::bfi`` scales (both
    denominators, listwise and pairwise) to 1e-6, and the Wald SE against lavaan's
    delta-method SE of a ``:=`` parameter (expected information, N in the divisor).
    With very few respondents most bootstrap resamples are singular: when more than
    half of the refits fail the interval is NaN and flagged ``bootstrap_failed``.

    Examples
    --------
    >>> import numpy as np
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(3)
    >>> f = rng.normal(size=(400, 1))
    >>> x = f * np.array([0.8, 0.7, 0.6, 0.5]) + rng.normal(size=(400, 4)) * 0.6
    >>> res = cs.reliability.omega(x, ci_method="wald")
    >>> round(res.omega, 3), res.converged
    (0.83, True)
    >>> a = cs.reliability.omega(x, n_boot=200)          # seed drawn and recorded
    >>> b = cs.reliability.omega(x, n_boot=200, seed=a.provenance.seed)
    >>> (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    True
    """
    level = check_level(ci, "ci")
    _check_omega_args(denominator, ci_method, missing, ordinal)
    seed_used = resolve_seed(seed) if ci_method == "bootstrap" else seed
    df, X, w, nrows = _prepare_scale(items, weight, missing)
    names = [str(c) for c in df.columns]
    p = _check_three_items(names)
    mom = _scale_moments(X, w)
    it = _item_total(mom)
    n = int(mom["any_n"][0])
    n_eff = float(it["n_eff"][0]) if w is not None else float(n)
    flags: list[Flag] = []
    if ordinal:
        rho, flags = _polychoric(df, missing)
        S = rho[None]
        if w is not None:
            flags.append(Flag("ordinal_unweighted", "Ordinal omega ignores the weights (polychoric "
                              "correlations are unweighted).", "info"))
    else:
        S = _covariances(mom)
    fit = _fit_one_factor(S)
    if not fit["estimable"][0]:
        raise ModelError("The one-factor model cannot be fitted: the item covariance matrix is not positive "
                         f"definite (n = {n}, {p} items).",
                         {"min_eigenvalue": float(np.linalg.eigvalsh(S[0])[0]) if np.isfinite(S).all() else None})
    om = _omega_from_fit(fit, S, np.array([n_eff]))
    key = "omega_model" if denominator == "model" else "omega_observed"
    est = float(om[key][0])
    flags.extend(_omega_flags(fit, names, n, p, est))
    if ci_method == "wald":
        se = float(om["se_model"][0])
        z = _st.norm.ppf(0.5 + level / 2.0)
        lo, hi = est - z * se, est + z * se
    elif ci_method == "bootstrap":
        lo, hi, se, bflags = _bootstrap_omega(X, w, n_eff, key, level, n_boot, seed_used)
        flags.extend(bflags)
    else:
        lo = hi = se = math.nan
    prov = Provenance.build("omega", data=df, seed=seed_used,
                            options={"denominator": denominator, "ci": level, "ci_method": ci_method,
                                     "missing": missing, "ordinal": ordinal,
                                     "n_boot": n_boot if ci_method == "bootstrap" else None,
                                     "weight": _weight_label(weight)})
    for f in flags:
        if f.code in WARNING_OF or f.code in ("not_converged", "bootstrap_failed"):
            emit(f, WARNING_OF.get(f.code, ConvergenceWarning), stacklevel=3)
    return OmegaResult(omega=est, denominator=denominator, omega_model=float(om["omega_model"][0]),
                       omega_observed=float(om["omega_observed"][0]), ci_low=float(lo), ci_high=float(hi),
                       ci_level=level, ci_method=ci_method, se=float(se), n=n, n_items=p,
                       converged=bool(fit["converged"][0]), iterations=int(fit["iterations"][0]),
                       missing=missing, weighted=w is not None, ordinal=ordinal, loadings=_loadings(names, fit),
                       provenance=prov, flags=tuple(flags))


def _loadings(names: list[str], fit: Mapping[str, np.ndarray]) -> pd.DataFrame:
    lam, psi = fit["lam"][0], fit["psi"][0]
    with np.errstate(invalid="ignore"):
        std_l = lam / np.sqrt(lam**2 + psi)
    return pd.DataFrame({"item": names, "loading": lam, "residual_variance": psi, "std_loading": std_l})


# ============================================================================ ordinal (polychoric)
def _polychoric(df: pd.DataFrame, missing: str) -> tuple[np.ndarray, list[Flag]]:
    """Polychoric correlation matrix (two-step ML) from :func:`cips_stats.factor.polychoric.polychoric`.

    Returns the matrix and the polychoric estimator's warnings (not positive definite,
    correlations at the bound, non-convergence, pairs without data) as flags.
    """
    from ..factor.polychoric import polychoric

    res = polychoric(df, missing=missing)
    flags = [Flag(f"polychoric_{f.code}", f"Polychoric step: {f.message}", f.severity, dict(f.where))
             for f in res.flags if f.severity in ("warning", "error")]
    return res.corr.to_numpy(dtype=float), flags


def _ordinal_alpha(rho: np.ndarray) -> float:
    """Ordinal alpha (Zumbo, Gadermann & Zeisser 2007): standardised alpha of the polychoric matrix."""
    p = rho.shape[0]
    return float(p / (p - 1.0) * (1.0 - p / rho.sum())) if np.isfinite(rho).all() else math.nan


def _sum_score_variance(tau: list[np.ndarray], R: np.ndarray) -> float:
    """Variance of the sum of ordinal item scores implied by thresholds and latent correlations.

    An item's score counts the thresholds its latent response exceeds, so
    ``cov(X_j, X_k) = sum_c sum_d [Phi2(t_jc, t_kd; r_jk) - Phi(t_jc) Phi(t_kd)]``
    (Green & Yang 2009, eq. 21); ``R``'s diagonal gives each item's own variance term.
    """
    from ..factor.polychoric import bvn_cdf

    total = 0.0
    p = len(tau)
    for j in range(p):
        for k in range(p):
            a, b = np.meshgrid(tau[j], tau[k], indexing="ij")
            if j == k and R[j, k] >= 1.0 - 1e-12:
                joint = _st.norm.cdf(np.minimum(a, b))
            else:
                joint = bvn_cdf(a.ravel(), b.ravel(), np.full(a.size, R[j, k])).reshape(a.shape)
            total += float(joint.sum() - _st.norm.cdf(tau[j]).sum() * _st.norm.cdf(tau[k]).sum())
    return total


def categorical_omega(items: Any, *, denominator: str = "model", missing: str = "pairwise") -> CategoricalOmegaResult:
    """Green & Yang's (2009) categorical omega: the reliability of the sum of ordinal item scores.

    Parameters
    ----------
    items : pandas.DataFrame
        Respondents in rows, ordinal items in columns (integer codes, NaN = missing),
        reverse keys applied; at least three items.
    denominator : {"model", "observed"}, default "model"
        Variance of the sum score from the model-implied polychoric correlations
        (``compRelSEM(obs.var = FALSE)``) or from the sample polychoric correlations
        (``obs.var = TRUE``, semTools' default).
    missing : {"pairwise", "listwise"}, default "pairwise"
        Rows the polychoric correlations and thresholds use.

    Returns
    -------
    CategoricalOmegaResult
        ``omega`` (both variants in ``omega_model``/``omega_observed``) and the
        standardised ``loadings`` of the one-factor WLSMV fit.

    Raises
    ------
    DataError
        Fewer than three items, or items that cannot be read as ordinal codes.
    ModelError
        The one-factor WLSMV model cannot be fitted.

    Notes
    -----
    The one-factor model is fitted to the polychoric correlations by WLSMV
    (:func:`cips_stats.factor.cfa`, ``std_lv=True``, delta parameterisation, as
    ``lavaan::cfa(..., ordered = TRUE)``); with thresholds ``t`` and standardised
    loadings ``l``, ``omega = sum_jk sum_cd [Phi2(t_jc, t_kd; l_j l_k) - Phi(t_jc)Phi(t_kd)]
    / var(sum score)``. This is ``semTools::compRelSEM(fit, ord.scale = TRUE)``; it
    judges the sum of the observed category scores. The "ordinal omega" of
    :func:`omega` with ``ordinal=True`` (and ``by_cell(ordinal=True)``) is instead the
    omega of the latent response variables (``ord.scale = FALSE``), the one the report
    shows when ordinal reliability is asked for; on ``psych::bfi`` they differ by up to
    .04. Unweighted (as the polychoric correlations of ``omega(ordinal=True)``). Checked against
    semTools 0.5-6 on the five ``psych::bfi`` scales to 1e-4 (observed: 5e-8;
    ``tests/reference/reliability_bfi.json``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(6)
    >>> f = rng.normal(size=(500, 1))
    >>> x = pd.DataFrame(np.digitize(f * 0.8 + rng.normal(size=(500, 4)) * 0.6, [-1, 0, 1]),
    ...                  columns=list("abcd"))
    >>> res = cs.reliability.categorical_omega(x)
    >>> round(res.omega, 3), round(cs.reliability.omega(x, ordinal=True, ci_method="none").omega, 3)
    (0.845, 0.879)
    """
    from ..factor import cfa

    check_choice(denominator, DENOMINATORS, "denominator")
    check_choice(missing, MISSING, "missing")
    df, X, _, _ = _prepare_scale(items, None, missing)
    names = [str(c) for c in df.columns]
    _check_three_items(names)
    frame = pd.DataFrame(X, columns=[f"i{j}" for j in range(len(names))])
    model = "f =~ " + " + ".join(frame.columns)
    with warnings.catch_warnings():        # the fit's flags are attached below and its poor fit re-emitted
        warnings.simplefilter("ignore", CipsWarning)
        res = cfa(frame, model=model, estimator="WLSMV", ordered=True, std_lv=True,
                  missing="pairwise" if missing == "pairwise" else "listwise")
    par = res.parameters
    lam = par[(par["op"] == "=~")].set_index("rhs")["std_all"].reindex(frame.columns).to_numpy(dtype=float)
    th = par[par["op"] == "|"]
    tau = [th.loc[th["lhs"] == c, "est"].to_numpy(dtype=float) for c in frame.columns]
    rho = np.asarray(res.sample[0]["cov"], dtype=float)
    implied = np.outer(lam, lam)
    np.fill_diagonal(implied, 1.0)
    common = np.outer(lam, lam)
    num = _sum_score_variance(tau, common)
    om_model = num / _sum_score_variance(tau, implied)
    om_obs = num / _sum_score_variance(tau, rho)
    est = om_model if denominator == "model" else om_obs
    flags = [emit(f, PoorFitWarning, stacklevel=3) if f.code.startswith("fit_") else f for f in res.flags]
    flags += [emit(f, WARNING_OF[f.code], stacklevel=3) for f in _th.judge_reliability(est, statistic="omega")]
    prov = Provenance.build("categorical_omega", data=df, options={"denominator": denominator, "missing": missing})
    return CategoricalOmegaResult(omega=float(est), denominator=denominator, omega_model=float(om_model),
                                  omega_observed=float(om_obs), n=int(X.shape[0]), n_items=len(names),
                                  loadings=pd.DataFrame({"item": names, "loading": lam}),
                                  provenance=prov, flags=tuple(flags))
