"""The change model's log density and gradient, written out, with the cell deviations and the country effects
integrated out.

The default model of :func:`cips_stats.change.fit` (no baseline covariate) has
``3G + F + 1`` free parameters once the cell deviations and the country effects
are integrated out (both are Gaussian given the hyper-parameters), and its log
density is two passes over the cells of the diagonalised cell covariances.
Compiling the model from the PyMC graph with numba costs 10-15 s per process,
far more than sampling it (about 1.5 s at CIPS scale); written out here its
numba kernel is compiled once per machine (cached on disk), and nutpie calls it
as a C callback (:mod:`._compiled`: no GIL, the chains run in parallel) or,
with a nutpie release that lacks that container, through its Python-function
interface (:func:`nutpie.from_pyfunc`).

Parametrisation (all on the scale of the statistic divided by ``unit``)::

    drift[g], support[g]        ~ Normal(0, 1)
    sd_factor, sd_country       ~ HalfNormal(0.5)      (sampled as log sd)
    sd_cell[g]                  ~ HalfNormal(0.5)      (sampled as log sd)
    factor_z  = B_F u_F,  u_F   ~ Normal(0, I_{F-1})   (= ZeroSumNormal(1) over F factors)
    gamma     ~ ZeroSumNormal(sd_country) over C countries            (integrated out)
    m[p, f] = drift[g_p] + sd_factor factor_z[f] + gamma[c_p] + support[g_p] sup[p, f]
    Q_p' d_p ~ Normal(Q_p' m_p, diag(sd_cell[g_p]^2 + lam_p))

``B_F`` is an orthonormal basis of the sum-zero subspace of R^F, so ``B_F u``
with ``u`` standard normal has exactly the ZeroSumNormal(1) distribution that
the PyMC model uses; ``Q_p diag(lam_p) Q_p'`` is the eigendecomposition of the
sampling covariance of pair ``p``'s changes.  The test suite checks the density
against SciPy's multivariate normal of all observations jointly, the gradient
against finite differences, the country effects' conditional against dense
Gaussian algebra, and the posterior against the PyMC graph sampled by PyMC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: Prior scale of the half-normal standard deviations (in units of the statistic).
SD_PRIOR = 0.5
#: Prior scale of the drift and support effects (in units of the statistic).
EFFECT_PRIOR = 1.0


def zero_sum_basis(k: int) -> np.ndarray:
    """Orthonormal basis (k, k-1) of the vectors of R^k that sum to zero (Helmert contrasts, normalised)."""
    if k < 2:
        return np.zeros((k, 0))
    basis = np.zeros((k, k - 1))
    for j in range(1, k):               # k - 1 columns, built once per fit
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= math.sqrt(j * (j + 1.0))
    return basis


@dataclass(frozen=True)
class CountryLayout:
    """Where each parameter sits in the unconstrained vector when the country effects are integrated out."""

    G: int
    F: int
    C: int

    @property
    def ndim(self) -> int:
        return 3 * self.G + self.F + 1

    def slices(self) -> dict[str, slice]:
        G, F = self.G, self.F
        edges = np.cumsum([0, G, G, 1, F - 1, 1, G])
        names = ["drift", "support", "log_sd_factor", "u_factor", "log_sd_country", "log_sd_cell"]
        return {n: slice(int(a), int(b)) for n, a, b in zip(names, edges[:-1], edges[1:])}


class CountryMarginalDensity:
    """The marginal change model with the country effects integrated out too (the default of ``change.fit``).

    The country effects ``gamma = sd_country B_C u`` are a ZeroSumNormal, i.e.
    independent ``N(0, sd_country^2)`` effects conditioned on summing to zero,
    and they enter every cell of their country linearly: given the other
    parameters they are Gaussian, and so is the data with them integrated out.
    With ``r`` the rotated residuals without the country effects and
    ``v = sd_cell^2 + lam`` their variances, ``s = sd_country^2``::

        w_c = sum_{cells of c} q^2 / v,   b_c = sum q r / v,   e_c = 1 / (1 + s w_c)
        log p(r) = sum [-log v / 2 - r^2 / (2 v)] + sum_c [s b_c^2 e_c / 2 + log(e_c) / 2]
                   - s B^2 / (2 A) + log(C / A) / 2,     A = sum e_c,  B = sum b_c e_c

    (the last two terms condition on ``sum gamma = 0``; written with ``e_c``
    the density has no ``1/s`` and stays exact as ``sd_country -> 0``).  Only ``3G + F + 1``
    hyper-parameters are sampled, whatever the number of countries; the
    country effects are drawn afterwards from their exact conditional normal
    (:meth:`country_posterior`).  The gradient follows from Fisher's identity
    (the expected complete-data gradient under that conditional).

    Parameters
    ----------
    pc, pg : ndarray of int, shape (P,)
        Country and group index of every (country, group) pair.
    sup : ndarray, shape (P, F)
        Programme support (0/1) of every pair and factor.
    zd : ndarray, shape (P, F)
        Rotated observed changes ``Q_p' d_p``.
    lam : ndarray, shape (P, F)
        Eigenvalues of the sampling covariance of each pair's changes.
    Q : ndarray, shape (P, F, F)
        Its eigenvectors (columns).
    G, C : int
        Numbers of groups and countries.
    unit : float
        Scale of the statistic (1 on the 0-10 scale); the priors are in these units.
    """

    def __init__(self, pc: np.ndarray, pg: np.ndarray, sup: np.ndarray, zd: np.ndarray, lam: np.ndarray,
                 Q: np.ndarray, G: int, C: int, unit: float = 1.0):
        P, F = sup.shape
        self.layout = CountryLayout(int(G), int(F), int(C))
        self.sl = self.layout.slices()
        self.unit = float(unit)
        u = self.unit
        self.pc = np.ascontiguousarray(pc, dtype=np.int64)
        self.pg = np.ascontiguousarray(pg, dtype=np.int64)
        self.sup = np.ascontiguousarray(sup, dtype=float)
        self.zd = np.ascontiguousarray(zd, dtype=float) / u
        self.lam = np.ascontiguousarray(lam, dtype=float) / u ** 2
        self.Q = np.ascontiguousarray(Q, dtype=float)
        # rows (p, k) of Q_p': one matrix-vector product gives Q_p' beta for every pair at once
        self.QT2 = np.ascontiguousarray(np.swapaxes(self.Q, 1, 2).reshape(P * F, F))
        self.P, self.F = P, F
        # the model mean is linear in (drift, support, factor effect, country effect):
        # Q_p' m_p = drift[g] * Q_p'1 + support[g] * Q_p'sup_p + Q_p' beta + gamma[c] * Q_p'1
        self.q1 = self.Q.sum(axis=1)                                          # (P, F): Q_p' 1
        self.qs = np.einsum("pfk,pf->pk", self.Q, self.sup)                   # (P, F): Q_p' sup_p
        self.BF = zero_sum_basis(F)

    def unpack(self, x: np.ndarray) -> dict[str, Any]:
        """Natural hyper-parameters (in units of the statistic); the country effects are not in ``x``."""
        s, u = self.sl, self.unit
        sd_factor = math.exp(x[s["log_sd_factor"]][0])
        factor_z = self.BF @ x[s["u_factor"]]
        return {"drift": x[s["drift"]] * u, "support": x[s["support"]] * u, "sd_factor": sd_factor * u,
                "factor_z": factor_z, "factor_effect": sd_factor * factor_z * u,
                "sd_country": math.exp(x[s["log_sd_country"]][0]) * u, "sd_cell": np.exp(x[s["log_sd_cell"]]) * u}

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        lp, grad = _country_kernel(np.asarray(x, dtype=float), self.layout.G, self.layout.F, self.layout.C,
                                   self.BF, self.pc, self.pg, self.q1, self.qs, self.QT2, self.zd, self.lam,
                                   1.0 / EFFECT_PRIOR ** 2, 1.0 / SD_PRIOR ** 2)
        return float(lp), grad

    def country_posterior(self, drift: np.ndarray, support: np.ndarray, factor_effect: np.ndarray,
                          sd_country: np.ndarray, sd_cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conditional posterior of the country effects given hyper-parameter draws (natural units).

        Parameters are draws with a leading axis ``n`` (``drift`` (n, G), ...,
        ``sd_country`` (n,)).  Returns ``(mean, var)``, both (n, C): the
        conditional mean of the effects (which sums to zero) and the variances
        ``1/P_c`` of the effects before the zero-sum constraint; the effects are
        ``mean + z - var * sum(z) / sum(var)`` with ``z_c ~ N(0, var_c)``.
        """
        u = self.unit
        P, F = self.P, self.F
        beta = np.asarray(factor_effect, dtype=float) / u
        mean_rest = (np.asarray(drift, dtype=float)[:, self.pg, None] / u * self.q1[None]
                     + np.asarray(support, dtype=float)[:, self.pg, None] / u * self.qs[None]
                     + (beta @ self.QT2.T).reshape(-1, P, F))
        r = self.zd[None] - mean_rest
        v = (np.asarray(sd_cell, dtype=float)[:, self.pg] / u) ** 2
        v = v[:, :, None] + self.lam[None]
        n, C = r.shape[0], self.layout.C
        w = np.zeros((n, C))
        b = np.zeros((n, C))
        np.add.at(w.T, self.pc, ((self.q1[None] ** 2) / v).sum(axis=2).T)
        np.add.at(b.T, self.pc, ((self.q1[None] * r) / v).sum(axis=2).T)
        s = ((np.asarray(sd_country, dtype=float) / u) ** 2)[:, None]
        e = 1.0 / (1.0 + s * w)                                         # = 1 / (s P_c), no 1/s
        k = b - (b * e).sum(axis=1, keepdims=True) / e.sum(axis=1, keepdims=True)
        return s * e * k * u, s * e * u ** 2

    def initial_point(self, seed: Any) -> np.ndarray:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-0.5, 0.5, self.layout.ndim)
        s = self.sl
        for name in ("log_sd_factor", "log_sd_country", "log_sd_cell"):
            x[s[name]] += math.log(0.2)
        return x


def _logp_grad_country_numpy(x, G, F, C, BF, pc, pg, q1, qs, QT2, zd, lam, a2, b2):
    """The country-marginal density and gradient in plain NumPy (the compiled kernel's reference)."""
    P = zd.shape[0]
    o = np.cumsum([0, G, G, 1, F - 1, 1, G])
    drift, support = x[o[0]:o[1]], x[o[1]:o[2]]
    lsf, uf, lsc, lsd = x[o[2]], x[o[3]:o[4]], x[o[4]], x[o[5]:o[6]]
    sf, sc, sd = math.exp(lsf), math.exp(lsc), np.exp(lsd)
    s = sc * sc
    fz = BF @ uf
    beta = sf * fz
    r = zd - (drift[pg][:, None] * q1 + support[pg][:, None] * qs + (QT2 @ beta).reshape(P, F))
    v = (sd * sd)[pg][:, None] + lam
    w_c = np.bincount(pc, (q1 * q1 / v).sum(axis=1), minlength=C)
    b_c = np.bincount(pc, (q1 * r / v).sum(axis=1), minlength=C)
    # written with e_c = 1 / (1 + s w_c) = 1 / (s P_c): finite and exact as sd_country -> 0 (no 1/s anywhere)
    e_c = 1.0 / (1.0 + s * w_c)
    A, B = float(e_c.sum()), float(b_c @ e_c)
    loglik = (-0.5 * float(np.sum(np.log(v) + r * r / v)) - r.size * _HALF_LOG_2PI
              + float(np.sum(0.5 * s * b_c * b_c * e_c + 0.5 * np.log(e_c)))
              - 0.5 * s * B * B / A + 0.5 * math.log(C) - 0.5 * math.log(A))
    ghat = s * e_c * (b_c - B / A)                              # E[gamma_c | r, sum gamma = 0]
    gvar = s * e_c * (1.0 - e_c / A)                            # Var[gamma_c | r, sum gamma = 0]
    e = r - ghat[pc][:, None] * q1
    we = e / v
    g_v = -0.5 / v + 0.5 * (e * e + gvar[pc][:, None] * q1 * q1) / (v * v)
    # d/d log sd_country = sum(ghat^2 + gvar) / s - (C - 1), without dividing by s
    g_lsc = float(np.sum(s * e_c * e_c * (b_c - B / A) ** 2) + np.sum(e_c * (1.0 - e_c / A))) - (C - 1)
    g_beta = we.reshape(-1) @ QT2
    logprior = (-0.5 * a2 * float(drift @ drift + support @ support) - 0.5 * float(uf @ uf)
                - 0.5 * b2 * (sf * sf + s + float(sd @ sd)) + lsf + lsc + float(lsd.sum()))
    grad = np.empty_like(x)
    grad[o[0]:o[1]] = np.bincount(pg, (we * q1).sum(axis=1), minlength=G) - a2 * drift
    grad[o[1]:o[2]] = np.bincount(pg, (we * qs).sum(axis=1), minlength=G) - a2 * support
    grad[o[2]] = sf * float(fz @ g_beta) - b2 * sf * sf + 1.0
    grad[o[3]:o[4]] = sf * (BF.T @ g_beta) - uf
    grad[o[4]] = g_lsc - b2 * s + 1.0
    grad[o[5]:o[6]] = np.bincount(pg, g_v.sum(axis=1), minlength=G) * 2.0 * sd * sd - b2 * sd * sd + 1.0
    return loglik + logprior, grad


def _logp_grad_country_loops(x, G, F, C, BF, pc, pg, q1, qs, QT2, zd, lam, a2, b2):
    """The country-marginal density as explicit loops (compiled by numba, cached on disk)."""
    P = zd.shape[0]
    o2 = 2 * G
    o3 = o2 + 1
    o4 = o3 + F - 1
    o5 = o4 + 1
    sf = math.exp(x[o2])
    sc = math.exp(x[o4])
    s = sc * sc
    beta = np.zeros(F)
    for f in range(F):
        acc = 0.0
        for j in range(F - 1):
            acc += BF[f, j] * x[o3 + j]
        beta[f] = sf * acc
    sd2 = np.empty(G)
    for g in range(G):
        sd2[g] = math.exp(2.0 * x[o5 + g])
    r = np.empty((P, F))
    v = np.empty((P, F))
    w_c = np.zeros(C)
    b_c = np.zeros(C)
    loglik = 0.0
    for p in range(P):                                   # pass 1: residuals without the country effects
        g = pg[p]
        c = pc[p]
        a = x[g]
        b = x[G + g]
        for k in range(F):
            row = p * F + k
            qb = 0.0
            for f in range(F):
                qb += QT2[row, f] * beta[f]
            rr = zd[p, k] - (a * q1[p, k] + b * qs[p, k] + qb)
            vv = sd2[g] + lam[p, k]
            r[p, k] = rr
            v[p, k] = vv
            loglik += -0.5 * (math.log(vv) + rr * rr / vv)
            w_c[c] += q1[p, k] * q1[p, k] / vv
            b_c[c] += q1[p, k] * rr / vv
    loglik -= P * F * _HALF_LOG_2PI
    e_c = np.empty(C)
    A = 0.0
    B = 0.0
    for c in range(C):                                   # the country effects, integrated out
        e_c[c] = 1.0 / (1.0 + s * w_c[c])                # = 1 / (s P_c): no 1/s, exact as sd_country -> 0
        A += e_c[c]
        B += b_c[c] * e_c[c]
        loglik += 0.5 * s * b_c[c] * b_c[c] * e_c[c] + 0.5 * math.log(e_c[c])
    loglik += -0.5 * s * B * B / A + 0.5 * math.log(C) - 0.5 * math.log(A)
    ghat = np.empty(C)
    gvar = np.empty(C)
    g_lsc = -(C - 1.0)
    for c in range(C):
        k = b_c[c] - B / A
        ghat[c] = s * e_c[c] * k
        gvar[c] = s * e_c[c] * (1.0 - e_c[c] / A)
        g_lsc += s * e_c[c] * e_c[c] * k * k + e_c[c] * (1.0 - e_c[c] / A)
    g_drift = np.zeros(G)
    g_support = np.zeros(G)
    g_sd2 = np.zeros(G)
    g_beta = np.zeros(F)
    for p in range(P):                                   # pass 2: Fisher's identity
        g = pg[p]
        c = pc[p]
        for k in range(F):
            row = p * F + k
            e = r[p, k] - ghat[c] * q1[p, k]
            we = e / v[p, k]
            g_drift[g] += we * q1[p, k]
            g_support[g] += we * qs[p, k]
            g_sd2[g] += -0.5 / v[p, k] + 0.5 * (e * e + gvar[c] * q1[p, k] * q1[p, k]) / (v[p, k] * v[p, k])
            for f in range(F):
                g_beta[f] += we * QT2[row, f]
    grad = np.empty(x.shape[0])
    logprior = 0.0
    for g in range(G):
        logprior += -0.5 * a2 * (x[g] ** 2 + x[G + g] ** 2) - 0.5 * b2 * sd2[g] + x[o5 + g]
        grad[g] = g_drift[g] - a2 * x[g]
        grad[G + g] = g_support[g] - a2 * x[G + g]
        grad[o5 + g] = g_sd2[g] * 2.0 * sd2[g] - b2 * sd2[g] + 1.0
    fzb = 0.0
    for f in range(F):
        fzb += beta[f] * g_beta[f]
    grad[o2] = fzb - b2 * sf * sf + 1.0
    for j in range(F - 1):
        acc = 0.0
        for f in range(F):
            acc += BF[f, j] * g_beta[f]
        grad[o3 + j] = sf * acc - x[o3 + j]
        logprior += -0.5 * x[o3 + j] ** 2
    grad[o4] = g_lsc - b2 * s + 1.0
    logprior += -0.5 * b2 * (sf * sf + s) + x[o2] + x[o4]
    return loglik + logprior, grad


_COUNTRY_KERNEL: list = []


def _country_kernel(*args):
    if not _COUNTRY_KERNEL:
        try:
            import numba

            _COUNTRY_KERNEL.append(numba.njit(cache=True, fastmath=False, nogil=True,
                                              error_model="numpy")(_logp_grad_country_loops))
        except Exception:  # pragma: no cover - numba is a dependency; NumPy is the fallback
            _COUNTRY_KERNEL.append(_logp_grad_country_numpy)
    return _COUNTRY_KERNEL[0](*args)


def country_expanded_variables(G: int, F: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """The variables the sampler records for :class:`CountryMarginalDensity` (country effects come later)."""
    return [("drift", (G,), ("group",)), ("support", (G,), ("group",)), ("sd_factor", (), ()),
            ("factor_z", (F,), ("factor",)), ("factor_effect", (F,), ("factor",)), ("sd_country", (), ()),
            ("sd_cell", (G,), ("group",))]


class PoolingDensity:
    """Log density and gradient of the normal hierarchical model with known SEs, ``theta`` integrated out.

    ``y_j ~ N(mu, tau^2 + se_j^2)``, sampled in ``(mu, log tau)``; ``prior="flat"`` is
    ``p(mu, tau) ∝ 1`` (BDA3 §5.4), ``"default"`` is ``mu ~ N(loc, (5 scale)^2)``,
    ``tau ~ HalfNormal(2 scale)``.
    """

    def __init__(self, y: np.ndarray, se: np.ndarray, prior: str, loc: float = 0.0, scale: float = 1.0):
        self.y = np.asarray(y, dtype=float)
        self.s2 = np.asarray(se, dtype=float) ** 2
        self.prior, self.loc, self.scale = prior, float(loc), float(scale)
        self.ndim = 2
        self.spec = [("mu", (), ()), ("tau", (), ())]

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        mu, lt = float(x[0]), float(x[1])
        tau2 = math.exp(2.0 * lt)
        v = tau2 + self.s2
        r = self.y - mu
        w = r / v
        lp = -0.5 * float(np.sum(np.log(v) + r * w)) - self.y.size * _HALF_LOG_2PI + lt   # + log-Jacobian
        g_mu = float(w.sum())
        g_lt = float(np.sum(-0.5 / v + 0.5 * w * w)) * 2.0 * tau2 + 1.0
        if self.prior != "flat":
            sm, st = 5.0 * self.scale, 2.0 * self.scale
            lp += -0.5 * ((mu - self.loc) / sm) ** 2 - 0.5 * tau2 / st ** 2
            g_mu -= (mu - self.loc) / sm ** 2
            g_lt -= tau2 / st ** 2
        return lp, np.array([g_mu, g_lt])

    def unpack(self, x: np.ndarray) -> dict[str, Any]:
        return {"mu": float(x[0]), "tau": math.exp(float(x[1]))}

    def initial_point(self, seed: Any) -> np.ndarray:
        rng = np.random.default_rng(seed)
        spread = math.sqrt(float(np.var(self.y)) + float(np.mean(self.s2)))
        return np.array([float(np.mean(self.y)) + rng.uniform(-0.5, 0.5) * spread,
                         math.log(0.5 * spread) + rng.uniform(-0.5, 0.5)])


def nutpie_model(density: Any, coords: dict) -> Any:
    """A density (``.logp``, ``.unpack``, ``.initial_point``) as a nutpie model (nothing to compile)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    if isinstance(density, CountryMarginalDensity):
        spec, ndim = country_expanded_variables(density.layout.G, density.layout.F), density.layout.ndim
    else:
        spec = density.spec if hasattr(density, "spec") else density.expanded()
        ndim = density.ndim

    def make_logp():
        return lambda x, **_: density.logp(x)

    def make_expand(seed1, seed2, chain):
        def expand(x, **_):
            nat = density.unpack(np.asarray(x, dtype=float))
            return {name: np.asarray(nat[name], dtype=np.float64).reshape(shape) for name, shape, _ in spec}
        return expand

    return from_pyfunc(
        ndim=ndim, make_logp_fn=make_logp, make_expand_fn=make_expand,
        expanded_dtypes=[np.dtype("float64")] * len(spec), expanded_shapes=[shape for _, shape, _ in spec],
        expanded_names=[name for name, _, _ in spec],
        coords={k: [str(v) for v in vals] for k, vals in coords.items()},
        dims={name: dims for name, _, dims in spec if dims}, make_initial_point_fn=density.initial_point)
