"""Validated survey data: :class:`SurveyData` and :func:`load`.

A :class:`SurveyData` holds the recoded respondent table (one row per
respondent; item answers as floats on ``1..points`` with reverse keys applied
and non-substantive codes set to missing), its :class:`~cips_stats.Instrument`,
an ``exclusions`` table that accounts for every value that was not used, and a
fingerprint of the content.

Examples
--------
>>> import cips_stats as cs
>>> sim = cs.simulate(seed=1, n_countries=3, n_repeat=2, n_officials=60, n_private=40)
>>> data = sim.data
>>> sorted(data.frame["group"].unique())
['officials', 'private']
>>> data.items(group="private", factor="leadership").columns.tolist()
['LC1', 'LC2', 'LC3', 'LC6']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .instrument import Instrument
from .results import fingerprint_frame

__all__ = ["SurveyData", "load", "EXCLUSION_COLUMNS", "KEY_COLUMNS"]

#: Columns of the exclusions table.
EXCLUSION_COLUMNS = ["row", "respondent_id", "column", "value", "rule", "reason"]
#: Design and key columns of the respondent table (``stratum``/``cluster`` optional).
KEY_COLUMNS = ["respondent_id", "country", "iteration", "group", "weight"]


@dataclass(frozen=True)
class SurveyData:
    """A validated, recoded respondent table with its instrument.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per respondent: ``respondent_id``, ``country``, ``iteration``
        (int), ``group``, ``weight`` (float > 0), optional ``stratum`` and
        ``cluster``, demographic columns, and one float column per item (NaN
        when missing for any reason; the reason is in ``exclusions``).
    instrument : Instrument
        The instrument the items follow.
    exclusions : pandas.DataFrame
        Every value or row that was not used, with ``row``, ``respondent_id``,
        ``column``, ``value``, ``rule`` and ``reason`` columns.
    source : str
        Where the data came from (file path or ``"<DataFrame>"``).
    aside : pandas.DataFrame, optional
        Unknown columns, kept aside (reported in exclusions, not used).
    """

    frame: pd.DataFrame
    instrument: Instrument
    exclusions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCLUSION_COLUMNS))
    source: str = "<DataFrame>"
    aside: pd.DataFrame | None = None
    n_input_rows: int | None = None

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the recoded respondent table."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            fp = fingerprint_frame(self.frame)
            object.__setattr__(self, "_fingerprint", fp)
        return fp

    # -------------------------------------------------------------- accessors
    @property
    def countries(self) -> list:
        """Countries present, sorted."""
        return sorted(self.frame["country"].unique().tolist())

    @property
    def iterations(self) -> list[int]:
        """Iterations present, sorted."""
        return sorted(int(i) for i in self.frame["iteration"].unique())

    @property
    def groups(self) -> list[str]:
        """Respondent groups present, in instrument order."""
        present = set(self.frame["group"].unique())
        return [g for g in self.instrument.group_ids if g in present]

    @property
    def has_strata(self) -> bool:
        """True when a ``stratum`` column is present."""
        return "stratum" in self.frame.columns

    @property
    def has_clusters(self) -> bool:
        """True when a ``cluster`` column is present."""
        return "cluster" in self.frame.columns

    def items(self, group: str | None = None, factor: str | None = None) -> pd.DataFrame:
        """Item columns (floats, NaN = missing) for the rows of a group, optionally one factor.

        With a group, only the items that group is asked are returned; without
        one, all items of the factor (or instrument).
        """
        inst = self.instrument
        if factor is not None:
            cols = list(inst.factor_items(factor, group=group))
        elif group is not None:
            cols = list(inst.items_for(group))
        else:
            cols = list(inst.item_ids)
        rows = self.frame if group is None else self.frame[self.frame["group"] == group]
        return rows[cols]

    def subset(self, mask: Any = None, **equals: Any) -> "SurveyData":
        """Rows selected by a boolean mask and/or column equalities, as a new ``SurveyData``.

        Values in ``equals`` may be scalars or lists of accepted values.
        Exclusions of the retained respondents are kept.
        """
        keep = np.ones(len(self.frame), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        for col, val in equals.items():
            vals = val if isinstance(val, (list, tuple, set)) else [val]
            keep &= self.frame[col].isin(list(vals)).to_numpy()
        frame = self.frame.loc[keep].reset_index(drop=True)
        ids = set(frame["respondent_id"])
        exc = self.exclusions[self.exclusions["respondent_id"].isin(ids)].reset_index(drop=True)
        return self.with_frame(frame, exclusions=exc)

    def with_frame(self, frame: pd.DataFrame, **changes: Any) -> "SurveyData":
        """A copy with another respondent table (e.g. new weights); the fingerprint is recomputed."""
        new = replace(self, frame=frame, **changes)
        new.__dict__.pop("_fingerprint", None)
        return new

    def __repr__(self) -> str:
        f = self.frame
        return (f"SurveyData(source={self.source!r}, respondents={len(f)}, countries={f['country'].nunique()}, "
                f"iterations={self.iterations}, groups={self.groups}, exclusions={len(self.exclusions)}, "
                f"instrument={self.instrument.name!r})")


def load(source: Any, instrument: Instrument | None = None, *, strict: bool = True, **kwargs: Any) -> SurveyData:
    """Read and validate a survey (placeholder signature; implemented in the foundation work)."""
    raise NotImplementedError("cips_stats.load is being implemented.")
