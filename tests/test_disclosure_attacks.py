"""Adversarial tests of disclosure control (issue 13): every attack a determined reader tried must fail.

The survey is simulated with deliberately tiny cells (``simulate(small_cells=True)``: a private-sector
cell of 3, an officials cell of 7, a category of 2 in a cell of ~30) and real-looking country names,
one with an apostrophe.  The report is built through the real command line
(``cips-stats report FILE --anonymise``) and through the API; the reader sees only what was written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.optimize import linprog

import cips_stats as cs
from cips_stats import disclosure
from cips_stats.cli import main

MIN_N = 10
SECTIONS = "data,reliability,indicators,gap,drift,change"   # every section that publishes per-cell n
NAMES = {"C01": "Kenya", "C02": "Peru", "C03": "Niger", "C04": "Côte d'Ivoire", "C05": "Nigeria"}
PUBLIC_LIST = sorted(NAMES.values())


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def survey():
    sim = cs.simulate(seed=3, n_countries=5, n_repeat=4, n_officials=45, n_private=30, small_cells=True)
    raw = sim.raw.copy()
    raw["country"] = raw["country"].map(NAMES)
    small = sim.truth["small_cells"].assign(country=lambda t: t["country"].map(NAMES))
    return raw, sim.instrument, small


@pytest.fixture(scope="module")
def cli_report(survey, tmp_path_factory):
    raw, inst, _ = survey
    tmp = tmp_path_factory.mktemp("attack")
    f = tmp / "survey.csv"
    cs.data.write_raw(raw, f, instrument=inst)
    out = tmp / "out"
    key = tmp / "secret" / "key.txt"
    key.parent.mkdir()
    r = CliRunner().invoke(main, ["report", str(f), "--out", str(out), "--anonymise", "--anonymise-key", str(key),
                                  "--seed", "3", "--n-boot", "30", "--sections", SECTIONS])
    assert r.exit_code == 0, r.output
    return out, key.read_text().strip(), r.output


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted((out / "tables").glob("*.csv"))}


def _texts(out: Path) -> dict[str, str]:
    html = re.sub(r"base64,[A-Za-z0-9+/=]+", "", (out / "index.html").read_text(encoding="utf-8"))
    texts = {"index.html": html, "report.json": (out / "report.json").read_text(encoding="utf-8")}
    texts.update({p.name: p.read_text(encoding="utf-8-sig") for p in (out / "tables").glob("*.csv")})
    return texts


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)


def _true_counts(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.groupby(["country", "iteration", "group"]).size().rename("n").reset_index()


def _owner_mapping(out: Path, raw: pd.DataFrame) -> dict[str, str]:
    """The data owner links codes to names through the published counts (unique in this survey)."""
    pub = pd.read_csv(out / "tables" / "data_respondents.csv").dropna(subset=["n"])
    true = _true_counts(raw)
    mapping = {}
    for code, sub in pub.groupby("country"):
        sig = set(zip(sub["iteration"], sub["group"], sub["n"].astype(int)))
        hits = [c for c, t in true.groupby("country") if sig <= set(zip(t["iteration"], t["group"], t["n"]))]
        assert len(hits) == 1
        mapping[hits[0]] = code
    return mapping


# ------------------------------------------------------------------------------------------ names
def test_no_real_name_and_no_key_in_any_output(cli_report):
    out, key, stdout = cli_report
    for fname, text in _texts(out).items():
        for name in NAMES.values():
            assert name not in text, f"{name} in {fname}"
        assert key not in text, f"the key is in {fname}"
    assert key not in stdout
    assert "Ivoire" not in stdout


def test_rows_are_ordered_by_code_not_by_name(cli_report):
    out, _, _ = cli_report
    for name, t in _tables(out).items():
        if "country" not in t.columns:
            continue
        num = t["country"].astype(str).str.extract(r"^Country (\d+)$", expand=False)
        assert num.notna().all(), name
        assert (np.diff(num.astype(int).to_numpy()) >= 0).all(), f"{name} is not ordered by code"


def test_row_order_gives_the_names_back_no_better_than_chance(survey):
    """The attack: the i-th code in row order is the i-th name of the public list."""
    raw, _, _ = survey
    data = cs.load(raw, instrument=survey[1], strict=False)
    hits = []
    for _ in range(40):
        gate = disclosure.Gate.for_survey(data, anonymise=True)     # a fresh random key each time
        order = sorted(gate.mapping.items(), key=lambda kv: int(kv[1].split()[-1]))
        guess = dict(zip(PUBLIC_LIST, [code for _, code in order]))
        hits.append(np.mean([guess[n] == gate.mapping[n] for n in PUBLIC_LIST]))
    # chance is 1/5 per name; an order-preserving map would give 1.0 every time
    assert np.mean(hits) < 0.4 and min(hits) < 1.0


def test_the_seed_does_not_rebuild_the_mapping(cli_report, survey):
    out, key, _ = cli_report
    raw = survey[0]
    truth = _owner_mapping(out, raw)
    assert sorted(truth) == PUBLIC_LIST
    public = pd.DataFrame({"country": PUBLIC_LIST})
    with pytest.raises(TypeError):
        disclosure.anonymise(public, seed=3)                        # the old attack no longer runs
    # With five names a random key hits the true order one time in 120, so the guesses are judged on a
    # longer list of names (a chance match there has probability 1/30!): no guess derived from the seed
    # orders the names the way the owner's key does.
    longer = pd.DataFrame({"country": PUBLIC_LIST + [f"Name {i:02d}" for i in range(25)]})
    _, by_key = disclosure.anonymise(longer, key=key)
    tried = 0
    for guess in ("3", "03", str(3) * 16, "0" * 64, "3" * 64):
        try:
            _, m = disclosure.anonymise(longer, key=guess)
        except cs.CipsError:
            continue
        tried += 1
        assert m != by_key
    assert tried == 3
    assert len(key) >= 32 and key not in {str(3) * 16, "0" * 64, "3" * 64}
    # the owner's key reproduces it exactly (same codes across iterations of a programme)
    _, m = disclosure.anonymise(public, key=key)
    assert m == truth


def test_same_key_same_codes_fresh_key_new_codes(survey):
    raw, inst, _ = survey
    data = cs.load(raw, instrument=inst, strict=False)
    k = disclosure.new_key()
    a = disclosure.Gate.for_survey(data, anonymise=True, key=k).mapping
    b = disclosure.Gate.for_survey(data, anonymise=True, key=k).mapping
    assert a == b
    fresh = [disclosure.Gate.for_survey(data, anonymise=True).mapping for _ in range(6)]
    assert any(m != a for m in fresh)
    gate = disclosure.Gate.for_survey(data, anonymise=True, key=k)
    assert gate.key is None and k not in repr(gate) and k not in str(vars(gate))


def test_no_punctuation_or_length_of_a_name_survives(cli_report):
    out, _, _ = cli_report
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    warn = pd.read_csv(out / "tables" / "warnings.csv")
    texts = list(_strings(doc)) + warn["message"].fillna("").astype(str).tolist() + \
        warn["where"].fillna("").astype(str).tolist()
    for t in texts:
        assert not re.search(r'"Country \d', t), t          # a name with an apostrophe was double-quoted
        assert "\\'" not in t, t
    codes = set()
    for t in _tables(out).values():
        if "country" in t.columns:
            codes |= set(t["country"].astype(str))
    assert {len(c) for c in codes} == {len("Country 1")}
    gate = disclosure.Gate(anonymise=True, cells=pd.DataFrame(
        {"country": PUBLIC_LIST, "iteration": 1, "group": "g", "n": 50}), margins=[])
    for form in (repr("Côte d'Ivoire"), '"Côte d\'Ivoire"', "'Kenya'", '"Kenya"', "Kenya", json.dumps("Côte d'Ivoire")):
        msg = gate.text(f"{{'country': {form}}}: share moved")
        assert re.fullmatch(r"\{'country': '?Country \d'?\}: share moved", msg), msg
    assert gate.text(repr({"country": "Côte d'Ivoire"})) == gate.text(repr({"country": "Kenya"})).replace(
        gate.mapping["Kenya"], gate.mapping["Côte d'Ivoire"])


# ------------------------------------------------------------------------------------------ counts
def _published_constraints(out: Path, raw: pd.DataFrame):
    """Everything a reader can write as linear facts about the cell counts, from the published files."""
    mapping = _owner_mapping(out, raw)
    inv = {v: k for k, v in mapping.items()}
    true = _true_counts(raw)
    true["code"] = true["country"].map(mapping)
    key = list(zip(true["code"], true["iteration"], true["group"]))
    k = len(true)
    pos = {c: i for i, c in enumerate(key)}
    resp = pd.read_csv(out / "tables" / "data_respondents.csv")
    known = np.full(k, np.nan)
    for _, r in resp.iterrows():
        known[pos[(r["country"], r["iteration"], r["group"])]] = r["n"]
    eq = []
    acc = pd.read_csv(out / "tables" / "data_accounting.csv").set_index("quantity")["value"]
    if pd.notna(acc.get("respondents used")):
        eq.append((np.ones(k, dtype=bool), float(acc["respondents used"])))
    # the CFA n per group and the invariance n per group/iteration are group (x iteration) totals: a reader
    # is assumed to know every total the gate allows (conservative)
    for g in true["group"].unique():
        m = (true["group"] == g).to_numpy()
        eq.append((m, float(true.loc[m, "n"].sum())))
        for t in true["iteration"].unique():
            mm = m & (true["iteration"] == t).to_numpy()
            eq.append((mm, float(true.loc[mm, "n"].sum())))
        # the invariance comparison across iterations: the countries of g surveyed in every iteration
        per = true[m].groupby("country")["iteration"].nunique()
        rep = m & true["country"].isin(per[per == true["iteration"].nunique()].index).to_numpy()
        if rep.any():
            eq.append((rep, float(true.loc[rep, "n"].sum())))
    lower = np.ones(k)
    # reliability counts per cell and factor, and the change model's n_1/n_2 per country and group (first and
    # last iteration of the cell), are lower bounds of their cells
    tables = out / "tables"
    if (tables / "reliability_cells.csv").exists():
        rel = pd.read_csv(tables / "reliability_cells.csv")
        for (c, it, g), sub in rel.groupby(["country", "iteration", "group"]):
            v = sub["n"].max()
            if pd.notna(v):
                lower[pos[(c, it, g)]] = max(lower[pos[(c, it, g)]], v)
    if (tables / "change_cells.csv").exists():
        ch = pd.read_csv(tables / "change_cells.csv")
        for (c, g), sub in ch.groupby(["country", "group"]):
            its = sorted(true.loc[(true["code"] == c) & (true["group"] == g), "iteration"])
            for col, it in (("n_1", its[0]), ("n_2", its[-1])):
                v = sub[col].max()
                if pd.notna(v):
                    lower[pos[(c, it, g)]] = max(lower[pos[(c, it, g)]], v)
    # indicator and gap counts are lower bounds of their cells
    ind = pd.read_csv(out / "tables" / "indicators_cells.csv")
    for (c, it, g), sub in ind.groupby(["country", "iteration", "group"]):
        v = sub["n"].max()
        if pd.notna(v):
            lower[pos[(c, it, g)]] = max(lower[pos[(c, it, g)]], v)
    drift = pd.read_csv(out / "tables" / "drift_all.csv")
    for _, r in drift.iterrows():
        for side in ("from", "to"):
            v = r[f"n_{side}"]
            if pd.notna(v):
                i = pos[(r["country"], r[f"iteration_{side}"], r["group"])]
                lower[i] = max(lower[i], v)
    return true, known, eq, lower, inv


def _interval(i, known, eq, lower):
    unk = np.flatnonzero(np.isnan(known))
    j = int(np.flatnonzero(unk == i)[0])
    A, b = [], []
    for m, tot in eq:
        row = m[unk].astype(float)
        if row.any():
            A.append(row)
            b.append(tot - np.nansum(known[m]))
    c = np.zeros(unk.size)
    c[j] = 1
    bounds = [(lower[u], None) for u in unk]
    lo = linprog(c, A_eq=np.array(A) if A else None, b_eq=np.array(b) if b else None, bounds=bounds, method="highs")
    hi = linprog(-c, A_eq=np.array(A) if A else None, b_eq=np.array(b) if b else None, bounds=bounds, method="highs")
    return lo.fun, (-hi.fun if hi.status == 0 else np.inf)


def test_suppressed_counts_cannot_be_recovered_by_differencing(cli_report, survey):
    """Cells, respondents used, group and group x iteration totals (CFA, invariance n), indicator, drift n."""
    out, _, _ = cli_report
    raw, _, small = survey
    assert {"reliability_cells", "change_cells", "indicators_cells", "drift_all"} <= set(_tables(out))
    true, known, eq, lower, inv = _published_constraints(out, raw)
    sup = np.flatnonzero(np.isnan(known))
    assert sup.size >= 2
    tiny = true["n"].to_numpy() < MIN_N
    assert tiny.sum() >= 2 and np.isnan(known[tiny]).all()        # the 3 and the 7 are hidden
    for i in np.flatnonzero(tiny):
        lo, hi = _interval(i, known, eq, lower)
        assert hi - lo >= 1, (true.iloc[i].to_dict(), lo, hi)
        assert hi - lo >= np.ceil(MIN_N / 2)                     # the gate's protection interval


def test_the_old_subtractions_fail(cli_report, survey):
    """Respondents used minus published cells, and group totals minus published cells, give no single cell."""
    out, _, _ = cli_report
    raw = survey[0]
    resp = pd.read_csv(out / "tables" / "data_respondents.csv")
    acc = pd.read_csv(out / "tables" / "data_accounting.csv").set_index("quantity")["value"]
    true = _true_counts(raw)
    small = set(true.loc[true["n"] < MIN_N, "n"])
    hidden = acc["respondents used"] - resp["n"].sum()
    assert hidden not in small
    for g, sub in resp.groupby("group"):
        total = true.loc[true["group"] == g, "n"].sum()            # what the CFA n per group publishes
        diff = total - sub["n"].sum()
        assert sub["n"].isna().sum() != 1                           # never a single unknown in a total
        assert diff not in small


# ------------------------------------------------------------------------------------------ shares
def test_no_share_of_a_small_category_is_published(cli_report, survey):
    out, _, _ = cli_report
    raw, inst, small = survey
    mapping = _owner_mapping(out, raw)
    drift = pd.read_csv(out / "tables" / "drift_all.csv")
    variables = sorted(drift["variable"].unique())
    cnt = disclosure.category_counts(raw, ["country", "group", "iteration"], variables)
    cnt["country"] = cnt["country"].map(mapping)
    cnt["category"] = cnt["category"].astype(str)
    look = {tuple(r[:-1]): r[-1] for r in cnt[["country", "group", "iteration", "variable", "category", "count"]]
            .itertuples(index=False, name=None)}
    checked = 0
    for _, r in drift.iterrows():
        for side in ("from", "to"):
            if pd.notna(r[f"share_{side}"]):
                c = look.get((r["country"], r["group"], r[f"iteration_{side}"], r["variable"], str(r["category"])), 0)
                assert c >= MIN_N, r.to_dict()
                checked += 1
    assert checked > 20
    # the planted category of 2 is in the survey, and hidden with its complement
    cat = small[small["kind"] == "category"].iloc[0]
    rows = drift[(drift["country"] == mapping[cat["country"]]) & (drift["group"] == cat["group"])
                 & (drift["variable"] == cat["variable"]) & (drift["iteration_from"] == cat["iteration"])]
    assert len(rows) >= 2 and rows["share_from"].isna().sum() >= 2
    # within a distribution never exactly one share hidden (1 - the others would give it)
    for _, g in drift.groupby(["country", "group", "iteration_from", "variable"]):
        assert g["share_from"].isna().sum() != 1


# ------------------------------------------------------------------------------------------ JSON
def test_the_json_holds_nothing_about_suppressed_cells(cli_report, survey):
    out, _, _ = cli_report
    raw = survey[0]
    mapping = _owner_mapping(out, raw)
    true = _true_counts(raw)
    resp = pd.read_csv(out / "tables" / "data_respondents.csv")
    hidden = {(r.country, str(r.group)) for r in resp[resp["n"].isna()].itertuples()}
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))

    def flags(o):
        if isinstance(o, dict):
            if {"code", "message", "severity", "where"} <= set(o):
                yield o
            for v in o.values():
                yield from flags(v)
        elif isinstance(o, list):
            for v in o:
                yield from flags(v)

    found = list(flags(doc))
    assert found
    for f in found:
        w = f["where"] if isinstance(f["where"], dict) else {}
        if (w.get("country"), str(w.get("group"))) in hidden and (
                w.get("iteration") is not None or "iteration_from" in w):
            its = {w.get("iteration"), w.get("iteration_from"), w.get("iteration_to")} - {None}
            cells = {(w["country"], str(w["group"]), int(i)) for i in its}
            bad = {(r.country, str(r.group), int(r.iteration)) for r in resp[resp["n"].isna()].itertuples()}
            if cells & bad:
                assert f["message"] == disclosure.REDACTED, f
        assert "moved from 0%" not in f["message"] or (w.get("country"), str(w.get("group"))) not in hidden
    # the drift section's own result carries only flags rebuilt from published shares
    drift_flags = doc["sections"]["drift"]["result"]["flags"]
    pub = pd.read_csv(out / "tables" / "drift_all.csv")
    for f in drift_flags:
        m = re.search(r"Share of '([^']*)' in \w+ moved from (\d+)% to (\d+)%", f["message"])
        if m:
            w = f["where"]
            rows = pub[(pub["country"] == w["country"]) & (pub["group"] == w["group"])
                       & (pub["variable"] == w["variable"]) & (pub["category"].astype(str) == m.group(1))]
            assert len(rows) and rows["share_from"].notna().all() and rows["share_to"].notna().all()
    # the suppressed cells' counts are nowhere in the result tables
    small_true = true[true["n"] < MIN_N]
    for sec in ("indicators", "gap"):
        t = doc["sections"][sec]["result"]["table"]
        tab = pd.DataFrame(t["data"], columns=t["columns"])
        for r in small_true.itertuples():
            rows = tab[(tab["country"] == mapping[r.country]) & (tab["iteration"] == r.iteration)]
            if "group" in tab.columns:
                rows = rows[rows["group"] == r.group]
            assert len(rows) and rows["estimate"].isna().all()
            ncol = "n" if "n" in tab.columns else "n_min"
            assert rows[ncol].isna().all()


# ------------------------------------------------------------------------------------------ stale files
def test_an_anonymised_run_into_a_named_report_leaves_no_name(survey, tmp_path):
    raw, inst, _ = survey
    data = cs.load(raw, instrument=inst, strict=False)
    cs.report.build(data, tmp_path / "r", sections=("data",), n_boot=20)
    named = (tmp_path / "r" / "tables" / "data_respondents.csv").read_text(encoding="utf-8-sig")
    assert "Kenya" in named
    (tmp_path / "r" / "tables" / "old_extra.csv").write_bytes(b"Kenya,1\n")   # ours? no: not in the manifest
    cs.report.build(data, tmp_path / "r", sections=("data",), n_boot=20, anonymise=True)
    for p in (tmp_path / "r").rglob("*"):
        if p.is_file() and p.name != "old_extra.csv":
            text = p.read_bytes()
            assert b"Kenya" not in text and "Côte".encode() not in text, p
    assert (tmp_path / "r" / "tables" / "old_extra.csv").exists()            # the user's file is kept


def test_a_total_that_cannot_be_protected_is_not_published(tmp_path):
    """Two private cells of 1 and 2 can only hide behind each other: the totals over them are withheld."""
    sim = cs.simulate(seed=6, n_countries=2, n_repeat=0, n_officials=40, n_private=30)
    raw = sim.raw
    priv = raw.index[raw["group"] == "private"]
    keep_c1 = raw.index[(raw["group"] == "private") & (raw["country"] == "C01")][:1]
    keep_c2 = raw.index[(raw["group"] == "private") & (raw["country"] == "C02")][:2]
    raw = raw.drop(priv.difference(keep_c1.union(keep_c2)))
    data = cs.load(raw, instrument=sim.instrument, strict=False)
    gate = disclosure.Gate.for_survey(data)
    assert "group=private" in gate.withdrawn and "total" in gate.withdrawn
    cs.report.build(data, tmp_path / "r", sections=("data",), n_boot=20)
    acc = pd.read_csv(tmp_path / "r" / "tables" / "data_accounting.csv").set_index("quantity")["value"]
    assert pd.isna(acc["respondents used"]) and pd.isna(acc["records read"])
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    doc = (tmp_path / "r" / "report.json").read_text(encoding="utf-8")
    total = str(len(data.frame))
    assert f"{total} respondents" not in html and f"{total} respondents" not in doc
    assert "(withheld)" in html


# ------------------------------------------------------------------------------------------ XLSX and HTML
def _xlsx_parts(out: Path) -> dict[str, str]:
    import zipfile

    with zipfile.ZipFile(out / "tables.xlsx") as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml")}


def _canonical(col: pd.Series) -> pd.Series:
    """A column as a reader compares it: booleans as 0/1, numbers as floats, text without a leading "'"."""
    v = col.map(lambda x: float(x) if isinstance(x, (bool, np.bool_)) else
                {"True": 1.0, "False": 0.0}.get(x, x) if isinstance(x, str) else x)
    num = pd.to_numeric(v, errors="coerce")
    if (num.isna() == v.isna()).all():
        return num.astype(float)
    return v.map(lambda x: x.removeprefix("'") if isinstance(x, str) else x if pd.isna(x) else str(x))


def test_the_xlsx_publishes_exactly_what_the_csv_files_publish(cli_report):
    """Every attack played on the CSV files holds for the workbook: same sheets, same published cells."""
    out, key, _ = cli_report
    parts = _xlsx_parts(out)
    for part, xml in parts.items():
        for name in [*NAMES.values(), "Ivoire"]:
            assert name not in xml, f"{name} in tables.xlsx:{part}"
        assert key not in xml, f"the key is in tables.xlsx:{part}"
        assert "<f>" not in xml and "<f " not in xml, f"a formula in tables.xlsx:{part}"
    sheets = pd.read_excel(out / "tables.xlsx", sheet_name=None, engine="openpyxl")
    csvs = _tables(out)
    assert sorted(sheets) == sorted(csvs)
    for name, sheet in sheets.items():
        csv = csvs[name]
        assert list(sheet.columns) == list(csv.columns) and len(sheet) == len(csv), name
        for c in csv.columns:
            a, b = _canonical(sheet[c]), _canonical(csv[c])
            assert (a.isna() == b.isna()).all(), f"{name}.{c}"
            if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
                np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-12, equal_nan=True,
                                           err_msg=f"{name}.{c}")
            else:                                # CSV text is neutralised with a leading "'", XLSX text is typed
                assert a.dropna().tolist() == b.dropna().tolist(), f"{name}.{c}"
        if "country" in sheet.columns:
            num = sheet["country"].astype(str).str.extract(r"^Country (\d+)$", expand=False)
            assert num.notna().all() and (np.diff(num.astype(int).to_numpy()) >= 0).all(), name


def test_the_html_tables_are_ordered_by_code_and_hide_the_small_cells(cli_report, survey):
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr" and self.tables:
                self.tables[-1].append([])
            elif tag in ("td", "th") and self.tables and self.tables[-1]:
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.tables[-1][-1].append(self.cell.strip())
                self.cell = None

    out, _, _ = cli_report
    raw = survey[0]
    p = Tables()
    p.feed((out / "index.html").read_text(encoding="utf-8"))
    with_country = [t for t in p.tables if t and "country" in [h.lower() for h in t[0]]]
    assert with_country
    for t in with_country:
        col = [h.lower() for h in t[0]].index("country")
        codes = [r[col] for r in t[1:] if len(r) > col and r[col]]
        assert all(re.fullmatch(r"Country \d", c) for c in codes), codes
        nums = [int(c.split()[-1]) for c in codes]
        assert nums == sorted(nums)
    # the HTML respondents table shows no count below the minimum
    small = {str(v) for v in _true_counts(raw).query("n < @MIN_N")["n"]}
    for t in with_country:
        head = [h.lower() for h in t[0]]
        if head[-1] == "n" or "n" in head:
            j = head.index("n")
            assert not {r[j] for r in t[1:] if len(r) > j} & small, t[0]


# ------------------------------------------------------------------------------------------ the full report
@pytest.mark.slow
def test_every_attack_fails_on_a_full_report(survey, tmp_path):
    """The default sections (with the CFA, invariance and review): names, key, formulas, differencing."""
    raw, inst, _ = survey
    f = tmp_path / "survey.csv"
    cs.data.write_raw(raw, f, instrument=inst)
    out, key = tmp_path / "out", tmp_path / "key.txt"
    r = CliRunner().invoke(main, ["report", str(f), "--out", str(out), "--anonymise-key", str(key), "--seed", "3",
                                  "--n-boot", "30"])
    assert r.exit_code == 0, r.output
    k = key.read_text().strip()
    for fname, text in {**_texts(out), **_xlsx_parts(out)}.items():
        for name in [*NAMES.values(), "Ivoire"]:
            assert name not in text, f"{name} in {fname}"
        assert k not in text and "<f>" not in text, fname
    true, known, eq, lower, _ = _published_constraints(out, raw)
    tiny = true["n"].to_numpy() < MIN_N
    assert tiny.sum() >= 2 and np.isnan(known[tiny]).all()
    for i in np.flatnonzero(tiny):
        lo, hi = _interval(i, known, eq, lower)
        assert hi - lo >= np.ceil(MIN_N / 2), (true.iloc[i].to_dict(), lo, hi)
    for name, t in _tables(out).items():
        if "country" in t.columns:
            num = t["country"].astype(str).str.extract(r"^Country (\d+)$", expand=False)
            assert num.notna().all() and (np.diff(num.astype(int).to_numpy()) >= 0).all(), name
