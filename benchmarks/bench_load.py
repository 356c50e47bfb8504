"""Loader throughput: ``cs.load`` on the default synthetic survey in every file format.

The raw respondent table of ``cs.simulate(seed=1)`` (about 19,500 respondents
x 73 item columns, the published CIPS scale) is written once per format with
``cs.data.write_raw``; then ``cs.load(path)`` is timed per format (best of
``repeats``; one run for XLSX, the slowest format) and compared with the baseline ``pandas.read_csv`` of the same
CSV file alone (reading without any validation or recoding). Reported per
format: seconds, rows per second, the ratio to the baseline, the file size and
the peak Python memory of one load (tracemalloc, measured in a separate,
untimed pass). ``cs.load`` of the in-memory DataFrame is reported as the
``dataframe`` row.  ``write_csv`` times ``cs.data.write_raw`` to CSV against
``DataFrame.to_csv`` of the same table alone (best of ``repeats``, wall and CPU).

Both wall-clock seconds and CPU seconds of the process (``time.process_time``)
are reported, best of ``repeats`` each, with their ratios to the baseline: on a
shared machine the wall time includes waiting for a core, the CPU time does not.
XLSX is read with pandas' ``engine="calamine"`` when python-calamine is
installed (else openpyxl); ``xlsx_engine`` says which.

Memory at scale (issue 14): a CSV of 2,000,000 respondents (the default survey's rows tiled,
each copy under new country and respondent ids, so that no row repeats another) is loaded in
a fresh process; ``memory`` reports the peak resident memory above the process's baseline
(``ru_maxrss``: it counts Arrow's and NumPy's buffers, which tracemalloc does not see), the
size of the numeric item table (rows x items x 8 bytes), their ratio (the target is at most
4) and the seconds. ``python -m benchmarks.bench_load --memory FILE`` measures one file.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

import cips_stats as cs
from benchmarks import peak_mib as _peak_mib

FORMATS = ("csv", "parquet", "sav", "dta", "xlsx")


def _best(func: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over ``repeats`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - t0)
    return wall, cpu




def _calamine() -> bool:
    from cips_stats import _io

    return _io._calamine_available()


def write_large_csv(path: str | Path, rows: int) -> int:
    """Write a CSV of ``rows`` respondents: the default survey tiled, each copy under new country and ids."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = cs.simulate(seed=1).raw
    k = -(-rows // len(raw))
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)  # no quotes (none needed)
    with open(path, "wb") as fh:
        fh.write((",".join(raw.columns) + "\n").encode())
        done = 0
        with pacsv.CSVWriter(fh, pa.Schema.from_pandas(raw, preserve_index=False), write_options=options) as writer:
            for r in range(k):
                part = raw.iloc[: min(len(raw), rows - done)].copy()
                part["respondent_id"] = part["respondent_id"].astype(str) + f"_{r}"
                part["country"] = part["country"].astype(str) + f"_{r}"
                writer.write_table(pa.Table.from_pandas(part, preserve_index=False))
                done += len(part)
    return done


def measure_memory(path: str | Path) -> dict:
    """Peak resident memory of ``cs.load(path)`` above this process's baseline, against the numeric table."""
    inst = cs.Instrument.default()
    gc.collect()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    data = cs.load(path, instrument=inst)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    numeric = len(data.frame) * len(inst.item_ids) * 8 / 2 ** 20
    return {"rows": len(data.frame), "items": len(inst.item_ids), "file_mib": Path(path).stat().st_size / 2 ** 20,
            "numeric_table_mib": numeric, "peak_mib": peak, "peak_over_numeric": peak / numeric, "seconds": seconds}


def run_memory(rows: int) -> dict:
    """:func:`measure_memory` on a fresh :func:`write_large_csv` file, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.csv"
        write_large_csv(path, rows)
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_load", "--memory", str(path)],
                             capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["target"] = "peak_over_numeric <= 4 (issue 14)"
    return result


def run(quick: bool = False) -> dict:
    """Time ``cs.load`` per file format against ``pandas.read_csv`` alone; return the table and context."""
    kw = {"n_countries": 2, "n_repeat": 1} if quick else {}
    repeats = 1 if quick else 3
    t0 = time.perf_counter()
    sim = cs.simulate(seed=1, **kw)
    gen_seconds = time.perf_counter() - t0
    raw, inst = sim.raw, sim.instrument
    n = len(raw)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        write_seconds = {}
        for fmt in FORMATS:
            p = Path(tmp) / f"survey.{fmt}"
            t0 = time.perf_counter()
            cs.data.write_raw(raw, p, instrument=inst)
            write_seconds[fmt] = time.perf_counter() - t0
            paths[fmt] = p
        base, base_cpu = _best(lambda: pd.read_csv(paths["csv"]), max(repeats, 5))
        base_mem = _peak_mib(lambda: pd.read_csv(paths["csv"]))
        rows.append({"format": "pandas.read_csv (baseline)", "seconds": base, "rows_per_s": n / base,
                     "ratio_vs_read_csv": 1.0, "cpu_seconds": base_cpu, "cpu_ratio_vs_read_csv": 1.0,
                     "peak_mib": base_mem,
                     "file_mib": paths["csv"].stat().st_size / 2 ** 20, "write_seconds": None})
        fp = sim.data.fingerprint
        for fmt in FORMATS:
            p = paths[fmt]
            data = cs.load(p, instrument=inst)
            if data.fingerprint != fp:  # the benchmark is meaningless if a format loads differently
                raise RuntimeError(f"cs.load({fmt}) does not reproduce the survey data.")
            secs, cpu = _best(lambda: cs.load(p, instrument=inst), 1 if fmt == "xlsx" else repeats)
            rows.append({"format": fmt, "seconds": secs, "rows_per_s": n / secs, "ratio_vs_read_csv": secs / base,
                         "cpu_seconds": cpu, "cpu_ratio_vs_read_csv": cpu / base_cpu,
                         "peak_mib": _peak_mib(lambda: cs.load(p, instrument=inst)),
                         "file_mib": p.stat().st_size / 2 ** 20, "write_seconds": write_seconds[fmt]})
        # writing the CSV: cs.data.write_raw (formula escapes, same bytes as pandas) vs DataFrame.to_csv alone
        w_ours, w_ours_cpu = _best(lambda: cs.data.write_raw(raw, Path(tmp) / "w.csv", instrument=inst), repeats)
        w_pd, w_pd_cpu = _best(lambda: raw.to_csv(Path(tmp) / "w_pd.csv", index=False), repeats)
        write_csv = {"seconds": w_ours, "cpu_seconds": w_ours_cpu, "pandas_to_csv_seconds": w_pd,
                     "pandas_to_csv_cpu_seconds": w_pd_cpu, "ratio_vs_to_csv": w_ours / w_pd,
                     "cpu_ratio_vs_to_csv": w_ours_cpu / w_pd_cpu}
        secs, cpu = _best(lambda: cs.load(raw, instrument=inst), repeats)
        rows.append({"format": "dataframe", "seconds": secs, "rows_per_s": n / secs, "ratio_vs_read_csv": secs / base,
                     "cpu_seconds": cpu, "cpu_ratio_vs_read_csv": cpu / base_cpu,
                     "peak_mib": _peak_mib(lambda: cs.load(raw, instrument=inst)), "file_mib": None,
                     "write_seconds": None})
    table = pd.DataFrame(rows)
    item_values = int(raw[list(inst.item_ids)].notna().to_numpy().sum())
    return {
        "table": table.to_dict(orient="records"),
        "rows": n,
        "columns": raw.shape[1],
        "item_values": item_values,
        "repeats": repeats,
        "simulate_seconds": gen_seconds,
        "write_csv": write_csv,
        "xlsx_engine": "calamine" if _calamine() else "openpyxl",
        "baseline": "pandas.read_csv of the same CSV file (no validation, no recoding)",
        "simulate_options": sim.options,
        "memory": run_memory(200_000 if quick else 2_000_000),
    }


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        print(json.dumps(measure_memory(sys.argv[2])))
    else:
        out = run(quick=True)
        print(pd.DataFrame(out["table"]).to_string())
        print(out["memory"])
