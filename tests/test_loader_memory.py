"""Peak memory of ``cs.load`` on a 2-million-row CSV (issue 14): at most 4x the numeric table.

Slow (writes a ~320 MB file and loads it in a fresh process): ``pytest -m slow``. The figure
is also measured by ``benchmarks/bench_load.py`` (``memory`` entry of its results).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.bench_load import write_large_csv

pytestmark = pytest.mark.slow


def test_csv_load_peak_memory_is_at_most_four_times_the_numeric_table(tmp_path):
    path = tmp_path / "large.csv"
    n = write_large_csv(path, 2_000_000)
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_load", "--memory", str(path)],
                         capture_output=True, text=True, check=True, timeout=1800)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["rows"] == n == 2_000_000
    assert m["peak_over_numeric"] <= 4.0, m
