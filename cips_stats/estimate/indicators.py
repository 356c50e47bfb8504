"""Key-factor indicators of every cell with a design-respecting bootstrap (the engine of ``cs.estimate.indicators``).

:func:`indicators` estimates, for every cell (by default country × iteration ×
respondent group) and every key factor and index at once, the weighted mean of
the respondent scores (:mod:`cips_stats.scores`) with a Rao–Wu rescaling
bootstrap that resamples respondents (or PSUs) within the design strata.  Each
replicate's weights are generated once and reused for every factor and cell,
so differences between iterations, groups and factors (:meth:`Indicators.difference`,
:func:`perception_gap`) get their joint uncertainty from the same replicates.

Examples
--------
>>> import cips_stats as cs
>>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=60, n_private=40)
>>> res = cs.estimate.indicators(sim.data, n_boot=200, seed=1)
>>> res.table.columns[:6].tolist()
['country', 'iteration', 'group', 'factor', 'estimate', 'se']
>>> res.replicates.shape          # cells x factors x replicates
(6, 11, 200)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .. import thresholds as _th
from .._blas import one_thread
from ..errors import CipsError, DataError, Flag, NumericalWarning, Problem, SmallCellWarning, emit
from ..results import Provenance, Result, resolve_seed
from ..scores import STATISTICS, respondent_scores
from .design import Design, design_of
from .intervals import bootstrap_intervals as _intervals
from .intervals import check_ci_method as _check_method
from .intervals import check_level as _check_level
from .replicates import RaoWuPlan

__all__ = ["Indicators", "Contrast", "indicators", "perception_gap"]

_KEYS = ("country", "iteration", "group")
#: Ratio between the largest and the smallest cell padded into one block of the batched products.
_BUCKET_RATIO = 1.3
#: Elements of one chunk's padded count buffer / uniform draws (memory bound, ~16 MB each).
_CHUNK_ELEMS = 2**21


# ----------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Contrast(Result):
    """Linear combinations of cell indicators (differences, gaps, averages) with bootstrap CIs.

    Attributes
    ----------
    table : pandas.DataFrame
        Key columns, ``factor``, then ``estimate, se, ci_low, ci_high``,
        ``n_min`` (smallest unweighted n among the cells combined),
        ``suppressed`` (any input cell suppressed), ``flags``.
    replicates : ndarray, shape (rows, B)
        Replicate values of each row of ``table``, from the same replicates
        as the cell indicators.
    """

    table: pd.DataFrame
    replicates: np.ndarray
    ci: float = 0.95
    ci_method: str = "percentile"

    def to_frame(self) -> pd.DataFrame:
        """The contrast table."""
        return self.table

    #: Replicate arrays appear in ``to_dict()`` by their shape only (reproducible from the seed).
    shape_only = ("replicates",)


@dataclass(frozen=True)
class Indicators(Result):
    """Cell indicators with their bootstrap replicates.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: the ``by`` key columns, ``factor``, then ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``n`` (unweighted respondents with a score),
        ``n_eff`` (Kish), ``deff``, ``cv``, ``suppressed``, ``caution``,
        ``flags`` (``;``-separated codes: ``small_n``, ``high_cv``,
        ``caution_cv``, ``no_data``, ``nan_replicates``, ``bca_undefined``).
        Suppressed cells keep their numbers here (the change and claims
        modules need them, with the flag); reports and exports blank them with
        :func:`cips_stats.disclosure.suppress`.
    cells : pandas.DataFrame
        The ``by`` keys of the cells, in the order of the first axis of
        ``estimates`` and ``replicates``.
    factors : tuple of str
        Factor ids, the second axis.
    estimates : ndarray, shape (cells, factors)
        Full-sample estimates (NaN where a cell has no score).
    replicates : ndarray of float32, shape (cells, factors, B)
        Bootstrap replicate estimates (``None`` with ``keep_replicates=False``;
        the same seed reproduces them).
    n : ndarray, shape (cells, factors)
        Unweighted numbers of respondents with a score.
    influence : ndarray, shape (cells, factors, 2)
        Sums of squares and cubes of the empirical influence values (BCa
        acceleration of contrasts).
    by, statistic, n_boot, ci, ci_method, seed, scale
        The options; ``scale`` is the variance scale of the replicates.
    """

    table: pd.DataFrame
    cells: pd.DataFrame
    factors: tuple
    estimates: np.ndarray
    replicates: np.ndarray | None
    n: np.ndarray
    influence: np.ndarray
    suppressed: np.ndarray
    by: tuple = _KEYS
    statistic: str = "mean_0_10"
    n_boot: int = 2000
    ci: float = 0.95
    ci_method: str = "percentile"
    seed: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """The tidy indicator table."""
        return self.table

    #: Replicate arrays appear in ``to_dict()`` by their shape only (reproducible from the seed).
    shape_only = ("replicates",)

    def _need_replicates(self) -> np.ndarray:
        if self.replicates is None:
            raise DataError("This result was computed with keep_replicates=False; rerun indicators() with the "
                            "same seed and keep_replicates=True to get contrasts.",
                            [Problem("replicates", "No replicates kept.")])
        return self.replicates

    def contrast(self, coef: pd.DataFrame, *, ci: float | None = None, ci_method: str | None = None) -> Contrast:
        """Linear combinations of cells, factor by factor, with CIs from the joint replicates.

        Parameters
        ----------
        coef : pandas.DataFrame
            Columns: the ``by`` keys, ``contrast`` (label of the combination,
            any hashable) and ``coef``.  Optionally ``factor`` to combine
            different factors; without it every factor gets the same
            combination of cells.
        ci, ci_method : optional
            Default: those of the indicators.

        Returns
        -------
        Contrast
            One row per contrast label (and factor); ``suppressed`` when any
            cell it uses is suppressed.

        Examples
        --------
        >>> import pandas as pd
        >>> import cips_stats as cs
        >>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=60, n_private=40)
        >>> res = cs.estimate.indicators(sim.data, n_boot=100, seed=1)
        >>> coef = pd.DataFrame({"country": ["C01", "C02"], "iteration": 1, "group": "officials",
        ...                      "contrast": "mean of two", "coef": 0.5})
        >>> res.contrast(coef).table.shape[0]     # one row per factor
        11
        """
        reps = self._need_replicates()
        level = _check_level(self.ci if ci is None else ci)
        method = _check_method(self.ci_method if ci_method is None else ci_method)
        by = list(self.by)
        need = by + ["contrast", "coef"]
        missing = [c for c in need if c not in coef.columns]
        if missing:
            raise DataError(f"coef= lacks the columns {missing}.",
                            [Problem("coef_columns", "Column missing.", column=c) for c in missing])
        index = pd.MultiIndex.from_frame(self.cells[by])
        pos = index.get_indexer(pd.MultiIndex.from_frame(coef[by]))
        if (pos < 0).any():
            bad = coef.loc[pos < 0, by].head(10).to_dict("records")
            raise DataError(f"coef= names {int((pos < 0).sum())} cells that are not in the indicators: {bad}.",
                            [Problem("coef_cell", "Unknown cell.", value=b) for b in bad])
        fidx = {f: j for j, f in enumerate(self.factors)}
        labels = pd.unique(coef["contrast"])
        lab_idx = pd.Index(labels).get_indexer(coef["contrast"])
        w = coef["coef"].to_numpy(dtype=np.float64)
        F, B = len(self.factors), reps.shape[2]
        if "factor" in coef.columns:
            unknown = sorted(set(coef["factor"]) - set(fidx), key=str)
            if unknown:
                raise DataError(f"coef= names unknown factors {unknown}.",
                                [Problem("coef_factor", "Unknown factor.", column="factor", value=u)
                                 for u in unknown])
            fcol = coef["factor"].map(fidx).to_numpy()
            R = len(labels)
            terms = [(lab_idx, pos, fcol, w)]
        else:
            rows_key = [(lab, f) for lab in labels for f in self.factors]
            R = len(labels) * F
            terms = [(lab_idx * F + j, pos, np.full(len(pos), j), w) for j in range(F)]
        est = np.zeros(R)
        rep = np.zeros((R, B))
        s2 = np.zeros(R)
        s3 = np.zeros(R)
        nmin = np.full(R, np.iinfo(np.int64).max)
        sup = np.zeros(R, dtype=bool)
        for row, p, fj, c in terms:
            np.add.at(est, row, c * self.estimates[p, fj])
            np.add.at(rep, row, c[:, None] * reps[p, fj, :].astype(np.float64))
            np.add.at(s2, row, c ** 2 * self.influence[p, fj, 0])
            np.add.at(s3, row, c ** 3 * self.influence[p, fj, 1])
            np.minimum.at(nmin, row, self.n[p, fj])
            np.logical_or.at(sup, row, self.suppressed[p, fj])
        with np.errstate(invalid="ignore", divide="ignore"):
            accel = s3 / (6.0 * s2 ** 1.5)
        iv = _intervals(est, rep, level, method, accel)
        if "factor" in coef.columns:
            tab = pd.DataFrame({"contrast": labels})
        else:
            tab = pd.DataFrame(rows_key, columns=["contrast", "factor"])
        tab["estimate"] = est
        for k in ("se", "ci_low", "ci_high"):
            tab[k] = iv[k]
        tab["n_min"] = nmin
        tab["suppressed"] = sup
        tab["flags"] = _flag_strings({"suppressed_input": sup, "nan_replicates": iv["n_nan"] > 0,
                                      "bca_undefined": iv["bca_undefined"]})
        return Contrast(table=tab, replicates=rep, ci=level, ci_method=method,
                        provenance=self.provenance, flags=())

    def difference(self, *, along: str, minuend: Any, subtrahend: Any, ci: float | None = None,
                   ci_method: str | None = None) -> Contrast:
        """Differences ``minuend - subtrahend`` along one key (or between two factors), all else equal.

        Parameters
        ----------
        along : str
            A ``by`` column (e.g. ``"iteration"``, ``"group"``) or
            ``"factor"``.
        minuend, subtrahend : value
            The two values of ``along`` (e.g. ``2`` and ``1``, or
            ``"officials"`` and ``"private"``).
        ci, ci_method : optional
            Default: those of the indicators.

        Returns
        -------
        Contrast
            One row per combination of the other keys present with both
            values (and per factor): the other keys, ``factor``, ``estimate``,
            ``se``, ``ci_low``, ``ci_high``, ``n_min``, ``suppressed``,
            ``flags``.

        Notes
        -----
        The replicate differences come from the same replicate weights, so
        the SE accounts for the covariance of the two estimates (zero between
        independent samples such as two iterations; positive between two
        factors answered by the same respondents).  For BCa the acceleration
        is ``sum c^3 l^3 / (6 (sum c^2 l^2)^1.5)`` over the empirical
        influence values ``l`` of the cells, exact for disjoint cells; for
        differences between factors it is set to 0 (bias-corrected
        percentile) and flagged.

        Examples
        --------
        >>> import cips_stats as cs
        >>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=60, n_private=40)
        >>> res = cs.estimate.indicators(sim.data, n_boot=100, seed=1)
        >>> chg = res.difference(along="iteration", minuend=2, subtrahend=1)
        >>> sorted(chg.table["country"].unique().tolist())   # only the repeated country
        ['C01']
        """
        reps = self._need_replicates()
        level = _check_level(self.ci if ci is None else ci)
        method = _check_method(self.ci_method if ci_method is None else ci_method)
        if along == "factor":
            F = len(self.factors)
            try:
                ja, jb = self.factors.index(minuend), self.factors.index(subtrahend)
            except ValueError:  # list.index: not a factor of the indicators
                raise DataError(f"minuend= and subtrahend= must be factors of the indicators {list(self.factors)}.",
                                [Problem("factor", "Unknown factor.", value=[minuend, subtrahend])]) from None
            est = self.estimates[:, ja] - self.estimates[:, jb]
            rep = reps[:, ja, :].astype(np.float64) - reps[:, jb, :]
            iv = _intervals(est, rep, level, method, None)
            tab = self.cells.reset_index(drop=True).copy()
            tab["factor"] = f"{minuend} - {subtrahend}"
            tab["estimate"] = est
            for k in ("se", "ci_low", "ci_high"):
                tab[k] = iv[k]
            tab["n_min"] = np.minimum(self.n[:, ja], self.n[:, jb])
            sup = self.suppressed[:, ja] | self.suppressed[:, jb]
            tab["suppressed"] = sup
            tab["flags"] = _flag_strings({"suppressed_input": sup, "nan_replicates": iv["n_nan"] > 0,
                                          "bca_undefined": iv["bca_undefined"],
                                          "bca_no_acceleration": np.full(len(est), method == "bca")})
            return Contrast(table=tab, replicates=rep, ci=level, ci_method=method, provenance=self.provenance)
        if along not in self.by:
            raise DataError(f"along= must be one of the by columns {list(self.by)} or 'factor'; got {along!r}.",
                            [Problem("along", "Not a key column.", value=along)])
        others = [c for c in self.by if c != along]
        cells = self.cells.reset_index(drop=True)
        a = cells[cells[along] == minuend]
        b = cells[cells[along] == subtrahend]
        if a.empty or b.empty:
            raise DataError(f"No cells with {along} == {minuend!r} and {along} == {subtrahend!r} to compare.",
                            [Problem("difference", "Value not present.", column=along,
                                     value=minuend if a.empty else subtrahend)])
        pairs = (a.reset_index().merge(b.reset_index(), on=others, suffixes=("_a", "_b")) if others
                 else a.reset_index().merge(b.reset_index(), how="cross", suffixes=("_a", "_b")))
        coef = pd.concat([
            pd.DataFrame({**{c: pairs[c] for c in others}, along: minuend, "contrast": np.arange(len(pairs)),
                          "coef": 1.0}),
            pd.DataFrame({**{c: pairs[c] for c in others}, along: subtrahend, "contrast": np.arange(len(pairs)),
                          "coef": -1.0}),
        ], ignore_index=True)
        res = self.contrast(coef, ci=level, ci_method=method)
        keys = pairs[others].reset_index(drop=True) if others else pd.DataFrame(index=range(len(pairs)))
        F = len(self.factors)
        tab = res.table
        lead = keys.iloc[np.repeat(np.arange(len(pairs)), F)].reset_index(drop=True)
        tab = pd.concat([lead, tab.drop(columns=["contrast"])], axis=1)
        return Contrast(table=tab, replicates=res.replicates, ci=level, ci_method=method,
                        provenance=self.provenance)


def _flag_strings(masks: dict[str, np.ndarray]) -> np.ndarray:
    names = list(masks)
    n = len(next(iter(masks.values()))) if masks else 0
    out = np.full(n, "", dtype=object)
    for name in names:
        m = np.asarray(masks[name], dtype=bool)
        out[m] = [s + (";" if s else "") + name for s in out[m]]
    return out


# ----------------------------------------------------------------------------------------- engine
def _codes_by(frame: pd.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer codes of the groups of ``cols`` (sorted; -1 where a key is missing) and the key table."""
    g = frame.groupby(list(cols), sort=True, dropna=True, observed=True)
    codes = g.ngroup().to_numpy()
    codes = np.where(np.isnan(codes.astype(np.float64)), -1, codes).astype(np.intp)
    keys = g.size().index.to_frame(index=False)
    return codes, keys


class _Layout:
    """Padded, size-bucketed layout of the cells for batched per-cell matrix products.

    Cells of similar size share a block ``(K_b, chunk, L_b)`` (``L_b`` the
    largest cell of the block, at most ``_BUCKET_RATIO`` times the smallest),
    so the per-cell sums of all replicates are ``K_b`` batched GEMMs per block
    with little padding.  In a chunk of ``bc`` replicates, row ``i`` of
    replicate ``r`` sits at ``bc * A_i + r * L_i + rank_i``.
    """

    def __init__(self, sizes: np.ndarray):
        K = sizes.size
        cls = np.floor(np.log(np.maximum(sizes, 1)) / np.log(_BUCKET_RATIO)).astype(np.int64)
        ucls, bucket_of_cell = np.unique(cls, return_inverse=True)
        self.n_buckets = ucls.size
        self.bucket_of_cell = bucket_of_cell
        self.K_b = np.bincount(bucket_of_cell, minlength=self.n_buckets)
        L_b = np.zeros(self.n_buckets, dtype=np.int64)
        np.maximum.at(L_b, bucket_of_cell, sizes)
        self.L_b = L_b
        order = np.argsort(bucket_of_cell, kind="stable")
        kl = np.empty(K, dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(self.K_b)[:-1]))
        kl[order] = np.arange(K) - starts[bucket_of_cell[order]]
        self.kl = kl
        self.cells_of_bucket = [order[starts[b]:starts[b] + self.K_b[b]] for b in range(self.n_buckets)]
        self.PB = np.concatenate(([0], np.cumsum(self.K_b * L_b)[:-1])).astype(np.int64)
        self.W = int((self.K_b * L_b).sum())
        self.A_cell = self.PB[bucket_of_cell] + kl * L_b[bucket_of_cell]
        self.L_cell = L_b[bucket_of_cell]


def _engine(plan: RaoWuPlan, layout: _Layout, X: np.ndarray, row_cell: np.ndarray, row_rank: np.ndarray,
            rows_sorted: np.ndarray, fast_slots: dict | None, n_boot: int, seed: int, chunk: int,
            F: int, est: np.ndarray, dtype: Any) -> np.ndarray:
    """Replicate estimates (K, F, B) as float32.

    ``X`` (W, 2F) padded design columns: ``[x * (s - est), x]`` with ``x`` the
    weight times the score mask (times the rescaling factor in the fast path).
    """
    K = est.shape[0]
    reps = np.empty((K, F, n_boot), dtype=np.float32)
    rng = np.random.default_rng(seed)
    Xb = [X[layout.PB[b]:layout.PB[b] + layout.K_b[b] * layout.L_b[b]].reshape(
        layout.K_b[b], layout.L_b[b], 2 * F) for b in range(layout.n_buckets)]
    est_b = [est[cells][:, None, :].astype(dtype) for cells in layout.cells_of_bucket]
    A_row = layout.A_cell[row_cell]
    L_row = layout.L_cell[row_cell]
    comb_cache: dict[int, np.ndarray] = {}
    fixed_rows = None
    if fast_slots is not None and fast_slots["fixed_rows"].size:
        fixed_rows = fast_slots["fixed_rows"]
    done = 0
    counts_iter = None if fast_slots is not None else plan.iter_counts(n_boot, rng, chunk)
    mult_psu = plan.psu_multiplier.astype(dtype)
    psu_rows = plan.psu_of_row[rows_sorted]
    while done < n_boot:
        bc = min(chunk, n_boot - done)
        if fast_slots is not None:
            comb = comb_cache.get(bc)
            if comb is None:
                comb = (fast_slots["slot_A"] * bc + fast_slots["slot_r0"])[None, :] + \
                    np.arange(bc, dtype=np.float64)[:, None] * fast_slots["slot_L"][None, :]
                comb_cache[bc] = comb
            u = rng.random((bc, plan.n_draws))
            u *= plan.slot_n
            u += comb
            idx = u.astype(np.intp)
            # the draws counted straight into the float buffer: ufunc.at's indexed loop is several times
            # faster than bincount's int64 counts plus their cast (the counts are small whole numbers: exact)
            buf = np.zeros(bc * layout.W, dtype=dtype)
            np.add.at(buf, idx.ravel(), buf.dtype.type(1))
            if fixed_rows is not None:
                fpos = (bc * A_row[fixed_rows] + row_rank[fixed_rows])[None, :] + \
                    np.arange(bc)[:, None] * L_row[fixed_rows][None, :]
                buf[fpos.ravel()] = 1.0
        else:
            counts = next(counts_iter)
            mult = counts.astype(dtype) * mult_psu
            buf = np.zeros(bc * layout.W, dtype=dtype)
            pos = (bc * A_row + row_rank)[None, :] + np.arange(bc)[:, None] * L_row[None, :]
            buf[pos.ravel()] = mult[:, psu_rows].ravel()
        for b in range(layout.n_buckets):
            Kb, Lb = int(layout.K_b[b]), int(layout.L_b[b])
            start = bc * int(layout.PB[b])
            C = buf[start:start + Kb * bc * Lb].reshape(Kb, bc, Lb)
            S = np.matmul(C, Xb[b])                                   # (Kb, bc, 2F)
            with np.errstate(invalid="ignore", divide="ignore"):
                th = S[:, :, :F] / S[:, :, F:]                          # deviation from the estimate
            reps[layout.cells_of_bucket[b], :, done:done + bc] = (th + est_b[b]).transpose(0, 2, 1)
        done += bc
    return reps


#: Replicate weights of the fast path (rows are PSUs, each stratum inside one cell) are drawn straight
#: into the padded layout; tests switch it off to check the general path gives the same numbers.
_FAST_PATH = True
#: BLAS threads inside the batched products (None: the library's default).  The products are many
#: small GEMMs, which run fastest on one thread and do not leave a second core idle-spinning
#: (benchmarks/bench_indicators.py measures both).
_BLAS_THREADS: int | None = 1


def _check_options(statistic, ci, ci_method, n_boot, min_n, cv_suppress, cv_caution, chunk_size):
    if statistic not in STATISTICS:
        raise CipsError(f"statistic= must be one of {STATISTICS}; got {statistic!r}.")
    level = _check_level(ci)
    method = _check_method(ci_method)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise CipsError(f"n_boot= must be an integer >= 2; got {n_boot!r}.")
    if isinstance(min_n, bool) or not (isinstance(min_n, (int, np.integer)) and min_n >= 0):
        raise CipsError(f"min_n= must be a non-negative integer; got {min_n!r}.")
    if not 0 < cv_caution <= cv_suppress:
        raise CipsError(f"Need 0 < cv_caution <= cv_suppress; got {cv_caution!r} and {cv_suppress!r}.")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise CipsError(f"chunk_size= must be a positive integer; got {chunk_size!r}.")
    return level, method


def _check_by(frame: pd.DataFrame, by: Sequence[str]) -> tuple:
    by = (by,) if isinstance(by, str) else tuple(by)
    missing = [c for c in by if c not in frame.columns]
    if missing or not by:
        raise DataError(f"by= names columns that data.frame lacks: {missing}." if missing else "by= is empty.",
                        [Problem("by_column", "Column not found.", column=c) for c in missing])
    if "factor" in by:
        raise DataError("by= must not contain 'factor': every factor is estimated in every cell.",
                        [Problem("by_column", "Reserved.", column="factor")])
    return by


def _design(data: Any, weight: Any) -> Design:
    """The design of the call: the data's own (``weight=None``), the data's with another weight column, or a Design."""
    base = design_of(data)
    if weight is None:
        d = base
    elif isinstance(weight, Design):
        d = weight
    elif isinstance(weight, str):
        d = base.update(weight=weight, calibration=None)
    else:
        raise CipsError(f"weight= must be None, a column name or a Design; got {type(weight).__name__}.")
    if len(d.clusters) > 1:
        raise CipsError("indicators() resamples first-stage units; give a Design with one cluster column.")
    d.check(data.frame)
    return d


def _design_arrays(frame: pd.DataFrame, d: Design) -> tuple[np.ndarray, np.ndarray, Any]:
    """Weights, design-stratum codes (country x iteration x group x stratum) and cluster labels."""
    n = len(frame)
    if d.weight is None:
        w = np.ones(n)
    else:
        w = frame[d.weight].to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))
        if bad.size:
            raise DataError(f"{bad.size} weights are not positive and finite.",
                            [Problem("weight_positive", "Weight must be positive.", row=int(r) + 1, column=d.weight,
                                     value=float(w[r])) for r in bad[:50]])
    dcols = [c for c in _KEYS if c in frame.columns] + ([d.strata] if d.strata is not None else [])
    dstrat, _ = _codes_by(frame, dcols)
    if (dstrat < 0).any():
        r = np.flatnonzero(dstrat < 0)
        raise DataError(f"{r.size} rows have a missing design key ({dcols}).",
                        [Problem("design_missing", "Missing design key.", row=int(i) + 1) for i in r[:50]])
    cl = frame[d.cluster].to_numpy() if d.cluster is not None else None
    return w, dstrat, cl


class _Cells:
    """Rows of the cells sorted by cell, then design stratum, then row; per-cell sums by ``reduceat``."""

    def __init__(self, frame: pd.DataFrame, by: tuple, dstrat: np.ndarray):
        cell, self.keys = _codes_by(frame, by)
        self.K = len(self.keys)
        rows_in = np.flatnonzero(cell >= 0)
        self.n_in = rows_in.size
        order = np.lexsort((rows_in, dstrat[rows_in], cell[rows_in]))
        self.rows = rows_in[order]
        self.cell = cell[self.rows]
        self.stratum = dstrat[self.rows]
        self.sizes = np.bincount(self.cell, minlength=self.K)
        self.start = np.concatenate(([0], np.cumsum(self.sizes)[:-1]))
        self.rank = np.arange(self.rows.size) - self.start[self.cell]

    def sum(self, a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(a, self.start, axis=0) if self.K else np.zeros((0,) + a.shape[1:])


@dataclass
class _FullSample:
    est: np.ndarray       # (K, F)
    dev: np.ndarray       # (rows, F) score minus its cell estimate (0 where no score)
    wm: np.ndarray        # (rows, F) weight times score mask
    nn: np.ndarray        # (K, F) unweighted n
    s2w: np.ndarray       # (K, F) weighted variance of the scores
    n_eff: np.ndarray     # (K, F) Kish
    infl: np.ndarray      # (K, F, 2) sums of squares and cubes of the influence values


def _full_sample(S: np.ndarray, M: np.ndarray, w: np.ndarray, cells: _Cells) -> _FullSample:
    Ss, Ms, ws = S[cells.rows], M[cells.rows], w[cells.rows]
    wm = np.where(Ms, ws[:, None], 0.0)
    s0 = np.where(Ms, Ss, 0.0)
    sw, swy, sw2, nn = cells.sum(wm), cells.sum(wm * s0), cells.sum(wm * ws[:, None]), cells.sum(Ms.astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        est = swy / sw
        dev = np.where(Ms, s0 - est[cells.cell], 0.0)
        u = wm * dev / sw[cells.cell]                         # empirical influence values of the ratio
        s2w = cells.sum(wm * dev * dev) / sw * nn / np.maximum(nn - 1, 1)
        n_eff = sw ** 2 / sw2
    infl = np.stack([cells.sum(u * u), cells.sum(u ** 3)], axis=-1)
    return _FullSample(est, dev, wm, nn, s2w, n_eff, infl)


def _fast_slots(plan: RaoWuPlan, layout: "_Layout", cells: _Cells, n: int) -> dict | None:
    """Slots of the fast path when every row is a PSU and each design stratum lies inside one cell."""
    if not (_FAST_PATH and plan.rows_are_psus and cells.n_in == n):
        return None
    H = plan.n_h.size
    cmin = np.full(H, np.iinfo(np.intp).max)
    cmax = np.full(H, -1)
    np.minimum.at(cmin, cells.stratum, cells.cell)
    np.maximum.at(cmax, cells.stratum, cells.cell)
    if not np.all(cmin == cmax):
        return None
    first = np.full(H, -1)
    first[cells.stratum[::-1]] = np.arange(cells.stratum.size)[::-1]        # first sorted row of each stratum
    h_cell = cells.cell[first]
    slot_h = np.repeat(np.arange(H), plan.m_h)
    return {
        "slot_A": layout.A_cell[h_cell][slot_h].astype(np.float64),
        "slot_r0": cells.rank[first][slot_h].astype(np.float64),
        "slot_L": layout.L_cell[h_cell][slot_h].astype(np.float64),
        "fixed_rows": np.flatnonzero(plan.psu_fixed[plan.psu_of_row[cells.rows]]),
    }


def _bootstrap(plan: RaoWuPlan, cells: _Cells, fs: _FullSample, n: int, n_boot: int, seed: int,
               chunk_size: int | None, dtype: Any) -> tuple[np.ndarray, bool]:
    """Replicate estimates (K, F, B) and whether the fast path ran."""
    F = fs.est.shape[1]
    layout = _Layout(cells.sizes)
    slots = _fast_slots(plan, layout, cells, n)
    a_row = plan.psu_multiplier[plan.psu_of_row[cells.rows]]
    xw = fs.wm * (a_row[:, None] if slots is not None else 1.0)
    X = np.zeros((layout.W, 2 * F), dtype=dtype)
    pos0 = layout.A_cell[cells.cell] + cells.rank
    X[pos0, :F] = xw * fs.dev
    X[pos0, F:] = xw
    P_draw = max(plan.n_draws, layout.W)
    chunk = int(chunk_size) if chunk_size is not None else int(max(1, min(n_boot, _CHUNK_ELEMS // max(1, P_draw))))
    args = (plan, layout, X, cells.cell, cells.rank, cells.rows, slots, n_boot, seed, chunk, F,
            np.nan_to_num(fs.est), dtype)
    if _BLAS_THREADS is None:
        return _engine(*args), slots is not None
    if _BLAS_THREADS == 1:
        with one_thread():
            return _engine(*args), slots is not None
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        return _engine(*args), slots is not None


def _cell_intervals(fs: _FullSample, reps: np.ndarray, est_flat: np.ndarray, level: float, method: str) -> dict:
    """Bootstrap SE and CI of every cell and factor (replicates of empty cells set to NaN in place)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        accel = (fs.infl[..., 1] / (6.0 * fs.infl[..., 0] ** 1.5)).reshape(-1)
    reps_flat = reps.reshape(est_flat.size, reps.shape[-1])
    reps_flat[np.isnan(est_flat)] = np.nan
    return _intervals(est_flat, reps_flat, level, method, accel)


def _cell_table(cells: _Cells, fids: tuple, fs: _FullSample, iv: dict, est_flat: np.ndarray, masks: dict
                ) -> pd.DataFrame:
    K, F = cells.K, len(fids)
    n_flat = fs.nn.reshape(-1)
    table = cells.keys.iloc[np.repeat(np.arange(K), F)].reset_index(drop=True)
    table["factor"] = np.tile(np.asarray(fids, dtype=object), K)
    table["estimate"] = est_flat
    table["se"] = iv["se"]
    table["ci_low"] = iv["ci_low"]
    table["ci_high"] = iv["ci_high"]
    table["n"] = n_flat.astype(np.int64)
    table["n_eff"] = fs.n_eff.reshape(-1)
    table["deff"] = masks["deff"]
    table["cv"] = masks["cv"]
    table["suppressed"] = masks["suppressed"]
    table["caution"] = masks["caution"]
    table["flags"] = _flag_strings({"no_data": masks["no_data"], "small_n": masks["small"] & ~masks["no_data"],
                                    "high_cv": masks["high"], "caution_cv": masks["caution"],
                                    "nan_replicates": (iv["n_nan"] > 0) & ~masks["no_data"],
                                    "bca_undefined": iv["bca_undefined"]})
    return table


def _precision(fs: _FullSample, iv: dict, est_flat: np.ndarray, min_n: int, cv_suppress: float,
               cv_caution: float) -> dict:
    se = iv["se"]
    n_flat = fs.nn.reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = se / np.abs(est_flat)
        deff = se ** 2 / (fs.s2w.reshape(-1) / n_flat)
    no_data = n_flat == 0
    small = n_flat < min_n
    high = ~no_data & ~(cv <= cv_suppress)                      # NaN cv (e.g. no replicate spread) -> suppressed
    caution = ~no_data & ~small & ~high & (cv > cv_caution)
    return {"cv": cv, "deff": deff, "no_data": no_data, "small": small, "high": high, "caution": caution,
            "suppressed": no_data | small | high}


def _result_flags(m: dict, iv: dict, kept: np.ndarray, cells: _Cells, by: tuple, fids: tuple, min_n: int,
                  cv_suppress: float, cv_caution: float) -> list[Flag]:
    """One flag per kind of cell condition (with the cells and their count), each also emitted once as a warning.

    Cells below the precision minimum, suppressed for their CV, without data or only "use
    with caution" warn with :class:`~cips_stats.errors.SmallCellWarning`; replicate troubles
    with :class:`~cips_stats.errors.NumericalWarning`.
    """
    F = len(fids)
    flags = []
    for code, mask, sev, msg, category in (
        ("small_cell", m["small"] & kept & ~m["no_data"], "warning", f"cells with fewer than {min_n} scored "
         "respondents are suppressed", SmallCellWarning),
        ("high_cv", m["high"] & kept, "warning", f"cells with CV above {cv_suppress:.1%} are suppressed",
         SmallCellWarning),
        ("caution_cv", m["caution"] & kept, "caution", f"cells with CV between {cv_caution:.1%} and "
         f"{cv_suppress:.1%}: use with caution", SmallCellWarning),
        ("no_data", m["no_data"] & kept, "warning", "cells without any scored respondent", SmallCellWarning),
        ("nan_replicates", (iv["n_nan"] > 0) & kept & ~m["no_data"], "caution", "some replicates drew no scored "
         "respondent of a cell and were left out of its SE and CI", NumericalWarning),
        ("bca_undefined", iv["bca_undefined"] & kept, "warning", "BCa interval undefined (all replicates on "
         "one side of the estimate)", NumericalWarning),
    ):
        if mask.any():
            idx = np.flatnonzero(mask)
            where = {"cells": [dict(zip(list(by) + ["factor"], [*(_py(v) for v in cells.keys.iloc[i // F]),
                                                                 fids[i % F]])) for i in idx[:200]],
                     "n": int(idx.size)}
            flags.append(emit(Flag(code, f"{idx.size} {msg} (see the flags column).", sev, where), category,
                              stacklevel=4))
    return flags


def _asked(sc: Any, frame: pd.DataFrame, cells: _Cells, fids: tuple) -> np.ndarray:
    """Cells whose group is asked at least one item of the factor (the others are structurally empty)."""
    asked_g = sc.counts.pivot(index="group", columns="factor", values="asked").reindex(columns=list(fids))
    g_rows = frame["group"].to_numpy()[cells.rows]
    asked_rows = asked_g.reindex(g_rows).to_numpy(dtype=bool)
    return cells.sum(asked_rows.astype(np.int64)).reshape(-1) > 0


def indicators(data: Any, *, by: Sequence[str] = _KEYS, statistic: str = "mean_0_10", n_boot: int = 2000,
               ci: float = 0.95, ci_method: str = "percentile", seed: int | None = None,
               min_n: int = _th.MIN_CELL, cv_suppress: float = _th.CV_SUPPRESS, cv_caution: float = _th.CV_CAUTION,
               weight: Any = None, min_share: float = 0.5, favourable: Any = None,
               factors: Iterable[str] | None = None, bootstrap_type: str = "subbootstrap",
               lonely_psu: str = "fail", chunk_size: int | None = None, keep_replicates: bool = True,
               dtype: Any = np.float32) -> Indicators:
    """Key-factor indicators of every cell, with design-respecting bootstrap SEs and CIs.

    Parameters
    ----------
    data : SurveyData
        The survey.
    by : sequence of str
        Cell keys; default ``("country", "iteration", "group")``.  May add
        demographic columns (``gender``, ``experience``, ``leadership``,
        ``business_type``...): they define domains, estimated from the
        replicates of the whole design (resampling stays within the design
        strata).  Rows with a missing key are in no cell.
    statistic : {"mean_0_10", "mean_0_100", "favourable"}
        Respondent score (:func:`cips_stats.scores.respondent_scores`).
    n_boot : int
        Bootstrap replicates ``B`` (default 2000).
    ci : float
        Confidence level.
    ci_method : {"percentile", "bca", "normal"}
        Percentile, bias-corrected and accelerated, or estimate ± z·SE.
    seed : int or None
        Seed of the replicates (``None`` draws one from entropy; the seed used
        is in ``provenance.seed`` and ``.seed``); the same seed gives the same
        numbers whatever the chunk size.
    min_n : int
        Cells with fewer scored respondents are suppressed
        (:data:`cips_stats.thresholds.MIN_CELL`, 30).
    cv_suppress, cv_caution : float
        Cells with ``cv = se/|estimate|`` above ``cv_suppress`` (33.3%) are
        suppressed; above ``cv_caution`` (16.6%) marked "use with caution"
        (:mod:`cips_stats.thresholds`).
    weight : None, str or Design
        ``None`` (default): the data's design (``data.design``: its weight,
        stratum and cluster columns); a column name: the data's design with
        that weight; or a :class:`~cips_stats.estimate.Design` (its strata
        are design strata inside country × iteration × group, its cluster the
        PSUs, read within strata).  ``Design(weight=None)``: unit weights.
    min_share, favourable, factors
        Passed to :func:`~cips_stats.scores.respondent_scores`.
    bootstrap_type : {"subbootstrap", "bootstrap"}
        Rao–Wu (``n_h - 1`` draws, rescaled) or Canty–Davison (``n_h``).
    lonely_psu : {"fail", "certainty"}
        Strata with a single PSU.
    chunk_size : int, optional
        Replicates per chunk (default: about 16 MB of working memory).
    keep_replicates : bool
        Keep the ``(cells, factors, B)`` replicate array (for contrasts).
    dtype : numpy dtype
        Precision of the replicate weight chunks and products (float32
        default; deviations from the cell estimate are accumulated, so the
        SEs agree with float64 to about 1e-5 relative).

    Returns
    -------
    Indicators
        ``.table`` (tidy), ``.replicates``, ``.contrast()``, ``.difference()``.

    Notes
    -----
    The estimate of cell ``k`` and factor ``f`` is the ratio
    ``sum_i w_i m_if s_if / sum_i w_i m_if`` over the cell's respondents
    (``m_if = 1`` when the score exists).  Replicate ``b`` replaces ``w_i``
    by ``w_i c_bi n_h/(n_h - 1)``, with ``c_bi`` the number of times the
    respondent's PSU was drawn among ``n_h - 1`` draws with replacement in
    its stratum (Rao & Wu 1988; R ``survey`` ``as.svrepdesign(type =
    "subbootstrap")``), and ``SE^2 = 1/(B - 1) sum_b (theta_b -
    mean theta)^2``.  Strata are the design strata within country ×
    iteration × group.  All cells and factors come from per-chunk batched
    matrix products of the replicate counts with the masked weighted scores
    (BLAS on one thread: many small products).  ``n_eff`` is Kish's; ``deff
    = SE^2 / (s_w^2 / n)``.  The bootstrap SE agrees with R
    ``svymean``'s linearization SE (``tests/test_indicators.py``); 95% CIs
    cover simulated truths at the nominal rate
    (``validation/study_indicator_coverage.py``).

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=60, n_private=40)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:     # cells under 45 respondents warn
    ...     warnings.simplefilter("always")
    ...     res = cs.estimate.indicators(sim.data, n_boot=200, seed=1, min_n=45)
    >>> sorted({w.category.__name__ for w in caught})
    ['SmallCellWarning']
    >>> t = res.table
    >>> bool((t["ci_low"] < t["estimate"]).all() and (t["estimate"] < t["ci_high"]).all())
    True
    >>> bool(t.loc[t["n"] < 45, "suppressed"].all())
    True
    """
    level, method = _check_options(statistic, ci, ci_method, n_boot, min_n, cv_suppress, cv_caution, chunk_size)
    frame = getattr(data, "frame", None)
    if not isinstance(frame, pd.DataFrame) or getattr(data, "instrument", None) is None:
        raise DataError(f"data= must be a SurveyData; got {type(data).__name__}.",
                        [Problem("data_type", "Not a SurveyData.", value=type(data).__name__)])
    used_seed, by, d = resolve_seed(seed), _check_by(frame, by), _design(data, weight)
    n = len(frame)
    sc = respondent_scores(data, statistic=statistic, min_share=min_share, favourable=favourable, factors=factors)
    fids, S = sc.factors, sc.values()
    w, dstrat, cl = _design_arrays(frame, d)
    plan = RaoWuPlan.build(n, strata=dstrat, cluster=cl, bootstrap_type=bootstrap_type, lonely_psu=lonely_psu)
    cells = _Cells(frame, by, dstrat)
    K, F = cells.K, len(fids)
    fs = _full_sample(S, ~np.isnan(S), w, cells)
    reps, fast = _bootstrap(plan, cells, fs, n, int(n_boot), used_seed, chunk_size, dtype)
    est_flat = fs.est.reshape(-1)
    iv = _cell_intervals(fs, reps, est_flat, level, method)
    masks = _precision(fs, iv, est_flat, min_n, cv_suppress, cv_caution)
    asked = _asked(sc, frame, cells, fids)
    table = _cell_table(cells, fids, fs, iv, est_flat, masks)[asked].reset_index(drop=True)
    flags = list(sc.flags) + _result_flags(masks, iv, asked, cells, by, fids, min_n, cv_suppress, cv_caution)
    prov = Provenance.build("indicators", data=data, seed=used_seed, options={
        "by": list(by), "statistic": statistic, "n_boot": int(n_boot), "ci": level, "ci_method": method,
        "min_n": int(min_n), "cv_suppress": float(cv_suppress), "cv_caution": float(cv_caution),
        "weight": d.weight, "strata": d.strata, "cluster": d.cluster, "min_share": float(min_share),
        "bootstrap_type": bootstrap_type, "lonely_psu": lonely_psu, "dtype": np.dtype(dtype).name,
        "variance_scale": plan.scale(int(n_boot)), "path": "fast" if fast else "general"})
    return Indicators(table=table, cells=cells.keys, factors=fids, estimates=fs.est,
                      replicates=reps if keep_replicates else None, n=fs.nn.astype(np.int64), influence=fs.infl,
                      suppressed=masks["suppressed"].reshape(K, F), by=by, statistic=statistic, n_boot=int(n_boot),
                      ci=level, ci_method=method, seed=used_seed, provenance=prov, flags=tuple(flags))


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def perception_gap(data_or_result: Any, *, minuend: str = "officials", subtrahend: str = "private",
                   ci: float = 0.95, ci_method: str | None = None, **kwargs: Any) -> Contrast:
    """The officials-minus-private perception gap per country, iteration and key factor.

    Parameters
    ----------
    data_or_result : SurveyData or Indicators
        A survey (then :func:`indicators` runs with ``by=("country",
        "iteration", "group")`` and ``kwargs``), or indicators whose ``by``
        contains ``"group"``.
    minuend, subtrahend : str
        The two respondent groups (default officials minus private sector).
    ci : float
        Confidence level of the gap's interval (default 0.95).
    ci_method : str, optional
        Interval method (default that of the indicators).
    **kwargs
        Options of :func:`indicators` (``n_boot``, ``seed``, ``statistic``...).

    Returns
    -------
    Contrast
        ``country, iteration, factor, estimate, se, ci_low, ci_high, n_min,
        suppressed, flags``: the gap and its CI from the same replicates as
        the two cells.

    Notes
    -----
    Officials and private-sector respondents are independent samples, so the
    gap's bootstrap variance is the sum of the two cells' variances; it is
    computed from the replicate differences, which also serves BCa.

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=0, n_officials=60, n_private=40)
    >>> gap = cs.estimate.perception_gap(sim.data, n_boot=100, seed=1)
    >>> gap.table.columns[:4].tolist()
    ['country', 'iteration', 'factor', 'estimate']
    """
    if isinstance(data_or_result, Indicators):
        if kwargs:
            raise CipsError(f"Options {sorted(kwargs)} apply only when perception_gap() gets a SurveyData.")
        res = data_or_result
    else:
        res = indicators(data_or_result, by=kwargs.pop("by", _KEYS), ci=ci, **kwargs)
    if "group" not in res.by:
        raise DataError("The indicators need 'group' among their by= keys for a perception gap.",
                        [Problem("by_column", "Column 'group' missing.", column="group")])
    return res.difference(along="group", minuend=minuend, subtrahend=subtrahend, ci=ci, ci_method=ci_method)
