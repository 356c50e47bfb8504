"""Ordinal recovery: WLSMV on ordered codes vs ML on the raw codes, against the true loadings.

Each replication draws one country-iteration cell of officials with ``cs.simulate`` (so the
sample has a single latent mean: no between-country mean structure that a pooled CFA would
absorb into the loadings) and fits the instrument's model for three key factors × five items
twice:

* ``WLSMV``: the codes as ordered items (polychoric correlations, DWLS, robust SEs), pairwise
  missing answers;
* ``ML``: the codes as continuous numbers, normal-theory ML with FIML.

Both use ``std_lv=True`` (factor variances 1). The quantity compared is the standardised
loading (``std_all``) against the true standardised loading of the item's *latent response*
``y*_j = lambda_j eta_f + e_j``: ``lambda_j sqrt(phi_ff) / sqrt(lambda_j^2 phi_ff + psi_j)``
from ``sim.truth["loadings"]`` (``loading``, ``residual_variance``) with ``phi_ff = 1``.

The generating instrument is the default CIPS instrument (the fitted model uses its first three
key factors) with the demographics replaced by a single one-category field: ``cs.simulate`` adds
demographic effects to the latent means, so with the real demographics a cell is a mixture of
profiles with different latent means and the within-cell factor variance exceeds 1 (the true
standardised loadings would then depend on the sample's composition). With one profile the
factors are exactly N(0, Phi) within the cell and the truth above is exact. Missing answers
(blank, don't know, refused) keep ``cs.simulate``'s defaults (about 6.5% per item, missing
completely at random).

Reported per scale (5 and 4 points) and estimator: mean bias of ``std_all`` (estimate minus
truth, over replications and items) with its Monte Carlo SE, mean relative bias, mean absolute
bias per item position, RMSE, and the coverage of the 95% Wald interval of ``std_all``
(WLSMV: with ``std_lv=True`` and the delta parameterisation the loading estimate *is*
``std_all``, so its own robust Wald interval is used; ML: delta-method SE of
``lambda / sqrt(lambda^2 + theta)`` from the parameters' covariance matrix).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

import cips_stats as cs
from cips_stats.instrument import Demographic

from . import RESULTS, write_result

__all__ = ["run", "study_instrument", "replicate", "summarise", "DESIGN"]

NAME = "ordinal_recovery"

#: Full-run design (the quick run uses fewer replications).
DESIGN: dict[str, Any] = {
    "replications": 200,
    "quick_replications": 10,
    "n_officials": 500,
    "n_factors": 3,
    "points": (5, 4),
    "seed0": 20261122,
}


def study_instrument(points: int = 5) -> cs.Instrument:
    """The default instrument with its demographics replaced by one one-category field.

    ``cs.simulate`` then draws every respondent of a cell from one latent distribution
    N(mu, Phi). (All ten key factors are simulated — with only 15 items ``cs.load`` can meet
    two identical answer rows and reject the survey as duplicated; only the first factors are
    fitted.)
    """
    inst = cs.Instrument.default(points=points)
    one = Demographic("cell", label="single profile", categories=("all",), groups=tuple(inst.group_ids))
    return replace(inst, demographics=(one,))


def _ml_std_all_se(res) -> np.ndarray:
    """Delta-method SE of std_all = lambda / sqrt(lambda^2 + theta) for each loading (std_lv=True)."""
    p = res.parameters
    lo = p[p["op"] == "=~"]
    th = p[(p["op"] == "~~") & (p["lhs"] == p["rhs"])].set_index("lhs")
    V = res.vcov
    out = np.empty(len(lo))
    for k, (_, r) in enumerate(lo.iterrows()):
        lam = r["est"]
        t = th.loc[r["rhs"]]
        theta = t["est"]
        s = lam ** 2 + theta
        g = np.array([theta / s ** 1.5, -lam / (2.0 * s ** 1.5)])
        idx = np.array([int(r["free"]) - 1, int(t["free"]) - 1])
        out[k] = float(np.sqrt(g @ V[np.ix_(idx, idx)] @ g))
    return out


def replicate(seed: int, *, points: int = 5, n: int = DESIGN["n_officials"], n_factors: int = 3,
              estimators: Sequence[str] = ("WLSMV", "ML")) -> pd.DataFrame:
    """One replication: simulate one officials cell, fit each estimator, compare std_all to the truth.

    Returns one row per estimator and loading: ``seed, points, estimator, factor, item, true,
    est, se, ci_low, ci_high, converged``.
    """
    inst = study_instrument(points)
    sim = cs.simulate(seed=seed, instrument=inst, n_countries=1, n_repeat=0, n_officials=n, n_private=2)
    frame = sim.data.frame
    factors = [f.id for f in inst.key_factors[:n_factors]]
    items = [i for f in factors for i in inst.factor_items(f, group="officials")]
    data = frame.loc[frame["group"] == "officials", items]
    model = inst.model_syntax("officials", factors=factors)
    tl = sim.truth["loadings"].set_index("item")
    phi = 1.0  # factor variance within the cell (one demographic profile)
    lam, psi = tl["loading"], tl["residual_variance"]
    true_std = lam * np.sqrt(phi) / np.sqrt(lam ** 2 * phi + psi)
    z = norm.ppf(0.975)
    rows = []
    for est in estimators:
        if est == "WLSMV":
            res = cs.factor.cfa(data, model, estimator="WLSMV", ordered=True, missing="pairwise", std_lv=True)
        elif est == "ML":
            res = cs.factor.cfa(data, model, estimator="ML", missing="fiml", std_lv=True)
        else:
            raise ValueError(f"unknown estimator {est!r}")
        lo = res.parameters[res.parameters["op"] == "=~"]
        std = lo["std_all"].to_numpy(float)
        if est == "WLSMV":
            se = lo["se"].to_numpy(float)  # est == std_all here (delta parameterisation, std_lv)
        else:
            se = _ml_std_all_se(res)
        rows.append(pd.DataFrame({
            "seed": seed, "points": points, "estimator": est, "factor": lo["lhs"].to_numpy(),
            "item": lo["rhs"].to_numpy(), "true": true_std.loc[lo["rhs"]].to_numpy(float), "est": std,
            "se": se, "ci_low": std - z * se, "ci_high": std + z * se, "converged": bool(res.converged),
        }))
    return pd.concat(rows, ignore_index=True)


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE and coverage of std_all per scale and estimator (converged fits only)."""
    out = []
    for (points, est), d in records.groupby(["points", "estimator"], sort=False):
        ok = d[d["converged"]]
        err = ok["est"] - ok["true"]
        # mean error per replication (items averaged) -> Monte Carlo SE of the mean bias
        per_rep = err.groupby(ok["seed"]).mean()
        per_item = err.groupby(ok["item"]).mean()
        cover = (ok["ci_low"] <= ok["true"]) & (ok["true"] <= ok["ci_high"])
        out.append({
            "points": int(points), "estimator": est,
            "replications": int(d["seed"].nunique()), "converged": int(ok["seed"].nunique()),
            "loadings": int(len(ok)),
            "mean_true": float(ok["true"].mean()), "mean_est": float(ok["est"].mean()),
            "bias": float(err.mean()),
            "bias_mc_se": float(per_rep.std(ddof=1) / np.sqrt(len(per_rep))) if len(per_rep) > 1 else float("nan"),
            "relative_bias": float((err / ok["true"]).mean()),
            "mean_abs_item_bias": float(per_item.abs().mean()),
            "max_abs_item_bias": float(per_item.abs().max()),
            "rmse": float(np.sqrt((err ** 2).mean())),
            "coverage": float(cover.mean()),
            "coverage_mc_se": float(np.sqrt(cover.mean() * (1 - cover.mean()) / len(cover))),
            "mean_se": float(ok["se"].mean()),
            "sd_error": float(err.std(ddof=1)),
        })
    return pd.DataFrame(out)


def run(quick: bool = False, *, folder: str | Path = RESULTS) -> pd.DataFrame:
    """Run the study; writes validation/results/ordinal_recovery.csv and .json."""
    from threadpoolctl import threadpool_limits

    reps = DESIGN["quick_replications"] if quick else DESIGN["replications"]
    t0 = time.perf_counter()
    parts = []
    with threadpool_limits(limits=1):
        for points in DESIGN["points"]:
            for r in range(reps):
                parts.append(replicate(DESIGN["seed0"] + r, points=points, n=DESIGN["n_officials"],
                                       n_factors=DESIGN["n_factors"]))
    records = pd.concat(parts, ignore_index=True)
    table = summarise(records)
    by_item = (records.assign(error=records["est"] - records["true"])
               .groupby(["points", "estimator", "item"], sort=False)
               .agg(mean_true=("true", "mean"), mean_est=("est", "mean"), bias=("error", "mean"))
               .reset_index())
    secs = time.perf_counter() - t0
    write_result(NAME, table, folder=folder, quick=quick, seconds=secs,
                 extra={"design": {**DESIGN, "replications_run": reps,
                                   "model": "3 key factors x 5 officials items, std_lv=True",
                                   "ml": "estimator='ML', missing='fiml' on the codes as numbers",
                                   "wlsmv": "estimator='WLSMV', ordered=True, missing='pairwise'",
                                   "truth": "lambda/sqrt(lambda^2 + psi) of the latent responses"},
                        "by_item": by_item.to_dict(orient="records")})
    return table
