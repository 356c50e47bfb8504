"""Sample size and power for detecting change and for claim tests.

Three questions a survey team asks before fielding an iteration:

* how many respondents give a ±margin interval for a proportion
  (:func:`sample_size`, Cochran's formula with the finite-population
  correction: 95% / ±5% on a population of 1,100 gives 285, a published CIPS
  target);
* how small a change of a key-factor indicator between two iterations can be
  detected (:func:`mde`, analytic, with standard deviations and design effects
  that may come from a previous survey's indicators);
* how many countries and respondents it takes for each claim test of
  :func:`cips_stats.claims.audit` to tell supported from unsupported factors
  (:func:`simulate_claim`, simulation on :func:`cips_stats.simulate` surveys,
  replications dispatched by joblib to local processes, or as tasks to a Dask cluster).

The formulas, their rounding and the references are in ``methodology/power.md``.

Examples
--------
>>> import cips_stats as cs
>>> int(cs.power.sample_size(margin=0.05, ci=0.95, population=1100))
285
>>> round(cs.power.mde(300, sd=2.0).mde, 3)
0.457
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from .errors import CipsError, CipsWarning, DataError, Problem
from .results import Provenance, Result, resolve_seed

__all__ = ["SampleSize", "MinimumDetectableEffect", "ClaimPower", "sample_size", "mde", "simulate_claim"]


# ----------------------------------------------------------------------------------------- helpers
def _bad(name: str, value: Any, expected: str, rule: str = "argument") -> DataError:
    msg = f"{name}= must be {expected}; got {value!r}."
    return DataError(msg, [Problem(rule, msg, column=name, value=value)])


def _real(name: str, value: Any, low: float, high: float, *, low_open: bool = True, high_open: bool = True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(name, value, f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise _bad(name, value, f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")
    return v


def _count(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise _bad(name, value, f"an integer >= {low}")
    return int(value)


# -------------------------------------------------------------------------------------- sample size
@dataclass(frozen=True, eq=False)
class SampleSize(Result):
    """Respondents needed for a ±``margin`` interval of a proportion; behaves as the integer ``n``.

    Attributes
    ----------
    n : int
        The sample size (rounded up).
    n0 : float
        Infinite-population size before rounding, ``z^2 p (1 - p) deff / margin^2``.
    n_fpc : float
        Size after the finite-population correction, before rounding (``n0`` without a population).
    margin, ci, population, deff, p
        The inputs (``ci`` the confidence level).
    formula : str
        The formula used, in words.
    """

    n: int = 0
    n0: float = float("nan")
    n_fpc: float = float("nan")
    margin: float = 0.05
    ci: float = 0.95
    population: int | None = None
    deff: float = 1.0
    p: float = 0.5
    formula: str = ""

    def __int__(self) -> int:
        return int(self.n)

    def __index__(self) -> int:
        return int(self.n)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, SampleSize):
            return self.n == other.n and self.n0 == other.n0 and self.population == other.population
        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            return self.n == int(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.n)

    def _other(self, other: Any) -> int:
        if isinstance(other, SampleSize):
            return other.n
        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            return int(other)
        raise TypeError(f"cannot compare SampleSize with {type(other).__name__}")

    def __lt__(self, other: Any) -> bool:
        return self.n < self._other(other)

    def __le__(self, other: Any) -> bool:
        return self.n <= self._other(other)

    def __gt__(self, other: Any) -> bool:
        return self.n > self._other(other)

    def __ge__(self, other: Any) -> bool:
        return self.n >= self._other(other)

    def __repr__(self) -> str:
        return f"SampleSize(n={self.n}, n0={self.n0:.2f}, population={self.population})"


def sample_size(margin: float, ci: float = 0.95, population: int | None = None, deff: float = 1.0,
                p: float = 0.5) -> SampleSize:
    """Respondents needed so that a proportion's interval has half-width ``margin`` (Cochran, with FPC).

    Parameters
    ----------
    margin : float
        Half-width of the interval on the proportion scale, in (0, 1) (0.05 for ±5 points).
    ci : float
        Confidence level of the interval (default 0.95; the house name of the
        level, ``confidence`` in Cochran's text).
    population : int, optional
        Size ``N`` of the finite population sampled without replacement
        (e.g. the officials of one administration); ``None`` for an infinite population.
    deff : float
        Design effect (variance inflation of the design), default 1.
    p : float
        Anticipated proportion; 0.5 (default) gives the largest, safe size.

    Returns
    -------
    SampleSize
        Compares equal to, and converts to, the integer ``n``; ``.n0`` and
        ``.n_fpc`` keep the unrounded sizes.

    Raises
    ------
    DataError
        A margin, level, proportion or design effect out of range, or a
        population that is not a positive integer.

    Notes
    -----
    ``n0 = z^2 p (1 - p) deff / margin^2`` with ``z = Phi^-1(1 - (1 - ci)/2)``
    (Cochran 1977, eq. 4.2).  Sampling ``n`` of ``N`` without replacement
    multiplies the variance by ``(N - n) / (N - 1)``; solving
    ``z^2 p (1 - p) deff (N - n) / (n (N - 1)) = margin^2`` gives
    ``n = N n0 / (N - 1 + n0)`` (the exact form; Cochran's approximation
    ``n0 / (1 + (n0 - 1) / N)`` differs by less than one respondent when
    ``N`` exceeds a few hundred).  The result is rounded up and never exceeds
    ``N``.  For 95% and ±5% on ``N = 1,100``: ``n0 = 384.15`` and
    ``n = 284.9``, so 285.

    Examples
    --------
    >>> import cips_stats as cs
    >>> s = cs.power.sample_size(margin=0.05, population=1100)
    >>> s == 285, round(s.n0, 2), round(s.n_fpc, 2)
    (True, 384.15, 284.91)
    >>> int(cs.power.sample_size(margin=0.05))
    385
    """
    margin = _real("margin", margin, 0.0, 1.0)
    confidence = _real("ci", ci, 0.0, 1.0)
    deff = _real("deff", deff, 0.0, math.inf)
    p = _real("p", p, 0.0, 1.0)
    if population is not None:
        population = _count("population", population, 1)
    z = float(ndtri(1.0 - (1.0 - confidence) / 2.0))
    n0 = z * z * p * (1.0 - p) * deff / (margin * margin)
    if population is None:
        n_fpc = n0
        formula = "n = ceil(z^2 p (1 - p) deff / margin^2)"
    else:
        n_fpc = population * n0 / (population - 1.0 + n0) if population > 1 else 1.0
        formula = "n = ceil(N n0 / (N - 1 + n0)), n0 = z^2 p (1 - p) deff / margin^2"
    # a tiny tolerance so that exact integers are not pushed up by floating-point noise
    n = int(math.ceil(n_fpc - 1e-9))
    if population is not None:
        n = min(n, population)
    n = max(n, 1)
    prov = Provenance.build("power.sample_size", options=dict(margin=margin, ci=confidence,
                                                              population=population, deff=deff, p=p))
    return SampleSize(n=n, n0=n0, n_fpc=n_fpc, margin=margin, ci=confidence, population=population,
                      deff=deff, p=p, formula=formula, provenance=prov)


# ------------------------------------------------------------------------------------------- MDE
@dataclass(frozen=True)
class MinimumDetectableEffect(Result):
    """Minimum detectable change of an indicator between two iterations.

    Attributes
    ----------
    mde : float
        The smallest true change detected with probability ``power`` by a
        two-sided test at ``significance`` (indicator units; the median over
        cells when ``table`` is given).
    n_1, n_2 : float
        Respondents per cell in the two iterations.
    sd, deff : float
        Respondent-level standard deviation of the score and design effect used.
    significance, power : float
        The test's level and the power asked for.
    population : int or None
        Finite population of each cell (the FPC is applied when given).
    table : pandas.DataFrame or None
        With ``indicators=``: one row per (group, factor) with ``sd``,
        ``deff``, ``n_1``, ``n_2`` and ``mde``.
    """

    mde: float = float("nan")
    n_1: float = float("nan")
    n_2: float = float("nan")
    sd: float = float("nan")
    deff: float = 1.0
    significance: float = 0.05
    power: float = 0.8
    population: int | None = None
    table: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """The per-(group, factor) table when there is one, else one row with the scalars."""
        if self.table is not None:
            return self.table
        return super().to_frame()


def _fpc(n: np.ndarray, population: int | None) -> np.ndarray:
    if population is None:
        return np.ones_like(n, dtype=float)
    return (population - n) / (population - 1.0) if population > 1 else np.zeros_like(n, dtype=float)


def mde(n_per_iteration: Any, *, sd: float | None = None, deff: float = 1.0, significance: float = 0.05,
        power: float = 0.8, population: int | None = None, indicators: Any = None) -> MinimumDetectableEffect:
    """Minimum detectable change of a key-factor indicator between two independent iterations.

    Parameters
    ----------
    n_per_iteration : int or (int, int)
        Respondents per cell in each iteration (one number for both, or the
        two sizes).  With ``indicators=`` it may be ``None``: the cells'
        observed sizes are used.
    sd : float, optional
        Respondent-level standard deviation of the score (indicator units,
        e.g. about 2 on the 0-10 scale).  Required unless ``indicators=``.
    deff : float
        Design effect of a cell mean (default 1).
    significance : float
        Level of the two-sided test of no change (default 0.05).
    power : float
        Probability of detecting a change of the returned size (default 0.8).
    population : int, optional
        Finite population per cell; the variance is multiplied by
        ``(N - n) / (N - 1)``.  Must be at least the sample size.
    indicators : Indicators, optional
        A previous survey's :func:`cips_stats.estimate.indicators`: ``sd`` and
        ``deff`` are taken from its table per (group, factor) (median over
        cells, ``sd = se sqrt(n / deff)``) and the MDE is given per (group, factor).

    Returns
    -------
    MinimumDetectableEffect
        ``.mde`` (median over the table's rows with ``indicators=``) and ``.table``.

    Raises
    ------
    DataError
        Sizes below 2, a population smaller than the sample, a level or power
        out of (0, 1), neither ``sd`` nor ``indicators``.

    Notes
    -----
    ``MDE = (z_(1 - significance/2) + z_power) * sd * sqrt(deff * (f_1/n_1 + f_2/n_2))``
    with ``f = (N - n)/(N - 1)`` the finite-population factor (1 without
    ``population``): the normal-approximation power of the two-sided z test
    of a difference of two independent means, ignoring the negligible
    rejection probability in the wrong direction (Cohen 1988, ch. 2; Bloom
    1995).  Two iterations are independent samples in CIPS.

    Examples
    --------
    >>> import cips_stats as cs
    >>> r = cs.power.mde((262, 262), sd=2.0, deff=1.5)
    >>> round(r.mde, 2)
    0.6
    """
    significance = _real("significance", significance, 0.0, 1.0)
    power = _real("power", power, 0.0, 1.0)
    deff = _real("deff", deff, 0.0, math.inf)
    if population is not None:
        population = _count("population", population, 2)
    mult = float(ndtri(1.0 - significance / 2.0) + ndtri(power))

    def sizes(value: Any) -> tuple[float, float]:
        vals = list(value) if isinstance(value, (tuple, list, np.ndarray)) else [value, value]
        if len(vals) != 2:
            raise _bad("n_per_iteration", value, "one size or a pair (n_1, n_2)")
        out = []
        for v in vals:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(v)) or float(v) < 2:
                raise _bad("n_per_iteration", value, "sizes of at least 2 respondents")
            if population is not None and float(v) > population:
                msg = (f"population= ({population}) is smaller than the sample size {v!r} of n_per_iteration=; "
                       "a sample drawn without replacement cannot exceed its population.")
                raise DataError(msg, [Problem("population_ge_sample", msg, column="population", value=population)])
            out.append(float(v))
        return out[0], out[1]

    opts = dict(significance=significance, power=power, deff=deff, population=population)
    if indicators is None:
        if sd is None:
            raise _bad("sd", sd, "a positive standard deviation (or pass indicators=)")
        sd = _real("sd", sd, 0.0, math.inf)
        n1, n2 = sizes(n_per_iteration)
        var = deff * (_fpc(np.array(n1), population) / n1 + _fpc(np.array(n2), population) / n2)
        value = float(mult * sd * np.sqrt(var))
        prov = Provenance.build("power.mde", options={**opts, "n_per_iteration": [n1, n2], "sd": sd})
        return MinimumDetectableEffect(mde=value, n_1=n1, n_2=n2, sd=sd, deff=deff, significance=significance,
                                       power=power, population=population, provenance=prov)

    tab = getattr(indicators, "table", None)
    need = {"group", "factor", "se", "n", "deff", "suppressed"}
    if not isinstance(tab, pd.DataFrame) or not need <= set(tab.columns):
        raise _bad("indicators", type(indicators).__name__, "the Indicators result of cs.estimate.indicators()")
    t = tab.loc[~tab["suppressed"].astype(bool) & (tab["n"] > 1) & (tab["deff"] > 0) & (tab["se"] > 0)].copy()
    if t.empty:
        raise DataError("indicators= has no unsuppressed cell with a positive SE and design effect.",
                        [Problem("indicators_cells", "No usable cell.", column="indicators")])
    t["sd"] = t["se"] * np.sqrt(t["n"] / t["deff"])
    g = t.groupby(["group", "factor"], sort=True).agg(sd=("sd", "median"), deff=("deff", "median"),
                                                       n_cells=("sd", "size"), n_median=("n", "median"))
    g = g.reset_index()
    if n_per_iteration is None:
        n1 = n2 = g["n_median"].to_numpy(dtype=float)
        n_label = [None, None]
    else:
        a, b = sizes(n_per_iteration)
        n1 = np.full(len(g), a)
        n2 = np.full(len(g), b)
        n_label = [a, b]
    if population is not None and (np.maximum(n1, n2) > population).any():
        msg = f"population= ({population}) is smaller than the cells' sample sizes."
        raise DataError(msg, [Problem("population_ge_sample", msg, column="population", value=population)])
    var = g["deff"].to_numpy() * (_fpc(n1, population) / n1 + _fpc(n2, population) / n2)
    g["n_1"] = n1
    g["n_2"] = n2
    g["mde"] = mult * g["sd"].to_numpy() * np.sqrt(var)
    g = g[["group", "factor", "n_cells", "sd", "deff", "n_1", "n_2", "mde"]]
    prov = Provenance.build("power.mde", data_fingerprint=getattr(getattr(indicators, "provenance", None),
                                                                  "data_fingerprint", None),
                            options={**opts, "n_per_iteration": n_label, "sd": "from indicators"})
    return MinimumDetectableEffect(mde=float(g["mde"].median()), n_1=float(np.median(n1)), n_2=float(np.median(n2)),
                                   sd=float(g["sd"].median()), deff=float(g["deff"].median()),
                                   significance=significance, power=power, population=population, table=g,
                                   provenance=prov)


# ------------------------------------------------------------------------------ simulation power
@dataclass(frozen=True)
class ClaimPower(Result):
    """Simulation-based power (or type I error) of each claim test.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per design point, group, rule and test: the design columns
        (``n_countries``, ``n_officials``, ``n_private``, ``support_effect``,
        ``selection``), ``group``, ``rule``, ``test``, ``rejection_rate``
        (share of replications with ``p_value < significance``), its Monte
        Carlo ``se``, ``ci_low``/``ci_high`` (Wilson), ``n_sim`` (valid
        replications), ``mean_estimate``.
    replications : pandas.DataFrame
        One row per replication, group, rule and test: the design columns,
        ``replication``, ``seed``, ``group``, ``rule``, ``test``,
        ``estimate``, ``p_value``.
    significance : float
        The level.
    n_sim : int
        Replications per design point.
    backend : str
        Where the replications ran (``loky``, ``threading``, ``sequential``, ``dask``...).
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    replications: pd.DataFrame = field(default_factory=pd.DataFrame)
    significance: float = 0.05
    n_sim: int = 0
    backend: str = "loky"

    def to_frame(self) -> pd.DataFrame:
        """The rejection-rate table."""
        return self.table

    def rate(self, test: str, *, group: str | None = None, rule: str = "point") -> pd.Series:
        """Rejection rates of one test by design point (optionally one group)."""
        t = self.table[(self.table["test"] == test) & (self.table["rule"] == rule)]
        if group is not None:
            t = t[t["group"] == group]
        return t.set_index([c for c in _DESIGN if c in t.columns] + ["group"])["rejection_rate"]


_DESIGN = ["n_countries", "n_officials", "n_private", "support_effect", "selection"]


def _as_list(name: str, value: Any) -> list:
    vals = list(value) if isinstance(value, (list, tuple, np.ndarray, pd.Series)) else [value]
    if not vals:
        raise _bad(name, value, "a value or a non-empty sequence of values")
    return vals


def one_replication(seed: int, design: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One replication of :func:`simulate_claim`: simulate, estimate, difference, audit; tidy p-values.

    Module-level so that loky processes and Dask workers can unpickle it.  The package's
    warnings (:class:`~cips_stats.errors.CipsWarning`, e.g. small cells of a small simulated design)
    are not repeated for every replication.

    Parameters
    ----------
    seed : int
        Seed of the survey, its bootstrap and the permutations.
    design : dict
        ``n_countries``, ``n_officials``, ``n_private``, ``support_effect``, ``selection``.
    settings : dict
        ``n_boot``, ``n_perm``, ``rules``, ``tests``, ``significance``, ``simulate`` (more options).

    Returns
    -------
    list of dict
        One record per group, rule and test.
    """
    from . import change as _change
    from . import claims as _claims
    from .estimate import indicators as _indicators
    from .simulate import simulate as _simulate

    opts = dict(settings.get("simulate") or {})
    if opts.get("instrument") is None:
        # the default instrument is parsed from YAML once per worker process, not once per replication
        opts["instrument"] = _default_instrument(opts.pop("points", None))
    with warnings.catch_warnings():
        # a study's surveys are drawn, not collected: the conditions of each (small cells...) stay on its
        # results' flags instead of repeating one warning per replication
        warnings.simplefilter("ignore", CipsWarning)
        return _replicate(seed, design, settings, opts, _simulate, _indicators, _change, _claims)


def _replicate(seed: int, design: dict[str, Any], settings: dict[str, Any], opts: dict[str, Any], _simulate: Any,
               _indicators: Any, _change: Any, _claims: Any) -> list[dict[str, Any]]:
    sim = _simulate(seed=int(seed), n_countries=int(design["n_countries"]), n_repeat=int(design["n_countries"]),
                    n_officials=int(design["n_officials"]), n_private=int(design["n_private"]),
                    support_effect=float(design["support_effect"]), selection=str(design["selection"]), **opts)
    ind = _indicators(sim.data, n_boot=int(settings["n_boot"]), seed=int(seed))
    cc = _change.cell_changes(ind, significance=float(settings["significance"]))
    supported = sim.truth["supported"]
    try:
        aud = _claims.audit(cc, supported=supported, rules=tuple(settings["rules"]),
                            tests=tuple(settings["tests"]), n_perm=int(settings["n_perm"]),
                            n_boot=int(settings.get("n_boot_share", 200)), n_null=200,
                            significance=float(settings["significance"]), seed=int(seed))
    except CipsError as exc:   # a replicate the audit refuses (e.g. no unsupported cell) is recorded, not fatal
        return [{**design, "seed": int(seed), "group": None, "rule": None, "test": "error", "estimate": np.nan,
                 "p_value": np.nan, "error": f"{type(exc).__name__}: {exc}"}]
    tests = aud.tests
    out = []
    for rec in tests[["group", "rule", "test", "estimate", "p_value"]].to_dict("records"):
        out.append({**design, "seed": int(seed), **rec})
    return out


@functools.lru_cache(maxsize=4)
def _default_instrument(points: int | None) -> Any:
    from .instrument import Instrument

    return Instrument.default(points=5 if points is None else points)


def _wilson(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    z = float(ndtri(1.0 - (1.0 - level) / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    low = np.where(k == 0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(k == n, 1.0, np.minimum(1.0, centre + half))
    return low, high


def _on_dask(client: Any, func: Any, jobs: Sequence[tuple]) -> list:
    """Run every job as a task of the Dask cluster behind ``client``, results in the order of ``jobs``.

    The client's own futures rather than joblib's Dask backend: joblib runs a cluster with a single
    worker thread in the calling process (its ``n_jobs == 1`` shortcut), not on the cluster.
    """
    if not jobs:
        return []
    futures = client.map(func, *[list(col) for col in zip(*jobs)], pure=False)
    return client.gather(futures)


def _run_parallel(func: Any, jobs: Sequence[tuple], backend: Any, n_jobs: int | None) -> list:
    import joblib

    if n_jobs is None:
        n_jobs = -1
    calls = (joblib.delayed(func)(*args) for args in jobs)
    if backend is None or backend in ("loky", "threading", "sequential", "multiprocessing"):
        name = backend or "loky"
        if name == "sequential":
            n_jobs = 1
        with joblib.parallel_config(backend=name, n_jobs=n_jobs):
            return joblib.Parallel()(calls)
    if backend == "dask":
        try:
            from distributed import get_client
        except ImportError as exc:  # pragma: no cover - distributed is a declared dependency here
            raise CipsError("backend='dask' needs the 'distributed' package.") from exc
        try:
            client = get_client()
            own = None
        except ValueError:
            from distributed import Client, LocalCluster

            workers = (os.cpu_count() or 1) if n_jobs in (None, -1) else max(1, int(n_jobs))
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            own = (client, cluster)
        try:
            return _on_dask(client, func, jobs)
        finally:
            if own is not None:
                own[0].close()
                own[1].close()
    # a dask.distributed.Client (or anything with a scheduler) given directly
    if hasattr(backend, "scheduler") and hasattr(backend, "submit"):
        return _on_dask(backend, func, jobs)
    raise _bad("backend", backend, "'loky', 'threading', 'sequential', 'dask' or a dask.distributed.Client")


def simulate_claim(*, n_countries: Any = 17, n_officials: Any = 262, n_private: Any = 202,
                   support_effect: Any = 0.25, selection: Any = "random", n_sim: int = 200,
                   significance: float = 0.05, rules: Sequence[str] = ("point", "fdr"),
                   tests: Sequence[str] = ("permutation", "cmh", "gee", "did", "ancova"), n_perm: int = 2000,
                   n_boot: int = 200, seed: int | None = None, backend: Any = "loky", n_jobs: int | None = None,
                   simulate_options: dict[str, Any] | None = None) -> ClaimPower:
    """Power (or type I error) of the claim tests, by simulating CIPS surveys with a known support effect.

    Every replication simulates a survey with :func:`cips_stats.simulate`
    (all ``n_countries`` surveyed twice), estimates its indicators with
    ``n_boot`` bootstrap replicates, differences them with
    :func:`cips_stats.change.cell_changes` and runs
    :func:`cips_stats.claims.audit` against the true support table; the
    rejection rate of each test at ``significance`` is its power (or, with
    ``support_effect=0``, its type I error).

    Parameters
    ----------
    n_countries, n_officials, n_private, support_effect, selection : value or sequence
        The design; sequences span a grid (every combination is a design point).
        ``support_effect`` is in latent SD units (:func:`cips_stats.simulate`);
        ``selection="baseline"`` supports each country's lowest factors
        (regression to the mean).
    n_sim : int
        Replications per design point.
    significance : float
        Level of the tests.
    rules, tests : sequences
        Passed to :func:`cips_stats.claims.audit`.
    n_perm, n_boot : int
        Permutations of each audit; bootstrap replicates of each survey's indicators.
    seed : int, optional
        Seeds of the replications are spawned from it (``None`` draws one, recorded).
    backend : {"loky", "threading", "sequential", "dask"} or dask.distributed.Client
        Where the replications run: local processes (default), threads or one
        process through :mod:`joblib`, or a Dask cluster, one task per
        replication submitted through the client: ``"dask"`` uses the current
        ``distributed`` client (or starts a local cluster of ``n_jobs`` workers
        for the call), a ``Client`` uses that client (even a single-worker
        cluster does the work, not the calling process).  The results do not
        depend on it.
    n_jobs : int, optional
        Local workers (default all cores; ignored by Dask, which uses its workers).
    simulate_options : dict, optional
        More options of :func:`cips_stats.simulate` (``drift``, ``support_share``...).

    Returns
    -------
    ClaimPower
        ``.table`` of rejection rates with Monte Carlo SEs and Wilson
        intervals; ``.replications`` with every p-value.

    Examples
    --------
    >>> import cips_stats as cs
    >>> pw = cs.power.simulate_claim(n_countries=4, n_officials=40, n_private=40, n_sim=2, n_boot=50,
    ...                              n_perm=200, tests=("permutation",), rules=("point",), seed=1,
    ...                              backend="sequential")
    >>> sorted(pw.table["group"].unique())
    ['officials', 'private']
    """
    significance = _real("significance", significance, 0.0, 1.0)
    n_sim = _count("n_sim", n_sim, 1)
    n_perm = _count("n_perm", n_perm, 1)
    n_boot = _count("n_boot", n_boot, 2)
    if n_jobs is not None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
            raise _bad("n_jobs", n_jobs, "a non-zero integer (negative counts back from all cores) or None")
    seed = resolve_seed(seed)
    grid = {"n_countries": [_count("n_countries", v, 2) for v in _as_list("n_countries", n_countries)],
            "n_officials": [_count("n_officials", v, 2) for v in _as_list("n_officials", n_officials)],
            "n_private": [_count("n_private", v, 2) for v in _as_list("n_private", n_private)],
            "support_effect": [_real("support_effect", v, -5.0, 5.0, low_open=False, high_open=False)
                               for v in _as_list("support_effect", support_effect)],
            "selection": _as_list("selection", selection)}
    for s in grid["selection"]:
        if s not in ("random", "baseline"):
            raise _bad("selection", s, "'random' or 'baseline'")
    points = [dict(zip(grid, combo)) for combo in _product(*grid.values())]
    settings = {"n_boot": n_boot, "n_perm": n_perm, "rules": list(rules), "tests": list(tests),
                "significance": significance, "simulate": dict(simulate_options or {})}
    seeds = np.random.SeedSequence(seed).generate_state(n_sim * len(points), dtype=np.uint32)
    jobs = []
    for i, pt in enumerate(points):
        for r in range(n_sim):
            jobs.append((int(seeds[i * n_sim + r]), pt, settings))
    with warnings.catch_warnings():
        # also here, in the calling thread: the threading backend's workers share its warning filters, and
        # catch_warnings in concurrent threads would restore each other's filters
        warnings.simplefilter("ignore", CipsWarning)
        records = _run_parallel(one_replication, jobs, backend, n_jobs)
    reps = pd.DataFrame([rec for recs in records for rec in recs])
    rep_id = np.concatenate([[j] * len(recs) for j, recs in enumerate(records)]) if records else []
    reps.insert(0, "replication", np.asarray(rep_id, dtype=int) % n_sim)
    keys = _DESIGN + ["group", "rule", "test"]
    valid = reps.dropna(subset=["p_value"])
    agg = valid.assign(reject=(valid["p_value"] < significance).astype(float)).groupby(keys, sort=False).agg(
        rejections=("reject", "sum"), n_sim=("reject", "size"), mean_estimate=("estimate", "mean"))
    agg = agg.reset_index()
    k = agg["rejections"].to_numpy(dtype=float)
    n = agg["n_sim"].to_numpy(dtype=float)
    agg["rejection_rate"] = k / n
    agg["se"] = np.sqrt(agg["rejection_rate"] * (1 - agg["rejection_rate"]) / n)
    agg["ci_low"], agg["ci_high"] = _wilson(k, n)
    table = agg[keys + ["rejection_rate", "se", "ci_low", "ci_high", "n_sim", "mean_estimate"]]
    name = backend if isinstance(backend, str) else f"dask:{type(backend).__name__}"
    prov = Provenance.build("power.simulate_claim", seed=seed,
                            options={**{k2: [_py(x) for x in v] for k2, v in grid.items()}, "n_sim": n_sim,
                                     "significance": significance, "rules": list(rules), "tests": list(tests),
                                     "n_perm": n_perm, "n_boot": n_boot, "backend": name,
                                     "simulate_options": dict(simulate_options or {})})
    return ClaimPower(table=table, replications=reps, significance=significance, n_sim=n_sim, backend=name,
                      provenance=prov)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _product(*lists: Iterable) -> list[tuple]:
    import itertools

    return list(itertools.product(*lists))
