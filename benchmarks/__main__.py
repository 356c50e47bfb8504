"""``python -m benchmarks [--quick] [--only NAME] [--list]``: run the benchmarks."""

import os

# One BLAS/OpenMP thread (set before numpy is imported); parallelism belongs to the code measured.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from validation import run_main  # noqa: E402

raise SystemExit(run_main(package="benchmarks", prefix="bench_", what="benchmark"))
