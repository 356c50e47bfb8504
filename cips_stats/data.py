"""Validated survey data: :class:`SurveyData`, :func:`load`, :func:`validate` and :func:`write_raw`.

A :class:`SurveyData` holds the recoded respondent table (one row per
respondent; item answers as floats on ``1..points`` with reverse keys applied
and non-substantive codes set to missing), its :class:`~cips_stats.Instrument`,
an ``exclusions`` table that accounts for every value that was not used, and a
fingerprint of the content.

Row numbers
-----------
Everywhere in this module (``Problem.row``, the ``row`` column of the
exclusions and coercions tables) a row number is the **1-based data record
number**: the first respondent record is row 1, the header is not counted, and
the same numbering is used for files and DataFrames (row ``n`` is
``frame.iloc[n - 1]``).  In a CSV file without embedded line breaks, row ``n``
is on text line ``n + 1``; in Excel, on sheet row ``n + 1``.

Examples
--------
>>> import pandas as pd
>>> import cips_stats as cs
>>> inst = cs.Instrument.default()
>>> raw = pd.DataFrame({"respondent_id": ["a", "b"], "country": ["X", "X"], "iteration": [1, 1],
...                     "group": ["private", "private"]})
>>> for item in inst.items_for("private"):
...     raw[item] = [4, 8]
>>> data = cs.load(raw, instrument=inst)
>>> data.frame.loc[0, "LC3"], data.frame.loc[1, "LC1"]     # LC3 is reverse-keyed: 4 -> 2
(np.float64(2.0), np.float64(nan))
>>> ex = data.exclusions
>>> int(ex.loc[0, "row"]), ex.loc[0, "column"], ex.loc[0, "rule"], ex.loc[0, "reason"]
(2, 'LC1', 'missing_code', 'dont_know')
>>> data.items(group="private", factor="leadership").columns.tolist()
['LC1', 'LC2', 'LC3', 'LC6']
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ._io import FORMATS, read_table, write_table
from .errors import DataError, Problem
from .instrument import Instrument
from .results import Provenance, Result, fingerprint_frame

__all__ = [
    "SurveyData", "load", "validate", "write_raw", "ValidationReport",
    "EXCLUSION_COLUMNS", "KEY_COLUMNS", "RULES",
]

#: Columns of the exclusions (and coercions) table. ``scope`` is ``"row"`` when the whole
#: record was set aside, ``"value"`` for one cell, ``"column"`` for a whole column.
EXCLUSION_COLUMNS = ["row", "respondent_id", "column", "value", "rule", "reason", "scope"]
#: Design and key columns of the respondent table (``stratum``/``cluster`` optional).
KEY_COLUMNS = ["respondent_id", "country", "iteration", "group", "weight"]
_REQUIRED = ["respondent_id", "country", "iteration", "group"]

#: Every rule the loader applies: ``rule -> (scope, kind, message)``.
#: ``kind`` is ``"fatal"`` (no table can be built: raised even with ``strict=False``),
#: ``"problem"`` (raised with ``strict=True``; set aside with ``strict=False``),
#: ``"recode"`` (an expected conversion to missing, always recorded, never an error) or
#: ``"note"`` (reported, not an error).
RULES: dict[str, tuple[str, str, str]] = {
    "source_type": ("table", "fatal", "The data must be a file path or a pandas DataFrame."),
    "file_format": ("table", "fatal", "Unknown file extension."),
    "file_not_found": ("table", "fatal", "The file does not exist."),
    "file_unreadable": ("table", "fatal", "The file cannot be read."),
    "csv_record_length": ("table", "fatal", "A CSV record has more or fewer fields than the header."),
    "table_empty": ("table", "fatal", "The table has no data rows."),
    "column_duplicate": ("table", "fatal", "Two columns have the same name."),
    "column_missing": ("table", "fatal", "A required column is missing."),
    "argument_invalid": ("table", "fatal", "An argument of load() is invalid."),
    "item_column_missing": ("column", "problem", "An item asked of a group present in the data has no column."),
    "respondent_id_missing": ("row", "problem", "The respondent id is blank."),
    "respondent_id_duplicate": ("row", "problem", "The respondent id was already used by an earlier row."),
    "country_missing": ("row", "problem", "The country is blank."),
    "group_missing": ("row", "problem", "The respondent group is blank."),
    "group_unknown": ("row", "problem", "The respondent group is not declared by the instrument."),
    "iteration_missing": ("row", "problem", "The iteration is blank."),
    "iteration_invalid": ("row", "problem", "The iteration is not a positive integer."),
    "iteration_unknown_label": ("row", "problem", "The iteration label is not in the iterations= mapping."),
    "weight_missing": ("row", "problem", "The weight is blank."),
    "weight_non_numeric": ("row", "problem", "The weight is not a number."),
    "weight_nonfinite": ("row", "problem", "The weight is not finite."),
    "weight_zero": ("row", "problem", "The weight is zero."),
    "weight_negative": ("row", "problem", "The weight is negative."),
    "stratum_missing": ("row", "problem", "The stratum is blank."),
    "cluster_missing": ("row", "problem", "The cluster is blank."),
    "row_duplicate": ("row", "problem", "The row repeats an earlier row in every column except respondent_id."),
    "no_answers": ("row", "problem", "The respondent left every item of the questionnaire blank."),
    "code_non_numeric": ("value", "problem", "The answer code is not a number."),
    "code_not_integer": ("value", "problem", "The answer code is not a whole number."),
    "code_out_of_scale": ("value", "problem", "The answer code is outside the scale and is not a declared missing code."),
    "item_not_asked": ("value", "problem", "The item is not asked of the respondent's group but holds a value."),
    "demographic_unknown": ("value", "problem", "The demographic value is not one of the categories the instrument declares."),
    "demographic_not_asked": ("value", "problem", "The demographic is not asked of the respondent's group but holds a value."),
    "missing_code": ("value", "recode", "A declared non-substantive code (e.g. don't know, refused), set to missing."),
    "user_missing": ("value", "recode", "A user-missing code declared in the SPSS file, set to missing."),
    "unknown_column": ("column", "note", "A column the instrument does not declare; kept aside in SurveyData.aside."),
    "text_whitespace": ("value", "coercion", "Text with surrounding white space, read without it."),
    "group_label": ("column", "coercion", "A labelled group code whose label is a group's label, read as that group's id."),
}


def _empty_exclusions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in EXCLUSION_COLUMNS}).astype(
        {"row": "Int64"})


@dataclass(frozen=True)
class SurveyData:
    """A validated, recoded respondent table with its instrument.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per respondent: ``respondent_id`` (str), ``country`` (str),
        ``iteration`` (int), ``group`` (str), ``weight`` (float > 0), optional
        ``stratum`` and ``cluster`` (str), demographic columns (str), and one
        float column per instrument item in instrument order (NaN when missing
        for any reason; the reason is in ``exclusions``).
    instrument : Instrument
        The instrument the items follow.
    exclusions : pandas.DataFrame
        Every value, row or column that was not used, with ``row`` (1-based data
        record number), ``respondent_id``, ``column``, ``value`` (as read),
        ``rule``, ``reason`` and ``scope`` (``"row"``, ``"value"`` or ``"column"``).
    source : str
        Where the data came from (file path or ``"<DataFrame>"``).
    aside : pandas.DataFrame, optional
        Unknown columns (with ``respondent_id``) of the used rows, kept aside.
    n_input_rows : int, optional
        Number of data records read.
    value_labels : dict
        ``{column: {code: label}}`` declared in the file (SPSS/Stata); empty otherwise.
    coercions : pandas.DataFrame, optional
        Values accepted after a conversion that changed their text (e.g. ``" 4 "``
        read as code 4), same columns as ``exclusions``.
    design : cips_stats.estimate.Design, optional
        The survey design (weight, strata, clusters, fpc, calibration) that
        estimators use by default; ``None`` means the data model's default
        (the ``weight``, ``stratum`` and ``cluster`` columns when present).
        Set by :mod:`cips_stats.weighting` and :meth:`with_design`.
    """

    frame: pd.DataFrame
    instrument: Instrument
    exclusions: pd.DataFrame = field(default_factory=_empty_exclusions)
    source: str = "<DataFrame>"
    aside: pd.DataFrame | None = None
    n_input_rows: int | None = None
    value_labels: dict = field(default_factory=dict)
    coercions: pd.DataFrame = field(default_factory=_empty_exclusions)
    design: Any = None

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

    @property
    def excluded_rows(self) -> list[int]:
        """Row numbers (1-based data records) set aside as a whole, sorted."""
        ex = self.exclusions
        rows = ex.loc[ex["scope"] == "row", "row"].dropna().astype(int)
        return sorted(set(rows.tolist()))

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
        changes: dict[str, Any] = {"exclusions": exc}
        if self.aside is not None and "respondent_id" in self.aside.columns:
            changes["aside"] = self.aside[self.aside["respondent_id"].isin(ids)].reset_index(drop=True)
        return self.with_frame(frame, **changes)

    def with_frame(self, frame: pd.DataFrame, **changes: Any) -> "SurveyData":
        """A copy with another respondent table (e.g. new weights); the fingerprint is recomputed."""
        new = replace(self, frame=frame, **changes)
        new.__dict__.pop("_fingerprint", None)
        return new

    def with_design(self, design: Any) -> "SurveyData":
        """A copy carrying another survey design (a ``cips_stats.estimate.Design``); the frame is shared."""
        return replace(self, design=design)

    def __repr__(self) -> str:
        f = self.frame
        return (f"SurveyData(source={self.source!r}, respondents={len(f)}, countries={f['country'].nunique()}, "
                f"iterations={self.iterations}, groups={self.groups}, exclusions={len(self.exclusions)}, "
                f"instrument={self.instrument.name!r})")


# =============================================================================== parsing helpers
#: Text accepted as a number: optional sign, digits with an optional decimal part, optional exponent
#: ("4", "4.0", "+4", ".5", "1e1"). "nan", "inf", "1_000", "4,5" are not numbers.
_NUMBER_TEXT = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


def _parse_numbers(s: pd.Series, distinct: tuple | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse a column of codes without silent coercion.

    Returns ``(num, blank, non_numeric, whitespace)``: ``num`` float64 (NaN when
    blank or not a number), ``blank`` (NaN/None/empty text), ``non_numeric``
    (a value that is not a number: text such as ``"abc"`` or ``"NA"``, a boolean),
    ``whitespace`` (text whose surrounding white space was removed to read it).
    ``distinct``: the column's :func:`_factorize` when already known (text columns).
    """
    n = len(s)
    dt = s.dtype
    false = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(dt):
        blank = s.isna().to_numpy()
        return np.full(n, np.nan), blank, ~blank, false
    if pd.api.types.is_numeric_dtype(dt):
        num = s.to_numpy(dtype=float, na_value=np.nan)
        return num, np.isnan(num), false, false
    if isinstance(dt, pd.StringDtype):
        return _by_distinct(s, _parse_text, distinct)
    if isinstance(dt, pd.CategoricalDtype):
        s = s.astype(object)
    obj = s.astype(object)
    kind = pd.api.types.infer_dtype(obj, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        num = pd.to_numeric(obj, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        blank = obj.isna().to_numpy()
        return num, blank, false.copy() | (~blank & np.isnan(num)), false
    if kind != "string":  # mixed types: numbers, text, booleans, other objects in one column
        is_str = obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        is_bool = obj.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        na = obj.isna().to_numpy()
        is_num = obj.map(lambda v: isinstance(v, (int, float, np.integer, np.floating))
                         and not isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        num = np.full(n, np.nan)
        if is_num.any():
            num[is_num] = np.asarray(obj[is_num].tolist(), dtype=float)
        blank = na.copy()
        nonnum = ~na & ~is_num & ~is_str  # booleans and other objects
        ws = false.copy()
        if is_str.any():
            tnum, tblank, tnon, tws = _parse_numbers(pd.Series(obj[is_str].tolist(), dtype=object))
            num[is_str] = tnum
            blank[is_str] = tblank
            nonnum[is_str] = tnon
            ws[is_str] = tws
        nonnum |= is_bool & ~na
        return num, blank, nonnum, ws
    return _by_distinct(obj, _parse_text, distinct)


def _by_distinct(s: pd.Series, parse: Any, distinct: tuple | None = None) -> tuple[np.ndarray, ...]:
    """Apply a parser of text values to the distinct values of a text column and expand by the codes.

    ``s`` holds only text and blanks (NaN/None). ``distinct`` is ``(codes, uniques)`` of
    :func:`pandas.factorize` (blank = ``-1``), computed here when not given. ``parse`` takes a
    list of str or None and returns arrays over it. Answer codes take a handful of distinct values,
    so the text work (white space, the number pattern, conversion) runs a handful of times per column.
    """
    codes, uniq = _factorize(s) if distinct is None else distinct
    values = np.asarray(uniq, dtype=object).tolist() + [None]  # the last one stands for a blank
    codes = np.where(codes < 0, len(uniq), codes)
    return tuple(part[codes] for part in parse(values))


def _factorize(s: pd.Series) -> tuple[np.ndarray, Any]:
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), uniq


_NUMBER_RE = re.compile(_NUMBER_TEXT)


def _parse_text(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The text branch of :func:`_parse_numbers`: ``values`` are str or None (blank)."""
    k = len(values)
    num = np.full(k, np.nan)
    blank = np.zeros(k, dtype=bool)
    nonnum = np.zeros(k, dtype=bool)
    ws = np.zeros(k, dtype=bool)
    for j, v in enumerate(values):
        if v is None:
            blank[j] = True
            continue
        t = v.strip()
        ws[j] = t != v
        if t == "":
            blank[j] = True
        elif _NUMBER_RE.fullmatch(t):
            num[j] = float(t)
        else:
            nonnum[j] = True
    return num, blank, nonnum, ws


def _label_text(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The text branch of :func:`_parse_labels`: ``values`` are str or None (blank)."""
    k = len(values)
    out = np.empty(k, dtype=object)
    blank = np.zeros(k, dtype=bool)
    ws = np.zeros(k, dtype=bool)
    for j, v in enumerate(values):
        t = None if v is None else v.strip()
        ws[j] = v is not None and t != v
        blank[j] = not t
        out[j] = t or None
    return out, blank, ws


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _parse_labels(s: pd.Series, distinct: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Key/label column -> (object array of str or None, blank, whitespace-stripped).

    Whole numbers (``1``, ``1.0``, ``"1"``) give ``"1"``, so that an id read as a
    number from one format and as text from another is the same id.
    """
    n = len(s)
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        vals = s.astype(object).to_numpy()
        out = np.array([None if pd.isna(v) else str(v) for v in vals], dtype=object)
        blank = np.array([v is None for v in out], dtype=bool)
        return out, blank, np.zeros(n, dtype=bool)
    if pd.api.types.is_integer_dtype(dt):
        na = s.isna().to_numpy()
        out = np.empty(n, dtype=object)
        out[~na] = s[~na].astype("int64").astype(str).to_numpy(dtype=object)
        out[na] = None
        return out, na, np.zeros(n, dtype=bool)
    if pd.api.types.is_float_dtype(dt):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        na = np.isnan(v)
        out = np.empty(n, dtype=object)
        out[:] = None
        idx = np.flatnonzero(~na)
        uniq, inv = np.unique(v[idx], return_inverse=True)  # format each distinct number once
        out[idx] = np.array([_fmt_number(x) for x in uniq] + [""], dtype=object)[:-1][inv]
        return out, na, np.zeros(n, dtype=bool)
    obj = s if isinstance(dt, pd.StringDtype) else s.astype(object)
    kind = "string" if isinstance(dt, pd.StringDtype) else pd.api.types.infer_dtype(obj, skipna=True)
    if kind == "string" or kind == "empty":
        if kind == "empty":
            return np.full(n, None, dtype=object), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
        return _by_distinct(obj, _label_text, distinct)
    out = np.empty(n, dtype=object)
    blank = np.zeros(n, dtype=bool)
    ws = np.zeros(n, dtype=bool)
    for i, v in enumerate(obj.tolist()):  # mixed-type column: rare path
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            blank[i] = True
            out[i] = None
        elif isinstance(v, str):
            t = v.strip()
            ws[i] = t != v
            blank[i] = t == ""
            out[i] = None if blank[i] else t
        elif isinstance(v, (float, np.floating)) and not isinstance(v, bool):
            out[i] = _fmt_number(v) if np.isfinite(v) else str(v)
        else:
            out[i] = str(v)
    return out, blank, ws


# =============================================================================== findings
class _Findings:
    """Collects findings as vectorised parts; renders problems and exclusions at the end."""

    def __init__(self, source: str, ids: np.ndarray | None):
        self.source = source
        self.ids = ids
        self.parts: list[dict[str, Any]] = []
        self.fatal: list[Problem] = []

    def add(self, rule: str, rows: np.ndarray, column: str | None, values: Any,
            reason: Any = None) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        scope, kind, message = RULES[rule]
        if np.ndim(values) == 0 or values is None:
            vals = np.empty(rows.size, dtype=object)
            vals[:] = [values] * rows.size if rows.size else []
        else:
            vals = np.asarray(values, dtype=object)
        if reason is None:
            reasons = np.full(rows.size, message, dtype=object)
        elif isinstance(reason, str):
            reasons = np.full(rows.size, reason, dtype=object)
        else:
            reasons = np.asarray(reason, dtype=object)
        self.parts.append({"rule": rule, "rows": rows, "column": column, "values": vals,
                           "reasons": reasons, "scope": scope, "kind": kind})

    def add_fatal(self, rule: str, message: str, column: str | None = None, value: Any = None) -> None:
        self.fatal.append(Problem(rule=rule, message=message, file=self.source, column=column, value=value))

    def problem_rows(self) -> np.ndarray:
        rows = [p["rows"] for p in self.parts if p["kind"] == "problem" and p["scope"] == "row"]
        return np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)

    def problems(self) -> list[Problem]:
        out = list(self.fatal)
        probs = [p for p in self.parts if p["kind"] == "problem"]
        if not probs:
            return out
        # order by row, then column position of appearance, for a readable error
        recs = []
        for k, p in enumerate(probs):
            for r, v, why in zip(p["rows"].tolist(), p["values"].tolist(), p["reasons"].tolist()):
                recs.append((r if r >= 0 else -1, k, p["rule"], why, p["column"], v))
        recs.sort(key=lambda t: (t[0], t[1]))
        for r, _, rule, why, col, v in recs:
            out.append(Problem(rule=rule, message=why, file=self.source,
                               row=None if r < 0 else r + 1, column=col, value=_py(v)))
        return out

    def table(self, kinds: Iterable[str]) -> pd.DataFrame:
        kinds = set(kinds)
        parts = [p for p in self.parts if p["kind"] in kinds]
        if not parts:
            return _empty_exclusions()
        rows = np.concatenate([p["rows"] for p in parts])
        sizes = [p["rows"].size for p in parts]
        order = np.lexsort((np.arange(rows.size), np.where(rows >= 0, rows, -1)))  # by row, stable
        rows = rows[order]
        has_row = rows >= 0
        ids = np.empty(rows.size, dtype=object)
        ids[:] = None
        if self.ids is not None:
            ids[has_row] = self.ids[rows[has_row]]
        row_num = pd.array(np.where(has_row, rows + 1, 0), dtype="Int64")
        row_num[~has_row] = pd.NA

        def per_part(key: str) -> np.ndarray:
            labels = np.empty(len(parts), dtype=object)
            labels[:] = [p[key] for p in parts]
            return np.repeat(labels, sizes)[order]

        return pd.DataFrame({
            "row": row_num,
            "respondent_id": ids,
            "column": per_part("column"),
            "value": np.concatenate([p["values"] for p in parts])[order],
            "rule": per_part("rule"),
            "reason": np.concatenate([p["reasons"] for p in parts])[order],
            "scope": per_part("scope"),
        })


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


# =============================================================================== core
@dataclass
class _Outcome:
    data: SurveyData | None
    problems: list[Problem]
    n_rows: int
    source: str
    findings: _Findings | None
    missing_demographics: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _default_instrument() -> Instrument:
    return Instrument.default()  # immutable: safe to share between loads


def _resolve_instrument(instrument: Any) -> Instrument:
    if instrument is None:
        return _default_instrument()
    if isinstance(instrument, Instrument):
        return instrument
    if isinstance(instrument, (str, os.PathLike)):
        return Instrument.from_yaml(instrument)
    raise DataError("instrument= must be an Instrument, a YAML path or None.",
                    [Problem(rule="argument_invalid", message="instrument= must be an Instrument, a YAML path or None.",
                             column="instrument", value=type(instrument).__name__)])


def _iteration_map(iterations: Any, src: str) -> dict[str, int] | None:
    if iterations is None:
        return None
    if not isinstance(iterations, Mapping) or not iterations:
        raise DataError("iterations= must be a non-empty mapping of labels to positive integers.",
                        [Problem(rule="argument_invalid", message="iterations= must be a non-empty mapping.",
                                 file=src, column="iterations", value=repr(iterations))])
    out, bad = {}, []
    for k, v in iterations.items():
        ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and int(v) >= 1
        if not ok:
            bad.append(Problem(rule="argument_invalid", message="Each iteration must map to a positive integer.",
                               file=src, column="iterations", value=f"{k!r}: {v!r}"))
            continue
        key, _, _ = _parse_labels(pd.Series([k], dtype=object))
        out[key[0]] = int(v)
    if bad:
        raise DataError("iterations= is invalid.", bad)
    return out


def _load(source: Any, instrument: Any, *, iterations: Any = None, sheet: str | int = 0,
          encoding: str = "utf-8-sig", sep: str = ",") -> _Outcome:
    """Read and check everything; never raises for data problems (except bad arguments)."""
    inst = _resolve_instrument(instrument)
    try:
        raw = read_table(source, sheet=sheet, encoding=encoding, sep=sep)
    except DataError as exc:
        src = str(source) if isinstance(source, (str, os.PathLike)) else "<DataFrame>"
        return _Outcome(None, exc.problems, 0, src, None)
    src = raw.source
    iter_map = _iteration_map(iterations, src)
    df = raw.frame
    n = len(df)
    fnd = _Findings(src, None)

    # ---------------------------------------------------------------- table level
    cols = [str(c) for c in df.columns]
    dup_cols = sorted({c for c in cols if cols.count(c) > 1})
    for c in dup_cols:
        fnd.add_fatal("column_duplicate", f"The column name {c!r} occurs more than once.", column=c)
    if not dup_cols:
        df = df.set_axis(cols, axis=1)
    hint = ""
    if len(cols) == 1 and any(ch in cols[0] for ch in ";\t|"):
        hint = " The header is a single column holding ';', tab or '|': pass sep= to name the separator."
    for c in _REQUIRED:
        if c not in cols:
            fnd.add_fatal("column_missing", f"The required column {c!r} is missing.{hint}", column=c)
    if n == 0:
        fnd.add_fatal("table_empty", "The table has no data rows.")
    if fnd.fatal:
        return _Outcome(None, fnd.problems(), n, src, fnd)

    # ---------------------------------------------------------------- Stata extended missing (.a-.z)
    demo_names = [d.name for d in inst.demographics]
    for c, letters in raw.letter_missing.items():
        if c not in df.columns:
            continue
        obj = df[c].astype(object)
        m = obj.map(lambda v: isinstance(v, str) and v in letters).to_numpy(dtype=bool)
        if not m.any():
            continue
        rows = np.flatnonzero(m)
        shown = np.array(["." + str(v) for v in obj.to_numpy()[m]], dtype=object)
        if c in inst.item_ids or c in demo_names:
            lab = raw.value_labels.get(c, {})
            fnd.add("user_missing", rows, c, shown,
                    [f"user_missing: {lab.get(v[1:], 'Stata missing value ' + v)}" for v in shown])
        obj = obj.where(~m, None)
        # key/design columns: the blank is then reported by their own rule. A column of numbers
        # once the letters are blank is numeric again (so that its value labels apply).
        df[c] = obj.infer_objects() if not m.all() else obj

    # ---------------------------------------------------------------- SPSS/Stata labels
    labels = raw.value_labels
    for c in demo_names:  # SPSS user-missing codes of a demographic: missing, with their reason
        if raw.user_missing.get(c) and c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype):
            v = df[c].to_numpy(dtype=float, na_value=np.nan)
            um = np.zeros(n, dtype=bool)
            for lo, hi in raw.user_missing[c]:
                try:
                    with np.errstate(invalid="ignore"):
                        m = ~um & (v >= float(lo)) & (v <= float(hi))
                except (TypeError, ValueError):
                    continue
                if m.any():
                    lab = labels.get(c, {})
                    fnd.add("user_missing", np.flatnonzero(m), c, df[c].to_numpy(dtype=object)[m],
                            [f"user_missing: {lab.get(_py_code(x), 'declared missing in the file')}" for x in v[m]])
                    um |= m
            if um.any():
                df[c] = df[c].astype(float).where(~um, np.nan)
    coded: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # column -> (codes as read, labelled, coded)
    for c in ["country", "group", "stratum", "cluster", *demo_names]:
        if c in labels and c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype):
            lab = labels[c]
            coded_raw = df[c].to_numpy(dtype=object)
            v = df[c].to_numpy(dtype=float, na_value=np.nan)
            mapped = np.empty(n, dtype=object)
            mapped[:] = None
            for code, text in lab.items():
                if isinstance(code, (int, float)):
                    mapped[v == code] = text
            unl = np.isnan(v) == False  # noqa: E712
            unl &= np.array([m is None for m in mapped])
            if unl.any():  # codes without a label stay as their number (as text)
                mapped[unl] = [_fmt_number(x) for x in v[unl]]
            coded[c] = (coded_raw, ~np.isnan(v) & ~unl, ~np.isnan(v))
            df[c] = pd.Series(mapped, dtype=object)

    # ---------------------------------------------------------------- keys
    dist = _DistinctCache(df)
    ids, id_blank, id_ws = _parse_labels(df["respondent_id"], dist("respondent_id"))
    fnd.ids = ids
    rid_vals = df["respondent_id"].to_numpy(dtype=object)
    fnd.add("respondent_id_missing", np.flatnonzero(id_blank), "respondent_id", rid_vals[id_blank])
    _coerce(fnd, id_ws, "respondent_id", rid_vals)
    ids_s = pd.Series(ids, dtype=object)
    dup = ids_s.duplicated(keep="first").to_numpy() & ~id_blank
    if dup.any():
        first = pd.Series(np.arange(n)).groupby(ids_s.fillna("\x00blank")).transform("min").to_numpy()
        rows = np.flatnonzero(dup)
        fnd.add("respondent_id_duplicate", rows, "respondent_id", rid_vals[rows],
                [f"The respondent id {ids[r]!r} was already used by row {first[r] + 1}." for r in rows])

    keys: dict[str, np.ndarray] = {}
    for c, rule in (("country", "country_missing"), ("group", "group_missing")):
        vals, blank, ws = _parse_labels(df[c], dist(c))
        rawv = df[c].to_numpy(dtype=object)
        fnd.add(rule, np.flatnonzero(blank), c, rawv[blank])
        _coerce(fnd, ws, c, rawv)
        keys[c] = vals
    grp, ambiguous, group_why = _group_labels(fnd, keys["group"], coded.get("group"), inst)
    keys["group"] = grp
    has_grp = pd.notna(pd.Series(grp, dtype=object)).to_numpy()
    known = pd.Series(grp, dtype=object).isin(list(inst.group_ids)).to_numpy() & has_grp & ~ambiguous
    unknown = ~known & has_grp
    shown_group = _as_read(df["group"], coded.get("group"))
    declared = f"({', '.join(inst.group_ids)})"
    fnd.add("group_unknown", np.flatnonzero(unknown), "group", shown_group[unknown],
            [group_why.get(r, f"The respondent group is not one the instrument declares {declared}.")
             for r in np.flatnonzero(unknown)])

    # iteration
    it_raw = df["iteration"].to_numpy(dtype=object)
    iteration = np.zeros(n, dtype=np.int64)
    if iter_map is not None:
        labs, blank, ws = _parse_labels(df["iteration"], dist("iteration"))
        _coerce(fnd, ws, "iteration", it_raw)
        fnd.add("iteration_missing", np.flatnonzero(blank), "iteration", it_raw[blank])
        mapped = np.array([iter_map.get(x, 0) if x is not None else 0 for x in labs], dtype=np.int64)
        bad = ~blank & (mapped == 0)
        fnd.add("iteration_unknown_label", np.flatnonzero(bad), "iteration", it_raw[bad],
                f"The iteration label is not one of {sorted(iter_map)} given in iterations=.")
        iteration = mapped
    else:
        num, blank, nonnum, ws = _parse_numbers(df["iteration"], dist("iteration"))
        _coerce(fnd, ws, "iteration", it_raw)
        fnd.add("iteration_missing", np.flatnonzero(blank), "iteration", it_raw[blank])
        with np.errstate(invalid="ignore"):
            good = ~blank & ~nonnum & np.isfinite(num) & (num >= 1) & (num == np.floor(num)) & (num < 2**62)
        bad = ~blank & ~good
        fnd.add("iteration_invalid", np.flatnonzero(bad), "iteration", it_raw[bad],
                "The iteration is not a positive integer (use iterations= to map labels such as '2020-21').")
        iteration = np.where(good, np.nan_to_num(num, nan=0.0, posinf=0.0, neginf=0.0), 0).astype(np.int64)

    # weight
    if "weight" in df.columns:
        w_raw = df["weight"].to_numpy(dtype=object)
        w, blank, nonnum, ws = _parse_numbers(df["weight"], dist("weight"))
        _coerce(fnd, ws, "weight", w_raw)
        fnd.add("weight_missing", np.flatnonzero(blank), "weight", w_raw[blank])
        fnd.add("weight_non_numeric", np.flatnonzero(nonnum), "weight", w_raw[nonnum])
        valid = ~blank & ~nonnum
        nonfin = valid & ~np.isfinite(w)
        fnd.add("weight_nonfinite", np.flatnonzero(nonfin), "weight", w_raw[nonfin])
        with np.errstate(invalid="ignore"):
            zero = valid & (w == 0)
            neg = valid & np.isfinite(w) & (w < 0)
        fnd.add("weight_zero", np.flatnonzero(zero), "weight", w_raw[zero])
        fnd.add("weight_negative", np.flatnonzero(neg), "weight", w_raw[neg])
        weight = w.astype(float)
    else:
        weight = np.ones(n, dtype=float)

    design: dict[str, np.ndarray] = {}
    for c in ("stratum", "cluster"):
        if c in df.columns:
            vals, blank, ws = _parse_labels(df[c], dist(c))
            rawv = df[c].to_numpy(dtype=object)
            fnd.add(f"{c}_missing", np.flatnonzero(blank), c, rawv[blank])
            _coerce(fnd, ws, c, rawv)
            design[c] = vals
    demos: dict[str, np.ndarray] = {}
    demo_blank: dict[str, np.ndarray] = {}
    for dm in inst.demographics:
        if dm.name in df.columns:
            demos[dm.name], demo_blank[dm.name] = _check_demographic(fnd, dm, df[dm.name], dist(dm.name),
                                                                     coded.get(dm.name), grp, known)

    # ---------------------------------------------------------------- items
    item_ids = list(inst.item_ids)
    groups_present = [g for g in inst.group_ids if (known & (grp == g)).any()] if n else []
    asked_any = {i for g in groups_present for i in inst.items_for(g)}
    for i in item_ids:
        if i in asked_any and i not in df.columns:
            fnd.add("item_column_missing", np.array([-1]), i, None,
                    f"The item {i!r} is asked of a group present in the data but the column is missing.")
    pts = inst.scale.points
    miss_codes = {int(k): str(v) for k, v in inst.scale.missing.items()}
    # asked matrix by group
    gidx = np.full(n, -1, dtype=np.int64)
    for k, g in enumerate(inst.group_ids):
        gidx[known & (grp == g)] = k
    asked_tab = np.array([[g in inst.item(i).groups for i in item_ids] for g in inst.group_ids], dtype=bool)
    X = np.full((n, len(item_ids)), np.nan)
    answered = np.zeros(n, dtype=bool)   # any non-blank code in an asked item
    for j, i in enumerate(item_ids):
        if i not in df.columns:
            continue
        col = df[i]
        rawv = None
        fact = dist(i)
        num, blank, nonnum, ws = _parse_numbers(col, fact)

        def raw_at(mask: np.ndarray) -> np.ndarray:
            nonlocal rawv
            if fact is not None:  # the values as read, from the distinct values (no full conversion)
                codes, uniq = fact
                return np.append(np.asarray(uniq, dtype=object), np.nan)[codes[mask]]
            if rawv is None:
                rawv = col.to_numpy(dtype=object)
            return rawv[mask]

        if ws.any():
            _coerce(fnd, ws, i, col.to_numpy(dtype=object))
        asked = np.zeros(n, dtype=bool)
        asked[gidx >= 0] = asked_tab[gidx[gidx >= 0], j]
        present = ~blank
        not_asked = present & ~asked & (gidx >= 0)
        check = present & ~not_asked
        answered |= present & asked
        if not_asked.any():
            fnd.add("item_not_asked", np.flatnonzero(not_asked), i, raw_at(not_asked),
                    f"The item {i!r} is not asked of this respondent's group but holds a value.")
        bad_text = check & nonnum
        if bad_text.any():
            fnd.add("code_non_numeric", np.flatnonzero(bad_text), i, raw_at(bad_text))
        isnum = check & ~nonnum
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(num)
            whole = finite & (num == np.floor(num))
        notint = isnum & finite & ~whole
        if notint.any():
            fnd.add("code_not_integer", np.flatnonzero(notint), i, raw_at(notint))
        cand = isnum & (whole | ~finite)
        with np.errstate(invalid="ignore"):
            in_scale = cand & finite & (num >= 1) & (num <= pts)
        rest = cand & ~in_scale
        handled = np.zeros(n, dtype=bool)
        for code, why in miss_codes.items():
            m = rest & (num == code)
            if m.any():
                fnd.add("missing_code", np.flatnonzero(m), i, raw_at(m), why)
                handled |= m
        for lo, hi in raw.user_missing.get(i, []):
            try:
                with np.errstate(invalid="ignore"):
                    m = rest & ~handled & (num >= float(lo)) & (num <= float(hi))
            except (TypeError, ValueError):
                continue
            if m.any():
                lab = raw.value_labels.get(i, {})
                reasons = [f"user_missing: {lab.get(_py_code(x), 'declared missing in the file')}" for x in num[m]]
                fnd.add("user_missing", np.flatnonzero(m), i, raw_at(m), reasons)
                handled |= m
        oos = rest & ~handled
        if oos.any():
            fnd.add("code_out_of_scale", np.flatnonzero(oos), i, raw_at(oos),
                    f"The answer code is outside the scale 1..{pts} and is not a declared missing code "
                    f"({', '.join(f'{k}={v}' for k, v in miss_codes.items()) or 'none'}).")
        vals = np.where(in_scale, num, np.nan)
        if inst.item(i).reverse:
            vals = pts + 1 - vals
        X[:, j] = vals

    # ---------------------------------------------------------------- row level
    has_group = gidx >= 0
    noans = has_group & ~answered
    fnd.add("no_answers", np.flatnonzero(noans), None, None)
    dup_rows = _duplicate_rows(df, dist)
    if dup_rows is not None:
        rows, first = dup_rows
        fnd.add("row_duplicate", rows, None, None,
                [f"The row repeats row {f + 1} in every column except respondent_id." for f in first])

    known_cols = set(_REQUIRED) | {"weight", "stratum", "cluster"} | set(demo_names) | set(item_ids)
    unknown_cols = [c for c in df.columns if c not in known_cols]
    for c in unknown_cols:
        fnd.add("unknown_column", np.array([-1]), c, None,
                "A column the instrument does not declare; kept aside in SurveyData.aside.")

    # ---------------------------------------------------------------- build
    bad_rows = fnd.problem_rows()
    keep = np.ones(n, dtype=bool)
    keep[bad_rows] = False
    frame = _build_frame(keep, ids, keys, iteration, weight, design, demos, inst, X, item_ids)
    aside = None
    if unknown_cols:
        aside = df.loc[keep, unknown_cols].reset_index(drop=True)
        aside.insert(0, "respondent_id", frame["respondent_id"].to_numpy())
    data = SurveyData(frame=frame, instrument=inst,
                      exclusions=fnd.table(["problem", "recode", "note"]), source=src, aside=aside,
                      n_input_rows=n, value_labels=dict(raw.value_labels),
                      coercions=fnd.table(["coercion"]))
    missing_demo = {d: int((b & keep).sum()) for d, b in demo_blank.items()}
    return _Outcome(data, fnd.problems(), n, src, fnd, missing_demo)


def _code(v: Any) -> Any:
    """A code for a message: whole floats as int (SPSS stores every number as a float)."""
    v = _py(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _as_read(s: pd.Series, coded: tuple | None) -> np.ndarray:
    """Values of a column as read: the code, where an SPSS/Stata label replaced it."""
    out = s.to_numpy(dtype=object).copy()
    if coded is not None:
        out[coded[2]] = coded[0][coded[2]]
    return out


def _group_labels(fnd: _Findings, grp: np.ndarray, coded: tuple | None, inst: Instrument
                  ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Labelled group codes (SPSS/Stata): a label that is one group's id or label names that group.

    Returns the group column with labels read as group ids, the rows whose label names more
    than one group (ambiguous: a problem) and a message for each row whose label names no group.
    Each label read as another text is recorded once per code (rule ``group_label``).
    """
    n = len(grp)
    ambiguous = np.zeros(n, dtype=bool)
    why: dict[int, str] = {}
    if coded is None:
        return grp, ambiguous, why
    codes, labelled, _ = coded
    names: dict[str, set[str]] = {}
    for g in inst.groups:
        names.setdefault(g.id, set()).add(g.id)
        if g.label:
            names.setdefault(g.label, set()).add(g.id)
    grp = grp.copy()
    gs = pd.Series(grp, dtype=object)
    declared = ", ".join(f"{g.id} = {g.label!r}" if g.label else g.id for g in inst.groups)
    for text in pd.unique(gs[labelled & gs.notna().to_numpy()]):
        m = labelled & (gs == text).to_numpy()
        ids = names.get(text, set())
        rows = np.flatnonzero(m)
        if len(ids) == 1:
            gid = next(iter(ids))
            if gid != text:
                grp[m] = gid
                for code in pd.unique(pd.Series(codes[m], dtype=object)):
                    fnd.add("group_label", np.array([-1]), "group", code,
                            f"The code {_code(code)!r} is labelled {text!r}, the label of group {gid!r}: "
                            f"read as {gid!r}.")
            continue
        for r in rows:
            code = _code(codes[r])
            if ids:
                ambiguous[r] = True
                why[r] = (f"The code {code!r} is labelled {text!r}, which names more than one group "
                          f"({', '.join(sorted(ids))}): ambiguous.")
            else:
                why[r] = (f"The code {code!r} is labelled {text!r}, which is neither the id nor the label of "
                          f"a group the instrument declares ({declared}).")
    return grp, ambiguous, why


def _check_demographic(fnd: _Findings, dm: Any, col: pd.Series, distinct: tuple | None, coded: tuple | None,
                       grp: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check one demographic column against its declared categories and groups.

    A value in a respondent whose (known) group is not asked the demographic is
    ``demographic_not_asked``; any other value outside the declared categories is
    ``demographic_unknown`` (an SPSS/Stata code is read as its label first). Both are set
    aside (missing, with the reason) when not strict. Returns the values (str or None) and the
    blank rows of respondents who are asked it (allowed; counted).
    """
    name = dm.name
    vals, blank, ws = _parse_labels(col, distinct)
    rawv = col.to_numpy(dtype=object)
    _coerce(fnd, ws, name, rawv)
    shown = _as_read(col, coded)
    present = ~blank
    gs = pd.Series(grp, dtype=object)
    if dm.groups:  # no groups declared: asked of every group
        asked = known & gs.isin(list(dm.groups)).to_numpy()
    else:
        asked = known.copy()
    not_asked = present & known & ~asked
    rows = np.flatnonzero(not_asked)
    fnd.add("demographic_not_asked", rows, name, shown[not_asked],
            [f"The demographic {name!r} is not asked of group {grp[r]!r} (only of {', '.join(dm.groups)}) "
             f"but holds a value." for r in rows])
    outside = np.zeros(len(col), dtype=bool)
    if dm.categories:
        cats = list(dm.categories)
        outside = present & ~not_asked & ~pd.Series(vals, dtype=object).isin(cats).to_numpy()
        allowed = ", ".join(repr(c) for c in cats)
        rows = np.flatnonzero(outside)
        none = np.zeros(len(col), dtype=bool)
        labelled, is_code = (coded[1], coded[2]) if coded is not None else (none, none)
        fnd.add("demographic_unknown", rows, name, shown[outside],
                [(f"The code {_code(shown[r])!r} is labelled {vals[r]!r}, which is" if labelled[r] else
                  f"The code {_code(shown[r])!r} (no value label) is" if is_code[r] else
                  f"The value {vals[r]!r} is") + f" not one of the categories declared for {name!r} ({allowed})."
                 for r in rows])
    set_aside = not_asked | outside
    if set_aside.any():
        vals = vals.copy()
        vals[set_aside] = None
    return vals, blank & asked


def _py_code(x: float) -> Any:
    return int(x) if float(x).is_integer() else float(x)


def _coerce(fnd: _Findings, ws: np.ndarray, column: str, rawv: np.ndarray) -> None:
    if ws.any():
        fnd.add("text_whitespace", np.flatnonzero(ws), column, rawv[ws],
                "Text with surrounding white space, read without it.")


def _duplicate_rows(df: pd.DataFrame, dist: "_DistinctCache | None" = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows identical to an earlier row in every column except respondent_id (and that earlier row).

    Each column becomes 64-bit words that are equal exactly when the values are equal: the codes
    of its distinct values for text and mixed columns (blanks equal to each other), the bits of
    the numbers for numeric columns (one NaN). A linear hash of the words finds candidate rows;
    a candidate is a duplicate only when all its words equal those of the earlier row (exact).
    Values of different types are different (``1``, ``"1"`` and ``True``).
    """
    rest = [c for c in df.columns if c != "respondent_id"]
    n = len(df)
    if not rest or n < 2:
        return None
    words = np.empty((n, len(rest)), dtype=np.uint64)
    for j, c in enumerate(rest):
        words[:, j] = _equality_words(df[c], dist.get(c) if dist is not None else None)
    mult = np.random.default_rng(20240601).integers(1, 2**63, size=len(rest), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    h = (words * mult).sum(axis=1, dtype=np.uint64)  # wraps modulo 2**64
    dup = pd.Series(h).duplicated(keep="first").to_numpy()
    if not dup.any():
        return None
    first = pd.Series(np.arange(n)).groupby(h).transform("min").to_numpy()
    rows = np.flatnonzero(dup)
    same = (words[rows] == words[first[rows]]).all(axis=1)
    if not same.any():
        return None
    return rows[same], first[rows[same]]


def _equality_words(s: pd.Series, known: tuple | None) -> np.ndarray:
    """64-bit words of a column, equal exactly when the values are equal (see :func:`_duplicate_rows`)."""
    if known is not None:
        return known[0].astype(np.uint64)  # codes; -1 (blank) wraps to 2**64 - 1: still one value
    dt = s.dtype
    if isinstance(dt, np.dtype) and dt.kind == "f":
        v = s.to_numpy(dtype=np.float64).copy()
        v[np.isnan(v)] = np.nan
        return v.view(np.uint64)
    if isinstance(dt, np.dtype) and dt.kind in "iu":
        return s.to_numpy().astype(np.int64).view(np.uint64)
    return _equality_codes(s).astype(np.uint64)


class _DistinctCache:
    """:func:`_factorize` of the text columns of a table, computed once per column on demand.

    ``cache(column)`` gives ``(codes, uniques)`` for a text column (pandas ``str`` dtype, or
    object holding only text and blanks) and None for any other column. The codes also serve the
    duplicate-row check (equal text, equal code).
    """

    def __init__(self, df: pd.DataFrame):
        self.df = df
        self.done: dict[str, tuple | None] = {}

    def __call__(self, column: str) -> tuple | None:
        if column not in self.done:
            s = self.df[column]
            out = None
            if isinstance(s.dtype, pd.StringDtype):
                out = _factorize(s)
            elif s.dtype == object:  # text only? (the distinct values say, without a scan in Python)
                codes, uniq = _factorize(s)
                if len(uniq) and all(type(v) is str for v in uniq):
                    out = codes, uniq
            self.done[column] = out
        return self.done[column]

    def get(self, column: str) -> tuple | None:
        return self.done.get(column)


def _equality_codes(s: pd.Series) -> np.ndarray:
    """Integer codes of a column's distinct values (``-1`` = blank) by exact equality."""
    if s.dtype == object:
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind not in ("string", "empty"):  # mixed types: 1, 1.0, "1" and True are four values
            s = s.map(lambda v: None if _is_na(v) else (type(_py(v)).__name__, repr(_py(v))))
    codes, _ = pd.factorize(s, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def _is_na(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # array-like objects in a cell
        return False


def _str_col(vals: np.ndarray) -> pd.Series:
    return pd.Series(vals, dtype=object).astype("str")


def _build_frame(keep: np.ndarray, ids: np.ndarray, keys: dict, iteration: np.ndarray, weight: np.ndarray,
                 design: dict, demos: dict, inst: Instrument, X: np.ndarray, item_ids: list[str]) -> pd.DataFrame:
    cols: dict[str, Any] = {
        "respondent_id": _str_col(ids[keep]),
        "country": _str_col(keys["country"][keep]),
        "iteration": pd.Series(iteration[keep], dtype="int64"),
        "group": _str_col(keys["group"][keep]),
        "weight": pd.Series(weight[keep], dtype="float64"),
    }
    for c in ("stratum", "cluster"):
        if c in design:
            cols[c] = _str_col(design[c][keep])
    for d in inst.demographics:
        if d.name in demos:
            cols[d.name] = _str_col(demos[d.name][keep])
    frame = pd.DataFrame(cols)
    items = pd.DataFrame(np.ascontiguousarray(X[keep]), columns=item_ids)
    return pd.concat([frame, items], axis=1)


# =============================================================================== public API
def load(source: Any, instrument: Instrument | str | os.PathLike | None = None, *, strict: bool = True,
         iterations: Mapping[Any, int] | None = None, sheet: str | int = 0,
         encoding: str = "utf-8-sig", sep: str = ",") -> SurveyData:
    """Read, validate and recode a survey into :class:`SurveyData`.

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        A respondent table of raw answer codes (as collected): a DataFrame or a
        CSV, XLSX, SPSS ``.sav``, Stata ``.dta`` or Parquet file (by extension).
    instrument : Instrument, str or path-like, optional
        The instrument (or a YAML file of one); default :meth:`Instrument.default`.
    strict : bool, default True
        With ``True`` any problem raises :class:`~cips_stats.DataError` listing
        every problem found. With ``False`` problems are recorded in
        ``exclusions`` and the offending value (or the whole row, for row-level
        problems) is set aside; only problems that leave no table to build
        (unreadable file, missing key column, duplicate column names, no rows)
        still raise.
    iterations : mapping, optional
        Labels of the ``iteration`` column mapped to positive integers, e.g.
        ``{"2020-21": 1, "2023": 2}``; without it iterations must be positive integers.
    sheet : str or int, default 0
        Excel sheet.
    encoding : str, default "utf-8-sig"
        CSV text encoding.
    sep : str, default ","
        CSV field separator (e.g. ``";"`` for files exported with a decimal comma).

    Returns
    -------
    SurveyData
        Columns in a stable order: ``respondent_id``, ``country``, ``iteration``,
        ``group``, ``weight``, [``stratum``, ``cluster``], demographics (instrument
        order), then every instrument item (instrument order) as float64.

    Raises
    ------
    DataError
        Listing every problem (file, row, column, value, rule, message).

    Notes
    -----
    Recoding: declared missing codes (default 8 = don't know, 9 = refused) and
    SPSS user-missing codes become NaN, each with an exclusions row giving its
    reason; reverse-keyed items are recoded once as ``points + 1 - code``.
    Accounting invariant: every input row is either in ``frame`` or in
    ``exclusions`` with ``scope="row"``; every non-blank item value of a used row
    is either used (non-NaN in ``frame``) or in ``exclusions`` with its column.
    Row numbers are 1-based data record numbers (header not counted), for files
    and DataFrames alike. Numeric text is accepted as its number (``"4"``,
    ``"4.0"``); text with surrounding white space (``" 4 "``) is accepted without
    it and recorded in ``coercions``; any other text is a ``code_non_numeric``
    problem; ``4.5`` is ``code_not_integer``. A demographic must hold one of its
    declared categories (``demographic_unknown``) and only respondents of the groups
    it is asked of may hold one (``demographic_not_asked``); blanks are allowed.
    SPSS/Stata codes of demographics and of ``group`` are read as their value labels;
    a group label that is one group's ``label`` is read as that group's id (recorded
    in ``coercions``). All rules: :data:`RULES` and ``methodology/data-validation.md``.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> raw = pd.DataFrame({"respondent_id": [1, 2], "country": "X", "iteration": 1,
    ...                     "group": "private", **{i: [2, 9] for i in cs.Instrument.default().items_for("private")}})
    >>> raw.loc[1, "LC1"] = 7
    >>> try:
    ...     cs.load(raw)
    ... except cs.DataError as e:
    ...     print(e.problems[0].describe())
    <DataFrame>, row 2, column 'LC1', value 7: The answer code is outside the scale 1..5 and is not a declared missing code (8=dont_know, 9=refused). [code_out_of_scale]
    >>> d = cs.load(raw, strict=False)
    >>> d.frame["LC1"].tolist(), d.exclusions["rule"].value_counts()["missing_code"]
    ([2.0, nan], np.int64(39))
    """
    out = _load(source, instrument, iterations=iterations, sheet=sheet, encoding=encoding, sep=sep)
    fatal = [p for p in out.problems if RULES.get(p.rule, ("", "fatal", ""))[1] == "fatal"]
    if out.data is None or (strict and out.problems) or fatal:
        probs = out.problems
        k = len(probs)
        raise DataError(f"The survey data {out.source} has {k} problem{'s' if k != 1 else ''}"
                        f"{'' if out.data is None or not strict else ' (use strict=False to set them aside)'}.",
                        probs)
    return out.data


@dataclass(frozen=True)
class ValidationReport(Result):
    """What :func:`validate` found: every problem, and what loading with ``strict=False`` would keep.

    Attributes
    ----------
    source : str
        The file or ``"<DataFrame>"``.
    ok : bool
        True when there is no problem (``load(..., strict=True)`` would succeed).
    problems : list of Problem
        Every problem (rule, message, file, row, column, value), rows 1-based.
    n_rows : int
        Data records read.
    n_used_rows : int
        Records ``load(..., strict=False)`` keeps (0 when the table cannot be built).
    exclusions : pandas.DataFrame
        The exclusions table of ``load(..., strict=False)``.
    coercions : pandas.DataFrame
        Values accepted after a recorded conversion.
    unknown_columns : tuple of str
        Columns the instrument does not declare (kept aside, not an error).
    missing_demographics : dict
        ``{demographic: count}``: kept respondents asked a demographic whose answer is blank
        (allowed, not an error; values set aside by a problem are not counted here).
    """

    source: str = ""
    ok: bool = True
    problems: list = field(default_factory=list)
    n_rows: int = 0
    n_used_rows: int = 0
    exclusions: pd.DataFrame = field(default_factory=_empty_exclusions)
    coercions: pd.DataFrame = field(default_factory=_empty_exclusions)
    unknown_columns: tuple = ()
    missing_demographics: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The problems as a table: file, row, column, value, rule, message."""
        return DataError("", self.problems).to_frame().astype({"row": "Int64"})

    def counts(self) -> pd.Series:
        """Number of problems by rule."""
        return pd.Series([p.rule for p in self.problems], dtype=object).value_counts()

    def to_text(self, limit: int = 200) -> str:
        """A plain-text report (every problem up to ``limit`` lines, then counts by rule)."""
        lines = [f"Validation of {self.source}: {'OK' if self.ok else 'PROBLEMS FOUND'}",
                 f"Rows read: {self.n_rows}; rows usable with strict=False: {self.n_used_rows}; "
                 f"problems: {len(self.problems)}."]
        if self.unknown_columns:
            lines.append("Unknown columns (kept aside): " + ", ".join(self.unknown_columns) + ".")
        ex = self.exclusions
        if len(ex):
            rec = ex[ex["rule"].isin(["missing_code", "user_missing"])]
            if len(rec):
                lines.append("Set to missing by declared codes: " + ", ".join(
                    f"{k}={v}" for k, v in rec["reason"].value_counts().sort_index().items()) + ".")
        co = self.coercions
        if len(co):
            k = int((co["rule"] == "text_whitespace").sum())
            if k:
                lines.append(f"Values read after removing white space: {k}.")
            for why in co.loc[co["rule"] == "group_label", "reason"]:
                lines.append(why)
        if any(self.missing_demographics.values()):
            lines.append("Blank demographics (allowed): " + ", ".join(
                f"{k}={v}" for k, v in self.missing_demographics.items()) + ".")
        if self.problems:
            lines.append("")
            lines.append("Problems by rule:")
            for rule, k in self.counts().items():
                lines.append(f"  {rule}: {k}")
            lines.append("")
            lines.append("Problems:")
            for p in self.problems[:limit]:
                lines.append("  - " + p.describe())
            if len(self.problems) > limit:
                lines.append(f"  ... and {len(self.problems) - limit} more (see .problems or .to_frame()).")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def validate(source: Any, instrument: Instrument | str | os.PathLike | None = None,
             **load_kwargs: Any) -> ValidationReport:
    """Check a survey file or table and report every problem, without raising for data problems.

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        As for :func:`load`.
    instrument : Instrument, str or path-like, optional
        As for :func:`load`.
    **load_kwargs
        ``iterations=``, ``sheet=``, ``encoding=``, ``sep=`` as for :func:`load` (``strict`` is ignored).

    Returns
    -------
    ValidationReport
        ``.ok``, ``.problems``, ``.n_rows``, ``.n_used_rows``, ``.exclusions``,
        ``.to_text()``, ``.to_frame()``.

    Notes
    -----
    Runs the same checks as :func:`load`; ``ok`` is True exactly when
    ``load(source, strict=True)`` would return. An invalid *argument*
    (e.g. a malformed ``iterations=``) still raises.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> raw = pd.DataFrame({"respondent_id": [1, 1], "country": "X", "iteration": [1, 0],
    ...                     "group": "private", **{i: [3, 4] for i in cs.Instrument.default().items_for("private")}})
    >>> rep = cs.data.validate(raw)
    >>> rep.ok, [(p.rule, p.row, p.column) for p in rep.problems]
    (False, [('respondent_id_duplicate', 2, 'respondent_id'), ('iteration_invalid', 2, 'iteration')])
    """
    load_kwargs.pop("strict", None)
    instrument = _resolve_instrument(instrument)
    out = _load(source, instrument, **load_kwargs)
    unknown = ()
    if out.data is not None:
        ex = out.data.exclusions
        unknown = tuple(ex.loc[ex["rule"] == "unknown_column", "column"].tolist())
    return ValidationReport(
        source=out.source, ok=not out.problems, problems=list(out.problems), n_rows=out.n_rows,
        n_used_rows=0 if out.data is None else len(out.data.frame),
        exclusions=_empty_exclusions() if out.data is None else out.data.exclusions,
        coercions=_empty_exclusions() if out.data is None else out.data.coercions,
        unknown_columns=unknown, missing_demographics=dict(out.missing_demographics),
        provenance=Provenance.build("validate", instrument=instrument,
                                    data_fingerprint=None if out.data is None else out.data.fingerprint,
                                    options={k: repr(v) for k, v in load_kwargs.items()}),
    )


def write_raw(frame: pd.DataFrame, path: str | os.PathLike, instrument: Instrument | None = None) -> Path:
    """Write a raw respondent table (answer codes as collected) to CSV, XLSX, SAV, DTA or Parquet.

    Parameters
    ----------
    frame : pandas.DataFrame
        Raw table: key columns, optional weight/design/demographics, item codes.
    path : str or path-like
        Output file; the format follows the extension (``.csv``, ``.xlsx``,
        ``.sav``, ``.dta``, ``.parquet``).
    instrument : Instrument, optional
        Gives SPSS/Stata value labels (scale labels and missing codes for items,
        categories for demographics), SPSS user-missing codes and column labels;
        default :meth:`Instrument.default`.

    Returns
    -------
    pathlib.Path
        The file written. ``load(path)`` gives the same fingerprint as ``load(frame)``.

    Notes
    -----
    SPSS/Stata: item codes are numeric with value labels; demographics whose
    values are all declared categories are written as codes ``1..k`` with the
    categories as value labels (read back as the category text); other text
    columns are written as text. The instrument's missing codes are declared as
    SPSS user-missing values.

    Examples
    --------
    >>> import tempfile, os, pandas as pd
    >>> import cips_stats as cs
    >>> raw = pd.DataFrame({"respondent_id": ["a", "b"], "country": "X", "iteration": 1,
    ...                     "group": "private", **{i: [5, 8] for i in cs.Instrument.default().items_for("private")}})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = cs.data.write_raw(raw, os.path.join(tmp, "s.sav"))
    ...     cs.load(p).fingerprint == cs.load(raw).fingerprint
    True
    """
    inst = _resolve_instrument(instrument)
    p = Path(path)
    out = frame.reset_index(drop=True).copy()
    fmt = FORMATS.get(p.suffix.lower())
    labels: dict[str, dict[int, str]] = {}
    missing: dict[str, list] = {}
    col_labels: dict[str, str] = {}
    numeric: list[str] = []
    if fmt in ("sav", "dta"):
        item_lab = {k + 1: lab for k, lab in enumerate(inst.scale.labels)}
        item_lab.update({int(k): str(v) for k, v in inst.scale.missing.items()})
        for it in inst.items:
            if it.id in out.columns:
                num, blank, nonnum, _ = _parse_numbers(out[it.id])
                if not nonnum.any():
                    out[it.id] = num
                    numeric.append(it.id)
                    labels[it.id] = item_lab
                    if inst.scale.missing:
                        missing[it.id] = sorted(int(k) for k in inst.scale.missing)
                if it.text:
                    col_labels[it.id] = it.text[:250]
        for d in inst.demographics:
            if d.name in out.columns and d.categories:
                vals, blank, _ = _parse_labels(out[d.name])
                cats = list(d.categories)
                if all(v in cats for v in vals[~blank]):
                    codes = np.full(len(out), np.nan)
                    codes[~blank] = [cats.index(v) + 1 for v in vals[~blank]]
                    out[d.name] = codes
                    numeric.append(d.name)
                    labels[d.name] = {k + 1: c for k, c in enumerate(cats)}
                if d.label:
                    col_labels[d.name] = d.label
    write_table(out, p, value_labels=labels, user_missing=missing if fmt == "sav" else None,
                column_labels=col_labels, numeric_columns=tuple(numeric))
    return p
