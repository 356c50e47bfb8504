"""Raking every cell at once vs a per-cell loop; linearization vs bootstrap SE cost.

1. Raking: the officials of ``cs.simulate(seed=1)`` (every country x iteration cell, about
   10,000 respondents in 42 cells at the published CIPS scale) are raked to per-cell HR margins of
   gender x leadership x experience (a tidy margins table, shares).  ``cs.weighting.rake(...,
   by=("country", "iteration", "group"))`` (one vectorised IPF over all cells) is timed against
   the baseline of calling the same function once per cell in a Python loop, in the same run; the
   weights of both must agree.  The full run repeats this at 180 countries (the survey replicated
   with renamed countries).
2. SE cost: ``cs.estimate.survey_mean`` of one item over the whole survey, stratified by country x
   group, by linearization and by a 1,000-replicate Rao-Wu bootstrap; the ratio of their times and
   of their SEs is reported.

Measured as a user calls it, no pinning: no thread environment variable or ``threadpool_limits`` is
set by the benchmark.  Times are interleaved rounds (vectorised, loop, vectorised, loop...), with
medians and ranges recorded.  Peak Python memory (tracemalloc) is measured in a separate, untimed pass.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pandas as pd

import cips_stats as cs
from benchmarks import peak_mib as _peak_mib

BY = ("country", "iteration", "group")
VARS = ("gender", "leadership", "experience")





def _margins(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per-cell 'HR' shares: the sample's shares, perturbed (so that raking has work to do)."""
    rng = np.random.default_rng(seed)
    parts = []
    for v in VARS:
        t = frame.groupby(list(BY) + [v], observed=True).size().rename("n").reset_index()
        t["share"] = t["n"] * rng.uniform(0.7, 1.3, len(t))
        t["share"] /= t.groupby(list(BY))["share"].transform("sum")
        parts.append(t.rename(columns={v: "category"}).assign(variable=v)[list(BY) + ["variable", "category",
                                                                                          "share"]])
    return pd.concat(parts, ignore_index=True)


def _loop(frame: pd.DataFrame, margins: pd.DataFrame) -> np.ndarray:
    out = np.empty(len(frame))
    mk = margins.groupby(list(BY), sort=False)
    for key, idx in frame.groupby(list(BY), sort=False).indices.items():
        m = mk.get_group(key)
        mdict = {v: dict(zip(g["category"], g["share"])) for v, g in m.groupby("variable", sort=False)}
        out[idx] = cs.weighting.rake(frame.iloc[idx], margins=mdict).weights
    return out


def _scale_up(frame: pd.DataFrame, n_countries: int) -> pd.DataFrame:
    k = int(np.ceil(n_countries / frame["country"].nunique()))
    parts = [frame.assign(country=frame["country"].astype(str) + f"_{r}") for r in range(k)]
    big = pd.concat(parts, ignore_index=True)
    keep = big["country"].isin(big["country"].unique()[:n_countries])
    return big[keep].reset_index(drop=True)


def _rounds(fns: dict, rounds: int) -> dict:
    """Interleaved rounds: each round calls every function once; wall seconds per call."""
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    return out


def _stats(t: list) -> dict:
    a = np.asarray(t)
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max())}


def _rake_row(frame: pd.DataFrame, label: str, repeats: int) -> dict:
    margins = _margins(frame, 1)
    vec = cs.weighting.rake(frame, margins=margins, by=BY).weights
    loop = _loop(frame, margins)
    max_diff = float(np.max(np.abs(vec - loop) / loop))
    if max_diff > 1e-8:
        raise RuntimeError(f"Vectorised and per-cell raking disagree ({max_diff:.2e}).")
    t = _rounds({"vec": lambda: cs.weighting.rake(frame, margins=margins, by=BY),
                 "loop": lambda: _loop(frame, margins)}, repeats)
    ratio = np.asarray(t["loop"]) / np.asarray(t["vec"])
    return {"case": label, "rows": len(frame), "cells": int(frame.groupby(list(BY)).ngroups),
            "vectorised_s": _stats(t["vec"]), "per_cell_loop_s": _stats(t["loop"]),
            "speedup_median": float(np.median(ratio)), "speedup_range": [float(ratio.min()), float(ratio.max())],
            "max_rel_weight_diff": max_diff,
            "vectorised_peak_mib": _peak_mib(lambda: cs.weighting.rake(frame, margins=margins, by=BY)),
            "loop_peak_mib": _peak_mib(lambda: _loop(frame, margins))}


def run(quick: bool = False) -> dict:
    """Time vectorised vs per-cell raking and linearization vs bootstrap SEs; return tables."""
    if True:  # no pinning: measured as a user calls it
        sim = cs.simulate(seed=1, **({"n_countries": 6, "n_repeat": 3} if quick else {}))
        frame = sim.data.frame
        officials = frame[frame["group"] == "officials"].reset_index(drop=True)
        repeats = 2 if quick else 5
        rake_rows = [_rake_row(officials, "CIPS scale (simulate defaults)" if not quick else "quick", repeats)]
        if not quick:
            rake_rows.append(_rake_row(_scale_up(officials, 180), "180 countries", 1))
        # SE cost
        design = frame.assign(stratum=frame["country"].astype(str) + "/" + frame["group"].astype(str))
        item = "LC1"
        n_boot = 200 if quick else 1000
        lin = cs.estimate.survey_mean(design, item, weight="weight", strata="stratum")
        boot = cs.estimate.survey_mean(design, item, weight="weight", strata="stratum", se="bootstrap",
                                       n_boot=n_boot, seed=1)
        t = _rounds({"lin": lambda: cs.estimate.survey_mean(design, item, weight="weight", strata="stratum"),
                     "boot": lambda: cs.estimate.survey_mean(design, item, weight="weight", strata="stratum",
                                                             se="bootstrap", n_boot=n_boot, seed=1)}, repeats)
        se_row = {"rows": len(design), "strata": int(design["stratum"].nunique()), "n_boot": n_boot,
                  "linearization_s": _stats(t["lin"]), "bootstrap_s": _stats(t["boot"]),
                  "bootstrap_over_linearization": float(np.median(np.asarray(t["boot"]) / np.asarray(t["lin"]))),
                  "se_linearization": lin.se, "se_bootstrap": boot.se, "se_ratio": boot.se / lin.se,
                  "linearization_peak_mib": _peak_mib(lambda: cs.estimate.survey_mean(
                      design, item, weight="weight", strata="stratum")),
                  "bootstrap_peak_mib": _peak_mib(lambda: cs.estimate.survey_mean(
                      design, item, weight="weight", strata="stratum", se="bootstrap", n_boot=n_boot, seed=1))}
    return {"measured": "as a user calls it, no pinning (no thread environment variables, no threadpool_limits); "
                        "interleaved rounds, medians and ranges",
            "thread_env": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
            "load_average": os.getloadavg(), "rake": rake_rows, "se_cost": [se_row],
            "baseline": "the same cs.weighting.rake called once per cell in a Python loop (same run); "
                        "linearization SE of the same estimate",
            "repeats": repeats, "quick": quick}


if __name__ == "__main__":  # pragma: no cover
    import sys

    from benchmarks import RESULTS, write_result

    res = run(quick="--quick" in sys.argv)
    write_result("weighting", res, folder=RESULTS, quick="--quick" in sys.argv)
    print(pd.DataFrame(res["rake"]).to_string())
    print(pd.DataFrame(res["se_cost"]).to_string())
