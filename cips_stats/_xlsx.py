"""XLSX reading with the checks pandas does not make (private; used by :mod:`cips_stats._io`).

Before any cell is read, the sheet's declared dimension (or, without one, its row count) is
checked against ``max_rows``, so a small file declaring ten million rows is refused at once.
The sheet XML is then scanned for what pandas turns into silent blanks:

* **formula cells without a cached value** (a file written by a program that does not compute
  formulas, or saved without recalculation): the value is unknown, so each is a problem
  ``xlsx_formula_no_value`` at its row and column;
* **merged cells**: Excel shows the first cell's value across the range, but the file stores it
  only in the first cell. A merged range in the header row is fatal (``xlsx_merged_header``:
  the column names are not what they look like); in the data, every other cell of the range
  is a problem ``xlsx_merged_cell``.

The cells are then read by pandas (calamine, else openpyxl) exactly as before.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, Problem

_NS = rb"(?:[A-Za-z_][\w.-]*:)?"  # an optional namespace prefix
_DIMENSION = re.compile(rb"<" + _NS + rb'dimension\s+ref="([A-Z]+)([0-9]+)(?::([A-Z]+)([0-9]+))?"')
_MERGE = re.compile(rb"<" + _NS + rb'mergeCell\s+ref="([A-Z]+)([0-9]+):([A-Z]+)([0-9]+)"')
_FORMULA = re.compile(rb"<" + _NS + rb"f[\s>/]")
_CELL_REF = re.compile(rb'\sr="([A-Z]+)([0-9]+)"')
_VALUE = re.compile(rb"<" + _NS + rb"v>[^<]")
_ROW = re.compile(rb"<" + _NS + rb"row[\s>]")


def _col_index(letters: bytes) -> int:
    """0-based column index of Excel column letters (A = 0, Z = 25, AA = 26)."""
    k = 0
    for ch in letters:
        k = k * 26 + (ch - 64)
    return k - 1


def _col_letters(k: int) -> str:
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = chr(65 + r) + out
    return out


def _sheet_member(z: zipfile.ZipFile, sheet: str | int) -> str | None:
    """The zip member of a sheet (by name or 0-based position), or None when it cannot be found."""
    wb = z.read("xl/workbook.xml")
    sheets = re.findall(rb"<" + _NS + rb'sheet\s[^>]*?name="([^"]*)"[^>]*?r:id="([^"]*)"', wb)
    if not sheets:
        sheets = [(n, r) for r, n in re.findall(rb"<" + _NS + rb'sheet\s[^>]*?r:id="([^"]*)"[^>]*?name="([^"]*)"', wb)]
    if isinstance(sheet, int):
        if not 0 <= sheet < len(sheets):
            return None
        rid = sheets[sheet][1]
    else:
        match = [r for n, r in sheets if n.decode("utf-8", "replace") == str(sheet)]
        if not match:
            return None
        rid = match[0]
    rels = z.read("xl/_rels/workbook.xml.rels")
    for rel in re.findall(rb"<" + _NS + rb"Relationship\s[^>]*>", rels):
        if re.search(rb'Id="' + re.escape(rid) + rb'"', rel):
            target = re.search(rb'Target="([^"]*)"', rel)
            if target is None:
                return None
            t = target.group(1).decode()
            return t.lstrip("/") if t.startswith("/") else posixpath.normpath(posixpath.join("xl", t))
    return None


def _declared_rows(z: zipfile.ZipFile, member: str) -> tuple[int | None, tuple[int, int]]:
    """Rows declared by the sheet's dimension (or counted, without one) and its top-left (col, row)."""
    with z.open(member) as fh:
        head = fh.read(1 << 16)
    m = _DIMENSION.search(head)
    if m is not None:
        top = (_col_index(m.group(1)), int(m.group(2)))
        last = int(m.group(4)) if m.group(4) else int(m.group(2))
        return last - top[1], top  # data rows: everything below the header row
    rows = 0
    with z.open(member) as fh:
        tail = b""
        while True:
            block = fh.read(1 << 22)
            if not block:
                break
            chunk = tail + block
            tail = chunk[-6:]
            rows += _count_rows(chunk) - _count_rows(tail)  # the tail is scanned again next time
        rows += _count_rows(tail)
    return max(rows - 1, 0), (0, 1)


def _count_rows(chunk: bytes) -> int:
    """``<row`` start tags in a chunk (bytes.count is fast; a namespace prefix is rare)."""
    n = chunk.count(b"<row ") + chunk.count(b"<row>")
    return n + (len(_ROW.findall(chunk)) - n if b":row" in chunk else 0)


def _may_hold(xml: bytes, tag: bytes) -> bool:
    """Cheap pre-check before a regex scan: the tag (with or without a namespace prefix) occurs."""
    return any(xml.find(b + tag + e) >= 0 for b in (b"<", b":") for e in (b">", b" ", b"/"))


def scan_sheet(xml: bytes, top: tuple[int, int]) -> tuple[list, list, list]:
    """Formula cells without a value, merged header ranges and merged data cells of a sheet's XML.

    Returns ``(formulas, header_merges, data_merges)``: ``formulas`` and ``data_merges`` are
    ``(record_index (0-based), column_index (0-based from the table's first column), cell, range)``.

    Examples
    --------
    >>> xml = (b'<sheetData><row r="1"><c r="A1"><v>0</v></c></row><row r="2"><c r="B2"><f>1+1</f><v/></c>'
    ...        b'</row></sheetData><mergeCells><mergeCell ref="A3:A4"/></mergeCells>')
    >>> scan_sheet(xml, (0, 1))
    ([(0, 1, 'B2', None)], [], [(2, 0, 'A4', 'A3:A4')])
    """
    col0, row0 = top
    formulas = []
    for m in (_FORMULA.finditer(xml) if _may_hold(xml, b"f") else ()):
        start = xml.rfind(b"<c", 0, m.start())
        while start >= 0 and xml[start + 2:start + 3] not in (b" ", b">", b"\t", b"\n", b"\r"):
            start = xml.rfind(b"<c", 0, start)
        end = xml.find(b"</c>", m.start())
        if start < 0:
            continue
        end = len(xml) if end < 0 else end
        ref = _CELL_REF.search(xml, start, xml.find(b">", start) + 1)
        if ref is None or _VALUE.search(xml, m.start(), end):
            continue
        col, row = _col_index(ref.group(1)), int(ref.group(2))
        formulas.append((row - row0 - 1, col - col0, ref.group(0).split(b'"')[1].decode(), None))
    header, data = [], []
    for m in (_MERGE.finditer(xml) if b"mergeCell" in xml else ()):
        c1, r1, c2, r2 = _col_index(m.group(1)), int(m.group(2)), _col_index(m.group(3)), int(m.group(4))
        rng = f"{m.group(1).decode()}{r1}:{m.group(3).decode()}{r2}"
        if r1 <= row0 <= r2:
            header.append(rng)
            continue
        for r in range(r1, min(r2, r1 + 100_000) + 1):
            for c in range(c1, min(c2, c1 + 1000) + 1):
                if (r, c) != (r1, c1):
                    data.append((r - row0 - 1, c - col0, f"{_col_letters(c)}{r}", rng))
    return formulas, header, data


def read_xlsx(path: Path, src: str, sheet: str | int, max_rows: int) -> Any:
    """An Excel sheet as a :class:`~cips_stats._io.RawTable`, checked as the module docstring says."""
    from ._io import RawTable, _check_rows, _read_xlsx

    formulas: list = []
    header: list = []
    merged: list = []
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        z = None  # not a zip: the reader names the error
    if z is not None:
        with z:
            member = _sheet_member(z, sheet) if "xl/workbook.xml" in z.namelist() else None
            if member is not None and member in z.namelist():
                n, top = _declared_rows(z, member)
                _check_rows(n, max_rows, src)
                formulas, header, merged = scan_sheet(z.read(member), top)
    if header:
        raise DataError(f"Cannot read {src}: the header row has merged cells ({', '.join(header)}).",
                        [Problem(rule="xlsx_merged_header", file=src, value=r,
                                 message=f"The header cells {r} are merged: the columns after the first have no "
                                         f"name in the file. Unmerge them and name every column.")
                         for r in header])
    frame = _read_xlsx(path, src, sheet).reset_index(drop=True)
    _check_rows(len(frame), max_rows, src)
    names = [str(c) for c in frame.columns]
    findings = []
    for rule, cells, why in (
            ("xlsx_formula_no_value", formulas,
             "The cell {cell} holds a formula without a saved value (the file was not recalculated): its value "
             "is unknown. Open and save the file in Excel, or paste the values."),
            ("xlsx_merged_cell", merged,
             "The cell {cell} is part of the merged range {rng}: Excel shows the value of the range's first cell "
             "here, but the file stores it only there. Unmerge the cells and fill in the values.")):
        cells = [c for c in cells if 0 <= c[0] < len(frame) and 0 <= c[1] < len(names)]
        for col in sorted({c[1] for c in cells}):
            mine = [c for c in cells if c[1] == col]
            findings.append((rule, np.array([c[0] for c in mine], dtype=np.int64), names[col], None,
                             [why.format(cell=c[2], rng=c[3]) for c in mine]))
    return RawTable(frame=frame, source=src, format="xlsx", findings=findings)
