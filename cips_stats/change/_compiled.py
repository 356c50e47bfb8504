"""The change model's density as C callbacks, so nutpie's chains run in parallel without the GIL.

:func:`cips_stats.change._logp.nutpie_model` hands nutpie a Python function:
every log-density evaluation then takes the GIL, and four chains on two cores
queue behind one another.  Here the numba kernel of the density with cell
deviations and country effects integrated out
(:func:`cips_stats.change._logp._logp_grad_country_loops`) is wrapped in two C
callbacks with the signatures nutpie's compiled models use (log density with
gradient; expansion of a draw into the named posterior variables), so nutpie's
sampler threads call machine code directly.

The data travel in one float64 buffer (its address is nutpie's "user data"):
an 8-number header ``(length, G, F, C, P, a2, b2, unit)`` and then the arrays
``BF, pc, pg, q1, qs, QT2, zd, lam`` in that order.  The callbacks are
compiled once per machine (numba's on-disk cache) and serve every data set,
so nothing is compiled per fit.

This uses nutpie's ``CompiledPyMCModel`` container (the one
``nutpie.compile_pymc_model`` returns for the numba backend).  When a nutpie
release changes it, :func:`compiled_model` returns ``None`` and the caller
falls back to the Python-function model (same density, slower).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._logp import (EFFECT_PRIOR, SD_PRIOR, CountryMarginalDensity, _logp_grad_country_loops,
                    country_expanded_variables)

__all__ = ["pack", "compiled_model", "callbacks", "loaded", "HEADER"]

#: Length of the buffer's header.
HEADER = 8
_CFUNCS: list = []


def pack(density: CountryMarginalDensity) -> np.ndarray:
    """The density's data as one contiguous float64 buffer (see the module notes for the layout)."""
    L = density.layout
    parts = [density.BF.ravel(), density.pc.astype(float), density.pg.astype(float), density.q1.ravel(),
             density.qs.ravel(), density.QT2.ravel(), density.zd.ravel(), density.lam.ravel()]
    body = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    head = np.array([HEADER + body.size, L.G, L.F, L.C, density.P, 1.0 / EFFECT_PRIOR ** 2, 1.0 / SD_PRIOR ** 2,
                     density.unit], dtype=np.float64)
    return np.ascontiguousarray(np.concatenate([head, body]))


import numba  # noqa: E402  (a dependency; the kernel of ._logp is compiled with it too)
from numba import types  # noqa: E402

# error_model="numpy": a division by zero gives inf/nan (reported to nutpie by the return code), never a Python
# exception, which a C callback cannot raise
_kernel = numba.njit(cache=True, nogil=True, error_model="numpy")(_logp_grad_country_loops)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _unpack(buf):
    G, F, C, P = int(buf[1]), int(buf[2]), int(buf[3]), int(buf[4])
    o = HEADER
    BF = buf[o:o + F * (F - 1)].reshape((F, F - 1))
    o += F * (F - 1)
    pc = buf[o:o + P].astype(np.int64)
    o += P
    pg = buf[o:o + P].astype(np.int64)
    o += P
    q1 = buf[o:o + P * F].reshape((P, F))
    o += P * F
    qs = buf[o:o + P * F].reshape((P, F))
    o += P * F
    QT2 = buf[o:o + P * F * F].reshape((P * F, F))
    o += P * F * F
    zd = buf[o:o + P * F].reshape((P, F))
    o += P * F
    lam = buf[o:o + P * F].reshape((P, F))
    return G, F, C, BF, pc, pg, q1, qs, QT2, zd, lam


def _logp_c(dim, x_, out_, logp_, data_):
    """nutpie's log-density callback: 0 on success, 3/4 for a non-finite gradient/density, -1 for a bad size."""
    head = numba.carray(data_, (HEADER,))
    buf = numba.carray(data_, (int(head[0]),))
    G, F, C, BF, pc, pg, q1, qs, QT2, zd, lam = _unpack(buf)
    if dim != 3 * G + F + 1:
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    lp, grad = _kernel(x, G, F, C, BF, pc, pg, q1, qs, QT2, zd, lam, head[5], head[6])
    out[:] = grad
    logp_[0] = lp
    if not np.all(np.isfinite(grad)):
        return 3
    if not np.isfinite(lp):
        return 4
    return 0


def _expand_c(dim, n_out, x_, out_, data_):
    """nutpie's expansion callback: the named variables of one draw (order of ``country_expanded_variables``)."""
    head = numba.carray(data_, (HEADER,))
    G, F = int(head[1]), int(head[2])
    if dim != 3 * G + F + 1 or n_out != 3 * G + 2 + 2 * F:
        return -1
    buf = numba.carray(data_, (int(head[0]),))
    BF = buf[HEADER:HEADER + F * (F - 1)].reshape((F, F - 1))
    u = head[7]
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (n_out,))
    o3 = 2 * G + 1
    sf = np.exp(x[2 * G])
    k = 0
    for g in range(G):                      # drift
        out[k] = x[g] * u
        k += 1
    for g in range(G):                      # support
        out[k] = x[G + g] * u
        k += 1
    out[k] = sf * u                         # sd_factor
    k += 1
    for f in range(F):                      # factor_z, then factor_effect
        acc = 0.0
        for j in range(F - 1):
            acc += BF[f, j] * x[o3 + j]
        out[k + f] = acc
        out[k + F + f] = sf * acc * u
    k += 2 * F
    out[k] = np.exp(x[o3 + F - 1]) * u      # sd_country
    k += 1
    for g in range(G):                      # sd_cell
        out[k + g] = np.exp(x[o3 + F + g]) * u
    return 0


_LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double), types.CPointer(types.double),
                        types.CPointer(types.double), types.CPointer(types.double))
_EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double), types.CPointer(types.double),
                          types.CPointer(types.double))


def _build():
    """Compile (or load from numba's on-disk cache) the two C callbacks."""
    return (numba.cfunc(_LOGP_SIG, cache=True, nogil=True, error_model="numpy")(_logp_c),
            numba.cfunc(_EXPAND_SIG, cache=True, nogil=True, error_model="numpy")(_expand_c))


def loaded() -> bool:
    """Whether the C callbacks are already loaded in this process."""
    return bool(_CFUNCS)


def callbacks() -> tuple[Any, Any]:
    """The two C callbacks (compiled on first use; numba caches them on disk)."""
    if not _CFUNCS:
        _CFUNCS.append(_build())
    return _CFUNCS[0]


def compiled_model(density: CountryMarginalDensity, coords: dict) -> Any:
    """``density`` as a nutpie compiled model calling C callbacks, or ``None`` if this nutpie lacks the container.

    Parameters
    ----------
    density : CountryMarginalDensity
    coords : dict
        Labels of the ``group`` and ``factor`` dimensions (others are ignored).
    """
    try:
        from nutpie.compile_pymc import CompiledPyMCModel
        names = {f.name for f in dataclasses.fields(CompiledPyMCModel)}
    except Exception:  # pragma: no cover - a nutpie without the numba container
        return None
    need = {"dims", "compiled_logp_func", "compiled_expand_func", "initial_point_func", "shared_data", "user_data",
            "n_expanded", "shape_info", "logp_func", "expand_func", "_n_dim", "_shapes", "_coords"}
    if not need <= names:
        return None
    logp_c, expand_c = callbacks()
    L = density.layout
    spec = country_expanded_variables(L.G, L.F)
    shape_names = [n for n, _, _ in spec]
    shapes = [tuple(s) for _, s, _ in spec]
    sizes = [int(np.prod(s)) if s else 1 for s in shapes]
    edges = np.cumsum([0, *sizes])
    slices = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    buf = pack(density)
    buf.flags.writeable = False
    return CompiledPyMCModel(
        dims={n: d for n, _, d in spec if d}, compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=density.initial_point, shared_data={}, user_data=buf, n_expanded=int(edges[-1]),
        shape_info=(shape_names, slices, shapes), logp_func=None, expand_func=None, _n_dim=L.ndim,
        _shapes=dict(zip(shape_names, shapes)),
        _coords={k: [str(v) for v in vals] for k, vals in coords.items() if k in ("group", "factor")})
