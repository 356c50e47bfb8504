"""Speed and memory benchmarks of cips_stats.

``python -m benchmarks`` discovers ``benchmarks/bench_*.py`` modules, each with a
``run(quick: bool = False) -> dict`` function (times as ratios against a
baseline measured in the same run, plus peak memory), runs them with BLAS
pinned to one thread, and writes ``benchmarks/results/<name>.json`` with the
machine (CPU count, platform, Python/NumPy/pandas versions, date) and an
``index.json`` of the latest run of each benchmark.

Options: ``--quick``, ``--only NAME`` (repeatable or comma-separated), ``--list``.
These are measurements, never test assertions.
"""

from __future__ import annotations

from pathlib import Path

from validation import machine_info, write_result

__all__ = ["machine_info", "write_result", "RESULTS"]

RESULTS = Path(__file__).resolve().parent / "results"
