"""The survey layer shared by :func:`~cips_stats.factor.cfa` and :func:`~cips_stats.factor.invariance`.

The factor kernels work on plain DataFrames with the column names given as
arguments.  This module turns a :class:`~cips_stats.SurveyData` into what they need,
in one place and one way: which respondent groups are present (in instrument
order), which items each was asked, which items several groups share, the rows of
one group without copying the whole table, and the weight the design carries.

Examples
--------
>>> import cips_stats as cs
>>> from cips_stats.factor import _survey
>>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
>>> _survey.present_groups(sim.data)
['officials', 'private']
>>> len(_survey.shared_items(sim.data, ["officials", "private"])) > 0
True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["is_survey", "present_groups", "shared_items", "group_frame", "resolve_weight", "WEIGHT_COLUMN"]

#: Column of the design weight in a SurveyData frame.
WEIGHT_COLUMN = "weight"


def is_survey(obj: Any) -> bool:
    """Whether ``obj`` is a SurveyData (duck-typed: a ``frame`` and an ``instrument``)."""
    return hasattr(obj, "frame") and hasattr(obj, "instrument")


def present_groups(data) -> list[str]:
    """Respondent groups present in the data: the instrument's order, then any others.

    Uses ``Series.unique()`` (one hash pass over the codes), never ``set(astype(str))``
    over the whole column.
    """
    frame = data.frame
    if "group" not in frame.columns:
        return []
    present = [str(g) for g in pd.unique(frame["group"].dropna())]
    known = [g for g in data.instrument.group_ids if g in present]
    return known + [g for g in present if g not in known]


def shared_items(data, groups: Sequence[str]) -> set[str]:
    """Items asked of every one of ``groups`` (the instrument's declaration)."""
    inst = data.instrument
    sets = [set(inst.items_for(g)) for g in groups if g in inst.group_ids]
    return set.intersection(*sets) if sets else set()


def group_frame(frame: pd.DataFrame, column: str, value: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of ``frame`` whose ``column`` equals ``value`` (as text), restricted to ``columns``.

    Only the requested columns are copied (a survey frame holds every item of every
    group; a CFA needs one group's items).
    """
    col = frame[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in col.cat.categories]
        code = cats.index(str(value)) if str(value) in cats else -2
        mask = col.cat.codes.to_numpy() == code
    else:
        mask = col.to_numpy() == value
        if not mask.any():          # a label given as text for numeric codes ("1" for 1), or the reverse
            mask = col.astype(str).to_numpy() == str(value)
    cols = list(columns) if columns is not None else list(frame.columns)
    return frame.loc[mask, cols]


def resolve_weight(data, weight: Any) -> str | None:
    """Name of the weight column to use, or None for unweighted.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
    weight : str, Design, False or None
        A column name; an object with a ``weight`` attribute naming the column (a
        survey ``Design``); ``False`` for unweighted; ``None`` for the default: the
        SurveyData's design weight when it varies (a constant weight changes nothing),
        unweighted for a DataFrame.

    Raises
    ------
    DataError
        A named column that the data do not hold, or non-positive weights.
    """
    frame = data.frame if is_survey(data) else data
    if weight is False:
        return None
    if weight is None:
        design = getattr(data, "design", None) if is_survey(data) else None
        name = getattr(design, "weight", None) or (WEIGHT_COLUMN if is_survey(data) else None)
        if name is None or name not in frame.columns:
            return None
        w = frame[name].to_numpy(dtype=float)
        return name if np.nanmax(w) > np.nanmin(w) else None
    if not isinstance(weight, str):
        name = getattr(weight, "weight", None)
        if not isinstance(name, str):
            raise DataError(f"weight= must be a column name or a Design; got {type(weight).__name__}.")
        weight = name
    if weight not in frame.columns:
        raise DataError(f"weight= names {weight!r}, which is not a column of the data.")
    w = pd.to_numeric(frame[weight], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise DataError(f"weight= column {weight!r} must hold positive, finite numbers.")
    return weight
