"""Bring your own survey (issue 14): column mapping, weights, European CSVs, encodings, labels, nothing silent.

Each reproduction of the issue has a test here with the exact message the user sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cips_stats as cs
from cips_stats import data as csd
from cips_stats.cli import main

INST = cs.Instrument.default()


@pytest.fixture(scope="module")
def survey():
    """A small synthetic survey: its raw table, instrument and the fingerprint of the clean load."""
    sim = cs.simulate(seed=3, n_countries=2, n_repeat=1)
    return sim.raw, sim.instrument, cs.load(sim.raw, instrument=sim.instrument).fingerprint


def european_export(raw: pd.DataFrame, path) -> None:
    """What Excel in a French locale writes: ';', decimal comma, Latin-1, the user's own column names."""
    eu = raw.rename(columns={"respondent_id": "id", "weight": "pondération"})
    eu.to_csv(path, sep=";", decimal=",", index=False, encoding="latin-1")


def rules(frame: pd.DataFrame) -> list[str]:
    return sorted(set(frame["rule"]))


# ================================================================ the done-when: CLI and API, flags and mapping
def test_cli_validate_and_report_read_a_european_export_to_the_clean_fingerprint(tmp_path, survey):
    raw, inst, fp = survey
    clean, eu, yml = tmp_path / "clean.csv", tmp_path / "export.csv", tmp_path / "instrument.yaml"
    cs.data.write_raw(raw, clean, instrument=inst)
    european_export(raw, eu)
    inst.to_yaml(yml)
    runner = CliRunner()
    r = runner.invoke(main, ["validate", str(clean), "--instrument", str(yml)])
    assert r.exit_code == 0, r.output
    assert f"Data fingerprint (strict=False): {fp}" in r.output
    # without flags: the id is missing (exit 2) and the weight column is named as one
    r = runner.invoke(main, ["validate", str(eu), "--instrument", str(yml)])
    assert r.exit_code == 2
    assert ("Note: The column 'pondération' looks like a survey weight but is not used: every weight is 1. Name it "
            "with --weight 'pondération' (weight= in cs.load, or columns: {weight: pondération} in the instrument).") \
        in r.output
    assert "The required column 'respondent_id' is missing. Name the id column with --id COL" in r.output
    # with the flags: the same data as the clean file
    r = runner.invoke(main, ["validate", str(eu), "--instrument", str(yml), "--id", "id", "--weight", "pondération"])
    assert r.exit_code == 0, r.output
    assert f"Data fingerprint (strict=False): {fp}" in r.output
    assert "read as Windows-1252 (cp1252)" in r.output and "separator ';' was detected" in r.output
    # with the instrument's mapping instead of flags
    mapped = cs.Instrument.from_dict({**inst.to_dict(), "columns": {"respondent_id": "id", "weight": "pondération"}})
    yml2 = tmp_path / "mapped.yaml"
    mapped.to_yaml(yml2)
    r = runner.invoke(main, ["validate", str(eu), "--instrument", str(yml2)])
    assert r.exit_code == 0 and f"Data fingerprint (strict=False): {fp}" in r.output, r.output
    # explicit flags give the same
    r = runner.invoke(main, ["validate", str(eu), "--instrument", str(yml), "--id", "id", "--weight", "pondération",
                             "--sep", ";", "--decimal", ",", "--encoding", "latin-1"])
    assert r.exit_code == 0 and f"Data fingerprint (strict=False): {fp}" in r.output, r.output
    # report reads it the same way (the data section only, to stay fast)
    out = tmp_path / "report"
    r = runner.invoke(main, ["report", str(eu), "--out", str(out), "--instrument", str(yml2), "--sections", "data"])
    assert r.exit_code == 0, r.output
    assert (out / "index.html").exists()


def test_api_reads_the_european_export_with_columns_and_weight(tmp_path, survey):
    raw, inst, fp = survey
    p = tmp_path / "export.csv"
    european_export(raw, p)
    data = cs.load(p, instrument=inst, columns={"respondent_id": "id"}, weight="pondération")
    assert data.fingerprint == fp
    assert {"encoding_detected", "separator_detected", "column_mapped", "decimal_detected"} <= set(data.notes["rule"])
    assert data.frame["weight"].nunique() > 10   # the weights are used, not 1.0


def test_weight_column_under_another_name_is_reported_not_silently_dropped(survey):
    raw, inst, _ = survey
    frame = raw.rename(columns={"weight": "pondération"})
    data = cs.load(frame, instrument=inst)
    assert (data.frame["weight"] == 1).all()
    note = data.notes[data.notes["rule"] == "weight_lookalike"]
    assert note["column"].tolist() == ["pondération"]
    rep = csd.validate(frame, instrument=inst)
    assert "looks like a survey weight but is not used" in rep.to_text()
    for name in ["poids", "Pondération", "wt", "peso", "Gewicht", "final_weight", "WGT_2"]:
        assert csd._looks_like_weight(name), name
    for name in ["LC1", "country", "website", "note", "sweet"]:
        assert not csd._looks_like_weight(name), name


def test_declared_weight_column_absent_is_an_error(survey):
    raw, inst, _ = survey
    with pytest.raises(cs.DataError) as e:
        cs.load(raw.drop(columns=["weight"]), instrument=inst, weight="pondération")
    assert [(p.rule, p.column, p.message) for p in e.value.problems] == [
        ("column_mapped_missing", "pondération",
         "The weight column 'pondération' given for 'weight' by columns= (or a command-line flag) is not in the file.")]
    with pytest.raises(cs.DataError) as e:   # a near miss is named
        cs.load(raw.rename(columns={"weight": "ponderation"}), instrument=inst, weight="pondération")
    assert e.value.problems[0].message.endswith("is not in the file (did you mean 'ponderation'?).")


def test_constants_iteration_labels_and_generated_ids(survey):
    raw, inst, _ = survey
    one = raw[(raw["country"] == raw["country"].iloc[0]) & (raw["iteration"] == 1)].reset_index(drop=True)
    bare = one.drop(columns=["respondent_id", "country", "iteration"]).assign(wave="2019-20")
    data = cs.load(bare, instrument=inst, columns={
        "respondent_id": {"generate": True}, "country": {"value": "NL"},
        "iteration": {"column": "wave", "labels": {"2019-20": 1}}})
    assert data.frame["respondent_id"].tolist() == [str(k) for k in range(1, len(one) + 1)]
    assert set(data.frame["country"]) == {"NL"} and set(data.frame["iteration"]) == {1}
    assert rules(data.notes) == ["column_constant", "column_mapped", "respondent_id_generated"]
    # the same through the instrument's own columns: mapping
    mapped = cs.Instrument.from_dict({**inst.to_dict(), "columns": {
        "respondent_id": {"generate": True}, "country": {"value": "NL"},
        "iteration": {"column": "wave", "labels": {"2019-20": 1}}}})
    assert cs.load(bare, instrument=mapped).fingerprint == data.fingerprint
    # and through the command-line options' mapping (column_or_value)
    flags = {"respondent_id": {"generate": True}, "country": {"column_or_value": "NL"},
             "iteration": {"column_or_value": "wave"}}
    assert cs.load(bare, instrument=inst, columns=flags, iterations={"2019-20": 1}).fingerprint == data.fingerprint


def test_iteration_labels_on_the_command_line(tmp_path, survey):
    raw, inst, _ = survey
    frame = raw.assign(iteration=raw["iteration"].map({1: "2019-20", 2: "2022-23"}))
    p = tmp_path / "waves.csv"
    frame.to_csv(p, index=False)
    yml = tmp_path / "i.yaml"
    inst.to_yaml(yml)
    r = CliRunner().invoke(main, ["validate", str(p), "--instrument", str(yml)])
    assert r.exit_code == 1 and "use iterations= to map" not in r.output
    assert "map labels such as '2020-21' with iterations= or --iteration-labels 2020-21=1" in r.output
    r = CliRunner().invoke(main, ["validate", str(p), "--instrument", str(yml),
                                  "--iteration-labels", "2019-20=1,2022-23=2"])
    assert r.exit_code == 0, r.output
    fp = cs.load(raw, instrument=inst).fingerprint
    assert f"Data fingerprint (strict=False): {fp}" in r.output


def test_mapping_conflicts_and_bad_specs_are_errors(survey):
    raw, inst, _ = survey
    with pytest.raises(cs.DataError) as e:
        cs.load(raw.assign(pondération=1.0), instrument=inst, weight="pondération")
    assert [(p.rule, p.message) for p in e.value.problems] == [
        ("column_conflict", "The file has a column 'weight', and columns= (or a command-line flag) also gives the "
                            "column 'pondération' for it: drop or rename one.")]
    with pytest.raises(cs.DataError, match="unknown key 'colum'"):
        cs.load(raw, instrument=inst, columns={"country": {"colum": "pays"}})
    with pytest.raises(cs.DataError, match="is neither a key column"):
        cs.load(raw, instrument=inst, columns={"contry": "pays"})


# ================================================================ European CSVs and encodings
def test_semicolon_decimal_comma_without_flags(tmp_path, survey):
    raw, inst, fp = survey
    p = tmp_path / "eu.csv"
    raw.to_csv(p, sep=";", decimal=",", index=False)
    data = cs.load(p, instrument=inst)
    assert data.fingerprint == fp
    # decimal='.' forced: every weight written with a comma is a problem, and the message says what to pass
    rep = csd.validate(p, instrument=inst, decimal=".")
    w = [q for q in rep.problems if q.rule == "weight_non_numeric"]
    assert w and w[0].message == "The weight is not a number."
    rep = csd.validate(p, instrument=inst, sep=";", decimal=",")
    assert rep.ok and rep.provenance.data_fingerprint == fp


def test_weights_with_mixed_decimal_marks_name_the_fix():
    raw = _small_raw(4)
    raw["weight"] = ["0,5", "1.5", "2", "1"]
    with pytest.raises(cs.DataError) as e:
        cs.load(raw)
    assert [(p.rule, p.row, p.value, p.message) for p in e.value.problems] == [
        ("weight_non_numeric", 1, "0,5", "The weight is not a number. Some weights are written with a decimal comma: "
                                         "pass decimal=',' (--decimal ,) to read them.")]


@pytest.mark.parametrize("encoding, bom", [("utf-8", False), ("utf-8-sig", True), ("utf-16", True),
                                           ("cp1252", False), ("latin-1", False)])
def test_encodings_are_detected(tmp_path, encoding, bom):
    raw = _small_raw(3)
    raw["country"] = ["Côte d’Ivoire" if encoding != "latin-1" else "Côte d'Ivoire", "Österreich", "España"]
    p = tmp_path / "enc.csv"
    raw.to_csv(p, index=False, encoding=encoding)
    data = cs.load(p)
    assert data.frame["country"].tolist() == raw["country"].tolist()
    assert data.fingerprint == cs.load(raw).fingerprint
    detected = data.notes[data.notes["rule"] == "encoding_detected"]
    assert len(detected) == (encoding in ("cp1252", "latin-1"))


@pytest.mark.parametrize("encoding, endian", [("utf-16-le", "little"), ("utf-16-be", "big")])
def test_utf16_without_a_byte_order_mark_is_detected(tmp_path, encoding, endian):
    raw = _small_raw(3)
    raw["country"] = ["Côte d’Ivoire", "Österreich", "España"]
    p = tmp_path / "u16.csv"
    raw.to_csv(p, index=False, encoding=encoding, sep=";")
    data = cs.load(p)
    assert data.fingerprint == cs.load(raw).fingerprint
    assert data.notes.loc[data.notes["rule"] == "encoding_detected", "reason"].tolist() == [
        f"The file has no byte-order mark but its text is UTF-16 ({endian}-endian): read as {encoding.upper()}."]


def test_big_endian_utf16_is_checked_in_its_own_byte_order_past_the_first_block(tmp_path, monkeypatch):
    import codecs

    from cips_stats import _io

    monkeypatch.setattr(_io, "_BLOCK", 64)             # many blocks in a small file
    raw = _small_raw(12)
    raw["country"] = ["Øresund 𝔘"] * 12                # U+00D8 read little-endian is a lone surrogate
    p = tmp_path / "be.csv"
    p.write_bytes(codecs.BOM_UTF16_BE + raw.to_csv(index=False).encode("utf-16-be"))
    assert _io._first_bad_byte(p.read_bytes(), "utf-16") is None
    assert cs.load(p).fingerprint == cs.load(raw).fingerprint


def test_undecodable_bytes_name_the_byte_and_line(tmp_path):
    raw = _small_raw(3)
    raw["country"] = ["A", "Österreich", "B"]
    p = tmp_path / "latin1.csv"
    raw.to_csv(p, index=False, encoding="latin-1")
    with pytest.raises(cs.DataError) as e:
        cs.load(p, encoding="utf-8")
    offset = p.read_bytes().index(b"\xd6")
    assert [(q.rule, q.value, q.message) for q in e.value.problems] == [
        ("file_encoding", "0xD6", f"the byte 0xD6 at line 3, byte offset {offset}, is not valid utf-8; pass the file's "
                                  f"encoding (e.g. encoding='cp1252' or --encoding cp1252), or omit it to detect it.")]
    bad = tmp_path / "bad.csv"   # neither UTF-8 nor cp1252 (0x81 is undefined in cp1252)
    bad.write_bytes(b"respondent_id,country\n1,\xe9\x81\n")
    with pytest.raises(cs.DataError) as e:
        cs.load(bad)
    assert e.value.problems[0].message == (
        "the encoding is not UTF-8 (the byte 0xE9 at line 2, byte offset 24, is not valid UTF-8) nor Windows-1252 "
        "(the byte 0x81 at line 2, byte offset 25, is not valid cp1252); pass the file's encoding with encoding= or "
        "--encoding (e.g. latin-1).")
    r = CliRunner().invoke(main, ["validate", str(bad)])
    assert r.exit_code == 2 and "byte 0x81 at line 2" in r.output


def test_cp1252_read_as_latin1_is_a_control_character_problem(tmp_path):
    raw = _small_raw(3)
    raw["country"] = ["Côte d’Ivoire", "B", "B"]
    p = tmp_path / "w.csv"
    raw.to_csv(p, index=False, encoding="cp1252")
    assert cs.load(p).frame["country"].iloc[0] == "Côte d’Ivoire"   # detected as cp1252
    with pytest.raises(cs.DataError) as e:
        cs.load(p, encoding="latin-1")
    assert [(q.rule, q.row, q.message) for q in e.value.problems] == [
        ("text_control", 1, "The text holds control character(s) U+0092 (characters U+0080-U+009F are what "
                            "Windows-1252 punctuation such as ’ becomes when the file is read as Latin-1: pass "
                            "encoding='cp1252').")]


def test_latin1_instrument_yaml_is_a_data_error_and_cli_exit_2(tmp_path):
    p = tmp_path / "inst.yaml"
    p.write_bytes(INST.to_yaml().replace("Customs officials", "Agents des douanes é").encode("latin-1"))
    with pytest.raises(cs.DataError) as e:
        cs.Instrument.from_yaml(p)
    assert e.value.problems[0].rule == "file_encoding"
    assert "is not valid UTF-8: save the instrument file as UTF-8" in e.value.problems[0].message
    data = tmp_path / "s.csv"
    _small_raw(3).to_csv(data, index=False)
    r = CliRunner().invoke(main, ["validate", str(data), "--instrument", str(p)])
    assert r.exit_code == 2 and "save the instrument file as UTF-8" in r.output


# ================================================================ labels as codes, usable rows
def test_text_answers_equal_to_scale_labels_are_read_as_codes():
    inst = cs.Instrument.from_dict({
        "name": "npy", "scale": {"points": 3, "labels": ["no", "perhaps", "yes"], "favourable": [3],
                                 "missing": {8: "dont_know", 9: "refused"}},
        "groups": [{"id": "g"}], "factors": [{"id": "f"}],
        "items": [{"id": "q1", "factor": "f"}, {"id": "q2", "factor": "f"}]})
    raw = pd.DataFrame({"respondent_id": [1, 2, 3], "country": "X", "iteration": 1, "group": "g",
                        "q1": ["Yes", " no ", "Don't know"], "q2": ["PERHAPS", "refused", "maybe"]})
    data = cs.load(raw, instrument=inst, strict=False)
    np.testing.assert_array_equal(data.frame[["q1", "q2"]].to_numpy(), [[3.0, 2.0], [1.0, np.nan], [np.nan, np.nan]])
    co = data.coercions[data.coercions["rule"] == "code_label"]
    assert co["reason"].tolist() == [
        "The label 'Yes' read as code 3 ('yes').", "The label 'PERHAPS' read as code 2 ('perhaps').",
        "The label 'no' read as code 1 ('no').", "The label 'refused' read as code 9 ('refused').",
        "The label \"Don't know\" read as code 8 ('dont_know')."]
    ex = data.exclusions
    assert ex.loc[ex["rule"] == "code_non_numeric", "value"].tolist() == ["maybe"]
    assert ex.loc[ex["rule"] == "missing_code", "reason"].tolist() == ["refused", "dont_know"]


def test_usable_rows_count_only_rows_with_an_answer():
    raw = _small_raw(4).astype(object)
    items = list(INST.item_ids)
    raw.loc[[0, 1], [c for c in items if c in raw.columns]] = "n/a"   # nothing usable in rows 1 and 2
    rep = csd.validate(raw)
    assert rep.n_used_rows == 4 and rep.n_rows_with_answers == 2
    assert "rows usable with strict=False: 2 (with at least one usable answer; 2 more kept rows have none)" \
        in rep.to_text()


# ================================================================ nothing silent
def test_number_forms_are_recorded_coercions():
    raw = _small_raw(6, group="officials").astype(object)
    item = INST.items_for("officials")[0]
    values = ["+4", ".4e1", "4e0", "00004", " 4 ", "4"]
    for r, v in enumerate(values):
        raw.loc[r, item] = v
    data = cs.load(raw)
    expected = 4.0 if not INST.item(item).reverse else 2.0
    assert data.frame[item].tolist() == [expected] * 6
    co = data.coercions[data.coercions["column"] == item]
    assert list(zip(co["row"].astype(int), co["rule"])) == [
        (1, "number_format"), (2, "number_format"), (3, "number_format"), (4, "number_format"),
        (5, "text_whitespace")]
    assert co["reason"].iloc[0] == "The text '+4' read as the number 4 (a sign, exponent, leading zeros or a bare " \
                                   "decimal mark)."


def test_invisible_characters_nfc_and_case_variants_do_not_make_new_countries():
    raw = _small_raw(5).astype(object)
    raw["country"] = ["Curaçao", "Cura\u200bçao", "Curac\u0327ao", "curaçao", "Curaçao"]
    data = cs.load(raw)
    assert set(data.frame["country"]) == {"Curaçao"}
    co = data.coercions
    assert list(zip(co["row"].astype(int), co["rule"])) == [
        (2, "text_invisible"), (3, "text_unicode"), (4, "text_case_variant")]
    assert co["reason"].tolist() == [
        "Invisible character(s) U+200B removed.", "Text normalised to Unicode NFC (composed characters).",
        "'curaçao' read as 'Curaçao', the most frequent spelling of the same value."]


def test_unlabelled_spss_country_code_is_a_problem(tmp_path):
    import pyreadstat

    raw = _small_raw(4)
    out = raw.assign(country=[1.0, 2.0, 3.0, 1.0])
    p = tmp_path / "c.sav"
    pyreadstat.write_sav(out, str(p), variable_value_labels={"country": {1: "Chile", 2: "Peru"}})
    with pytest.raises(cs.DataError) as e:
        cs.load(p)
    assert [(q.rule, q.row, q.column, q.value, q.message) for q in e.value.problems] == [
        ("code_unlabelled", 3, "country", 3.0,
         "The code 3 has no value label in the file, while other codes of 'country' have one: its meaning is unknown.")]
    data = cs.load(p, strict=False)
    assert sorted(set(data.frame["country"])) == ["Chile", "Peru"]


def test_csv_and_sav_copies_of_text_numbers_get_one_fingerprint(tmp_path):
    raw = _small_raw(4).astype(object)
    raw["stratum"] = [3.0, "3", "3.0", 4]
    csv = tmp_path / "s.csv"
    raw.to_csv(csv, index=False)
    a, b = cs.load(raw), cs.load(csv)
    assert a.frame["stratum"].tolist() == ["3", "3", "3", "4"] and a.fingerprint == b.fingerprint


@pytest.fixture(scope="module")
def five_formats(tmp_path_factory):
    raw = cs.simulate(seed=5, n_countries=2, n_repeat=1).raw
    tmp = tmp_path_factory.mktemp("five")
    paths = {}
    for fmt in ("csv", "xlsx", "sav", "dta", "parquet"):
        paths[fmt] = tmp / f"s.{fmt}"
        cs.data.write_raw(raw, paths[fmt])
    return raw, paths


def test_fingerprint_is_the_same_in_all_five_formats(five_formats):
    raw, paths = five_formats
    fps = {fmt: cs.load(p).fingerprint for fmt, p in paths.items()}
    assert set(fps.values()) == {cs.load(raw).fingerprint}, fps


# ================================================================ formula-safe writing
FORMULA_TEXT = ["=1+1", "+4", "-x", "@a", "\tx", "\rx", "'=2", "'", "plain", "=HYPERLINK(\"http://x\")", "-3"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "sav", "dta", "parquet"])
def test_write_raw_round_trips_formula_like_text(tmp_path, fmt):
    raw = _small_raw(len(FORMULA_TEXT)).astype(object)
    raw["note"] = FORMULA_TEXT
    p = tmp_path / f"f.{fmt}"
    cs.data.write_raw(raw, p)
    data = cs.load(p)
    got = data.aside["note"].tolist()
    assert got == FORMULA_TEXT
    if fmt == "csv":   # neutralised in the file: no field starts with a formula character
        import csv as _csv

        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(_csv.reader(fh))
        col = rows[0].index("note")
        assert all(not r[col].startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows[1:])
        assert set(data.coercions["rule"]) == {"csv_formula_escape"}
    if fmt == "xlsx":  # written as text cells, never formulas
        import zipfile

        with zipfile.ZipFile(p) as z:
            assert b"<f>" not in z.read("xl/worksheets/sheet1.xml")


def _small_raw(n: int, group: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    groups = [group] * n if group else ["officials", "private"] * n
    raw = pd.DataFrame({"respondent_id": [f"r{k}" for k in range(n)], "country": "X", "iteration": 1,
                        "group": groups[:n], "weight": 1.0})
    for i in INST.item_ids:
        raw[i] = [float(rng.integers(1, 6)) if i in INST.items_for(g) else np.nan for g in raw["group"]]
    return raw


def test_xlsx_text_round_trips_with_the_openpyxl_reader_too(tmp_path, monkeypatch):
    from cips_stats import _io

    raw = _small_raw(len(FORMULA_TEXT)).astype(object)
    raw["note"] = FORMULA_TEXT
    raw.loc[0, "note"] = "_x000D_ literal"
    p = tmp_path / "f.xlsx"
    cs.data.write_raw(raw, p)
    expected = ["_x000D_ literal", *FORMULA_TEXT[1:]]
    assert cs.load(p).aside["note"].tolist() == expected
    monkeypatch.setattr(_io, "_calamine_available", lambda: False)
    assert cs.load(p).aside["note"].tolist() == expected


def test_cli_sheet_and_one_country_constant(tmp_path):
    raw = _small_raw(4).drop(columns=["country"])
    p = tmp_path / "two.xlsx"
    with pd.ExcelWriter(p) as xw:
        pd.DataFrame({"x": [1]}).to_excel(xw, sheet_name="readme", index=False)
        raw.to_excel(xw, sheet_name="answers", index=False)
    runner = CliRunner()
    r = runner.invoke(main, ["validate", str(p), "--sheet", "answers", "--country", "NL"])
    assert r.exit_code == 0, r.output
    assert "Note: country is 'NL' for every row (columns= (or a command-line flag))." in r.output
    fp = cs.load(raw.assign(country="NL")).fingerprint
    assert f"Data fingerprint (strict=False): {fp}" in r.output
    r = runner.invoke(main, ["validate", str(p), "--sheet", "1", "--country", "NL", "--generate-ids", "--id", "x"])
    assert r.exit_code == 2 and "give either --id or --generate-ids" in r.output
    r = runner.invoke(main, ["validate", str(p), "--sheet", "answers", "--country", "NL",
                             "--iteration-labels", "2019-20"])
    assert r.exit_code == 2 and "expected LABEL=N pairs" in r.output


def test_validate_hands_over_its_data_so_the_file_is_read_once(tmp_path, survey):
    raw, inst, fp = survey
    p = tmp_path / "s.csv"
    cs.data.write_raw(raw, p, instrument=inst)
    rep = csd.validate(p, instrument=inst)
    assert rep.ok and rep.data.fingerprint == fp == cs.load(p, instrument=inst).fingerprint
    assert "data" not in rep.to_dict()
    assert csd.validate(tmp_path / "absent.csv").data is None


# ================================================================ the done-when, `analyze` end to end
def _own_instrument_survey(tmp_path):
    """A small non-CIPS survey (two factors of three 6-point items, one country, one wave): its clean CSV,
    its European export (';', decimal comma, Latin-1, columns 'id' and 'pondération', labels in French)
    and its instrument."""
    rng = np.random.default_rng(14)
    lines = ["name: enquête-port", 'version: "1"', "scale:", "  points: 6", "  labels: [a, b, c, d, e, f]",
             "  missing:", "    9: ne_sait_pas", "groups:", "  - {id: agents, label: Agents}",
             "  - {id: usagers, label: Usagers}", "factors:", "  - {id: climat}", "  - {id: service}", "items:"]
    for f in ("climat", "service"):
        for k in (1, 2, 3):
            lines.append(f"  - {{id: {f[0].upper()}{k}, factor: {f}, groups: [agents, usagers]}}")
    yml = tmp_path / "instrument.yaml"
    yml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    n = 120
    raw = pd.DataFrame({"respondent_id": np.arange(1, n + 1), "country": "Réunion", "iteration": 1,
                        "group": np.where(np.arange(n) % 2, "agents", "usagers"),
                        "weight": np.round(rng.uniform(0.4, 2.6, n), 6)})
    for f in ("C", "S"):
        eta = rng.normal(size=n)
        for k in (1, 2, 3):
            raw[f"{f}{k}"] = np.clip(np.round(3.5 + 1.1 * (0.8 * eta + 0.6 * rng.normal(size=n))), 1, 6).astype(int)
    raw.loc[rng.choice(n, 6, replace=False), "C2"] = 9
    clean = tmp_path / "clean.csv"
    raw.to_csv(clean, index=False)
    eu = tmp_path / "export.csv"
    european_export(raw, eu)
    assert b"pond\xe9ration" in eu.read_bytes() and b"R\xe9union" in eu.read_bytes() and b";0," in eu.read_bytes()
    return clean, eu, yml


def test_cli_analyze_reads_the_european_export_to_the_clean_fingerprint(tmp_path):
    import json

    clean, eu, yml = _own_instrument_survey(tmp_path)
    fp = cs.load(clean, instrument=cs.Instrument.from_yaml(yml)).fingerprint
    runner = CliRunner()
    r = runner.invoke(main, ["validate", str(eu), "--instrument", str(yml), "--id", "id", "--weight", "pondération"])
    assert r.exit_code == 0 and f"Data fingerprint (strict=False): {fp}" in r.output, r.output
    out = tmp_path / "analysis"
    r = runner.invoke(main, ["analyze", str(eu), "--instrument", str(yml), "--id", "id", "--weight", "pondération",
                             "--out", str(out), "--seed", "1", "--n-boot", "20", "--estimator", "ML", "--json"])
    assert r.exit_code in (0, 1), r.output               # 1: a section of this tiny survey may not build
    summary = json.loads(r.output)
    assert summary["steps"][0]["name"] == "load" and "load" not in summary["failures"]
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["data_fingerprint"] == fp
    # the weights were used: the weighted indicator differs from the unweighted one
    ind = pd.read_csv(out / "report" / "tables" / "indicators_cells.csv", encoding="utf-8-sig")
    assert set(ind["country"]) == {"Réunion"} and ind["estimate"].notna().all()
    data = cs.load(clean, instrument=cs.Instrument.from_yaml(yml))
    flat = cs.estimate.indicators(data, weight=cs.estimate.Design(weight=None), n_boot=20, seed=1).to_frame()
    merged = ind.merge(flat, on=["country", "iteration", "group", "factor"], suffixes=("", "_flat"))
    assert len(merged) == len(ind) and (merged["estimate"] - merged["estimate_flat"]).abs().max() > 1e-3


def test_cli_report_flags_and_constants_give_the_clean_fingerprint(tmp_path, survey):
    """`report` takes the same flags as `validate`; --country and --iteration give one value to every row."""
    import json

    raw, inst, fp = survey
    yml = tmp_path / "i.yaml"
    inst.to_yaml(yml)
    eu = tmp_path / "export.csv"
    european_export(raw, eu)
    runner = CliRunner()
    out = tmp_path / "r"
    r = runner.invoke(main, ["report", str(eu), "--out", str(out), "--instrument", str(yml), "--sections", "data",
                             "--id", "id", "--weight", "pondération", "--sep", ";", "--decimal", ",",
                             "--encoding", "latin-1", "--n-boot", "20"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["data_fingerprint"] == fp
    # one country and one wave without columns for them
    one = raw[(raw["country"] == raw["country"].iloc[0]) & (raw["iteration"] == 1)]
    p = tmp_path / "one.csv"
    one.drop(columns=["country", "iteration"]).to_csv(p, index=False)
    want = cs.load(one.assign(country="NL"), instrument=inst).fingerprint
    r = runner.invoke(main, ["validate", str(p), "--instrument", str(yml), "--country", "NL", "--iteration", "1"])
    assert r.exit_code == 0, r.output
    assert "Note: country is 'NL' for every row (columns= (or a command-line flag))." in r.output
    assert "Note: iteration is '1' for every row (columns= (or a command-line flag))." in r.output
    assert f"Data fingerprint (strict=False): {want}" in r.output
    r = runner.invoke(main, ["validate", str(p), "--instrument", str(yml), "--country", "NL"])
    assert r.exit_code == 2 and "The required column 'iteration' is missing." in r.output
