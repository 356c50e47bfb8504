"""Loader limits and inputs that used to escape as other exceptions (issue 14): nested types,
Excel formula and merged cells, row limits checked before reading, YAML bombs, huge scales, extreme weights."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats import data as csd

INST = cs.Instrument.default()


def small_raw(n: int, group: str = "officials") -> pd.DataFrame:
    rng = np.random.default_rng(n)
    raw = pd.DataFrame({"respondent_id": [f"r{k}" for k in range(n)], "country": "X", "iteration": 1,
                        "group": group, "weight": 1.0})
    for i in INST.items_for(group):
        raw[i] = rng.integers(1, 6, n).astype(float)
    return raw


# ================================================================ nested types
def test_list_and_struct_parquet_columns_are_data_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = small_raw(3)
    table = pa.Table.from_pandas(raw, preserve_index=False)
    table = table.append_column("tags", pa.array([[1, 2], [], None], type=pa.list_(pa.int64())))
    table = table.append_column("meta", pa.array([{"a": 1}, {"a": 2}, None], type=pa.struct([("a", pa.int64())])))
    p = tmp_path / "nested.parquet"
    pq.write_table(table, p)
    with pytest.raises(cs.DataError) as e:
        cs.load(p, strict=False)
    assert [(q.rule, q.column, q.value) for q in e.value.problems] == [
        ("column_nested", "tags", "list<element: int64>"), ("column_nested", "meta", "struct<a: int64>")]
    assert e.value.problems[0].message == ("The column holds nested values of type list<element: int64>; a respondent "
                                           "table holds one value per cell.")


def test_list_values_in_dataframe_cells_are_problems():
    raw = small_raw(3).astype(object)
    raw.at[1, "LC1"] = [4, 5]
    raw.at[2, "country"] = {"name": "X"}
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(q.rule, q.row, q.column, q.value) for q in e.value.problems] == [
        ("value_nested", 2, "LC1", "[4, 5]"), ("value_nested", 3, "country", "{'name': 'X'}"),
        ("country_missing", 3, "country", None)]
    data = cs.load(raw, strict=False)
    assert len(data.frame) == 2 and np.isnan(data.frame.loc[1, "LC1"])


def test_arrow_list_dtype_in_a_dataframe_is_a_data_error():
    import pyarrow as pa

    raw = small_raw(2)
    raw["tags"] = pd.Series([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(q.rule, q.column) for q in e.value.problems] == [("column_nested", "tags")]


# ================================================================ Excel: formulas without values, merged cells
def _xlsx_with(tmp_path, formula: bool = False, merged_data: bool = False, merged_header: bool = False):
    from openpyxl import Workbook

    raw = small_raw(3)
    wb = Workbook()
    ws = wb.active
    ws.append(list(raw.columns))
    for row in raw.itertuples(index=False):
        ws.append(list(row))
    lc1 = list(raw.columns).index("LC1") + 1
    if formula:
        ws.cell(row=3, column=lc1, value="=2+2")   # openpyxl writes no cached value
    if merged_data:
        ws.merge_cells(start_row=2, start_column=lc1, end_row=3, end_column=lc1)
    if merged_header:
        ws.merge_cells(start_row=1, start_column=lc1, end_row=1, end_column=lc1 + 1)
    p = tmp_path / "x.xlsx"
    wb.save(p)
    return p, raw


def test_xlsx_formula_without_cached_value_is_a_problem(tmp_path):
    p, _ = _xlsx_with(tmp_path, formula=True)
    with pytest.raises(cs.DataError) as e:
        cs.load(p)
    cell = f"{_letters(list(small_raw(3).columns).index('LC1'))}3"
    assert [(q.rule, q.row, q.column, q.message) for q in e.value.problems] == [
        ("xlsx_formula_no_value", 2, "LC1",
         f"The cell {cell} holds a formula without a saved value (the file was not recalculated): its value is "
         f"unknown. Open and save the file in Excel, or paste the values.")]
    data = cs.load(p, strict=False)
    ex = data.exclusions
    assert ex.loc[ex["rule"] == "xlsx_formula_no_value", "row"].tolist() == [2]


def test_xlsx_merged_cells_are_problems_and_merged_header_is_fatal(tmp_path):
    p, _ = _xlsx_with(tmp_path, merged_data=True)
    with pytest.raises(cs.DataError) as e:
        cs.load(p)
    col = _letters(list(small_raw(3).columns).index("LC1"))
    assert [(q.rule, q.row, q.column) for q in e.value.problems] == [("xlsx_merged_cell", 2, "LC1")]
    assert e.value.problems[0].message.startswith(f"The cell {col}3 is part of the merged range {col}2:{col}3")
    p, _ = _xlsx_with(tmp_path, merged_header=True)
    with pytest.raises(cs.DataError) as e:
        cs.load(p, strict=False)
    assert [q.rule for q in e.value.problems] == ["xlsx_merged_header"]


def _letters(k: int) -> str:
    from cips_stats._xlsx import _col_letters

    return _col_letters(k)


# ================================================================ limits checked before reading
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "sav", "dta", "parquet", "frame"])
def test_max_rows_is_checked_before_the_table_is_read(tmp_path, fmt):
    raw = small_raw(12)
    src = raw if fmt == "frame" else tmp_path / f"m.{fmt}"
    if fmt != "frame":
        cs.data.write_raw(raw, src)
    with pytest.raises(cs.DataError) as e:
        cs.load(src, max_rows=10)
    where = "<DataFrame>" if fmt == "frame" else str(src)
    assert [(q.rule, q.value, q.message) for q in e.value.problems] == [
        ("table_too_large", 12, "the file holds 12 data records, more than max_rows=10; pass a larger max_rows= "
                                "(or --max-rows) if this is intended.")]
    assert e.value.problems[0].file == where
    assert len(cs.load(src, max_rows=12).frame) == 12


def test_a_csv_with_too_many_records_is_refused_before_it_is_read_whole(tmp_path, monkeypatch):
    from pathlib import Path

    from cips_stats import _io

    p = tmp_path / "long.csv"
    header = "respondent_id,country,iteration,group,weight"
    p.write_bytes((header + "\n" + "r,X,1,officials,1\n" * 150_000 + "\n\n").encode())
    monkeypatch.setattr(_io, "_BLOCK", 1 << 16)          # many blocks
    def no_whole_read(self):                            # noqa: E306 - the check must not read the file whole
        raise AssertionError(f"{self} was read whole")
    monkeypatch.setattr(Path, "read_bytes", no_whole_read)
    with pytest.raises(cs.DataError) as e:
        cs.load(p, max_rows=149_999)
    assert [(q.rule, q.value) for q in e.value.problems] == [("table_too_large", 150_000)]
    assert e.value.problems[0].message.startswith("the file holds 150,000 data records, more than max_rows=149,999")
    # exactly max_rows records passes the streamed check (and the file is then read)
    with pytest.raises(cs.DataError, match="was read whole"):     # the reader's failure, as a typed error
        cs.load(p, max_rows=150_000)
    # quotes make lines and records differ: the streamed count steps aside, the full check counts
    monkeypatch.undo()
    q = tmp_path / "quoted.csv"
    q.write_text(header + "\n" + '"a\nb",X,1,officials,1\n' * 3, encoding="utf-8")
    assert _io._csv_records_streamed(q) is None
    with pytest.raises(cs.DataError, match="holds 3 data records, more than max_rows=2"):
        cs.load(q, max_rows=2)


def test_xlsx_declaring_ten_million_rows_is_refused_at_once(tmp_path):
    p = tmp_path / "big.xlsx"
    cs.data.write_raw(small_raw(3), p)
    with zipfile.ZipFile(p) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = [n for n in parts if n.startswith("xl/worksheets/")][0]
    xml = parts[sheet]
    if b"<dimension" in xml:
        import re

        xml = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:BZ10000001"', xml)
    else:
        xml = xml.replace(b"<sheetData>", b'<dimension ref="A1:BZ10000001"/><sheetData>', 1)
    parts[sheet] = xml
    with zipfile.ZipFile(p, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)
    t0 = time.perf_counter()
    with pytest.raises(cs.DataError) as e:
        cs.load(p)
    assert time.perf_counter() - t0 < 2
    assert e.value.problems[0].rule == "table_too_large" and e.value.problems[0].value == 10_000_000


def test_parquet_row_count_from_metadata(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = small_raw(30)
    p = tmp_path / "rg.parquet"
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), p, row_group_size=7)
    assert pq.ParquetFile(p).num_row_groups == 5
    assert cs.load(p).fingerprint == cs.load(raw).fingerprint
    with pytest.raises(cs.DataError, match="holds 30 data records, more than max_rows=29"):
        cs.load(p, max_rows=29)


def test_bad_load_arguments_are_data_errors():
    raw = small_raw(2)
    for kw, name in [({"max_rows": 0}, "max_rows"), ({"decimal": ";"}, "decimal"), ({"weight": 3}, "weight"),
                     ({"columns": ["weight"]}, "columns")]:
        with pytest.raises(cs.DataError) as e:
            cs.load(raw, **kw)
        assert e.value.problems[0].rule == "argument_invalid" and e.value.problems[0].column == name


# ================================================================ the instrument: bombs and huge scales
def refused_quickly(call, expected: list[tuple[str, str]], within: float = 1.0) -> None:
    """``call()`` raises a DataError with exactly ``expected`` (rule, message) problems, within ``within`` s."""
    t0 = time.perf_counter()
    with pytest.raises(cs.DataError) as e:
        call()
    assert time.perf_counter() - t0 < within
    assert [(q.rule, q.message) for q in e.value.problems] == expected


def test_yaml_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + k)}: &{chr(98 + k)} [*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, "
        f"*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}]\n" for k in range(8))
    refused_quickly(lambda: cs.Instrument.from_yaml(bomb), [
        ("yaml_alias", "Line 2: YAML aliases (*a) are not allowed in an instrument file; write the values out.")])


def test_huge_and_deeply_nested_instrument_files_are_refused_quickly(tmp_path):
    refused_quickly(lambda: cs.Instrument.from_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n"), [  # was a RecursionError
        ("yaml_too_deep", "Line 1: values nested more than 16 levels deep; an instrument needs five.")], within=5)
    refused_quickly(lambda: cs.Instrument.from_yaml("name: " + "x" * 3_000_000 + "\n"), [
        ("yaml_too_large", "The file holds 3,000,007 characters, more than an instrument needs (2,000,000 at most): "
                           "is it the right file?")])
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:                      # sparse: never read
        fh.truncate(9_000_000)
    refused_quickly(lambda: cs.Instrument.from_yaml(big), [
        ("yaml_too_large", "The file holds 9,000,000 bytes, more than an instrument needs (8,000,000 at most): "
                           "is it the right file?")])
    # the packaged instrument, its YAML and a nesting of 16 are fine
    assert cs.Instrument.from_yaml(INST.to_yaml()) == INST
    with pytest.raises(cs.DataError) as e:
        cs.Instrument.from_yaml("name: " + "[" * 15 + "]" * 15 + "\n")
    assert e.value.problems[0].rule != "yaml_too_deep"


def test_a_billion_scale_points_is_refused_quickly():
    spec = INST.to_dict()
    spec["scale"] = {"points": 1_000_000_000}
    refused_quickly(lambda: cs.Instrument.from_dict(spec), [
        ("scale_points", "The scale needs an integer number of points from 2 to 100.")])


# ================================================================ extreme weights
def test_extreme_weights_are_recorded_with_their_rows():
    raw = small_raw(12)
    raw.loc[[2, 9], "weight"] = 4.0                  # Potter candidates: recorded, no warning
    data = cs.load(raw)
    note = data.notes[data.notes["rule"] == "weight_extreme"]
    assert note["row"].tolist() == [3, 10]
    assert note["reason"].iloc[0] == ("The weight is 4 times the median weight of its cell (country, iteration, "
                                      "group), above 3.5 (Potter 1990): kept; consider trimming (cs.weighting).")
    assert "weight_dominant" not in set(data.notes["rule"])
    assert "Note (weight_extreme" not in csd.validate(small_raw(12)).to_text()


def test_a_weight_that_dominates_its_cell_is_a_warning_with_its_row():
    raw = small_raw(12)
    raw.loc[4, "weight"] = 40.0                      # 40 of 51: the cell is mostly respondent 5
    with pytest.warns(cs.errors.SmallCellWarning) as w:
        data = cs.load(raw)
    assert [str(x.message) for x in w] == [
        "1 weight above 3.5 times the median of its cell (Potter 1990) carries at least half of the cell's total "
        "weight (row 5): such a cell's estimate is mostly one respondent's answer. Check the weight column or trim "
        "(cs.weighting); SurveyData.notes lists them. [weight_dominant]"]
    dom = data.notes[data.notes["rule"] == "weight_dominant"]
    assert dom["row"].tolist() == [5] and dom["value"].tolist() == [40.0]
    assert dom["reason"].iloc[0] == ("The weight is 40 times the median weight of its cell of 12 and carries 78% of "
                                     "the cell's total weight: the cell's estimate is mostly this respondent's answer.")
    # a weight at exactly half is dominant; just under half is not
    raw.loc[4, "weight"] = 11.0                       # 11 of 22
    with pytest.warns(cs.errors.SmallCellWarning, match=r"\(row 5\)"):
        cs.load(raw)
    raw.loc[4, "weight"] = 10.99
    assert "weight_dominant" not in set(cs.load(raw).notes["rule"])
    # a cell below the disclosure minimum is never published: recorded as extreme, not warned
    tiny = small_raw(9)
    tiny.loc[0, "weight"] = 40.0
    d = cs.load(tiny)
    assert set(d.notes["rule"]) == {"weight_extreme"}
    # many rows: the first ten are named, then a count
    many = pd.concat([small_raw(12).assign(country=f"C{k:02d}") for k in range(12)], ignore_index=True)
    many["respondent_id"] = [f"r{k}" for k in range(len(many))]
    many.loc[many.index % 12 == 0, "weight"] = 1e9
    with pytest.warns(cs.errors.SmallCellWarning) as w:
        cs.load(many)
    assert "12 weights above 3.5 times the median of their cell (Potter 1990) carry" in str(w[0].message)
    assert "(rows 1, 13, 25, 37, 49, 61, 73, 85, 97, 109 and 2 more)" in str(w[0].message)


def test_huge_weights_never_overflow_silently():
    import warnings

    raw = small_raw(12)
    raw.loc[4, "weight"] = 1e300
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(q.rule, q.row, q.column, q.value, q.message) for q in e.value.problems] == [
        ("weight_too_large", 5, "weight", 1e300,
         "The weight is above 1e+15: not a plausible survey weight (sums of its square overflow).")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no overflow RuntimeWarning, no other warning
        d = cs.load(raw, strict=False)
    assert len(d.frame) == 11 and d.frame["weight"].max() == 1.0
    # the largest legal weight: dominant (warned) and every estimate stays finite without overflow
    raw.loc[4, "weight"] = csd.MAX_WEIGHT
    with pytest.warns(cs.errors.SmallCellWarning, match="weight_dominant"):
        d = cs.load(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sq = float(np.sum(d.frame["weight"].to_numpy() ** 2))
        r = cs.estimate.survey_mean(d, "LC1")
    assert np.isfinite(sq) and np.isfinite(r.to_frame()["estimate"]).all()
    assert r.to_frame()["estimate"].iloc[0] == pytest.approx(d.frame["LC1"].iloc[4], abs=1e-9)


def test_unusual_dtypes_are_read_or_reported_never_coerced_silently():
    raw = small_raw(3)
    raw["LC1"] = np.array([1 + 2j, 2, 3])           # complex: not a code (the real part is never taken)
    raw["LC2"] = pd.to_datetime(["2020-01-01"] * 3)  # dates: not codes
    raw["LC3"] = pd.Categorical([1, 2, 3])           # categorical numbers: codes
    raw["LC4"] = pd.array([1, None, 3], dtype="Int64")
    raw["weight"] = pd.array([1.0, 2.0, None], dtype="Float64")
    raw["country"] = pd.array(["a", "a", "b"], dtype="string[pyarrow]")
    data = cs.load(raw, strict=False)
    ex = data.exclusions
    assert sorted(zip(ex["row"].astype(int), ex["column"], ex["rule"])) == sorted(
        [(r, c, "code_non_numeric") for r in (1, 2, 3) for c in ("LC1", "LC2")] + [(3, "weight", "weight_missing")])
    assert data.frame["LC3"].tolist() == [5.0, 4.0]   # reverse-keyed: 1 -> 5, 2 -> 4
    assert data.frame["LC4"].isna().tolist() == [False, True] and data.frame["country"].tolist() == ["a", "a"]
