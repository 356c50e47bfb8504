"""Tests of cips_stats.data: loading, validation rules, recoding, accounting and file round trips.

Row numbers in every expectation are 1-based data record numbers (header not counted).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cips_stats as cs
from cips_stats import data as csd
from cips_stats._io import read_table

INST = cs.Instrument.default()
OFFICIAL_ONLY = [i for i in INST.items_for("officials") if i not in INST.items_for("private")]
PRIVATE_ONLY = [i for i in INST.items_for("private") if i not in INST.items_for("officials")]
FORMATS = ["csv", "xlsx", "sav", "dta", "parquet"]


def raw_survey(n: int = 24, seed: int = 0, inst: cs.Instrument = INST, *, weight: bool = True,
               design: bool = True, demographics: bool = True, missing: bool = True) -> pd.DataFrame:
    """A valid raw respondent table (answer codes as collected, NaN = not asked / blank)."""
    rng = np.random.default_rng(seed)
    groups = np.array(inst.group_ids)[np.arange(n) % len(inst.group_ids)]
    cols: dict = {
        "respondent_id": [f"R{i:04d}" for i in range(n)],
        "country": rng.choice(["Alpha", "Beta", "Gamma"], n),
        "iteration": rng.integers(1, 3, n),
        "group": groups,
    }
    if weight:
        cols["weight"] = rng.uniform(0.3, 3.0, n)
    if design:
        cols["stratum"] = rng.choice(["north", "south"], n)
        cols["cluster"] = rng.integers(1, 6, n)
    if demographics:
        for d in inst.demographics:
            v = rng.choice(list(d.categories), n).astype(object)
            v[~np.isin(groups, d.groups)] = None
            cols[d.name] = v
    frame = pd.DataFrame(cols)
    items = {}
    for it in inst.items:
        v = rng.integers(1, inst.scale.points + 1, n).astype(float)
        if missing:
            u = rng.random(n)
            codes = sorted(inst.scale.missing)
            if codes:
                v[u < 0.06] = codes[0]
                v[(u >= 0.06) & (u < 0.09)] = codes[-1]
            v[(u >= 0.09) & (u < 0.13)] = np.nan
        v[~np.isin(groups, it.groups)] = np.nan
        items[it.id] = v
    return pd.concat([frame, pd.DataFrame(items)], axis=1)


def expected_recode(raw: pd.DataFrame, inst: cs.Instrument = INST) -> pd.DataFrame:
    """Scalar reference recoding (independent of the vectorised loader)."""
    out = {}
    for it in inst.items:
        vals = []
        for v in raw[it.id].tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)) or int(v) not in inst.scale.codes:
                vals.append(np.nan)
            else:
                vals.append(float(inst.scale.points + 1 - int(v)) if it.reverse else float(v))
        out[it.id] = vals
    return pd.DataFrame(out)


def write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    p = path / f"survey.{fmt}"
    return csd.write_raw(frame, p, instrument=INST)


# ============================================================================ load and recode
def test_load_dataframe_recodes_and_types():
    raw = raw_survey(40, seed=1)
    data = cs.load(raw, instrument=INST)
    f = data.frame
    assert isinstance(data, cs.SurveyData)
    assert len(f) == 40 and data.n_input_rows == 40 and data.source == "<DataFrame>"
    demo = [d.name for d in INST.demographics]
    assert list(f.columns) == ["respondent_id", "country", "iteration", "group", "weight", "stratum",
                               "cluster", *demo, *INST.item_ids]
    assert f["iteration"].dtype == np.int64 and f["weight"].dtype == np.float64
    assert all(f[i].dtype == np.float64 for i in INST.item_ids)
    assert f["cluster"].tolist() == [str(c) for c in raw["cluster"]]
    assert f["country"].tolist() == raw["country"].tolist()
    pd.testing.assert_frame_equal(f[list(INST.item_ids)], expected_recode(raw))
    np.testing.assert_array_equal(f["weight"].to_numpy(), raw["weight"].to_numpy())


def test_reverse_keys_applied_once(tmp_path):
    raw = raw_survey(10, seed=2, missing=False)
    rev = [i for i in INST.reverse_items() if i in INST.items_for("officials")][0]
    raw.loc[0, "group"] = "officials"
    for it in INST.items:
        raw.loc[0, it.id] = 1.0 if "officials" in it.groups else np.nan
    data = cs.load(raw)
    assert data.frame.loc[0, rev] == INST.scale.points  # 1 -> 5, once
    again = cs.load(csd.write_raw(raw, tmp_path / "s.csv"))
    assert again.frame.loc[0, rev] == INST.scale.points  # the file holds raw codes, recoded once on load


def test_missing_codes_recorded_one_row_each():
    raw = raw_survey(30, seed=3)
    data = cs.load(raw)
    ex = data.exclusions
    rec = ex[ex["rule"] == "missing_code"]
    n8 = int((raw[list(INST.item_ids)] == 8).sum().sum())
    n9 = int((raw[list(INST.item_ids)] == 9).sum().sum())
    assert (rec["reason"] == "dont_know").sum() == n8 and (rec["reason"] == "refused").sum() == n9
    assert n8 > 0 and n9 > 0
    r = rec.iloc[0]
    assert raw.loc[int(r["row"]) - 1, r["column"]] == r["value"]
    assert raw.loc[int(r["row"]) - 1, "respondent_id"] == r["respondent_id"]
    assert np.isnan(data.frame.loc[int(r["row"]) - 1, r["column"]])
    assert set(rec["scope"]) == {"value"}


def test_weight_defaults_to_one_and_optional_columns():
    raw = raw_survey(8, seed=4, weight=False, design=False, demographics=False)
    data = cs.load(raw)
    assert data.frame["weight"].tolist() == [1.0] * 8
    assert list(data.frame.columns[:5]) == csd.KEY_COLUMNS and not data.has_strata and not data.has_clusters
    assert data.exclusions["rule"].isin(["missing_code"]).all()


def test_numeric_ids_and_iterations_mapping():
    raw = raw_survey(6, seed=5)
    raw["respondent_id"] = np.arange(101, 107)
    raw["iteration"] = ["2020-21", "2023", "2023", "2020-21", "2023", "2020-21"]
    data = cs.load(raw, iterations={"2020-21": 1, "2023": 2})
    assert data.frame["respondent_id"].tolist() == [str(i) for i in range(101, 107)]
    assert data.frame["iteration"].tolist() == [1, 2, 2, 1, 2, 1]
    with pytest.raises(cs.DataError) as e:
        cs.load(raw, iterations={"2020-21": 1, "2023": 0})
    assert e.value.problems[0].rule == "argument_invalid"


def test_unknown_columns_kept_aside_not_an_error():
    raw = raw_survey(5, seed=6)
    raw["interviewer"] = ["a", "b", "c", "d", "e"]
    data = cs.load(raw)
    assert "interviewer" not in data.frame.columns
    assert data.aside["interviewer"].tolist() == ["a", "b", "c", "d", "e"]
    assert data.aside["respondent_id"].tolist() == data.frame["respondent_id"].tolist()
    ex = data.exclusions
    note = ex[ex["rule"] == "unknown_column"]
    assert note["column"].tolist() == ["interviewer"] and note["scope"].tolist() == ["column"]
    assert csd.validate(raw).unknown_columns == ("interviewer",)


def test_subset_and_fingerprint_stable():
    raw = raw_survey(20, seed=7)
    a, b = cs.load(raw), cs.load(raw.copy())
    assert a.fingerprint == b.fingerprint
    sub = a.subset(group="private")
    assert set(sub.frame["group"]) == {"private"}
    assert set(sub.exclusions["respondent_id"]) <= set(sub.frame["respondent_id"])
    raw2 = raw.copy()
    raw2.loc[0, "LC1"] = 1 if raw2.loc[0, "LC1"] != 1 else 2
    assert cs.load(raw2).fingerprint != a.fingerprint


def test_instrument_from_yaml_path(tmp_path):
    p = tmp_path / "inst.yaml"
    INST.to_yaml(p)
    raw = raw_survey(6, seed=8)
    assert cs.load(raw, instrument=str(p)).fingerprint == cs.load(raw).fingerprint


def test_four_point_instrument_codes():
    inst4 = cs.Instrument.default(points=4)
    raw = raw_survey(12, seed=9, inst=inst4)
    data = cs.load(raw, instrument=inst4)
    pd.testing.assert_frame_equal(data.frame[list(inst4.item_ids)], expected_recode(raw, inst4))
    raw.loc[0, inst4.items_for(raw.loc[0, "group"])[0]] = 5
    with pytest.raises(cs.DataError) as e:
        cs.load(raw, instrument=inst4)
    assert [p.rule for p in e.value.problems] == ["code_out_of_scale"]


# ============================================================================ file round trips
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(tmp_path, fmt):
    raw = raw_survey(30, seed=11)
    raw["note"] = "free text"
    ref = cs.load(raw)
    path = write(raw, tmp_path, fmt)
    data = cs.load(path)
    assert data.source == str(path)
    assert data.fingerprint == ref.fingerprint
    pd.testing.assert_frame_equal(data.frame, ref.frame)
    pd.testing.assert_frame_equal(data.exclusions.drop(columns="value"), ref.exclusions.drop(columns="value"))
    assert data.aside["note"].tolist() == ["free text"] * 30


def test_round_trip_dataframe_identity():
    raw = raw_survey(30, seed=11)
    assert cs.load(raw).fingerprint == cs.load(raw.reset_index(drop=True).copy()).fingerprint


def test_sav_value_labels_retained(tmp_path):
    raw = raw_survey(10, seed=12)
    data = cs.load(write(raw, tmp_path, "sav"))
    lab = data.value_labels["LC1"]
    assert lab[1] == "Strongly disagree" and lab[5] == "Strongly agree"
    assert lab[8] == "dont_know" and lab[9] == "refused"
    assert data.value_labels["gender"] == {1: "female", 2: "male"}
    # demographics were written as labelled codes and come back as their labels
    assert data.frame["gender"].tolist() == raw["gender"].tolist()
    import pyreadstat

    df, meta = pyreadstat.read_sav(str(tmp_path / "survey.sav"), user_missing=True)
    assert df["gender"].dtype.kind == "f"
    assert meta.missing_ranges["LC1"] == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}]


def test_sav_user_missing_codes_accepted(tmp_path):
    import pyreadstat

    raw = raw_survey(6, seed=13, missing=False)
    item = INST.items_for(raw.loc[2, "group"])[0]
    raw.loc[2, item] = 7.0
    out = raw.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].fillna("").astype(str)
    path = tmp_path / "um.sav"
    pyreadstat.write_sav(out, str(path), missing_ranges={item: [7]},
                         variable_value_labels={item: {7: "Not applicable"}})
    data = cs.load(path)
    ex = data.exclusions
    um = ex[ex["rule"] == "user_missing"]
    assert um[["row", "column"]].values.tolist() == [[3, item]]
    assert um["reason"].iloc[0] == "user_missing: Not applicable"
    assert np.isnan(data.frame.loc[2, item])
    # the same code without the file's declaration is a problem
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(p.rule, p.row, p.column, p.value) for p in e.value.problems] == [("code_out_of_scale", 3, item, 7.0)]


def test_csv_text_conventions(tmp_path):
    raw = raw_survey(6, seed=14, missing=False)
    cols = list(raw.columns)
    a, b = INST.items_for(raw.loc[0, "group"])[:2]
    path = tmp_path / "t.csv"
    raw.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    cells[cols.index(a)] = " 4 "
    cells[cols.index(b)] = "4.0"
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    data = cs.load(path)
    ra, rb = (5 - 4 + 1 if INST.item(a).reverse else 4), (2 if INST.item(b).reverse else 4)
    assert data.frame.loc[0, a] == ra and data.frame.loc[0, b] == rb
    co = data.coercions
    assert co[["row", "column", "value", "rule"]].values.tolist() == [[1, a, " 4 ", "text_whitespace"]]
    cells[cols.index(b)] = "NA"
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    assert [(p.rule, p.row, p.column, p.value, p.file) for p in e.value.problems] == [
        ("code_non_numeric", 1, b, "NA", str(path))]


def test_row_number_is_data_record_number(tmp_path):
    raw = raw_survey(9, seed=15, missing=False)
    item = INST.items_for(raw.loc[6, "group"])[0]
    raw.loc[6, item] = 6
    path = tmp_path / "r.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    p = e.value.problems[0]
    assert p.row == 7
    line = path.read_text().splitlines()[p.row]  # row n is on text line n + 1 (1-based)
    assert line.startswith(raw.loc[6, "respondent_id"] + ",")


def test_xlsx_whole_float_is_code_and_fraction_is_problem(tmp_path):
    raw = raw_survey(5, seed=16, missing=False)
    item = INST.items_for(raw.loc[1, "group"])[0]
    raw.loc[1, item] = 4.5
    path = write(raw, tmp_path, "xlsx")
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    assert [(p.rule, p.row, p.column, p.value) for p in e.value.problems] == [("code_not_integer", 2, item, 4.5)]


# ============================================================================ read errors
def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(cs.DataError) as e:
        cs.load(tmp_path / "nope.csv")
    assert e.value.problems[0].rule == "file_not_found" and e.value.problems[0].file == str(tmp_path / "nope.csv")


def test_unknown_extension_is_data_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{}")
    with pytest.raises(cs.DataError) as e:
        cs.load(p)
    assert e.value.problems[0].rule == "file_format" and str(p) in str(e.value)
    with pytest.raises(cs.DataError):
        csd.write_raw(raw_survey(3), p)


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_file_is_data_error(tmp_path, fmt):
    p = tmp_path / f"bad.{fmt}"
    if fmt == "csv":
        p.write_text('respondent_id,country\n"unterminated,x\n', encoding="utf-8")
    else:
        p.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(cs.DataError) as e:
        cs.load(p)
    prob = e.value.problems[0]
    assert prob.file == str(p)
    assert prob.rule == ("csv_record_length" if fmt == "csv" else "file_unreadable")
    assert str(p) in str(e.value)
    with pytest.raises(cs.DataError):
        cs.load(p, strict=False)
    assert not csd.validate(p).ok


@pytest.mark.parametrize("body, rows", [
    ("R1,X,1,private\nR2,X,1\n", [(2, 3)]),                       # short record: pandas pads with blanks
    ("R1,X,1,private,extra,more\nR2,X,1,private\n", [(1, 6)]),     # long record: pandas makes an index
    ("R1,X\n\nR2,X,1,private,5\n", [(1, 2), (2, 5)]),              # blank lines are not records
])
def test_csv_records_must_match_header(tmp_path, body, rows):
    p = tmp_path / "r.csv"
    p.write_text("respondent_id,country,iteration,group\n" + body, encoding="utf-8")
    with pytest.raises(cs.DataError) as e:
        cs.load(p, strict=False)
    assert [(q.rule, q.row, q.value) for q in e.value.problems] == [("csv_record_length", r, k) for r, k in rows]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_duplicate_header_in_file_is_data_error(tmp_path, fmt):
    raw = raw_survey(4, seed=17)
    other = raw.columns[-1]
    raw = raw.rename(columns={other: "LC1"})  # two columns called LC1 in the written file
    path = tmp_path / f"dup.{fmt}"
    if fmt == "csv":
        raw.to_csv(path, index=False)
    else:
        raw.to_excel(path, index=False)
    with pytest.raises(cs.DataError) as e:
        cs.load(path, strict=False)
    assert [(p.rule, p.column, p.file) for p in e.value.problems] == [("column_duplicate", "LC1", str(path))]


def test_named_index_becomes_a_column(tmp_path):
    raw = raw_survey(6, seed=18)
    ref = cs.load(raw)
    indexed = raw.set_index("respondent_id")
    assert cs.load(indexed).fingerprint == ref.fingerprint
    indexed.to_parquet(tmp_path / "i.parquet")
    assert cs.load(tmp_path / "i.parquet").fingerprint == ref.fingerprint
    shuffled = raw.set_axis(np.arange(100, 106))  # an unnamed index carries no data: dropped
    assert cs.load(shuffled).fingerprint == ref.fingerprint


def test_not_a_table_is_data_error():
    with pytest.raises(cs.DataError) as e:
        cs.load(42)
    assert e.value.problems[0].rule == "source_type"


# ============================================================================ one test per rule
def _mutate(rule: str, raw: pd.DataFrame):
    """Apply one corruption; return (frame, load kwargs, expected (rule, row, column, value))."""
    raw = raw.astype({c: object for c in raw.columns})
    kw: dict = {}
    g0 = raw.loc[2, "group"]
    item = INST.items_for(g0)[0]
    if rule == "respondent_id_missing":
        raw.loc[2, "respondent_id"] = None
        exp = (rule, 3, "respondent_id", None)
    elif rule == "respondent_id_duplicate":
        raw.loc[4, "respondent_id"] = raw.loc[1, "respondent_id"]
        exp = (rule, 5, "respondent_id", raw.loc[1, "respondent_id"])
    elif rule == "country_missing":
        raw.loc[2, "country"] = ""
        exp = (rule, 3, "country", "")
    elif rule == "group_missing":
        raw.loc[2, "group"] = None
        for it in INST.item_ids:  # a respondent without a group answers nothing we could check
            raw.loc[2, it] = np.nan
        exp = (rule, 3, "group", None)
    elif rule == "group_unknown":
        raw.loc[2, "group"] = "customs"
        exp = (rule, 3, "group", "customs")
    elif rule == "iteration_missing":
        raw.loc[2, "iteration"] = np.nan
        exp = (rule, 3, "iteration", np.nan)
    elif rule == "iteration_invalid":
        raw.loc[2, "iteration"] = 0
        exp = (rule, 3, "iteration", 0)
    elif rule == "iteration_unknown_label":
        raw["iteration"] = raw["iteration"].map({1: "2020-21", 2: "2023"})
        raw.loc[2, "iteration"] = "2025"
        kw["iterations"] = {"2020-21": 1, "2023": 2}
        exp = (rule, 3, "iteration", "2025")
    elif rule == "weight_missing":
        raw.loc[2, "weight"] = None
        exp = (rule, 3, "weight", None)
    elif rule == "weight_non_numeric":
        raw.loc[2, "weight"] = "heavy"
        exp = (rule, 3, "weight", "heavy")
    elif rule == "weight_nonfinite":
        raw.loc[2, "weight"] = np.inf
        exp = (rule, 3, "weight", np.inf)
    elif rule == "weight_zero":
        raw.loc[2, "weight"] = 0.0
        exp = (rule, 3, "weight", 0.0)
    elif rule == "weight_negative":
        raw.loc[2, "weight"] = -1.5
        exp = (rule, 3, "weight", -1.5)
    elif rule == "stratum_missing":
        raw.loc[2, "stratum"] = None
        exp = (rule, 3, "stratum", None)
    elif rule == "cluster_missing":
        raw.loc[2, "cluster"] = np.nan
        exp = (rule, 3, "cluster", np.nan)
    elif rule == "row_duplicate":
        row = raw.loc[1].copy()
        row["respondent_id"] = "COPY"
        raw.loc[4] = row
        exp = (rule, 5, None, None)
    elif rule == "no_answers":
        for it in INST.item_ids:
            raw.loc[2, it] = np.nan
        exp = (rule, 3, None, None)
    elif rule == "code_non_numeric":
        raw.loc[2, item] = "agreed"   # not a label of the scale ("Agree" would be read as 4)
        exp = (rule, 3, item, "agreed")
    elif rule == "code_not_integer":
        raw.loc[2, item] = 2.5
        exp = (rule, 3, item, 2.5)
    elif rule == "code_out_of_scale":
        raw.loc[2, item] = 0
        exp = (rule, 3, item, 0)
    elif rule == "item_not_asked":
        other = (PRIVATE_ONLY if g0 == "officials" else OFFICIAL_ONLY)[0]
        raw.loc[2, other] = 3
        exp = (rule, 3, other, 3)
    elif rule == "item_column_missing":
        raw = raw.drop(columns=[PRIVATE_ONLY[1]])
        exp = (rule, None, PRIVATE_ONLY[1], None)
    elif rule == "demographic_unknown":
        raw.loc[2, "gender"] = "Femme"  # categories: female, male ("Female" is read as female, recorded)
        exp = (rule, 3, "gender", "Femme")
    elif rule == "demographic_not_asked":
        other = "business_type" if g0 == "officials" else "leadership"  # asked of the other group only
        raw.loc[2, other] = "broker" if other == "business_type" else "yes"
        exp = (rule, 3, other, raw.loc[2, other])
    elif rule == "text_control":
        raw.loc[2, "country"] = "C\x92te"   # cp1252's apostrophe read as Latin-1
        exp = (rule, 3, "country", "C\x92te")
    elif rule == "weight_too_large":
        raw.loc[2, "weight"] = 1e300
        exp = (rule, 3, "weight", 1e300)
    elif rule == "value_nested":
        raw.at[2, item] = [1, 2]
        exp = (rule, 3, item, "[1, 2]")
    else:  # pragma: no cover
        raise AssertionError(rule)
    return raw, kw, exp


#: Rules only a file can trigger (value labels, Excel cells): tested with files below.
FILE_RULES = {"code_unlabelled", "xlsx_formula_no_value", "xlsx_merged_cell"}
ROW_RULES = [r for r, (scope, kind, _) in csd.RULES.items() if kind == "problem" and scope == "row" and r not in FILE_RULES]
VALUE_RULES = [r for r, (scope, kind, _) in csd.RULES.items() if kind == "problem" and scope == "value"
               and r not in FILE_RULES]
COLUMN_RULES = [r for r, (scope, kind, _) in csd.RULES.items() if kind == "problem" and scope == "column"]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b or (a is None and b is None)


@pytest.mark.parametrize("rule", ROW_RULES + VALUE_RULES + COLUMN_RULES)
def test_each_rule_reports_exact_problem(rule):
    raw0 = raw_survey(8, seed=20)
    frame, kw, (erule, erow, ecol, evalue) = _mutate(rule, raw0)
    with pytest.raises(cs.DataError) as e:
        cs.load(frame, **kw)
    probs = e.value.problems
    assert len(probs) == 1, [p.describe() for p in probs]
    p = probs[0]
    assert (p.rule, p.row, p.column) == (erule, erow, ecol)
    assert _same(p.value, evalue), (p.value, evalue)
    assert p.file == "<DataFrame>" and p.message.endswith(".")
    assert str(erow) in p.describe() if erow else True
    # strict=False: recorded and set aside
    data = cs.load(frame, strict=False, **kw)
    ex = data.exclusions
    hit = ex[ex["rule"] == erule]
    assert len(hit) == 1
    assert hit["scope"].iloc[0] == csd.RULES[erule][0]
    if erow is not None:
        assert int(hit["row"].iloc[0]) == erow
    if csd.RULES[erule][0] == "row":
        assert len(data.frame) == len(frame) - 1 and data.excluded_rows == [erow]
        kept_ids = data.frame["respondent_id"].tolist()
        assert str(raw0.loc[erow - 1, "respondent_id"]) not in kept_ids or rule == "respondent_id_duplicate"
    elif csd.RULES[erule][0] == "value":
        assert len(data.frame) == len(frame)
        assert np.isnan(data.frame.loc[erow - 1, ecol])
    else:
        assert len(data.frame) == len(frame) and data.frame[ecol].isna().all()
    rep = csd.validate(frame, **kw)
    assert not rep.ok and [(q.rule, q.row, q.column) for q in rep.problems] == [(erule, erow, ecol)]


@pytest.mark.parametrize("case", ["no_key_column", "duplicate_column", "empty"])
def test_fatal_table_problems_raise_even_when_not_strict(case):
    raw = raw_survey(5, seed=21)
    if case == "no_key_column":
        raw = raw.drop(columns=["country"])
        expected = ("column_missing", "country")
    elif case == "duplicate_column":
        raw = pd.concat([raw, raw[["LC1"]]], axis=1)
        expected = ("column_duplicate", "LC1")
    else:
        raw = raw.iloc[:0]
        expected = ("table_empty", None)
    for strict in (True, False):
        with pytest.raises(cs.DataError) as e:
            cs.load(raw, strict=strict)
        assert [(p.rule, p.column) for p in e.value.problems] == [expected]
    rep = csd.validate(raw)
    assert not rep.ok and rep.n_used_rows == 0 and rep.problems[0].rule == expected[0]


def test_every_problem_listed_not_only_the_first():
    raw = raw_survey(10, seed=22).astype({"weight": object})
    raw.loc[1, "weight"] = 0
    raw.loc[5, "weight"] = -2
    item = INST.items_for(raw.loc[7, "group"])[1]
    raw.loc[7, item] = 6
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(p.rule, p.row) for p in e.value.problems] == [("weight_zero", 2), ("weight_negative", 6),
                                                          ("code_out_of_scale", 8)]
    assert "3 problems" in str(e.value)


# ============================================================================ validate on a broken SPSS file
def test_validate_broken_spss_file_lists_every_problem(tmp_path):
    import pyreadstat

    raw = raw_survey(12, seed=23, missing=False)
    raw = raw.astype({c: object for c in raw.columns})
    g = raw["group"]
    it3 = INST.items_for(g[3])[2]
    it6 = INST.items_for(g[6])[0]
    other = (PRIVATE_ONLY if g[9] == "officials" else OFFICIAL_ONLY)[0]
    raw.loc[3, it3] = 7                                # out of scale
    raw.loc[4, "weight"] = 0.0                         # zero weight
    raw.loc[5, "respondent_id"] = raw.loc[0, "respondent_id"]   # duplicate id
    raw.loc[6, it6] = 3.5                              # not an integer
    raw.loc[8, "group"] = "customs"                    # unknown group
    raw.loc[9, other] = 2                              # item not asked of the group
    raw.loc[10, "iteration"] = -1                      # invalid iteration
    raw["LC2"] = raw["LC2"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    raw.loc[11, "LC2"] = "x" if "LC2" in INST.items_for(g[11]) else raw.loc[11, "LC2"]
    out = raw.copy()
    for c in out.columns:
        if c != "LC2" and c not in ("respondent_id", "country", "group", "stratum", *[d.name for d in INST.demographics]):
            out[c] = pd.to_numeric(out[c]).astype(float)
        elif out[c].dtype == object:
            out[c] = out[c].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    path = tmp_path / "broken.sav"
    pyreadstat.write_sav(out, str(path))
    rep = csd.validate(path)
    got = {(p.rule, p.row, p.column) for p in rep.problems}
    expected = {("code_out_of_scale", 4, it3), ("weight_zero", 5, "weight"),
                ("respondent_id_duplicate", 6, "respondent_id"), ("code_not_integer", 7, it6),
                ("group_unknown", 9, "group"), ("item_not_asked", 10, other),
                ("iteration_invalid", 11, "iteration")}
    if "LC2" in INST.items_for(g[11]):
        expected.add(("code_non_numeric", 12, "LC2"))
    assert got == expected
    assert not rep.ok and rep.n_rows == 12
    assert rep.n_used_rows == 12 - 4  # weight, duplicate id, group, iteration are row-level
    assert all(p.file == str(path) for p in rep.problems)
    text = rep.to_text()
    assert "PROBLEMS FOUND" in text and f"row 4, column '{it3}'" in text
    tab = rep.to_frame()
    assert list(tab.columns) == ["file", "row", "column", "value", "rule", "message"] and len(tab) == len(expected)
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    assert {(p.rule, p.row, p.column) for p in e.value.problems} == expected


def test_validate_clean_is_ok():
    rep = csd.validate(raw_survey(10, seed=24))
    assert rep.ok and rep.problems == [] and rep.n_used_rows == rep.n_rows == 10
    assert "OK" in rep.to_text() and rep.to_frame().empty
    assert rep.provenance.data_fingerprint == cs.load(raw_survey(10, seed=24)).fingerprint


# ============================================================================ accounting invariant
def _is_blank(v) -> bool:
    if v is None or v is pd.NA:
        return True
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return True
    return isinstance(v, str) and "".join(ch for ch in v if ch not in _INVISIBLE).strip() == ""


_INVISIBLE = "\u00ad\u034f\u200b\u200c\u200d\u200e\u200f\u2060\u2063\u2066\u2069\ufeff\U000e0041"
_ASCII_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_PLAIN_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")     # read as a number without a record


def _code(v, inst: cs.Instrument | None = None):
    """Scalar reference parser of an answer code (None when not a usable number).

    Written independently of the loader: ASCII numbers only (Python's float() would also read
    Unicode digits, which the loader refuses), invisible characters and white space ignored,
    a scale or missing-code label (compared without case, '_', apostrophes) read as its code.
    """
    if isinstance(v, (bool, np.bool_)) or isinstance(v, (list, tuple, dict, set, np.ndarray)):
        return None
    if isinstance(v, str):
        t = "".join(ch for ch in v if ch not in _INVISIBLE).strip()
        if _ASCII_NUMBER.fullmatch(t):
            return float(t)
        if inst is not None:
            key = " ".join(t.casefold().replace("_", " ").replace("'", "").replace("’", "").split())
            labels = {**{k + 1: lab for k, lab in enumerate(inst.scale.labels)}, **dict(inst.scale.missing)}
            hits = [c for c, lab in labels.items()
                    if " ".join(str(lab).casefold().replace("_", " ").replace("'", "").split()) == key]
            if len(hits) == 1:
                return float(hits[0])
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v


def assert_accounted(raw: pd.DataFrame, data: cs.SurveyData, inst: cs.Instrument) -> None:
    """Every input row and every non-blank item value is used or listed in exclusions."""
    n = len(raw)
    assert data.n_input_rows == n
    ex = data.exclusions
    row_ex = set(ex.loc[ex["scope"] == "row", "row"].astype(int))
    used = [r for r in range(1, n + 1) if r not in row_ex]
    assert len(data.frame) == len(used)
    assert row_ex <= set(range(1, n + 1))
    val_ex = set(zip(ex.loc[ex["scope"] == "value", "row"].astype(int), ex.loc[ex["scope"] == "value", "column"]))
    missing_cols = set(ex.loc[ex["scope"] == "column", "column"])
    cols = [str(c) for c in raw.columns]
    for k, r in enumerate(used):
        for it in inst.items:
            out = data.frame[it.id].iloc[k]
            if it.id not in cols:
                assert np.isnan(out)
                continue
            v = raw.iloc[r - 1, cols.index(it.id)]
            if _is_blank(v):
                assert np.isnan(out), (r, it.id, v, out)
                continue
            if np.isnan(out):
                assert (r, it.id) in val_ex, (r, it.id, v)
            else:
                c = _code(v, inst)
                assert c is not None and c in inst.scale.codes, (r, it.id, v)
                assert out == (inst.scale.points + 1 - c if it.reverse else c)
                assert (r, it.id) not in val_ex
    # every used value whose text is not a plain number (or plain text) was converted with a record
    co = data.coercions
    coerced = set(zip(co["row"].astype(int), co["column"]))
    frame_cols = {"respondent_id", "country", "group", "iteration", "weight",
                  *[d.name for d in inst.demographics], *inst.item_ids}
    for k, r in enumerate(used):
        for c in frame_cols & set(cols):
            v = raw.iloc[r - 1, cols.index(c)]
            if not isinstance(v, str) or _is_blank(v) or (r, c) in val_ex:
                continue
            out = data.frame[c].iloc[k]
            if _PLAIN_NUMBER.fullmatch(v) or (c not in inst.item_ids and c not in ("iteration", "weight")
                                                 and out == v):
                continue                    # a plain number, or text kept exactly as written
            assert (r, c) in coerced, (r, c, v, out)
    for c in cols:
        known = c in inst.item_ids or c in csd._REQUIRED or c in ("weight", "stratum", "cluster") or \
            c in [d.name for d in inst.demographics]
        if not known:
            assert c in set(ex.loc[ex["rule"] == "unknown_column", "column"])
    col_ex = ex[ex["scope"] == "column"]
    for c, rule in zip(col_ex["column"], col_ex["rule"]):
        assert (rule == "unknown_column" and c in cols) or (rule == "item_column_missing" and c not in cols)
    assert missing_cols <= set(cols) | set(inst.item_ids)


def test_accounting_invariant_on_a_messy_table():
    raw = raw_survey(40, seed=25).astype(object)
    rng = np.random.default_rng(25)
    pool = [7, 0, -3, 4.5, "abc", " 3 ", "", None, np.inf, "NA", True, 8, 9, "2.0"]
    items = list(INST.item_ids)
    for _ in range(60):
        raw.iloc[int(rng.integers(40)), raw.columns.get_loc(items[int(rng.integers(len(items)))])] = \
            pool[int(rng.integers(len(pool)))]
    raw.loc[3, "weight"] = -1
    raw.loc[7, "respondent_id"] = raw.loc[6, "respondent_id"]
    data = cs.load(raw, strict=False)
    assert_accounted(raw, data, INST)
    assert len(data.frame) < 40


# ============================================================================ property-based
SMALL = cs.Instrument.from_dict({
    "name": "small", "scale": {"points": 4, "missing": {8: "dont_know", 9: "refused"}},
    "groups": [{"id": "a"}, {"id": "b"}],
    "demographics": [{"name": "sex", "categories": ["f", "m"], "groups": ["a", "b"]}],
    "factors": [{"id": "f1"}, {"id": "f2"}],
    "items": [{"id": "x1", "factor": "f1", "groups": ["a", "b"]},
              {"id": "x2", "factor": "f1", "groups": ["a"], "reverse": True},
              {"id": "x3", "factor": "f2", "groups": ["a", "b"]},
              {"id": "x4", "factor": "f2", "groups": ["b"]}],
})
SMALL_COLS = ["respondent_id", "country", "iteration", "group", "weight", "sex", "x1", "x2", "x3", "x4"]
BAD_VALUES = [7, 0, -1, 4.5, "abc", " 3 ", "", None, float("inf"), float("nan"), "NA", True, 8, 9, "2.0",
              2, "x y", -0.0, 1e300, "08",
              # issue 14: Unicode digits, signs, exponents, invisible characters, labels
              "\u0664", "\uff14", "\u0967", "+3", "-2", "3e0", ".3e1", "1E0", "3\u200b", "\u200b", "\ufeff2",
              "2\u00ad", "agree", "Dont_Know", "C\x92te", "Cura\u0327ao",
              # nested values and formula strings
              [1, 2], {"a": 1}, (3,), "=1+1", "@x", "-x", "+", "'=1", "\t3", "=HYPERLINK(\"x\")",
              # more of each class: Unicode minus, superscript, no-break and thin spaces, underscores,
              # hex, words Python's float() reads, overflow, bytes, arrays, sets, dates, formulas
              "\u22123", "\u00b3", "3\u00a0", "\u20092", "1_0", "0x3", "nan", "Infinity", "3.", "1e400",
              "\u0663\u0664", "\U0001d7d1", "\u2066" + "2", "2\u2063", "\u034f", "3\U000e0041", b"3", np.array([1, 2]),
              {1, 2}, frozenset(), pd.Timestamp("2020-01-01"), "=3", "=SUM(A1:A2)", "@SUM(1)", "\r2", "+-2",
              "--2", "0003.50", "-0", "1E+0", "NaN", "N/A", "\u00bd"]


@st.composite
def corrupted_tables(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    raw = raw_survey(n, seed=seed, inst=SMALL, design=False).astype(object)
    raw = raw[[c for c in SMALL_COLS if c in raw.columns]]
    ops = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50), st.integers(0, 50),
                                  st.sampled_from(BAD_VALUES)), max_size=10))
    for op, a, b, val in ops:
        r = a % len(raw)
        if op <= 2:    # corrupt a cell anywhere
            raw.iat[r, b % raw.shape[1]] = val
        elif op == 3:  # duplicate a row (same or new id)
            row = raw.iloc[[r]].copy()
            if b % 2:
                row.iloc[0, 0] = f"dup{b}"
            raw = pd.concat([raw, row], ignore_index=True).astype(object)
        elif op == 4 and raw.shape[1] > 1:  # drop a column
            raw = raw.drop(columns=[raw.columns[b % raw.shape[1]]])
        elif op == 5:  # unknown column
            raw[f"extra{b}"] = pd.Series([val] * len(raw), dtype=object)
        else:          # blank a whole row's items
            for c in ("x1", "x2", "x3", "x4"):
                if c in raw.columns:
                    raw.loc[r, c] = None
    fmt = draw(st.sampled_from(["frame", "frame", "csv", "parquet", "sav", "dta", "xlsx", "truncated"]))
    return raw.reset_index(drop=True), fmt


def _to_file(raw: pd.DataFrame, fmt: str, tmp: Path):
    if fmt == "frame":
        return raw
    path = tmp / f"p.{ 'csv' if fmt == 'truncated' else fmt}"
    if fmt in ("csv", "truncated"):
        raw.to_csv(path, index=False)
        if fmt == "truncated":
            b = path.read_bytes()
            path.write_bytes(b[: max(1, len(b) * 2 // 3)])
    elif fmt == "parquet":
        out = raw.copy()
        for c in out.columns:  # pyarrow needs one type per column: mixed columns become text
            if pd.api.types.infer_dtype(out[c], skipna=True) not in ("integer", "floating", "string",
                                                                       "mixed-integer-float", "empty"):
                out[c] = out[c].map(lambda v: None if v is None else str(v))
        out.to_parquet(path, index=False)
    else:
        try:
            csd.write_raw(raw, path, instrument=SMALL)
        except cs.DataError:
            raise
        except Exception:  # a column the writer cannot encode: write its text instead
            out = raw.astype(str)
            csd.write_raw(out, path, instrument=SMALL)
    return path


FATAL = {r for r, (_, kind, _) in csd.RULES.items() if kind == "fatal"}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(case=corrupted_tables())
def test_property_load_accounts_or_raises_data_error(case, tmp_path):
    raw, fmt = case
    src = _to_file(raw, fmt, tmp_path)
    # strict=True: SurveyData or DataError, nothing else
    try:
        strict = cs.load(src, instrument=SMALL)
    except cs.DataError as e:
        assert e.problems and all(isinstance(p, cs.errors.Problem) for p in e.problems)
        strict = None
    # strict=False: accounted SurveyData, or DataError only for problems that leave no table
    try:
        data = cs.load(src, instrument=SMALL, strict=False)
    except cs.DataError as e:
        assert {p.rule for p in e.problems} & FATAL, [p.describe() for p in e.problems]
        assert strict is None
        return
    read = raw if fmt == "frame" else read_table(src).frame
    assert_accounted(read, data, SMALL)
    if strict is not None:
        assert strict.fingerprint == data.fingerprint and data.exclusions["scope"].isin(["value", "column"]).all()
    rep = csd.validate(src, instrument=SMALL)
    assert rep.ok == (strict is not None) and rep.n_used_rows == len(data.frame)


def test_stata_extended_missing_values_are_accounted(tmp_path):
    import pyreadstat

    raw = raw_survey(6, seed=26, missing=False, design=False, demographics=False)
    item = INST.items_for(raw.loc[1, "group"])[0]
    out = raw.astype({item: object, "weight": object})
    out.loc[1, item] = "a"      # Stata .a in an item
    out.loc[4, "weight"] = "b"  # Stata .b in the weight
    path = tmp_path / "ext.dta"
    pyreadstat.write_dta(out, str(path), missing_user_values={item: ["a"], "weight": ["b"]})
    data = cs.load(path, strict=False)
    ex = data.exclusions
    um = ex[ex["rule"] == "user_missing"]
    assert um[["row", "column", "value"]].values.tolist() == [[2, item, ".a"]]
    assert um["reason"].iloc[0] == "user_missing: Stata missing value .a"
    assert np.isnan(data.frame.loc[1, item])
    wm = ex[ex["rule"] == "weight_missing"]
    assert wm["row"].tolist() == [5] and data.excluded_rows == [5]
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    assert [(p.rule, p.row) for p in e.value.problems] == [("weight_missing", 5)]


def test_csv_separator(tmp_path):
    raw = raw_survey(5, seed=27)
    path = tmp_path / "semi.csv"
    raw.to_csv(path, index=False, sep=";")
    with pytest.raises(cs.DataError) as e:
        cs.load(path, sep=",")
    assert e.value.problems[0].rule == "column_missing" and "sep=" in e.value.problems[0].message
    assert cs.load(path, sep=";").fingerprint == cs.load(raw).fingerprint
    detected = cs.load(path)   # the separator is detected from the header, and recorded
    assert detected.fingerprint == cs.load(raw).fingerprint
    assert detected.notes["rule"].tolist() == ["separator_detected"]


# ============================================================================ demographics
def test_demographic_problems_name_value_categories_and_group():
    raw = raw_survey(6, seed=30).astype(object)
    officials = raw.index[raw["group"] == "officials"].tolist()
    private = raw.index[raw["group"] == "private"].tolist()
    raw.loc[officials[0], "experience"] = "5-10"          # not a declared category
    raw.loc[private[0], "leadership"] = "no"              # leadership is asked of officials only
    raw.loc[private[1], "gender"] = 2                     # a bare code is not a category
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    got = [(p.rule, p.row, p.column, p.value, p.message) for p in e.value.problems]
    assert got == sorted([
        ("demographic_unknown", officials[0] + 1, "experience", "5-10",
         "The value '5-10' is not one of the categories declared for 'experience' ('0-4', '5-14', '15+')."),
        ("demographic_not_asked", private[0] + 1, "leadership", "no",
         "The demographic 'leadership' is not asked of group 'private' (only of officials) but holds a value."),
        ("demographic_unknown", private[1] + 1, "gender", 2,
         "The value '2' is not one of the categories declared for 'gender' ('female', 'male')."),
    ], key=lambda t: t[1])
    data = cs.load(raw, strict=False)
    assert len(data.frame) == 6  # value-level: the respondents are kept
    f = data.frame
    assert pd.isna(f.loc[officials[0], "experience"]) and pd.isna(f.loc[private[0], "leadership"])
    assert pd.isna(f.loc[private[1], "gender"])
    assert f.loc[private[1], "experience"] == raw.loc[private[1], "experience"]  # other answers kept
    ex = data.exclusions
    dem = ex[ex["rule"].str.startswith("demographic")]
    assert dem[["row", "column", "rule", "scope"]].values.tolist() == [
        [r, c, rule, "value"] for rule, r, c, _, _ in sorted(got, key=lambda t: t[1])]
    assert dem["reason"].tolist() == [m for *_, m in sorted(got, key=lambda t: t[1])]


def test_missing_demographics_are_allowed_and_counted():
    raw = raw_survey(10, seed=31).astype(object)
    off = raw.index[raw["group"] == "officials"].tolist()
    raw.loc[off[0], "leadership"] = None
    raw.loc[off[1], "leadership"] = "  "                 # white space only: blank (and recorded)
    raw.loc[off[2], "gender"] = np.nan
    data = cs.load(raw)                                  # no problem
    assert pd.isna(data.frame.loc[off[0], "leadership"]) and pd.isna(data.frame.loc[off[2], "gender"])
    rep = csd.validate(raw)
    assert rep.ok and rep.missing_demographics == {"gender": 1, "experience": 0, "leadership": 2,
                                                   "business_type": 0}
    assert "Blank demographics (allowed): gender=1, experience=0, leadership=2, business_type=0." in rep.to_text()
    # blanks of a group that is not asked are not counted (private respondents have no leadership)
    assert raw.loc[raw["group"] == "private", "leadership"].isna().all()


def test_demographic_without_categories_or_groups_accepts_any_value():
    spec = SMALL.to_dict()
    spec["demographics"] = [{"name": "sex", "categories": [], "groups": []}]
    inst = cs.Instrument.from_dict(spec)
    raw = raw_survey(4, seed=32, inst=inst, design=False, demographics=False)
    raw.insert(5, "sex", ["anything", "x", None, "7"])
    assert cs.load(raw, instrument=inst).frame["sex"].tolist()[:2] == ["anything", "x"]


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_demographic_codes_read_as_categories(tmp_path, fmt):
    import pyreadstat

    raw = raw_survey(8, seed=33, design=False)
    ref = cs.load(raw)
    out = raw.copy()
    cats = list(INST.demographics[0].categories)            # gender: female, male
    out["gender"] = [float(cats.index(v) + 1) for v in raw["gender"]]
    out.loc[3, "gender"] = 3.0                            # labelled, but not a category
    out.loc[5, "gender"] = 4.0                            # no label at all
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: "" if v is None else str(v))
    path = tmp_path / f"codes.{fmt}"
    labels = {"gender": {1: "female", 2: "male", 3: "other"}}
    (pyreadstat.write_sav if fmt == "sav" else pyreadstat.write_dta)(out, str(path), variable_value_labels=labels)
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    assert [(p.rule, p.row, p.column, p.value, p.message) for p in e.value.problems] == [
        ("demographic_unknown", 4, "gender", 3,
         "The code 3 is labelled 'other', which is not one of the categories declared for 'gender' "
         "('female', 'male')."),
        ("demographic_unknown", 6, "gender", 4,
         "The code 4 (no value label) is not one of the categories declared for 'gender' ('female', 'male')."),
    ]
    data = cs.load(path, strict=False)
    keep = [r for r in range(8) if r not in (3, 5)]
    assert data.frame["gender"].iloc[keep].tolist() == ref.frame["gender"].iloc[keep].tolist()
    assert data.frame["gender"].iloc[[3, 5]].isna().all()


def test_sav_user_missing_demographic_code_is_recoded(tmp_path):
    import pyreadstat

    raw = raw_survey(6, seed=34, design=False)
    out = raw.copy()
    out["gender"] = [1.0 if v == "female" else 2.0 for v in raw["gender"]]
    out.loc[2, "gender"] = 9.0
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: "" if v is None else str(v))
    path = tmp_path / "um.sav"
    pyreadstat.write_sav(out, str(path), missing_ranges={"gender": [9]},
                         variable_value_labels={"gender": {1: "female", 2: "male", 9: "refused"}})
    data = cs.load(path)                                   # not a problem: declared missing in the file
    ex = data.exclusions
    um = ex[(ex["rule"] == "user_missing") & (ex["column"] == "gender")]
    assert um[["row", "value", "reason"]].values.tolist() == [[3, 9.0, "user_missing: refused"]]
    assert pd.isna(data.frame.loc[2, "gender"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_demographics_round_trip_with_blanks(tmp_path, fmt):
    raw = raw_survey(12, seed=35).astype(object)
    raw.loc[0, "gender"] = None
    raw.loc[raw.index[raw["group"] == "officials"][0], "leadership"] = None
    ref = cs.load(raw)
    data = cs.load(write(raw, tmp_path, fmt))
    assert data.fingerprint == ref.fingerprint
    assert csd.validate(write(raw, tmp_path, fmt)).missing_demographics == csd.validate(raw).missing_demographics


# ============================================================================ labelled group codes
def _write_group_codes(raw: pd.DataFrame, path: Path, codes: dict, labels: dict) -> Path:
    import pyreadstat

    out = raw.copy()
    out["group"] = [float(codes[g]) for g in raw["group"]]
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: "" if v is None else str(v))
    write = pyreadstat.write_sav if path.suffix == ".sav" else pyreadstat.write_dta
    write(out, str(path), variable_value_labels={"group": labels})
    return path


@pytest.mark.parametrize("fmt", ["sav", "dta"])
@pytest.mark.parametrize("by", ["label", "id"])
def test_group_codes_labelled_with_group_label_or_id(tmp_path, fmt, by):
    raw = raw_survey(10, seed=36, design=False)
    labels = ({1: "Customs officials", 2: "Private-sector respondents"} if by == "label"
              else {1: "officials", 2: "private"})
    path = _write_group_codes(raw, tmp_path / f"g.{fmt}", {"officials": 1, "private": 2}, labels)
    data = cs.load(path)
    assert data.fingerprint == cs.load(raw).fingerprint
    co = data.coercions
    rec = co[co["rule"] == "group_label"]
    if by == "label":
        assert rec[["column", "value", "scope"]].values.tolist() == [["group", 1, "column"], ["group", 2, "column"]]
        assert rec["reason"].tolist() == [
            "The code 1 is labelled 'Customs officials', the label of group 'officials': read as 'officials'.",
            "The code 2 is labelled 'Private-sector respondents', the label of group 'private': read as 'private'."]
        assert rec["row"].isna().all()
        assert rec["reason"].iloc[0] in csd.validate(path).to_text()
    else:
        assert rec.empty  # the labels are the ids: nothing converted


def test_group_label_naming_no_group_or_two_groups_is_a_problem(tmp_path):
    raw = raw_survey(6, seed=37, design=False)
    path = _write_group_codes(raw, tmp_path / "g.sav", {"officials": 1, "private": 3},
                              {1: "Customs officials", 3: "Travellers"})
    with pytest.raises(cs.DataError) as e:
        cs.load(path)
    priv = [r + 1 for r in range(6) if raw.loc[r, "group"] == "private"]
    assert [(p.rule, p.row, p.column, p.value) for p in e.value.problems] == [
        ("group_unknown", r, "group", 3) for r in priv]
    assert e.value.problems[0].message == (
        "The code 3 is labelled 'Travellers', which is neither the id nor the label of a group the "
        "instrument declares (officials = 'Customs officials', private = 'Private-sector respondents').")
    data = cs.load(path, strict=False)
    assert data.excluded_rows == priv and set(data.frame["group"]) == {"officials"}
    # a label that is one group's id and another group's label is ambiguous
    spec = SMALL.to_dict()
    spec["groups"] = [{"id": "a", "label": "b"}, {"id": "b", "label": "Group B"}]
    inst = cs.Instrument.from_dict(spec)
    small = raw_survey(4, seed=38, inst=inst, design=False)
    path = _write_group_codes(small, tmp_path / "amb.sav", {"a": 1, "b": 2}, {1: "b", 2: "Group B"})
    with pytest.raises(cs.DataError) as e:
        cs.load(path, instrument=inst)
    rows_a = [r + 1 for r in range(4) if small.loc[r, "group"] == "a"]
    assert [(p.rule, p.row, p.value, p.message) for p in e.value.problems] == [
        ("group_unknown", r, 1, "The code 1 is labelled 'b', which names more than one group (a, b): ambiguous.")
        for r in rows_a]


# ============================================================================ readers: fast paths agree with the slow ones
CSV_BODIES = {
    "lf": "a,b,c\n1,2,3\n4,5,6\n",
    "crlf_no_final_newline": "a,b,c\r\n1,2,3\r\n4,5,6",
    "blank_lines": "a,b,c\n\n1,2,3\n\r\n4,5\n\n",
    "short_and_long": "a,b,c\n1,2\n1,2,3,4\n1,2,3\n,,\n",
    "spaces_only_line": "a,b,c\n   \n1,2,3\n",
    "bom": "\ufeffa,b,c\n1,2,3\n7\n",
    "non_ascii": "a,b,c\nÄ,é,ß\n1,2\n",
    "quoted_falls_back": 'a,b,c\n"1,2",3\n1,2,3\n',
    "lone_cr_falls_back": "a,b,c\r1,2,3\r1,2\r",
}


@pytest.mark.parametrize("name", sorted(CSV_BODIES))
def test_csv_record_check_fast_path_matches_csv_module(tmp_path, monkeypatch, name):
    from cips_stats import _io

    p = tmp_path / "x.csv"
    p.write_bytes(CSV_BODIES[name].encode("utf-8"))

    def check():
        try:
            return ("ok", _io._check_csv_records(p, str(p), "utf-8-sig", ","))
        except cs.DataError as e:
            return ("error", [(q.rule, q.row, q.value, q.message) for q in e.problems])

    fast = check()
    try:
        used_fast = _io._csv_records_fast(p, str(p), "utf-8-sig", ",") is not None
    except cs.DataError:
        used_fast = True
    assert used_fast == (not name.endswith("falls_back"))
    monkeypatch.setattr(_io, "_csv_records_fast", lambda *a: None)  # the csv module only
    assert check() == fast


def test_csv_columns_named_like_pandas_renames_are_not_duplicates(tmp_path):
    raw = raw_survey(4, seed=39)
    raw["note"] = "a"
    raw["note.1"] = "b"   # a real column name, not a renamed duplicate
    for fmt in ("csv", "xlsx"):
        data = cs.load(write(raw, tmp_path, fmt))
        assert data.aside[["note", "note.1"]].values.tolist() == [["a", "b"]] * 4


def test_xlsx_calamine_and_openpyxl_read_the_same(tmp_path, monkeypatch):
    pytest.importorskip("python_calamine", reason="python-calamine is the fast XLSX reader; openpyxl is the fallback")
    from cips_stats import _io

    raw = raw_survey(30, seed=40).astype(object)
    raw["weight"] = np.random.default_rng(40).uniform(0.1, 10, 30) / 3  # full-precision doubles
    item = INST.items_for(raw.loc[1, "group"])[0]
    for r, v in zip(range(2, 9), ["abc", 4.5, True, " 3 ", -0.0, 1e300, "08"]):
        raw.loc[r, INST.items_for(raw.loc[r, "group"])[1]] = v
    raw.loc[1, item] = 7
    path = write(raw, tmp_path, "xlsx")
    fast = cs.load(path, strict=False)
    fast_raw = read_table(path).frame
    monkeypatch.setattr(_io, "_calamine_available", lambda: False)
    slow = cs.load(path, strict=False)
    pd.testing.assert_frame_equal(read_table(path).frame, fast_raw)
    assert fast.fingerprint == slow.fingerprint
    assert (fast.frame["weight"].to_numpy() == raw["weight"].to_numpy(dtype=float)).all()  # exact
    pd.testing.assert_frame_equal(fast.exclusions, slow.exclusions)
    pd.testing.assert_frame_equal(fast.coercions, slow.coercions)


def test_stata_extended_missing_in_a_labelled_demographic(tmp_path):
    import pyreadstat

    raw = raw_survey(6, seed=41, design=False)
    out = raw.astype({"gender": object})
    out["gender"] = pd.Series([1 if v == "female" else 2 for v in raw["gender"]], dtype=object)
    out.loc[2, "gender"] = "a"   # Stata .a: the rest of the column stays labelled codes
    for c in out.columns:
        if out[c].dtype == object and c != "gender":
            out[c] = out[c].map(lambda v: "" if v is None else str(v))
    path = tmp_path / "ext.dta"
    pyreadstat.write_dta(out, str(path), missing_user_values={"gender": ["a"]},
                         variable_value_labels={"gender": {1: "female", 2: "male"}})
    data = cs.load(path)
    expected = raw["gender"].tolist()
    expected[2] = None
    assert [None if pd.isna(v) else v for v in data.frame["gender"]] == expected
    ex = data.exclusions
    assert ex.loc[ex["rule"] == "user_missing", ["row", "column", "value"]].values.tolist() == [[3, "gender", ".a"]]


@pytest.mark.parametrize("body", [
    "respondent_id,country,note\nR1, Alpha ,NA\nR2,,null\n\nR3,Ä ö,\r\n",   # white space, NA text, blanks
    "\ufeffrespondent_id,country\r\nR1,X\r\nR2,Y",                            # BOM, CRLF, no final newline
    "respondent_id,country\n",                                                # header only
])
def test_csv_arrow_reader_reads_the_same_text_as_pandas(tmp_path, monkeypatch, body):
    from cips_stats import _io

    p = tmp_path / "t.csv"
    p.write_bytes(body.encode("utf-8"))
    fast = read_table(p).frame
    header, n_rec = _io._csv_records_fast(p, str(p), "utf-8-sig", ",")
    assert _io._read_csv_arrow(p, header, n_rec, "utf-8-sig", ",") is not None  # the Arrow path was used
    monkeypatch.setattr(_io, "_read_csv_arrow", lambda *a: None)
    slow = read_table(p).frame                                                # pandas' C parser, dtype=object
    assert list(fast.columns) == list(slow.columns) and fast.shape == slow.shape
    as_list = lambda f: [[None if pd.isna(v) else v for v in f[c]] for c in f.columns]  # noqa: E731
    assert as_list(fast) == as_list(slow)


def test_csv_arrow_and_pandas_readers_load_the_same_survey(tmp_path, monkeypatch):
    from cips_stats import _io

    raw = raw_survey(40, seed=42).astype(object)
    raw.loc[1, INST.items_for(raw.loc[1, "group"])[0]] = " 4 "
    raw.loc[2, INST.items_for(raw.loc[2, "group"])[0]] = "NA"
    raw.loc[3, "gender"] = "Femme"
    raw.loc[4, "weight"] = "heavy"
    path = tmp_path / "s.csv"
    raw.to_csv(path, index=False)
    a = cs.load(path, strict=False)
    monkeypatch.setattr(_io, "_read_csv_arrow", lambda *a: None)
    b = cs.load(path, strict=False)
    assert a.fingerprint == b.fingerprint
    pd.testing.assert_frame_equal(a.exclusions, b.exclusions)
    pd.testing.assert_frame_equal(a.coercions, b.coercions)
    assert {"code_non_numeric", "demographic_unknown", "weight_non_numeric"} <= set(a.exclusions["rule"])


CELL_TEXT = st.sampled_from(["", " ", "4", " 4 ", "4.0", "NA", "nan", "null", "Ä", "x y", "-0", "1e3", "\t", "08",
                             'a"b', "a,b", "line\nbreak", "\\", "#", "TRUE"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grid=st.lists(st.lists(CELL_TEXT, min_size=3, max_size=3), min_size=1, max_size=6),
       crlf=st.booleans())
def test_property_csv_readers_agree(tmp_path, grid, crlf):
    """Arrow's reader (simple files) and pandas' C parser give the same text, cell by cell."""
    import csv as _csv

    from cips_stats import _io

    p = tmp_path / "g.csv"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        _csv.writer(fh, lineterminator="\r\n" if crlf else "\n").writerows([["a", "b", "c"], *grid])
    fast = read_table(p).frame
    orig = _io._read_csv_arrow
    try:
        _io._read_csv_arrow = lambda *a: None
        slow = read_table(p).frame
    finally:
        _io._read_csv_arrow = orig
    as_list = lambda f: [[None if pd.isna(v) else v for v in f[c]] for c in f.columns]  # noqa: E731
    assert list(fast.columns) == list(slow.columns) and as_list(fast) == as_list(slow)


def test_row_duplicate_compares_values_exactly():
    raw = raw_survey(4, seed=43).astype(object)
    for r in (1, 2, 3):
        raw.iloc[r, 1:] = raw.iloc[0, 1:]          # the same answers under another respondent id
    raw["note"] = [1, "1", True, None]            # ... but a different value (type) in one column
    rep = csd.validate(raw)
    assert rep.ok, [p.describe() for p in rep.problems]
    raw.loc[2, "note"] = 1
    raw.loc[3, "note"] = np.float64("nan")        # NaN and None are both blank: equal
    raw.loc[1, "note"] = None
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(p.rule, p.row, p.message) for p in e.value.problems] == [
        ("row_duplicate", 3, "The row repeats row 1 in every column except respondent_id."),
        ("row_duplicate", 4, "The row repeats row 2 in every column except respondent_id.")]
