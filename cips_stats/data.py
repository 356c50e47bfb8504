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

from . import _parse as _p
from ._io import FORMATS, MAX_ROWS, read_table, write_table
from .errors import DataError, Problem
from .instrument import COLUMN_TARGETS, ColumnSpec, Instrument, _did_you_mean, _short, parse_columns
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
    # reading the file (raised by the readers; see cips_stats._io and cips_stats._xlsx)
    "file_encoding": ("table", "fatal", "The file's bytes do not decode in its (given or detected) encoding."),
    "table_too_large": ("table", "fatal", "The file holds more data records than max_rows."),
    "column_nested": ("table", "fatal", "A column holds nested values (lists, structs, maps)."),
    "xlsx_merged_header": ("table", "fatal", "Header cells of the Excel sheet are merged."),
    "value_unreadable": ("table", "fatal", "A column's values cannot be read at all."),
    "column_mapped_missing": ("table", "fatal", "A column named by columns= (or a flag) is not in the file."),
    "column_conflict": ("table", "fatal", "The file has a column that a mapping also fills from elsewhere."),
    "xlsx_formula_no_value": ("value", "problem", "An Excel formula cell without a saved value: its value is unknown."),
    "xlsx_merged_cell": ("value", "problem", "A cell inside a merged Excel range: the file stores no value for it."),
    "value_nested": ("value", "problem", "A cell holds a list, dict or array instead of one value."),
    "text_control": ("row", "problem", "A key, design or demographic text holds control characters."),
    "code_unlabelled": ("row", "problem", "A code without a value label in a labelled key or design column."),
    "weight_too_large": ("row", "problem", "The weight is above MAX_WEIGHT."),
    # coercions: values read after a recorded conversion (SurveyData.coercions)
    "number_format": ("value", "coercion", "A number written with a sign, exponent, leading zeros or a bare decimal mark."),
    "text_invisible": ("value", "coercion", "Invisible characters (zero-width space, BOM, soft hyphen...) removed."),
    "text_unicode": ("value", "coercion", "Text normalised to Unicode NFC."),
    "text_case_variant": ("value", "coercion", "A spelling that differs only in case, read as the usual spelling."),
    "code_label": ("value", "coercion", "A text answer equal to a scale or missing-code label, read as its code."),
    "csv_formula_escape": ("value", "coercion", "A leading ' (written against formula injection) removed."),
    "column_name": ("column", "coercion", "A column name read without invisible characters or white space."),
    # notes on what was read (SurveyData.notes): nothing set aside
    "encoding_detected": ("table", "info", "The CSV encoding was detected (not UTF-8)."),
    "separator_detected": ("table", "info", "The CSV separator was detected from the header."),
    "decimal_detected": ("column", "info", "A column's text numbers use a decimal comma (and no point)."),
    "column_mapped": ("column", "info", "A file column read as a respondent-table column (columns=, a flag)."),
    "column_constant": ("column", "info", "A respondent-table column given as one value for every row."),
    "respondent_id_generated": ("column", "info", "respondent_id numbers the rows."),
    "weight_extreme": ("value", "info", "A weight above WEIGHT_RATIO_MAX times its cell's median (Potter 1990)."),
    "weight_dominant": ("value", "info", "An extreme weight that carries at least half of the total weight of a "
                                         "cell of DISCLOSURE_MIN or more (warned: SmallCellWarning)."),
    "weight_lookalike": ("column", "info", "An unknown column that looks like a weight (not used)."),
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
    notes : pandas.DataFrame, optional
        What was read, with nothing set aside: the encoding or separator detected, column
        mappings and constants, generated ids, extreme weights, columns that look like a weight;
        same columns as ``exclusions``.
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
    notes: pd.DataFrame = field(default_factory=_empty_exclusions)

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
        if keep.all():      # every row: the tables are shared (copy-on-write), nothing is copied
            return self.with_frame(self.frame.reset_index(drop=True))
        frame = self.frame.loc[keep].reset_index(drop=True)
        ids = pd.Index(frame["respondent_id"].to_numpy(dtype=object))     # a hash table, built once
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
# The parsers live in cips_stats._parse; these names are kept for the writer and the tests.
_NUMBER_TEXT = _p.NUMBER_TEXT
_fmt_number = _p._fmt_number


def _parse_numbers(s: pd.Series, distinct: tuple | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(num, blank, non_numeric, whitespace)`` of a column (see :func:`cips_stats._parse.parse_numbers`)."""
    p = _p.parse_numbers(s, distinct)
    ws = np.zeros(len(s), dtype=bool)
    ws[p.note_rows("text_whitespace")] = True
    return p.value, p.blank, p.bad, ws


def _parse_labels(s: pd.Series, distinct: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, blank, whitespace)`` of a column (see :func:`cips_stats._parse.parse_labels`)."""
    p = _p.parse_labels(s, distinct)
    ws = np.zeros(len(s), dtype=bool)
    ws[p.note_rows("text_whitespace")] = True
    return p.value, p.blank, ws


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
        if values is None or isinstance(values, (str, bytes)) or np.ndim(values) == 0:
            vals = np.full(rows.size, None, dtype=object)
            vals[:] = [values] * rows.size if rows.size else []
        else:
            vals = _objects(values)
        if reason is None:
            reasons = np.full(rows.size, message, dtype=object)
        elif isinstance(reason, str):
            reasons = np.full(rows.size, reason, dtype=object)
        else:
            reasons = _objects(reason)
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

        obj = lambda a: pd.Series(a, dtype=object)  # noqa: E731 - no text-type inference over every row
        return pd.DataFrame({
            "row": row_num,
            "respondent_id": obj(ids),
            "column": obj(per_part("column")),
            "value": obj(np.concatenate([p["values"] for p in parts])[order]),
            "rule": obj(per_part("rule")),
            "reason": obj(np.concatenate([p["reasons"] for p in parts])[order]),
            "scope": obj(per_part("scope")),
        })


def _unique(values: Iterable[Any]) -> list:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def _objects(values: Any) -> np.ndarray:
    """A 1-D object array of the values (a list or array), never a 2-D array of nested values."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype == object:
        return values
    values = list(values)
    return np.fromiter(values, dtype=object, count=len(values))


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


def _argument_error(name: str, message: str, value: Any) -> DataError:
    return DataError(f"{name}= is invalid: {message}",
                     [Problem(rule="argument_invalid", message=message, column=name, value=repr(value))])


def _iteration_map(iterations: Any, src: str, specs: Mapping[str, ColumnSpec] | None = None) -> dict[str, int] | None:
    """Iteration labels -> numbers, from ``iterations=`` and the ``iteration`` column spec's ``labels``."""
    spec = (specs or {}).get("iteration")
    merged: dict[Any, Any] = dict(spec.labels) if spec is not None and spec.labels else {}
    if iterations is not None:
        if not isinstance(iterations, Mapping) or not iterations:
            raise DataError("iterations= must be a non-empty mapping of labels to positive integers.",
                            [Problem(rule="argument_invalid", message="iterations= must be a non-empty mapping.",
                                     file=src, column="iterations", value=repr(iterations))])
        merged.update(iterations)
    if not merged:
        return None
    out, bad = {}, []
    for k, v in merged.items():
        ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and int(v) >= 1
        if not ok:
            bad.append(Problem(rule="argument_invalid", message="Each iteration must map to a positive integer.",
                               file=src, column="iterations", value=f"{k!r}: {v!r}"))
            continue
        out[_p.parse_labels(pd.Series([k], dtype=object)).value[0]] = int(v)
    if bad:
        raise DataError("iterations= is invalid.", bad)
    return out


def _column_specs(inst: Instrument, columns: Any) -> dict[str, tuple[ColumnSpec, str]]:
    """``target -> (spec, origin)``: the instrument's ``columns:``, overridden by ``columns=``."""
    out = {c.target: (c, "the instrument's columns:") for c in inst.columns}
    if columns is not None:
        if not isinstance(columns, Mapping):
            raise _argument_error("columns", "expected a mapping of respondent-table columns to the file's columns.",
                                  columns)
        for c in parse_columns(columns, where="columns="):
            out[c.target] = (c, "columns= (or a command-line flag)")
    targets = set(COLUMN_TARGETS) | {d.name for d in inst.demographics} | set(inst.item_ids)
    for t in out:
        if t not in targets:
            raise _argument_error("columns", f"{t!r} is neither a key column ({', '.join(COLUMN_TARGETS)}), a "
                                  f"demographic nor an item of the instrument.", t)
    return out


#: Normalised column names that look like a survey weight (English, French, Spanish,
#: Portuguese, Italian, German, Dutch, Nordic, Polish, Finnish).
_WEIGHT_NAME = re.compile(
    r"(?:.*(?:weight|poids|ponder|gewicht|peso|vekt|vikt|vaegt|waga|paino|wgt|wght).*"
    r"|w|wt|pw|fw|wt_.*|.*_wt|.*_w|w_.*|fexp|factor|expansion|expfactor|factor_exp)")


def _looks_like_weight(name: str) -> bool:
    """True for column names such as ``pondération``, ``poids``, ``wt``, ``peso``, ``Gewicht``, ``final_weight``.

    Examples
    --------
    >>> [_looks_like_weight(c) for c in ["pondération", "Poids", "wt", "peso", "gewicht", "LC1", "country"]]
    [True, True, True, True, True, False, False]
    """
    import unicodedata

    folded = "".join(ch for ch in unicodedata.normalize("NFKD", str(name).casefold()) if not unicodedata.combining(ch))
    return _WEIGHT_NAME.fullmatch(folded.strip().replace(" ", "_").replace("-", "_")) is not None


#: Hints for a missing required column: how to name it or give it.
_REQUIRED_HINT = {
    "respondent_id": " Name the id column with --id COL (columns: {respondent_id: COL} in the instrument), or "
                     "number the rows with --generate-ids (columns: {respondent_id: {generate: true}}).",
    "country": " Name the column with --country COL, or give one country for every row with --country VALUE "
               "(columns: {country: {value: VALUE}}).",
    "iteration": " Name the column with --iteration COL, or give one iteration with --iteration 1 (labels such as "
                 "'2019-20' map with --iteration-labels 2019-20=1).",
    "group": " Name the column with --group COL, or give one group for every row with --group VALUE.",
}


def _weight_ratio_max() -> float:
    from .thresholds import WEIGHT_RATIO_MAX

    return float(WEIGHT_RATIO_MAX)


#: Largest weight accepted (not a statistical cut-off: a guard against overflow in sums of
#: squared weights; a population weight is at most about 1e10).
MAX_WEIGHT = 1e15


class _Loader:
    """One load: reads the checks phase by phase into a :class:`_Findings` and builds the table.

    Phases: :meth:`prepare` (header, nested values, column mapping, table-level problems),
    :meth:`file_codes` (Stata/SPSS missing codes and value labels), :meth:`key_columns`,
    :meth:`iteration_column`, :meth:`weight_column`, :meth:`design_columns`, :meth:`item_columns`,
    :meth:`row_checks`, :meth:`build`.
    """

    def __init__(self, raw: Any, inst: Instrument, specs: dict, iterations: Any, decimal: str | None):
        self.raw = raw
        self.inst = inst
        self.specs = specs
        self.src = raw.source
        self.fnd = _Findings(self.src, None)
        self.df = raw.frame
        self.n = len(self.df)
        self.iter_map = _iteration_map(iterations, self.src, {t: s for t, (s, _) in specs.items()})
        self.decimal = decimal
        self.column = None  # the column being read (named when a value cannot be read at all)

    # ------------------------------------------------------------------ phases
    def run(self) -> _Outcome:
        try:
            if not self.prepare():
                return _Outcome(None, self.fnd.problems(), self.n, self.src, self.fnd)
            self.file_codes()
            self.key_columns()
            self.iteration_column()
            self.weight_column()
            self.design_columns()
            self.item_columns()
            self.row_checks()
            return self.build()
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            if isinstance(exc, DataError):
                raise
            msg = f"The values cannot be read: {type(exc).__name__}: {exc}".rstrip(".") + "."
            return _Outcome(None, [Problem(rule="value_unreadable", message=msg, file=self.src, column=self.column)],
                            self.n, self.src, self.fnd)

    def prepare(self) -> bool:
        """Header names, raw findings, nested values, the column mapping and table-level problems."""
        fnd = self.fnd
        for rule, rows, column, values, reasons in self.raw.findings:
            fnd.add(rule, rows, column, values, reasons)
        self._header()
        if fnd.fatal:
            return False
        self._nested()
        self._map_columns()
        if fnd.fatal:
            return False
        self._weight_lookalikes()
        cols = list(self.df.columns)
        hint = ""
        if len(cols) == 1 and any(ch in cols[0] for ch in ";\t|"):
            hint = " The header is a single column holding ';', tab or '|': pass sep= to name the separator."
        for c in _REQUIRED:
            if c not in cols:
                fnd.add_fatal("column_missing", f"The required column {c!r} is missing.{hint or _REQUIRED_HINT[c]}",
                              column=c)
        if self.n == 0:
            fnd.add_fatal("table_empty", "The table has no data rows.")
        self.dist = _DistinctCache(self.df)
        return not fnd.fatal

    def _header(self) -> None:
        """Column names as text, NFC, without invisible characters or surrounding white space (recorded)."""
        names = [str(c) for c in self.df.columns]
        parsed = _p.parse_label_values(names)
        clean = [v if v is not None else n for v, n in zip(parsed.value.tolist(), names)]
        for k, (a, b) in enumerate(zip(names, clean)):
            if a != b:
                why = "; ".join(w[k] for w in parsed.notes.values() if w[k] is not None)
                self.fnd.add("column_name", np.array([-1]), b, a, f"The column name {a!r} read as {b!r}: {why}")
        for c in sorted({c for c in clean if clean.count(c) > 1}):
            self.fnd.add_fatal("column_duplicate", f"The column name {c!r} occurs more than once.", column=c)
        if not self.fnd.fatal:
            self.df = self.df.set_axis(clean, axis=1)

    def _nested(self) -> None:
        """Lists, dicts and arrays in cells (a DataFrame): problems, the cells set blank; nested dtypes: fatal."""
        for c in self.df.columns:
            dt = self.df[c].dtype
            if isinstance(dt, pd.ArrowDtype):
                import pyarrow as pa

                if pa.types.is_nested(dt.pyarrow_dtype):
                    self.fnd.add_fatal("column_nested", f"The column holds nested values of type {dt}; a respondent "
                                       f"table holds one value per cell.", column=c, value=str(dt))
                continue
            rows = _p.nested_cells(self.df[c])
            if rows.size:
                vals = self.df[c].to_numpy(dtype=object)
                self.fnd.add("value_nested", rows, c, [_short(repr(vals[r])) for r in rows],
                             f"The cell holds a {type(vals[rows[0]]).__name__} instead of one value.")
                mask = np.zeros(self.n, dtype=bool)
                mask[rows] = True
                self.df[c] = pd.Series(np.where(mask, None, vals), dtype=object)

    def _map_columns(self) -> None:
        """Apply the column specs: renames, constants, generated ids (each recorded)."""
        fnd, df = self.fnd, self.df
        cols = set(df.columns)
        renames: dict[str, str] = {}
        for t, (spec, origin) in self.specs.items():
            name, value = spec.column, spec.value
            if spec.column_or_value is not None:
                name, value = (spec.column_or_value, None) if spec.column_or_value in cols else \
                    (None, spec.column_or_value)
            if name is not None and name not in cols:
                close = _did_you_mean(name, cols, cutoff=0.8)
                what = ("The weight column" if t == "weight" else "The column")
                fnd.add_fatal("column_mapped_missing", f"{what} {name!r} given for {t!r} by {origin} is not in the "
                              f"file{close}.", column=name)
                continue
            if t in cols and name != t:
                fnd.add_fatal("column_conflict", f"The file has a column {t!r}, and {origin} also gives "
                              f"{'the column ' + repr(name) if name else 'a value'} for it: drop or rename one.",
                              column=t)
                continue
            if name is not None:
                if name != t:
                    renames[name] = t
                    fnd.add("column_mapped", np.array([-1]), t, name, f"The column {name!r} is read as {t!r} "
                            f"({origin}).")
            elif value is not None:
                df[t] = pd.Series([str(value)] * self.n, dtype=object)
                fnd.add("column_constant", np.array([-1]), t, value, f"{t} is {value!r} for every row ({origin}).")
            elif spec.generate:
                df["respondent_id"] = pd.Series(np.arange(1, self.n + 1).astype(str), dtype=object)
                fnd.add("respondent_id_generated", np.array([-1]), "respondent_id", None,
                        f"respondent_id is the row number 1..{self.n} ({origin}).")
        self.df = df.rename(columns=renames) if renames else df

    def _weight_lookalikes(self) -> None:
        """Without a weight column, an unknown column named like a weight is reported (it is not used)."""
        if "weight" in self.df.columns:
            return
        known = set(_REQUIRED) | {"stratum", "cluster"} | {d.name for d in self.inst.demographics} | \
            set(self.inst.item_ids)
        for c in self.df.columns:
            if c not in known and _looks_like_weight(c):
                self.fnd.add("weight_lookalike", np.array([-1]), c, None,
                             f"The column {c!r} looks like a survey weight but is not used: every weight is 1. Name "
                             f"it with --weight {c!r} (weight= in cs.load, or columns: {{weight: {c}}} in the "
                             f"instrument).")

    def file_codes(self) -> None:
        """Stata extended missing values, SPSS user-missing demographics, and value-labelled codes."""
        self.demo_names = [d.name for d in self.inst.demographics]
        _stata_letters(self)
        _spss_demographic_missing(self)
        self.coded = _labelled_codes(self)

    def key_columns(self) -> None:
        """respondent_id (blank, duplicate), country and group (blank, unknown group)."""
        fnd, df, n, inst = self.fnd, self.df, self.n, self.inst
        self.column = "respondent_id"
        ids = self._labels("respondent_id")
        self.ids = fnd.ids = ids.value
        rid_vals = df["respondent_id"].to_numpy(dtype=object)
        fnd.add("respondent_id_missing", np.flatnonzero(ids.blank), "respondent_id", rid_vals[ids.blank])
        ids_s = pd.Series(ids.value, dtype=object)
        dup = ids_s.duplicated(keep="first").to_numpy() & ~ids.blank
        if dup.any():
            first = pd.Series(np.arange(n)).groupby(ids_s.fillna("\x00blank")).transform("min").to_numpy()
            rows = np.flatnonzero(dup)
            fnd.add("respondent_id_duplicate", rows, "respondent_id", rid_vals[rows],
                    [f"The respondent id {ids.value[r]!r} was already used by row {first[r] + 1}." for r in rows])
        self.keys: dict[str, np.ndarray] = {}
        for c, rule in (("country", "country_missing"), ("group", "group_missing")):
            self.column = c
            p = self._labels(c, case=(c == "country"))
            fnd.add(rule, np.flatnonzero(p.blank), c, df[c].to_numpy(dtype=object)[p.blank])
            self.keys[c] = p.value
        self.column = "group"
        grp, ambiguous, group_why = _group_labels(fnd, self.keys["group"], self.coded.get("group"), inst)
        grp = _group_case(fnd, grp, inst, df["group"].to_numpy(dtype=object))
        self.keys["group"] = self.grp = grp
        has_grp = pd.notna(pd.Series(grp, dtype=object)).to_numpy()
        self.known = pd.Series(grp, dtype=object).isin(list(inst.group_ids)).to_numpy() & has_grp & ~ambiguous
        unknown = ~self.known & has_grp
        shown_group = _as_read(df["group"], self.coded.get("group"))
        declared = f"({', '.join(inst.group_ids)})"
        fnd.add("group_unknown", np.flatnonzero(unknown), "group", shown_group[unknown],
                [group_why.get(r, f"The respondent group is not one the instrument declares {declared}.")
                 for r in np.flatnonzero(unknown)])

    def _labels(self, c: str, case: bool = False) -> _p.Parsed:
        """Parse a key/design/demographic column as text; record its notes and control characters."""
        p = _p.parse_labels(self.df[c], self.dist(c))
        rawv = None
        for rule, why in p.notes.items():
            m = pd.notna(why)
            if m.any():
                rawv = self.df[c].to_numpy(dtype=object) if rawv is None else rawv
                self.fnd.add(rule, np.flatnonzero(m), c, rawv[m], why[m])
        if p.bad.any():
            rawv = self.df[c].to_numpy(dtype=object) if rawv is None else rawv
            bad = np.flatnonzero(p.bad)
            self.fnd.add("text_control", bad, c, rawv[bad], [_control_reason(p.value[r]) for r in bad])
        if case:
            out, why = _p.case_variants(p.value)
            m = pd.notna(why)
            if m.any():
                rawv = self.df[c].to_numpy(dtype=object) if rawv is None else rawv
                self.fnd.add("text_case_variant", np.flatnonzero(m), c, rawv[m], why[m])
                p.value = out
        return p

    def _decimal(self, c: str) -> str:
        """The decimal mark of a column: as given, else ',' when its text numbers use only commas (noted)."""
        if self.decimal is not None:
            return self.decimal
        known = self.dist(c)
        if known is None or len(known[1]) == 0:
            return "."
        uniq = pd.Series(known[1], dtype=object).astype(str)
        if uniq.str.contains(",", regex=False).any() and not uniq.str.contains(".", regex=False).any():
            self.fnd.add("decimal_detected", np.array([-1]), c, None,
                         f"Numbers in {c!r} are read with a decimal comma ('0,42'): they use commas and no point. "
                         f"Pass decimal= (--decimal) to choose.")
            return ","
        return "."

    def _numbers(self, c: str, labels: Any = None) -> _p.Parsed:
        """Parse a numeric column (iteration, weight, an item); record its notes."""
        p = _p.parse_numbers(self.df[c], self.dist(c), self._decimal(c), labels)
        for rule, why in p.notes.items():
            m = pd.notna(why)
            if m.any():
                self.fnd.add(rule, np.flatnonzero(m), c, self._raw_at(c, m), why[m])
        return p

    def _raw_at(self, c: str, mask: np.ndarray) -> np.ndarray:
        """Values of column ``c`` as read at ``mask`` (from the distinct values when known)."""
        fact = self.dist(c)
        if fact is not None:
            codes, uniq = fact
            return np.append(np.asarray(uniq, dtype=object), np.nan)[codes[mask]]
        s = self.df[c]
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiub":  # select first, convert the few
            return s.to_numpy()[mask].astype(object)
        return s.to_numpy(dtype=object)[mask]

    def iteration_column(self) -> None:
        """Positive whole numbers, or labels mapped by ``iterations=`` / the column spec's ``labels``."""
        fnd, n, c = self.fnd, self.n, "iteration"
        self.column = c
        it_raw = self.df[c].to_numpy(dtype=object)
        if self.iter_map is not None:
            p = self._labels(c)
            fnd.add("iteration_missing", np.flatnonzero(p.blank), c, it_raw[p.blank])
            mapped = np.array([self.iter_map.get(x, 0) if x is not None else 0 for x in p.value], dtype=np.int64)
            bad = ~p.blank & (mapped == 0) & ~p.bad
            fnd.add("iteration_unknown_label", np.flatnonzero(bad), c, it_raw[bad],
                    f"The iteration label is not one of {sorted(self.iter_map)} given in iterations= "
                    f"(or the iteration column's labels).")
            self.iteration = mapped
            return
        p = self._numbers(c)
        fnd.add("iteration_missing", np.flatnonzero(p.blank), c, it_raw[p.blank])
        num = p.value
        with np.errstate(invalid="ignore"):
            good = ~p.blank & ~p.bad & np.isfinite(num) & (num >= 1) & (num == np.floor(num)) & (num < 2**62)
        bad = ~p.blank & ~good
        fnd.add("iteration_invalid", np.flatnonzero(bad), c, it_raw[bad],
                "The iteration is not a positive integer (map labels such as '2020-21' with iterations= or "
                "--iteration-labels 2020-21=1).")
        self.iteration = np.where(good, np.nan_to_num(num, nan=0.0, posinf=0.0, neginf=0.0), 0).astype(np.int64)

    def weight_column(self) -> None:
        """Positive finite numbers up to :data:`MAX_WEIGHT` (1 for every row without a weight column)."""
        fnd, c = self.fnd, "weight"
        if c not in self.df.columns:
            self.weight = np.ones(self.n, dtype=float)
            return
        self.column = c
        w_raw = self.df[c].to_numpy(dtype=object)
        p = self._numbers(c)
        w = p.value
        fnd.add("weight_missing", np.flatnonzero(p.blank), c, w_raw[p.blank])
        hint = (" Some weights are written with a decimal comma: pass decimal=',' (--decimal ,) to read them."
                if self.decimal is None and pd.Series(w_raw[p.bad], dtype=object).astype(str).str.fullmatch(
                    r"\s*[+-]?[0-9]*,[0-9]+\s*").any() else "")
        fnd.add("weight_non_numeric", np.flatnonzero(p.bad), c, w_raw[p.bad],
                f"The weight is not a number.{hint}" if hint else None)
        valid = ~p.blank & ~p.bad
        nonfin = valid & ~np.isfinite(w)
        fnd.add("weight_nonfinite", np.flatnonzero(nonfin), c, w_raw[nonfin])
        with np.errstate(invalid="ignore"):
            zero = valid & (w == 0)
            neg = valid & np.isfinite(w) & (w < 0)
            huge = valid & np.isfinite(w) & (w > MAX_WEIGHT)
        fnd.add("weight_zero", np.flatnonzero(zero), c, w_raw[zero])
        fnd.add("weight_negative", np.flatnonzero(neg), c, w_raw[neg])
        fnd.add("weight_too_large", np.flatnonzero(huge), c, w_raw[huge],
                f"The weight is above {MAX_WEIGHT:g}: not a plausible survey weight (sums of its square overflow).")
        self.weight = w.astype(float)
        self._extreme_weights(valid & np.isfinite(w) & (w > 0) & ~huge)

    def _extreme_weights(self, ok: np.ndarray) -> None:
        """Weights above WEIGHT_RATIO_MAX times the median weight of their cell (Potter 1990): recorded.

        Those that also carry at least half of the total weight of a cell of at least
        ``thresholds.DISCLOSURE_MIN`` respondents (one that may be published) are recorded again as
        ``weight_dominant`` (the cell's estimate is then mostly one respondent's answer: its Kish
        effective size is below 4) and :func:`load` warns about them with their rows. Smaller cells
        are never published and carry their own small-cell flags.
        """
        from .thresholds import DISCLOSURE_MIN

        limit = _weight_ratio_max()
        if not ok.any():
            return
        cell = pd.DataFrame({"c": self.keys["country"], "i": self.iteration, "g": self.keys["group"]})[ok]
        w = pd.Series(self.weight[ok], index=cell.index)
        by = w.groupby([cell["c"], cell["i"], cell["g"]], dropna=False)
        med = by.transform("median").to_numpy()
        size = by.transform("size").to_numpy()
        with np.errstate(over="ignore"):          # weights are at most MAX_WEIGHT: cell totals stay finite
            share = w.to_numpy() / by.transform("sum").to_numpy()
        ratio = w.to_numpy() / med
        hit = ratio > limit
        rows = np.flatnonzero(ok)[hit]
        if rows.size:
            r = ratio[hit]
            self.fnd.add("weight_extreme", rows, "weight", self.weight[rows],
                         [f"The weight is {x:.3g} times the median weight of its cell (country, iteration, group), "
                          f"above {limit:g} (Potter 1990): kept; consider trimming (cs.weighting)." for x in r])
        dom = hit & (share >= 0.5) & (size >= DISCLOSURE_MIN)
        if dom.any():
            rows = np.flatnonzero(ok)[dom]
            self.fnd.add("weight_dominant", rows, "weight", self.weight[rows],
                         [f"The weight is {x:.3g} times the median weight of its cell of {k} and carries {f:.0%} "
                          f"of the cell's total weight: the cell's estimate is mostly this respondent's answer."
                          for x, k, f in zip(ratio[dom], size[dom], share[dom])])

    def design_columns(self) -> None:
        """stratum and cluster (blank is a problem) and every demographic."""
        self.design: dict[str, np.ndarray] = {}
        for c in ("stratum", "cluster"):
            if c in self.df.columns:
                self.column = c
                p = self._labels(c, case=True)
                self.fnd.add(f"{c}_missing", np.flatnonzero(p.blank), c, self.df[c].to_numpy(dtype=object)[p.blank])
                self.design[c] = p.value
        self.demos: dict[str, np.ndarray] = {}
        self.demo_blank: dict[str, np.ndarray] = {}
        for dm in self.inst.demographics:
            if dm.name in self.df.columns:
                self.column = dm.name
                p = self._labels(dm.name)
                self.demos[dm.name], self.demo_blank[dm.name] = _check_demographic(
                    self.fnd, dm, self.df[dm.name], p, self.coded.get(dm.name), self.grp, self.known)

    def item_columns(self) -> None:
        """Every item: asked or not, number, whole, in scale, declared missing codes; recoded (reverse keys)."""
        fnd, inst, n = self.fnd, self.inst, self.n
        item_ids = list(inst.item_ids)
        groups_present = [g for g in inst.group_ids if (self.known & (self.grp == g)).any()] if n else []
        asked_any = {i for g in groups_present for i in inst.items_for(g)}
        for i in item_ids:
            if i in asked_any and i not in self.df.columns:
                fnd.add("item_column_missing", np.array([-1]), i, None,
                        f"The item {i!r} is asked of a group present in the data but the column is missing.")
        gidx = np.full(n, -1, dtype=np.int64)
        for k, g in enumerate(inst.group_ids):
            gidx[self.known & (self.grp == g)] = k
        self.gidx = gidx
        asked_tab = np.array([[g in inst.item(i).groups for i in item_ids] for g in inst.group_ids], dtype=bool)
        labels = _p.label_codes({**{k + 1: lab for k, lab in enumerate(inst.scale.labels)},
                                 **{int(k): str(v) for k, v in inst.scale.missing.items()}})
        self.X = np.full((len(item_ids), n), np.nan)  # one contiguous row per item
        self.answered = np.zeros(n, dtype=bool)       # any non-blank code in an asked item
        for j, i in enumerate(item_ids):
            if i in self.df.columns:
                self.column = i
                asked = np.zeros(n, dtype=bool)
                asked[gidx >= 0] = asked_tab[gidx[gidx >= 0], j]
                self.X[j] = self._item(i, asked, labels)

    def _item(self, i: str, asked: np.ndarray, labels: dict) -> np.ndarray:
        fnd, n = self.fnd, self.n
        pts = self.inst.scale.points
        p = self._numbers(i, labels)
        num = p.value
        present = ~p.blank
        not_asked = present & ~asked & (self.gidx >= 0)
        check = present & ~not_asked
        self.answered |= present & asked
        raw_at = functools.partial(self._raw_at, i)
        if not_asked.any():
            fnd.add("item_not_asked", np.flatnonzero(not_asked), i, raw_at(not_asked),
                    f"The item {i!r} is not asked of this respondent's group but holds a value.")
        bad_text = check & p.bad
        if bad_text.any():
            fnd.add("code_non_numeric", np.flatnonzero(bad_text), i, raw_at(bad_text),
                    "The answer code is not a number, nor a label of the scale or of a missing code.")
        isnum = check & ~p.bad
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
        if rest.any():
            self._missing_codes(i, num, rest, raw_at)
        vals = np.where(in_scale, num, np.nan)
        if self.inst.item(i).reverse:
            vals = pts + 1 - vals
        return vals

    def _missing_codes(self, i: str, num: np.ndarray, rest: np.ndarray, raw_at: Any) -> None:
        """Codes outside the scale: declared missing codes, SPSS user-missing codes, or out of scale."""
        fnd = self.fnd
        miss_codes = {int(k): str(v) for k, v in self.inst.scale.missing.items()}
        handled = np.zeros(self.n, dtype=bool)
        for code, why in miss_codes.items():
            m = rest & (num == code)
            if m.any():
                fnd.add("missing_code", np.flatnonzero(m), i, raw_at(m), why)
                handled |= m
        for lo, hi in self.raw.user_missing.get(i, []):
            try:
                with np.errstate(invalid="ignore"):
                    m = rest & ~handled & (num >= float(lo)) & (num <= float(hi))
            except (TypeError, ValueError):
                continue
            if m.any():
                lab = self.raw.value_labels.get(i, {})
                fnd.add("user_missing", np.flatnonzero(m), i, raw_at(m),
                        [f"user_missing: {lab.get(_py_code(x), 'declared missing in the file')}" for x in num[m]])
                handled |= m
        oos = rest & ~handled
        if oos.any():
            fnd.add("code_out_of_scale", np.flatnonzero(oos), i, raw_at(oos),
                    f"The answer code is outside the scale 1..{self.inst.scale.points} and is not a declared missing "
                    f"code ({', '.join(f'{k}={v}' for k, v in miss_codes.items()) or 'none'}).")

    def row_checks(self) -> None:
        """No answers, duplicate rows, unknown columns (and columns that look like a weight)."""
        fnd = self.fnd
        self.column = None
        fnd.add("no_answers", np.flatnonzero((self.gidx >= 0) & ~self.answered), None, None)
        dup_rows = _duplicate_rows(self.df, self.dist)
        if dup_rows is not None:
            rows, first = dup_rows
            fnd.add("row_duplicate", rows, None, None,
                    [f"The row repeats row {f + 1} in every column except respondent_id." for f in first])
        known_cols = set(_REQUIRED) | {"weight", "stratum", "cluster"} | set(self.demo_names) | set(self.inst.item_ids)
        self.unknown_cols = [c for c in self.df.columns if c not in known_cols]
        for c in self.unknown_cols:
            fnd.add("unknown_column", np.array([-1]), c, None,
                    "A column the instrument does not declare; kept aside in SurveyData.aside.")

    def build(self) -> _Outcome:
        fnd = self.fnd
        keep = np.ones(self.n, dtype=bool)
        keep[fnd.problem_rows()] = False
        X = self.X if keep.all() else self.X[:, keep]
        self.X = None
        frame = _build_frame(keep, self.ids, self.keys, self.iteration, self.weight, self.design, self.demos,
                             self.inst, X, list(self.inst.item_ids))
        aside = None
        if self.unknown_cols:
            aside = self.df.loc[keep, self.unknown_cols].reset_index(drop=True)
            aside.insert(0, "respondent_id", frame["respondent_id"].to_numpy())
        data = SurveyData(frame=frame, instrument=self.inst,
                          exclusions=fnd.table(["problem", "recode", "note"]), source=self.src, aside=aside,
                          n_input_rows=self.n, value_labels=dict(self.raw.value_labels),
                          coercions=fnd.table(["coercion"]), notes=fnd.table(["info"]))
        missing_demo = {d: int((b & keep).sum()) for d, b in self.demo_blank.items()}
        return _Outcome(data, fnd.problems(), self.n, self.src, fnd, missing_demo)


_CP1252_HINT = (" (characters U+0080-U+009F are what Windows-1252 punctuation such as \u2019 becomes when the file "
                "is read as Latin-1: pass encoding='cp1252')")


def _control_reason(text: str) -> str:
    found = _p._CONTROL_RE.findall(text)
    c1 = any(0x80 <= ord(ch) <= 0x9F for ch in found)
    return f"The text holds control character(s) {_p._hexes(found)}{_CP1252_HINT if c1 else ''}."


def _stata_letters(ld: _Loader) -> None:
    """Stata extended missing values (.a-.z): recoded in items and demographics, blank elsewhere."""
    df, inst, fnd = ld.df, ld.inst, ld.fnd
    for c, letters in ld.raw.letter_missing.items():
        if c not in df.columns:
            continue
        obj = df[c].astype(object)
        m = obj.map(lambda v: isinstance(v, str) and v in letters).to_numpy(dtype=bool)
        if not m.any():
            continue
        rows = np.flatnonzero(m)
        shown = np.array(["." + str(v) for v in obj.to_numpy()[m]], dtype=object)
        if c in inst.item_ids or c in ld.demo_names:
            lab = ld.raw.value_labels.get(c, {})
            fnd.add("user_missing", rows, c, shown,
                    [f"user_missing: {lab.get(v[1:], 'Stata missing value ' + v)}" for v in shown])
        obj = obj.where(~m, None)
        # key/design columns: the blank is then reported by their own rule. A column of numbers
        # once the letters are blank is numeric again (so that its value labels apply).
        df[c] = obj.infer_objects() if not m.all() else obj


def _spss_demographic_missing(ld: _Loader) -> None:
    """SPSS user-missing codes of a demographic: missing, with their reason."""
    df, fnd, n = ld.df, ld.fnd, ld.n
    labels = ld.raw.value_labels
    for c in ld.demo_names:
        if ld.raw.user_missing.get(c) and c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype):
            v = df[c].to_numpy(dtype=float, na_value=np.nan)
            um = np.zeros(n, dtype=bool)
            for lo, hi in ld.raw.user_missing[c]:
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


def _labelled_codes(ld: _Loader) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Value-labelled codes (SPSS/Stata) of key, design and demographic columns read as their labels.

    Returns ``column -> (codes as read, labelled, coded)``. A code without a label in a key or
    design column (country, stratum, cluster) is a problem ``code_unlabelled``: its meaning is
    unknown (a group code is checked against the groups; a demographic against its categories).
    """
    df, n, labels = ld.df, ld.n, ld.raw.value_labels
    coded: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for c in ["country", "group", "stratum", "cluster", *ld.demo_names]:
        if c in labels and c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype):
            lab = labels[c]
            coded_raw = df[c].to_numpy(dtype=object)
            v = df[c].to_numpy(dtype=float, na_value=np.nan)
            mapped = np.full(n, None, dtype=object)
            for code, text in lab.items():
                if isinstance(code, (int, float)):
                    mapped[v == code] = text
            unl = ~np.isnan(v) & pd.isna(mapped)
            if unl.any():  # codes without a label stay as their number (as text)
                mapped[unl] = [_fmt_number(x) for x in v[unl]]
                if c in ("country", "stratum", "cluster"):
                    rows = np.flatnonzero(unl)
                    ld.fnd.add("code_unlabelled", rows, c, coded_raw[rows],
                               [f"The code {_code(coded_raw[r])!r} has no value label in the file, while other codes "
                                f"of {c!r} have one: its meaning is unknown." for r in rows])
            coded[c] = (coded_raw, ~np.isnan(v) & ~unl, ~np.isnan(v))
            df[c] = pd.Series(mapped, dtype=object)
    return coded


def _group_case(fnd: _Findings, grp: np.ndarray, inst: Instrument, rawv: np.ndarray) -> np.ndarray:
    """A group written in another case than a declared id or label (``Officials``) read as that group."""
    names: dict[str, set[str]] = {}
    for g in inst.groups:
        for name in (g.id, g.label):
            if name:
                names.setdefault(name.casefold(), set()).add(g.id)
    declared = set(inst.group_ids)
    s = pd.Series(grp, dtype=object)
    out = grp
    for text in pd.unique(s[s.notna() & ~s.isin(list(declared))]):
        ids = names.get(str(text).casefold(), set())
        if len(ids) == 1:
            gid = next(iter(ids))
            m = (s == text).to_numpy()
            out = out.copy() if out is grp else out
            out[m] = gid
            fnd.add("text_case_variant", np.flatnonzero(m), "group", rawv[m],
                    f"{text!r} read as the group {gid!r} (the same name in another case, or the group's label).")
    return out


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


def _check_demographic(fnd: _Findings, dm: Any, col: pd.Series, parsed: _p.Parsed, coded: tuple | None,
                       grp: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check one demographic column against its declared categories and groups.

    A value in a respondent whose (known) group is not asked the demographic is
    ``demographic_not_asked``; a value that is a declared category in another case is read as
    it (``text_case_variant``); any other value outside the declared categories is
    ``demographic_unknown`` (an SPSS/Stata code is read as its label first). Both problems are
    set aside (missing, with the reason) when not strict. Returns the values (str or None) and
    the blank rows of respondents who are asked it (allowed; counted).
    """
    name = dm.name
    vals, blank = parsed.value, parsed.blank
    shown = _as_read(col, coded)
    present = ~blank
    gs = pd.Series(grp, dtype=object)
    asked = known & gs.isin(list(dm.groups)).to_numpy() if dm.groups else known.copy()  # no groups: every group
    not_asked = present & known & ~asked
    rows = np.flatnonzero(not_asked)
    fnd.add("demographic_not_asked", rows, name, shown[not_asked],
            [f"The demographic {name!r} is not asked of group {grp[r]!r} (only of {', '.join(dm.groups)}) "
             f"but holds a value." for r in rows])
    outside = np.zeros(len(col), dtype=bool)
    if dm.categories:
        cats = list(dm.categories)
        vs = pd.Series(vals, dtype=object)
        outside = present & ~not_asked & ~vs.isin(cats).to_numpy()
        folded = {}
        for c in cats:
            folded.setdefault(c.casefold(), []).append(c)
        for text in pd.unique(vs[outside]):
            hit = folded.get(str(text).casefold(), [])
            if len(hit) == 1:
                m = outside & (vs == text).to_numpy()
                vals = vals.copy() if vals is parsed.value else vals
                vals[m] = hit[0]
                outside &= ~m
                fnd.add("text_case_variant", np.flatnonzero(m), name, shown[m],
                        f"{text!r} read as the category {hit[0]!r} (the same name in another case).")
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


def _duplicate_rows(df: pd.DataFrame, dist: "_DistinctCache | None" = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows identical to an earlier row in every column except respondent_id (and that earlier row).

    Each column becomes 64-bit words that are equal exactly when the values are equal: the codes
    of its distinct values for text and mixed columns (blanks equal to each other), the bits of
    the numbers for numeric columns (one NaN). A linear hash of the words, accumulated column by
    column (memory of one column, not of the table), finds candidate rows; a candidate is a
    duplicate only when all its words equal those of the earlier row (exact, checked column by
    column on the candidates only). Values of different types are different (``1``, ``"1"``, ``True``).
    """
    rest = [c for c in df.columns if c != "respondent_id"]
    n = len(df)
    if not rest or n < 2:
        return None
    mult = np.random.default_rng(20240601).integers(1, 2**63, size=len(rest), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    h = np.zeros(n, dtype=np.uint64)
    for j, c in enumerate(rest):
        h += _equality_words(df[c], dist(c) if dist is not None else None) * mult[j]  # wraps modulo 2**64
    dup = pd.Series(h).duplicated(keep="first").to_numpy()
    if not dup.any():
        return None
    first = pd.Series(np.arange(n)).groupby(h).transform("min").to_numpy()
    rows = np.flatnonzero(dup)
    same = np.ones(rows.size, dtype=bool)
    for c in rest:
        words = _equality_words(df[c], dist(c) if dist is not None else None)
        same &= words[rows] == words[first[rows]]
    if not same.any():
        return None
    return rows[same], first[rows[same]]


def _equality_words(s: pd.Series, known: tuple | None) -> np.ndarray:
    """64-bit words of a column, equal exactly when the values are equal (see :func:`_duplicate_rows`)."""
    if known is not None:
        return known[0].astype(np.int64).view(np.uint64)  # codes; -1 (blank) is 2**64 - 1: still one value
    dt = s.dtype
    if isinstance(dt, np.dtype) and dt.kind == "f":
        v = s.to_numpy(dtype=np.float64).copy()
        v[np.isnan(v)] = np.nan
        return v.view(np.uint64)
    if isinstance(dt, np.dtype) and dt.kind in "iu":
        return s.to_numpy().astype(np.int64).view(np.uint64)
    return _equality_codes(s).astype(np.uint64)


class _DistinctCache:
    """:func:`cips_stats._parse.distinct` of the text columns of a table, computed once per column on demand.

    ``cache(column)`` gives ``(codes, uniques)`` for a text column (pandas ``str`` or categorical
    of text, or object holding only text and blanks) and None for any other column. The codes
    also serve the duplicate-row check (equal text, equal code).
    """

    def __init__(self, df: pd.DataFrame):
        self.df = df
        self.done: dict[str, tuple | None] = {}

    def __call__(self, column: str) -> tuple | None:
        if column not in self.done:
            self.done[column] = _p.distinct(self.df[column])
        return self.done[column]

    def get(self, column: str) -> tuple | None:
        return self.done.get(column)


def _equality_codes(s: pd.Series) -> np.ndarray:
    """Integer codes of a column's distinct values (``-1`` = blank) by exact equality."""
    if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
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
    """The respondent table of the kept rows; ``X`` holds the kept rows' items, one row per item
    (it becomes the float block of the table without a copy)."""
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
    frame = pd.DataFrame(np.ascontiguousarray(X).T, columns=item_ids, copy=False)  # the float block is X itself
    for k, (name, col) in enumerate(cols.items()):
        frame.insert(k, name, col)
    return frame


# =============================================================================== public API
def _load(source: Any, instrument: Any, *, columns: Any = None, weight: str | None = None, iterations: Any = None,
          sheet: str | int = 0, encoding: str | None = None, sep: str | None = None, decimal: str | None = None,
          max_rows: int = MAX_ROWS) -> _Outcome:
    """Read and check everything; never raises for data problems (only for bad arguments)."""
    inst = _resolve_instrument(instrument)
    if weight is not None:
        if not isinstance(weight, str) or not weight:
            raise _argument_error("weight", "the weight must be a column name.", weight)
        columns = {**(dict(columns) if isinstance(columns, Mapping) else {}), "weight": weight} \
            if columns is None or isinstance(columns, Mapping) else columns
    specs = _column_specs(inst, columns)
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise _argument_error("max_rows", "max_rows must be a positive integer.", max_rows)
    if decimal is not None and decimal not in (".", ","):
        raise _argument_error("decimal", "the decimal mark must be '.' or ','.", decimal)
    try:
        raw = read_table(source, sheet=sheet, encoding=encoding, sep=sep, max_rows=int(max_rows))
    except DataError as exc:
        src = str(source) if isinstance(source, (str, os.PathLike)) else "<DataFrame>"
        return _Outcome(None, exc.problems, 0, src, None)
    return _Loader(raw, inst, specs, iterations, decimal).run()


def load(source: Any, instrument: Instrument | str | os.PathLike | None = None, *, strict: bool = True,
         columns: Mapping[str, Any] | None = None, weight: str | None = None,
         iterations: Mapping[Any, int] | None = None, sheet: str | int = 0,
         encoding: str | None = None, sep: str | None = None, decimal: str | None = None,
         max_rows: int = MAX_ROWS) -> SurveyData:
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
    columns : mapping, optional
        Where the respondent-table columns come from in this file, overriding the
        instrument's ``columns:``: ``{"respondent_id": "id", "weight": "pondération",
        "country": {"value": "NL"}, "iteration": {"column": "wave", "labels": {"2019-20": 1}},
        "respondent_id": {"generate": True}}``; ``{"column_or_value": X}`` is the column ``X``
        when the file has one, else the constant ``X``. A column named here that is not in
        the file is an error.
    weight : str, optional
        The weight column's name in the file (short for ``columns={"weight": ...}``).
    iterations : mapping, optional
        Labels of the ``iteration`` column mapped to positive integers, e.g.
        ``{"2020-21": 1, "2023": 2}``; without it iterations must be positive integers.
    sheet : str or int, default 0
        Excel sheet.
    encoding : str, optional
        CSV text encoding; default detected: a byte-order mark (UTF-8, UTF-16), else UTF-8,
        else Windows-1252 (recorded in ``notes``). Bytes that do not decode are an error
        naming the byte and its line.
    sep : str, optional
        CSV field separator; default detected from the header line (``,``, ``;``, tab, ``|``).
    decimal : {".", ","}, optional
        Decimal mark of numbers written as text; default per column: ``","`` when its text
        numbers use commas and no point (European spreadsheet exports, noted in ``notes``),
        else ``"."``. With ``","``, ``"0.42"`` is not a number.
    max_rows : int, default 5,000,000
        Most data records accepted; checked from the file's metadata (CSV record count, XLSX
        dimension, Parquet and SPSS/Stata headers) before the table is materialised.

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
    and DataFrames alike. Plain numeric text is accepted as its number (``"4"``,
    ``"4.0"``); every other conversion is accepted only with a record in ``coercions``:
    white space (``" 4 "``), invisible characters, a sign, exponent or leading zeros
    (``"+4"``, ``"4e0"``, ``"00004"``), Unicode NFC and case variants of keys, a scale or
    missing-code label written as text (``"Agree"`` -> 4, ``"Don't know"`` -> 8); any
    other text is a ``code_non_numeric`` problem; ``4.5`` is ``code_not_integer``. A demographic must hold one of its
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
    out = _load(source, instrument, columns=columns, weight=weight, iterations=iterations, sheet=sheet,
                encoding=encoding, sep=sep, decimal=decimal, max_rows=max_rows)
    fatal = [p for p in out.problems if RULES.get(p.rule, ("", "fatal", ""))[1] == "fatal"]
    if out.data is None or (strict and out.problems) or fatal:
        probs = out.problems
        k = len(probs)
        raise DataError(f"The survey data {out.source} has {k} problem{'s' if k != 1 else ''}"
                        f"{'' if out.data is None or not strict else ' (use strict=False to set them aside)'}.",
                        probs)
    _warn_dominant_weights(out.data)
    return out.data


def _warn_dominant_weights(data: SurveyData) -> None:
    """Warn (SmallCellWarning) about weights that carry half of their cell, naming the rows (1-based)."""
    notes = data.notes
    dom = notes[notes["rule"] == "weight_dominant"]
    if dom.empty:
        return
    from .errors import Flag, SmallCellWarning, emit

    rows = [int(r) for r in dom["row"]]
    shown = ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
    emit(Flag("weight_dominant",
              f"{len(rows)} weight{'s' if len(rows) != 1 else ''} above {_weight_ratio_max():g} times the median "
              f"of {'their' if len(rows) != 1 else 'its'} cell (Potter 1990) carr{'y' if len(rows) != 1 else 'ies'} "
              f"at least half of the cell's total weight (row{'s' if len(rows) != 1 else ''} {shown}): such a "
              f"cell's estimate is mostly one respondent's answer. Check the weight column or trim "
              f"(cs.weighting); SurveyData.notes lists them.", "warning", {"rows": rows}),
         SmallCellWarning, stacklevel=4)


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
    n_rows_with_answers : int
        Kept records with at least one usable answer (a code on the scale): the rows any
        statistic can use.
    exclusions : pandas.DataFrame
        The exclusions table of ``load(..., strict=False)``.
    coercions : pandas.DataFrame
        Values accepted after a recorded conversion.
    unknown_columns : tuple of str
        Columns the instrument does not declare (kept aside, not an error).
    missing_demographics : dict
        ``{demographic: count}``: kept respondents asked a demographic whose answer is blank
        (allowed, not an error; values set aside by a problem are not counted here).
    notes : pandas.DataFrame
        What was read with nothing set aside (``SurveyData.notes``): encoding or separator
        detected, column mappings, extreme weights, columns that look like a weight.
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
    n_rows_with_answers: int = 0
    notes: pd.DataFrame = field(default_factory=_empty_exclusions)

    def to_frame(self) -> pd.DataFrame:
        """The problems as a table: file, row, column, value, rule, message."""
        return DataError("", self.problems).to_frame().astype({"row": "Int64"})

    @property
    def data(self) -> SurveyData | None:
        """The data as ``load(..., strict=False)`` returns it (None when no table can be built), so a
        caller that validates and then analyses reads the file once. Not part of ``to_dict()``."""
        return self.__dict__.get("_data")

    def counts(self) -> pd.Series:
        """Number of problems by rule."""
        return pd.Series([p.rule for p in self.problems], dtype=object).value_counts()

    def to_text(self, limit: int = 200) -> str:
        """A plain-text report: the counts, what was read and converted, then every problem (up to ``limit``)."""
        lines = [f"Validation of {self.source}: {'OK' if self.ok else 'PROBLEMS FOUND'}",
                 f"Rows read: {self.n_rows}; rows usable with strict=False: {self.n_rows_with_answers} "
                 f"(with at least one usable answer"
                 + (f"; {self.n_used_rows - self.n_rows_with_answers} more kept rows have none"
                    if self.n_used_rows > self.n_rows_with_answers else "")
                 + f"); problems: {len(self.problems)}."]
        for rule, part in (self.notes.groupby("rule", sort=False) if len(self.notes) else []):
            whys = _unique(part["reason"])
            if len(whys) <= 3:
                lines += [f"Note: {why}" for why in whys]
            else:
                where = _unique(part["column"].dropna())
                lines.append(f"Note ({rule}, {len(part)} times"
                             + (f", columns {', '.join(map(str, where[:5]))}{', ...' if len(where) > 5 else ''}"
                                if where else "") + f"): e.g. {whys[0]}")
        if self.unknown_columns:
            lines.append("Unknown columns (kept aside): " + ", ".join(self.unknown_columns) + ".")
        ex = self.exclusions
        if len(ex):
            rec = ex[ex["rule"].isin(["missing_code", "user_missing"])]
            if len(rec):
                lines.append("Set to missing by declared codes: " + ", ".join(
                    f"{k}={v}" for k, v in rec["reason"].value_counts().sort_index().items()) + ".")
        lines += self._coercion_lines()
        if any(self.missing_demographics.values()):
            lines.append("Blank demographics (allowed): " + ", ".join(
                f"{k}={v}" for k, v in self.missing_demographics.items()) + ".")
        if self.problems:
            lines += ["", "Problems by rule:"] + [f"  {rule}: {k}" for rule, k in self.counts().items()]
            lines += ["", "Problems:"] + ["  - " + p.describe() for p in self.problems[:limit]]
            if len(self.problems) > limit:
                lines.append(f"  ... and {len(self.problems) - limit} more (see .problems or .to_frame()).")
        return "\n".join(lines)

    def _coercion_lines(self) -> list[str]:
        """One line per coercion rule: how many values, and up to three examples of what was read."""
        co = self.coercions
        if not len(co):
            return []
        lines = []
        for rule, part in co.groupby("rule", sort=False):
            if rule == "group_label":
                lines += [str(w) for w in part["reason"]]
                continue
            examples = "; ".join(str(w) for w in _unique(part["reason"])[:3])
            lines.append(f"Converted values ({rule}): {len(part)}, e.g. {examples}")
        return lines

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
        ``columns=``, ``weight=``, ``iterations=``, ``sheet=``, ``encoding=``, ``sep=``, ``decimal=``,
        ``max_rows=`` as for :func:`load` (``strict`` is ignored).

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
    data = out.data
    with_answers = 0
    if data is not None:
        items = [i for i in instrument.item_ids if i in data.frame.columns]
        with_answers = int(data.frame[items].notna().any(axis=1).sum()) if items else 0
    unknown = ()
    if out.data is not None:
        ex = out.data.exclusions
        unknown = tuple(ex.loc[ex["rule"] == "unknown_column", "column"].tolist())
    report = ValidationReport(
        source=out.source, ok=not out.problems, problems=list(out.problems), n_rows=out.n_rows,
        n_used_rows=0 if out.data is None else len(out.data.frame),
        exclusions=_empty_exclusions() if out.data is None else out.data.exclusions,
        coercions=_empty_exclusions() if out.data is None else out.data.coercions,
        unknown_columns=unknown, missing_demographics=dict(out.missing_demographics),
        n_rows_with_answers=with_answers,
        notes=data.notes if data is not None else out.findings.table(["info"]) if out.findings is not None
        else _empty_exclusions(),
        provenance=Provenance.build("validate", instrument=instrument,
                                    data_fingerprint=None if out.data is None else out.data.fingerprint,
                                    options={k: repr(v) for k, v in load_kwargs.items()}),
    )
    object.__setattr__(report, "_data", out.data)
    return report


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
    Text round-trips in every format. CSV: text a spreadsheet would run as a formula (first
    character ``=``, ``+``, ``-``, ``@``, tab, CR) or starting with ``'`` gets one leading ``'``,
    which the loader removes (recorded as ``csv_formula_escape``). XLSX: text starting with ``=``
    is a text cell, never a formula; CR and control characters use the OOXML ``_xHHHH_`` escape.
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
    fmt = FORMATS.get(p.suffix.lower())
    # only SPSS/Stata recode columns below; the other writers read the frame as it is
    out = frame.reset_index(drop=True).copy() if fmt in ("sav", "dta") else frame.reset_index(drop=True)
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
