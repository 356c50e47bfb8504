"""Running PyMC models with cached compiled functions, convergence diagnostics and gates (shared by the change models).

A model is described by a *builder* (a function returning a ``pm.Model`` whose
data are ``pm.Data`` containers) and a *key* that determines its structure
(shapes and options).  The built model — and, for nutpie, the compiled model —
is cached per key, so a second fit of the same shape only swaps the data in:
no graph rewriting, no compilation.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections import OrderedDict
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConvergenceWarning, DataError, Flag, ModelError, Problem
from ..thresholds import ESS_MIN, RHAT_MAX

__all__ = ["SAMPLERS", "sample", "sample_density", "per_variable", "diagnostics", "gate", "check_sampling_args"]

SAMPLERS = ("pymc", "nutpie", "numpyro")
_CACHE_SIZE = 16
#: NUTS target acceptance rate (0.9 rather than 0.8: smaller steps near the variance components' funnels).
TARGET_ACCEPT = 0.9
_MODELS: "OrderedDict[tuple, Any]" = OrderedDict()
_COMPILED: "OrderedDict[tuple, Any]" = OrderedDict()


def _remember(cache: OrderedDict, key: tuple, value: Any) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def check_sampling_args(sampler: Any, draws: Any, tune: Any, chains: Any) -> None:
    """DataError for a sampler outside :data:`SAMPLERS` or non-positive draws/tune/chains."""
    if sampler not in SAMPLERS:
        msg = f"sampler= must be one of {SAMPLERS}; got {sampler!r}."
        raise DataError(msg, [Problem("argument", msg, column="sampler", value=sampler)])
    for name, v, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            msg = f"{name}= must be an integer >= {low}; got {v!r}."
            raise DataError(msg, [Problem("argument", msg, column=name, value=v)])


def _model(key: tuple, build: Callable[[], Any]) -> Any:
    m = _MODELS.get(key)
    if m is None:
        m = _remember(_MODELS, key, build())
    else:
        _MODELS.move_to_end(key)
    return m


def sample(key: tuple, build: Callable[[], Any], data: Mapping[str, np.ndarray], *, sampler: str, draws: int,
           tune: int, chains: int, seed: int) -> tuple[Any, dict[str, float]]:
    """Sample the model of ``key`` (built by ``build`` when not cached) with ``data`` swapped in.

    Returns
    -------
    (idata, timing)
        ArviZ InferenceData (posterior, sample_stats, observed_data when the
        sampler gives it) and ``{"compile_s", "sampling_s", "cached"}``.
    """
    import logging

    import pymc as pm

    for name in ("pymc", "pymc.sampling.mcmc", "pymc.stats.convergence"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t0 = time.perf_counter()
    cached = key in _MODELS
    model = _model(key, build)
    cores = max(1, min(int(chains), os.cpu_count() or 1))
    data = {k: np.asarray(v) for k, v in data.items()}
    if sampler == "nutpie":
        import nutpie

        compiled = _COMPILED.get(key)
        cached = compiled is not None
        if compiled is None:
            with model:
                pm.set_data(data)
            compiled = _remember(_COMPILED, key, nutpie.compile_pymc_model(model))
        else:
            _COMPILED.move_to_end(key)
        compiled = compiled.with_data(**data)
        t1 = time.perf_counter()
        idata = nutpie.sample(compiled, draws=int(draws), tune=int(tune), chains=int(chains), seed=int(seed),
                              cores=cores, progress_bar=False, target_accept=TARGET_ACCEPT)
        t2 = time.perf_counter()
        internal = [v for v in idata.posterior.data_vars if str(v).endswith("__")]
        if internal:  # nutpie also stores the unconstrained values (tau_log__): not part of the posterior
            idata.posterior = idata.posterior.drop_vars(internal)
    else:
        with model:
            pm.set_data(data)
        t1 = time.perf_counter()
        kwargs: dict[str, Any] = dict(draws=int(draws), tune=int(tune), chains=int(chains), random_seed=int(seed),
                                      progressbar=False, compute_convergence_checks=False, model=model,
                                      target_accept=TARGET_ACCEPT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            if sampler == "numpyro":
                idata = pm.sample(nuts_sampler="numpyro", chain_method="parallel" if cores > 1 else "sequential",
                                  **kwargs)
            else:
                idata = pm.sample(cores=cores, **kwargs)
        t2 = time.perf_counter()
    return idata, {"compile_s": t1 - t0, "sampling_s": t2 - t1, "cached": bool(cached)}


def sample_density(model: Any, *, draws: int, tune: int, chains: int, seed: int,
                   setup_s: float = 0.0, cached: bool = False,
                   target_accept: float = TARGET_ACCEPT) -> tuple[Any, dict[str, Any]]:
    """Sample a hand-written density (a nutpie C-callback or Python-function model) with nutpie's NUTS.

    Nothing is compiled here: ``setup_s`` (the time it took to build the
    density, loading its numba code) is reported as ``compile_s``, and
    ``cached`` says whether that code was already loaded in this process;
    ``backend`` in the timing is ``"c-callback"`` or ``"python"``.
    """
    import nutpie

    cores = max(1, min(int(chains), os.cpu_count() or 1))
    t1 = time.perf_counter()
    idata = nutpie.sample(model, draws=int(draws), tune=int(tune), chains=int(chains), seed=int(seed), cores=cores,
                          progress_bar=False, target_accept=float(target_accept))
    t2 = time.perf_counter()
    backend = "python" if type(model).__name__ == "PyFuncModel" else "c-callback"
    return idata, {"compile_s": float(setup_s), "sampling_s": t2 - t1, "cached": bool(cached), "backend": backend}


def per_variable(idata: Any, var_names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """R-hat, bulk ESS and tail ESS of every element of every variable (flattened in C order).

    Vectorised over all variables at once (:mod:`._diagnostics`, equal to ArviZ's
    ``az.rhat`` and ``az.ess(method="bulk"|"tail")``).
    """
    from ._diagnostics import summary

    post = idata.posterior
    blocks, sizes = [], []
    for name in var_names:
        v = np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)
        v = v.reshape(v.shape[0], v.shape[1], -1)
        blocks.append(v)
        sizes.append(v.shape[2])
    rh, eb, et = summary(np.concatenate(blocks, axis=2))
    edges = np.cumsum([0, *sizes])
    return {name: (rh[a:b], eb[a:b], et[a:b]) for name, a, b in zip(var_names, edges[:-1], edges[1:])}


def diagnostics(idata: Any, var_names: list[str], timing: Mapping[str, float],
                values: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None) -> dict[str, Any]:
    """Largest R-hat, smallest bulk and tail ESS (over ``var_names``), divergences, timings.

    ``values`` (from :func:`per_variable`) saves recomputing them.
    """
    vals = per_variable(idata, var_names) if values is None else values

    def _extreme(k: int, largest: bool) -> tuple[float, str]:
        best, where = math.nan, ""
        for name in var_names:
            v = vals[name][k]
            v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            x = float(v.max() if largest else v.min())
            if not math.isfinite(best) or (x > best if largest else x < best):
                best, where = x, str(name)
        return best, where

    r, r_where = _extreme(0, True)
    eb, eb_where = _extreme(1, False)
    et, et_where = _extreme(2, False)
    div = 0
    st = getattr(idata, "sample_stats", None)
    if st is not None and "diverging" in st:
        div = int(np.asarray(st["diverging"].values).sum())
    n_chains = int(idata.posterior.sizes["chain"])
    n_draws = int(idata.posterior.sizes["draw"])
    sampling_s = float(timing.get("sampling_s", math.nan))
    return {"r_hat_max": r, "r_hat_where": r_where, "ess_bulk_min": eb, "ess_bulk_where": eb_where,
            "ess_tail_min": et, "ess_tail_where": et_where, "divergences": div, "chains": n_chains,
            "draws": n_draws, "compile_s": float(timing.get("compile_s", math.nan)), "sampling_s": sampling_s,
            "cached": bool(timing.get("cached", False)), "backend": str(timing.get("backend", "")),
            "ess_bulk_per_s": eb / sampling_s if sampling_s and math.isfinite(eb) else math.nan}


def gate(diag: dict[str, Any], *, strict: bool, what: str) -> tuple[bool, tuple[Flag, ...]]:
    """Apply the gates (R-hat <= 1.01, bulk and tail ESS >= 400, no divergence).

    Returns ``(reliable, flags)``; with ``strict=True`` a failed gate raises
    :class:`ModelError` with the diagnostics and a remedy, otherwise it warns
    (:class:`ConvergenceWarning`) and the flags go on the result.
    """
    flags = []
    r = diag["r_hat_max"]
    if not (math.isfinite(r) and r <= RHAT_MAX):
        flags.append(Flag("r_hat", f"{what}: max R-hat {r:.4f} ({diag['r_hat_where']}) exceeds {RHAT_MAX}.",
                          "error", {"parameter": diag["r_hat_where"], "value": r}))
    for kind in ("bulk", "tail"):
        e = diag[f"ess_{kind}_min"]
        if not (math.isfinite(e) and e >= ESS_MIN):
            flags.append(Flag(f"low_ess_{kind}", f"{what}: min {kind} ESS {e:.0f} ({diag[f'ess_{kind}_where']}) is "
                              f"below {ESS_MIN}.", "error", {"parameter": diag[f"ess_{kind}_where"], "value": e}))
    if diag["divergences"] > 0:
        flags.append(Flag("divergences", f"{what}: {diag['divergences']} divergent transition(s): the posterior "
                          "was not fully explored.", "error", {"value": diag["divergences"]}))
    if not flags:
        return True, ()
    remedy = ("Remedy: increase tune= and draws= (e.g. tune=2000, draws=2000), or chains=; divergences on a "
              "model this small usually mean a variance component near zero — check the cells' SEs (a cell with a "
              "tiny SE dominates) and the data; strict=False returns the result marked unreliable.")
    if strict:
        raise ModelError(f"{what} failed its convergence gates: " + " ".join(f.message for f in flags) + " " + remedy,
                         diagnostics=diag)
    for f in flags:
        warnings.warn(f.message, ConvergenceWarning, stacklevel=4)
    return False, tuple(flags) + (Flag("unreliable", f"{what} is unreliable: {remedy}", "error"),)
