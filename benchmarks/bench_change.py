"""``cs.change.fit`` at CIPS scale and beyond: first call (compilation) vs warm call, against PyMC's default NUTS
on the unmarginalised model, measured in the same run.

Data: ``cs.simulate(seed=1)`` (25 countries, 17 repeated, 10 key factors x 2 groups: 340 cell changes),
``cs.estimate.indicators(n_boot=500)``.  Measured as a user calls it (no thread pinning):

* ``fit_fresh_install``: the first ``cs.change.fit`` on a fresh install, in a new process with an empty
  numba cache (the log-density kernel and its two C callbacks are compiled once, then cached on disk) —
  4 chains x 1000 + 1000;
* ``fit_first``: the first fit in this process (the kernel loads from numba's disk cache);
* ``fit_warm``: a second fit with another seed;
* ``graph_nutpie``: the previous default, the same marginal model as a PyMC graph compiled by nutpie
  (numba) — compilation, which no cache carries across processes, and sampling;
* ``full_pymc``: the same model with the 340 cell deviations sampled (PyMC's default NUTS, 4 chains x
  1000 + 1000) — the baseline of "min bulk ESS per second of sampling";
* the scale curve 25 -> 100 -> 180 countries (``n_repeat`` 17, 68, 120): first and warm fit.

Ratios: ``ess_per_s_ratio`` = (min bulk ESS / sampling s of the warm fit) over the same for the baseline.
The load average is recorded: on a shared 2-core machine the absolute seconds move with it.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import cips_stats as cs
from cips_stats.change import _model


def _fit(ind, sup, seed, **kw) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cs.change.fit(ind, supported=sup, seed=seed, strict=False, **kw)
    wall = time.perf_counter() - t0
    d = dict(res.diagnostics)
    d["wall_s"] = wall
    d["reliable"] = res.reliable
    d["cells"] = len(res.cells)
    return wall, d


def _survey(n_countries: int, n_repeat: int, n_boot: int):
    sim = cs.simulate(seed=1, n_countries=n_countries, n_repeat=n_repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ind = cs.estimate.indicators(sim.data, n_boot=n_boot, seed=1)
    return ind, sim.truth["supported"]


def _fresh_install_fit(n_countries: int, n_repeat: int, n_boot: int) -> dict:
    """One fit in a new Python process whose numba cache is empty (as right after ``pip install``)."""
    import json
    import subprocess
    import sys
    import tempfile

    code = ("import json, time, warnings, cips_stats as cs\n"
            f"sim = cs.simulate(seed=1, n_countries={n_countries}, n_repeat={n_repeat})\n"
            "warnings.simplefilter('ignore')\n"
            f"ind = cs.estimate.indicators(sim.data, n_boot={n_boot}, seed=1)\n"
            "t0 = time.perf_counter()\n"
            "res = cs.change.fit(ind, supported=sim.truth['supported'], seed=1, strict=False)\n"
            "d = dict(res.diagnostics); d['wall_s'] = time.perf_counter() - t0\n"
            "print('RESULT' + json.dumps(d, default=str))\n")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def _graph_nutpie(ind, sup, seed: int) -> dict:
    """The marginal model as a PyMC graph compiled by nutpie (the default before the hand-written density)."""
    from cips_stats.change import _sampling

    data = _model._prepare_data(ind, sup, "iteration", None, None)
    P, F = data.d.shape
    G, C = len(data.groups), len(data.countries)
    t0 = time.perf_counter()
    idata, timing = _sampling.sample(("bench_graph", P, G, F, C),
                                     _model._build_marginal(P, G, F, C, False, _model._generic_coords(G, F, C)),
                                     _model._model_data(data, False), sampler="nutpie", draws=1000, tune=1000,
                                     chains=4, seed=seed)
    d = _sampling.diagnostics(idata, list(_model.HYPER), timing)
    d["wall_s"] = time.perf_counter() - t0
    return d


def run(quick: bool = False) -> dict:
    """First and warm fits, the unmarginalised PyMC baseline, and the scale curve."""
    n_boot = 200 if quick else 500
    out: dict[str, Any] = {"load_average_before": os.getloadavg(), "n_boot": n_boot,
                           "measured": "as a user calls it; first = fresh shape (compiles), warm = cached"}
    shape = (6, 4) if quick else (25, 17)
    ind, sup = _survey(*shape, n_boot)
    out["fit_fresh_install"] = _fresh_install_fit(*shape, n_boot)
    _, out["fit_first"] = _fit(ind, sup, 1)
    _, out["fit_warm"] = _fit(ind, sup, 2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata, diag, _ = _model._fit_full(ind, supported=sup, seed=3, sampler="pymc",
                                          draws=200 if quick else 1000, tune=200 if quick else 1000)
    diag["wall_s"] = time.perf_counter() - t0
    out["full_pymc"] = diag
    w, b = out["fit_warm"], out["full_pymc"]
    out["ess_per_s_ratio"] = (w["ess_bulk_min"] / w["sampling_s"]) / (b["ess_bulk_min"] / b["sampling_s"])
    out["wall_ratio_first"] = b["wall_s"] / out["fit_first"]["wall_s"]
    out["wall_ratio_warm"] = b["wall_s"] / w["wall_s"]
    out["graph_nutpie"] = _graph_nutpie(ind, sup, 4)
    out["wall_ratio_vs_graph_nutpie_first"] = out["graph_nutpie"]["wall_s"] / out["fit_first"]["wall_s"]
    out["wall_ratio_vs_graph_nutpie_fresh_install"] = (out["graph_nutpie"]["wall_s"]
                                                       / out["fit_fresh_install"]["wall_s"])
    curve = []
    for nc, nr in ([(10, 7)] if quick else [(25, 17), (100, 68), (180, 120)]):
        ind_s, sup_s = _survey(nc, nr, n_boot)
        _, first = _fit(ind_s, sup_s, 11)
        _, warm = _fit(ind_s, sup_s, 12)
        curve.append({"countries": nc, "repeated": nr, "cells": first["cells"], "first_wall_s": first["wall_s"],
                      "warm_wall_s": warm["wall_s"], "warm_sampling_s": warm["sampling_s"],
                      "ess_bulk_min": warm["ess_bulk_min"], "ess_tail_min": warm["ess_tail_min"],
                      "r_hat_max": warm["r_hat_max"], "divergences": warm["divergences"],
                      "backend": warm.get("backend"), "reliable": warm["reliable"],
                      "load_average": os.getloadavg()[0]})
    out["scale_curve"] = curve
    out["targets"] = ("fit at CIPS scale <= 10 s wall on 2 cores incl. compilation; min ESS/s >= 5x PyMC default "
                      "NUTS on the unmarginalised model; 180 countries <= 30 s")
    out["load_average_after"] = os.getloadavg()
    return out


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    from benchmarks import write_result

    quick = "--quick" in sys.argv
    res = run(quick=quick)
    write_result("change", res, quick=quick)
    print(json.dumps(res, indent=1, default=str))
