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
from typing import Any, Callable, Mapping

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
    findings : list of tuple
        What the reader saw and changed: ``(rule, rows, column, values, reasons)`` with 0-based
        ``rows`` (``[-1]`` for the whole table or column): formula cells without a value and merged
        cells (XLSX), formula escapes removed (CSV), the encoding and separator detected.
    encoding, sep : str or None
        The CSV text encoding and field separator used (given or detected).
    format : str
        ``"csv"``, ``"xlsx"``, ``"sav"``, ``"dta"``, ``"parquet"`` or ``"frame"``.
    """

    frame: pd.DataFrame
    source: str
    value_labels: dict = field(default_factory=dict)
    user_missing: dict = field(default_factory=dict)
    format: str = "frame"
    letter_missing: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    encoding: str | None = None
    sep: str | None = None


#: Default most data records a file may hold (``max_rows=`` of :func:`read_table`), checked
#: before the table is materialised.
MAX_ROWS = 5_000_000


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
    return _check_csv_records_slow(path, src, encoding, sep)[0]


def _check_csv_records_slow(path: Path, src: str, encoding: str, sep: str) -> tuple[list[str], int]:
    """The record check with the :mod:`csv` module (any file); returns the header and the record count."""
    bad: list[Problem] = []
    rec = 0
    with open(path, newline="", encoding=encoding) as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return [], 0
        k = len(header)
        for fields in reader:
            if not fields:  # blank line: skipped by pandas too, not a record
                continue
            rec += 1
            if len(fields) != k:
                bad.append(_record_problem(src, rec, len(fields), k))
    if bad:
        raise DataError(f"Cannot read {src}: {len(bad)} records do not match the header.", bad)
    return header, rec


def _record_problem(src: str, rec: int, got: int, k: int) -> Problem:
    return Problem(rule="csv_record_length", file=src, row=rec, value=got,
                   message=f"The record has {got} fields but the header has {k}.")


#: Encodings in which the separator, the quote and the line feed are single bytes that never
#: occur inside a multi-byte character (so fields can be counted on the bytes).
_BYTE_ENCODINGS = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252"}
#: Bytes scanned at a time by the CSV checks (bounded memory on large files).
_BLOCK = 1 << 24
#: Bytes of whole lines counted at a time by the CSV record check (its temporaries: about 4 bytes a byte).
_RECORD_BLOCK = 1 << 22


def _csv_records_fast(path: Path, src: str, encoding: str, sep: str,
                      data: bytes | None = None, decoded: bool = False) -> tuple[list[str], int] | None:
    """The record check of :func:`_check_csv_records` vectorised on the file's bytes, block by block.

    Used only where it gives the same answer as the :mod:`csv` module: an ASCII one-character
    separator, an encoding in :data:`_BYTE_ENCODINGS`, no quote character, no NUL byte, line ends
    ``\\n`` or ``\\r\\n`` only and a non-blank header line. Otherwise returns None (use the
    :mod:`csv` module). Fields per record = separators + 1; empty lines are not records.
    Returns the header and the number of records. ``data``: the file's bytes, when already read;
    ``decoded``: they are known to decode in ``encoding`` (checked by :func:`_detect_encoding`).
    """
    import codecs

    try:
        enc = codecs.lookup(encoding).name
    except LookupError:
        return None
    if enc not in _BYTE_ENCODINGS or len(sep) != 1 or ord(sep) > 127 or sep in '"\r\n':
        return None
    if data is None:
        data = path.read_bytes()
    if enc == "utf-8-sig" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b'"' in data or b"\x00" in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    if not decoded and _first_bad_byte(data, "utf-8" if enc == "utf-8-sig" else enc) is not None:
        return None  # the csv module reports it, with its message
    if not data:
        return [], 0
    end = data.find(b"\n")
    first = data[: len(data) if end < 0 else end].rstrip(b"\r")
    if not first:
        return None  # blank first line: the csv module's header handling applies
    header = first.decode("utf-8" if enc == "utf-8-sig" else enc).split(sep)
    k = len(header)
    probs: list[Problem] = []
    n_rec = 0
    pos = len(data) if end < 0 else end + 1
    while pos < len(data):  # whole lines, about _RECORD_BLOCK bytes at a time
        stop = data.find(b"\n", min(pos + _RECORD_BLOCK, len(data)) - 1)
        stop = len(data) if stop < 0 else stop + 1
        fields, length = _fields_per_line(np.frombuffer(data, dtype=np.uint8, count=stop - pos, offset=pos), sep)
        rec_fields = fields[length > 0]
        bad = np.flatnonzero(rec_fields != k)
        probs += [_record_problem(src, n_rec + int(r) + 1, int(rec_fields[r]), k) for r in bad]
        n_rec += int(rec_fields.size)
        pos = stop
    if probs:
        raise DataError(f"Cannot read {src}: {len(probs)} records do not match the header.", probs)
    return header, n_rec


def _fields_per_line(arr: np.ndarray, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """Fields (separators + 1) and length (without the line end) of each line of a block of whole lines."""
    nl = np.flatnonzero(arr == 10)
    ends = nl if (nl.size and nl[-1] == arr.size - 1) else np.append(nl, arr.size)  # end of each line
    starts = np.concatenate(([0], ends[:-1] + 1))
    stop = ends.copy()
    has_cr = (stop > starts) & (arr[np.maximum(stop - 1, 0)] == 13)
    stop[has_cr] -= 1
    # separators per line: a sum over each line's bytes (its end included: never a separator); every
    # segment holds at least one byte, so reduceat's empty-segment rule never applies.  reduceat casts
    # its whole input to the sum's type: int16 (2 bytes a byte) when no line can hold 32,767 separators
    if not (starts.size and arr.size):
        return np.ones(starts.size, dtype=np.int64), stop - starts
    longest = int(np.diff(np.append(starts, arr.size)).max())
    is_sep = (arr == ord(sep)).view(np.uint8)
    seps = np.add.reduceat(is_sep, starts, dtype=np.int16 if longest < 32767 else np.int64)
    return seps.astype(np.int64) + 1, stop - starts


def _first_bad_byte(data: bytes, encoding: str) -> int | None:
    """Offset of the first byte that does not decode in ``encoding`` (None when all do).

    Decoded in blocks (cut at a character boundary) so that a large file never becomes one
    large string.
    """
    import codecs

    enc = codecs.lookup(encoding).name
    step = 2 if enc.startswith("utf-16") else 1
    # after the first block, a file with a UTF-16 byte-order mark continues in the mark's byte order
    cont = ("utf-16-be" if data.startswith(codecs.BOM_UTF16_BE) else "utf-16-le") if enc == "utf-16" else enc
    pos = 0
    while pos < len(data):
        stop = min(len(data), pos + _BLOCK)
        if enc in ("utf-8", "utf-8-sig"):
            while stop < len(data) and stop > pos and (data[stop] & 0xC0) == 0x80:
                stop -= 1  # not inside a multi-byte character
        elif step == 2:
            stop -= (stop - pos) % 2
            if stop < len(data) and stop - pos >= 2:
                unit = data[stop - 2:stop]
                hi = unit[1] if cont == "utf-16-le" else unit[0]
                if 0xD8 <= hi <= 0xDB:
                    stop -= 2  # not between the halves of a surrogate pair
        try:
            codecs.decode(data[pos:stop], enc if pos == 0 else cont)
        except UnicodeDecodeError as exc:
            return pos + exc.start
        pos = stop
    return None


def _decode_failure(data: bytes, offset: int, encoding: str) -> str:
    """'the byte 0xE9 at line 3 (byte 41)' for a message."""
    line = data.count(b"\n", 0, offset) + 1
    return f"the byte 0x{data[offset]:02X} at line {line}, byte offset {offset}, is not valid {encoding}"


def _utf16_without_bom(data: bytes) -> str:
    """``"utf-16-le"``/``"utf-16-be"`` when the file starts with ASCII text in UTF-16 (every other byte 0).

    Otherwise ``""``.
    """
    head = data[:4096]
    head = head[: len(head) - len(head) % 2]
    if len(head) < 8:
        return ""
    even, odd = head[0::2], head[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return ""


def _detect_encoding(data: bytes, encoding: str | None, src: str) -> tuple[str, str | None]:
    """The encoding to read a CSV file with, and a note when it was detected as not UTF-8.

    A byte-order mark decides (UTF-8, UTF-16); an encoding given is checked; otherwise UTF-16
    without a mark (ASCII text with every other byte 0, as Windows "Unicode text" exports), UTF-8,
    then Windows-1252 (a superset of Latin-1's printable characters). Bytes that do not decode
    raise :class:`DataError` naming the byte, its line and what to pass.
    """
    import codecs

    if encoding is not None:
        try:
            enc = codecs.lookup(encoding).name
        except LookupError:
            raise _fail("argument_invalid", src, f"unknown encoding {encoding!r}.", encoding) from None
        if enc == "utf-8" and data.startswith(codecs.BOM_UTF8):
            enc = "utf-8-sig"
        bad = _first_bad_byte(data, enc)
        if bad is not None:
            raise _fail("file_encoding", src, f"{_decode_failure(data, bad, enc)}; pass the file's encoding "
                        f"(e.g. encoding='cp1252' or --encoding cp1252), or omit it to detect it.",
                        f"0x{data[bad]:02X}")
        return enc, None
    if data.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc = "utf-16"
    else:
        enc = ""
    if enc:
        bad = _first_bad_byte(data, enc)
        if bad is not None:
            raise _fail("file_encoding", src, f"{_decode_failure(data, bad, enc)} although the file starts "
                        f"with a {enc} byte-order mark.", f"0x{data[bad]:02X}")
        return enc, None
    enc = _utf16_without_bom(data)
    if enc:
        bad = _first_bad_byte(data, enc)
        if bad is None:
            return enc, (f"The file has no byte-order mark but its text is UTF-16 "
                         f"({'little' if enc.endswith('le') else 'big'}-endian): read as {enc.upper()}.")
    bad8 = _first_bad_byte(data, "utf-8")
    if bad8 is None:
        return "utf-8", None
    bad1252 = _first_bad_byte(data, "cp1252")
    if bad1252 is None:
        return "cp1252", (f"The file is not UTF-8 ({_decode_failure(data, bad8, 'UTF-8')}); read as Windows-1252 "
                          f"(cp1252), which decodes every byte of it. Pass encoding= to choose another.")
    raise _fail("file_encoding", src, f"the encoding is not UTF-8 ({_decode_failure(data, bad8, 'UTF-8')}) nor "
                f"Windows-1252 ({_decode_failure(data, bad1252, 'cp1252')}); pass the file's encoding with "
                f"encoding= or --encoding (e.g. latin-1).", f"0x{data[bad8]:02X}")


#: Field separators tried when ``sep`` is not given, most common first.
_SEPARATORS = (",", ";", "\t", "|")


def _detect_sep(data: bytes, encoding: str) -> tuple[str, str | None]:
    """The separator that occurs most often in the header line (',' when none occurs), with a note."""
    import codecs

    if encoding.startswith("utf-16"):
        head = data[: 1 << 16]
        text = codecs.decode(head[: len(head) - len(head) % 2], encoding, errors="replace")
    else:
        text = data[: 1 << 16].decode(encoding, errors="replace")
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {s: header.count(s) for s in _SEPARATORS}
    best = max(_SEPARATORS, key=lambda s: counts[s])
    if counts[best] == 0 or best == ",":
        return ",", None
    return best, f"The field separator {best!r} was detected from the header line; pass sep= to choose another."


def _read_csv_arrow(path: Path, header: list[str], n_records: int, encoding: str, sep: str) -> pd.DataFrame | None:
    """Read a simple CSV file (one :func:`_csv_records_fast` accepted) as text with Arrow's reader.

    Every column is text as categorical (distinct values once, small integer codes: a fraction
    of the memory of one string per cell); only empty fields are blank, exactly as the pandas
    path with ``dtype=object``; the header is the one already checked (the reader skips it).
    Returns None (use pandas) for a blank header name (pandas names them ``Unnamed: k``), any
    reader error, or a shape other than records x header.
    """
    if not header or any(h.strip() == "" for h in header):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        text = pa.dictionary(pa.int32(), pa.string())
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, encoding=encoding,
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={h: text for h in header},
                                                 strings_can_be_null=True, null_values=[""],
                                                 quoted_strings_can_be_null=True),
        )
        table = table.unify_dictionaries()
        frame = table.to_pandas(self_destruct=True, split_blocks=True)
        del table
        pa.default_memory_pool().release_unused()  # give the reader's buffers back to the system
    except Exception:  # noqa: BLE001 - anything unexpected: the pandas reader decides
        return None
    if frame.shape != (n_records, len(header)) or [str(c) for c in frame.columns] != header:
        return None
    return frame


def _read_csv_pandas(path: Path, encoding: str, sep: str) -> pd.DataFrame:
    """Any CSV (quotes, embedded line breaks) with pandas' C parser, as text (object columns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""],
                           encoding=encoding, index_col=False, sep=sep)


#: First characters that make a spreadsheet read a CSV field as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    """A text value as written to CSV by :func:`write_table`: a leading ``'`` before a formula start.

    A value starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return (or with ``'``, so that
    the escape can be undone unambiguously) gets one ``'`` in front; :func:`unescape_formula`
    (applied by the CSV reader) removes it.

    Examples
    --------
    >>> from cips_stats._io import escape_formula, unescape_formula
    >>> escape_formula("=1+1"), escape_formula("abc"), escape_formula("'x")
    ("'=1+1", 'abc', "''x")
    >>> all(unescape_formula(escape_formula(v)) == v for v in ["=1+1", "+4", "-x", "@a", "\\tx", "'", ""])
    True
    """
    return "'" + value if value.startswith(FORMULA_START + ("'",)) else value


def unescape_formula(value: str) -> str:
    """Undo :func:`escape_formula`: ``'`` followed by a formula start or ``'`` loses the ``'``."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START + ("'",)) else value


def _unescape_column(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """A text column with escaped formula starts restored; returns it and the rows changed (0-based)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        categories = s.cat.categories
        if categories.inferred_type != "string" or not categories.str.startswith("'").any():
            return s, np.zeros(0, dtype=np.int64)
        cats = [str(c) for c in categories]
        new = [unescape_formula(c) for c in cats]
        if new == cats:
            return s, np.zeros(0, dtype=np.int64)
        codes = np.asarray(s.cat.codes, dtype=np.int64)
        changed = np.array([a != b for a, b in zip(cats, new)] + [False])
        rows = np.flatnonzero(changed[codes])
        uniq, inv = np.unique(np.asarray(new, dtype=object), return_inverse=True)
        new_codes = np.where(codes < 0, -1, inv[np.maximum(codes, 0)])
        return pd.Series(pd.Categorical.from_codes(new_codes, categories=list(uniq))), rows
    vals = s.to_numpy(dtype=object)
    starts = np.array([isinstance(v, str) and v.startswith("'") for v in vals], dtype=bool)
    if not starts.any():
        return s, np.zeros(0, dtype=np.int64)
    new = vals.copy()
    new[starts] = [unescape_formula(v) for v in vals[starts]]
    rows = np.flatnonzero(starts & (new != vals))
    return pd.Series(new, dtype=object), rows


def _read_csv(path: Path, src: str, encoding: str | None, sep: str | None, max_rows: int) -> RawTable:
    """A CSV file as text: encoding and separator checked or detected, records checked, size checked."""
    _check_rows(_csv_records_streamed(path), max_rows, src)    # before the file is read whole
    data = path.read_bytes()
    enc, enc_note = _detect_encoding(data, encoding, src)
    sep_note = None
    if sep is None:
        sep, sep_note = _detect_sep(data, enc)
    elif not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n':
        raise _fail("argument_invalid", src, f"sep must be one character (not a quote or line end), not {sep!r}.",
                    sep)
    fast = _csv_records_fast(path, src, enc, sep, data=data, decoded=True)
    del data
    header, n_rec = fast if fast is not None else _check_csv_records_slow(path, src, enc, sep)
    _check_header(header, src)
    _check_rows(n_rec, max_rows, src)
    frame = _read_csv_arrow(path, header, n_rec, enc, sep) if fast is not None else None
    if frame is None:
        frame = _read_csv_pandas(path, enc, sep)
    findings = [(rule, np.array([-1]), None, None, note) for rule, note in
                (("encoding_detected", enc_note), ("separator_detected", sep_note)) if note]
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.CategoricalDtype) or frame[c].dtype == object:
            new, rows = _unescape_column(frame[c])
            if rows.size:
                findings.append(("csv_formula_escape", rows, str(c), None,
                                 "A leading ' before a formula character (written against spreadsheet formula "
                                 "injection) was removed."))
                frame[c] = new
    return RawTable(frame=frame, source=src, format="csv", findings=findings, encoding=enc, sep=sep)


def _csv_records_streamed(path: Path) -> int | None:
    """Data records of a CSV file counted block by block, before anything is read whole.

    Without quotes every non-empty line after the header is one record, so the count is exact;
    None when the file has a quote character or looks like UTF-16 (lines and records may differ:
    the full check decides).
    """
    import codecs

    nl = blank = 0
    tail, last, first = b"\n", b"", True       # as if a line ended just before the file: a leading empty line
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            if first:
                if block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in block[:4096]:
                    return None
                first = False
            if b'"' in block:
                return None
            both = np.frombuffer(tail + block, dtype=np.uint8)
            end = both == 10
            nl += int(end[len(tail):].sum())
            # an empty line ends where "\n" follows "\n" or "\n\r" (ends inside this block only)
            k = len(tail)
            blank += int((end[max(k, 1):] & end[max(k, 1) - 1:-1]).sum())
            blank += int((end[max(k, 2):] & (both[max(k, 2) - 1:-1] == 13) & end[max(k, 2) - 2:-2]).sum())
            tail, last = bytes(both[-2:]), block[-1:]
    lines = nl + (1 if last and last != b"\n" else 0)
    return max(lines - 1 - blank, 0)


def _check_rows(n: int | None, max_rows: int, src: str) -> None:
    if n is not None and n > max_rows:
        raise _fail("table_too_large", src, f"the file holds {n:,} data records, more than max_rows={max_rows:,}; "
                    f"pass a larger max_rows= (or --max-rows) if this is intended.", n)


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


def _nested_problems(names: list[str], types: list[Any], src: str) -> None:
    """List, struct and map columns (Parquet, Arrow dtypes) cannot hold answer codes: a DataError."""
    import pyarrow as pa

    bad = [(n, t) for n, t in zip(names, types)
           if pa.types.is_nested(t) or (pa.types.is_dictionary(t) and pa.types.is_nested(t.value_type))]
    if bad:
        raise DataError(f"Cannot read {src}: {len(bad)} column(s) hold nested values (lists, structs or maps).",
                        [Problem(rule="column_nested", file=src, column=n, value=str(t),
                                 message=f"The column holds nested values of type {t}; a respondent table holds "
                                         f"one value per cell.") for n, t in bad])


def _read_parquet(path: Path, src: str, max_rows: int) -> RawTable:
    """A Parquet file, its row count and column types checked first, read one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    _nested_problems(list(schema.names), list(schema.types), src)
    _check_rows(pf.metadata.num_rows, max_rows, src)
    parts, total = [], 0
    for g in range(pf.num_row_groups):
        part = pf.read_row_group(g)
        total += part.num_rows
        _check_rows(total, max_rows, src)  # the metadata may understate it
        parts.append(part)
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    del parts
    return RawTable(frame=_flat(table.to_pandas()), source=src, format="parquet")


def read_table(source: Any, *, sheet: str | int = 0, encoding: str | None = None, sep: str | None = None,
               max_rows: int = MAX_ROWS) -> RawTable:
    """Read a file (CSV, XLSX, SAV, DTA, Parquet) or take a DataFrame, without recoding.

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        The file, chosen by its extension, or an in-memory table.
    sheet : str or int
        Excel sheet (name or 0-based position).
    encoding : str, optional
        Text encoding of CSV files; default: detected (byte-order mark, UTF-8, then Windows-1252).
    sep : str, optional
        Field separator of CSV files (one character); default: detected from the header line.
    max_rows : int
        Most data records accepted, checked before the table is materialised.

    Returns
    -------
    RawTable
    """
    if isinstance(source, pd.DataFrame):
        _check_rows(len(source), max_rows, "<DataFrame>")
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
            return _read_csv(path, src, encoding, sep, max_rows)
        if fmt == "xlsx":
            from ._xlsx import read_xlsx

            return read_xlsx(path, src, sheet, max_rows)
        if fmt == "parquet":
            return _read_parquet(path, src, max_rows)
        return _read_stat(path, src, fmt, max_rows)
    except DataError:
        raise
    except MemoryError:
        raise _fail("file_unreadable", src, "the file does not fit in memory.") from None
    except Exception as exc:  # any reader failure: corrupt or unreadable content
        raise _fail("file_unreadable", src, f"{type(exc).__name__}: {exc}".strip().rstrip(".") + ".") from exc


def _read_stat(path: Path, src: str, fmt: str, max_rows: int) -> RawTable:
    """An SPSS or Stata file with its value labels and missing codes; the row count checked first."""
    import pyreadstat

    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    _, head = reader(str(path), metadataonly=True)
    _check_rows(getattr(head, "number_rows", None), max_rows, src)
    frame, meta = reader(str(path), user_missing=True, row_limit=max_rows + 1)
    _check_rows(len(frame), max_rows, src)
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
    if engine == "openpyxl":  # calamine reads the OOXML _xHHHH_ escapes; openpyxl leaves them
        for c in frame.columns:
            if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype):
                s = frame[c].astype(object)
                frame[c] = s.map(lambda v: _xlsx_unescape(v) if isinstance(v, str) and "_x" in v else v)
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


_XLSX_ESCAPED = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_XLSX_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ufffe\uffff]")


def _xlsx_escape(text: str) -> str:
    """Text as stored in an XLSX cell: characters XML cannot hold (CR, control characters) as the
    OOXML escape ``_xHHHH_``, and a literal ``_xHHHH_`` as ``_x005F_xHHHH_``.

    Examples
    --------
    >>> _xlsx_escape("a\\rb"), _xlsx_unescape(_xlsx_escape("a\\rb")), _xlsx_unescape(_xlsx_escape("_x000D_"))
    ('a_x000D_b', 'a\\rb', '_x000D_')
    """
    text = _XLSX_ESCAPED.sub(r"_x005F_\1", text)
    return _XLSX_UNSAFE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)


def _xlsx_unescape(text: str) -> str:
    """Undo :func:`_xlsx_escape` (what calamine does itself; openpyxl leaves the escapes)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def _write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    """Write an XLSX sheet keeping every float exactly.

    openpyxl formats numbers with 16 significant digits (``"%.16g"``), which
    loses the last digit of some doubles; non-integral floats are therefore
    written as their shortest round-trip text (``repr``) in a numeric cell.
    Text starting with ``=`` is written as a text cell (openpyxl would write a formula).
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
            elif isinstance(v, str):
                v = _xlsx_escape(v)
                if v.startswith("="):  # text, never a formula
                    cell = WriteOnlyCell(ws, value=v)
                    cell.data_type = "s"
                    v = cell
            out.append(v)
        ws.append(out)
    wb.save(path)


#: Rows formatted and written at a time by :func:`_write_csv_fast` (bounded memory).
_CSV_ROWS = 1 << 15
#: Most distinct values of a run of adjacent columns that :func:`_write_csv_fast` formats together.
_CSV_MERGE = 4096


def _csv_field_format(sep: str, lineterminator: str) -> Callable[[Any], str]:
    """One field as the :mod:`csv` module writes it (pandas' ``to_csv`` quoting, QUOTE_MINIMAL)."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator=lineterminator)
    tail = sep + "x" + lineterminator

    def fmt(value: Any) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow([value, "x"])  # a second field: a lone empty field would be quoted
        return buf.getvalue()[: -len(tail)]

    return fmt


def _csv_distinct(s: pd.Series) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """A column as (fields, codes, is_text): ``fields[codes]`` are its CSV fields before quoting, as
    ``to_csv`` after :func:`_integral_to_int` and :func:`escape_formula` writes them (code -1, the
    last field, is missing: empty).  None for a column the fast writer does not handle (the pandas
    writer then writes the file)."""
    dt = s.dtype
    text = False
    if isinstance(dt, np.dtype) and dt.kind in "iub":
        codes, uniq = pd.factorize(s.to_numpy(), use_na_sentinel=True)
        fields = np.asarray(uniq).astype(str).astype(object)
    elif isinstance(dt, np.dtype) and dt.kind == "f":
        v = s.to_numpy()
        codes, uniq = pd.factorize(v, use_na_sentinel=True)
        uniq = np.asarray(uniq, dtype=np.float64)
        if np.all(np.isfinite(uniq) & (uniq == np.round(uniq))):     # whole numbers (and blanks): Int64
            if uniq.size and np.abs(uniq).max() >= 2.0 ** 53:
                return None
            fields = uniq.astype(np.int64).astype(str).astype(object)
        else:
            fields = uniq.astype(str).astype(object)
    elif dt == object or isinstance(dt, pd.StringDtype):
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
        uniq = list(np.asarray(uniq, dtype=object))
        if not all(type(u) is str for u in uniq):
            return None
        fields = np.empty(len(uniq), dtype=object)
        fields[:] = [escape_formula(u) for u in uniq]
        text = True
    else:
        return None
    lut = np.empty(len(fields) + 1, dtype=object)
    lut[: len(fields)] = fields
    lut[-1] = ""
    return lut, np.asarray(codes, dtype=np.intp), text


def _write_csv_fast(frame: pd.DataFrame, path: Path) -> bool:
    """Write ``frame`` to CSV byte for byte as the pandas path of :func:`write_table` does, without
    copying it: every column's distinct values are formatted (escaped, quoted) once and the rows
    are joined in blocks of :data:`_CSV_ROWS`.  Returns False, writing nothing, when a column needs
    the pandas writer (mixed or non-text objects, categoricals, dates, extension types)."""
    if frame.columns.has_duplicates or not all(isinstance(c, str) for c in frame.columns):
        return False
    sep = ","
    parts = []
    for c in frame.columns:
        got = _csv_distinct(frame[c])
        if got is None:
            return False
        parts.append(got)
    # a CR inside a field is quoted only when it is part of the line terminator (as the pandas path)
    lt = "\r\n" if any(text and any("\r" in f for f in lut[:-1]) for lut, _, text in parts) else "\n"
    field = _csv_field_format(sep, lt)
    merged: list[tuple[np.ndarray, np.ndarray]] = []
    for lut, codes, text in parts:
        if text:
            lut = lut.copy()
            lut[:-1] = [field(f) for f in lut[:-1]]
        codes = np.where(codes < 0, len(lut) - 1, codes)
        if merged and len(merged[-1][0]) * len(lut) <= _CSV_MERGE:
            # adjacent columns of few distinct values (the item codes) are joined once per pair of values
            plut, pcodes = merged[-1]
            both = np.array([a + sep + b for a in plut.tolist() for b in lut.tolist()], dtype=object)
            merged[-1] = (both, pcodes * len(lut) + codes)
        else:
            merged.append((lut, codes))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(sep.join(field(str(c)) for c in frame.columns) + lt)
        for start in range(0, len(frame), _CSV_ROWS):
            block = [lut[codes[start:start + _CSV_ROWS]].tolist() for lut, codes in merged]
            fh.write(lt.join(map(sep.join, zip(*block))) + lt)
    return True


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *,
                value_labels: Mapping[str, Mapping[Any, str]] | None = None,
                user_missing: Mapping[str, list] | None = None,
                column_labels: Mapping[str, str] | None = None,
                numeric_columns: tuple[str, ...] = ()) -> None:
    """Write a table by file extension; SPSS/Stata get value labels (and SPSS user-missing codes).

    ``numeric_columns`` are written as numbers; every other non-numeric column
    is written as text (blank = empty string in SPSS/Stata). CSV text that a spreadsheet would
    run as a formula gets a leading ``'`` (:func:`escape_formula`), which the CSV reader removes;
    XLSX text starting with ``=`` is written as text.
    """
    p = Path(path)
    ext = p.suffix.lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise _fail("file_format", str(path), f"unknown file extension {ext!r}; expected one of {sorted(FORMATS)}.", ext)
    if fmt == "csv" and _write_csv_fast(frame, p):
        return
    out = frame.reset_index(drop=True).copy()
    if fmt in ("csv", "xlsx"):
        for c in out.columns:
            out[c] = _integral_to_int(out[c])
        if fmt == "csv":
            cr = False
            for c in out.columns:
                if out[c].dtype == object or isinstance(out[c].dtype, pd.StringDtype):
                    out[c] = out[c].astype(object).map(lambda v: escape_formula(v) if isinstance(v, str) else v)
                    cr = cr or out[c].map(lambda v: isinstance(v, str) and "\r" in v).any()
            # a CR inside a field is quoted only when it is part of the line terminator
            out.to_csv(p, index=False, lineterminator="\r\n" if cr else "\n")
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
