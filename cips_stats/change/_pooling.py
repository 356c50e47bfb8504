"""The normal hierarchical model with known standard errors (``cs.change.partial_pooling``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, Problem
from ..results import Provenance, Result, resolve_seed
from . import _sampling

__all__ = ["PartialPooling", "partial_pooling"]

_PRIORS = ("default", "flat")


@dataclass(frozen=True)
class PartialPooling(Result):
    """Posterior of the normal hierarchical model ``y_j ~ N(theta_j, se_j^2)``, ``theta_j ~ N(mu, tau^2)``.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per unit: ``unit``, ``estimate``, ``se`` (the input), then the
        posterior ``mean``, ``sd``, ``ci_low``, ``ci_high`` of ``theta`` and
        ``pooling`` (posterior mean of ``se^2 / (se^2 + tau^2)``, the weight
        given to ``mu``).
    hyper : pandas.DataFrame
        ``parameter`` (``mu``, ``tau``), ``mean``, ``sd``, ``ci_low``,
        ``ci_high``, ``mcse_mean``, ``mcse_sd``.
    idata : arviz.InferenceData
        Posterior of ``mu``, ``tau`` and ``theta`` (dimension ``unit``),
        sample_stats and observed_data.
    diagnostics : dict
        Max R-hat, min bulk and tail ESS, divergences, compile and sampling
        seconds.
    reliable : bool
        Whether the convergence gates passed.
    prior, ci
        The options.
    """

    table: pd.DataFrame
    hyper: pd.DataFrame
    idata: Any
    diagnostics: dict
    reliable: bool = True
    prior: str = "default"
    ci: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        """The per-unit table."""
        return self.table

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary without the InferenceData (its dimensions are kept)."""
        from ..results import to_jsonable

        return {"kind": type(self).__name__, "table": to_jsonable(self.table), "hyper": to_jsonable(self.hyper),
                "diagnostics": to_jsonable(self.diagnostics), "reliable": self.reliable, "prior": self.prior,
                "ci": self.ci, "idata_dims": {k: int(v) for k, v in self.idata.posterior.sizes.items()},
                "provenance": to_jsonable(self.provenance), "flags": to_jsonable(self.flags)}


def _build(prior: str):
    def build():
        import pymc as pm

        with pm.Model() as model:
            y = pm.Data("y", np.zeros(2))
            se = pm.Data("se", np.ones(2))
            if prior == "flat":
                mu = pm.Flat("mu")
                tau = pm.HalfFlat("tau")
            else:
                loc = pm.Data("mu_loc", 0.0)
                scale = pm.Data("scale", 1.0)
                mu = pm.Normal("mu", loc, 5.0 * scale)
                tau = pm.HalfNormal("tau", 2.0 * scale)
            pm.Normal("y_obs", mu, pm.math.sqrt(tau ** 2 + se ** 2), observed=y, shape=y.shape)
        return model
    return build


def partial_pooling(estimates: Any, se: Any, *, labels: Sequence[Any] | None = None, prior: str = "default",
                    ci: float = 0.95, seed: int | None = None, sampler: str = "nutpie", draws: int = 1000,
                    tune: int = 1000, chains: int = 4, strict: bool = True) -> PartialPooling:
    """Partial pooling of estimates with known standard errors (the normal hierarchical model).

    Parameters
    ----------
    estimates, se : array-like or str
        The unit estimates ``y_j`` and their standard errors ``s_j`` (all
        positive), or — with ``labels`` a DataFrame — column names.
    labels : sequence or pandas.DataFrame, optional
        Unit labels (default ``0..J-1``); a DataFrame gives ``estimates``,
        ``se`` by column name and labels from its index.
    prior : {"default", "flat"}
        ``"flat"``: ``p(mu, tau) ∝ 1`` on ``tau > 0`` (BDA3 §5.4, proper
        posterior for J >= 3).  ``"default"``: weakly informative, scaled to
        the data: ``mu ~ N(mean y, (5 s)^2)``, ``tau ~ HalfNormal(2 s)``, with
        ``s = sqrt(var(y) + mean(se^2))`` the total spread of the estimates.
    ci : float
        Level of the equal-tailed posterior intervals.
    seed : int, optional
        Seed (``None`` draws one and records it in the provenance).
    sampler : {"nutpie", "pymc", "numpyro"}
        NUTS implementation: ``"nutpie"`` (default) samples the marginal
        density of ``(mu, log tau)`` written out in NumPy (nothing to
        compile); ``"pymc"`` and ``"numpyro"`` sample the same model as a PyMC
        graph.
    draws, tune, chains : int
        Posterior draws per chain, tuning steps, chains.
    strict : bool
        ``True``: failing a convergence gate raises :class:`cips_stats.ModelError`;
        ``False``: the result is returned with ``reliable = False`` and flags.

    Returns
    -------
    PartialPooling
        ``.table`` (per unit), ``.hyper`` (``mu``, ``tau``), ``.idata``
        (posterior ``mu``, ``tau``, ``theta``), ``.diagnostics``.

    Notes
    -----
    Only ``mu`` and ``tau`` are sampled, from the marginal likelihood
    ``y_j ~ N(mu, tau^2 + s_j^2)``; each posterior draw of ``theta`` then
    comes from its exact conditional
    ``theta_j | mu, tau, y ~ N(V_j (y_j/s_j^2 + mu/tau^2), V_j)``,
    ``V_j = 1/(1/s_j^2 + 1/tau^2)``.  This is the same joint posterior as
    sampling ``theta`` too (BDA3 §5.4), without the funnel between ``tau``
    and ``theta``.

    Examples
    --------
    >>> import cips_stats as cs
    >>> y = [28, 8, -3, 7, -1, 1, 18, 12]          # BDA3 eight schools
    >>> s = [15, 10, 16, 11, 9, 11, 10, 18]
    >>> res = cs.change.partial_pooling(y, s, prior="flat", seed=3, sampler="nutpie", draws=2000)
    >>> res.hyper["parameter"].tolist(), res.table.shape
    (['mu', 'tau'], (8, 8))
    """
    if isinstance(labels, pd.DataFrame):
        frame = labels
        for name, col in (("estimates", estimates), ("se", se)):
            if not isinstance(col, str) or col not in frame.columns:
                raise DataError(f"With a DataFrame, {name}= must name one of its columns; got {col!r}.",
                                [Problem("argument", "Unknown column.", column=name, value=col)])
        y = frame[estimates].to_numpy(dtype=float)
        s = frame[se].to_numpy(dtype=float)
        lab = list(frame.index)
    else:
        try:
            y = np.asarray(estimates, dtype=float).ravel()
            s = np.asarray(se, dtype=float).ravel()
        except (TypeError, ValueError):
            raise DataError("estimates= and se= must be numeric.", [Problem("argument", "Not numeric.")]) from None
        lab = list(range(len(y))) if labels is None else list(labels)
    if len(y) != len(s) or len(lab) != len(y):
        raise DataError(f"estimates ({len(y)}), se ({len(s)}) and labels ({len(lab)}) differ in length.",
                        [Problem("argument", "Lengths differ.")])
    bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(s) | (s <= 0))
    if len(bad):
        raise DataError(f"{len(bad)} unit(s) have a missing estimate or a zero, negative or missing SE.",
                        [Problem("se_positive", "Estimate missing or SE not positive.", row=int(i) + 1,
                                 value={"unit": lab[i], "estimate": float(y[i]), "se": float(s[i])}) for i in bad])
    if len(y) < 3:
        raise DataError(f"partial_pooling needs at least 3 units; got {len(y)}.", [Problem("n_units", "Too few.")])
    if prior not in _PRIORS:
        raise DataError(f"prior= must be one of {_PRIORS}; got {prior!r}.",
                        [Problem("argument", "Unknown prior.", column="prior", value=prior)])
    if not isinstance(ci, (float, int)) or isinstance(ci, bool) or not 0 < float(ci) < 1:
        raise DataError(f"ci= must be a level in (0, 1); got {ci!r}.", [Problem("argument", "Bad level.", column="ci")])
    _sampling.check_sampling_args(sampler, draws, tune, chains)
    seed = resolve_seed(seed)

    J = len(y)
    data = {"y": y, "se": s}
    if prior == "default":
        data["mu_loc"] = np.asarray(float(y.mean()))
        data["scale"] = np.asarray(float(np.sqrt(y.var() + np.mean(s ** 2))))
    if sampler == "nutpie":
        # the default: the two-parameter marginal density written out (nothing to compile)
        from ._logp import PoolingDensity, nutpie_model

        t0 = time.perf_counter()
        dens = PoolingDensity(y, s, prior, loc=float(data.get("mu_loc", 0.0)), scale=float(data.get("scale", 1.0)))
        idata, timing = _sampling.sample_density(nutpie_model(dens, {}), draws=draws, tune=tune, chains=chains,
                                                 seed=seed, setup_s=time.perf_counter() - t0)
    else:
        key = ("partial_pooling", prior, sampler, J)
        idata, timing = _sampling.sample(key, _build(prior), data, sampler=sampler, draws=draws, tune=tune,
                                         chains=chains, seed=seed)
    post = idata.posterior
    mu = post["mu"].values                                              # (chains, draws)
    tau = post["tau"].values
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    prec = 1.0 / s ** 2 + 1.0 / tau[..., None] ** 2
    V = 1.0 / prec
    m = V * (y / s ** 2 + mu[..., None] / tau[..., None] ** 2)
    theta = m + np.sqrt(V) * rng.standard_normal(m.shape)
    import xarray as xr

    idata.posterior["theta"] = xr.DataArray(theta, dims=("chain", "draw", "unit"),
                                            coords={"chain": post["chain"], "draw": post["draw"],
                                                    "unit": [str(v) for v in lab]})
    if "observed_data" not in idata.groups():
        idata.add_groups(observed_data=xr.Dataset({"y_obs": xr.DataArray(y, dims=("unit",))}))
    diag = _sampling.diagnostics(idata, ["mu", "tau", "theta"], timing)
    reliable, flags = _sampling.gate(diag, strict=strict, what="partial_pooling")

    lo, hi = (1 - float(ci)) / 2, 1 - (1 - float(ci)) / 2
    th = theta.reshape(-1, J)
    pool = (s ** 2 / (s ** 2 + tau.reshape(-1)[:, None] ** 2)).mean(axis=0)
    table = pd.DataFrame({"unit": lab, "estimate": y, "se": s, "mean": th.mean(axis=0), "sd": th.std(axis=0, ddof=1),
                          "ci_low": np.quantile(th, lo, axis=0), "ci_high": np.quantile(th, hi, axis=0),
                          "pooling": pool})
    import arviz as az

    rows = []
    for name in ("mu", "tau"):
        v = post[name].values.ravel()
        x = post[name].values
        mc = float(np.sqrt(x.var(ddof=1) / float(az.ess(x, method="mean"))))
        # MCSE of the sd by the delta method on the variance: the ESS of the squared deviations
        dev2 = (x - x.mean()) ** 2
        mcs = float(np.sqrt(dev2.var(ddof=1) / float(az.ess(dev2, method="mean"))) / (2.0 * x.std(ddof=1)))
        rows.append({"parameter": name, "mean": v.mean(), "sd": v.std(ddof=1), "ci_low": np.quantile(v, lo),
                     "ci_high": np.quantile(v, hi), "mcse_mean": mc, "mcse_sd": mcs})
    hyper = pd.DataFrame(rows)
    prov = Provenance.build("change.partial_pooling", seed=seed,
                            data=pd.DataFrame({"estimate": y, "se": s}),
                            options={"prior": prior, "ci": float(ci), "sampler": sampler, "draws": int(draws),
                                     "tune": int(tune), "chains": int(chains), "strict": bool(strict)})
    return PartialPooling(table=table, hyper=hyper, idata=idata, diagnostics=diag, reliable=reliable, prior=prior,
                          ci=float(ci), provenance=prov, flags=flags)
