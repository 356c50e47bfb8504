"""Tests of the HTML report (cips_stats.report): sections, disclosure guarantee, anonymisation, failures."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.report import _sections as S

MIN_CELL = 15
N_BOOT = 40
FAST = ("data", "reliability", "indicators", "gap", "drift")

#: Statistic columns that must be blank wherever a cell is below the minimum size.
STAT_COLS = {"estimate", "se", "ci_low", "ci_high", "cv", "deff", "n_eff", "alpha", "std_alpha", "omega",
             "omega_ci_low", "omega_ci_high", "mean_r", "share_from", "share_to", "diff", "z", "p_value",
             "n_eff_from", "n_eff_to"}
COUNT_COLS = ("n", "n_min", "n_from", "n_to")


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def sim():
    # private-sector cells average 13 respondents: some fall below the disclosure minimum of 15
    return cs.simulate(seed=5, n_countries=3, n_repeat=2, n_officials=40, n_private=13)


@pytest.fixture(scope="module")
def built(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rep = cs.report.build(sim.data, out, n_boot=N_BOOT, seed=1, min_cell=MIN_CELL, sections=FAST, truth=sim.truth)
    return out, rep


@pytest.fixture(scope="module")
def anonymised(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("anon")
    rep = cs.report.build(sim.data, out, n_boot=N_BOOT, seed=3, min_cell=MIN_CELL, sections=FAST,
                          truth=sim.truth, anonymise=True)
    return out, rep


class _Tables(HTMLParser):
    """Every <table class='t'> of the HTML as a list of rows (first row: header)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._cur = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "data-table" in a:
            self._cur = self.tables.setdefault(a["data-table"], [])
        elif self._cur is not None and tag == "tr":
            self._row = []
        elif self._row is not None and tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._cur.append(self._row)
            self._row = None
        elif tag == "table":
            self._cur = None


def html_tables(path: Path) -> dict[str, pd.DataFrame]:
    p = _Tables()
    p.feed(path.read_text(encoding="utf-8"))
    return {k: pd.DataFrame(rows[1:], columns=rows[0]) for k, rows in p.tables.items() if rows}


def json_tables(obj, found=None):
    """Every serialised DataFrame ({"columns": [...], "data": [...]}) inside a JSON document."""
    found = [] if found is None else found
    if isinstance(obj, dict):
        if set(obj) == {"columns", "data"} and isinstance(obj["columns"], list):
            found.append(pd.DataFrame(obj["data"], columns=obj["columns"]))
        for v in obj.values():
            json_tables(v, found)
    elif isinstance(obj, list):
        for v in obj:
            json_tables(v, found)
    return found


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v.strip() == "") \
        or v is pd.NA


def assert_no_small_cell(table: pd.DataFrame, where: str) -> int:
    """No visible count below the minimum; a blank count means blank statistics. Returns rows checked."""
    counts = [c for c in COUNT_COLS if c in table.columns]
    if not counts:
        return 0
    stats = [c for c in table.columns if c in STAT_COLS]
    for c in counts:
        vals = pd.to_numeric(table[c].replace("", np.nan), errors="coerce")
        visible = vals.dropna()
        assert (visible >= MIN_CELL).all(), f"{where}: visible {c} below {MIN_CELL}: {visible[visible < MIN_CELL]}"
        hidden = table[vals.isna()]
        for s in stats:
            assert all(_blank(v) for v in hidden[s]), f"{where}: {s} shown for a suppressed cell"
        for s in ("flags", "caution"):   # flags such as alpha_poor or high_cv describe the hidden statistics
            if s in hidden.columns:
                assert all(_blank(v) for v in hidden[s]), f"{where}: {s} shown for a suppressed cell"
        if "suppression_reason" in hidden.columns:
            assert all(str(v).startswith("disclosure:") and "precision" not in str(v)
                       for v in hidden["suppression_reason"]), where
    return len(table)


# ------------------------------------------------------------------------------------------ content
def test_report_has_every_section_and_its_files(built, sim):
    out, rep = built
    assert rep.ok, rep.failures
    html = (out / "index.html").read_text(encoding="utf-8")
    for name in FAST:
        assert f'<section id="{name}">' in html
    assert '<section id="methods">' in html and "methodology/reliability.md" in html
    assert '<section id="warnings">' in html
    # self-contained: inline CSS, embedded figures, no external resources
    assert "<style>" in html and "data:image/png;base64," in html
    assert not re.search(r"<(link|script)[^>]+(href|src)=\"http", html)
    for f in rep.files:
        assert (out / f).is_file(), f
    doc = json.loads((out / "report.json").read_text())
    prov = doc["provenance"]
    assert prov["seed"] == 1 and prov["data_fingerprint"] == sim.data.fingerprint
    assert prov["instrument_hash"] == sim.data.instrument.hash and prov["package_version"]
    assert doc["options"]["n_boot"] == N_BOOT and doc["failures"] == {}
    assert set(doc["sections"]) == set(FAST)
    assert doc["sections"]["indicators"]["result"]["kind"] == "Indicators"
    assert doc["sections"]["gap"]["result"]["kind"] == "Contrast"
    assert doc["sections"]["drift"]["result"]["kind"] == "DriftResult"


def test_data_section_accounts_for_every_row_and_exclusion(built, sim):
    out, _ = built
    acc = pd.read_csv(out / "tables" / "data_accounting.csv").set_index("quantity")["value"]
    assert acc["respondents used"] == len(sim.data.frame)
    rules = pd.read_csv(out / "tables" / "data_exclusions_by_rule.csv")
    assert rules["count"].sum() == len(sim.data.exclusions)
    assert acc["values excluded (item or field)"] + (rules.loc[rules["scope"] == "row", "count"].sum()) \
        == len(sim.data.exclusions)
    # declared missing codes are counted per meaning, as in data.exclusions
    codes = rules[rules["rule"] == "missing_code"].set_index("reason")["count"].to_dict()
    expected = sim.data.exclusions.query("rule == 'missing_code'").groupby("reason").size().to_dict()
    assert codes == expected and len(codes) >= 2


def test_indicator_csv_matches_a_direct_computation_after_suppression(built, sim):
    out, _ = built
    csv = pd.read_csv(out / "tables" / "indicators_cells.csv")
    with pytest.warns(cs.errors.SmallCellWarning):          # the survey has small cells: they are flagged
        ind = cs.estimate.indicators(sim.data, n_boot=N_BOOT, seed=1)
    ref = cs.disclosure.suppress(ind.table, min_n=MIN_CELL, blank_n=True)
    assert len(csv) == len(ref)
    np.testing.assert_allclose(csv["estimate"].to_numpy(float), ref["estimate"].to_numpy(float), rtol=1e-12,
                               equal_nan=True)
    np.testing.assert_allclose(csv["ci_high"].to_numpy(float), ref["ci_high"].to_numpy(float), rtol=1e-12,
                               equal_nan=True)


def test_truth_coverage_is_reported(built):
    out, _ = built
    cov = pd.read_csv(out / "tables" / "indicators_coverage.csv")
    assert (cov["covered"] <= cov["cells"]).all() and cov["cells"].sum() > 0
    np.testing.assert_allclose(cov["coverage"], cov["covered"] / cov["cells"])
    # a 95% interval covering nothing or everything on dozens of cells would mean a broken comparison
    total = cov["covered"].sum() / cov["cells"].sum()
    assert 0.6 < total <= 1.0
    assert "cover the true value" in (out / "index.html").read_text(encoding="utf-8")


def test_warnings_section_gathers_the_flags_of_every_result(built, sim):
    out, _ = built
    warn = pd.read_csv(out / "tables" / "warnings.csv")
    with pytest.warns(cs.errors.SmallCellWarning):          # the survey has small cells: they are flagged
        ind = cs.estimate.indicators(sim.data, n_boot=N_BOOT, seed=1)
    for fl in ind.flags:
        assert ((warn["section"] == "indicators") & (warn["code"] == fl.code)).any(), fl.code
    assert list(warn.columns) == ["section", "severity", "code", "message", "where"]


# ------------------------------------------------------------------------------------------ disclosure
def test_no_cell_below_the_minimum_appears_anywhere(built, sim):
    out, _ = built
    counts = sim.data.frame.groupby(["country", "iteration", "group"]).size()
    assert (counts < MIN_CELL).any() and (counts >= MIN_CELL).any(), "fixture must have small and large cells"
    checked = 0
    for p in (out / "tables").glob("*.csv"):
        checked += assert_no_small_cell(pd.read_csv(p, keep_default_na=True), p.name)
    for key, t in html_tables(out / "index.html").items():
        checked += assert_no_small_cell(t, f"index.html:{key}")
    doc = json.loads((out / "report.json").read_text())
    for i, t in enumerate(json_tables(doc)):
        checked += assert_no_small_cell(t, f"report.json table {i}")
    assert checked > 500


def test_workbook_has_one_sheet_per_table_with_the_published_cells(built):
    """tables.xlsx: one sheet per CSV table (same cells), suppressed cells blank."""
    out, _ = built
    sheets = pd.read_excel(out / "tables.xlsx", sheet_name=None, engine="openpyxl")
    csvs = {p.stem: pd.read_csv(p, encoding="utf-8-sig") for p in (out / "tables").glob("*.csv")}
    assert sorted(sheets) == sorted(csvs) and len(sheets) > 10
    checked = 0
    for name, sheet in sheets.items():
        csv = csvs[name]
        assert list(sheet.columns) == list(csv.columns) and len(sheet) == len(csv), name
        for c in csv.columns:
            a, b = sheet[c], csv[c]
            if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
                np.testing.assert_allclose(pd.to_numeric(a, errors="coerce"), b, rtol=1e-12, err_msg=name)
            else:
                assert (a.isna() == b.isna()).all(), (name, c)
        checked += assert_no_small_cell(sheet, f"tables.xlsx:{name}")
    cells = sheets["indicators_cells"]
    hidden = cells[cells["suppressed"].astype(bool)]
    assert len(hidden) and hidden[["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    small = hidden["suppression_reason"].astype(str).str.startswith("disclosure:")
    assert small.any() and hidden.loc[small, "n"].isna().all()     # below the minimum: the count too
    assert checked > 200


def test_html_and_json_tables_convert_every_dtype_as_cell_by_cell():
    """The column-wise HTML and JSON conversions give what the cell-by-cell ones gave."""
    import html as _html

    from cips_stats.report.builder import _fmt_cell, _html_cells
    from cips_stats.results import to_jsonable

    floats = [0.0, -0.0, 1.0, -3.0, 1e9 - 1, 1e9, 2.5, 0.0005, -0.0004, 0.001, 1234.56789, -7.25e-5, np.nan,
              np.inf, -np.inf, 1e-12, 123456789012.5]
    n = len(floats)
    frame = pd.DataFrame({
        "f": floats, "f32": np.array(floats, dtype=np.float32), "i": np.arange(n) - 3,
        "u": np.arange(n, dtype=np.uint8), "b": np.arange(n) % 2 == 0,
        "B": pd.array([True, None] * (n // 2) + [False], dtype="boolean"),
        "F": pd.array([1.5, None] * (n // 2) + [2.0], dtype="Float64"),
        "I": pd.array([1, None] * (n // 2) + [3], dtype="Int64"),
        "s": ["<b>&x</b>", None] * (n // 2) + ["'q'"], "o": [pd.NA, 1, "a", 2.5, None] * 3 + [np.float64(1.0), True]})
    for c in frame.columns:
        assert _html_cells(frame[c]) == [_html.escape(_fmt_cell(v)) for v in frame[c]], c
    assert S._table_json(frame) == to_jsonable(frame)
    assert S._table_json(frame.iloc[:0]) == to_jsonable(frame.iloc[:0])


def test_report_json_is_gated_on_the_fast_path_and_on_the_fallback(sim, tmp_path):
    from cips_stats import disclosure
    from cips_stats.report.builder import _write_report_json

    gate = disclosure.Gate.for_survey(sim.data, min_n=MIN_CELL, anonymise=True, key="a-test-key-of-some-length")
    name = sorted(sim.data.frame["country"].unique())[0]
    plain = {"table": {"columns": ["country", "x"], "data": [[name, 1.5]]}, "note": f"{name} is fine"}
    odd = {**plain, "n": np.int64(3), "x": float("nan"), "arr": np.array([1.0, np.inf])}
    for doc in (plain, odd):
        p = tmp_path / "r.json"
        _write_report_json(p, doc, gate)
        text = p.read_text(encoding="utf-8")
        back = json.loads(text)
        assert name not in text and gate.text(name) in text
        assert back["table"]["data"][0][1] == 1.5
    assert back["n"] == 3 and back["x"] is None and back["arr"] == [1.0, None]


def test_statistics_of_small_cells_are_nowhere_in_the_files(built, sim):
    """The full-precision values of small cells (indicators, reliability) appear in no output file."""
    out, _ = built
    with pytest.warns(cs.errors.SmallCellWarning):          # the survey has small cells: they are flagged
        ind = cs.estimate.indicators(sim.data, n_boot=N_BOOT, seed=1).table
    with pytest.warns(cs.CipsWarning):              # small cells are flagged (and warned about)
        rel = cs.reliability.by_cell(sim.data).table
    secrets = set()
    for t, cols in ((ind, ("estimate", "se", "ci_low", "ci_high")), (rel, ("alpha", "omega", "ci_low"))):
        small = t[t["n"] < MIN_CELL]
        assert len(small)
        for c in cols:
            secrets |= {repr(float(v)) for v in small[c] if np.isfinite(v)}
    assert len(secrets) > 20
    text = "".join(p.read_text(encoding="utf-8") for p in [out / "report.json", *(out / "tables").glob("*.csv")])
    leaked = [s for s in secrets if s in text]
    assert not leaked, leaked[:5]


def test_figures_are_drawn_from_published_cells_only(sim, tmp_path, monkeypatch):
    drawn = []
    real = S.Section.plot

    def spy(self, caption, kind, table, *rest, **kw):     # what travels to the figure workers
        drawn.append((kind, table.copy()))
        return real(self, caption, kind, table, *rest, **kw)

    monkeypatch.setattr(S.Section, "plot", spy)
    targets = pd.DataFrame({"factor": ["leadership"], "group": ["officials"], "target": [6.0]})
    cs.report.build(sim.data, tmp_path, n_boot=N_BOOT, sections=("indicators", "reliability", "change", "kpi",
                                                                 "review"),
                    min_cell=MIN_CELL, targets=targets)
    assert {k for k, _ in drawn} >= {"dot_panels", "reliability", "kpi", "instrument_review"}
    stats = {"dot_panels": "estimate", "reliability": "alpha", "change_heatmap": "estimate",
             "instrument_review": "alpha_if_deleted"}
    for kind, t in drawn:
        if kind in stats and kind != "instrument_review":
            assert t["suppressed"].any(), kind
        if "suppressed" in t.columns and kind in stats:
            assert t.loc[t["suppressed"], stats[kind]].isna().all(), kind


# ------------------------------------------------------------------------------------------ anonymise
def test_anonymise_replaces_country_names_everywhere(anonymised, built, sim):
    out, rep = anonymised
    assert rep.ok
    names = sorted(sim.data.frame["country"].unique())
    texts = {"index.html": re.sub(r"base64,[A-Za-z0-9+/=]+", "", (out / "index.html").read_text(encoding="utf-8")),
             "report.json": (out / "report.json").read_text(encoding="utf-8")}
    texts.update({p.name: p.read_text(encoding="utf-8") for p in (out / "tables").glob("*.csv")})
    for fname, text in texts.items():
        for c in names:
            assert not re.search(rf"(?<![A-Za-z0-9]){c}(?![A-Za-z0-9])", text), f"{c} in {fname}"
    ind = pd.read_csv(out / "tables" / "indicators_cells.csv")
    assert set(ind["country"]) == {f"Country {i}" for i in range(1, len(names) + 1)}
    # same cells as the named report, only the labels change
    named = pd.read_csv(built[0] / "tables" / "indicators_cells.csv")
    assert sorted(ind["n"].dropna()) == sorted(named["n"].dropna())


def test_anonymise_maps_consistently_across_tables(anonymised):
    out, _ = anonymised
    ind = pd.read_csv(out / "tables" / "indicators_cells.csv")
    gap = pd.read_csv(out / "tables" / "gap_cells.csv")
    resp = pd.read_csv(out / "tables" / "data_respondents.csv")
    m = resp[resp["group"] == "officials"].merge(
        ind[(ind["group"] == "officials") & (ind["factor"] == "audit")], on=["country", "iteration"])
    # the officials' count of a country-iteration is the same cell in both tables
    ok = m["n_x"].notna() & m["n_y"].notna()
    assert ok.any() and (m.loc[ok, "n_y"] <= m.loc[ok, "n_x"]).all()
    assert set(gap["country"]) <= set(ind["country"])


# ------------------------------------------------------------------------------------------ failures
def test_a_failing_section_is_reported_and_the_rest_builds(sim, tmp_path, monkeypatch):
    def broken(ctx):
        raise cs.ModelError("Deliberately not converged.")

    monkeypatch.setitem(S.COMPUTE, "reliability", broken)
    rep = cs.report.build(sim.data, tmp_path, n_boot=N_BOOT, sections=("data", "reliability", "indicators"))
    assert not rep.ok
    assert rep.failures == {"reliability": "ModelError: Deliberately not converged."}
    assert rep.sections["indicators"]["ok"] and rep.sections["data"]["ok"]
    assert any(f.code == "section_failed" for f in rep.flags)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "This section failed." in html and "Deliberately not converged." in html
    assert "indicators_cells" in html
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["failures"]["reliability"].startswith("ModelError")
    assert doc["sections"]["reliability"]["ok"] is False
    assert "traceback" in doc["sections"]["reliability"]["result"]
    warn = pd.read_csv(tmp_path / "tables" / "warnings.csv")
    assert ((warn["section"] == "reliability") & (warn["code"] == "section_failed")).any()
    assert (tmp_path / "tables" / "indicators_cells.csv").is_file()


@pytest.fixture(scope="module")
def small_fits():
    """A converged CFA and an invariance ladder on a small frame (fast), to feed the report."""
    rng = np.random.default_rng(2)
    n = 400
    eta = rng.normal(size=(n, 1))
    y = eta @ np.array([[1.0, 0.8, 0.7, 0.6]]) + rng.normal(scale=0.6, size=(n, 4))
    df = pd.DataFrame(y, columns=["a", "b", "c", "d"]).assign(g=np.repeat(["x", "y"], n // 2))
    fit = cs.factor.cfa(df, "f =~ a + b + c + d")
    inv = cs.factor.invariance(df, group="g", model="f =~ a + b + c + d", levels=("configural", "metric", "scalar"))
    return fit, inv


def test_cfa_and_invariance_sections_show_fit_with_cutoffs_and_partial_failure(sim, tmp_path, small_fits):
    fit, inv = small_fits
    results = {"cfa": {"officials": fit, "private": cs.ModelError("The private model did not converge.")},
               "invariance": [("groups x and y", "f", inv)]}
    rep = cs.report.build(sim.data, tmp_path, sections=("cfa", "invariance"), results=results)
    assert set(rep.failures) == {"cfa"} and "did not converge" in rep.failures["cfa"]
    tables = html_tables(tmp_path / "index.html")
    disp = tables["cfa_fit"].set_index("measure")
    assert disp.loc["CFI", "Hu & Bentler (1999)"] == "≥ .95"
    cfi = fit.fit["cfi"]
    assert disp.loc["CFI", "officials"] == f"{cfi:.3f} " + ("✓" if cfi >= 0.95 else "✗")
    csv = pd.read_csv(tmp_path / "tables" / "cfa_fit.csv")
    assert csv.loc[0, "meets_rmsea"] == (fit.fit["rmsea"] <= 0.06)
    np.testing.assert_allclose(csv.loc[0, "chi2"], fit.fit["chi2"], rtol=1e-12)
    lo = pd.read_csv(tmp_path / "tables" / "cfa_loadings.csv")
    np.testing.assert_allclose(lo["std_all"], fit.loadings["std_all"], rtol=1e-12)
    ver = pd.read_csv(tmp_path / "tables" / "invariance_verdicts.csv")
    assert ver.loc[0, "level_supported"] == inv.level_supported
    assert bool(ver.loc[0, "latent_means_comparable"]) == inv.supports("means")
    lad = pd.read_csv(tmp_path / "tables" / "invariance_ladder.csv")
    assert list(lad["level"]) == list(inv.table.index)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["sections"]["cfa"]["result"]["groups"]["officials"]["kind"] == "CFAResult"
    assert doc["sections"]["invariance"]["result"]["comparisons"][0]["result"]["kind"] == "InvarianceResult"


def test_cfa_and_invariance_sections_compute_on_survey_data(tmp_path):
    sim = cs.simulate(seed=6, n_countries=2, n_repeat=2, n_officials=150, n_private=120)
    rep = cs.report.build(sim.data, tmp_path, sections=("invariance",), invariance_factors=("audit",))
    assert rep.ok, rep.failures
    ver = pd.read_csv(tmp_path / "tables" / "invariance_verdicts.csv")
    # across iterations within each respondent group, and across the two groups
    assert len(ver) == 3 and set(ver["factor"]) == {"audit"}
    assert ver["level_supported"].isin(["configural", "metric", "scalar", "partial_metric",
                                        "partial_scalar", "none"]).all()


def test_build_rejects_bad_options(sim, tmp_path):
    with pytest.raises(ValueError, match="sections="):
        cs.report.build(sim.data, tmp_path, sections=("nope",))
    with pytest.raises(ValueError, match="min_cell="):
        cs.report.build(sim.data, tmp_path, min_cell=0)
    with pytest.raises(ValueError, match="invariance="):
        cs.report.build(sim.data, tmp_path, invariance="everything")
    with pytest.raises(TypeError, match="SurveyData"):
        cs.report.build(sim.data.frame, tmp_path)


def test_export_writes_the_same_tables_as_build(built, sim, tmp_path):
    out, _ = built
    with pytest.warns(cs.errors.SmallCellWarning):          # the survey has small cells: they are flagged
        ind = cs.estimate.indicators(sim.data, n_boot=N_BOOT, seed=1)
    files = cs.report.export("indicators", ind, tmp_path, data=sim.data, min_cell=MIN_CELL)
    assert [f.name for f in files] == ["indicators_cells.csv"]
    pd.testing.assert_frame_equal(pd.read_csv(files[0]), pd.read_csv(out / "tables" / "indicators_cells.csv"))


def test_sections_without_a_comparison_show_a_note_not_a_failure(tmp_path):
    sim = cs.simulate(seed=7, n_countries=2, n_repeat=0, n_officials=60, n_private=40)
    officials = sim.data.subset(group="officials")
    rep = cs.report.build(officials, tmp_path, n_boot=20, sections=("gap", "drift", "invariance"),
                          invariance_factors=("audit",))
    assert rep.ok, rep.failures
    doc = json.loads((tmp_path / "report.json").read_text())
    assert "single respondent group" in doc["sections"]["gap"]["note"]
    assert "two iterations" in doc["sections"]["drift"]["note"]
    assert "No comparison" in doc["sections"]["invariance"]["note"]
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert html.count('class="note"') == 3 and "This section failed." not in html


# ------------------------------------------------------------------------------------------ worker processes
@pytest.fixture(scope="module")
def small_sim():
    return cs.simulate(seed=2, n_countries=3, n_repeat=2, n_officials=40, n_private=30)


def _without_times(obj):
    if isinstance(obj, dict):
        return {k: _without_times(v) for k, v in obj.items() if k not in ("seconds", "created")}
    if isinstance(obj, list):
        return [_without_times(v) for v in obj]
    return obj


def test_workers_change_nothing_in_the_report(small_sim, tmp_path):
    """Figures drawn and invariance ladders fitted in worker processes: the same files as in one process."""
    secs = ("data", "reliability", "invariance", "gap")
    for nj in (1, 2):
        cs.report.build(small_sim.data, tmp_path / f"r{nj}", n_boot=20, seed=1, sections=secs, n_jobs=nj)
    one, two = tmp_path / "r1", tmp_path / "r2"
    docs = [_without_times(json.loads((p / "report.json").read_text(encoding="utf-8"))) for p in (one, two)]
    assert docs[0] == docs[1]
    assert len(docs[0]["sections"]["invariance"]["result"]["comparisons"]) >= 2
    for p in sorted((one / "tables").glob("*.csv")):
        assert p.read_bytes() == (two / "tables" / p.name).read_bytes(), p.name
    pngs = [re.findall(r"base64,([A-Za-z0-9+/=]+)", (p / "index.html").read_text(encoding="utf-8")) for p in (one, two)]
    assert len(pngs[0]) >= 3 and pngs[0] == pngs[1]
    with pytest.raises(cs.CipsError, match="n_jobs"):
        cs.report.build(small_sim.data, tmp_path / "r0", sections=("data",), n_jobs=0)


def test_a_figure_that_fails_in_a_worker_fails_its_section_with_the_reason(small_sim, tmp_path, monkeypatch):
    from cips_stats.report import builder

    real = builder._submitter

    def broken(n_jobs):
        submit = real(n_jobs)
        return lambda kind, args, kwargs: submit(kind, args, {**kwargs, "no_such_option": 1})

    monkeypatch.setattr(builder, "_submitter", broken)
    rep = cs.report.build(small_sim.data, tmp_path, n_boot=20, seed=1, sections=("data", "reliability", "gap"),
                          n_jobs=2)
    assert set(rep.failures) == {"reliability", "gap"}
    assert all("A figure could not be drawn: TypeError" in m and "no_such_option" in m for m in rep.failures.values())
    assert (tmp_path / "tables" / "reliability_cells.csv").exists()     # the tables are still published
    assert "<figure>" not in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_review_figure_holds_the_cips_instrument_on_one_page_that_fits_a_screen():
    from cips_stats import plotting
    from cips_stats.report._inference import REVIEW_ROWS

    inst = cs.Instrument.default()          # 50 items asked of officials, 40 of the private sector
    items = pd.DataFrame({"item": [i.id for i in inst.items], "factor": [i.factor for i in inst.items]}).head(50)
    items = items.assign(alpha_if_deleted=0.8, alpha=0.82, loading=0.6, dont_know_rate=0.05, noninvariant=False)
    pages = plotting.instrument_review(items, max_rows=REVIEW_ROWS)
    assert len(items) == 50 and len(pages) == 1
    w, h = pages[0].get_size_inches() * 90
    assert h <= 1000 and w <= 1300
    assert len(pages[0].axes[0].get_yticklabels()) == len(items)


def test_invariance_falls_back_to_one_process_when_the_worker_pool_fails(monkeypatch):
    """A broken or shut-down worker pool (once seen as joblib's _ReusablePoolExecutor error under CliRunner):
    the ladders are fitted in this process, the user is told, and the verdicts are those of a serial run."""
    from cips_stats import plotting

    sim = cs.simulate(seed=6, n_countries=2, n_repeat=2, n_officials=150, n_private=120)
    kw = dict(invariance_factors=("audit",), seed=1)
    serial = cs.report.compute("invariance", sim.data, n_jobs=1, **kw)

    class _Broken:
        def submit(self, *args, **kwargs):
            raise RuntimeError("cannot schedule new futures after shutdown")

    monkeypatch.setattr(plotting, "_executor", lambda workers: _Broken())
    with pytest.warns(cs.errors.CipsWarning, match="worker pool failed.*RuntimeError"):
        fallback = cs.report.compute("invariance", sim.data, n_jobs=2, **kw)
    assert [label for label, *_ in fallback] == [label for label, *_ in serial] and len(serial) == 3
    for (_, name_a, res_a), (_, name_b, res_b) in zip(serial, fallback):
        assert name_a == name_b
        pd.testing.assert_frame_equal(res_a.to_frame(), res_b.to_frame())
