"""Speed and memory benchmarks of cips_stats.

``python -m benchmarks`` discovers ``benchmarks/bench_*.py`` modules, each with a
``run(quick: bool = False) -> dict`` function (times as ratios against a
baseline measured in the same run, plus peak memory), runs them as a user calls
the package (no thread pinning or caching outside it), and writes ``benchmarks/results/<name>.json`` with the
machine (CPU count, platform, Python/NumPy/pandas versions, date) and an
``index.json`` of the latest run of each benchmark.

Options: ``--quick``, ``--only NAME`` (repeatable or comma-separated), ``--list``.
These are measurements, never test assertions.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

from validation import machine_info, write_result

__all__ = ["machine_info", "write_result", "peak_mib", "best_seconds", "save_with_load", "RESULTS"]

RESULTS = Path(__file__).resolve().parent / "results"


def peak_mib(func: Callable[[], Any]) -> float:
    """Peak Python-heap memory (MiB, by tracemalloc) of one call of ``func``."""
    gc.collect()
    tracemalloc.start()
    try:
        func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2 ** 20


def best_seconds(func: Callable[[], Any], repeats: int = 1) -> float:
    """Best wall-clock time (seconds) of ``repeats`` calls of ``func``, garbage collected before each."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def save_with_load(path: Path, out: dict) -> dict:
    """Add the CPU count and 1-minute load average to ``out``, write it as JSON at ``path``, return it."""
    import json
    import os

    import cips_stats as cs

    out["machine"] = {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cs.results.to_jsonable(out), indent=2))
    return out
