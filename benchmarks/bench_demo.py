"""The whole demo as a user runs it: ``cips-stats demo`` and ``cips-stats analyze``, wall time and peak memory.

Issue 11: ``cips-stats demo`` at the default CIPS scale (25 countries, ~19,500 respondents) in at most 30 s
wall and 1 GiB on 2 cores; at 180 countries (``--countries 180``) in at most 90 s and 2 GiB.  Issue 12: the
existing steps (simulate -> report, without change and claims) at most 45 s and 1 GiB at 180 countries.

Each configuration is one command line, run in a fresh process exactly as a user types it:

- ``demo``: ``cips-stats demo --out DIR [--countries N] [--jobs J]``;
- ``existing``: the demo's ``simulate`` then ``cips-stats analyze RAW --instrument YAML --steps
  reliability,cfa,invariance,indicators,gap,drift,kpi,review`` (everything but change and claims).

Measured per run: wall seconds; the CPU seconds of the process and every process it started
(``os.wait4``: the analysis's worker processes included); the peak resident memory of the largest
process (``ru_maxrss``) and the peak of the *sum* over the process tree, sampled every 50 ms with psutil
(shared pages counted in every process: an upper bound); the time of every analysis step from the
run's ``summary.json``; and the machine's 1-minute load average before and after (the machine is shared:
wall times grow with the load, CPU seconds much less).

``--jobs 1`` (everything in one process) is run beside the default (one worker per core) in the same
rounds.  With ``CIPS_BENCH_BASELINE=DIR`` (a copy of ``cips_stats`` from an earlier commit) every
configuration is also run with ``PYTHONPATH=DIR``, interleaved with the current code, and the ratios
are reported.

``python -m benchmarks --only demo`` (``--quick``: 3 countries, 100 replicates).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

EXISTING_STEPS = "reliability,cfa,invariance,indicators,gap,drift,kpi,review"
_BIN = Path(sys.executable).with_name("cips-stats")


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(argv: list[str], *, env: dict | None = None, cwd: str | None = None) -> dict:
    """Run ``argv`` in a fresh process; wall, CPU (process tree), peak RSS (largest, and summed over the tree)."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            stop.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"argv": argv[1:], "exit": proc.returncode, "wall_s": round(wall, 2),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "max_rss_mib": round(ru.ru_maxrss / 1024, 1),
            "tree_rss_peak_mib": round(peak[0] / 2**20, 1), "load_before": round(load0, 2),
            "load_after": round(os.getloadavg()[0], 2), "output_tail": out[-600:]}


def _steps(summary_path: Path) -> dict:
    if not summary_path.exists():
        return {}
    s = json.loads(summary_path.read_text(encoding="utf-8"))
    inner = s.get("analysis", s)
    steps = {r["name"]: round(r["seconds"], 2) for r in inner.get("steps", [])}
    for r in s.get("steps", []) if "analysis" in s else []:
        steps[f"demo:{r['name']}"] = round(r["seconds"], 2)
    return steps


def _run_config(kind: str, countries: int | None, jobs: int | None, n_boot: int, tmp: Path,
                env: dict) -> dict:
    out = tmp / f"{kind}-{countries}-{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    opts = ([] if countries is None else ["--countries", str(countries)]) + \
        ([] if jobs is None else ["--jobs", str(jobs)]) + ["--n-boot", str(n_boot)]
    if kind == "demo":
        r = measure([str(_BIN), "demo", "--out", str(out), *opts], env=env, cwd=str(tmp))
        r["steps"] = _steps(out / "summary.json")
        return r
    # existing steps: the demo's survey, then analyze without change and claims
    code = ("import sys, cips_stats as cs; from cips_stats.cli import _simulate_kwargs; "
            "kw = _simulate_kwargs(1, None if sys.argv[2] == 'None' else int(sys.argv[2])); "
            "kw['small_cells'] = kw.get('n_repeat', 17) >= 2; s = cs.simulate(**kw); "
            "cs.data.write_raw(s.raw, sys.argv[1] + '/raw.csv', instrument=s.instrument); "
            "s.instrument.to_yaml(sys.argv[1] + '/instrument.yaml')")
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    # run outside the repository: ``python -c`` puts the working directory first on sys.path, ahead of
    # PYTHONPATH, so in the repository root the baseline would import the current cips_stats
    subprocess.run([sys.executable, "-c", code, str(out), str(countries)], env=env, check=True, cwd=str(tmp))
    sim_s = time.perf_counter() - t0
    argv = [str(_BIN), "analyze", str(out / "raw.csv"), "--instrument", str(out / "instrument.yaml"),
            "--out", str(out / "analysis"), "--seed", "1", "--steps", EXISTING_STEPS,
            *([] if jobs is None else ["--jobs", str(jobs)]), "--n-boot", str(n_boot)]
    if env.get("PYTHONPATH") and "CIPS_BENCH_BASELINE" in os.environ and \
            env["PYTHONPATH"] == os.environ["CIPS_BENCH_BASELINE"]:
        # an earlier command line may lack --steps: the same call through the API it wraps
        argv = [sys.executable, "-c",
                "import sys; from cips_stats import pipeline; pipeline.analyze(sys.argv[1], instrument=sys.argv[2], "
                "out=sys.argv[3], seed=1, n_boot=int(sys.argv[4]), steps=sys.argv[5].split(','))",
                str(out / "raw.csv"), str(out / "instrument.yaml"), str(out / "analysis"), str(n_boot),
                EXISTING_STEPS]
    r = measure(argv, env=env, cwd=str(tmp))
    r["simulate_and_write_s"] = round(sim_s, 2)
    r["wall_with_simulate_s"] = round(r["wall_s"] + sim_s, 2)
    r["steps"] = _steps(out / "analysis" / "summary.json")
    return r


def run(quick: bool = False, configs: list[tuple[str, int | None]] | None = None, rounds: int = 1,
        jobs: tuple = (None, 1)) -> dict:
    """Run the configurations (current code, and the baseline when ``CIPS_BENCH_BASELINE`` is set), interleaved."""
    n_boot = 100 if quick else 1000
    if configs is None:
        configs = [("demo", 3)] if quick else [("demo", None), ("existing", 180), ("demo", 180)]
    base_dir = os.environ.get("CIPS_BENCH_BASELINE")
    codes = {"current": dict(os.environ)}
    if base_dir:
        codes["baseline"] = {**os.environ, "PYTHONPATH": base_dir}
    runs = []
    with tempfile.TemporaryDirectory(prefix="cips-bench-demo-") as tmp:
        for kind, countries in configs:
            for rnd in range(rounds):
                for code, env in codes.items():
                    for j in jobs if code == "current" else (None,):
                        r = _run_config(kind, countries, j, n_boot, Path(tmp), env)
                        r.update(config=kind, countries=countries or 25, jobs=j, code=code, round=rnd)
                        runs.append(r)
                        print(f"  {code:8s} {kind:8s} {countries or 25:>3} countries jobs={j}: "
                              f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
                              f"{r['tree_rss_peak_mib']:.0f} MiB tree ({r['max_rss_mib']:.0f} largest), "
                              f"load {r['load_before']}->{r['load_after']}, exit {r['exit']}", flush=True)
    targets = {("demo", 25): (30, 1024), ("demo", 180): (90, 2048), ("existing", 180): (45, 1024)}
    summary = []
    for (kind, c), (t_wall, t_mem) in targets.items():
        mine = [r for r in runs if r["config"] == kind and r["countries"] == c and r["code"] == "current"
                and r["jobs"] is None]
        if not mine:
            continue
        best = min(mine, key=lambda r: r["wall_s"])
        row = {"config": kind, "countries": c, "wall_s": best["wall_s"], "cpu_s": best["cpu_s"],
               "tree_rss_peak_mib": best["tree_rss_peak_mib"], "max_rss_mib": best["max_rss_mib"],
               "target_wall_s": t_wall, "target_mib": t_mem, "load": [best["load_before"], best["load_after"]]}
        for other, key in (("baseline", None), ("current", 1)):
            ref = [r for r in runs if r["config"] == kind and r["countries"] == c and r["code"] == other
                   and r["jobs"] == key]
            if ref:
                b = min(ref, key=lambda r: r["wall_s"])
                tag = "baseline" if other == "baseline" else "jobs1"
                row[f"{tag}_wall_s"], row[f"{tag}_cpu_s"] = b["wall_s"], b["cpu_s"]
                row[f"{tag}_tree_rss_peak_mib"] = b["tree_rss_peak_mib"]
                row[f"speedup_vs_{tag}"] = round(b["wall_s"] / best["wall_s"], 2)
        summary.append(row)
    return {"summary": summary, "runs": runs, "n_boot": n_boot, "rounds": rounds,
            "baseline": base_dir, "cpus": os.cpu_count(),
            "note": "Wall times on a shared machine grow with its load (recorded per run); CPU seconds are the "
                    "process tree's. tree_rss_peak sums every process's RSS (shared pages counted twice)."}


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--config", action="append", default=[], metavar="KIND:COUNTRIES",
                    help="e.g. demo:25, existing:180, demo:180 (repeatable)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--jobs", default="default,1", help="comma-separated: default and/or numbers")
    ap.add_argument("--out", default=None, help="write the JSON here")
    a = ap.parse_args()
    cfg = [(k, None if int(c) == 25 else int(c)) for k, c in (x.split(":") for x in a.config)] or None
    jb = tuple(None if j == "default" else int(j) for j in a.jobs.split(","))
    res = run(quick=a.quick, configs=cfg, rounds=a.rounds, jobs=jb)
    text = json.dumps(res, indent=1)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
    print(json.dumps(res["summary"], indent=1))
