"""Reliability for every cell: ``cs.reliability.by_cell`` against a per-cell pingouin loop, as a user calls them.

At the default CIPS scale (``cs.simulate(seed=1)``: about 19,500 respondents, 25
countries of which 17 surveyed twice = 42 country-iterations, 2 respondent groups,
10 key factors = 840 cells) the baseline is the loop a competent pandas user writes:
one ``groupby`` over the cells and ``pingouin.cronbach_alpha`` (pairwise deletion, 95%
CI) per key factor.  The same job in cips_stats is ``by_cell(data, weight=False,
omega=False)`` (unweighted alpha and its Feldt CI per cell; it also returns standardised
alpha, the Duhachek SE, mean r and the whistleblower index); the alphas are checked to
agree to 1e-10.  The default call ``by_cell(data)`` does more (design-weighted, plus a
one-factor ML fit for omega in every cell) and is timed too.

How it is measured (issue 12): nothing is pinned outside the package — BLAS runs with
the threads a user's process gets (the package itself limits BLAS threads where that
wins); pingouin is warmed up (imported, one full loop) before timing; the two sides
alternate in rounds (one pingouin loop, then the median of three ``by_cell`` calls) so
that both see the same load; the per-round wall-clock and CPU ratios are reported with
their median and range.  The machine is shared: the load average at the start, during
and at the end of the run is recorded.  Scaling: ``by_cell`` at 25, 90 and 180 countries,
time per respondent and peak Python memory (tracemalloc, separate untimed pass).
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

import cips_stats as cs
from benchmarks import peak_mib as _peak_mib


def _timings(func: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Best and median wall-clock and CPU seconds (``time.process_time``) over repeats."""
    wall, cpu = [], []
    for _ in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"best": min(wall), "best_cpu": min(cpu),
            "median": float(np.median(wall)), "median_cpu": float(np.median(cpu))}


def _blas_threads() -> list:
    from threadpoolctl import threadpool_info

    return [{"api": i.get("internal_api"), "threads": i.get("num_threads")} for i in threadpool_info()]


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return None


def _pingouin_loop(data: Any) -> pd.DataFrame:
    import pingouin as pg

    inst = data.instrument
    rows = []
    for (country, iteration, group), sub in data.frame.groupby(["country", "iteration", "group"], sort=True):
        for f in inst.key_factors:
            cols = list(inst.factor_items(f.id, group=group))
            a, ci = pg.cronbach_alpha(sub[cols], nan_policy="pairwise", ci=0.95)
            rows.append((country, iteration, group, f.id, a, ci[0], ci[1]))
    return pd.DataFrame(rows, columns=["country", "iteration", "group", "factor", "alpha_pingouin",
                                       "ci_low_pingouin", "ci_high_pingouin"])


def _sim(n_countries: int) -> Any:
    n_repeat = int(round(n_countries * 17 / 25))
    return cs.simulate(seed=1, n_countries=n_countries, n_repeat=n_repeat).data


def run(quick: bool = False) -> dict:
    """Time by_cell against the pingouin loop at CIPS scale, as a user calls both; scaling to 180 countries."""
    import warnings

    with warnings.catch_warnings():           # small and low-alpha cells warn; the timing is the point
        warnings.simplefilter("ignore", cs.CipsWarning)
        return _run(quick)


def _same_job(data: Any) -> Any:
    return cs.reliability.by_cell(data, weight=False, omega=False, ci_method="feldt")


def _rounds(data: Any, n_rounds: int) -> dict:
    """Interleaved rounds: one pingouin loop, then the median of three by_cell calls (wall and CPU)."""
    wall, cpu, loads, ours_default, ours_default_cpu = [], [], [], [], []
    for _ in range(n_rounds):
        loads.append(_load())
        pg_t = _timings(lambda: _pingouin_loop(data), 1)
        us_t = _timings(lambda: _same_job(data), 3)
        wall.append(pg_t["median"] / us_t["median"])
        cpu.append(pg_t["median_cpu"] / us_t["median_cpu"])
        d_t = _timings(lambda: cs.reliability.by_cell(data), 3)
        ours_default.append(pg_t["median"] / d_t["median"])
        ours_default_cpu.append(pg_t["median_cpu"] / d_t["median_cpu"])
    return {"wall": wall, "cpu": cpu, "default_call_wall": ours_default, "default_call_cpu": ours_default_cpu,
            "loads": loads}


def _run(quick: bool) -> dict:
    load_start = _load()
    repeats = 1 if quick else 15
    data = _sim(25 if not quick else 6)
    key = ["country", "iteration", "group", "factor"]
    # warm up (imports, caches) before timing
    ours = _same_job(data).table
    base = _pingouin_loop(data)
    tp = _timings(lambda: _pingouin_loop(data), 1 if quick else 5)
    merged = base.merge(ours[key + ["alpha", "ci_low", "ci_high", "n"]], on=key, how="left")
    max_diff = float(np.nanmax(np.abs(merged["alpha"] - merged["alpha_pingouin"])))
    if not max_diff < 1e-10:
        raise RuntimeError(f"by_cell and pingouin disagree (max |diff| = {max_diff}).")
    # The Feldt interval: pingouin counts every row of the cell as a respondent, by_cell only
    # the rows that answered at least one item of the factor (as psych::alpha), so the
    # intervals are compared where the two counts agree; pingouin rounds them to 3 decimals.
    rows = data.frame.groupby(["country", "iteration", "group"]).size().rename("rows").reset_index()
    merged = merged.merge(rows, on=["country", "iteration", "group"], how="left")
    same_n = merged[merged["n"] == merged["rows"]]
    if len(same_n) == 0:
        raise RuntimeError("No cell where every row answered a factor: the intervals cannot be compared.")
    ci_diff = float(np.nanmax(np.abs(np.r_[same_n["ci_low"] - same_n["ci_low_pingouin"],
                                           same_n["ci_high"] - same_n["ci_high_pingouin"]])))
    if not ci_diff <= 5e-4 + 1e-12:
        raise RuntimeError(f"by_cell and pingouin Feldt intervals disagree (max |diff| = {ci_diff}).")
    to = _timings(lambda: _same_job(data), repeats)
    td = _timings(lambda: cs.reliability.by_cell(data), max(1, repeats // 3))
    rounds = _rounds(data, 2 if quick else 9)
    t_items = _timings(lambda: cs.reliability.by_cell(data, weight=False, omega=False, on="items"), repeats)
    cips = {
        "respondents": int(len(data.frame)),
        "cells_pingouin": len(base),
        "cells_by_cell": len(ours),
        "pingouin_loop_median_seconds": tp["median"],
        "pingouin_loop_median_cpu_seconds": tp["median_cpu"],
        "by_cell_same_job_median_seconds": to["median"],
        "by_cell_same_job_median_cpu_seconds": to["median_cpu"],
        "by_cell_item_table_median_seconds": t_items["median"],
        "by_cell_default_call_median_seconds": td["median"],
        "speedup_rounds_wall": rounds["wall"],
        "speedup_rounds_cpu": rounds["cpu"],
        "speedup_median_wall": float(np.median(rounds["wall"])),
        "speedup_range_wall": [float(min(rounds["wall"])), float(max(rounds["wall"]))],
        "speedup_median_cpu": float(np.median(rounds["cpu"])),
        "speedup_range_cpu": [float(min(rounds["cpu"])), float(max(rounds["cpu"]))],
        "speedup_default_call_median_wall": float(np.median(rounds["default_call_wall"])),
        "speedup_default_call_range_wall": [float(min(rounds["default_call_wall"])),
                                            float(max(rounds["default_call_wall"]))],
        "speedup_default_call_median_cpu": float(np.median(rounds["default_call_cpu"])),
        "speedup_default_call_range_cpu": [float(min(rounds["default_call_cpu"])),
                                           float(max(rounds["default_call_cpu"]))],
        "load_average_per_round": rounds["loads"],
        "max_abs_diff_vs_pingouin": max_diff,
        "max_abs_ci_diff_vs_pingouin_rounded": ci_diff,
        "cells_ci_compared": int(len(same_n)),
    }
    scaling = []
    sizes = (6, 12) if quick else (25, 90, 180)
    for nc in sizes:
        d = _sim(nc)
        n = len(d.frame)
        t_a = _timings(lambda: cs.reliability.by_cell(d, omega=False), min(repeats, 5))["median"]
        t_o = _timings(lambda: cs.reliability.by_cell(d, omega=True), 1 if quick else 3)["median"]
        scaling.append({
            "countries": nc, "respondents": n,
            "cells": int(d.frame.groupby(["country", "iteration", "group"]).ngroups) * len(d.instrument.factors),
            "alpha_seconds": t_a, "alpha_us_per_respondent": 1e6 * t_a / n,
            "omega_seconds": t_o, "omega_us_per_respondent": 1e6 * t_o / n,
            "alpha_peak_mib": _peak_mib(lambda: cs.reliability.by_cell(d, omega=False)),
            "omega_peak_mib": _peak_mib(lambda: cs.reliability.by_cell(d, omega=True)),
            "data_mib": float(d.frame.memory_usage(deep=True).sum() / 2**20),
        })
        del d
    first, last = scaling[0], scaling[-1]
    return {
        "cips_scale": cips,
        "scaling": scaling,
        "time_ratio_largest_vs_smallest": last["alpha_seconds"] / first["alpha_seconds"],
        "respondent_ratio_largest_vs_smallest": last["respondents"] / first["respondents"],
        "repeats": repeats,
        "load_average_start": load_start,
        "load_average_end": _load(),
        "baseline": ("pingouin.cronbach_alpha(nan_policy='pairwise', ci=0.95) per key factor inside one "
                     "data.frame.groupby(['country', 'iteration', 'group']) loop, warmed up"),
        "measured_as": ("as a user calls the functions: no thread pinning or caching outside the package; "
                        "BLAS threads as the process gets them"),
        "blas_threads": _blas_threads(),
        "note": ("same job = by_cell(data, weight=False, omega=False); by_cell also covers the whistleblower "
                 "index (its cell count includes it). The default call by_cell(data) does more than the "
                 "baseline: design weights and a one-factor ML fit with a Wald interval for omega in every "
                 "cell (pingouin has no omega), so its ratio against the alpha loop is a lower bound. by_cell "
                 "limits BLAS to one thread inside (cips_stats._blas); the pingouin loop runs with the "
                 "process's default threads. Peak memory is Python allocations (tracemalloc)."),
    }


if __name__ == "__main__":  # pragma: no cover
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from validation import write_result

    t0 = time.perf_counter()
    out = run(quick=False)
    write_result("reliability", out, folder=Path(__file__).resolve().parent / "results",
                 seconds=time.perf_counter() - t0)
    print(out["cips_scale"])
    print(pd.DataFrame(out["scaling"]).to_string())
