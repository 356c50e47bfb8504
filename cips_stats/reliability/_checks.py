"""Input checks shared by the reliability functions: choices, levels, item tables, weights.

Every problem raises a :class:`~cips_stats.errors.CipsError` subclass; data problems
name the row (1-based: the first respondent is row 1), column and value.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, Problem

def _as_item_frame(items: Any) -> pd.DataFrame:
    if isinstance(items, pd.DataFrame):
        df = items
    elif isinstance(items, np.ndarray):
        if items.ndim != 2:
            raise DataError("The items must be a 2-D table (respondents x items).",
                            [Problem("items_shape", f"Got an array with {items.ndim} dimensions.",
                                     "<array>", value=items.shape)])
        df = pd.DataFrame(items, columns=[f"item{j + 1}" for j in range(items.shape[1])])
    else:
        try:
            df = pd.DataFrame(items)
        except Exception as exc:  # noqa: BLE001 - re-raised as a typed error
            raise DataError(f"The items cannot be read as a table: {exc}.",
                            [Problem("items_type", str(exc), "<input>", value=type(items).__name__)]) from exc
    return df


def _numeric_matrix(df: pd.DataFrame, source: str = "<DataFrame>") -> np.ndarray:
    """Item columns as float64 (NaN = missing); every non-numeric or infinite value raises DataError."""
    probs: list[Problem] = []
    cols = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_numeric_dtype(s)):
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna() & s.notna()
            for r in np.flatnonzero(bad.to_numpy())[:20]:
                probs.append(Problem("item_numeric", "Item answers must be numeric codes.", source,
                                     int(r) + 1, str(c), s.iloc[r]))
            cols.append(conv.to_numpy(dtype=float, na_value=np.nan))
        else:
            cols.append(s.to_numpy(dtype=float, na_value=np.nan))
    X = np.column_stack(cols) if cols else np.empty((len(df), 0))
    inf = np.argwhere(np.isinf(X))
    for r, j in inf[:20]:
        probs.append(Problem("item_finite", "Item answers must be finite.", source, int(r) + 1,
                             str(df.columns[j]), float(X[r, j])))
    if probs:
        raise DataError(f"The items hold {len(probs)} unusable value(s).", probs)
    return X


def _check_numeric_columns(frame: pd.DataFrame, cols: Sequence[str]) -> None:
    """Raise DataError (naming rows and values) when an item column is not numeric or holds infinities."""
    probs: list[Problem] = []
    for c in cols:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            conv = pd.to_numeric(s, errors="coerce")
            bad = np.flatnonzero((conv.isna() & s.notna()).to_numpy())
            if bad.size == 0 and not pd.api.types.is_bool_dtype(s):
                continue
            for r in bad[:20]:
                probs.append(Problem("item_numeric", "Item answers must be numeric codes.", "<DataFrame>",
                                     int(r) + 1, str(c), s.iloc[r]))
            if pd.api.types.is_bool_dtype(s):
                probs.append(Problem("item_numeric", "Item answers must be numeric codes, not booleans.",
                                     "<DataFrame>", None, str(c), None))
        else:
            v = s.to_numpy(dtype=float, na_value=np.nan)
            for r in np.flatnonzero(np.isinf(v))[:20]:
                probs.append(Problem("item_finite", "Item answers must be finite.", "<DataFrame>", int(r) + 1,
                                     str(c), float(v[r])))
    if probs:
        raise DataError(f"The items hold {len(probs)} unusable value(s).", probs)


def _weight_vector(weight: Any, df: pd.DataFrame, n: int) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Resolve weight= (None, a column name of the items frame, a Design, or an array); validate it."""
    if not isinstance(weight, str) and hasattr(weight, "weight") and not isinstance(weight, (bool, np.ndarray)):
        weight = weight.weight                    # a Design: its weight column (None: unit weights)
    if weight is None or weight is False:
        return None, df
    if isinstance(weight, str):
        if weight not in df.columns:
            raise DataError(f"The weight= column {weight!r} is not in the items table.",
                            [Problem("weight_column", "Column not found.", "<DataFrame>", column=weight)])
        w = pd.to_numeric(df[weight], errors="coerce").to_numpy(dtype=float)
        df = df.drop(columns=[weight])
        name = weight
    else:
        try:
            w = np.asarray(weight, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"The weight= argument must be a column name or one number per respondent; "
                            f"got {type(weight).__name__}.",
                            [Problem("weight_type", "Unusable weight.", "<input>", value=type(weight).__name__)]
                            ) from None
        name = "weight"
        if w.shape[0] != n:
            raise DataError(f"The weight= argument has {w.shape[0]} values for {n} respondents.",
                            [Problem("weights_length", "One weight per respondent is needed.",
                                     "<input>", column=name, value=w.shape[0])])
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise DataError(f"The weights hold {bad.size} missing, infinite or negative value(s).",
                        [Problem("weight_valid", "Weights must be finite and non-negative.", "<input>",
                                 int(r) + 1, name, float(w[r])) for r in bad[:20]])
    if not np.any(w > 0):
        raise DataError("All weights are zero.", [Problem("weight_positive", "At least one weight must be positive.",
                                                          "<input>", column=name)])
    return w, df




def _prepare_scale(items: Any, weight: Any, missing: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, int]:
    df = _as_item_frame(items)
    w, df = _weight_vector(weight, df, len(df))
    X = _numeric_matrix(df)
    names = [str(c) for c in df.columns]
    probs = []
    if X.shape[1] < 2:
        raise DataError(f"A scale needs at least two items; got {X.shape[1]} ({names}).",
                        [Problem("too_few_items", "Reliability needs at least two items.", "<DataFrame>",
                                 value=names)])
    nrows = X.shape[0]
    M = ~np.isnan(X)
    keep = M.any(axis=1) if missing == "pairwise" else M.all(axis=1)
    if w is not None:
        keep &= w > 0
    n = int(keep.sum())
    if n < 2:
        raise DataError(f"Only {n} respondent(s) answered the items ({missing} deletion"
                        f"{', positive weight' if w is not None else ''}); at least 2 are needed.",
                        [Problem("too_few_respondents", "Too few respondents.", "<DataFrame>", value=n)])
    X, M = X[keep], M[keep]
    if w is not None:
        w = w[keep]
    for j, c in enumerate(names):
        col = X[M[:, j], j]
        if col.size == 0:
            probs.append(Problem("item_all_missing", "The item has no answer.", "<DataFrame>", column=c))
        elif col.size < 2:
            probs.append(Problem("item_too_few_answers", "The item has a single answer.", "<DataFrame>",
                                 column=c, value=float(col[0])))
        elif np.all(col == col[0]):
            probs.append(Problem("item_constant", "The item has no variance (every answer is the same); "
                                 "drop it or check its coding.", "<DataFrame>", column=c,
                                 value=float(col[0])))
    if probs:
        raise DataError(f"{len(probs)} item(s) cannot enter a reliability estimate.", probs)
    return df, X, w, nrows



def _raise_infinite(frame: pd.DataFrame, cols: Sequence[str], column: Any) -> None:
    """Raise DataError naming the rows, columns and values of the infinite answers."""
    bad = [(r, c) for c in dict.fromkeys(cols) for r in np.flatnonzero(np.isinf(column(c)))[:20]][:20]
    raise DataError("The items hold infinite values.",
                    [Problem("item_finite", "Item answers must be finite.", "<DataFrame>",
                             int(r) + 1, c, float(column(c)[r])) for r, c in bad])

