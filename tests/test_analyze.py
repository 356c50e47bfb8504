"""`cips-stats analyze`, `claim`, `power`, `reproduce` end to end (issue 11), and the report's wording."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cips_stats as cs
from cips_stats import cli, pipeline


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A small survey written as a user would have it: raw CSV, instrument, support table, targets.

    Two key factors of four 6-point items, groups staff and traders, four countries surveyed twice;
    supported factors improve by 0.6 scale points.
    """
    tmp = tmp_path_factory.mktemp("survey")
    data, inst, support = _own_survey(tmp, countries=4, iterations=2, n=70)
    pd.DataFrame({"factor": ["wellbeing", "service"], "group": ["staff", "traders"],
                  "target": [0.0, 10.0]}).to_csv(tmp / "targets.csv", index=False)
    return tmp, data, inst, support


@pytest.fixture(scope="module")
def analysed(survey, runner):
    tmp, data, inst, support = survey
    out = tmp / "analysis"
    r = runner.invoke(cli.main, ["analyze", str(data), "--instrument", str(inst), "--support", str(support),
                                 "--targets", str(tmp / "targets.csv"), "--out", str(out), "--seed", "3",
                                 "--n-boot", "40", "--estimator", "ML", "--draws", "150", "--chains", "2", "--sampler", "pymc",
                                 "--json"])
    return r, out


def test_analyze_writes_report_results_and_summary(analysed):
    r, out = analysed
    summary = json.loads(r.output)
    assert summary == json.loads((out / "summary.json").read_text())
    names = [s["name"] for s in summary["steps"]]
    assert names[0] == "load" and names[-1] == "report"
    assert {"reliability", "cfa", "invariance", "indicators", "change", "claims", "kpi", "review"} <= set(names)
    assert all(s["seconds"] >= 0 for s in summary["steps"])
    # exit status follows success: 0 when all built, 1 when a step or section failed (shown in place)
    assert r.exit_code == (0 if summary["ok"] else 1), summary["failures"]
    assert summary["estimator"] == "ML" and summary["seed"] == 3
    rep = out / "report"
    html = (rep / "index.html").read_text(encoding="utf-8")
    for sec in ("change", "claims", "kpi", "review", "appendix"):
        assert f'id="{sec}"' in html
    assert "Port staff – Registered traders perception gap" in html
    assert "port-climate statistical report" in html
    for failed, msg in summary["failures"].items():       # a failure is said in its own section
        assert "This section failed." in html.split(f'id="{failed}"')[1].split("<section")[0]
    # exports: CSV with a BOM, one XLSX sheet per table, cell tables carry n and estimate
    ind = rep / "tables" / "indicators_cells.csv"
    assert ind.read_bytes().startswith(b"\xef\xbb\xbf")
    t = pd.read_csv(ind, encoding="utf-8-sig")
    assert {"n", "estimate"} <= set(t.columns)
    ch = pd.read_csv(rep / "tables" / "change_cells.csv", encoding="utf-8-sig")
    assert {"n", "estimate", "p_adjusted"} <= set(ch.columns)
    import openpyxl

    wb = openpyxl.load_workbook(rep / "tables.xlsx", read_only=True)
    csvs = sorted(p.stem for p in (rep / "tables").glob("*.csv"))
    assert len(wb.sheetnames) == len(csvs)
    # the results file records what a re-run needs
    doc = json.loads((out / "results.json").read_text())
    assert doc["rerun"]["seed"] == 3 and doc["rerun"]["source"]["sha256"]
    back = cs.load(out.parent / "port.csv", instrument=cs.Instrument.from_yaml(out.parent / "inst.yaml"))
    assert doc["data_fingerprint"] == back.fingerprint


def test_kpi_probabilities_follow_the_replicates(analysed):
    _, out = analysed
    kpi = pd.read_csv(out / "report" / "tables" / "kpi_overall.csv", encoding="utf-8-sig")
    low = kpi[kpi["factor"] == "wellbeing"]["probability"].iloc[0]
    high = kpi[kpi["factor"] == "service"]["probability"].iloc[0]
    assert low == 1.0 and high == 0.0          # targets 0 and 10: the ends of the 0-10 indicator scale
    trend = pd.read_csv(out / "report" / "tables" / "kpi_trend.csv", encoding="utf-8-sig")
    assert set(trend["iteration"]) == {1, 2}
    assert (trend["ci_low"] <= trend["estimate"]).all() and (trend["estimate"] <= trend["ci_high"]).all()


def test_instrument_review_effect_of_dropping(analysed, survey):
    _, out = analysed
    tmp, data, inst, _ = survey
    items = pd.read_csv(out / "report" / "tables" / "review_items.csv", encoding="utf-8-sig")
    assert set(items["group"]) == {"staff", "traders"}
    np.testing.assert_allclose(items["delta_alpha_if_dropped"], items["alpha_if_deleted"] - items["alpha"],
                               atol=1e-12)
    # alpha if deleted agrees with a direct call on the same items
    d = cs.load(data, instrument=cs.Instrument.from_yaml(inst))
    sub = d.frame[d.frame["group"] == "staff"]
    its = list(d.instrument.factor_items("wellbeing", group="staff"))
    direct = cs.reliability.cronbach_alpha(sub[its]).items.set_index("item")["alpha_if_dropped"]
    got = items[(items["group"] == "staff") & (items["factor"] == "wellbeing")].set_index("item")
    np.testing.assert_allclose(got.loc[its, "alpha_if_deleted"], direct.loc[its], rtol=1e-10)
    cand = pd.read_csv(out / "report" / "tables" / "review_candidates.csv", encoding="utf-8-sig")
    assert (cand["reasons"].str.len() > 0).all()
    # W2 carries 5% "don't know" answers in the generated data, W3 a weak loading
    assert items.loc[items["item"] == "W2", "dont_know_rate"].between(0.02, 0.09).all()
    assert "W3" in set(cand["item"])


def test_reproduce_matches_then_detects_an_edit(analysed, runner, tmp_path):
    _, out = analysed
    r = runner.invoke(cli.main, ["reproduce", str(out), "--json"])
    doc = json.loads(r.output)
    assert r.exit_code == 0, doc["mismatches"][:5]
    assert doc["ok"] and doc["compared"] == doc["matched"] > 1000
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    p = copy / "report" / "tables" / "indicators_cells.csv"
    t = pd.read_csv(p, encoding="utf-8-sig")
    i = int(np.flatnonzero(t["estimate"].notna().to_numpy())[0])
    t.loc[i, "estimate"] = t.loc[i, "estimate"] + 0.01
    t.to_csv(p, index=False, encoding="utf-8-sig")
    r = runner.invoke(cli.main, ["reproduce", str(copy), "--json"])
    doc = json.loads(r.output)
    assert r.exit_code == 1 and not doc["ok"]
    assert doc["mismatches"] == [{"table": "indicators_cells.csv", "row": i + 1, "column": "estimate",
                                  "original": str(t.loc[i, "estimate"]), "reproduced": doc["mismatches"][0][
                                      "reproduced"]}]


def test_reproduce_refuses_a_changed_input(analysed, survey, runner, tmp_path):
    tmp, data, _, _ = survey
    _, out = analysed
    doc = json.loads((out / "results.json").read_text())
    copy = tmp_path / "a"
    shutil.copytree(out, copy)
    src = tmp_path / "raw.csv"
    shutil.copy(data, src)
    doc["rerun"]["source"]["path"] = str(src)
    (copy / "results.json").write_text(json.dumps(doc))
    with open(src, "a", encoding="utf-8") as fh:
        fh.write("\n")
    r = runner.invoke(cli.main, ["reproduce", str(copy)])
    assert r.exit_code == 2 and "changed" in r.output
    r = runner.invoke(cli.main, ["reproduce", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "results.json" in r.output


def _own_survey(tmp, countries=1, iterations=1, n=240):
    """A non-CIPS survey: groups staff and traders, 6-point items, its own countries; (data, instrument, support)."""
    rng = np.random.default_rng(11)
    items = {"wellbeing": ["W1", "W2", "W3", "W4"], "service": ["S1", "S2", "S3", "S4"]}
    yaml = ["name: port-climate", 'version: "2"', "description: Port staff and traders climate survey.",
            "scale:", "  points: 6", "  labels: [a, b, c, d, e, f]", "  favourable: [5, 6]",
            "  missing:", "    9: dont_know",
            "groups:", "  - {id: staff, label: Port staff}", "  - {id: traders, label: Registered traders}",
            "demographics:", "  - {name: tenure, label: Tenure, categories: [short, long], groups: [staff, traders]}",
            "factors:", "  - {id: wellbeing, label: Wellbeing}", "  - {id: service, label: Service quality}",
            "items:"]
    for f, its in items.items():
        for i in its:
            yaml.append(f"  - {{id: {i}, factor: {f}, groups: [staff, traders], text: Item {i}.}}")
    (tmp / "inst.yaml").write_text("\n".join(yaml) + "\n", encoding="utf-8")
    names = ["Portland", "Harwich", "Valletta", "Gdynia", "Rijeka", "Aarhus"][:countries]
    support = pd.DataFrame([{"country": c, "factor": f, "supported": (k + j) % 2 == 0}
                            for k, c in enumerate(names) for j, f in enumerate(items)])
    frames, rid = [], 0
    for c in names:
        for it in range(1, iterations + 1):
            for g in ("staff", "traders"):
                m = n + int(rng.integers(0, 10))
                rows = {"respondent_id": np.arange(rid + 1, rid + m + 1), "country": c, "iteration": it,
                        "group": g, "weight": 1.0, "tenure": rng.choice(["short", "long"], m),
                        "minutes": rng.integers(5, 100_000, m)}
                rid += m
                for f, its in items.items():
                    sup = bool(support[(support.country == c) & (support.factor == f)]["supported"].iloc[0])
                    eta = rng.normal(size=m) + (0.5 if (sup and it > 1) else 0.0)
                    for i in its:
                        lam = 0.25 if i == "W3" else 0.85
                        x = lam * eta + 0.55 * rng.normal(size=m)
                        rows[i] = np.clip(np.round(3.5 + 1.2 * x), 1, 6).astype(int)
                frames.append(pd.DataFrame(rows))
    df = pd.concat(frames, ignore_index=True)
    df.loc[rng.choice(len(df), int(0.05 * len(df)), replace=False), "W2"] = 9
    df.to_csv(tmp / "port.csv", index=False)
    support.to_csv(tmp / "support.csv", index=False)
    return tmp / "port.csv", tmp / "inst.yaml", tmp / "support.csv"


def test_analyze_speaks_of_the_users_own_survey(runner, tmp_path):
    data, inst, _ = _own_survey(tmp_path)
    out = tmp_path / "out"
    r = runner.invoke(cli.main, ["analyze", str(data), "--instrument", str(inst), "--out", str(out), "--seed", "1",
                                 "--n-boot", "40", "--estimator", "ML", "--json"])
    assert r.exit_code in (0, 1), r.output
    summary = json.loads(r.output)
    assert summary["groups"] == ["staff", "traders"] and summary["countries"] == 1
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "Port staff – Registered traders perception gap" in html
    assert "6-point" in html and "port-climate statistical report" in html
    assert "Port staff" in html and "Registered traders" in html
    low = html.lower()
    assert "cips" not in low.replace("cips_stats", "").replace("cips-stats", "")
    assert "officials" not in low
    assert "the data hold a single iteration" in html          # the drift note says why, not "lack demographics"
    assert "lack" not in html
    items = pd.read_csv(out / "report" / "tables" / "review_items.csv", encoding="utf-8-sig")
    w2 = items[(items["item"] == "W2")]["dont_know_rate"]
    assert (w2 > 0).all()                                      # the declared "don't know" code is counted


def test_analyze_title_option(runner, tmp_path):
    data, inst, _ = _own_survey(tmp_path)
    out = tmp_path / "t"
    r = runner.invoke(cli.main, ["analyze", str(data), "--instrument", str(inst), "--out", str(out), "--seed", "1",
                                 "--n-boot", "20", "--estimator", "ML", "--title", "Harbour survey 2026"])
    assert r.exit_code in (0, 1), r.output
    assert "<title>Harbour survey 2026</title>" in (out / "report" / "index.html").read_text(encoding="utf-8")


def test_analyze_broken_file_is_a_clear_error(runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("this,is\nnot,a survey\n", encoding="utf-8")
    r = runner.invoke(cli.main, ["analyze", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "Error" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli.main, ["analyze", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2
    r = runner.invoke(cli.main, ["analyze", str(bad), "--estimator", "OLS"])
    assert r.exit_code == 2 and "OLS" in r.output


def test_analyze_bad_support_table_is_an_input_error(runner, survey, tmp_path):
    tmp, data, inst, _ = survey
    bad = tmp_path / "support.csv"
    pd.DataFrame({"country": ["A"], "factor": ["wellbeing"], "supported": ["maybe"]}).to_csv(bad, index=False)
    r = runner.invoke(cli.main, ["analyze", str(data), "--instrument", str(inst),
                                 "--support", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "supported" in r.output


def test_claim_command(runner):
    args = ["claim", "--supported-improved", "68", "--supported-total", "80", "--unsupported-improved", "66",
            "--unsupported-total", "90", "--countries", "17"]
    r = runner.invoke(cli.main, args)
    assert r.exit_code == 0, r.output
    direct = cs.claims.from_aggregates(supported_improved=68, supported_total=80, unsupported_improved=66,
                                       unsupported_total=90, n_countries=17)
    assert direct.verdict in r.output
    r = runner.invoke(cli.main, [*args, "--json"])
    doc = json.loads(r.output)
    assert doc["p_value"] == pytest.approx(direct.p_value, rel=1e-12)
    r = runner.invoke(cli.main, ["claim", "--supported-improved", "90", "--supported-total", "80",
                                 "--unsupported-improved", "1", "--unsupported-total", "9"])
    assert r.exit_code == 2 and "exceeds" in r.output


def test_power_commands(runner):
    r = runner.invoke(cli.main, ["power", "sample-size", "--margin", "0.05", "--population", "1100"])
    assert r.exit_code == 0 and "n = 285" in r.output
    r = runner.invoke(cli.main, ["power", "sample-size", "--margin", "0.05", "--json"])
    assert json.loads(r.output)["n"] == 385
    r = runner.invoke(cli.main, ["power", "mde", "--n", "200", "--sd", "2", "--json"])
    assert json.loads(r.output)["mde"] == pytest.approx(cs.power.mde(200, sd=2).mde, rel=1e-12)
    r = runner.invoke(cli.main, ["power", "sample-size", "--margin", "2"])
    assert r.exit_code == 2


def test_help_lists_the_commands_and_exit_codes(runner):
    r = runner.invoke(cli.main, ["--help"])
    for cmd in ("analyze", "claim", "power", "reproduce", "demo"):
        assert cmd in r.output
    assert "Exit status" in r.output and "2  usage or input error" in r.output


def test_help_loads_no_heavy_library():
    code = ("import sys; from cips_stats.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pymc', 'matplotlib', 'scipy', 'arviz', 'jax', 'statsmodels', 'openpyxl') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_pipeline_steps_subset_and_failure_in_place(tmp_path):
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
    a = pipeline.analyze(sim.data, out=tmp_path / "a", n_boot=20, seed=1, steps=("indicators", "kpi"),
                         targets=pd.DataFrame({"factor": ["nope"], "group": ["officials"], "target": [5]}))
    names = [s["name"] for s in a.steps]
    assert names == ["load", "indicators", "kpi", "report"]
    kpi = {s["name"]: s for s in a.steps}["kpi"]
    assert not kpi["ok"] and "nope" in kpi["error"]
    assert not a.ok and "kpi" in a.report.failures
    html = (tmp_path / "a" / "report" / "index.html").read_text(encoding="utf-8")
    assert "This section failed." in html.split('id="kpi"')[1].split("<section")[0]


def test_choose_estimator():
    inst = cs.Instrument.default()
    assert pipeline.choose_estimator(inst) == "WLSMV"
    assert pipeline.choose_estimator(inst, "mlr") == "MLR"


@pytest.mark.slow
def test_demo_with_change_and_claims(runner, tmp_path):
    out = tmp_path / "demo"
    r = runner.invoke(cli.main, ["demo", "--out", str(out), "--countries", "4", "--seed", "4", "--n-boot", "60"])
    summary = json.loads((out / "summary.json").read_text())
    steps = [s["name"] for s in summary["analysis"]["steps"]]
    assert {"change", "claims", "review"} <= set(steps)
    html = (out / "analysis" / "report" / "index.html").read_text(encoding="utf-8")
    assert "Claim audit" in html and "coverage" in html.lower()
    assert r.exit_code == (0 if summary["ok"] else 1)
    r = runner.invoke(cli.main, ["reproduce", str(out / "analysis"), "--json"])
    assert r.exit_code == 0, r.output[-2000:]
