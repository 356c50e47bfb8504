"""The Bayesian hierarchical change model on cell sufficient statistics (``cs.change.fit``).

Data of one cell pair ``p`` (a country and group observed at both
iterations): the vector ``d_p`` of the ``F`` factors' changes and its
bootstrap covariance ``Sd_p`` (the sum of the two independent cells'
factor x factor covariances); with ``baseline=True`` also the baseline
estimates ``y1_p`` and their covariance ``S1_p``.

Model (``baseline=False``)::

    d_p    ~ N(delta_p, Sd_p)                            sampling error, known covariance
    delta  = drift[g] + beta[f] + gamma[c] + support[g] s[c, f] + eps[c, g, f]
    eps    ~ N(0, sd_cell[g]^2)                           cell deviation
    beta   = sd_factor * factor_z,  gamma = sd_country * country_z   (non-centred)

The cell deviations are integrated out: ``d_p ~ N(m_p, sd_cell^2 I + Sd_p)``.
With ``Sd_p = Q_p diag(lambda_p) Q_p'`` (computed once) this is
``Q_p' d_p ~ N(Q_p' m_p, diag(sd_cell^2 + lambda_p))``: independent normals,
so the log density costs a handful of element-wise operations — no matrix
factorisation inside the sampler.  Each draw of ``eps`` then comes from its
exact conditional normal, ``Q' eps | ... ~ N(k Q'(d - m), k lambda)``,
``k = sd_cell^2 / (sd_cell^2 + lambda)``.

The default sampler (nutpie, ``baseline=False``) integrates the country
effects out as well (:class:`._logp.CountryMarginalDensity`: they are
Gaussian given the hyper-parameters too) and samples only ``3G + F + 1``
hyper-parameters; each draw's country effects then come from their exact
conditional normal (:func:`_add_country_draws`), and the cell deviations from
theirs.  The PyMC graph (``sampler="pymc"``/``"numpyro"``, or
``baseline=True``) samples the country effects, non-centred.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, Problem
from ..results import Provenance, Result, resolve_seed, to_jsonable
from . import _sampling
from ._cells import CellChanges, _py, cell_changes
from . import _logp
from ._logp import CountryMarginalDensity, nutpie_model

__all__ = ["ChangeResult", "fit"]

#: Variance given to a missing factor of a cell pair (squared 0-10 units): it carries no information.
_PAD = 1e8
#: Unit of the 0-10 scale in the units of each statistic (priors and the default mid= scale with it).
_UNIT = {"mean_0_10": 1.0, "mean_0_100": 10.0, "favourable": 0.1}
#: Default minimal important difference, in 0-10 units.
MID_DEFAULT = 0.25

HYPER = ["drift", "support", "factor_z", "sd_factor", "country_z", "sd_country", "sd_cell"]
#: NUTS target acceptance of the default (written-out) density: 0.95 rather than 0.9, smaller steps in the
#: factor sd's funnel when there are few key factors (SBC design with 4 factors: fits without a divergent
#: transition 96% at 0.95 vs 88% at 0.9; at CIPS scale sampling takes ~1.5 s either way)
TARGET_ACCEPT = 0.95


# ============================================================================================ data
@dataclass
class _Data:
    cells: pd.DataFrame        # observed cells (country, group, factor, baseline, supported, suppressed, n_1, n_2)
    countries: list
    groups: list
    factors: list
    pc: np.ndarray             # (P,) country index of each pair
    pg: np.ndarray             # (P,) group index
    d: np.ndarray              # (P, F) changes (padded)
    Sd: np.ndarray             # (P, F, F)
    y1: np.ndarray             # (P, F) baselines (padded)
    S1: np.ndarray
    obs: np.ndarray            # (P, F) bool
    sup: np.ndarray            # (P, F) 0/1
    lam: np.ndarray            # (P, F) eigenvalues of Sd
    Q: np.ndarray              # (P, F, F) eigenvectors (columns)
    ybar: np.ndarray           # (G, F) mean observed baseline by group and factor
    changes: Any               # the CellChanges the model was fitted to
    unit: float
    first: Any
    last: Any


def _check_supported(supported: Any, countries: set, factors: tuple) -> pd.DataFrame:
    if not isinstance(supported, pd.DataFrame):
        msg = ("supported= must be a DataFrame with columns country, factor, supported "
               "(the layout of simulate().truth['supported']).")
        raise DataError(msg, [Problem("supported_table", msg, column="supported", value=type(supported).__name__)])
    missing = [c for c in ("country", "factor", "supported") if c not in supported.columns]
    if missing:
        raise DataError(f"supported= lacks the columns {missing}.",
                        [Problem("supported_columns", "Column missing.", column=c) for c in missing])
    tab = supported[["country", "factor", "supported"]].reset_index(drop=True)
    probs = []
    dup = tab.duplicated(["country", "factor"], keep=False).to_numpy()
    for i in np.flatnonzero(dup):
        probs.append(Problem("supported_duplicate", "Duplicated (country, factor) row.", row=int(i) + 1,
                             value={"country": _py(tab.at[i, "country"]), "factor": _py(tab.at[i, "factor"])}))
    unknown = (~tab["country"].isin(list(countries)) | ~tab["factor"].isin(list(factors))).to_numpy()
    for i in np.flatnonzero(unknown):
        what = "country" if tab.at[i, "country"] not in countries else "factor"
        probs.append(Problem("supported_unknown", f"Unknown {what}: not in the indicators.", row=int(i) + 1,
                             column=what, value={"country": _py(tab.at[i, "country"]),
                                                 "factor": _py(tab.at[i, "factor"])}))
    vals = tab["supported"]
    ok = (vals.isin([True, False, 0, 1]) & vals.notna()).to_numpy()
    for i in np.flatnonzero(~ok):
        probs.append(Problem("supported_value", "supported must be True/False (or 1/0).", row=int(i) + 1,
                             column="supported", value=_py(vals.iat[i])))
    if probs:
        raise DataError(f"The supported= table has {len(probs)} problem(s) (rows are 1-based).", probs)
    tab["supported"] = tab["supported"].astype(bool)
    return tab


def _prepare_data(obj: Any, supported: Any, along: str, first: Any, last: Any) -> _Data:
    from ._cells import _indicators_class

    if isinstance(obj, CellChanges):
        ch = obj
        statistic = (getattr(obj.provenance, "options", {}) or {}).get("statistic", "mean_0_10")
        known = set(ch.table["country"])
    elif isinstance(obj, _indicators_class()):
        by = list(obj.by)
        if sorted(by) != sorted(["country", along, "group"]):
            msg = (f"fit() models cells keyed by country, {along} and group; these indicators have by={by}. "
                   "Compute them with by=('country', 'iteration', 'group').")
            raise DataError(msg, [Problem("by_columns", msg, value=by)])
        ch = cell_changes(obj, along=along, first=first, last=last)
        statistic = obj.statistic
        known = set(obj.cells["country"])
    else:
        msg = "fit() needs the result of cs.estimate.indicators() or cs.change.cell_changes()."
        raise DataError(msg, [Problem("argument", msg, value=type(obj).__name__)])
    if ch.baseline_cov is None or ch.change_cov is None or list(ch.keys) != ["country", "group"]:
        msg = "fit() needs cell changes keyed by country and group, with their covariances (cs.change.cell_changes)."
        raise DataError(msg, [Problem("cell_changes", msg, value=list(ch.keys))])
    t = ch.table
    sup_tab = _check_supported(supported, known, tuple(ch.factors))
    factors = [f for f in ch.factors if f in set(sup_tab["factor"])]
    F = len(factors)
    fcol = {f: j for j, f in enumerate(factors)}
    fidx = np.array([list(ch.factors).index(f) for f in factors])
    pair_keys = t[["country", "group"]].drop_duplicates().reset_index(drop=True)
    if len(pair_keys) != ch.change_cov.shape[0]:
        msg = "The CellChanges table was filtered after it was computed; pass the indicators instead."
        raise DataError(msg, [Problem("cell_changes", msg)])
    P = len(pair_keys)
    countries = sorted(pd.unique(pair_keys["country"]).tolist(), key=str)
    groups = sorted(pd.unique(pair_keys["group"]).tolist(), key=str)
    pc = pair_keys["country"].map({c: i for i, c in enumerate(countries)}).to_numpy()
    pg = pair_keys["group"].map({g: i for i, g in enumerate(groups)}).to_numpy()
    ppos = pd.MultiIndex.from_frame(pair_keys).get_indexer(pd.MultiIndex.from_frame(t[["country", "group"]]))
    tt = t.assign(_p=ppos)[t["factor"].isin(factors).to_numpy()]
    rows, cols = tt["_p"].to_numpy(), tt["factor"].map(fcol).to_numpy()
    d = np.zeros((P, F))
    y1 = np.zeros((P, F))
    obs = np.zeros((P, F), dtype=bool)
    d[rows, cols] = tt["estimate"].to_numpy()
    y1[rows, cols] = tt["baseline"].to_numpy()
    obs[rows, cols] = True
    Sd = ch.change_cov[:, fidx][:, :, fidx].copy()
    S1 = ch.baseline_cov[:, fidx][:, :, fidx].copy()
    unit = _UNIT.get(statistic, 1.0)
    # missing factors of a pair: neutral value, huge variance, no covariance (they inform nothing)
    miss = ~obs
    for S in (Sd, S1):
        S[miss[:, :, None] | miss[:, None, :]] = 0.0
        S[np.nonzero(miss)[0], np.nonzero(miss)[1], np.nonzero(miss)[1]] = _PAD * unit ** 2
    G = len(groups)
    ybar = np.zeros((G, F))
    for k in range(G):                           # loop over the groups (two) only
        sel = (pg == k)[:, None] & obs
        ybar[k] = np.where(sel.any(axis=0), np.where(sel, y1, 0).sum(axis=0) / np.maximum(sel.sum(axis=0), 1),
                           5.0 * unit)
    y1 = np.where(obs, y1, ybar[pg])
    lam, Q = np.linalg.eigh(Sd)
    lam = np.maximum(lam, 1e-12 * unit ** 2)
    wide = sup_tab.pivot(index="country", columns="factor", values="supported").reindex(index=countries,
                                                                                      columns=factors)
    sup_pf = wide.to_numpy(dtype=float)[pc]                                       # (P, F)
    need = obs & np.isnan(sup_pf)
    if need.any():
        probs = [Problem("supported_missing", "No supported= row for this country and factor (observed at both "
                         "iterations).", value={"country": _py(countries[pc[i]]), "factor": factors[j]})
                 for i, j in zip(*np.nonzero(need))]
        uniq = {(p.value["country"], p.value["factor"]): p for p in probs}
        raise DataError(f"supported= has no row for {len(uniq)} (country, factor) pair(s) observed at both "
                        "iterations.", list(uniq.values()))
    sup_pf = np.nan_to_num(sup_pf)
    cells = tt[["country", "group", "factor", "baseline", "suppressed", "n_1", "n_2"]].reset_index(drop=True)
    cells.insert(4, "supported", sup_pf[rows, cols].astype(bool))
    # order of the cell dimension: pairs in table order, factors in model order
    order = np.lexsort((cols, rows))
    cells = cells.iloc[order].reset_index(drop=True)
    return _Data(cells=cells, countries=countries, groups=groups, factors=factors, pc=pc, pg=pg,
                 d=np.where(obs, d, 0.0), Sd=Sd, y1=y1, S1=S1, obs=obs, sup=sup_pf, lam=lam, Q=Q, ybar=ybar,
                 changes=ch, unit=unit, first=ch.first, last=ch.last)


# =========================================================================================== model
def _mean(pm, pt, pc, pg, sup, G: int, F: int, unit, C: int):
    """Sampled hyper-parameters and the prior mean m (P, F) of every cell's change."""
    drift = pm.Normal("drift", 0.0, 1.0 * unit, dims="group")
    support = pm.Normal("support", 0.0, 1.0 * unit, dims="group")
    sd_factor = pm.HalfNormal("sd_factor", 0.5 * unit)
    factor_z = pm.ZeroSumNormal("factor_z", 1.0, dims="factor")
    beta = pm.Deterministic("factor_effect", sd_factor * factor_z, dims="factor")
    sd_country = pm.HalfNormal("sd_country", 0.5 * unit)
    country_z = pm.ZeroSumNormal("country_z", 1.0, dims="country")
    gamma = pm.Deterministic("country_effect", sd_country * country_z, dims="country")
    sd_cell = pm.HalfNormal("sd_cell", 0.5 * unit, dims="group")
    m = drift[pg][:, None] + beta[None, :] + gamma[pc][:, None] + support[pg][:, None] * sup
    return m, sd_cell


def _coords(data: _Data) -> dict:
    return {"group": [str(g) for g in data.groups], "factor": [str(f) for f in data.factors],
            "country": [str(c) for c in data.countries]}


def _generic_coords(G: int, F: int, C: int) -> dict:
    """Positional coordinates for the cached model (labels are attached after sampling, so that surveys of
    the same shape share one compiled model)."""
    return {"group": list(range(G)), "factor": list(range(F)), "country": list(range(C))}


def _relabel(idata: Any, coords: dict) -> Any:
    for group in ("posterior", "sample_stats"):
        ds = getattr(idata, group, None)
        if ds is None:
            continue
        present = {k: v for k, v in coords.items() if k in ds.dims}
        if present:
            setattr(idata, group, ds.assign_coords(present))
    return idata


def _build_marginal(P: int, G: int, F: int, C: int, baseline: bool, coords: dict):
    def build():
        import pymc as pm
        import pytensor.tensor as pt

        with pm.Model(coords=coords) as model:
            pc = pm.Data("pc", np.zeros(P, dtype=np.int64))
            pg = pm.Data("pg", np.zeros(P, dtype=np.int64))
            sup = pm.Data("sup", np.zeros((P, F)))
            unit = pm.Data("unit", 1.0)
            m, sd_cell = _mean(pm, pt, pc, pg, sup, G, F, unit, C)
            if not baseline:
                zd = pm.Data("zd", np.zeros((P, F)))              # Q' d
                lam = pm.Data("lam", np.ones((P, F)))
                Q = pm.Data("Q", np.tile(np.eye(F), (P, 1, 1)))
                zm = (Q * m[:, :, None]).sum(axis=1)                # Q' m
                var = sd_cell[pg][:, None] ** 2 + lam
                pm.Potential("change_loglik", -0.5 * pt.sum(pt.log(2 * np.pi * var) + (zd - zm) ** 2 / var))
            else:
                d = pm.Data("d", np.zeros((P, F)))
                y1c = pm.Data("y1c", np.zeros((P, F)))             # baseline minus its group x factor mean
                S1 = pm.Data("S1", np.tile(np.eye(F), (P, 1, 1)))
                S2 = pm.Data("S2", np.tile(np.eye(F), (P, 1, 1)))
                rho = pm.Normal("rho", 0.0, 0.5, dims="group")
                r = rho[pg]
                mu = m + r[:, None] * y1c
                cov = (sd_cell[pg] ** 2)[:, None, None] * np.eye(F)[None] + S2 + ((1 + r) ** 2)[:, None, None] * S1
                pm.MvNormal("change_obs", mu=mu, cov=cov, observed=d, shape=(P, F))
        return model
    return build


def _build_full(P: int, G: int, F: int, C: int, coords: dict):
    """The same model with the cell deviations sampled (non-centred): the reference for tests and benchmarks."""
    def build():
        import pymc as pm
        import pytensor.tensor as pt

        with pm.Model(coords={**coords, "pair": np.arange(P)}) as model:
            pc = pm.Data("pc", np.zeros(P, dtype=np.int64))
            pg = pm.Data("pg", np.zeros(P, dtype=np.int64))
            sup = pm.Data("sup", np.zeros((P, F)))
            unit = pm.Data("unit", 1.0)
            d = pm.Data("d", np.zeros((P, F)))
            L = pm.Data("L", np.tile(np.eye(F), (P, 1, 1)))
            m, sd_cell = _mean(pm, pt, pc, pg, sup, G, F, unit, C)
            eps_z = pm.Normal("eps_z", 0.0, 1.0, dims=("pair", "factor"))
            delta = m + sd_cell[pg][:, None] * eps_z
            pm.MvNormal("change_obs", mu=delta, chol=L, observed=d, shape=(P, F))
        return model
    return build


def _model_data(data: _Data, baseline: bool) -> dict[str, np.ndarray]:
    out = {"pc": data.pc.astype(np.int64), "pg": data.pg.astype(np.int64), "sup": data.sup,
           "unit": np.asarray(data.unit, dtype=float)}
    if baseline:
        S2 = data.Sd - data.S1
        out.update(d=data.d, y1c=np.where(data.obs, data.y1 - data.ybar[data.pg], 0.0), S1=data.S1, S2=S2)
    else:
        out.update(zd=np.einsum("pfk,pf->pk", data.Q, data.d), lam=data.lam, Q=data.Q)
    return out


# ==================================================================================== cell draws
def _draw_changes(data: _Data, post: Any, baseline: bool, rng: np.random.Generator) -> np.ndarray:
    """Draws (n, P, F) of every cell's true change from its exact conditional normal given the hyper-parameters."""
    def flat(name):
        v = post[name].values
        return v.reshape((-1,) + v.shape[2:])

    drift, support, beta, gamma, sd_cell = (flat(k) for k in ("drift", "support", "factor_effect",
                                                              "country_effect", "sd_cell"))
    pc, pg = data.pc, data.pg
    if not baseline:
        # in chunks of draws (arrays that stay in cache) and pair-major (P, n, F), so that each rotation is one
        # matrix product per pair; the normal draws come in (n, P, F) order, chunk after chunk, as one stream
        Q, QT, lam = data.Q, np.swapaxes(data.Q, 1, 2), data.lam
        n, (P, F) = drift.shape[0], data.d.shape
        out = np.empty((n, P, F))
        step = max(1, 250_000 // max(1, P * F))
        for a in range(0, n, step):
            b = min(n, a + step)
            mt = (drift[a:b, pg].T[:, :, None] + beta[a:b][None] + gamma[a:b, pc].T[:, :, None]
                  + support[a:b, pg].T[:, :, None] * data.sup[:, None, :])             # (P, n_b, F)
            zr = (data.d[:, None, :] - mt) @ Q                                          # Q'(d - m)
            s2 = (sd_cell[a:b, pg] ** 2).T[:, :, None]
            k = s2 / (s2 + lam[:, None, :])
            z_eps = k * zr + np.sqrt(k * lam[:, None, :]) * np.swapaxes(rng.standard_normal((b - a, P, F)), 0, 1)
            out[a:b] = np.swapaxes(mt + z_eps @ QT, 0, 1)
        return out
    m = (drift[:, pg][:, :, None] + beta[:, None, :] + gamma[:, pc][:, :, None]
         + support[:, pg][:, :, None] * data.sup[None])                               # (n, P, F)
    s2 = sd_cell[:, pg] ** 2                                                             # (n, P)
    n = m.shape[0]
    rho = flat("rho")[:, pg]                                                             # (n, P)
    y1c = np.where(data.obs, data.y1 - data.ybar[pg], 0.0)
    base = m + rho[:, :, None] * y1c[None]
    S1, S2 = data.S1, data.Sd - data.S1
    F = data.d.shape[1]
    eye = np.eye(F)
    out = np.empty_like(m)
    step = max(1, 2_000_000 // max(1, m.shape[1] * F * F))
    for s in range(0, n, step):                     # bounded memory: chunks of draws
        sl = slice(s, min(n, s + step))
        r = rho[sl][:, :, None, None]
        c_aa = s2[sl][:, :, None, None] * eye + r ** 2 * S1[None]
        c_ab = c_aa + r * S1[None]
        c_bb = s2[sl][:, :, None, None] * eye + (1 + r) ** 2 * S1[None] + S2[None]
        resid = (data.d[None] - base[sl])[..., None]
        gain = np.swapaxes(np.linalg.solve(c_bb, np.swapaxes(c_ab, -1, -2)), -1, -2)      # c_ab c_bb^-1
        mean = (gain @ resid)[..., 0]
        cov = c_aa - gain @ np.swapaxes(c_ab, -1, -2)
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2)) + 1e-12 * eye
        Lc = np.linalg.cholesky(cov)
        out[sl] = base[sl] + mean + (Lc @ rng.standard_normal(mean.shape + (1,)))[..., 0]
    return out


# ========================================================================================== result
@dataclass(frozen=True)
class ChangeResult(Result):
    """Posterior of the hierarchical change model.

    Attributes
    ----------
    cells : pandas.DataFrame
        ``country, group, factor, baseline, supported, suppressed, n_1, n_2``
        in the order of the posterior's ``cell`` dimension.
    prob_improved : pandas.DataFrame
        Per cell: ``country, group, factor, mean, ci_low, ci_high,
        p_improved`` (posterior P(change > 0)), ``p_above_mid`` (P(change >
        mid)), then ``sd, supported, suppressed``.
    support_effect : pandas.DataFrame
        Per group (and ``"all"``): ``group, mean, sd, ci_low, ci_high,
        p_positive`` of the mean true change of the supported cells minus
        that of the unsupported cells (the indicator scale, these cells).
    share_improved : pandas.DataFrame
        ``group, set`` (``supported``, ``unsupported``, ``difference``),
        ``n_cells, mean, sd, ci_low, ci_high``: posterior of the share of
        cells whose true change is positive.
    share_improved_draws : pandas.DataFrame
        ``group, sample, supported, unsupported, difference``: the posterior
        draws behind ``share_improved``.
    hyper : pandas.DataFrame
        Summary of the sampled parameters (``parameter, index, mean, sd,
        ci_low, ci_high, r_hat, ess_bulk, ess_tail``).
    idata : arviz.InferenceData
        ``posterior`` (hyper-parameters and ``change``, dimension ``cell``),
        ``sample_stats``, ``observed_data`` (the observed changes).
    diagnostics : dict
        ``r_hat_max, ess_bulk_min, ess_tail_min, divergences``, compile and
        sampling seconds, whether the compiled model came from the cache.
    reliable : bool
        Whether every gate passed.
    cell_changes : CellChanges
        The per-cell frequentist changes the model was fitted to (all factors).
    """

    cells: pd.DataFrame
    prob_improved: pd.DataFrame
    support_effect: pd.DataFrame
    share_improved: pd.DataFrame
    share_improved_draws: pd.DataFrame
    hyper: pd.DataFrame
    idata: Any
    diagnostics: dict
    reliable: bool = True
    baseline: bool = False
    mid: float = MID_DEFAULT
    ci: float = 0.95
    cell_changes: Any = None

    _SCALARS = ("reliable", "baseline", "mid", "ci")

    def change_draws(self) -> np.ndarray:
        """Posterior draws of every cell's true change, shape ``(samples, cells)`` (chains stacked)."""
        v = self.idata.posterior["change"].values
        return v.reshape(-1, v.shape[-1])

    def to_frame(self) -> pd.DataFrame:
        """The per-cell table ``prob_improved``."""
        return self.prob_improved

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the tables and diagnostics (the InferenceData and draws are left out)."""
        return posterior_tables_dict(self, self._SCALARS)


def posterior_tables_dict(res: Any, scalars: tuple[str, ...]) -> dict[str, Any]:
    """The JSON-ready tables, diagnostics, ``scalars``, provenance and flags of a change-model result."""
    out = {"kind": type(res).__name__}
    for name in ("cells", "prob_improved", "support_effect", "share_improved", "hyper", "diagnostics"):
        out[name] = to_jsonable(getattr(res, name))
    out.update({k: getattr(res, k) for k in scalars})
    out.update(provenance=to_jsonable(res.provenance), flags=to_jsonable(res.flags))
    return out


def _interval(x: np.ndarray, ci: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    a = (1.0 - ci) / 2.0
    return np.quantile(x, a, axis=axis), np.quantile(x, 1.0 - a, axis=axis)


def cell_probabilities(cells: pd.DataFrame, draws: np.ndarray, ci: float, mid: float) -> pd.DataFrame:
    """Per cell: posterior mean, interval, P(change > 0), P(change > mid), sd, supported, suppressed."""
    lo, hi = _interval(draws, ci)
    prob = cells[["country", "group", "factor"]].copy()
    prob["mean"] = draws.mean(axis=0)
    prob["ci_low"], prob["ci_high"] = lo, hi
    prob["p_improved"] = (draws > 0).mean(axis=0)
    prob["p_above_mid"] = (draws > mid).mean(axis=0)
    prob["sd"] = draws.std(axis=0, ddof=1)
    prob["supported"] = cells["supported"].to_numpy()
    prob["suppressed"] = cells["suppressed"].to_numpy()
    return prob


def support_summaries(cells: pd.DataFrame, draws: np.ndarray, groups: Any,
                      ci: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Support effect and shares of improved cells per group and for all cells (shared by both change models).

    ``draws`` (samples, cells) are the cells' true changes; ``cells["supported"]``
    says which cells the programme supported.  Returns ``(support_effect,
    share_improved, share_improved_draws)``.
    """
    sup = cells["supported"].to_numpy(dtype=bool)
    sets = [(str(g), (cells["group"] == g).to_numpy()) for g in groups] + [("all", np.ones(len(cells), bool))]
    eff_rows, share_rows, share_draws = [], [], []
    improved = draws > 0
    S = draws.shape[0]
    for g, sel in sets:                                  # the groups (two) and "all"
        a, b = sel & sup, sel & ~sup
        if a.any() and b.any():
            eff = draws[:, a].mean(axis=1) - draws[:, b].mean(axis=1)
            l, h = _interval(eff, ci)
            eff_rows.append({"group": g, "mean": eff.mean(), "sd": eff.std(ddof=1), "ci_low": l, "ci_high": h,
                             "p_positive": (eff > 0).mean(), "n_supported": int(a.sum()),
                             "n_unsupported": int(b.sum())})
        sh_a = improved[:, a].mean(axis=1) if a.any() else np.full(S, np.nan)
        sh_b = improved[:, b].mean(axis=1) if b.any() else np.full(S, np.nan)
        for name, v, k in (("supported", sh_a, int(a.sum())), ("unsupported", sh_b, int(b.sum())),
                           ("difference", sh_a - sh_b, int(sel.sum()))):
            ok = np.isfinite(v)
            l, h = _interval(v[ok], ci) if ok.any() else (np.nan, np.nan)
            share_rows.append({"group": g, "set": name, "n_cells": k, "mean": v.mean() if ok.any() else np.nan,
                               "sd": v.std(ddof=1) if ok.sum() > 1 else np.nan, "ci_low": l, "ci_high": h})
        share_draws.append(pd.DataFrame({"group": g, "sample": np.arange(S), "supported": sh_a,
                                         "unsupported": sh_b, "difference": sh_a - sh_b}))
    return (pd.DataFrame(eff_rows, columns=SUPPORT_COLUMNS), pd.DataFrame(share_rows, columns=SHARE_COLUMNS),
            pd.concat(share_draws, ignore_index=True))


#: Columns of ``support_effect`` and ``share_improved``.
SUPPORT_COLUMNS = ["group", "mean", "sd", "ci_low", "ci_high", "p_positive", "n_supported", "n_unsupported"]
SHARE_COLUMNS = ["group", "set", "n_cells", "mean", "sd", "ci_low", "ci_high"]


def _summaries(data: _Data, draws: np.ndarray, ci: float, mid: float):
    """prob_improved, support_effect, share_improved(+draws) from the cell draws (samples, cells)."""
    prob = cell_probabilities(data.cells, draws, ci, mid)
    return (prob, *support_summaries(data.cells, draws, data.groups, ci))


def _hyper_table(idata: Any, names: list[str], ci: float, values: dict | None = None) -> pd.DataFrame:
    post = idata.posterior
    rows = []
    values = _sampling.per_variable(idata, names) if values is None else values
    for name in names:
        v = post[name].values
        flat = v.reshape(v.shape[0] * v.shape[1], -1)
        dims = [d for d in post[name].dims if d not in ("chain", "draw")]
        labels = ([""] if not dims else [str(x) for x in post[name].coords[dims[0]].values])
        lo, hi = _interval(flat, ci)
        for j, lab in enumerate(labels):
            rows.append({"parameter": name, "index": lab, "mean": flat[:, j].mean(), "sd": flat[:, j].std(ddof=1),
                         "ci_low": lo[j], "ci_high": hi[j], "r_hat": float(values[name][0][j]),
                         "ess_bulk": float(values[name][1][j]), "ess_tail": float(values[name][2][j])})
    return pd.DataFrame(rows)


def _add_country_draws(idata: Any, density: CountryMarginalDensity, labels: list, rng: np.random.Generator) -> None:
    """Draw the country effects from their exact conditional normal given each posterior draw; add them to idata.

    Adds ``country_effect`` and ``country_z`` (the effect over ``sd_country``)
    with dims ``(chain, draw, country)``, as the model with explicit country
    effects records them.
    """
    import xarray as xr

    post = idata.posterior

    def flat(name):
        v = np.asarray(post[name].values, dtype=float)
        return v.reshape((-1,) + v.shape[2:])

    drift, support, beta, sdc, sdcell = (flat(k) for k in ("drift", "support", "factor_effect", "sd_country",
                                                           "sd_cell"))
    n, C = drift.shape[0], density.layout.C
    gamma = np.empty((n, C))
    step = max(1, 250_000 // max(1, density.P * density.F))     # draws per chunk: arrays of ~2 MB
    for a in range(0, n, step):
        b = min(n, a + step)
        mean, var = density.country_posterior(drift[a:b], support[a:b], beta[a:b], sdc[a:b], sdcell[a:b])
        z = rng.standard_normal((b - a, C)) * np.sqrt(var)                 # independent effects, then the
        total = var.sum(axis=1, keepdims=True)                              # constraint sum = 0 (exact
        share = np.divide(var, total, out=np.zeros_like(var), where=total > 0)    # conditioning)
        gamma[a:b] = mean + z - share * z.sum(axis=1, keepdims=True)
    nch, ndr = post.sizes["chain"], post.sizes["draw"]
    coords = {"chain": post["chain"], "draw": post["draw"], "country": list(labels)}
    eff = xr.DataArray(gamma.reshape(nch, ndr, C), dims=("chain", "draw", "country"), coords=coords)
    post["country_effect"] = eff
    post["country_z"] = eff / post["sd_country"]


def _compiled_or_python(density: CountryMarginalDensity, coords: dict, seed: int) -> tuple[bool, Any]:
    """The density as nutpie's C-callback model (chains in parallel, no GIL), else as a Python-function model.

    Returns ``(loaded, model)``: ``loaded`` says whether the compiled code was
    already in this process (numba compiles it once per machine and caches it
    on disk).
    """
    from . import _compiled

    loaded = _compiled.loaded()
    model = _compiled.compiled_model(density, coords)
    if model is None:                                         # a nutpie without the numba container
        loaded = bool(_logp._COUNTRY_KERNEL)
        density.logp(density.initial_point(seed))             # loads (or compiles) the NumPy/numba kernel
        model = nutpie_model(density, coords)
    return loaded, model


def fit(indicators: Any, *, supported: pd.DataFrame, seed: int | None = None, baseline: bool = False,
        sampler: str = "nutpie", draws: int = 1000, tune: int = 1000, chains: int = 4, strict: bool = True,
        ci: float = 0.95, mid: float | None = None, along: str = "iteration", first: Any = None,
        last: Any = None) -> ChangeResult:
    """Fit the Bayesian hierarchical change model to every cell at once.

    Parameters
    ----------
    indicators : Indicators or CellChanges
        Result of :func:`cips_stats.estimate.indicators` (``by=("country",
        "iteration", "group")``, replicates kept), or of :func:`cell_changes`.
    supported : pandas.DataFrame
        ``country, factor, supported`` (the layout of
        ``simulate(...).truth["supported"]``); the model uses the factors it
        names.  Every (country, factor) observed at both iterations needs a row.
    seed : int, optional
        Seed of the sampler and of the cell draws (``None`` draws one; it is
        recorded in the provenance).
    baseline : bool
        Add the baseline covariate ``rho[group] * (baseline - mean baseline)``
        (regression to the mean).
    sampler : {"nutpie", "pymc", "numpyro"}
        NUTS implementation; all three sample the same PyMC model.
    draws, tune, chains : int
        Draws and tuning steps per chain, chains.
    strict : bool
        ``True``: failed gates raise :class:`cips_stats.ModelError`;
        ``False``: the result comes back with ``reliable = False`` and flags.
    ci : float
        Level of the equal-tailed posterior intervals.
    mid : float, optional
        Minimal important difference for ``p_above_mid`` (default 0.25 points
        on the 0–10 scale, in the units of the statistic).
    along, first, last
        As in :func:`cell_changes`.

    Returns
    -------
    ChangeResult

    Notes
    -----
    See ``methodology/change-model.md``.  The cell deviations and the
    country effects are integrated out analytically and drawn afterwards
    from their exact conditional normals, so only the drift, support and
    factor effects and three standard deviations are sampled (17 parameters
    at CIPS scale, whatever the number of countries).  Gates: R-hat <= 1.01, bulk
    and tail ESS >= 400 over every sampled parameter and every cell change,
    no divergent transition.

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=21, n_countries=8, n_repeat=6, n_officials=150, n_private=110)
    >>> ind = cs.estimate.indicators(sim.data, n_boot=400, seed=4)
    >>> sup = sim.truth["supported"]
    >>> sup = sup[sup["factor"].isin(["leadership", "transparency", "audit", "morale"])]
    >>> import warnings
    >>> with warnings.catch_warnings():     # a survey this small may show a divergent transition
    ...     warnings.simplefilter("ignore")
    ...     res = cs.change.fit(ind, supported=sup, seed=5, strict=False)   # 6 countries x 2 groups x 4 factors
    >>> res.change_draws().shape
    (4000, 48)
    >>> res.prob_improved.columns[:8].tolist()
    ['country', 'group', 'factor', 'mean', 'ci_low', 'ci_high', 'p_improved', 'p_above_mid']
    """
    import xarray as xr

    _sampling.check_sampling_args(sampler, draws, tune, chains)
    if not isinstance(ci, (float, int)) or isinstance(ci, bool) or not 0 < float(ci) < 1:
        raise DataError(f"ci= must be a level in (0, 1); got {ci!r}.", [Problem("argument", "Bad level.", column="ci")])
    seed = resolve_seed(seed)
    data = _prepare_data(indicators, supported, along, first, last)
    mid = MID_DEFAULT * data.unit if mid is None else float(mid)
    P, F = data.d.shape
    G, C = len(data.groups), len(data.countries)
    if sampler == "nutpie" and not baseline:
        # the default: the density written out in NumPy/numba (nothing to compile per process)
        t0 = time.perf_counter()
        md = _model_data(data, False)
        density = CountryMarginalDensity(md["pc"], md["pg"], md["sup"], md["zd"], md["lam"], md["Q"], G, C,
                                         data.unit)
        loaded, model = _compiled_or_python(density, _coords(data), seed)
        idata, timing = _sampling.sample_density(model, draws=draws, tune=tune, chains=chains, seed=seed,
                                                 setup_s=time.perf_counter() - t0, cached=loaded,
                                                 target_accept=TARGET_ACCEPT)
    else:
        key = ("change", bool(baseline), sampler, P, G, F, C)
        idata, timing = _sampling.sample(key, _build_marginal(P, G, F, C, bool(baseline), _generic_coords(G, F, C)),
                                         _model_data(data, bool(baseline)), sampler=sampler, draws=draws, tune=tune,
                                         chains=chains, seed=seed)
    idata = _relabel(idata, _coords(data))
    if sampler == "nutpie" and not baseline:          # the country effects were integrated out: draw them now
        _add_country_draws(idata, density, _coords(data)["country"],
                           np.random.default_rng(np.random.SeedSequence([seed, 3])))
    post = idata.posterior
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    delta = _draw_changes(data, post, bool(baseline), rng)                         # (n, P, F)
    cells = data.cells
    pair_of = pd.MultiIndex.from_arrays([np.array(data.countries, dtype=object)[data.pc],
                                         np.array(data.groups, dtype=object)[data.pg]])
    pi = pair_of.get_indexer(pd.MultiIndex.from_frame(cells[["country", "group"]]))
    fi = cells["factor"].map({f: j for j, f in enumerate(data.factors)}).to_numpy()
    change = delta[:, pi, fi]                                                         # (n, cells)
    nch, ndr = post.sizes["chain"], post.sizes["draw"]
    cell_lab = [f"{c}|{g}|{f}" for c, g, f in cells[["country", "group", "factor"]].itertuples(index=False)]
    idata.posterior["change"] = xr.DataArray(change.reshape(nch, ndr, -1), dims=("chain", "draw", "cell"),
                                             coords={"chain": post["chain"], "draw": post["draw"], "cell": cell_lab})
    obs = xr.Dataset({"change_obs": xr.DataArray(data.d[pi, fi], dims=("cell",), coords={"cell": cell_lab}),
                      "baseline_obs": xr.DataArray(data.y1[pi, fi], dims=("cell",), coords={"cell": cell_lab})})
    if "observed_data" in idata.groups():
        del idata.observed_data
    idata.add_groups(observed_data=obs)
    names = HYPER + (["rho"] if baseline else [])
    per_var = _sampling.per_variable(idata, names + ["change"])
    diag = _sampling.diagnostics(idata, names + ["change"], timing, values=per_var)
    reliable, flags = _sampling.gate(diag, strict=strict, what="change.fit")
    prob, eff, share, share_draws = _summaries(data, change, float(ci), mid)
    hyper = _hyper_table(idata, names, float(ci), values=per_var)
    prov = Provenance.build("change.fit", data_fingerprint=getattr(getattr(indicators, "provenance", None),
                                                                   "data_fingerprint", None), seed=seed,
                            options={"baseline": bool(baseline), "sampler": sampler, "draws": int(draws),
                                     "tune": int(tune), "chains": int(chains), "strict": bool(strict), "ci": float(ci),
                                     "mid": mid, "along": along, "first": _py(data.first), "last": _py(data.last),
                                     "factors": list(data.factors)})
    return ChangeResult(cells=cells, prob_improved=prob, support_effect=eff, share_improved=share,
                        share_improved_draws=share_draws, hyper=hyper, idata=idata, diagnostics=diag,
                        reliable=reliable, baseline=bool(baseline), mid=mid, ci=float(ci),
                        cell_changes=data.changes, provenance=prov, flags=flags)


def _fit_full(indicators: Any, *, supported: pd.DataFrame, seed: int, sampler: str = "pymc", draws: int = 1000,
              tune: int = 1000, chains: int = 4) -> tuple[Any, dict, _Data]:
    """The unmarginalised model (cell deviations sampled): reference for tests and the benchmark baseline."""
    data = _prepare_data(indicators, supported, "iteration", None, None)
    P, F = data.d.shape
    G, C = len(data.groups), len(data.countries)
    key = ("change_full", sampler, P, G, F, C)
    L = np.linalg.cholesky(data.Sd)
    dd = {"pc": data.pc.astype(np.int64), "pg": data.pg.astype(np.int64), "sup": data.sup,
          "unit": np.asarray(data.unit, dtype=float), "d": data.d, "L": L}
    idata, timing = _sampling.sample(key, _build_full(P, G, F, C, _generic_coords(G, F, C)), dd, sampler=sampler,
                                     draws=draws, tune=tune, chains=chains, seed=seed)
    idata = _relabel(idata, _coords(data))
    return idata, _sampling.diagnostics(idata, HYPER, timing), data
