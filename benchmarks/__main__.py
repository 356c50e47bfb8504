"""``python -m benchmarks [--quick] [--only NAME] [--list]``: run the benchmarks.

Nothing is pinned here (issue 12): each benchmark times the package as a user calls it,
with the BLAS/OpenMP threads a user's process gets; where fewer threads win, the package
limits them itself in its hot paths.
"""

from validation import run_main

raise SystemExit(run_main(package="benchmarks", prefix="bench_", what="benchmark"))
