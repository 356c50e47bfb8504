"""``python -m validation [--quick] [--only NAME] [--list]``: run the validation studies."""

import os

# Studies run on shared machines: one BLAS/OpenMP thread unless the caller says otherwise
# (set before numpy is imported).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from validation import run_main  # noqa: E402

raise SystemExit(run_main(package="validation", prefix="study_", what="study"))
