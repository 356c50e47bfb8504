"""Validation studies of cips_stats and the runner shared with ``benchmarks``.

``python -m validation`` discovers ``validation/study_*.py`` modules, each with a
``run(quick: bool = False)`` function returning a DataFrame or a dict, runs them
and writes their results under ``validation/results/`` (``<name>.json`` with the
machine, versions and date; ``<name>.csv`` when the result is a table) plus an
``index.json`` of the latest run of each study.

Options: ``--quick`` (fewer replications), ``--only NAME`` (repeatable or
comma-separated; with or without the ``study_`` prefix), ``--list``, and
``--backend`` / ``--n-jobs`` for the studies whose ``run()`` takes
``backend=`` (replications through joblib: ``loky`` local processes,
``threading``, ``sequential``, ``dask`` for the current or a temporary local
Dask cluster, or a scheduler address ``tcp://host:8786`` to run the same study
on an existing Dask cluster), as :func:`cips_stats.power.simulate_claim` does.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import inspect
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

__all__ = ["machine_info", "write_result", "discover", "run_main", "RESULTS"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine_info() -> dict[str, Any]:
    """CPU count, platform, Python and library versions, and the UTC date of the run."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }
    for mod in ("numpy", "scipy", "pandas", "cips_stats"):
        try:
            info[mod] = importlib.import_module(mod).__version__
        except Exception:  # pragma: no cover - a missing optional library is recorded as such
            info[mod] = None
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version")} for p in threadpool_info()]
    except Exception:  # pragma: no cover
        info["blas"] = None
    info["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    return info


def write_result(name: str, result: Any, *, folder: str | os.PathLike = RESULTS, quick: bool = False,
                 seconds: float | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``<folder>/<name>.json`` (result with machine info) and ``<name>.csv`` for a table.

    Parameters
    ----------
    name : str
        Study or benchmark name (without the ``study_``/``bench_`` prefix).
    result : pandas.DataFrame or dict
        What ``run()`` returned.
    folder : path
        Results folder (created).
    quick : bool
        Whether it was a quick run (recorded).
    seconds : float, optional
        Wall time of the run.
    extra : dict, optional
        More fields for the JSON record.
    """
    import pandas as pd

    from cips_stats.results import to_jsonable

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"name": name, "quick": bool(quick), "machine": machine_info()}
    if seconds is not None:
        record["seconds"] = seconds
    if extra:
        record.update(extra)
    if isinstance(result, pd.DataFrame):
        result.to_csv(folder / f"{name}.csv", index=False)
        record["result"] = result.to_dict(orient="records")
    else:
        record["result"] = result
    path = folder / f"{name}.json"
    path.write_text(json.dumps(to_jsonable(record), indent=2, allow_nan=False), encoding="utf-8")
    return path


def discover(package: str, prefix: str) -> dict[str, str]:
    """Map ``name -> module`` for the ``<prefix><name>.py`` files of a package folder."""
    folder = Path(importlib.import_module(package).__file__).resolve().parent
    return {p.stem[len(prefix):]: f"{package}.{p.stem}" for p in sorted(folder.glob(f"{prefix}*.py"))}


def _select(found: dict[str, str], only: Sequence[str], prefix: str) -> list[str]:
    if not only:
        return list(found)
    wanted = []
    for item in only:
        for name in item.split(","):
            name = name.strip()
            if name.startswith(prefix):
                name = name[len(prefix):]
            if name.endswith(".py"):
                name = name[:-3]
            if name not in found:
                raise SystemExit(f"Unknown name {name!r}; known: {', '.join(found) or '(none)'}.")
            wanted.append(name)
    return wanted


def run_main(argv: Sequence[str] | None = None, *, package: str = "validation", prefix: str = "study_",
             results: str | os.PathLike | None = None, what: str = "study") -> int:
    """Command-line runner: discover, list or run studies (or benchmarks); return the exit status."""
    found = discover(package, prefix)
    folder = Path(results) if results is not None else Path(importlib.import_module(package).__file__).parent / "results"
    ap = argparse.ArgumentParser(prog=f"python -m {package}", description=f"Run the {package} {what} modules.")
    ap.add_argument("--quick", action="store_true", help="Quick run (fewer replications, smaller data).")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="Run only NAME (repeatable).")
    ap.add_argument("--list", action="store_true", help="List the modules and exit.")
    ap.add_argument("--backend", default=None, metavar="NAME",
                    help="Where replications run, for modules whose run() takes backend=: loky (default), "
                         "threading, sequential, dask, or a Dask scheduler address tcp://host:port.")
    ap.add_argument("--n-jobs", type=int, default=None, metavar="N",
                    help="Local workers for modules whose run() takes n_jobs= (default: all cores).")
    args = ap.parse_args(argv)
    if args.list:
        for name, mod in found.items():
            doc = ""
            try:
                doc = (importlib.import_module(mod).__doc__ or "").strip().splitlines()[0]
            except Exception as exc:  # pragma: no cover - report the broken module, keep listing
                doc = f"(cannot import: {exc})"
            print(f"{name:<28} {doc}")
        return 0
    names = _select(found, args.only, prefix)
    backend: Any = args.backend
    client = None
    if isinstance(backend, str) and "://" in backend:
        from distributed import Client

        client = backend = Client(backend)
    index_path = folder / "index.json"
    index = {}
    if index_path.exists():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except ValueError:
            index = {}
    failed = []
    for name in names:
        print(f"[{what}] {name} {'(quick)' if args.quick else ''} ...", flush=True)
        t0 = time.perf_counter()
        start_wall = time.time()
        status: dict[str, Any] = {"quick": args.quick}
        try:
            mod = importlib.import_module(found[name])
            kwargs: dict[str, Any] = {"quick": args.quick}
            params = inspect.signature(mod.run).parameters
            if backend is not None and "backend" in params:
                kwargs["backend"] = backend
                status["backend"] = args.backend
            if args.n_jobs is not None and "n_jobs" in params:
                kwargs["n_jobs"] = args.n_jobs
            # benchmarks time the package as a user calls it: no thread pinning here (issue 12)
            result = mod.run(**kwargs)
            secs = time.perf_counter() - t0
            own = folder / f"{name}.json"
            if not own.exists() or own.stat().st_mtime < start_wall:
                write_result(name, result, folder=folder, quick=args.quick, seconds=secs)
            status.update(ok=True, seconds=secs)
            print(f"[{what}] {name}: done in {secs:.1f} s -> {folder / (name + '.json')}", flush=True)
        except Exception as exc:
            secs = time.perf_counter() - t0
            status.update(ok=False, seconds=secs, error=f"{type(exc).__name__}: {exc}")
            failed.append(name)
            traceback.print_exc()
            print(f"[{what}] {name}: FAILED after {secs:.1f} s: {exc}", file=sys.stderr, flush=True)
        status["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        index[name] = status
    if client is not None:
        client.close()
    folder.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8")
    if failed:
        print(f"{len(failed)} {what} module(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
