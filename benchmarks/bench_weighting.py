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

Peak Python memory (tracemalloc) is measured in a separate, untimed pass.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

import cips_stats as cs
from benchmarks import best_seconds as _best
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
        out[idx] = cs.weighting.rake(frame.iloc[idx], margins=mdict)["weight"].to_numpy()
    return out


def _scale_up(frame: pd.DataFrame, n_countries: int) -> pd.DataFrame:
    k = int(np.ceil(n_countries / frame["country"].nunique()))
    parts = [frame.assign(country=frame["country"].astype(str) + f"_{r}") for r in range(k)]
    big = pd.concat(parts, ignore_index=True)
    keep = big["country"].isin(big["country"].unique()[:n_countries])
    return big[keep].reset_index(drop=True)


def _rake_row(frame: pd.DataFrame, label: str, repeats: int) -> dict:
    margins = _margins(frame, 1)
    vec = cs.weighting.rake(frame, margins=margins, by=BY)["weight"].to_numpy()
    loop = _loop(frame, margins)
    max_diff = float(np.max(np.abs(vec - loop) / loop))
    if max_diff > 1e-8:
        raise RuntimeError(f"Vectorised and per-cell raking disagree ({max_diff:.2e}).")
    t_vec = _best(lambda: cs.weighting.rake(frame, margins=margins, by=BY), repeats)
    t_loop = _best(lambda: _loop(frame, margins), max(1, repeats - 1))
    return {"case": label, "rows": len(frame), "cells": int(frame.groupby(list(BY)).ngroups),
            "vectorised_s": t_vec, "per_cell_loop_s": t_loop, "speedup": t_loop / t_vec,
            "max_rel_weight_diff": max_diff,
            "vectorised_peak_mib": _peak_mib(lambda: cs.weighting.rake(frame, margins=margins, by=BY)),
            "loop_peak_mib": _peak_mib(lambda: _loop(frame, margins))}


def run(quick: bool = False) -> dict:
    """Time vectorised vs per-cell raking and linearization vs bootstrap SEs; return tables."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        sim = cs.simulate(seed=1, **({"n_countries": 6, "n_repeat": 3} if quick else {}))
        frame = sim.data.frame
        officials = frame[frame["group"] == "officials"].reset_index(drop=True)
        repeats = 1 if quick else 3
        rake_rows = [_rake_row(officials, "CIPS scale (simulate defaults)" if not quick else "quick", repeats)]
        if not quick:
            rake_rows.append(_rake_row(_scale_up(officials, 180), "180 countries", 1))
        # SE cost
        design = frame.assign(stratum=frame["country"].astype(str) + "/" + frame["group"].astype(str))
        item = "LC1"
        n_boot = 200 if quick else 1000
        lin = cs.estimate.survey_mean(design, item, weight="weight", strata="stratum")
        t_lin = _best(lambda: cs.estimate.survey_mean(design, item, weight="weight", strata="stratum"), repeats)
        boot = cs.estimate.survey_mean(design, item, weight="weight", strata="stratum", se="bootstrap",
                                       n_boot=n_boot, seed=1)
        t_boot = _best(lambda: cs.estimate.survey_mean(design, item, weight="weight", strata="stratum",
                                                       se="bootstrap", n_boot=n_boot, seed=1), 1)
        se_row = {"rows": len(design), "strata": int(design["stratum"].nunique()), "n_boot": n_boot,
                  "linearization_s": t_lin, "bootstrap_s": t_boot, "bootstrap_over_linearization": t_boot / t_lin,
                  "se_linearization": lin.se, "se_bootstrap": boot.se, "se_ratio": boot.se / lin.se,
                  "linearization_peak_mib": _peak_mib(lambda: cs.estimate.survey_mean(
                      design, item, weight="weight", strata="stratum")),
                  "bootstrap_peak_mib": _peak_mib(lambda: cs.estimate.survey_mean(
                      design, item, weight="weight", strata="stratum", se="bootstrap", n_boot=n_boot, seed=1))}
    return {"rake": rake_rows, "se_cost": [se_row],
            "baseline": "the same cs.weighting.rake called once per cell in a Python loop (same run); "
                        "linearization SE of the same estimate",
            "repeats": repeats, "quick": quick}


if __name__ == "__main__":  # pragma: no cover
    res = run(quick=True)
    print(pd.DataFrame(res["rake"]).to_string())
    print(pd.DataFrame(res["se_cost"]).to_string())
