"""Synthetic CIPS surveys with known truth.

:func:`simulate` draws a complete CIPS-like survey — countries, iterations,
officials and private-sector respondents with their demographics, survey
weights and ordinal item answers with "don't know", "refused" and blank
answers — from an explicit generating model, and returns beside it every true
parameter, including the population value of each cell's key-factor indicator
computed analytically from the model.  It is the test bed of every estimator in
the package: an estimator is right when it recovers ``truth``.

The generating model and how the truth is computed are documented in
``methodology/synthetic-data.md``.

Examples
--------
>>> import cips_stats as cs
>>> sim = cs.simulate(seed=3, n_countries=2, n_repeat=1, n_officials=30, n_private=20)
>>> sorted(sim.truth)[:4]
['change', 'composition', 'countries', 'demographic_effects']
>>> sim.raw.shape[0] == len(sim.data.frame)
True
"""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from .errors import DataError, Problem
from .instrument import Instrument
from .results import Provenance, fingerprint_frame, resolve_seed

__all__ = ["Simulation", "simulate", "DEFAULTS"]

#: Default options of :func:`simulate` (the published CIPS scale).
DEFAULTS: dict[str, Any] = {
    "n_countries": 25,
    "n_repeat": 17,
    "n_officials": 262,
    "n_private": 202,
    "selection": "random",
    "support_share": 0.3,
    "support_effect": 0.25,
    "drift": 0.05,
    "country_sd": 0.35,
    "country_factor_sd": 0.20,
    "transient_sd": 0.15,
    "group_cell_sd": 0.05,
    "size_sd": 0.45,
    "jump_share": 0.25,
    "item_nonresponse": 0.03,
    "dont_know": 0.03,
    "refused": 0.005,
}

# Base target proportions of the answer codes of an item at the latent mean 0 (favourable direction).
_BASE_PROPORTIONS = {
    4: (0.10, 0.22, 0.45, 0.23),
    5: (0.08, 0.15, 0.20, 0.35, 0.22),
}

# Demographic effects on the latent key factors (latent SD units, reference category 0),
# by (group, demographic) -> {category: effect}. Unknown demographics get random effects.
_DEMO_EFFECTS: dict[tuple[str, str], dict[str, float]] = {
    ("officials", "gender"): {"female": -0.05, "male": 0.0},
    ("officials", "experience"): {"0-4": 0.0, "5-14": -0.10, "15+": -0.15},
    ("officials", "leadership"): {"no": 0.0, "yes": 0.35},
    ("private", "gender"): {"female": 0.0, "male": 0.0},
    ("private", "experience"): {"0-4": 0.0, "5-14": 0.05, "15+": 0.10},
    ("private", "business_type"): {"broker": 0.15, "trader": 0.0, "carrier": -0.10, "other": -0.05},
}

# Relative response propensities (differential non-response), by (group, demographic).
# Only these variables drive response, and they are the weighting-class variables, so
# post-stratified weights remove the non-response bias (missing at random given the classes).
_PROPENSITY: dict[tuple[str, str], dict[str, float]] = {
    ("officials", "gender"): {"female": 1.25, "male": 1.0},
    ("officials", "leadership"): {"no": 1.0, "yes": 2.2},
    ("private", "business_type"): {"broker": 0.50, "trader": 0.25, "carrier": 0.15, "other": 0.20},
}
_BASE_PROPENSITY = {"officials": 0.30, "private": 1.0}

# Population margins: mean shares by (group, demographic); Dirichlet around them per country.
_MARGIN_MEANS: dict[tuple[str, str], dict[str, float]] = {
    ("officials", "gender"): {"female": 0.35, "male": 0.65},
    ("officials", "experience"): {"0-4": 0.25, "5-14": 0.40, "15+": 0.35},
    ("officials", "leadership"): {"no": 0.85, "yes": 0.15},
    ("private", "gender"): {"female": 0.30, "male": 0.70},
    ("private", "experience"): {"0-4": 0.30, "5-14": 0.40, "15+": 0.30},
    ("private", "business_type"): {"broker": 0.30, "trader": 0.35, "carrier": 0.15, "other": 0.20},
}
_MARGIN_CONCENTRATION = 25.0      # across countries
_ITERATION_CONCENTRATION = 300.0  # iteration 2 around iteration 1
_FEMALE_LEADER_RATIO = 0.6        # P(leader | female) = 0.6 * P(leader | male)
_JUMP_FACTOR = 2.2                # leadership share multiplier in "jump" countries at iteration 2


@dataclass(frozen=True)
class Simulation:
    """A simulated CIPS survey with its true parameters.

    Parameters
    ----------
    data : SurveyData
        The survey as :func:`cips_stats.load` returns it from ``raw``.
    raw : pandas.DataFrame
        The raw respondent table as collected: answer codes ``1..points``,
        ``8`` don't know, ``9`` refused, blank (NaN) not answered or not asked,
        reverse-keyed items *not* reversed, survey ``weight`` column.
    truth : mapping of str to pandas.DataFrame
        Tidy tables of every true parameter (see :func:`simulate`).
    instrument : Instrument
        The instrument of the survey.
    seed : int
        Seed of ``numpy.random.default_rng``.
    options : dict
        Every option the survey was drawn with (defaults included).
    provenance : Provenance
        Method, seed, options and the fingerprint of ``raw``.
    """

    data: Any
    raw: pd.DataFrame
    truth: Mapping[str, pd.DataFrame]
    instrument: Instrument
    seed: int
    options: dict = field(default_factory=dict)
    provenance: Provenance | None = None

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the raw respondent table (identical for identical seeds and options)."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            fp = fingerprint_frame(self.raw)
            object.__setattr__(self, "_fingerprint", fp)
        return fp

    @property
    def factor_correlation(self) -> pd.DataFrame:
        """The true correlation matrix of the latent key factors, as a square DataFrame."""
        long = self.truth["factor_correlation"]
        return long.pivot(index="factor_a", columns="factor_b", values="correlation").loc[
            list(dict.fromkeys(long["factor_a"])), list(dict.fromkeys(long["factor_a"]))]

    @property
    def parameters(self) -> dict[str, Any]:
        """The scalar generating parameters as a dictionary."""
        p = self.truth["parameters"]
        return dict(zip(p["parameter"], p["value"]))

    def __repr__(self) -> str:
        r = self.raw
        n_it = r.groupby("group").size().to_dict()
        return (f"Simulation(seed={self.seed}, countries={r['country'].nunique()}, "
                f"respondents={len(r)} {n_it}, truth={sorted(self.truth)})")


def _arg_error(name: str, value: Any, expected: str) -> DataError:
    msg = f"The {name}= argument of simulate() must be {expected}; got {value!r}."
    return DataError(msg, [Problem(rule="simulate_argument", message=msg, column=name, value=value)])


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise _arg_error(name, value, f"an integer >= {low}")
    return int(value)


def _check_rate(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _arg_error(name, value, f"a number in [{low}, {high}]") from None
    if not (low <= v <= high):
        raise _arg_error(name, value, f"a number in [{low}, {high}]")
    return v


def _thresholds(rng: np.random.Generator, n_items: int, points: int) -> np.ndarray:
    """Ordered item thresholds (n_items, points-1) around the probits of the base proportions."""
    base = _BASE_PROPORTIONS.get(points)
    if base is None:
        base = tuple(np.full(points, 1.0 / points))
    cum = np.cumsum(base)[:-1]
    tau0 = ndtri(cum)
    shift = rng.normal(0.0, 0.20, size=(n_items, 1))
    jitter = rng.normal(0.0, 0.08, size=(n_items, points - 1))
    tau = np.sort(tau0[None, :] + shift + jitter, axis=1)
    # keep categories distinguishable
    for k in range(1, points - 1):
        tau[:, k] = np.maximum(tau[:, k], tau[:, k - 1] + 0.15)
    return tau


def _dirichlet_rows(rng: np.random.Generator, mean: np.ndarray, concentration: float, n: int) -> np.ndarray:
    g = rng.gamma(shape=np.asarray(mean) * concentration, size=(n, len(mean)))
    return g / g.sum(axis=1, keepdims=True)


def simulate(
    seed: int | None = None,
    *,
    n_countries: int = DEFAULTS["n_countries"],
    n_repeat: int = DEFAULTS["n_repeat"],
    n_officials: int = DEFAULTS["n_officials"],
    n_private: int = DEFAULTS["n_private"],
    instrument: Instrument | None = None,
    points: int | None = None,
    selection: str = DEFAULTS["selection"],
    support_share: float = DEFAULTS["support_share"],
    support_effect: float = DEFAULTS["support_effect"],
    drift: float = DEFAULTS["drift"],
    country_sd: float = DEFAULTS["country_sd"],
    country_factor_sd: float = DEFAULTS["country_factor_sd"],
    transient_sd: float = DEFAULTS["transient_sd"],
    group_cell_sd: float = DEFAULTS["group_cell_sd"],
    size_sd: float = DEFAULTS["size_sd"],
    jump_share: float = DEFAULTS["jump_share"],
    item_nonresponse: float = DEFAULTS["item_nonresponse"],
    dont_know: float = DEFAULTS["dont_know"],
    refused: float = DEFAULTS["refused"],
    small_cells: bool = False,
) -> Simulation:
    """Simulate a CIPS-like survey from a known generating model.

    Parameters
    ----------
    seed : int or None
        Seed of ``numpy.random.default_rng``; the same seed and options give
        the same survey bit for bit.  ``None`` (the default) draws a seed from
        entropy; it is recorded in ``.seed`` and the provenance either way.
    n_countries : int
        Countries surveyed in iteration 1 (the published CIPS: 25).
    n_repeat : int
        Of those, countries surveyed again in iteration 2 (published: 17).
    n_officials, n_private : int
        Mean respondents per country-iteration in the first and second
        respondent group of the instrument (defaults give about 11,000
        officials and 8,500 private-sector respondents at the default scale).
        Further groups of a custom instrument get ``n_private``.
    instrument : Instrument, optional
        The instrument; ``Instrument.default(points)`` when omitted.
    points : {4, 5}, optional
        Points of the answer scale of the default instrument (5 when omitted).
    selection : {"random", "baseline"}
        How supported (country, factor) pairs are chosen: at random, or the
        factors with the lowest iteration-1 latent mean in each country (so that
        regression to the mean can be studied).
    support_share : float
        Share of each country's key factors that are supported.
    support_effect : float
        True extra latent change of supported pairs (latent SD units).
    drift : float
        Common latent change of every cell between iterations.
    country_sd, country_factor_sd, transient_sd, group_cell_sd : float
        SDs of the country level, the persistent country-factor deviation, the
        transient country-factor-iteration shock and the group-specific cell
        deviation of the latent means.
    size_sd : float
        Log-scale SD of the per-cell sample sizes.
    jump_share : float
        Share of repeated countries whose officials' leadership share jumps
        (x2.2) between iterations.
    item_nonresponse, dont_know, refused : float
        Mean per-item probabilities of a blank answer, code 8 and code 9.
    small_cells : bool
        Plant cells and categories too small to publish, for disclosure
        control demos and tests (default False: the survey is unchanged).
        Of the countries surveyed in both iterations (in code order), the
        first keeps 3 private-sector respondents in iteration 2, the second 7
        officials in iteration 1, and the last only 2 officials of the first
        gender category in iteration 1 (the other respondents of those cells
        are dropped, so the sample is no longer the generator's random
        sample there; ``truth["sample_sizes"]`` is updated, and
        ``truth["small_cells"]`` lists what was planted).

    Returns
    -------
    Simulation
        ``.raw`` (raw respondent table), ``.data`` (``cs.load(raw)``),
        ``.truth`` with the tables ``indicators`` and ``favourable`` (country,
        iteration, group, factor, value), ``change`` (country, factor, group,
        change), ``supported`` (country, factor, supported, effect),
        ``latent_means``, ``loadings``, ``thresholds``, ``factor_correlation``,
        ``demographic_effects``, ``composition``, ``margins``,
        ``weighting_classes``, ``propensities``, ``sample_sizes``,
        ``countries`` and ``parameters``.

    Notes
    -----
    Respondent *i* of group *g* in country-iteration *c,t* with demographic
    profile *p* has latent key factors
    ``eta_i = mu[c,t,g] + delta[g,p] + zeta_i``, ``zeta_i ~ N(0, Phi)``
    (``Phi`` a correlation matrix); item *j* of factor *f* has the response
    ``y*_ij = lambda_j eta_if + e_ij``, ``e_ij ~ N(0, psi_j)``,
    ``psi_j = 1 - lambda_j^2``, and the answer code ``1 + #{k: y*_ij > tau_jk}``.
    The true indicator of a cell is the population mean of the respondent score
    "mean of answered items rescaled to 0-10", computed analytically:
    ``E[code_j] = 1 + sum_k Phi((lambda_j m - tau_jk) / sqrt(lambda_j^2 + psi_j))``
    mixed over the population demographic composition. Item missingness is
    independent of the answers and exchangeable across a respondent's items,
    so that the mean of answered items has exactly this expectation. The
    truth was checked against large simulated samples
    (``validation/study_generator_recovery.py``, ``tests/test_simulate.py``).

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=1, n_countries=3, n_repeat=2, n_officials=60, n_private=40)
    >>> sim.truth["indicators"].columns.tolist()
    ['country', 'iteration', 'group', 'factor', 'value']
    >>> sorted(sim.raw["iteration"].unique().tolist())
    [1, 2]
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise _arg_error("seed", seed, "a non-negative integer or None")
    seed = resolve_seed(seed)
    n_countries = _check_int("n_countries", n_countries, 1)
    n_repeat = _check_int("n_repeat", n_repeat, 0)
    if n_repeat > n_countries:
        raise _arg_error("n_repeat", n_repeat, f"at most n_countries ({n_countries})")
    n_officials = _check_int("n_officials", n_officials, 2)
    n_private = _check_int("n_private", n_private, 2)
    if selection not in ("random", "baseline"):
        raise _arg_error("selection", selection, "'random' or 'baseline'")
    support_share = _check_rate("support_share", support_share)
    jump_share = _check_rate("jump_share", jump_share)
    item_nonresponse = _check_rate("item_nonresponse", item_nonresponse, 0.0, 0.5)
    dont_know = _check_rate("dont_know", dont_know, 0.0, 0.5)
    refused = _check_rate("refused", refused, 0.0, 0.5)
    for name, val in (("support_effect", support_effect), ("drift", drift)):
        _check_rate(name, val, -5.0, 5.0)
    for name, val in (("country_sd", country_sd), ("country_factor_sd", country_factor_sd),
                      ("transient_sd", transient_sd), ("group_cell_sd", group_cell_sd), ("size_sd", size_sd)):
        _check_rate(name, val, 0.0, 5.0)
    if instrument is None:
        instrument = Instrument.default(points=5 if points is None else points)
    elif not isinstance(instrument, Instrument):
        raise _arg_error("instrument", type(instrument).__name__, "an Instrument")
    elif points is not None and points != instrument.scale.points:
        raise _arg_error("points", points, f"the instrument's own number of points ({instrument.scale.points})")

    options = dict(n_countries=n_countries, n_repeat=n_repeat, n_officials=n_officials, n_private=n_private,
                   points=instrument.scale.points, selection=selection, support_share=support_share,
                   support_effect=float(support_effect), drift=float(drift), country_sd=float(country_sd),
                   country_factor_sd=float(country_factor_sd), transient_sd=float(transient_sd),
                   group_cell_sd=float(group_cell_sd), size_sd=float(size_sd), jump_share=jump_share,
                   item_nonresponse=item_nonresponse, dont_know=dont_know, refused=refused)
    raw, truth = _generate(int(seed), instrument, options)
    if small_cells:
        raw, truth = _plant_small_cells(raw, truth, instrument)
        options["small_cells"] = True

    from .data import load

    try:
        data = load(raw, instrument=instrument)
    except DataError as exc:
        # With short instruments two respondents can give identical answers by chance; the loader
        # treats such rows as duplicates. They are set aside exactly as in a user's file, with
        # their reason in ``data.exclusions`` (rule ``row_duplicate``); anything else is a bug.
        if not exc.problems or any(p.rule != "row_duplicate" for p in exc.problems):
            raise
        data = load(raw, instrument=instrument, strict=False)
    prov = Provenance.build("simulate", instrument=instrument, seed=int(seed), options=options,
                            data_fingerprint=fingerprint_frame(raw))
    return Simulation(data=data, raw=raw, truth=types.MappingProxyType(truth), instrument=instrument,
                      seed=int(seed), options=options, provenance=prov)


# --------------------------------------------------------------------------------------- small cells
def _plant_small_cells(raw: pd.DataFrame, truth: dict, inst: Instrument) -> tuple[pd.DataFrame, dict]:
    """Cut three cells down to the sizes of ``simulate(small_cells=True)``."""
    groups = list(inst.group_ids)
    rep = sorted(truth["countries"].loc[truth["countries"]["repeated"], "country"].astype(str))
    if len(rep) < 2 or len(groups) < 2:
        raise _arg_error("small_cells", True, "a survey with at least 2 repeated countries and 2 respondent groups")
    g_off, g_priv = groups[0], groups[1]
    gender = next((d for d in inst.demographics if g_off in d.groups and len(d.categories) >= 2), None)
    plans = [(rep[0], 2, g_priv, 3, None), (rep[1], 1, g_off, 7, None)]
    if gender is not None and len(rep) >= 3:
        plans.append((rep[-1], 1, g_off, None, (gender.name, gender.categories[0], 2)))
    drop = np.zeros(len(raw), dtype=bool)
    planted = []
    for country, it, g, keep, cat in plans:
        cell = ((raw["country"] == country) & (raw["iteration"] == it) & (raw["group"] == g)).to_numpy()
        idx = np.flatnonzero(cell)
        if keep is not None:
            drop[idx[keep:]] = True
            planted.append((country, it, g, "cell", "", "", min(keep, idx.size)))
        else:
            var, value, k = cat
            hit = idx[(raw[var].to_numpy(dtype=object)[idx] == value)]
            drop[hit[k:]] = True
            planted.append((country, it, g, "category", var, value, min(k, hit.size)))
    raw = raw.loc[~drop].reset_index(drop=True)
    raw["respondent_id"] = np.arange(1, len(raw) + 1, dtype=np.int64)
    truth = dict(truth)
    sizes = truth["sample_sizes"].copy()
    n_now = raw.groupby(["country", "iteration", "group"]).size()
    key = list(zip(sizes["country"], sizes["iteration"], sizes["group"]))
    sizes["n"] = [int(n_now.get(k, 0)) for k in key]
    truth["sample_sizes"] = sizes
    truth["small_cells"] = pd.DataFrame(planted, columns=["country", "iteration", "group", "kind", "variable",
                                                          "category", "n"])
    return raw, truth


# --------------------------------------------------------------------------------------- generator
# The generator draws from one ``numpy.random.Generator`` in a fixed order; every function below that
# takes ``rng`` says what it draws. The order of the calls in :func:`_generate` and
# :func:`_simulate_group` (and the shapes of the draws) is part of the bit-for-bit reproducibility
# promised by :func:`simulate`: reordering them changes every survey (tests/test_simulate.py pins it).
@dataclass(frozen=True, eq=False)
class _Design:
    """The countries and country-iterations ("ct": every country at t=1, the repeated ones at t=2)."""

    countries: np.ndarray                       # (C,) codes C01, C02, ...
    repeated: np.ndarray                        # (C,) bool: surveyed again at iteration 2
    ct_country: np.ndarray                      # (CT,) country index of each country-iteration
    ct_iter: np.ndarray                         # (CT,) its iteration, 1 or 2
    jump: np.ndarray | None = None              # (C,) bool: officials' leadership share jumps at t=2
    size_country: np.ndarray | None = None      # (C,) standard-normal country factor of the sample sizes
    pop_size_country: np.ndarray | None = None  # (C,) lognormal country factor of the population sizes

    @property
    def is_t2(self) -> np.ndarray:
        return self.ct_iter == 2


@dataclass(frozen=True, eq=False)
class _Measurement:
    """The measurement model (shared by groups and iterations: invariance holds)."""

    item_f: np.ndarray  # (J,) factor index of each item
    lam: np.ndarray     # (J,) loadings
    psi: np.ndarray     # (J,) residual variances 1 - lambda^2
    tau: np.ndarray     # (J, P-1) ordered thresholds
    Phi: np.ndarray     # (F, F) correlation matrix of the latent key factors
    L: np.ndarray       # (F, F) its Cholesky factor


@dataclass(frozen=True, eq=False)
class _Latent:
    """Latent means ``mu[ct, g, f]`` and the components they are the sum of (latent SD units)."""

    persistent: np.ndarray    # (C, F) country level + persistent country-factor deviation
    transient: np.ndarray     # (CT, F) country-factor-iteration shock
    group_offset: np.ndarray  # (G, F)
    group_cell: np.ndarray    # (CT, G, F)
    supported: np.ndarray     # (C, F) bool: supported (country, factor) pairs
    drift_part: np.ndarray    # (CT, F) common change at t=2
    support_part: np.ndarray  # (CT, F) extra change of supported pairs at t=2
    mu: np.ndarray            # (CT, G, F)


@dataclass(frozen=True, eq=False)
class _GroupFrame:
    """A respondent group, its demographics and every profile (combination of their categories)."""

    gi: int
    gid: str
    demos: list
    cats: list            # categories of each demographic (["all"] when it lists none)
    profiles: np.ndarray  # (NP, D) category index of each demographic in each profile

    @property
    def leader_d(self) -> int | None:
        return next((k for k, d in enumerate(self.demos) if d.name == "leadership" and "yes" in self.cats[k]), None)

    @property
    def gender_d(self) -> int | None:
        return next((k for k, d in enumerate(self.demos) if d.name == "gender" and "female" in self.cats[k]), None)


@dataclass(frozen=True, eq=False)
class _Classes:
    """Weighting classes: the combinations of the demographics that drive response."""

    wvars: list              # indices of the propensity demographics
    of_profile: np.ndarray   # (NP,) class of each profile
    labels: list             # (NC,) "cat|cat" labels ("all" without propensity variables)


@dataclass(frozen=True, eq=False)
class _Sample:
    """The drawn respondents of one group and their post-stratified weights."""

    n_ct: np.ndarray     # (CT,) sample sizes
    pop_n: np.ndarray    # (CT,) population sizes
    ct_i: np.ndarray     # (N,) country-iteration of each respondent
    prof_i: np.ndarray   # (N,) demographic profile of each respondent
    w_i: np.ndarray      # (N,) survey weights (sum to n within ct)
    pop_cls: np.ndarray  # (CT, NC) population share of each weighting class
    cnt: np.ndarray      # (CT, NC) respondents per weighting class
    wtab: np.ndarray     # (CT, NC) weight of each class


def _generate(seed: int, inst: Instrument, o: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Draw the raw respondent table and every truth table (the steps in their random-draw order)."""
    rng = np.random.default_rng(seed)
    factors = [f.id for f in inst.key_factors]
    groups = list(inst.group_ids)
    design = _design(rng, o["n_countries"], o["n_repeat"])
    meas = _measurement_model(rng, inst, factors)
    latent = _latent_means(rng, o, design, len(factors), len(groups))
    design = _country_sizes(rng, o, design)

    tables: dict[str, list] = {k: [] for k in ("composition", "margins", "weighting_classes", "propensities",
                                                 "demo_effects", "sample_sizes", "latent_means",
                                                 "indicators", "favourable")}
    raw_parts = []
    next_id = 1
    for gi, gid in enumerate(groups):
        part = _simulate_group(rng, inst, o, _group_frame(inst, gi, gid), design, meas, latent, factors, tables,
                               next_id)
        next_id += len(part[0])
        raw_parts.append(part)
    raw = _assemble_raw(raw_parts, inst)
    truth = _truth_tables(tables, inst, factors, design, meas, latent, o, seed)
    return raw, truth


def _design(rng: np.random.Generator, C: int, R: int) -> _Design:
    """Country codes and country-iterations; draws which ``R`` of the ``C`` countries are repeated."""
    width = max(2, len(str(C)))
    countries = np.array([f"C{i + 1:0{width}d}" for i in range(C)], dtype=object)
    repeated = np.zeros(C, dtype=bool)
    repeated[rng.choice(C, size=R, replace=False)] = True
    # country-iterations: all countries at t=1, the repeated ones at t=2
    ct_country = np.concatenate([np.arange(C), np.flatnonzero(repeated)])
    ct_iter = np.concatenate([np.ones(C, dtype=int), np.full(R, 2, dtype=int)])
    return _Design(countries=countries, repeated=repeated, ct_country=ct_country, ct_iter=ct_iter)


def _measurement_model(rng: np.random.Generator, inst: Instrument, factors: list[str]) -> _Measurement:
    """Draw loadings, thresholds and the factor correlations (one-factor structure of the factors)."""
    fpos = {f: i for i, f in enumerate(factors)}
    items = list(inst.items)
    J = len(items)
    item_f = np.array([fpos[it.factor] for it in items])
    lam = rng.uniform(0.50, 0.85, size=J)
    psi = 1.0 - lam ** 2
    tau = _thresholds(rng, J, inst.scale.points)
    fl = rng.uniform(0.58, 0.83, size=len(factors))
    Phi = np.outer(fl, fl)
    np.fill_diagonal(Phi, 1.0)
    L = np.linalg.cholesky(Phi)
    return _Measurement(item_f=item_f, lam=lam, psi=psi, tau=tau, Phi=Phi, L=L)


def _latent_means(rng: np.random.Generator, o: dict[str, Any], design: _Design, F: int, G: int) -> _Latent:
    """Draw the components of the latent means ``mu[ct, g, f]`` and the supported pairs."""
    C, CT = len(design.countries), len(design.ct_country)
    ct_country = design.ct_country
    country_level = rng.normal(0.0, o["country_sd"], size=C)
    persistent = country_level[:, None] + rng.normal(0.0, o["country_factor_sd"], size=(C, F))
    transient = rng.normal(0.0, o["transient_sd"], size=(CT, F))
    goff_mean = np.array([0.15 if gi == 0 else -0.15 for gi in range(G)])
    group_offset = goff_mean[:, None] + rng.normal(0.0, 0.08, size=(G, F))
    group_cell = rng.normal(0.0, o["group_cell_sd"], size=(CT, G, F))
    t1_mean = persistent + transient[:C]  # country-level iteration-1 latent mean (groups pooled)
    supported = _supported_pairs(rng, o, t1_mean)
    is_t2 = design.is_t2
    drift_part = np.where(is_t2[:, None], o["drift"], 0.0) * np.ones((1, F))
    support_part = np.where(is_t2[:, None], o["support_effect"] * supported[ct_country], 0.0)
    mu = (persistent[ct_country][:, None, :] + transient[:, None, :] + group_offset[None, :, :]
          + group_cell + drift_part[:, None, :] + support_part[:, None, :])
    return _Latent(persistent=persistent, transient=transient, group_offset=group_offset, group_cell=group_cell,
                   supported=supported, drift_part=drift_part, support_part=support_part, mu=mu)


def _supported_pairs(rng: np.random.Generator, o: dict[str, Any], t1_mean: np.ndarray) -> np.ndarray:
    """(C, F) supported pairs: ``support_share`` of each country's factors, at random (one (C, F) uniform
    draw) or the lowest iteration-1 latent means (``selection="baseline"``, no draw)."""
    C, F = t1_mean.shape
    k_sup = int(round(o["support_share"] * F))
    supported = np.zeros((C, F), dtype=bool)
    if k_sup > 0:
        if o["selection"] == "random":
            order = np.argsort(rng.random((C, F)), axis=1)
        else:
            order = np.argsort(t1_mean, axis=1, kind="stable")
        rows = np.repeat(np.arange(C), k_sup)
        supported[rows, order[:, :k_sup].ravel()] = True
    return supported


def _country_sizes(rng: np.random.Generator, o: dict[str, Any], design: _Design) -> _Design:
    """Draw the countries whose leadership share jumps and the country factors of the sample and
    population sizes; returns the design with them."""
    C, R = len(design.countries), o["n_repeat"]
    jump = np.zeros(C, dtype=bool)
    rep_idx = np.flatnonzero(design.repeated)
    n_jump = int(round(o["jump_share"] * R))
    if n_jump:
        jump[rng.choice(rep_idx, size=n_jump, replace=False)] = True
    size_country = rng.normal(0.0, 1.0, size=C)
    pop_size_country = rng.lognormal(0.0, 0.8, size=C)
    return replace(design, jump=jump, size_country=size_country, pop_size_country=pop_size_country)


def _group_frame(inst: Instrument, gi: int, gid: str) -> _GroupFrame:
    """The demographics of group ``gid`` and all their category combinations (no draw)."""
    demos = list(inst.demographics_for(gid))
    cats = [list(d.categories) or ["all"] for d in demos]
    D = len(demos)
    profiles = (np.zeros((1, 0), dtype=int) if D == 0 else
                np.array(list(itertools.product(*[range(len(c)) for c in cats])), dtype=int).reshape(-1, D))
    return _GroupFrame(gi=gi, gid=gid, demos=demos, cats=cats, profiles=profiles)


def _simulate_group(rng: np.random.Generator, inst: Instrument, o: dict[str, Any], grp: _GroupFrame,
                    design: _Design, meas: _Measurement, latent: _Latent, factors: list[str],
                    tables: dict[str, list], next_id: int) -> tuple[pd.DataFrame, tuple[np.ndarray, list[int]]]:
    """Draw one respondent group: population, respondents, weights, answers; record its truth.

    Returns the group's part of the raw table (respondent columns, item block); appends its rows
    to ``tables``.
    """
    joint = _joint_composition(grp, _margins(rng, grp, design), len(design.ct_country))
    delta, prop, wvars = _demographic_effects(rng, grp, factors, tables)
    classes = _weighting_classes(grp, wvars)
    sample = _draw_sample(rng, o, grp, design, joint, prop, classes)
    # latent factors and item answers
    g_items = [j for j, it in enumerate(inst.items) if grp.gid in it.groups]
    m_i = latent.mu[sample.ct_i, grp.gi, :] + delta[sample.prof_i]
    rawcode = _item_answers(rng, inst, meas, m_i, g_items)
    rawcode = _item_missingness(rng, rawcode, inst, o)
    part = _raw_part(inst, grp, design, sample, rawcode, g_items, next_id)
    _true_indicators(tables, inst, grp, design, meas, latent.mu[:, grp.gi, :], delta, joint, g_items)
    _cell_truth(tables, inst, grp, design, latent, factors, joint, delta, sample, classes)
    return part


def _margins(rng: np.random.Generator, grp: _GroupFrame, design: _Design) -> list[np.ndarray]:
    """Population margins of each demographic of the group, (CT, K) in ct order.

    Draws, per demographic, a Dirichlet around the mean shares for every country at t=1, then one
    around each repeated country's t=1 margin for t=2. The leadership share of "jump" countries is
    multiplied by 2.2 (at most 0.6) at t=2.
    """
    C = len(design.countries)
    rep_idx = np.flatnonzero(design.repeated)
    is_t2, jump, ct_country = design.is_t2, design.jump, design.ct_country
    gid, cats = grp.gid, grp.cats
    leader_d = grp.leader_d
    margs = []
    for k, d in enumerate(grp.demos):
        mean_map = _MARGIN_MEANS.get((gid, d.name))
        mean = np.array([mean_map.get(c, 1.0) for c in cats[k]]) if mean_map else np.ones(len(cats[k]))
        mean = mean / mean.sum()
        m1 = _dirichlet_rows(rng, mean, _MARGIN_CONCENTRATION, C)
        m2 = (np.vstack([_dirichlet_rows(rng, m1[c], _ITERATION_CONCENTRATION, 1)[0] for c in rep_idx])
              if len(rep_idx) else np.zeros((0, len(mean))))
        marg = np.vstack([m1, m2])
        if k == leader_d:
            yes = cats[k].index("yes")
            share = np.where(is_t2 & jump[ct_country], np.minimum(marg[:, yes] * _JUMP_FACTOR, 0.6),
                             marg[:, yes])
            rest = marg.copy()
            rest[:, yes] = 0.0
            rest = rest / rest.sum(axis=1, keepdims=True) * (1.0 - share)[:, None]
            rest[:, yes] = share
            marg = rest
        margs.append(marg)
    return margs


def _joint_composition(grp: _GroupFrame, margs: list[np.ndarray], CT: int) -> np.ndarray:
    """(CT, NP) population share of each profile: the product of the margins, with leadership
    depending on gender when the group has both (no draw)."""
    profiles, cats = grp.profiles, grp.cats
    leader_d, gender_d = grp.leader_d, grp.gender_d
    joint = np.ones((CT, len(profiles)))
    for k in range(len(grp.demos)):
        if k == leader_d and gender_d is not None:
            continue
        joint *= margs[k][:, profiles[:, k]]
    if leader_d is not None and gender_d is not None:
        # leaders are rarer among women: P(yes | female) = r * P(yes | male), overall share kept:
        # s = f r s_m + (1 - f) s_m  =>  s_m = s / (1 - f + f r)
        yes = cats[leader_d].index("yes")
        share = margs[leader_d][:, yes]
        female_share = margs[gender_d][:, cats[gender_d].index("female")]
        s_m = share / (1.0 - female_share + female_share * _FEMALE_LEADER_RATIO)
        is_f = profiles[:, gender_d] == cats[gender_d].index("female")
        p_yes = np.where(is_f[None, :], _FEMALE_LEADER_RATIO * s_m[:, None], s_m[:, None])
        other = margs[leader_d] / np.maximum(1.0 - share, 1e-12)[:, None]  # non-"yes" split
        is_yes = profiles[:, leader_d] == yes
        joint *= np.where(is_yes[None, :], p_yes, (1.0 - p_yes) * other[:, profiles[:, leader_d]])
    joint /= joint.sum(axis=1, keepdims=True)
    return joint


def _demographic_effects(rng: np.random.Generator, grp: _GroupFrame, factors: list[str],
                         tables: dict[str, list]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Demographic effects ``delta[p, f]`` and response propensities of each profile.

    Draws, per demographic, random base effects when it has no entry in ``_DEMO_EFFECTS``
    (reference category 0), then a (K, F) normal of factor-specific deviations (kept only where the
    base is non-zero). Returns ``delta`` (NP, F), the propensities (NP,) and the indices of the
    demographics that drive response; appends ``demo_effects`` and ``propensities`` rows.
    """
    gid, cats, profiles = grp.gid, grp.cats, grp.profiles
    NP, F = len(profiles), len(factors)
    delta = np.zeros((NP, F))
    prop = np.full(NP, _BASE_PROPENSITY.get(gid, 1.0))
    wvars = []
    for k, d in enumerate(grp.demos):
        eff_map = _DEMO_EFFECTS.get((gid, d.name))
        if eff_map is not None:
            base = np.array([eff_map.get(c, 0.0) for c in cats[k]])
        else:
            base = np.concatenate([[0.0], rng.normal(0.0, 0.1, size=len(cats[k]) - 1)])
        eff = base[:, None] + np.where(base[:, None] != 0, rng.normal(0.0, 0.04, size=(len(cats[k]), F)), 0.0)
        delta += eff[profiles[:, k]]
        for ci, c in enumerate(cats[k]):
            for fi, f in enumerate(factors):
                tables["demo_effects"].append((gid, d.name, c, f, float(eff[ci, fi])))
        pmap = _PROPENSITY.get((gid, d.name))
        if pmap is not None:
            wvars.append(k)
            rel = np.array([pmap.get(c, 1.0) for c in cats[k]])
            prop *= rel[profiles[:, k]]
            for ci, c in enumerate(cats[k]):
                tables["propensities"].append((gid, d.name, c, float(rel[ci])))
    prop = np.minimum(prop, 1.0)
    return delta, prop, wvars


def _weighting_classes(grp: _GroupFrame, wvars: list[int]) -> _Classes:
    """Weighting classes: the combinations of the propensity variables (no draw)."""
    profiles, cats = grp.profiles, grp.cats
    if wvars:
        wcls_key = profiles[:, wvars]
        ucls, cls_of_profile = np.unique(wcls_key, axis=0, return_inverse=True)
        cls_of_profile = cls_of_profile.ravel()
    else:
        ucls = np.zeros((1, 0), dtype=int)
        cls_of_profile = np.zeros(len(profiles), dtype=int)
    NC = len(ucls)
    cls_labels = ["|".join(cats[wvars[q]][ucls[c, q]] for q in range(len(wvars))) or "all" for c in range(NC)]
    return _Classes(wvars=wvars, of_profile=cls_of_profile, labels=cls_labels)


def _draw_sample(rng: np.random.Generator, o: dict[str, Any], grp: _GroupFrame, design: _Design,
                 joint: np.ndarray, prop: np.ndarray, classes: _Classes) -> _Sample:
    """Draw the sample sizes (a CT normal) and each respondent's profile (an N uniform); weight them."""
    CT, NP = joint.shape
    ct_country, ct_iter = design.ct_country, design.ct_iter
    mean_n = o["n_officials"] if grp.gi == 0 else o["n_private"]
    # sample sizes per ct: lognormal around the group mean, mean kept at the target
    mult = np.exp(o["size_sd"] * (0.8 * design.size_country[ct_country] + 0.6 * rng.normal(size=CT)))
    mult /= mult.mean()
    n_ct = np.maximum(np.rint(mean_n * mult).astype(int), max(2, int(0.15 * mean_n)))
    pop_n = np.rint(design.pop_size_country[ct_country] * (3000 if grp.gi == 0 else 20000)
                    * (1.0 + 0.03 * (ct_iter - 1))).astype(int)
    pop_n = np.maximum(pop_n, n_ct * 2)
    # respondents: profile drawn from pop * propensity (differential non-response)
    q = joint * prop[None, :]
    q /= q.sum(axis=1, keepdims=True)
    ct_i = np.repeat(np.arange(CT), n_ct)
    N = len(ct_i)
    u = rng.random(N)
    cq = np.cumsum(q, axis=1)
    prof_i = np.minimum((u[:, None] > cq[ct_i]).sum(axis=1), NP - 1)
    # weights = population share / sample share of the weighting class within ct
    NC = len(classes.labels)
    cls_i = classes.of_profile[prof_i]
    pop_cls = np.zeros((CT, NC))
    np.add.at(pop_cls, (slice(None), classes.of_profile), joint)
    cnt = np.bincount(ct_i * NC + cls_i, minlength=CT * NC).reshape(CT, NC)
    samp_share = cnt / n_ct[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        wtab = np.where(cnt > 0, pop_cls / samp_share, 0.0)
    w_i = wtab[ct_i, cls_i]
    # empty classes lose their share: rescale so weights sum to n within ct
    wsum = np.bincount(ct_i, weights=w_i, minlength=CT)
    w_i = w_i * (n_ct / wsum)[ct_i]
    wtab = wtab * (n_ct / wsum)[:, None]
    return _Sample(n_ct=n_ct, pop_n=pop_n, ct_i=ct_i, prof_i=prof_i, w_i=w_i, pop_cls=pop_cls, cnt=cnt,
                   wtab=wtab)


def _item_answers(rng: np.random.Generator, inst: Instrument, meas: _Measurement, m_i: np.ndarray,
                  g_items: list[int]) -> np.ndarray:
    """Raw answer codes (N, Jg) as floats, reverse-keyed items not reversed.

    Draws the latent factors ``eta = m_i + zeta`` (an (N, F) standard normal) and the item
    residuals (an (N, Jg) standard normal); the code is ``1 + #{k: y* > tau_k}``.
    """
    P = inst.scale.points
    items = inst.items
    N = len(m_i)
    eta = m_i + rng.standard_normal((N, m_i.shape[1])) @ meas.L.T
    lam_g, psi_g, tau_g, f_g = meas.lam[g_items], meas.psi[g_items], meas.tau[g_items], meas.item_f[g_items]
    # in place (the same operations in the same order as ``eta[:, f] * lam + e * sqrt(psi)``): no fresh
    # N x J temporaries
    ystar = np.take(eta, f_g, axis=1)
    ystar *= lam_g[None, :]
    e = rng.standard_normal((N, len(g_items)))
    e *= np.sqrt(psi_g)[None, :]
    ystar += e
    del e
    code = np.ones((N, len(g_items)), dtype=np.int8)
    above = np.empty(ystar.shape, dtype=bool)
    for k in range(P - 1):
        np.greater(ystar, tau_g[None, :, k], out=above)
        code += above
    rev = np.array([items[j].reverse for j in g_items], dtype=bool)
    if rev.any():
        code[:, rev] = P + 1 - code[:, rev]
    return code.astype(float)


def _item_missingness(rng: np.random.Generator, rawcode: np.ndarray, inst: Instrument,
                      o: dict[str, Any]) -> np.ndarray:
    """Blank, don't-know and refused answers; modifies and returns ``rawcode``.

    Missingness is exchangeable across a respondent's items and independent of the answers: a
    respondent's rate multiplier (an N gamma draw) scales the three rates, and one (N, Jg) uniform
    decides each answer.
    """
    N = len(rawcode)
    total_rate = o["item_nonresponse"] + o["dont_know"] + o["refused"]
    r_i = np.minimum(rng.gamma(2.0, 0.5, size=N), min(8.0, 0.8 / max(total_rate, 1e-12)))
    uu = rng.random(rawcode.shape)
    pb = o["item_nonresponse"] * r_i[:, None]
    pd_ = pb + o["dont_know"] * r_i[:, None]
    pr_ = pd_ + o["refused"] * r_i[:, None]
    inv_codes = sorted(inst.scale.missing)
    dk_code = next((c for c in inv_codes if inst.scale.missing[c] == "dont_know"), inv_codes[0] if inv_codes else None)
    rf_code = next((c for c in inv_codes if inst.scale.missing[c] == "refused"), dk_code)
    keep_code = rawcode.copy()
    rawcode[uu < pb] = np.nan
    # a respondent must answer something (a questionnaire with every item blank is not a response):
    # keep the code of the item with the largest uniform (no extra random draw; only at extreme rates)
    empty = np.flatnonzero(np.isnan(rawcode).all(axis=1))
    if len(empty):
        jmax = uu[empty].argmax(axis=1)
        rawcode[empty, jmax] = keep_code[empty, jmax]
        uu[empty, jmax] = 1.0
    if dk_code is not None:
        rawcode[(uu >= pb) & (uu < pd_)] = dk_code
        rawcode[(uu >= pd_) & (uu < pr_)] = rf_code
    return rawcode


def _raw_part(inst: Instrument, grp: _GroupFrame, design: _Design, sample: _Sample, rawcode: np.ndarray,
              g_items: list[int], next_id: int) -> tuple[pd.DataFrame, tuple[np.ndarray, list[int]]]:
    """The group's respondent columns and its item codes: the (N, Jg) block of the items it is asked
    and their instrument positions (the items not asked are blank in the raw table)."""
    ct_i, prof_i = sample.ct_i, sample.prof_i
    N = len(ct_i)
    part = {
        "respondent_id": np.arange(next_id, next_id + N, dtype=np.int64),
        "country": design.countries[design.ct_country[ct_i]],
        "iteration": design.ct_iter[ct_i].astype(np.int64),
        "group": np.full(N, grp.gid, dtype=object),
        "weight": sample.w_i,
    }
    for d in inst.demographics:
        if d in grp.demos:
            k = grp.demos.index(d)
            part[d.name] = np.array(grp.cats[k], dtype=object)[grp.profiles[prof_i, k]]
        else:
            part[d.name] = np.full(N, np.nan, dtype=object)
    return pd.DataFrame(part), (rawcode, list(g_items))


def _true_indicators(tables: dict[str, list], inst: Instrument, grp: _GroupFrame, design: _Design,
                     meas: _Measurement, mu_g: np.ndarray, delta: np.ndarray, joint: np.ndarray,
                     g_items: list[int]) -> None:
    """Append the true indicator and favourable share of every (ct, factor) of the group (no draw).

    Analytic per (ct, profile, item), then mixed over the population composition ``joint``.
    """
    P = inst.scale.points
    items = inst.items
    fav_codes = np.array(inst.scale.favourable)
    lam_g, psi_g, tau_g, f_g = meas.lam[g_items], meas.psi[g_items], meas.tau[g_items], meas.item_f[g_items]
    m_p = mu_g[:, None, :] + delta[None, :, :]                   # (CT, NP, F)
    lin = lam_g[None, None, :] * m_p[:, :, f_g]                  # (CT, NP, Jg)
    sd = np.sqrt(lam_g ** 2 * 1.0 + psi_g)
    pge = ndtr((lin[..., None] - tau_g[None, None, :, :]) / sd[None, None, :, None])  # P(code >= k+1)
    e_code = 1.0 + pge.sum(axis=-1)
    ge = np.concatenate([np.ones(pge.shape[:-1] + (1,)), pge, np.zeros(pge.shape[:-1] + (1,))], axis=-1)
    p_code = ge[..., :-1] - ge[..., 1:]                          # P(code = 1..P)
    p_fav = p_code[..., fav_codes - 1].sum(axis=-1)
    gitem_pos = {items[j].id: q_ for q_, j in enumerate(g_items)}
    for fobj in inst.factors:
        cols = [gitem_pos[i] for i in inst.factor_items(fobj.id, group=grp.gid) if i in gitem_pos]
        if not cols:
            continue
        val = (e_code[:, :, cols].mean(axis=-1) - 1.0) / (P - 1) * 10.0   # (CT, NP)
        fav = p_fav[:, :, cols].mean(axis=-1)
        val = (joint * val).sum(axis=1)
        fav = (joint * fav).sum(axis=1)
        for c in range(len(design.ct_country)):
            key = (design.countries[design.ct_country[c]], int(design.ct_iter[c]), grp.gid, fobj.id)
            tables["indicators"].append(key + (float(val[c]),))
            tables["favourable"].append(key + (float(fav[c]),))


def _cell_truth(tables: dict[str, list], inst: Instrument, grp: _GroupFrame, design: _Design, latent: _Latent,
                factors: list[str], joint: np.ndarray, delta: np.ndarray, sample: _Sample,
                classes: _Classes) -> None:
    """Append the group's per-ct truth rows: sample sizes, latent means, composition, margins and
    weighting classes (no draw)."""
    gi, gid, demos, cats, profiles = grp.gi, grp.gid, grp.demos, grp.cats, grp.profiles
    ct_country, mu = design.ct_country, latent.mu
    pop_mu = (joint @ delta) + mu[:, gi, :]                     # population mean latent (CT, F)
    class_vars = "×".join(demos[k].name for k in classes.wvars) or "all"
    for c in range(len(ct_country)):
        cc, tt = design.countries[ct_country[c]], int(design.ct_iter[c])
        tables["sample_sizes"].append((cc, tt, gid, int(sample.n_ct[c]), int(sample.pop_n[c])))
        for fi, f in enumerate(factors):
            tables["latent_means"].append((
                cc, tt, gid, f, float(mu[c, gi, fi]), float(pop_mu[c, fi]),
                float(latent.persistent[ct_country[c], fi]), float(latent.transient[c, fi]),
                float(latent.group_offset[gi, fi]), float(latent.group_cell[c, gi, fi]),
                float(latent.drift_part[c, fi]), float(latent.support_part[c, fi])))
        for p_ in range(len(profiles)):
            prof = {demos[k].name: cats[k][profiles[p_, k]] for k in range(len(demos))}
            tables["composition"].append((cc, tt, gid) + tuple(prof.get(d.name, None) for d in inst.demographics)
                                         + (float(joint[c, p_]),))
        for k, d in enumerate(demos):
            for ci, cat in enumerate(cats[k]):
                sh = float(joint[c, profiles[:, k] == ci].sum())
                tables["margins"].append((cc, tt, gid, d.name, cat, sh, sh * sample.pop_n[c]))
        for cl in range(len(classes.labels)):
            tables["weighting_classes"].append(
                (cc, tt, gid, class_vars, classes.labels[cl],
                 float(sample.pop_cls[c, cl]), int(sample.cnt[c, cl]), float(sample.wtab[c, cl])))


def _assemble_raw(raw_parts: list[tuple[pd.DataFrame, tuple[np.ndarray, list[int]]]],
                  inst: Instrument) -> pd.DataFrame:
    """The raw respondent table, sorted by country, iteration, group; respondents numbered 1..n.

    The sort order is found on the key columns first and every column is taken once in that
    order (the item block as one float array): no intermediate frame of every column is built.
    """
    groups = list(inst.group_ids)
    meta = pd.concat([p[0] for p in raw_parts], ignore_index=True)
    grp_rank = meta["group"].map({g: i for i, g in enumerate(groups)})
    order = np.lexsort((meta["respondent_id"].to_numpy(), grp_rank.to_numpy(), meta["iteration"].to_numpy(),
                        meta["country"].to_numpy().astype(str)))
    meta = meta.take(order).reset_index(drop=True)
    # items x respondents, C-ordered (the frame's float block, every item column contiguous), each
    # group's block scattered straight to its sorted rows
    where = np.empty(order.size, dtype=np.intp)
    where[order] = np.arange(order.size)
    by_item = np.full((len(inst.items), order.size), np.nan)
    start = 0
    for _, (block, g_items) in raw_parts:
        rows = where[start:start + len(block)]
        for k, j in enumerate(g_items):
            by_item[j, rows] = block[:, k]
        start += len(block)
    items = pd.DataFrame(by_item.T, columns=[it.id for it in inst.items], copy=False)
    raw = pd.concat([meta, items], axis=1)
    raw["respondent_id"] = np.arange(1, len(raw) + 1, dtype=np.int64)
    for d in inst.demographics:
        raw[d.name] = raw[d.name].astype(object).where(raw[d.name].notna(), None)
    return raw


def _truth_tables(tables: dict[str, list], inst: Instrument, factors: list[str], design: _Design,
                  meas: _Measurement, latent: _Latent, o: dict[str, Any], seed: int) -> dict[str, pd.DataFrame]:
    """The tidy truth tables of :func:`simulate` from the collected rows and the model (no draw)."""
    countries, repeated, jump, supported = design.countries, design.repeated, design.jump, latent.supported
    lam, psi, tau, Phi = meas.lam, meas.psi, meas.tau, meas.Phi
    key = ["country", "iteration", "group", "factor"]
    demo_names = [d.name for d in inst.demographics]
    ind = pd.DataFrame(tables["indicators"], columns=key + ["value"])
    ind = ind.sort_values(key, kind="stable").reset_index(drop=True)
    fav = pd.DataFrame(tables["favourable"], columns=key + ["value"]).sort_values(key, kind="stable")
    fav = fav.reset_index(drop=True)
    wide = ind.pivot_table(index=["country", "factor", "group"], columns="iteration", values="value")
    if 2 in wide.columns:
        chg = (wide[2] - wide[1]).dropna().rename("change").reset_index()
    else:
        chg = pd.DataFrame(columns=["country", "factor", "group", "change"])
    chg = chg[["country", "factor", "group", "change"]].reset_index(drop=True)
    sup = pd.DataFrame({
        "country": np.repeat(countries, len(factors)),
        "factor": np.tile(factors, len(countries)),
        "supported": supported.ravel(),
        "effect": np.where(supported.ravel(), o["support_effect"], 0.0),
        "repeated": np.repeat(repeated, len(factors)),
    })
    items = list(inst.items)
    loadings = pd.DataFrame({"item": [i.id for i in items], "factor": [i.factor for i in items],
                             "loading": lam, "residual_variance": psi, "reverse": [i.reverse for i in items]})
    P = inst.scale.points
    thr = pd.DataFrame({"item": np.repeat([i.id for i in items], P - 1),
                        "threshold": np.tile(np.arange(1, P), len(items)), "value": tau.ravel()})
    F = len(factors)
    corr = pd.DataFrame({"factor_a": np.repeat(factors, F), "factor_b": np.tile(factors, F),
                         "correlation": Phi.ravel()})
    lat = pd.DataFrame(tables["latent_means"], columns=key + [
        "mean", "population_mean", "persistent", "transient", "group_offset", "group_cell", "drift", "support"])
    lat = lat.sort_values(key, kind="stable").reset_index(drop=True)
    comp = pd.DataFrame(tables["composition"], columns=["country", "iteration", "group"] + demo_names + ["share"])
    marg = pd.DataFrame(tables["margins"], columns=["country", "iteration", "group", "variable", "category",
                                                    "share", "population"])
    wcls = pd.DataFrame(tables["weighting_classes"], columns=["country", "iteration", "group", "variables",
                                                              "weight_class", "share", "n_sample", "weight"])
    props = pd.DataFrame(tables["propensities"], columns=["group", "variable", "category", "relative_propensity"])
    props["base_propensity"] = props["group"].map(lambda g: _BASE_PROPENSITY.get(g, 1.0))
    eff = pd.DataFrame(tables["demo_effects"], columns=["group", "variable", "category", "factor", "effect"])
    sizes = pd.DataFrame(tables["sample_sizes"], columns=["country", "iteration", "group", "n", "population"])
    ctry = pd.DataFrame({"country": countries, "repeated": repeated, "leadership_jump": jump})
    params = pd.DataFrame({"parameter": ["seed", "points", *o.keys(), "female_leader_ratio", "jump_factor",
                                         "factor_variance"],
                           "value": [seed, P, *o.values(), _FEMALE_LEADER_RATIO, _JUMP_FACTOR, 1.0]})
    params = params.drop_duplicates("parameter").reset_index(drop=True)
    params["value"] = params["value"].astype(object)
    comp, marg, wcls, sizes = (t.sort_values(["country", "iteration", "group"], kind="stable").reset_index(drop=True)
                               for t in (comp, marg, wcls, sizes))
    return {
        "indicators": ind, "favourable": fav, "change": chg, "supported": sup, "latent_means": lat,
        "loadings": loadings, "thresholds": thr, "factor_correlation": corr, "demographic_effects": eff,
        "composition": comp, "margins": marg, "weighting_classes": wcls, "propensities": props,
        "sample_sizes": sizes, "countries": ctry, "parameters": params,
    }



class _CallableModule(types.ModuleType):
    """``cips_stats.simulate`` is this module and, called, :func:`simulate` (``cs.simulate(seed=1)``).

    The package imports its faces lazily, so the module may be bound to the package's
    ``simulate`` attribute before the function is; calling the module calls the function.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return simulate(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
