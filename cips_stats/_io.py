"""File readers and writers for respondent tables (private; used by :mod:`cips_stats.data`).

Every reader returns a :class:`RawTable`: the table exactly as read (no
recoding), plus what the file declares about its columns (SPSS/Stata value
labels and user-missing codes).  Readers never coerce values: CSV is read as
text (only empty fields are blank; ``"NA"`` stays the text ``"NA"``) -- with
Arrow's reader when the file is simple (no quotes; see :func:`_read_csv_arrow`),
else with pandas' C parser -- Excel
without pandas' default NA strings, SPSS with user-missing values kept as
values so that the loader can account for them.

Every read failure (missing file, unknown extension, unreadable or corrupt
content) raises :class:`~cips_stats.errors.DataError` naming the file.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .errors import DataError, Problem

__all__ = ["RawTable", "read_table", "write_table", "FORMATS"]

#: File extensions understood, by format.
FORMATS = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".sav": "sav",
    ".zsav": "sav",
    ".dta": "dta",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class RawTable:
    """A respondent table as read, with what the file declares about its columns.

    Attributes
    ----------
    frame : pandas.DataFrame
        The values as read (RangeIndex; row ``i`` is data record ``i + 1``).
    source : str
        File path, or ``"<DataFrame>"``.
    value_labels : dict
        ``{column: {code: label}}`` declared in the file (SPSS, Stata).
    user_missing : dict
        ``{column: [(lo, hi), ...]}`` SPSS user-missing codes and ranges.
    letter_missing : dict
        ``{column: ["a", "b", ...]}`` Stata extended missing values (``.a`` .. ``.z``) present
        in the file; the cells hold the letter (text), so they are never silently blank.
    format : str
        ``"csv"``, ``"xlsx"``, ``"sav"``, ``"dta"``, ``"parquet"`` or ``"frame"``.
    """

    frame: pd.DataFrame
    source: str
    value_labels: dict = field(default_factory=dict)
    user_missing: dict = field(default_factory=dict)
    format: str = "frame"
    letter_missing: dict = field(default_factory=dict)


def _fail(rule: str, source: str, message: str, value: Any = None) -> DataError:
    return DataError(f"Cannot read {source}: {message}",
                     [Problem(rule=rule, message=message, file=source, value=value)])


def _clean_code(k: Any) -> Any:
    if isinstance(k, (float, np.floating)) and float(k).is_integer():
        return int(k)
    if isinstance(k, np.integer):
        return int(k)
    return k


def _check_csv_records(path: Path, src: str, encoding: str, sep: str = ",") -> list[str]:
    """Every CSV record must have as many fields as the header (pandas would pad short records
    with blanks and turn surplus fields into an index, silently)."""
    fast = _csv_records_fast(path, src, encoding, sep)
    if fast is not None:
        return fast[0]
    bad: list[Problem] = []
    with open(path, newline="", encoding=encoding) as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return []
        k = len(header)
        rec = 0
        for fields in reader:
            if not fields:  # blank line: skipped by pandas too, not a record
                continue
            rec += 1
            if len(fields) != k:
                bad.append(_record_problem(src, rec, len(fields), k))
    if bad:
        raise DataError(f"Cannot read {src}: {len(bad)} records do not match the header.", bad)
    return header


def _record_problem(src: str, rec: int, got: int, k: int) -> Problem:
    return Problem(rule="csv_record_length", file=src, row=rec, value=got,
                   message=f"The record has {got} fields but the header has {k}.")


#: Encodings in which the separator, the quote and the line feed are single bytes that never
#: occur inside a multi-byte character (so fields can be counted on the bytes).
_BYTE_ENCODINGS = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252"}


def _csv_records_fast(path: Path, src: str, encoding: str, sep: str) -> tuple[list[str], int] | None:
    """The record check of :func:`_check_csv_records` vectorised on the file's bytes.

    Used only where it gives the same answer as the :mod:`csv` module: an ASCII one-character
    separator, an encoding in :data:`_BYTE_ENCODINGS`, no quote character, no NUL byte, line ends
    ``\\n`` or ``\\r\\n`` only and a non-blank header line. Otherwise returns None (use the
    :mod:`csv` module). Fields per record = separators + 1; empty lines are not records.
    Returns the header and the number of records.
    """
    import codecs

    try:
        enc = codecs.lookup(encoding).name
    except LookupError:
        return None
    if enc not in _BYTE_ENCODINGS or len(sep) != 1 or ord(sep) > 127 or sep in '"\r\n':
        return None
    data = path.read_bytes()
    if enc == "utf-8-sig" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b'"' in data or b"\x00" in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        data.decode("utf-8" if enc == "utf-8-sig" else enc)
    except UnicodeDecodeError:
        return None  # the csv module reports it, with its message
    if not data:
        return [], 0
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    ends = nl if (nl.size and nl[-1] == arr.size - 1) else np.append(nl, arr.size)  # end of each line
    starts = np.concatenate(([0], ends[:-1] + 1))
    stop = ends.copy()
    has_cr = (stop > starts) & (arr[np.maximum(stop - 1, 0)] == 13)
    stop[has_cr] -= 1
    length = stop - starts
    if length[0] == 0:
        return None  # blank first line: the csv module's header handling applies
    seps = np.flatnonzero(arr == ord(sep))  # separators before the end minus before the start
    fields = np.searchsorted(seps, stop) - np.searchsorted(seps, starts) + 1
    header = data[starts[0]:stop[0]].decode("utf-8" if enc == "utf-8-sig" else enc).split(sep)
    k = len(header)
    rec_fields = fields[1:][length[1:] > 0]
    bad = np.flatnonzero(rec_fields != k)
    if bad.size:
        probs = [_record_problem(src, int(r) + 1, int(rec_fields[r]), k) for r in bad]
        raise DataError(f"Cannot read {src}: {len(probs)} records do not match the header.", probs)
    return header, int(rec_fields.size)


def _read_csv_arrow(path: Path, header: list[str], n_records: int, encoding: str, sep: str) -> pd.DataFrame | None:
    """Read a simple CSV file (one :func:`_csv_records_fast` accepted) as text with Arrow's reader.

    Every column is text (pandas ``str``), only empty fields are blank, exactly as the pandas
    path with ``dtype=object``; the header is the one already checked (the reader skips it).
    Returns None (use pandas) for encodings other than UTF-8/ASCII, blank header names (pandas
    names them ``Unnamed: k``), any reader error, or a shape other than records x header.
    """
    import codecs

    if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig", "ascii") or not header:
        return None
    if any(h.strip() == "" for h in header):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=True, null_values=[""],
                                                 quoted_strings_can_be_null=True),
        )
        frame = table.to_pandas()
    except Exception:  # noqa: BLE001 - anything unexpected: the pandas reader decides
        return None
    if frame.shape != (n_records, len(header)) or [str(c) for c in frame.columns] != header:
        return None
    if not all(isinstance(frame[c].dtype, pd.StringDtype) for c in frame.columns):
        return None
    return frame


def _check_header(header: list[str], src: str) -> None:
    """Duplicate names in a header row are an error (pandas would rename them ``x.1`` silently)."""
    header = [h for h in header if h.strip() != ""]  # blank names become distinct "Unnamed: k" columns
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise DataError(f"Cannot read {src}: duplicate column names {dups}.",
                        [Problem(rule="column_duplicate", file=src, column=d,
                                 message=f"The column name {d!r} occurs more than once.") for d in dups])


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Named index levels become columns (e.g. respondent_id kept as the index); unnamed ones are dropped."""
    names = [n for n in frame.index.names if n is not None]
    if names and not any(str(n) in map(str, frame.columns) for n in names):
        return frame.reset_index(drop=False).reset_index(drop=True)
    return frame.reset_index(drop=True)


def read_table(source: Any, *, sheet: str | int = 0, encoding: str = "utf-8-sig", sep: str = ",") -> RawTable:
    """Read a file (CSV, XLSX, SAV, DTA, Parquet) or take a DataFrame, without recoding.

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        The file, chosen by its extension, or an in-memory table.
    sheet : str or int
        Excel sheet (name or 0-based position).
    encoding : str
        Text encoding of CSV files (a UTF-8 byte-order mark is accepted).
    sep : str
        Field separator of CSV files (one character).

    Returns
    -------
    RawTable
    """
    if isinstance(source, pd.DataFrame):
        return RawTable(frame=_flat(source), source="<DataFrame>", format="frame")
    if not isinstance(source, (str, os.PathLike)):
        raise DataError("The data must be a file path or a pandas DataFrame.",
                        [Problem(rule="source_type", message="Expected a file path or a pandas DataFrame.",
                                 value=type(source).__name__)])
    path = Path(source)
    src = str(source)
    ext = path.suffix.lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise _fail("file_format", src, f"unknown file extension {ext!r}; expected one of "
                    f"{sorted(FORMATS)}.", ext)
    if not path.exists():
        raise _fail("file_not_found", src, "the file does not exist.")
    if path.is_dir():
        raise _fail("file_unreadable", src, "the path is a directory, not a file.")
    try:
        if fmt == "csv":
            fast = _csv_records_fast(path, src, encoding, sep)
            header = fast[0] if fast is not None else _check_csv_records(path, src, encoding, sep)
            _check_header(header, src)
            frame = _read_csv_arrow(path, header, fast[1], encoding, sep) if fast is not None else None
            if frame is not None:
                return RawTable(frame=frame, source=src, format=fmt)
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""],
                                    encoding=encoding, index_col=False, sep=sep)
            return RawTable(frame=frame, source=src, format=fmt)
        if fmt == "xlsx":
            frame = _read_xlsx(path, src, sheet)
            return RawTable(frame=frame.reset_index(drop=True), source=src, format=fmt)
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            return RawTable(frame=_flat(frame), source=src, format=fmt)
        import pyreadstat

        if fmt == "sav":
            frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
        else:
            frame, meta = pyreadstat.read_dta(str(path), user_missing=True)
    except DataError:
        raise
    except Exception as exc:  # any reader failure: corrupt or unreadable content
        raise _fail("file_unreadable", src, f"{type(exc).__name__}: {exc}".strip().rstrip(".") + ".") from exc
    labels = {str(col): {_clean_code(k): str(v) for k, v in lab.items()}
              for col, lab in (meta.variable_value_labels or {}).items()}
    missing: dict[str, list[tuple[Any, Any]]] = {}
    for col, ranges in (getattr(meta, "missing_ranges", None) or {}).items():
        missing[str(col)] = [(_clean_code(r["lo"]), _clean_code(r["hi"])) for r in ranges]
    letters = {}
    if fmt == "dta":
        letters = {str(c): [str(v) for v in vals]
                   for c, vals in (getattr(meta, "missing_user_values", None) or {}).items() if vals}
        missing = {}
    return RawTable(frame=frame.reset_index(drop=True), source=src, value_labels=labels,
                    user_missing=missing, format=fmt, letter_missing=letters)


def _calamine_available() -> bool:
    try:
        import python_calamine  # noqa: F401
    except ImportError:
        return False
    return True


def _read_xlsx(path: Path, src: str, sheet: str | int) -> pd.DataFrame:
    """An Excel sheet without pandas' default NA strings (only empty cells are blank).

    Read with the calamine engine (Rust; python-calamine) when installed, else openpyxl; both
    give the same values (floats exactly as stored). Duplicate header names are an error:
    pandas renames a repeated ``x`` to ``x.1``, so the header row is read and checked only
    when a column name has that form.
    """
    kw = {"sheet_name": sheet, "keep_default_na": False, "na_values": [""]}
    engine = "calamine" if _calamine_available() else "openpyxl"
    try:
        frame = pd.read_excel(path, engine=engine, **kw)
    except Exception:
        if engine == "openpyxl":
            raise
        engine = "openpyxl"  # a file calamine cannot read: openpyxl decides (and names the error)
        frame = pd.read_excel(path, engine=engine, **kw)
    names = [str(c) for c in frame.columns]
    present = set(names)
    if any(m is not None and m.group(1) in present for m in map(_MANGLED.match, names)):
        head = pd.read_excel(path, sheet_name=sheet, header=None, nrows=1, engine=engine)
        _check_header([str(v) for v in head.iloc[0].tolist() if not pd.isna(v)] if len(head) else [], src)
    return frame


_MANGLED = re.compile(r"^(.*)\.([0-9]+)$")


def _text_column(s: pd.Series) -> pd.Series:
    """Object column of str with "" for blanks (SPSS/Stata string variables)."""
    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return ""
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return s.astype(object).map(fmt).astype(object)


def _integral_to_int(s: pd.Series) -> pd.Series:
    """Float column whose finite values are all whole numbers -> nullable Int64 (for neat text)."""
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        fin = np.isfinite(v)
        if np.all(np.isnan(v) | (fin & (v == np.round(v)))):
            return s.astype("Int64")
    return s


def _write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    """Write an XLSX sheet keeping every float exactly.

    openpyxl formats numbers with 16 significant digits (``"%.16g"``), which
    loses the last digit of some doubles; non-integral floats are therefore
    written as their shortest round-trip text (``repr``) in a numeric cell.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append([str(c) for c in frame.columns])
    columns = []
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_float_dtype(s.dtype):
            columns.append(s.to_numpy(dtype=float, na_value=np.nan).tolist())
        else:
            columns.append([None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else
                            (v.item() if isinstance(v, np.generic) else v) for v in s.astype(object).tolist()])
    for row in zip(*columns):
        out = []
        for v in row:
            if isinstance(v, float):
                if v != v:
                    v = None
                elif np.isfinite(v) and not v.is_integer():
                    cell = WriteOnlyCell(ws, value=repr(v))
                    cell.data_type = "n"
                    v = cell
            out.append(v)
        ws.append(out)
    wb.save(path)


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *,
                value_labels: Mapping[str, Mapping[Any, str]] | None = None,
                user_missing: Mapping[str, list] | None = None,
                column_labels: Mapping[str, str] | None = None,
                numeric_columns: tuple[str, ...] = ()) -> None:
    """Write a table by file extension; SPSS/Stata get value labels (and SPSS user-missing codes).

    ``numeric_columns`` are written as numbers; every other non-numeric column
    is written as text (blank = empty string in SPSS/Stata).
    """
    p = Path(path)
    ext = p.suffix.lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise _fail("file_format", str(path), f"unknown file extension {ext!r}; expected one of {sorted(FORMATS)}.", ext)
    out = frame.reset_index(drop=True).copy()
    if fmt in ("csv", "xlsx"):
        for c in out.columns:
            out[c] = _integral_to_int(out[c])
        if fmt == "csv":
            out.to_csv(p, index=False)
        else:
            _write_xlsx(out, p)
        return
    if fmt == "parquet":
        out.to_parquet(p, index=False)
        return
    import pyreadstat

    for c in out.columns:
        if c in numeric_columns or pd.api.types.is_numeric_dtype(out[c].dtype) and not pd.api.types.is_bool_dtype(out[c].dtype):
            out[c] = pd.to_numeric(out[c]).astype(float)
        else:
            out[c] = _text_column(out[c])
    vl = {str(k): {int(c): str(lab) for c, lab in v.items()} for k, v in (value_labels or {}).items()
          if k in out.columns}
    cl = {str(k): str(v) for k, v in (column_labels or {}).items() if k in out.columns}
    if fmt == "sav":
        mr = {str(k): list(v) for k, v in (user_missing or {}).items() if k in out.columns}
        pyreadstat.write_sav(out, str(p), variable_value_labels=vl or None, missing_ranges=mr or None,
                             column_labels=cl or None)
    else:
        pyreadstat.write_dta(out, str(p), variable_value_labels=vl or None, column_labels=cl or None)
