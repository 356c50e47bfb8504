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
