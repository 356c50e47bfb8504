"""Every reference fixture (tests/reference/*.json) opens with one ``meta`` header layout.

The layout (issue 12)::

    {"meta": {
        "generated_by": "validation/r/<script>.R",     # the script that wrote it (it exists)
        "call": "<the R call>" or {"<name>": "<call>", ...},
        "r_version": "R version 4.2.2 ...",            # or "python_version" for a Python-made fixture
        "packages": {"lavaan": "0.6.14", ...},         # the versions of the packages the calls used
        "date": "2026-...",
        "tolerance": 1e-6 or {"<quantity>": 1e-6, ...}
     },
     ...the values...}

so that a reader (and this test) finds the provenance of every reference number in the
same place.  Other keys may follow (``data``, ``notes``...).
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "tests" / "reference").glob("*.json"))
REQUIRED = ("generated_by", "call", "packages", "date", "tolerance")


def meta_problems(doc) -> list[str]:
    """Every way ``doc`` departs from the layout (empty when it follows it)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict):
        return ["no top-level 'meta' object"]
    meta = doc["meta"]
    out = [f"meta has no {k!r}" for k in REQUIRED if k not in meta]
    if "r_version" not in meta and "python_version" not in meta:
        out.append("meta has neither 'r_version' nor 'python_version'")
    gen = meta.get("generated_by")
    if gen is not None and not (isinstance(gen, str) and (ROOT / gen).is_file()):
        out.append(f"generated_by {gen!r} is not a file of the repository")
    call = meta.get("call")
    if call is not None and not (isinstance(call, str) and call.strip()
                                 or isinstance(call, dict) and call and all(isinstance(v, str) for v in call.values())):
        out.append("call is neither a string nor a mapping of strings")
    pk = meta.get("packages")
    if pk is not None and not (isinstance(pk, dict) and pk and all(isinstance(v, str) for v in pk.values())):
        out.append("packages is not a non-empty mapping of version strings")
    tol = meta.get("tolerance")
    if tol is not None and not (isinstance(tol, numbers.Real) or isinstance(tol, dict) and tol
                                and all(isinstance(v, numbers.Real) for v in tol.values())):
        out.append("tolerance is neither a number nor a mapping of numbers")
    if "r_version" in meta and not str(meta["r_version"]).startswith("R version"):
        out.append(f"r_version {meta['r_version']!r} is not R's version string")
    return out


def test_there_are_fixtures():
    assert len(FIXTURES) > 10


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture_has_the_meta_header(path):
    problems = meta_problems(json.loads(path.read_text(encoding="utf-8")))
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_checker_catches_departures():
    good = {"meta": {"generated_by": "validation/r/reliability.R", "call": {"a": "f(x)"}, "r_version": "R version 4.2.2",
                     "packages": {"psych": "2.2.9"}, "date": "2026-01-01", "tolerance": {"a": 1e-8}}}
    assert meta_problems(good) == []
    assert meta_problems({"call": "f(x)"}) == ["no top-level 'meta' object"]
    bad = {"meta": {**good["meta"], "generated_by": "nowhere.R", "tolerance": "tight"}}
    del bad["meta"]["r_version"]
    assert len(meta_problems(bad)) == 3
