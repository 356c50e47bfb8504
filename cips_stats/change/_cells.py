"""Per-cell change between two iterations from the shared bootstrap replicates (``cs.change.cell_changes``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from ..errors import DataError, Flag, Problem
from ..results import Provenance, Result

__all__ = ["CellChanges", "cell_changes"]

_FDR = {"bh": "fdr_bh", "by": "fdr_by", "none": None}


@dataclass(frozen=True)
class CellChanges(Result):
    """Change of every cell between two iterations, with bootstrap SEs, tests and FDR control.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per cell observed in both iterations: ``country``,
        ``group``, ``factor``, any further key columns of ``by`` (demographic
        domains), then ``baseline`` (estimate at the first iteration), ``estimate``
        (last minus first), ``se``, ``ci_low``, ``ci_high``, ``z``,
        ``p_value``, ``p_adjusted``, ``significant``, ``n_1``, ``n_2``,
        ``suppressed`` (either iteration's cell suppressed) and ``flags``.
    replicates : ndarray, shape (rows, B)
        Bootstrap replicates of each row's change (aligned with ``table``).
    baseline_replicates : ndarray, shape (rows, B)
        Bootstrap replicates of each row's first-iteration estimate.
    baseline_cov : ndarray, shape (pairs, F, F)
        Bootstrap covariance of the factors of each first-iteration cell.
    change_cov : ndarray, shape (pairs, F, F)
        Bootstrap covariance of the factors' changes of each cell pair (the
        sum of the two independent cells' covariances).
    ci, fdr, significance, along, first, last
        The options.
    """

    table: pd.DataFrame
    replicates: np.ndarray
    baseline_replicates: np.ndarray
    baseline_cov: np.ndarray | None = None
    change_cov: np.ndarray | None = None
    factors: tuple = ()
    keys: tuple = ("country", "group")
    ci: float = 0.95
    fdr: str = "bh"
    significance: float = 0.05
    along: str = "iteration"
    first: Any = None
    last: Any = None

    def to_frame(self) -> pd.DataFrame:
        """The change table."""
        return self.table

    #: Replicate arrays appear in ``to_dict()`` by their shape only (reproducible from the seed).
    shape_only = ("replicates", "baseline_replicates", "baseline_cov", "change_cov")


def _flag_strings(masks: dict[str, np.ndarray], n: int) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    for name, m in masks.items():
        m = np.asarray(m, dtype=bool)
        out[m] = [s + (";" if s else "") + name for s in out[m]]
    return out


def _bad_arg(name: str, value: Any, expected: str) -> DataError:
    msg = f"{name}= must be {expected}; got {value!r}."
    return DataError(msg, [Problem("argument", msg, column=name, value=value)])


def _replicate_cov(reps: np.ndarray, scale: float) -> np.ndarray:
    """Bootstrap covariance of the last-but-one axis over the last (replicate) axis, NaN-aware by pairs."""
    x = np.asarray(reps, dtype=np.float64)
    ok = ~np.isnan(x)
    nv = ok.sum(axis=-1)
    mean = np.where(nv > 0, np.nansum(x, axis=-1) / np.maximum(nv, 1), np.nan)
    dev = np.where(ok, x - mean[..., None], 0.0)
    B = x.shape[-1]
    # rescale when some replicates are missing so that the scale refers to the valid ones
    pair_n = np.einsum("...ib,...jb->...ij", ok.astype(np.float64), ok.astype(np.float64))
    cov = np.einsum("...ib,...jb->...ij", dev, dev)
    with np.errstate(invalid="ignore", divide="ignore"):
        adj = np.where(pair_n > 1, (B - 1) / (pair_n - 1), np.nan)
    return cov * scale * adj


def _variance_scale(ind: Any) -> float:
    B = ind.replicates.shape[-1]
    opts = getattr(ind.provenance, "options", None) or {}
    s = opts.get("variance_scale")
    return float(s) if s is not None and np.isfinite(s) else 1.0 / max(B - 1, 1)


def _pairs(ind: Any, along: str, first: Any, last: Any) -> tuple[pd.DataFrame, list[str], Any, Any]:
    """Positions (``pos_1``, ``pos_2``) of the cells observed at both ``first`` and ``last``."""
    by = list(ind.by)
    if along not in by:
        raise DataError(f"along= must be one of the indicators' by= columns {by}; got {along!r}.",
                        [Problem("along", "Not a key column of the indicators.", column="along", value=along)])
    cells = ind.cells.reset_index(drop=True)
    values = sorted(pd.unique(cells[along]).tolist())
    if len(values) < 2:
        msg = (f"The indicators have a single {along} ({values}); a change needs cells observed at two "
               f"values of {along!r}.")
        raise DataError(msg, [Problem("two_iterations", msg, column=along, value=values[0] if values else None)])
    first = values[0] if first is None else first
    last = values[-1] if last is None else last
    for name, v in (("first", first), ("last", last)):
        if v not in values:
            raise _bad_arg(name, v, f"a value of {along!r} present in the indicators {values}")
    if first == last:
        raise _bad_arg("last", last, f"different from first= ({first!r})")
    others = [c for c in by if c != along]
    a = cells[cells[along] == first].reset_index().rename(columns={"index": "pos_1"})
    b = cells[cells[along] == last].reset_index().rename(columns={"index": "pos_2"})
    pairs = a.drop(columns=[along]).merge(b.drop(columns=[along]), on=others, how="inner", sort=False)
    if pairs.empty:
        seen = pd.concat([a[others], b[others]]).drop_duplicates().head(20)
        probs = [Problem("two_iterations", f"Cell observed at only one {along}.",
                         value={k: _py(v) for k, v in r.items()}) for r in seen.to_dict("records")]
        raise DataError(f"No cell ({', '.join(others)}) is observed at both {along} {first!r} and {last!r}.",
                        probs)
    pairs = pairs.sort_values(["pos_1"], kind="stable").reset_index(drop=True)
    return pairs, others, first, last


def _indicators_class() -> type:
    """The Indicators class (``cips_stats.estimate.indicators``; the older ``cips_stats._indicators`` layout too)."""
    try:
        from ..estimate.indicators import Indicators
    except ImportError:  # pragma: no cover - older layout
        from .._indicators import Indicators  # type: ignore[no-redef]
    return Indicators


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _prepare(ind: Any, along: str, first: Any, last: Any) -> dict[str, Any]:
    """Shared pairing and replicate arithmetic of :func:`cell_changes` and :func:`fit`."""
    Indicators = _indicators_class()

    if not isinstance(ind, Indicators):
        raise _bad_arg("indicators", type(ind).__name__, "the Indicators result of cs.estimate.indicators()")
    if ind.replicates is None:
        msg = ("The indicators were computed with keep_replicates=False; rerun cs.estimate.indicators() with "
               "keep_replicates=True (the same seed gives the same estimates).")
        raise DataError(msg, [Problem("keep_replicates", msg, column="replicates")])
    pairs, others, first, last = _pairs(ind, along, first, last)
    return {"pairs": pairs, "others": others, "first": first, "last": last}


def _rows_frame(pairs: pd.DataFrame, others: list[str], factors: tuple) -> pd.DataFrame:
    F = len(factors)
    keys = pairs[others].iloc[np.repeat(np.arange(len(pairs)), F)].reset_index(drop=True)
    keys["factor"] = np.tile(np.asarray(factors, dtype=object), len(pairs))
    return keys


def cell_changes(indicators: Any, *, ci: float = 0.95, fdr: str = "bh", significance: float = 0.05,
                 along: str = "iteration", first: Any = None, last: Any = None) -> CellChanges:
    """Change of every cell between two iterations, with bootstrap SEs, z tests and FDR control.

    Parameters
    ----------
    indicators : Indicators
        Result of :func:`cips_stats.estimate.indicators` with its replicates
        (``keep_replicates=True``, the default).
    ci : float
        Confidence level of the intervals.
    fdr : {"bh", "by", "none"}
        Multiplicity control across the whole table: Benjamini–Hochberg
        (independent or positively dependent tests), Benjamini–Yekutieli
        (any dependence) or none (``p_adjusted = p_value``).
    significance : float
        Level at which ``significant = p_adjusted < significance``.
    along : str
        The key that changes (default ``"iteration"``).
    first, last : optional
        The two values of ``along`` compared (default its smallest and largest).

    Returns
    -------
    CellChanges
        ``.table`` (one row per cell observed in both iterations, in the
        order of the first iteration's cells, then factors), ``.replicates``
        of each change and ``.baseline_replicates`` of each baseline.

    Raises
    ------
    DataError
        Indicators without replicates, without two values of ``along``, or
        with no cell observed at both; cells observed at both with a finite
        estimate but a zero or undefined SE (the rows are named).

    Notes
    -----
    Cells of different iterations are independent samples and their
    replicates come from independent resampling, so the replicate difference
    ``theta*_2b - theta*_1b`` has the variance of the change; its SE is
    ``sqrt(scale * sum_b (d_b - mean d)^2)`` with the indicators' variance
    scale (``1/(B - 1)`` for the Rao–Wu subbootstrap).  The interval is the
    Wald interval ``estimate ± z_(1-(1-ci)/2) se`` and the p-value is
    two-sided normal, ``2 (1 - Phi(|estimate / se|))``, so ``significant``
    at ``significance = 1 - ci`` without FDR is exactly "the interval
    excludes 0".  The normal reference is used because each cell mean rests
    on at least ``min_n`` respondents; the t reference would need design
    degrees of freedom per cell, which the bootstrap does not give.
    Cells with a missing estimate in either iteration (a factor not asked
    of a group) are not observed and are left out.  Suppressed cells keep
    their numbers with ``suppressed = True``; the publication gate blanks them.

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=1, n_countries=3, n_repeat=2, n_officials=70, n_private=50)
    >>> ind = cs.estimate.indicators(sim.data, n_boot=200, seed=1)
    >>> ch = cs.change.cell_changes(ind)
    >>> ch.table.columns[:5].tolist()
    ['country', 'group', 'factor', 'baseline', 'estimate']
    >>> len(ch.table) == 2 * 2 * len(ind.factors), ch.replicates.shape[1]
    (True, 200)
    """
    if not isinstance(ci, (float, int, np.floating)) or isinstance(ci, bool) or not 0.0 < float(ci) < 1.0:
        raise _bad_arg("ci", ci, "a confidence level in (0, 1)")
    if not isinstance(significance, (float, int, np.floating)) or isinstance(significance, bool) or \
            not 0.0 < float(significance) < 1.0:
        raise _bad_arg("significance", significance, "a test level in (0, 1)")
    if fdr not in _FDR:
        raise _bad_arg("fdr", fdr, f"one of {tuple(_FDR)}")
    prep = _prepare(indicators, along, first, last)
    pairs, others, first, last = prep["pairs"], prep["others"], prep["first"], prep["last"]
    ind = indicators
    factors = tuple(ind.factors)
    F = len(factors)
    p1 = pairs["pos_1"].to_numpy()
    p2 = pairs["pos_2"].to_numpy()
    scale = _variance_scale(ind)
    B = ind.replicates.shape[-1]

    est1 = ind.estimates[p1].astype(np.float64).ravel()
    est2 = ind.estimates[p2].astype(np.float64).ravel()
    r1 = ind.replicates[p1].astype(np.float64)                          # (P, F, B)
    r2 = ind.replicates[p2].astype(np.float64)
    rd = r2 - r1
    cov1 = _replicate_cov(r1, scale)
    covd = _replicate_cov(rd, scale)
    var = np.einsum("pii->pi", covd).ravel()
    se = np.sqrt(np.maximum(var, 0.0))
    rows = _rows_frame(pairs, others, factors)
    observed = np.isfinite(est1) & np.isfinite(est2)
    bad = observed & ~(np.isfinite(se) & (se > 0))
    if bad.any():
        bad_rows = rows.loc[bad].head(50)
        probs = [Problem("se_positive", f"Change has a zero or undefined bootstrap SE ({se[i]!r}).",
                         value={k: _py(v) for k, v in r.items()})
                 for i, r in zip(np.flatnonzero(bad)[:50], bad_rows.to_dict("records"))]
        raise DataError(f"{int(bad.sum())} cell change(s) have a zero or undefined bootstrap SE (cells whose "
                        f"respondents all gave the same answers, or whose replicates are all missing); "
                        f"compute the indicators without those cells (e.g. a larger min_n or fewer factors).",
                        probs)
    n1 = ind.n[p1].ravel()
    n2 = ind.n[p2].ravel()
    sup = (ind.suppressed[p1] | ind.suppressed[p2]).ravel()
    nan_reps = (np.isnan(rd).any(axis=-1)).ravel()

    keep = np.flatnonzero(observed)
    est = (est2 - est1)[keep]
    se_k = se[keep]
    z_crit = float(ndtri(1.0 - (1.0 - float(ci)) / 2.0))
    z = est / se_k
    p = 2.0 * ndtr(-np.abs(z))
    if fdr == "none" or len(p) == 0:
        p_adj = p.copy()
    else:
        from statsmodels.stats.multitest import multipletests

        p_adj = multipletests(p, alpha=float(significance), method=_FDR[fdr])[1]
    table = rows.iloc[keep].reset_index(drop=True)
    table["baseline"] = est1[keep]
    table["estimate"] = est
    table["se"] = se_k
    table["ci_low"] = est - z_crit * se_k
    table["ci_high"] = est + z_crit * se_k
    table["z"] = z
    table["p_value"] = p
    table["p_adjusted"] = p_adj
    table["significant"] = p_adj < float(significance)
    table["n_1"] = n1[keep].astype(np.int64)
    table["n_2"] = n2[keep].astype(np.int64)
    table["suppressed"] = sup[keep]
    table["flags"] = _flag_strings({"suppressed_input": sup[keep], "nan_replicates": nan_reps[keep]}, len(keep))
    order = ["country", "group", "factor"]
    lead = [c for c in order if c in table.columns] + [c for c in others if c not in order]
    table = table[lead + [c for c in table.columns if c not in lead]]

    flags = []
    n_unpaired = int(len(ind.cells) - 2 * len(pairs) - (~ind.cells[along].isin([first, last])).sum())
    if n_unpaired > 0:
        flags.append(Flag("unpaired_cells", f"{n_unpaired} cell(s) observed at only one of {along} {first!r} "
                          f"and {last!r} have no change and are not in the table.", severity="info",
                          where={"n": n_unpaired}))
    if sup[keep].any():
        flags.append(Flag("suppressed_cells", f"{int(sup[keep].sum())} change(s) use a suppressed cell: they are "
                          "kept with suppressed=True for inference and are blanked on publication.",
                          severity="info", where={"n": int(sup[keep].sum())}))
    prov = Provenance.build("change.cell_changes", data_fingerprint=getattr(ind.provenance, "data_fingerprint", None),
                            seed=ind.seed, options={"ci": float(ci), "fdr": fdr, "significance": float(significance),
                                                    "along": along, "first": _py(first), "last": _py(last),
                                                    "n_boot": int(B), "variance_scale": scale,
                                                    "statistic": getattr(ind, "statistic", "mean_0_10")})
    P = len(pairs)
    return CellChanges(table=table, replicates=rd.reshape(P * F, B)[keep],
                       baseline_replicates=r1.reshape(P * F, B)[keep], baseline_cov=cov1, change_cov=covd,
                       factors=factors, keys=tuple(others), ci=float(ci), fdr=fdr,
                       significance=float(significance), along=along, first=_py(first), last=_py(last),
                       provenance=prov, flags=tuple(flags))
