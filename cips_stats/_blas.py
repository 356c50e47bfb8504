"""BLAS threads inside the package's hot paths.

The batched products of the survey kernels are small: on OpenBLAS's default two (or more)
threads they cost the same wall time on a quiet machine and twice the CPU, and up to four
times the wall time on a busy one (the threads spin while they wait).  :func:`one_thread`
limits BLAS to one thread for a block of code.  ``threadpoolctl.threadpool_limits`` scans
the loaded libraries on every call (about 3 ms); a controller made once and kept costs
about 20 µs a call.
"""

from __future__ import annotations

from typing import Any

_controller: Any = None


def one_thread() -> Any:
    """A context manager that runs its block with one BLAS thread (restored afterwards).

    Returns
    -------
    context manager
        ``threadpoolctl``'s limiter for the BLAS libraries loaded when first called.

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats._blas import one_thread
    >>> with one_thread():
    ...     float((np.ones((3, 3)) @ np.ones(3)).sum())
    9.0
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
