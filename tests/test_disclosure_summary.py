"""Attacks on the analysis summary (``summary.json``) and results (``results.json``) of ``cips-stats analyze``.

Issue 13: every count that leaves the package passes the publication gate.  The report withheld a total the
gate withdrew, but ``summary.json`` still carried the respondent total: the total minus the published cells of
``report/tables/data_respondents.csv`` gave the suppressed cells back.  The reader here sees only the files
written; every attack must fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

import cips_stats as cs
from cips_stats import disclosure, pipeline

MIN_N = 10
NAMES = {"C01": "Kenya", "C02": "Peru", "C03": "Niger", "C04": "Côte d'Ivoire", "C05": "Nigeria"}


def _numbers(obj, path=""):
    """Every integer-valued number in a JSON document, with where it stands."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)) and float(obj).is_integer():
        yield path, int(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}/{i}")


def _published_cells(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "report" / "tables" / "data_respondents.csv")


# ------------------------------------------------------------------------------------ a total the gate withdraws
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two private cells of 1 and 2 respondents: they can only hide behind each other, so no total is safe."""
    sim = cs.simulate(seed=6, n_countries=2, n_repeat=0, n_officials=40, n_private=30)
    raw = sim.raw
    priv = raw.index[raw["group"] == "private"]
    keep = raw.index[(raw["group"] == "private") & (raw["country"] == "C01")][:1].union(
        raw.index[(raw["group"] == "private") & (raw["country"] == "C02")][:2])
    data = cs.load(raw.drop(priv.difference(keep)), instrument=sim.instrument, strict=False)
    out = tmp_path_factory.mktemp("tiny") / "a"
    a = pipeline.analyze(data, out=out, steps=(), n_boot=20, seed=1)
    return data, out, a


def test_the_gate_withdraws_the_totals_of_the_tiny_survey(tiny):
    data, _, _ = tiny
    gate = disclosure.Gate.for_survey(data)
    assert "total" in gate.withdrawn and "group=private" in gate.withdrawn
    assert gate.suppressed_cells["n"].tolist() == [1, 2]


def test_no_published_number_minus_the_published_cells_gives_the_suppressed_cells(tiny):
    """The attack: (a number in summary.json or results.json) - (published cells) = the hidden cells' sum."""
    data, out, _ = tiny
    cells = _published_cells(out)
    assert cells["n"].isna().sum() == 2                         # the report hides the 1 and the 2
    hidden_sum = int(len(data.frame)) - int(cells["n"].sum())
    assert hidden_sum == 3
    for name in ("summary.json", "results.json"):
        doc = json.loads((out / name).read_text(encoding="utf-8"))
        hits = [(p, v) for p, v in _numbers(doc) if v - int(cells["n"].sum()) == hidden_sum]
        assert not hits, (name, hits)
        private_total = [(p, v) for p, v in _numbers(doc) if "respond" in p and v == hidden_sum]
        assert not private_total, (name, private_total)


def test_the_summary_says_what_it_withheld(tiny):
    data, out, a = tiny
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["respondents"] is None and s["counts"]["respondents"] is None
    assert s["counts"]["respondents_by_group"]["private"] is None
    cells = _published_cells(out)
    officials = int(cells.loc[cells["group"] == "officials", "n"].sum())
    assert s["counts"]["respondents_by_group"]["officials"] == officials   # its cells are all published
    assert s["counts"]["respondents_in_published_cells"] == int(_published_cells(out)["n"].sum())
    assert s["counts"]["cells_suppressed"] == 2
    assert any("withheld by disclosure control" in w for w in s["counts"]["withheld"])
    assert a.summary == s


# ------------------------------------------------------------------------------------ a survey with small cells
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    sim = cs.simulate(seed=3, n_countries=5, n_repeat=4, n_officials=45, n_private=30, small_cells=True)
    raw = sim.raw.copy()
    raw["country"] = raw["country"].map(NAMES)
    data = cs.load(raw, instrument=sim.instrument, strict=False)
    out = tmp_path_factory.mktemp("small") / "a"
    a = pipeline.analyze(data, out=out, steps=(), n_boot=20, seed=1, anonymise=True)
    return data, out, a


def _interval(i: int, known: np.ndarray, eq: list, lower: np.ndarray) -> tuple[float, float]:
    unk = np.flatnonzero(np.isnan(known))
    j = int(np.flatnonzero(unk == i)[0])
    A = [m[unk].astype(float) for m, _ in eq if m[unk].any()]
    b = [tot - np.nansum(known[m]) for m, tot in eq if m[unk].any()]
    c = np.zeros(unk.size)
    c[j] = 1
    kw = dict(A_eq=np.array(A) if A else None, b_eq=np.array(b) if b else None,
              bounds=[(lower[u], None) for u in unk], method="highs")
    lo, hi = linprog(c, **kw), linprog(-c, **kw)
    return lo.fun, (-hi.fun if hi.status == 0 else np.inf)


def test_the_published_totals_leave_every_suppressed_cell_protected(small):
    """Published cells, the summary's total and group totals: no suppressed cell is pinned down."""
    data, out, _ = small
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    gate = disclosure.Gate.for_survey(data)
    true = gate.cells.reset_index(drop=True)
    assert true["suppressed"].sum() >= 2 and (true["n"] < MIN_N).sum() >= 2
    # the data owner links codes to names through the published counts (unique in this survey)
    pub = _published_cells(out).dropna(subset=["n"])
    code_of = {}
    for code, sub in pub.groupby("country"):
        sig = set(zip(sub["iteration"], sub["group"], sub["n"].astype(int)))
        hits = [c for c, t in true.groupby("country") if sig <= set(zip(t["iteration"], t["group"], t["n"]))]
        assert len(hits) == 1
        code_of[hits[0]] = code
    known = np.full(len(true), np.nan)
    look = {(r.country, r.iteration, str(r.group)): r.n for r in pub.itertuples()}
    for i, r in enumerate(true.itertuples()):
        known[i] = look.get((code_of[r.country], r.iteration, str(r.group)), np.nan)
    eq = []
    if s["respondents"] is not None:
        assert s["respondents"] == len(data.frame)                  # published when the gate allows it
        eq.append((np.ones(len(true), dtype=bool), float(s["respondents"])))
    for g, v in s["counts"]["respondents_by_group"].items():
        if v is not None:
            eq.append(((true["group"] == g).to_numpy(), float(v)))
    assert eq                                                       # the attack has totals to work with
    lower = np.ones(len(true))
    for i in np.flatnonzero(np.isnan(known)):
        lo, hi = _interval(i, known, eq, lower)
        assert hi - lo >= np.ceil(MIN_N / 2), (true.iloc[i].to_dict(), lo, hi)


def test_no_real_name_in_the_summary_or_results(small):
    _, out, _ = small
    for name in ("summary.json", "results.json"):
        text = (out / name).read_text(encoding="utf-8")
        for real in NAMES.values():
            assert real not in text and json.dumps(real)[1:-1] not in text, (name, real)


def test_a_step_error_naming_a_country_is_coded_or_redacted(small, tmp_path, monkeypatch):
    """A failing step's message goes through the gate: no real name, nothing about a suppressed cell."""
    data, _, _ = small
    gate = disclosure.Gate.for_survey(data)
    hidden = gate.suppressed_cells["country"].iloc[0]
    shown = next(c for c in NAMES.values() if c not in set(gate.suppressed_cells["country"]))

    def boom(name, *args, **kwargs):
        if name == "reliability":
            raise cs.ModelError(f"The fit failed in {shown!r}.")
        raise cs.ModelError(f"The cell ({hidden!r}, private, 2) has 3 respondents.")

    monkeypatch.setattr(cs.report, "compute", boom)
    a = pipeline.analyze(data, out=tmp_path / "a", steps=("reliability", "cfa"), n_boot=20, seed=1,
                         anonymise=True)
    text = (tmp_path / "a" / "summary.json").read_text(encoding="utf-8")
    for real in NAMES.values():
        assert real not in text and json.dumps(real)[1:-1] not in text
    steps = {s["name"]: s for s in json.loads(text)["steps"]}
    assert not steps["reliability"]["ok"] and "Country " in steps["reliability"]["error"]
    assert steps["cfa"]["error"] == disclosure.REDACTED
    assert "3 respondents" not in text
    assert not a.ok


# ------------------------------------------------------------------------------------ the helper and the demo
def test_published_counts_follows_the_gate():
    cells = pd.DataFrame({"country": ["A", "B", "C", "A", "B", "C"], "iteration": 1,
                          "group": ["o", "o", "o", "p", "p", "p"], "n": [40, 50, 60, 3, 40, 45]})
    gate = disclosure.Gate.from_cells(cells)
    c = pipeline.published_counts(gate)
    sup = gate.cells["suppressed"].to_numpy()
    assert sup.sum() >= 2
    for name, v in (("total", c["respondents"]), ("group=o", c["respondents_by_group"]["o"]),
                    ("group=p", c["respondents_by_group"]["p"])):
        assert (v is None) == (not gate.total_published(name))
    assert c["respondents_in_published_cells"] == int(cells["n"][~sup].sum())
    assert c["cells"] == 6 and c["cells_suppressed"] == int(sup.sum())
