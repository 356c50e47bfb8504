"""Reliability of every factor in every cell in one vectorised pass (the survey layer over the kernels).

The rows of each respondent group are ordered by cell once, every factor's items are
gathered straight from the columns into zero-padded pieces of each cell
(:func:`~cips_stats.reliability._moments._padded_moments`), and the closed-form alpha
kernel and the batched one-factor fit run over the whole (cells x items x items) stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from .. import thresholds as _th
from .._blas import one_thread
from ..errors import (CipsError, ConvergenceWarning, DataError, Flag, LowReliabilityWarning, NumericalWarning,
                      Problem, SmallCellWarning, check_choice, check_count, check_level, emit)
from ..results import Provenance, Result, Summary
from ._alpha import MISSING, _alpha_kernel
from ._checks import _check_numeric_columns, _raise_infinite, _weight_vector
from ._moments import CHUNK_ELEMENTS, _covariances, _item_total, _padded_moments, _piece_length
from ._omega import DENOMINATORS, _fit_one_factor, _omega_from_fit, _polychoric

_ITEM_COLUMNS = ["item", "n", "mean", "sd", "missing_share", "raw_r", "r_drop", "alpha_if_dropped"]
_SCALE_STATS = ["alpha", "std_alpha", "ci_low", "ci_high", "omega", "omega_ci_low", "omega_ci_high",
                "ordinal_alpha", "ordinal_omega", "n", "n_eff", "mean_r", "se"]

#: Cell flag codes summarised into one result flag (and warning) each: (code, warning class, severity).
_SUMMARISED = (
    ("alpha_poor", LowReliabilityWarning, "warning"), ("alpha_questionable", LowReliabilityWarning, "caution"),
    ("omega_poor", LowReliabilityWarning, "warning"), ("omega_questionable", LowReliabilityWarning, "caution"),
    ("small_n", SmallCellWarning, "caution"), ("n_below_items", SmallCellWarning, "warning"),
    ("too_few_respondents", SmallCellWarning, "warning"), ("no_respondents", SmallCellWarning, "warning"),
    ("heywood", NumericalWarning, "warning"), ("non_psd", NumericalWarning, "caution"),
    ("constant_item", NumericalWarning, "caution"), ("omega_not_estimable", NumericalWarning, "caution"),
    ("omega_not_converged", ConvergenceWarning, "warning"),
)


@dataclass(frozen=True)
class ByCellResult(Result):
    """Reliability of every factor in every cell.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy table: key columns (``by`` then ``factor``; with ``on="items"`` also
        ``item``), then the statistics and a ``flags`` column (``;``-separated codes).
    on : str
        ``"scale"`` (one row per cell and factor) or ``"items"`` (per item).
    by : tuple of str
        The key columns.

    The result's own ``flags`` summarise the cell flags (how many cells have low
    alpha, too few respondents, Heywood cases...); each was also emitted as a warning.
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    on: str = "scale"
    by: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (a copy; ``.attrs["provenance"]`` holds the provenance as a dict)."""
        out = self.table.copy()
        out.attrs["provenance"] = self.provenance.to_dict() if self.provenance is not None else None
        return out

    def __len__(self) -> int:
        return len(self.table)

    def summary(self) -> Summary:
        """Per factor (and respondent group): cells, median and minimum alpha (and omega), cells below .70."""
        t = self.table
        keys = [k for k in ("group", "factor") if k in t.columns]
        if self.on != "scale" or t.empty or not keys:
            return super().summary()
        g = t.groupby(keys, sort=False)
        agg = g.agg(cells=("alpha", "size"), alpha_median=("alpha", "median"), alpha_min=("alpha", "min"))
        agg["below_acceptable"] = g["alpha"].apply(lambda a: int((a < _th.RELIABILITY_ACCEPTABLE).sum()))
        if "omega" in t.columns:
            agg["omega_median"] = g["omega"].median()
        header = {"cells x factors": len(t), "by": ", ".join(self.by)}
        return Summary("Reliability by cell", header=header, tables={"by factor": agg.reset_index()},
                       notes=[f.message for f in self.flags])


#: Cell flag codes, one bit each while computing (turned into ";"-joined text once per distinct set).
_CODES = ("no_respondents", "too_few_respondents", "too_few_items", "item_unanswered", "constant_item",
          "n_below_items", "small_n", "non_psd", "alpha_poor", "alpha_questionable", "two_items",
          "omega_unidentified", "omega_not_converged", "omega_not_estimable", "heywood", "omega_poor",
          "omega_questionable", "omega_ci_undefined")
_BIT = {c: np.int64(1) << np.int64(i) for i, c in enumerate(_CODES)}


def _add_flag(bits: np.ndarray, mask: np.ndarray, code: str) -> None:
    bits[mask] |= _BIT[code]


def _flag_text(bits: np.ndarray) -> np.ndarray:
    """The ``;``-joined codes of every row's bits (one join per distinct combination)."""
    uniq, inv = np.unique(bits, return_inverse=True)
    texts = np.array([";".join(c for i, c in enumerate(_CODES) if (int(u) >> i) & 1) for u in uniq], dtype=object)
    return texts[inv.reshape(-1)]


def _join_text(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise ``a;b`` of two object arrays of flag text, skipping empty parts."""
    out = a.copy()
    has_b = b != ""
    both = has_b & (a != "")
    out[both] = a[both] + ";" + b[both]
    only_b = has_b & ~both
    out[only_b] = b[only_b]
    return out


def _omega_cells(cov: np.ndarray, n: np.ndarray, n_eff: np.ndarray, p: int, level: float, denominator: str,
                 flags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Omega and its Wald interval in every (cell, scale) of a stack; flags added in place."""
    K = cov.shape[0]
    om, om_lo, om_hi = np.full(K, np.nan), np.full(K, np.nan), np.full(K, np.nan)
    if p < 3:
        _add_flag(flags, np.ones(K, dtype=bool), "omega_unidentified")
        return om, om_lo, om_hi
    okc = np.isfinite(cov).all(axis=(1, 2)) & (n > p)
    fit = _fit_one_factor(np.where(okc[:, None, None], cov, np.eye(p)))
    fit["converged"] = fit["converged"] & okc
    fit["estimable"] = fit["estimable"] & okc
    o = _omega_from_fit(fit, cov, n_eff)
    key = "omega_model" if denominator == "model" else "omega_observed"
    est_ok = fit["estimable"] & fit["converged"]
    om = np.where(est_ok, o[key], np.nan)
    if denominator == "model":
        z = _st.norm.ppf(0.5 + level / 2.0)
        om_lo, om_hi = om - z * o["se_model"], om + z * o["se_model"]
    with np.errstate(invalid="ignore"):
        _add_flag(flags, fit["estimable"] & ~fit["converged"], "omega_not_converged")
        _add_flag(flags, ~fit["estimable"] & (n > p), "omega_not_estimable")
        _add_flag(flags, est_ok & (fit["psi"] < 0).any(axis=1), "heywood")
        # an estimate without a standard error: the information matrix is not positive definite there
        if denominator == "model":
            _add_flag(flags, np.isfinite(om) & ~np.isfinite(om_lo), "omega_ci_undefined")
        _add_flag(flags, om < _th.RELIABILITY_POOR, "omega_poor")
        _add_flag(flags, (om >= _th.RELIABILITY_POOR) & (om < _th.RELIABILITY_ACCEPTABLE), "omega_questionable")
    return om, om_lo, om_hi


def _scale_stats(mom: Mapping[str, np.ndarray], p: int, *, level: float, ci_method: str, do_omega: bool,
                 denominator: str, min_n: int, weighted: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every scale-level and item-level statistic over a stack of K (cell, scale) moments."""
    n = mom["any_n"]
    K = n.shape[0]
    cov = _covariances(mom)
    it = _item_total(mom)
    n_eff = it["n_eff"] if weighted else n.copy()
    k = _alpha_kernel(cov, n_eff, level, ci_method)
    out = {"alpha": k["alpha"], "std_alpha": k["std_alpha"], "ci_low": k["ci_low"], "ci_high": k["ci_high"],
           "se": k["ase"], "n": n, "n_eff": n_eff, "mean_r": k["mean_r"]}
    flags = np.zeros(K, dtype=np.int64)
    nj = it["n_item"]
    with np.errstate(invalid="ignore"):
        var = np.diagonal(cov, axis1=1, axis2=2)
        no_resp = n == 0
        few = (n > 0) & (n < 2)
        item_missing = (nj < 2).any(axis=1) & ~no_resp & ~few
        scale2 = np.maximum(1.0, np.abs(it["mean"]) ** 2)
        const = ((var <= 1e-12 * scale2) & (nj >= 2)).any(axis=1) & ~no_resp & ~few
        _add_flag(flags, no_resp, "no_respondents")
        _add_flag(flags, few, "too_few_respondents")
        _add_flag(flags, item_missing, "item_unanswered")
        _add_flag(flags, const, "constant_item")
        _add_flag(flags, (n >= 2) & (n <= p), "n_below_items")
        _add_flag(flags, (n > p) & (n < min_n), "small_n")
        _add_flag(flags, k["non_psd"], "non_psd")
        _add_flag(flags, out["alpha"] < _th.RELIABILITY_POOR, "alpha_poor")
        _add_flag(flags, (out["alpha"] >= _th.RELIABILITY_POOR) & (out["alpha"] < _th.RELIABILITY_ACCEPTABLE),
                  "alpha_questionable")
    if p == 2:
        _add_flag(flags, np.ones(K, dtype=bool), "two_items")
    if do_omega:
        out["omega"], out["omega_ci_low"], out["omega_ci_high"] = _omega_cells(cov, n, n_eff, p, level,
                                                                               denominator, flags)
    out["flags"] = flags
    with np.errstate(invalid="ignore", divide="ignore"):
        miss = 1.0 - nj / np.where(mom["rows"] > 0, mom["rows"], np.nan)[:, None]
    items = {"n": nj, "mean": it["mean"], "sd": it["sd"], "missing_share": miss,
             "raw_r": it["raw_r"], "r_drop": k["r_drop"], "alpha_if_dropped": k["alpha_if_dropped"]}
    return out, items


def _ordinal_cells(X: np.ndarray, starts: np.ndarray, p: int, missing: str,
                   denominator: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ordinal alpha and omega of every cell of one scale (rows of ``X`` sorted by cell).

    One polychoric matrix per cell (the expensive part; each call is vectorised over
    item pairs), then the one-factor fits batched over all cells.
    """
    C = starts.size
    rho = np.full((C, p, p), np.nan)
    flags = np.full(C, "", dtype=object)
    bounds = np.r_[starts, X.shape[0]]
    for c in range(C):
        Xc = X[bounds[c]:bounds[c + 1]]
        Xc = Xc[~np.isnan(Xc).all(axis=1)]
        if Xc.shape[0] < 2:
            flags[c] = "ordinal_not_estimable"
            continue
        try:
            r, pf = _polychoric(pd.DataFrame(Xc), missing)
        except DataError:
            flags[c] = "ordinal_not_estimable"
            continue
        rho[c] = r
        if pf:
            flags[c] = ";".join(f.code for f in pf)
    with np.errstate(invalid="ignore", divide="ignore"):
        oalpha = p / (p - 1.0) * (1.0 - p / rho.sum(axis=(1, 2)))
    oomega = np.full(C, np.nan)
    if p >= 3:
        ok = np.isfinite(rho).all(axis=(1, 2))
        if ok.any():
            fit = _fit_one_factor(np.where(ok[:, None, None], rho, np.eye(p)))
            o = _omega_from_fit(fit, rho, np.full(C, 1.0))
            key = "omega_model" if denominator == "model" else "omega_observed"
            good = ok & fit["estimable"] & fit["converged"]
            oomega = np.where(good, o[key], np.nan)
            bad = ok & ~good
            flags[bad] = np.array([f + ";ordinal_omega_failed" if f else "ordinal_omega_failed"
                                   for f in flags[bad]], dtype=object)
    return oalpha, oomega, flags


# ============================================================================ the survey layer
def _frame_and_weight(data: Any, weight: Any) -> tuple[pd.DataFrame, Any, str | None]:
    """The respondent table, the instrument (or None) and the weight column (or None)."""
    instrument = getattr(data, "instrument", None)
    frame = data.frame if hasattr(data, "frame") and instrument is not None else data
    if not isinstance(frame, pd.DataFrame):
        raise DataError("The data= argument must be a SurveyData or a pandas DataFrame.",
                        [Problem("data_type", "Unsupported input.", "<input>", value=type(data).__name__)])
    if weight is None and instrument is not None:          # a SurveyData: its design weight
        design = getattr(data, "design", None)
        if design is not None and hasattr(design, "weight"):
            weight = design.weight if design.weight is not None else False
        elif "weight" in frame.columns:
            weight = "weight"
    if not isinstance(weight, str) and hasattr(weight, "weight") and not isinstance(weight, (bool, np.ndarray)):
        weight = weight.weight                                # a Design: its weight column (None: unit weights)
    if weight is None or weight is False:
        return frame, instrument, None
    if not isinstance(weight, str):
        raise CipsError(f"The weight= argument of by_cell must be a column name, a Design, False or None; "
                        f"got {type(weight).__name__}.")
    if weight not in frame.columns:
        raise DataError(f"The weight= column {weight!r} is not in the data.",
                        [Problem("weight_column", "Column not found.", "<DataFrame>", column=weight)])
    return frame, instrument, weight


def _item_spec(frame: pd.DataFrame, instrument: Any, items: Mapping[str, Sequence[str]] | None,
               factors: Iterable[str] | None, by: list[str],
               factorized: dict[str, tuple[Any, Any]]) -> dict[str, dict[Any, list[str]]]:
    """``{factor: {group value or None: item columns}}`` from ``items=`` or the instrument."""
    if items is None and instrument is None:
        raise CipsError("With a plain DataFrame, give items={'factor': [columns]}.")
    if items is not None:
        spec = {str(f): {None: [str(c) for c in cols]} for f, cols in items.items()}
    else:
        groups_present: list[str] = []
        if "group" in frame.columns:
            if "group" in by:           # the key column is factorized anyway: keep it for the cells
                factorized["group"] = pd.factorize(frame["group"], sort=True)
                present = set(factorized["group"][1])
            else:
                present = set(frame["group"].unique())
            groups_present = [g for g in instrument.group_ids if g in present]
        spec = {}
        for f in instrument.factor_ids:
            if "group" in by:
                spec[f] = {g: list(instrument.factor_items(f, group=g)) for g in groups_present}
            else:
                spec[f] = {None: [i for i in instrument.factor_items(f)
                                  if all(i in instrument.factor_items(f, group=g) for g in groups_present)]}
    if factors is not None:
        wanted = [str(f) for f in factors]
        unknown = [f for f in wanted if f not in spec]
        if unknown:
            raise CipsError(f"Unknown factors {unknown}; known: {list(spec)}.")
        spec = {f: spec[f] for f in wanted}
    all_cols = list(dict.fromkeys(c for g in spec.values() for cols in g.values() for c in cols))
    absent = [c for c in all_cols if c not in frame.columns]
    if absent:
        raise DataError(f"Item columns {absent} are not in the data.",
                        [Problem("item_column", "Item column not found.", "<DataFrame>", column=c) for c in absent])
    return spec


def _cell_index(frame: pd.DataFrame, by: list[str], factorized: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """Cells numbered in sorted key order: each row's cell code, each cell's size and key codes."""
    combined = np.zeros(len(frame), dtype=np.int64)
    key_uniques = []
    for col in by:
        cc, uu = factorized[col] if col in factorized else pd.factorize(frame[col], sort=True)
        cc = np.asarray(cc)
        if np.any(cc < 0):
            bad = np.flatnonzero(cc < 0)[:20]
            raise DataError(f"Some rows have a missing key value in column {col!r}.",
                            [Problem("key_missing", "Cell key is missing.", "<DataFrame>", int(r) + 1, col)
                             for r in bad])
        combined = combined * max(len(uu), 1) + cc
        key_uniques.append(uu)
    total = int(np.prod([max(len(u), 1) for u in key_uniques], dtype=np.float64))
    if total <= 4 * len(frame) + 1024:
        # compact the combined codes without sorting (they are bounded)
        counts_all = np.bincount(combined, minlength=total)
        present = counts_all > 0
        codes = (np.cumsum(present) - 1)[combined]
        cell_ids, cell_rows = np.flatnonzero(present), counts_all[present]
    else:
        cell_ids, codes, cell_rows = np.unique(combined, return_inverse=True, return_counts=True)
        codes = codes.reshape(-1)
    cell_key_code: dict[str, np.ndarray] = {}
    rem = cell_ids.copy()
    for col, uu in reversed(list(zip(by, key_uniques))):
        size = max(len(uu), 1)
        cell_key_code[col] = rem % size
        rem //= size
    row_order = np.argsort(codes.astype(np.int32) if cell_ids.size < 2**31 else codes, kind="stable")
    return {"codes": codes, "cell_rows": cell_rows, "n_cells": cell_ids.size, "key_uniques": key_uniques,
            "cell_key_code": cell_key_code, "row_order": row_order, "sorted_codes": codes[row_order]}


def _group_layout(rows_sorted: np.ndarray, sizes: np.ndarray, w_all: np.ndarray | None) -> dict[str, Any]:
    """Zero-padded pieces of one group's cells: source row of every slot, dropped slots, weights."""
    C, n_g = sizes.size, rows_sorted.size
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    piece = _piece_length(sizes)
    npieces = np.maximum(1, -(-sizes // piece))
    first_piece = np.r_[0, np.cumsum(npieces)[:-1]]
    V = int(npieces.sum())
    cell_of_row = np.repeat(np.arange(C), sizes)
    slot = first_piece[cell_of_row] * piece + (np.arange(n_g) - starts[cell_of_row])
    src = np.zeros(V * piece, dtype=np.intp)            # row 0 in the padding, which is then dropped
    src[slot] = rows_sorted
    keep = np.zeros(V * piece, dtype=bool)
    keep[slot] = True
    out = {"starts": starts, "src": src, "piece_cell": np.repeat(np.arange(C), npieces), "Wb": None, "wg": None}
    if w_all is not None:
        wg = w_all[rows_sorted]
        Wb = np.zeros(V * piece)
        Wb[slot] = wg
        keep[slot[wg <= 0]] = False
        out.update(Wb=Wb, wg=wg)
    out["drop"] = np.flatnonzero(~keep)
    return out


def _ordinal_block(fcols: list[list[np.ndarray]], rows_sorted: np.ndarray, lay: Mapping[str, Any], p: int,
                   missing: str, denominator: str, res: dict[str, np.ndarray]) -> None:
    """Ordinal alpha and omega of every cell of the scales of one block (added to ``res``, with their flags)."""
    C, F = lay["starts"].size, len(fcols)
    oa, oo = np.full((C, F), np.nan), np.full((C, F), np.nan)
    ofl = np.full((C, F), "", dtype=object)
    for fi in range(F):
        Xf = np.column_stack([x[rows_sorted] for x in fcols[fi]])
        if missing == "listwise":
            Xf[np.isnan(Xf).any(axis=1)] = np.nan
        if lay["wg"] is not None:
            Xf[lay["wg"] <= 0] = np.nan
        oa[:, fi], oo[:, fi], ofl[:, fi] = _ordinal_cells(Xf, lay["starts"], p, missing, denominator)
    ofl = ofl.reshape(-1)
    if lay["wg"] is not None:
        ofl = _join_text(ofl, np.full(ofl.size, "ordinal_unweighted", dtype=object))
    res["ordinal_alpha"], res["ordinal_omega"] = oa.reshape(-1), oo.reshape(-1)
    res["ordinal_flags"] = ofl


def _assemble(blocks: list[dict[str, Any]], stat_cols: list[str], on: str, by: list[str], cells: Mapping[str, Any],
              spec: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the blocks into the tidy table, in (cell, factor[, item position]) order."""
    names_cols = ["cell", "factor"] + stat_cols + (["pos"] if on == "items" else [])
    if blocks:
        cat = {c: np.concatenate([b[c] for b in blocks]) for c in names_cols}
    else:
        cat = {c: np.zeros(0, dtype=np.intp if c in ("cell", "factor", "pos") else float) for c in names_cols}
    # cells are numbered in sorted key order, so a lexicographic sort of (cell, factor order,
    # item position) gives the tidy order
    keys_sort = (cat["pos"], cat["factor"], cat["cell"]) if on == "items" else (cat["factor"], cat["cell"])
    order = np.lexsort(keys_sort)
    cell_o = cat["cell"].astype(np.intp)[order]
    columns: dict[str, Any] = {c: cells["key_uniques"][i].take(cells["cell_key_code"][c][cell_o])
                               for i, c in enumerate(by)}
    columns["factor"] = np.array(list(spec), dtype=object)[cat["factor"][order]]
    for c in stat_cols:
        columns[c] = cat[c][order]
    columns["n"] = np.nan_to_num(columns["n"].astype(float), nan=0.0).astype(int)
    if "n_items" in columns:
        columns["n_items"] = columns["n_items"].astype(int)
    out = pd.DataFrame(columns)
    for c in by:                       # keep the key columns' dtypes (e.g. integer iteration)
        if out[c].dtype != frame[c].dtype:
            try:
                out[c] = out[c].astype(frame[c].dtype)
            except (TypeError, ValueError):
                pass
    return out


def _summary_flags(bits: np.ndarray) -> tuple[Flag, ...]:
    """One result flag (and warning) per kind of cell flag found, with the number of cell x factor rows."""
    out = []
    for code, category, severity in _SUMMARISED:
        k = int(np.count_nonzero(bits & _BIT[code]))
        if k:
            out.append(emit(Flag(code, f"{k} of {bits.size} cell x factor combinations flagged {code!r} (see the "
                                 "flags column).", severity, {"rows": k}), category, stacklevel=5))
    return tuple(out)


def _group_blocks(g: Any, cell_sel: np.ndarray, rows_sorted: np.ndarray, cells: Mapping[str, Any],
                  spec: Mapping[str, Any], fac_order: Mapping[str, int], column: Any, w_all: np.ndarray | None,
                  frame: pd.DataFrame, opts: Mapping[str, Any], blocks: list, item_blocks: list) -> None:
    """Every statistic of every factor in the cells of one respondent group (blocks appended)."""
    C = cell_sel.size
    lay = _group_layout(rows_sorted, cells["cell_rows"][cell_sel], w_all)
    by_p: dict[int, list[tuple[str, list[str]]]] = {}
    for f, per in spec.items():
        if g in per:
            by_p.setdefault(len(per[g]), []).append((f, per[g]))
    # one centring constant for every item of the group (from a sample of rows): keeps the
    # sums of squares accurate for data far from zero
    samp = rows_sorted[:: max(1, rows_sorted.size // 256)]
    sample = np.stack([column(c)[samp] for fl in by_p.values() for _, cols in fl for c in cols])
    centre = float(sample[np.isfinite(sample)].mean()) if np.isfinite(sample).any() else 0.0
    for p, flist in by_p.items():
        F = len(flist)
        cell_idx = np.repeat(cell_sel, F)
        fnames = np.tile(np.array([fac_order[f] for f, _ in flist], dtype=np.intp), C)
        if p < 2:
            blk = {c: np.full(C * F, np.nan) for c in _SCALE_STATS}
            blk.update(cell=cell_idx, factor=fnames, n_items=np.full(C * F, p),
                       bits=np.full(C * F, _BIT["too_few_items"]),
                       flags=np.full(C * F, "too_few_items", dtype=object))
            blocks.append(blk)
            continue
        fcols = [[column(c) for c in cols] for _, cols in flist]
        mom = _padded_moments(fcols, lay["src"], lay["drop"], lay["Wb"], lay["piece_cell"], C,
                              cells["cell_rows"][cell_sel], centre, listwise=opts["missing"] == "listwise",
                              chunk_elements=opts["chunk_elements"])
        if mom["saw_inf"]:
            _raise_infinite(frame, [c for _, cols in flist for c in cols], column)
        res, itm = _scale_stats(mom, p, level=opts["level"], ci_method=opts["ci_method"], do_omega=opts["omega"],
                                denominator=opts["denominator"], min_n=opts["min_n"], weighted=w_all is not None)
        if opts["ordinal"]:
            _ordinal_block(fcols, rows_sorted, lay, p, opts["missing"], opts["denominator"], res)
        blk = {c: res.get(c, np.full(C * F, np.nan)) for c in _SCALE_STATS}
        fl = _flag_text(res["flags"])
        if opts["ordinal"]:
            fl = _join_text(fl, res["ordinal_flags"])
        blk.update(cell=cell_idx, factor=fnames, n_items=np.full(C * F, p), bits=res["flags"], flags=fl)
        blocks.append(blk)
        if opts["on"] == "items":
            names = np.array([cols for _, cols in flist], dtype=object)               # (F, p)
            ib = {c: np.asarray(itm[c]).reshape(-1) for c in _ITEM_COLUMNS[1:]}
            ib.update(cell=np.repeat(cell_idx, p), factor=np.repeat(fnames, p),
                      item=np.tile(names.reshape(-1), C), pos=np.tile(np.arange(p), C * F))
            item_blocks.append(ib)


def _result(blocks: list, item_blocks: list, cells: Mapping[str, Any], spec: Mapping[str, Any],
            frame: pd.DataFrame, survey: Any, by: list[str], wcol: str | None,
            opts: Mapping[str, Any]) -> ByCellResult:
    """The tidy table, provenance and summary flags of a by_cell call."""
    cols_scale = ["alpha", "std_alpha", "ci_low", "ci_high"]
    if opts["omega"]:
        # the Wald interval exists for the model-implied omega only (no NaN columns otherwise)
        cols_scale += ["omega", "omega_ci_low", "omega_ci_high"] if opts["denominator"] == "model" else ["omega"]
    if opts["ordinal"]:
        cols_scale += ["ordinal_alpha", "ordinal_omega"]
    cols_scale += ["n", "n_eff", "n_items", "mean_r", "se", "flags"]
    if opts["on"] == "items":
        table = _assemble(item_blocks, ["item"] + _ITEM_COLUMNS[1:], "items", by, cells, spec, frame)
    else:
        table = _assemble(blocks, cols_scale, "scale", by, cells, spec, frame)
    prov = Provenance.build(
        "reliability.by_cell", data=survey,
        options={"by": by, "ci": opts["level"], "ci_method": opts["ci_method"], "missing": opts["missing"],
                 "weight": wcol, "omega": opts["omega"], "denominator": opts["denominator"],
                 "ordinal": opts["ordinal"], "min_n": opts["min_n"], "on": opts["on"],
                 "thresholds": {"acceptable": _th.RELIABILITY_ACCEPTABLE, "poor": _th.RELIABILITY_POOR}})
    bits = np.concatenate([b["bits"] for b in blocks]) if blocks else np.zeros(0, dtype=np.int64)
    return ByCellResult(table=table, on=opts["on"], by=tuple(by), provenance=prov, flags=_summary_flags(bits))


def _column_reader(frame: pd.DataFrame, all_numeric: bool, cols: Sequence[str] = ()):
    """``column(name)``: an item column as float64 (NaN = missing), read once.

    With all items numeric, ``cols`` are read in one block (one pandas call instead of one a
    column; the block's columns are contiguous).
    """
    cache: dict[str, np.ndarray] = {}
    if all_numeric and len(cols) > 1:
        block = frame[list(cols)].to_numpy(dtype=float, na_value=np.nan)
        block = np.asfortranarray(block)
        cache = {c: block[:, j] for j, c in enumerate(cols)}

    def column(c: str) -> np.ndarray:
        if c not in cache:
            s = frame[c]
            if not all_numeric and not pd.api.types.is_numeric_dtype(s):
                s = pd.to_numeric(s, errors="coerce")
            cache[c] = s.to_numpy(dtype=float, na_value=np.nan)
        return cache[c]

    return column


def _all_numeric(frame: pd.DataFrame, cols: Sequence[str]) -> bool:
    dtypes = dict(zip(frame.columns, frame.dtypes))
    return all(dtypes[c].kind in "iuf" if isinstance(dtypes[c], np.dtype)
               else (pd.api.types.is_numeric_dtype(dtypes[c]) and not pd.api.types.is_bool_dtype(dtypes[c]))
               for c in cols)


def by_cell(data: Any, *, by: Sequence[str] = ("country", "iteration", "group"),
            items: Mapping[str, Sequence[str]] | None = None, factors: Iterable[str] | None = None,
            ci: float = 0.95, ci_method: str = "feldt", missing: str = "pairwise", weight: Any = None,
            omega: bool = True, denominator: str = "model", ordinal: bool = False,
            min_n: int = _th.MIN_N_RELIABILITY, on: str = "scale",
            chunk_elements: int = CHUNK_ELEMENTS) -> ByCellResult:
    """Alpha, its CI, omega and item diagnostics for every factor in every cell, in one vectorised pass.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        A :class:`~cips_stats.SurveyData` (items of a factor for a group come from
        ``data.instrument.factor_items(factor, group=g)``; all key factors and indices),
        or a respondent DataFrame together with ``items=``.
    by : sequence of str, default ("country", "iteration", "group")
        Key columns that define a cell.
    items : mapping of str to list of str, optional
        ``{"factor": [columns]}`` for a plain DataFrame (with SurveyData: overrides the instrument).
    factors : iterable of str, optional
        Restrict to these factors.
    ci : float, default 0.95
        Confidence level.
    ci_method : {"feldt", "duhachek"}, default "feldt"
        Interval for alpha (closed form; the bootstrap is offered for single scales).
    missing : {"pairwise", "listwise"}, default "pairwise"
        Pairwise or listwise deletion within each cell.
    weight : str, Design, False or None
        Sampling weights: a column name or a design.  ``None`` (default): the design
        weight of a SurveyData (its ``weight`` column), no weights for a DataFrame;
        ``False``: unweighted.
    omega : bool, default True
        Also fit the one-factor model in every cell (``omega``, with a Wald interval
        ``omega_ci_low``/``omega_ci_high`` when ``denominator="model"``).
    denominator : {"model", "observed"}, default "model"
        Omega variant (see :func:`omega`).
    ordinal : bool, default False
        Also ``ordinal_alpha`` and ``ordinal_omega`` per cell from polychoric correlations
        (:func:`cips_stats.factor.polychoric.polychoric`, one call per cell, so much slower;
        unweighted even when weighted, flagged ``ordinal_unweighted``).
    min_n : int, default 30
        Cells with fewer respondents are flagged ``small_n`` (``thresholds.MIN_N_RELIABILITY``).
    on : {"scale", "items"}, default "scale"
        ``"scale"``: one row per cell and factor; ``"items"``: one row per cell, factor and
        item (``n``, ``mean``, ``sd``, ``missing_share``, ``raw_r``, ``r_drop``,
        ``alpha_if_dropped``).
    chunk_elements : int
        Memory bound: the zero-padded blocks of rows processed at once hold at most this many
        float64 elements (default 2**19, 4 MiB).

    Returns
    -------
    ByCellResult
        ``.table`` (also ``.to_frame()``): key columns (``by`` then ``factor``), then
        ``alpha``, ``std_alpha``, ``ci_low``, ``ci_high``, ``omega``, ``omega_ci_low``,
        ``omega_ci_high`` (with ``denominator="model"``), ``n``, ``n_eff``, ``n_items``,
        ``mean_r``, ``se`` (Duhachek), ``flags`` (``;``-separated codes that explain every
        NaN and warn about low reliability or small cells).  ``.flags`` summarises the
        cell flags, each also emitted as its :class:`~cips_stats.CipsWarning`.

    Raises
    ------
    DataError
        Missing key, item or weight columns, missing key values, non-numeric or infinite
        answers, bad weights (rows are 1-based).
    CipsError
        Bad arguments.

    Notes
    -----
    Flags: ``alpha_questionable``/``omega_questionable`` (.60 <= value < .70),
    ``alpha_poor``/``omega_poor`` (< .60), ``small_n`` (n < ``min_n``),
    ``n_below_items`` (n <= items: singular covariance, omega not fitted),
    ``too_few_respondents`` (n < 2), ``no_respondents``, ``item_unanswered``,
    ``constant_item``, ``non_psd``, ``heywood``, ``omega_not_converged``,
    ``omega_unidentified`` (fewer than 3 items), ``two_items``.  Cut-offs from
    :mod:`cips_stats.thresholds`.  Each cell's statistics equal
    :func:`cronbach_alpha`/:func:`omega` on that cell's rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=(600, 1))
    >>> df = pd.DataFrame(np.round(3 + f + rng.normal(size=(600, 4))), columns=list("abcd"))
    >>> df["country"] = np.repeat(["X", "Y", "Z"], 200)
    >>> out = cs.reliability.by_cell(df, by=("country",), items={"f": list("abcd")})
    >>> out.to_frame()[["country", "factor", "n", "n_items"]].to_string(index=False)
    'country factor   n  n_items\\n      X      f 200        4\\n      Y      f 200        4\\n      Z      f 200        4'
    """
    lev = check_level(ci, "ci")
    check_choice(ci_method, ("feldt", "duhachek"), "ci_method")
    check_choice(missing, MISSING, "missing")
    check_choice(denominator, DENOMINATORS, "denominator")
    check_choice(on, ("scale", "items"), "on")
    min_n = check_count(min_n, "min_n", 0)
    chunk_elements = check_count(chunk_elements, "chunk_elements", 1)
    by = list(by)
    frame, instrument, wcol = _frame_and_weight(data, weight)
    if not by:
        raise CipsError("The by= argument needs at least one key column.")
    missing_cols = [c for c in by if c not in frame.columns]
    if missing_cols:
        raise DataError(f"The by= columns {missing_cols} are not in the data.",
                        [Problem("by_column", "Key column not found.", "<DataFrame>", column=c) for c in missing_cols])
    factorized: dict[str, tuple[Any, Any]] = {}
    spec = _item_spec(frame, instrument, items, factors, by, factorized)
    all_cols = list(dict.fromkeys(c for g in spec.values() for cols in g.values() for c in cols))
    w_all = None
    if wcol is not None:
        w_all, _ = _weight_vector(frame[wcol].to_numpy(dtype=float), frame, len(frame))
    cells = _cell_index(frame, by, factorized)
    numeric = _all_numeric(frame, all_cols)
    if not numeric:
        _check_numeric_columns(frame, all_cols)
    column = _column_reader(frame, numeric, all_cols)
    blocks: list[dict[str, Any]] = []
    item_blocks: list[dict[str, Any]] = []
    fac_order = {f: i for i, f in enumerate(spec)}
    opts = {"level": lev, "ci_method": ci_method, "missing": missing, "omega": omega, "denominator": denominator,
            "ordinal": ordinal, "min_n": min_n, "on": on, "chunk_elements": chunk_elements}
    with one_thread():             # many small products: one BLAS thread (see cips_stats._blas)
        for g in dict.fromkeys(g for per in spec.values() for g in per):
            if g is None:
                cell_sel, rows_sorted = np.arange(cells["n_cells"]), cells["row_order"]
            else:
                g_uniq = list(cells["key_uniques"][by.index("group")])
                in_g = cells["cell_key_code"]["group"] == (g_uniq.index(g) if g in g_uniq else -1)
                cell_sel = np.flatnonzero(in_g)
                rows_sorted = cells["row_order"][in_g[cells["sorted_codes"]]]
            if cell_sel.size:
                _group_blocks(g, cell_sel, rows_sorted, cells, spec, fac_order, column, w_all, frame, opts,
                              blocks, item_blocks)
    return _result(blocks, item_blocks, cells, spec, frame, data if instrument is not None else None, by, wcol,
                   opts)
