"""Survey weights: design weights, post-stratification, raking, GREG calibration, trimming, Kish n_eff.

Every weighting function takes a :class:`~cips_stats.SurveyData` or a plain
DataFrame and returns one result type, :class:`Weighted`: ``.data`` is a new
object of the input's type with the new weights in the weight column (the input
is never changed), ``.design`` the survey :class:`~cips_stats.estimate.Design` that
goes with them — its calibration included, so that
:func:`cips_stats.estimate.survey_mean` gives standard errors that account for the
calibration, as R ``survey`` does — and ``.table`` the per-cell report
(iterations, margin errors, Kish design effects).  A SurveyData comes back
carrying that design (``.data.design``); with a DataFrame pass
``weight=result.design`` to the estimators.  The design names columns, so it
keeps working after ``merge``/``concat`` of the frame (``DataFrame.attrs`` is not
used).  Calibrating functions keep the weights they started from in
``<weight>_base``.

Cells (``by=("country", "iteration", "group")``) are calibrated each to its own
margins in one vectorised pass.  The composition-drift check compares
demographic margins between iterations and :func:`reweight_common` reweights
every iteration to a common structure.

Examples
--------
>>> import pandas as pd
>>> import cips_stats as cs
>>> df = pd.DataFrame({"sex": ["f", "f", "m", "m", "m"], "lead": ["y", "n", "y", "n", "n"],
...                    "weight": [1.0, 1.0, 1.0, 1.0, 1.0]})
>>> res = cs.weighting.rake(df, margins={"sex": {"f": 50, "m": 50}, "lead": {"y": 30, "n": 70}})
>>> res.frame.groupby("sex")["weight"].sum().round(6).tolist()
[50.0, 50.0]
>>> res.design.calibration.method
'rake'
>>> df["weight"].tolist()          # the input is unchanged
[1.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from .errors import CipsError, ConvergenceError, DataError, Flag, NumericalWarning, Problem, emit
from .estimate.design import Calibration, Design, design_of
from .estimate.design import model_matrix as _model_matrix
from .results import Provenance, Result

__all__ = [
    "design_weights", "rake", "poststratify", "calibrate", "trim", "kish", "effective_n",
    "composition_drift", "reweight_common", "Weighted", "Kish", "EffectiveN", "DriftResult",
    "WeightingReport", "VALUE_COLUMNS",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _unwrap(data: Any) -> tuple[pd.DataFrame, Any]:
    if hasattr(data, "frame") and hasattr(data, "with_frame"):
        return data.frame, data
    if isinstance(data, pd.DataFrame):
        return data, None
    raise DataError(f"data must be a SurveyData or a DataFrame; got {type(data).__name__}.",
                    [Problem("data_type", "Not a SurveyData or DataFrame.", value=type(data).__name__)])


def _weight_design(data: Any, original: Any, weight: Any) -> tuple[str, Design]:
    """The weight column and the design the new weights belong to.

    ``weight=None``: the data's design (a SurveyData's, else the ``weight``
    column); a column name: that column (a SurveyData keeps its strata and
    clusters); a :class:`Design`: its weight column and its other fields.
    """
    if isinstance(weight, Design):
        base = weight
    elif original is not None:
        base = design_of(original)
        if weight is not None:
            base = base.update(weight=weight, calibration=None)
    else:
        base = Design(weight="weight" if weight is None else weight)
    if weight is not None and not isinstance(weight, (str, Design)):
        raise CipsError(f"weight= must be a column name or a Design; got {type(weight).__name__}.")
    if base.weight is None:
        raise CipsError("weight= names no weight column to adjust; give a column name or a Design with weight=.")
    return base.weight, base


def _wrap(frame: pd.DataFrame, original: Any, design: Design | None = None) -> Any:
    if original is None:
        return frame
    out = original.with_frame(frame)
    return out.with_design(design) if design is not None and hasattr(out, "with_design") else out


def _tuple(by: Any) -> tuple:
    if by is None:
        return ()
    if isinstance(by, str):
        return (by,)
    return tuple(by)


def _check_columns(frame: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{what} names columns that are not in the data: {missing}.",
                        [Problem("column_missing", f"Column {c!r} not found.", column=c) for c in missing])


def _weights(frame: pd.DataFrame, weight: str, allow_zero: bool = True) -> np.ndarray:
    _check_columns(frame, [weight], "weight=")
    s = frame[weight]
    w = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0) | ((w == 0) & (not allow_zero)))
    if bad.size:
        raise DataError(f"Column {weight!r} has {bad.size} negative, zero or missing weights.",
                        [Problem("weight_positive", "Weight must be finite and positive.", row=int(r) + 1,
                                 column=weight, value=s.iloc[r]) for r in bad[:50]])
    return w


def _cells(frame: pd.DataFrame, by: tuple) -> tuple[np.ndarray, pd.DataFrame]:
    """Cell code per row and the table of cell keys (one row per cell)."""
    if not by:
        return np.zeros(len(frame), dtype=np.intp), pd.DataFrame(index=[0])
    _check_columns(frame, by, "by=")
    probs = [Problem("by_missing", "Missing cell key.", row=int(r) + 1, column=c)
             for c in by for r in np.flatnonzero(frame[c].isna().to_numpy())[:20]]
    if probs:
        raise DataError("by= columns have missing values.", probs)
    mi = pd.MultiIndex.from_frame(frame[list(by)])
    codes, uniq = mi.factorize()
    keys = uniq.to_frame(index=False)
    keys.columns = list(by)
    return codes.astype(np.intp), keys


class _Cells(NamedTuple):
    """What every per-cell weighting step starts from."""

    frame: pd.DataFrame
    original: Any
    weight: str
    design: Design
    by: tuple
    w0: np.ndarray
    cell: np.ndarray
    keys: pd.DataFrame
    C: int


def _prepare(data: Any, weight: Any, by: Any) -> _Cells:
    """The frame, weight column and design, the current weights, and the cell of every row."""
    frame, original = _unwrap(data)
    weight, design = _weight_design(data, original, weight)
    by = _tuple(by)
    w0 = _weights(frame, weight)
    cell, keys = _cells(frame, by)
    return _Cells(frame, original, weight, design, by, w0, cell, keys, len(keys))


def _cell_where(keys: pd.DataFrame, c: int) -> dict:
    if keys.shape[1] == 0:
        return {}
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in keys.iloc[int(c)].items()}


@dataclass
class _Margin:
    variable: str
    idx: np.ndarray          # target index of each row in scope (len = number of rows in scope)
    target: np.ndarray       # target totals (K,)
    cell: np.ndarray         # cell code of each target (K,)
    category: np.ndarray     # category label of each target (K,)
    rows: Any                # rows in scope: slice(None) (every row) or an index array
    cells: np.ndarray | None  # cells whose margins list the variable (sorted; None = every cell)

    @property
    def full(self) -> bool:
        return isinstance(self.rows, slice)


#: Value columns of a margins table, in the order tried when ``value=`` is not given.
VALUE_COLUMNS = ("total", "share", "target", "value", "Freq", "population")
_VALUE_KIND = {"total": "total", "share": "share", "Freq": "total", "population": "total"}


def _tidy_margins(margins: Any, by: tuple, value: str | None = None) -> pd.DataFrame:
    """Margins as a tidy table: [*by, variable, category, value, kind] with kind 'share'|'total'|'auto'."""
    if isinstance(margins, pd.DataFrame):
        m = margins.copy()
        if value is not None:
            if value not in m.columns:
                raise DataError(f"value={value!r} is not a column of the margins table "
                                f"({list(map(str, m.columns))}).",
                                [Problem("margins_value_column", "Value column not found.", column=str(value),
                                         value=list(map(str, m.columns)))])
            vcol = value
        else:
            vcol = next((c for c in VALUE_COLUMNS if c in m.columns), None)
        if vcol is None or not {"variable", "category"} <= set(m.columns):
            raise DataError("A margins table needs columns 'variable', 'category' and one of "
                            + ", ".join(repr(c) for c in VALUE_COLUMNS) + " (plus the by= columns).",
                            [Problem("margins_columns", "Bad margins table.", value=list(m.columns))])
        present = [b for b in by if b in m.columns]
        if present and len(present) < len(by):
            _check_columns(m, list(by), "margins table (by= columns)")
        kind = _VALUE_KIND.get(vcol, "auto")
        out = m[present + ["variable", "category"]].copy()
        out["value"] = pd.to_numeric(m[vcol], errors="coerce").to_numpy(dtype=np.float64)
        out["kind"] = kind
        return out
    if not isinstance(margins, Mapping) or not margins:
        raise DataError("margins= must be a non-empty dict {variable: {category: total or share}} or a tidy "
                        "DataFrame.", [Problem("margins_type", "Bad margins.")])
    if value is not None:
        raise DataError("value= chooses a column of a margins table; margins= is a dict.",
                        [Problem("margins_value_column", "value= needs a margins table.", value=value)])
    rows = []
    for var, spec in margins.items():
        if isinstance(spec, pd.DataFrame):
            raise DataError("Per-variable margins must be a dict or Series {category: value}; use a tidy "
                            "DataFrame for per-cell margins.", [Problem("margins_type", "Bad margin.", column=var)])
        items = spec.items() if isinstance(spec, (Mapping, pd.Series)) else None
        if items is None:
            raise DataError(f"Margin of {var!r} must be a dict or Series {{category: value}}.",
                            [Problem("margins_type", "Bad margin.", column=var)])
        for cat, val in items:
            rows.append({"variable": var, "category": cat, "value": float(val), "kind": "auto"})
    return pd.DataFrame(rows)


def _resolve_margins(frame: pd.DataFrame, margins: Any, by: tuple, w0: np.ndarray,
                     cell: np.ndarray, keys: pd.DataFrame, value: str | None = None) -> list[_Margin]:
    tidy = _tidy_margins(margins, by, value)
    C = len(keys)
    bad_val = tidy[~np.isfinite(tidy["value"]) | (tidy["value"] < 0)]
    if len(bad_val):
        raise DataError("Margins must be finite and >= 0.",
                        [Problem("margin_value", "Bad margin value.", column=str(r["variable"]),
                                 value=_py(r["category"])) for _, r in bad_val.iterrows()])
    # cell code of each margin row
    if by and all(b in tidy.columns for b in by):
        kidx = pd.MultiIndex.from_frame(keys[list(by)])
        tidx = pd.MultiIndex.from_frame(tidy[list(by)])
        tcell = kidx.get_indexer(tidx)
        tidy = tidy.loc[tcell >= 0].copy()
        tidy["_cell"] = tcell[tcell >= 0]
        missing_cells = np.setdiff1d(np.arange(C), tidy["_cell"].unique())
        if missing_cells.size:
            raise DataError(f"The margins table has no rows for {missing_cells.size} cell(s) of the data.",
                            [Problem("margin_cell_missing", f"No margins for cell {_cell_where(keys, c)}.")
                             for c in missing_cells[:50]])
    else:
        tidy = pd.concat([tidy.assign(_cell=c) for c in range(C)], ignore_index=True)
    variables = list(dict.fromkeys(tidy["variable"]))
    _check_columns(frame, variables, "margins=")
    cell_w = np.bincount(cell, weights=w0, minlength=C)
    zero_cells = np.flatnonzero(cell_w <= 0)
    if zero_cells.size:
        raise DataError(f"{zero_cells.size} cell(s) have a zero weight total and cannot be calibrated.",
                        [Problem("zero_weight_cell", f"Cell {_cell_where(keys, c)} has zero total weight.")
                         for c in zero_cells[:50]])
    # shares or totals, and one common total per cell
    sums = tidy.groupby(["_cell", "variable"], sort=False)["value"].sum()
    kinds = tidy.groupby(["_cell", "variable"], sort=False)["kind"].first()
    is_share = pd.Series(np.where(kinds == "share", True, np.where(kinds == "total", False,
                                                                    np.abs(sums.to_numpy() - 1.0) < 1e-6)),
                         index=sums.index)
    totals = sums[~is_share]
    common = np.full(C, np.nan)
    problems = []
    for c, grp in totals.groupby(level=0):
        vals = grp.to_numpy()
        if np.ptp(vals) > 1e-6 * max(1.0, np.max(np.abs(vals))):
            problems.append(Problem("margins_total_mismatch",
                                    "Margins sum to different totals: " + ", ".join(
                                        f"{v}={t:g}" for (_, v), t in grp.items()) + f" in cell "
                                    f"{_cell_where(keys, c)}.", value={v: float(t) for (_, v), t in grp.items()}))
        common[int(c)] = vals.mean()
    if problems:
        raise DataError("Margins do not sum to the same total.", problems)
    common = np.where(np.isnan(common), cell_w, common)
    share_of_row = pd.MultiIndex.from_frame(tidy[["_cell", "variable"]]).map(is_share).to_numpy(dtype=bool)
    scale = np.where(share_of_row, common[tidy["_cell"].to_numpy(dtype=np.intp)], 1.0)
    tidy["target"] = tidy["value"].to_numpy() * scale
    out = []
    for var in variables:
        t = tidy[tidy["variable"] == var]
        tc = t["_cell"].to_numpy(dtype=np.intp)
        vcells = np.unique(tc)
        if vcells.size == C:                    # the variable is calibrated in every cell
            rows: Any = slice(None)
            vcells_out = None
        else:                                   # only in the cells whose margins list it
            rows = np.flatnonzero(np.isin(cell, vcells))
            vcells_out = vcells
        rpos = np.arange(len(frame)) if vcells_out is None else rows     # positions of the rows in scope
        col = frame[var].iloc[rpos]
        rcell = cell[rpos]
        nan_rows = rpos[np.flatnonzero(col.isna().to_numpy())]
        if nan_rows.size:
            raise DataError(f"Calibration variable {var!r} has {nan_rows.size} missing values in cells whose "
                            "margins list it; give them a category (e.g. 'unknown') with its own margin.",
                            [Problem("margin_variable_missing", "Missing value"
                                     + (f" in cell {_cell_where(keys, cell[r])}" if by else "") + ".",
                                     row=int(r) + 1, column=var) for r in nan_rows[:50]])
        # integer keys cell * K + category code (categories coded jointly for sample and margins)
        tcat = t["category"].astype(object).to_numpy()
        rcat = col.astype(object).to_numpy()
        codes, uniq = pd.factorize(np.concatenate([tcat, rcat]))
        K = max(len(uniq), 1)
        tkey = pd.Index(tc.astype(np.int64) * K + codes[:len(tcat)])
        if tkey.has_duplicates:
            raise DataError(f"Margins of {var!r} list a category twice.",
                            [Problem("margin_duplicate", "Duplicate category.", column=var)])
        idx = tkey.get_indexer(rcell.astype(np.int64) * K + codes[len(tcat):])
        miss = np.flatnonzero(idx < 0)
        if miss.size:
            vals = rcat[miss]
            combos = pd.DataFrame({"c": rcell[miss], "v": vals}).drop_duplicates()
            raise DataError(f"{len(combos)} sample categor(y/ies) of {var!r} have no margin.",
                            [Problem("category_not_in_margins",
                                     f"Category {_py(r.v)!r} of {var!r} is in the sample but not in the margins"
                                     f"{' of cell ' + str(_cell_where(keys, r.c)) if by else ''}.",
                                     row=int(rpos[miss[np.flatnonzero((rcell[miss] == r.c) & (vals == r.v))[0]]]) + 1,
                                     column=var, value=_py(r.v)) for r in combos.itertuples()][:50])
        target = t["target"].to_numpy(dtype=np.float64)
        s = np.bincount(idx, weights=w0[rows], minlength=len(t))
        absent = np.flatnonzero((s <= 0) & (target > 0))
        if absent.size:
            raise DataError(f"{absent.size} margin categor(y/ies) of {var!r} are absent from the sample (no "
                            "respondent with positive weight), so they cannot be matched; merge categories or "
                            "drop them from the margins.",
                            [Problem("category_absent_from_sample",
                                     f"Category {_py(t['category'].iloc[k])!r} of {var!r} has target "
                                     f"{target[k]:g} but no sample weight"
                                     f"{' in cell ' + str(_cell_where(keys, t['_cell'].iloc[k])) if by else ''}.",
                                     column=var, value=_py(t["category"].iloc[k])) for k in absent[:50]])
        zero_t = np.flatnonzero((target <= 0) & (s > 0))
        if zero_t.size:
            raise DataError(f"{zero_t.size} categor(y/ies) of {var!r} have a zero margin but respondents in the "
                            "sample.", [Problem("zero_margin_with_sample",
                                                f"Category {_py(t['category'].iloc[k])!r} has margin 0.",
                                                column=var, value=_py(t["category"].iloc[k])) for k in zero_t[:50]])
        out.append(_Margin(var, idx.astype(np.intp), target, tc, t["category"].to_numpy(dtype=object),
                           rows=rows, cells=vcells_out))
    return out


def _scope(ms: Sequence[_Margin], keys: pd.DataFrame) -> tuple:
    """Calibration.scope: (variable, cell keys) for the variables calibrated in some cells only."""
    out = []
    for m in ms:
        if m.cells is not None:
            out.append((m.variable, tuple(tuple(_py(v) for v in keys.iloc[int(c)]) for c in m.cells)))
    return tuple(out)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass(frozen=True)
class Weighted(Result):
    """New weights with their survey design and the per-cell report: what every weighting function returns.

    Attributes
    ----------
    data : SurveyData or pandas.DataFrame
        A new object of the input's type whose weight column holds the new
        weights (a SurveyData also carries ``design``).
    design : cips_stats.estimate.Design
        The design of the new weights (with the calibration, if any): pass it
        as ``weight=`` to the estimators of a DataFrame.
    method : str
        ``"rake"``, ``"poststratify"``, ``"linear"``, ``"raking"``,
        ``"logit"``, ``"trim"`` or ``"design_weights"``.
    table : pandas.DataFrame
        Per cell: the ``by`` keys, ``n``, ``iterations``, ``max_abs_error``
        (largest |weighted margin - target|), ``max_rel_error``,
        ``converged``, ``kish_deff_before``, ``kish_deff_after`` and
        ``n_negative`` (``n_trimmed`` for trimming).
    """

    data: Any = None
    design: Design | None = None
    method: str = ""
    table: pd.DataFrame | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """The respondent table with the new weights."""
        return self.data if isinstance(self.data, pd.DataFrame) else self.data.frame

    @property
    def weights(self) -> np.ndarray:
        """The new weights, one per row."""
        return self.frame[self.design.weight].to_numpy(dtype=np.float64)

    def to_frame(self) -> pd.DataFrame:
        """The per-cell report."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: method, design, per-cell table, flags and provenance (the data is left out)."""
        from .results import to_jsonable

        return {"kind": type(self).__name__, "method": self.method, "design": to_jsonable(self.design),
                "table": to_jsonable(self.table), "rows": int(len(self.frame)),
                "flags": to_jsonable(self.flags), "provenance": to_jsonable(self.provenance)}


#: The former name of the weighting report (now :class:`Weighted`, which also holds the data and design).
WeightingReport = Weighted


def _finish(frame: pd.DataFrame, original: Any, base: Design, w_new: np.ndarray, w0: np.ndarray,
            base_column: str | None, cal: Calibration | None, method: str, table: pd.DataFrame,
            flags: tuple, options: dict) -> Weighted:
    weight = base.weight
    out = frame.copy()
    if base_column is not None:
        out[base_column] = w0
    out[weight] = w_new
    design = base.update(calibration=cal if (cal is not None and base_column) else None)
    data = _wrap(out, original, design)
    return Weighted(data=data, design=design, method=method, table=table, flags=flags,
                    provenance=Provenance.build(f"weighting.{method}", data=data, options=options))


def _kish_by(w: np.ndarray, cell: np.ndarray, C: int) -> np.ndarray:
    s1 = np.bincount(cell, weights=w, minlength=C)
    s2 = np.bincount(cell, weights=w * w, minlength=C)
    n = np.bincount(cell, minlength=C)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n * s2 / (s1 * s1)


# ---------------------------------------------------------------------------------------------
# raking and post-stratification
# ---------------------------------------------------------------------------------------------
def rake(data: Any, *, margins: Any, weight: Any = None, by: Any = None, max_iter: int = 100,
         tol: float = 1e-10, base_column: str | None = "auto", value: str | None = None) -> Weighted:
    """Rake weights to population margins by iterative proportional fitting (IPF).

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents; not changed.
    margins : dict or pandas.DataFrame
        ``{variable: {category: total or share}}`` (the same margins for every
        cell), or a tidy table with columns ``[*by, "variable", "category",
        "total"|"share"|"population"|...]`` giving each cell its own margins.
        A margin whose values sum to 1 is read as shares and scaled to the
        common total (the totals of the other margins, or the cell's current
        weight total).  With a table, a variable applies only in the cells
        whose margins list it: other cells' rows are not adjusted by it and
        their values of it (missing ones too) are ignored, so groups with
        different questionnaires are raked together.
    weight : None, str or Design
        Weight column (or a :class:`~cips_stats.estimate.Design` naming it):
        the starting weights in, the raked weights out.  ``None``: the data's
        design's weight (``"weight"`` for a DataFrame).
    by : tuple of str, optional
        Cells raked each to its own margins, all at once (vectorised).
    max_iter, tol : int, float
        IPF sweeps at most, and convergence when every margin is within
        ``tol`` relative error of its target.
    base_column : str or None
        Column to keep the starting weights in (``"auto"``: ``<weight>_base``);
        needed for calibration-aware SEs.
    value : str, optional
        The value column of a margins table.  Default: the first present of
        :data:`VALUE_COLUMNS` (``"total"``, ``"share"``, ``"target"``,
        ``"value"``, ``"Freq"``, ``"population"``), so ``"share"`` wins over
        ``"population"``.  ``"total"``, ``"Freq"`` and ``"population"`` are
        totals (weights sum to them), ``"share"`` shares (each cell keeps its
        weight total).

    Returns
    -------
    Weighted
        ``.data``: a new object of the input's type whose weight column holds
        the raked weights; ``.design``: their design with the raking
        calibration; ``.table``: iterations, margin errors, Kish deff per cell.

    Raises
    ------
    DataError
        A margin category absent from the sample, a sample category absent
        from the margins, margins with different totals, missing values of a
        variable in a cell whose margins list it (row and column named).
    ConvergenceError
        A cell did not converge within ``max_iter`` sweeps (named, with its worst category).

    Notes
    -----
    Each sweep multiplies the weights in category ``k`` of each margin in turn
    by ``T_k / sum_{i in k} w_i`` (Deming & Stephan 1940).  The fixed point is
    the raking-ratio calibration estimator; it matches R
    ``survey::rake(design, list(~a, ~b), list(pop_a, pop_b))`` weights to
    1e-10 (``tests/reference/survey_calibration.json``).  SEs of estimates on
    the raked weights are computed as R does for ``rake`` designs (ten
    backfitting sweeps of residuals over the margins; a variable that
    applies in some cells only is swept over those cells' rows only).
    Raking cells with different variables together equals raking them
    separately (tested to 1e-10 on ``cs.simulate(seed=1)``).

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"g": ["a", "a", "b", "b"], "c": [1, 1, 1, 2], "weight": [1.0, 2.0, 1.0, 1.0],
    ...                    "sex": ["f", "m", "f", "m"]})
    >>> res = cs.weighting.rake(df, margins={"sex": {"f": 0.5, "m": 0.5}}, by="g")
    >>> res.weights.round(3).tolist()
    [1.5, 1.5, 1.0, 1.0]
    >>> bool(res.table["converged"].all())
    True

    Each cell with its own variable: ``lead`` (missing in cell ``b``) only in
    ``a``, ``sex`` only in ``b``.

    >>> df["lead"] = ["y", "n", None, None]
    >>> m = pd.DataFrame({"g": ["a", "a", "b", "b"], "variable": ["lead", "lead", "sex", "sex"],
    ...                   "category": ["y", "n", "f", "m"], "share": [0.4, 0.6, 0.3, 0.7]})
    >>> cs.weighting.rake(df, margins=m, by="g").weights.round(3).tolist()
    [1.2, 1.8, 0.6, 1.4]
    """
    frame, original, weight, design, by, w0, cell, keys, C = _prepare(data, weight, by)
    ms = _resolve_margins(frame, margins, by, w0, cell, keys, value)
    w, iters, abs_err, rel_err, worst = _ipf(w0, ms, cell, C, max_iter, tol)
    converged = rel_err <= tol
    table, flags = _report(keys, cell, C, w0, w, iters, abs_err, rel_err, converged)
    if not converged.all():
        bad = np.flatnonzero(~converged)
        raise ConvergenceError(
            f"Raking did not converge in {max_iter} sweeps in {bad.size} cell(s); worst: " + "; ".join(
                f"{_cell_where(keys, c) or 'all'}: {worst[c]} (relative error {rel_err[c]:.3g})" for c in bad[:10])
            + ". Margins may be inconsistent with the sample (empty cross-cells); collapse categories.",
            {"report": table, "max_iter": max_iter, "tol": tol})
    base = f"{weight}_base" if base_column == "auto" else base_column
    cal = Calibration("rake", tuple(m.variable for m in ms), weight, base or "", by=by, scope=_scope(ms, keys))
    return _finish(frame, original, design, w, w0, base, cal, "rake", table, flags,
                   {"by": list(by), "variables": list(cal.variables), "max_iter": max_iter, "tol": tol})


def _ipf(w0, ms, cell, C, max_iter, tol):
    """Vectorised IPF over all cells at once; per-cell iterations and errors."""
    w = w0.copy()
    iters = np.full(C, max_iter, dtype=np.int64)
    done = np.zeros(C, dtype=bool)

    def errors(w):
        abs_err = np.zeros(C)
        rel_err = np.zeros(C)
        for m in ms:
            s = np.bincount(m.idx, weights=w[m.rows], minlength=m.target.size)
            a = np.abs(s - m.target)
            r = np.where(m.target > 0, a / np.where(m.target > 0, m.target, 1.0), 0.0)
            np.maximum.at(rel_err, m.cell, r)
            np.maximum.at(abs_err, m.cell, a)
        return abs_err, rel_err

    for it in range(1, max_iter + 1):
        for m in ms:
            s = np.bincount(m.idx, weights=w[m.rows], minlength=m.target.size)
            fac = np.where(s > 0, m.target / np.where(s > 0, s, 1.0), 1.0)
            if m.full:
                w = w * fac[m.idx]
            else:                                  # rows of cells without this margin keep factor 1
                w[m.rows] *= fac[m.idx]
        abs_err, rel_err = errors(w)
        newly = (~done) & (rel_err <= tol)
        iters[newly] = it
        done |= newly
        if done.all():
            break
    worst = [""] * C
    for c in np.flatnonzero(~done)[:10]:           # name the worst margin of non-converged cells
        best = (-1.0, "")
        for m in ms:
            sel = np.flatnonzero(m.cell == c)
            if sel.size == 0:
                continue
            s = np.bincount(m.idx, weights=w[m.rows], minlength=m.target.size)[sel]
            r = np.abs(s - m.target[sel]) / np.where(m.target[sel] > 0, m.target[sel], 1.0)
            k = int(np.argmax(r))
            if r[k] > best[0]:
                best = (float(r[k]), f"{m.variable}={_py(m.category[sel[k]])!r}")
        worst[c] = best[1]
    return w, iters, abs_err, rel_err, worst


def _report(keys, cell, C, w0, w, iters, abs_err, rel_err, converged) -> tuple[pd.DataFrame, tuple]:
    t = keys.copy().reset_index(drop=True) if keys.shape[1] else pd.DataFrame(index=range(C))
    t["n"] = np.bincount(cell, minlength=C)
    t["iterations"] = iters
    t["max_abs_error"] = abs_err
    t["max_rel_error"] = rel_err
    t["converged"] = converged
    t["kish_deff_before"] = _kish_by(w0, cell, C)
    t["kish_deff_after"] = _kish_by(w, cell, C)
    t["n_negative"] = np.bincount(cell, weights=(w < 0).astype(float), minlength=C).astype(int)
    flags = tuple(Flag("not_converged", f"Cell {_cell_where(keys, c)} did not converge.", "error",
                       _cell_where(keys, c)) for c in np.flatnonzero(~converged))
    if (w < 0).any():
        flags += (emit(Flag("negative_weights", f"{int((w < 0).sum())} calibrated weights are negative (linear "
                            "calibration); consider method='raking' or 'logit', or bounds=.", "warning"),
                       NumericalWarning, stacklevel=4),)
    return t, flags


def poststratify(data: Any, *, variables: Any, population: Any, weight: Any = None, by: Any = None,
                 base_column: str | None = "auto") -> Weighted:
    """Post-stratify weights to population counts of the joint cells of ``variables``.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents; not changed.
    variables : str or tuple of str
        Post-stratification variables (their joint categories are the post-strata).
    population : dict, Series or DataFrame
        For one variable ``{category: total or share}``; for several, a
        DataFrame with the variables' columns plus ``"total"`` or ``"share"``
        (and the ``by`` columns for per-cell populations).
    weight, by, base_column
        As in :func:`rake`.

    Returns
    -------
    Weighted

    Notes
    -----
    ``w_i <- w_i N_k / sum_{j in k} w_j`` for the post-stratum ``k`` of ``i``.
    Weights and SEs (residuals from the post-stratum means) match R
    ``survey::postStratify`` (``tests/reference/survey_calibration.json``).

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"lead": ["y", "n", "n", "n"], "weight": 1.0})
    >>> cs.weighting.poststratify(df, variables="lead", population={"y": 20, "n": 60}).weights.tolist()
    [20.0, 20.0, 20.0, 20.0]
    """
    frame, original = _unwrap(data)
    weight, design = _weight_design(data, original, weight)
    variables = _tuple(variables)
    by = _tuple(by)
    _check_columns(frame, list(variables), "variables=")
    key = "__poststratum__"
    work = frame.copy()
    if len(variables) == 1:
        work[key] = frame[variables[0]]
        if isinstance(population, pd.DataFrame):
            vcol = next((c for c in ("total", "share", "Freq") if c in population.columns), None)
            pop = population.rename(columns={variables[0]: "category"}).assign(variable=key)
            margins = pop if (vcol and "category" in pop.columns) else population
        else:
            margins = {key: population}
    else:
        if not isinstance(population, pd.DataFrame):
            raise DataError("With several variables, population= must be a DataFrame with their columns and "
                            "'total' or 'share'.", [Problem("population_type", "Bad population table.")])
        work[key] = pd.Series(list(zip(*[frame[v] for v in variables])), index=frame.index)
        cat = pd.Series(list(zip(*[population[v] for v in variables])), index=population.index)
        margins = population.drop(columns=list(variables)).assign(variable=key, category=cat)
    raked = rake(work, margins=margins, weight=weight, by=by, max_iter=1, tol=1e-9, base_column=None)
    w = raked.weights
    base = f"{weight}_base" if base_column == "auto" else base_column
    cal = Calibration("poststratify", variables, weight, base or "", by=by)
    return _finish(frame, original, design, w, _weights(frame, weight), base, cal, "poststratify", raked.table,
                   raked.flags, {"by": list(by), "variables": list(variables)})


# ---------------------------------------------------------------------------------------------
# GREG calibration
# ---------------------------------------------------------------------------------------------
def _calfun(method: str, bounds: tuple[float, float]):
    """``F(u) - 1`` and its derivative of R ``survey``'s ``cal.linear``, ``cal.raking`` and ``cal.logit``."""
    L, U = bounds
    if method == "linear":
        return (lambda u: np.clip(u + 1.0, L, U) - 1.0,
                lambda u: ((u < U - 1.0) & (u > L - 1.0)).astype(np.float64))
    if method == "raking":
        def fm1(u):
            with np.errstate(over="ignore"):
                return np.clip(np.exp(u), L, U) - 1.0

        def df(u):                                   # R compares u (not exp(u)) with the bounds - 1
            with np.errstate(over="ignore"):
                return np.where((u < U - 1.0) & (u > L - 1.0), np.exp(u), 0.0)
        return fm1, df
    A = (U - L) / ((U - 1.0) * (1.0 - L))

    def lfm1(u):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(A * u)
            return (L * (U - 1.0) + U * (1.0 - L) * e) / (U - 1.0 + (1.0 - L) * e) - 1.0

    def ldf(u):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(A * u)
            den = U - 1.0 + (1.0 - L) * e
            return U * (1.0 - L) * e * A / den - (L * (U - 1.0) + U * (1.0 - L) * e) * ((1.0 - L) * e * A) / den ** 2
    return lfm1, ldf


def _grake(X: np.ndarray, w0: np.ndarray, t_pop: np.ndarray, method: str, bounds: tuple[float, float],
           max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """Newton iterations of R ``survey:::grake``: ``g = 1 + F^-1... `` solving ``X'(w0 g) = t_pop``.

    Returns ``g`` and the iterations; step halving while ``g`` is not finite;
    weights are pre-scaled when every population total is more than 20 times
    its sample total (as R).
    """
    fm1, df = _calfun(method, bounds)
    ww = w0.copy()
    sample = X.T @ ww
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = t_pop / sample
    scale = float(np.mean(scales)) if np.all(np.isfinite(scales)) and scales.min() > 20 else None
    if scale is not None:
        ww = ww * scale
        sample = sample * scale
    eta = np.zeros(X.shape[1])
    xeta = X @ eta
    it = 1
    while True:
        T = X.T @ (X * (ww * df(xeta))[:, None])
        misfit = t_pop - sample - X.T @ (ww * fm1(xeta))
        deta = np.linalg.pinv(T, rcond=256 * np.finfo(float).eps) @ misfit
        eta = eta + deta
        xeta = X @ eta
        while it < max_iter and not (np.all(np.isfinite(fm1(xeta))) and np.all(np.isfinite(df(xeta)))):
            it += 1
            deta = deta / 2
            eta = eta - deta
            xeta = X @ eta
        misfit = t_pop - sample - X.T @ (ww * fm1(xeta))
        if np.all(np.abs(misfit) / (1.0 + np.abs(t_pop)) < tol):
            break
        it += 1
        if it > max_iter:
            break
    g = 1.0 + fm1(xeta)
    return (g * scale if scale is not None else g), it


def _population_vector(sub: pd.DataFrame, cms: list, c: int, numeric: tuple, totals: dict) -> np.ndarray:
    """Population totals in model-matrix order: N, levels 2.. of each variable, numeric totals."""
    t_pop = [float(cms[0].target[cms[0].cell == c].sum())]
    for m in cms:
        sel = m.cell == c
        levels = pd.factorize(sub[m.variable], sort=True)[1]
        lut = {(_py(k)): float(v) for k, v in zip(m.category[sel], m.target[sel])}
        t_pop.extend(lut[_py(lev)] for lev in list(levels)[1:])
    t_pop.extend(float(totals[v]) for v in numeric)
    return np.asarray(t_pop)


def _check_calibrate_args(method: str, bounds: Any, margins: Any, totals: dict) -> tuple[float, float] | None:
    if method not in _CAL_METHODS:
        raise CipsError(f"method= must be one of {_CAL_METHODS}; got {method!r}.")
    if margins is None:
        raise DataError("calibrate() needs categorical margins= to fix the population size (the intercept).",
                        [Problem("calibration_targets", "No margins.")])
    if bounds is None:
        if method == "logit":
            raise CipsError('method="logit" needs finite bounds=(lo, hi) with lo < 1 < hi.')
        return None
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise CipsError(f"bounds= must be a pair (lo, hi); got {bounds!r}.") from None
    if not (lo < 1.0 < hi) or np.isnan(lo) or np.isnan(hi):
        raise CipsError(f"bounds= must satisfy lo < 1 < hi (bounds on g = calibrated / base weight); got {bounds!r}.")
    if method == "logit" and not (np.isfinite(lo) and np.isfinite(hi)):
        raise CipsError('method="logit" needs finite bounds.')
    return (lo, hi)


_CAL_METHODS = ("linear", "raking", "logit")


def calibrate(data: Any, *, margins: Any = None, totals: Mapping[str, float] | None = None,
              method: str = "linear", bounds: Any = None, weight: Any = None, by: Any = None,
              max_iter: int = 100, tol: float = 1e-12, base_column: str | None = "auto",
              value: str | None = None) -> Weighted:
    """Calibrate weights to categorical margins and numeric totals (GREG; linear, raking or logit distance).

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents; not changed.
    margins : dict or DataFrame
        Categorical margins, as in :func:`rake`.
    totals : dict {column: population total}, optional
        Numeric calibration variables and their population totals (same for
        every cell).
    method : {"linear", "raking", "logit"}
        Calibration distance: ``g = 1 + x'lambda`` (GREG), ``g = exp(x'eta)``
        (equivalent to raking for categorical margins) or the logit distance
        of Deville & Särndal (1992), whose ``g`` stays inside ``bounds``.
    bounds : (float, float), optional
        Bounds ``(lo, hi)`` on ``g = calibrated / base weight``, ``lo < 1 <
        hi`` (R ``calibrate(bounds = c(lo, hi))``); required by ``"logit"``.
        With ``"linear"`` and ``"raking"``, ``g`` is truncated at the bounds
        inside the Newton iterations, as R's ``cal.linear``/``cal.raking``.
    weight, by, base_column, value
        As in :func:`rake` (a variable applies only in the cells whose margins
        list it; each cell's model has that cell's variables).
    max_iter, tol : int, float
        Newton iterations and tolerance (``max |misfit|/(1 + |total|)``) of
        the iterative methods (all but unbounded linear).

    Returns
    -------
    Weighted

    Raises
    ------
    ConvergenceError
        A cell did not reach its totals (e.g. bounds too tight), named with
        its worst relative misfit (R: "Calibration failed").

    Notes
    -----
    The model matrix is R's ``model.matrix(~ a + b + x)``: an intercept,
    treatment dummies (first sorted level dropped) and the numeric columns;
    the calibrated weights solve ``sum_i w_i g_i x_i = t_x`` (Deville &
    Särndal 1992).  Unbounded linear calibration is solved in closed form;
    the others by R ``survey:::grake``'s Newton iterations (generalised
    inverse, step halving, pre-scaling when every total exceeds 20 times its
    sample total).  Weights and SEs match R ``survey::calibrate(design,
    ~a + b + x, population, bounds =, calfun = "linear" | "raking" |
    "logit")`` to 1e-8 (``tests/reference/survey_calibration*.json``).
    Cells (``by``) are solved one after another (small dense systems).

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"lead": ["y", "n", "n", "y"], "age": [30.0, 40, 50, 60], "weight": 1.0})
    >>> w = cs.weighting.calibrate(df, margins={"lead": {"y": 40, "n": 60}}, totals={"age": 4500.0}).frame
    >>> round(float(w["weight"].sum()), 6), round(float((w["weight"] * w["age"]).sum()), 6)
    (100.0, 4500.0)
    >>> df10 = df.assign(weight=10.0)                 # totals 20 and 20; the margins ask for 18 and 22
    >>> res = cs.weighting.calibrate(df10, margins={"lead": {"y": 18, "n": 22}}, method="logit", bounds=(0.8, 1.2))
    >>> (res.weights / 10.0).round(6).tolist()       # g within the bounds
    [0.9, 1.1, 1.1, 0.9]
    """
    frame, original = _unwrap(data)
    totals = dict(totals or {})
    bnd = _check_calibrate_args(method, bounds, margins, totals)
    weight, design = _weight_design(data, original, weight)
    by = _tuple(by)
    _check_columns(frame, list(totals), "totals=")
    w0 = _weights(frame, weight)
    cell, keys = _cells(frame, by)
    C = len(keys)
    ms = _resolve_margins(frame, margins, by, w0, cell, keys, value)
    numeric = tuple(totals)
    for v in numeric:
        bad = np.flatnonzero(pd.to_numeric(frame[v], errors="coerce").isna().to_numpy())
        if bad.size:
            raise DataError(f"Numeric calibration variable {v!r} has missing values.",
                            [Problem("calibration_missing", "Missing value.", row=int(r) + 1, column=v)
                             for r in bad[:50]])
    w = np.empty_like(w0)
    iters = np.zeros(C, dtype=np.int64)
    abs_err = np.zeros(C)
    rel_err = np.zeros(C)
    for c in range(C):
        idx = np.flatnonzero(cell == c)
        sub = frame.iloc[idx]
        cms = [m for m in ms if m.cells is None or c in m.cells]     # the margins this cell lists
        X = _model_matrix(sub, [m.variable for m in cms], numeric)
        t_pop = _population_vector(sub, cms, c, numeric, totals)
        wc = w0[idx]
        if method == "linear" and bnd is None:
            lam = np.linalg.solve(X.T @ (X * wc[:, None]), t_pop - X.T @ wc)
            g, iters[c] = 1.0 + X @ lam, 1
        else:
            g, iters[c] = _grake(X, wc, t_pop, method, bnd or (-np.inf, np.inf), max_iter, tol)
        w[idx] = wc * g
        mis = np.abs(t_pop - X.T @ w[idx])
        abs_err[c] = mis.max()
        rel_err[c] = (mis / (1.0 + np.abs(t_pop))).max()
    converged = rel_err <= max(tol, 1e-9)
    table, flags = _report(keys, cell, C, w0, w, iters, abs_err, rel_err, converged)
    if not converged.all():
        bad = np.flatnonzero(~converged)
        raise ConvergenceError(f"Calibration did not reach its totals in {bad.size} cell(s): " + "; ".join(
            f"{_cell_where(keys, c) or 'all'} (relative misfit {rel_err[c]:.3g})" for c in bad[:10])
            + (". The bounds may be too tight for these margins." if bnd is not None else "."),
            {"report": table})
    base = f"{weight}_base" if base_column == "auto" else base_column
    cal = Calibration(method, tuple(m.variable for m in ms), weight, base or "", numeric=numeric, by=by,
                      scope=_scope(ms, keys), bounds=bnd)
    return _finish(frame, original, design, w, w0, base, cal, method, table, flags,
                   {"by": list(by), "variables": list(cal.variables), "numeric": list(numeric), "bounds": bnd,
                    "max_iter": max_iter, "tol": tol})


# ---------------------------------------------------------------------------------------------
# design weights, trimming, Kish
# ---------------------------------------------------------------------------------------------
def design_weights(data: Any, *, population: Any, strata: Any = ("country", "group"), weight: Any = None
                   ) -> Weighted:
    """Design weights ``N_h / n_h`` of equal-probability sampling within strata.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents.
    population : dict, Series or DataFrame
        Population size per stratum: a dict/Series keyed by the stratum label
        (a tuple for several columns) or a DataFrame with the strata columns and
        ``"N"`` (or ``"total"``).
    strata : str or tuple of str
        Stratum columns.
    weight : None, str or Design
        Column to write (default: the data's design's weight, ``"weight"``).

    Returns
    -------
    Weighted
        ``.table``: per stratum ``N``, ``n`` and the weight ``N/n``.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"unit": ["hq", "hq", "port"]})
    >>> cs.weighting.design_weights(df, population={"hq": 10, "port": 30}, strata="unit").weights.tolist()
    [5.0, 5.0, 30.0]
    """
    frame, original = _unwrap(data)
    weight, design = _weight_design(data, original, weight)
    strata = _tuple(strata)
    cell, keys = _cells(frame, strata)
    if isinstance(population, pd.DataFrame):
        col = "N" if "N" in population.columns else "total"
        _check_columns(population, list(strata) + [col], "population=")
        idx = pd.MultiIndex.from_frame(population[list(strata)])
        N = pd.Series(population[col].to_numpy(dtype=float), index=idx)
    else:
        N = pd.Series(dict(population), dtype=float)
    look = [tuple(r) if len(strata) > 1 else r[0] for r in keys.itertuples(index=False)]
    Nh = np.array([N.get(k, np.nan) for k in look], dtype=float)
    missing = [k for k, v in zip(look, Nh) if not np.isfinite(v)]
    if missing:
        raise DataError(f"population= has no size for {len(missing)} stratum(s).",
                        [Problem("population_missing", f"No population size for stratum {k!r}.", value=k)
                         for k in missing[:50]])
    n_h = np.bincount(cell, minlength=len(keys))
    small = np.flatnonzero(Nh < n_h)
    if small.size:
        raise DataError("A population size is smaller than its sample.",
                        [Problem("population_too_small", f"Stratum {look[h]!r}: N={Nh[h]:g} < n={n_h[h]}.",
                                 value=look[h]) for h in small])
    out = frame.copy()
    out[weight] = (Nh / n_h)[cell]
    design = design.update(calibration=None)
    table = keys.copy().reset_index(drop=True)
    table["N"], table["n"], table["weight"] = Nh, n_h, Nh / n_h
    result_data = _wrap(out, original, design)
    return Weighted(data=result_data, design=design, method="design_weights", table=table,
                    provenance=Provenance.build("weighting.design_weights", data=result_data,
                                                options={"strata": list(strata)}))


def trim(data: Any, *, weight: Any = None, lower: float | None = None, upper: float | None = None,
         relative: bool = False, by: Any = None, redistribute: str = "proportional", max_iter: int = 100,
         ) -> Weighted:
    """Trim (cap) weights to bounds and redistribute the trimmed amount, keeping each cell's total.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents; not changed.
    weight : None, str or Design
        Weight column (default: the data's design's weight).
    lower, upper : float, optional
        Bounds; with ``relative=True`` multiples of the cell's mean weight
        (e.g. ``upper=3.5``).
    by : tuple of str, optional
        Cells whose totals are preserved separately (vectorised).
    redistribute : {"proportional", "equal"}
        The trimmed amount goes to the untrimmed weights in proportion to
        them, or in equal parts (R ``survey::trimWeights``).
    max_iter : int
        Trim-and-redistribute rounds (until no weight is outside the bounds; R
        ``trimWeights(strict = TRUE)``).

    Returns
    -------
    Weighted
        The design of the trimmed weights has no calibration (trimming
        undoes it); ``.table`` adds ``n_trimmed`` per cell.

    Notes
    -----
    Trimming changes the estimator (bias for variance); weights are left
    uncalibrated afterwards, so rake again if margins must hold exactly.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"weight": [1.0, 1.0, 1.0, 9.0]})
    >>> cs.weighting.trim(df, upper=4.0).weights.round(4).tolist()   # R: trimWeights(d, upper = 4)
    [2.6667, 2.6667, 2.6667, 4.0]
    """
    if redistribute not in ("proportional", "equal"):
        raise CipsError(f"redistribute= must be 'proportional' or 'equal'; got {redistribute!r}.")
    frame, original, weight, design, by, w0, cell, keys, C = _prepare(data, weight, by)
    n = np.bincount(cell, minlength=C)
    tot = np.bincount(cell, weights=w0, minlength=C)
    mean = tot / n
    lo = np.full(C, -np.inf) if lower is None else (lower * mean if relative else np.full(C, float(lower)))
    hi = np.full(C, np.inf) if upper is None else (upper * mean if relative else np.full(C, float(upper)))
    if np.any(lo > hi) or np.any(hi * n < tot * (1 - 1e-12)) or np.any(lo * n > tot * (1 + 1e-12)):
        bad = np.flatnonzero((hi * n < tot * (1 - 1e-12)) | (lo * n > tot * (1 + 1e-12)) | (lo > hi))
        raise DataError("The bounds cannot hold the cell's weight total (n * upper < total or n * lower > total).",
                        [Problem("trim_infeasible", f"Cell {_cell_where(keys, c)}: total {tot[c]:g}, n {n[c]}.")
                         for c in bad[:50]])
    w = w0.copy()
    lo_r, hi_r = lo[cell], hi[cell]
    it = 0
    tol = 1e-12 * np.maximum(1.0, np.abs(w0).max())
    for it in range(1, max_iter + 1):
        outside = (w < lo_r - tol) | (w > hi_r + tol)
        if not outside.any():
            it -= 1
            break
        clipped = np.clip(w, lo_r, hi_r)
        excess = np.bincount(cell, weights=w - clipped, minlength=C)
        inside = ~outside
        if redistribute == "proportional":
            base = np.bincount(cell, weights=np.where(inside, clipped, 0.0), minlength=C)
            fac = np.where(base > 0, excess / np.where(base > 0, base, 1.0), 0.0)
            w = np.where(inside, clipped * (1 + fac[cell]), clipped)
        else:
            cnt = np.bincount(cell, weights=inside.astype(float), minlength=C)
            add = np.where(cnt > 0, excess / np.where(cnt > 0, cnt, 1.0), 0.0)
            w = np.where(inside, clipped + add[cell], clipped)
    still = (w < lo_r - tol) | (w > hi_r + tol)
    conv = np.bincount(cell, weights=still.astype(float), minlength=C) == 0
    if not conv.all():
        raise ConvergenceError(f"Trimming left weights outside the bounds after {max_iter} rounds.",
                               {"cells": [_cell_where(keys, c) for c in np.flatnonzero(~conv)][:50]})
    err = np.zeros(C)
    table, flags = _report(keys, cell, C, w0, w, np.full(C, it), err, err, conv)
    table["n_trimmed"] = np.bincount(cell, weights=(np.abs(w - w0) > tol).astype(float), minlength=C).astype(int)
    return _finish(frame, original, design, w, w0, None, None, "trim", table, flags,
                   {"lower": lower, "upper": upper, "relative": relative, "by": list(by),
                    "redistribute": redistribute})


@dataclass(frozen=True)
class Kish(Result):
    """Kish effective sample size and weighting design effect; unpacks as ``n_eff, deff = kish(...)``.

    Attributes
    ----------
    n_eff : float
        ``(sum w)^2 / sum w^2``.
    deff : float
        ``n / n_eff = 1 + CV^2`` (CV with divisor n).
    n : int
        Number of weights.
    """

    n_eff: float = math.nan
    deff: float = math.nan
    n: int = 0

    def __iter__(self):
        return iter((self.n_eff, self.deff))


def _weight_vector(data: Any, weight: Any) -> np.ndarray:
    if data is None:
        if weight is None or isinstance(weight, (str, Design)):
            raise CipsError("kish() needs data= with weight= a column name or Design, or weight= an array of weights.")
        return np.asarray(weight, dtype=np.float64).ravel()
    frame, original = _unwrap(data)
    col, _ = _weight_design(data, original, weight)
    _check_columns(frame, [col], "weight=")
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)


def kish(data: Any = None, *, weight: Any = None) -> Kish:
    """Kish effective sample size and design effect of a set of weights.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame, optional
        The respondents; then ``weight`` is a column name or a Design
        (default: the data's design's weight).
    weight : str, Design or array-like
        Without ``data``: the weights themselves.

    Returns
    -------
    Kish
        ``n_eff = (sum w)^2 / sum w^2`` and ``deff = n / n_eff = 1 + CV^2``
        (CV with divisor n); unpacks as ``n_eff, deff``.

    Examples
    --------
    >>> from cips_stats.weighting import kish
    >>> n_eff, deff = kish(weight=[1.0, 1.0, 2.0, 2.0])
    >>> n_eff, deff
    (3.6, 1.1111111111111112)
    """
    w = _weight_vector(data, weight)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise DataError("kish() needs finite, non-negative weights with a positive sum.",
                        [Problem("weight_positive", "Bad weights.")])
    n_eff = float(w.sum() ** 2 / (w * w).sum())
    return Kish(n_eff=n_eff, deff=float(w.size / n_eff), n=int(w.size),
                provenance=Provenance.build("weighting.kish", options={"n": int(w.size)}))


@dataclass(frozen=True)
class EffectiveN(Result):
    """Kish effective sample size per cell: ``table`` with the ``by`` keys, ``n``, ``sum_weights``, ``n_eff``,
    ``deff_kish`` and ``cv``."""

    table: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """The per-cell table."""
        return self.table.copy()


def effective_n(data: Any, *, weight: Any = None, by: Any = ("country", "iteration", "group")) -> EffectiveN:
    """Kish effective sample size and weighting design effect per cell.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents.
    weight : None, str or Design
        Weight column or a Design (default: the data's design's weight).
    by : str or tuple of str
        Cells.

    Returns
    -------
    EffectiveN
        ``table`` (tidy): the ``by`` keys, ``n``, ``sum_weights``, ``n_eff``,
        ``deff_kish`` (``1 + CV^2``) and ``cv``.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"c": ["a", "a", "b"], "weight": [1.0, 3.0, 2.0]})
    >>> cs.weighting.effective_n(df, by="c").table[["c", "n", "n_eff"]].to_dict("list")
    {'c': ['a', 'b'], 'n': [2, 1], 'n_eff': [1.6, 1.0]}
    """
    frame, _, weight, _, by, w, cell, keys, C = _prepare(data, weight, by)
    n = np.bincount(cell, minlength=C)
    s1 = np.bincount(cell, weights=w, minlength=C)
    s2 = np.bincount(cell, weights=w * w, minlength=C)
    out = keys.copy().reset_index(drop=True) if by else pd.DataFrame(index=range(C))
    out["n"] = n
    out["sum_weights"] = s1
    with np.errstate(invalid="ignore", divide="ignore"):
        out["n_eff"] = s1 * s1 / s2
        out["deff_kish"] = n * s2 / (s1 * s1)
    out["cv"] = np.sqrt(np.maximum(out["deff_kish"].to_numpy() - 1.0, 0.0))
    if by:
        out = out.sort_values(list(by), kind="stable").reset_index(drop=True)
    return EffectiveN(table=out, provenance=Provenance.build("weighting.effective_n", data=data,
                                                            options={"weight": weight, "by": list(by)}))


# ---------------------------------------------------------------------------------------------
# composition drift
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftResult(Result):
    """Composition drift between iterations.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per ``by`` cell × variable × category × pair of consecutive
        iterations: ``share_from``, ``share_to``, ``diff``, ``n_eff_from``,
        ``n_eff_to``, ``se``, ``z``, ``p_value``, ``large`` (|diff| >
        threshold), ``significant`` (p < significance) and ``flagged`` (both).
    threshold, significance : float
        The rule used.
    """

    table: pd.DataFrame | None = None
    threshold: float = 0.15
    significance: float = 0.01

    @property
    def alpha(self) -> float:
        """Former name of ``significance`` (kept for reports written against it)."""
        return self.significance

    @property
    def flagged(self) -> pd.DataFrame:
        """Rows flagged as a large, significant shift."""
        return self.table[self.table["flagged"]].reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """The full table."""
        return self.table.copy()


def _shares(frame: pd.DataFrame, variables: Sequence[str], keys: Sequence[str], w: np.ndarray) -> pd.DataFrame:
    rows = []
    for v in variables:
        sub = frame[list(keys) + [v]].copy()
        sub["_w"] = w
        sub["_w2"] = w * w
        sub = sub[sub[v].notna()]
        g = sub.groupby(list(keys) + [v], observed=True, sort=True)
        tot = sub.groupby(list(keys), observed=True, sort=True)
        s = g["_w"].sum().rename("wsum").reset_index()
        t = tot.agg(total=("_w", "sum"), w2=("_w2", "sum"), n=("_w", "size")).reset_index()
        s = s.merge(t, on=list(keys))
        s["share"] = s["wsum"] / s["total"]
        s["n_eff"] = s["total"] ** 2 / s["w2"]
        s = s.rename(columns={v: "category"})
        s.insert(len(keys), "variable", v)
        rows.append(s[list(keys) + ["variable", "category", "share", "n", "n_eff"]])
    return pd.concat(rows, ignore_index=True)


def _optional_weights(frame: pd.DataFrame, original: Any, weight: Any) -> np.ndarray:
    """Weights for descriptive shares: the data's design's (unit weights when it names none), a column or a Design."""
    if weight is None:
        d = design_of(original) if original is not None else Design.of_frame(frame)
        col = d.weight
    elif isinstance(weight, Design):
        col = weight.weight
    elif isinstance(weight, str):
        col = weight
    else:
        raise CipsError(f"weight= must be None, a column name or a Design; got {type(weight).__name__}.")
    return np.ones(len(frame)) if col is None else _weights(frame, col)


def composition_drift(data: Any, *, variables: Sequence[str] = ("gender", "leadership"),
                      by: Any = ("country", "group"), iteration: str = "iteration", weight: Any = None,
                      threshold: float = 0.15, significance: float = 0.01) -> DriftResult:
    """Compare demographic margins between consecutive iterations per cell and flag large shifts.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents.
    variables : sequence of str
        Demographic (categorical) columns to compare.
    by : tuple of str
        Cells compared separately (default country × group).
    iteration : str
        Iteration column (ordered).
    weight : None, str or Design
        ``None``: the data's design's weight (a DataFrame's ``weight``
        column when present, else unweighted); a column; or a Design
        (``Design(weight=None)``: unweighted).
    threshold : float
        A shift is *large* when the absolute difference in share exceeds it
        (default 0.15 = 15 percentage points).
    significance : float
        A shift is *significant* when the two-sided p-value of the difference
        (Kish-adjusted two-sample z test) is below ``significance``.

    Returns
    -------
    DriftResult
        ``flagged`` rows are large **and** significant; a flag per cell and
        variable is attached.  To remove the drift, reweight both iterations
        to a common structure: ``reweight_common(data, variables=...)``.

    Notes
    -----
    ``se = sqrt(p1 (1 - p1)/n_eff1 + p2 (1 - p2)/n_eff2)`` with Kish's
    ``n_eff = (sum w)^2/sum w^2`` of each iteration's cell; ``z = diff/se``.
    Missing values of a variable are left out of its shares.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"country": "A", "group": "officials", "iteration": [1] * 100 + [2] * 100,
    ...                    "leadership": ["manager"] * 85 + ["staff"] * 15 + ["manager"] * 23 + ["staff"] * 77,
    ...                    "weight": 1.0})
    >>> res = cs.weighting.composition_drift(df, variables=["leadership"])
    >>> res.flagged[["category", "share_from", "share_to"]].round(2).to_dict("list")
    {'category': ['manager', 'staff'], 'share_from': [0.85, 0.15], 'share_to': [0.23, 0.77]}
    """
    frame, original = _unwrap(data)
    by = _tuple(by)
    variables = list(variables)
    _check_columns(frame, list(by) + [iteration] + variables, "composition_drift()")
    w = _optional_weights(frame, original, weight)
    sh = _shares(frame, variables, list(by) + [iteration], w)
    its = sorted(frame[iteration].dropna().unique())
    pairs = list(zip(its[:-1], its[1:]))
    out = []
    for a, b in pairs:
        A = sh[sh[iteration] == a].drop(columns=[iteration])
        B = sh[sh[iteration] == b].drop(columns=[iteration])
        m = A.merge(B, on=list(by) + ["variable", "category"], how="outer", suffixes=("_from", "_to"))
        # a category absent in one iteration has share 0 there (if the cell exists)
        for side in ("_from", "_to"):
            cellinfo = (A if side == "_from" else B).groupby(list(by) + ["variable"], observed=True).agg(
                n_c=("n", "first"), ne_c=("n_eff", "first")).reset_index()
            m = m.merge(cellinfo.rename(columns={"n_c": "nn" + side, "ne_c": "ne" + side}),
                        on=list(by) + ["variable"], how="left")
            m["share" + side] = m["share" + side].where(m["share" + side].notna() | m["nn" + side].isna(), 0.0)
            m["n" + side] = m["nn" + side]
            m["n_eff" + side] = m["ne" + side]
            m = m.drop(columns=["nn" + side, "ne" + side])
        m.insert(len(by), "iteration_from", a)
        m.insert(len(by) + 1, "iteration_to", b)
        out.append(m)
    if not out:
        raise DataError("composition_drift() needs at least two iterations.",
                        [Problem("iterations", "Only one iteration.", column=iteration)])
    t = pd.concat(out, ignore_index=True)
    t = t.dropna(subset=["share_from", "share_to"]).reset_index(drop=True)
    p1, p2 = t["share_from"].to_numpy(float), t["share_to"].to_numpy(float)
    se = np.sqrt(p1 * (1 - p1) / t["n_eff_from"].to_numpy(float) + p2 * (1 - p2) / t["n_eff_to"].to_numpy(float))
    t["diff"] = p2 - p1
    t["se"] = se
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (p2 - p1) / np.where(se > 0, se, 1.0), np.where(p2 == p1, 0.0, np.inf))
    t["z"] = z
    t["p_value"] = 2 * _st.norm.sf(np.abs(z))
    t["large"] = np.abs(t["diff"]) > threshold
    t["significant"] = t["p_value"] < significance
    t["flagged"] = t["large"] & t["significant"]
    cols = list(by) + ["iteration_from", "iteration_to", "variable", "category", "share_from", "share_to", "diff",
                       "n_from", "n_to", "n_eff_from", "n_eff_to", "se", "z", "p_value", "large", "significant",
                       "flagged"]
    t = t[cols]
    flags = []
    for key, g in t[t["flagged"]].groupby(list(by) + ["iteration_from", "iteration_to", "variable"], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        where = {k: _py(v) for k, v in zip(list(by) + ["iteration_from", "iteration_to", "variable"], key)}
        worst = g.loc[g["diff"].abs().idxmax()]
        flags.append(Flag("composition_drift",
                          f"{where}: share of {worst['category']!r} moved from {worst['share_from']:.0%} to "
                          f"{worst['share_to']:.0%}; consider "
                          f"reweight_common(data, variables=[{where['variable']!r}]).",
                          "warning", where))
    return DriftResult(table=t, threshold=threshold, significance=significance, flags=tuple(flags),
                       provenance=Provenance.build("weighting.composition_drift", data=data, options={
                           "variables": variables, "by": list(by), "iteration": iteration, "weight": weight,
                           "threshold": threshold, "significance": significance}))


def reweight_common(data: Any, *, variables: Sequence[str] = ("gender", "leadership"), target: Any = "pooled",
                    by: Any = ("country", "group"), iteration: str = "iteration", weight: Any = None,
                    max_iter: int = 100, tol: float = 1e-10) -> Weighted:
    """Rake every iteration of each cell to a common demographic structure.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        Respondents; not changed.
    variables : sequence of str
        Categorical columns whose margins are equalised.
    target : "pooled", "iteration1", int or DataFrame
        The common structure: ``"pooled"`` = the average over iterations of
        each iteration's weighted shares (each iteration counts equally);
        ``"iteration1"``/``"first"`` or an iteration value = that iteration's
        shares; or a tidy table ``[*by, "variable", "category", "share"]``.
    by : tuple of str
        Cells (each with its own target); iterations are raked within them.
    iteration, weight, max_iter, tol
        As in :func:`rake`.

    Returns
    -------
    Weighted
        Each (cell, iteration) keeps its weight total; its margins equal the target shares.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"country": "A", "group": "officials", "iteration": [1, 1, 1, 1, 2, 2, 2, 2],
    ...                    "lead": ["m", "m", "m", "s", "m", "s", "s", "s"], "weight": 1.0})
    >>> out = cs.weighting.reweight_common(df, variables=["lead"], target="iteration1").frame
    >>> out[out["iteration"] == 2].groupby("lead")["weight"].sum().tolist()
    [3.0, 1.0]
    """
    frame, original = _unwrap(data)
    by = _tuple(by)
    variables = list(variables)
    _check_columns(frame, list(by) + [iteration] + variables, "reweight_common()")
    wcol, _ = _weight_design(data, original, weight)
    w = _weights(frame, wcol)
    if isinstance(target, pd.DataFrame):
        tgt = target.copy()
        if "share" not in tgt.columns:
            raise DataError("A target table needs a 'share' column.", [Problem("target_columns", "No share.")])
    else:
        sh = _shares(frame, variables, list(by) + [iteration], w)
        if isinstance(target, str) and target == "pooled":
            tgt = sh.groupby(list(by) + ["variable", "category"], observed=True)["share"].sum().reset_index()
            if by:
                n_it = sh.groupby(list(by), observed=True)[iteration].nunique().rename("_nit").reset_index()
                tgt = tgt.merge(n_it, on=list(by))
            else:
                tgt = tgt.assign(_nit=sh[iteration].nunique())
            tgt["share"] = tgt["share"] / tgt["_nit"]
            tgt = tgt.drop(columns="_nit")
        else:
            its = sorted(frame[iteration].unique())
            it = its[0] if (isinstance(target, str) and target in ("iteration1", "first")) else target
            if it not in set(its):
                raise DataError(f"target={target!r} is not an iteration of the data ({its}).",
                                [Problem("target_iteration", "Unknown iteration.", column=iteration, value=target)])
            tgt = sh[sh[iteration] == it][list(by) + ["variable", "category", "share"]]
    cells = frame[list(by) + [iteration]].drop_duplicates()
    margins = cells.merge(tgt[list(by) + ["variable", "category", "share"]], on=list(by), how="left") if by else \
        cells.merge(tgt[["variable", "category", "share"]], how="cross")
    return rake(data, margins=margins, weight=weight, by=list(by) + [iteration], max_iter=max_iter, tol=tol)
