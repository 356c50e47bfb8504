"""Coverage of the 95% bootstrap CIs of the cell indicators against the simulated truth.

Each replication draws a CIPS-like survey with ``cs.simulate(seed=r, n_countries=6,
n_repeat=3)`` (9 country-iterations x 2 groups = 18 cells, cell sizes from
about 30 to 600 as at the published scale) and computes
``cs.estimate.indicators(data, n_boot=1000)``; the percentile, BCa and normal
95% intervals of every cell and factor (from the same replicates) are compared
with ``sim.truth["indicators"]``, the population value of the "mean of answered
items on 0-10" score of each (country, iteration, group, factor).

Reported by CI method and cell size (unweighted n of the cell): coverage, its
Monte Carlo standard error (binomial, ignoring the correlation of the factors
of a cell, so an understatement), the miss rates below and above, the mean
width, and ``z_sd`` = SD of (estimate - truth)/SE, which is 1 when the SEs are
right (every survey has its own truth, so the SE cannot be compared with an
empirical SD cell by cell).

Target: 93.5%-96.5% overall for the 95% intervals.  ``run(quick=True)``: 20
surveys.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import cips_stats as cs
from cips_stats.estimate.intervals import bootstrap_intervals as _intervals

KEYS = ["country", "iteration", "group", "factor"]
BINS = [0, 30, 60, 100, 200, 400, 10_000]
LABELS = ["<30", "30-59", "60-99", "100-199", "200-399", "400+"]


def _one(seed: int, n_boot: int) -> pd.DataFrame:
    sim = cs.simulate(seed=seed, n_countries=6, n_repeat=3)
    res = cs.estimate.indicators(sim.data, n_boot=n_boot, seed=seed + 10_000, min_n=0)
    K, F = res.estimates.shape
    est = res.estimates.reshape(-1)
    reps = res.replicates.reshape(K * F, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accel = (res.influence[..., 1] / (6.0 * res.influence[..., 0] ** 1.5)).reshape(-1)
    keys = res.cells.iloc[np.repeat(np.arange(K), F)].reset_index(drop=True)
    keys["factor"] = np.tile(np.asarray(res.factors, dtype=object), K)
    keys["estimate"] = est
    keys["n"] = res.n.reshape(-1)
    frames = []
    for method in ("percentile", "bca", "normal"):
        iv = _intervals(est, reps, 0.95, method, accel)
        t = keys.copy()
        t["method"] = method
        t["se"], t["ci_low"], t["ci_high"] = iv["se"], iv["ci_low"], iv["ci_high"]
        frames.append(t)
    out = pd.concat(frames, ignore_index=True).merge(sim.truth["indicators"], on=KEYS, how="inner",
                                                     validate="m:1")
    out["replication"] = seed
    return out


def _summarise(df: pd.DataFrame) -> pd.DataFrame:
    df = df[np.isfinite(df["ci_low"]) & np.isfinite(df["ci_high"])].copy()
    df["covered"] = (df["value"] >= df["ci_low"]) & (df["value"] <= df["ci_high"])
    df["miss_low"] = df["value"] < df["ci_low"]          # interval entirely above the truth
    df["miss_high"] = df["value"] > df["ci_high"]
    df["width"] = df["ci_high"] - df["ci_low"]
    df["z"] = (df["estimate"] - df["value"]) / df["se"]
    df["size"] = pd.cut(df["n"], BINS, right=False, labels=LABELS)
    rows = []
    for (method, size), g in list(df.groupby(["method", "size"], observed=True)) + \
            [((m, "all"), g) for m, g in df.groupby("method")]:
        p = g["covered"].mean()
        rows.append({"method": method, "cell_size": size, "intervals": len(g), "coverage": p,
                     "mc_se": float(np.sqrt(p * (1 - p) / len(g))), "miss_below": g["miss_high"].mean(),
                     "miss_above": g["miss_low"].mean(), "mean_width": g["width"].mean(),
                     "z_sd": g["z"].std(), "z_mean": g["z"].mean()})
    return pd.DataFrame(rows)


def run(quick: bool = False, surveys: int | None = None, progress: bool = False) -> pd.DataFrame:
    """Coverage table by CI method and cell size (1,000 surveys; 20 with ``quick``)."""
    reps = surveys if surveys is not None else (20 if quick else 1000)
    n_boot = 1000
    t0 = time.perf_counter()
    parts = []
    for r in range(reps):
        parts.append(_one(r + 1, n_boot))
        if progress and (r + 1) % 50 == 0:
            import sys

            print(f"{r + 1}/{reps} surveys, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    table = _summarise(pd.concat(parts, ignore_index=True))
    table["surveys"] = reps
    table["n_boot"] = n_boot
    table["seconds"] = time.perf_counter() - t0
    table["target"] = "0.935-0.965 for 95% intervals"
    table["within_target"] = table["coverage"].between(0.935, 0.965)
    return table


if __name__ == "__main__":  # pragma: no cover
    import sys

    from validation import write_result

    quick = "--quick" in sys.argv
    tab = run(quick=quick, progress=True)
    write_result("indicator_coverage", tab, quick=quick)
    print(tab.to_string())
