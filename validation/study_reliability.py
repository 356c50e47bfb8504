"""Reliability estimators against known truth: bias of alpha/omega and coverage of each CI method.

Data: one-factor ordinal items. Latent responses ``y*_j = lambda_j eta + e_j`` (``eta ~ N(0, 1)``,
``e_j ~ N(0, 1 - lambda_j^2)``) are cut at thresholds into 5-point codes. Loadings and
thresholds are those of the officials' items of a key factor in ``cs.simulate(seed=1).truth``
(the package's CIPS generator); a second, weaker scenario multiplies the loadings by 0.7.
Scenarios: n = 100 and 300 respondents, complete data and 6% missing completely at random
(pairwise deletion).

True values, computed analytically (no simulation error):

* ``alpha_codes``: population alpha of the answer codes, from their exact covariance matrix
  ``Cov(code_j, code_k) = sum_ab [Phi2(-tau_ja, -tau_kb; lambda_j lambda_k) - Phi(-tau_ja) Phi(-tau_kb)]``
  (bivariate normal CDF of ``cips_stats.factor.polychoric``);
* ``omega_codes``: omega (model-implied denominator) of the one-factor ML fit to that population
  covariance matrix (the quantity the sample omega estimates);
* ``omega_latent``: ``(sum lambda)^2 / ((sum lambda)^2 + sum psi)`` of the latent responses, which
  ordinal omega targets; ``alpha_latent``: standardised alpha of the latent correlation matrix,
  which ordinal alpha targets.

Each replication is one "cell" of a single ``cs.reliability.by_cell`` call, so that all
replications are estimated in one vectorised pass. Reported per scenario: bias, its Monte Carlo
SE and RMSE of alpha, omega, ordinal alpha and ordinal omega against their targets (and of alpha
and omega against the latent omega: the attenuation by coarse categories), and the coverage
(with its Monte Carlo SE) and mean width of the 95% Feldt, Duhachek and percentile-bootstrap
intervals for alpha and the Wald (delta-method) interval for omega. ``quick=True``: 50
replications and no bootstrap beyond 50 replications; full: 1,000 replications (bootstrap:
``n_boot=500`` in each).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

import cips_stats as cs
from cips_stats import reliability as rel
from cips_stats.errors import CipsWarning
from cips_stats.reliability._alpha import _alpha_kernel
from cips_stats.reliability._omega import _fit_one_factor, _omega_from_fit

FACTOR = "leadership"
GROUP = "officials"
LEVEL = 0.95


def population(loadings: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """Analytic population reliabilities of the codes and of the latent responses."""
    from cips_stats.factor.polychoric import bvn_cdf

    lam = np.asarray(loadings, float)
    tau = np.asarray(thresholds, float)           # (p, K-1)
    p, k1 = tau.shape
    rho = np.outer(lam, lam)
    np.fill_diagonal(rho, 1.0)
    up = ndtr(-tau)                               # P(y* > tau)
    cov = np.empty((p, p))
    for j in range(p):
        for k in range(p):
            if j == k:
                # E[1{y>a}1{y>b}] = P(y > max(a, b))
                joint = ndtr(-np.maximum(tau[j][:, None], tau[j][None, :]))
            else:
                h = -tau[j][:, None] * np.ones((1, k1))
                kk = -tau[k][None, :] * np.ones((k1, 1))
                joint = bvn_cdf(h, kk, np.full((k1, k1), rho[j, k]))
            cov[j, k] = (joint - up[j][:, None] * up[k][None, :]).sum()
    cov = 0.5 * (cov + cov.T)
    kern = _alpha_kernel(cov[None], np.array([1000.0]), LEVEL, "none")
    fit = _fit_one_factor(cov[None])
    om = _omega_from_fit(fit, cov[None], np.array([1000.0]))
    psi = 1.0 - lam**2
    return {
        "alpha_codes": float(kern["alpha"][0]),
        "omega_codes": float(om["omega_model"][0]),
        "omega_latent": float(lam.sum() ** 2 / (lam.sum() ** 2 + psi.sum())),
        "alpha_latent": float(p / (p - 1) * (1 - p / rho.sum())),
    }


def draw(rng: np.random.Generator, n: int, reps: int, loadings: np.ndarray, thresholds: np.ndarray,
         missing: float) -> pd.DataFrame:
    """``reps`` samples of ``n`` respondents, stacked with a ``rep`` column."""
    lam = np.asarray(loadings, float)
    N = n * reps
    eta = rng.standard_normal((N, 1))
    y = eta * lam + rng.standard_normal((N, lam.size)) * np.sqrt(1 - lam**2)
    codes = 1.0 + (y[:, :, None] > thresholds[None, :, :]).sum(axis=2)
    if missing > 0:
        codes[rng.random(codes.shape) < missing] = np.nan
    df = pd.DataFrame(codes, columns=[f"y{j + 1}" for j in range(lam.size)])
    df["rep"] = np.repeat(np.arange(reps), n)
    return df


def _summ(est: np.ndarray, truth: float) -> dict[str, float]:
    e = est[np.isfinite(est)]
    return {"true": truth, "mean": float(e.mean()), "bias": float(e.mean() - truth),
            "bias_mc_se": float(e.std(ddof=1) / np.sqrt(e.size)), "rmse": float(np.sqrt(np.mean((e - truth) ** 2))),
            "n_valid": int(e.size)}


def _cover(lo: np.ndarray, hi: np.ndarray, truth: float) -> dict[str, float]:
    ok = np.isfinite(lo) & np.isfinite(hi)
    c = float(np.mean((lo[ok] <= truth) & (truth <= hi[ok])))
    return {"true": truth, "coverage": c, "coverage_mc_se": float(np.sqrt(LEVEL * (1 - LEVEL) / ok.sum())),
            "mean_width": float(np.mean(hi[ok] - lo[ok])), "n_valid": int(ok.sum())}


def run(quick: bool = False, *, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """Run the study; write ``validation/results/reliability.csv`` (and .json); return the table."""
    t0 = time.perf_counter()
    reps = 50 if quick else 1000
    boot_reps = 50 if quick else 1000
    n_boot = 300 if quick else 500
    truth = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=20, n_private=20).truth
    inst = cs.Instrument.default()
    items = list(inst.factor_items(FACTOR, group=GROUP))
    lam0 = truth["loadings"].set_index("item").loc[items, "loading"].to_numpy()
    thr = truth["thresholds"].pivot(index="item", columns="threshold", values="value").loc[items].to_numpy()
    scenarios = [("cips_loadings", 1.0), ("weaker_loadings", 0.7)]
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(20261122)
    for sc_name, mult in scenarios:
        lam = lam0 * mult
        pop = population(lam, thr)
        for n in (100, 300):
            for miss in (0.0, 0.06):
                df = draw(rng, n, reps, lam, thr, miss)
                cols = [c for c in df.columns if c != "rep"]
                spec = {"f": cols}
                base = {"scenario": sc_name, "n": n, "missing_rate": miss, "reps": reps}
                with warnings.catch_warnings():      # low-alpha scenarios are the point here
                    warnings.simplefilter("ignore", CipsWarning)
                    fe = rel.by_cell(df, by=("rep",), items=spec, ci_method="feldt").table
                    du = rel.by_cell(df, by=("rep",), items=spec, ci_method="duhachek", omega=False).table
                    od = rel.by_cell(df[df["rep"] < min(reps, 200)], by=("rep",), items=spec, omega=False,
                                     ordinal=True).table
                a, o = fe["alpha"].to_numpy(), fe["omega"].to_numpy()
                for stat, est, target, tname in [
                    ("alpha", a, pop["alpha_codes"], "alpha_codes"),
                    ("omega", o, pop["omega_codes"], "omega_codes"),
                    ("alpha", a, pop["omega_latent"], "omega_latent"),
                    ("omega", o, pop["omega_latent"], "omega_latent"),
                    ("ordinal_alpha", od["ordinal_alpha"].to_numpy(), pop["alpha_latent"], "alpha_latent"),
                    ("ordinal_omega", od["ordinal_omega"].to_numpy(), pop["omega_latent"], "omega_latent"),
                ]:
                    rows.append({**base, "kind": "bias", "statistic": stat, "target": tname, **_summ(est, target)})
                for method, lo, hi, target, tname in [
                    ("feldt", fe["ci_low"], fe["ci_high"], pop["alpha_codes"], "alpha_codes"),
                    ("duhachek", du["ci_low"], du["ci_high"], pop["alpha_codes"], "alpha_codes"),
                    ("omega_wald", fe["omega_ci_low"], fe["omega_ci_high"], pop["omega_codes"], "omega_codes"),
                ]:
                    rows.append({**base, "kind": "coverage", "statistic": method, "target": tname,
                                 **_cover(lo.to_numpy(), hi.to_numpy(), target)})
                # percentile bootstrap of alpha: one call per replication (n_boot resamples, vectorised)
                nb = min(reps, boot_reps)
                lo = np.empty(nb)
                hi = np.empty(nb)
                for r in range(nb):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", CipsWarning)
                        res = rel.cronbach_alpha(df.loc[df["rep"] == r, cols], ci_method="bootstrap",
                                                 n_boot=n_boot, seed=1000 * r + n)
                    lo[r], hi[r] = res.ci_low, res.ci_high
                rows.append({**base, "reps": nb, "kind": "coverage", "statistic": "bootstrap",
                             "target": "alpha_codes", **_cover(lo, hi, pop["alpha_codes"])})
    table = pd.DataFrame(rows)
    table["seconds"] = time.perf_counter() - t0
    from validation import RESULTS, write_result

    write_result("reliability", table, folder=RESULTS if folder is None else folder, quick=quick, seconds=float(table["seconds"].iloc[0]),
                 extra={"population": {"loadings": lam0.tolist(), "thresholds": thr.tolist(),
                                       "source": f"cs.simulate(seed=1).truth, factor {FACTOR}, group {GROUP}"}})
    return table


if __name__ == "__main__":  # pragma: no cover
    import sys

    out = run(quick="--quick" in sys.argv)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.drop(columns=["seconds"]).to_string())
