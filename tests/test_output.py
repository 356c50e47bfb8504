"""Tests of cips_stats.output: output folders that cannot hurt the user; formula-safe exports."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from click.testing import CliRunner

import cips_stats as cs
from cips_stats.cli import EXIT_OUTPUT, main
from cips_stats.output import MANIFEST, OutputError, OutputFolder, neutralise, write_csv, write_xlsx

INJECT = ["=1+1", "+SUM(A1)", "-2+3", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"http://x\",\"y\")", "plain", "a=b"]


# ------------------------------------------------------------------------------------------ folders
def test_refuses_a_foreign_non_empty_folder_unless_overwrite(tmp_path):
    (tmp_path / "thesis.docx").write_text("mine")
    with pytest.raises(OutputError, match="not empty and was not written by cips-stats"):
        OutputFolder(tmp_path)
    with OutputFolder(tmp_path, overwrite=True) as f:
        f.write_text("index.html", "x")
    assert (tmp_path / "thesis.docx").read_text() == "mine"
    assert json.loads((tmp_path / MANIFEST).read_text())["files"] == ["index.html"]


def test_clears_only_its_own_previous_outputs(tmp_path):
    with OutputFolder(tmp_path / "o") as f:
        f.write_text("tables/a.csv", "old")
        f.write_text("index.html", "old")
    (tmp_path / "o" / "notes.txt").write_text("user")
    with OutputFolder(tmp_path / "o") as f:              # ours: no overwrite needed, old outputs cleared first
        assert not (tmp_path / "o" / "tables" / "a.csv").exists()
        f.write_text("index.html", "new")
    assert (tmp_path / "o" / "notes.txt").read_text() == "user"
    assert not (tmp_path / "o" / "tables").exists()       # emptied folder of ours removed


def test_never_follows_a_symlink_out_of_the_folder(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "o"
    with OutputFolder(out) as f:
        f.write_text("index.html", "x")
    os.symlink(target, out / "index.html.tmp")
    (out / "index.html").unlink()
    os.symlink(target, out / "index.html")                  # a link planted where we write
    with OutputFolder(out, overwrite=True) as f:
        f.write_text("index.html", "new")
    assert target.read_text() == "keep me"
    assert (out / "index.html").read_text() == "new" and not (out / "index.html").is_symlink()
    # a link as a folder component, and paths that leave the folder, are refused
    os.symlink(tmp_path, out / "up")
    with OutputFolder(out, overwrite=True) as f:
        with pytest.raises(OutputError, match="symbolic link"):
            f.write_text("up/evil.txt", "x")
        for bad in ("../x.txt", "/etc/x", "a/../../x"):
            with pytest.raises(OutputError, match="leaves the output folder"):
                f.write_text(bad, "x")
    assert not (tmp_path / "evil.txt").exists()
    # the module-level writers replace a link instead of writing through it
    os.symlink(target, out / "t.csv")
    write_csv(out / "t.csv", pd.DataFrame({"a": [1]}))
    assert target.read_text() == "keep me"


def test_a_manifest_entry_outside_the_folder_is_not_deleted(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("x")
    out = tmp_path / "o"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"files": ["../victim.txt", "/etc/passwd"]}))
    OutputFolder(out).close()
    assert victim.exists()


def test_os_errors_become_typed_errors(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        OutputFolder(f)
    with pytest.raises(OutputError, match="Cannot create the output folder"):
        OutputFolder(f / "sub")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):                        # a real read-only folder (not root)
            with pytest.raises(OutputError, match="[Pp]ermission denied"):
                OutputFolder(ro / "out")
    finally:
        ro.chmod(0o700)


def test_a_permission_error_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    from pathlib import Path

    def denied(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(OutputError, match="Permission denied. Choose a folder you can write to"):
        OutputFolder(tmp_path / "new")


# ------------------------------------------------------------------------------------------ formulas
def test_neutralise_follows_owasp():
    assert [neutralise(v) for v in INJECT] == ["'=1+1", "'+SUM(A1)", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx",
                                               "'=HYPERLINK(\"http://x\",\"y\")", "plain", "a=b"]
    assert neutralise(-3) == -3 and neutralise(None) is None


def test_csv_and_xlsx_exports_hold_no_live_formula(tmp_path):
    from openpyxl import load_workbook

    values = [v for v in INJECT if v != "\rx"]               # (pandas' reader splits rows at a quoted CR)
    frame = pd.DataFrame({"country": values, "n": range(len(values)), "=col": 1.5})
    p = write_csv(tmp_path / "t.csv", frame)
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                    # UTF-8 with BOM (Excel reads accents)
    back = pd.read_csv(p, keep_default_na=False)
    for v in back["country"]:
        assert not str(v).startswith(("=", "+", "-", "@"))
    assert list(back.columns)[2] == "'=col"
    assert back["n"].tolist() == list(range(len(values)))  # numbers stay numbers
    x = write_xlsx(tmp_path / "t.xlsx", {"a" * 40: frame, "b[1]": frame.head(2)})
    wb = load_workbook(x)
    assert [ws.title for ws in wb.worksheets] == ["a" * 31, "b_1_"]
    ws = wb.worksheets[0]
    types = {c.data_type for row in ws.iter_rows() for c in row}
    assert "f" not in types
    assert [c.value for c in ws["A"]][1:] == values            # text kept verbatim, typed as text
    # round trip through pandas
    rt = pd.read_excel(x, sheet_name=0, engine="openpyxl")
    assert rt["country"].tolist()[:4] == INJECT[:4]


def test_report_tables_neutralise_injected_names(tmp_path):
    sim = cs.simulate(seed=4, n_countries=3, n_repeat=1, n_officials=30, n_private=25)
    raw = sim.raw.copy()
    names = dict(zip(sorted(raw["country"].unique()), ["=cmd|' /C calc'!A0", "+1+1", "@SUM(1)"]))
    raw["country"] = raw["country"].map(names)
    data = cs.load(raw, instrument=sim.instrument, strict=False)
    cs.report.build(data, tmp_path / "r", sections=("data", "indicators"), n_boot=20)
    for p in (tmp_path / "r" / "tables").glob("*.csv"):
        for line in p.read_text(encoding="utf-8-sig").splitlines():
            for cell in line.split(","):
                assert not cell.startswith(("=", "+", "@")), (p.name, cell)


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def survey_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_out")
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=30, n_private=25)
    f = tmp / "s.csv"
    cs.data.write_raw(sim.raw, f, instrument=sim.instrument)
    return f


def test_cli_output_errors_are_messages_with_exit_status(survey_file, tmp_path):
    run = CliRunner().invoke
    base = ["report", str(survey_file), "--sections", "data", "--n-boot", "20"]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    r = run(main, base + ["--out", str(tmp_path / "foreign")])
    assert r.exit_code == EXIT_OUTPUT and "--overwrite" in r.output and "Traceback" not in r.output
    r = run(main, base + ["--out", str(tmp_path / "foreign"), "--overwrite"])
    assert r.exit_code == 0 and (tmp_path / "foreign" / "x.txt").exists()
    r = run(main, base + ["--out", str(survey_file / "sub")])
    assert r.exit_code == EXIT_OUTPUT and "Not a directory" in r.output and "Traceback" not in r.output
    r = run(main, base + ["--out", str(tmp_path / "o"), "--anonymise-key", str(tmp_path / "o" / "k")])
    assert r.exit_code == EXIT_OUTPUT and "inside the output folder" in r.output
    r = run(main, base + ["--out", str(tmp_path / "o"), "--min-cell", "4"])
    assert r.exit_code == 2 and "4" in r.output


def test_cli_key_file_is_created_once_and_reused(survey_file, tmp_path):
    run = CliRunner().invoke
    base = ["report", str(survey_file), "--sections", "data", "--n-boot", "20"]
    key = tmp_path / "k.txt"
    r1 = run(main, base + ["--out", str(tmp_path / "a"), "--anonymise-key", str(key)])
    assert r1.exit_code == 0 and key.exists() and "Created the anonymisation key" in r1.output
    r2 = run(main, base + ["--out", str(tmp_path / "b"), "--anonymise-key", str(key)])
    assert r2.exit_code == 0 and "Created" not in r2.output
    a = (tmp_path / "a" / "tables" / "data_respondents.csv").read_text(encoding="utf-8-sig")
    b = (tmp_path / "b" / "tables" / "data_respondents.csv").read_text(encoding="utf-8-sig")
    assert a == b and "Country" in a                          # same key, same codes
    k = key.read_text().strip()
    import hashlib

    digests = [hashlib.sha256(x).hexdigest().encode() for x in (key.read_bytes(), k.encode())]
    for d in ("a", "b"):
        for p in (tmp_path / d).rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert k.encode() not in data and not any(h in data for h in digests)   # no key, no digest


def test_results_json_records_no_digest_of_the_key(tmp_path):
    """A digest of a weak, user-chosen key would let a reader test guesses offline."""
    from cips_stats.pipeline import _key_source

    key = tmp_path / "k.txt"
    key.write_text("nl-2023")
    src = _key_source(key)
    assert src["path"] == str(key.resolve()) and src["sha256"] is None and "no digest" in src["note"]
