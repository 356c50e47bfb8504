"""Claim audits: "X% of the supported key factors improved", by what rule, against what null, and is it real.

A vote count ("perceptions improved in 85% of the supported factors against
73% of the others") hides four choices: the rule that calls a cell improved,
the share expected with no change or with the common drift alone, whether the
difference survives the clustering of cells within countries, and whether the
supported factors were chosen because they started low (regression to the
mean).  :func:`audit` answers each of them from the cell changes of
:func:`cips_stats.change.cell_changes` (and, for the posterior rule, the
hierarchical model of :func:`cips_stats.change.fit`);
:func:`from_aggregates` does what can be done when only the published counts
are known.  The methods, their assumptions and the references are in
``methodology/claims.md``.

Examples
--------
>>> import cips_stats as cs
>>> r = cs.claims.from_aggregates(supported_improved=68, supported_total=80,
...                               unsupported_improved=66, unsupported_total=90, n_countries=17)
>>> round(r.difference, 3), round(r.p_value, 3)
(0.117, 0.063)
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st
from scipy.special import ndtr, ndtri

from ._blas import one_thread
from .errors import DataError, Flag, ModelError, Problem
from .results import Provenance, Result, resolve_seed

__all__ = ["ClaimAudit", "AggregateComparison", "PosteriorRequiredError", "audit", "from_aggregates",
           "permutation_p_value",
           "RULES", "TESTS", "POSTERIOR_IMPROVED"]

#: Rules that call a cell "improved".
RULES = ("point", "fdr", "posterior")
#: Tests of supported vs unsupported cells that :func:`audit` can run.
TESTS = ("permutation", "cmh", "fisher", "gee", "mixed", "welch", "did", "ancova")
#: Posterior rule and few-cluster warning: the cut-offs live in :mod:`cips_stats.thresholds` (re-exported here).
from .thresholds import FEW_CLUSTERS, POSTERIOR_IMPROVED  # noqa: E402
#: Default grid of intra-country correlations for the sensitivity table of :func:`from_aggregates`.
ICC_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


class PosteriorRequiredError(DataError):
    """The posterior rule was asked of input without a fitted change model."""


# ----------------------------------------------------------------------------------------- helpers
def _bad(name: str, value: Any, expected: str, rule: str = "argument") -> DataError:
    msg = f"{name}= must be {expected}; got {value!r}."
    return DataError(msg, [Problem(rule, msg, column=name, value=value)])


def _level(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(value) < 1.0:
        raise _bad(name, value, "a number in (0, 1)")
    return float(value)


def _count(name: str, value: Any, low: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise _bad(name, value, f"an integer >= {low}")
    return int(value)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"


def _pts(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}"


def _fmt_p(p: float) -> str:
    """``"p = 0.09"``, ``"p = 0.004"``, ``"p < 0.001"``."""
    if not np.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _bh_reject(p: np.ndarray, q: float) -> np.ndarray:
    """Benjamini–Hochberg decisions along the last axis (vectorised over leading axes).

    Rejects every p-value up to the largest sorted ``p_(k) <= q k / n``.  Only p-values at most ``q`` can
    satisfy it, so only the ``m`` smallest of each row are sorted (``m``: the most such p-values in a row;
    a partition, then a sort of ``m`` columns), which gives the decisions of a full sort.
    """
    n = p.shape[-1]
    crit = q * np.arange(1, n + 1) / n
    m = int((p <= q).sum(axis=-1).max()) if p.size else 0
    if m == 0:
        return np.zeros(p.shape, dtype=bool)
    ps = np.sort(np.partition(p, m - 1, axis=-1)[..., :m] if m < n else p, axis=-1)
    ok = ps <= crit[:m]
    any_ok = ok.any(axis=-1)
    kmax = m - 1 - np.argmax(ok[..., ::-1], axis=-1)
    thr = np.take_along_axis(ps, kmax[..., None], axis=-1)
    return (p <= thr) & any_ok[..., None]


# ------------------------------------------------------------------------------- support table
def _support_table(supported: Any, known_countries: set | None, known_factors: set) -> pd.DataFrame:
    """Validate the support table; return (country, factor, supported).

    ``known_countries`` is ``None`` when only cell changes are at hand (countries surveyed once are then
    indistinguishable from unknown ones and are left to the caller's flag).
    """
    if not isinstance(supported, pd.DataFrame):
        raise _bad("supported", type(supported).__name__,
                   "a DataFrame with columns country, factor, supported (as cs.simulate().truth['supported'])")
    need = ["country", "factor", "supported"]
    missing = [c for c in need if c not in supported.columns]
    if missing:
        raise DataError(f"supported= lacks the columns {missing}.",
                        [Problem("support_columns", "Column missing.", column=c) for c in missing])
    sup = supported[need].reset_index(drop=True)
    probs = []
    dup = sup.duplicated(["country", "factor"], keep=False)
    for i, r in sup.loc[dup].head(50).iterrows():
        probs.append(Problem("support_duplicate", "Duplicated (country, factor) cell in the support table.",
                             file="supported", row=int(i) + 1, column="country, factor",
                             value=(_py(r["country"]), _py(r["factor"]))))
    vals = sup["supported"]
    okv = vals.isin([True, False, 0, 1]) & vals.notna()
    for i, v in vals[~okv].head(50).items():
        probs.append(Problem("support_boolean", "supported must be True/False (or 1/0).", file="supported",
                             row=int(i) + 1, column="supported", value=_py(v)))
    unknown = ~sup["factor"].isin(known_factors)
    if known_countries is not None:
        unknown |= ~sup["country"].isin(known_countries)
    for i, r in sup.loc[unknown].head(50).iterrows():
        what = "factor" if r["factor"] not in known_factors else "country"
        probs.append(Problem("support_unknown_cell", f"Unknown {what}: not in the indicators.", file="supported",
                             row=int(i) + 1, column=what, value=_py(r[what])))
    if probs:
        n_dup, n_unk = int(sup.duplicated(["country", "factor"]).sum()), int(unknown.sum())
        raise DataError(f"The support table has {n_dup} duplicated and {n_unk} unknown cell(s) "
                        f"and {int((~okv).sum())} non-boolean label(s).", probs)
    sup = sup.copy()
    sup["supported"] = sup["supported"].astype(bool)
    return sup


# ----------------------------------------------------------------------------------- permutation
def _arrangements(m: np.ndarray, k: np.ndarray) -> float:
    return float(np.prod([math.comb(int(a), int(b)) for a, b in zip(m, k)], dtype=float))


def within_country_permutation(codes: np.ndarray, labels: np.ndarray, Y: np.ndarray, *, n_perm: int,
                               rng: np.random.Generator, exact: bool | None = None) -> dict[str, Any]:
    """Permutation distribution of mean(Y | supported) - mean(Y | unsupported), labels shuffled within country.

    Parameters
    ----------
    codes : ndarray of int, shape (N,)
        Country code of each cell, sorted (cells of a country contiguous).
    labels : ndarray of bool, shape (N,)
        Observed support labels.
    Y : ndarray, shape (N, S)
        Outcomes (one column per statistic).
    n_perm : int
        Monte Carlo permutations (and the cut-off for exact enumeration).
    rng : numpy.random.Generator
        Random numbers of the Monte Carlo permutations.
    exact : bool, optional
        Force (True) or forbid (False) exact enumeration; default: exact when
        the number of distinct arrangements is at most ``n_perm``.

    Returns
    -------
    dict
        ``observed`` (S,), ``p_value`` (S,, two-sided, see
        :func:`permutation_p_value`), ``mc_se`` (S,, 0 when exact), ``exact``
        (bool), ``n`` (permutations or arrangements), ``null_mean`` (S,),
        ``arrangements`` (distinct arrangements) and ``draws`` (n, S): the
        statistic of every permutation (every arrangement when exact).
    """
    N, S = Y.shape
    start = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    m = np.diff(np.r_[start, N])
    k = np.add.reduceat(labels.astype(np.int64), start)
    K = int(k.sum())
    tot = Y.sum(axis=0)
    sums_c = np.add.reduceat(Y, start, axis=0)                         # (C, S)
    null_sup = (k / m) @ sums_c                                        # E[sum over supported]

    def stat(sup_sum: np.ndarray) -> np.ndarray:
        return sup_sum / K - (tot - sup_sum) / (N - K)

    obs_sum = labels.astype(float) @ Y
    observed = stat(obs_sum)
    null_mean = stat(null_sup)
    mixed = (k > 0) & (k < m)
    n_arr = _arrangements(m[mixed], k[mixed])
    use_exact = (n_arr <= n_perm) if exact is None else bool(exact)
    if use_exact:
        base = (sums_c[(k == m)]).sum(axis=0)
        total = base[None, :]
        for c in np.flatnonzero(mixed):
            block = Y[start[c]:start[c] + m[c]]
            combos = np.array(list(itertools.combinations(range(int(m[c])), int(k[c]))), dtype=np.int64)
            contrib = block[combos].sum(axis=1)                        # (n_combos, S)
            total = (total[:, None, :] + contrib[None, :, :]).reshape(-1, S)
        T = stat(total)
    else:
        # Monte Carlo: countries with both kinds of cells, grouped by their number of cells m; each
        # permutation shuffles every such country's label pattern (k_c ones, m - k_c zeros) in one
        # Generator.permuted call per m, and one matrix product sums the outcomes of the permuted
        # supported cells.  Countries with only one kind of cell add a constant.
        sup_sum = np.broadcast_to((sums_c[(k == m)]).sum(axis=0), (n_perm, S)).copy()
        for size in np.unique(m[mixed]):
            cs_ = np.flatnonzero(mixed & (m == size))
            pattern = (np.arange(size)[None, :] < k[cs_][:, None]).astype(np.float64)     # (C_m, m)
            shuffled = rng.permuted(np.broadcast_to(pattern, (n_perm, *pattern.shape)), axis=2)
            rows = (start[cs_][:, None] + np.arange(size)[None, :]).ravel()
            sup_sum += shuffled.reshape(n_perm, -1) @ Y[rows]
        T = stat(sup_sum)
    p, mc_se = permutation_p_value(T, observed, null_mean, exact=use_exact)
    return {"observed": observed, "p_value": p, "mc_se": mc_se, "exact": use_exact, "n": int(T.shape[0]),
            "null_mean": null_mean, "arrangements": n_arr, "draws": T}


def permutation_p_value(draws: np.ndarray, observed: Any, null_mean: Any, *,
                        exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-value (and its Monte Carlo SE) of observed statistics from their permutation draws.

    A draw counts as at least as extreme when ``|T* - E T*| >= |T - E T*|``
    (up to a relative tolerance of 1e-9, so that ties in a discrete null
    count).  Exact enumeration: the share of arrangements (each equally
    likely), SE 0.  Monte Carlo: ``(1 + hits) / (1 + n)`` (never 0; Phipson &
    Smyth 2010) with SE ``sqrt(p (1 - p) / n)``.

    Parameters
    ----------
    draws : ndarray, shape (n,) or (n, S)
        The statistics of the permutations (or of every arrangement).
    observed, null_mean : float or ndarray, shape (S,)
        The observed statistics and the mean of their permutation distribution.
    exact : bool
        Whether ``draws`` enumerate every arrangement.

    Returns
    -------
    (p_value, mc_se) : ndarrays of shape (S,) (scalars' arrays for 1-D draws)

    Examples
    --------
    >>> import numpy as np
    >>> p, se = permutation_p_value(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), 2.0, 0.0, exact=True)
    >>> float(p), float(se)
    (0.4, 0.0)
    """
    T = np.asarray(draws, dtype=np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    centre = np.asarray(null_mean, dtype=np.float64)
    dev_obs = np.abs(obs - centre) - 1e-9 * np.maximum(1.0, np.abs(obs))
    hits = (np.abs(T - centre) >= dev_obs).sum(axis=0)
    n = T.shape[0]
    if exact:
        return hits / n, np.zeros_like(dev_obs)
    p = (1.0 + hits) / (n + 1.0)
    return p, np.sqrt(p * (1.0 - p) / n)


# --------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ClaimAudit(Result):
    """Audit of a claim "X% of supported cells improved, against Y% of unsupported cells".

    Attributes
    ----------
    shares : pandas.DataFrame
        One row per group, rule and set (``supported``, ``unsupported``,
        ``difference``): ``n_cells``, ``n_improved``, ``share`` (the
        difference in shares on the ``difference`` rows), ``ci_low``,
        ``ci_high`` (shares: Wilson interval on the effective number of
        cells with the country design effect ``deff``; difference: country
        bootstrap), ``interval`` (which), and for the posterior rule
        ``true_share``, ``true_ci_low``, ``true_ci_high`` (posterior of the
        share of cells whose true change is positive).
    nulls : pandas.DataFrame
        Expected shares under ``scenario`` ``no_change`` (no true change in
        any cell) and ``common_drift`` (every cell moves by the mean change
        ``mu`` of the unsupported cells, with their between-cell spread
        ``tau``): ``expected_share``, ``ci_low``/``ci_high`` (2.5-97.5% of the
        simulated shares), ``observed_share``, ``p_exceed`` (share of
        simulations at or above the observed share).
    tests : pandas.DataFrame
        Supported vs unsupported: one row per group, rule (``point``,
        ``fdr``, ``posterior`` for improved/not; ``change`` for the change
        itself) and test, with ``estimate``, ``scale`` (what the estimate
        is), ``se``, ``ci_low``, ``ci_high``, ``statistic``, ``p_value``,
        ``p_holm`` (Holm over the group's tests), ``mc_se`` (Monte Carlo SE of
        a permutation p-value), ``method`` and ``note``.
    baseline : pandas.DataFrame
        Regression to the mean: per group the baselines of supported and
        unsupported cells, their within-country difference, the support
        effect on the change unadjusted (difference in differences) and
        adjusted for the baseline (ANCOVA), and the change model's support
        effect when given.
    permutation : pandas.DataFrame
        The within-country permutation test per group and statistic
        (``rule``: each rule's improved/not, ``change`` and ``baseline``):
        ``observed``, ``null_mean`` (mean of the permutation distribution, the
        centre of the two-sided test), ``p_value``, ``mc_se``, ``exact``
        (every arrangement enumerated), ``n`` (draws) and ``arrangements``
        (distinct within-country arrangements).
    permutation_draws : pandas.DataFrame
        The permutation distribution itself, long: ``group``, ``rule``,
        ``draw``, ``statistic`` (supported minus unsupported mean of the
        permuted labels), so that it can be plotted (:meth:`plot`) and the
        p-value recomputed (:meth:`permutation_p_value`).  Left out of
        :meth:`to_dict`.
    cells : pandas.DataFrame
        The audited cells: ``country``, ``group``, ``factor``,
        ``supported``, ``baseline``, ``estimate``, ``se``, ``p_adjusted``,
        the rule decisions ``improved_point``, ``improved_fdr`` and (with a
        change model) ``p_improved``, ``improved_posterior``.
    verdict : str
        Plain-language conclusion with the numbers, one paragraph per group.
    rules, tests_run : tuple of str
        What was computed.
    significance, ci : float
        Test level and interval level.
    n_perm, n_boot : int
        Permutations; country-bootstrap resamples of the share intervals.
    seed : int
        Seed of the permutations, resamples and null simulations.
    """

    shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    nulls: pd.DataFrame = field(default_factory=pd.DataFrame)
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline: pd.DataFrame = field(default_factory=pd.DataFrame)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    permutation: pd.DataFrame = field(default_factory=pd.DataFrame)
    permutation_draws: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdict: str = ""
    rules: tuple = RULES
    tests_run: tuple = TESTS
    significance: float = 0.05
    ci: float = 0.95
    n_perm: int = 10_000
    n_boot: int = 2000
    seed: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """Every number of the audit in one long table (``section`` says which table it came from).

        The permutation draws are not in it (``.permutation_draws``); their summary is (``permutation``).
        """
        parts = []
        for name in ("shares", "nulls", "tests", "baseline", "permutation"):
            t = getattr(self, name).copy()
            t.insert(0, "section", name)
            parts.append(t)
        return pd.concat(parts, ignore_index=True, sort=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of every table but the permutation draws (kept in ``.permutation_draws``)."""
        out = super().to_dict()
        out.pop("permutation_draws", None)
        return out

    def permutation_null(self, group: Any, rule: str = "point") -> dict[str, Any]:
        """The permutation distribution of one group and statistic, with the observed value.

        Parameters
        ----------
        group : str
            Respondent group.
        rule : str
            A rule of the audit (improved/not), ``"change"`` or ``"baseline"``.

        Returns
        -------
        dict
            ``statistic`` (ndarray of the draws), ``observed``, ``null_mean``,
            ``exact``, ``p_value``, ``mc_se``; accepted as ``permutation=`` by
            :func:`cips_stats.plotting.claim_audit`.
        """
        t = self.permutation
        row = t[(t["group"] == group) & (t["rule"] == rule)] if len(t) else t
        if row.empty:
            have = sorted({(str(a), str(b)) for a, b in zip(t.get("group", []), t.get("rule", []))})
            raise _bad("group, rule", (group, rule), f"one of the audited pairs {have}")
        r = row.iloc[0]
        d = self.permutation_draws
        stat = d.loc[(d["group"] == group) & (d["rule"] == rule), "statistic"].to_numpy(dtype=float)
        return {"statistic": stat, "observed": float(r["observed"]), "null_mean": float(r["null_mean"]),
                "exact": bool(r["exact"]), "p_value": float(r["p_value"]), "mc_se": float(r["mc_se"])}

    def permutation_p_value(self, group: Any, rule: str = "point") -> float:
        """The permutation p-value recomputed from the kept draws (equals the ``tests`` table's)."""
        nd = self.permutation_null(group, rule)
        p, _ = permutation_p_value(nd["statistic"], nd["observed"], nd["null_mean"], exact=nd["exact"])
        return float(p)

    def plot(self, group: Any = None, rule: str | None = None, **kwargs: Any) -> Any:
        """Figure of the shares against their nulls and of the permutation distribution.

        Parameters
        ----------
        group : str, optional
            One group (default: the first audited group).
        rule : str, optional
            The statistic of the permutation panel (default: the first rule).
        **kwargs
            Passed to :func:`cips_stats.plotting.claim_audit` (labels, title).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from . import plotting

        if group is None:
            group = self.shares["group"].iloc[0] if len(self.shares) else None
        rule = rule or self.rules[0]
        perm = self.permutation_null(group, rule) if len(self.permutation) else None
        label = "Difference in shares improved" if rule in RULES else f"Difference in mean {rule}"
        kwargs.setdefault("statistic_label", label)
        return plotting.claim_audit(self.shares, self.nulls, permutation=perm, group=group, **kwargs)

    def __str__(self) -> str:
        return self.verdict


_PERM_COLS = ["group", "rule", "observed", "null_mean", "p_value", "mc_se", "exact", "n", "arrangements"]


# ------------------------------------------------------------------------------------ the inputs
def _is_indicators(x: Any) -> bool:
    # duck-typed: the Indicators result of cs.estimate.indicators (its module may move)
    return type(x).__name__ == "Indicators" and all(hasattr(x, a) for a in ("cells", "factors", "estimates",
                                                                                  "replicates"))


def _is_cell_changes(x: Any) -> bool:
    return hasattr(x, "table") and hasattr(x, "replicates") and hasattr(x, "baseline_replicates") and \
        isinstance(getattr(x, "table"), pd.DataFrame) and {"estimate", "se", "significant"} <= set(x.table.columns)


def _is_change_model(x: Any) -> bool:
    return hasattr(x, "prob_improved") and hasattr(x, "change_draws") and hasattr(x, "cells")


def _resolve_input(obj: Any, cell_changes: Any, rules: tuple, ci: float, significance: float) -> tuple[Any, Any]:
    from . import change as _change

    model = None
    if _is_change_model(obj):
        model = obj
        cc = cell_changes
        if cc is None:
            for attr in ("cell_changes", "changes"):
                cand = getattr(obj, attr, None)
                if _is_cell_changes(cand):
                    cc = cand
                    break
        if cc is None:
            ind = getattr(obj, "indicators", None)
            if _is_indicators(ind):
                cc = _change.cell_changes(ind, ci=ci, significance=significance)
        if cc is None and any(r in rules for r in ("point", "fdr")):
            raise DataError("The point and fdr rules need the cell changes: pass cell_changes="
                            "cs.change.cell_changes(indicators) with the change model.",
                            [Problem("cell_changes", "Cell changes missing.", column="cell_changes")])
    elif _is_cell_changes(obj):
        cc = obj
    elif _is_indicators(obj):
        cc = _change.cell_changes(obj, ci=ci, significance=significance)
    else:
        raise _bad("indicators_or_change", type(obj).__name__,
                   "Indicators (cs.estimate.indicators), CellChanges (cs.change.cell_changes) or a fitted "
                   "change model (cs.change.fit)")
    if cell_changes is not None and not _is_cell_changes(cell_changes):
        raise _bad("cell_changes", type(cell_changes).__name__, "a CellChanges result (cs.change.cell_changes)")
    if "posterior" in rules and model is None:
        msg = ("The posterior rule (P(change > 0) > 0.95) needs a fitted change model: pass "
               "cs.change.fit(indicators, supported=...) instead of indicators or cell changes, or drop "
               "'posterior' from rules=.")
        raise PosteriorRequiredError(msg, [Problem("posterior_needs_model", msg, column="rules", value="posterior")])
    return cc, model


def _model_cells(model: Any) -> tuple[pd.DataFrame, np.ndarray]:
    cells = model.cells.reset_index(drop=True)
    draws = np.asarray(model.change_draws(), dtype=np.float64)
    if draws.ndim != 2 or draws.shape[1] != len(cells):
        raise ModelError("The change model's change_draws() do not match its cells.",
                         {"draws_shape": list(draws.shape), "n_cells": len(cells)})
    return cells, draws


# ----------------------------------------------------------------------------------- statistics
def _share_intervals(codes: np.ndarray, labels: np.ndarray, D: np.ndarray, n_boot: int,
                     rng: np.random.Generator, level: float) -> dict[str, np.ndarray]:
    """Intervals of the supported / unsupported shares and of their difference, countries as clusters.

    Shares: Wilson score interval on the effective number of cells ``n / deff``, with the design effect
    ``deff = max(1, v_cluster / (p (1 - p) / n))`` of the ratio estimator across countries (linearised,
    with the ``C / (C - 1)`` factor); it stays informative at shares of 0 or 1.  Difference: percentile
    interval of ``n_boot`` resamples of whole countries.
    """
    C = int(codes.max()) + 1
    z = float(ndtri(1 - (1 - level) / 2))
    out: dict[str, np.ndarray] = {}
    sums = {}
    for name, m in (("supported", labels), ("unsupported", ~labels)):
        k = np.bincount(codes, weights=m.astype(float), minlength=C)                     # (C,)
        a = np.stack([np.bincount(codes, weights=D[:, j] * m, minlength=C) for j in range(D.shape[1])], 1)
        sums[name] = (k, a)
        n = k.sum()
        p = a.sum(axis=0) / n                                                           # (R,)
        resid = a - p[None, :] * k[:, None]
        v = C / max(C - 1, 1) * (resid ** 2).sum(axis=0) / n ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            deff = np.where((p > 0) & (p < 1), v / (p * (1 - p) / n), 1.0)
        deff = np.maximum(deff, 1.0)
        ne = n / deff
        den = 1 + z * z / ne
        centre = (p + z * z / (2 * ne)) / den
        half = z * np.sqrt(p * (1 - p) / ne + z * z / (4 * ne * ne)) / den
        out[name] = np.vstack([np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)])
        out[name + "_deff"] = deff
    W = rng.multinomial(C, np.full(C, 1.0 / C), size=n_boot).astype(np.float64)        # (B, C)
    (ks, a_s), (ku, a_u) = sums["supported"], sums["unsupported"]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (W @ a_s) / (W @ ks)[:, None] - (W @ a_u) / (W @ ku)[:, None]
    out["difference"] = np.nanquantile(diff, [(1 - level) / 2, 1 - (1 - level) / 2], axis=0)
    return out


def _null_shares(est: np.ndarray, se: np.ndarray, labels: np.ndarray, rules: Sequence[str], q: float,
                 n_sim: int, rng: np.random.Generator, observed: dict[str, tuple[float, float]],
                 level: float) -> list[dict[str, Any]]:
    unsup = ~labels
    mu = float(est[unsup].mean()) if unsup.any() else float("nan")
    tau2 = float(max(0.0, est[unsup].var(ddof=1) - np.mean(se[unsup] ** 2))) if unsup.sum() > 1 else 0.0
    z_post = float(ndtri(POSTERIOR_IMPROVED))
    rows = []
    Z = rng.standard_normal((n_sim, len(est)))
    for scen, m, t2 in (("no_change", 0.0, 0.0), ("common_drift", mu, tau2)):
        if not np.isfinite(m):
            continue
        sim = m + np.sqrt(se ** 2 + t2) * Z
        for rule in rules:
            if rule == "point":
                dec = sim > 0
            elif rule == "fdr":
                p = 2.0 * ndtr(-np.abs(sim / se))
                dec = _bh_reject(p, q) & (sim > 0)
            else:
                dec = sim / se > z_post
            for setname, mask in (("supported", labels), ("unsupported", unsup)):
                if not mask.any():
                    continue
                sh = dec[:, mask].mean(axis=1)
                obs = observed[rule][0 if setname == "supported" else 1]
                rows.append({"rule": rule, "set": setname, "scenario": scen, "mu": m, "tau": math.sqrt(t2),
                             "expected_share": float(sh.mean()),
                             "ci_low": float(np.quantile(sh, (1 - level) / 2)),
                             "ci_high": float(np.quantile(sh, 1 - (1 - level) / 2)),
                             "observed_share": obs, "p_exceed": float((sh >= obs - 1e-12).mean())})
    return rows


def _degenerate(labels: np.ndarray, y: np.ndarray) -> str | None:
    """Why a logistic model of ``y`` on ``labels`` has no finite estimate, or None."""
    if y.all() or not y.any():
        return "outcome constant: every cell or no cell improved"
    for name, m in (("supported", labels), ("unsupported", ~labels)):
        if y[m].all() or not y[m].any():
            return (f"separation: every {name} cell has the same outcome, so the odds ratio is not finite "
                    "(the permutation and CMH tests still apply)")
    return None


def _test_row(rule: str, test: str, **kw: Any) -> dict[str, Any]:
    row = {"rule": rule, "test": test, "estimate": np.nan, "scale": "", "se": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "statistic": np.nan, "p_value": np.nan, "mc_se": np.nan, "method": "", "note": ""}
    row.update(kw)
    return row


def _cmh(codes: np.ndarray, labels: np.ndarray, y: np.ndarray, level: float) -> dict[str, Any]:
    from statsmodels.stats.contingency_tables import StratifiedTable

    C = int(codes.max()) + 1
    t = np.zeros((2, 2, C))
    # rows: supported / unsupported; columns: improved / not
    np.add.at(t, (np.where(labels, 0, 1), np.where(y, 0, 1), codes), 1.0)
    n_k = t.sum(axis=(0, 1))
    informative = (t.sum(axis=1) > 0).all(axis=0) & (t.sum(axis=0) > 0).all(axis=0) & (n_k > 1)
    if informative.sum() == 0:
        return {"note": "no country has both supported and unsupported cells with both outcomes"}
    st = StratifiedTable(t[:, :, informative])
    with np.errstate(invalid="ignore", divide="ignore"):
        res = st.test_null_odds(correction=False)
        orr = float(st.oddsratio_pooled)
        lo, hi = st.oddsratio_pooled_confint(alpha=1.0 - level)
    return {"estimate": orr, "ci_low": float(lo), "ci_high": float(hi), "statistic": float(res.statistic),
            "p_value": float(res.pvalue), "note": f"{int(informative.sum())} informative countries"}


def _gee(codes: np.ndarray, labels: np.ndarray, y: np.ndarray, cov: str, level: float) -> dict[str, Any]:
    """Logistic GEE of improved on supported, country clusters: the sandwich (robust) row and the
    Mancl–DeRouen bias-reduced row (``"bc"``, with a t reference on C - 1 df)."""
    import statsmodels.api as sm
    from statsmodels.genmod.generalized_estimating_equations import GEE

    why = _degenerate(labels, y)
    if why:
        return {"note": why, "bc": {"note": why}}
    X = np.column_stack([np.ones(len(y)), labels.astype(float)])
    cs_ = sm.cov_struct.Exchangeable() if cov == "exchangeable" else sm.cov_struct.Independence()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = GEE(y.astype(float), X, groups=codes, family=sm.families.Binomial(),
                      cov_struct=cs_).fit(maxiter=100, cov_type="bias_reduced")
        except Exception as exc:  # statsmodels raises plain errors on separation/singular fits
            msg = f"GEE failed: {type(exc).__name__}: {exc}"
            return {"note": msg, "bc": {"note": msg}}
    b = float(fit.params[1])
    se = float(fit.standard_errors(cov_type="robust")[1])
    se_bc = float(fit.standard_errors(cov_type="bias_reduced")[1])
    z = float(ndtri(1 - (1 - level) / 2))
    C = int(codes.max()) + 1
    t = float(_st.t.ppf(1 - (1 - level) / 2, C - 1))
    note = ""
    if cov == "exchangeable":
        note = f"within-country correlation {float(cs_.dep_params):.3f}"
    if caught:
        note += ("; " if note else "") + "; ".join(sorted({type(w.message).__name__ for w in caught}))
    out = {"estimate": math.exp(b), "se": se, "ci_low": math.exp(b - z * se), "ci_high": math.exp(b + z * se),
           "statistic": b / se, "p_value": float(2 * ndtr(-abs(b / se))),
           "note": "sandwich SE, normal reference" + ("; " + note if note else ""), "_coef": b}
    out["bc"] = {"estimate": math.exp(b), "se": se_bc, "ci_low": math.exp(b - t * se_bc),
                 "ci_high": math.exp(b + t * se_bc), "statistic": b / se_bc,
                 "p_value": float(2 * _st.t.sf(abs(b / se_bc), C - 1)),
                 "note": f"Mancl-DeRouen bias-reduced sandwich SE, t reference with {C - 1} df"
                         + ("; " + note if note else "")}
    return out


def random_intercept_logit(y: np.ndarray, X: np.ndarray, codes: np.ndarray, *, n_nodes: int = 30) -> dict[str, Any]:
    """Maximum likelihood of a logistic model with a normal random intercept per cluster (Gauss–Hermite).

    ``logit P(y_ij = 1) = x_ij' beta + u_j``, ``u_j ~ N(0, sigma^2)``; the
    marginal likelihood of each cluster is integrated by ``n_nodes``-point
    Gauss–Hermite quadrature (as ``lme4::glmer(..., nAGQ = n_nodes)``, but
    with nodes centred at 0 rather than at the conditional modes, which is
    accurate for the small random-intercept SDs of cells within countries).

    Parameters
    ----------
    y : ndarray of {0, 1}, shape (N,)
    X : ndarray, shape (N, P)
        Fixed-effect design (with an intercept column).
    codes : ndarray of int, shape (N,)
        Cluster of each row, 0..C-1.
    n_nodes : int
        Quadrature nodes.

    Returns
    -------
    dict
        ``beta``, ``se`` (from the inverse numerical Hessian of the
        log-likelihood in beta and log sigma), ``sigma``, ``loglik``,
        ``converged``.
    """
    from scipy.optimize import minimize
    from scipy.special import log_expit
    from statsmodels.tools.numdiff import approx_hess3

    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
    logw = np.log(weights) - 0.5 * np.log(np.pi)
    C = int(codes.max()) + 1
    sign = np.where(y.astype(bool), 1.0, -1.0)[:, None]
    P = X.shape[1]
    A = np.zeros((C, len(y)))
    A[codes, np.arange(len(y))] = 1.0                                                  # cluster sums

    def negll(theta: np.ndarray) -> float:
        beta, log_s = theta[:P], theta[P]
        eta = (X @ beta)[:, None] + np.sqrt(2.0) * np.exp(log_s) * nodes[None, :]      # (N, Q)
        per = A @ log_expit(sign * eta) + logw[None, :]                                # (C, Q)
        top = per.max(axis=1)
        return -float((top + np.log(np.exp(per - top[:, None]).sum(axis=1))).sum())

    p0 = np.clip(y.mean(), 0.02, 0.98)
    start = np.r_[np.log(p0 / (1 - p0)), np.zeros(P - 1), np.log(0.5)]
    res = minimize(negll, start, method="BFGS")
    theta = res.x
    if theta[P] < np.log(1e-4):   # sigma at the boundary: refit with the variance fixed near 0
        theta[P] = np.log(1e-4)
    H = approx_hess3(theta, negll)
    with np.errstate(invalid="ignore"):
        try:
            cov = np.linalg.inv(H)
            se = np.sqrt(np.diag(cov))[:P]
        except np.linalg.LinAlgError:
            se = np.full(P, np.nan)
    return {"beta": theta[:P], "se": se, "sigma": float(np.exp(theta[P])), "loglik": -float(res.fun),
            "converged": bool(res.success)}


def _mixed(codes: np.ndarray, labels: np.ndarray, y: np.ndarray, level: float) -> dict[str, Any]:
    why = _degenerate(labels, y)
    if why:
        return {"note": why}
    X = np.column_stack([np.ones(len(y)), labels.astype(float)])
    fit = random_intercept_logit(y.astype(float), X, codes)
    b, sd = float(fit["beta"][1]), float(fit["se"][1])
    if not np.isfinite(sd) or sd <= 0:
        return {"note": "mixed model: singular information matrix (separation?)"}
    z = float(ndtri(1 - (1 - level) / 2))
    note = f"maximum likelihood, 30-point Gauss-Hermite; country SD {fit['sigma']:.3f}"
    if not fit["converged"]:
        note += "; optimiser did not report convergence"
    return {"estimate": math.exp(b), "se": sd, "ci_low": math.exp(b - z * sd), "ci_high": math.exp(b + z * sd),
            "statistic": b / sd, "p_value": float(2 * ndtr(-abs(b / sd))), "_coef": b, "note": note}


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (as statsmodels ``multipletests(method="holm")``)."""
    n = len(p)
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate((n - np.arange(n)) * p[order]))
    out = np.empty(n)
    out[order] = adj
    return out


def _ols_cluster(y: np.ndarray, labels: np.ndarray, codes: np.ndarray, level: float,
                 covariate: np.ndarray | None = None) -> dict[str, Any]:
    """OLS of ``y`` on support (and a covariate) with country fixed effects and a cluster-robust SE.

    The fixed effects are absorbed by demeaning within country (Frisch–Waugh–Lovell: the same
    coefficients and residuals as the regression on country dummies, without its cells x countries
    matrix); the cluster-robust covariance of statsmodels is then rescaled by ``(N - p) / (N - p - C)``
    so that its small-sample factor counts the C absorbed parameters, as with the dummies, and the t
    reference has C - 1 degrees of freedom (statsmodels' rule for clustered inference).
    """
    import statsmodels.api as sm

    C = int(codes.max()) + 1
    size = np.bincount(codes, minlength=C).astype(float)

    def within(v: np.ndarray) -> np.ndarray:
        return v - (np.bincount(codes, weights=v, minlength=C) / size)[codes]

    cols = [labels.astype(float)]
    if covariate is not None:
        cols.append(covariate - covariate.mean())
    X = np.column_stack([within(c) for c in cols])
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return {"note": "support is constant within every country: no within-country contrast"}
    N, P = X.shape
    if N - P - C <= 0:
        return {"note": "no residual degrees of freedom after the country fixed effects"}
    fit = sm.OLS(within(y), X).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    b = float(fit.params[0])
    se = float(fit.bse[0]) * math.sqrt((N - P) / (N - P - C))
    t_crit = float(_st.t.ppf(1 - (1 - level) / 2, C - 1))
    out = {"estimate": b, "se": se, "ci_low": b - t_crit * se, "ci_high": b + t_crit * se,
           "statistic": b / se, "p_value": float(2 * _st.t.sf(abs(b / se), C - 1)),
           "note": f"country fixed effects, cluster-robust SE, t with {C - 1} df"}
    if covariate is not None:
        out["slope"] = float(fit.params[1])
        out["note"] += f"; baseline slope {float(fit.params[1]):.3f}"
    return out


def _posterior_support_effect(model: Any, group: str, level: float) -> dict[str, Any] | None:
    se_ = getattr(model, "support_effect", None)
    if se_ is None:
        return None
    if isinstance(se_, pd.DataFrame):
        t = se_
        if "group" in t.columns:
            t = t[t["group"] == group]
        if t.empty:
            return None
        r = t.iloc[0]
        est = float(r.get("mean", r.get("estimate", np.nan)))
        return {"estimate": est, "ci_low": float(r.get("ci_low", np.nan)), "ci_high": float(r.get("ci_high", np.nan)),
                "se": float(r.get("sd", r.get("se", np.nan)))}
    arr = np.asarray(se_, dtype=float).ravel()
    if arr.size == 1:
        return {"estimate": float(arr[0])}
    lo, hi = np.quantile(arr, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"estimate": float(arr.mean()), "se": float(arr.std(ddof=1)), "ci_low": float(lo), "ci_high": float(hi)}


# ------------------------------------------------------------------------------------- the audit
def audit(indicators_or_change: Any, *, supported: pd.DataFrame, rules: Sequence[str] = RULES,
          tests: Sequence[str] = TESTS, cell_changes: Any = None, n_perm: int = 10_000, n_boot: int = 2000,
          n_null: int = 2000, significance: float = 0.05, ci: float = 0.95, seed: int | None = None) -> ClaimAudit:
    """Audit a claim that supported cells improved more often than unsupported ones.

    Parameters
    ----------
    indicators_or_change : Indicators, CellChanges or change model
        Indicators (the cell changes are computed here), cell changes
        (:func:`cips_stats.change.cell_changes`) or a fitted change model
        (:func:`cips_stats.change.fit`; needed by the posterior rule).
    supported : pandas.DataFrame
        The support table: ``country``, ``factor``, ``supported`` (bool), one
        row per (country, factor), as ``cs.simulate(seed=1).truth["supported"]``.
        Cells of the indicators without a row (e.g. a factor outside the
        programme) are not audited; rows of countries surveyed once are ignored.
    rules : sequence of {"point", "fdr", "posterior"}
        Rules calling a cell improved: point change > 0; change significantly
        positive after FDR control (the cell changes' ``significant``, i.e.
        their CI excludes 0 after Benjamini–Hochberg); posterior
        ``P(change > 0) > 0.95``.
    tests : sequence of str
        Any of ``"permutation"`` (support labels shuffled within country),
        ``"cmh"`` (Cochran–Mantel–Haenszel across countries), ``"fisher"``
        (pooled 2x2, ignores countries), ``"gee"`` (logistic GEE with country
        clusters, exchangeable and independence with sandwich SEs, and
        exchangeable with the Mancl–DeRouen bias-reduced SE and a t
        reference, ``gee_exchangeable_bc``), ``"mixed"`` (logistic
        model with a country random intercept), ``"welch"`` (Welch t on the
        changes, ignores countries), ``"did"`` (difference in differences with
        country fixed effects, cluster-robust SE), ``"ancova"`` (the same
        adjusted for the baseline).
    cell_changes : CellChanges, optional
        With a change model: the cell changes for the point and fdr rules
        (else taken from the model when it carries them).
    n_perm : int
        Monte Carlo permutations; when the number of distinct within-country
        arrangements is at most ``n_perm`` they are enumerated exactly.
    n_boot : int
        Country-bootstrap resamples of the share intervals.
    n_null : int
        Simulated surveys of the null shares.
    significance : float
        Level of the tests (and of the cell changes computed from indicators).
    ci : float
        Level of the intervals.
    seed : int, optional
        Seed (``None`` draws one, recorded in ``provenance.seed``).

    Returns
    -------
    ClaimAudit
        ``.verdict``, ``.shares``, ``.nulls``, ``.tests``, ``.baseline``,
        ``.cells``; ``.to_frame()`` holds every number.

    Raises
    ------
    PosteriorRequiredError
        (a :class:`~cips_stats.errors.DataError`) the posterior rule without a change model.
    DataError
        A support table with unknown or duplicated cells or non-boolean
        labels; unknown rules or tests; no supported or no unsupported cell.

    Notes
    -----
    Everything is computed per respondent group.  The share intervals treat
    countries as clusters (the sampled units of the claim): Wilson intervals
    on the effective number of cells for the shares, whole-country resamples
    for their difference.  Sign counts are not smooth in the cell estimates,
    so the cells' bootstrap replicates would give intervals biased towards 50%.  The permutation test keeps each
    country's number of supported cells and shuffles which ones; its
    statistic is the difference between the mean outcome of supported and
    unsupported cells and its p-value is two-sided, ``(1 + hits) / (1 +
    n_perm)`` by Monte Carlo (with its SE) or exact by enumeration.  All
    permutations are one array operation.  The linear algebra runs on one
    BLAS thread: its products are small, extra threads only wait (on a busy
    machine they made the audit several times slower at 180 countries), and
    the numbers then do not depend on the machine's thread count (the mixed
    model's optimiser moves by about 1e-7 with it).  See
    ``methodology/claims.md``.

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=3, n_countries=6, n_repeat=6, n_officials=90, n_private=90)
    >>> ind = cs.estimate.indicators(sim.data, n_boot=100, seed=3)
    >>> a = cs.claims.audit(ind, supported=sim.truth["supported"], rules=("point", "fdr"),
    ...                     tests=("permutation", "cmh", "did"), n_perm=500, seed=1)
    >>> sorted(a.shares["set"].unique())
    ['difference', 'supported', 'unsupported']
    >>> "permutation" in a.verdict
    True
    """
    significance = _level("significance", significance)
    ci = _level("ci", ci)
    n_perm = _count("n_perm", n_perm, 1)
    n_boot = _count("n_boot", n_boot, 1)
    n_null = _count("n_null", n_null, 1)
    rules = _choices("rules", rules, RULES)
    tests = _choices("tests", tests, TESTS)
    if not rules:
        raise _bad("rules", rules, "at least one rule")
    seed = resolve_seed(seed)
    cc, model = _resolve_input(indicators_or_change, cell_changes, rules, ci, significance)
    cells, q_fdr, positive, n_unlabelled, n_no_change = _audited_cells(indicators_or_change, cc, model, supported,
                                                                        rules, significance)
    flags = _input_flags(model, cc, cells, n_unlabelled, n_no_change)
    spec = _AuditSpec(rules=rules, tests=tests, n_perm=n_perm, n_boot=n_boot, n_null=n_null,
                      significance=significance, ci=ci, q_fdr=q_fdr, model=model, positive=positive,
                      rng=np.random.default_rng(seed))
    parts: list[_GroupAudit] = []
    for g in pd.unique(cells["group"]):
        gc = cells[cells["group"] == g].reset_index(drop=True)
        labels = gc["supported"].to_numpy(bool)
        if labels.all() or not labels.any():
            flags.append(Flag("group_not_comparable", f"{g}: only {'supported' if labels.any() else 'unsupported'} "
                              "cells; the group is not audited.", severity="warning", where={"group": g}))
            continue
        # one BLAS thread: the products here are small (cells x countries) and extra threads only spin,
        # which on a busy machine made the audit 4 times slower
        with one_thread():
            part = _audit_group(g, gc, spec)
        flags.extend(part.flags)
        parts.append(part)
    source = cc if cc is not None else model
    prov = Provenance.build("claims.audit",
                            data_fingerprint=getattr(getattr(source, "provenance", None), "data_fingerprint", None),
                            seed=seed, options={"rules": list(rules), "tests": list(tests), "n_perm": n_perm,
                                                "n_boot": n_boot, "n_null": n_null, "significance": significance,
                                                "ci": ci, "input": type(indicators_or_change).__name__})
    return _claim_audit(parts, cells, spec, seed=seed, provenance=prov, flags=flags)


@dataclass(frozen=True)
class _AuditSpec:
    """What every group of an audit shares: the options, the change model's draws (``positive``: change > 0,
    draws x model cells) and the random stream."""

    rules: tuple
    tests: tuple
    n_perm: int
    n_boot: int
    n_null: int
    significance: float
    ci: float
    q_fdr: float
    model: Any
    positive: np.ndarray | None
    rng: np.random.Generator


@dataclass
class _GroupAudit:
    """The rows one respondent group adds to each table of the audit."""

    shares: list = field(default_factory=list)
    nulls: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    baseline: list = field(default_factory=list)
    permutation: list = field(default_factory=list)
    draws: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    verdict: str = ""


def _choices(name: str, values: Any, allowed: tuple) -> tuple:
    values = (values,) if isinstance(values, str) else tuple(values)
    for v in values:
        if v not in allowed:
            raise _bad(name, v, f"{name} among {allowed}")
    return values


def _audited_cells(obj: Any, cc: Any, model: Any, supported: Any, rules: tuple,
                   significance: float) -> tuple[pd.DataFrame, float, np.ndarray | None, int, int]:
    """The labelled cells with their rule decisions, sorted by group, country and factor.

    Returns the cells, the FDR level of the cell changes, the change model's draws of a positive change
    (bool, draws x model cells; None without the posterior rule), the number of cell changes without a support row and of support rows of countries
    with no change.
    """
    if cc is not None:
        base = cc.table[["country", "group", "factor", "baseline", "estimate", "se", "p_adjusted",
                         "significant"]].copy()
        q_fdr = float(getattr(cc, "significance", significance))
    else:
        base = model.cells[["country", "group", "factor", "baseline"]].copy()
        for c in ("estimate", "se", "p_adjusted"):
            base[c] = np.nan
        base["significant"] = False
        q_fdr = significance
    known_c, known_f = _known_cells(obj, model, cc, base)
    sup = _support_table(supported, known_c, known_f)
    cells = base.merge(sup, on=["country", "factor"], how="inner", sort=False)
    n_unlabelled = len(base) - len(cells)
    n_no_change = int((~sup["country"].isin(set(base["country"]))).sum())
    positive = None
    if model is not None and "posterior" in rules:
        cells, positive = _attach_posterior(cells, model)
    cells["improved_point"] = cells["estimate"] > 0
    cells["improved_fdr"] = cells["significant"].astype(bool) & (cells["estimate"] > 0)
    if "posterior" in rules:
        cells["improved_posterior"] = cells["p_improved"] > POSTERIOR_IMPROVED
    cells = cells.sort_values(["group", "country", "factor"], kind="stable").reset_index(drop=True)
    for setname, m in (("supported", cells["supported"]), ("unsupported", ~cells["supported"])):
        if not m.any():
            msg = f"No {setname} cell with a change to audit (check the support table and the indicators)."
            raise DataError(msg, [Problem("support_both_sets", msg, column="supported")])
    return cells, q_fdr, positive, n_unlabelled, n_no_change


def _attach_posterior(cells: pd.DataFrame, model: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """Add the model's ``p_improved`` and ``_pos`` (the cell's column in the model's draws); the draws of a
    positive change (bool, draws x model cells)."""
    mcells, draws = _model_cells(model)
    pi = model.prob_improved[["country", "group", "factor", "p_improved"]]
    cells = cells.merge(pi, on=["country", "group", "factor"], how="left", sort=False)
    pos = pd.MultiIndex.from_frame(mcells[["country", "group", "factor"]]).get_indexer(
        pd.MultiIndex.from_frame(cells[["country", "group", "factor"]]))
    if (pos < 0).any() or cells["p_improved"].isna().any():
        miss = cells.loc[(pos < 0) | cells["p_improved"].isna().to_numpy(), ["country", "group", "factor"]]
        probs = [Problem("model_cell_missing", "Audited cell absent from the change model.",
                         value=tuple(_py(v) for v in r)) for r in miss.head(20).itertuples(index=False)]
        raise DataError(f"{len(miss)} audited cell(s) are not in the change model: fit the model and the cell "
                        "changes on the same indicators.", probs)
    cells["_pos"] = pos
    return cells, draws > 0


def _input_flags(model: Any, cc: Any, cells: pd.DataFrame, n_unlabelled: int, n_no_change: int) -> list[Flag]:
    flags: list[Flag] = []
    if model is not None and getattr(model, "reliable", True) is False:
        flags.append(Flag("change_model_unreliable", "The change model failed its convergence gates "
                          "(R-hat, effective sample size or divergences): the posterior rule and the model's support "
                          "effect are not reliable.", severity="warning"))
    if n_no_change:
        flags.append(Flag("support_rows_without_change", f"{n_no_change} row(s) of the support table name countries "
                          "with no change (surveyed once): they are not audited.", severity="info",
                          where={"n": n_no_change}))
    if n_unlabelled:
        flags.append(Flag("unlabelled_cells", f"{n_unlabelled} cell change(s) have no row in the support table "
                          "and are not audited.", severity="info", where={"n": n_unlabelled}))
    if cells["estimate"].notna().any() and "suppressed" in getattr(cc, "table", pd.DataFrame()).columns:
        n_sup = int(cc.table.merge(cells[["country", "group", "factor"]])["suppressed"].sum())
        if n_sup:
            flags.append(Flag("suppressed_cells", f"{n_sup} audited cell(s) are suppressed for publication; they "
                              "are used for inference and must not be shown individually.", severity="info",
                              where={"n": n_sup}))
    return flags


def _group_flags(g: Any, codes: np.ndarray, labels: np.ndarray, C: int) -> list[Flag]:
    flags = []
    k_c = np.bincount(codes, weights=labels.astype(float), minlength=C)
    m_c = np.bincount(codes, minlength=C)
    n_mixed = int(((k_c > 0) & (k_c < m_c)).sum())
    if n_mixed < C:
        flags.append(Flag("uninformative_countries", f"{g}: {C - n_mixed} of {C} countries have only supported "
                          "or only unsupported cells; within-country comparisons ignore them.",
                          severity="caution", where={"group": g, "n": C - n_mixed}))
    if C < FEW_CLUSTERS:
        flags.append(Flag("few_clusters", f"{g}: {C} countries; cluster-robust and GEE sandwich SEs are "
                          f"optimistic with fewer than {FEW_CLUSTERS} clusters (the permutation and CMH tests "
                          "do not rely on them).", severity="info", where={"group": g, "n": C}))
    return flags


def _audit_group(g: Any, gc: pd.DataFrame, spec: _AuditSpec) -> _GroupAudit:
    """Shares, nulls, tests and the baseline rows of one respondent group (random draws in a fixed order:
    share intervals, null shares, permutations)."""
    codes, countries = pd.factorize(gc["country"], sort=True)
    labels = gc["supported"].to_numpy(bool)
    est, basev = gc["estimate"].to_numpy(float), gc["baseline"].to_numpy(float)
    se_ = gc["se"].to_numpy(float)
    out = _GroupAudit(flags=_group_flags(g, codes, labels, len(countries)))
    D = np.column_stack([gc[f"improved_{r}"].to_numpy(bool) for r in spec.rules]).astype(float)
    boot = _share_intervals(codes, labels, D, spec.n_boot, spec.rng, spec.ci)
    true_int = (_true_shares(spec.positive, gc["_pos"].to_numpy(), labels, spec.ci)
                if spec.positive is not None and "posterior" in spec.rules else {})
    out.shares, obs = _share_rows(g, spec.rules, D, labels, boot, true_int)
    if np.isfinite(est).all() and np.isfinite(se_).all():
        out.nulls = [{"group": g, **row} for row in _null_shares(est, se_, labels, spec.rules, spec.q_fdr,
                                                                  spec.n_null, spec.rng, obs, spec.ci)]
    have_change = bool(np.isfinite(est).all())
    names = [*spec.rules] + (["change", "baseline"] if have_change else [])
    Y = np.column_stack([D[:, j] for j in range(len(spec.rules))] + ([est, basev] if have_change else []))
    rows_g: list[dict[str, Any]] = []
    perm_base = None
    if "permutation" in spec.tests:
        perm = within_country_permutation(codes, labels, Y, n_perm=spec.n_perm, rng=spec.rng)
        out.permutation, out.draws, perm_tests = _permutation_rows(g, names, perm)
        rows_g += perm_tests
        if have_change:
            perm_base = (float(perm["observed"][-1]), float(perm["p_value"][-1]), float(perm["mc_se"][-1]))
    rows_g += _vote_tests(codes, labels, D, spec.rules, spec.tests, spec.ci)
    if have_change:
        change_tests, did, anc = _change_tests(codes, labels, est, basev, spec.tests, spec.ci)
        rows_g += change_tests
        out.baseline = _baseline_rows(g, codes, labels, est, basev, spec.ci, did, anc, perm_base)
    if spec.model is not None:
        out.baseline += _change_model_rows(spec.model, g, spec.ci)
    out.tests = _with_holm(rows_g, g)
    out.verdict = _verdict_group(g, spec.rules, out.shares, out.nulls, out.tests, out.baseline,
                                 spec.significance, spec.ci)
    return out


def _true_shares(positive: np.ndarray, pos: np.ndarray, labels: np.ndarray, ci: float) -> dict[str, tuple]:
    """Posterior mean and interval of the share of cells whose true change is positive.

    ``positive``: draws x model cells (bool); ``pos``: the model column of each audited cell.
    """
    ts = positive[:, pos[labels]].mean(axis=1)
    tu = positive[:, pos[~labels]].mean(axis=1)
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    return {nm: (float(arr.mean()), *np.quantile(arr, [lo, hi]).tolist())
            for nm, arr in (("supported", ts), ("unsupported", tu), ("difference", ts - tu))}


def _share_rows(g: Any, rules: tuple, D: np.ndarray, labels: np.ndarray, boot: dict,
                true_int: dict) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]]]:
    """One row per rule and set of the shares table, and the observed (supported, unsupported) shares."""
    rows, obs = [], {}
    for j, r in enumerate(rules):
        d = D[:, j]
        ss, su = float(d[labels].mean()), float(d[~labels].mean())
        obs[r] = (ss, su)
        for nm, val, n_c, n_i in (("supported", ss, int(labels.sum()), int(d[labels].sum())),
                                  ("unsupported", su, int((~labels).sum()), int(d[~labels].sum())),
                                  ("difference", ss - su, len(d), int(d.sum()))):
            row = {"group": g, "rule": r, "set": nm, "n_cells": n_c, "n_improved": n_i, "share": val,
                   "ci_low": float(boot[nm][0, j]), "ci_high": float(boot[nm][1, j]),
                   "deff": float(boot[nm + "_deff"][j]) if nm != "difference" else np.nan,
                   "interval": "country bootstrap (percentile)" if nm == "difference" else
                   "Wilson on the effective number of cells (country design effect)"}
            if r == "posterior" and true_int:
                row.update(true_share=true_int[nm][0], true_ci_low=true_int[nm][1], true_ci_high=true_int[nm][2])
            rows.append(row)
    return rows, obs


def _permutation_rows(g: Any, names: list, perm: dict[str, Any]) -> tuple[list, list, list]:
    """The permutation table's rows, its draws (long frames) and the permutation rows of the tests table."""
    kind = "exact enumeration" if perm["exact"] else "Monte Carlo"
    n_d = perm["draws"].shape[0]
    table, draws, tests = [], [], []
    for j, nm in enumerate(names):
        table.append({"group": g, "rule": nm, "observed": float(perm["observed"][j]),
                      "null_mean": float(perm["null_mean"][j]), "p_value": float(perm["p_value"][j]),
                      "mc_se": float(perm["mc_se"][j]), "exact": bool(perm["exact"]), "n": int(n_d),
                      "arrangements": float(perm["arrangements"])})
        draws.append(pd.DataFrame({"group": g, "rule": nm, "draw": np.arange(n_d), "statistic": perm["draws"][:, j]}))
        if nm == "baseline":
            continue
        tests.append(_test_row(nm, "permutation", estimate=float(perm["observed"][j]),
                               scale="difference in shares" if nm in RULES else "difference in mean change",
                               p_value=float(perm["p_value"][j]), mc_se=float(perm["mc_se"][j]),
                               method=f"within-country permutation ({kind}, {perm['n']} arrangements)",
                               note=f"{perm['arrangements']:.3g} distinct arrangements"))
    return table, draws, tests


def _vote_tests(codes: np.ndarray, labels: np.ndarray, D: np.ndarray, rules: tuple, tests: tuple,
                ci: float) -> list[dict[str, Any]]:
    """CMH, Fisher, GEE and mixed-model rows of supported vs unsupported improved/not, per rule."""
    rows = []
    for j, r in enumerate(rules):
        y = D[:, j].astype(bool)
        if "cmh" in tests:
            rows.append(_test_row(r, "cmh", scale="odds ratio (Mantel-Haenszel)",
                                  method="Cochran-Mantel-Haenszel across countries, no continuity correction",
                                  **_cmh(codes, labels, y, ci)))
        if "fisher" in tests:
            tab2 = np.array([[np.sum(labels & y), np.sum(labels & ~y)], [np.sum(~labels & y), np.sum(~labels & ~y)]])
            orr, p = _st.fisher_exact(tab2)
            rows.append(_test_row(r, "fisher", estimate=float(orr), scale="odds ratio (pooled, sample)",
                                  p_value=float(p), method="Fisher exact, pooled 2x2 (ignores countries)"))
        if "gee" in tests:
            for cov in ("exchangeable", "independence"):
                res = _gee(codes, labels, y, cov, ci)
                res.pop("_coef", None)
                bc = res.pop("bc")
                rows.append(_test_row(r, f"gee_{cov}", scale="odds ratio", method=f"GEE logistic, {cov} "
                                      "working correlation within country", **res))
                if cov == "exchangeable":
                    rows.append(_test_row(r, "gee_exchangeable_bc", scale="odds ratio",
                                          method="GEE logistic, exchangeable, small-sample corrected", **bc))
        if "mixed" in tests:
            res = _mixed(codes, labels, y, ci)
            res.pop("_coef", None)
            rows.append(_test_row(r, "mixed", scale="odds ratio (conditional on country)",
                                  method="logistic model with a country random intercept (maximum likelihood)",
                                  **res))
    return rows


def _change_tests(codes: np.ndarray, labels: np.ndarray, est: np.ndarray, basev: np.ndarray, tests: tuple,
                  ci: float) -> tuple[list[dict[str, Any]], dict | None, dict | None]:
    """Welch, difference-in-differences and ANCOVA rows on the change; the DiD and ANCOVA fits when run."""
    rows = []
    if "welch" in tests:
        t = _st.ttest_ind(est[labels], est[~labels], equal_var=False)
        dlt = float(est[labels].mean() - est[~labels].mean())
        lo, hi = t.confidence_interval(confidence_level=ci)
        rows.append(_test_row("change", "welch", estimate=dlt, scale="difference in mean change (points)",
                              se=dlt / float(t.statistic) if t.statistic else np.nan, ci_low=float(lo),
                              ci_high=float(hi), statistic=float(t.statistic), p_value=float(t.pvalue),
                              method="Welch t test (ignores countries)"))
    did = _ols_cluster(est, labels, codes, ci) if ("did" in tests or "ancova" in tests) else None
    anc = _ols_cluster(est, labels, codes, ci, covariate=basev) if "ancova" in tests else None
    if "did" in tests:
        rows.append(_test_row("change", "did", scale="support effect on the change (points)",
                              method="difference in differences: OLS of the change on support with country "
                              "fixed effects", **{k: v for k, v in did.items() if k != "slope"}))
    if "ancova" in tests:
        rows.append(_test_row("change", "ancova", scale="support effect on the change (points)",
                              method="ANCOVA: difference in differences adjusted for the baseline",
                              **{k: v for k, v in anc.items() if k != "slope"}))
    return rows, did, anc


def _baseline_rows(g: Any, codes: np.ndarray, labels: np.ndarray, est: np.ndarray, basev: np.ndarray, ci: float,
                   did: dict | None, anc: dict | None, perm_base: tuple | None) -> list[dict[str, Any]]:
    """Regression to the mean: baselines of both sets, their within-country difference, and the support
    effect on the change unadjusted (DiD) and adjusted for the baseline (ANCOVA)."""
    bdiff = _ols_cluster(basev, labels, codes, ci)
    rows = [{"group": g, "quantity": "baseline_supported", "estimate": float(basev[labels].mean()),
             "method": "mean baseline of supported cells"},
            {"group": g, "quantity": "baseline_unsupported", "estimate": float(basev[~labels].mean()),
             "method": "mean baseline of unsupported cells"},
            {"group": g, "quantity": "baseline_difference", **bdiff,
             "method": "supported - unsupported baseline within country (OLS, country fixed effects, "
                       "cluster-robust SE)",
             **({"p_permutation": perm_base[1], "mc_se": perm_base[2]} if perm_base is not None else {})}]
    did = did if did is not None else _ols_cluster(est, labels, codes, ci)
    anc = anc if anc is not None else _ols_cluster(est, labels, codes, ci, covariate=basev)
    rows.append({"group": g, "quantity": "support_effect_unadjusted", **{k: v for k, v in did.items() if k != "slope"},
                 "method": "difference in differences (country fixed effects)"})
    rows.append({"group": g, "quantity": "support_effect_adjusted", **anc,
                 "method": "ANCOVA: adjusted for the baseline (country fixed effects)"})
    return rows


def _change_model_rows(model: Any, g: Any, ci: float) -> list[dict[str, Any]]:
    pe = _posterior_support_effect(model, g, ci)
    if pe is None:
        return []
    adj = bool(getattr(model, "baseline", False) or
               (getattr(getattr(model, "provenance", None), "options", {}) or {}).get("baseline", False))
    return [{"group": g, "quantity": "support_effect_change_model", **pe,
             "method": "hierarchical change model, posterior "
                       + ("adjusted for the baseline" if adj else "not adjusted for the baseline")}]


def _with_holm(rows: list[dict[str, Any]], g: Any) -> list[dict[str, Any]]:
    """Tag the group's test rows with the group and their Holm-adjusted p-values (over the group's tests)."""
    for row in rows:
        row["group"] = g
    ps = np.array([r["p_value"] for r in rows], dtype=float)
    ok = np.isfinite(ps)
    holm = np.full(len(ps), np.nan)
    if ok.any():
        holm[ok] = _holm(ps[ok])
    for row, h in zip(rows, holm):
        row["p_holm"] = float(h)
    return rows


_TEST_COLS = ["group", "rule", "test", "estimate", "scale", "se", "ci_low", "ci_high", "statistic", "p_value",
              "p_holm", "mc_se", "method", "note"]


def _claim_audit(parts: list[_GroupAudit], cells: pd.DataFrame, spec: _AuditSpec, *, seed: int,
                 provenance: Provenance, flags: list[Flag]) -> ClaimAudit:
    """Gather the groups' rows into the tables of the result."""
    def rows(name: str) -> list:
        return [r for p in parts for r in getattr(p, name)]

    draw_parts = rows("draws")
    perm_draws = (pd.concat(draw_parts, ignore_index=True) if draw_parts
                  else pd.DataFrame(columns=["group", "rule", "draw", "statistic"]))
    return ClaimAudit(shares=pd.DataFrame(rows("shares")), nulls=pd.DataFrame(rows("nulls")),
                      tests=pd.DataFrame(rows("tests"), columns=_TEST_COLS), baseline=pd.DataFrame(rows("baseline")),
                      cells=cells.drop(columns=[c for c in ("_pos", "significant") if c in cells.columns]),
                      permutation=pd.DataFrame(rows("permutation"), columns=_PERM_COLS), permutation_draws=perm_draws,
                      verdict="\n".join(p.verdict for p in parts), rules=spec.rules, tests_run=spec.tests,
                      significance=spec.significance, ci=spec.ci, n_perm=spec.n_perm, n_boot=spec.n_boot, seed=seed,
                      provenance=provenance, flags=tuple(flags))


def _known_cells(obj: Any, model: Any, cc: Any, base: pd.DataFrame) -> tuple[set | None, set]:
    """Countries (None when unknowable) and factors the indicators know, for the support-table check."""
    ind = obj if _is_indicators(obj) else getattr(model, "indicators", None) if model is not None else None
    if _is_indicators(ind):
        return set(ind.cells["country"]), set(ind.factors)
    factors = set(getattr(cc, "factors", ()) or ()) | set(base["factor"])
    return None, factors


def _verdict_group(g: str, rules: tuple, share_rows: list, null_rows: list, tests: list, base_rows: list,
                   significance: float, ci: float) -> str:
    rule = rules[0]
    sh = {r["set"]: r for r in share_rows if r["group"] == g and r["rule"] == rule}
    s, u, d = sh["supported"], sh["unsupported"], sh["difference"]
    rule_txt = {"point": "point change > 0", "fdr": "change significant after FDR control",
                "posterior": f"P(change > 0) > {POSTERIOR_IMPROVED}"}[rule]
    parts = [f"{g} ({rule_txt}): supported {_pct(s['share'])} [{_pts(s['ci_low'])}, {_pts(s['ci_high'])}] "
             f"({s['n_improved']}/{s['n_cells']}) vs unsupported {_pct(u['share'])} "
             f"[{_pts(u['ci_low'])}, {_pts(u['ci_high'])}] ({u['n_improved']}/{u['n_cells']}); difference "
             f"{_pts(d['share'])} points [{_pts(d['ci_low'])}, {_pts(d['ci_high'])}]"]
    nul = [r for r in null_rows if r["group"] == g and r["rule"] == rule and r["set"] == "supported"]
    for r in nul:
        if r["scenario"] == "no_change":
            parts.append(f"with no true change about {_pct(r['expected_share'])} would qualify")
        else:
            parts.append(f"the common drift alone ({r['mu']:+.2f} points) would make about "
                         f"{_pct(r['expected_share'])} of the supported cells qualify")
    by = {(r["rule"], r["test"]): r for r in tests}
    perm = by.get((rule, "permutation"))
    if perm is not None and np.isfinite(perm["p_value"]):
        sig = "significant" if perm["p_value"] < significance else "not significant"
        mc = "" if perm["mc_se"] == 0 else f" (Monte Carlo SE {perm['mc_se']:.2g})"
        parts.append(f"within-country permutation {_fmt_p(perm['p_value'])}{mc}: {sig} at "
                     f"{100 * significance:g}%")
    others = []
    for t, label in (("cmh", "CMH"), ("gee_exchangeable_bc", "GEE (bias-reduced)"), ("mixed", "mixed logistic")):
        r = by.get((rule, t))
        if r is not None and np.isfinite(r["p_value"]):
            others.append(f"{label} {_fmt_p(r['p_value'])}")
    if others:
        parts.append("; ".join(others))
    b = {r["quantity"]: r for r in base_rows if r["group"] == g}
    if "baseline_difference" in b:
        bd = b["baseline_difference"]
        parts.append(f"supported cells started {abs(bd['estimate']):.2f} points "
                     f"{'lower' if bd['estimate'] < 0 else 'higher'} ({_fmt_p(bd['p_value'])})")
    if "support_effect_unadjusted" in b and np.isfinite(b["support_effect_unadjusted"].get("estimate", np.nan)):
        un = b["support_effect_unadjusted"]
        parts.append(f"support effect on the change {un['estimate']:+.2f} points "
                     f"[{un['ci_low']:+.2f}, {un['ci_high']:+.2f}] ({_fmt_p(un['p_value'])})")
    if "support_effect_adjusted" in b and np.isfinite(b["support_effect_adjusted"].get("estimate", np.nan)):
        ad = b["support_effect_adjusted"]
        parts.append(f"after baseline adjustment {ad['estimate']:+.2f} points [{ad['ci_low']:+.2f}, "
                     f"{ad['ci_high']:+.2f}] ({_fmt_p(ad['p_value'])})")
    if "support_effect_change_model" in b:
        cm = b["support_effect_change_model"]
        parts.append(f"change model support effect {cm['estimate']:+.2f} [{cm.get('ci_low', np.nan):+.2f}, "
                     f"{cm.get('ci_high', np.nan):+.2f}]")
    return "; ".join(parts) + f". Intervals {100 * ci:g}%."


# ------------------------------------------------------------------------------- from aggregates
@dataclass(frozen=True)
class AggregateComparison(Result):
    """Comparison of two published shares when only the counts are known.

    Attributes
    ----------
    supported_improved, supported_total, unsupported_improved, unsupported_total : int
        The counts compared.
    n_countries : int or None
        Countries the cells come from.
    supported_share, unsupported_share, difference : float
        The shares and their difference.
    ci_low, ci_high : float
        Newcombe (hybrid Wilson) interval of the difference at ``icc``.
    z, p_value : float
        Two-sided pooled z test of equal shares on the effective sizes at the stated ``icc``.
    p_fisher : float
        Fisher's exact test ignoring clustering.
    table : pandas.DataFrame
        One row per ``set`` (``supported``, ``unsupported``, ``difference``):
        ``improved``, ``total``, ``share``, ``ci_low``, ``ci_high`` (Wilson
        intervals of the shares on the effective sizes; Newcombe for the
        difference), ``deff`` (design effect ``1 + (m - 1) icc`` with ``m``
        cells per country in the set), ``n_eff`` (``total / deff``), ``interval``
        (which), and on the difference row ``z``, ``p_value``, ``p_fisher``.
        ``to_frame()`` returns it.
    icc : float
        The intra-country correlation assumed (0 when not given).
    sensitivity : pandas.DataFrame
        ``icc``, ``deff_supported``, ``deff_unsupported``, ``n_eff_supported``,
        ``n_eff_unsupported``, ``z``, ``p_value``, ``ci_low``, ``ci_high``,
        ``significant`` over a grid of intra-country correlations.
    assumptions : tuple of str
        Every assumption of the comparison, stated.
    verdict : str
        Plain-language conclusion.
    """

    supported_improved: int = 0
    supported_total: int = 0
    unsupported_improved: int = 0
    unsupported_total: int = 0
    n_countries: int | None = None
    supported_share: float = float("nan")
    unsupported_share: float = float("nan")
    difference: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    z: float = float("nan")
    p_value: float = float("nan")
    p_fisher: float = float("nan")
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    icc: float = 0.0
    significance: float = 0.05
    ci: float = 0.95
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    assumptions: tuple = ()
    verdict: str = ""

    def to_frame(self) -> pd.DataFrame:
        """The per-set table (supported, unsupported, difference) with every number but the sensitivity table."""
        return self.table.copy()

    def __str__(self) -> str:
        return self.verdict


def _wilson(x: float, n: float, z: float) -> tuple[float, float]:
    if n <= 0:
        return float("nan"), float("nan")
    p = x / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / den
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4.0 * n * n), 0.0)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _compare(xs: float, ns: float, xu: float, nu: float, ds: float, du: float, z: float) -> dict[str, float]:
    """Effective-size comparison: counts and sizes divided by their design effects (Donner & Klar 2000)."""
    ps, pu = xs / ns, xu / nu
    es, eu = ns / ds, nu / du
    pooled = (xs / ds + xu / du) / (es + eu)
    se0 = math.sqrt(max(pooled * (1 - pooled) * (1 / es + 1 / eu), 0.0))
    zz = (ps - pu) / se0 if se0 > 0 else float("nan")
    p = float(2 * ndtr(-abs(zz))) if np.isfinite(zz) else float("nan")
    ls, hs = _wilson(ps * es, es, z)
    lu, hu = _wilson(pu * eu, eu, z)
    d = ps - pu
    lo = d - math.sqrt((ps - ls) ** 2 + (hu - pu) ** 2)
    hi = d + math.sqrt((hs - ps) ** 2 + (pu - lu) ** 2)
    return {"n_eff_supported": es, "n_eff_unsupported": eu, "z": zz, "p_value": p, "ci_low": lo, "ci_high": hi,
            "supported_ci_low": ls, "supported_ci_high": hs, "unsupported_ci_low": lu, "unsupported_ci_high": hu}


def from_aggregates(*, supported_improved: int, supported_total: int, unsupported_improved: int,
                    unsupported_total: int, n_countries: int | None = None, icc: float | None = None,
                    icc_grid: Sequence[float] = ICC_GRID, significance: float = 0.05, ci: float = 0.95,
                    label: str = "") -> AggregateComparison:
    """Compare published shares of improved supported and unsupported cells from their counts alone.

    Parameters
    ----------
    supported_improved, supported_total : int
        Supported cells that improved, and all supported cells.
    unsupported_improved, unsupported_total : int
        The same for unsupported cells.
    n_countries : int, optional
        Countries the cells come from; with it the design effect of an
        intra-country correlation is computed (``m`` = cells per country in
        each set) and the sensitivity table is filled.
    icc : float, optional
        Assumed intra-country correlation of the improved/not outcomes in
        [0, 1) (default 0: cells independent).  Needs ``n_countries``.
    icc_grid : sequence of float
        The correlations of the sensitivity table.
    significance, ci : float
        Test level and interval level.
    label : str
        Name of the comparison in the verdict (e.g. ``"officials"``).

    Returns
    -------
    AggregateComparison
        ``.p_value``, ``.ci_low``/``.ci_high`` (difference), ``.table`` (the
        shares with intervals and design effects), ``.sensitivity`` over
        ``icc_grid``, ``.assumptions`` and ``.verdict``.

    Raises
    ------
    DataError
        Negative counts, improved above total, empty sets, ``icc`` out of [0, 1)
        or ``icc`` without ``n_countries``.

    Notes
    -----
    Without the cell layout only a conservative clustering adjustment is
    possible: each share's variance is inflated by ``deff = 1 + (m - 1) icc``
    (``m`` = cells of the set per country), the counts and sizes are divided
    by it (effective sizes, Donner & Klar 2000, ch. 5), and the pooled z test
    and the Newcombe interval of the difference use the effective sizes.
    Supported and unsupported cells of the same country share its level, so
    the difference varies less than this assumes when the correlation is
    positive: the adjusted p-values are upper bounds under the model.  At
    ``icc = 0`` the z test is the usual two-proportion test (``p_fisher``
    gives Fisher's exact test as well).  What the counts cannot tell — the
    rule that called a cell improved, regression to the mean, the common
    drift — is listed in ``.assumptions``.

    Examples
    --------
    The Feb-2024 CIPS release (officials: 85% of supported vs 73% of
    unsupported key factors improved; 17 countries x 10 factors), with an
    assumed split of 80 supported and 90 unsupported cells:

    >>> import cips_stats as cs
    >>> r = cs.claims.from_aggregates(supported_improved=68, supported_total=80, unsupported_improved=66,
    ...                               unsupported_total=90, n_countries=17, label="officials")
    >>> round(r.supported_share, 2), round(r.unsupported_share, 2), r.p_value > 0.05
    (0.85, 0.73, True)
    """
    vals = {"supported_improved": supported_improved, "supported_total": supported_total,
            "unsupported_improved": unsupported_improved, "unsupported_total": unsupported_total}
    _check_aggregates(vals, n_countries, icc)
    significance = _level("significance", significance)
    ci = _level("ci", ci)
    xs, ns, xu, nu = (float(supported_improved), float(supported_total), float(unsupported_improved),
                      float(unsupported_total))
    z = float(ndtri(1 - (1 - ci) / 2))
    icc_v = float(icc) if icc is not None else 0.0
    grid = sorted(set([float(x) for x in icc_grid] + [icc_v]))
    for x in grid:
        if not 0.0 <= x < 1.0:
            raise _bad("icc_grid", x, "correlations in [0, 1)")
    counts = (xs, ns, xu, nu)
    sens = _icc_sensitivity(counts, n_countries, grid, z, significance)
    ds, du = _deffs(ns, nu, n_countries, icc_v)
    main = _compare(xs, ns, xu, nu, ds, du, z)
    p_f = float(_st.fisher_exact([[xs, ns - xs], [xu, nu - xu]])[1])
    ps, pu = xs / ns, xu / nu
    table = _aggregate_table(counts, main, ds, du, p_f, layout=n_countries is not None)
    assumptions = _aggregate_assumptions(counts, n_countries, icc, icc_v)
    verdict = _aggregate_verdict(label, ps, pu, main, p_f, icc_v, sens, significance) \
        + ". Assumed: " + " ".join(assumptions)
    prov = Provenance.build("claims.from_aggregates", options={**{k: int(v) for k, v in vals.items()},
                                                               "n_countries": n_countries, "icc": icc,
                                                               "icc_grid": grid, "significance": significance,
                                                               "ci": ci})
    return AggregateComparison(
        supported_improved=int(xs), supported_total=int(ns), unsupported_improved=int(xu), unsupported_total=int(nu),
        n_countries=n_countries, supported_share=ps, unsupported_share=pu, difference=ps - pu,
        ci_low=main["ci_low"], ci_high=main["ci_high"], z=main["z"], p_value=main["p_value"], p_fisher=p_f,
        table=table, icc=icc_v, significance=significance, ci=ci, sensitivity=sens,
        assumptions=tuple(assumptions), verdict=verdict, provenance=prov)


def _check_aggregates(vals: dict[str, Any], n_countries: Any, icc: Any) -> None:
    """Raise one DataError naming every count, country number or correlation that does not add up."""
    probs = []
    for name, v in vals.items():
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or int(v) < 0:
            probs.append(Problem("count_nonnegative_integer", "Counts must be non-negative integers.",
                                 column=name, value=_py(v)))
    if not probs:
        for imp, tot in (("supported_improved", "supported_total"), ("unsupported_improved", "unsupported_total")):
            if vals[imp] > vals[tot]:
                probs.append(Problem("improved_le_total", f"{imp} ({vals[imp]}) exceeds {tot} ({vals[tot]}).",
                                     column=imp, value=int(vals[imp])))
            if vals[tot] == 0:
                probs.append(Problem("total_positive", f"{tot} is 0: no cells to compare.", column=tot, value=0))
    if n_countries is not None and (isinstance(n_countries, (bool, np.bool_)) or
                                    not isinstance(n_countries, (int, np.integer)) or n_countries < 1):
        probs.append(Problem("n_countries", "n_countries must be a positive integer.", column="n_countries",
                             value=_py(n_countries)))
    if icc is not None:
        if isinstance(icc, (bool, np.bool_)) or not isinstance(icc, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(icc) < 1.0:
            probs.append(Problem("icc_range", "icc must be in [0, 1).", column="icc", value=_py(icc)))
        elif n_countries is None and float(icc) > 0:
            probs.append(Problem("icc_needs_countries", "An intra-country correlation needs n_countries=.",
                                 column="icc", value=float(icc)))
    if not probs and n_countries is not None:
        for tot in ("supported_total", "unsupported_total"):
            if vals[tot] < n_countries:
                probs.append(Problem("cells_per_country", f"{tot} ({vals[tot]}) is smaller than n_countries "
                                     f"({n_countries}): some countries would have no {tot.split('_')[0]} cell; "
                                     "the design effect assumes each country has some.", column=tot,
                                     value=int(vals[tot])))
    if probs:
        raise DataError(f"The aggregate counts do not add up ({len(probs)} problem(s)).", probs)


def _deffs(ns: float, nu: float, n_countries: int | None, r: float) -> tuple[float, float]:
    """Design effects ``1 + (m - 1) r`` of the supported and unsupported sets (1 without a layout)."""
    if n_countries is None:
        return 1.0, 1.0
    return 1.0 + (ns / n_countries - 1.0) * r, 1.0 + (nu / n_countries - 1.0) * r


_SENS_COLS = ["icc", "deff_supported", "deff_unsupported", "n_eff_supported", "n_eff_unsupported", "z", "p_value",
              "ci_low", "ci_high", "significant"]


def _icc_sensitivity(counts: tuple, n_countries: int | None, grid: list, z: float,
                     significance: float) -> pd.DataFrame:
    """The comparison over a grid of intra-country correlations (empty without ``n_countries``)."""
    xs, ns, xu, nu = counts
    rows = []
    if n_countries is not None:
        for r in grid:
            ds, du = _deffs(ns, nu, n_countries, r)
            c = _compare(xs, ns, xu, nu, ds, du, z)
            rows.append({"icc": r, "deff_supported": ds, "deff_unsupported": du,
                         "n_eff_supported": c["n_eff_supported"], "n_eff_unsupported": c["n_eff_unsupported"],
                         "z": c["z"], "p_value": c["p_value"], "ci_low": c["ci_low"], "ci_high": c["ci_high"],
                         "significant": bool(c["p_value"] < significance)})
    return pd.DataFrame(rows, columns=_SENS_COLS)


def _aggregate_table(counts: tuple, main: dict[str, float], ds: float, du: float, p_f: float, *,
                     layout: bool) -> pd.DataFrame:
    xs, ns, xu, nu = counts
    ps, pu = xs / ns, xu / nu
    wilson = "Wilson on the effective size" + (" (design effect at icc)" if layout else "")
    return pd.DataFrame([
        {"set": "supported", "improved": int(xs), "total": int(ns), "share": ps, "ci_low": main["supported_ci_low"],
         "ci_high": main["supported_ci_high"], "deff": ds, "n_eff": main["n_eff_supported"], "interval": wilson},
        {"set": "unsupported", "improved": int(xu), "total": int(nu), "share": pu,
         "ci_low": main["unsupported_ci_low"], "ci_high": main["unsupported_ci_high"], "deff": du,
         "n_eff": main["n_eff_unsupported"], "interval": wilson},
        {"set": "difference", "improved": int(xs + xu), "total": int(ns + nu), "share": ps - pu,
         "ci_low": main["ci_low"], "ci_high": main["ci_high"], "interval": "Newcombe (hybrid Wilson)",
         "z": main["z"], "p_value": main["p_value"], "p_fisher": p_f}],
        columns=["set", "improved", "total", "share", "ci_low", "ci_high", "deff", "n_eff", "interval", "z",
                 "p_value", "p_fisher"])


def _aggregate_assumptions(counts: tuple, n_countries: int | None, icc: Any, icc_v: float) -> list[str]:
    xs, ns, xu, nu = counts
    assumptions = [
        f"Counts as given: {int(xs)}/{int(ns)} supported and {int(xu)}/{int(nu)} unsupported cells improved.",
        "'Improved' is whatever rule produced the published counts (presumably a point change > 0); with no true "
        "change about half the cells would pass that rule, so the shares say little on their own.",
        "Cells are exchangeable within each set; no baseline, drift or cell-level uncertainty is known, so "
        "regression to the mean and the common drift cannot be assessed from counts.",
    ]
    if n_countries is None:
        assumptions.append("No country layout given: cells are treated as independent (icc = 0).")
    else:
        assumptions.append(
            f"{n_countries} countries with {ns / n_countries:.2f} supported and {nu / n_countries:.2f} unsupported "
            f"cells each on average; design effect 1 + (m - 1) x icc per set; icc = {icc_v:g} assumed"
            + (" (not given: cells independent)" if icc is None else "") + ".")
        assumptions.append("The adjustment ignores the positive covariance of the two shares within a country "
                           "(conservative: the true p-value is smaller under this model).")
    return assumptions


def _aggregate_verdict(label: str, ps: float, pu: float, main: dict[str, float], p_f: float, icc_v: float,
                       sens: pd.DataFrame, significance: float) -> str:
    lab = f"{label}: " if label else ""
    verdict = (f"{lab}supported {_pct(ps)} [{_pts(main['supported_ci_low'])}, {_pts(main['supported_ci_high'])}] "
               f"vs unsupported {_pct(pu)} [{_pts(main['unsupported_ci_low'])}, {_pts(main['unsupported_ci_high'])}]; "
               f"difference {100 * (ps - pu):.0f} points [{100 * main['ci_low']:.0f}, {100 * main['ci_high']:.0f}], "
               f"{_fmt_p(main['p_value'])} at icc = {icc_v:g}: "
               f"{'significant' if main['p_value'] < significance else 'not significant'} at "
               f"{100 * significance:g}% (Fisher exact ignoring countries {_fmt_p(p_f)})")
    if len(sens):
        sig = sens.loc[sens["significant"], "icc"]
        if len(sig) == len(sens):
            verdict += f"; significant at every icc up to {sens['icc'].max():g}"
        elif len(sig) == 0:
            verdict += f"; not significant at any icc from {sens['icc'].min():g} to {sens['icc'].max():g}"
        else:
            verdict += f"; significant only for icc <= {sig.max():g}"
    return verdict
