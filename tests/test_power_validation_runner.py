"""``python -m validation --backend/--n-jobs``: the runner passes them to studies whose run() takes them."""

from __future__ import annotations

import json
import sys

import pytest

from validation import run_main


@pytest.fixture
def study_package(tmp_path, monkeypatch):
    pkg = tmp_path / "tmp_studies_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "study_takes.py").write_text(
        '"""Takes backend and n_jobs."""\n'
        "def run(quick=False, *, backend='loky', n_jobs=None):\n"
        "    return {'backend': str(backend), 'n_jobs': n_jobs, 'quick': quick}\n")
    (pkg / "study_plain.py").write_text(
        '"""Takes neither."""\n'
        "def run(quick=False):\n"
        "    return {'quick': quick}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tmp_studies_pkg", tmp_path / "results"
    for name in list(sys.modules):
        if name.startswith("tmp_studies_pkg"):
            del sys.modules[name]


def test_backend_and_n_jobs_reach_the_studies_that_take_them(study_package):
    package, results = study_package
    rc = run_main(["--quick", "--backend", "threading", "--n-jobs", "2"], package=package, results=results)
    assert rc == 0
    takes = json.loads((results / "takes.json").read_text())["result"]
    assert takes == {"backend": "threading", "n_jobs": 2, "quick": True}
    plain = json.loads((results / "plain.json").read_text())["result"]
    assert plain == {"quick": True}
    index = json.loads((results / "index.json").read_text())
    assert index["takes"]["backend"] == "threading" and "backend" not in index["plain"]


def test_without_backend_the_study_default_is_kept(study_package):
    package, results = study_package
    assert run_main(["--only", "takes"], package=package, results=results) == 0
    assert json.loads((results / "takes.json").read_text())["result"]["backend"] == "loky"


def test_type1_study_pools_runs_and_sets_the_selections_side_by_side():
    import numpy as np
    import pandas as pd

    from validation import study_claims_type1 as study

    base = dict(n_countries=17, n_officials=262, n_private=202, support_effect=0.0, group="officials", rule="point",
                test="ancova", se=np.nan, ci_low=np.nan, ci_high=np.nan, target="4-6%")
    a = pd.DataFrame([{**base, "selection": "random", "rejection_rate": 0.05, "n_sim": 300, "mean_estimate": 0.01},
                      {**base, "selection": "baseline", "rejection_rate": 0.10, "n_sim": 300, "mean_estimate": 0.2}])
    b = pd.DataFrame([{**base, "selection": "random", "rejection_rate": 0.02, "n_sim": 100, "mean_estimate": 0.05},
                      {**base, "selection": "baseline", "rejection_rate": 0.06, "n_sim": 100, "mean_estimate": 0.1}])
    p = study.pool(a, b).set_index("selection")
    assert p.loc["random", "n_sim"] == 400 and p.loc["random", "rejection_rate"] == pytest.approx(17 / 400)
    assert p.loc["baseline", "rejection_rate"] == pytest.approx(36 / 400)
    assert p.loc["random", "mean_estimate"] == pytest.approx((300 * 0.01 + 100 * 0.05) / 400)
    assert p.loc["random", "ci_low"] < 17 / 400 < p.loc["random", "ci_high"]
    w = study.wide(p.reset_index())
    assert len(w) == 1
    r = w.iloc[0]
    assert r["rate_pct_random"] == pytest.approx(100 * 17 / 400) and r["rate_pct_baseline"] == pytest.approx(9.0)
    assert r["in_target_random"] and r["consistent_with_5_random"] and r["n_sim_baseline"] == 400
