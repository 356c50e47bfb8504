"""Tests of the ``cips-stats`` command line (click's CliRunner, no subprocess)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cips_stats as cs
from cips_stats import cli
from cips_stats.cli import main


@pytest.fixture
def runner():
    return CliRunner()


def test_version(runner):
    r = runner.invoke(cli.main, ["--version"])
    assert r.exit_code == 0
    assert cs.__version__ in r.output


@pytest.mark.slow
def test_demo_writes_every_output(runner, tmp_path):
    out = tmp_path / "demo"
    r = runner.invoke(cli.main, ["demo", "--out", str(out), "--countries", "3", "--seed", "4", "--n-boot", "100"])
    summary = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in summary["steps"]] == [name for name, _ in cli.DEMO_STEPS]
    assert r.exit_code == (0 if summary["ok"] else 1)
    for step in summary["steps"]:
        for f in step["files"]:
            assert (out / f).is_file(), f
    assert summary["provenance"]["seed"] == 4
    assert summary["command"] == f"cips-stats demo --out {out} --seed 4 --countries 3 --n-boot 100"
    assert summary["provenance"]["options"]["n_boot"] == 100
    # the truth written is the truth of the same simulation
    sim = cs.simulate(seed=4, n_countries=3, n_repeat=2, small_cells=True)   # the demo plants small cells
    assert summary["survey"]["raw_fingerprint"] == sim.fingerprint
    ind = pd.read_csv(out / "truth" / "indicators.csv")
    pd.testing.assert_series_equal(ind["value"], sim.truth["indicators"]["value"], check_exact=False, rtol=1e-12)
    back = cs.load(out / "raw_survey.csv")
    assert back.fingerprint == sim.data.fingerprint
    # the analysis: analyze on the files the demo wrote, every step timed
    steps = {s["name"] for s in summary["analysis"]["steps"]}
    assert {"load", "reliability", "cfa", "invariance", "indicators", "change", "claims", "review", "report"} <= steps
    rep_ind = pd.read_csv(out / "analysis" / "report" / "tables" / "indicators_cells.csv", encoding="utf-8-sig")
    with pytest.warns(cs.errors.SmallCellWarning):
        direct = cs.estimate.indicators(sim.data, n_boot=100, seed=4).table
    ok = ~rep_ind["suppressed"].to_numpy(bool)
    assert (~ok).any() and rep_ind.loc[~ok, "estimate"].isna().all()     # the demo exercises suppression
    np.testing.assert_allclose(rep_ind["se"].to_numpy(float)[ok], direct["se"].to_numpy(float)[ok], rtol=1e-12)
    doc = json.loads((out / "analysis" / "report" / "report.json").read_text())
    assert doc["provenance"]["seed"] == 4
    assert "coverage" in " ".join(doc["sections"]["indicators"]["tables"])


def test_demo_reports_a_failing_step_and_exits_nonzero(runner, tmp_path, monkeypatch):
    def broken(ctx):
        raise ValueError("deliberately broken step")

    by_name = dict(cli.DEMO_STEPS)
    steps = [("simulate", by_name["simulate"]), ("broken", broken), ("truth", by_name["truth"])]
    monkeypatch.setattr(cli, "DEMO_STEPS", steps)
    out = tmp_path / "demo"
    r = runner.invoke(cli.main, ["demo", "--out", str(out), "--countries", "1"])
    assert r.exit_code == 1
    assert "FAILED" in r.output and "broken" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False
    status = {s["name"]: s for s in summary["steps"]}
    assert status["broken"]["ok"] is False
    assert "deliberately broken step" in status["broken"]["error"]
    assert status["simulate"]["ok"] and status["truth"]["ok"]   # the other steps still ran


@pytest.mark.parametrize("ext", [".csv", ".xlsx", ".sav", ".dta", ".parquet"])
def test_simulate_every_format_round_trips_through_load(runner, tmp_path, ext):
    path = tmp_path / f"survey{ext}"
    r = runner.invoke(cli.main, ["simulate", "--out", str(path), "--seed", "7", "--countries", "1"])
    assert r.exit_code == 0, r.output
    sim = cs.simulate(seed=7, n_countries=1, n_repeat=1)
    data = cs.load(path, instrument=sim.instrument)
    assert data.fingerprint == sim.data.fingerprint
    assert len(data.exclusions) == len(sim.data.exclusions)


def test_simulate_four_points(runner, tmp_path):
    path = tmp_path / "s4.parquet"
    r = runner.invoke(cli.main, ["simulate", "--out", str(path), "--countries", "1", "--points", "4"])
    assert r.exit_code == 0, r.output
    data = cs.load(path, instrument=cs.Instrument.default(points=4))
    assert data.frame[list(data.instrument.items_for("officials"))].max().max() == 4


def test_simulate_rejects_unknown_extension(runner, tmp_path):
    r = runner.invoke(cli.main, ["simulate", "--out", str(tmp_path / "s.txt")])
    assert r.exit_code == 2
    assert "extension" in r.output


def test_validate_clean_file(runner, tmp_path):
    path = tmp_path / "ok.csv"
    cs.data.write_raw(cs.simulate(seed=2, n_countries=1, n_repeat=1, n_officials=30, n_private=20).raw, path)
    r = runner.invoke(cli.main, ["validate", str(path)])
    assert r.exit_code == 0, r.output
    assert "OK" in r.output


def test_validate_broken_file_exits_nonzero_and_names_the_problems(runner, tmp_path):
    raw = cs.simulate(seed=2, n_countries=1, n_repeat=1, n_officials=30, n_private=20).raw.copy()
    raw.loc[3, "LC1"] = 7                      # out of scale
    raw.loc[5, "respondent_id"] = raw.loc[4, "respondent_id"]   # duplicate id
    path = tmp_path / "broken.csv"
    raw.to_csv(path, index=False)
    r = runner.invoke(cli.main, ["validate", str(path)])
    assert r.exit_code == 1
    assert "code_out_of_scale" in r.output and "respondent_id_duplicate" in r.output
    assert "row 4" in r.output


def test_validate_unreadable_input_exits_two(runner, tmp_path):
    r = runner.invoke(cli.main, ["validate", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2
    assert "file_not_found" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    ok = tmp_path / "ok.csv"
    cs.data.write_raw(cs.simulate(seed=2, n_countries=1, n_repeat=1, n_officials=10, n_private=10).raw, ok)
    r = runner.invoke(cli.main, ["validate", str(ok), "--instrument", str(bad)])
    assert r.exit_code == 2


def test_validate_with_instrument_yaml(runner, tmp_path):
    inst = cs.Instrument.default(points=4)
    y = tmp_path / "inst.yaml"
    inst.to_yaml(y)
    path = tmp_path / "s.csv"
    cs.data.write_raw(cs.simulate(seed=3, n_countries=1, n_repeat=1, n_officials=20, n_private=20, points=4).raw,
                      path, instrument=inst)
    assert runner.invoke(cli.main, ["validate", str(path), "--instrument", str(y)]).exit_code == 0
    five = tmp_path / "five.csv"
    cs.data.write_raw(cs.simulate(seed=3, n_countries=1, n_repeat=1, n_officials=20, n_private=20).raw, five)
    # a 5-point file against the 4-point instrument has out-of-scale codes
    r = runner.invoke(cli.main, ["validate", str(five), "--instrument", str(y)])
    assert r.exit_code == 1
    assert "code_out_of_scale" in r.output


def test_demo_step_failure_keeps_the_report_going(runner, tmp_path, monkeypatch):
    """A failing analysis section is recorded; the report still builds and names the failed section."""
    import cips_stats.report._sections as S
    from cips_stats import pipeline

    def broken(ctx):
        raise cs.ModelError("Deliberately broken reliability.")

    monkeypatch.setitem(S.COMPUTE, "reliability", broken)
    monkeypatch.setattr(pipeline, "_SECTION_STEPS", ("reliability", "indicators"))
    by_name = dict(cli.DEMO_STEPS)
    steps = [(n, by_name[n]) for n in ("simulate", "analyze")]
    monkeypatch.setattr(cli, "DEMO_STEPS", steps)
    ok, summary = cli.run_demo(tmp_path, seed=2, countries=1, n_boot=50, console=False)
    status = {s["name"]: s for s in summary["steps"]}
    assert not ok and not status["analyze"]["ok"] and "reliability" in status["analyze"]["error"]
    inner = {s["name"]: s for s in summary["analysis"]["steps"]}
    assert not inner["reliability"]["ok"] and inner["indicators"]["ok"] and inner["report"]["ok"]
    html = (tmp_path / "analysis" / "report" / "index.html").read_text(encoding="utf-8")
    assert "Deliberately broken reliability." in html and '<section id="indicators">' in html


# ------------------------------------------------------------------ report
def _survey_file(tmp_path, **kw):
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30, **kw)
    path = tmp_path / "survey.csv"
    cs.data.write_raw(sim.raw, path, instrument=sim.instrument)
    return sim, path


def test_report_command_builds_the_report(runner, tmp_path):
    sim, path = _survey_file(tmp_path)
    out = tmp_path / "rep"
    r = runner.invoke(cli.main, ["report", str(path), "--out", str(out), "--sections", "data,indicators,gap",
                                 "--n-boot", "60", "--anonymise", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "indicators" in r.output and "index.html" in r.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["options"]["anonymise"] is True and doc["options"]["n_boot"] == 60
    assert doc["data_fingerprint"] == sim.data.fingerprint
    assert set(doc["sections"]) == {"data", "indicators", "gap"}
    ind = pd.read_csv(out / "tables" / "indicators_cells.csv")
    assert ind["country"].str.startswith("Country ").all()


def test_report_command_with_instrument_yaml(runner, tmp_path):
    inst = cs.Instrument.default(points=4)
    y = tmp_path / "inst.yaml"
    inst.to_yaml(y)
    sim, path = _survey_file(tmp_path, points=4)
    out = tmp_path / "rep"
    r = runner.invoke(cli.main, ["report", str(path), "--out", str(out), "--instrument", str(y),
                                 "--sections", "data", "--n-boot", "10"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "report.json").read_text())["instrument_hash"] == inst.hash


def test_report_command_exit_codes(runner, tmp_path, monkeypatch):
    r = runner.invoke(cli.main, ["report", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    _, path = _survey_file(tmp_path)
    r = runner.invoke(cli.main, ["report", str(path), "--out", str(tmp_path / "o"), "--sections", "bogus"])
    assert r.exit_code == 2 and "bogus" in r.output
    import cips_stats.report._sections as S

    monkeypatch.setitem(S.COMPUTE, "indicators", lambda ctx: (_ for _ in ()).throw(cs.ModelError("Broken.")))
    r = runner.invoke(cli.main, ["report", str(path), "--out", str(tmp_path / "o"), "--sections", "data,indicators"])
    assert r.exit_code == 1
    assert "FAILED" in r.output and "Broken." in r.output


# ------------------------------------------------------------------ the validation/benchmark runners
def test_runner_discovers_and_lists_the_registered_modules(capsys):
    import validation

    studies = validation.discover("validation", "study_")
    benches = validation.discover("benchmarks", "bench_")
    assert studies["generator_recovery"] == "validation.study_generator_recovery"
    assert benches["load"] == "benchmarks.bench_load"
    assert validation.run_main(["--list"], package="benchmarks", prefix="bench_") == 0
    assert "load" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="Unknown name"):
        validation.run_main(["--only", "no_such_study"], package="validation", prefix="study_")


def test_runner_result_records_machine_info(tmp_path):
    import validation

    table = pd.DataFrame({"cell": ["a", "b"], "bias": [0.1, float("nan")]})
    path = validation.write_result("demo_study", table, folder=tmp_path, quick=True, seconds=1.5)
    rec = json.loads(path.read_text())
    assert rec["quick"] is True and rec["seconds"] == 1.5
    assert rec["machine"]["cpu_count"] >= 1
    assert {"python", "numpy", "pandas", "date"} <= set(rec["machine"])
    assert rec["result"][1]["bias"] is None            # NaN is written as null, not as invalid JSON
    assert pd.read_csv(tmp_path / "demo_study.csv").shape == (2, 2)


def test_analyze_steps_and_jobs_are_checked_before_any_work(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("x\n1\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["analyze", str(f), "--out", str(tmp_path / "a"), "--steps", "reliability,nope"])
    assert r.exit_code == 2 and "nope" in r.output and not (tmp_path / "a" / "summary.json").exists()
    r = CliRunner().invoke(main, ["analyze", str(f), "--out", str(tmp_path / "b"), "--jobs", "0"])
    assert r.exit_code == 2 and "--jobs" in r.output
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "c"), "--jobs", "-1"])
    assert r.exit_code == 2 and "--jobs" in r.output


def test_demo_analysis_releases_the_in_memory_survey_but_keeps_its_summary(tmp_path, monkeypatch):
    """The analysis reads the survey file: the synthetic survey's tables are released before it runs."""
    from types import SimpleNamespace

    from cips_stats import pipeline

    ctx = cli.DemoContext(out=tmp_path, seed=2, countries=2, n_boot=20)
    seen = {}

    def fake_analyze(path, **kwargs):
        seen.update(raw=ctx.sim.raw, data=ctx.sim.data, truth=ctx.sim.truth, path=path)
        return SimpleNamespace(ok=True, report=SimpleNamespace(files=()), steps=(), summary={})

    monkeypatch.setattr(pipeline, "analyze", fake_analyze)
    cli._step_simulate(ctx)
    fp = ctx.sim.fingerprint
    cli._step_analyze(ctx)
    assert seen["raw"] is None and seen["data"] is None and "indicators" in seen["truth"]
    assert seen["path"] == ctx.state["raw_path"]
    survey = ctx.state["survey"]
    assert survey["raw_fingerprint"] == fp and survey["countries"] == 2 and survey["iterations"]
