"""CFA model matrices, implied moments and their analytic Jacobian.

A :class:`CFAModel` is built once from a parameter table
(:func:`cips_stats.factor.syntax.build_partable`).  For a vector ``theta`` of free
parameters (equality constraints already absorbed: rows sharing a ``free`` index
share one entry of ``theta``) it gives, per group,

* :meth:`CFAModel.matrices` — ``lambda_`` (p × m), ``psi`` (m × m), ``theta`` (p × p),
  ``nu`` (p), ``alpha`` (m), ``tau`` (thresholds, in table order), ``delta`` (p scale
  factors, 1 for continuous items);
* :meth:`CFAModel.implied` — ``sigma``, ``mu`` and ``tau`` (implied standardised
  thresholds of ordered items);
* :meth:`CFAModel.jacobian` — analytic derivatives ``d vech(sigma) / d theta``
  (p(p+1)/2 × npar), ``d mu / d theta`` (p × npar) and ``d tau / d theta``.

Conventions (stable API)
------------------------
* ``vech`` stacks the lower triangle column by column, diagonal included (lavaan's
  ``lav_matrix_vech``): for p = 3 the order is (1,1), (2,1), (3,1), (2,2), (3,2), (3,3).
  :func:`vech_indices` gives the (row, col) index arrays.
* Model: ``Sigma = D (Lambda A Psi A' Lambda' + Theta) D``, ``mu = nu + Lambda A alpha``,
  with ``D = diag(delta)`` and ``A = (I - B)^-1`` (``B``: regressions among latent
  variables, ``eta = B eta + zeta``; ``A = I`` in a measurement model).  For continuous items ``delta = 1``.  For ordered items
  (delta parameterisation, as lavaan) the diagonal of ``Sigma`` is fixed at 1 (their
  residual variances are implied, ``1/delta^2 - diag(Lambda Psi Lambda')``), and their
  implied thresholds are ``tau* = delta (tau - nu - Lambda alpha)``.
* Variable order is ``model.ov_names`` (lavaan's order: indicators as they appear),
  latent order ``model.lv_names``.

Examples
--------
>>> import numpy as np
>>> from cips_stats.factor.syntax import build_partable
>>> from cips_stats.factor.model import CFAModel
>>> m = CFAModel(build_partable("f =~ x1 + x2 + x3"))
>>> m.npar, m.ov_names
(6, ['x1', 'x2', 'x3'])
>>> th = np.array([0.8, 0.7, 0.5, 0.5, 0.5, 1.0])
>>> m.implied(th)[0]["sigma"][1, 0]
np.float64(0.8)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ModelError

__all__ = ["CFAModel", "vech_indices", "vech"]


def vech_indices(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of ``vech`` (lower triangle, column by column).

    Parameters
    ----------
    p : int
        Order of the matrix.

    Returns
    -------
    tuple of numpy.ndarray
        ``(rows, cols)``, each of length ``p(p+1)/2``.

    Examples
    --------
    >>> r, c = vech_indices(3)
    >>> list(zip(r.tolist(), c.tolist()))
    [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)]
    """
    c, r = np.triu_indices(p)  # upper triangle row-major == lower triangle column-major
    return r, c


def vech(a: np.ndarray) -> np.ndarray:
    """``vech`` of a symmetric matrix (or of the last two axes of an array).

    Parameters
    ----------
    a : numpy.ndarray
        A symmetric ``(..., p, p)`` array.

    Returns
    -------
    numpy.ndarray
        The ``p(p+1)/2`` lower-triangle entries, column by column.

    Examples
    --------
    >>> vech(np.array([[1.0, 2.0], [2.0, 3.0]]))
    array([1., 2., 3.])
    """
    r, c = vech_indices(a.shape[-1])
    return a[..., r, c]


@dataclass
class _Block:
    """Index arrays of one group's table rows, per model matrix."""

    rows: np.ndarray      # table row positions of this group
    kind: np.ndarray      # 'L','P','T','N','A','H','D' per row
    r: np.ndarray
    c: np.ndarray
    free: np.ndarray      # 0-based free index or -1
    th_item: np.ndarray   # item index of each threshold, in threshold order
    th_rows: np.ndarray   # table rows of thresholds


class CFAModel:
    """The CFA model defined by a parameter table.

    Parameters
    ----------
    partable : pandas.DataFrame
        From :func:`~cips_stats.factor.syntax.build_partable`.
    ordered : sequence of str, optional
        Ordered (categorical) observed variables. By default the items that have
        thresholds (``|`` rows) in the table.

    Attributes
    ----------
    partable : DataFrame
    ov_names, lv_names : list of str
    ordered : list of str
    n_groups, npar, p, m : int
    meanstructure : bool
    """

    def __init__(self, partable: pd.DataFrame, ordered=None):
        pt = partable.reset_index(drop=True)
        self.partable = pt
        L_lhs, L_op, L_rhs = pt["lhs"].tolist(), pt["op"].tolist(), pt["rhs"].tolist()   # plain lists: fast to walk
        lv: list[str] = []
        for lhs, op in zip(L_lhs, L_op):
            if op == "=~" and lhs not in lv:
                lv.append(lhs)
        ov: list[str] = []
        for lhs, op, rhs in zip(L_lhs, L_op, L_rhs):
            for n in ((rhs,) if op == "=~" else (lhs, rhs) if op == "~~" else (lhs,)):
                if n and n not in lv and n not in ov:
                    ov.append(n)
        self.lv_names, self.ov_names = lv, ov
        self.p, self.m = len(ov), len(lv)
        th_items = list(dict.fromkeys(pt.loc[pt["op"] == "|", "lhs"]))
        self.ordered = list(ordered) if ordered is not None else th_items
        self.n_groups = int(pt["group"].max())
        self.npar = int(pt["free"].max()) if len(pt) else 0
        self.meanstructure = bool((pt["op"] == "~1").any())
        if self.npar == 0:
            raise ModelError("The model has no free parameter.")
        self._ord_mask = np.array([v in self.ordered for v in ov])
        oi = {n: i for i, n in enumerate(ov)}
        li = {n: i for i, n in enumerate(lv)}
        self.blocks: list[_Block] = []
        for g in range(1, self.n_groups + 1):
            rows = np.flatnonzero(pt["group"].to_numpy() == g)
            kind, r, c = [], [], []
            th_item, th_rows = [], []
            for i in rows:
                lhs, op, rhs = L_lhs[i], L_op[i], L_rhs[i]
                if op == "=~":
                    kind.append("L"); r.append(oi[rhs]); c.append(li[lhs])
                elif op == "~~" and lhs in li:
                    a, b = li[lhs], li[rhs]
                    kind.append("P"); r.append(max(a, b)); c.append(min(a, b))
                elif op == "~~":
                    a, b = oi[lhs], oi[rhs]
                    kind.append("T"); r.append(max(a, b)); c.append(min(a, b))
                elif op == "~1" and lhs in li:
                    kind.append("A"); r.append(li[lhs]); c.append(0)
                elif op == "~1":
                    kind.append("N"); r.append(oi[lhs]); c.append(0)
                elif op == "|":
                    kind.append("H"); r.append(len(th_item)); c.append(oi[lhs])
                    th_item.append(oi[lhs]); th_rows.append(i)
                elif op == "~*~":
                    kind.append("D"); r.append(oi[lhs]); c.append(0)
                elif op == "~":
                    kind.append("B"); r.append(li[lhs]); c.append(li[rhs])
                else:
                    raise ModelError(f"Unsupported operator {op!r} in the parameter table.")
            self.blocks.append(_Block(rows=rows, kind=np.array(kind), r=np.array(r, dtype=int),
                                      c=np.array(c, dtype=int),
                                      free=pt["free"].to_numpy()[rows].astype(int) - 1,
                                      th_item=np.array(th_item, dtype=int),
                                      th_rows=np.array(th_rows, dtype=int)))
        self.has_regressions = bool((pt["op"] == "~").any())
        self._fixed = pt["ustart"].to_numpy(dtype=float).copy()
        self._free_all = pt["free"].to_numpy().astype(int) - 1
        self._vr, self._vc = vech_indices(self.p)

    # ------------------------------------------------------------------ values
    def est(self, theta: np.ndarray) -> np.ndarray:
        """Value of every table row (fixed rows at ``ustart``) for free parameters ``theta``."""
        theta = np.asarray(theta, dtype=float)
        out = self._fixed.copy()
        f = self._free_all >= 0
        out[f] = theta[self._free_all[f]]
        return out

    def matrices(self, theta: np.ndarray) -> list[dict]:
        """Model matrices per group: lambda_, psi, theta, nu, alpha, tau, delta, beta, and
        ``a_inv`` = ``(I - beta)^-1`` and ``psi_total`` = ``A psi A'`` (the latent covariance)."""
        est = self.est(theta)
        out = []
        for b in self.blocks:
            v = est[b.rows]
            L = np.zeros((self.p, self.m)); P = np.zeros((self.m, self.m)); T = np.zeros((self.p, self.p))
            nu = np.zeros(self.p); al = np.zeros(self.m); dl = np.ones(self.p)
            tau = np.zeros(len(b.th_item))
            for k, M in (("L", L), ("P", P), ("T", T)):
                s = b.kind == k
                M[b.r[s], b.c[s]] = v[s]
                if k != "L":
                    M[b.c[s], b.r[s]] = v[s]
            s = b.kind == "N"; nu[b.r[s]] = v[s]
            s = b.kind == "A"; al[b.r[s]] = v[s]
            s = b.kind == "D"; dl[b.r[s]] = v[s]
            s = b.kind == "H"; tau[b.r[s]] = v[s]
            B = np.zeros((self.m, self.m))
            s = b.kind == "B"; B[b.r[s], b.c[s]] = v[s]
            if self.has_regressions:
                try:
                    A = np.linalg.inv(np.eye(self.m) - B)
                except np.linalg.LinAlgError:
                    raise ModelError("The regressions among latent variables are not recursive-invertible "
                                     "(I - B is singular).") from None
                Pt = A @ P @ A.T
            else:
                A, Pt = np.eye(self.m), P
            out.append(dict(lambda_=L, psi=P, theta=T, nu=nu, alpha=al, tau=tau, delta=dl, beta=B, a_inv=A,
                            psi_total=Pt))
        return out

    def implied(self, theta: np.ndarray) -> list[dict]:
        """Implied moments per group: ``sigma`` (p × p), ``mu`` (p), ``tau`` (thresholds)."""
        out = []
        for b, M in zip(self.blocks, self.matrices(theta)):
            L, P, T, dl = M["lambda_"], M["psi_total"], M["theta"], M["delta"]
            S0 = L @ P @ L.T + T
            S = S0 * np.outer(dl, dl)
            om = self._ord_mask
            S[om, om] = 1.0
            mu = M["nu"] + L @ (M["a_inv"] @ M["alpha"])
            i = b.th_item
            tau = dl[i] * (M["tau"] - mu[i]) if len(i) else np.zeros(0)
            out.append(dict(sigma=S, mu=mu, tau=tau))
        return out

    # ------------------------------------------------------------------ derivatives
    def dsigma_full(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per group: (dSigma (npar, p, p), dmu (npar, p), dtau (npar, nth)) as full arrays."""
        out = []
        p, m, npar = self.p, self.m, self.npar
        om = self._ord_mask
        for b, M in zip(self.blocks, self.matrices(theta)):
            L, Pt, T, dl = M["lambda_"], M["psi_total"], M["theta"], M["delta"]
            Ainv = M["a_inv"]
            LA = L @ Ainv                       # Lambda (I - B)^-1
            al = Ainv @ M["alpha"]              # total latent means
            fr = b.free >= 0
            kind, r, c, f = b.kind[fr], b.r[fr], b.c[fr], b.free[fr]
            E = len(kind)
            dS = np.zeros((E, p, p))
            dmu = np.zeros((E, p))
            S0 = L @ Pt @ L.T + T
            V = L @ Pt
            mu = M["nu"] + L @ al
            e = np.arange(E)
            # loadings
            s = np.flatnonzero(kind == "L")
            if len(s):
                vv = V[:, c[s]].T  # (ns, p)
                dS[s, r[s], :] += vv
                dS[s, :, r[s]] += vv
                dmu[s, r[s]] = al[c[s]]
            s = np.flatnonzero(kind == "P")
            if len(s):
                la, lb = LA[:, r[s]].T, LA[:, c[s]].T
                dS[s] = la[:, :, None] * lb[:, None, :]
                off = r[s] != c[s]
                dS[s[off]] += np.transpose(dS[s[off]], (0, 2, 1))
            s = np.flatnonzero(kind == "T")
            if len(s):
                dS[s, r[s], c[s]] = 1.0
                dS[s, c[s], r[s]] = 1.0
            s = np.flatnonzero(kind == "N")
            dmu[s, r[s]] = 1.0
            s = np.flatnonzero(kind == "A")
            if len(s):
                dmu[s] = LA[:, r[s]].T
            s = np.flatnonzero(kind == "B")
            if len(s):
                # d A = A E_ab A:  d Sigma = LA e_a (V' row b) + transpose,  d mu = LA e_a (A alpha)_b
                u = LA[:, r[s]].T                      # (ns, p)
                w = (Pt @ L.T)[c[s]]                   # (ns, p): rows b of A Psi A^T Lambda^T
                dS[s] = u[:, :, None] * w[:, None, :]
                dS[s] += np.transpose(dS[s], (0, 2, 1))
                dmu[s] = u * al[c[s]][:, None]
            dd = np.outer(dl, dl)
            dS *= dd
            s = np.flatnonzero(kind == "D")
            if len(s):
                i = r[s]
                rowv = S0[i, :] * dl[None, :]  # d Sigma_ib / d delta_i = delta_b S0_ib
                dS[s, i, :] += rowv
                dS[s, :, i] += rowv
            dS[:, om, om] = 0.0
            # thresholds
            nth = len(b.th_item)
            dtau = np.zeros((E, nth))
            if nth:
                ti = b.th_item
                tau_raw = M["tau"]
                # through mu (nu, alpha, lambda) and delta
                dtau = -dmu[:, ti] * dl[ti][None, :]
                s = np.flatnonzero(kind == "H")
                dtau[s, r[s]] += dl[ti[r[s]]]
                s = np.flatnonzero(kind == "D")
                for k in s:
                    sel = ti == r[k]
                    dtau[k, sel] += tau_raw[sel] - mu[ti[sel]]
            # entries → free parameters
            if E == npar and len(np.unique(f)) == npar:  # one entry per parameter: a permutation
                order = np.argsort(f)
                out.append((dS[order], dmu[order], dtau[order]))
                continue
            dS_f = np.zeros((npar, p, p))
            dmu_f = np.zeros((npar, p))
            dtau_f = np.zeros((npar, nth))
            if len(np.unique(f)) == E:      # each entry its own parameter: a scatter, no sum
                dS_f[f], dmu_f[f], dtau_f[f] = dS, dmu, dtau
            else:
                np.add.at(dS_f, f, dS)
                np.add.at(dmu_f, f, dmu)
                np.add.at(dtau_f, f, dtau)
            out.append((dS_f, dmu_f, dtau_f))
        return out

    def jacobian(self, theta: np.ndarray) -> list[dict]:
        """Analytic Jacobian per group.

        Returns
        -------
        list of dict
            ``sigma``: d vech(Sigma)/d theta (p(p+1)/2 × npar); ``mu``: d mu/d theta
            (p × npar); ``tau``: d tau*/d theta (n_thresholds × npar).
        """
        out = []
        for dS, dmu, dtau in self.dsigma_full(theta):
            out.append(dict(sigma=dS[:, self._vr, self._vc].T, mu=dmu.T, tau=dtau.T))
        return out

    # ------------------------------------------------------------------ start values
    def start_values(self, covs: list[np.ndarray], means: list[np.ndarray] | None = None,
                     thresholds: list[np.ndarray] | None = None) -> np.ndarray:
        """Starting values from sample moments (one-factor eigen-solutions per factor).

        Parameters
        ----------
        covs : list of (p, p) arrays
            Sample covariance (or polychoric correlation) matrix per group, in ``ov_names`` order.
        means : list of (p,) arrays, optional
            Sample means per group.
        thresholds : list of arrays, optional
            Sample thresholds per group, in the order of the table's threshold rows.
        """
        pt = self.partable
        start = self._fixed.copy()
        start[self._free_all >= 0] = np.nan
        for g, b in enumerate(self.blocks):
            S = np.asarray(covs[g], dtype=float)
            kind, r, c, rows = b.kind, b.r, b.c, b.rows
            fixed_val = self._fixed[rows]
            isfree = b.free >= 0
            L = np.zeros((self.p, self.m))
            psi = np.ones(self.m)
            for j in range(self.m):
                sel = np.flatnonzero((kind == "L") & (c == j))
                items = r[sel]
                if len(items) == 0:
                    continue
                sub = S[np.ix_(items, items)]
                if len(items) >= 2:
                    w, v = np.linalg.eigh(sub)
                    lam = v[:, -1] * np.sqrt(max(w[-1], 1e-6))
                    if lam.sum() < 0:
                        lam = -lam
                    # reduce by residual share (principal-axis style, one step)
                    h2 = np.clip(lam ** 2 / np.maximum(np.diag(sub), 1e-12), 0.05, 0.95)
                    lam = np.sign(lam) * np.sqrt(h2 * np.diag(sub))
                else:
                    lam = np.sqrt(np.maximum(np.diag(sub), 1e-6))
                # scale: fixed loading or fixed variance
                pv = np.flatnonzero((kind == "P") & (r == j) & (c == j))
                fixed_l = [(k, fixed_val[sel[k]]) for k in range(len(sel))
                           if not isfree[sel[k]] and fixed_val[sel[k]] != 0]
                if len(pv) and not isfree[pv[0]]:
                    psi[j] = max(fixed_val[pv[0]], 1e-6)
                    lam = lam / np.sqrt(psi[j])
                elif fixed_l:
                    k0, v0 = fixed_l[0]
                    sfac = v0 / lam[k0] if abs(lam[k0]) > 1e-8 else 1.0
                    lam = lam * sfac
                    psi[j] = 1.0 / sfac ** 2
                L[items, j] = lam
            # factor correlations from sum scores
            Lb = (L != 0).astype(float)
            cs = Lb.T @ S @ Lb
            d = np.sqrt(np.maximum(np.diag(cs), 1e-12))
            R = np.clip(cs / np.outer(d, d), -0.9, 0.9)
            for k in range(len(rows)):
                if not isfree[k]:
                    continue
                kd, rr, cc = kind[k], r[k], c[k]
                if kd == "L":
                    val = L[rr, cc]
                elif kd == "P":
                    val = psi[rr] if rr == cc else R[rr, cc] * np.sqrt(psi[rr] * psi[cc])
                elif kd == "T":
                    if rr == cc:
                        resid = S[rr, rr] - (L[rr] ** 2 * psi).sum()
                        val = max(resid, 0.1 * S[rr, rr])
                    else:
                        val = 0.0
                elif kd == "N":
                    val = means[g][rr] if means is not None else 0.0
                elif kd == "A":
                    val = 0.0
                elif kd == "D":
                    val = 1.0
                elif kd == "H":
                    val = thresholds[g][rr] if thresholds is not None else 0.0
                else:  # pragma: no cover
                    val = 0.0
                i = rows[k]
                if np.isnan(start[i]):
                    start[i] = val
        us = pt["ustart"].to_numpy(dtype=float)
        theta = np.zeros(self.npar)
        cnt = np.zeros(self.npar)
        for i, f in enumerate(self._free_all):
            if f >= 0:
                v = us[i] if np.isfinite(us[i]) else start[i]
                theta[f] += v
                cnt[f] += 1
        return theta / np.maximum(cnt, 1)
