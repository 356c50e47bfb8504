"""The hierarchical change model: recovery on simulated CIPS surveys and simulation-based calibration (SBC).

**Recovery.** Each replication draws ``cs.simulate(seed=r)`` (the published scale: 25 countries, 17
repeated, 10 key factors, 2 groups), computes ``cs.estimate.indicators(n_boot=500)`` and fits
``cs.change.fit(ind, supported=sim.truth["supported"])``.  Reported: the share of the 340 cells whose 95%
posterior interval covers the true change ``truth["change"]`` (target 93–97% over >= 200 surveys), and
the share of surveys whose 95% interval of the indicator-scale support effect covers its true value,
the mean true change of the supported cells minus that of the unsupported cells (per group and for
both groups together; target 93–97%), with Monte Carlo SEs, the gates passed and the seconds per fit.

**SBC** (Talts et al. 2018) on a reduced model: 6 countries x 2 groups x 4 factors.  Each replication
draws the parameters from the prior, cell changes from the model and the observations with a fixed,
realistic sampling covariance (SE 0.15–0.35, factor correlations 0.5), fits the model and records the
rank of the true value among 99 thinned posterior draws for the drift, support effect, cell sd,
country sd and one cell's change.  Ranks are uniform on 0..99 when the posterior is calibrated:
reported are chi-square tests on 10 bins.

``run(quick=True)``: 5 surveys and 30 SBC replications.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import cips_stats as cs
from cips_stats.change import CellChanges

SBC_PARAMS = ("drift", "support", "sd_cell", "sd_country", "change")


# ------------------------------------------------------------------------------------------- recovery
def recovery_one(seed: int, n_boot: int = 500, **fit_options) -> dict:
    """Fit one simulated survey; coverage of the cell changes and of the support effect."""
    sim = cs.simulate(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, n_boot=n_boot, seed=seed + 50_000)
        t0 = time.perf_counter()
        res = cs.change.fit(ind, supported=sim.truth["supported"], seed=seed, strict=False, **fit_options)
        secs = time.perf_counter() - t0
    t = res.prob_improved.merge(sim.truth["change"], on=["country", "group", "factor"], validate="1:1")
    out = {"seed": seed, "cells": len(t), "covered": int(((t["ci_low"] <= t["change"])
                                                          & (t["change"] <= t["ci_high"])).sum()),
           "reliable": res.reliable, "seconds": secs, "divergences": res.diagnostics["divergences"],
           "r_hat_max": res.diagnostics["r_hat_max"], "ess_bulk_min": res.diagnostics["ess_bulk_min"]}
    eff = res.support_effect.set_index("group")
    for g in eff.index:
        sel = t if g == "all" else t[t["group"] == g]
        true = sel.loc[sel["supported"], "change"].mean() - sel.loc[~sel["supported"], "change"].mean()
        out[f"support_{g}_true"] = true
        out[f"support_{g}_covered"] = bool(eff.at[g, "ci_low"] <= true <= eff.at[g, "ci_high"])
        out[f"support_{g}_mean"] = eff.at[g, "mean"]
    return out


def summarise_recovery(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    cov = df["covered"].sum() / df["cells"].sum()
    rows.append({"quantity": "cell change", "intervals": int(df["cells"].sum()), "coverage": cov,
                 "mc_se": float(np.sqrt(cov * (1 - cov) / len(df))) if len(df) else np.nan})
    for c in [c for c in df.columns if c.endswith("_covered") and c.startswith("support_")]:
        p = df[c].mean()
        rows.append({"quantity": c.replace("_covered", "").replace("support_", "support effect, "),
                     "intervals": len(df), "coverage": p, "mc_se": float(np.sqrt(p * (1 - p) / len(df)))})
    out = pd.DataFrame(rows)
    out["target"] = "0.93-0.97"
    out["within_target"] = out["coverage"].between(0.93, 0.97)
    out["surveys"] = len(df)
    out["reliable_share"] = df["reliable"].mean()
    out["median_fit_seconds"] = df["seconds"].median()
    return out


# ------------------------------------------------------------------------------------------------ SBC
def _sbc_design(n_countries: int = 6, groups: tuple = ("officials", "private"), n_factors: int = 4,
                seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    factors = [f"f{j}" for j in range(n_factors)]
    countries = [f"C{i:02d}" for i in range(n_countries)]
    pairs = pd.DataFrame([(c, g) for c in countries for g in groups], columns=["country", "group"])
    P, F = len(pairs), n_factors
    se = rng.uniform(0.15, 0.35, size=(P, F))
    R = np.full((F, F), 0.5) + 0.5 * np.eye(F)
    Sd = se[:, :, None] * se[:, None, :] * R[None]
    sup = (rng.random((n_countries, F)) < 0.3)
    supported = pd.DataFrame({"country": np.repeat(countries, F), "factor": np.tile(factors, n_countries),
                              "supported": sup.ravel()})
    return {"factors": factors, "countries": countries, "groups": list(groups), "pairs": pairs, "Sd": Sd,
            "supported": supported, "sup": sup.astype(float)}


def _zero_sum(rng: np.random.Generator, n: int) -> np.ndarray:
    z = rng.standard_normal(n)
    return z - z.mean()


def sbc_one(rep: int, design: dict, draws: int = 500, chains: int = 2, n_ranks: int = 99) -> dict:
    """One SBC replication: prior draw, data, fit, ranks of the true values."""
    rng = np.random.default_rng(np.random.SeedSequence([rep, 7]))
    G, F, C = len(design["groups"]), len(design["factors"]), len(design["countries"])
    drift = rng.normal(0, 1, G)
    support = rng.normal(0, 1, G)
    sd_factor, sd_country = np.abs(rng.normal(0, 0.5, 2))
    sd_cell = np.abs(rng.normal(0, 0.5, G))
    beta = sd_factor * _zero_sum(rng, F)
    gamma = sd_country * _zero_sum(rng, C)
    pairs = design["pairs"]
    pc = pairs["country"].map({c: i for i, c in enumerate(design["countries"])}).to_numpy()
    pg = pairs["group"].map({g: i for i, g in enumerate(design["groups"])}).to_numpy()
    delta = (drift[pg][:, None] + beta[None] + gamma[pc][:, None] + support[pg][:, None] * design["sup"][pc]
             + sd_cell[pg][:, None] * rng.standard_normal((len(pairs), F)))
    L = np.linalg.cholesky(design["Sd"])
    d = delta + (L @ rng.standard_normal((len(pairs), F, 1)))[..., 0]
    P = len(pairs)
    table = pairs.iloc[np.repeat(np.arange(P), F)].reset_index(drop=True)
    table["factor"] = np.tile(design["factors"], P)
    table["baseline"] = 5.0
    table["estimate"] = d.ravel()
    table["n_1"] = table["n_2"] = 200
    table["suppressed"] = False
    ch = CellChanges(table=table, replicates=np.zeros((len(table), 2)), baseline_replicates=np.zeros((len(table), 2)),
                     baseline_cov=design["Sd"] / 2, change_cov=design["Sd"], factors=tuple(design["factors"]),
                     keys=("country", "group"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        res = cs.change.fit(ch, supported=design["supported"], seed=rep, draws=draws, tune=draws, chains=chains,
                            strict=False)
    post = res.idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    keep = np.linspace(0, n - 1, n_ranks).astype(int)

    def rank(samples: np.ndarray, true: float) -> int:
        return int((samples.reshape(-1)[keep] < true).sum())

    cell0 = 0   # the first cell: pair 0, factor 0
    return {"rep": rep, "reliable": res.reliable, "r_hat_max": res.diagnostics["r_hat_max"],
            "divergences": res.diagnostics["divergences"],
            "drift": rank(post["drift"].values[..., 0], drift[0]),
            "support": rank(post["support"].values[..., 0], support[0]),
            "sd_cell": rank(post["sd_cell"].values[..., 0], sd_cell[0]),
            "sd_country": rank(post["sd_country"].values, sd_country),
            "change": rank(post["change"].values[..., cell0], delta[0, 0])}


def summarise_sbc(df: pd.DataFrame, n_ranks: int = 99, bins: int = 10) -> pd.DataFrame:
    rows = []
    for p in SBC_PARAMS:
        counts = np.histogram(df[p], bins=np.linspace(0, n_ranks + 1, bins + 1))[0]
        chi2, pval = stats.chisquare(counts)
        rows.append({"parameter": p, "replications": len(df), "chi2": chi2, "p_value": pval,
                     "mean_rank_share": df[p].mean() / n_ranks, "counts": " ".join(map(str, counts))})
    return pd.DataFrame(rows)


def run(quick: bool = False, surveys: int | None = None, sbc_reps: int | None = None,
        progress: bool = False, n_jobs: int = 1, checkpoint: str | None = None) -> pd.DataFrame:
    """Recovery (200 surveys; 5 with ``quick``) and SBC (200 replications; 30 with ``quick``) in one table.

    Replications run through joblib (``n_jobs`` processes; inside a ``joblib.parallel_config(backend="dask")``
    block they run on a Dask cluster unchanged).  ``checkpoint``: a JSON-lines file the recovery rows are
    appended to as they finish; rows already there (by seed) are not recomputed.
    """
    import json
    import os
    import sys

    from joblib import Parallel, delayed

    n_surv = surveys if surveys is not None else (5 if quick else 200)
    n_sbc = sbc_reps if sbc_reps is not None else (30 if quick else 200)
    t0 = time.perf_counter()
    done = {}
    if checkpoint and os.path.exists(checkpoint):
        with open(checkpoint) as fh:
            for line in fh:
                row = json.loads(line)
                done[int(row["seed"])] = row
    todo = [r + 1 for r in range(n_surv) if r + 1 not in done]
    for row in Parallel(n_jobs=n_jobs, return_as="generator")(delayed(recovery_one)(seed) for seed in todo):
        done[int(row["seed"])] = row
        if checkpoint:
            with open(checkpoint, "a") as fh:
                fh.write(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}) + "\n")
        if progress:
            print(f"recovery {len(done)}/{n_surv} {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    rec = [done[r + 1] for r in range(n_surv)]
    design = _sbc_design()
    sbc = Parallel(n_jobs=n_jobs)(delayed(sbc_one)(r + 1, design) for r in range(n_sbc))
    a = summarise_recovery(pd.DataFrame(rec)).assign(study="recovery")
    b = summarise_sbc(pd.DataFrame(sbc)).assign(study="sbc")
    out = pd.concat([a, b], ignore_index=True)
    out["seconds"] = time.perf_counter() - t0
    return out


if __name__ == "__main__":  # pragma: no cover
    import sys

    from validation import write_result

    quick = "--quick" in sys.argv
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    n_s = int(args["--surveys"]) if "--surveys" in args else None
    n_b = int(args["--sbc"]) if "--sbc" in args else None
    tab = run(quick=quick, surveys=n_s, sbc_reps=n_b, progress=True, n_jobs=int(args.get("--jobs", 1)),
              checkpoint=args.get("--checkpoint"))
    write_result("change", tab, quick=quick, extra={"surveys": n_s, "sbc_replications": n_b,
                                                    "note": "surveys and SBC replications as given on the command line (defaults 200 and 200)"})
    print(tab.to_string())
