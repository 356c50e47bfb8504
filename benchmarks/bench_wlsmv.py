"""Ordinal CFA at CIPS scale: polychorics and the full WLSMV fit against lavaan and naive loops.

Data: an officials-like sample (11,000 respondents x 50 five-point items, 10 correlated
factors of 5 items, loadings 0.5-0.85, skewed thresholds, 3% item non-response + 3%
"don't know" = ~6% missing answers, MCAR), generated with a seeded numpy Generator.

Timed in the same run:

* ``polychoric``: :func:`cips_stats.factor.polychoric.polychoric` (all 1,225 pairs at once);
* ``gamma``: the asymptotic covariance (NACOV) of thresholds + polychorics;
* ``wlsmv``: the whole :func:`cips_stats.factor.wls.fit_wlsmv` (polychorics, Gamma, DWLS,
  robust SEs, scaled-shifted test, fit indices);
* baselines: ``Rscript`` lavaan 0.6 ``cfa(..., ordered=TRUE, estimator="WLSMV",
  missing="pairwise")`` on the same data (timed inside R with ``system.time``, so R's
  start-up and reading the CSV are excluded; skipped with a note when R is absent),
  a per-pair loop with ``scipy.optimize.minimize_scalar`` and
  ``scipy.stats.multivariate_normal.cdf`` (timed on a sample of pairs, extrapolated
  linearly to all pairs), and a per-pair ``minimize_scalar`` loop over our vectorised
  bivariate normal CDF (all pairs).

Reported: wall and CPU seconds (the machine is shared; CPU time is the fairer
comparison when it is busy), ratios (baseline / ours), peak Python memory of our fit (tracemalloc),
the maximum absolute difference of our loadings and lavaan's when lavaan finishes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cips_stats.factor.polychoric import _bvn_pdf, bvn_cdf, polychoric  # noqa: F401
from cips_stats.factor.wls import fit_wlsmv
from benchmarks import peak_mib as _peak_mib

R_TIMEOUT_FULL = 900
R_TIMEOUT_QUICK = 300


def simulate_officials(n: int = 11000, n_factors: int = 10, per_factor: int = 5, missing: float = 0.06,
                       seed: int = 20261122) -> tuple[pd.DataFrame, str, dict]:
    """CIPS-like ordinal answers with known loadings; returns (frame, lavaan syntax, truth)."""
    rng = np.random.default_rng(seed)
    p = n_factors * per_factor
    lam = np.zeros((p, n_factors))
    for f in range(n_factors):
        lam[f * per_factor:(f + 1) * per_factor, f] = rng.uniform(0.5, 0.85, per_factor)
    phi = np.full((n_factors, n_factors), 0.45) + rng.uniform(-0.15, 0.15, (n_factors, n_factors))
    phi = (phi + phi.T) / 2
    np.fill_diagonal(phi, 1.0)
    eta = rng.multivariate_normal(np.zeros(n_factors), phi, size=n)
    resid_sd = np.sqrt(1 - np.einsum("ij,jk,ik->i", lam, phi, lam))
    ystar = eta @ lam.T + rng.standard_normal((n, p)) * resid_sd
    base = np.array([-1.9, -1.1, -0.3, 0.7])               # officials answer favourably
    cuts = base[None, :] + rng.uniform(-0.3, 0.3, (p, 1))
    y = 1.0 + (ystar[:, :, None] > cuts[None, :, :]).sum(axis=2)
    y[rng.random(y.shape) < missing] = np.nan
    names = [f"q{j + 1:02d}" for j in range(p)]
    frame = pd.DataFrame(y, columns=names)
    syntax = "\n".join(f"F{f + 1} =~ " + " + ".join(names[f * per_factor:(f + 1) * per_factor])
                       for f in range(n_factors))
    return frame, syntax, {"lambda": lam, "phi": phi, "cuts": cuts}


# --------------------------------------------------------------------------- naive baselines
def _pair_table(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    ok = ~(np.isnan(x) | np.isnan(y))
    t = np.zeros((k, k))
    np.add.at(t, (x[ok].astype(int) - 1, y[ok].astype(int) - 1), 1.0)
    return t


def _tau(x: np.ndarray, k: int) -> np.ndarray:
    x = x[~np.isnan(x)]
    cum = np.cumsum(np.bincount(x.astype(int) - 1, minlength=k))[:-1] / len(x)
    return np.concatenate([[-np.inf], stats.norm.ppf(cum), [np.inf]])


def _naive_scipy_pair(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """One pair, scipy only: bounded Brent on rho, multivariate_normal.cdf per grid point."""
    big = 8.0

    def negll(r):
        mvn = stats.multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]])
        aa, bb = np.clip(a, -big, big), np.clip(b, -big, big)
        F = np.array([[mvn.cdf([u, v]) for v in bb] for u in aa])
        pr = F[1:, 1:] - F[:-1, 1:] - F[1:, :-1] + F[:-1, :-1]
        return -np.sum(t * np.log(np.maximum(pr, 1e-300)))

    return optimize.minimize_scalar(negll, bounds=(-0.999, 0.999), method="bounded",
                                    options={"xatol": 1e-6}).x


def _loop_pair_ours(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """One pair, Python-level optimiser but our vectorised bivariate CDF for the cells."""
    def negll(r):
        F = bvn_cdf(a[:, None], b[None, :], r)
        pr = F[1:, 1:] - F[:-1, 1:] - F[1:, :-1] + F[:-1, :-1]
        return -np.sum(t * np.log(np.maximum(pr, 1e-300)))

    return optimize.minimize_scalar(negll, bounds=(-0.999, 0.999), method="bounded",
                                    options={"xatol": 1e-8}).x


# --------------------------------------------------------------------------- lavaan
_R_SCRIPT = r"""
suppressMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
model <- readLines(args[2])
tm <- system.time(fit <- cfa(paste(model, collapse = "\n"), data = d, ordered = names(d),
                             estimator = "WLSMV", missing = "pairwise"))
pe <- parameterEstimates(fit)
pe <- pe[pe$op == "=~", c("lhs", "rhs", "est", "se")]
write.csv(pe, args[3], row.names = FALSE)
cat(sprintf("ELAPSED %.3f\n", tm[["elapsed"]]))
cat(sprintf("CPU %.3f\n", tm[["user.self"]] + tm[["sys.self"]]))
cat(sprintf("VERSION %s\n", as.character(packageVersion("lavaan"))))
fm <- fitMeasures(fit, c("chisq.scaled", "cfi.scaled", "rmsea.scaled"))
cat(sprintf("FIT %.10g %.10g %.10g\n", fm[1], fm[2], fm[3]))
"""


def _run_lavaan(frame: pd.DataFrame, syntax: str, timeout: int) -> dict:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return {"status": "R not available", "seconds": None,
                "note": "issue 4 measured 53 s for lavaan WLSMV on 11,000 x 50 complete data"}
    with tempfile.TemporaryDirectory() as tmp:
        dpath, mpath, opath, spath = (Path(tmp) / n for n in ("d.csv", "m.txt", "pe.csv", "s.R"))
        frame.to_csv(dpath, index=False, na_rep="NA")
        mpath.write_text(syntax)
        spath.write_text(_R_SCRIPT)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        t0 = time.perf_counter()
        try:
            out = subprocess.run([rscript, str(spath), str(dpath), str(mpath), str(opath)], capture_output=True,
                                 text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"status": f"did not finish in {timeout} s", "seconds": None, "lower_bound_seconds": timeout}
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            return {"status": "failed", "seconds": None, "stderr": out.stderr[-2000:]}
        res: dict = {"status": "ok", "wall_seconds_with_startup": wall}
        for line in out.stdout.splitlines():
            if line.startswith("ELAPSED"):
                res["seconds"] = float(line.split()[1])
            elif line.startswith("CPU"):
                res["cpu_seconds"] = float(line.split()[1])
            elif line.startswith("VERSION"):
                res["lavaan_version"] = line.split()[1]
            elif line.startswith("FIT"):
                v = [float(x) for x in line.split()[1:]]
                res["fit"] = {"chi2_scaled": v[0], "cfi_scaled": v[1], "rmsea_scaled": v[2]}
        res["loadings"] = pd.read_csv(opath)
        return res




def run(quick: bool = False) -> dict:
    """Time polychorics and WLSMV against lavaan and naive per-pair loops; return the table."""
    if quick:
        frame, syntax, truth = simulate_officials(n=1500, n_factors=4)
        n_naive = 3
    else:
        frame, syntax, truth = simulate_officials()
    if not quick:
        n_naive = 25
    n, p = frame.shape
    npairs = p * (p - 1) // 2
    rows = []

    t0, c0 = time.perf_counter(), time.process_time()
    pr = polychoric(frame)
    t_poly, c_poly = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    pr.gamma()
    t_gamma, c_gamma = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    fit = fit_wlsmv(frame, syntax)
    t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
    peak_fit = _peak_mib(lambda: fit_wlsmv(frame, syntax))
    peak_poly = _peak_mib(lambda: polychoric(frame))

    # naive loops
    x = frame.to_numpy()
    taus = [_tau(x[:, j], 5) for j in range(p)]
    rng = np.random.default_rng(1)
    all_pairs = [(i, j) for j in range(p) for i in range(j + 1, p)]
    sample = [all_pairs[k] for k in rng.choice(len(all_pairs), size=n_naive, replace=False)]
    t0, c0 = time.perf_counter(), time.process_time()
    naive_vals = []
    for i, j in sample:
        naive_vals.append(_naive_scipy_pair(_pair_table(x[:, i], x[:, j], 5), taus[i], taus[j]))
    t_naive = (time.perf_counter() - t0) / n_naive * npairs
    c_naive = (time.process_time() - c0) / n_naive * npairs
    naive_diff = float(np.max(np.abs(np.array(naive_vals) - np.array([pr.corr.iloc[i, j] for i, j in sample]))))
    t0, c0 = time.perf_counter(), time.process_time()
    loop_vals = np.array([_loop_pair_ours(_pair_table(x[:, i], x[:, j], 5), taus[i], taus[j])
                          for i, j in all_pairs])
    t_loop, c_loop = time.perf_counter() - t0, time.process_time() - c0
    loop_diff = float(np.max(np.abs(loop_vals - np.array([pr.corr.iloc[i, j] for i, j in all_pairs]))))

    lav = _run_lavaan(frame, syntax, R_TIMEOUT_QUICK if quick else R_TIMEOUT_FULL)
    lav_diff = None
    if lav.get("status") == "ok":
        ours = fit.loadings[["factor", "item", "est", "se"]].rename(columns={"factor": "lhs", "item": "rhs"})
        mp = ours.merge(lav["loadings"], on=["lhs", "rhs"], suffixes=("", "_r"))
        lav_diff = {"loadings_max_abs_diff": float(np.max(np.abs(mp["est"] - mp["est_r"]))),
                    "se_max_rel_diff": float(np.max(np.abs(mp["se"] - mp["se_r"]) / np.where(mp["se_r"] > 0, mp["se_r"], 1))),
                    "chi2_scaled_rel_diff": abs(fit.fit["chi2_scaled"] / lav["fit"]["chi2_scaled"] - 1),
                    "cfi_scaled_abs_diff": abs(fit.fit["cfi_scaled"] - lav["fit"]["cfi_scaled"]),
                    "rmsea_scaled_abs_diff": abs(fit.fit["rmsea_scaled"] - lav["fit"]["rmsea_scaled"])}

    lav_secs = lav.get("seconds") or lav.get("lower_bound_seconds")
    lav_cpu = lav.get("cpu_seconds")
    steps = [
        ("polychoric matrix (cips_stats, all pairs vectorised)", t_poly, c_poly, peak_poly, t_poly, c_poly),
        ("Gamma / NACOV (cips_stats)", t_gamma, c_gamma, None, None, None),
        ("per-pair loop, minimize_scalar + our BVN (baseline)", t_loop, c_loop, None, t_poly, c_poly),
        (f"per-pair loop, minimize_scalar + scipy multivariate_normal.cdf (baseline, {n_naive} pairs timed, "
         f"extrapolated to {npairs})", t_naive, c_naive, None, t_poly, c_poly),
        ("full WLSMV fit (cips_stats)", t_fit, c_fit, peak_fit, t_fit, c_fit),
        (f"lavaan cfa WLSMV missing='pairwise' (baseline; {lav.get('status')})", lav_secs, lav_cpu, None,
         t_fit, c_fit),
    ]
    for name, secs, cpu, peak, ref_s, ref_c in steps:
        rows.append({"step": name, "seconds": secs, "cpu_seconds": cpu, "peak_mib": peak,
                     "ratio": (secs / ref_s) if (secs and ref_s) else None,
                     "cpu_ratio": (cpu / ref_c) if (cpu and ref_c) else None})
    return {
        "table": rows,
        "n": n, "items": p, "pairs": npairs, "factors": p // 5,
        "missing_share": float(frame.isna().to_numpy().mean()),
        "complete_rows_share": float(frame.notna().all(axis=1).mean()),
        "wlsmv_converged": fit.converged, "wlsmv_iterations": fit.iterations,
        "wlsmv_fit": {k: fit.fit[k] for k in ("chi2_scaled", "df", "cfi_scaled", "rmsea_scaled", "srmr")},
        "lavaan": {k: v for k, v in lav.items() if k != "loadings"},
        "agreement_with_lavaan": lav_diff,
        "naive_scipy_max_abs_diff": naive_diff,
        "loop_ours_max_abs_diff": loop_diff,
        "loadings_vs_truth_max_abs_diff": float(np.max(np.abs(
            fit.loadings["std_all"].to_numpy() - truth["lambda"].sum(axis=1)))),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


if __name__ == "__main__":  # pragma: no cover
    out = run(quick=True)
    print(pd.DataFrame(out["table"]).to_string())
    print({k: v for k, v in out.items() if k != "table"})
