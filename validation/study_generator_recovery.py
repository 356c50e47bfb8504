"""Generator recovery: naive weighted cell means of simulated data land on ``truth["indicators"]``.

Over replications of ``cs.simulate(seed=r)`` at the published scale, each
(country, iteration, group, factor) cell's weighted mean of the respondent
scores (mean of answered items rescaled to 0-10; weights as delivered) is
compared with the cell's analytic population value. Reported by cell size:
bias (with its Monte Carlo SE, treating the cells of one country-iteration-group,
which share respondents, as a cluster), RMSE, the mean linearisation SE, the SD of the
z-scores and the coverage of the Wald 95% interval. If the truth is what the
generator says, bias is within Monte Carlo error of 0, SD(z) is about 1 and the
coverage about 95% in every size class. The same is reported for the share
favourable (top-2 box) against ``truth["favourable"]``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import cips_stats as cs

KEY = ["country", "iteration", "group", "factor"]
SIZE_BINS = [0, 100, 200, 400, np.inf]
SIZE_LABELS = ["<100", "100-199", "200-399", "400+"]


def naive_cell_means(sim, *, favourable: bool = False) -> pd.DataFrame:
    """Weighted cell means of respondent scores with with-replacement linearisation SEs.

    The respondent score is the mean of the answered items of the factor
    rescaled ``(mean - 1) / (points - 1) * 10`` (or the share of answered items
    in the favourable codes); respondents without any answered item of the
    factor are left out of that cell. ``se = sqrt(n/(n-1) sum w_i^2 (y_i - ybar)^2) / sum w_i``.
    """
    data = sim.data
    inst = data.instrument
    P = inst.scale.points
    fav = np.array(inst.scale.favourable, dtype=float)
    out = []
    for g in data.groups:
        rows = data.frame[data.frame["group"] == g]
        keys = rows[["country", "iteration"]].reset_index(drop=True)
        w = rows["weight"].to_numpy()
        for f in inst.factor_ids:
            x = rows[list(inst.factor_items(f, group=g))].to_numpy()
            ans = ~np.isnan(x)
            k = ans.sum(axis=1)
            if favourable:
                s = np.where(k > 0, (np.isin(x, fav) & ans).sum(axis=1) / np.maximum(k, 1), np.nan)
            else:
                s = np.where(k > 0, (np.nansum(x, axis=1) / np.maximum(k, 1) - 1) / (P - 1) * 10, np.nan)
            df = keys.assign(w=w, s=s).dropna()
            df["ws"] = df["w"] * df["s"]
            agg = df.groupby(["country", "iteration"]).agg(sw=("w", "sum"), sws=("ws", "sum"), n=("s", "size"))
            agg["estimate"] = agg["sws"] / agg["sw"]
            df = df.join(agg["estimate"], on=["country", "iteration"])
            df["u2"] = (df["w"] * (df["s"] - df["estimate"])) ** 2
            ss = df.groupby(["country", "iteration"])["u2"].sum()
            agg["se"] = np.sqrt(ss * agg["n"] / (agg["n"] - 1)) / agg["sw"]
            agg = agg.reset_index().assign(group=g, factor=f)
            out.append(agg[KEY + ["estimate", "se", "n"]])
    return pd.concat(out, ignore_index=True)


def _summarise(errors: pd.DataFrame, measure: str) -> pd.DataFrame:
    errors = errors.assign(size_class=pd.cut(errors["n"], SIZE_BINS, right=False, labels=SIZE_LABELS))
    rows = []
    for label, d in [*((str(k), v) for k, v in errors.groupby("size_class", observed=True)), ("all", errors)]:
        e = d["error"].to_numpy()
        z = e / d["se"].to_numpy()
        m = len(e)
        bias = float(e.mean())
        hit = (np.abs(z) <= 1.959964).astype(float)
        cover = float(hit.mean())
        # Monte Carlo SEs with the cells of one country-iteration-group (same respondents) as clusters
        cl = d.assign(hit=hit).groupby(["replication", "country", "iteration", "group"])[["error", "hit"]].mean()
        k = len(cl)
        mcse = float(cl["error"].std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
        cover_mcse = float(cl["hit"].std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
        rows.append({
            "measure": measure, "size_class": label, "cells": m, "mean_n": float(d["n"].mean()),
            "bias": bias, "bias_mcse": mcse, "rmse": float(np.sqrt(np.mean(e ** 2))),
            "mean_se": float(d["se"].mean()), "sd_z": float(z.std(ddof=1)), "coverage95": cover,
            "clusters": k, "coverage_mcse": cover_mcse,
            "ok": bool(abs(bias) <= 3 * mcse and abs(cover - 0.95) <= max(3 * cover_mcse, 0.01)),
        })
    return pd.DataFrame(rows)


def run(quick: bool = False) -> pd.DataFrame:
    """Run the study; return (and write) the table by measure and cell-size class."""
    reps = 3 if quick else 40
    kw = {"n_countries": 8, "n_repeat": 5} if quick else {}
    errs = {"indicator": [], "favourable": []}
    corr = []
    t0 = time.perf_counter()
    for r in range(reps):
        sim = cs.simulate(seed=1000 + r, **kw)
        for measure, table, fav in (("indicator", "indicators", False), ("favourable", "favourable", True)):
            m = naive_cell_means(sim, favourable=fav).merge(sim.truth[table], on=KEY, validate="one_to_one")
            m["error"] = m["estimate"] - m["value"]
            m["replication"] = r
            errs[measure].append(m)
            if measure == "indicator":
                corr.append(np.corrcoef(m["estimate"], m["value"])[0, 1])
    table = pd.concat([_summarise(pd.concat(v, ignore_index=True), k) for k, v in errs.items()], ignore_index=True)
    table["replications"] = reps
    table["min_correlation_estimate_truth"] = float(np.min(corr))
    table["seconds"] = time.perf_counter() - t0
    from validation import write_result

    write_result("generator_recovery", table, quick=quick, seconds=float(table["seconds"].iloc[0]),
                 extra={"simulate_options": sim.options, "seeds": [1000, 1000 + reps - 1]})
    return table


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True).to_string())
